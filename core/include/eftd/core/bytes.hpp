// Byte buffers and hex conversion.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eftd {

using bytes = std::vector<std::uint8_t>;
using byte_view = std::span<const std::uint8_t>;

// Upper-case hex, no separators.
std::string to_hex(byte_view data);
// Accepts upper or lower case, no separators; odd length or a non-hex digit gives nullopt.
std::optional<bytes> from_hex(std::string_view hex);

inline byte_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace eftd
