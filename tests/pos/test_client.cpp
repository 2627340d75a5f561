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
