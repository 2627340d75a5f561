// Small helpers shared by the pad tests.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/pad/codec.hpp"

namespace pad_test {

// Hex with optional spaces (golden vectors are written in groups for readability).
inline eftd::bytes hx(std::string_view spaced) {
  std::string s;
  for (char c : spaced)
    if (c != ' ') s += c;
  auto b = eftd::from_hex(s);
  REQUIRE(b.has_value());
  return *b;
}

inline eftd::bytes without_length(const eftd::bytes& frame) {
  REQUIRE(frame.size() >= eftd::pad::length_prefix_size);
  return {frame.begin() + eftd::pad::length_prefix_size, frame.end()};
}

inline eftd::secure_bytes secret(std::string_view s) {
  return eftd::secure_bytes(eftd::as_bytes(s));
}

// Body bytes of a frame after the header: (version,type,seq,ref) + tlvs.
inline eftd::bytes frame_body(std::uint8_t type, std::string_view tlv_hex, std::uint32_t seq = 1,
                              std::uint32_t ref = 0) {
  eftd::bytes f{eftd::pad::protocol_version, type};
  for (int i = 0; i < 4; ++i) f.push_back(static_cast<std::uint8_t>(seq >> (24 - 8 * i)));
  for (int i = 0; i < 4; ++i) f.push_back(static_cast<std::uint8_t>(ref >> (24 - 8 * i)));
  auto tlv = hx(tlv_hex);
  f.insert(f.end(), tlv.begin(), tlv.end());
  return f;
}

}  // namespace pad_test
