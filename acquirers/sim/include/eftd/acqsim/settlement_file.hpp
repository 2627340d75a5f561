// The simulator's own settlement file: what the acquirer says settles, rendered from its ledger
// in a shipped layout (acquirers/settlement/layouts), so tests can match it against eftd's journal.
//
// One detail per ledger entry that settles (approved 00/10 financial requests and batch-upload
// additions) and is not reversed; ordered by terminal id, local date and time, STAN. The file
// is written when the simulator shuts down (SIGINT/SIGTERM), covering every batch of the run,
// closed or open: the sim is a test host whose whole life is one settlement day.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "eftd/acqsim/host.hpp"
#include "eftd/core/result.hpp"
#include "eftd/settlement/layout.hpp"

namespace eftd::acqsim {

// The ledger as a settlement file dated `today` (YYYYMMDD). Each detail's year is today's, or
// the year before when its MMDD lies after today's (a transaction from before new year).
// `acquirer` goes to the header (may be empty).
settlement::file settlement_of(const host& h, const std::string& today, const std::string& acquirer = {});

// settlement_of() for the local date of `now_ms`, encoded in `layout`, written atomically to `out`.
status write_settlement_file(const host& h, const settlement::layout& layout,
                             const std::filesystem::path& out, std::int64_t now_ms,
                             const std::string& acquirer = {});

}  // namespace eftd::acqsim
