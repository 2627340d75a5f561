// Serialises writes to one socket: any number of producers on the connection's strand push
// whole frames; a single writer coroutine drains them in order, so two frames can never
// interleave on the wire (a classic bug when two coroutines both call async_write).
#pragma once

#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <string>

namespace eftd::server {

template <class Stream>
class write_queue {
 public:
  explicit write_queue(Stream& s) : stream_(s), wake_(s.get_executor()) {
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  // Must be called on the stream's strand.
  void push(std::string frame) {
    if (closed_) return;
    frames_.push_back(std::move(frame));
    wake_.cancel();
  }

  void close() {
    closed_ = true;
    wake_.cancel();
  }
  // Writes what is queued, then calls `then` (on the strand) and stops: for a last message
  // such as logout_ok that must reach the peer before the connection closes.
  void finish(std::function<void()> then) {
    then_ = std::move(then);
    wake_.cancel();
  }
  bool closed() const { return closed_; }

  // The writer loop; returns when closed or on a write error.
  boost::asio::awaitable<void> run() {
    namespace asio = boost::asio;
    while (!closed_) {
      if (frames_.empty() && then_) {
        auto then = std::move(then_);
        then_ = nullptr;
        then();
        break;
      }
      if (frames_.empty()) {
        wake_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      std::string frame = std::move(frames_.front());
      frames_.pop_front();
      boost::system::error_code ec;
      if constexpr (requires { stream_.write_all(asio::buffer(frame)); }) {
        ec = co_await stream_.write_all(asio::buffer(frame));
      } else {
        auto [wec, n] =
            co_await asio::async_write(stream_, asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
        (void)n;
        ec = wec;
      }
      if (ec) {
        closed_ = true;
        break;
      }
    }
  }

 private:
  Stream& stream_;
  boost::asio::steady_timer wake_;
  std::deque<std::string> frames_;
  std::function<void()> then_;
  bool closed_ = false;
};

}  // namespace eftd::server
