// What every listener (POS, pad, metrics, back office) does when accept() fails or a
// connection has to be refused: out of file descriptors (or kernel memory) accept fails at
// once for as long as the condition lasts, so the listener pauses instead of spinning, and a
// flood is reported at most once every ten seconds with a count, not once per connection.
// No Asio here: the caller owns the timer it pauses on.
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace eftd::server {

// How long a listener waits after an accept failed for want of descriptors or memory.
inline constexpr std::chrono::milliseconds accept_pause{100};

// At most one log line per `every` for a repeated event, carrying how often it happened.
class report_pacer {
 public:
  using clock = std::chrono::steady_clock;
  explicit report_pacer(clock::duration every = std::chrono::seconds(10)) : every_(every) {}
  // Counts one more event; true when it is time to report (then `count()` says how many).
  bool happened(clock::time_point now = clock::now()) {
    ++count_;
    return due(now);
  }
  bool due(clock::time_point now = clock::now()) const { return !last_ || now - *last_ >= every_; }
  std::uint64_t count() const { return count_; }
  // After a report: the count starts again.
  void reported(clock::time_point now = clock::now()) {
    last_ = now;
    count_ = 0;
  }

 private:
  clock::duration every_;
  std::optional<clock::time_point> last_;
  std::uint64_t count_ = 0;
};

// The accept failures of one listener (`kind` names it in the log).
class accept_failures {
 public:
  explicit accept_failures(std::string kind) : kind_(std::move(kind)) {}

  // True when accept failed because the process or the kernel is out of a resource that
  // comes back by itself when connections close.
  static bool exhausted(const boost::system::error_code& ec) {
    namespace err = boost::asio::error;
    return ec == err::no_descriptors || ec.value() == ENFILE || ec == err::no_buffer_space ||
           ec == err::no_memory;
  }

  // Records a failed accept (reported when due); true when the listener should pause for
  // `accept_pause` before it accepts again.
  bool failed(const boost::system::error_code& ec) {
    const bool out = exhausted(ec);
    if (pacer_.happened()) {
      spdlog::warn("{} listener: accept failed: {} ({} since the last report){}", kind_, ec.message(),
                   pacer_.count(),
                   out ? "; new connections wait (raise the open-file limit or lower "
                         "listen.<pos|pad>.max_connections)"
                       : "");
      pacer_.reported();
    }
    return out;
  }

  // A connection was accepted: says so once if accepts had failed since the last report.
  void accepted() {
    if (pacer_.count() > 0 && pacer_.due()) {
      spdlog::info("{} listener: accepting again; {} accepts failed since the last report", kind_,
                   pacer_.count());
      pacer_.reported();
    }
  }

 private:
  std::string kind_;
  report_pacer pacer_;
};

}  // namespace eftd::server
