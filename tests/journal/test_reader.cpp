// Read-only queries: idempotency look-ups, back-office filters, one transaction's story,
// start-up recovery.
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace ej = eftd::journal;
using namespace journal_test;

using journal_test::open_reader;
using journal_test::open_writer;
namespace {

constexpr std::int64_t hour_ms = 3'600'000;
constexpr std::int64_t t0 = 1'700'000'000'000;

void write(ej::writer& w, std::vector<ej::record> records) {
  auto st = w.submit_sync(batch_of(std::move(records)));
  INFO((st ? "" : st.err().code + ": " + st.err().message));
  REQUIRE(st);
}

std::vector<std::string> ids(const std::vector<ej::order_row>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.order_id);
  return out;
}

// A small back-office data set: 6 orders over 3 days, 2 merchants, 3 tills, 2 schemes.
void seed_orders(ej::writer& w) {
  struct spec {
    const char* id;
    const char* merchant;
    const char* store;
    const char* till;
    const char* no;
    const char* date;
    std::int64_t amount;
    const char* state;
    const char* scheme;
    const char* hash;
  };
  const std::string hash_a(64, 'a');
  const std::string hash_b(64, 'b');
  const spec specs[] = {
      {"A", "M001", "S01", "T01", "1", "2024-03-01", 1000, "approved", "visa", "a"},
      {"B", "M001", "S01", "T02", "2", "2024-03-01", 2500, "declined", "mastercard", "b"},
      {"C", "M001", "S02", "T03", "3", "2024-03-02", 5000, "approved", "visa", "b"},
      {"D", "M002", "S09", "T01", "4", "2024-03-02", 750, "approved", "mastercard", "a"},
      {"E", "M002", "S09", "T01", "5", "2024-03-03", 99999, "failed", nullptr, nullptr},
      {"F", "M001", "S01", "T01", "6", "2024-03-03", 1000, "approved", "visa", "a"},
  };
  std::int64_t at = t0;
  for (const auto& s : specs) {
    auto o = order(s.id, s.no, at, s.date, s.till);
    o.merchant_id = s.merchant;
    o.store_id = s.store;
    o.amount_minor = s.amount;
    o.state = s.state;
    auto p = payment(std::string("P") + s.id, s.id, at + 1);
    p.amount_minor = s.amount;
    if (s.scheme != nullptr) p.scheme = s.scheme;
    if (s.hash != nullptr) {
      p.pan = ej::stored_pan{eftd::bytes(40, 0x5a), "400000******0002",
                             std::string(s.hash) == "a" ? hash_a : hash_b};
    }
    write(w, {o, p});
    at += hour_ms;
  }
}

}  // namespace

TEST_CASE("find_order by till, order number and business date", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write(*w, {order("O1", "4711", t0, "2024-03-01"), order("O2", "4711", t0, "2024-03-02"),
             order("O3", "4711", t0, "2024-03-01", "T02")});
  auto r = open_reader(dir.db());

  struct row {
    const char* till;
    const char* no;
    const char* date;
    const char* expect;  // nullptr: not found
  };
  const row table[] = {
      {"T01", "4711", "2024-03-01", "O1"},    {"T01", "4711", "2024-03-02", "O2"},
      {"T02", "4711", "2024-03-01", "O3"},    {"T01", "4712", "2024-03-01", nullptr},
      {"T09", "4711", "2024-03-01", nullptr}, {"T01", "4711", "2024-03-03", nullptr},
  };
  for (const auto& t : table) {
    INFO(t.till << " " << t.no << " " << t.date);
    auto o = r.find_order(t.till, t.no, t.date);
    REQUIRE(o);
    if (t.expect == nullptr) {
      CHECK_FALSE(o->has_value());
    } else {
      REQUIRE(o->has_value());
      CHECK((*o)->order_id == t.expect);
    }
  }
}

TEST_CASE("find_orders_recent: the 48-hour idempotency window, newest first", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  // The same POS order number on one till across four business days.
  write(*w, {order("D1", "77", t0, "2024-03-01"), order("D2", "77", t0 + 24 * hour_ms, "2024-03-02"),
             order("D3", "77", t0 + 48 * hour_ms, "2024-03-03"),
             order("D4", "77", t0 + 72 * hour_ms, "2024-03-04"),
             order("X1", "78", t0 + 72 * hour_ms, "2024-03-04"),
             order("Y1", "77", t0 + 72 * hour_ms, "2024-03-04", "T02")});
  auto r = open_reader(dir.db());
  const std::int64_t now = t0 + 72 * hour_ms + 1000;

  auto recent = r.find_orders_recent("T01", "77", now - 48 * hour_ms);
  REQUIRE(recent);
  CHECK(ids(*recent) == std::vector<std::string>{"D4", "D3"});

  auto boundary = r.find_orders_recent("T01", "77", t0 + 24 * hour_ms);  // inclusive
  REQUIRE(boundary);
  CHECK(ids(*boundary) == std::vector<std::string>{"D4", "D3", "D2"});

  auto none = r.find_orders_recent("T01", "79", t0);
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("list_orders filters by any key", "[journal][reader][reports]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  seed_orders(*w);
  auto r = open_reader(dir.db());

  auto f = [] { return ej::order_filter{}; };
  struct row {
    const char* name;
    ej::order_filter filter;
    std::vector<std::string> expect;
  };
  std::vector<row> table;
  table.push_back({"no filter", f(), {"A", "B", "C", "D", "E", "F"}});
  {
    auto x = f();
    x.business_date_from = "2024-03-02";
    table.push_back({"date from", x, {"C", "D", "E", "F"}});
  }
  {
    auto x = f();
    x.business_date_to = "2024-03-01";
    table.push_back({"date to", x, {"A", "B"}});
  }
  {
    auto x = f();
    x.business_date_from = x.business_date_to = "2024-03-02";
    table.push_back({"one day", x, {"C", "D"}});
  }
  {
    auto x = f();
    x.merchant_id = "M002";
    table.push_back({"merchant", x, {"D", "E"}});
  }
  {
    auto x = f();
    x.store_id = "S01";
    table.push_back({"store", x, {"A", "B", "F"}});
  }
  {
    auto x = f();
    x.till_id = "T01";
    table.push_back({"till", x, {"A", "D", "E", "F"}});
  }
  {
    auto x = f();
    x.order_no = "3";
    table.push_back({"order number", x, {"C"}});
  }
  {
    auto x = f();
    x.state = "approved";
    table.push_back({"state", x, {"A", "C", "D", "F"}});
  }
  {
    auto x = f();
    x.scheme = "mastercard";
    table.push_back({"scheme", x, {"B", "D"}});
  }
  {
    auto x = f();
    x.pan_hash = std::string(64, 'a');
    table.push_back({"card (pan hash)", x, {"A", "D", "F"}});
  }
  {
    auto x = f();
    x.amount_min = 1000;
    x.amount_max = 5000;
    table.push_back({"amount range", x, {"A", "B", "C", "F"}});
  }
  {
    auto x = f();
    x.created_from_ms = t0 + 2 * hour_ms;
    x.created_to_ms = t0 + 3 * hour_ms;
    table.push_back({"created range", x, {"C", "D"}});
  }
  {
    auto x = f();
    x.merchant_id = "M001";
    x.scheme = "visa";
    x.business_date_from = "2024-03-02";
    table.push_back({"combined", x, {"C", "F"}});
  }
  {
    auto x = f();
    x.merchant_id = "M001'; DROP TABLE orders; --";
    table.push_back({"hostile value", x, {}});
  }
  {
    auto x = f();
    x.limit = 2;
    x.offset = 1;
    table.push_back({"limit and offset", x, {"B", "C"}});
  }
  {
    auto x = f();
    x.newest_first = true;
    x.limit = 3;
    table.push_back({"newest first", x, {"F", "E", "D"}});
  }
  {
    auto x = f();
    x.kind = "refund";
    table.push_back({"kind", x, {}});
  }

  for (const auto& t : table) {
    INFO(t.name);
    auto rows = r.list_orders(t.filter);
    REQUIRE(rows);
    CHECK(ids(*rows) == t.expect);
  }

  ej::order_filter too_many;
  too_many.limit = 0;
  auto bad = r.list_orders(too_many);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == "journal.invalid_argument");
}

TEST_CASE("order_detail tells the story of one transaction in order", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write(*w, {order("O1", "4711", t0), event("O1", "order_created", t0, ej::actor::pos)});
  auto p = payment("P1", "O1", t0 + 10);
  auto e2 = event("O1", "card_read", t0 + 20, ej::actor::pad);
  e2.op_id = "P1";
  write(*w, {p, e2});
  auto e3 = event("O1", "authorizing", t0 + 30, ej::actor::server);
  e3.op_id = "P1";
  write(*w, {auth_message("M1", "P1", 1, "intent", t0 + 30), e3});
  auto rev = auth_message("M2", "P1", 2, "intent", t0 + 40);
  rev.mti = "0400";
  rev.original_msg_id = "M1";
  // Events appended with an earlier clock still come out in journal order.
  auto e4 = event("O1", "timeout", t0 + 5, ej::actor::acquirer);
  e4.reason = "no answer within 30 s";
  write(*w, {rev, e4});
  // Another order's rows must not leak into this one's story.
  write(*w, {order("O2", "4712", t0), payment("P2", "O2"), auth_message("M3", "P2", 3),
             event("O2", "order_created", t0)});

  auto r = open_reader(dir.db());
  auto v = r.order_detail("O1");
  REQUIRE(v);
  REQUIRE(v->has_value());
  const auto& d = **v;
  std::vector<std::string> kinds;
  std::vector<ej::actor> actors;
  for (const auto& e : d.events) {
    kinds.push_back(e.kind);
    actors.push_back(e.actor);
  }
  CHECK(kinds == std::vector<std::string>{"order_created", "card_read", "authorizing", "timeout"});
  CHECK(actors ==
        std::vector<ej::actor>{ej::actor::pos, ej::actor::pad, ej::actor::server, ej::actor::acquirer});
  CHECK(d.events[0].event_id < d.events[3].event_id);
  CHECK(d.events[3].reason == "no answer within 30 s");
  CHECK(d.events[1].op_id == std::optional<std::string>("P1"));
  CHECK_FALSE(d.events[0].op_id.has_value());
  REQUIRE(d.operations.size() == 1);
  REQUIRE(d.messages.size() == 2);
  CHECK(d.messages[0].msg_id == "M1");
  CHECK(d.messages[1].mti == "0400");
  CHECK(d.messages[1].original_msg_id == std::optional<std::string>("M1"));

  auto missing = r.order_detail("NOPE");
  REQUIRE(missing);
  CHECK_FALSE(missing->has_value());
}

TEST_CASE("in_doubt_messages lists unresolved acquirer messages oldest first", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write(*w, {order("O1", "1"), payment("P1", "O1")});
  const char* states[] = {"answered", "sent", "intent", "reversed", "timeout", "reversal_pending", "failed"};
  std::vector<ej::record> recs;
  std::uint32_t stan = 1;
  for (const char* s : states) {
    recs.push_back(auth_message(std::string("M-") + s, "P1", stan, s, t0 + 100 - stan));
    ++stan;
  }
  write(*w, recs);

  auto r = open_reader(dir.db());
  auto doubt = r.in_doubt_messages();
  REQUIRE(doubt);
  std::vector<std::string> got;
  for (const auto& m : *doubt) got.push_back(m.msg_id);
  // created_ms decreases with the STAN above, so oldest first is the reverse order.
  CHECK(got == std::vector<std::string>{"M-reversal_pending", "M-timeout", "M-intent", "M-sent"});

  // Recording the answer takes a message out of the list.
  ej::acquirer_message_updated answered;
  answered.msg_id = "M-sent";
  answered.state = "answered";
  answered.response_code = "00";
  write(*w, {answered});
  auto after = r.in_doubt_messages();
  REQUIRE(after);
  CHECK(after->size() == 3);
}

TEST_CASE("counters: absent reads as 0, set overwrites", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto r = open_reader(dir.db());
  auto absent = r.counter("stan/acq1/T1");
  REQUIRE(absent);
  CHECK(*absent == 0);
  write(*w, {ej::counter_set{"stan/acq1/T1", 41}, ej::counter_set{"batch/acq1/T1", 7}});
  write(*w, {ej::counter_set{"stan/acq1/T1", 42}});
  auto stan = r.counter("stan/acq1/T1");
  REQUIRE(stan);
  CHECK(*stan == 42);
  auto batch_no = r.counter("batch/acq1/T1");
  REQUIRE(batch_no);
  CHECK(*batch_no == 7);
}

TEST_CASE("a reader sees new commits while the writer keeps writing", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write(*w, {order("O1", "1")});
  auto r = open_reader(dir.db());
  ej::order_filter all;
  all.limit = 1000;
  for (int i = 2; i <= 20; ++i) {
    write(*w, {order("O" + std::to_string(i), std::to_string(i))});
    auto rows = r.list_orders(all);
    REQUIRE(rows);
    CHECK(rows->size() == static_cast<std::size_t>(i));
  }
}

TEST_CASE("new_id gives distinct 128-bit hex ids", "[journal][reader]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = ej::new_id();
    REQUIRE(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789ABCDEF") == std::string::npos);
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("new_id starts with the time: a later id sorts after an earlier one", "[journal][reader]") {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto id = ej::new_id();
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const auto stamped = static_cast<std::int64_t>(std::stoull(id.substr(0, 12), nullptr, 16));
  CHECK(stamped >= before);
  CHECK(stamped <= after);
  // Two ids a millisecond apart or more are in time order; within one millisecond the random
  // part decides.
  std::string prev = id;
  for (int i = 0; i < 200; ++i) {
    const auto next = ej::new_id();
    CHECK(next.substr(0, 12) >= prev.substr(0, 12));
    if (next.substr(0, 12) > prev.substr(0, 12)) CHECK(next > prev);
    prev = next;
  }
}

TEST_CASE("actor names round-trip", "[journal][reader]") {
  for (auto a :
       {ej::actor::pos, ej::actor::pad, ej::actor::acquirer, ej::actor::operator_, ej::actor::server}) {
    CHECK(ej::parse_actor(ej::to_string(a)) == a);
  }
  CHECK(ej::to_string(ej::actor::operator_) == "operator");
  CHECK_FALSE(ej::parse_actor("cashier").has_value());
}

TEST_CASE("operation() finds one operation by id, and says so when there is none", "[journal][reader]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write(*w, {order("O-1", "4711", t0), payment("P-1", "O-1", t0)});
  w->close();
  auto r = open_reader(dir.db());
  auto op = r.operation("P-1");
  REQUIRE(op);
  REQUIRE(op->has_value());
  CHECK((*op)->order_id == "O-1");
  CHECK((*op)->kind == "payment");
  auto none = r.operation("P-404");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}
