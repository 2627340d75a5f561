#include "eftd/acq/link.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <ctime>
#include <deque>
#include <map>
#include <optional>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/matching.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acq {

namespace asio = boost::asio;
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

// One TCP connection. Reader and writer coroutines hold it by shared_ptr, so a connection that
// has been replaced can finish its operations without touching its successor.
struct connection {
  connection(const strand_type& s, frame_codec codec) : socket(s), reader(codec), idle(s) {}
  tcp::socket socket;
  frame_reader reader;
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

struct link::impl {
  impl(asio::any_io_executor ex, link_config c, const dialect& d, frame_codec fc)
      : strand(asio::make_strand(ex)), cfg(std::move(c)), dia(&d), codec(fc) {}

  strand_type strand;
  link_config cfg;
  const dialect* dia;
  frame_codec codec;
  std::shared_ptr<connection> conn;
  std::shared_ptr<connect_attempt> connecting;
  std::map<std::string, pending_request*> pending;
  link_stats stats;
  std::atomic<bool> tracing{false};
  // Reconnect backoff: no connect attempt before `next_attempt`.
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point next_attempt{};
  std::string last_connect_error;
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

  void trace(std::string_view direction, const message& m) const {
    if (tracing.load(std::memory_order_relaxed))
      spdlog::info("acq link {}: trace {} {}", cfg.name, direction, m.describe(*dia));
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

  // Closes `c`; if it is the current connection, every request in flight fails with `code`.
  static void fail(const std::shared_ptr<link>& self, const std::shared_ptr<connection>& c,
                   std::string_view code, const std::string& why) {
    auto& s = *self->impl_;
    if (c->open) {
      c->open = false;
      c->idle.cancel();
      boost::system::error_code ignored;
      c->socket.shutdown(tcp::socket::shutdown_both, ignored);
      c->socket.close(ignored);
    }
    if (s.conn != c) return;
    s.conn.reset();
    spdlog::warn("acq link {}: connection to {}:{} lost ({}), {} request(s) in flight failed", s.cfg.name,
                 s.cfg.host, s.cfg.port, why, s.pending.size());
    auto victims = std::move(s.pending);
    s.pending.clear();
    for (auto& [key, p] : victims) p->complete(make_error(std::string{code}, why));
  }

  static asio::awaitable<status> connect(std::shared_ptr<link> self) {
    auto& s = *self->impl_;
    using namespace asio::experimental::awaitable_operators;
    auto c = std::make_shared<connection>(s.strand, s.codec);
    asio::steady_timer deadline{s.strand};
    deadline.expires_after(s.cfg.connect_timeout);
    auto r = co_await (resolve_and_connect(c->socket, s.cfg.host, s.cfg.port) ||
                       deadline.async_wait(as_tuple(use_awaitable)));
    const auto where = fmt::format("{}:{}", s.cfg.host, s.cfg.port);
    if (r.index() == 1) {
      boost::system::error_code ignored;
      c->socket.close(ignored);
      co_return make_error("acq.connect_failed", fmt::format("connect to {} timed out after {} ms", where,
                                                             s.cfg.connect_timeout.count()));
    }
    if (auto ec = std::get<0>(r))
      co_return make_error("acq.connect_failed",
                           fmt::format("connect to {} failed: {}", where, ec.message()));
    boost::system::error_code ignored;
    c->socket.set_option(tcp::no_delay(true), ignored);
    s.conn = c;
    ++s.stats.connects;
    spdlog::info("acq link {}: connected to {}", s.cfg.name, where);
    spawn(self, read_loop(self, c), "reader");
    if (s.cfg.sign_on) {
      // Requests wait for the connect attempt (ensure_connected), so the sign-on goes first.
      auto sign_on = s.network_request(sign_on_code);
      auto answer = co_await exchange(self, c, std::move(sign_on));
      if (!answer || answer->get_or(39, "") != "00") {
        const auto why =
            answer ? fmt::format("sign-on refused with response code {}", answer->get_or(39, "(none)"))
                   : fmt::format("sign-on failed: {}", answer.err().message);
        fail(self, c, "acq.connect_failed", why);
        co_return make_error("acq.connect_failed", fmt::format("{}: {}", where, why));
      }
      ++s.stats.sign_ons;
      spdlog::info("acq link {}: signed on", s.cfg.name);
    }
    if (s.cfg.echo_interval.count() > 0) spawn(self, echo_loop(self, c), "echo");
    co_return status{};
  }

  // Sends 0800/301 whenever the connection has been quiet for echo_interval. An unanswered
  // echo means the host (or the path to it) is gone: drop the connection now rather than let
  // the next transaction find out.
  static asio::awaitable<void> echo_loop(std::shared_ptr<link> self, std::shared_ptr<connection> c) {
    auto& s = *self->impl_;
    const auto interval = s.cfg.echo_interval;
    while (c->open && s.conn == c) {
      c->idle.expires_at(c->last_traffic + interval);
      // Woken by the deadline or by close(); the checks below tell which.
      (void)co_await c->idle.async_wait(as_tuple(use_awaitable));
      if (!c->open || s.conn != c) co_return;
      if (std::chrono::steady_clock::now() < c->last_traffic + interval) continue;
      ++s.stats.echoes_sent;
      auto echo = s.network_request(echo_code);
      auto answer = co_await exchange(self, c, std::move(echo));
      if (!c->open || s.conn != c) co_return;
      if (!answer) {
        spdlog::warn("acq link {}: echo test failed ({}): dropping the connection", s.cfg.name,
                     answer.err().code);
        fail(self, c, "acq.disconnected", fmt::format("echo test failed: {}", answer.err().message));
        co_return;
      }
    }
  }

  static asio::awaitable<status> ensure_connected(std::shared_ptr<link> self) {
    auto& s = *self->impl_;
    // An attempt under way (connect + sign-on) comes first: the connection is not ready for
    // requests until it ends.
    if (auto attempt = s.connecting) {
      if (!attempt->outcome) co_await attempt->done.async_wait(as_tuple(use_awaitable));
      if (attempt->outcome) co_return *attempt->outcome;
      co_return make_error("acq.connect_failed", "cancelled while waiting for the connection");
    }
    if (s.conn) co_return status{};
    const auto now = s.now();
    if (now < s.next_attempt) {
      ++s.stats.backoff_refusals;
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(s.next_attempt - now);
      co_return make_error("acq.connect_failed",
                           fmt::format("{}:{} unreachable ({}); next connect attempt in {} ms", s.cfg.host,
                                       s.cfg.port, s.last_connect_error, wait.count()));
    }
    auto attempt = std::make_shared<connect_attempt>(s.strand);
    s.connecting = attempt;
    auto st = co_await connect(self);
    if (st) {
      s.backoff = std::chrono::milliseconds{0};
      s.next_attempt = {};
    } else {
      ++s.stats.connect_failures;
      s.backoff = s.backoff.count() == 0 ? s.cfg.reconnect_backoff_initial
                                         : std::min(s.backoff * 2, s.cfg.reconnect_backoff_max);
      s.next_attempt = s.now() + s.backoff;
      s.last_connect_error = st.err().message;
      if (s.backoff.count() > 0)
        spdlog::warn("acq link {}: {}; next connect attempt in {} ms", s.cfg.name, st.err().message,
                     s.backoff.count());
    }
    attempt->outcome = st;
    if (s.connecting == attempt) s.connecting.reset();
    attempt->done.cancel();
    co_return st;
  }

  static void enqueue(const std::shared_ptr<link>& self, const std::shared_ptr<connection>& c,
                      secure_bytes frame) {
    c->queue.push_back(std::move(frame));
    if (c->writing) return;
    c->writing = true;
    spawn(self, write_loop(self, c), "writer");
  }

  static asio::awaitable<void> write_loop(std::shared_ptr<link> self, std::shared_ptr<connection> c) {
    while (c->open && !c->queue.empty()) {
      const auto& front = c->queue.front();
      auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(front.view().data(), front.size()),
                                                as_tuple(use_awaitable));
      c->queue.pop_front();
      c->last_traffic = std::chrono::steady_clock::now();
      if (ec) {
        fail(self, c, "acq.disconnected", fmt::format("write failed: {}", ec.message()));
        break;
      }
    }
    // Frames still queued on a dead connection belong to requests that are failing now.
    c->queue.clear();
    c->writing = false;
  }

  static asio::awaitable<void> read_loop(std::shared_ptr<link> self, std::shared_ptr<connection> c) {
    auto& s = *self->impl_;
    std::array<std::uint8_t, 4096> buf;
    for (;;) {
      auto [ec, n] = co_await c->socket.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
      if (ec) {
        fail(self, c, "acq.disconnected",
             ec == asio::error::eof ? std::string("connection closed by the host") : ec.message());
        co_return;
      }
      c->last_traffic = std::chrono::steady_clock::now();
      c->reader.feed(byte_view{buf.data(), n});
      secure_wipe(buf.data(), n);
      for (;;) {
        auto frame = c->reader.next();
        if (!frame) {
          ++s.stats.decode_errors;
          spdlog::error("acq link {}: framing error {}: {}; dropping the connection", s.cfg.name,
                        frame.err().code, frame.err().message);
          fail(self, c, "acq.decode_error", fmt::format("framing: {}", frame.err().message));
          co_return;
        }
        if (!*frame) break;
        deliver(self, c, **frame);
        wipe(**frame);
      }
      s.stats.keep_alives += c->reader.keep_alives() - c->keep_alives_seen;
      c->keep_alives_seen = c->reader.keep_alives();
    }
  }

  static void deliver(const std::shared_ptr<link>& self, const std::shared_ptr<connection>& c,
                      byte_view payload) {
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
      ++s.stats.decode_errors;
      // The key fields (7, 11, 41) come early in the bitmap; if they decoded, the broken
      // response can still fail its request at once instead of leaving it to time out.
      const message& basis = m ? *m : info.partial;
      auto key = response_match_key(basis);
      auto it = key ? s.pending.find(*key) : s.pending.end();
      if (it == s.pending.end()) {
        spdlog::error("acq link {}: undecodable message dropped: {}: {}", s.cfg.name, bad->code,
                      bad->message);
        return;
      }
      spdlog::error("acq link {}: undecodable response to {}: {}: {}", s.cfg.name, *key, bad->code,
                    bad->message);
      pending_request* p = it->second;
      s.pending.erase(it);
      p->complete(make_error("acq.decode_error", fmt::format("{}: {}", bad->code, bad->message)));
      return;
    }
    s.trace("<-", *m);
    if (!is_response_mti(m->mti())) {
      if ((m->mti() == "0800" || m->mti() == "0801") && m->get_or(70, "") == echo_code) {
        answer_echo(self, c, *m);
        return;
      }
      ++s.stats.unmatched;
      spdlog::warn("acq link {}: unsolicited message from the host dropped: {}", s.cfg.name,
                   m->describe(*s.dia));
      return;
    }
    auto key = response_match_key(*m);
    if (!key) {
      ++s.stats.unmatched;
      spdlog::warn("acq link {}: unmatchable response dropped ({}): {}", s.cfg.name, key.err().message,
                   m->describe(*s.dia));
      return;
    }
    auto it = s.pending.find(*key);
    if (it == s.pending.end()) {
      ++s.stats.unmatched;
      spdlog::warn("acq link {}: late or unknown response dropped: {}", s.cfg.name, m->describe(*s.dia));
      return;
    }
    pending_request* p = it->second;
    s.pending.erase(it);
    ++s.stats.matched;
    p->complete(std::move(*m));
  }

  // The host's echo test gets exactly one 0810. The 0810 is a response: the host never answers
  // it, and the link never answers the host's 0810s, so no keep-alive ping-pong can start.
  static void answer_echo(const std::shared_ptr<link>& self, const std::shared_ptr<connection>& c,
                          const message& echo) {
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
    s.trace("->", reply);
    ++s.stats.echoes_answered;
    enqueue(self, c, secure_bytes{*framed});
  }

  // Sends `req` on `c` and waits for its response (or the response deadline). No connecting:
  // the caller picked the connection.
  static asio::awaitable<result<message>> exchange(std::shared_ptr<link> self, std::shared_ptr<connection> c,
                                                   message req) {
    auto& s = *self->impl_;
    auto key = request_match_key(req);
    if (!key) co_return make_error("acq.bad_request", key.err().message);
    auto packed = pack(*s.dia, req);
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
    if (s.pending.count(*key))
      co_return make_error("acq.duplicate_request", fmt::format("a request with key {} is in flight", *key));
    if (!c->open || s.conn != c)
      co_return make_error("acq.connect_failed", "the connection dropped before the request was sent");

    pending_request p{s.strand};
    s.pending.emplace(*key, &p);
    pending_guard guard{s, *key, &p};
    s.trace("->", req);
    enqueue(self, c, std::move(wire));
    ++s.stats.sent;
    p.timer.expires_after(s.cfg.response_timeout);
    boost::system::error_code ec;
    if (!p.outcome) std::tie(ec) = co_await p.timer.async_wait(as_tuple(use_awaitable));
    if (p.outcome) co_return std::move(*p.outcome);
    if (!ec) {
      ++s.stats.timeouts;
      spdlog::warn("acq link {}: no response within {} ms to {}", s.cfg.name, s.cfg.response_timeout.count(),
                   req.describe(*s.dia));
      co_return make_error("acq.timeout", fmt::format("no response within {} ms (key {})",
                                                      s.cfg.response_timeout.count(), *key));
    }
    co_return make_error("acq.cancelled", "the request was cancelled while waiting for its response");
  }

  // Removes a request's entry however its coroutine ends (even if its frame is destroyed).
  struct pending_guard {
    impl& s;
    const std::string& key;
    pending_request* p;
    ~pending_guard() {
      auto it = s.pending.find(key);
      if (it != s.pending.end() && it->second == p) s.pending.erase(it);
    }
  };

  static void apply_close(const std::shared_ptr<link>& self) {
    auto& s = *self->impl_;
    const auto requested = s.close_requests.load(std::memory_order_acquire);
    if (requested == s.closes_applied) return;
    s.closes_applied = requested;
    if (auto c = s.conn) fail(self, c, "acq.disconnected", "closed by the caller");
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
    if (s.pending.count(*key)) {
      out->emplace(
          make_error("acq.duplicate_request", fmt::format("a request with key {} is in flight", *key)));
      co_return;
    }
    auto st = co_await ensure_connected(self);
    if (!st) {
      out->emplace(st.err());
      co_return;
    }
    auto c = s.conn;
    if (!c) {
      out->emplace(make_error("acq.connect_failed", "the connection dropped before the request was sent"));
      co_return;
    }
    auto answer = co_await exchange(self, c, std::move(req));
    out->emplace(std::move(answer));
  }

  static asio::awaitable<link_stats> snapshot(std::shared_ptr<link> self) { co_return self->impl_->stats; }
};

result<std::shared_ptr<link>> link::create(asio::any_io_executor ex, link_config cfg) {
  if (!find_dialect(cfg.dialect))
    return make_error("acq.unknown_dialect",
                      fmt::format("acquirer {}: unknown dialect '{}'", cfg.name, cfg.dialect));
  auto codec = frame_codec::create(cfg.framing);
  if (!codec) return codec.err();
  return std::make_shared<link>(private_tag{}, std::move(ex), std::move(cfg));
}

link::link(private_tag, asio::any_io_executor ex, link_config cfg) {
  const dialect* d = find_dialect(cfg.dialect);
  auto codec = frame_codec::create(cfg.framing);
  assert(d && codec);
  impl_ = std::make_unique<impl>(std::move(ex), std::move(cfg), *d, *codec);
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

}  // namespace eftd::acq
