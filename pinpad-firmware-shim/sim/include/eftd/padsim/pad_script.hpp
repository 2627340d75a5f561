// The virtual pad's script: what the "customer" does and what the pad reports about itself,
// one TOML file (eftpad virtual --script FILE).
//
//   [pad]
//   languages     = ["en", "pl"]   # display languages; absent: any language is shown
//   card_inserted = false          # a card sits in the reader at start
//   card_stays_in = false          # after a successful read_card the card stays in until "remove"
//   [[pad.dukpt]]                  # reported by get_status, in this order
//   ksn     = "FFFF9876543210E00000"  # hex, 10 (TDES) or 12 (AES) bytes
//   counter = 0
//   [input]
//   events = ["pause 200", "1", "2", "5", "0", "enter", "remove", "cancel"]
//
// Input events are consumed in order by the commands that wait for input: "0".."9", "enter",
// "clear", "cancel" are keys; "remove" takes the card out of the reader; "pause N" holds
// the following events back for N ms after the pause reaches the front of the queue.
// Unknown keys or tables are errors (a typo must not silently change a test).
//
// Error codes: padsim.script_io, padsim.script_syntax, padsim.script_unknown_key,
// padsim.script_bad_value.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::padsim {

struct script_event {
  enum class kind : std::uint8_t { key, remove, pause };
  kind what = kind::key;
  std::uint8_t key = 0;               // kind::key
  std::chrono::milliseconds pause{};  // kind::pause
  friend bool operator==(const script_event&, const script_event&) = default;
};

struct pad_script {
  std::vector<std::string> languages;  // empty: any
  bool card_inserted = false;
  bool card_stays_in = false;
  std::vector<eftd::bytes> ksns;
  std::vector<std::uint32_t> dukpt_counters;
  std::vector<script_event> events;
};

// One input token ("5", "enter", "pause 100", ...); padsim.script_bad_value otherwise.
eftd::result<script_event> parse_script_event(std::string_view token);
eftd::result<pad_script> parse_pad_script(std::string_view toml_text, std::string_view source);
eftd::result<pad_script> load_pad_script(const std::filesystem::path& file);

}  // namespace eftd::padsim
