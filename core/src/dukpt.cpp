#include "eftd/core/dukpt.hpp"

#include <array>
#include <bit>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/mac.hpp"

namespace eftd::tdes_dukpt {

namespace {

// Mask for the non-reversible key generation process and the IPEK's right half (X9.24-1 A.6).
constexpr std::array<std::uint8_t, key_size> key_mask = {0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
                                                         0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0};

// Variants: one byte of each half of the future key flipped, a different byte per usage.
constexpr std::size_t pin_variant_byte = 7;
constexpr std::size_t mac_request_variant_byte = 6;
constexpr std::size_t data_request_variant_byte = 5;
constexpr std::size_t mac_response_variant_byte = 4;
constexpr std::size_t data_response_variant_byte = 3;

secure_bytes variant(byte_view key, std::size_t byte_index) {
  secure_bytes v{key};
  v.mutable_view()[byte_index] ^= 0xFF;
  v.mutable_view()[byte_index + 8] ^= 0xFF;
  return v;
}

// Data keys add a one-way step so that a data key leaking does not reveal the MAC or PIN
// variants of the same future key: each half is encrypted under the whole variant key, which
// is exactly ECB over the 16 bytes.
result<secure_bytes> data_key(byte_view key, std::size_t byte_index) {
  const secure_bytes v = variant(key, byte_index);
  return tdes_ecb(cipher_op::encrypt, v.view(), v.view());
}

// One half of the non-reversible key generation process: DES under the key's left half of
// (data XOR right half), XOR right half again.
result<secure_bytes> nrkgp_half(byte_view key, byte_view data) {
  std::array<std::uint8_t, 8> block{};
  std::copy(data.begin(), data.end(), block.begin());
  xor_into(block, key.last(8));
  auto enc = tdes_ecb(cipher_op::encrypt, key.first(8), block);
  secure_wipe(block.data(), block.size());
  if (!enc) return enc.err();
  xor_into(enc->mutable_view(), key.last(8));
  return enc;
}

result<secure_bytes> nrkgp(byte_view key, byte_view data) {
  auto right = nrkgp_half(key, data);
  if (!right) return right.err();
  secure_bytes masked{key};
  xor_into(masked.mutable_view(), key_mask);
  auto left = nrkgp_half(masked.view(), data);
  if (!left) return left.err();
  secure_bytes out(key_size);
  std::copy(left->view().begin(), left->view().end(), out.mutable_view().begin());
  std::copy(right->view().begin(), right->view().end(), out.mutable_view().begin() + 8);
  return out;
}

}  // namespace

result<std::uint32_t> counter(byte_view ksn) {
  if (ksn.size() != ksn_size) return make_error("dukpt.bad_ksn", "TDES DUKPT KSN must be 10 bytes");
  const std::uint32_t c =
      (static_cast<std::uint32_t>(ksn[7] & 0x1F) << 16) | (static_cast<std::uint32_t>(ksn[8]) << 8) | ksn[9];
  if (c == 0) return make_error("dukpt.bad_counter", "KSN transaction counter is zero");
  if (std::popcount(c) > max_counter_one_bits)
    return make_error("dukpt.bad_counter", "KSN transaction counter has more than 10 one-bits");
  return c;
}

result<secure_bytes> ipek(byte_view bdk, byte_view ksn) {
  if (bdk.size() != key_size) return make_error("dukpt.bad_key", "TDES DUKPT BDK must be 16 bytes");
  if (ksn.size() != ksn_size) return make_error("dukpt.bad_ksn", "TDES DUKPT KSN must be 10 bytes");
  // The initial KSN: leftmost 8 bytes with the counter's top 5 bits cleared.
  std::array<std::uint8_t, 8> iksn{};
  std::copy(ksn.begin(), ksn.begin() + 8, iksn.begin());
  iksn[7] &= 0xE0;
  auto left = tdes_ecb(cipher_op::encrypt, bdk, iksn);
  if (!left) return left.err();
  secure_bytes masked{bdk};
  xor_into(masked.mutable_view(), key_mask);
  auto right = tdes_ecb(cipher_op::encrypt, masked.view(), iksn);
  if (!right) return right.err();
  secure_bytes out(key_size);
  std::copy(left->view().begin(), left->view().end(), out.mutable_view().begin());
  std::copy(right->view().begin(), right->view().end(), out.mutable_view().begin() + 8);
  return out;
}

result<keys> derive(byte_view ipek, byte_view ksn) {
  if (ipek.size() != key_size) return make_error("dukpt.bad_key", "TDES DUKPT IPEK must be 16 bytes");
  auto c = counter(ksn);
  if (!c) return c.err();

  // The KSN register: the rightmost 64 bits of the KSN with the counter cleared; counter bits
  // are set into it one at a time from the top, and every set bit is one NRKGP step.
  std::uint64_t reg = 0;
  for (std::size_t i = 2; i < ksn_size; ++i) reg = (reg << 8) | ksn[i];
  reg &= ~static_cast<std::uint64_t>(counter_mask);

  secure_bytes key{ipek};
  for (std::uint32_t bit = 1u << 20; bit != 0; bit >>= 1) {
    if ((*c & bit) == 0) continue;
    reg |= bit;
    std::array<std::uint8_t, 8> data{};
    for (std::size_t i = 0; i < 8; ++i) data[i] = static_cast<std::uint8_t>(reg >> (56 - 8 * i));
    auto next = nrkgp(key.view(), data);
    if (!next) return next.err();
    key = std::move(*next);
  }

  keys k;
  k.pin = variant(key.view(), pin_variant_byte);
  k.mac_request = variant(key.view(), mac_request_variant_byte);
  k.mac_response = variant(key.view(), mac_response_variant_byte);
  auto dreq = data_key(key.view(), data_request_variant_byte);
  if (!dreq) return dreq.err();
  auto dresp = data_key(key.view(), data_response_variant_byte);
  if (!dresp) return dresp.err();
  k.data_request = std::move(*dreq);
  k.data_response = std::move(*dresp);
  k.transaction = std::move(key);
  return k;
}

result<keys> derive_from_bdk(byte_view bdk, byte_view ksn) {
  auto ik = ipek(bdk, ksn);
  if (!ik) return ik.err();
  return derive(ik->view(), ksn);
}

result<bytes> encrypt_data(byte_view data_key, byte_view plaintext) {
  if (data_key.size() != key_size) return make_error("dukpt.bad_key", "TDES DUKPT data key must be 16 bytes");
  secure_bytes padded((plaintext.size() + 7) / 8 * 8);
  std::copy(plaintext.begin(), plaintext.end(), padded.mutable_view().begin());
  const std::array<std::uint8_t, 8> iv{};
  auto ct = tdes_cbc(cipher_op::encrypt, data_key, iv, padded.view());
  if (!ct) return ct.err();
  return bytes(ct->view().begin(), ct->view().end());
}

result<secure_bytes> decrypt_data(byte_view data_key, byte_view ciphertext) {
  if (data_key.size() != key_size) return make_error("dukpt.bad_key", "TDES DUKPT data key must be 16 bytes");
  if (ciphertext.size() % 8 != 0)
    return make_error("dukpt.bad_input", "TDES DUKPT ciphertext must be a multiple of 8 bytes");
  const std::array<std::uint8_t, 8> iv{};
  return tdes_cbc(cipher_op::decrypt, data_key, iv, ciphertext);
}

result<bytes> mac(byte_view mac_key, byte_view message) {
  if (mac_key.size() != key_size) return make_error("dukpt.bad_key", "TDES DUKPT MAC key must be 16 bytes");
  auto m = iso9797_mac_alg3(mac_key, message, mac_padding::method1);
  if (!m) return m.err();
  m->resize(4);
  return m;
}

}  // namespace eftd::tdes_dukpt

namespace eftd::aes_dukpt {

namespace {

constexpr std::uint16_t usage_initial_key = 0x8001;
constexpr std::uint16_t usage_derivation = 0x8000;

struct type_info {
  std::uint16_t algorithm;
  std::uint16_t bits;
  std::size_t min_derivation_key;  // X9.24-3: a derived key is never stronger than its parent
  bool aes;
};

type_info info(key_type t) noexcept {
  switch (t) {
    case key_type::tdes2:
      return {0x0000, 128, 16, false};
    case key_type::tdes3:
      return {0x0001, 192, 16, false};
    case key_type::aes128:
      return {0x0002, 128, 16, true};
    case key_type::aes192:
      return {0x0003, 192, 24, true};
    case key_type::aes256:
      return {0x0004, 256, 32, true};
    case key_type::hmac128:
      return {0x0005, 128, 16, false};
    case key_type::hmac192:
      return {0x0005, 192, 24, false};
    case key_type::hmac256:
      return {0x0005, 256, 32, false};
  }
  return {0x0002, 128, 16, true};
}

// One X9.24-3 derivation: as many AES-ECB blocks of the 16-byte derivation data as the key
// needs (the block counter in byte 1 counts them), truncated to the key length.
result<secure_bytes> derive_key(byte_view derivation_key, std::uint16_t usage, key_type type,
                                byte_view data8) {
  const type_info ti = info(type);
  const std::size_t out_len = ti.bits / 8;
  secure_bytes out(out_len);
  std::array<std::uint8_t, 16> dd{};
  dd[0] = 0x01;  // version
  dd[2] = static_cast<std::uint8_t>(usage >> 8);
  dd[3] = static_cast<std::uint8_t>(usage);
  dd[4] = static_cast<std::uint8_t>(ti.algorithm >> 8);
  dd[5] = static_cast<std::uint8_t>(ti.algorithm);
  dd[6] = static_cast<std::uint8_t>(ti.bits >> 8);
  dd[7] = static_cast<std::uint8_t>(ti.bits);
  std::copy(data8.begin(), data8.end(), dd.begin() + 8);
  for (std::size_t done = 0, block = 1; done < out_len; ++block) {
    dd[1] = static_cast<std::uint8_t>(block);
    auto b = aes_ecb(cipher_op::encrypt, derivation_key, dd);
    if (!b) return b.err();
    const std::size_t n = std::min<std::size_t>(16, out_len - done);
    std::copy(b->view().begin(), b->view().begin() + static_cast<std::ptrdiff_t>(n),
              out.mutable_view().begin() + static_cast<std::ptrdiff_t>(done));
    done += n;
  }
  return out;
}

// Derivation data for every key below the initial key: the rightmost 4 bytes of the initial
// key ID, then a counter.
std::array<std::uint8_t, 8> counter_data(byte_view ksn, std::uint32_t c) {
  std::array<std::uint8_t, 8> d{};
  std::copy(ksn.begin() + 4, ksn.begin() + 8, d.begin());
  for (std::size_t i = 0; i < 4; ++i) d[4 + i] = static_cast<std::uint8_t>(c >> (24 - 8 * i));
  return d;
}

}  // namespace

std::size_t key_length(key_type type) noexcept {
  return info(type).bits / 8;
}

result<key_type> aes_type_for_length(std::size_t n) {
  switch (n) {
    case 16:
      return key_type::aes128;
    case 24:
      return key_type::aes192;
    case 32:
      return key_type::aes256;
    default:
      return make_error("dukpt.bad_key", "AES DUKPT key must be 16, 24 or 32 bytes");
  }
}

result<std::uint32_t> counter(byte_view ksn) {
  if (ksn.size() != ksn_size) return make_error("dukpt.bad_ksn", "AES DUKPT KSN must be 12 bytes");
  std::uint32_t c = 0;
  for (std::size_t i = 8; i < ksn_size; ++i) c = (c << 8) | ksn[i];
  if (c == 0) return make_error("dukpt.bad_counter", "KSN transaction counter is zero");
  if (std::popcount(c) > max_counter_one_bits)
    return make_error("dukpt.bad_counter", "KSN transaction counter has more than 16 one-bits");
  return c;
}

result<secure_bytes> initial_key(byte_view bdk, byte_view initial_key_id, key_type type) {
  auto bdk_type = aes_type_for_length(bdk.size());
  if (!bdk_type) return make_error("dukpt.bad_key", "AES DUKPT BDK must be 16, 24 or 32 bytes");
  if (initial_key_id.size() != initial_key_id_size)
    return make_error("dukpt.bad_ksn", "AES DUKPT initial key ID must be 8 bytes");
  // The initial key derives every later key with AES, so it must be an AES key.
  if (!info(type).aes || key_length(type) > bdk.size())
    return make_error("dukpt.bad_key_type", "initial key must be an AES key no longer than the BDK");
  return derive_key(bdk, usage_initial_key, type, initial_key_id);
}

result<secure_bytes> transaction_key(byte_view initial_key, byte_view ksn) {
  auto ik_type = aes_type_for_length(initial_key.size());
  if (!ik_type) return ik_type.err();
  auto c = counter(ksn);
  if (!c) return c.err();
  secure_bytes key{initial_key};
  std::uint32_t working = 0;
  // One derivation per set counter bit, from the top: the same path the pad's key register
  // tree took, so the host reaches the key in at most 16 steps.
  for (std::uint32_t bit = 0x80000000u; bit != 0; bit >>= 1) {
    if ((*c & bit) == 0) continue;
    working |= bit;
    const auto data = counter_data(ksn, working);
    auto next = derive_key(key.view(), usage_derivation, *ik_type, data);
    if (!next) return next.err();
    key = std::move(*next);
  }
  return key;
}

result<secure_bytes> working_key_from_transaction_key(byte_view txn_key, byte_view ksn, key_usage usage,
                                                      key_type type) {
  if (!aes_type_for_length(txn_key.size()))
    return make_error("dukpt.bad_key", "AES DUKPT derivation key must be 16, 24 or 32 bytes");
  auto c = counter(ksn);
  if (!c) return c.err();
  if (txn_key.size() < info(type).min_derivation_key)
    return make_error("dukpt.bad_key_type", "working key type is stronger than the derivation key");
  const auto data = counter_data(ksn, *c);
  return derive_key(txn_key, static_cast<std::uint16_t>(usage), type, data);
}

result<secure_bytes> working_key(byte_view initial_key, byte_view ksn, key_usage usage, key_type type) {
  auto txn = transaction_key(initial_key, ksn);
  if (!txn) return txn.err();
  return working_key_from_transaction_key(txn->view(), ksn, usage, type);
}

result<bytes> encrypt_data(byte_view data_key, byte_view plaintext) {
  if (!aes_type_for_length(data_key.size()))
    return make_error("dukpt.bad_key", "AES data key must be 16, 24 or 32 bytes");
  secure_bytes padded((plaintext.size() + 15) / 16 * 16);
  std::copy(plaintext.begin(), plaintext.end(), padded.mutable_view().begin());
  const std::array<std::uint8_t, 16> iv{};
  auto ct = aes_cbc(cipher_op::encrypt, data_key, iv, padded.view());
  if (!ct) return ct.err();
  return bytes(ct->view().begin(), ct->view().end());
}

result<secure_bytes> decrypt_data(byte_view data_key, byte_view ciphertext) {
  if (!aes_type_for_length(data_key.size()))
    return make_error("dukpt.bad_key", "AES data key must be 16, 24 or 32 bytes");
  if (ciphertext.size() % 16 != 0)
    return make_error("dukpt.bad_input", "AES DUKPT ciphertext must be a multiple of 16 bytes");
  const std::array<std::uint8_t, 16> iv{};
  return aes_cbc(cipher_op::decrypt, data_key, iv, ciphertext);
}

}  // namespace eftd::aes_dukpt
