// Thin, result-returning wrappers over OpenSSL EVP. No home-made cryptography here:
// every primitive is OpenSSL's; this header only fixes formats and error codes.
//
// Error codes: "crypto.bad_key" (wrong key length), "crypto.bad_input" (sealed blob too
// short), "crypto.auth_failed" (GCM tag mismatch: wrong key, AAD or tampered data),
// "crypto.openssl" (an OpenSSL call failed unexpectedly).
#pragma once

#include <cstddef>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd {

inline constexpr std::size_t gcm_nonce_size = 12;
inline constexpr std::size_t gcm_tag_size = 16;

// AES-256-GCM with a fresh random 96-bit nonce.
// Pre: key32.size() == 32. Post: output = nonce(12) || ciphertext(|plaintext|) || tag(16).
result<bytes> aes256_gcm_seal(byte_view key32, byte_view plaintext, byte_view aad);

// Deterministic variant for known-answer tests only: the caller supplies the 12-byte nonce.
// Never reuse a nonce with the same key in production code; call aes256_gcm_seal instead.
result<bytes> aes256_gcm_seal_with_nonce(byte_view key32, byte_view nonce12, byte_view plaintext,
                                         byte_view aad);

// Inverse of aes256_gcm_seal. Pre: key32.size() == 32, sealed.size() >= 28.
// Post: the plaintext, or "crypto.auth_failed" if the tag does not verify (nothing is returned).
result<secure_bytes> aes256_gcm_open(byte_view key32, byte_view sealed, byte_view aad);

// HMAC-SHA256 (32 bytes). Any key length.
bytes hmac_sha256(byte_view key, byte_view data);

// SHA-256 digest (32 bytes).
bytes sha256(byte_view data);

// n bytes from OpenSSL's CSPRNG (RAND_bytes). Aborts if the CSPRNG fails: there is no
// safe fallback for key or nonce generation.
secure_bytes random_bytes(std::size_t n);

}  // namespace eftd
