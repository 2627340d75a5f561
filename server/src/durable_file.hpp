// Small files written so that a crash leaves either the old content or the new one: write a
// temporary file and fsync it, then rename it over the target and fsync the directory. Used for
// the witness's state file and for a standby's copy of the shared key store.
#pragma once

#include <filesystem>
#include <string_view>

#include "eftd/core/result.hpp"

namespace eftd::server {

// Creates or truncates `file` (mode 0600), writes `data` and fsyncs it. Errors carry
// `error_code` and name the file and the failed step.
status write_synced(const std::filesystem::path& file, std::string_view data, std::string_view error_code);

// rename(from, to), then fsync of the directory of `to` (what makes the rename durable).
status rename_synced(const std::filesystem::path& from, const std::filesystem::path& to, std::string_view error_code);

}  // namespace eftd::server
