#include "sqlite_db.hpp"

#include <cctype>

#include "eftd/journal/schema.hpp"

namespace eftd::journal::detail {

sqlite3_stmt* connection::prepare(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                         nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return nullptr;
  }
  auto* raw = s;
  cache_.emplace(std::string(sql), stmt_ptr(s));
  return raw;
}

int connection::exec(const char* sql) {
  return sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
}

result<connection> open_connection(const std::filesystem::path& path, open_mode mode,
                                   std::uint32_t busy_timeout_ms, const std::string& vfs) {
  int flags = SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  flags |= mode == open_mode::read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  const std::string file = path.string();
  int rc = sqlite3_open_v2(file.c_str(), &raw, flags, vfs.empty() ? nullptr : vfs.c_str());
  db_ptr db(raw);
  if (rc != SQLITE_OK) {
    std::string why = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return make_error("journal.open_failed", "cannot open journal database: " + why);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(busy_timeout_ms));
  // The journal's ids are random, so inserts touch index pages all over the file: a page cache
  // of 64 MiB (default 2 MiB) keeps them. A hint: SQLite runs without it if it cannot be
  // applied. No mmap_size: the journal grows with every commit, and a mapped file is
  // re-mapped (munmap, mmap, page faults) by each reader that finds it grown, which cost more
  // than the pread() calls it spared.
  //
  // temp_store = MEMORY: the writer applies each batch of a group commit under its own
  // savepoint (so one refused batch does not fail the others), and SQLite keeps the original of
  // every page a savepoint changes in a sub-journal, a temporary file by default: about a
  // hundred pwrite() calls per sale. In memory it costs a memcpy, and it is discarded with the
  // savepoint either way (the WAL, not the sub-journal, makes a commit durable).
  sqlite3_exec(raw, "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY", nullptr, nullptr, nullptr);
  // Reading the schema forces SQLite to look at the file: "not a database" shows up here,
  // not later in the middle of a transaction.
  rc = sqlite3_exec(raw, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return make_error("journal.open_failed",
                      std::string("cannot read journal database: ") + sqlite3_errmsg(raw));
  }
  return connection(std::move(db));
}

result<std::string> query_pragma(connection& c, const std::string& name) {
  if (name.empty()) return make_error("journal.invalid_argument", "empty pragma name");
  for (char ch : name) {
    if (!(std::islower(static_cast<unsigned char>(ch)) || ch == '_')) {
      return make_error("journal.invalid_argument", "pragma name must be [a-z_]+");
    }
  }
  auto* s = c.prepare("PRAGMA " + name);
  if (s == nullptr) return make_error("journal.query_failed", "pragma: " + c.errmsg());
  stmt st(s);
  int rc = st.step();
  if (rc == SQLITE_ROW) return st.text(0);
  if (rc == SQLITE_DONE) return std::string();
  return make_error("journal.query_failed", "pragma: " + c.errmsg());
}

result<int> user_version(connection& c) {
  auto v = query_pragma(c, "user_version");
  if (!v) return v.err();
  try {
    return std::stoi(*v);
  } catch (...) {
    return make_error("journal.query_failed", "user_version is not a number");
  }
}

namespace {

// Milliseconds since the epoch from SQLite's own clock: the one place where the journal
// takes a time itself, for the schema_migrations bookkeeping only.
constexpr const char* insert_migration_sql =
    "INSERT INTO schema_migrations(version, description, applied_ms) VALUES(?1, ?2, "
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))";

status too_new(int found) {
  return make_error("journal.schema_too_new", "journal schema version " + std::to_string(found) +
                                                  " is newer than this program knows (" +
                                                  std::to_string(latest_schema_version()) +
                                                  "); refusing to open");
}

status apply_one(connection& c, const migration& m) {
  auto fail = [&](const std::string& what) -> status {
    std::string why = what + " (migration " + std::to_string(m.version) + "): " + c.errmsg();
    c.exec("ROLLBACK");
    return make_error("journal.migration_failed", why);
  };
  // IMMEDIATE takes the write lock first, so two processes opening the same journal cannot
  // both apply the step; the loser re-reads the version inside its own transaction.
  if (c.exec("BEGIN IMMEDIATE") != SQLITE_OK) {
    return make_error("journal.migration_failed", "cannot begin migration: " + c.errmsg());
  }
  auto cur = user_version(c);
  if (!cur) {
    c.exec("ROLLBACK");
    return make_error("journal.migration_failed", cur.err().message);
  }
  if (*cur >= m.version) return c.exec("COMMIT") == SQLITE_OK ? status() : fail("commit");
  if (*cur != m.version - 1) return fail("version gap");
  const std::string sql(m.sql);
  if (c.exec(sql.c_str()) != SQLITE_OK) return fail("step");
  {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(c.get(), insert_migration_sql, -1, &raw, nullptr) != SQLITE_OK) {
      sqlite3_finalize(raw);
      return fail("bookkeeping");
    }
    stmt_ptr owner(raw);
    stmt st(raw);
    st.bind(1, static_cast<std::int64_t>(m.version));
    st.bind(2, m.description);
    if (st.step() != SQLITE_DONE) return fail("bookkeeping");
  }
  const std::string set_version = "PRAGMA user_version = " + std::to_string(m.version);
  if (c.exec(set_version.c_str()) != SQLITE_OK) return fail("user_version");
  if (c.exec("COMMIT") != SQLITE_OK) return fail("commit");
  return {};
}

}  // namespace

status migrate(connection& c) {
  auto v = user_version(c);
  if (!v) return make_error("journal.migration_failed", v.err().message);
  if (*v > latest_schema_version()) return too_new(*v);
  for (const auto& m : migrations()) {
    if (m.version <= *v) continue;
    if (auto st = apply_one(c, m); !st) return st;
  }
  // Someone newer may have migrated between our first look and our transactions.
  auto after = user_version(c);
  if (!after) return make_error("journal.migration_failed", after.err().message);
  if (*after > latest_schema_version()) return too_new(*after);
  return {};
}

bool is_io_failure(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return true;
    default:
      return false;
  }
}

}  // namespace eftd::journal::detail
