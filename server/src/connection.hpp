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
void start_connection(std::shared_ptr<Session> self, const boost::asio::any_io_executor& strand, std::string kind,
                      std::string peer, boost::asio::awaitable<void> writer, boost::asio::awaitable<void> loop) {
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

}  // namespace eftd::server
