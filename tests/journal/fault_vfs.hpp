// A SQLite VFS for anomaly tests: it wraps the default VFS and, while a switch is on, fails
// every write or fsync with an I/O error, like a full or dying disk would.
#pragma once

namespace journal_test {

// Registers the VFS (once; not as the default) and returns its name for writer_options::vfs.
const char* fault_vfs_name();

void fail_writes(bool on);
void fail_syncs(bool on);

}  // namespace journal_test
