#include "eftd/core/mac.hpp"

#include <openssl/crypto.h>

#include <array>

#include "eftd/core/block_cipher.hpp"

namespace eftd {

bytes mac_pad(byte_view data, mac_padding method, std::size_t block) {
  bytes out;
  if (method == mac_padding::method3) {
    // ISO 9797-1 method 3: the length block L carries the bit length of D, right-aligned.
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    out.assign(block, 0);
    for (std::size_t i = 0; i < 8 && i < block; ++i)
      out[block - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
  }
  out.insert(out.end(), data.begin(), data.end());
  if (method == mac_padding::method2) out.push_back(0x80);
  // Method 1 on empty data still yields one block: a MAC over nothing must exist.
  if (out.empty()) out.assign(block, 0);
  while (out.size() % block != 0) out.push_back(0);
  return out;
}

result<bytes> iso9797_mac_alg1(byte_view key, byte_view data, mac_padding padding) {
  const bytes padded = mac_pad(data, padding, des_block_size);
  const std::array<std::uint8_t, des_block_size> iv{};
  auto ct = tdes_cbc(cipher_op::encrypt, key, iv, padded);
  if (!ct) return ct.err();
  const auto last = ct->view().last(des_block_size);
  return bytes(last.begin(), last.end());
}

result<bytes> iso9797_mac_alg3(byte_view key, byte_view data, mac_padding padding) {
  if (key.size() != 16) return make_error("crypto.bad_key", "retail MAC key must be 16 bytes (K || K')");
  const auto k = key.first(8);
  const auto k2 = key.last(8);
  const bytes padded = mac_pad(data, padding, des_block_size);
  const std::array<std::uint8_t, des_block_size> iv{};
  auto ct = tdes_cbc(cipher_op::encrypt, k, iv, padded);
  if (!ct) return ct.err();
  // Output transformation 3: H' = e_K(d_K'(H_q)).
  auto step = tdes_ecb(cipher_op::decrypt, k2, ct->view().last(des_block_size));
  if (!step) return step.err();
  auto out = tdes_ecb(cipher_op::encrypt, k, step->view());
  if (!out) return out.err();
  return bytes(out->view().begin(), out->view().end());
}

result<bytes> cmac_aes(byte_view key, byte_view data) {
  auto r = aes_cmac(key, data);
  if (!r) return r.err();
  return bytes(r->view().begin(), r->view().end());
}

result<bytes> cmac_tdes(byte_view key, byte_view data) {
  auto r = tdes_cmac(key, data);
  if (!r) return r.err();
  return bytes(r->view().begin(), r->view().end());
}

bool mac_equal(byte_view a, byte_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace eftd
