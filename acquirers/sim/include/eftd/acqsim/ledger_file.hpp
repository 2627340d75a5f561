// The simulator's whole ledger as JSON lines, for the chaos tests' checkers (RELIABILITY.md:
// "the acquirer ledger matches the journals"): what the acquirer decided for every request it
// saw, approved or not, reversed or not, whether it settles.
//
// One line per ledger entry, in key order:
//   {"key":"LT000001|000123|1123152233","terminal":"LT000001","stan":"000123",
//    "transmission":"1123152233","local_datetime":"1123152233","mti":"0200","amount":1000,
//    "currency":"985","response_code":"00","approved":true,"answered":true,"reversed":false,
//    "credit":false,"settles":true,"merchant_id":"...","rrn":"...","auth_code":"..."}
// `transmission` is field 7 (UTC) as the key holds it; `local_datetime` is fields 13 + 12
// (MMDDhhmmss, local time), which is what eftd's journal stores per acquirer message.
// No card data: not even the masked PAN goes in (the checkers never need it).
#pragma once

#include <filesystem>
#include <string>

#include "eftd/acqsim/host.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acqsim {

std::string ledger_lines(const host& h);

// ledger_lines() written atomically to `out`.
status write_ledger_file(const host& h, const std::filesystem::path& out);

}  // namespace eftd::acqsim
