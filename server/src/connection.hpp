// What every peer connection (POS, pad) does the same way: name the peer for logs, and run
// its writer and its session loop as two coroutines on the connection's strand, each with a
// completion handler that keeps the session alive, logs an exception and closes the session
// when the loop ends. Nothing that owns a socket is spawned without such a handler.
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <memory>
#include <string>

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

// Accepts connections until the acceptor is closed; each gets its own strand and a Session
// constructed from (socket, ctx) and started.
template <class Session, class Context>
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, Context& ctx,
                                         std::string kind) {
  namespace asio = boost::asio;
  for (;;) {
    // A named strand, not a temporary inside the co_await: GCC 12 destroys such temporaries
    // twice, and a strand's reference count must never be decremented twice.
    auto strand = asio::make_strand(ctx.io);
    auto [ec, sock] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("{} listener: accept failed: {}", kind, ec.message());
      continue;
    }
    boost::system::error_code opt_ec;
    sock.set_option(asio::ip::tcp::no_delay(true), opt_ec);
    std::make_shared<Session>(std::move(sock), ctx)->start();
  }
}

}  // namespace eftd::server
