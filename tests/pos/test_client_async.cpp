// Async client library against the scripted fake server on a real loopback socket.
//
// Callbacks run on the client's I/O thread; they only record into an event_log, and the test
// thread waits on that log with a deadline (never a sleep) and asserts afterwards.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eftd/pos/async_client.hpp"
#include "fake_server.hpp"

using namespace eftd::pos;
using namespace std::chrono_literals;
using eftd::pos::test::accept_login;
using eftd::pos::test::fake_conn;
using eftd::pos::test::fake_server;
using eftd::pos::test::fake_tls;
using eftd::pos::test::test_pki;

namespace {

// Thread-safe record of what the callbacks saw, with deadline waits.
class event_log {
 public:
  // Notifies under the lock: a waiter may destroy the log as soon as it wakes (a client
  // destroyed from its own callback still returns through here on its I/O thread).
  void add(std::string e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
    cv_.notify_all();
  }
  bool wait_for(const std::string& e, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return std::find(events_.begin(), events_.end(), e) != events_.end(); });
  }
  std::vector<std::string> all() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::size_t count(const std::string& prefix) {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(
        events_.begin(), events_.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }));
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

// One completion, awaited with a deadline.
template <class T>
class waiter {
 public:
  std::function<void(T)> fn() {
    return [this](T v) { p_.set_value(std::move(v)); };
  }
  std::optional<T> get(std::chrono::milliseconds timeout = 10s) {
    if (f_.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return f_.get();
  }
  bool ready() { return f_.wait_for(0s) == std::future_status::ready; }

 private:
  std::promise<T> p_;
  std::future<T> f_ = p_.get_future();
};

std::unique_ptr<async_client> connect_to(const fake_server& s, client_options o = {}) {
  auto c = async_client::connect("127.0.0.1", s.port(), 5s, std::move(o));
  REQUIRE(c.has_value());
  return std::move(*c);
}

std::unique_ptr<async_client> logged_in(const fake_server& s, client_options o = {}) {
  auto c = connect_to(s, std::move(o));
  waiter<eftd::result<login_ok>> w;
  c->login(login{"", "T01", "42", "test", 1, {"prompt"}}, w.fn());
  auto r = w.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
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
  return r;
}

result cancelled(const sale& s) {
  result r;
  r.id = s.id;
  r.order_no = s.order_no;
  r.outcome = "cancelled";
  r.why = {"pos.aborted", "Aborted by the cashier", "Cancelled"};
  return r;
}

async_callbacks logging_callbacks(event_log& log) {
  async_callbacks cb;
  cb.on_status = [&log](const status& s) { log.add("status:" + s.text); };
  cb.on_prompt = [&log](const prompt& p) { log.add("prompt:" + p.prompt_id); };
  cb.on_answer_rejected = [&log](const error& e) { log.add("rejected:" + e.code); };
  return cb;
}

}  // namespace

TEST_CASE("async: status and prompt are delivered while the cashier answers later from another thread",
          "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    got.emplace_back(*s);
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    c.send(prompt{s->id, "p1", s->order_no, "yes_no", "Signature OK?", {"yes", "no"}, 30000, "no"});
    // The prompt is open; the server keeps sending its heartbeat status lines meanwhile.
    c.send(status{s->id, s->order_no, "signature", "Waiting for the cashier"});
    auto a = c.expect_type<answer>();
    if (!a) return;
    got.emplace_back(*a);
    c.send(status{s->id, s->order_no, "authorizing", "Authorizing"});
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  event_log log;
  std::atomic<bool> on_io_thread{true};
  const auto test_thread = std::this_thread::get_id();
  auto cb = logging_callbacks(log);
  cb.on_status = [&](const status& s) {
    if (std::this_thread::get_id() == test_thread) on_io_thread = false;
    log.add("status:" + s.text);
  };
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), cb, done.fn());
  // The call returned at once; the cashier sees the prompt and, later, answers it.
  REQUIRE(log.wait_for("prompt:p1"));
  REQUIRE(log.wait_for("status:Waiting for the cashier"));
  CHECK_FALSE(done.ready());
  REQUIRE(c->answer("p1", "yes").has_value());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->outcome == "approved");
  CHECK((*r)->auth_code == "A1B2C3");
  CHECK(log.all() == std::vector<std::string>{"status:Insert or swipe card", "prompt:p1",
                                              "status:Waiting for the cashier", "status:Authorizing"});
  CHECK(on_io_thread);
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 3);
  CHECK(std::get<answer>(got[2]).prompt_id == "p1");
  CHECK(std::get<answer>(got[2]).value == "yes");
  CHECK(std::get<login>(got[0]).capabilities == std::vector<std::string>{"prompt"});
}

TEST_CASE("async: queries and pings during a sale complete on their own, replies matched by id",
          "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    std::optional<status_query> q;
    std::optional<heartbeat> h;
    for (int i = 0; i < 2; ++i) {
      auto m = c.expect();
      if (!m) return;
      if (auto* x = std::get_if<status_query>(&*m)) q = *x;
      if (auto* x = std::get_if<heartbeat>(&*m)) h = *x;
      got.push_back(*m);
    }
    if (!q || !h) return;
    // Answered in the opposite order, with a status line in between.
    c.send(heartbeat_ack{h->id});
    c.send(status{s->id, s->order_no, "pin", "Enter PIN"});
    c.send(order_status{q->id, q->order_no, "2024-05-02", "approved", std::nullopt});
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  event_log log;
  waiter<eftd::result<result>> sale_done;
  c->start_sale(sale_4711(), logging_callbacks(log), sale_done.fn());
  REQUIRE(log.wait_for("status:Insert or swipe card"));
  waiter<eftd::result<order_status>> query_done;
  waiter<eftd::result<heartbeat_ack>> ping_done;
  c->query(status_query{"", "4710", ""}, query_done.fn());
  c->ping(ping_done.fn());
  auto q = query_done.get();
  auto p = ping_done.get();
  auto r = sale_done.get();
  REQUIRE(q.has_value());
  REQUIRE(p.has_value());
  REQUIRE(r.has_value());
  REQUIRE(q->has_value());
  CHECK((*q)->order_no == "4710");
  CHECK(p->has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->outcome == "approved");
  CHECK(log.count("status:") == 2);
}

TEST_CASE("async: abort while a sale runs: acknowledged, and the sale ends cancelled", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    auto a = c.expect_type<abort_tx>();
    if (!a) return;
    got.emplace_back(*a);
    c.send(status{a->id, s->order_no, "aborting", "Aborting"});
    c.send(cancelled(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  event_log log;
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), logging_callbacks(log), done.fn());
  REQUIRE(log.wait_for("status:Insert or swipe card"));
  waiter<eftd::status> aborted;
  c->abort("4711", aborted.fn());
  auto a = aborted.get();
  REQUIRE(a.has_value());
  CHECK(a->has_value());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->outcome == "cancelled");
  CHECK((*r)->why.code == "pos.aborted");
  CHECK(log.all() == std::vector<std::string>{"status:Insert or swipe card", "status:Aborting"});
  c.reset();
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<abort_tx>(server.received()[1]).order_no == "4711");
}

TEST_CASE("async: abort of an order that is not running gets unknown_order", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto a = c.expect_type<abort_tx>();
    if (!a) return;
    c.send(error{a->id, "unknown_order", "no transaction of this order is running", a->order_no, ""});
    c.wait_closed();
  });
  auto c = logged_in(server);
  waiter<eftd::status> aborted;
  c->abort("9999", aborted.fn());
  auto a = aborted.get();
  REQUIRE(a.has_value());
  REQUIRE_FALSE(a->has_value());
  CHECK(a->err().code == codes::unknown_order);
  CHECK(c->connected());
}

TEST_CASE("async: a refused answer reaches on_answer_rejected and the cashier answers again",
          "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(prompt{s->id, "p9", s->order_no, "numeric", "Last 4 digits?", {}, 0, ""});
    auto bad = c.expect_type<answer>();
    if (!bad) return;
    got.emplace_back(*bad);
    c.send(error{bad->id, "pos.bad_field", "value: digits expected", s->order_no, ""});
    auto good = c.expect_type<answer>();
    if (!good) return;
    got.emplace_back(*good);
    c.send(approved(*s));
    c.wait_closed();
  });
  auto c = logged_in(server);
  event_log log;
  auto cb = logging_callbacks(log);
  // Callbacks may call back into the client: answers straight from the I/O thread.
  cb.on_prompt = [&](const prompt& p) {
    log.add("prompt:" + p.prompt_id);
    (void)c->answer(p.prompt_id, "abc");
  };
  cb.on_answer_rejected = [&](const error& e) {
    log.add("rejected:" + e.code);
    (void)c->answer("p9", "1234");
  };
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), cb, done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->outcome == "approved");
  CHECK(log.all() == std::vector<std::string>{"prompt:p9", "rejected:pos.bad_field"});
  c.reset();
  server.join();
  const auto got = server.received();
  REQUIRE(got.size() == 3);
  CHECK(std::get<answer>(got[1]).value == "abc");
  CHECK(std::get<answer>(got[2]).value == "1234");
}

TEST_CASE("async: without on_prompt the default is answered at once", "[pos][async]") {
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
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), {}, done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  CHECK(r->has_value());
  c.reset();
  server.join();
  REQUIRE(server.received().size() == 2);
  CHECK(std::get<answer>(server.received()[1]).value == "debit");
}

TEST_CASE("async: a disconnect mid-sale completes everything pending with pos.disconnected", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
    if (!c.expect_type<status_query>()) return;
    // Half a line, then the connection drops: the partial line must not be taken as a result.
    c.send_raw(R"({"type":"result","v":1,"id":")" + s->id + R"(","order_no":"4711","outc)");
    c.close();
  });
  auto c = logged_in(server);
  event_log log;
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), logging_callbacks(log), done.fn());
  REQUIRE(log.wait_for("status:Insert or swipe card"));
  waiter<eftd::result<order_status>> query_done;
  c->query(status_query{"", "4711", ""}, query_done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  CHECK(r->err().code == codes::disconnected);
  auto q = query_done.get();
  REQUIRE(q.has_value());
  REQUIRE_FALSE(q->has_value());
  CHECK(q->err().code == codes::disconnected);
  CHECK_FALSE(c->connected());
  // Later requests complete (on the I/O thread) with the same code; the POS must reconnect.
  waiter<eftd::result<heartbeat_ack>> later;
  c->ping(later.fn());
  auto l = later.get();
  REQUIRE(l.has_value());
  REQUIRE_FALSE(l->has_value());
  CHECK(l->err().code == codes::disconnected);
  CHECK_FALSE(c->answer("p1", "yes").has_value());
}

TEST_CASE("async: silence beyond the inactivity timeout is pos.timeout and closes the connection",
          "[pos][async]") {
  bool client_closed = false;
  fake_server server([&](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    if (!c.expect_type<sale>()) return;
    client_closed = c.wait_closed(20s);
  });
  client_options o;
  o.inactivity_timeout = 200ms;
  auto c = logged_in(server, o);
  const auto t0 = std::chrono::steady_clock::now();
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), {}, done.fn());
  auto r = done.get();
  const auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  CHECK(r->err().code == codes::timeout);
  CHECK(waited >= 200ms);
  CHECK_FALSE(c->connected());
  server.join();  // the client shut the connection down on its own, before being destroyed
  CHECK(client_closed);
}

TEST_CASE("async: status lines keep a long transaction alive", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    for (int i = 0; i < 6; ++i) {
      c.send(status{s->id, s->order_no, "pin", "Enter PIN"});
      std::this_thread::sleep_for(100ms);  // pacing the server, not waiting for an event
    }
    c.send(approved(*s));
    c.wait_closed();
  });
  client_options o;
  o.inactivity_timeout = 400ms;
  auto c = logged_in(server, o);
  event_log log;
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), logging_callbacks(log), done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK(log.count("status:") == 6);
}

TEST_CASE("async: destruction while a transaction runs: no callback afterwards, the server sees EOF",
          "[pos][async]") {
  std::atomic<bool> client_closed{false};
  fake_server server([&](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    // Status lines until the client goes away (each wait doubles as the pacing).
    for (int i = 0; i < 500; ++i) {
      c.send(status{s->id, s->order_no, "pin", "Enter PIN"});
      if (c.wait_closed(20ms)) {
        client_closed = true;
        return;
      }
    }
  });
  std::atomic<int> statuses{0};
  std::atomic<int> completions{0};
  event_log log;
  {
    auto c = logged_in(server);
    async_callbacks cb;
    cb.on_status = [&](const status&) {
      if (++statuses == 3) log.add("three");
    };
    c->start_sale(sale_4711(), cb, [&](eftd::result<result>) { ++completions; });
    REQUIRE(log.wait_for("three"));
    const auto t0 = std::chrono::steady_clock::now();
    c.reset();
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  }
  const int seen = statuses;
  server.join();
  CHECK(client_closed);
  CHECK(statuses == seen);  // the server kept sending until it saw EOF; nobody was called
  CHECK(completions == 0);  // abandoned, not completed
}

TEST_CASE("async: the client may be destroyed from inside its own callback", "[pos][async]") {
  std::atomic<bool> client_closed{false};
  fake_server server([&](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    for (int i = 0; i < 500; ++i) {
      c.send(status{s->id, s->order_no, "pin", "Enter PIN"});
      if (c.wait_closed(20ms)) {
        client_closed = true;
        return;
      }
    }
  });
  auto c = logged_in(server);
  std::atomic<int> statuses{0};
  event_log log;
  async_callbacks cb;
  cb.on_status = [&](const status&) {
    if (++statuses == 2) {
      c.reset();  // on the I/O thread; the test thread only looks at c after "gone"
      log.add("gone");
    }
  };
  c->start_sale(sale_4711(), cb, [&](eftd::result<result>) { log.add("done"); });
  REQUIRE(log.wait_for("gone"));
  server.join();
  CHECK(client_closed);
  CHECK(statuses == 2);
  CHECK(log.all() == std::vector<std::string>{"gone"});
}

TEST_CASE("async: a server refusal ends the transaction with the server's code", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(error{s->id, "busy", "another transaction is running on this till", s->order_no, ""});
    c.wait_closed();
  });
  auto c = logged_in(server);
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), {}, done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  CHECK(r->err().code == codes::busy);
  CHECK(c->connected());
}

TEST_CASE("async: start_transaction refuses non-transaction messages through done", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    accept_login(c, got);
    c.wait_closed();
  });
  auto c = logged_in(server);
  waiter<eftd::result<result>> done;
  c->start_transaction(heartbeat{"1"}, {}, done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  CHECK(r->err().code == codes::unexpected);
  CHECK(c->connected());
}

TEST_CASE("async: totals, balance inquiry, then logout closes the session", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto t = c.expect_type<totals>();
    if (!t) return;
    totals_report rep;
    rep.id = t->id;
    rep.till_id = "T01";
    rep.business_date = "2024-05-02";
    rep.lines = {{"sale", "approved", "PLN", 2, 25000}};
    rep.net = {{"PLN", 25000}};
    c.send(rep);
    auto b = c.expect_type<balance_inquiry>();
    if (!b) return;
    result r;
    r.id = b->id;
    r.order_no = b->order_no;
    r.outcome = "approved";
    r.balance = 777;
    c.send(r);
    auto l = c.expect_type<logout>();
    if (!l) return;
    got.emplace_back(*l);
    c.send(logout_ok{l->id});
    c.close();
  });
  auto c = logged_in(server);
  waiter<eftd::result<totals_report>> tot;
  c->totals(totals{}, tot.fn());
  auto t = tot.get();
  REQUIRE(t.has_value());
  REQUIRE(t->has_value());
  CHECK((*t)->net.at("PLN") == 25000);
  waiter<eftd::result<result>> bal;
  c->start_balance_inquiry(balance_inquiry{"", "B-1"}, {}, bal.fn());
  auto b = bal.get();
  REQUIRE(b.has_value());
  REQUIRE(b->has_value());
  CHECK((*b)->balance == std::optional<std::int64_t>(777));
  waiter<eftd::status> out;
  c->logout(out.fn());
  auto o = out.get();
  REQUIRE(o.has_value());
  CHECK(o->has_value());
  CHECK_FALSE(c->connected());
  server.join();
  CHECK(server.received().size() == 2);
}

TEST_CASE("async: sale over TLS with the till's client certificate", "[pos][async][tls]") {
  const auto& pki = test_pki();
  fake_server server(
      [](fake_conn& c, std::vector<message>& got) {
        if (!accept_login(c, got)) return;
        auto s = c.expect_type<sale>();
        if (!s) return;
        c.send(status{s->id, s->order_no, "card", "Insert or swipe card"});
        c.send(approved(*s));
        c.wait_closed();
      },
      fake_tls{pki.server_cert, pki.server_key, pki.ca_cert, true});
  client_options o;
  o.tls = tls_options{pki.ca_cert, pki.client_cert, pki.client_key, "", true};
  auto c = logged_in(server, o);
  event_log log;
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), logging_callbacks(log), done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->outcome == "approved");
  CHECK(log.all() == std::vector<std::string>{"status:Insert or swipe card"});
  c.reset();
  server.join();
  CHECK(server.tls().client_cn == "T01");
}

TEST_CASE("async: a TLS handshake failure is reported by connect", "[pos][async][tls]") {
  const auto& pki = test_pki();
  fake_server server([](fake_conn&, std::vector<message>&) {},
                     fake_tls{pki.rogue_server_cert, pki.rogue_server_key, "", false});
  client_options o;
  o.tls = tls_options{pki.ca_cert, "", "", "", true};
  auto c = async_client::connect("127.0.0.1", server.port(), 5s, o);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == codes::disconnected);
  CHECK(c.err().message.rfind("TLS handshake failed: ", 0) == 0);
}

TEST_CASE("async: timeouts of milliseconds::max() mean no deadline, not an overflow", "[pos][async]") {
  fake_server server([](fake_conn& c, std::vector<message>& got) {
    if (!accept_login(c, got)) return;
    auto s = c.expect_type<sale>();
    if (!s) return;
    c.send(approved(*s));
    c.wait_closed();
  });
  client_options o;
  o.inactivity_timeout = std::chrono::milliseconds::max();
  o.reply_timeout = std::chrono::milliseconds::max();
  o.write_timeout = std::chrono::milliseconds::max();
  auto c = logged_in(server, o);
  waiter<eftd::result<result>> done;
  c->start_sale(sale_4711(), {}, done.fn());
  auto r = done.get();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->outcome == "approved");
}
