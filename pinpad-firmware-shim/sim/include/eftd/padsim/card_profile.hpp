// Card profiles: the virtual pad's cards, one TOML file each (pinpad-firmware-shim/cards/).
//
//   [card]
//   name     = "Visa approve"                          # required, shown in logs
//   kind     = "magstripe"                             # required; only magstripe for now
//   track2   = "4761739001010119=29122011143804489"    # required: PAN=YYMM SSS discretionary
//   fallback = false                                   # optional: chip card read by stripe
//
// The track 2 is checked on load (digits, PAN length 12..19 and Luhn, '=', expiry month
// 01..12, 3-digit service code, at most 37 characters) so a pad never sends what it could
// not have read. An expiry in the past is allowed (expired.toml tests the server's check).
// Unknown keys or tables are errors (a typo must not silently change a test card).
//
// Error codes: padsim.profile_io, padsim.profile_syntax, padsim.profile_missing_key,
// padsim.profile_unknown_key, padsim.profile_bad_value. Messages name the key and the
// rule, never the track 2 or PAN.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/pad/messages.hpp"

namespace eftd::padsim {

struct card_profile {
  std::string name;
  std::string kind;  // "magstripe"
  pad::entry_mode mode = pad::entry_mode::magstripe;
  eftd::secure_bytes track2;  // ASCII
  bool fallback = false;
  std::string source;  // file name (or caller's label), for messages
};

// `source` labels error messages ("visa.toml: card.track2: ...").
eftd::result<card_profile> parse_card_profile(std::string_view toml_text, std::string_view source);
eftd::result<card_profile> load_card_profile(const std::filesystem::path& file);

// ok or padsim.profile_bad_value naming the broken rule (never the value).
eftd::status check_track2(std::string_view track2);
bool luhn_valid(std::string_view digits);

}  // namespace eftd::padsim
