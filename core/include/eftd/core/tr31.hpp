// TR-31 / ANSI X9.143 key blocks: import (unwrap) and export (wrap) of keys under a key block
// protection key (KBPK). This is how acquirer and PIN pad keys enter eftd.
//
// Versions:
//   B  TDES KBPK (16/24 bytes). KBEK/KBAK derived with TDES-CMAC (X9.143 key derivation);
//      MAC = TDES-CMAC over header || clear payload (8 bytes); payload TDES-CBC with IV = MAC.
//   D  AES KBPK (16/24/32 bytes). Same scheme with AES-CMAC; 16-byte MAC; AES-CBC.
//   A, C  legacy variant binding (KBEK = KBPK ^ 45.., KBAK = KBPK ^ 4D..; 4-byte CBC-MAC over
//      header || ciphertext; TDES-CBC with IV = first 8 header bytes). Import only, and only
//      when unwrap_options::allow_variant_binding is set: X9.143 deprecates them, but old HSMs
//      still export them.
// Any other version ('E', ...) is "tr31.unsupported_version".
//
// Block = header (16 chars + optional blocks, ASCII) || hex(encrypted payload) || hex(MAC);
// the clear payload is key length in bits (2 bytes) || key || random padding to whole cipher
// blocks. wrap() pads as if the key were masked_key_length long, so that the block does not
// reveal the key length (default: the longest key of the algorithm: TDES/DES 24, AES 32).
//
// Postconditions: unwrap() returns a key only after the MAC verified (compared in constant
// time); every failure before that names what is malformed, never key material. Keys come
// back as secure_bytes. The header returned by unwrap has no PB (padding) block: PB is framing
// and format_header()/wrap() add it when the header needs aligning.
//
// Error codes:
//   "tr31.bad_header"          fixed header field malformed (usage, algorithm, mode, ...)
//   "tr31.bad_optional_block"  optional block malformed, duplicated, PB not last, or bad content
//                              (KS, IK, KC, KP, BI must be upper-case hex)
//   "tr31.unsupported_version" not B/D (or A/C without allow_variant_binding)
//   "tr31.bad_length"          length field differs from the block, or lengths not aligned
//   "tr31.bad_kbpk"            KBPK length not allowed for the version
//   "tr31.bad_encoding"        payload or MAC not upper-case hex, or wrong MAC/payload size
//   "tr31.mac_mismatch"        MAC does not verify: wrong KBPK or tampered block
//   "tr31.bad_key_length"      after a good MAC: key length field not whole bytes or too long
//   "tr31.too_long"            wrap: the block would exceed 9999 characters or 99 blocks
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::tr31 {

inline constexpr std::size_t fixed_header_size = 16;
inline constexpr std::size_t max_block_size = 9999;

struct optional_block {
  std::string id;    // two alphanumeric characters
  std::string data;  // printable ASCII (0x20..0x7E)

  friend bool operator==(const optional_block&, const optional_block&) = default;
};

struct header {
  char version = 'D';
  std::string key_usage;   // two alphanumeric characters, e.g. "P0", "B0", "K0", "D0", "M3"
  char algorithm = 'A';    // A AES, D DES, E EC, H HMAC, R RSA, S DSA, T TDES
  char mode_of_use = 'N';  // B C D E G N S T V X Y
  std::string key_version = "00";
  char exportability = 'N';                     // E N S
  char key_context = '0';                       // X9.143 byte 14 ('0' = reserved in TR-31:2018)
  std::vector<optional_block> optional_blocks;  // in order, without PB

  friend bool operator==(const header&, const header&) = default;
};

struct parsed_header {
  header hdr;
  std::size_t length_field = 0;  // the 4-digit length as written
  std::size_t consumed = 0;      // header characters, optional blocks (and PB) included
};

// Parses the header at the start of `text` (what follows is not looked at). Checks syntax
// only: every fixed field, the optional block framing (short and extended lengths), printable
// data, unique IDs and PB last. Does not check the length field against anything.
result<parsed_header> parse_header(std::string_view text);

// The header as text, with a PB block of '0's added when needed so that it is a whole number
// of cipher blocks (8 characters for A/B/C, 16 for D), and the length field set to header
// length + body_chars. Optional blocks longer than 255 use the extended length form.
result<std::string> format_header(const header& h, std::size_t body_chars);

// Key block encryption and authentication keys derived from the KBPK (exposed for tests and
// diagnostics: the derived keys have published test values).
struct derived_keys {
  secure_bytes encryption;
  secure_bytes authentication;
};
result<derived_keys> derive_keys(char version, byte_view kbpk);

struct wrap_options {
  // Pad as if the key had this many bytes (when longer than the key). nullopt: the longest
  // key of the header's algorithm (T/D: 24, A: 32, others: the key itself); 0: no masking.
  std::optional<std::size_t> masked_key_length;
};

// Exports `key` under `kbpk` as a version B or D key block (h.version). `rng` supplies the
// payload padding. Pre: h passes the same checks as an imported header; key at most 8191 bytes.
result<std::string> wrap(byte_view kbpk, const header& h, byte_view key, random_source& rng,
                         const wrap_options& options = {});

struct unwrap_options {
  bool allow_variant_binding = false;  // accept legacy versions A and C
};

struct unwrapped_key {
  header hdr;
  secure_bytes key;
};

// Imports a key block: syntax, length, KBPK length, encoding, MAC, then the key length.
result<unwrapped_key> unwrap(byte_view kbpk, std::string_view block, const unwrap_options& options = {});

// KCV as key blocks and HSMs show it: algorithm 'A' -> AES-CMAC KCV (5 bytes), 'T' or 'D' ->
// TDES/DES KCV (3 bytes); other algorithms have no KCV here ("tr31.bad_header").
result<bytes> key_check_value(char algorithm, byte_view key);

}  // namespace eftd::tr31
