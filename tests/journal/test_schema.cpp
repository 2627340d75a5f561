// Migrations and connection settings of the journal database.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/schema.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace ej = eftd::journal;
using journal_test::temp_dir;

using journal_test::open_writer;
namespace {

// Direct SQLite access, to build old or foreign databases by hand and to look under the hood.
class raw_db {
 public:
  explicit raw_db(const std::filesystem::path& p) {
    REQUIRE(sqlite3_open(p.string().c_str(), &db_) == SQLITE_OK);
  }
  ~raw_db() { sqlite3_close(db_); }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    INFO(msg);
    REQUIRE(rc == SQLITE_OK);
  }
  std::int64_t scalar(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    auto v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Builds a database exactly as a version-1 program left it.
void make_version_1(const std::filesystem::path& db) {
  raw_db raw(db);
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("BEGIN");
  raw.exec(std::string(ej::migrations()[0].sql));
  raw.exec("INSERT INTO schema_migrations VALUES(1, 'v1 by hand', 1600000000000)");
  raw.exec(
      "INSERT INTO orders(order_id, merchant_id, store_id, till_id, order_no, business_date,"
      " kind, amount_minor, currency, state, created_ms, updated_ms) VALUES('OLD1', 'M001',"
      " 'S01', 'T01', '4711', '2024-01-02', 'sale', 100, 'PLN', 'approved', 1, 1)");
  raw.exec("PRAGMA user_version = 1");
  raw.exec("COMMIT");
}

}  // namespace

TEST_CASE("migrations are numbered 1..N without gaps", "[journal][schema]") {
  auto ms = ej::migrations();
  REQUIRE(ms.size() >= 2);
  for (std::size_t i = 0; i < ms.size(); ++i) {
    CHECK(ms[i].version == static_cast<int>(i) + 1);
    CHECK_FALSE(ms[i].sql.empty());
    CHECK_FALSE(ms[i].description.empty());
  }
  CHECK(ej::latest_schema_version() == ms.back().version);
}

TEST_CASE("a fresh database gets the latest schema version", "[journal][schema]") {
  temp_dir dir;
  open_writer(dir.db())->close();

  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  CHECK(r->schema_version() == ej::latest_schema_version());
  raw_db raw(dir.db());
  CHECK(raw.scalar("PRAGMA user_version") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT count(*) FROM schema_migrations") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT max(version) FROM schema_migrations") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT min(applied_ms) FROM schema_migrations") > 1'600'000'000'000);
}

TEST_CASE("reopening a current database applies nothing", "[journal][schema]") {
  temp_dir dir;
  open_writer(dir.db())->close();
  std::int64_t applied_before = 0;
  {
    raw_db raw(dir.db());
    applied_before = raw.scalar("SELECT sum(applied_ms) FROM schema_migrations");
  }
  open_writer(dir.db())->close();
  open_writer(dir.db())->close();
  raw_db raw(dir.db());
  CHECK(raw.scalar("SELECT count(*) FROM schema_migrations") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT sum(applied_ms) FROM schema_migrations") == applied_before);
}

TEST_CASE("a database newer than the code is refused", "[journal][schema]") {
  temp_dir dir;
  open_writer(dir.db())->close();
  {
    raw_db raw(dir.db());
    raw.exec("PRAGMA user_version = " + std::to_string(ej::latest_schema_version() + 1));
  }
  auto w = ej::writer::open(dir.db(), 64);
  REQUIRE_FALSE(w);
  CHECK(w.err().code == "journal.schema_too_new");
  auto r = ej::reader::open(dir.db());
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "journal.schema_too_new");
}

TEST_CASE("a version 1 database is migrated and keeps its data", "[journal][schema]") {
  temp_dir dir;
  make_version_1(dir.db());

  auto early = ej::reader::open(dir.db());
  REQUIRE_FALSE(early);
  CHECK(early.err().code == "journal.schema_outdated");

  open_writer(dir.db())->close();
  raw_db raw(dir.db());
  CHECK(raw.scalar("PRAGMA user_version") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT count(*) FROM schema_migrations") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT applied_ms FROM schema_migrations WHERE version = 1") == 1600000000000);
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name ="
                   " 'operations_by_pan_hash'") == 1);

  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  auto o = r->find_order("T01", "4711", "2024-01-02");
  REQUIRE(o);
  REQUIRE(o->has_value());
  CHECK((*o)->order_id == "OLD1");
}

TEST_CASE("opening something that is not a journal fails clearly", "[journal][schema]") {
  temp_dir dir;
  SECTION("garbage file") {
    std::ofstream(dir.db()) << std::string(4096, 'x');
    auto w = ej::writer::open(dir.db(), 64);
    REQUIRE_FALSE(w);
    CHECK(w.err().code == "journal.open_failed");
    auto r = ej::reader::open(dir.db());
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "journal.open_failed");
  }
  SECTION("missing file for a reader") {
    auto r = ej::reader::open(dir.path() / "nope.db");
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "journal.open_failed");
    CHECK_FALSE(std::filesystem::exists(dir.path() / "nope.db"));
  }
  SECTION("directory that does not exist for a writer") {
    auto w = ej::writer::open(dir.path() / "no" / "such" / "journal.db", 64);
    REQUIRE_FALSE(w);
    CHECK(w.err().code == "journal.open_failed");
  }
  SECTION("max_batch of zero") {
    auto w = ej::writer::open(dir.db(), 0);
    REQUIRE_FALSE(w);
    CHECK(w.err().code == "journal.invalid_argument");
  }
}

TEST_CASE("WAL mode, synchronous=FULL and foreign keys are set", "[journal][schema]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto sync = w->pragma("synchronous");
  REQUIRE(sync);
  CHECK(*sync == "2");  // 2 = FULL: the WAL is fsynced at every commit
  auto fk = w->pragma("foreign_keys");
  REQUIRE(fk);
  CHECK(*fk == "1");
  auto wmode = w->pragma("journal_mode");
  REQUIRE(wmode);
  CHECK(*wmode == "wal");
  auto bad = w->pragma("user_version; DROP TABLE orders");
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == "journal.invalid_argument");

  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  auto mode = r->pragma("journal_mode");
  REQUIRE(mode);
  CHECK(*mode == "wal");  // WAL is a property of the file: every connection sees it
}

TEST_CASE("the schema has no column for track data, CVV or PIN blocks", "[journal][schema][security]") {
  temp_dir dir;
  open_writer(dir.db())->close();
  raw_db raw(dir.db());
  for (const char* needle : {"%track%", "%cvv%", "%cvc%", "%pin%", "%pvv%", "%discretionary%"}) {
    INFO(needle);
    CHECK(raw.scalar(std::string("SELECT count(*) FROM sqlite_schema s, pragma_table_info(s.name) c"
                                 " WHERE s.type = 'table' AND lower(c.name) LIKE '") +
                     needle + "'") == 0);
  }
  // The only PAN columns are the ciphertext, the masked form and the keyed hash.
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema s, pragma_table_info(s.name) c"
                   " WHERE s.type = 'table' AND lower(c.name) LIKE '%pan%'") == 3);
}

TEST_CASE("migration 6 numbers the batches of a version-5 journal and stamps its messages",
          "[journal][schema][settlement]") {
  temp_dir dir;
  {
    raw_db raw(dir.db());
    raw.exec("PRAGMA journal_mode = WAL");
    raw.exec("BEGIN");
    for (int v = 1; v <= 5; ++v) raw.exec(std::string(ej::migrations()[v - 1].sql));
    raw.exec(
        "INSERT INTO orders(order_id, merchant_id, store_id, till_id, order_no, business_date, kind,"
        " amount_minor, currency, state, created_ms, updated_ms) VALUES"
        " ('O1', 'M001', 'S01', 'T01', '1', '2024-01-02', 'sale', 100, 'PLN', 'approved', 1, 1),"
        " ('O2', 'M001', 'S01', 'T01', '2', '2024-01-03', 'sale', 200, 'PLN', 'approved', 2, 2),"
        " ('O3', 'M001', 'S01', 'T01', '3', '2024-01-04', 'sale', 300, 'PLN', 'approved', 3, 3)");
    raw.exec(
        "INSERT INTO operations(op_id, order_id, kind, state, amount_minor, currency, created_ms, updated_ms)"
        " VALUES ('P1', 'O1', 'payment', 'approved', 100, 'PLN', 1, 1),"
        " ('P2', 'O2', 'payment', 'approved', 200, 'PLN', 2, 2),"
        " ('P3', 'O3', 'payment', 'approved', 300, 'PLN', 3, 3)");
    raw.exec(
        "INSERT INTO acquirer_messages(msg_id, op_id, acquirer, terminal_id, mti, stan, local_datetime,"
        " amount_minor, currency, state, created_ms, updated_ms) VALUES"
        " ('M1', 'P1', 'acq1', 'TERM0001', '0200', 1, '0102120000', 100, 'PLN', 'answered', 1, 1),"
        " ('M2', 'P2', 'acq1', 'TERM0001', '0200', 2, '0103120000', 200, 'PLN', 'answered', 2, 2),"
        " ('M3', 'P3', 'acq1', 'TERM0001', '0200', 3, '0104120000', 300, 'PLN', 'answered', 3, 3)");
    // Two closed days; the third has no batch yet.
    raw.exec(
        "INSERT INTO settlement_batches(batch_id, acquirer, terminal_id, business_date, card_acceptor_id,"
        " state, credits, credit_reversals, debits, debit_reversals, credit_amount, credit_reversal_amount,"
        " debit_amount, debit_reversal_amount, created_ms, updated_ms) VALUES"
        " ('B2', 'acq1', 'TERM0001', '2024-01-03', 'X', 'closed', 0, 0, 1, 0, 0, 0, 200, 0, 5, 5),"
        " ('B1', 'acq1', 'TERM0001', '2024-01-02', 'X', 'closed', 0, 0, 1, 0, 0, 0, 100, 0, 4, 4)");
    raw.exec(
        "INSERT INTO settlement_steps(step_id, batch_id, seq, kind, mti, processing_code, stan, at_ms, state,"
        " created_ms, updated_ms) VALUES ('S1', 'B1', 0, 'close', '0500', '920000', 9, 4, 'answered', 4, 4)");
    for (int v = 1; v <= 5; ++v)
      raw.exec("INSERT INTO schema_migrations VALUES(" + std::to_string(v) + ", 'by hand', 1600000000000)");
    raw.exec("PRAGMA user_version = 5");
    raw.exec("COMMIT");
  }
  open_writer(dir.db())->close();
  raw_db raw(dir.db());
  CHECK(raw.scalar("PRAGMA user_version") == ej::latest_schema_version());
  CHECK(raw.scalar("SELECT batch_no FROM settlement_batches WHERE batch_id = 'B1'") == 1);
  CHECK(raw.scalar("SELECT batch_no FROM settlement_batches WHERE batch_id = 'B2'") == 2);
  CHECK(raw.scalar("SELECT batch_no FROM acquirer_messages WHERE msg_id = 'M1'") == 1);
  CHECK(raw.scalar("SELECT batch_no FROM acquirer_messages WHERE msg_id = 'M2'") == 2);
  CHECK(raw.scalar("SELECT batch_no FROM acquirer_messages WHERE msg_id = 'M3'") == 3);
  // The steps still name their batch, and the foreign keys hold.
  CHECK(raw.scalar("SELECT count(*) FROM settlement_steps s JOIN settlement_batches b USING(batch_id)") == 1);
  CHECK(raw.scalar("SELECT count(*) FROM pragma_foreign_key_check") == 0);
  auto rd = ej::reader::open(dir.db());
  REQUIRE(rd);
  CHECK(rd->open_batch_no("acq1", "TERM0001").value() == 3);
}
