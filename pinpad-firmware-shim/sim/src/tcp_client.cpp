#include "eftd/padsim/tcp_client.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>
#include <csignal>
#include <optional>

namespace eftd::padsim {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;

result<server_address> parse_server_address(std::string_view text) {
  auto bad = [&] { return make_error("padsim.bad_address", fmt::format("'{}' is not host:port", text)); };
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad();
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return bad();
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc{} || p != port.data() + port.size() || value == 0 ||
      value > 65535)
    return bad();
  return server_address{std::string(host), static_cast<std::uint16_t>(value)};
}

namespace {

constexpr auto token = asio::as_tuple(asio::use_awaitable);

enum class conn_end { lost, refused, done, silent };

}  // namespace

struct tcp_client::impl {
  tcp_client_options opt;
  pad_session& session;
  asio::io_context io{1};
  std::atomic<bool> stop_requested{false};

  impl(tcp_client_options o, pad_session& s) : opt(std::move(o)), session(s) {}

  // Waits `d` unless cancelled; the stop path cancels through the awaitable operators.
  asio::awaitable<void> sleep(milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(token);
  }

  asio::awaitable<bool> write_raw(tcp::socket& sock, const bytes& data) {
    if (data.empty()) co_return true;
    auto [ec, n] = co_await asio::async_write(sock, asio::buffer(data), token);
    if (ec) {
      spdlog::warn("pad: write failed: {}", ec.message());
      co_return false;
    }
    co_return true;
  }

  // Frames go out as they are, or as TLS records when the connection has a channel.
  asio::awaitable<bool> write_all(tcp::socket& sock, std::optional<tls_channel>& tls,
                                  const std::vector<bytes>& frames) {
    for (const auto& f : frames) {
      if (!tls) {
        if (!co_await write_raw(sock, f)) co_return false;
        continue;
      }
      if (auto st = tls->write(f); !st) {
        spdlog::error("pad: TLS write failed: {} ({})", st.err().message, st.err().code);
        co_return false;
      }
    }
    if (tls) {
      const bytes records = tls->take_output();
      if (!co_await write_raw(sock, records)) co_return false;
    }
    co_return true;
  }

  asio::awaitable<conn_end> connection(const server_address& srv, bool& was_accepted) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(srv.host, std::to_string(srv.port), token);
    if (rec) {
      spdlog::warn("pad: cannot resolve {}: {}", srv.host, rec.message());
      co_return conn_end::lost;
    }
    tcp::socket sock(ex);
    asio::steady_timer deadline(ex, opt.connect_timeout);
    auto connected = co_await (asio::async_connect(sock, endpoints, token) || deadline.async_wait(token));
    if (connected.index() == 1) {
      spdlog::warn("pad: connect to {}:{} timed out", srv.host, srv.port);
      co_return conn_end::lost;
    }
    if (auto [ec, ep] = std::get<0>(connected); ec) {
      spdlog::warn("pad: connect to {}:{} failed: {}", srv.host, srv.port, ec.message());
      co_return conn_end::lost;
    }
    spdlog::info("pad: connected to {}:{}", srv.host, srv.port);
    boost::system::error_code opt_ec;  // best effort: replies are small and latency-bound
    sock.set_option(tcp::no_delay(true), opt_ec);

    std::optional<tls_channel> tls;
    if (opt.tls) {
      // The server's certificate must carry the name (or address) the pad was told to use.
      auto ch = tls_channel::client(opt.tls, srv.host);
      if (!ch) {
        spdlog::error("pad: TLS to {}:{} cannot start: {} ({})", srv.host, srv.port, ch.err().message,
                      ch.err().code);
        co_return conn_end::lost;
      }
      tls.emplace(std::move(*ch));
    }

    // Built outside the co_await: gcc 12 rejects a braced list inside a coroutine expression.
    // Under TLS the hello waits in the channel until the handshake is done.
    std::vector<bytes> hello_frames;
    hello_frames.push_back(session.start());
    if (!co_await write_all(sock, tls, hello_frames)) co_return conn_end::lost;

    const auto handshake_deadline = std::chrono::steady_clock::now() + opt.handshake_timeout;
    auto last_rx = std::chrono::steady_clock::now();  // the server's last bytes
    session_progress progress;
    std::vector<std::uint8_t> buf(4096);
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = 0;
      if (!session.accepted()) {
        // Nothing but hello_ack is expected: a silent server must not hold the pad forever.
        deadline.expires_at(handshake_deadline);
        auto r = co_await (sock.async_read_some(asio::buffer(buf), token) || deadline.async_wait(token));
        if (r.index() == 1) {
          spdlog::warn("pad: no hello_ack from {}:{} within {} ms", srv.host, srv.port,
                       opt.handshake_timeout.count());
          co_return conn_end::lost;
        }
        std::tie(ec, n) = std::get<0>(r);
      } else if (const auto wake = session.wake_at(); wake || opt.silence_timeout.count() > 0) {
        // A command waits for input: poll the keypad and watch its deadline while reading.
        // With a silence limit, a server that stops talking (paused, or cut off by the
        // network while the TCP connection looks alive) is left for the next one.
        const auto silent_at = last_rx + opt.silence_timeout;
        const bool watch_silence = opt.silence_timeout.count() > 0;
        deadline.expires_at(wake && (!watch_silence || *wake < silent_at) ? *wake : silent_at);
        auto r = co_await (sock.async_read_some(asio::buffer(buf), token) || deadline.async_wait(token));
        if (r.index() == 1) {
          if (watch_silence && std::chrono::steady_clock::now() >= silent_at) {
            spdlog::warn("pad: nothing from {}:{} for {} ms; trying the next server", srv.host, srv.port,
                         opt.silence_timeout.count());
            co_return conn_end::silent;
          }
          auto ticked = session.on_tick(std::chrono::steady_clock::now());
          if (!co_await write_all(sock, tls, ticked.send)) co_return conn_end::lost;
          // A waiting read_card (a person at the TUI) is answered from a tick.
          if (progress.on_events(ticked.events, opt.once, [] {})) co_return conn_end::done;
          continue;
        }
        std::tie(ec, n) = std::get<0>(r);
      } else {
        std::tie(ec, n) = co_await sock.async_read_some(asio::buffer(buf), token);
      }
      last_rx = std::chrono::steady_clock::now();
      if (ec) {
        spdlog::warn("pad: connection to {}:{} ended: {}", srv.host, srv.port,
                     ec == asio::error::eof ? std::string("closed by server") : ec.message());
        co_return conn_end::lost;
      }
      byte_view received(buf.data(), n);
      bytes plain;
      status tls_status;
      if (tls) {
        tls_status = tls->feed(received);
        // Handshake messages, or the alert telling the server why we give up.
        const bytes records = tls->take_output();
        if (!co_await write_raw(sock, records)) co_return conn_end::lost;
        plain = tls->read();
        received = plain;
      }
      // Frames decrypted before a TLS failure are still executed (a refusal's hello_ack).
      auto out = session.on_bytes(received);
      if (out && !tls_status) {
        const auto& e = tls_status.err();
        if (e.code == "tls.closed") {
          spdlog::warn("pad: connection to {}:{} ended: TLS session closed by server", srv.host, srv.port);
          co_return conn_end::lost;
        }
        if (e.code == "tls.handshake") {
          spdlog::error("pad: TLS handshake with {}:{} failed: {}", srv.host, srv.port, e.message);
          co_return conn_end::refused;
        }
        spdlog::error("pad: TLS error from {}:{}: {} ({}); reconnecting", srv.host, srv.port, e.message,
                      e.code);
        co_return conn_end::lost;
      }
      if (!out) {
        const auto& e = out.err();
        if (e.code == "padsim.refused") {
          spdlog::error("pad: refused by {}:{}: {}", srv.host, srv.port, e.message);
          co_return conn_end::refused;
        }
        spdlog::error("pad: protocol error from {}:{}: {} ({}); reconnecting", srv.host, srv.port, e.code,
                      e.message);
        co_return conn_end::lost;
      }
      if (!co_await write_all(sock, tls, out->send)) co_return conn_end::lost;
      const bool done = progress.on_events(out->events, opt.once, [&] {
        was_accepted = true;
        spdlog::info("pad: accepted by {}:{}", srv.host, srv.port);
        if (opt.on_ready) opt.on_ready();
      });
      if (done) co_return conn_end::done;
    }
  }

  asio::awaitable<int> main_loop() {
    std::size_t index = 0;
    for (;;) {
      const auto& srv = opt.servers[index % opt.servers.size()];
      bool accepted = false;
      const auto end = co_await connection(srv, accepted);
      if (end == conn_end::done) co_return 0;
      if (accepted && end != conn_end::silent) {
        // It worked until now: the same server first, after the shortest wait.
        opt.backoff.reset();
      } else {
        ++index;  // unreachable or refusing: try the next server
      }
      const auto wait = opt.backoff.next();
      spdlog::info("pad: reconnecting in {} ms", wait.count());
      co_await sleep(wait);
    }
  }

  asio::awaitable<int> wait_signal() {
    asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
    auto [ec, sig] = co_await signals.async_wait(token);
    if (!ec) spdlog::info("pad: signal {}, stopping", sig);
    co_return 0;
  }

  // Whichever ends first wins; the other is cancelled (its pending wait or I/O completes with
  // operation_aborted) and awaited before this returns.
  asio::awaitable<int> run_until_stopped(asio::awaitable<int> stopper) {
    auto r = co_await (main_loop() || std::move(stopper));
    co_return r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
  }

  asio::awaitable<int> wait_forever() {
    // Keeps the race below uniform when signals are not handled here; stop() ends the
    // io_context instead.
    asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
    co_await t.async_wait(token);
    co_return 0;
  }
};

tcp_client::tcp_client(tcp_client_options options, pad_session& session)
    : impl_(std::make_unique<impl>(std::move(options), session)) {}

tcp_client::~tcp_client() = default;

int tcp_client::run() {
  if (impl_->opt.servers.empty()) {
    spdlog::error("pad: no server configured");
    return 1;
  }
  int code = 1;
  // Chosen outside any coroutine: gcc 12 destroys a temporary awaitable twice when a ?: sits
  // inside a co_await expression.
  auto stopper = impl_->opt.handle_signals ? impl_->wait_signal() : impl_->wait_forever();
  asio::co_spawn(impl_->io, impl_->run_until_stopped(std::move(stopper)), [&](std::exception_ptr e, int rc) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::critical("pad: internal failure: {}", ex.what());
      }
      code = 1;
      return;
    }
    code = rc;
  });
  impl_->io.run();
  // stop() abandons the loop on purpose: that is a normal end, not a failure.
  return impl_->stop_requested ? 0 : code;
}

void tcp_client::stop() {
  impl_->stop_requested = true;
  impl_->io.stop();
}

}  // namespace eftd::padsim
