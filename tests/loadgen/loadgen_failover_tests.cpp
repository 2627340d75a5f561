// eft-loadgen with a hot standby (issue 8): the switching rules as pure functions, then the real
// executable against two fake servers (a POS and a pad listener each, no eftd): the first one
// dies in the middle of a sale, and the till must move POS and pad to the second, recover the
// sale's outcome with status_query, and report the switch.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eftd/core/keystore.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/pad/messages.hpp"
#include "failover.hpp"
#include "fake_server.hpp"
#include "process.hpp"

using namespace std::chrono_literals;
namespace lg = eftd::loadgen;
namespace pos = eftd::pos;

// ---------------------------------------------------------------- pure rules

TEST_CASE("loadgen failover: which failures move a till to the other server", "[loadgen][failover]") {
  for (const char* lost :
       {"loadgen.disconnected", "loadgen.timeout", "pos.frame_too_large", "tls.handshake", "pos.stale_epoch"}) {
    INFO(lost);
    CHECK(lg::answer_lost(lost));
    CHECK(lg::after_failure(lost, true) == lg::next_step::other_server);
    // Alone, a server that failed may be restarting: back to it, to resolve the lost answer.
    CHECK(lg::after_failure(lost, false) == lg::next_step::same_server);
  }
  CHECK(lg::after_failure("loadgen.connect", false) == lg::next_step::same_server);
  CHECK(lg::after_failure("not_active", false) == lg::next_step::stay);
  CHECK_FALSE(lg::answer_lost("not_active"));
  CHECK(lg::after_failure("not_active", true) == lg::next_step::other_server);
  for (const char* answer : {"busy", "pad_unavailable", "till_in_use", "duplicate_order"}) {
    INFO(answer);
    CHECK(lg::after_failure(answer, true) == lg::next_step::stay);
    CHECK(lg::after_failure(answer, false) == lg::next_step::stay);
  }
}

TEST_CASE("loadgen failover: only a standby's hello refusal moves a pad", "[loadgen][failover]") {
  CHECK(lg::standby_refusal("standby server, active is 10.0.0.2:9200"));
  CHECK_FALSE(lg::standby_refusal("unknown pad"));
  CHECK_FALSE(lg::standby_refusal("pad revoked"));
}

TEST_CASE("loadgen failover: a status answer resolves an unknown operation", "[loadgen][failover]") {
  for (const char* s : {"approved", "declined", "cancelled", "failed", "reversed"}) {
    INFO(s);
    CHECK(lg::resolution_type(s) == std::optional<std::string>("ok"));
  }
  CHECK(lg::resolution_type("unknown") == std::optional<std::string>("fail"));
  CHECK_FALSE(lg::resolution_type("in_progress").has_value());
}

TEST_CASE("loadgen failover: switch time runs from the first failure to the login elsewhere",
          "[loadgen][failover]") {
  using tp = lg::switch_clock::time_point;
  const tp t0{std::chrono::seconds(100)};
  lg::switch_clock c;
  CHECK_FALSE(c.logged_in(0, t0).has_value());  // a first login is no switch
  c.failed(0, t0);
  c.failed(1, t0 + 300ms);  // later failures (on the way) do not move the start
  CHECK(c.switching());
  CHECK(c.logged_in(1, t0 + 1250ms) == std::chrono::microseconds(1250000));
  CHECK_FALSE(c.switching());
  // The old server came back: no switch.
  c.failed(1, t0 + 2s);
  CHECK_FALSE(c.logged_in(1, t0 + 3s).has_value());
  CHECK_FALSE(c.switching());
}

TEST_CASE("loadgen failover: percentiles of switch times", "[loadgen][failover]") {
  CHECK(lg::percentile_of({}, 0.5) == 0);
  CHECK(lg::percentile_of({30, 10, 20}, 0.5) == 20);
  CHECK(lg::percentile_of({30, 10, 20}, 1.0) == 30);
}

// ---------------------------------------------------------------- the executable

namespace {

// A development key store with the pads' AES BDK, as tools/dev-keys makes it (the loadgen
// derives each pad's DUKPT key from it; the fake servers never check them).
std::string make_keys() {
  const auto dir = eftd::test::make_temp_dir("loadgen-failover-keys");
  auto mk = eftd::keystore::file_master_key::load(dir + "/keys.master", true);
  REQUIRE(mk.has_value());
  eftd::keystore::key_store store;
  const eftd::bytes bdk(16, 0x5A);
  REQUIRE(
      store.add_key("bdk-aes", eftd::keystore::key_type::bdk_aes128, bdk, std::time(nullptr)).has_value());
  REQUIRE(store.save(dir + "/keys.store", **mk).has_value());
  return dir;
}

// A pad listener on 127.0.0.1 port 0 for one connection: answers hello with hello_ack
// (accepted, or refused with `refusal`), then holds the connection until the pad closes it or
// `drop` is set. Records what happened for the test to check after join (no assertions here:
// Catch2 is not thread-safe).
class fake_pad_server {
 public:
  fake_pad_server(std::string refusal, std::shared_future<void> drop) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 4) != 0)
      throw std::runtime_error("fake_pad_server: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ =
        std::thread([this, refusal = std::move(refusal), drop = std::move(drop)] { serve(refusal, drop); });
  }
  ~fake_pad_server() {
    join();
    ::close(listen_fd_);
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const { return port_; }
  bool hello_seen() const { return hello_seen_; }

 private:
  void serve(const std::string& refusal, const std::shared_future<void>& drop) {
    const auto deadline = eftd::pos::test::test_clock::now() + 60s;
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, eftd::pos::test::ms_left(deadline)) <= 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    eftd::pad::frame_reader frames;
    bool answered = false;
    for (;;) {
      if (drop.valid() && drop.wait_for(0s) == std::future_status::ready) break;
      pollfd q{fd, POLLIN, 0};
      if (eftd::pos::test::ms_left(deadline) == 0) break;
      if (::poll(&q, 1, 20) == 0) continue;
      std::uint8_t buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      frames.feed(eftd::byte_view(buf, static_cast<std::size_t>(n)));
      for (;;) {
        auto f = frames.next();
        if (!f || !*f) break;
        auto env = eftd::pad::decode_body(**f);
        if (!env || answered || !std::holds_alternative<eftd::pad::hello>(env->body)) continue;
        hello_seen_ = true;
        answered = true;
        eftd::pad::hello_ack ack{refusal.empty(), "fake", refusal};
        const auto out = eftd::pad::encode(eftd::pad::envelope{1, env->seq, ack});
        (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      }
    }
    ::close(fd);
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> hello_seen_{false};
  std::thread thread_;
};

pos::result approved(const std::string& id, const std::string& order) {
  pos::result r;
  r.id = id;
  r.order_no = order;
  r.outcome = "approved";
  r.amount = 1000;
  r.approved_amount = 1000;
  r.currency = "PLN";
  return r;
}

std::vector<nlohmann::json> history_lines(const std::string& file) {
  std::ifstream in(file);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line, nullptr, false));
  return out;
}

struct loadgen_run {
  int exit_code = -1;
  nlohmann::json summary;
  std::string history_file;
};

loadgen_run run_loadgen(std::uint16_t pos1, std::uint16_t pad1, std::uint16_t pos2, std::uint16_t pad2,
                        int count) {
  const auto dir = eftd::test::make_temp_dir("loadgen-failover");
  loadgen_run r;
  r.history_file = dir + "/history.jsonl";
  eftd::test::process p(eftd::test::bin_path("eft-loadgen"),
                        {"--pos-port",
                         std::to_string(pos1),
                         "--pad-port",
                         std::to_string(pad1),
                         "--standby-pos-port",
                         std::to_string(pos2),
                         "--standby-pad-port",
                         std::to_string(pad2),
                         "--keys",
                         make_keys(),
                         "--cards",
                         eftd::test::source_path("pinpad-firmware-shim/cards"),
                         "--tills",
                         "1",
                         "--count",
                         std::to_string(count),
                         "--mix",
                         "magstripe=1",
                         "--tx-timeout-ms",
                         "20000",
                         "--history",
                         r.history_file,
                         "--quiet"},
                        dir + "/stderr.txt");
  std::optional<std::string> last;
  while (auto line = p.read_line(60s)) last = line;
  r.exit_code = p.wait_exit(30s).value_or(-1);
  if (last) r.summary = nlohmann::json::parse(*last, nullptr, false);
  return r;
}

}  // namespace

TEST_CASE("loadgen failover: the server dies during a sale, the till recovers it on the standby",
          "[loadgen][failover]") {
  std::promise<void> first_down;
  const std::shared_future<void> down = first_down.get_future().share();
  // The first server: logs the till in, takes the sale, shows one status line and dies (its
  // pad connection goes with it).
  eftd::pos::test::fake_server pos1(
      [&first_down](eftd::pos::test::fake_conn& c, std::vector<pos::message>& got) {
        if (!eftd::pos::test::accept_login(c, got)) return;
        auto s = c.expect_type<pos::sale>(20s);
        if (!s) return;
        got.emplace_back(*s);
        c.send(pos::status{s->id, s->order_no, "card", "Swipe card"});
        c.close();
        first_down.set_value();
      });
  fake_pad_server pad1("", down);
  // The standby, now active: the till logs in again and asks for the order, which the new
  // active resolved as approved; then it runs its next sale there.
  eftd::pos::test::fake_server pos2([](eftd::pos::test::fake_conn& c, std::vector<pos::message>& got) {
    if (!eftd::pos::test::accept_login(c, got)) return;
    auto q = c.expect_type<pos::status_query>(20s);
    if (!q) return;
    got.emplace_back(*q);
    c.send(pos::order_status{q->id, q->order_no, "2024-05-02", "approved", approved("s1", q->order_no)});
    auto s = c.expect_type<pos::sale>(40s);
    if (!s) return;
    got.emplace_back(*s);
    c.send(approved(s->id, s->order_no));
    c.wait_closed(30s);
  });
  fake_pad_server pad2("", {});

  const auto r = run_loadgen(pos1.port(), pad1.port(), pos2.port(), pad2.port(), 2);
  pos1.join();
  pos2.join();
  pad1.join();
  pad2.join();
  CHECK(pad1.hello_seen());
  CHECK(pad2.hello_seen());  // the pad moved too
  REQUIRE(r.summary.is_object());
  INFO(r.summary.dump());
  CHECK(r.exit_code == 0);
  CHECK(r.summary.value("tx", -1) == 2);
  CHECK(r.summary.value("approved", -1) == 2);
  CHECK(r.summary.value("errors", -1) == 0);
  CHECK(r.summary.value("switches", -1) == 1);
  CHECK(r.summary.value("recovered", -1) == 1);
  CHECK(r.summary["switch_ms_p50"].is_number());
  CHECK(r.summary.value("switch_ms_max", -1.0) >= r.summary.value("switch_ms_p50", -1.0));
  CHECK(r.summary.value("switch_ms_max", 1e9) < 20000.0);

  const auto got = pos2.received();
  REQUIRE(got.size() == 3);
  const auto sale_order = std::get<pos::sale>(pos1.received().at(1)).order_no;
  CHECK(std::get<pos::status_query>(got[1]).order_no == sale_order);
  CHECK(std::get<pos::sale>(got[2]).order_no != sale_order);

  // History: invoke, unknown (the answer was lost), then ok via status with the order's state;
  // then the next sale as usual.
  const auto h = history_lines(r.history_file);
  REQUIRE(h.size() == 5);
  CHECK(h[0].value("type", "") == "invoke");
  CHECK(h[1].value("type", "") == "unknown");
  CHECK(h[2].value("type", "") == "ok");
  CHECK(h[2].value("value", "") == "approved");
  CHECK(h[2].value("via", "") == "status");
  for (int i = 0; i < 3; ++i) CHECK(h[i].value("order", "") == sale_order);
  CHECK(h[3].value("type", "") == "invoke");
  CHECK(h[4].value("type", "") == "ok");
  CHECK_FALSE(h[4].contains("via"));
}

TEST_CASE("loadgen failover: a standby from the start sends POS and pad to the active server",
          "[loadgen][failover]") {
  // The first server is the standby: not_active for the POS, a refused hello for the pad.
  eftd::pos::test::fake_server pos1([](eftd::pos::test::fake_conn& c, std::vector<pos::message>& got) {
    auto l = c.expect_type<pos::login>(20s);
    if (!l) return;
    got.emplace_back(*l);
    c.send(pos::error{l->id, "not_active", "standby server", "", "127.0.0.1:1"});
  });
  fake_pad_server pad1("standby server, active is 127.0.0.1:1", {});
  eftd::pos::test::fake_server pos2([](eftd::pos::test::fake_conn& c, std::vector<pos::message>& got) {
    if (!eftd::pos::test::accept_login(c, got)) return;
    auto s = c.expect_type<pos::sale>(20s);
    if (!s) return;
    got.emplace_back(*s);
    c.send(approved(s->id, s->order_no));
    c.wait_closed(30s);
  });
  fake_pad_server pad2("", {});

  const auto r = run_loadgen(pos1.port(), pad1.port(), pos2.port(), pad2.port(), 1);
  pos1.join();
  pos2.join();
  REQUIRE(r.summary.is_object());
  INFO(r.summary.dump());
  CHECK(r.exit_code == 0);
  CHECK(r.summary.value("tills", -1) == 1);
  CHECK(r.summary.value("approved", -1) == 1);
  CHECK(r.summary.value("recovered", -1) == 0);
  CHECK(pad1.hello_seen());
  CHECK(pad2.hello_seen());
  CHECK(pos2.received().size() == 2);
  const auto h = history_lines(r.history_file);
  REQUIRE(h.size() == 2);
  CHECK(h[1].value("type", "") == "ok");
  CHECK_FALSE(h[1].contains("via"));
}
