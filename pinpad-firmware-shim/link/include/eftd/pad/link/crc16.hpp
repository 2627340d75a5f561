// CRC-16/CCITT-FALSE, the check sum of the serial/USB link layer (LINK.md section 2).
#pragma once

#include <cstdint>

#include "eftd/core/bytes.hpp"

namespace eftd::pad::link {

// Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
// Check value: crc16_ccitt_false("123456789") == 0x29B1.
// `crc` continues a running computation: crc(a ++ b) == crc16_ccitt_false(b, crc16_ccitt_false(a)).
std::uint16_t crc16_ccitt_false(byte_view data, std::uint16_t crc = 0xFFFF) noexcept;

}  // namespace eftd::pad::link
