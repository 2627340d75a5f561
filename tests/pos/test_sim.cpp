// eft-pos-sim as a real process against the scripted fake server.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "fake_server.hpp"
#include "process.hpp"

using namespace eftd::pos;
using namespace std::chrono_literals;
using eftd::pos::test::accept_login;
using eftd::pos::test::fake_conn;
using eftd::pos::test::fake_server;

namespace {

std::vector<std::string> sim_args(std::uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> a{"--host", "127.0.0.1", "--port",     std::to_string(port),
                             "--till", "T01",       "--operator", "42"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The sim logs out when it is done; answer it so it exits at once.
void serve_logout(fake_conn& c) {
  if (auto l = c.expect_type<logout>()) c.send(logout_ok{l->id});
  c.wait_closed();
}

result approved_for(const sale& s) {
  result r;
  r.id = s.id;
  r.order_no = s.order_no;
  r.outcome = "approved";
  r.business_date = "2024-05-02";
  r.amount = s.amount;
  r.approved_amount = s.amount;
  r.currency = s.currency;
  r.auth_code = "A1B2C3";
  r.masked_pan = "************0119";
  r.scheme = "visa";
  r.entry_mode = "chip";
  r.rcpt.merchant = {"MERCHANT COPY", "SALE 125.00 PLN"};
  r.rcpt.customer = {"CUSTOMER COPY"};
  return r;
}

// Serves login, one sale (one status line) and logout; records login and sale.
void serve_sale(fake_conn& c, std::vector<message>& got) {
  if (!accept_login(c, got)) return;
  auto s = c.expect_type<sale>();
  if (!s) return;
  got.emplace_back(*s);
  c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
  c.send(approved_for(*s));
  serve_logout(c);
}

std::string temp_file(const std::string& tag, const std::string& content) {
  const auto dir = eftd::test::make_temp_dir(tag);
  const auto path = dir + "/script.txt";
  std::ofstream(path) << content;
  return path;
}

}  // namespace

TEST_CASE("sim: sale --json prints the result line and exits 0", "[pos][sim]") {
  fake_server server(serve_sale);
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          sim_args(server.port(), {"--json", "sale", "--order", "4711", "--amount", "125.00",
                                                   "--currency", "PLN"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  const auto& r = std::get<result>(*m);
  CHECK(r.outcome == "approved");
  CHECK(r.amount == 12500);
  CHECK(sim.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(std::get<login>(got[0]).operator_id == "42");
  CHECK(std::get<sale>(got[1]).amount == 12500);  // "125.00" PLN in minor units
}

TEST_CASE("sim: human output shows status lines, the result block and both receipts", "[pos][sim]") {
  fake_server server(serve_sale);
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(), {"sale", "--order", "4711", "--amount", "125", "--currency", "PLN"}));
  REQUIRE(sim.wait_exit(20s) == 0);
  while (sim.read_line(1s)) {
  }
  std::string all;
  for (const auto& l : sim.output()) all += l + "\n";
  INFO(all);
  CHECK(all.find("[status] Insert or swipe card") != std::string::npos);
  CHECK(all.find("== APPROVED ==") != std::string::npos);
  CHECK(all.find("125.00 PLN") != std::string::npos);
  CHECK(all.find("A1B2C3") != std::string::npos);
  CHECK(all.find("************0119") != std::string::npos);
  CHECK(all.find("MERCHANT COPY") != std::string::npos);
  CHECK(all.find("CUSTOMER COPY") != std::string::npos);
}

TEST_CASE("sim: status --order prints the order_status line", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto q = c.expect_type<status_query>();
    if (!q) return;
    got.emplace_back(*q);
    c.send(order_status{q->id, q->order_no, q->business_date, "approved",
                        approved_for(sale{"1", q->order_no, "PLN", 12500, 0, 0})});
    serve_logout(c);
  });
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(), {"--json", "status", "--order", "4711", "--date", "2024-05-01"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  CHECK(std::get<order_status>(*m).state == "approved");
  CHECK(sim.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(std::get<status_query>(got[1]).business_date == "2024-05-01");
}

TEST_CASE("sim: a server error reply exits 2 and prints the error code", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(error{s->id, "not_supported", "not served yet", s->order_no, ""});
    serve_logout(c);
  });
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(), {"--json", "sale", "--order", "1", "--amount", "1.00", "--currency", "PLN"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  CHECK(std::get<error>(*m).code == "not_supported");
  CHECK(sim.wait_exit(20s) == 2);
}

TEST_CASE("sim: connection refused exits 2 with pos.disconnected", "[pos][sim]") {
  std::uint16_t port = 0;
  {
    fake_server probe([](fake_conn&, std::vector<message>&) {});
    port = probe.port();
    eftd::test::process knock(eftd::test::bin_path("eft-pos-sim"),
                              sim_args(port, {"--json", "status", "--order", "1"}));
    (void)knock.wait_exit(20s);  // lets the probe accept and finish
  }
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          sim_args(port, {"--json", "status", "--order", "1"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  CHECK(std::get<error>(*m).code == codes::disconnected);
  CHECK(sim.wait_exit(20s) == 2);
}

TEST_CASE("sim: a bad amount is refused before anything is sent", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    // Only a logout may follow, never a sale.
    auto m = c.expect(10s);
    if (!m) return;
    got.push_back(*m);
    if (auto* l = std::get_if<logout>(&*m)) c.send(logout_ok{l->id});
    c.wait_closed();
  });
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(), {"sale", "--order", "1", "--amount", "1.005", "--currency", "PLN"}));
  CHECK(sim.wait_exit(20s) == 2);
  server.join();
  for (const auto& m : server.received()) CHECK_FALSE(std::holds_alternative<sale>(m));
}

TEST_CASE("sim: script runs sale and status in order, one JSON line each", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(prompt{s->id, "p1", s->order_no, "yes_no", "Signature OK?", {"yes", "no"}, 0, "no"});
    auto a = c.expect_type<answer>();
    if (!a) return;
    got.emplace_back(*a);
    c.send(approved_for(*s));
    auto q = c.expect_type<status_query>();
    if (!q) return;
    got.emplace_back(*q);
    c.send(order_status{q->id, q->order_no, "", "approved", std::nullopt});
    serve_logout(c);
  });
  const auto script = temp_file("pos-sim-script", "# a comment\n\nsale 4711 125.00 PLN\nstatus 4711\n");
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          sim_args(server.port(), {"--json", "--answer", "yes", "script", script}));
  auto first = sim.read_line(20s);
  auto second = sim.read_line(20s);
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  auto r = decode(*first);
  auto q = decode(*second);
  REQUIRE(r.has_value());
  REQUIRE(q.has_value());
  CHECK(std::get<result>(*r).amount == 12500);
  CHECK(std::get<order_status>(*q).order_no == "4711");
  CHECK(sim.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 4);
  CHECK(std::get<answer>(got[2]).value == "yes");
}
