// What every peer connection (POS, pad) does the same way: name the peer for logs, and run
// its writer and its session loop as two coroutines on the connection's strand, each with a
// completion handler that keeps the session alive, logs an exception and closes the session
// when the loop ends. Nothing that owns a socket is spawned without such a handler.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "accept_pacing.hpp"

namespace eftd::server {

inline std::string peer_name(const boost::asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// Session must offer close(). `kind` and `peer` only name the connection in logs.
template <class Session>
void start_connection(std::shared_ptr<Session> self, const boost::asio::any_io_executor& strand,
                      std::string kind, std::string peer, boost::asio::awaitable<void> writer,
                      boost::asio::awaitable<void> loop) {
  namespace asio = boost::asio;
  asio::co_spawn(strand, std::move(writer), [self, kind, peer](std::exception_ptr e) {
    if (e) spdlog::error("{} {}: writer stopped by an exception", kind, peer);
  });
  asio::co_spawn(strand, std::move(loop), [self, kind, peer](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{} {}: session ended by exception: {}", kind, peer, ex.what());
      }
    }
    self->close();
  });
}

// How many descriptors POS and pad connections may take together. The open-file limit is the
// process's: peers may use all of it but a reserve kept for what eftd cannot do without (the
// journal's files, the acquirer links, replication, the admin socket, back-office and metrics
// requests, log and TLS files). Without it, ten thousand tills leave the acquirer link no
// descriptor to reconnect with, and every sale fails.
class descriptor_budget {
 public:
  static constexpr std::uint64_t full_reserve = 256;

  // Limits under twice the full reserve keep half of it.
  explicit descriptor_budget(std::uint64_t open_file_limit)
      : limit_(open_file_limit),
        max_(open_file_limit >= 2 * full_reserve ? open_file_limit - full_reserve : open_file_limit / 2) {}

  // The process's budget, from its open-file limit when first asked (after main() raised it).
  static std::shared_ptr<descriptor_budget> of_process() {
    static const std::shared_ptr<descriptor_budget> budget = [] {
      rlimit r{};
      std::uint64_t limit = 1024;
      if (::getrlimit(RLIMIT_NOFILE, &r) == 0)
        limit =
            r.rlim_cur == RLIM_INFINITY ? (std::uint64_t{1} << 20) : static_cast<std::uint64_t>(r.rlim_cur);
      return std::make_shared<descriptor_budget>(limit);
    }();
    return budget;
  }

  bool take() {
    auto used = used_.load();
    do {
      if (used >= max_) return false;
    } while (!used_.compare_exchange_weak(used, used + 1));
    return true;
  }
  void give() { used_.fetch_sub(1); }

  std::uint64_t limit() const { return limit_; }
  std::uint64_t max() const { return max_; }

 private:
  std::uint64_t limit_, max_;
  std::atomic<std::uint64_t> used_{0};
};

// Why a connection was not admitted.
enum class refusal { none, listener_full, address_full, descriptors };

inline const char* refusal_text(refusal r) {
  switch (r) {
    case refusal::listener_full:
      return "the listener's max_connections is reached";
    case refusal::address_full:
      return "max_per_address is reached for this address";
    case refusal::descriptors:
      return "the open-file limit leaves no descriptor for another peer (raise it: LimitNOFILE)";
    case refusal::none:
      break;
  }
  return "admitted";
}

// How many connections a listener holds at once, in total and per peer address: a flood or
// a slowloris from one address cannot take every till's place. Every connection also spends
// one descriptor of the process's budget, shared by the listeners.
class connection_limits : public std::enable_shared_from_this<connection_limits> {
 public:
  connection_limits(std::uint32_t max_total, std::uint32_t max_per_address,
                    std::shared_ptr<descriptor_budget> budget = descriptor_budget::of_process())
      : max_total_(max_total), max_per_address_(max_per_address), budget_(std::move(budget)) {}

  struct admission {
    std::shared_ptr<void> slot;  // released when the last copy goes away; null when refused
    refusal why = refusal::none;
  };

  // A slot for one connection from `address`, or the reason there is none.
  admission admit(const std::string& address) {
    std::lock_guard lk(mu_);
    if (total_ >= max_total_) return {nullptr, refusal::listener_full};
    auto it = per_address_.find(address);
    if (it != per_address_.end() && it->second >= max_per_address_) return {nullptr, refusal::address_full};
    if (!budget_->take()) return {nullptr, refusal::descriptors};
    ++per_address_[address];
    ++total_;
    auto self = shared_from_this();
    return {std::shared_ptr<void>(static_cast<void*>(this),
                                  [self, address](void*) {
                                    std::lock_guard lk(self->mu_);
                                    --self->total_;
                                    if (--self->per_address_[address] == 0) self->per_address_.erase(address);
                                    self->budget_->give();
                                  }),
            refusal::none};
  }
  std::uint32_t open() {
    std::lock_guard lk(mu_);
    return total_;
  }

 private:
  std::mutex mu_;
  std::uint32_t max_total_, max_per_address_;
  std::shared_ptr<descriptor_budget> budget_;
  std::uint32_t total_ = 0;
  std::map<std::string, std::uint32_t> per_address_;
};

// Accepts connections until the acceptor is closed; each gets its own strand and a Session
// constructed from (socket, ctx), given its connection slot (Session::hold) and started. A
// connection over the limits is handed to `refuse` (which may write a last word) and closed.
template <class Session, class Context>
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, Context& ctx,
                                         std::string kind, std::shared_ptr<connection_limits> limits,
                                         std::function<void(boost::asio::ip::tcp::socket&)> refuse = {}) {
  namespace asio = boost::asio;
  // Connections already open, the journal and the acquirer links keep working while accept
  // fails; new peers wait in the backlog (accept_pacing.hpp).
  accept_failures failures(kind);
  report_pacer refusals;
  for (;;) {
    // A named strand, not a temporary inside the co_await: GCC 12 destroys such temporaries
    // twice, and a strand's reference count must never be decremented twice.
    auto strand = asio::make_strand(ctx.io);
    auto [ec, accepted] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    asio::ip::tcp::socket sock(std::move(accepted));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      if (failures.failed(ec)) {
        asio::steady_timer pause(acceptor.get_executor(), accept_pause);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      continue;
    }
    failures.accepted();
    boost::system::error_code opt_ec;
    sock.set_option(asio::ip::tcp::no_delay(true), opt_ec);
    auto ep = sock.remote_endpoint(opt_ec);
    const std::string address = opt_ec ? std::string("?") : ep.address().to_string();
    auto admitted = limits->admit(address);
    if (!admitted.slot) {
      // A flood is reported with a count, not line by line.
      if (refusals.happened()) {
        spdlog::warn("{} listener: connection from {} refused: {} ({} refused since the last report)", kind,
                     address, refusal_text(admitted.why), refusals.count());
        refusals.reported();
      }
      if (refuse) refuse(sock);
      // Closing with unread bytes makes the kernel send a reset, which can destroy the last
      // word before the peer reads it (a POS that sent its login at once): end our side, drop
      // what the peer already sent (bounded), then close.
      sock.shutdown(boost::asio::ip::tcp::socket::shutdown_send, opt_ec);
      sock.non_blocking(true, opt_ec);
      std::array<char, 4096> drain{};
      for (int i = 0; i < 16 && sock.read_some(boost::asio::buffer(drain), opt_ec) > 0; ++i) {
      }
      sock.close(opt_ec);
      continue;
    }
    auto session = std::make_shared<Session>(std::move(sock), ctx);
    session->hold(std::move(admitted.slot));
    session->start();
  }
}

}  // namespace eftd::server
