// Client library against a scripted fake server on a real loopback socket.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "eftd/pos/client.hpp"
#include "fake_server.hpp"

using namespace eftd::pos;
using namespace std::chrono_literals;
using eftd::pos::test::accept_login;
using eftd::pos::test::fake_conn;
using eftd::pos::test::fake_server;
using eftd::pos::test::fake_tls;
using eftd::pos::test::test_pki;

namespace {

std::unique_ptr<client> connect_to(const fake_server& s, client_options o = {}) {
  auto c = client::connect("127.0.0.1", s.port(), 5s, o);
  REQUIRE(c.has_value());
  return std::move(*c);
}

std::unique_ptr<client> logged_in(const fake_server& s, client_options o = {}) {
  auto c = connect_to(s, o);
  auto ok = c->login(login{"", "T01", "42", "test", 1, {}});
  REQUIRE(ok.has_value());
  return c;
}

sale sale_4711() {
  return sale{"", "4711", "PLN", 12500, 0, 0};
}

result approved(const sale& s) {
  result r;
  r.id = s.id;
  r.order_no = s.order_no;
  r.outcome = "approved";
  r.amount = s.amount;
  r.approved_amount = s.amount;
  r.currency = s.currency;
  r.auth_code = "A1B2C3";
  r.masked_pan = "************0119";
  r.rcpt.merchant = {"SHOP", "SALE 125.00 PLN"};
  return r;
}

}  // namespace

TEST_CASE("client: login gets login_ok with the echoed id", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    accept_login(c, got);
    c.wait_closed();
  });
  auto c = connect_to(server);
  auto ok = c->login(login{"", "T01", "42", "test", 1, {}});
  REQUIRE(ok.has_value());
  CHECK(ok->server == "fake");
  CHECK(ok->business_date == "2024-05-02");
  CHECK(ok->capabilities == std::vector<std::string>{"sale", "status_query"});
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 1);
  const auto& l = std::get<login>(got[0]);
  CHECK(l.till_id == "T01");
  CHECK(l.operator_id == "42");
  CHECK_FALSE(l.id.empty());  // the client filled in a request id
  CHECK(ok->id == l.id);
}

TEST_CASE("client: a refused login returns the server's code", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>&) {
    auto l = c.expect_type<login>();
    if (l) c.send(error{l->id, "unknown_till", "till is not configured", "", ""});
    c.wait_closed();
  });
  auto c = connect_to(server);
  auto r = c->login(login{"", "T99", "", "", 1, {}});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::unknown_till);
  CHECK(c->connected());  // a refusal is not an I/O failure
}

TEST_CASE("client: sale with status lines, a prompt and the final result", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    c.send(prompt{s->id, "p1", s->order_no, "yes_no", "Signature OK?", {"yes", "no"}, 30000, "no"});
    auto a = c.expect_type<answer>();
    if (!a) return;
    got.emplace_back(*a);
    c.send(status{s->id, s->order_no, "authorizing", "Authorizing"});
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  std::vector<std::string> texts;
  std::vector<std::string> prompts;
  callbacks cb;
  cb.on_status = [&](const status& s) { texts.push_back(s.text); };
  cb.on_prompt = [&](const prompt& p) {
    prompts.push_back(p.text);
    return std::string("yes");
  };
  auto r = c->sale(sale_4711(), cb);
  REQUIRE(r.has_value());
  CHECK(r->outcome == "approved");
  CHECK(r->order_no == "4711");
  CHECK(r->amount == 12500);
  CHECK(r->auth_code == "A1B2C3");
  CHECK(r->rcpt.merchant.size() == 2);
  CHECK(texts == std::vector<std::string>{"Insert or swipe card", "Authorizing"});
  CHECK(prompts == std::vector<std::string>{"Signature OK?"});
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 3);
  const auto& a = std::get<answer>(got[2]);
  CHECK(a.prompt_id == "p1");
  CHECK(a.value == "yes");
  CHECK(std::get<sale>(got[1]).amount == 12500);
}

TEST_CASE("client: without on_prompt the prompt's default is answered", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(prompt{s->id, "p7", s->order_no, "menu", "Account?", {"credit", "debit"}, 0, "debit"});
    auto a = c.expect_type<answer>();
    if (!a) return;
    got.emplace_back(*a);
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->sale(sale_4711());
  REQUIRE(r.has_value());
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(std::get<answer>(got[1]).value == "debit");
}

TEST_CASE("client: server disconnect mid-sale is pos.disconnected", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    // Half a line, then the connection drops: the partial line must not be taken as a result.
    c.send_raw(R"({"type":"result","v":1,"id":")" + s->id + R"(","order_no":"4711","outc)");
    c.close();
  });
  auto c = logged_in(server);
  int statuses = 0;
  callbacks cb;
  cb.on_status = [&](const status&) { ++statuses; };
  auto r = c->sale(sale_4711(), cb);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::disconnected);
  CHECK(statuses == 1);
  CHECK_FALSE(c->connected());
  // Every later call fails fast with the same code; the POS must reconnect.
  auto q = c->query(status_query{"", "4711", ""});
  REQUIRE_FALSE(q.has_value());
  CHECK(q.err().code == codes::disconnected);
}

TEST_CASE("client: silence beyond the inactivity timeout is pos.timeout", "[pos][client]") {
  bool client_closed = false;
  fake_server server([&](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    if (!c.expect_type<sale>()) return;
    // Scripted silence: no status, no result. The client must give up on its own.
    client_closed = c.wait_closed(20s);
  });
  client_options o;
  o.inactivity_timeout = 200ms;
  auto c = logged_in(server, o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c->sale(sale_4711());
  const auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::timeout);
  CHECK(waited >= 200ms);
  CHECK_FALSE(c->connected());
  c.reset();  // closes the socket: the fake server sees EOF
  server.join();
  CHECK(client_closed);
}

TEST_CASE("client: status heartbeats keep a long transaction alive", "[pos][client]") {
  // Inactivity, not total duration: 8 status lines 150 ms apart span 1.2 s, more than the
  // 1 s timeout, yet no gap comes near it.
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    for (int i = 0; i < 8; ++i) {
      c.send(status{s->id, s->order_no, "pin", "Enter PIN"});
      std::this_thread::sleep_for(150ms);  // pacing the server, not waiting for an event
    }
    c.send(approved(*s));
    c.wait_closed();
  });
  client_options o;
  o.inactivity_timeout = 1s;
  auto c = logged_in(server, o);
  int statuses = 0;
  callbacks cb;
  cb.on_status = [&](const status&) { ++statuses; };
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c->sale(sale_4711(), cb);
  REQUIRE(r.has_value());
  CHECK(r->outcome == "approved");
  CHECK(statuses == 8);
  CHECK(std::chrono::steady_clock::now() - t0 > 1s);
}

TEST_CASE("client: a server error reply ends the sale with the server's code", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(error{s->id, "busy", "another transaction is running on this till", s->order_no, ""});
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->sale(sale_4711());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::busy);
  CHECK(c->connected());
}

TEST_CASE("client: replies for other requests are skipped, the matching result is taken", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(heartbeat_ack{"zzz"});
    result other = approved(*s);
    other.id = "someone-else";
    other.order_no = "1000";
    c.send(other);
    c.send(error{"not-mine", "internal", "x", "", ""});
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->sale(sale_4711());
  REQUIRE(r.has_value());
  CHECK(r->order_no == "4711");
}

TEST_CASE("client: a rejected late answer does not end the transaction", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(prompt{s->id, "p1", s->order_no, "yes_no", "Continue?", {}, 100, "yes"});
    auto a = c.expect_type<answer>();
    if (!a) return;
    c.send(error{a->id, "unknown_prompt", "prompt already timed out", s->order_no, ""});
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->sale(sale_4711());
  REQUIRE(r.has_value());
  CHECK(r->outcome == "approved");
}

TEST_CASE("client: status query returns the stored result", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto q = c.expect_type<status_query>();
    if (!q) return;
    got.emplace_back(*q);
    c.send(status{"", "4711", "", "unrelated display line"});
    c.send(order_status{q->id, q->order_no, "2024-05-02", "approved",
                        approved(sale{"9", "4711", "PLN", 12500, 0, 0})});
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->query(status_query{"", "4711", "2024-05-02"});
  REQUIRE(r.has_value());
  CHECK(r->state == "approved");
  REQUIRE(r->last_result.has_value());
  CHECK(r->last_result->auth_code == "A1B2C3");
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(std::get<status_query>(got[1]).business_date == "2024-05-02");
}

TEST_CASE("client: abort from a callback reaches the server, the sale ends cancelled", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    auto a = c.expect_type<abort_tx>();
    if (!a) return;
    got.emplace_back(*a);
    result r;
    r.id = s->id;
    r.order_no = s->order_no;
    r.outcome = "cancelled";
    r.why = {"pos.aborted", "Aborted by the cashier", "Cancelled"};
    c.send(r);
    c.wait_closed();
  });
  auto c = logged_in(server);
  callbacks cb;
  cb.on_status = [&](const status& s) { REQUIRE(c->abort(s.order_no).has_value()); };
  auto r = c->sale(sale_4711(), cb);
  REQUIRE(r.has_value());
  CHECK(r->outcome == "cancelled");
  CHECK(r->why.code == "pos.aborted");
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(std::get<abort_tx>(got[1]).order_no == "4711");
}

TEST_CASE("client: abort from another thread while the sale blocks", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    auto a = c.expect_type<abort_tx>();
    if (!a) return;
    result r;
    r.id = s->id;
    r.order_no = s->order_no;
    r.outcome = "cancelled";
    c.send(r);
    c.wait_closed();
  });
  auto c = logged_in(server);
  // The cashier thread aborts once the transaction is visibly running (first status line).
  std::promise<void> running;
  auto running_f = running.get_future();
  std::thread cashier([&] {
    if (running_f.wait_for(10s) == std::future_status::ready) (void)c->abort("4711");
  });
  callbacks cb;
  bool signalled = false;
  cb.on_status = [&](const status&) {
    if (!signalled) running.set_value();
    signalled = true;
  };
  auto r = c->sale(sale_4711(), cb);
  if (!signalled) running.set_value();
  cashier.join();
  REQUIRE(r.has_value());
  CHECK(r->outcome == "cancelled");
}

TEST_CASE("client: ping and logout", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto h = c.expect_type<heartbeat>();
    if (!h) return;
    c.send(heartbeat_ack{h->id});
    auto l = c.expect_type<logout>();
    if (!l) return;
    got.emplace_back(*l);
    c.send(logout_ok{l->id});
    c.close();
  });
  auto c = logged_in(server);
  auto p = c->ping();
  REQUIRE(p.has_value());
  CHECK_FALSE(p->id.empty());
  auto lo = c->logout();
  CHECK(lo.has_value());
  CHECK_FALSE(c->connected());
  server.join();
  CHECK(server.received().size() == 2);
}

TEST_CASE("client: logout answered by closing the connection still ends the session cleanly",
          "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    if (auto l = c.expect_type<logout>()) got.emplace_back(*l);
    c.close();
  });
  auto c = logged_in(server);
  CHECK(c->logout().has_value());
  CHECK_FALSE(c->connected());
  auto again = c->logout();
  REQUIRE_FALSE(again.has_value());
  CHECK(again.err().code == codes::disconnected);
  server.join();
  CHECK(server.received().size() == 2);
}

TEST_CASE("client: an oversize line from the server is pos.frame_too_large", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send_raw(std::string(max_line_bytes + 10, 'x'));
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->sale(sale_4711());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::frame_too_large);
  CHECK_FALSE(c->connected());
}

TEST_CASE("client: garbage from the server is a protocol error", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>&) {
    auto l = c.expect_type<login>();
    if (!l) return;
    c.send_raw("HTTP/1.1 400 Bad Request\r\n");
    c.wait_closed();
  });
  auto c = connect_to(server);
  auto r = c->login(login{"", "T01", "", "", 1, {}});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::bad_json);
  CHECK_FALSE(c->connected());
}

TEST_CASE("client: connection refused is pos.disconnected", "[pos][client]") {
  std::uint16_t port = 0;
  {
    // Bind then close a socket: nothing listens on that port afterwards.
    fake_server probe([](fake_conn&, std::vector<message>&) {});
    port = probe.port();
    auto c = client::connect("127.0.0.1", port, 2s);  // lets the probe's thread finish
    REQUIRE(c.has_value());
  }
  auto c = client::connect("127.0.0.1", port, 2s);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == codes::disconnected);
}

TEST_CASE("client: transaction() refuses non-transaction messages", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    accept_login(c, got);
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->transaction(heartbeat{"1"});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::unexpected);
}

TEST_CASE("client: totals returns the totals_report", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto t = c.expect_type<totals>();
    if (!t) return;
    got.emplace_back(*t);
    c.send(status{"", "", "", "unrelated display line"});
    totals_report r;
    r.id = t->id;
    r.till_id = "T01";
    r.business_date = t->business_date;
    r.lines = {{"refund", "approved", "PLN", 1, 500}, {"sale", "approved", "PLN", 2, 25000}};
    r.net = {{"PLN", 24500}};
    c.send(r);
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->totals(totals{"", "2024-05-02"});
  REQUIRE(r.has_value());
  CHECK(r->till_id == "T01");
  CHECK(r->business_date == "2024-05-02");
  REQUIRE(r->lines.size() == 2);
  CHECK(r->lines[1] == totals_line{"sale", "approved", "PLN", 2, 25000});
  CHECK(r->net.at("PLN") == 24500);
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(std::get<totals>(got[1]).business_date == "2024-05-02");
  CHECK_FALSE(std::get<totals>(got[1]).id.empty());
}

TEST_CASE("client: a refused totals request returns the server's code", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto t = c.expect_type<totals>();
    if (t) c.send(error{t->id, "not_supported", "not served", "", ""});
    c.wait_closed();
  });
  auto c = logged_in(server);
  auto r = c->totals(totals{});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == codes::not_supported);
  CHECK(c->connected());
}

TEST_CASE("client: balance inquiry returns the balance", "[pos][client]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto b = c.expect_type<balance_inquiry>();
    if (!b) return;
    got.emplace_back(*b);
    c.send(status{b->id, b->order_no, "card", "Insert card"});
    result r;
    r.id = b->id;
    r.order_no = b->order_no;
    r.outcome = "approved";
    r.currency = "PLN";
    r.balance = 123456;
    c.send(r);
    c.wait_closed();
  });
  auto c = logged_in(server);
  int statuses = 0;
  callbacks cb;
  cb.on_status = [&](const status&) { ++statuses; };
  auto r = c->balance_inquiry(balance_inquiry{"", "B-1"}, cb);
  REQUIRE(r.has_value());
  CHECK(r->outcome == "approved");
  REQUIRE(r->balance.has_value());
  CHECK(*r->balance == 123456);
  CHECK(statuses == 1);
  c.reset();
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<balance_inquiry>(server.received()[1]).order_no == "B-1");
}

// ---------------------------------------------------------------- TLS

namespace {

fake_tls good_server_tls() {
  const auto& pki = test_pki();
  return fake_tls{pki.server_cert, pki.server_key, pki.ca_cert, true};
}

client_options tls_client(std::string server_name = {}) {
  const auto& pki = test_pki();
  client_options o;
  o.tls = tls_options{pki.ca_cert, pki.client_cert, pki.client_key, std::move(server_name), true};
  return o;
}

}  // namespace

TEST_CASE("client tls: sale over TLS, the till's client certificate reaches the server",
          "[pos][client][tls]") {
  fake_server server(
      [](fake_conn& c, std::vector<message>& got) {
        if (!accept_login(c, got)) return;
        auto s = c.expect_type<sale>();
        if (!s) return;
        got.emplace_back(*s);
        c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
        c.send(approved(*s));
        c.wait_closed();
      },
      good_server_tls());
  auto c = logged_in(server, tls_client());
  auto r = c->sale(sale_4711());
  REQUIRE(r.has_value());
  CHECK(r->outcome == "approved");
  c.reset();
  server.join();
  const auto seen = server.tls();
  CHECK(seen.handshake_ok);
  CHECK(seen.client_cn == "T01");
  CHECK(seen.version >= TLS1_2_VERSION);
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<sale>(server.received()[1]).amount == 12500);
}

TEST_CASE("client tls: the server name is checked against a DNS name too", "[pos][client][tls]") {
  fake_server server(
      [](fake_conn& c, std::vector<message>& got) {
        accept_login(c, got);
        c.wait_closed();
      },
      good_server_tls());
  auto c = client::connect("127.0.0.1", server.port(), 5s, tls_client("localhost"));
  REQUIRE(c.has_value());
  auto ok = (*c)->login(login{"", "T01", "", "", 1, {}});
  CHECK(ok.has_value());
}

TEST_CASE("client tls: a server certificate from an unknown CA is pos.disconnected", "[pos][client][tls]") {
  const auto& pki = test_pki();
  fake_server server([](fake_conn&, std::vector<message>&) {},
                     fake_tls{pki.rogue_server_cert, pki.rogue_server_key, pki.ca_cert, false});
  auto c = client::connect("127.0.0.1", server.port(), 5s, tls_client());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == codes::disconnected);
  INFO(c.err().message);
  CHECK(c.err().message.rfind("TLS handshake failed: ", 0) == 0);
  CHECK(c.err().message.find("certificate verify failed") != std::string::npos);
  server.join();
  CHECK_FALSE(server.tls().handshake_ok);
}

TEST_CASE("client tls: a certificate for another host is pos.disconnected", "[pos][client][tls]") {
  const auto& pki = test_pki();
  fake_server server([](fake_conn&, std::vector<message>&) {},
                     fake_tls{pki.wrong_name_cert, pki.wrong_name_key, "", false});
  auto c = client::connect("127.0.0.1", server.port(), 5s, tls_client());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == codes::disconnected);
  INFO(c.err().message);
  CHECK(c.err().message.rfind("TLS handshake failed: ", 0) == 0);
  CHECK(c.err().message.find("mismatch") != std::string::npos);
}

TEST_CASE("client tls: the name check can be relaxed, the chain is still verified", "[pos][client][tls]") {
  const auto& pki = test_pki();
  fake_server server(
      [](fake_conn& c, std::vector<message>& got) {
        accept_login(c, got);
        c.wait_closed();
      },
      fake_tls{pki.wrong_name_cert, pki.wrong_name_key, "", false});
  auto o = tls_client();
  o.tls->check_server_name = false;
  auto c = client::connect("127.0.0.1", server.port(), 5s, o);
  REQUIRE(c.has_value());
  CHECK((*c)->login(login{"", "T01", "", "", 1, {}}).has_value());
}

TEST_CASE("client tls: a server that requires a client certificate refuses a client without one",
          "[pos][client][tls]") {
  fake_server server([](fake_conn&, std::vector<message>&) {}, good_server_tls());
  client_options o;
  o.tls = tls_options{test_pki().ca_cert, "", "", "", true};
  // With TLS 1.3 the client finishes its side of the handshake before the server has judged its
  // certificate: the refusal then shows on the first exchange.
  auto c = client::connect("127.0.0.1", server.port(), 5s, o);
  if (c.has_value()) {
    auto ok = (*c)->login(login{"", "T01", "", "", 1, {}});
    REQUIRE_FALSE(ok.has_value());
    CHECK(ok.err().code == codes::disconnected);
  } else {
    CHECK(c.err().code == codes::disconnected);
  }
  server.join();
  CHECK_FALSE(server.tls().handshake_ok);
}

TEST_CASE("client tls: an unreadable CA file is pos.disconnected naming the file", "[pos][client][tls]") {
  fake_server server([](fake_conn&, std::vector<message>&) {}, good_server_tls());
  client_options o;
  o.tls = tls_options{test_pki().dir + "/missing.pem", "", "", "", true};
  auto c = client::connect("127.0.0.1", server.port(), 5s, o);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == codes::disconnected);
  CHECK(c.err().message.find("missing.pem") != std::string::npos);
}

TEST_CASE("client tls: a plaintext server is a failed handshake, not a hang", "[pos][client][tls]") {
  fake_server server([](fake_conn& c, std::vector<message>&) {
    // A plaintext server answers the ClientHello with a protocol line.
    c.send(error{"", "pos.bad_json", "not JSON", "", ""});
    c.wait_closed();
  });
  auto c = client::connect("127.0.0.1", server.port(), 5s, tls_client());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == codes::disconnected);
  CHECK(c.err().message.rfind("TLS handshake failed: ", 0) == 0);
}

TEST_CASE("client tls: writing to a connection the server dropped is pos.disconnected, not SIGPIPE",
          "[pos][client][tls]") {
  fake_server server([](fake_conn& c, std::vector<message>&) { c.close(); }, good_server_tls());
  auto c = client::connect("127.0.0.1", server.port(), 5s, tls_client());
  REQUIRE(c.has_value());
  server.join();  // the server's end is closed now
  // abort() only writes: the first write may still be accepted by the kernel (the peer answers
  // it with RST), a later one fails with EPIPE, which a plain write() turns into SIGPIPE.
  eftd::status st;
  for (int i = 0; i < 100 && st.has_value(); ++i) st = (*c)->abort("4711");
  REQUIRE_FALSE(st.has_value());
  CHECK(st.err().code == codes::disconnected);
}

TEST_CASE("client: an answer with an older fencing epoch than one seen is pos.stale_epoch", "[pos][client]") {
  // The POS has seen epoch 8 elsewhere (min_epoch). A node still at epoch 7 has been deposed
  // since: its login_ok must not be used. One at epoch 9 is newer: accepted and remembered.
  for (const std::uint64_t server_epoch : {7u, 9u}) {
    INFO("server epoch " << server_epoch);
    fake_server server([server_epoch](fake_conn& c, std::vector<message>&) {
      auto l = c.expect_type<login>();
      if (l) c.send_raw(encode(login_ok{l->id, "fake", "2024-05-02", 1, {"sale"}}, server_epoch));
      c.wait_closed();
    });
    client_options o;
    o.min_epoch = 8;
    auto c = connect_to(server, o);
    auto r = c->login(login{"", "T01", "", "", 1, {}});
    if (server_epoch < 8) {
      REQUIRE_FALSE(r.has_value());
      CHECK(r.err().code == codes::stale_epoch);
      CHECK_FALSE(c->connected());
      CHECK(c->epoch() == 8);
    } else {
      REQUIRE(r.has_value());
      CHECK(c->epoch() == 9);
    }
    c.reset();
    server.join();
  }
}
