// Online backup of the journal: a consistent copy taken while eftd keeps writing.
//
// The copy is made from a read-only connection with SQLite's online backup API. That
// connection holds one read transaction for the whole copy, so in WAL mode the copy is the
// snapshot of the moment the backup began (every batch acknowledged before then is in it),
// and eftd's writer is never blocked. The copy goes to "<to>.tmp", is switched to a
// self-contained rollback-journal file, must pass PRAGMA integrity_check, is fsynced and only
// then renamed to `to` (and the directory fsynced): a crash leaves either no file or a good one.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "eftd/core/result.hpp"

namespace eftd::journal {

struct backup_options {
  // Pages copied per sqlite3_backup_step: small steps keep each read short.
  int pages_per_step = 256;
  // Pause between steps, to spread the copy's reads on a busy disk. The snapshot stays
  // pinned meanwhile, so eftd's checkpoints cannot recycle the WAL until the copy is done.
  std::chrono::milliseconds step_pause{0};
  // SQLITE_BUSY / SQLITE_LOCKED from a step are retried after this pause ...
  std::chrono::milliseconds retry_pause{20};
  // ... until the whole backup has taken this long.
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};
  // Replace an existing `to` (else journal.backup_exists).
  bool overwrite = false;
  // Name of a registered SQLite VFS for the source; empty = the default (tests).
  std::string vfs;
};

struct backup_stats {
  std::int64_t pages = 0;    // pages in the copy
  std::int64_t steps = 0;    // sqlite3_backup_step calls
  std::int64_t retries = 0;  // steps answered BUSY or LOCKED
  std::int64_t bytes = 0;    // size of the finished file
  int schema_version = 0;    // PRAGMA user_version of the copy
};

// Errors: journal.open_failed (source or target), journal.backup_exists,
// journal.backup_failed (a step failed, the deadline passed, fsync or rename failed),
// journal.backup_corrupt (the copy failed integrity_check; it is removed).
result<backup_stats> backup(const std::filesystem::path& db, const std::filesystem::path& to,
                            const backup_options& options = {});

// fsync of a file, or of a directory (what makes a rename in it durable). false on failure.
bool fsync_path(const std::filesystem::path& p, bool directory);

struct file_digest {
  std::string sha256_hex;  // upper-case hex (to_hex)
  std::uint64_t size = 0;  // bytes read
};
// SHA-256 of a file's content, read in chunks (a journal copy can be gigabytes): the check a
// receiver runs on a backup or snapshot it was sent. Errors: journal.open_failed (unreadable).
result<file_digest> sha256_file(const std::filesystem::path& p);

}  // namespace eftd::journal
