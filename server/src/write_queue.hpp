// Serialises writes to one socket: any number of producers on the connection's strand push
// whole frames; a single writer coroutine drains them in order, so two frames can never
// interleave on the wire (a classic bug when two coroutines both call async_write).
#pragma once

#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <string>

namespace eftd::server {

// What a non-blocking send on `s` takes now: 0 when its buffer is full; ec only for a failed
// connection. Puts the socket in non-blocking mode (asynchronous operations are unaffected).
inline std::size_t send_now(boost::asio::ip::tcp::socket& s, boost::asio::const_buffer b,
                            boost::system::error_code& ec) {
  namespace asio = boost::asio;
  if (!s.non_blocking()) {
    s.non_blocking(true, ec);
    if (ec) {
      ec = {};
      return 0;
    }
  }
  const std::size_t n = s.write_some(b, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    return 0;
  }
  return ec ? 0 : n;
}

template <class Stream>
class write_queue {
 public:
  explicit write_queue(Stream& s) : stream_(s), wake_(s.get_executor()) {
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  // Must be called on the stream's strand. When nothing is queued or being written, the frame
  // goes to the socket at once (a non-blocking send): most frames then cost one system call
  // instead of a wake-up of the writer, an asynchronous write and its completion. Whatever the
  // socket does not take is queued for the writer, in order.
  void push(std::string frame) {
    if (closed_) return;
    if (frames_.empty() && !writing_) {
      boost::system::error_code ec;
      const std::size_t n = write_now(frame, ec);
      if (ec) {
        closed_ = true;
        wake_.cancel();
        return;
      }
      if (n == frame.size()) return;
      frame.erase(0, n);
    }
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
      writing_ = true;
      boost::system::error_code ec;
      if constexpr (requires { stream_.write_all(asio::buffer(frame)); }) {
        ec = co_await stream_.write_all(asio::buffer(frame));
      } else {
        auto [wec, n] =
            co_await asio::async_write(stream_, asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
        (void)n;
        ec = wec;
      }
      writing_ = false;
      if (ec) {
        closed_ = true;
        break;
      }
    }
  }

 private:
  // What a non-blocking send takes now (0 when the socket's buffer is full or the stream
  // cannot send without waiting); ec only for a failed connection.
  std::size_t write_now(const std::string& frame, boost::system::error_code& ec) {
    namespace asio = boost::asio;
    if constexpr (requires { stream_.try_write(asio::buffer(frame), ec); })
      return stream_.try_write(asio::buffer(frame), ec);
    else
      return send_now(stream_, asio::buffer(frame), ec);
  }

  Stream& stream_;
  boost::asio::steady_timer wake_;
  std::deque<std::string> frames_;
  std::function<void()> then_;
  bool closed_ = false;
  bool writing_ = false;  // the writer has a frame on the way
};

}  // namespace eftd::server
