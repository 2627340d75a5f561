#include "eftd/acq/link.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <ctime>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/matching.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acq {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::as_tuple;
using asio::use_awaitable;
using strand_type = asio::strand<asio::any_io_executor>;

namespace {

// One request waiting for its response. The timer is both the response deadline and the
// wake-up: delivering an outcome cancels it.
struct pending_request {
  explicit pending_request(const strand_type& s) : timer(s) {}
  void complete(result<message> r) {
    if (outcome) return;
    outcome.emplace(std::move(r));
    timer.cancel();
  }
  asio::steady_timer timer;
  std::optional<result<message>> outcome;
};

// One TCP connection, optionally under TLS. Reader and writer coroutines hold it by shared_ptr,
// so a connection that has been replaced can finish its operations without touching its
// successor.
struct connection {
  connection(const strand_type& s, frame_codec codec, ssl::context* tls_ctx)
      : plain(s), reader(codec), idle(s) {
    if (tls_ctx) tls.emplace(s, *tls_ctx);
  }
  // The TCP socket underneath, whichever way the bytes travel.
  tcp::socket& socket() { return tls ? tls->next_layer() : plain; }
  tcp::socket plain;                            // unused under TLS
  std::optional<ssl::stream<tcp::socket>> tls;  // engaged: every byte goes through TLS
  frame_reader reader;
  bool any_frame_received = false;
  // Whole frames only: one frame is written completely before the next one starts, so
  // nothing (keep-alive or message) is ever interleaved inside another message.
  std::deque<secure_bytes> queue;
  bool writing = false;
  bool open = true;
  std::uint64_t keep_alives_seen = 0;
  // Echo tests: the last time a frame went either way, and the timer that waits for idleness
  // (cancelled when the connection closes, so the echo loop ends with it).
  std::chrono::steady_clock::time_point last_traffic = std::chrono::steady_clock::now();
  asio::steady_timer idle;
};

// Requests arriving while a connect is under way wait for that attempt instead of starting
// their own; the timer (never expiring) is cancelled when the attempt ends.
struct connect_attempt {
  explicit connect_attempt(const strand_type& s) : done(s) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer done;
  std::optional<status> outcome;
};

void wipe(bytes& b) {
  if (!b.empty()) secure_wipe(b.data(), b.size());
}

using io_result = std::tuple<boost::system::error_code, std::size_t>;

asio::awaitable<io_result> read_some(connection& c, asio::mutable_buffer b) {
  if (c.tls) co_return co_await c.tls->async_read_some(b, as_tuple(use_awaitable));
  co_return co_await c.plain.async_read_some(b, as_tuple(use_awaitable));
}

asio::awaitable<io_result> write_all(connection& c, asio::const_buffer b) {
  if (c.tls) co_return co_await asio::async_write(*c.tls, b, as_tuple(use_awaitable));
  co_return co_await asio::async_write(c.plain, b, as_tuple(use_awaitable));
}

// A fatal alert about our certificate: under TLS 1.3 the client's handshake ends before the
// host has checked the client certificate, so a refusal arrives as the first read's error.
// The host never accepted the connection, so it never read a request sent on it.
bool certificate_refused(const boost::system::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

// The client TLS context of a link: TLS 1.2+, the host verified against ca_file alone.
result<std::shared_ptr<ssl::context>> make_client_tls(const link_config& cfg) {
  const auto& t = cfg.tls;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  const auto bad = [&](std::string_view what, const std::string& file, const boost::system::error_code& ec) {
    return make_error("acq.tls_config",
                      fmt::format("acquirer {}: {} '{}': {}", cfg.name, what, file, ec.message()));
  };
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    return make_error("acq.tls_config", fmt::format("acquirer {}: cannot require TLS 1.2", cfg.name));
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  ctx->load_verify_file(t.ca_file, ec);
  if (ec) return bad("ca_file", t.ca_file, ec);
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return bad("verify mode for", t.ca_file, ec);
  if (t.cert_file.empty() != t.key_file.empty())
    return make_error(
        "acq.tls_config",
        fmt::format("acquirer {}: a client certificate needs both cert_file and key_file", cfg.name));
  if (!t.cert_file.empty()) {
    ctx->use_certificate_chain_file(t.cert_file, ec);
    if (ec) return bad("cert_file", t.cert_file, ec);
    ctx->use_private_key_file(t.key_file, ssl::context::pem, ec);
    if (ec) return bad("key_file", t.key_file, ec);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      return make_error("acq.tls_config",
                        fmt::format("acquirer {}: key_file '{}' does not match cert_file '{}'", cfg.name,
                                    t.key_file, t.cert_file));
  }
  return ctx;
}

// Names the certificate must carry for this connection: SNI plus host (or IP) verification.
bool set_peer_name(ssl::stream<tcp::socket>& stream, const std::string& name) {
  SSL* h = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(h);
  boost::system::error_code ec;
  (void)asio::ip::make_address(name, ec);
  if (!ec) return X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(h, name.c_str()) == 1 &&
         X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0) == 1;
}

asio::awaitable<boost::system::error_code> resolve_and_connect(tcp::socket& socket, std::string host,
                                                               std::uint16_t port) {
  tcp::resolver resolver{socket.get_executor()};
  auto [rec, endpoints] =
      co_await resolver.async_resolve(host, std::to_string(port), as_tuple(use_awaitable));
  if (rec) co_return rec;
  auto [cec, ep] = co_await asio::async_connect(socket, endpoints, as_tuple(use_awaitable));
  co_return cec;
}

// ISO 8583 transmission date-time (field 7): MMDDhhmmss in UTC.
std::string transmission_time() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  return fmt::format("{:02}{:02}{:02}{:02}{:02}", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

constexpr std::string_view sign_on_code = "001";
constexpr std::string_view echo_code = "301";

}  // namespace

// One endpoint of the link: its connection, the requests in flight on it, its backoff.
struct endpoint_state {
  endpoint_state(link_endpoint e) : ep(std::move(e)), where(fmt::format("{}:{}", ep.host, ep.port)) {}
  link_endpoint ep;
  std::string where;  // "host:port" for logs and errors
  std::shared_ptr<connection> conn;
  std::shared_ptr<connect_attempt> connecting;
  std::map<std::string, pending_request*> pending;
  link_stats stats;
  // Reconnect backoff: no connect attempt before `next_attempt`.
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point next_attempt{};
  std::string last_connect_error;
};

struct link::impl {
  impl(asio::any_io_executor ex, link_config c, const dialect& d, frame_codec fc,
       std::shared_ptr<ssl::context> tls)
      : strand(asio::make_strand(ex)), cfg(std::move(c)), dia(&d), codec(fc), tls_ctx(std::move(tls)) {
    endpoints.push_back(std::make_unique<endpoint_state>(link_endpoint{cfg.host, cfg.port}));
    for (const auto& e : cfg.extra_links) endpoints.push_back(std::make_unique<endpoint_state>(e));
  }

  strand_type strand;
  link_config cfg;
  const dialect* dia;
  frame_codec codec;
  std::shared_ptr<ssl::context> tls_ctx;  // null: plaintext
  // In configuration order; never resized after construction, so references stay valid.
  std::vector<std::unique_ptr<endpoint_state>> endpoints;
  std::atomic<bool> tracing{false};
  std::uint32_t network_stan = 0;
  // close() counts here at once and posts the close to the strand; a request that reaches the
  // strand first applies it itself, so a request made after close() returned never uses the
  // connection close() was meant to drop.
  std::atomic<std::uint64_t> close_requests{0};
  std::uint64_t closes_applied = 0;

  std::chrono::steady_clock::time_point now() const {
    return cfg.clock ? cfg.clock() : std::chrono::steady_clock::now();
  }

  // A link-originated 0800: its own STAN sequence (08xx keys are 11 + 7, not per terminal).
  message network_request(std::string_view code) {
    network_stan = network_stan % 999'999 + 1;
    message m{"0800"};
    m.set(7, transmission_time());
    m.set(11, fmt::format("{:06}", network_stan));
    m.set(70, std::string{code});
    return m;
  }

  void trace(const endpoint_state& e, std::string_view direction, const message& m) const {
    if (tracing.load(std::memory_order_relaxed))
      spdlog::info("acq link {} ({}): trace {} {}", cfg.name, e.where, direction, m.describe(*dia));
  }

  bool in_flight(const std::string& key) const {
    for (const auto& e : endpoints)
      if (e->pending.count(key)) return true;
    return false;
  }

  // ---- everything below runs on `strand` ----

  static void spawn(const std::shared_ptr<link>& self, asio::awaitable<void> op, const char* what) {
    asio::co_spawn(self->impl_->strand, std::move(op),
                   [name = self->impl_->cfg.name, what](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("acq link {}: {} ended with an exception: {}", name, what, ex.what());
                     }
                   });
  }

  // Closes `c`; if it is the endpoint's current connection, every request in flight on it
  // fails with `code`.
  static void fail(const std::shared_ptr<link>& self, endpoint_state& e, const std::shared_ptr<connection>& c,
                   std::string_view code, const std::string& why) {
    auto& s = *self->impl_;
    if (c->open) {
      c->open = false;
      c->idle.cancel();
      boost::system::error_code ignored;
      c->socket().shutdown(tcp::socket::shutdown_both, ignored);
      c->socket().close(ignored);
    }
    if (e.conn != c) return;
    e.conn.reset();
    spdlog::warn("acq link {}: connection to {} lost ({}), {} request(s) in flight failed", s.cfg.name,
                 e.where, why, e.pending.size());
    auto victims = std::move(e.pending);
    e.pending.clear();
    for (auto& [key, p] : victims) p->complete(make_error(std::string{code}, why));
  }

  // A failed connect (or sign-on, or a host refusing our certificate) starts or doubles the
  // endpoint's backoff.
  static void note_connect_failure(impl& s, endpoint_state& e, const std::string& why) {
    ++e.stats.connect_failures;
    e.backoff = e.backoff.count() == 0 ? s.cfg.reconnect_backoff_initial
                                       : std::min(e.backoff * 2, s.cfg.reconnect_backoff_max);
    e.next_attempt = s.now() + e.backoff;
    e.last_connect_error = why;
    if (e.backoff.count() > 0)
      spdlog::warn("acq link {}: {}; next connect attempt to {} in {} ms", s.cfg.name, why, e.where,
                   e.backoff.count());
  }

  static asio::awaitable<status> connect(std::shared_ptr<link> self, endpoint_state& e) {
    auto& s = *self->impl_;
    using namespace asio::experimental::awaitable_operators;
    auto c = std::make_shared<connection>(s.strand, s.codec, s.tls_ctx.get());
    asio::steady_timer deadline{s.strand};
    deadline.expires_after(s.cfg.connect_timeout);
    const auto& where = e.where;
    const auto timed_out = [&](std::string_view step) {
      boost::system::error_code ignored;
      c->socket().close(ignored);
      return make_error("acq.connect_failed", fmt::format("{} {} timed out after {} ms", step, where,
                                                          s.cfg.connect_timeout.count()));
    };
    auto r = co_await (resolve_and_connect(c->socket(), e.ep.host, e.ep.port) ||
                       deadline.async_wait(as_tuple(use_awaitable)));
    if (r.index() == 1) co_return timed_out("connect to");
    if (auto ec = std::get<0>(r))
      co_return make_error("acq.connect_failed",
                           fmt::format("connect to {} failed: {}", where, ec.message()));
    boost::system::error_code ignored;
    c->socket().set_option(tcp::no_delay(true), ignored);
    if (c->tls) {
      const std::string& name = s.cfg.tls.server_name.empty() ? e.ep.host : s.cfg.tls.server_name;
      if (!set_peer_name(*c->tls, name)) {
        c->socket().close(ignored);
        co_return make_error("acq.connect_failed",
                             fmt::format("TLS to {}: cannot verify against the name '{}'", where, name));
      }
      // The same deadline bounds the handshake: connect_timeout covers the whole way in.
      auto h = co_await (c->tls->async_handshake(ssl::stream_base::client, as_tuple(use_awaitable)) ||
                         deadline.async_wait(as_tuple(use_awaitable)));
      if (h.index() == 1) co_return timed_out("TLS handshake with");
      if (auto [hec] = std::get<0>(h); hec) {
        c->socket().close(ignored);
        co_return make_error("acq.connect_failed",
                             fmt::format("TLS handshake with {} failed: {}", where, hec.message()));
      }
    }
    e.conn = c;
    ++e.stats.connects;
    spdlog::info("acq link {}: connected to {}{}", s.cfg.name, where, c->tls ? " (TLS)" : "");
    spawn(self, read_loop(self, e, c), "reader");
    if (s.cfg.sign_on) {
      // Requests wait for the connect attempt (ensure_connected), so the sign-on goes first.
      auto sign_on = s.network_request(sign_on_code);
      auto answer = co_await exchange(self, e, c, std::move(sign_on));
      if (!answer || answer->get_or(39, "") != "00") {
        const auto why =
            answer ? fmt::format("sign-on refused with response code {}", answer->get_or(39, "(none)"))
                   : fmt::format("sign-on failed: {}", answer.err().message);
        fail(self, e, c, "acq.connect_failed", why);
        co_return make_error("acq.connect_failed", fmt::format("{}: {}", where, why));
      }
      ++e.stats.sign_ons;
      spdlog::info("acq link {}: signed on at {}", s.cfg.name, where);
    }
    if (s.cfg.echo_interval.count() > 0) spawn(self, echo_loop(self, e, c), "echo");
    co_return status{};
  }

  // Sends 0800/301 whenever the connection has been quiet for echo_interval. An unanswered
  // echo means the host (or the path to it) is gone: drop the connection now rather than let
  // the next transaction find out.
  static asio::awaitable<void> echo_loop(std::shared_ptr<link> self, endpoint_state& e,
                                         std::shared_ptr<connection> c) {
    auto& s = *self->impl_;
    const auto interval = s.cfg.echo_interval;
    while (c->open && e.conn == c) {
      c->idle.expires_at(c->last_traffic + interval);
      // Woken by the deadline or by close(); the checks below tell which.
      (void)co_await c->idle.async_wait(as_tuple(use_awaitable));
      if (!c->open || e.conn != c) co_return;
      if (std::chrono::steady_clock::now() < c->last_traffic + interval) continue;
      ++e.stats.echoes_sent;
      auto echo = s.network_request(echo_code);
      auto answer = co_await exchange(self, e, c, std::move(echo));
      if (!c->open || e.conn != c) co_return;
      if (!answer) {
        spdlog::warn("acq link {}: echo test on {} failed ({}): dropping the connection", s.cfg.name, e.where,
                     answer.err().code);
        fail(self, e, c, "acq.disconnected", fmt::format("echo test failed: {}", answer.err().message));
        co_return;
      }
    }
  }

  static asio::awaitable<status> ensure_connected(std::shared_ptr<link> self, endpoint_state& e) {
    auto& s = *self->impl_;
    // An attempt under way (connect + sign-on) comes first: the connection is not ready for
    // requests until it ends.
    if (auto attempt = e.connecting) {
      if (!attempt->outcome) co_await attempt->done.async_wait(as_tuple(use_awaitable));
      if (attempt->outcome) co_return *attempt->outcome;
      co_return make_error("acq.connect_failed", "cancelled while waiting for the connection");
    }
    if (e.conn) co_return status{};
    const auto now = s.now();
    if (now < e.next_attempt) {
      ++e.stats.backoff_refusals;
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(e.next_attempt - now);
      co_return make_error("acq.connect_failed",
                           fmt::format("{} unreachable ({}); next connect attempt in {} ms", e.where,
                                       e.last_connect_error, wait.count()));
    }
    auto attempt = std::make_shared<connect_attempt>(s.strand);
    e.connecting = attempt;
    auto st = co_await connect(self, e);
    if (st) {
      e.backoff = std::chrono::milliseconds{0};
      e.next_attempt = {};
    } else {
      note_connect_failure(s, e, st.err().message);
    }
    attempt->outcome = st;
    if (e.connecting == attempt) e.connecting.reset();
    attempt->done.cancel();
    co_return st;
  }

  static void enqueue(const std::shared_ptr<link>& self, endpoint_state& e,
                      const std::shared_ptr<connection>& c, secure_bytes frame) {
    c->queue.push_back(std::move(frame));
    if (c->writing) return;
    c->writing = true;
    spawn(self, write_loop(self, e, c), "writer");
  }

  static asio::awaitable<void> write_loop(std::shared_ptr<link> self, endpoint_state& e,
                                          std::shared_ptr<connection> c) {
    while (c->open && !c->queue.empty()) {
      const auto& front = c->queue.front();
      const asio::const_buffer buf{front.view().data(), front.size()};
      auto [ec, n] = co_await write_all(*c, buf);
      c->queue.pop_front();
      c->last_traffic = std::chrono::steady_clock::now();
      if (ec) {
        fail(self, e, c, "acq.disconnected", fmt::format("write failed: {}", ec.message()));
        break;
      }
    }
    // Frames still queued on a dead connection belong to requests that are failing now.
    c->queue.clear();
    c->writing = false;
  }

  static asio::awaitable<void> read_loop(std::shared_ptr<link> self, endpoint_state& e,
                                         std::shared_ptr<connection> c) {
    auto& s = *self->impl_;
    std::array<std::uint8_t, 4096> buf;
    for (;;) {
      const asio::mutable_buffer into{buf.data(), buf.size()};
      auto [ec, n] = co_await read_some(*c, into);
      if (ec) {
        if (c->tls && !c->any_frame_received && certificate_refused(ec)) {
          const auto why =
              fmt::format("TLS: {} refused the connection: {}{}", e.where, ec.message(),
                          s.cfg.tls.cert_file.empty() ? " (no client certificate configured)" : "");
          const bool current = e.conn == c;
          fail(self, e, c, "acq.connect_failed", why);
          // During a sign-on the connect attempt itself records the failure.
          if (current && !e.connecting) note_connect_failure(s, e, why);
          co_return;
        }
        fail(self, e, c, "acq.disconnected",
             ec == asio::error::eof ? std::string("connection closed by the host") : ec.message());
        co_return;
      }
      c->last_traffic = std::chrono::steady_clock::now();
      c->reader.feed(byte_view{buf.data(), n});
      secure_wipe(buf.data(), n);
      for (;;) {
        auto frame = c->reader.next();
        if (!frame) {
          ++e.stats.decode_errors;
          spdlog::error("acq link {}: framing error from {}: {}: {}; dropping the connection", s.cfg.name,
                        e.where, frame.err().code, frame.err().message);
          fail(self, e, c, "acq.decode_error", fmt::format("framing: {}", frame.err().message));
          co_return;
        }
        if (!*frame) break;
        c->any_frame_received = true;
        deliver(self, e, c, **frame);
        wipe(**frame);
      }
      e.stats.keep_alives += c->reader.keep_alives() - c->keep_alives_seen;
      c->keep_alives_seen = c->reader.keep_alives();
    }
  }

  static void deliver(const std::shared_ptr<link>& self, endpoint_state& e,
                      const std::shared_ptr<connection>& c, byte_view payload) {
    auto& s = *self->impl_;
    unpack_info info;
    auto m = unpack_prefix(*s.dia, payload, info);
    std::optional<error> bad;
    if (!m)
      bad = m.err();
    else if (info.consumed != payload.size())
      bad = make_error("iso8583.trailing_bytes",
                       fmt::format("{} bytes after the last field", payload.size() - info.consumed));
    if (bad) {
      ++e.stats.decode_errors;
      // The key fields (7, 11, 41) come early in the bitmap; if they decoded, the broken
      // response can still fail its request at once instead of leaving it to time out.
      const message& basis = m ? *m : info.partial;
      auto key = response_match_key(basis);
      auto it = key ? e.pending.find(*key) : e.pending.end();
      if (it == e.pending.end()) {
        spdlog::error("acq link {}: undecodable message from {} dropped: {}: {}", s.cfg.name, e.where,
                      bad->code, bad->message);
        return;
      }
      spdlog::error("acq link {}: undecodable response to {}: {}: {}", s.cfg.name, *key, bad->code,
                    bad->message);
      pending_request* p = it->second;
      e.pending.erase(it);
      p->complete(make_error("acq.decode_error", fmt::format("{}: {}", bad->code, bad->message)));
      return;
    }
    if (s.cfg.mac) {
      if (auto ok = verify_mac(*m, payload, s.cfg.mac); !ok) {
        // Not trusted: no request is completed from it, so its request times out (in doubt).
        ++e.stats.bad_macs;
        auto key = response_match_key(*m);
        spdlog::warn("acq link {}: acq.bad_mac: {} from {} dropped (key {}): {}", s.cfg.name, m->mti(),
                     e.where, key ? *key : std::string("?"), ok.err().message);
        return;
      }
      m->erase(mac_field(*m));
    }
    s.trace(e, "<-", *m);
    if (!is_response_mti(m->mti())) {
      if ((m->mti() == "0800" || m->mti() == "0801") && m->get_or(70, "") == echo_code) {
        answer_echo(self, e, c, *m);
        return;
      }
      ++e.stats.unmatched;
      spdlog::warn("acq link {}: unsolicited message from {} dropped: {}", s.cfg.name, e.where,
                   m->describe(*s.dia));
      return;
    }
    auto key = response_match_key(*m);
    if (!key) {
      ++e.stats.unmatched;
      spdlog::warn("acq link {}: unmatchable response dropped ({}): {}", s.cfg.name, key.err().message,
                   m->describe(*s.dia));
      return;
    }
    // Only requests sent on this endpoint: a response never completes a request that went out
    // on another connection.
    auto it = e.pending.find(*key);
    if (it == e.pending.end()) {
      ++e.stats.unmatched;
      spdlog::warn("acq link {}: late or unknown response from {} dropped: {}", s.cfg.name, e.where,
                   m->describe(*s.dia));
      return;
    }
    pending_request* p = it->second;
    e.pending.erase(it);
    ++e.stats.matched;
    p->complete(std::move(*m));
  }

  // The host's echo test gets exactly one 0810. The 0810 is a response: the host never answers
  // it, and the link never answers the host's 0810s, so no keep-alive ping-pong can start.
  static void answer_echo(const std::shared_ptr<link>& self, endpoint_state& e,
                          const std::shared_ptr<connection>& c, const message& echo) {
    auto& s = *self->impl_;
    message reply{"0810"};
    for (int f : {7, 11, 41, 70})
      if (auto v = echo.get(f)) reply.set(f, std::string{*v});
    reply.set(39, "00");
    auto packed = pack(*s.dia, reply);
    auto framed = packed ? s.codec.encode(*packed) : result<bytes>{packed.err()};
    if (!framed) {
      spdlog::error("acq link {}: cannot answer the host's echo test: {}", s.cfg.name, framed.err().message);
      return;
    }
    s.trace(e, "->", reply);
    ++e.stats.echoes_answered;
    enqueue(self, e, c, secure_bytes{*framed});
  }

  // Sends `req` on `c` and waits for its response (or the response deadline). No connecting:
  // the caller picked the connection.
  static asio::awaitable<result<message>> exchange(std::shared_ptr<link> self, endpoint_state& e,
                                                   std::shared_ptr<connection> c, message req) {
    auto& s = *self->impl_;
    auto key = request_match_key(req);
    if (!key) co_return make_error("acq.bad_request", key.err().message);
    // The signed copy goes on the wire; `req` (without the MAC) is what the trace shows.
    message signed_req = req;
    if (s.cfg.mac) {
      if (auto ok = add_mac(*s.dia, signed_req, s.cfg.mac); !ok)
        co_return make_error("acq.encode_error", fmt::format("MAC: {}: {}", ok.err().code, ok.err().message));
    }
    auto packed = pack(*s.dia, signed_req);
    if (!packed)
      co_return make_error("acq.encode_error",
                           fmt::format("{}: {}", packed.err().code, packed.err().message));
    auto framed = s.codec.encode(*packed);
    wipe(*packed);
    if (!framed)
      co_return make_error("acq.encode_error",
                           fmt::format("{}: {}", framed.err().code, framed.err().message));
    secure_bytes wire{*framed};
    wipe(*framed);
    if (s.in_flight(*key))
      co_return make_error("acq.duplicate_request", fmt::format("a request with key {} is in flight", *key));
    if (!c->open || e.conn != c)
      co_return make_error("acq.connect_failed",
                           fmt::format("the connection to {} dropped before the request was sent", e.where));

    pending_request p{s.strand};
    e.pending.emplace(*key, &p);
    pending_guard guard{e, *key, &p};
    s.trace(e, "->", req);
    enqueue(self, e, c, std::move(wire));
    ++e.stats.sent;
    p.timer.expires_after(s.cfg.response_timeout);
    boost::system::error_code ec;
    if (!p.outcome) std::tie(ec) = co_await p.timer.async_wait(as_tuple(use_awaitable));
    if (p.outcome) co_return std::move(*p.outcome);
    if (!ec) {
      ++e.stats.timeouts;
      spdlog::warn("acq link {}: no response from {} within {} ms to {}", s.cfg.name, e.where,
                   s.cfg.response_timeout.count(), req.describe(*s.dia));
      co_return make_error("acq.timeout", fmt::format("no response within {} ms (key {})",
                                                      s.cfg.response_timeout.count(), *key));
    }
    co_return make_error("acq.cancelled", "the request was cancelled while waiting for its response");
  }

  // Removes a request's entry however its coroutine ends (even if its frame is destroyed).
  struct pending_guard {
    endpoint_state& e;
    const std::string& key;
    pending_request* p;
    ~pending_guard() {
      auto it = e.pending.find(key);
      if (it != e.pending.end() && it->second == p) e.pending.erase(it);
    }
  };

  static void apply_close(const std::shared_ptr<link>& self) {
    auto& s = *self->impl_;
    const auto requested = s.close_requests.load(std::memory_order_acquire);
    if (requested == s.closes_applied) return;
    s.closes_applied = requested;
    for (auto& e : s.endpoints)
      if (auto c = e->conn) fail(self, *e, c, "acq.disconnected", "closed by the caller");
  }

  static asio::awaitable<void> run_request(std::shared_ptr<link> self, message req,
                                           std::optional<result<message>>* out) {
    auto& s = *self->impl_;
    apply_close(self);
    // Refused before connecting when the message could never be sent.
    auto key = request_match_key(req);
    if (!key) {
      out->emplace(make_error("acq.bad_request", key.err().message));
      co_return;
    }
    auto packed = pack(*s.dia, req);
    if (!packed) {
      out->emplace(
          make_error("acq.encode_error", fmt::format("{}: {}", packed.err().code, packed.err().message)));
      co_return;
    }
    wipe(*packed);
    if (s.in_flight(*key)) {
      out->emplace(
          make_error("acq.duplicate_request", fmt::format("a request with key {} is in flight", *key)));
      co_return;
    }
    // Primary first, then each further endpoint; only a request that was certainly not read
    // by the host (acq.connect_failed) moves on to the next one.
    std::vector<std::string> reasons;
    for (std::size_t i = 0; i < s.endpoints.size(); ++i) {
      auto& e = *s.endpoints[i];
      auto st = co_await ensure_connected(self, e);
      if (!st) {
        reasons.push_back(st.err().message);
        continue;
      }
      auto c = e.conn;
      if (!c) {
        reasons.push_back(fmt::format("the connection to {} dropped before the request was sent", e.where));
        continue;
      }
      const bool last = i + 1 == s.endpoints.size();
      // The last endpoint may have the caller's message; the others send a copy, so a
      // refused attempt leaves the original for the next endpoint (copies are wiped too).
      message attempt;
      if (last)
        attempt = std::move(req);
      else
        attempt = req;
      auto answer = co_await exchange(self, e, c, std::move(attempt));
      if (!answer && answer.err().code == "acq.connect_failed") {
        reasons.push_back(answer.err().message);
        continue;
      }
      if (i > 0)
        spdlog::debug("acq link {}: request carried by {} (endpoint {} of {})", s.cfg.name, e.where, i + 1,
                      s.endpoints.size());
      out->emplace(std::move(answer));
      co_return;
    }
    if (reasons.size() == 1) {
      out->emplace(make_error("acq.connect_failed", std::move(reasons.front())));
      co_return;
    }
    std::string all;
    for (const auto& r : reasons) all += (all.empty() ? "" : " | ") + r;
    out->emplace(make_error("acq.connect_failed", fmt::format("no link can take the request: {}", all)));
  }

  static link_stats sum(const std::vector<std::unique_ptr<endpoint_state>>& eps) {
    link_stats t;
    for (const auto& e : eps) {
      const auto& c = e->stats;
      t.connects += c.connects;
      t.sent += c.sent;
      t.matched += c.matched;
      t.unmatched += c.unmatched;
      t.keep_alives += c.keep_alives;
      t.timeouts += c.timeouts;
      t.decode_errors += c.decode_errors;
      t.bad_macs += c.bad_macs;
      t.sign_ons += c.sign_ons;
      t.echoes_sent += c.echoes_sent;
      t.echoes_answered += c.echoes_answered;
      t.connect_failures += c.connect_failures;
      t.backoff_refusals += c.backoff_refusals;
    }
    return t;
  }

  static asio::awaitable<link_stats> snapshot(std::shared_ptr<link> self) {
    co_return sum(self->impl_->endpoints);
  }

  static asio::awaitable<std::vector<endpoint_stats>> endpoint_snapshot(std::shared_ptr<link> self) {
    std::vector<endpoint_stats> out;
    for (const auto& e : self->impl_->endpoints) out.push_back({e->where, e->conn != nullptr, e->stats});
    co_return out;
  }
};

status check_tls(const link_config& cfg) {
  if (!cfg.tls.enabled()) return {};
  auto t = make_client_tls(cfg);
  if (!t) return t.err();
  return {};
}

result<std::shared_ptr<link>> link::create(asio::any_io_executor ex, link_config cfg) {
  if (!find_dialect(cfg.dialect))
    return make_error("acq.unknown_dialect",
                      fmt::format("acquirer {}: unknown dialect '{}'", cfg.name, cfg.dialect));
  auto codec = frame_codec::create(cfg.framing);
  if (!codec) return codec.err();
  std::shared_ptr<ssl::context> tls;
  if (cfg.tls.enabled()) {
    auto t = make_client_tls(cfg);
    if (!t) return t.err();
    tls = std::move(*t);
  }
  auto l = std::make_shared<link>(private_tag{}, std::move(ex), std::move(cfg));
  l->impl_->tls_ctx = std::move(tls);
  return l;
}

link::link(private_tag, asio::any_io_executor ex, link_config cfg) {
  const dialect* d = find_dialect(cfg.dialect);
  auto codec = frame_codec::create(cfg.framing);
  assert(d && codec);
  impl_ = std::make_unique<impl>(std::move(ex), std::move(cfg), *d, *codec, nullptr);
}

link::~link() = default;

asio::awaitable<result<message>> link::request(message req) {
  std::optional<result<message>> out;
  co_await asio::co_spawn(impl_->strand, impl::run_request(shared_from_this(), std::move(req), &out),
                          use_awaitable);
  if (!out) co_return make_error("acq.cancelled", "the request ended without an outcome");
  co_return std::move(*out);
}

void link::close() {
  impl_->close_requests.fetch_add(1, std::memory_order_release);
  asio::post(impl_->strand, [self = shared_from_this()] { impl::apply_close(self); });
}

void link::set_trace(bool on) noexcept {
  impl_->tracing.store(on, std::memory_order_relaxed);
}

bool link::trace() const noexcept {
  return impl_->tracing.load(std::memory_order_relaxed);
}

const link_config& link::config() const noexcept {
  return impl_->cfg;
}

asio::awaitable<link_stats> link::stats() {
  co_return co_await asio::co_spawn(impl_->strand, impl::snapshot(shared_from_this()), use_awaitable);
}

asio::awaitable<std::vector<endpoint_stats>> link::per_endpoint() {
  co_return co_await asio::co_spawn(impl_->strand, impl::endpoint_snapshot(shared_from_this()),
                                    use_awaitable);
}

}  // namespace eftd::acq
