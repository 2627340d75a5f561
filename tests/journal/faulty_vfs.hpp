// A SQLite VFS for the journal's anomaly tests (RELIABILITY.md R2, R6), registered in tests only.
//
// It wraps the default (unix) VFS and can, on demand:
//   - fail every write (and truncate) with an I/O error, or every fsync;
//   - report a full disk (SQLITE_FULL) once a byte budget for writes is spent;
//   - simulate a power loss: it keeps, per file, a shadow of the content as of that file's
//     last xSync. power_cut() makes the "machine" dead (every later write, sync, truncate or
//     delete fails and changes nothing); after the test has closed its connections,
//     power_restore() writes every file back to its last synced state. In tear mode the writes
//     made since the last sync survive, except the last one, which keeps only its first half:
//     a sector-granular torn write.
//
// State is process-wide (SQLite VFSes are). Tests using it must not run in parallel threads of
// one process; Catch2 runs test cases one after another.
#pragma once

#include <cstdint>

namespace journal_test::faulty {

// Registers the VFS (once; never as the default) and returns its name for writer_options::vfs.
const char* vfs_name();

// Every switch off, every shadow forgotten. Call at the start of each test.
void reset();

void fail_writes(bool on);
void fail_syncs(bool on);

// From now on, at most `bytes` more bytes may be written; a write beyond that fails with
// SQLITE_FULL and writes nothing. A negative value removes the limit ("space returns").
void disk_full_after(std::int64_t bytes);

// Bytes written through the VFS since reset() (for choosing disk_full_after budgets).
std::int64_t bytes_written();

enum class loss_mode { drop_unsynced, tear_last_unsynced };

// The power goes: nothing written from now on reaches the disk.
void power_cut();
// The power comes back: every file opened through the VFS since reset() gets its last synced
// content (plus, in tear mode, the unsynced writes but a torn last one). Only after every
// connection on those files is closed. Returns how many files it rewrote.
int power_restore(loss_mode mode = loss_mode::drop_unsynced);

// How many xSync calls succeeded since reset().
std::int64_t syncs();

}  // namespace journal_test::faulty
