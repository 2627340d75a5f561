#include "eftd/acqsim/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <csignal>
#include <map>
#include <ostream>

#include "eftd/acq/codec.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acqsim {

namespace asio = boost::asio;
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
};

asio::awaitable<boost::system::error_code> write_all(tcp::socket& sock, const bytes& frame) {
  auto [ec, n] = co_await asio::async_write(sock, asio::buffer(frame), as_tuple(use_awaitable));
  co_return ec;
}

// Writes `frame` the way the outcome's fault says. Returns false when the connection is gone
// (closed by the fault or by a write error).
asio::awaitable<bool> deliver(tcp::socket& sock, context& ctx, const outcome& o, bytes& frame,
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
        auto [wec, n] =
            co_await asio::async_write(sock, asio::buffer(frame.data() + i, 1), as_tuple(use_awaitable));
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

asio::awaitable<void> session(tcp::socket sock, context& ctx, std::uint64_t id) {
  boost::system::error_code ignored;
  const auto peer = sock.remote_endpoint(ignored);
  spdlog::info("conn {}: accepted from {}:{}", id, peer.address().to_string(), peer.port());
  acq::frame_reader reader{ctx.codec};
  std::array<std::uint8_t, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
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
      wipe(**frame);
      if (!request) {
        ctx.decisions.note_malformed();
        spdlog::error("conn {}: malformed message not answered: {}: {}", id, request.err().code,
                      request.err().message);
        continue;
      }
      auto result = ctx.decisions.handle(*request);
      spdlog::info("conn {}: {} -> {}", id, request->describe(ctx.dialect), result.note);
      switch (result.what) {
        case action::ignore:
        case action::no_reply:
          break;
        case action::disconnect:
          sock.close(ignored);
          co_return;
        case action::reply: {
          auto packed = acq::pack(ctx.dialect, *result.response);
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

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, context& ctx) {
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
    asio::co_spawn(acceptor.get_executor(), session(std::move(sock), ctx, id),
                   [id](std::exception_ptr e) { log_exception(fmt::format("conn {}", id), e); });
  }
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

  asio::io_context io{1};
  host decisions{opts.decisions};
  context ctx{decisions, *d, *codec};

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
  asio::co_spawn(io, accept_loop(acceptor, ctx),
                 [](std::exception_ptr e) { log_exception("accept loop", e); });

  spdlog::info("acquirer simulator listening on {}:{} (dialect {}, framing {})", opts.address, port, d->name,
               acq::framing_name(opts.framing));
  out << "READY {\"port\":" << port << "}" << std::endl;
  io.run();
  out << decisions.summary_line() << std::endl;
  return 0;
}

}  // namespace eftd::acqsim
