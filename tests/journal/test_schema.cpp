// Migrations and connection settings of the journal database.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/schema.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"

namespace ej = eftd::journal;
using journal_test::temp_dir;

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

std::unique_ptr<ej::writer> open_writer(const std::filesystem::path& db) {
  auto w = ej::writer::open(db, 64);
  INFO((w ? "" : w.err().code + ": " + w.err().message));
  REQUIRE(w);
  return std::move(*w);
}

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
