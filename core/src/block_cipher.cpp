#include "eftd/core/block_cipher.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <array>
#include <cassert>
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

struct mac_ctx_deleter {
  void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};
using mac_ctx = std::unique_ptr<EVP_MAC_CTX, mac_ctx_deleter>;

error openssl_error(const char* what) {
  return make_error("crypto.openssl", what);
}

bool fits_int(std::size_t n) {
  return n <= static_cast<std::size_t>(INT_MAX);
}

// A TDES key expanded to the 24 bytes OpenSSL's DES-EDE3 wants; wiped when it goes out of
// scope. Single DES becomes K K K: E_K(D_K(E_K(x))) = E_K(x), so no legacy provider is needed.
class tdes_key24 {
 public:
  tdes_key24() = default;
  tdes_key24(const tdes_key24&) = delete;
  tdes_key24& operator=(const tdes_key24&) = delete;
  ~tdes_key24() { secure_wipe(k_.data(), k_.size()); }

  bool set(byte_view key) noexcept {
    switch (key.size()) {
      case 8:
        for (std::size_t i = 0; i < 3; ++i) std::copy(key.begin(), key.end(), k_.begin() + 8 * i);
        return true;
      case 16:
        std::copy(key.begin(), key.end(), k_.begin());
        std::copy(key.begin(), key.begin() + 8, k_.begin() + 16);
        return true;
      case 24:
        std::copy(key.begin(), key.end(), k_.begin());
        return true;
      default:
        return false;
    }
  }
  const std::uint8_t* data() const noexcept { return k_.data(); }

 private:
  std::array<std::uint8_t, 24> k_{};
};

const EVP_CIPHER* aes_cipher(std::size_t key_size, bool cbc) {
  switch (key_size) {
    case 16:
      return detail::cipher(cbc ? detail::cipher_alg::aes128_cbc : detail::cipher_alg::aes128_ecb);
    case 24:
      return detail::cipher(cbc ? detail::cipher_alg::aes192_cbc : detail::cipher_alg::aes192_ecb);
    case 32:
      return detail::cipher(cbc ? detail::cipher_alg::aes256_cbc : detail::cipher_alg::aes256_ecb);
    default:
      return nullptr;
  }
}

// One-shot block operation without padding. `iv` is empty for ECB.
result<secure_bytes> run_cipher(const EVP_CIPHER* cipher, const std::uint8_t* key, cipher_op op, byte_view iv,
                                byte_view data, std::size_t block) {
  if (data.size() % block != 0)
    return make_error("crypto.bad_input", "data is not a whole number of cipher blocks");
  if (!fits_int(data.size())) return make_error("crypto.bad_input", "input too large");
  secure_bytes out(data.size());
  if (data.empty()) return out;

  cipher_ctx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new failed");
  const int enc = op == cipher_op::encrypt ? 1 : 0;
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key, iv.empty() ? nullptr : iv.data(), enc) != 1)
    return openssl_error("CipherInit failed");
  if (EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) return openssl_error("set_padding failed");
  int len = 0;
  if (EVP_CipherUpdate(ctx.get(), out.mutable_view().data(), &len, data.data(),
                       static_cast<int>(data.size())) != 1)
    return openssl_error("CipherUpdate failed");
  std::size_t written = static_cast<std::size_t>(len);
  std::uint8_t tail[32];
  if (EVP_CipherFinal_ex(ctx.get(), tail, &len) != 1) return openssl_error("CipherFinal failed");
  if (len != 0 || written != data.size()) return openssl_error("unexpected cipher output length");
  return out;
}

// EVP_MAC objects are reference counted and safe to share between threads once fetched.
EVP_MAC* cmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);
  return mac;
}

result<secure_bytes> run_cmac(const char* cipher_name, const std::uint8_t* key, std::size_t key_size,
                              byte_view data, std::size_t out_size) {
  EVP_MAC* alg = cmac_algorithm();
  if (alg == nullptr) return openssl_error("CMAC not available");
  mac_ctx ctx{EVP_MAC_CTX_new(alg)};
  if (!ctx) return openssl_error("EVP_MAC_CTX_new failed");
  // OSSL_PARAM wants a mutable char*; the name is only read.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, const_cast<char*>(cipher_name), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key, key_size, params) != 1) return openssl_error("CMAC init failed");
  if (!data.empty() && EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1)
    return openssl_error("CMAC update failed");
  secure_bytes out(out_size);
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out.mutable_view().data(), &len, out.size()) != 1 || len != out_size)
    return openssl_error("CMAC final failed");
  return out;
}

class openssl_random final : public random_source {
 public:
  void fill(std::span<std::uint8_t> out) override {
    if (out.empty()) return;
    if (!fits_int(out.size()) || RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();
  }
};

}  // namespace

result<secure_bytes> tdes_ecb(cipher_op op, byte_view key, byte_view data) {
  tdes_key24 k;
  if (!k.set(key)) return make_error("crypto.bad_key", "TDES key must be 8, 16 or 24 bytes");
  return run_cipher(detail::cipher(detail::cipher_alg::tdes_ecb), k.data(), op, {}, data, des_block_size);
}

result<secure_bytes> tdes_cbc(cipher_op op, byte_view key, byte_view iv, byte_view data) {
  tdes_key24 k;
  if (!k.set(key)) return make_error("crypto.bad_key", "TDES key must be 8, 16 or 24 bytes");
  if (iv.size() != des_block_size) return make_error("crypto.bad_input", "TDES IV must be 8 bytes");
  return run_cipher(detail::cipher(detail::cipher_alg::tdes_cbc), k.data(), op, iv, data, des_block_size);
}

result<secure_bytes> aes_ecb(cipher_op op, byte_view key, byte_view data) {
  const EVP_CIPHER* c = aes_cipher(key.size(), false);
  if (c == nullptr) return make_error("crypto.bad_key", "AES key must be 16, 24 or 32 bytes");
  return run_cipher(c, key.data(), op, {}, data, aes_block_size);
}

result<secure_bytes> aes_cbc(cipher_op op, byte_view key, byte_view iv, byte_view data) {
  const EVP_CIPHER* c = aes_cipher(key.size(), true);
  if (c == nullptr) return make_error("crypto.bad_key", "AES key must be 16, 24 or 32 bytes");
  if (iv.size() != aes_block_size) return make_error("crypto.bad_input", "AES IV must be 16 bytes");
  return run_cipher(c, key.data(), op, iv, data, aes_block_size);
}

result<secure_bytes> tdes_cmac(byte_view key, byte_view data) {
  tdes_key24 k;
  if (!k.set(key)) return make_error("crypto.bad_key", "TDES key must be 8, 16 or 24 bytes");
  return run_cmac("DES-EDE3-CBC", k.data(), 24, data, des_block_size);
}

result<secure_bytes> aes_cmac(byte_view key, byte_view data) {
  const char* name = nullptr;
  switch (key.size()) {
    case 16:
      name = "AES-128-CBC";
      break;
    case 24:
      name = "AES-192-CBC";
      break;
    case 32:
      name = "AES-256-CBC";
      break;
    default:
      return make_error("crypto.bad_key", "AES key must be 16, 24 or 32 bytes");
  }
  return run_cmac(name, key.data(), key.size(), data, aes_block_size);
}

result<bytes> tdes_kcv(byte_view key) {
  const std::array<std::uint8_t, des_block_size> zeros{};
  auto r = tdes_ecb(cipher_op::encrypt, key, zeros);
  if (!r) return r.err();
  return bytes(r->view().begin(), r->view().begin() + 3);
}

result<bytes> aes_cmac_kcv(byte_view key) {
  const std::array<std::uint8_t, aes_block_size> zeros{};
  auto r = aes_cmac(key, zeros);
  if (!r) return r.err();
  return bytes(r->view().begin(), r->view().begin() + 5);
}

void xor_into(std::span<std::uint8_t> out, byte_view in) noexcept {
  assert(out.size() == in.size());
  for (std::size_t i = 0; i < out.size() && i < in.size(); ++i) out[i] ^= in[i];
}

random_source& system_random() {
  static openssl_random source;
  return source;
}

}  // namespace eftd
