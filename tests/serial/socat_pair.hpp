// Test helper: two pseudo-terminals joined back to back by socat, a stand-in for a serial cable.
//
//   socat_pair cable;                  // plain: both ptys exist at once
//   socat_pair cable(hangup_on_close); // `wait-slave`: socat waits until the first pty is
//                                      // opened before it creates the second, and exits when
//                                      // either side closes, so the other side sees a hangup
//                                      // (like a USB-serial adapter that is unplugged)
//
// socat names the ptys on stderr ("N PTY is /dev/pts/3") and logs "starting data transfer loop"
// once it relays. Every wait reads socat's output with a deadline: no sleeps.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "process.hpp"

namespace eftd::test {

class socat_pair {
 public:
  enum mode { plain, hangup_on_close };

  explicit socat_pair(mode m = plain)
      : proc_("/bin/sh", {"-c", m == plain ? "exec socat -d -d pty,raw,echo=0 pty,raw,echo=0 2>&1"
                                           : "exec socat -d -d pty,raw,echo=0,wait-slave "
                                             "pty,raw,echo=0,wait-slave 2>&1"}) {}
  ~socat_pair() { proc_.stop(std::chrono::seconds(5)); }
  socat_pair(const socat_pair&) = delete;
  socat_pair& operator=(const socat_pair&) = delete;

  // The first pty's path ("" if socat did not name it in time).
  std::string first(std::chrono::milliseconds timeout = std::chrono::seconds(10)) { return path(0, timeout); }
  // The second pty's path; in hangup_on_close mode only after the first was opened.
  std::string second(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return path(1, timeout);
  }
  // True once socat relays (both ends exist; in hangup_on_close mode both were opened).
  bool wait_relaying(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return read_until([&] { return relaying_; }, timeout);
  }
  // True once socat has exited.
  bool wait_exit(std::chrono::milliseconds timeout) { return proc_.wait_exit(timeout).has_value(); }
  std::string log() const {
    std::string s;
    for (const auto& l : proc_.output()) s += l + "\n";
    return s;
  }

 private:
  std::string path(std::size_t i, std::chrono::milliseconds timeout) {
    read_until([&] { return paths_.size() > i; }, timeout);
    return paths_.size() > i ? paths_[i] : std::string();
  }
  template <class Pred>
  bool read_until(Pred done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      auto line = proc_.read_line(left);
      if (!line) return false;
      if (auto p = line->find("PTY is "); p != std::string::npos) paths_.push_back(line->substr(p + 7));
      if (line->find("starting data transfer loop") != std::string::npos) relaying_ = true;
    }
    return true;
  }

  process proc_;
  std::vector<std::string> paths_;
  bool relaying_ = false;
};

}  // namespace eftd::test
