// ISO 8583 dialects as data: one field spec table per dialect.
//
// A dialect says, for every field number 1..128, how the field looks on the wire (length
// type, size, content type, encoding, padding, length-prefix encoding) plus how the MTI and
// the bitmaps are encoded. The codec (codec.hpp) interprets the table; nothing about a
// particular acquirer is hard-coded in it. A new acquirer is a new table, not a new class.
//
// Units: `size` and a length prefix count characters (digits) for text content (n, an, ans,
// z, xn) and bytes for binary content (b), whatever the wire encoding: a BCD "n..19" PAN of 16
// digits has prefix 16 and takes 8 bytes. ISO 8583 writes binary sizes in bits ("b 64"); here
// field 52 is b 8.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eftd::acq {

// How the field's length is known: fixed by the spec, or carried in a 2- or 3-digit prefix.
enum class length_type : std::uint8_t { fixed, llvar, lllvar };

// ISO 8583 content (attribute) classes.
//   n   decimal digits
//   an  letters, digits and space
//   ans any printable ASCII (0x20..0x7E) once decoded
//   b   opaque bytes
//   z   track-2 data: digits and the separator ('=' or 'D')
//   xn  a 'C' (credit) or 'D' (debit) sign followed by digits (fields 28-31, 97)
enum class content_type : std::uint8_t { n, an, ans, b, z, xn };

// Wire encoding of a value, of a length prefix, or of the MTI.
//   ascii   one byte per character (also how ASCII length prefixes are written)
//   binary  raw bytes (b fields); for a length prefix: a big-endian unsigned integer
//           (LL: 1 byte, LLL: 2 bytes)
//   bcd     packed BCD, two digits per byte; an odd digit count is left-padded with a zero
//           nibble. Values: n digits; z digits with the track-2 separator as nibble 0xD ('='
//           and 'D' both pack to it, unpack gives 'D'); xn the sign as one ASCII byte ('C' or
//           'D') followed by the digits in BCD. Only n, z and xn content may use it.
//           Prefixes: LL one byte (2 digits), LLL two bytes (4 digits, the first one 0).
//           MTI: 2 bytes.
//   ebcdic  one byte per character, code page 037                     (designed, not implemented)
// The codec reports "iso8583.unsupported_encoding" for the designed-only encoding.
enum class encoding : std::uint8_t { ascii, binary, bcd, ebcdic };

// Padding applied by pack() to a fixed-length value shorter than the spec.
// unpack() keeps values exactly as received (padding included), so pack(unpack(x)) == x.
enum class padding : std::uint8_t { none, left_zero, right_space };

enum class bitmap_encoding : std::uint8_t {
  binary,     // 8 bytes per bitmap
  hex_ascii,  // 16 ASCII hex digits per bitmap
};

struct field_spec {
  std::uint8_t number = 0;  // 0: the field is not defined in this dialect
  length_type length = length_type::fixed;
  std::uint16_t size = 0;  // the fixed size, or the maximum for LLVAR/LLLVAR (units above)
  content_type content = content_type::ans;
  encoding value_encoding = encoding::ascii;
  encoding prefix_encoding = encoding::ascii;  // LLVAR/LLLVAR only
  padding pad = padding::none;
  bool card_data = false;  // PAN, track, PIN block, chip data: masked by describe()
  std::string_view name;

  bool defined() const noexcept { return number != 0; }
};

inline constexpr int max_field = 128;

struct dialect {
  std::string_view name;
  std::string_view title;
  encoding mti_encoding = encoding::ascii;  // ascii: 4 bytes, bcd: 2 bytes
  bitmap_encoding bitmap = bitmap_encoding::binary;
  std::array<field_spec, max_field + 1> fields{};  // index = field number; [0] unused

  // nullptr if `number` is outside 1..128 or not defined in this dialect.
  const field_spec* field(int number) const noexcept;
};

// The shipped dialects, by name ("iso87-ascii", "iso87-bcd"). nullptr for an unknown name.
const dialect* find_dialect(std::string_view name);
// Names of every shipped dialect, for --help texts and config validation.
std::vector<std::string_view> dialect_names();

// "n 6", "LLVAR n..19", "LLLVAR b..999", "b 8", "xn 9": the ISO 8583 style format string.
std::string format_field(const field_spec& spec);

// The whole spec table, one row per defined field, as a Markdown table:
// | field | name | format | length prefix | encoding | padding |
// Tests compare rows against the standard; DIALECTS.md is written from it.
std::string spec_table(const dialect& d);

// Structural check of a table (used for shipped and future data-loaded dialects):
// sizes within the prefix's range, binary content only with binary encoding, BCD only on
// n/z/xn content, padding only on fixed fields, field 1 reserved for the secondary bitmap.
// Returns one line per problem.
std::vector<std::string> validate_dialect(const dialect& d);

}  // namespace eftd::acq
