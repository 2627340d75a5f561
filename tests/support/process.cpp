#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace eftd::test {

using clock_type = std::chrono::steady_clock;

process::process(std::string path, std::vector<std::string> args, std::string stderr_file) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!stderr_file.empty())
    posix_spawn_file_actions_addopen(&fa, 2, stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<char*> argv;
  argv.push_back(path.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
  }
  out_fd_ = fds[0];
}

process::~process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(5));
  }
  if (out_fd_ >= 0) close(out_fd_);
}

std::optional<std::string> process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      lines_.push_back(line);
      return line;
    }
    if (out_fd_ < 0) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    char chunk[4096];
    ssize_t r = ::read(out_fd_, chunk, sizeof chunk);
    if (r <= 0) {
      close(out_fd_);
      out_fd_ = -1;
      if (!buf_.empty()) {
        std::string line = std::move(buf_);
        buf_.clear();
        lines_.push_back(line);
        return line;
      }
      return std::nullopt;
    }
    buf_.append(chunk, static_cast<std::size_t>(r));
  }
}

std::optional<std::string> process::wait_for_prefix(const std::string& prefix,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = read_line(left);
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) return line->substr(prefix.size());
  }
}

void process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool process::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

std::optional<int> process::wait_exit(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  // Child exit closes its stdout only if no grandchild holds it, so wait on waitpid itself,
  // polling the pipe meanwhile so a chatty child never blocks on a full pipe.
  const auto deadline = clock_type::now() + timeout;
  // Once the child has exited, whatever it wrote is still in the pipe: collect it, so the
  // last lines (a summary printed at shutdown) are in output().
  auto drain = [this] {
    while (out_fd_ >= 0) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      char chunk[4096];
      ssize_t r = ::read(out_fd_, chunk, sizeof chunk);
      if (r <= 0) {
        close(out_fd_);
        out_fd_ = -1;
        break;
      }
      buf_.append(chunk, static_cast<std::size_t>(r));
    }
    std::size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      lines_.push_back(buf_.substr(0, nl));
      buf_.erase(0, nl + 1);
    }
  };
  while (clock_type::now() < deadline) {
    if (!running()) {
      drain();
      return status_;
    }
    if (out_fd_ >= 0) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        char chunk[4096];
        ssize_t r = ::read(out_fd_, chunk, sizeof chunk);
        if (r > 0) {
          buf_.append(chunk, static_cast<std::size_t>(r));
          while (true) {
            auto nl = buf_.find('\n');
            if (nl == std::string::npos) break;
            lines_.push_back(buf_.substr(0, nl));
            buf_.erase(0, nl + 1);
          }
        } else {
          close(out_fd_);
          out_fd_ = -1;
        }
      }
    } else {
      // No pipe left to wait on: block in waitpid with the remaining time bounded by SIGKILL-free polling.
      pollfd none{};
      ::poll(&none, 0, 20);
    }
  }
  return running() ? std::nullopt : status_;
}

int process::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_.value_or(-1);
  signal(SIGTERM);
  if (auto st = wait_exit(grace)) return *st;
  signal(SIGKILL);
  return wait_exit(std::chrono::seconds(5)).value_or(-1);
}

std::string bin_path(const std::string& name) {
  const char* dir = std::getenv("EFTD_BIN");
  return std::string(dir ? dir : "bin") + "/" + name;
}

std::string source_path(const std::string& rel) {
  const char* dir = std::getenv("EFTD_SOURCE");
  return std::string(dir ? dir : ".") + "/" + rel;
}

std::string make_temp_dir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("eftd-" + tag + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

int json_port(const std::string& ready_json, const std::string& key) {
  auto k = ready_json.find("\"" + key + "\"");
  if (k == std::string::npos) return -1;
  auto colon = ready_json.find(':', k);
  if (colon == std::string::npos) return -1;
  return std::atoi(ready_json.c_str() + colon + 1);
}

}  // namespace eftd::test
