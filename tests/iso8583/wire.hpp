// Test helper: spell a golden wire image as segments, ASCII text or hex, so each field's
// bytes can be read next to its comment. Independent of the codec under test.
#pragma once

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <string_view>

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

}  // namespace wire
