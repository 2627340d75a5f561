// The replication log of a hot-standby pair, as the writer and the reader see it
// (server/HA.md). The table is repl_log (schema v15); its lineage id is repl_meta.history.
#pragma once

#include <cstdint>
#include <string>

#include "eftd/core/bytes.hpp"

namespace eftd::journal {

// One committed batch as the replication log keeps it: its sequence number (1, 2, ... with no
// gap), the fencing epoch it was written under, and the batch encoded by encode_batch()
// (replica_codec.hpp), including the notification rows the writer generated for it.
struct repl_entry {
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;
  bytes payload;
};

// Where a journal's replication log stands. history: the lineage id (repl_meta), empty when
// the log was never written; last_seq/last_epoch: the newest entry (0/0 if none).
struct repl_position {
  std::string history;
  std::uint64_t last_seq = 0;
  std::uint64_t last_epoch = 0;
};

}  // namespace eftd::journal
