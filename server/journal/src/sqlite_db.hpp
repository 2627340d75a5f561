// Private: a thin RAII layer over the SQLite C API for the journal's two connections.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::journal::detail {

struct db_closer {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;

struct stmt_finalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

// A cached prepared statement in use: reset and unbound when it goes out of scope, so a
// statement returned early (error path) never keeps a read transaction open.
class stmt {
 public:
  explicit stmt(sqlite3_stmt* s) noexcept : s_(s) {}
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;
  ~stmt() {
    if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }

  void bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, const std::string& v) { bind(i, std::string_view(v)); }
  void bind(int i, const char* v) { bind(i, std::string_view(v)); }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind_blob(int i, byte_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind_null(int i) { sqlite3_bind_null(s_, i); }
  void bind(int i, const std::optional<std::string>& v) {
    if (v)
      bind(i, std::string_view(*v));
    else
      bind_null(i);
  }
  void bind(int i, const std::optional<std::int64_t>& v) {
    if (v)
      bind(i, *v);
    else
      bind_null(i);
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_); }

  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    if (p == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(s_, col)));
  }
  std::optional<std::string> opt_text(int col) const {
    if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
    return text(col);
  }
  std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
  std::optional<std::int64_t> opt_int64(int col) const {
    if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
    return int64(col);
  }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  bytes blob(int col) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s_, col));
    auto n = static_cast<std::size_t>(sqlite3_column_bytes(s_, col));
    if (p == nullptr) return {};
    return bytes(p, p + n);
  }

 private:
  sqlite3_stmt* s_;
};

// One connection with a statement cache keyed by SQL text.
class connection {
 public:
  connection() = default;
  explicit connection(db_ptr db) : db_(std::move(db)) {}

  sqlite3* get() const noexcept { return db_.get(); }
  explicit operator bool() const noexcept { return db_ != nullptr; }

  // Prepares once, then reuses. nullptr on a prepare error (see errmsg()).
  // The text is the key: a literal costs no copy on a hit.
  sqlite3_stmt* prepare(std::string_view sql);

  // Runs one or more statements without results. SQLite's result code.
  int exec(const char* sql);

  std::string errmsg() const { return db_ ? sqlite3_errmsg(db_.get()) : "no database"; }

  void close() {
    cache_.clear();
    db_.reset();
  }

 private:
  db_ptr db_;
  std::map<std::string, stmt_ptr, std::less<>> cache_;
};

enum class open_mode { read_write_create, read_only };

// Opens a connection with busy_timeout set. Errors: journal.open_failed.
result<connection> open_connection(const std::filesystem::path& path, open_mode mode,
                                   std::uint32_t busy_timeout_ms, const std::string& vfs);

// Single-value PRAGMA query. name must be [a-z_]+.
result<std::string> query_pragma(connection& c, const std::string& name);

// Brings the schema to latest_schema_version(). Errors: journal.schema_too_new,
// journal.migration_failed.
status migrate(connection& c);

// Reads PRAGMA user_version.
result<int> user_version(connection& c);

// SQLite result codes that mean the storage itself failed, not the data.
bool is_io_failure(int rc) noexcept;

}  // namespace eftd::journal::detail
