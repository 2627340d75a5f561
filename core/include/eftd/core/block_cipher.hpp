// Block-cipher primitives for payment cryptography, over OpenSSL EVP: TDES and AES on whole
// blocks in ECB and CBC mode, CMAC, key check values, and an injectable random source.
// Nothing here is home-made cryptography: every primitive is OpenSSL's; this header fixes
// the key-length rules, the block-only contract and the error codes.
//
// Contract shared by every function:
// - Keys: TDES takes 8 (single DES, run as three-key TDES with K1 = K2 = K3, which equals
//   DES and needs no OpenSSL legacy provider), 16 (two-key, K1 K2 K1) or 24 bytes (three-key).
//   AES takes 16, 24 or 32 bytes. Any other length gives "crypto.bad_key".
// - Data for ECB/CBC must be a whole number of blocks (8 for TDES, 16 for AES), possibly zero
//   blocks; OpenSSL padding is off and callers pad as their format requires. Otherwise
//   "crypto.bad_input". The IV must be exactly one block ("crypto.bad_input").
// - Outputs that can be key material or clear card data are secure_bytes (wiped on
//   destruction). Nothing here logs or formats its inputs.
// - "crypto.openssl" means an OpenSSL call failed unexpectedly (broken install, allocation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd {

inline constexpr std::size_t des_block_size = 8;
inline constexpr std::size_t aes_block_size = 16;

enum class cipher_op { encrypt, decrypt };

// TDES (or DES with an 8-byte key) in ECB mode. Post: output size == data size.
result<secure_bytes> tdes_ecb(cipher_op op, byte_view key, byte_view data);
// TDES in CBC mode with the given 8-byte IV. Post: output size == data size.
result<secure_bytes> tdes_cbc(cipher_op op, byte_view key, byte_view iv, byte_view data);
// AES-128/192/256 (by key length) in ECB mode. Post: output size == data size.
result<secure_bytes> aes_ecb(cipher_op op, byte_view key, byte_view data);
// AES in CBC mode with the given 16-byte IV. Post: output size == data size.
result<secure_bytes> aes_cbc(cipher_op op, byte_view key, byte_view iv, byte_view data);

// CMAC (NIST SP 800-38B) over any number of bytes, including none. TDES-CMAC gives 8
// bytes, AES-CMAC 16. Returned as secure_bytes because TR-31 derives keys with it.
result<secure_bytes> tdes_cmac(byte_view key, byte_view data);
result<secure_bytes> aes_cmac(byte_view key, byte_view data);

// Key check values: TDES (or DES) encrypts one block of zeros and keeps the leftmost 3
// bytes; AES uses the X9.24-1:2017 / X9.143 CMAC form, leftmost 5 bytes of AES-CMAC over
// 16 zero bytes. A KCV identifies a key without revealing it; callers may print it.
result<bytes> tdes_kcv(byte_view key);
result<bytes> aes_cmac_kcv(byte_view key);

// out[i] ^= in[i]. Pre: out.size() == in.size() (asserted).
void xor_into(std::span<std::uint8_t> out, byte_view in) noexcept;

// Source of random bytes for padding and fill digits, injected so tests can pin it.
class random_source {
 public:
  virtual ~random_source() = default;
  // Fills `out` completely. Must not fail: implementations abort rather than return
  // predictable bytes.
  virtual void fill(std::span<std::uint8_t> out) = 0;
};

// OpenSSL's CSPRNG (RAND_bytes). Thread-safe; aborts if the CSPRNG fails.
random_source& system_random();

}  // namespace eftd
