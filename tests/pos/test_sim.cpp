// eft-pos-sim as a real process against the scripted fake server.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fake_server.hpp"
#include "process.hpp"

using namespace eftd::pos;
using namespace std::chrono_literals;
using eftd::pos::test::accept_login;
using eftd::pos::test::fake_conn;
using eftd::pos::test::fake_server;
using eftd::pos::test::fake_tls;
using eftd::pos::test::test_pki;

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
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(script).parent_path(), ec);
}

// ---------------------------------------------------------------- new one-shot commands

namespace {

std::string all_output(eftd::test::process& sim) {
  while (sim.read_line(1s)) {
  }
  std::string all;
  for (const auto& l : sim.output()) all += l + "\n";
  return all;
}

totals_report report_for(const totals& t) {
  totals_report r;
  r.id = t.id;
  r.till_id = "T01";
  r.business_date = t.business_date.empty() ? "2024-05-02" : t.business_date;
  r.lines = {{"refund", "approved", "PLN", 1, 500}, {"sale", "approved", "PLN", 2, 25000}};
  r.net = {{"PLN", 24500}};
  return r;
}

}  // namespace

TEST_CASE("sim: totals --json prints the totals_report line", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto t = c.expect_type<totals>();
    if (!t) return;
    got.emplace_back(*t);
    c.send(report_for(*t));
    serve_logout(c);
  });
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          sim_args(server.port(), {"--json", "totals", "--date", "2024-05-01"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  const auto& r = std::get<totals_report>(*m);
  CHECK(r.business_date == "2024-05-01");
  CHECK(r.net.at("PLN") == 24500);
  CHECK(sim.wait_exit(20s) == 0);
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<totals>(server.received()[1]).business_date == "2024-05-01");
}

TEST_CASE("sim: totals in human form lists the lines and the net", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto t = c.expect_type<totals>();
    if (!t) return;
    c.send(report_for(*t));
    serve_logout(c);
  });
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"), sim_args(server.port(), {"totals"}));
  REQUIRE(sim.wait_exit(20s) == 0);
  const auto all = all_output(sim);
  INFO(all);
  CHECK(all.find("== TOTALS till T01, business date 2024-05-02 ==") != std::string::npos);
  CHECK(all.find("250.00 PLN") != std::string::npos);
  CHECK(all.find("5.00 PLN") != std::string::npos);
  CHECK(all.find("245.00 PLN") != std::string::npos);
}

TEST_CASE("sim: refund sends the original order and prints the result", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto r = c.expect_type<refund>();
    if (!r) return;
    got.emplace_back(*r);
    result res;
    res.id = r->id;
    res.order_no = r->order_no;
    res.outcome = "approved";
    res.amount = r->amount;
    res.approved_amount = r->amount;
    res.currency = r->currency;
    c.send(res);
    serve_logout(c);
  });
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(), {"--json", "refund", "--order", "4712", "--amount", "5.00", "--currency", "PLN",
                               "--original", "4711", "--original-date", "2024-05-01"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  CHECK(std::get<result>(*m).outcome == "approved");
  CHECK(sim.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  const auto& r = std::get<refund>(got[1]);
  CHECK(r.amount == 500);
  CHECK(r.original_order_no == "4711");
  CHECK(r.original_business_date == "2024-05-01");
}

TEST_CASE("sim: cancel of an order that cannot be cancelled prints the declined result", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto x = c.expect_type<cancel>();
    if (!x) return;
    got.emplace_back(*x);
    result res;
    res.id = x->id;
    res.order_no = x->order_no;
    res.outcome = "declined";
    res.why = {"order.not_cancellable", "Nothing to cancel", "Declined"};
    c.send(res);
    serve_logout(c);
  });
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          sim_args(server.port(), {"cancel", "--order", "4711", "--date", "2024-05-02"}));
  REQUIRE(sim.wait_exit(20s) == 0);  // a declined result is a final answer
  const auto all = all_output(sim);
  INFO(all);
  CHECK(all.find("== DECLINED ==") != std::string::npos);
  CHECK(all.find("order.not_cancellable") != std::string::npos);
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<cancel>(server.received()[1]).business_date == "2024-05-02");
}

TEST_CASE("sim: balance prints the balance", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto b = c.expect_type<balance_inquiry>();
    if (!b) return;
    got.emplace_back(*b);
    result res;
    res.id = b->id;
    res.order_no = b->order_no;
    res.outcome = "approved";
    res.currency = "PLN";
    res.balance = 123456;
    c.send(res);
    serve_logout(c);
  });
  eftd::test::process sim(eftd::test::bin_path("eft-pos-sim"),
                          sim_args(server.port(), {"balance", "--order", "B-1"}));
  REQUIRE(sim.wait_exit(20s) == 0);
  const auto all = all_output(sim);
  INFO(all);
  CHECK(all.find("balance        1234.56 PLN") != std::string::npos);
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<balance_inquiry>(server.received()[1]).order_no == "B-1");
}

TEST_CASE("sim: --tls-ca/--tls-cert/--tls-key run a sale over TLS with the till certificate",
          "[pos][sim][tls]") {
  const auto& pki = test_pki();
  fake_server server(serve_sale, fake_tls{pki.server_cert, pki.server_key, pki.ca_cert, true});
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(),
               {"--json", "--tls-ca", pki.ca_cert, "--tls-cert", pki.client_cert, "--tls-key", pki.client_key,
                "sale", "--order", "4711", "--amount", "125.00", "--currency", "PLN"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  CHECK(std::get<result>(*m).outcome == "approved");
  CHECK(sim.wait_exit(20s) == 0);
  server.join();
  CHECK(server.tls().client_cn == "T01");
  CHECK(server.received().size() == 2);
}

TEST_CASE("sim: a server certificate from an unknown CA exits 2 with the handshake error",
          "[pos][sim][tls]") {
  const auto& pki = test_pki();
  fake_server server([](fake_conn&, std::vector<message>&) {},
                     fake_tls{pki.rogue_server_cert, pki.rogue_server_key, "", false});
  eftd::test::process sim(
      eftd::test::bin_path("eft-pos-sim"),
      sim_args(server.port(), {"--json", "--tls-ca", pki.ca_cert, "status", "--order", "1"}));
  auto line = sim.read_line(20s);
  REQUIRE(line.has_value());
  auto m = decode(*line);
  REQUIRE(m.has_value());
  const auto& e = std::get<error>(*m);
  CHECK(e.code == codes::disconnected);
  CHECK(e.message.rfind("TLS handshake failed: ", 0) == 0);
  CHECK(sim.wait_exit(20s) == 2);
}

// ---------------------------------------------------------------- interactive

namespace {

// eft-pos-sim interactive with its stdin on a FIFO the test writes to. The process helper gives
// children /dev/null as stdin, so a shell re-opens stdin from the FIFO and execs the simulator
// (same pid). The test opens the FIFO O_RDWR: that never blocks, and closing it is the
// simulator's end of input.
class piped_sim {
 public:
  explicit piped_sim(std::vector<std::string> sim_arguments) {
    dir_ = eftd::test::make_temp_dir("pos-sim-stdin");
    fifo_ = dir_ + "/stdin";
    if (::mkfifo(fifo_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("cannot open the fifo");
    std::vector<std::string> a{"-c", "f=$1; shift; exec \"$@\" < \"$f\"", "sh", fifo_,
                               eftd::test::bin_path("eft-pos-sim")};
    a.insert(a.end(), sim_arguments.begin(), sim_arguments.end());
    proc_ = std::make_unique<eftd::test::process>("/bin/sh", a);
  }
  ~piped_sim() {
    close_stdin();
    proc_.reset();
    ::unlink(fifo_.c_str());
    ::rmdir(dir_.c_str());
  }

  void type(const std::string& line) {
    const std::string bytes = line + "\n";
    REQUIRE(::write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  void close_stdin() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  eftd::test::process& proc() { return *proc_; }

 private:
  std::string dir_;
  std::string fifo_;
  int fd_ = -1;
  std::unique_ptr<eftd::test::process> proc_;
};

}  // namespace

TEST_CASE("sim interactive: a sale through a pipe, the prompt asked and answered by number", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    c.send(prompt{s->id, "q1", s->order_no, "menu", "Account type?", {"credit", "debit"}, 30000, "credit"});
    auto a = c.expect_type<answer>(20s);
    if (!a) return;
    got.emplace_back(*a);
    c.send(approved_for(*s));
    auto q = c.expect_type<status_query>();
    if (!q) return;
    got.emplace_back(*q);
    c.send(order_status{q->id, q->order_no, "2024-05-02", "approved", std::nullopt});
    serve_logout(c);
  });
  piped_sim sim(sim_args(server.port(), {"interactive"}));
  auto& p = sim.proc();
  REQUIRE(p.wait_for_prefix("type 'help'", 20s));
  sim.type("sale 4711 125.00 PLN");
  auto question = p.wait_for_prefix("[prompt] ", 20s);
  REQUIRE(question.has_value());
  CHECK(*question == "Account type? [1) credit, 2) debit] [default: credit] [30 s]");
  sim.type("2");
  REQUIRE(p.wait_for_prefix("== APPROVED ==", 20s));
  sim.type("status 4711");
  REQUIRE(p.wait_for_prefix("== order 4711: approved ==", 20s));
  sim.type("quit");
  CHECK(p.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 4);
  CHECK(std::get<login>(got[0]).capabilities == std::vector<std::string>{"prompt"});
  CHECK(std::get<sale>(got[1]).amount == 12500);
  CHECK(std::get<answer>(got[2]).prompt_id == "q1");
  CHECK(std::get<answer>(got[2]).value == "debit");
  std::string all;
  for (const auto& l : p.output()) all += l + "\n";
  INFO(all);
  CHECK(all.find("[status] Insert or swipe card") != std::string::npos);
  CHECK(all.find("> sale 4711 125.00 PLN") != std::string::npos);
}

TEST_CASE("sim interactive --json: every message is a JSON line, abort ends the sale cancelled",
          "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    auto a = c.expect_type<abort_tx>(20s);
    if (!a) return;
    got.emplace_back(*a);
    c.send(status{a->id, s->order_no, "aborting", "Aborting"});
    result r;
    r.id = s->id;
    r.order_no = s->order_no;
    r.outcome = "cancelled";
    r.why = {"pos.aborted", "Aborted by the cashier", "Cancelled"};
    c.send(r);
    serve_logout(c);
  });
  piped_sim sim(sim_args(server.port(), {"--json", "interactive"}));
  auto& p = sim.proc();
  const auto next_message = [&]() -> std::optional<message> {
    auto line = p.read_line(20s);
    if (!line) return std::nullopt;
    auto m = decode(*line);
    if (!m) return std::nullopt;
    return *m;
  };
  auto ok = next_message();
  REQUIRE(ok.has_value());
  REQUIRE(std::holds_alternative<login_ok>(*ok));
  sim.type("sale 4711 1.00");  // the default currency
  auto st = next_message();
  REQUIRE(st.has_value());
  CHECK(std::get<status>(*st).stage == "card");
  sim.type("abort");
  auto ack = next_message();
  REQUIRE(ack.has_value());
  CHECK(std::get<status>(*ack).stage == "aborting");
  auto res = next_message();
  REQUIRE(res.has_value());
  CHECK(std::get<result>(*res).outcome == "cancelled");
  sim.close_stdin();  // end of input: logout and exit
  CHECK(p.wait_exit(20s) == 0);
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<abort_tx>(server.received()[1]).order_no == "4711");
}

TEST_CASE("sim interactive: end of input while a question is open answers the default and waits",
          "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(prompt{s->id, "p1", s->order_no, "yes_no", "Signature OK?", {}, 0, "no"});
    auto a = c.expect_type<answer>(20s);
    if (!a) return;
    got.emplace_back(*a);
    result r = approved_for(*s);
    r.outcome = "declined";
    r.why = {"signature.refused", "Signature refused", "Declined"};
    c.send(r);
    serve_logout(c);
  });
  piped_sim sim(sim_args(server.port(), {"interactive", "--currency", "EUR"}));
  auto& p = sim.proc();
  REQUIRE(p.wait_for_prefix("type 'help'", 20s));
  sim.type("sale 99 2.50");
  auto question = p.wait_for_prefix("[prompt] ", 20s);
  REQUIRE(question.has_value());
  CHECK(*question == "Signature OK? (yes/no) [default: no]");
  sim.close_stdin();
  REQUIRE(p.wait_for_prefix("== DECLINED ==", 20s));
  CHECK(p.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 3);
  CHECK(std::get<sale>(got[1]).currency == "EUR");
  CHECK(std::get<sale>(got[1]).amount == 250);
  CHECK(std::get<answer>(got[2]).value == "no");
}

TEST_CASE("sim interactive: a refused answer is asked again, unknown commands are explained", "[pos][sim]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(prompt{s->id, "p1", s->order_no, "numeric", "Last 4 digits of the card?", {}, 0, ""});
    auto bad = c.expect_type<answer>(20s);
    if (!bad) return;
    got.emplace_back(*bad);
    c.send(error{bad->id, "pos.bad_field", "value: digits expected", s->order_no, ""});
    auto good = c.expect_type<answer>(20s);
    if (!good) return;
    got.emplace_back(*good);
    c.send(approved_for(*s));
    serve_logout(c);
  });
  piped_sim sim(sim_args(server.port(), {"interactive"}));
  auto& p = sim.proc();
  REQUIRE(p.wait_for_prefix("type 'help'", 20s));
  sim.type("frobnicate");
  REQUIRE(p.wait_for_prefix("[usage] unknown command 'frobnicate'", 20s));
  sim.type("sale 1 1.00");
  REQUIRE(p.wait_for_prefix("[prompt] Last 4 digits of the card? (digits)", 20s));
  sim.type("12ab");
  REQUIRE(p.wait_for_prefix("[answer] refused: value: digits expected", 20s));
  REQUIRE(p.wait_for_prefix("[prompt] Last 4 digits of the card?", 20s));
  sim.type("1234");
  REQUIRE(p.wait_for_prefix("== APPROVED ==", 20s));
  sim.type("quit");
  CHECK(p.wait_exit(20s) == 0);
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 3);
  CHECK(std::get<answer>(got[1]).value == "12ab");
  CHECK(std::get<answer>(got[2]).value == "1234");
}

// ---------------------------------------------------------------- interactive on a terminal

namespace {

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A private tmux server on a socket in a temp dir of its own, killed and removed when the test
// ends however it ends.
class tmux_session {
 public:
  explicit tmux_session(const std::string& command)
      : dir_(eftd::test::make_temp_dir("pos-sim-tmux")),
        tmux_("env -u TMUX tmux -S " + shell_quote(dir_ + "/socket") + " ") {
    ok_ = std::system((tmux_ + "new-session -d -s sim -x 160 -y 60 " + shell_quote(command)).c_str()) == 0;
  }
  ~tmux_session() {
    (void)std::system((tmux_ + "kill-server >/dev/null 2>&1").c_str());
    ::unlink((dir_ + "/socket").c_str());
    ::rmdir(dir_.c_str());
  }
  bool ok() const { return ok_; }

  void keys(const std::string& text) {
    (void)std::system((tmux_ + "send-keys -t sim -l " + shell_quote(text)).c_str());
    (void)std::system((tmux_ + "send-keys -t sim Enter").c_str());
  }

  // The pane's text once it contains `needle`, or nullopt at the deadline. tmux has no event
  // for "the pane shows X", so the pane is captured every 50 ms until then.
  std::optional<std::string> wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::string pane = run_capture(tmux_ + "capture-pane -p -t sim -S -1000 2>/dev/null");
      if (pane.find(needle) != std::string::npos) return pane;
      last_ = pane;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      ::poll(nullptr, 0, 50);
    }
  }
  const std::string& last_capture() const { return last_; }

 private:
  std::string dir_;
  std::string tmux_;
  bool ok_ = false;
  std::string last_;
};

}  // namespace

TEST_CASE("sim interactive: a person at a terminal (tmux) runs a sale and answers the prompt", "[pos][sim]") {
  if (std::system("command -v tmux >/dev/null 2>&1") != 0) {
    WARN("tmux is not installed: the terminal test is skipped (tools/lib.sh should install it)");
    return;
  }
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>(30s);
    if (!s) return;
    got.emplace_back(*s);
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    c.send(prompt{s->id, "p1", s->order_no, "yes_no", "Signature OK?", {"yes", "no"}, 30000, "no"});
    auto a = c.expect_type<answer>(30s);
    if (!a) return;
    got.emplace_back(*a);
    c.send(approved_for(*s));
    serve_logout(c);
  });
  std::string cmd = "exec " + shell_quote(eftd::test::bin_path("eft-pos-sim"));
  for (const auto& a : sim_args(server.port(), {"interactive"})) cmd += " " + shell_quote(a);
  tmux_session tmux(cmd);
  REQUIRE(tmux.ok());
  const auto wait_for = [&](const std::string& text) {
    auto pane = tmux.wait_for(text, 20s);
    if (!pane) FAIL("'" << text << "' did not appear; the pane shows:\n" << tmux.last_capture());
    return *pane;
  };
  wait_for("type 'help'");
  tmux.keys("sale 4711 125.00 PLN");
  const auto asked = wait_for("[prompt] Signature OK? (yes/no) [default: no]");
  CHECK(asked.find("[status] Insert or swipe card") != std::string::npos);
  tmux.keys("y");
  wait_for("== APPROVED ==");
  // The receipt lines follow the heading and may reach the pane a capture later.
  const auto done = wait_for("************0119");
  CHECK(done.find("[answer] yes") != std::string::npos);
  tmux.keys("quit");
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 3);
  CHECK(std::get<answer>(got[2]).value == "yes");
}
