// eft-pos-sim with an active/standby pair (issue 8): the server choice rules as pure functions,
// then the real executable against scripted fake servers: a standby answering not_active, a
// refused port, and a sale whose connection drops, recovered with status_query elsewhere.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "failover.hpp"
#include "fake_server.hpp"
#include "process.hpp"

using namespace eftd::pos;
using namespace std::chrono_literals;
using eft_pos_sim::endpoint;
using eftd::pos::test::accept_login;
using eftd::pos::test::fake_conn;
using eftd::pos::test::fake_server;

namespace {

// ---------------------------------------------------------------- pure rules

std::vector<endpoint> three() {
  return {{"10.0.0.1", 9100}, {"10.0.0.2", 9100}, {"10.0.0.3", 9100}};
}

}  // namespace

TEST_CASE("sim failover: host:port parsing", "[pos][sim][failover]") {
  CHECK(eft_pos_sim::parse_endpoint("10.0.0.2:9100") == endpoint{"10.0.0.2", 9100});
  CHECK(eft_pos_sim::parse_endpoint("eftd-b.example:1") == endpoint{"eftd-b.example", 1});
  CHECK(eft_pos_sim::parse_endpoint("[::1]:9100") == endpoint{"::1", 9100});
  CHECK(eft_pos_sim::parse_endpoint("[::1]:9100")->text() == "[::1]:9100");
  for (const char* bad : {"", "10.0.0.2", "10.0.0.2:", ":9100", "h:0", "h:65536", "h:91x", "[::1]9100"}) {
    INFO(bad);
    CHECK_FALSE(eft_pos_sim::parse_endpoint(bad).has_value());
  }
}

TEST_CASE("sim failover: a round tries each server once, in order after a failure", "[pos][sim][failover]") {
  eft_pos_sim::server_round r(3, 1);
  CHECK(r.current() == 1);
  CHECK(r.next() == 2u);
  CHECK(r.next() == 0u);
  CHECK_FALSE(r.next().has_value());
}

TEST_CASE("sim failover: not_active goes to the named server when it is configured and untried",
          "[pos][sim][failover]") {
  eft_pos_sim::server_round r(3, 0);
  CHECK(r.next(2u) == 2u);  // the standby named the third server
  CHECK(r.next(0u) == 1u);  // the first was tried already: the next untried one instead
  CHECK_FALSE(r.next(2u).has_value());

  eft_pos_sim::server_round one(1, 0);
  CHECK_FALSE(one.next().has_value());
}

TEST_CASE("sim failover: the active server is found in a standby's message text", "[pos][sim][failover]") {
  const auto servers = three();
  CHECK(eft_pos_sim::configured_in_text(servers, "standby server, active is 10.0.0.3:9100") == 2u);
  CHECK(eft_pos_sim::configured_in_text(servers, "10.0.0.2:9100") == 1u);
  CHECK_FALSE(eft_pos_sim::configured_in_text(servers, "standby server").has_value());
  CHECK_FALSE(eft_pos_sim::configured_in_text(servers, "active is 10.0.0.9:9100").has_value());
  // Whole tokens only.
  CHECK_FALSE(eft_pos_sim::configured_in_text(servers, "active is 10.0.0.2:91000").has_value());
  CHECK_FALSE(eft_pos_sim::configured_in_text(servers, "active is 110.0.0.2:9100").has_value());
  CHECK(eft_pos_sim::configured_index(servers, "10.0.0.1:9100") == 0u);
  CHECK_FALSE(eft_pos_sim::configured_index(servers, "10.0.0.1:9101").has_value());
}

TEST_CASE("sim failover: which failures send the sim to another server", "[pos][sim][failover]") {
  for (const char* code : {"pos.disconnected", "pos.timeout", "not_active", "pos.stale_epoch"}) {
    INFO(code);
    CHECK(eft_pos_sim::other_server_may_answer(code));
  }
  for (const char* code : {"unknown_till", "till_in_use", "busy", "duplicate_order", "pos.bad_json"}) {
    INFO(code);
    CHECK_FALSE(eft_pos_sim::other_server_may_answer(code));
  }
}

TEST_CASE("sim failover: final order states", "[pos][sim][failover]") {
  for (const char* s : {"approved", "declined", "cancelled", "failed", "reversed"})
    CHECK(eft_pos_sim::final_state(s));
  CHECK_FALSE(eft_pos_sim::final_state("in_progress"));
  CHECK_FALSE(eft_pos_sim::final_state("unknown"));
}

// ---------------------------------------------------------------- the executable

namespace {

// A loopback port nobody listens on: bound, then closed without listen().
std::uint16_t refused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string at(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A standby: answers the login with not_active naming `active` (field and text), then closes.
fake_server::script standby_naming(std::string active) {
  return [active](fake_conn& c, std::vector<message>& got) {
    auto l = c.expect_type<login>();
    if (!l) return;
    got.emplace_back(*l);
    c.send(error{l->id, std::string(codes::not_active), "standby server, active is " + active, "", active});
  };
}

result approved(const std::string& id, const std::string& order, std::int64_t amount) {
  result r;
  r.id = id;
  r.order_no = order;
  r.outcome = "approved";
  r.business_date = "2024-05-02";
  r.amount = amount;
  r.approved_amount = amount;
  r.currency = "PLN";
  r.auth_code = "A1B2C3";
  return r;
}

void serve_logout(fake_conn& c) {
  if (auto l = c.expect_type<logout>()) c.send(logout_ok{l->id});
  c.wait_closed();
}

// The last JSON line the simulator printed, decoded.
std::optional<message> last_message(eftd::test::process& sim) {
  std::optional<std::string> last;
  while (auto line = sim.read_line(20s)) last = line;
  if (!last) return std::nullopt;
  auto m = decode(*last);
  if (!m) return std::nullopt;
  return *m;
}

}  // namespace

TEST_CASE("sim failover: a standby's not_active sends the sim straight to the active server it names",
          "[pos][sim][failover]") {
  const auto dead = refused_port();
  fake_server active([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(approved(s->id, s->order_no, s->amount));
    serve_logout(c);
  });
  fake_server standby(standby_naming(at(active.port())));
  const auto dir = eftd::test::make_temp_dir("sim-failover");
  // The refused port comes between the standby and the active server in the list: following
  // active_server skips it.
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      {"--server", at(standby.port()), "--server", at(dead), "--server", at(active.port()), "--till", "T01",
       "--json", "sale", "--order", "4711", "--amount", "125.00", "--currency", "PLN"},
      dir + "/stderr.txt");
  const auto m = last_message(sim);
  REQUIRE(m.has_value());
  REQUIRE(std::holds_alternative<result>(*m));
  CHECK(std::get<result>(*m).outcome == "approved");
  CHECK(sim.wait_exit(20s) == 0);
  standby.join();
  active.join();
  CHECK(standby.received().size() == 1);  // the login only
  REQUIRE(active.received().size() == 2);
  CHECK(std::get<sale>(active.received()[1]).order_no == "4711");
  const auto err = read_file(dir + "/stderr.txt");
  INFO(err);
  CHECK(err.find("server " + at(standby.port()) + ": not_active") != std::string::npos);
  CHECK(err.find("eft-pos-sim: server " + at(active.port()) + "\n") != std::string::npos);
  CHECK(err.find(at(dead)) == std::string::npos);
}

TEST_CASE("sim failover: --host/--port is the first server, when it is refused the next one serves",
          "[pos][sim][failover]") {
  const auto dead = refused_port();
  fake_server second([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto q = c.expect_type<status_query>();
    if (!q) return;
    got.emplace_back(*q);
    c.send(order_status{q->id, q->order_no, "2024-05-02", "declined", std::nullopt});
    serve_logout(c);
  });
  const auto dir = eftd::test::make_temp_dir("sim-failover");
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          {"--host", "127.0.0.1", "--port", std::to_string(dead), "--server",
                           at(second.port()), "--till", "T01", "--json", "status", "--order", "9"},
                          dir + "/stderr.txt");
  const auto m = last_message(sim);
  REQUIRE(m.has_value());
  REQUIRE(std::holds_alternative<order_status>(*m));
  CHECK(std::get<order_status>(*m).state == "declined");
  CHECK(sim.wait_exit(20s) == 0);
  const auto err = read_file(dir + "/stderr.txt");
  INFO(err);
  CHECK(err.find("server " + at(dead) + ": pos.disconnected") != std::string::npos);
  CHECK(err.find("eft-pos-sim: server " + at(second.port()) + "\n") != std::string::npos);
}

TEST_CASE("sim failover: every server a standby or refused exits 2 with the last error",
          "[pos][sim][failover]") {
  const auto dead = refused_port();
  fake_server standby(standby_naming("10.9.9.9:9100"));  // names a server that is not configured
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          {"--server", at(standby.port()), "--server", at(dead), "--till", "T01", "--json",
                           "status", "--order", "9"});
  const auto m = last_message(sim);
  REQUIRE(m.has_value());
  REQUIRE(std::holds_alternative<error>(*m));
  CHECK(std::get<error>(*m).code == codes::disconnected);
  CHECK(sim.wait_exit(20s) == 2);
}

TEST_CASE("sim failover: a sale whose connection drops is recovered with status_query on the other server",
          "[pos][sim][failover]") {
  // The first server takes the sale, says the card is being read, and goes away.
  fake_server first([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    c.close();
  });
  // The other one (the new active) is still resolving the order, then knows its outcome.
  fake_server second([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto q1 = c.expect_type<status_query>();
    if (!q1) return;
    got.emplace_back(*q1);
    c.send(order_status{q1->id, q1->order_no, "2024-05-02", "in_progress", std::nullopt});
    auto q2 = c.expect_type<status_query>();
    if (!q2) return;
    got.emplace_back(*q2);
    c.send(order_status{q2->id, q2->order_no, "2024-05-02", "approved", approved("s1", q2->order_no, 12500)});
    serve_logout(c);
  });
  const auto dir = eftd::test::make_temp_dir("sim-failover");
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      {"--server", at(first.port()), "--server", at(second.port()), "--till", "T01", "--status-retry-ms",
       "20", "--json", "sale", "--order", "4711", "--amount", "125.00", "--currency", "PLN"},
      dir + "/stderr.txt");
  const auto m = last_message(sim);
  REQUIRE(m.has_value());
  REQUIRE(std::holds_alternative<order_status>(*m));
  const auto& st = std::get<order_status>(*m);
  CHECK(st.order_no == "4711");
  CHECK(st.state == "approved");
  REQUIRE(st.last_result.has_value());
  CHECK(st.last_result->auth_code == "A1B2C3");
  CHECK(sim.wait_exit(20s) == 0);
  second.join();
  const auto got = second.received();
  REQUIRE(got.size() == 3);
  CHECK(std::holds_alternative<login>(got[0]));
  CHECK(std::get<status_query>(got[1]).order_no == "4711");
  CHECK(std::get<status_query>(got[2]).order_no == "4711");
  const auto err = read_file(dir + "/stderr.txt");
  INFO(err);
  CHECK(err.find("eft-pos-sim: server " + at(second.port()) + "\n") != std::string::npos);
  CHECK(err.find("recovered order 4711 on " + at(second.port()) + ": approved") != std::string::npos);
}

TEST_CASE("sim failover: a lost sale the server never saw ends with state unknown and exit 2",
          "[pos][sim][failover]") {
  fake_server first([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    if (auto s = c.expect_type<sale>()) got.emplace_back(*s);
    c.close();
  });
  fake_server second([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto q = c.expect_type<status_query>();
    if (!q) return;
    got.emplace_back(*q);
    c.send(order_status{q->id, q->order_no, "", "unknown", std::nullopt});
    serve_logout(c);
  });
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          {"--server", at(first.port()), "--server", at(second.port()), "--till", "T01",
                           "--json", "sale", "--order", "4712", "--amount", "1.00", "--currency", "PLN"});
  const auto m = last_message(sim);
  REQUIRE(m.has_value());
  REQUIRE(std::holds_alternative<order_status>(*m));
  CHECK(std::get<order_status>(*m).state == "unknown");
  CHECK(sim.wait_exit(20s) == 2);
}
