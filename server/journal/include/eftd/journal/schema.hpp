// The journal schema as data: an ordered list of migration steps.
//
// A database records its version in PRAGMA user_version and the steps it received in the
// table schema_migrations(version, description, applied_ms). Opening applies the missing
// steps in order, each in its own transaction; a database newer than this code fails with
// "journal.schema_too_new" (never downgrade silently).
#pragma once

#include <span>
#include <string_view>

namespace eftd::journal {

struct migration {
  int version;  // 1, 2, ... without gaps
  std::string_view description;
  std::string_view sql;  // one or more statements
};

std::span<const migration> migrations() noexcept;
int latest_schema_version() noexcept;

}  // namespace eftd::journal
