// A connection's read deadline kept by one timer for the life of the connection.
//
// The obvious `co_await (read || timer.async_wait())` costs, on every read, a timer, a parallel
// group and two spawned coroutines with their frames: at a thousand sales a second and a dozen
// pad frames a sale, that was a measurable share of eftd's CPU. Here each read only records its
// deadline; the timer is re-armed only when it would ring too late (the first read, or a
// deadline earlier than the one it waits for), and when it rings before the read's deadline it
// waits again. A read past its deadline is cancelled through its cancellation slot, and only
// that read: writes on the same socket carry on.
//
// All calls, and the timer's handler, run on the connection's strand.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

namespace eftd::server {

class read_deadline {
 public:
  using clock = std::chrono::steady_clock;

  explicit read_deadline(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  // Bind the guarded read to this slot (boost::asio::bind_cancellation_slot).
  boost::asio::cancellation_slot slot() { return signal_.slot(); }

  // Before a read: it must complete by `deadline`. `owner` is the connection, which holds this
  // object; the timer keeps only a weak reference, so a connection that ends is not held.
  void arm(clock::time_point deadline, std::weak_ptr<void> owner) {
    deadline_ = deadline;
    armed_ = true;
    expired_ = false;
    if (waiting_ && timer_at_ <= deadline) return;
    wait(deadline, std::move(owner));
  }

  // After the read completed: true when it was cancelled because its deadline passed.
  bool disarm() {
    armed_ = false;
    const bool e = expired_;
    expired_ = false;
    return e;
  }

  // The connection closes: the timer lets go at once.
  void stop() {
    stopped_ = true;
    ++generation_;
    timer_.cancel();
  }

 private:
  void wait(clock::time_point at, std::weak_ptr<void> owner) {
    timer_at_ = at;
    waiting_ = true;
    const std::uint64_t g = ++generation_;
    timer_.expires_at(at);
    timer_.async_wait([this, g, owner = std::move(owner)](const boost::system::error_code&) mutable {
      const auto alive = owner.lock();
      // A connection gone, stopped, or a wait replaced by a later arm(): nothing to do.
      if (!alive || g != generation_) return;
      waiting_ = false;
      if (stopped_ || !armed_) return;
      if (clock::now() >= deadline_) {
        expired_ = true;
        armed_ = false;
        signal_.emit(boost::asio::cancellation_type::terminal);
        return;
      }
      wait(deadline_, std::move(owner));
    });
  }

  boost::asio::steady_timer timer_;
  boost::asio::cancellation_signal signal_;
  clock::time_point deadline_{};
  clock::time_point timer_at_{};
  std::uint64_t generation_ = 0;
  bool armed_ = false;
  bool expired_ = false;
  bool waiting_ = false;
  bool stopped_ = false;
};

}  // namespace eftd::server
