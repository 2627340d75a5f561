// The real `eftpad virtual` process against a tiny server played by the test (the eftd side
// of the pad channel): handshake, commands, replay, refusal, garbage, failover, signals.
// Single-threaded: the test is the server and waits on poll() with deadlines, never sleeps.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/core/tr31.hpp"
#include "eftd/pad/codec.hpp"
#include "pad_test_util.hpp"
#include "process.hpp"

using namespace eftd::pad;
using namespace std::chrono_literals;
using eftd::test::process;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto deadline = 10s;

// The eftd side of one pad connection at a time.
class test_server {
 public:
  test_server() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~test_server() {
    close_conn();
    ::close(listen_fd_);
  }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Accepts the next connection (dropping the current one).
  bool accept(std::chrono::milliseconds timeout = deadline) {
    close_conn();
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    conn_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    reader_.reset();
    guard_.reset();
    out_seq_ = seq_counter{};
    return conn_fd_ >= 0;
  }

  // The next decoded frame from the pad; nullopt on timeout or when the pad closed.
  std::optional<envelope> read(std::chrono::milliseconds timeout = deadline) {
    const auto until = clock_type::now() + timeout;
    for (;;) {
      auto f = reader_.next();
      REQUIRE(f.has_value());
      if (f->has_value()) {
        auto d = decode_body(**f);
        REQUIRE(d.has_value());
        REQUIRE(guard_.accept(d->seq).has_value());  // the pad's own seq rule
        return std::move(*d);
      }
      if (!fill(until)) return std::nullopt;
    }
  }

  // True once the pad closed this connection (anything still unread is discarded).
  bool wait_closed(std::chrono::milliseconds timeout = deadline) {
    const auto until = clock_type::now() + timeout;
    while (fill(until)) {
    }
    return peer_closed_;
  }

  std::uint32_t send(message m, std::uint32_t ref = 0) {
    const auto seq = out_seq_.next();
    send_raw(encode(envelope{seq, ref, std::move(m)}));
    return seq;
  }
  // A seq for a hand-made frame, so later send() calls stay strictly increasing.
  std::uint32_t next_seq() { return out_seq_.next(); }
  void send_raw(const eftd::bytes& b) {
    REQUIRE(::send(conn_fd_, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size()));
  }

  // Reads hello, answers hello_ack; returns the hello.
  hello handshake(bool accepted = true) {
    auto h = read();
    REQUIRE(h.has_value());
    REQUIRE(std::holds_alternative<hello>(h->body));
    CHECK(h->seq == 1);
    send(hello_ack{accepted, "test-server", accepted ? "" : "unknown pad"}, h->seq);
    return std::get<hello>(h->body);
  }

  void close_conn() {
    if (conn_fd_ >= 0) ::close(conn_fd_);
    conn_fd_ = -1;
    peer_closed_ = false;
  }

 private:
  bool fill(clock_type::time_point until) {
    if (conn_fd_ < 0 || peer_closed_) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
    if (left <= 0) return false;
    pollfd p{conn_fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) return false;
    std::uint8_t buf[4096];
    ssize_t r = ::recv(conn_fd_, buf, sizeof buf, 0);
    if (r <= 0) {
      peer_closed_ = true;
      return false;
    }
    reader_.feed(eftd::byte_view(buf, static_cast<std::size_t>(r)));
    return true;
  }

  int listen_fd_ = -1;
  int conn_fd_ = -1;
  int port_ = 0;
  bool peer_closed_ = false;
  frame_reader reader_;
  replay_guard guard_;
  seq_counter out_seq_;
};

std::string card(const char* name) {
  return eftd::test::source_path("pinpad-firmware-shim/cards/") + name;
}

// Temporary directories of this run, removed when the test executable exits.
struct temp_dirs {
  std::vector<std::string> dirs;
  std::string make(const std::string& tag) {
    dirs.push_back(eftd::test::make_temp_dir("pad-" + tag));
    return dirs.back();
  }
  ~temp_dirs() {
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
} temp;

std::string stderr_file(const char* tag) {
  return temp.make(tag) + "/stderr.log";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> pad_args(const std::vector<std::string>& servers,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> a{"virtual", "--pad-id",
                             "P01",     "--serial",
                             "VP-0001", "--backoff-initial-ms",
                             "20",      "--backoff-max-ms",
                             "200",     "--handshake-timeout-ms",
                             "5000"};
  for (const auto& s : servers) {
    a.push_back("--server");
    a.push_back(s);
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::string track2_of(const card_read& c) {
  return {reinterpret_cast<const char*>(c.track2.view().data()), c.track2.size()};
}

}  // namespace

TEST_CASE("eftpad virtual: hello with identity, READY after hello_ack", "[pad][process]") {
  test_server srv;
  process pad(eftd::test::bin_path("eftpad"),
              pad_args({srv.address()}, {"--card", card("visa-approve.toml")}), stderr_file("hello"));
  REQUIRE(srv.accept());
  const auto h = srv.handshake();
  CHECK(h.pad_id == "P01");
  CHECK(h.serial == "VP-0001");
  CHECK(h.version == protocol_version);
  CHECK_FALSE(h.capabilities.empty());
  auto ready = pad.wait_ready(deadline);
  REQUIRE(ready.has_value());
  CHECK(*ready == R"({"pad_id":"P01"})");
  CHECK(pad.stop() == 0);
}

TEST_CASE("eftpad virtual: display is shown and acked, read_card returns the profiles in turn",
          "[pad][process]") {
  test_server srv;
  process pad(
      eftd::test::bin_path("eftpad"),
      pad_args({srv.address()}, {"--card", card("visa-approve.toml"), "--card", card("mc-approve.toml")}),
      stderr_file("cmds"));
  REQUIRE(srv.accept());
  srv.handshake();
  REQUIRE(pad.wait_ready(deadline));

  const auto d = srv.send(display{{"Insert card", "125.00 PLN"}, "en"});
  auto a = srv.read();
  REQUIRE(a.has_value());
  CHECK(std::holds_alternative<ack>(a->body));
  CHECK(a->ref == d);
  auto shown = pad.wait_for_prefix("DISPLAY ", deadline);
  REQUIRE(shown.has_value());
  CHECK(*shown == "Insert card | 125.00 PLN");

  const std::pair<const char*, const char*> expected[] = {
      {"visa-approve.toml", "4761739001010119=29122011143804489"},
      {"mc-approve.toml", "5413330089020011=29121010000000000"},
      {"visa-approve.toml", "4761739001010119=29122011143804489"}};
  for (const auto& [file, track] : expected) {
    INFO(file);
    const auto rc = srv.send(read_card{12500, "PLN", 7, 60000, {"Present card"}});
    auto r = srv.read();
    REQUIRE(r.has_value());
    CHECK(r->ref == rc);
    REQUIRE(std::holds_alternative<card_read>(r->body));
    const auto& c = std::get<card_read>(r->body);
    CHECK(c.mode == entry_mode::magstripe);
    CHECK(track2_of(c) == track);  // test cards only; Catch would print them on failure
  }

  const auto x = srv.send(cancel{});
  auto xa = srv.read();
  REQUIRE(xa.has_value());
  CHECK(std::holds_alternative<ack>(xa->body));
  CHECK(xa->ref == x);

  const auto p = srv.send(ping{});
  auto pg = srv.read();
  REQUIRE(pg.has_value());
  CHECK(std::holds_alternative<pong>(pg->body));
  CHECK(pg->ref == p);
  CHECK(pad.stop() == 0);
}

TEST_CASE("eftpad virtual --no-card: read_card gets pad_error timeout", "[pad][process]") {
  test_server srv;
  process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}, {"--no-card"}),
              stderr_file("nocard"));
  REQUIRE(srv.accept());
  srv.handshake();
  const auto rc = srv.send(read_card{100, "PLN", 7, 1000, {}});
  auto r = srv.read();
  REQUIRE(r.has_value());
  CHECK(r->ref == rc);
  REQUIRE(std::holds_alternative<pad_error>(r->body));
  CHECK(std::get<pad_error>(r->body).code == static_cast<std::uint16_t>(pad_error_code::timeout));
  CHECK(pad.stop() == 0);
}

TEST_CASE("eftpad virtual: a replayed frame makes the pad drop the connection and reconnect",
          "[pad][process][security]") {
  test_server srv;
  const auto log = stderr_file("replay");
  process pad(eftd::test::bin_path("eftpad"),
              pad_args({srv.address()}, {"--card", card("visa-approve.toml")}), log);
  REQUIRE(srv.accept());
  srv.handshake();
  const auto frame = encode(envelope{2, 0, display{{"first"}, "en"}});
  REQUIRE(srv.next_seq() == 2);
  srv.send_raw(frame);
  auto a = srv.read();
  REQUIRE(a.has_value());
  CHECK(std::holds_alternative<ack>(a->body));
  srv.send_raw(frame);  // the same seq again
  CHECK(srv.wait_closed());
  REQUIRE(srv.accept());  // reconnected, and starts over with hello seq 1
  srv.handshake();
  CHECK(pad.running());
  CHECK(pad.stop() == 0);
  CHECK(slurp(log).find("pad.replay") != std::string::npos);
  // The replayed display was not shown twice.
  std::size_t shown = 0;
  for (const auto& l : pad.output()) shown += l == "DISPLAY first";
  CHECK(shown == 1);
}

TEST_CASE("eftpad virtual: a refused pad reconnects later and never prints READY", "[pad][process]") {
  test_server srv;
  const auto log = stderr_file("refused");
  process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}), log);
  REQUIRE(srv.accept());
  srv.handshake(false);
  CHECK(srv.wait_closed());
  REQUIRE(srv.accept());
  srv.handshake(true);
  auto ready = pad.wait_ready(deadline);
  REQUIRE(ready.has_value());
  for (std::size_t i = 0; i + 1 < pad.output().size(); ++i) CHECK(pad.output()[i].rfind("READY", 0) != 0);
  CHECK(pad.stop() == 0);
  CHECK(slurp(log).find("unknown pad") != std::string::npos);
}

TEST_CASE("eftpad virtual: unknown message type gets unsupported, the connection stays", "[pad][process]") {
  test_server srv;
  process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}), stderr_file("unknown"));
  REQUIRE(srv.accept());
  srv.handshake();
  const auto seq = srv.next_seq();
  auto raw = pad_test::frame_body(0x6F, "01 0001 00", seq);
  raw.insert(raw.begin(), {0x00, static_cast<std::uint8_t>(raw.size())});
  srv.send_raw(raw);
  auto r = srv.read();
  REQUIRE(r.has_value());
  CHECK(r->ref == seq);
  REQUIRE(std::holds_alternative<pad_error>(r->body));
  CHECK(std::get<pad_error>(r->body).code == static_cast<std::uint16_t>(pad_error_code::unsupported));

  const auto p = srv.send(ping{});
  auto pg = srv.read();
  REQUIRE(pg.has_value());
  CHECK(std::holds_alternative<pong>(pg->body));
  CHECK(pg->ref == p);
  CHECK(pad.stop() == 0);
}

TEST_CASE("eftpad virtual: garbage from the server means reconnect, not a crash",
          "[pad][process][security]") {
  const std::vector<std::pair<const char*, const char*>> garbage{
      {"zero length", "0000"},
      {"oversize length", "FFFF01"},
      {"bad version", "000A 07 10 00000002 00000000"},
  };
  for (const auto& [what, hex] : garbage) {
    INFO(what);
    test_server srv;
    const auto log = stderr_file("garbage");
    process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}), log);
    REQUIRE(srv.accept());
    srv.handshake();
    srv.send_raw(pad_test::hx(hex));
    CHECK(srv.wait_closed());
    REQUIRE(srv.accept());
    srv.handshake();
    CHECK(pad.running());
    CHECK(pad.stop() == 0);
  }
}

TEST_CASE("eftpad virtual: tries the next server when one is down", "[pad][process][failover]") {
  // A port nobody listens on: bind, read the port, close.
  int dead_port = 0;
  {
    test_server gone;
    dead_port = gone.port();
  }
  test_server srv;
  process pad(eftd::test::bin_path("eftpad"),
              pad_args({"127.0.0.1:" + std::to_string(dead_port), srv.address()}), stderr_file("failover"));
  REQUIRE(srv.accept());
  const auto h = srv.handshake();
  CHECK(h.pad_id == "P01");
  REQUIRE(pad.wait_ready(deadline));
  CHECK(pad.stop() == 0);
}

TEST_CASE("eftpad virtual: exits 0 on SIGINT and SIGTERM", "[pad][process]") {
  for (int sig : {SIGINT, SIGTERM}) {
    INFO(sig);
    test_server srv;
    process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}), stderr_file("signal"));
    REQUIRE(srv.accept());
    srv.handshake();
    REQUIRE(pad.wait_ready(deadline));
    pad.signal(sig);
    auto st = pad.wait_exit(deadline);
    REQUIRE(st.has_value());
    CHECK(*st == 0);
  }
}

TEST_CASE("eftpad virtual --once: exits after a read_card and the next display", "[pad][process]") {
  test_server srv;
  process pad(eftd::test::bin_path("eftpad"),
              pad_args({srv.address()}, {"--card", card("visa-approve.toml"), "--once"}),
              stderr_file("once"));
  REQUIRE(srv.accept());
  srv.handshake();
  srv.send(display{{"Before"}, "en"});
  REQUIRE(srv.read().has_value());
  srv.send(read_card{100, "PLN", 7, 1000, {}});
  REQUIRE(srv.read().has_value());
  srv.send(display{{"Approved"}, "en"});
  auto st = pad.wait_exit(deadline);
  REQUIRE(st.has_value());
  CHECK(*st == 0);
  CHECK(pad.output().back() == "DISPLAY Approved");
}

TEST_CASE("eftpad --help and bad arguments", "[pad][process]") {
  {
    process help(eftd::test::bin_path("eftpad"), {"--help"});
    auto st = help.wait_exit(deadline);
    REQUIRE(st.has_value());
    CHECK(*st == 0);
    std::string all;
    for (const auto& l : help.output()) all += l + "\n";
    CHECK(all.find("virtual") != std::string::npos);
  }
  {
    process help(eftd::test::bin_path("eftpad"), {"virtual", "--help"});
    auto st = help.wait_exit(deadline);
    REQUIRE(st.has_value());
    CHECK(*st == 0);
    std::string all;
    for (const auto& l : help.output()) all += l + "\n";
    for (const char* opt : {"--server", "--pad-id", "--serial", "--card", "--no-card", "--once"}) {
      INFO(opt);
      CHECK(all.find(opt) != std::string::npos);
    }
  }
  {
    process bad(eftd::test::bin_path("eftpad"), {"virtual", "--pad-id", "P01"}, stderr_file("badargs"));
    auto st = bad.wait_exit(deadline);
    REQUIRE(st.has_value());
    CHECK(*st != 0);
  }
}

TEST_CASE("eftpad virtual: a broken card profile stops start-up with a clear error", "[pad][process]") {
  const auto dir = temp.make("badcard");
  const auto file = dir + "/broken.toml";
  std::ofstream(file)
      << "[card]\nname = \"broken\"\nkind = \"magstripe\"\ntrack2 = \"4761739001010118=2912201\"\n";
  const auto log = dir + "/stderr.log";
  process pad(eftd::test::bin_path("eftpad"), pad_args({"127.0.0.1:9"}, {"--card", file}), log);
  auto st = pad.wait_exit(deadline);
  REQUIRE(st.has_value());
  CHECK(*st == 2);
  const auto text = slurp(log);
  CHECK(text.find("padsim.profile_bad_value") != std::string::npos);
  CHECK(text.find("Luhn") != std::string::npos);
  CHECK(text.find("4761739001010118") == std::string::npos);
}

TEST_CASE("eftpad virtual --script: waiting commands, deadlines, cancel, status and ping over TCP",
          "[pad][process][commands]") {
  const auto dir = temp.make("script");
  const auto script = dir + "/script.toml";
  {
    std::ofstream out(script);
    out << "[pad]\nlanguages = [\"en\", \"pl\"]\n"
           "[[pad.dukpt]]\nksn = \"FFFF9876543210E00001\"\ncounter = 3\n"
           "[input]\nevents = [\"pause 100\", \"1\", \"2\", \"5\", \"0\", \"enter\"]\n";
  }
  test_server srv;
  process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}, {"--no-card", "--script", script}),
              stderr_file("script"));
  REQUIRE(srv.accept());
  const auto h = srv.handshake();
  CHECK(std::find(h.capabilities.begin(), h.capabilities.end(), "keypad") != h.capabilities.end());
  REQUIRE(pad.wait_ready(deadline));

  // The scripted keys arrive after a pause: the pad must poll while it waits.
  const auto am = srv.send(get_amount{"PLN", 2, 1, 100000, 10000, {"Tip"}});
  auto a = srv.read();
  REQUIRE(a.has_value());
  CHECK(a->ref == am);
  REQUIRE(std::holds_alternative<amount_entered>(a->body));
  CHECK(std::get<amount_entered>(a->body).amount == 1250);

  // No input left: the deadline answers, not earlier.
  const auto started = clock_type::now();
  const auto k = srv.send(get_key{300, {}});
  auto t = srv.read();
  REQUIRE(t.has_value());
  CHECK(clock_type::now() - started >= 300ms);
  CHECK(t->ref == k);
  REQUIRE(std::holds_alternative<pad_error>(t->body));
  CHECK(std::get<pad_error>(t->body).code == static_cast<std::uint16_t>(pad_error_code::timeout));

  // A long wait is stopped by cancel: the waiting command answers cancelled, then cancel's ack.
  const auto m = srv.send(menu{"Account", {"Cheque", "Savings"}, 60000});
  const auto p = srv.send(ping{123456789});
  auto pg = srv.read();
  REQUIRE(pg.has_value());
  CHECK(pg->ref == p);
  CHECK(std::get<pong>(pg->body).timestamp == 123456789);
  const auto x = srv.send(cancel{});
  auto c1 = srv.read();
  auto c2 = srv.read();
  REQUIRE(c1.has_value());
  REQUIRE(c2.has_value());
  CHECK(c1->ref == m);
  REQUIRE(std::holds_alternative<pad_error>(c1->body));
  CHECK(std::get<pad_error>(c1->body).code == static_cast<std::uint16_t>(pad_error_code::cancelled));
  CHECK(c2->ref == x);
  CHECK(std::holds_alternative<ack>(c2->body));

  srv.send(get_status{1000});
  auto st = srv.read();
  REQUIRE(st.has_value());
  const auto& s = std::get<pad_status>(st->body);
  CHECK(s.serial == "VP-0001");
  REQUIRE(s.ksns.size() == 1);
  CHECK(eftd::to_hex(s.ksns[0]) == "FFFF9876543210E00001");
  CHECK(s.dukpt_counters == std::vector<std::uint32_t>{3});
  CHECK(s.languages == std::vector<std::string>{"en", "pl"});
  CHECK(pad.stop() == 0);
}

TEST_CASE("eftpad virtual: a broken pad script stops start-up with a clear error", "[pad][process]") {
  const auto dir = temp.make("badscript");
  const auto script = dir + "/bad.toml";
  {
    std::ofstream out(script);
    out << "[input]\nevents = [\"press 1\"]\n";
  }
  const auto err = stderr_file("badscript");
  process pad(eftd::test::bin_path("eftpad"), pad_args({"127.0.0.1:9"}, {"--script", script}), err);
  CHECK(pad.wait_exit(deadline) == 2);
  CHECK(slurp(err).find("padsim.script_bad_value") != std::string::npos);
}

TEST_CASE(
    "eftpad virtual --dukpt-key: sealed card data, PIN block, chip APDUs, counters kept across restarts",
    "[pad][process][p2pe]") {
  // AES DUKPT test key (test-vectors.md §2: BDK FEDCBA98..., initial key ID 1234567890123456),
  // exported as eftctl does: TR-31 D, usage B1, IK block, under a test KBPK.
  const auto bdk = *eftd::from_hex("FEDCBA9876543210F1F1F1F1F1F1F1F1");
  const auto ik = *eftd::from_hex("1273671EA26AC29AFA4D1084127652A1");
  const auto kbpk = *eftd::from_hex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6");
  eftd::tr31::header h;
  h.version = 'D';
  h.key_usage = "B1";
  h.algorithm = 'A';
  h.mode_of_use = 'X';
  h.optional_blocks.push_back({"IK", "1234567890123456"});
  auto block = eftd::tr31::wrap(kbpk, h, ik, eftd::system_random());
  REQUIRE(block.has_value());
  const auto dir = temp.make("dukpt");
  const auto key_file = dir + "/aes.toml";
  const auto state = dir + "/state.toml";
  const auto script = dir + "/script.toml";
  {
    std::ofstream(key_file) << "kbpk = \"" << eftd::to_hex(kbpk) << "\"\nblock = \"" << *block << "\"\n";
    std::ofstream(script) << "[input]\nevents = [\"1\", \"2\", \"3\", \"4\", \"enter\"]\n";
  }
  const std::vector<std::string> extra{
      "--dukpt-key", key_file, "--dukpt-state",           state,    "--script",
      script,        "--card", card("visa-approve.toml"), "--card", card("visa-chip-approve.toml")};
  auto open = [&](const eftd::bytes& ksn, std::uint16_t item, const eftd::secure_bytes& sealed) {
    auto keys = eftd::p2pe::host_keys::derive(bdk, ksn);
    REQUIRE(keys.has_value());
    auto clear = keys->open(item, sealed.view());
    REQUIRE(clear.has_value());
    return eftd::bytes(clear->view().begin(), clear->view().end());
  };
  auto reply = [&](test_server& srv, message m) {
    const auto seq = srv.send(std::move(m));
    auto r = srv.read();
    REQUIRE(r.has_value());
    CHECK(r->ref == seq);
    return r->body;
  };
  {
    test_server srv;
    process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}, extra), stderr_file("dukpt"));
    REQUIRE(srv.accept());
    const auto hi = srv.handshake();
    for (const char* c : {"pin", "p2pe", "chip"})
      CHECK(std::find(hi.capabilities.begin(), hi.capabilities.end(), c) != hi.capabilities.end());
    REQUIRE(pad.wait_ready(deadline));

    // Stripe card: no clear track 2, the sealed one opens to it under the first KSN.
    auto r1 = reply(srv, read_card{12500, "PLN", 7, 5000, {}});
    REQUIRE(std::holds_alternative<card_read>(r1));
    const auto& c1 = std::get<card_read>(r1);
    CHECK(c1.track2.empty());
    CHECK(eftd::to_hex(c1.ksn) == "123456789012345600000001");
    const auto track = open(c1.ksn, 1, c1.sealed_track2);
    CHECK(std::string(track.begin(), track.end()) == "4761739001010119=29122011143804489");  // a test card

    // PIN 1234 from the script, as an ISO 4 block under the same KSN, bound to the card's PAN.
    auto r2 = reply(srv, get_pin{12500, "PLN", 4, 4, 12, false, 5000, {}});
    REQUIRE(std::holds_alternative<pin_entered>(r2));
    const auto& p = std::get<pin_entered>(r2);
    CHECK(p.ksn == c1.ksn);
    auto keys = eftd::p2pe::host_keys::derive(bdk, p.ksn);
    REQUIRE(keys.has_value());
    auto pin = keys->open_pin(p.pin_block.view(), "4761739001010119");
    REQUIRE(pin.has_value());
    CHECK(pin->reveal() == "1234");
    auto stars = pad.wait_for_prefix("DISPLAY Enter PIN | 125.00 PLN | ****", deadline);
    CHECK(stars.has_value());

    // Chip card: powered, ATR, new KSN; a SELECT's R-APDU comes back sealed as item 1.
    auto r3 = reply(srv, read_card{12500, "PLN", 7, 5000, {}});
    REQUIRE(std::holds_alternative<card_read>(r3));
    const auto& c3 = std::get<card_read>(r3);
    CHECK(c3.mode == entry_mode::chip);
    CHECK_FALSE(c3.atr.empty());
    CHECK(eftd::to_hex(c3.ksn) == "123456789012345600000002");
    auto r4 = reply(srv, apdu{*eftd::from_hex("00A404000E315041592E5359532E444446303100"), 5000});
    REQUIRE(std::holds_alternative<apdu_response>(r4));
    const auto& a = std::get<apdu_response>(r4);
    CHECK(a.rapdu.empty());
    REQUIRE(a.item.has_value());
    CHECK(*a.item == 1);
    const auto fci = open(a.ksn, 1, a.sealed);
    REQUIRE(fci.size() >= 2);
    CHECK(eftd::to_hex(eftd::byte_view(fci).last(2)) == "9000");

    auto r5 = reply(srv, get_status{1000});
    REQUIRE(std::holds_alternative<pad_status>(r5));
    CHECK(std::get<pad_status>(r5).dukpt_counters == std::vector<std::uint32_t>{2});
    CHECK(pad.stop() == 0);
  }
  // A restart with the state file continues after counter 2.
  {
    test_server srv;
    process pad(eftd::test::bin_path("eftpad"), pad_args({srv.address()}, extra), stderr_file("dukpt2"));
    REQUIRE(srv.accept());
    srv.handshake();
    REQUIRE(pad.wait_ready(deadline));
    auto r = reply(srv, read_card{100, "PLN", 7, 5000, {}});
    REQUIRE(std::holds_alternative<card_read>(r));
    CHECK(eftd::to_hex(std::get<card_read>(r).ksn) == "123456789012345600000003");
    CHECK(pad.stop() == 0);
  }
}
