// A scripted POS server for client tests: one listening socket on 127.0.0.1 port 0, one
// thread that accepts a single connection and runs the test's script against it.
//
// Catch2 assertions are not thread-safe, so the script never asserts: it records what it
// received (received()) and the test checks that after join(). Every wait has a deadline.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eftd/pos/codec.hpp"

namespace eftd::pos::test {

class fake_conn {
 public:
  explicit fake_conn(int fd) : fd_(fd) {}

  // Next decoded message from the client; nullopt on EOF, timeout or a decode error.
  std::optional<message> expect(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto line = read_line(timeout);
    if (!line) return std::nullopt;
    auto m = decode(*line);
    if (!m) return std::nullopt;
    return std::move(*m);
  }

  template <class T>
  std::optional<T> expect_type(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto m = expect(timeout);
    if (!m) return std::nullopt;
    if (auto* t = std::get_if<T>(&*m)) return *t;
    return std::nullopt;
  }

  void send(const message& m) { send_raw(encode(m)); }

  void send_raw(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Waits until the client closes its end (EOF); true if it did within the deadline.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
  }

  ~fake_conn() { close(); }

 private:
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto l = reader_.next();
      if (!l) return std::nullopt;
      if (*l) return **l;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

  int fd_;
  line_reader reader_;
};

class fake_server {
 public:
  using script = std::function<void(fake_conn&, std::vector<message>& received)>;

  explicit fake_server(script s) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 4) != 0) {
      throw std::runtime_error("fake_server: cannot listen");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, s = std::move(s)] {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) return;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      fake_conn conn(fd);
      std::vector<message> got;
      s(conn, got);
      std::lock_guard lock(mu_);
      received_ = std::move(got);
    });
  }

  ~fake_server() {
    join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  std::uint16_t port() const { return port_; }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Messages the script recorded; call after join().
  std::vector<message> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<message> received_;
};

// The usual opening: accept the login and reply login_ok.
inline bool accept_login(fake_conn& c, std::vector<message>& got) {
  auto l = c.expect_type<login>();
  if (!l) return false;
  got.emplace_back(*l);
  c.send(login_ok{l->id, "fake", "2024-05-02", 1, {"sale", "status_query"}});
  return true;
}

}  // namespace eftd::pos::test
