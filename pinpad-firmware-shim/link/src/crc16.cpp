#include "eftd/pad/link/crc16.hpp"

#include <array>

namespace eftd::pad::link {
namespace {

// One entry per value of the byte shifted into the high end of the register: the register
// after eight shifts of the polynomial 0x1021 (MSB first, no reflection).
constexpr std::array<std::uint16_t, 256> make_table() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    auto r = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b)
      r = (r & 0x8000) ? static_cast<std::uint16_t>((r << 1) ^ 0x1021) : static_cast<std::uint16_t>(r << 1);
    t[i] = r;
  }
  return t;
}

constexpr auto table = make_table();

}  // namespace

std::uint16_t crc16_ccitt_false(byte_view data, std::uint16_t crc) noexcept {
  for (std::uint8_t b : data)
    crc = static_cast<std::uint16_t>((crc << 8) ^ table[static_cast<std::uint8_t>((crc >> 8) ^ b)]);
  return crc;
}

}  // namespace eftd::pad::link
