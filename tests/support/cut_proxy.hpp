// A TCP proxy for split-brain tests (RELIABILITY.md R4) where network namespaces are not
// available: it listens on a loopback port and forwards every connection to `target`. Each
// direction can be cut and healed at any time. A cut direction is no longer read, so its bytes
// stay in the kernel buffers and the sender's writes stall, as when a firewall drops packets;
// nothing is closed. Healing resumes the flow with nothing lost.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace eftd::test {

class cut_proxy {
 public:
  explicit cut_proxy(int target_port) : target_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("cut_proxy: socket");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("cut_proxy: bind/listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("cut_proxy: pipe");
    thread_ = std::thread([this] { run(); });
  }
  ~cut_proxy() {
    stop_ = true;
    poke();
    thread_.join();
    for (auto& p : pairs_) {
      ::close(p.client);
      ::close(p.server);
    }
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  cut_proxy(const cut_proxy&) = delete;
  cut_proxy& operator=(const cut_proxy&) = delete;

  int port() const { return port_; }
  // client->server ("up": from the connecting side) and server->client ("down").
  void cut_up(bool cut) {
    up_cut_ = cut;
    poke();
  }
  void cut_down(bool cut) {
    down_cut_ = cut;
    poke();
  }
  void cut_both(bool cut) {
    up_cut_ = cut;
    down_cut_ = cut;
    poke();
  }

 private:
  struct pair {
    int client = -1, server = -1;
    std::string to_server, to_client;  // bytes read but not yet written
  };

  void poke() {
    const char c = 1;
    (void)!::write(wake_[1], &c, 1);
  }

  int connect_target() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(target_));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Moves what `from` has into `buf` and what `buf` holds to `to`. False when a side closed.
  static bool pump(int from, int to, std::string& buf, bool readable) {
    if (readable) {
      char chunk[65536];
      const auto n = ::read(from, chunk, sizeof chunk);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
    }
    while (!buf.empty()) {
      const auto n = ::write(to, buf.data(), buf.size());
      if (n <= 0) return false;
      buf.erase(0, static_cast<std::size_t>(n));
    }
    return true;
  }

  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      const bool up = !up_cut_, down = !down_cut_;
      for (auto& p : pairs_) {
        fds.push_back({p.client, static_cast<short>(up ? POLLIN : 0), 0});
        fds.push_back({p.server, static_cast<short>(down ? POLLIN : 0), 0});
      }
      if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
      if (fds[1].revents & POLLIN) {
        char drain[64];
        while (::read(wake_[0], drain, sizeof drain) > 0) {
        }
      }
      const std::size_t polled = pairs_.size();  // fds holds entries for these only
      if (fds[0].revents & POLLIN) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          const int s = connect_target();
          if (s < 0)
            ::close(c);
          else
            pairs_.push_back(pair{c, s, {}, {}});
        }
      }
      std::vector<pair> alive;
      for (std::size_t i = 0; i < pairs_.size(); ++i) {
        auto& p = pairs_[i];
        if (i >= polled) {  // accepted just now: polled next round
          alive.push_back(std::move(p));
          continue;
        }
        const auto& cf = fds[2 + i * 2];
        const auto& sf = fds[3 + i * 2];
        bool ok = true;
        if (up && (cf.revents & (POLLIN | POLLHUP | POLLERR))) ok = pump(p.client, p.server, p.to_server, true);
        if (ok && down && (sf.revents & (POLLIN | POLLHUP | POLLERR)))
          ok = pump(p.server, p.client, p.to_client, true);
        if (ok) {
          alive.push_back(std::move(p));
        } else {
          ::close(p.client);
          ::close(p.server);
        }
      }
      pairs_ = std::move(alive);
    }
  }

  int target_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> up_cut_{false}, down_cut_{false}, stop_{false};
  std::vector<pair> pairs_;
  std::thread thread_;
};

}  // namespace eftd::test
