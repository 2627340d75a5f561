// BER-TLV as used by EMV (Book 3 Annex B), for card responses and ISO 8583 field 55.
//
// Tags: 1..3 bytes; a first byte with low 5 bits 11111 announces more bytes, and each
// further byte with bit 0x80 set announces another. The tag is kept as its big-endian
// bytes in an integer: 0x9F02, 0x5F2A, 0xBF0C, 0x9F8101.
// Lengths: short form 0x00..0x7F, long form 0x81 (1 byte), 0x82 (2), 0x83 (3).
// Bit 0x20 of the first tag byte marks a constructed object whose value is itself TLV.
// Bytes 0x00 and 0xFF between objects are padding and are skipped.
//
// Error codes: "tlv.truncated_tag", "tlv.tag_too_long" (more than 3 tag bytes),
// "tlv.truncated_length", "tlv.indefinite_length" (0x80), "tlv.bad_length_form" (0x84+),
// "tlv.length_overflow" (value runs past the buffer), "tlv.too_deep" (objects nested more
// than tlv_max_depth levels: at most 7 constructed objects around a primitive).
#pragma once

#include <cstdint>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd {

inline constexpr int tlv_max_depth = 8;

struct tlv {
  std::uint32_t tag = 0;
  // Primitive: the value. Constructed: the raw value bytes as received (what ODA hashes);
  // tlv_encode ignores it and encodes `children` instead.
  bytes value;
  std::vector<tlv> children;

  // Bit 0x20 of the first tag byte.
  bool constructed() const noexcept;

  // Same tag and, if constructed, equal children (raw value bytes ignored: padding and
  // non-minimal lengths do not make two objects different); if primitive, equal value.
  friend bool operator==(const tlv& a, const tlv& b) noexcept;
};

// Decode a sequence of objects. Post: every object and nested child is within `data`,
// constructed objects are decoded recursively up to tlv_max_depth levels.
result<std::vector<tlv>> tlv_decode(byte_view data);

// Minimal-length DER-style encoding (short form under 128, else 0x81/0x82/0x83).
// Pre: tag holds 1..3 valid tag bytes; value/children sizes < 2^24.
bytes tlv_encode(const tlv& t);
bytes tlv_encode(const std::vector<tlv>& list);

// First object with `tag`, depth first in order; nullptr if absent.
const tlv* tlv_find(const std::vector<tlv>& list, std::uint32_t tag, bool recursive = true);

}  // namespace eftd
