// ISO 9564-1 PIN blocks: formats 0, 1 and 3 (8 bytes, encrypted with TDES by the caller),
// format 2 (8 bytes, the clear block of ICC offline PIN and PIN-change scripts) and format 4
// (16 bytes, AES, enciphered here as ISO 9564-1 prescribes).
//
// A PIN is a type of its own: held in a wiped-on-destruction buffer, with no formatter and no
// stream operator; the digits come out only through reveal(). Clear PIN blocks and PIN fields
// are secure_bytes. PANs are passed as digit strings (pan::reveal() of a parsed pan, or test
// PANs that fail Luhn, which these functions accept); they are copied only into wiped buffers.
// Error messages name the field that is wrong, never a digit of it.
//
// Layouts (one letter per nibble; N = PIN length 4..12, P = PIN digit, F = 0xF, A = 0xA,
// R = random, X = random 0xA..0xF):
//   format 0:  0 N P P P P P/F ... F        XOR  0000 + 12 rightmost PAN digits before the check digit
//   format 1:  1 N P P P P P/R ... R        (no PAN)
//   format 2:  2 N P P P P P/F ... F        (no PAN)
//   format 3:  3 N P P P P P/X ... X        XOR  the format 0 PAN field
//   format 4:  PIN field  4 N P P P P P/A ... A (16 nibbles) || 8 random bytes
//              PAN field  M (PAN length - 12, or 0) || PAN (left-padded with zeros to 12
//                         digits) || zeros, 16 bytes
//              enciphered = AES(K, AES(K, PIN field) XOR PAN field)
//
// Error codes: "pin.bad_length" (not 4..12 digits), "pin.not_numeric",
//   "pin_block.bad_pan" (formats 0/3 need 13..19 digits, format 4 1..19; digits only),
//   "pin_block.bad_length" (block not 8 / 16 bytes), "pin_block.bad_control" (the format
//   nibble differs), "pin_block.bad_pin_length", "pin_block.bad_pin_digit",
//   "pin_block.bad_fill" (also what a wrong PAN or wrong key usually gives),
//   "crypto.bad_key" (format 4 key not 16/24/32 bytes).
#pragma once

#include <cstdint>
#include <string_view>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd {

class pin {
 public:
  // Pre: none. Post: 4..12 ASCII digits in a wiped buffer.
  static result<pin> parse(std::string_view digits);

  std::size_t length() const noexcept { return digits_.size(); }
  // The clear digits, valid while *this lives. Never log or format them.
  std::string_view reveal() const noexcept;

  friend bool operator==(const pin& a, const pin& b) { return a.digits_ == b.digits_; }

 private:
  explicit pin(secure_bytes d) : digits_(std::move(d)) {}
  secure_bytes digits_;
};

enum class pin_block_format : std::uint8_t { iso0 = 0, iso1 = 1, iso2 = 2, iso3 = 3, iso4 = 4 };

// The clear PIN block (formats 0-3: 8 bytes) or the clear PIN field (format 4: 16 bytes).
// `pan` is ignored by formats 1, 2 and 4. `rng` supplies fill (formats 1, 3) and the random
// half of the format 4 PIN field; formats 0 and 2 draw nothing.
result<secure_bytes> build_pin_block(pin_block_format format, const pin& p, std::string_view pan,
                                     random_source& rng);

// Inverse of build_pin_block: checks the control nibble, the PIN length and digits and the
// fill. Formats 0 and 3 XOR the PAN field out first, so a wrong PAN shows up as bad fill.
result<pin> decode_pin_block(pin_block_format format, byte_view clear_block, std::string_view pan);

// The format 4 PAN field (16 bytes). Pre: 1..19 digits.
result<bytes> iso4_pan_field(std::string_view pan);

// Format 4 encipherment of a clear PIN field under an AES key (16/24/32 bytes).
result<bytes> encipher_iso4_field(byte_view key, byte_view pin_field, std::string_view pan);
// Format 4 decipherment back to the clear PIN field (not yet checked).
result<secure_bytes> decipher_iso4_field(byte_view key, byte_view block, std::string_view pan);

// build_pin_block(iso4) + encipher_iso4_field.
result<bytes> encipher_iso4(byte_view key, const pin& p, std::string_view pan, random_source& rng);
// decipher_iso4_field + decode_pin_block(iso4).
result<pin> decipher_iso4(byte_view key, byte_view block, std::string_view pan);

}  // namespace eftd
