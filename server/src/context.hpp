// Shared state of one eftd process: configuration, journal, registries, acquirer links.
// Owned by run(); sessions and flows hold a reference. Mutable registries are guarded by
// their own mutex (critical sections are a few map operations, never I/O).
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "eftd/core/bin_table.hpp"
#include "eftd/core/config.hpp"
#include "eftd/core/emv_oda.hpp"
#include "eftd/emv/contactless.hpp"
#include "eftd/journal/card_data.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "metrics.hpp"

namespace eftd::acq {
class link;
}
namespace eftd {
class tls_context;
}
namespace boost::asio::ssl {
class context;
}

namespace eftd::server {

class ha_node;
class key_module;
class pad_session;
class pos_session;
class reversal_queue;
class shared_files;
namespace backoffice {
class service;
}

// Injected time: tests and replays can pin it.
struct clock_source {
  std::function<std::int64_t()> now_ms;  // Unix epoch milliseconds
};

struct server_context {
  server_context(boost::asio::io_context& io_context, const config::server_config& initial);
  server_context(const server_context&) = delete;
  server_context& operator=(const server_context&) = delete;

  boost::asio::io_context& io;

  // The configuration in force. `eftctl reload` (or SIGHUP) installs a new one; every
  // configuration ever in force stays alive until exit, so a reference or pointer taken from
  // cfg() (a till, a limit) never dangles, it is only possibly one reload old.
  const config::server_config& cfg() const noexcept { return *cfg_now_.load(std::memory_order_acquire); }
  // Makes `next` the configuration in force (the caller has checked it may change at run time).
  void install_config(config::server_config next);
  std::optional<eftd::bin_table> bins;  // no table: every card is of unknown scheme
  journal::keys keys;
  // Key-handling module (key_module.hpp): BDKs and ZPKs; the only holder of clear card data.
  // Replaced as a whole when the key store file changes at run time (a reload on the active,
  // the shared key store installed at a promotion): a card session keeps the module it began
  // with.
  std::shared_ptr<const key_module> key_store() const noexcept { return key_store_.load(std::memory_order_acquire); }
  void install_key_store(std::shared_ptr<const key_module> m) noexcept {
    key_store_.store(std::move(m), std::memory_order_release);
  }
  // CA public keys for offline data authentication ([emv] capk_file), loaded at start-up.
  std::optional<emv::capk_table> capks;
  std::unique_ptr<journal::writer> journal;
  clock_source clock;
  // Counters and latency histograms for GET /metrics (metrics.hpp); always present.
  std::shared_ptr<server::metrics> metrics = std::make_shared<server::metrics>();

  // Pads currently connected and authenticated, by pad id.
  std::mutex pads_mu;
  std::map<std::string, std::weak_ptr<pad_session>> pads;

  // Contactless: what each pad's cards asked for (PDOL, records, CDOL1), learned from taps and
  // kept across transactions (eftd/emv/contactless.hpp). One pad runs one transaction at a time.
  std::mutex contactless_mu;
  std::map<std::string, std::unique_ptr<emv::contactless_cache>> contactless_caches;

  // Tills: the logged-in POS session and the order currently running (one per till).
  std::mutex tills_mu;
  std::map<std::string, std::weak_ptr<pos_session>> pos_by_till;
  std::map<std::string, std::string> busy_tills;  // till id -> order number in progress
  std::set<std::string> refunds_in_check;         // payment op ids whose refund limit is being checked

  // TLS for POS connections (null: plaintext, loopback only).
  std::shared_ptr<boost::asio::ssl::context> pos_tls;
  // TLS 1.3 for pad connections, shared by every pad session's tls_channel (null: plaintext,
  // loopback only).
  std::shared_ptr<const eftd::tls_context> pad_tls;

  // Acquirer links by acquirer name (created at start-up, connect lazily).
  std::map<std::string, std::shared_ptr<acq::link>> links;
  std::map<std::string, boost::asio::any_io_executor> link_strands;  // each link's own strand
  // Store-and-forward reversal queue per acquirer name (saf.hpp), started with recovery.
  std::map<std::string, std::shared_ptr<reversal_queue>> reversal_queues;

  // STAN per (acquirer, terminal): in memory, persisted with each request intent.
  std::mutex stan_mu;
  std::map<std::string, std::uint32_t> stans;
  // STANs skipped past the journaled value at first use (set at a promotion, server/HA.md):
  // the old active may have used a few that never reached the journal here.
  std::uint32_t stan_skip = 0;

  // Hot standby (ha.hpp); null for a single node.
  std::shared_ptr<ha_node> ha;
  // The key store and the registry a pair shares (shared_files.hpp); also what re-opens the
  // key store at a reload. Set at start-up, for every node.
  std::shared_ptr<shared_files> shared;

  // Back-office web pages and the users table (backoffice_http.hpp): its own thread and reader.
  std::shared_ptr<backoffice::service> backoffice;

  // Read-only journal access (one connection, serialised), opened at start-up.
  std::mutex reader_mu;
  std::optional<journal::reader> reader;

  // The order a till means by its order number: with a business date, exactly that one;
  // without, the newest within the 48-hour idempotency window. nullopt if there is none
  // (or the journal cannot be read).
  std::optional<journal::order_view> find_order_view(const std::string& till_id, const std::string& order_no,
                                                     const std::string& business_date);

  std::shared_ptr<pad_session> pad_for(const std::string& pad_id);
  // Next STAN for an acquirer/terminal: 1..999999, wrapping. Returns the counter name too.
  std::uint32_t next_stan(const std::string& acquirer, const std::string& terminal,
                          std::string& counter_name);

 private:
  std::mutex cfg_mu_;
  std::deque<config::server_config> cfg_kept_;  // every configuration in force so far
  std::atomic<const config::server_config*> cfg_now_{nullptr};
  std::atomic<std::shared_ptr<const key_module>> key_store_;
};

// Wraps journal::writer::submit as an awaitable that resumes on the caller's executor only
// after the batch is durable (or failed).
boost::asio::awaitable<status> commit(server_context& ctx, journal::batch b);

}  // namespace eftd::server
