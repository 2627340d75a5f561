#include "bridge.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>

#include "eftd/padsim/serial_client.hpp"
#ifdef EFTD_HAVE_USB
#include "eftd/pad/usb.hpp"
#endif

namespace eftd::eftpad {

namespace {

using padsim::link_clock;
using padsim::serial_link;
using time_point = link_clock::time_point;
using std::chrono::milliseconds;

// Bytes from eftd waiting in the link's send queue beyond which the bridge stops reading the
// socket: TCP's own flow control then slows eftd down instead of the bridge buffering.
constexpr std::size_t max_link_backlog = 64 * 1024;

int poll_timeout(std::optional<time_point> deadline) {
  if (!deadline) return -1;
  const auto left = *deadline - link_clock::now();
  if (left <= link_clock::duration::zero()) return 0;
  return static_cast<int>(std::min<long long>(std::chrono::ceil<milliseconds>(left).count(), INT_MAX));
}

void earliest(std::optional<time_point>& d, time_point t) {
  if (!d || t < *d) d = t;
}

std::string errno_text(int e) {
  return std::strerror(e);
}

// One TCP connection to eftd, non-blocking, connected through poll().
class server_connection {
 public:
  ~server_connection() { close(); }

  enum class state { idle, connecting, connected };

  // Resolves `srv` and starts connecting to its first address. False (logged) when no address
  // could even be tried.
  bool begin(const padsim::server_address& srv, milliseconds timeout) {
    close();
    srv_ = srv;
    addrs_.clear();
    addr_index_ = 0;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(srv.port);
    if (const int rc = ::getaddrinfo(srv.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      spdlog::warn("bridge: cannot resolve {}: {}", srv.host, ::gai_strerror(rc));
      return false;
    }
    for (auto* a = res; a; a = a->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
      addrs_.push_back({ss, a->ai_addrlen, a->ai_family});
    }
    ::freeaddrinfo(res);
    deadline_ = link_clock::now() + timeout;
    return try_next();
  }

  // POLLOUT (or an error) arrived while connecting. True when connected; false when every
  // address failed (logged); otherwise still connecting to the next address.
  enum class progress { connected, connecting, failed };
  progress on_connect_event() {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      state_ = state::connected;
      const int one = 1;  // replies are small and latency-bound
      ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return progress::connected;
    }
    last_error_ = errno_text(err);
    return try_next() ? progress::connecting : progress::failed;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    state_ = state::idle;
  }

  int fd() const noexcept { return fd_; }
  state current() const noexcept { return state_; }
  time_point connect_deadline() const noexcept { return deadline_; }
  const padsim::server_address& server() const noexcept { return srv_; }
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  bool try_next() {
    close();
    while (addr_index_ < addrs_.size()) {
      const auto& a = addrs_[addr_index_++];
      fd_ = ::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd_ < 0) {
        last_error_ = errno_text(errno);
        continue;
      }
      if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a.ss), a.len) == 0 || errno == EINPROGRESS) {
        state_ = state::connecting;
        return true;
      }
      last_error_ = errno_text(errno);
      close();
    }
    return false;
  }

  struct address {
    sockaddr_storage ss;
    socklen_t len;
    int family;
  };
  padsim::server_address srv_;
  std::vector<address> addrs_;
  std::size_t addr_index_ = 0;
  int fd_ = -1;
  state state_ = state::idle;
  time_point deadline_{};
  std::string last_error_;
};

class bridge {
 public:
  explicit bridge(bridge_options o) : opt_(std::move(o)) {}

  int run() {
    if (opt_.handle_signals) signals_.emplace();
    for (;;) {
      if (stopping()) return 0;
      auto port = open_port();
      if (!port) {
        if (port.err().code == "serial.bad_baud" || port.err().code == "usb.bad_selector" ||
            port.err().code == "bridge.no_usb") {
          spdlog::error("bridge: {} ({})", port.err().message, port.err().code);
          return 2;
        }
        const auto d = port_backoff_.next();
        spdlog::warn("bridge: {} ({}); retrying in {} ms", port.err().message, port.err().code, d.count());
        if (sleep_for(d)) return 0;
        continue;
      }
      port_backoff_.reset();
      bool stopped = false;
      {
        serial_link line(std::move(*port), opt_.link);
        spdlog::info("bridge: pad port {} open", line.path());
        stopped = run_line(line);
      }
      tcp_.close();
      if (stopped) return 0;
      const auto d = port_backoff_.next();
      spdlog::info("bridge: reopening the pad port in {} ms", d.count());
      if (sleep_for(d)) return 0;
    }
  }

 private:
  result<std::unique_ptr<pad::serial_port>> open_port() {
    if (!opt_.usb_selector.empty()) {
#ifdef EFTD_HAVE_USB
      return pad::usb::open_usb_port(opt_.usb_selector);
#else
      return make_error("bridge.no_usb", "this eftpad was built without USB support (libusb)");
#endif
    }
    return pad::open_termios_port(opt_.serial_path, pad::serial_settings{opt_.baud});
  }

  bool stopping() const {
    return signals_ && signals_->requested();
  }

  bool sleep_for(milliseconds d) {
    const auto until = link_clock::now() + d;
    while (link_clock::now() < until) {
      std::array<pollfd, 1> fds{};
      nfds_t n = 0;
      if (signals_) fds[n++] = pollfd{signals_->fd(), POLLIN, 0};
      ::poll(fds.data(), n, poll_timeout(until));
      if (stopping()) return true;
    }
    return stopping();
  }

  std::string server_name() const {
    const auto& s = tcp_.server();
    return s.host + ":" + std::to_string(s.port);
  }

  // The server connection ended (closed by eftd, or an error): the pad's session ends with it.
  void server_ended(const std::string& why) {
    const auto lived = link_clock::now() - connected_at_;
    spdlog::warn("bridge: connection to {} ended: {}", server_name(), why);
    tcp_.close();
    to_server_.clear();
    if (lived >= opt_.accepted_after) {
      opt_.backoff.reset();  // it worked: the same server first, after the shortest wait
    } else {
      ++server_index_;  // refused or broken at once: the next server
    }
    schedule_reconnect(opt_.backoff.next());
    if (pad_present_) {
      reset_pending_ = true;
      drain_deadline_ = link_clock::now() + opt_.drain_timeout;
    }
  }

  // Nothing from the server for server_silence: a paused node, or a network that drops packets
  // without a reset. Its session is as good as dead, so the pad's ends and the next server is
  // tried (a paused active has lost its role to the standby by now).
  void server_silent() {
    spdlog::warn("bridge: {} silent for {} ms; trying the next server", server_name(), opt_.server_silence.count());
    tcp_.close();
    to_server_.clear();
    ++server_index_;
    schedule_reconnect(opt_.backoff.next());
    if (pad_present_) {
      reset_pending_ = true;
      drain_deadline_ = link_clock::now() + opt_.drain_timeout;
    }
  }

  void schedule_reconnect(milliseconds d) {
    if (d.count() > 0) spdlog::info("bridge: reconnecting in {} ms", d.count());
    reconnect_at_ = link_clock::now() + d;
  }

  void connect_failed() {
    spdlog::warn("bridge: connect to {} failed: {}", server_name(), tcp_.last_error());
    tcp_.close();
    ++server_index_;
    schedule_reconnect(opt_.backoff.next());
  }

  void begin_connect() {
    reconnect_at_.reset();
    bound_ = false;
    const auto& srv = opt_.servers[server_index_ % opt_.servers.size()];
    if (!tcp_.begin(srv, opt_.connect_timeout)) {
      if (!tcp_.last_error().empty())
        connect_failed();
      else {
        ++server_index_;
        schedule_reconnect(opt_.backoff.next());
      }
    }
  }

  void on_connected() {
    spdlog::info("bridge: connected to {}", server_name());
    connected_at_ = link_clock::now();
    last_rx_ = connected_at_;
    // Bytes the pad sent while no server was connected are the start of this connection's
    // session (its TLS ClientHello).
    bound_ = !to_server_.empty();
  }

  // Writes what the socket takes now; the rest waits for POLLOUT.
  void flush_to_server() {
    while (!to_server_.empty() && tcp_.current() == server_connection::state::connected) {
      const auto n = ::send(tcp_.fd(), to_server_.data(), to_server_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        to_server_.erase(to_server_.begin(), to_server_.begin() + n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      server_ended(errno_text(errno));
      return;
    }
  }

  // Reads what eftd sent and queues it on the link, opaque.
  void read_from_server(serial_link& line) {
    std::array<std::uint8_t, 16384> buf{};
    const auto n = ::recv(tcp_.fd(), buf.data(), buf.size(), 0);
    if (n == 0) {
      server_ended("closed by server");
      return;
    }
    if (n > 0) last_rx_ = link_clock::now();
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      server_ended(errno_text(errno));
      return;
    }
    if (auto st = line.send(byte_view(buf.data(), static_cast<std::size_t>(n))); !st) {
      // Only link.down (the pad is gone; handled by went_down) or a full queue, which the
      // backlog limit on reading prevents: either way this connection cannot go on.
      spdlog::warn("bridge: cannot pass the server's bytes to the pad: {} ({})", st.err().message,
                   st.err().code);
      tcp_.close();
      to_server_.clear();
      schedule_reconnect(milliseconds(0));
    }
  }

  // Returns true when stopped by a signal, false when the port failed.
  bool run_line(serial_link& line) {
    pad_present_ = false;
    reset_pending_ = false;
    reconnect_at_.reset();
    to_server_.clear();
    line.start();
    for (;;) {
      // What to wait for.
      std::optional<time_point> deadline = line.next_deadline();
      const auto tcp_state = tcp_.current();
      if (tcp_state == server_connection::state::connecting) earliest(deadline, tcp_.connect_deadline());
      if (tcp_state == server_connection::state::idle && pad_present_ && reconnect_at_)
        earliest(deadline, *reconnect_at_);
      if (reset_pending_) earliest(deadline, drain_deadline_);
      const bool watch_silence =
          opt_.server_silence.count() > 0 && tcp_state == server_connection::state::connected;
      if (watch_silence) earliest(deadline, last_rx_ + opt_.server_silence);
      std::array<pollfd, 3> fds{};
      nfds_t n = 0;
      fds[n++] = pollfd{line.fd(), POLLIN, 0};
      if (signals_) fds[n++] = pollfd{signals_->fd(), POLLIN, 0};
      int tcp_slot = -1;
      if (tcp_state == server_connection::state::connecting) {
        tcp_slot = static_cast<int>(n);
        fds[n++] = pollfd{tcp_.fd(), POLLOUT, 0};
      } else if (tcp_state == server_connection::state::connected) {
        short events = 0;
        if (line.queued_bytes() < max_link_backlog) events |= POLLIN;
        if (!to_server_.empty()) events |= POLLOUT;
        tcp_slot = static_cast<int>(n);
        fds[n++] = pollfd{tcp_.fd(), events, 0};
      }
      if (::poll(fds.data(), n, poll_timeout(deadline)) < 0 && errno != EINTR)
        spdlog::warn("bridge: poll failed: {}", errno_text(errno));
      if (stopping()) {
        spdlog::info("bridge: stopping");
        return true;
      }
      const short tcp_revents = tcp_slot >= 0 ? fds[static_cast<std::size_t>(tcp_slot)].revents : 0;

      // The pad side first: its bytes belong to the session that ran before any restart.
      auto ev = line.pump();
      bytes incoming;
      for (auto& d : ev.delivered) incoming.insert(incoming.end(), d.begin(), d.end());
      if (ev.port_failure) {
        spdlog::warn("bridge: {} ({}); closing the server connection", ev.port_failure->message,
                     ev.port_failure->code);
        return false;
      }
      if (ev.went_down) {
        if (pad_present_) {
          const auto& why = line.down_reason();
          spdlog::warn("bridge: link to the pad on {} down: {}; closing the server connection", line.path(),
                       why ? why->message : std::string("?"));
        }
        pad_present_ = false;
        reset_pending_ = false;
        tcp_.close();
        to_server_.clear();
        incoming.clear();
        reconnect_at_ = link_clock::now();  // once the pad is back
        line.start();                       // and look for it again
      }
      if (ev.peer_restarted) {
        // A new pad session: what it sent before belongs to the old one, and so does a server
        // connection that already carried bytes of it.
        spdlog::info("bridge: the pad restarted its link session");
        incoming.clear();
        to_server_.clear();
        reset_pending_ = false;
        if (tcp_.current() != server_connection::state::idle && bound_) {
          spdlog::info("bridge: closing the connection to {} (it carried the pad's previous session)",
                       server_name());
          tcp_.close();
          schedule_reconnect(milliseconds(0));
        }
      }
      if (ev.came_up) {
        if (!ready_) {
          ready_ = true;
          spdlog::info("bridge: link to the pad on {} up", line.path());
          if (opt_.on_ready) opt_.on_ready(line.path());
        }
        if (!pad_present_ && tcp_.current() == server_connection::state::idle && !reconnect_at_)
          reconnect_at_ = link_clock::now();
        pad_present_ = true;
      }
      if (!incoming.empty()) {
        if (reset_pending_) {
          // The pad's session ended with the server connection; these bytes were sent into it.
          spdlog::debug("bridge: dropping {} bytes of an ended session", incoming.size());
        } else {
          to_server_.insert(to_server_.end(), incoming.begin(), incoming.end());
          if (tcp_.current() == server_connection::state::connected) bound_ = true;
          if (tcp_.current() != server_connection::state::connected &&
              to_server_.size() > opt_.max_held_bytes) {
            spdlog::warn(
                "bridge: the pad sent more than {} bytes without a server connection; resetting its "
                "session",
                opt_.max_held_bytes);
            to_server_.clear();
            line.start();
          }
        }
      }

      // The server side.
      const auto now = link_clock::now();
      if (tcp_.current() == server_connection::state::connecting) {
        if (tcp_revents != 0) {
          switch (tcp_.on_connect_event()) {
            case server_connection::progress::connected:
              on_connected();
              break;
            case server_connection::progress::failed:
              connect_failed();
              break;
            case server_connection::progress::connecting:
              break;
          }
        } else if (now >= tcp_.connect_deadline()) {
          spdlog::warn("bridge: connect to {} timed out", server_name());
          tcp_.close();
          ++server_index_;
          schedule_reconnect(opt_.backoff.next());
        }
      } else if (tcp_.current() == server_connection::state::connected && tcp_revents != 0) {
        if (tcp_revents & (POLLIN | POLLHUP | POLLERR)) read_from_server(line);
      }
      if (opt_.server_silence.count() > 0 && tcp_.current() == server_connection::state::connected &&
          link_clock::now() >= last_rx_ + opt_.server_silence)
        server_silent();
      flush_to_server();

      if (reset_pending_ &&
          (line.queued_bytes() == 0 || now >= drain_deadline_ || line.state() != pad::link::link_state::up)) {
        spdlog::info("bridge: resetting the pad's link session (its server connection ended)");
        reset_pending_ = false;
        line.start();
      }
      if (tcp_.current() == server_connection::state::idle && pad_present_ && reconnect_at_ &&
          now >= *reconnect_at_)
        begin_connect();
    }
  }

  bridge_options opt_;
  std::optional<padsim::stop_signals> signals_;
  padsim::backoff_policy port_backoff_;
  server_connection tcp_;
  std::size_t server_index_ = 0;
  time_point connected_at_{};
  time_point last_rx_{};  // the server's last bytes (or the connect)
  bool bound_ = false;  // the connection carried bytes of the pad's current session
  bytes to_server_;     // pad bytes not yet written to the server (held while not connected)
  bool pad_present_ = false;
  bool ready_ = false;
  bool reset_pending_ = false;
  time_point drain_deadline_{};
  std::optional<time_point> reconnect_at_;
};

}  // namespace

int run_bridge(bridge_options options) {
  if (options.servers.empty()) {
    spdlog::error("bridge: no server configured");
    return 2;
  }
  if (options.serial_path.empty() == options.usb_selector.empty()) {
    spdlog::error("bridge: give exactly one of --serial and --usb");
    return 2;
  }
  bridge b(std::move(options));
  return b.run();
}

}  // namespace eftd::eftpad
