// `eftpad bridge` over a socat pty pair, against a TCP peer in the test: the test plays the pad
// (the link layer on the other pty, pumped by its own thread) and the server (a listener on
// port 0). Bytes go through in order both ways; a server connection that ends resets the pad's
// link session after the server's last bytes arrived; a pad that restarts gets a fresh server
// connection; a pad that goes silent or hangs up closes the server connection; the bridge
// fails over to the next server. No sleeps: every wait has a deadline on an event.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "eftd/padsim/serial_client.hpp"
#include "process.hpp"
#include "socat_pair.hpp"

using namespace std::chrono_literals;
using eftd::byte_view;
using eftd::bytes;
using eftd::test::process;
using eftd::test::socat_pair;
using clock_type = std::chrono::steady_clock;

namespace {

bytes text_bytes(const std::string& s) {
  return bytes(s.begin(), s.end());
}

bytes random_bytes(std::mt19937& rng, std::size_t n) {
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// Short link timers on both ends, so "the pad went silent" shows within a second.
eftd::pad::link::link_config test_link() {
  eftd::pad::link::link_config c;
  c.retransmit_timeout_ms = 200;
  c.max_retries = 4;
  return c;
}

// The test's pad: the link layer on a pty, pumped by a thread; what it receives and when the
// bridge restarted the link session are recorded for the test thread.
class pad_station {
 public:
  explicit pad_station(const std::string& path) {
    auto port = eftd::pad::open_termios_port(path);
    INFO(path << ": " << (port ? std::string("ok") : port.err().code + " " + port.err().message));
    REQUIRE(port.has_value());
    link_ = std::make_unique<eftd::padsim::serial_link>(std::move(*port), test_link());
    link_->start();
    thread_ = std::thread([this] { loop(); });
  }
  ~pad_station() { close(); }

  // Stops pumping and closes the port: the pad is gone.
  void close() {
    {
      std::lock_guard lock(m_);
      if (stop_) return;
      stop_ = true;
    }
    wake_.notify();
    thread_.join();
    link_.reset();
  }
  void send(const bytes& b) {
    {
      std::lock_guard lock(m_);
      to_send_.push_back(b);
    }
    wake_.notify();
  }
  // A new link session from the pad's side (the pad rebooted).
  void restart() {
    {
      std::lock_guard lock(m_);
      restart_ = true;
    }
    wake_.notify();
  }
  bool send_failed() {
    std::lock_guard lock(m_);
    return send_failed_;
  }
  bool wait_up(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, timeout, [&] { return up_; });
  }
  // Waits until `n` bytes arrived since the last take; returns them (fewer on timeout).
  bytes take_received(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
    bytes out;
    out.swap(received_);
    return out;
  }
  // Waits for the bridge's next link RESET; returns the bytes that arrived before it.
  std::optional<bytes> wait_restarted(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, timeout, [&] { return restarts_ > 0; })) return std::nullopt;
    --restarts_;
    bytes before;
    before.swap(received_before_restart_);
    return before;
  }

 private:
  void loop() {
    for (;;) {
      std::array<pollfd, 2> fds{pollfd{link_->fd(), POLLIN, 0}, pollfd{wake_.fd(), POLLIN, 0}};
      int timeout = -1;
      if (auto d = link_->next_deadline()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*d - clock_type::now()).count();
        timeout = static_cast<int>(std::max<long long>(0, left));
      }
      ::poll(fds.data(), fds.size(), timeout);
      wake_.clear();
      std::lock_guard lock(m_);
      if (stop_) return;
      if (restart_) {
        restart_ = false;
        link_->start();
      }
      for (auto& b : to_send_)
        if (!link_->send(b)) send_failed_ = true;  // checked by the test thread
      to_send_.clear();
      auto ev = link_->pump();
      for (const auto& d : ev.delivered) received_.insert(received_.end(), d.begin(), d.end());
      if (ev.peer_restarted) {
        ++restarts_;
        received_before_restart_ = received_;
        received_.clear();
      }
      if (ev.came_up) up_ = true;
      // Like a real pad: a link that went down (nobody answered) is started again, so the pad
      // finds the bridge whenever it comes.
      if (ev.went_down) link_->start();
      cv_.notify_all();
    }
  }

  std::unique_ptr<eftd::padsim::serial_link> link_;
  eftd::padsim::wake_fd wake_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool restart_ = false;
  bool up_ = false;
  bool send_failed_ = false;
  std::vector<bytes> to_send_;
  bytes received_;
  bytes received_before_restart_;
  int restarts_ = 0;
  std::thread thread_;
};

// A TCP listener on a free loopback port: the server the bridge relays to.
class listener {
 public:
  listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd_); }
  int port() const { return port_; }
  // The next connection, or -1 when none came in time.
  int accept(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return -1;
    return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// One accepted server-side connection.
class server_conn {
 public:
  explicit server_conn(int fd) : fd_(fd) {}
  ~server_conn() { close(); }
  bool valid() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(const bytes& b) {
    std::size_t done = 0;
    while (done < b.size()) {
      const auto n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      done += static_cast<std::size_t>(n);
    }
  }
  // Reads until `n` bytes arrived, the peer closed, or the deadline.
  bytes read(std::size_t n, std::chrono::milliseconds timeout) {
    bytes got;
    const auto deadline = clock_type::now() + timeout;
    while (got.size() < n) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      std::uint8_t buf[8192];
      const auto r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) {
        eof_ = true;
        break;
      }
      got.insert(got.end(), buf, buf + r);
    }
    return got;
  }
  // True once the bridge closed this connection (bytes on the way are discarded).
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (!eof_ && clock_type::now() < deadline)
      read(1 << 20, std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now()));
    return eof_;
  }

 private:
  int fd_ = -1;
  bool eof_ = false;
};

struct bridge_proc {
  std::string dir = eftd::test::make_temp_dir("bridge");
  std::string log_path = dir + "/bridge.log";
  std::unique_ptr<process> proc;

  bridge_proc(const std::string& tty, const std::vector<int>& ports, const std::vector<std::string>& extra = {}) {
    // --log-level belongs to eftpad itself: before the subcommand.
    std::vector<std::string> args{"--log-level", "debug",
                                  "bridge",      "--serial",
                                  tty,           "--backoff-initial-ms",
                                  "50",          "--backoff-max-ms",
                                  "400",         "--link-timeout-ms",
                                  "200",         "--link-retries",
                                  "4",           "--connect-timeout-ms",
                                  "2000"};
    for (int p : ports) {
      args.push_back("--server");
      args.push_back("127.0.0.1:" + std::to_string(p));
    }
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<process>(eftd::test::bin_path("eftpad"), args, log_path);
  }
  ~bridge_proc() {
    if (proc) proc->stop();
    // A REQUIRE failed: the log is about to be removed, so show it.
    if (std::uncaught_exceptions() > 0) std::cerr << "--- bridge log ---\n" << log() << "---\n";
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string log() const {
    std::ifstream in(log_path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
};

std::string hex(const bytes& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    s += digits[x >> 4];
    s += digits[x & 15];
  }
  return s;
}

// socat, the test's pad on the first pty, the bridge on the second, the server accepting it.
struct rig {
  socat_pair cable;
  listener server;
  std::unique_ptr<pad_station> pad;
  std::unique_ptr<bridge_proc> bridge;
  std::string bridge_tty;

  explicit rig(socat_pair::mode m = socat_pair::plain, std::vector<int> extra_servers_first = {},
               const std::vector<std::string>& bridge_args = {})
      : cable(m) {
    const auto a = cable.first();
    REQUIRE_FALSE(a.empty());
    pad = std::make_unique<pad_station>(a);
    bridge_tty = cable.second();
    INFO(cable.log());
    REQUIRE_FALSE(bridge_tty.empty());
    extra_servers_first.push_back(server.port());
    bridge = std::make_unique<bridge_proc>(bridge_tty, extra_servers_first, bridge_args);
    // In hangup_on_close mode socat relays only once the bridge has opened its pty.
    REQUIRE(cable.wait_relaying());
  }
};

}  // namespace

TEST_CASE("bridge: READY once the link is up then bytes go through in order both ways", "[serial][bridge]") {
  rig r;
  INFO("bridge log: " << r.bridge->log_path);
  const auto ready = r.bridge->proc->wait_ready(10s);
  REQUIRE(ready.has_value());
  CHECK(*ready == "{\"bridge\":\"" + r.bridge_tty + "\"}");
  REQUIRE(r.pad->wait_up(10s));
  server_conn conn(r.server.accept(10s));
  REQUIRE(conn.valid());

  std::mt19937 rng(42);
  const bytes up = random_bytes(rng, 48 * 1024);
  const bytes down = random_bytes(rng, 48 * 1024);
  // Both directions at once, in pieces that do not line up with link frames.
  for (std::size_t off = 0; off < up.size(); off += 3001)
    r.pad->send(bytes(up.begin() + static_cast<std::ptrdiff_t>(off),
                      up.begin() + static_cast<std::ptrdiff_t>(std::min(up.size(), off + 3001))));
  conn.send(down);
  const bytes at_server = conn.read(up.size(), 30s);
  const bytes at_pad = r.pad->take_received(down.size(), 30s);
  CHECK(at_server.size() == up.size());
  CHECK(at_server == up);  // random test bytes: printing them on failure is harmless
  CHECK(at_pad.size() == down.size());
  CHECK(at_pad == down);

  // The bridge never logs payload: look for a marker in the clear and in hex.
  const bytes marker = text_bytes("MARKER-4761739001010119");
  r.pad->send(marker);
  CHECK(conn.read(marker.size(), 10s) == marker);
  CHECK(r.bridge->proc->stop() == 0);  // SIGTERM: a clean exit
  const auto log = r.bridge->log();
  CHECK(log.find("MARKER") == std::string::npos);
  CHECK(log.find(hex(marker)) == std::string::npos);
  CHECK(log.find("connected to 127.0.0.1:" + std::to_string(r.server.port())) != std::string::npos);
}

TEST_CASE("bridge: a server connection that ends resets the pad's session after its last bytes",
          "[serial][bridge]") {
  rig r;
  INFO("bridge log: " << r.bridge->log_path);
  REQUIRE(r.bridge->proc->wait_ready(10s));
  REQUIRE(r.pad->wait_up(10s));
  server_conn first(r.server.accept(10s));
  REQUIRE(first.valid());
  r.pad->send(text_bytes("session-1"));
  CHECK(first.read(9, 10s) == text_bytes("session-1"));

  // The server answers and hangs up (a refusal looks like this): the answer reaches the pad
  // before the RESET that ends the pad's session.
  first.send(text_bytes("goodbye"));
  first.close();
  const auto before = r.pad->wait_restarted(10s);
  REQUIRE(before.has_value());
  CHECK(*before == text_bytes("goodbye"));

  // The pad's new session goes into a new connection, and nothing of the old one does.
  r.pad->send(text_bytes("session-2"));
  server_conn second(r.server.accept(10s));
  REQUIRE(second.valid());
  CHECK(second.read(9, 10s) == text_bytes("session-2"));
  CHECK(second.read(1, 300ms).empty());
  // And the other way.
  second.send(text_bytes("welcome"));
  CHECK(r.pad->take_received(7, 10s) == text_bytes("welcome"));
  r.bridge->proc->stop();
  CHECK(r.bridge->log().find("resetting the pad's link session") != std::string::npos);
}

TEST_CASE("bridge: a pad that restarts its link session gets a fresh server connection", "[serial][bridge]") {
  rig r;
  INFO("bridge log: " << r.bridge->log_path);
  REQUIRE(r.bridge->proc->wait_ready(10s));
  REQUIRE(r.pad->wait_up(10s));
  server_conn first(r.server.accept(10s));
  REQUIRE(first.valid());
  r.pad->send(text_bytes("old"));
  CHECK(first.read(3, 10s) == text_bytes("old"));

  r.pad->restart();
  CHECK(first.closed_by_peer(10s));
  server_conn second(r.server.accept(10s));
  REQUIRE(second.valid());
  r.pad->send(text_bytes("new"));
  CHECK(second.read(3, 10s) == text_bytes("new"));
}

TEST_CASE("bridge: a pad that goes silent or hangs up closes the server connection", "[serial][bridge]") {
  SECTION("silent: the link layer's retries run out when the server sends") {
    rig r;
    INFO("bridge log: " << r.bridge->log_path);
    REQUIRE(r.bridge->proc->wait_ready(10s));
    REQUIRE(r.pad->wait_up(10s));
    server_conn conn(r.server.accept(10s));
    REQUIRE(conn.valid());
    r.pad->close();  // the pad stops answering; the pty stays (a powered-off pad on RS232)
    conn.send(text_bytes("are you there"));
    CHECK(conn.closed_by_peer(10s));
    r.bridge->proc->stop();
    CHECK(r.bridge->log().find("link to the pad on " + r.bridge_tty + " down") != std::string::npos);
  }
  SECTION("hangup: the tty goes away (an unplugged USB-serial adapter)") {
    rig r(socat_pair::hangup_on_close);
    INFO("bridge log: " << r.bridge->log_path);
    REQUIRE(r.bridge->proc->wait_ready(10s));
    REQUIRE(r.pad->wait_up(10s));
    server_conn conn(r.server.accept(10s));
    REQUIRE(conn.valid());
    r.pad->close();  // socat sees the pty closed and exits: the bridge's pty hangs up
    CHECK(conn.closed_by_peer(10s));
    r.bridge->proc->stop();
    CHECK(r.bridge->log().find("serial.hangup") != std::string::npos);
  }
}

TEST_CASE("bridge: an unreachable first server is skipped for the next one", "[serial][bridge]") {
  int dead_port = 0;
  {
    listener gone;  // a port that was free a moment ago: connecting to it is refused
    dead_port = gone.port();
  }
  rig r(socat_pair::plain, {dead_port});
  INFO("bridge log: " << r.bridge->log_path);
  REQUIRE(r.bridge->proc->wait_ready(10s));
  server_conn conn(r.server.accept(10s));
  REQUIRE(conn.valid());
  r.pad->send(text_bytes("via backup"));
  CHECK(conn.read(10, 10s) == text_bytes("via backup"));
  r.bridge->proc->stop();
  CHECK(r.bridge->log().find("connect to 127.0.0.1:" + std::to_string(dead_port) + " failed") !=
        std::string::npos);
}

TEST_CASE("bridge: a server that goes silent is left for the next one (--server-silence-ms)",
          "[serial][bridge]") {
  listener silent;  // accepts and never says a word: a paused (SIGSTOP) active keeps its sockets
  rig r(socat_pair::plain, {silent.port()}, {"--server-silence-ms", "500"});
  INFO("bridge log: " << r.bridge->log_path);
  REQUIRE(r.bridge->proc->wait_ready(10s));
  REQUIRE(r.pad->wait_up(10s));
  server_conn quiet(silent.accept(10s));
  REQUIRE(quiet.valid());
  r.pad->send(text_bytes("hello-1"));
  CHECK(quiet.read(7, 10s) == text_bytes("hello-1"));
  // No answer: the bridge drops that server, ends the pad's session and goes to the next one.
  CHECK(quiet.closed_by_peer(10s));
  REQUIRE(r.pad->wait_restarted(10s).has_value());
  r.pad->send(text_bytes("hello-2"));
  server_conn backup(r.server.accept(10s));
  REQUIRE(backup.valid());
  CHECK(backup.read(7, 10s) == text_bytes("hello-2"));
  r.bridge->proc->stop();
  CHECK(r.bridge->log().find("silent for 500 ms; trying the next server") != std::string::npos);
}

TEST_CASE("bridge: bad arguments exit 2 with a clear message", "[serial][bridge]") {
  const auto dir = eftd::test::make_temp_dir("bridge-args");
  auto run = [&](std::vector<std::string> args) {
    process p(eftd::test::bin_path("eftpad"), args, dir + "/err.log");
    return p.wait_exit(10s).value_or(-1);
  };
  CHECK(run({"bridge", "--serial", "/dev/null", "--server", "nonsense"}) == 2);
  CHECK(run({"bridge", "--serial", "/dev/ttyX", "--baud", "12345", "--server", "127.0.0.1:1"}) == 2);
  CHECK(run({"bridge", "--server", "127.0.0.1:1"}) == 2);  // neither --serial nor --usb
  // The pad's side: TCP or a serial port, not both.
  CHECK(run({"virtual", "--serial-port", "/dev/null", "--server", "127.0.0.1:1", "--pad-id", "P01",
             "--serial", "VP-0001"}) == 2);
  std::ifstream in(dir + "/err.log");
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(log.find("padsim.bad_address") != std::string::npos);
  CHECK(log.find("serial.bad_baud") != std::string::npos);
  CHECK(log.find("give exactly one of --serial and --usb") != std::string::npos);
  CHECK(log.find("give --server (TCP to eftd) or --serial-port") != std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_CASE("bridge: a USB pad that is not attached gives a clean error and the bridge keeps looking",
          "[serial][bridge]") {
  // Logs on stdout, so the test waits for the line instead of a READY that must not come.
  process p("/bin/sh", {"-c", "exec \"$0\" \"$@\" 2>&1", eftd::test::bin_path("eftpad"), "bridge", "--usb",
                        "0000:0001", "--server", "127.0.0.1:1", "--backoff-initial-ms", "50"});
  std::optional<std::string> line;
  const auto deadline = clock_type::now() + 10s;
  while ((line = p.read_line(std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now())))) {
    if (line->find("bridge:") != std::string::npos &&
        (line->find("usb.") != std::string::npos || line->find("without USB support") != std::string::npos))
      break;
  }
  REQUIRE(line.has_value());
  INFO(*line);
  if (line->find("without USB support") != std::string::npos) {
    CHECK(p.wait_exit(10s) == 2);  // eftpad built without libusb
    return;
  }
  // No such device (or no USB subsystem in this container): a clean error, and a retry.
  CHECK((line->find("usb.no_device") != std::string::npos ||
         line->find("usb.unavailable") != std::string::npos));
  CHECK(line->find("retrying in") != std::string::npos);
  CHECK(p.running());
  CHECK(p.stop() == 0);
}
