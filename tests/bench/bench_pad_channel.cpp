// bench_pad_channel: two figures of the PIN pad channel on this machine.
//
//  1. TLS 1.3 handshakes per second: an in-memory pair of tls_channel (server requiring a
//     device certificate, client verifying eftd's), both ends on this one thread, so the figure
//     is the CPU cost of a full handshake for both sides together (ECDSA P-256 certificates from
//     tools/pad-certs, no resumption: eftd never resumes pad sessions).
//  2. Command round trips per second over LAN: the pad side is the real LAN transport
//     (padsim::tcp_client + pad_session, TLS client) on its own thread; the server side answers
//     its hello, then sends ping after ping through TLS over loopback TCP and waits for each
//     pong. One command in flight at a time, as eftd drives a pad.
//
// Not a CTest test (its figures depend on the machine). Prints a readable summary, then one
// JSON line at the end:
//   {"bench":"pad_channel","tls_handshakes_per_s":...,"lan_round_trips_per_s":...,...}
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "eftd/core/tls_channel.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/tcp_client.hpp"
#include "eftd/padsim/virtual_pad.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using eftd::byte_view;
using eftd::bytes;

[[noreturn]] void die(const std::string& what) {
  std::cerr << "bench_pad_channel: " << what << std::endl;
  std::exit(1);
}

template <class T>
T must(eftd::result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.err().code + " " + r.err().message);
  return std::move(*r);
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct certs {
  std::string dir;
  std::string file(const std::string& name) const { return dir + "/" + name; }
};

// Development certificates from tools/pad-certs in a fresh temporary directory.
certs make_certs(const std::string& source_dir) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "eftd-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) die("mkdtemp failed");
  const std::string cmd = source_dir + "/tools/pad-certs " + tmpl + " localhost VP-0001 >/dev/null";
  if (std::system(cmd.c_str()) != 0) die("tools/pad-certs failed (is openssl installed?)");
  return {tmpl};
}

// ---- 1. handshakes in memory -------------------------------------------------------------

// Moves bytes between the two ends until neither has anything to send.
void pump(eftd::tls_channel& a, eftd::tls_channel& b) {
  for (;;) {
    const bytes ab = a.take_output();
    const bytes ba = b.take_output();
    if (ab.empty() && ba.empty()) return;
    if (!ab.empty() && !b.feed(ab)) die("handshake failed on the server side");
    if (!ba.empty() && !a.feed(ba)) die("handshake failed on the client side");
  }
}

struct figure {
  std::uint64_t count = 0;
  double seconds = 0;
  double per_second() const { return seconds > 0 ? static_cast<double>(count) / seconds : 0; }
};

figure bench_handshakes(const std::shared_ptr<const eftd::tls_context>& server_ctx,
                        const std::shared_ptr<const eftd::tls_context>& client_ctx, double duration) {
  figure f;
  const auto t0 = clock_type::now();
  do {
    auto server = must(eftd::tls_channel::server(server_ctx), "server channel");
    auto client = must(eftd::tls_channel::client(client_ctx, "localhost"), "client channel");
    pump(client, server);
    if (!server.handshake_done() || server.peer_cn() != "VP-0001") die("handshake did not complete");
    ++f.count;
  } while (seconds_since(t0) < duration);
  f.seconds = seconds_since(t0);
  return f;
}

// ---- 2. ping/pong over loopback TCP through TLS ------------------------------------------

// eftd's side of one pad connection, reduced to what the benchmark needs: blocking socket
// I/O with poll deadlines around the same tls_channel and frame codec eftd uses.
class server_end {
 public:
  server_end(int fd, eftd::tls_channel tls) : fd_(fd), tls_(std::move(tls)) {}

  void send(const eftd::pad::envelope& e) {
    if (!tls_.write(eftd::pad::encode(e))) die("TLS write failed");
    flush();
  }

  eftd::pad::envelope next(std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      auto f = frames_.next();
      if (!f) die("bad frame from the pad: " + f.err().code);
      if (f->has_value()) {
        auto env = eftd::pad::decode_body(**f);
        if (!env) die("undecodable frame from the pad: " + env.err().code);
        if (!replay_.accept(env->seq)) die("replayed frame from the pad");
        return std::move(*env);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        die("the pad did not answer");
      std::uint8_t buf[16384];
      const auto n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) die("the pad closed the connection");
      const auto st = tls_.feed(byte_view(buf, static_cast<std::size_t>(n)));
      flush();
      if (!st) die("TLS: " + st.err().message);
      frames_.feed(tls_.read());
    }
  }

 private:
  void flush() {
    const bytes out = tls_.take_output();
    for (std::size_t at = 0; at < out.size();) {
      const auto n = ::write(fd_, out.data() + at, out.size() - at);
      if (n <= 0) die("write to the pad failed");
      at += static_cast<std::size_t>(n);
    }
  }
  int fd_;
  eftd::tls_channel tls_;
  eftd::pad::frame_reader frames_;
  eftd::pad::replay_guard replay_;
};

figure bench_round_trips(const std::shared_ptr<const eftd::tls_context>& server_ctx,
                         const std::shared_ptr<const eftd::tls_context>& client_ctx, double duration) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 1) != 0 ||
      ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("cannot listen on loopback");

  // The pad: the real LAN transport and command executor, as `eftpad virtual --tls-*` runs them.
  eftd::padsim::virtual_pad hardware(
      {}, [](const std::string&) {}, true);
  eftd::padsim::pad_identity id;
  id.pad_id = "P01";
  id.serial = "VP-0001";
  eftd::padsim::pad_session session(id, hardware, hardware);
  eftd::padsim::tcp_client_options opt;
  opt.servers.push_back({"127.0.0.1", ntohs(a.sin_port)});
  opt.handle_signals = false;
  opt.tls = client_ctx;
  eftd::padsim::tcp_client client(std::move(opt), session);
  std::thread pad_thread([&client] { client.run(); });

  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, 10000) <= 0) die("the pad did not connect");
  const int fd = ::accept(lfd, nullptr, nullptr);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  server_end server(fd, must(eftd::tls_channel::server(server_ctx), "server channel"));
  eftd::pad::seq_counter seq;

  using namespace std::chrono_literals;
  const auto hello = server.next(10s);
  if (!std::holds_alternative<eftd::pad::hello>(hello.body)) die("the pad did not say hello");
  server.send({seq.next(), hello.seq, eftd::pad::hello_ack{true, "bench", ""}});

  auto round_trip = [&] {
    const std::uint32_t s = seq.next();
    server.send({s, 0, eftd::pad::ping{}});
    const auto reply = server.next(10s);
    if (reply.ref != s || !std::holds_alternative<eftd::pad::pong>(reply.body)) die("expected a pong");
  };
  for (int i = 0; i < 200; ++i) round_trip();  // warm-up: caches, TCP windows, the pad's thread

  figure f;
  const auto t0 = clock_type::now();
  do {
    round_trip();
    ++f.count;
  } while (seconds_since(t0) < duration);
  f.seconds = seconds_since(t0);

  client.stop();
  pad_thread.join();
  ::close(fd);
  ::close(lfd);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench_pad_channel - TLS 1.3 handshakes/s (in memory) and pad command round trips/s "
      "(loopback TCP through TLS) on this machine; the last line is JSON"};
  double seconds = 2.0;
  std::string source_dir = EFTD_SOURCE_DIR;
  app.add_option("--seconds", seconds, "duration of each measurement")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--source-dir", source_dir, "eftd source tree (for tools/pad-certs)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::warn);  // the pad transport logs connects at info
  const certs c = make_certs(source_dir);
  const auto server_ctx =
      must(eftd::tls_context::server({c.file("server.pem"), c.file("server.key"), c.file("ca.pem")}),
           "server context");
  const auto client_ctx =
      must(eftd::tls_context::client(c.file("ca.pem"), c.file("VP-0001.pem"), c.file("VP-0001.key")),
           "client context");

  const figure hs = bench_handshakes(server_ctx, client_ctx, seconds);
  std::printf("TLS 1.3 handshakes (in-memory pair, both ends on one thread): %llu in %.2f s = %.0f/s\n",
              static_cast<unsigned long long>(hs.count), hs.seconds, hs.per_second());
  const figure rt = bench_round_trips(server_ctx, client_ctx, seconds);
  std::printf(
      "pad command round trips (ping/pong, loopback TCP, TLS 1.3): %llu in %.2f s = %.0f/s (%.1f us each)\n",
      static_cast<unsigned long long>(rt.count), rt.seconds, rt.per_second(),
      rt.count ? rt.seconds * 1e6 / static_cast<double>(rt.count) : 0.0);
  std::printf(
      "{\"bench\":\"pad_channel\",\"tls_handshakes_per_s\":%.0f,\"lan_round_trips_per_s\":%.0f,"
      "\"handshakes\":%llu,\"round_trips\":%llu,\"seconds_each\":%.2f,\"tls\":\"1.3\",\"transport\":"
      "\"loopback "
      "tcp\",\"hardware_threads\":%u}\n",
      hs.per_second(), rt.per_second(), static_cast<unsigned long long>(hs.count),
      static_cast<unsigned long long>(rt.count), seconds, std::thread::hardware_concurrency());
  std::fflush(stdout);
  std::error_code ec;
  std::filesystem::remove_all(c.dir, ec);
  return 0;
}
