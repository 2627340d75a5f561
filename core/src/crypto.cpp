#include "eftd/core/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "openssl_algorithms.hpp"

namespace eftd {

namespace {

struct cipher_ctx_deleter {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;

error openssl_error(const char* what) {
  return make_error("crypto.openssl", what);
}

// OpenSSL takes int lengths; our buffers are far below INT_MAX but a caller bug must not
// truncate silently.
bool fits_int(std::size_t n) {
  return n <= static_cast<std::size_t>(INT_MAX);
}

}  // namespace

result<bytes> aes256_gcm_seal_with_nonce(byte_view key32, byte_view nonce12, byte_view plaintext,
                                         byte_view aad) {
  if (key32.size() != 32) return make_error("crypto.bad_key", "AES-256 key must be 32 bytes");
  if (nonce12.size() != gcm_nonce_size) return make_error("crypto.bad_input", "GCM nonce must be 12 bytes");
  if (!fits_int(plaintext.size()) || !fits_int(aad.size()))
    return make_error("crypto.bad_input", "input too large");

  cipher_ctx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new failed");
  if (EVP_EncryptInit_ex(ctx.get(), detail::cipher(detail::cipher_alg::aes256_gcm), nullptr, nullptr, nullptr) != 1)
    return openssl_error("EncryptInit failed");
  // 12 bytes is OpenSSL's default GCM IV length; set it anyway so the format is explicit.
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(gcm_nonce_size), nullptr) != 1)
    return openssl_error("set IV length failed");
  if (EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key32.data(), nonce12.data()) != 1)
    return openssl_error("EncryptInit key failed");

  bytes out(gcm_nonce_size + plaintext.size() + gcm_tag_size);
  std::copy(nonce12.begin(), nonce12.end(), out.begin());
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return openssl_error("AAD update failed");
  std::size_t written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), out.data() + gcm_nonce_size, &len, plaintext.data(),
                          static_cast<int>(plaintext.size())) != 1)
      return openssl_error("EncryptUpdate failed");
    written = static_cast<std::size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out.data() + gcm_nonce_size + written, &len) != 1)
    return openssl_error("EncryptFinal failed");
  written += static_cast<std::size_t>(len);
  if (written != plaintext.size()) return openssl_error("unexpected ciphertext length");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(gcm_tag_size),
                          out.data() + gcm_nonce_size + written) != 1)
    return openssl_error("get tag failed");
  return out;
}

result<bytes> aes256_gcm_seal(byte_view key32, byte_view plaintext, byte_view aad) {
  // A random 96-bit nonce per message: safe for well below 2^32 messages per key
  // (NIST SP 800-38D 8.3), far beyond one journal key's lifetime.
  secure_bytes nonce = random_bytes(gcm_nonce_size);
  return aes256_gcm_seal_with_nonce(key32, nonce.view(), plaintext, aad);
}

result<secure_bytes> aes256_gcm_open(byte_view key32, byte_view sealed, byte_view aad) {
  if (key32.size() != 32) return make_error("crypto.bad_key", "AES-256 key must be 32 bytes");
  if (sealed.size() < gcm_nonce_size + gcm_tag_size)
    return make_error("crypto.bad_input", "sealed data shorter than nonce and tag");
  if (!fits_int(sealed.size()) || !fits_int(aad.size()))
    return make_error("crypto.bad_input", "input too large");

  const auto nonce = sealed.first(gcm_nonce_size);
  const auto ct = sealed.subspan(gcm_nonce_size, sealed.size() - gcm_nonce_size - gcm_tag_size);
  const auto tag = sealed.last(gcm_tag_size);

  cipher_ctx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new failed");
  if (EVP_DecryptInit_ex(ctx.get(), detail::cipher(detail::cipher_alg::aes256_gcm), nullptr, nullptr, nullptr) != 1)
    return openssl_error("DecryptInit failed");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(gcm_nonce_size), nullptr) != 1)
    return openssl_error("set IV length failed");
  if (EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key32.data(), nonce.data()) != 1)
    return openssl_error("DecryptInit key failed");

  secure_bytes out(ct.size());
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return openssl_error("AAD update failed");
  std::size_t written = 0;
  if (!ct.empty()) {
    if (EVP_DecryptUpdate(ctx.get(), out.mutable_view().data(), &len, ct.data(),
                          static_cast<int>(ct.size())) != 1)
      return openssl_error("DecryptUpdate failed");
    written = static_cast<std::size_t>(len);
  }
  // The tag is an input to the final check; OpenSSL wants a non-const pointer.
  std::uint8_t tag_copy[gcm_tag_size];
  std::copy(tag.begin(), tag.end(), tag_copy);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(gcm_tag_size), tag_copy) != 1)
    return openssl_error("set tag failed");
  std::uint8_t final_block[16];
  std::uint8_t* final_out = out.empty() ? final_block : out.mutable_view().data() + written;
  if (EVP_DecryptFinal_ex(ctx.get(), final_out, &len) != 1)
    return make_error("crypto.auth_failed", "GCM authentication failed");
  return out;
}

bytes hmac_sha256(byte_view key, byte_view data) {
  bytes out(32);
  unsigned int len = 0;
  static const std::uint8_t empty = 0;
  // HMAC() with a null key pointer and length 0 is rejected by some builds; pass a dummy.
  const void* k = key.empty() ? &empty : key.data();
  if (!fits_int(key.size()) ||
      HMAC(detail::sha256_md(), k, static_cast<int>(key.size()), data.data(), data.size(), out.data(), &len) ==
          nullptr ||
      len != 32)
    std::abort();  // only fails on allocation failure or a broken OpenSSL install
  return out;
}

bytes sha256(byte_view data) {
  bytes out(32);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, detail::sha256_md(), nullptr) != 1 || len != 32)
    std::abort();
  return out;
}

secure_bytes random_bytes(std::size_t n) {
  secure_bytes out(n);
  if (n == 0) return out;
  if (!fits_int(n) || RAND_bytes(out.mutable_view().data(), static_cast<int>(n)) != 1) std::abort();
  return out;
}

}  // namespace eftd
