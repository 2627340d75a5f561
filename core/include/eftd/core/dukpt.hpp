// DUKPT (Derived Unique Key Per Transaction), host side: derive the key a PIN pad used for
// one transaction from the base derivation key (BDK) and the key serial number (KSN) it sent.
//
// tdes_dukpt: ANSI X9.24-1:2009. 16-byte (two-key TDES) BDK and keys, 10-byte KSN whose
//   rightmost 21 bits are the transaction counter.
// aes_dukpt: ANSI X9.24-3:2017. AES-128/192/256 BDK, 12-byte KSN = 8-byte initial key ID ||
//   32-bit transaction counter; working keys of several types derived per usage.
//
// Counter rules (both): a counter of 0 is rejected (it would select the initial key, which is
// never a transaction key); TDES counters have at most 10 one-bits, AES counters at most 16.
// A pad never produces other counters, so a KSN breaking them is forged or corrupt.
//
// Every key is returned as secure_bytes; nothing here logs. Error codes:
//   "dukpt.bad_key"      BDK / initial key / working key of the wrong length
//   "dukpt.bad_ksn"      KSN or initial key ID of the wrong length
//   "dukpt.bad_counter"  counter 0 or too many one-bits
//   "dukpt.bad_key_type" key type not allowed for this derivation (too strong for the
//                        derivation key, or not an AES type where AES is needed)
//   "dukpt.bad_input"    data not a whole number of blocks (decrypt)
//   "crypto.*"           from the block cipher layer (should not happen with checked inputs)
#pragma once

#include <cstddef>
#include <cstdint>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::tdes_dukpt {

inline constexpr std::size_t key_size = 16;
inline constexpr std::size_t ksn_size = 10;
inline constexpr std::uint32_t counter_mask = 0x1FFFFF;  // 21 bits
inline constexpr int max_counter_one_bits = 10;

// Transaction counter of a KSN, validated. Pre: none. Post: 1..0x1FFFFF with <= 10 one-bits.
result<std::uint32_t> counter(byte_view ksn);

// Initial PIN encryption key (IPEK) from the BDK and any KSN of the device (the counter bits
// are ignored). Pre: bdk 16 bytes, ksn 10 bytes. Post: 16 bytes.
result<secure_bytes> ipek(byte_view bdk, byte_view ksn);

// Keys for one transaction. `transaction` is the raw future key; the others are its variants
// (X9.24-1 A.6). The data keys also pass the one-way step TDES_K'(K'l) || TDES_K'(K'r).
struct keys {
  secure_bytes transaction;
  secure_bytes pin;            // XOR 00000000000000FF00000000000000FF
  secure_bytes mac_request;    // XOR 000000000000FF00000000000000FF00
  secure_bytes mac_response;   // XOR 00000000FF00000000000000FF000000
  secure_bytes data_request;   // XOR 0000000000FF00000000000000FF0000, then one-way step
  secure_bytes data_response;  // XOR 000000FF00000000000000FF00000000, then one-way step
};

// Keys for the KSN's counter from the IPEK. Pre: ipek 16 bytes, ksn 10 bytes with a valid counter.
result<keys> derive(byte_view ipek, byte_view ksn);
// Same from the BDK (ipek() then derive()).
result<keys> derive_from_bdk(byte_view bdk, byte_view ksn);

// Data under a data key: TDES-CBC with a zero IV. encrypt_data zero-pads to a multiple of 8;
// decrypt_data needs a multiple of 8 and returns the padded plaintext (the length is the
// message format's business).
result<bytes> encrypt_data(byte_view data_key, byte_view plaintext);
result<secure_bytes> decrypt_data(byte_view data_key, byte_view ciphertext);

// Request/response MAC: ISO 9797-1 algorithm 3 (X9.19), padding method 1, leftmost 4 bytes.
result<bytes> mac(byte_view mac_key, byte_view message);

}  // namespace eftd::tdes_dukpt

namespace eftd::aes_dukpt {

inline constexpr std::size_t ksn_size = 12;
inline constexpr std::size_t initial_key_id_size = 8;
inline constexpr int max_counter_one_bits = 16;

// Key types of X9.24-3 (the "algorithm" and "length" fields of the derivation data).
enum class key_type { tdes2, tdes3, aes128, aes192, aes256, hmac128, hmac192, hmac256 };

// Key usages (the "key usage indicator" of the derivation data).
enum class key_usage : std::uint16_t {
  key_encryption = 0x0002,
  pin_encryption = 0x1000,
  mac_generation = 0x2000,    // request MAC
  mac_verification = 0x2001,  // response MAC
  mac_both = 0x2002,
  data_encryption = 0x3000,  // request data
  data_decryption = 0x3001,  // response data
  data_both = 0x3002,
};

// Key length in bytes: 16, 24, 16, 24, 32, 16, 24, 32.
std::size_t key_length(key_type type) noexcept;
// The AES type of a BDK or derivation key of n bytes (16/24/32), else "dukpt.bad_key".
result<key_type> aes_type_for_length(std::size_t n);

// Transaction counter of a 12-byte KSN, validated: 1..0xFFFFFFFF with <= 16 one-bits.
result<std::uint32_t> counter(byte_view ksn);

// Initial key from the BDK. Pre: bdk 16/24/32 bytes; initial_key_id 8 bytes; type an AES type
// no longer than the BDK. Post: key_length(type) bytes.
result<secure_bytes> initial_key(byte_view bdk, byte_view initial_key_id, key_type type);

// Derivation ("transaction") key for the KSN's counter. Pre: initial_key 16/24/32 bytes
// (AES), ksn 12 bytes with a valid counter. Post: same length as initial_key.
result<secure_bytes> transaction_key(byte_view initial_key, byte_view ksn);

// Working key of `type` for `usage`, from a derivation key already computed for this KSN.
// Pre: type no stronger than the derivation key (AES-192 needs >= 24 bytes, AES-256 and
// HMAC-256 need 32, HMAC-192 needs 24).
result<secure_bytes> working_key_from_transaction_key(byte_view transaction_key, byte_view ksn,
                                                      key_usage usage, key_type type);
// Same, starting from the initial key (transaction_key() then the above).
result<secure_bytes> working_key(byte_view initial_key, byte_view ksn, key_usage usage, key_type type);

// Data under an AES data key: AES-CBC with a zero IV. encrypt_data zero-pads to a multiple of
// 16; decrypt_data needs a multiple of 16 and returns the padded plaintext.
result<bytes> encrypt_data(byte_view data_key, byte_view plaintext);
result<secure_bytes> decrypt_data(byte_view data_key, byte_view ciphertext);

}  // namespace eftd::aes_dukpt
