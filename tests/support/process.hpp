// Test helper: run a real executable as a child process, read its stdout line by line with a
// deadline, and stop it. Integration tests use this to start eftd, the simulators and the pad.
//
// Convention: listening executables print `READY {json}` once they listen; wait_ready()
// returns that JSON text. Nothing here sleeps: every wait is a poll() on the child's pipe
// with a deadline.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace eftd::test {

class process {
 public:
  // Starts `path args...`; stdout is captured, stderr goes to `stderr_file` (or is inherited when empty).
  process(std::string path, std::vector<std::string> args, std::string stderr_file = {});
  ~process();  // SIGKILL if still running
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  // Next stdout line, or nullopt on EOF or when the deadline passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`; returns the rest of that line. Lines read on the
  // way are kept in output().
  std::optional<std::string> wait_for_prefix(const std::string& prefix, std::chrono::milliseconds timeout);
  std::optional<std::string> wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_for_prefix("READY ", timeout);
  }
  // Everything read so far, one string per line.
  const std::vector<std::string>& output() const { return lines_; }

  void signal(int sig);
  // Waits for exit; returns the exit status (128+signal if killed) or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGTERM, wait, then SIGKILL. Returns the exit status.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  int pid() const { return pid_; }
  bool running();

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::string buf_;
  std::vector<std::string> lines_;
  std::optional<int> status_;
};

// Path of an executable in the build's bin/ (EFTD_BIN, set by eftd_catch_test).
std::string bin_path(const std::string& name);
// Path in the source tree (EFTD_SOURCE).
std::string source_path(const std::string& rel);
// A fresh empty temporary directory, removed by the caller if wanted.
std::string make_temp_dir(const std::string& tag);
// Port from a READY json like {"pos":1234,"pad":1235}; key is the field name.
int json_port(const std::string& ready_json, const std::string& key);

}  // namespace eftd::test
