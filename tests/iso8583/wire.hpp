// Test helper: spell a golden wire image as segments, ASCII text or hex, so each field's
// bytes can be read next to its comment. Independent of the codec under test.
#pragma once

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <string_view>

#include "eftd/acq/message.hpp"
#include "eftd/core/bytes.hpp"

namespace wire {

struct seg {
  enum kind_t { ascii, hex } kind;
  std::string_view text;
};

inline seg a(std::string_view s) {
  return {seg::ascii, s};
}
inline seg h(std::string_view s) {
  return {seg::hex, s};
}

inline eftd::bytes build(std::initializer_list<seg> segs) {
  eftd::bytes out;
  for (const auto& s : segs) {
    if (s.kind == seg::ascii) {
      out.insert(out.end(), s.text.begin(), s.text.end());
    } else {
      auto b = eftd::from_hex(s.text);
      REQUIRE(b.has_value());
      out.insert(out.end(), b->begin(), b->end());
    }
  }
  return out;
}

inline std::string raw(std::string_view hex) {
  auto b = eftd::from_hex(hex);
  REQUIRE(b.has_value());
  return std::string(b->begin(), b->end());
}

// "" when equal, else where two wire images first differ. Failure output that names
// offsets and sizes instead of printing bytes that may hold a PAN in BCD.
inline std::string first_difference(const eftd::bytes& got, const eftd::bytes& want) {
  if (got == want) return "";
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "first difference at byte " + std::to_string(i) + " (sizes " + std::to_string(got.size()) + " and " +
         std::to_string(want.size()) + ")";
}

// "" when equal, else the MTI and field numbers that differ (never their values).
inline std::string differing_fields(const eftd::acq::message& got, const eftd::acq::message& want) {
  std::string out;
  if (got.mti() != want.mti()) out += "MTI ";
  for (int f = 1; f <= 128; ++f)
    if (got.get(f) != want.get(f)) out += "field " + std::to_string(f) + " ";
  return out;
}

}  // namespace wire
