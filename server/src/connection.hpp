// What every peer connection (POS, pad) does the same way: name the peer for logs, and run
// its writer and its session loop as two coroutines on the connection's strand, each with a
// completion handler that keeps the session alive, logs an exception and closes the session
// when the loop ends. Nothing that owns a socket is spawned without such a handler.
#pragma once

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

// How many connections a listener holds at once, in total and per peer address: a flood or
// a slowloris from one address cannot take every till's place.
class connection_limits : public std::enable_shared_from_this<connection_limits> {
 public:
  connection_limits(std::uint32_t max_total, std::uint32_t max_per_address)
      : max_total_(max_total), max_per_address_(max_per_address) {}
  // A slot for one connection from `address` (released when the last copy goes away), or
  // null when a limit is reached.
  std::shared_ptr<void> admit(const std::string& address) {
    std::lock_guard lk(mu_);
    auto& n = per_address_[address];
    if (total_ >= max_total_ || n >= max_per_address_) {
      if (n == 0) per_address_.erase(address);
      return nullptr;
    }
    ++n;
    ++total_;
    auto self = shared_from_this();
    return std::shared_ptr<void>(static_cast<void*>(this), [self, address](void*) {
      std::lock_guard lk(self->mu_);
      --self->total_;
      if (--self->per_address_[address] == 0) self->per_address_.erase(address);
    });
  }
  std::uint32_t open() {
    std::lock_guard lk(mu_);
    return total_;
  }

 private:
  std::mutex mu_;
  std::uint32_t max_total_, max_per_address_;
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
  // Out of file descriptors (or kernel memory), accept fails at once for as long as the
  // condition lasts: the listener pauses instead of spinning. It reports at most once every ten
  // seconds, with how many accepts failed since its last report. Connections already open, the
  // journal and the acquirer links keep working; new peers wait in the backlog.
  using clock = std::chrono::steady_clock;
  std::uint64_t failed = 0;
  std::optional<clock::time_point> last_report;
  const auto report_due = [&] { return !last_report || clock::now() - *last_report >= std::chrono::seconds(10); };
  for (;;) {
    // A named strand, not a temporary inside the co_await: GCC 12 destroys such temporaries
    // twice, and a strand's reference count must never be decremented twice.
    auto strand = asio::make_strand(ctx.io);
    auto [ec, accepted] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    asio::ip::tcp::socket sock(std::move(accepted));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      const bool exhausted = ec == asio::error::no_descriptors || ec.value() == ENFILE ||
                             ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
      ++failed;
      if (report_due()) {
        spdlog::warn("{} listener: accept failed: {} ({} since the last report){}", kind, ec.message(), failed,
                     exhausted ? "; new connections wait (raise the open-file limit or lower "
                                 "listen.<pos|pad>.max_connections)"
                               : "");
        last_report = clock::now();
        failed = 0;
      }
      if (exhausted) {
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      continue;
    }
    if (failed > 0 && report_due()) {
      spdlog::info("{} listener: accepting again; {} accepts failed since the last report", kind, failed);
      last_report = clock::now();
      failed = 0;
    }
    boost::system::error_code opt_ec;
    sock.set_option(asio::ip::tcp::no_delay(true), opt_ec);
    auto ep = sock.remote_endpoint(opt_ec);
    const std::string address = opt_ec ? std::string("?") : ep.address().to_string();
    auto slot = limits->admit(address);
    if (!slot) {
      spdlog::warn("{} listener: connection from {} refused: connection limit reached", kind, address);
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
    session->hold(std::move(slot));
    session->start();
  }
}

}  // namespace eftd::server
