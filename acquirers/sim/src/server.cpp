#include "eftd/acqsim/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/message_mac.hpp"
#include "eftd/core/mac.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acqsim {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

struct context {
  host& decisions;
  const acq::dialect& dialect;
  acq::frame_codec codec;
  // Answers held by the after-reversal fault, by transaction key. Shared by all connections
  // (the reversal may come on a new one); everything runs on one thread.
  std::map<std::string, bytes> held;
  // Message MAC key (empty: no MAC) and the bad-MAC fault's amount suffixes.
  bytes mak;
  std::vector<std::string> bad_mac_suffixes;
};

// The sim's side of the message MAC rule (acq/message_mac.hpp): alg 3, padding 1, 8 bytes.
acq::mac_function sim_mac(const bytes& mak) {
  return [&mak](byte_view data) { return iso9797_mac_alg3(mak, data, mac_padding::method1); };
}

// A client connection, plain or under TLS: reads and writes go through TLS when it is on,
// socket-level operations (linger, close) always to the TCP socket underneath.
struct peer_stream {
  peer_stream(tcp::socket s, ssl::context* tls_ctx) {
    if (tls_ctx)
      tls.emplace(std::move(s), *tls_ctx);
    else
      plain.emplace(std::move(s));
  }
  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
  asio::any_io_executor get_executor() { return socket().get_executor(); }
  void close(boost::system::error_code& ec) { socket().close(ec); }
  template <class Option>
  void set_option(const Option& o, boost::system::error_code& ec) {
    socket().set_option(o, ec);
  }
  std::optional<tcp::socket> plain;
  std::optional<ssl::stream<tcp::socket>> tls;
};

using io_result = std::tuple<boost::system::error_code, std::size_t>;

asio::awaitable<io_result> read_some(peer_stream& sock, asio::mutable_buffer b) {
  if (sock.tls) co_return co_await sock.tls->async_read_some(b, as_tuple(use_awaitable));
  co_return co_await sock.plain->async_read_some(b, as_tuple(use_awaitable));
}

asio::awaitable<io_result> write_buffer(peer_stream& sock, asio::const_buffer b) {
  if (sock.tls) co_return co_await asio::async_write(*sock.tls, b, as_tuple(use_awaitable));
  co_return co_await asio::async_write(*sock.plain, b, as_tuple(use_awaitable));
}

asio::awaitable<boost::system::error_code> write_all(peer_stream& sock, const bytes& frame) {
  const asio::const_buffer b{frame.data(), frame.size()};
  auto [ec, n] = co_await write_buffer(sock, b);
  co_return ec;
}

// Writes `frame` the way the outcome's fault says. Returns false when the connection is gone
// (closed by the fault or by a write error).
asio::awaitable<bool> deliver(peer_stream& sock, context& ctx, const outcome& o, bytes& frame,
                              std::uint64_t id) {
  boost::system::error_code ec;
  switch (o.how) {
    case fault::after_reversal:
      ctx.held[o.transaction_key] = std::move(frame);
      spdlog::info("conn {}: answer held until its reversal arrives", id);
      co_return true;
    case fault::drip: {
      // One byte per write, so the peer's reader sees every partial state of the frame.
      asio::steady_timer gap(sock.get_executor());
      for (std::size_t i = 0; i < frame.size() && !ec; ++i) {
        const asio::const_buffer one{frame.data() + i, 1};
        auto [wec, n] = co_await write_buffer(sock, one);
        ec = wec;
        if (ec || i + 1 == frame.size()) break;
        gap.expires_after(std::chrono::milliseconds(o.drip_ms));
        co_await gap.async_wait(as_tuple(use_awaitable));
      }
      break;
    }
    case fault::reset: {
      // The header and part of the message, then RST (linger 0): the peer holds half a frame.
      const bytes part(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(frame.size() / 2));
      ec = co_await write_all(sock, part);
      boost::system::error_code ignored;
      sock.set_option(asio::socket_base::linger(true, 0), ignored);
      sock.close(ignored);
      spdlog::info("conn {}: reset after {} of {} bytes (fault)", id, part.size(), frame.size());
      co_return false;
    }
    case fault::duplicate:
      ec = co_await write_all(sock, frame);
      if (!ec) ec = co_await write_all(sock, frame);
      break;
    case fault::none:
    case fault::wrong_stan:  // the host already altered field 11
      ec = co_await write_all(sock, frame);
      break;
  }
  if (ec) {
    spdlog::info("conn {}: write failed ({}), closing", id, ec.message());
    boost::system::error_code ignored;
    sock.close(ignored);
    co_return false;
  }
  co_return true;
}

void wipe(bytes& b) {
  if (!b.empty()) secure_wipe(b.data(), b.size());
}

void log_exception(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} ended with an exception: {}", what, ex.what());
  }
}

// A client that opens a connection and never completes the handshake is dropped after this.
constexpr std::chrono::seconds tls_handshake_timeout{10};

asio::awaitable<void> session(tcp::socket raw, std::shared_ptr<ssl::context> tls_ctx, context& ctx,
                              std::uint64_t id) {
  boost::system::error_code ignored;
  const auto peer = raw.remote_endpoint(ignored);
  spdlog::info("conn {}: accepted from {}:{}", id, peer.address().to_string(), peer.port());
  // Answers go out at once, as a host's should: with Nagle's algorithm an answer written while
  // the previous one is unacknowledged waits for eftd's delayed ACK (up to 40 ms).
  raw.set_option(tcp::no_delay(true), ignored);
  peer_stream sock{std::move(raw), tls_ctx.get()};
  if (sock.tls) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer deadline{sock.get_executor()};
    deadline.expires_after(tls_handshake_timeout);
    auto h = co_await (sock.tls->async_handshake(ssl::stream_base::server, as_tuple(use_awaitable)) ||
                       deadline.async_wait(as_tuple(use_awaitable)));
    const boost::system::error_code hec =
        h.index() == 0 ? std::get<0>(std::get<0>(h)) : make_error_code(asio::error::timed_out);
    if (hec) {
      // Never falls back to plaintext: the connection ends here, before any frame is read.
      spdlog::warn("conn {}: TLS handshake failed ({}), closing", id, hec.message());
      sock.close(ignored);
      co_return;
    }
    spdlog::info("conn {}: TLS {} established", id, SSL_get_version(sock.tls->native_handle()));
  }
  acq::frame_reader reader{ctx.codec};
  std::array<std::uint8_t, 4096> buf;
  for (;;) {
    const asio::mutable_buffer into{buf.data(), buf.size()};
    auto [ec, n] = co_await read_some(sock, into);
    if (ec) {
      spdlog::info("conn {}: closed ({})", id,
                   ec == asio::error::eof ? std::string("by peer") : ec.message());
      co_return;
    }
    reader.feed(byte_view{buf.data(), n});
    secure_wipe(buf.data(), n);
    for (;;) {
      auto frame = reader.next();
      if (!frame) {
        // The length header itself is broken: the stream cannot be resynchronised.
        ctx.decisions.note_malformed();
        spdlog::error("conn {}: framing error {}: {}; closing this connection", id, frame.err().code,
                      frame.err().message);
        sock.close(ignored);
        co_return;
      }
      if (!*frame) break;
      auto request = acq::unpack(ctx.dialect, **frame);
      std::optional<error> mac_problem;
      const bool with_mac = !ctx.mak.empty();
      if (request && with_mac) {
        const auto mac = sim_mac(ctx.mak);
        if (auto ok = acq::verify_mac(*request, **frame, mac); !ok) mac_problem = ok.err();
        // The MAC is not logged, and the host decides on the message without it.
        if (acq::mac_applies(*request)) request->erase(acq::mac_field(*request));
      }
      wipe(**frame);
      if (!request) {
        ctx.decisions.note_malformed();
        spdlog::error("conn {}: malformed message not answered: {}: {}", id, request.err().code,
                      request.err().message);
        continue;
      }
      auto result = mac_problem ? ctx.decisions.security_violation(*request, mac_problem->message)
                                : ctx.decisions.handle(*request);
      spdlog::info("conn {}: {} -> {}", id, request->describe(ctx.dialect), result.note);
      switch (result.what) {
        case action::ignore:
        case action::no_reply:
          break;
        case action::disconnect:
          sock.close(ignored);
          co_return;
        case action::reply: {
          acq::message signed_response = *result.response;
          if (with_mac) {
            const auto mac = sim_mac(ctx.mak);
            if (auto ok = acq::add_mac(ctx.dialect, signed_response, mac); !ok) {
              spdlog::error("conn {}: cannot MAC the response: {}: {}", id, ok.err().code, ok.err().message);
              break;
            }
            const auto amount = request->get_or(4, "");
            for (const auto& suffix : ctx.bad_mac_suffixes) {
              if (!amount.empty() && amount.ends_with(suffix) && acq::mac_applies(signed_response)) {
                // Fault: one flipped bit, so the client must refuse the answer.
                const int f = acq::mac_field(signed_response);
                std::string v{*signed_response.get(f)};
                v[0] = static_cast<char>(v[0] ^ 0x01);
                signed_response.set(f, std::move(v));
                spdlog::info("conn {}: fault bad-mac: the answer's MAC is corrupted", id);
                break;
              }
            }
          }
          auto packed = acq::pack(ctx.dialect, signed_response);
          if (!packed) {
            spdlog::error("conn {}: cannot pack the response: {}: {}", id, packed.err().code,
                          packed.err().message);
            break;
          }
          // A TPDU link: the answer carries the request's TPDU with the addresses swapped.
          auto framed = reader.last_tpdu() ? ctx.codec.encode(*packed, reader.last_tpdu()->reply())
                                           : ctx.codec.encode(*packed);
          if (!framed) {
            spdlog::error("conn {}: cannot frame the response: {}", id, framed.err().message);
            break;
          }
          if (result.delay_ms > 0) {
            // A slow issuer: this connection answers nothing else meanwhile, as a host
            // that handles one request at a time per link would.
            asio::steady_timer slow(sock.get_executor());
            slow.expires_after(std::chrono::milliseconds(result.delay_ms));
            co_await slow.async_wait(as_tuple(use_awaitable));
          }
          if (request->mti()[1] == '4') {
            // A reversal releases the answer the after-reversal fault held back: first the
            // late answer to the original, then the reversal's own.
            if (auto h = ctx.held.find(result.transaction_key); h != ctx.held.end()) {
              bytes late = std::move(h->second);
              ctx.held.erase(h);
              const auto lec = co_await write_all(sock, late);
              if (lec) {
                spdlog::info("conn {}: write failed ({}), closing", id, lec.message());
                sock.close(ignored);
                co_return;
              }
              spdlog::info("conn {}: sent the held answer before the reversal's", id);
            }
          }
          const bool open = co_await deliver(sock, ctx, result, *framed, id);
          if (!open) co_return;
          spdlog::info("conn {}: answered {}", id, result.response->describe(ctx.dialect));
          break;
        }
      }
    }
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::shared_ptr<ssl::context> tls_ctx,
                                  context& ctx) {
  std::uint64_t next_id = 0;
  asio::steady_timer backoff{acceptor.get_executor()};
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(as_tuple(use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // E.g. out of file descriptors: back off instead of spinning on the error.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(as_tuple(use_awaitable));
      continue;
    }
    const auto id = ++next_id;
    asio::co_spawn(acceptor.get_executor(), session(std::move(sock), tls_ctx, ctx, id),
                   [id](std::exception_ptr e) { log_exception(fmt::format("conn {}", id), e); });
  }
}

// The server TLS context: TLS 1.2+, the sim's certificate, and client certificates required
// (verified against the client CA) when one is given. Null after logging why on failure.
std::shared_ptr<ssl::context> make_server_tls(const server_options& opts) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) return nullptr;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  const auto bad = [&](std::string_view what, const std::string& file) -> std::shared_ptr<ssl::context> {
    spdlog::error("{} '{}': {}", what, file, ec.message());
    return nullptr;
  };
  ctx->use_certificate_chain_file(opts.tls_cert_file, ec);
  if (ec) return bad("--tls-cert", opts.tls_cert_file);
  ctx->use_private_key_file(opts.tls_key_file, ssl::context::pem, ec);
  if (ec) return bad("--tls-key", opts.tls_key_file);
  if (!opts.tls_client_ca_file.empty()) {
    ctx->load_verify_file(opts.tls_client_ca_file, ec);
    if (ec) return bad("--tls-client-ca", opts.tls_client_ca_file);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return bad("--tls-client-ca", opts.tls_client_ca_file);
  }
  return ctx;
}

}  // namespace

int run_server(const server_options& opts, std::ostream& out) {
  const acq::dialect* d = acq::find_dialect(opts.dialect);
  if (!d) {
    spdlog::error("unknown dialect '{}'", opts.dialect);
    return 2;
  }
  auto codec = acq::frame_codec::create(opts.framing);
  if (!codec) {
    spdlog::error("framing: {}", codec.err().message);
    return 2;
  }

  std::shared_ptr<ssl::context> tls_ctx;
  if (!opts.tls_cert_file.empty()) {
    tls_ctx = make_server_tls(opts);
    if (!tls_ctx) return 2;
  }

  asio::io_context io{1};
  host decisions{opts.decisions};
  context ctx{decisions, *d, *codec};
  ctx.mak = opts.decisions.mak;
  ctx.bad_mac_suffixes = opts.decisions.bad_mac_amount_suffixes;

  boost::system::error_code ec;
  const auto address = asio::ip::make_address(opts.address, ec);
  if (ec) {
    spdlog::error("bad --address '{}': {}", opts.address, ec.message());
    return 2;
  }
  tcp::acceptor acceptor{io};
  const tcp::endpoint ep{address, opts.port};
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::error("cannot listen on {}:{}: {}", opts.address, opts.port, ec.message());
    return 2;
  }
  const auto port = acceptor.local_endpoint().port();

  asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](const boost::system::error_code& sec, int sig) {
    if (sec) return;
    spdlog::info("signal {}: shutting down", sig);
    boost::system::error_code ignored;
    acceptor.close(ignored);
    io.stop();
  });
  asio::co_spawn(io, accept_loop(acceptor, tls_ctx, ctx),
                 [](std::exception_ptr e) { log_exception("accept loop", e); });

  spdlog::info("acquirer simulator listening on {}:{} (dialect {}, framing {}{})", opts.address, port,
               d->name, acq::framing_name(opts.framing),
               !tls_ctx                          ? ""
               : opts.tls_client_ca_file.empty() ? ", TLS"
                                                 : ", TLS with client certificates");
  out << "READY {\"port\":" << port << "}" << std::endl;
  io.run();
  if (opts.at_shutdown) opts.at_shutdown(decisions);
  out << decisions.summary_line() << std::endl;
  return 0;
}

}  // namespace eftd::acqsim
