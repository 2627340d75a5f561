#include "eftd/core/emv_crypto.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <string>

#include "eftd/core/block_cipher.hpp"
#include "openssl_algorithms.hpp"

namespace eftd::emv {
namespace {

constexpr std::size_t double_key = 16;

error bad_key(const char* what) {
  return make_error("crypto.bad_key", std::string(what) + " must be 16 bytes");
}
error bad_input(const char* what, std::size_t n) {
  return make_error("emv.bad_input", std::string(what) + " must be " + std::to_string(n) + " bytes");
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Packs an even number of decimal digits two per byte (BCD).
bytes pack_digits(std::string_view digits) {
  bytes out(digits.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(((digits[2 * i] - '0') << 4) | (digits[2 * i + 1] - '0'));
  return out;
}

// MK = TDES(IMK, Y) || TDES(IMK, Y xor FF..FF), odd parity (Book 2 A1.4.1 final step, also
// used by option B on its decimalized Y).
result<secure_bytes> encrypt_y(byte_view issuer_mk, const bytes& y) {
  std::array<std::uint8_t, 16> block{};
  std::copy(y.begin(), y.end(), block.begin());
  for (std::size_t i = 0; i < 8; ++i) block[8 + i] = static_cast<std::uint8_t>(y[i] ^ 0xFF);
  auto out = tdes_ecb(cipher_op::encrypt, issuer_mk, block);
  secure_wipe(block.data(), block.size());
  if (!out) return out.err();
  set_odd_parity(out->mutable_view());
  return out;
}

}  // namespace

bytes sha1(byte_view data) {
  bytes out(20);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, detail::sha1_md(), nullptr) != 1 || len != out.size())
    std::abort();  // only a broken OpenSSL install or allocation failure gets here
  return out;
}

void set_odd_parity(std::span<std::uint8_t> key) noexcept {
  // DES uses the 7 high bits of each byte; the low bit makes the count of ones odd.
  for (auto& b : key) {
    const auto high = static_cast<std::uint8_t>(b & 0xFE);
    b = static_cast<std::uint8_t>(high | ((std::popcount(high) % 2 == 0) ? 1 : 0));
  }
}

result<secure_bytes> derive_icc_mk(byte_view issuer_mk, std::string_view pan, std::string_view psn,
                                   mk_option option) {
  if (issuer_mk.size() != double_key) return bad_key("issuer master key");
  if (pan.size() < 12 || pan.size() > 19 || !all_digits(pan))
    return make_error("emv.bad_pan", "PAN must be 12 to 19 digits");
  if (psn.size() > 2 || !all_digits(psn)) return make_error("emv.bad_pan", "PSN must be 0 to 2 digits");

  // A missing PSN counts as 00; a one-digit PSN is left-padded to two.
  std::string digits(pan);
  digits.append(2 - psn.size(), '0');
  digits += psn;

  bytes y;
  if (option == mk_option::a || pan.size() <= 16) {
    // Option A: the rightmost 16 digits of PAN || PSN, left-padded with zeros when shorter.
    std::string y16 = digits.size() >= 16 ? digits.substr(digits.size() - 16)
                                          : std::string(16 - digits.size(), '0') + digits;
    y = pack_digits(y16);
    secure_wipe(y16.data(), y16.size());
  } else {
    // Option B: SHA-1 over the BCD of PAN || PSN (left-padded to even length), decimalized:
    // first the nibbles 0-9 in order, then if fewer than 16 the nibbles A-F as 0-5.
    if (digits.size() % 2 != 0) digits.insert(digits.begin(), '0');
    bytes packed = pack_digits(digits);
    bytes h = sha1(packed);
    secure_wipe(packed.data(), packed.size());
    std::string dec;
    for (int pass = 0; pass < 2 && dec.size() < 16; ++pass) {
      for (std::size_t i = 0; i < h.size() * 2 && dec.size() < 16; ++i) {
        const int nib = (i % 2 == 0) ? (h[i / 2] >> 4) : (h[i / 2] & 0x0F);
        if (pass == 0 && nib < 10) dec.push_back(static_cast<char>('0' + nib));
        if (pass == 1 && nib >= 10) dec.push_back(static_cast<char>('0' + nib - 10));
      }
    }
    y = pack_digits(dec);
    secure_wipe(h.data(), h.size());
    secure_wipe(dec.data(), dec.size());
  }
  secure_wipe(digits.data(), digits.size());
  auto mk = encrypt_y(issuer_mk, y);
  secure_wipe(y.data(), y.size());
  return mk;
}

result<secure_bytes> common_session_key(byte_view icc_mk, byte_view r) {
  if (icc_mk.size() != double_key) return bad_key("ICC master key");
  if (r.size() != 8) return bad_input("R", 8);
  std::array<std::uint8_t, 16> block{};
  std::copy(r.begin(), r.end(), block.begin());
  std::copy(r.begin(), r.end(), block.begin() + 8);
  block[2] = 0xF0;
  block[8 + 2] = 0x0F;
  auto out = tdes_ecb(cipher_op::encrypt, icc_mk, block);
  if (!out) return out.err();
  set_odd_parity(out->mutable_view());
  return out;
}

result<secure_bytes> visa_sm_session_key(byte_view icc_mk, std::uint16_t atc) {
  if (icc_mk.size() != double_key) return bad_key("ICC master key");
  secure_bytes sk(icc_mk);
  auto k = sk.mutable_view();
  const auto hi = static_cast<std::uint8_t>(atc >> 8);
  const auto lo = static_cast<std::uint8_t>(atc & 0xFF);
  k[6] ^= hi;
  k[7] ^= lo;
  k[14] ^= static_cast<std::uint8_t>(~hi);
  k[15] ^= static_cast<std::uint8_t>(~lo);
  set_odd_parity(k);
  return sk;
}

result<bytes> application_cryptogram(byte_view key, byte_view data, mac_padding padding) {
  if (key.size() != double_key) return bad_key("session key");
  return iso9797_mac_alg3(key, data, padding);
}

result<bytes> arpc_method1(byte_view key, byte_view arqc, byte_view arc) {
  if (key.size() != double_key) return bad_key("ARPC key");
  if (arqc.size() != 8) return bad_input("ARQC", 8);
  if (arc.size() != 2) return bad_input("ARC", 2);
  std::array<std::uint8_t, 8> x{};
  std::copy(arqc.begin(), arqc.end(), x.begin());
  x[0] ^= arc[0];
  x[1] ^= arc[1];
  auto out = tdes_ecb(cipher_op::encrypt, key, x);
  if (!out) return out.err();
  return bytes(out->view().begin(), out->view().end());
}

result<bytes> arpc_method2(byte_view key, byte_view arqc, byte_view csu, byte_view prop_auth) {
  if (key.size() != double_key) return bad_key("ARPC key");
  if (arqc.size() != 8) return bad_input("ARQC", 8);
  if (csu.size() != 4) return bad_input("CSU", 4);
  if (prop_auth.size() > 8)
    return make_error("emv.bad_input", "proprietary authentication data is at most 8 bytes");
  bytes data(arqc.begin(), arqc.end());
  data.insert(data.end(), csu.begin(), csu.end());
  data.insert(data.end(), prop_auth.begin(), prop_auth.end());
  auto mac = iso9797_mac_alg3(key, data, mac_padding::method2);
  if (!mac) return mac.err();
  mac->resize(4);
  return mac;
}

result<bytes> script_mac(byte_view session_key, byte_view data) {
  if (session_key.size() != double_key) return bad_key("script session key");
  return iso9797_mac_alg3(session_key, data, mac_padding::method2);
}

namespace {
// The cryptogram versions as data. Sources: EMV Book 2 A1.3 and the scheme CVNs as pyemv models
// them (Visa CVN10 zero-pads and uses the ICC MK directly; M/Chip CVN16 puts the UN in R and
// answers with the ICC MK, CVN20 uses R = ATC and answers with the session key).
constexpr std::array<cvn_spec, 4> cvn_table{{
    {cvn::visa10, 10, session_key_kind::icc_mk, mac_padding::method1, arpc_kind::method1_icc_mk},
    {cvn::visa18, 18, session_key_kind::csk_atc, mac_padding::method2, arpc_kind::method2_sk},
    {cvn::mc16, 16, session_key_kind::csk_atc_un, mac_padding::method2, arpc_kind::method1_icc_mk},
    {cvn::mc20, 20, session_key_kind::csk_atc, mac_padding::method2, arpc_kind::method1_sk},
}};
}  // namespace

const cvn_spec& spec(cvn version) {
  for (const auto& s : cvn_table)
    if (s.version == version) return s;
  std::abort();  // every enumerator has a row; a new one without a row is a programming error
}

result<secure_bytes> ac_session_key(cvn version, byte_view icc_mk, const ac_inputs& in) {
  if (icc_mk.size() != double_key) return bad_key("ICC master key");
  const auto& s = spec(version);
  std::array<std::uint8_t, 8> r{};
  r[0] = static_cast<std::uint8_t>(in.atc >> 8);
  r[1] = static_cast<std::uint8_t>(in.atc & 0xFF);
  switch (s.session_key) {
    case session_key_kind::icc_mk:
      return secure_bytes(icc_mk);
    case session_key_kind::csk_atc:
      return common_session_key(icc_mk, r);
    case session_key_kind::csk_atc_un:
      if (in.un.size() != 4) return bad_input("unpredictable number", 4);
      std::copy(in.un.begin(), in.un.end(), r.begin() + 4);
      return common_session_key(icc_mk, r);
  }
  std::abort();
}

result<bytes> generate_ac(cvn version, byte_view icc_mk, const ac_inputs& in) {
  auto sk = ac_session_key(version, icc_mk, in);
  if (!sk) return sk.err();
  bytes data = in.data;
  data.insert(data.end(), in.iad_or_cvr.begin(), in.iad_or_cvr.end());
  return application_cryptogram(sk->view(), data, spec(version).padding);
}

result<bytes> generate_arpc(cvn version, byte_view icc_mk, const ac_inputs& in, byte_view arqc,
                            byte_view arc_or_csu) {
  const auto& s = spec(version);
  if (s.arpc == arpc_kind::method1_icc_mk) {
    if (icc_mk.size() != double_key) return bad_key("ICC master key");
    return arpc_method1(icc_mk, arqc, arc_or_csu);
  }
  auto sk = ac_session_key(version, icc_mk, in);
  if (!sk) return sk.err();
  if (s.arpc == arpc_kind::method1_sk) return arpc_method1(sk->view(), arqc, arc_or_csu);
  return arpc_method2(sk->view(), arqc, arc_or_csu);
}

std::optional<cvn> cvn_from_iad(byte_view iad) {
  // Visa: the first byte is the length of the Visa discretionary data that follows (06 in the
  // 7- or 8-byte formats 0/1/3, 1F in the 32-byte format 2); the CVN is byte 2.
  if (iad.size() >= 3 &&
      ((iad[0] == 0x06 && iad.size() >= 7 && iad.size() <= 8) || (iad[0] == 0x1F && iad.size() == 32))) {
    if (iad[2] == 0x0A) return cvn::visa10;
    if (iad[2] == 0x12) return cvn::visa18;
    return std::nullopt;
  }
  // M/Chip: byte 0 is the derivation key index, byte 1 the CVN (hex 10 = CVN 16, 14 = CVN 20);
  // the IAD is 18 bytes or more (CVR at bytes 2..7, then DAC/ICC DN and counters).
  if (iad.size() >= 18) {
    if (iad[1] == 0x10) return cvn::mc16;
    if (iad[1] == 0x14) return cvn::mc20;
  }
  return std::nullopt;
}

}  // namespace eftd::emv
