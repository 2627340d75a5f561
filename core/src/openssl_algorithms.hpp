// The OpenSSL algorithms core/ uses, fetched once. OpenSSL 3 treats a legacy object such as
// EVP_aes_128_ecb() as a name to look up in its provider store again at every init (name
// comparisons, property queries): under load that was a visible share of eftd's and the load
// generator's CPU, several DUKPT derivations and decryptions per sale. A fetched algorithm is
// reference counted and may be shared by every thread; these live as long as the process.
// Internal to core/src: no public header exposes OpenSSL types.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>

namespace eftd::detail {

enum class cipher_alg : std::size_t {
  aes128_ecb,
  aes192_ecb,
  aes256_ecb,
  aes128_cbc,
  aes192_cbc,
  aes256_cbc,
  tdes_ecb,
  tdes_cbc,
  aes256_gcm,
  count
};

// The fetched cipher; the legacy object when the provider cannot give it (then OpenSSL fetches
// at each use as before, or fails the init with its own error).
inline const EVP_CIPHER* cipher(cipher_alg a) {
  static const auto table = [] {
    constexpr std::array<const char*, static_cast<std::size_t>(cipher_alg::count)> names{
        "AES-128-ECB", "AES-192-ECB", "AES-256-ECB", "AES-128-CBC",  "AES-192-CBC",
        "AES-256-CBC", "DES-EDE3-ECB", "DES-EDE3-CBC", "AES-256-GCM"};
    const std::array<const EVP_CIPHER*, static_cast<std::size_t>(cipher_alg::count)> legacy{
        EVP_aes_128_ecb(), EVP_aes_192_ecb(),    EVP_aes_256_ecb(),    EVP_aes_128_cbc(), EVP_aes_192_cbc(),
        EVP_aes_256_cbc(), EVP_des_ede3_ecb(), EVP_des_ede3_cbc(), EVP_aes_256_gcm()};
    std::array<const EVP_CIPHER*, static_cast<std::size_t>(cipher_alg::count)> t{};
    for (std::size_t i = 0; i < t.size(); ++i) {
      const EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, names[i], nullptr);
      t[i] = c != nullptr ? c : legacy[i];
    }
    return t;
  }();
  return table[static_cast<std::size_t>(a)];
}

inline const EVP_MD* sha1_md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    return m != nullptr ? m : EVP_sha1();
  }();
  return md;
}

inline const EVP_MD* sha256_md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m != nullptr ? m : EVP_sha256();
  }();
  return md;
}

}  // namespace eftd::detail
