// Retention purge (retention.hpp): finished, settled orders of old business dates go whole;
// anything unsettled, queued, open or referred to stays and is counted under its reason.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/journal/retention.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

using namespace journal_test;

namespace {

constexpr const char* old_date = "2024-03-01";
constexpr const char* new_date = "2024-03-10";
constexpr const char* cutoff = "2024-03-05";

// Direct SQL on the journal file, for what the purge must have left behind.
class raw_db {
 public:
  explicit raw_db(const std::filesystem::path& p) {
    REQUIRE(sqlite3_open_v2(p.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  }
  ~raw_db() { sqlite3_close_v2(db_); }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;

  std::int64_t count(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const auto n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
  }
  // Rows PRAGMA foreign_key_check reports: 0 when every reference resolves.
  std::int64_t fk_violations() {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, "PRAGMA foreign_key_check", -1, &s, nullptr) == SQLITE_OK);
    std::int64_t n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) ++n;
    sqlite3_finalize(s);
    return n;
  }
  bool has_table(const std::string& name) {
    return count("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" + name + "'") == 1;
  }

 private:
  sqlite3* db_ = nullptr;
};

struct order_spec {
  std::string id;
  std::string date = old_date;
  std::string order_state = "approved";
  std::string kind = "sale";
  std::string mti = "0200";
  std::string msg_state = "answered";
  std::optional<std::string> rc = "00";
  std::string terminal = "TERM0001";
  std::optional<std::string> parent_op;   // an operation of another order
  std::optional<std::string> parent_msg;  // a message of another order
};

std::uint32_t next_stan = 1;

// One order with one operation, one acquirer message and one event; ids derive from spec.id
// ("<id>-op", "<id>-m").
void write_order(ej::writer& w, const order_spec& s) {
  auto o = order(s.id, "N" + s.id, 1'700'000'000'000 + next_stan, s.date);
  o.kind = s.kind;
  auto op = payment(s.id + "-op", s.id);
  op.parent_op_id = s.parent_op;
  if (s.kind == "completion") op.kind = "completion";
  auto m = auth_message(s.id + "-m", s.id + "-op", next_stan++, "intent");
  m.mti = s.mti;
  m.terminal_id = s.terminal;
  m.original_msg_id = s.parent_msg;
  ej::acquirer_message_updated mu;
  mu.msg_id = m.msg_id;
  mu.state = s.msg_state;
  mu.response_code = s.rc;
  mu.updated_ms = 1'700'000'001'000;
  ej::order_updated ou;
  ou.order_id = s.id;
  ou.state = s.order_state;
  ou.updated_ms = 1'700'000'001'000;
  REQUIRE(code_of(w.submit_sync(batch_of({o, op, m, mu, ou, event(s.id, "done", 1'700'000'001'000)}))) ==
          "ok");
}

// A queued 0400 reversing `of`'s message, in the given state.
void write_reversal(ej::writer& w, const std::string& of, const std::string& state) {
  auto r = auth_message(of + "-r", of + "-op", next_stan++, state);
  r.mti = "0400";
  r.original_msg_id = of + "-m";
  REQUIRE(code_of(w.submit_sync(batch_of({r}))) == "ok");
}

void write_batch(ej::writer& w, const std::string& id, std::int64_t batch_no, const std::string& date,
                 const std::string& state, const std::string& terminal = "TERM0001") {
  ej::settlement_batch_written b;
  b.batch_id = id;
  b.acquirer = "acq1";
  b.terminal_id = terminal;
  b.batch_no = batch_no;
  b.business_date = date;
  b.card_acceptor_id = "CAID";
  b.state = state;
  b.created_ms = 1'700'000'002'000;
  REQUIRE(code_of(w.submit_sync(batch_of({b}))) == "ok");
}

void write_step(ej::writer& w, const std::string& batch_id, std::int64_t seq,
                std::optional<std::string> subject) {
  ej::settlement_step_written s;
  s.step_id = batch_id + "-s" + std::to_string(seq);
  s.batch_id = batch_id;
  s.seq = seq;
  s.kind = subject ? "upload" : "close";
  s.mti = subject ? "0320" : "0500";
  s.processing_code = "920000";
  s.stan = next_stan++;
  s.at_ms = 1'700'000'002'000;
  s.subject_msg_id = std::move(subject);
  s.state = "answered";
  s.created_ms = 1'700'000'002'000;
  REQUIRE(code_of(w.submit_sync(batch_of({s}))) == "ok");
}

ej::purge_report purge(ej::writer& w, const std::string& before, bool dry_run, std::uint32_t chunk = 500) {
  ej::purge_request req;
  req.before = before;
  req.dry_run = dry_run;
  req.chunk_orders = chunk;
  auto r = w.purge_sync(req);
  INFO((r ? "" : r.err().code + ": " + r.err().message));
  REQUIRE(r);
  return *r;
}

std::int64_t rows_of(raw_db& db, const std::string& table) {
  return db.count("SELECT count(*) FROM " + table);
}

}  // namespace

TEST_CASE("settled old orders are purged whole, newer ones stay, and a second purge finds nothing",
          "[journal][retention]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  // Two settled sales of an old day in batch 1 (closed, with a close step and an upload step
  // naming the first), batch 2 closed and empty, and a sale of a new day in the open batch 3.
  write_order(*w, {.id = "A"});
  write_order(*w, {.id = "B"});
  write_batch(*w, "b1", 1, old_date, "closed");
  write_step(*w, "b1", 0, std::nullopt);
  write_step(*w, "b1", 1, std::string("A-m"));
  write_batch(*w, "b2", 2, "2024-03-02", "closed");
  write_order(*w, {.id = "N", .date = new_date});

  // One order per step: the purge is several transactions.
  const auto dry = purge(*w, cutoff, true, 1);
  {
    raw_db db(dir.db());
    CHECK(rows_of(db, "orders") == 3);
    CHECK(rows_of(db, "settlement_batches") == 2);
    CHECK(rows_of(db, "settlement_steps") == 2);
  }
  const auto real = purge(*w, cutoff, false, 1);
  CHECK(real.orders == 2);
  CHECK(real.operations == 2);
  CHECK(real.messages == 2);
  CHECK(real.events == 2);
  CHECK(real.steps == 2);
  CHECK(real.batches == 1);  // b2 is the terminal's highest batch: the open batch counts from it
  CHECK(real.kept_unsettled() == 0);
  CHECK(real.transactions >= 3);
  CHECK(ej::to_string(dry).substr(ej::to_string(dry).find(" orders=")) ==
        ej::to_string(real).substr(ej::to_string(real).find(" orders=")));

  raw_db db(dir.db());
  CHECK(db.count("SELECT count(*) FROM orders WHERE order_id IN ('A', 'B')") == 0);
  CHECK(db.count("SELECT count(*) FROM operations WHERE order_id IN ('A', 'B')") == 0);
  CHECK(db.count("SELECT count(*) FROM acquirer_messages WHERE msg_id IN ('A-m', 'B-m')") == 0);
  CHECK(db.count("SELECT count(*) FROM events WHERE order_id IN ('A', 'B')") == 0);
  CHECK(db.count("SELECT count(*) FROM orders WHERE order_id = 'N'") == 1);
  CHECK(db.count("SELECT count(*) FROM settlement_batches WHERE batch_id = 'b2'") == 1);
  CHECK(rows_of(db, "settlement_steps") == 0);
  CHECK(db.fk_violations() == 0);

  // New sales still join the open batch 3: the highest batch was kept.
  auto rd = open_reader(dir.db());
  auto open_no = rd.open_batch_no("acq1", "TERM0001");
  REQUIRE(open_no);
  CHECK(*open_no == 3);

  // The purge turns foreign keys off for its own steps only: the sales' batches keep them.
  auto fk = w->pragma("foreign_keys");
  REQUIRE(fk);
  CHECK(*fk == "1");

  const auto again = purge(*w, cutoff, false);
  CHECK(again.orders + again.operations + again.messages + again.events + again.batches + again.steps == 0);
  CHECK(again.kept_unsettled() == 0);
}

TEST_CASE("unsettled, queued, open and referred-to old orders are kept and counted by reason",
          "[journal][retention]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write_order(*w, {.id = "K1", .order_state = "in_progress", .msg_state = "sent", .rc = std::nullopt});
  write_order(*w, {.id = "K2"});
  write_reversal(*w, "K2", "pending");  // still in the store-and-forward queue
  write_order(*w, {.id = "K3", .order_state = "declined", .rc = "05"});
  write_reversal(*w, "K3", "parked");  // a case for people
  write_order(*w, {.id = "K4"});       // approved, batch 1 of TERM0001 still open
  write_order(*w, {.id = "D1", .order_state = "declined", .rc = "05"});  // settles nothing: goes
  // TERM0002's batch 1 is closing: its sale stays until the close ends.
  write_order(*w, {.id = "K5", .terminal = "TERM0002"});
  write_batch(*w, "t2b1", 1, old_date, "closing", "TERM0002");
  // A preauth whose completion is not final yet: the completion refers to it.
  write_order(*w, {.id = "P", .kind = "preauth", .mti = "0100"});
  write_order(*w, {.id = "C",
                   .order_state = "in_progress",
                   .kind = "completion",
                   .mti = "0220",
                   .msg_state = "sent",
                   .rc = std::nullopt,
                   .parent_op = std::string("P-op"),
                   .parent_msg = std::string("P-m")});
  write_order(*w, {.id = "N", .date = new_date, .order_state = "in_progress"});  // newer: not counted
  // A declined sale (settles nothing) that an event of the unfinished K1 names.
  write_order(*w, {.id = "E", .order_state = "declined", .rc = "05"});
  auto named = event("K1", "see_also", 1'700'000'003'000);
  named.op_id = "E-op";
  REQUIRE(code_of(w->submit_sync(batch_of({named}))) == "ok");

  const auto dry = purge(*w, cutoff, true, 2);
  const auto real = purge(*w, cutoff, false, 2);
  for (const auto* r : {&dry, &real}) {
    CHECK(r->orders == 1);
    CHECK(r->messages == 1);
    CHECK(r->kept_not_final == 2);   // K1, C
    CHECK(r->kept_in_queue == 1);    // K2
    CHECK(r->kept_open_case == 1);   // K3
    CHECK(r->kept_open_batch == 2);  // K4, K5
    CHECK(r->kept_linked == 2);      // P, E
    CHECK(r->batches == 0);
  }
  raw_db db(dir.db());
  CHECK(rows_of(db, "orders") == 9);
  CHECK(db.count("SELECT count(*) FROM orders WHERE order_id = 'D1'") == 0);
  CHECK(db.fk_violations() == 0);
}

TEST_CASE("a settled preauth and its settled completion go together, the completion first",
          "[journal][retention]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write_order(*w, {.id = "P", .kind = "preauth", .mti = "0100"});
  write_order(*w, {.id = "C",
                   .kind = "completion",
                   .mti = "0220",
                   .parent_op = std::string("P-op"),
                   .parent_msg = std::string("P-m")});
  write_batch(*w, "b1", 1, old_date, "closed");
  write_batch(*w, "b2", 2, old_date, "closed");
  // One order per step: C (newer) goes in an earlier step than P, and the dry run, which
  // rolls each step back, still reports P as going.
  const auto dry = purge(*w, cutoff, true, 1);
  const auto real = purge(*w, cutoff, false, 1);
  for (const auto* r : {&dry, &real}) {
    CHECK(r->orders == 2);
    CHECK(r->kept_linked == 0);
    CHECK(r->batches == 1);
  }
  raw_db db(dir.db());
  CHECK(rows_of(db, "orders") == 0);
  CHECK(db.fk_violations() == 0);
}

TEST_CASE("a batch goes only when final, due and empty, a resolved case no longer keeps its order",
          "[journal][retention]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  write_order(*w, {.id = "A"});
  write_order(*w, {.id = "K", .order_state = "in_progress", .msg_state = "sent", .rc = std::nullopt});
  write_batch(*w, "b1", 1, old_date, "closed");  // holds A (goes) and K (stays): b1 stays
  write_order(*w, {.id = "B", .date = "2024-03-02"});
  write_batch(*w, "b2", 2, new_date, "refused");  // final but not due: stays, and so does B
  write_step(*w, "b2", 0, std::string("B-m"));
  write_batch(*w, "b3", 3, new_date, "closed");
  write_order(*w, {.id = "Q", .order_state = "declined", .rc = "05"});
  write_reversal(*w, "Q", "expired");

  auto r = purge(*w, cutoff, false);
  CHECK(r.orders == 1);           // A
  CHECK(r.kept_open_batch == 1);  // B: its upload step is in a batch not due yet
  CHECK(r.kept_open_case == 1);   // Q
  CHECK(r.batches == 0);
  {
    raw_db db(dir.db());
    CHECK(rows_of(db, "settlement_batches") == 3);
    CHECK(db.fk_violations() == 0);
    if (!db.has_table("case_resolutions")) return;  // schema without case resolutions
  }
  // Staff resolved Q's expired reversal: Q may go now.
  {
    w->close();
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw,
                         "INSERT INTO case_resolutions(case_kind, subject_id, resolved_ms, actor, note)"
                         " VALUES ('reversal_expired', 'Q-r', 1, 'ops', 'refunded by hand')",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  auto w2 = open_writer(dir.db());
  r = purge(*w2, cutoff, false);
  CHECK(r.orders == 1);
  CHECK(r.kept_open_case == 0);
}

TEST_CASE("a purge refuses a malformed date", "[journal][retention]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  ej::purge_request req;
  req.before = "2024-3-05";
  auto r = w->purge_sync(req);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "journal.invalid_argument");
}
