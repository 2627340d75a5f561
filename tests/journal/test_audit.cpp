// The audit log of operator actions: appended through the writer (durable before the
// acknowledgement), read back with filters, guarded by the schema.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <future>
#include <string>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace ej = eftd::journal;
using journal_test::temp_dir;

using journal_test::code_of;
using journal_test::open_reader;
using journal_test::open_writer;
namespace {

ej::audit_appended audit(std::int64_t at, std::string actor, std::string action, std::string outcome = "ok") {
  ej::audit_appended a;
  a.at_ms = at;
  a.actor = std::move(actor);
  a.source = std::string(ej::audit_sources::admin_socket);
  a.action = std::move(action);
  a.subject = "acq1";
  a.detail = R"({"business_date":"2024-03-01"})";
  a.outcome = std::move(outcome);
  return a;
}

eftd::status append(ej::writer& w, ej::audit_appended a) {
  std::promise<eftd::status> p;
  auto f = p.get_future();
  w.append_audit(std::move(a), [&p](eftd::status st) { p.set_value(std::move(st)); });
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("audit records are durable when acknowledged and read back in order", "[journal][audit]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  REQUIRE(append(*w, audit(1000, "alice", "settle")));
  REQUIRE(append(*w, audit(2000, "bob", "trace", "admin.bad_request")));
  REQUIRE(append(*w, audit(3000, "alice", "backup")));
  w->close();  // nothing left in memory: what the reader sees is on disk

  auto r = open_reader(dir.db());
  auto all = r.audit_log({});
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].actor == "alice");
  CHECK((*all)[0].action == "settle");
  CHECK((*all)[0].source == "admin-socket");
  CHECK((*all)[0].subject == "acq1");
  CHECK((*all)[0].detail == R"({"business_date":"2024-03-01"})");
  CHECK((*all)[1].outcome == "admin.bad_request");
  CHECK((*all)[0].audit_id < (*all)[1].audit_id);

  ej::audit_filter f;
  f.since_ms = 2000;
  auto since = r.audit_log(f);
  REQUIRE(since);
  REQUIRE(since->size() == 2);
  CHECK((*since)[0].at_ms == 2000);

  f = {};
  f.actor = "alice";
  f.newest_first = true;
  auto mine = r.audit_log(f);
  REQUIRE(mine);
  REQUIRE(mine->size() == 2);
  CHECK((*mine)[0].action == "backup");

  f = {};
  f.until_ms = 1000;
  f.action = "settle";
  auto one = r.audit_log(f);
  REQUIRE(one);
  CHECK(one->size() == 1);

  f = {};
  f.limit = 0;
  auto bad = r.audit_log(f);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == "journal.invalid_argument");
}

TEST_CASE("the schema refuses audit records without who, what or how it ended", "[journal][audit]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto no_actor = audit(1, "", "settle");
  CHECK(code_of(append(*w, no_actor)) == "journal.invalid_record");
  auto no_action = audit(1, "alice", "");
  CHECK(code_of(append(*w, no_action)) == "journal.invalid_record");
  auto no_outcome = audit(1, "alice", "settle", "");
  CHECK(code_of(append(*w, no_outcome)) == "journal.invalid_record");
  auto bad_source = audit(1, "alice", "settle");
  bad_source.source = "telnet";
  CHECK(code_of(append(*w, bad_source)) == "journal.invalid_record");
  auto huge = audit(1, "alice", "settle");
  huge.detail = std::string(5000, 'x');
  CHECK(code_of(append(*w, huge)) == "journal.invalid_record");
  for (auto src : {ej::audit_sources::web, ej::audit_sources::eftctl, ej::audit_sources::config}) {
    auto a = audit(2, "alice", "login");
    a.source = std::string(src);
    CHECK(code_of(append(*w, a)) == "ok");
  }
  w->close();
  auto r = open_reader(dir.db());
  auto all = r.audit_log({});
  REQUIRE(all);
  CHECK(all->size() == 3);
}

TEST_CASE("a card number typed into an audit detail is stored masked", "[journal][audit][security]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto a = audit(1, "alice", "search");
  // A public test PAN (Luhn-valid), as an operator might paste it into a search.
  a.detail = "looked for 4111111111111111";
  REQUIRE(append(*w, a));
  w->close();
  auto r = open_reader(dir.db());
  auto all = r.audit_log({});
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  // Compared as a bool so that a failure never prints the stored text.
  const bool masked = (*all)[0].detail == "looked for 411111******1111";
  CHECK(masked);
}

TEST_CASE("the audit_log table has no column named like card data", "[journal][audit][security]") {
  temp_dir dir;
  open_writer(dir.db())->close();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(dir.db().string().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT count(*), sum(lower(name) LIKE '%pin%' OR lower(name) LIKE '%pan%'"
                             " OR lower(name) LIKE '%track%') FROM pragma_table_info('audit_log')",
                             -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  CHECK(sqlite3_column_int(s, 0) == 8);
  CHECK(sqlite3_column_int(s, 1) == 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
}
