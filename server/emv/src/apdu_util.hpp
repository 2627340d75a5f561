// Small byte helpers the contact and contactless kernels share: R-APDU status word and data,
// EMV numeric (BCD) and binary encodings, byte comparisons. Internal to server/emv.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "eftd/core/bytes.hpp"

namespace eftd::emv::detail {

// SW1 SW2 of an R-APDU (0 when it is shorter than a status word), and the data before it.
inline std::uint16_t sw_of(byte_view r) {
  return r.size() < 2 ? 0 : static_cast<std::uint16_t>((r[r.size() - 2] << 8) | r[r.size() - 1]);
}
inline byte_view data_of(byte_view r) {
  return r.size() < 2 ? byte_view{} : r.first(r.size() - 2);
}

// n digits as BCD in `len` bytes, right aligned (Book 3 format n).
inline bytes bcd(std::uint64_t v, std::size_t len) {
  bytes out(len, 0);
  for (std::size_t i = len; i-- > 0;) {
    const auto lo = static_cast<std::uint8_t>(v % 10);
    v /= 10;
    const auto hi = static_cast<std::uint8_t>(v % 10);
    v /= 10;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

// "YYMMDD" / "HHMMSS" -> 3 BCD bytes; a non-digit (or a missing last digit) gives 0.
inline bytes bcd_digits(std::string_view digits) {
  bytes out;
  auto d = [&](std::size_t k) {
    return static_cast<std::uint8_t>(
        k < digits.size() && digits[k] >= '0' && digits[k] <= '9' ? digits[k] - '0' : 0);
  };
  for (std::size_t i = 0; i < digits.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>((d(i) << 4) | d(i + 1)));
  return out;
}

// v big-endian in `len` bytes (format b).
inline bytes be(std::uint64_t v, std::size_t len) {
  bytes out(len, 0);
  for (std::size_t i = len; i-- > 0; v >>= 8) out[i] = static_cast<std::uint8_t>(v);
  return out;
}

inline bool starts_with(byte_view a, byte_view prefix) {
  return a.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), a.begin());
}
inline bool same(byte_view a, byte_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace eftd::emv::detail
