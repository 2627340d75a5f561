#include "eftd/core/emv_oda.hpp"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "eftd/core/emv_crypto.hpp"

namespace eftd::emv {
namespace {

// Layout constants of EMV Book 2 tables 6, 7, 14 and 17: every recovered block is
// 6A | fields ... | hash (20) | BC.
constexpr std::uint8_t header_byte = 0x6A;
constexpr std::uint8_t trailer_byte = 0xBC;
constexpr std::size_t hash_size = 20;
constexpr std::uint8_t algo_sha1 = 0x01;
constexpr std::uint8_t algo_rsa = 0x01;
// Issuer certificate: bytes 0..14 are header, format, issuer id (4), expiry (2), serial (3),
// hash alg, PK alg, PK length, exponent length; then the key, then hash and trailer: 36 bytes
// of overhead.
constexpr std::size_t issuer_fixed = 15;
constexpr std::size_t issuer_overhead = issuer_fixed + hash_size + 1;
// ICC certificate: header, format, PAN (10), expiry (2), serial (3), hash alg, PK alg, PK
// length, exponent length = 21 bytes before the key; 42 of overhead.
constexpr std::size_t icc_fixed = 21;
constexpr std::size_t icc_overhead = icc_fixed + hash_size + 1;

error fail(const char* code, std::string message) {
  return make_error(code, std::move(message));
}

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct pkey_ctx_deleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct bn_deleter {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct param_bld_deleter {
  void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
};
struct param_deleter {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};

// An OpenSSL RSA public key from big-endian n and e (EVP_PKEY_fromdata).
result<std::unique_ptr<EVP_PKEY, pkey_deleter>> make_public_key(const rsa_key& key) {
  if (key.modulus.empty() || key.exponent.empty() || key.modulus.size() > 512 || key.exponent.size() > 8)
    return fail("emv.oda_bad_key", "RSA modulus or exponent missing or oversized");
  std::unique_ptr<BIGNUM, bn_deleter> n(
      BN_bin2bn(key.modulus.data(), static_cast<int>(key.modulus.size()), nullptr));
  std::unique_ptr<BIGNUM, bn_deleter> e(
      BN_bin2bn(key.exponent.data(), static_cast<int>(key.exponent.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, param_bld_deleter> bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld) return fail("crypto.openssl", "allocation failed");
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    return fail("crypto.openssl", "OSSL_PARAM_BLD_push_BN failed");
  std::unique_ptr<OSSL_PARAM, param_deleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_deleter> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!params || !ctx) return fail("crypto.openssl", "allocation failed");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || raw == nullptr)
    return fail("emv.oda_bad_key", "OpenSSL rejected the RSA public key");
  return std::unique_ptr<EVP_PKEY, pkey_deleter>(raw);
}

// CA public keys recur on every card of a scheme, and an issuer's key on every card of that
// issuer: their OpenSSL key objects are built once and kept (with the Montgomery form OpenSSL
// computes at a key's first use), which was most of the cost of a recovery. ICC keys belong to
// one card and are built for each use. A few hundred keys at most; the least recently used
// goes when full. EVP_PKEY may be shared between threads for public-key operations.
class public_key_cache {
 public:
  static constexpr std::size_t capacity = 256;

  result<std::shared_ptr<EVP_PKEY>> get(const rsa_key& key) {
    {
      std::lock_guard lk(mu_);
      if (auto kept = take(key)) return kept;
    }
    // Built outside the lock; another thread may have kept the same key meanwhile.
    auto made = make_public_key(key);
    if (!made) return made.err();
    std::shared_ptr<EVP_PKEY> pkey(made->release(), pkey_deleter{});
    std::lock_guard lk(mu_);
    if (auto kept = take(key)) return kept;
    keys_.push_front(entry{key.modulus, key.exponent, pkey});
    if (keys_.size() > capacity) keys_.pop_back();
    return pkey;
  }

 private:
  struct entry {
    bytes modulus;
    bytes exponent;
    std::shared_ptr<EVP_PKEY> pkey;
  };

  // The kept key, moved to the front; null when not kept. Under mu_.
  std::shared_ptr<EVP_PKEY> take(const rsa_key& key) {
    for (auto it = keys_.begin(); it != keys_.end(); ++it) {
      if (it->modulus == key.modulus && it->exponent == key.exponent) {
        if (it != keys_.begin()) keys_.splice(keys_.begin(), keys_, it);
        return keys_.front().pkey;
      }
    }
    return nullptr;
  }
  std::mutex mu_;
  std::list<entry> keys_;  // most recently used first
};

public_key_cache& known_keys() {
  static public_key_cache cache;
  return cache;
}

// s^e mod n with an OpenSSL key: the raw public operation that recovers an EMV (ISO 9796-2)
// signature. The result has the modulus length.
result<bytes> public_operation(EVP_PKEY* pkey, std::size_t modulus_size, byte_view signature) {
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_deleter> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx) return fail("crypto.openssl", "EVP_PKEY_CTX_new_from_pkey failed");
  if (EVP_PKEY_encrypt_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1)
    return fail("crypto.openssl", "RSA public operation setup failed");
  bytes out(modulus_size);
  std::size_t out_len = out.size();
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, signature.data(), signature.size()) != 1)
    return fail("emv.oda_bad_signature", "RSA public operation failed (signature not below the modulus?)");
  if (out_len != out.size()) {
    // Keep a fixed width: left-pad if OpenSSL ever returns fewer bytes.
    bytes padded(out.size() - out_len, 0);
    padded.insert(padded.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(out_len));
    return padded;
  }
  return out;
}

bool is_bcd(std::uint8_t b) {
  return (b >> 4) <= 9 && (b & 0x0F) <= 9;
}
int bcd(std::uint8_t b) {
  return (b >> 4) * 10 + (b & 0x0F);
}

struct yymm {
  int year;  // four digits
  int month;
};

// EMV Book 4: YY below 50 is 20YY, otherwise 19YY.
int full_year(int yy) {
  return yy < 50 ? 2000 + yy : 1900 + yy;
}

std::optional<yymm> parse_today(std::string_view today) {
  if (today.size() != 6 ||
      !std::all_of(today.begin(), today.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const int yy = (today[0] - '0') * 10 + (today[1] - '0');
  const int mm = (today[2] - '0') * 10 + (today[3] - '0');
  const int dd = (today[4] - '0') * 10 + (today[5] - '0');
  if (mm < 1 || mm > 12 || dd < 1 || dd > 31) return std::nullopt;
  return yymm{full_year(yy), mm};
}

// A certificate dated MMYY is valid through the last day of that month; an unreadable date
// cannot be shown valid, so it counts as expired.
bool cert_expired(const std::uint8_t* mmyy, const yymm& today) {
  if (!is_bcd(mmyy[0]) || !is_bcd(mmyy[1])) return true;
  const int mm = bcd(mmyy[0]);
  if (mm < 1 || mm > 12) return true;
  const int year = full_year(bcd(mmyy[1]));
  return year < today.year || (year == today.year && mm < today.month);
}

// The digits of a BCD field right-padded with F (issuer identifier, PAN in the ICC
// certificate); nullopt if a non-digit nibble comes before the padding or after it.
std::optional<std::string> padded_digits(byte_view field) {
  std::string out;
  bool padding = false;
  for (const auto b : field) {
    for (const int nib : {b >> 4, b & 0x0F}) {
      if (nib == 0x0F) {
        padding = true;
      } else if (nib <= 9 && !padding) {
        out.push_back(static_cast<char>('0' + nib));
      } else {
        return std::nullopt;
      }
    }
  }
  return out;
}

// Recovers a signed block and checks the frame every EMV signature shares: length, header,
// trailer, format byte and hash algorithm at byte `hash_alg_at`.
result<bytes> recover_block(const rsa_key& key, key_use use, byte_view signature, std::uint8_t format,
                            std::size_t min_size, std::size_t hash_alg_at) {
  auto rec = rsa_recover(key, signature, use);
  if (!rec) return rec.err();
  bytes& r = *rec;
  if (r.size() < min_size) return fail("emv.oda_bad_length", "key too short for this signature format");
  if (r.back() != trailer_byte) return fail("emv.oda_bad_trailer", "recovered data does not end with BC");
  if (r[0] != header_byte) return fail("emv.oda_bad_header", "recovered data does not start with 6A");
  if (r[1] != format)
    return fail("emv.oda_bad_format", fmt::format("format {:02X}, expected {:02X}", r[1], format));
  if (r[hash_alg_at] != algo_sha1) return fail("emv.oda_bad_algorithm", "hash algorithm is not SHA-1");
  return rec;
}

// SHA-1 over recovered[1 .. N-22] followed by `extra` parts, compared with the hash field.
bool hash_matches(const bytes& recovered, std::initializer_list<byte_view> extra) {
  const std::size_t n = recovered.size();
  bytes input(recovered.begin() + 1, recovered.begin() + static_cast<std::ptrdiff_t>(n - hash_size - 1));
  for (const auto& part : extra) input.insert(input.end(), part.begin(), part.end());
  const bytes h = sha1(input);
  return std::equal(h.begin(), h.end(), recovered.begin() + static_cast<std::ptrdiff_t>(n - hash_size - 1));
}

// Key from a certificate's key field plus remainder. The certificate carries the key length;
// a key longer than the field continues in the remainder, which must then be exactly the
// missing part. A shorter key is left-aligned in the field, padded with BB.
result<bytes> assemble_key(byte_view field, std::size_t key_len, byte_view remainder) {
  if (key_len == 0) return fail("emv.oda_bad_key", "certificate gives a zero key length");
  bytes key;
  if (key_len <= field.size()) {
    if (!remainder.empty())
      return fail("emv.oda_bad_remainder", "remainder given but the key fits its certificate");
    key.assign(field.begin(), field.begin() + static_cast<std::ptrdiff_t>(key_len));
    return key;
  }
  if (remainder.empty())
    return fail("emv.oda_missing_remainder", "the key needs a public key remainder and none was given");
  if (remainder.size() != key_len - field.size())
    return fail("emv.oda_bad_remainder", "public key remainder has the wrong length");
  key.assign(field.begin(), field.end());
  key.insert(key.end(), remainder.begin(), remainder.end());
  return key;
}

}  // namespace

result<bytes> capk_checksum(const ca_public_key& key) {
  bytes input = key.rid;
  input.push_back(key.index);
  input.insert(input.end(), key.modulus.begin(), key.modulus.end());
  input.insert(input.end(), key.exponent.begin(), key.exponent.end());
  return sha1(input);
}

namespace {

std::string capk_name(const ca_public_key& k) {
  return fmt::format("{}/{:02X}", to_hex(k.rid), k.index);
}

bool valid_yyyymmdd(std::string_view s) {
  if (s.size() != 8 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const int mm = (s[4] - '0') * 10 + (s[5] - '0');
  const int dd = (s[6] - '0') * 10 + (s[7] - '0');
  return mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31;
}

}  // namespace

bool capk_expired(const ca_public_key& key, std::string_view today_yymmdd) {
  if (key.expiry.empty()) return false;
  const auto today = parse_today(today_yymmdd);
  if (!today) return true;  // cannot show the key is still valid
  // YYYYMMDD compares as text; today's YYMMDD is widened with the EMV century rule.
  const std::string t = fmt::format("{:04}{}", today->year, today_yymmdd.substr(2));
  return t > key.expiry;
}

result<capk_table> capk_table::load(const std::filesystem::path& path) {
  // Read first: toml++ reports a missing file as a parse error, but "cannot read" and "not
  // TOML" are different operator problems.
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) return fail("emv.capk_io", fmt::format("{}: cannot read", path.string()));
  toml::table doc;
  try {
    doc = toml::parse(text.str(), path.string());
  } catch (const toml::parse_error& e) {
    const auto& pos = e.source().begin;
    return fail("emv.capk_syntax",
                fmt::format("{}:{}:{}: {}", path.string(), pos.line, pos.column, e.description()));
  } catch (const std::exception& e) {
    return fail("emv.capk_io", fmt::format("{}: {}", path.string(), e.what()));
  }

  capk_table table;
  const auto* list = doc["capk"].as_array();
  if (list == nullptr) return fail("emv.capk_invalid", fmt::format("{}: no [[capk]] entries", path.string()));
  for (const auto& key : doc) {
    if (key.first.str() != "capk")
      return fail("emv.capk_invalid", fmt::format("{}: unknown key '{}'", path.string(), key.first.str()));
  }
  std::size_t i = 0;
  for (const auto& node : *list) {
    const std::string where = fmt::format("{}: capk[{}]", path.string(), i++);
    const auto* t = node.as_table();
    if (t == nullptr) return fail("emv.capk_invalid", where + ": not a table");
    for (const auto& kv : *t) {
      const auto k = kv.first.str();
      if (k != "rid" && k != "index" && k != "modulus" && k != "exponent" && k != "checksum" &&
          k != "expiry" && k != "description")
        return fail("emv.capk_invalid", fmt::format("{}: unknown key '{}'", where, k));
    }
    auto hex_field = [&](const char* name, std::size_t min, std::size_t max) -> result<bytes> {
      const auto v = (*t)[name].value<std::string>();
      if (!v) return fail("emv.capk_invalid", fmt::format("{}: '{}' missing or not a string", where, name));
      auto b = from_hex(*v);
      if (!b || b->size() < min || b->size() > max)
        return fail("emv.capk_invalid",
                    fmt::format("{}: '{}' is not {}..{} bytes of hex", where, name, min, max));
      return std::move(*b);
    };
    ca_public_key k;
    auto rid = hex_field("rid", 5, 5);
    if (!rid) return rid.err();
    k.rid = std::move(*rid);
    if (const auto idx = (*t)["index"].value<std::int64_t>(); idx && (*t)["index"].is_integer()) {
      if (*idx < 0 || *idx > 255) return fail("emv.capk_invalid", where + ": 'index' out of range");
      k.index = static_cast<std::uint8_t>(*idx);
    } else {
      auto ib = hex_field("index", 1, 1);
      if (!ib) return ib.err();
      k.index = (*ib)[0];
    }
    auto modulus = hex_field("modulus", 64, 248);
    if (!modulus) return modulus.err();
    k.modulus = std::move(*modulus);
    auto exponent = hex_field("exponent", 1, 3);
    if (!exponent) return exponent.err();
    k.exponent = std::move(*exponent);
    auto checksum = hex_field("checksum", 20, 20);
    if (!checksum) return checksum.err();
    if (const auto exp = (*t)["expiry"].value<std::string>()) {
      if (!valid_yyyymmdd(*exp)) return fail("emv.capk_invalid", where + ": 'expiry' is not YYYYMMDD");
      k.expiry = *exp;
    } else if ((*t).contains("expiry")) {
      return fail("emv.capk_invalid", where + ": 'expiry' is not a string");
    }
    auto sum = capk_checksum(k);
    if (!sum) return sum.err();
    if (*sum != *checksum)
      return fail("emv.capk_checksum", fmt::format("{} ({}): checksum does not match", where, capk_name(k)));
    if (table.find(k.rid, k.index) != nullptr)
      return fail("emv.capk_invalid", fmt::format("{} ({}): duplicate key", where, capk_name(k)));
    table.add(std::move(k));
  }
  return table;
}

void capk_table::add(ca_public_key key) {
  for (auto& k : keys_) {
    if (k.rid == key.rid && k.index == key.index) {
      k = std::move(key);
      return;
    }
  }
  keys_.push_back(std::move(key));
}

const ca_public_key* capk_table::find(byte_view rid, std::uint8_t index) const {
  for (const auto& k : keys_)
    if (k.index == index && std::equal(k.rid.begin(), k.rid.end(), rid.begin(), rid.end())) return &k;
  return nullptr;
}

result<bytes> rsa_recover(const rsa_key& key, byte_view signature, key_use use) {
  if (signature.size() != key.modulus.size())
    return fail("emv.oda_bad_length", "signature length differs from the key's modulus length");
  if (use == key_use::recurring) {
    auto pkey = known_keys().get(key);
    if (!pkey) return pkey.err();
    return public_operation(pkey->get(), key.modulus.size(), signature);
  }
  auto pkey = make_public_key(key);
  if (!pkey) return pkey.err();
  return public_operation(pkey->get(), key.modulus.size(), signature);
}

result<rsa_key> recover_issuer_key(const ca_public_key& capk, byte_view cert_90, byte_view remainder_92,
                                   byte_view exponent_9f32, std::string_view pan,
                                   std::string_view today_yymmdd) {
  const auto today = parse_today(today_yymmdd);
  if (!today) return fail("emv.oda_bad_date", "transaction date is not YYMMDD");
  const rsa_key ca{capk.modulus, capk.exponent};
  auto rec = recover_block(ca, key_use::recurring, cert_90, 0x02, issuer_overhead + 1, 11);
  if (!rec) return rec.err();
  const bytes& r = *rec;
  const std::size_t n = r.size();
  // The key length is known before the hash: a missing remainder is missing ICC data (its own
  // TVR bit), not a bad certificate.
  auto modulus = assemble_key(byte_view(r).subspan(issuer_fixed, n - issuer_overhead), r[13], remainder_92);
  if (!modulus) return modulus.err();
  if (!hash_matches(r, {remainder_92, exponent_9f32}))
    return fail("emv.oda_issuer_cert_hash", "issuer public key certificate hash does not match");

  const auto issuer_id = padded_digits(byte_view(r).subspan(2, 4));
  if (!issuer_id || issuer_id->size() < 3 || !pan.starts_with(*issuer_id))
    return fail("emv.oda_issuer_id_mismatch", "issuer identifier does not match the PAN");
  if (cert_expired(&r[6], *today))
    return fail("emv.oda_issuer_cert_expired", "issuer public key certificate expired");
  if (r[12] != algo_rsa) return fail("emv.oda_bad_algorithm", "issuer public key algorithm is not RSA");
  if (r[14] != exponent_9f32.size())
    return fail("emv.oda_bad_key", "issuer public key exponent length differs from 9F32");

  return rsa_key{std::move(*modulus), bytes(exponent_9f32.begin(), exponent_9f32.end())};
}

result<rsa_key> recover_icc_key(const rsa_key& issuer, byte_view cert_9f46, byte_view remainder_9f48,
                                byte_view exponent_9f47, byte_view static_data, std::string_view pan,
                                std::string_view today_yymmdd) {
  const auto today = parse_today(today_yymmdd);
  if (!today) return fail("emv.oda_bad_date", "transaction date is not YYMMDD");
  auto rec = recover_block(issuer, key_use::recurring, cert_9f46, 0x04, icc_overhead + 1, 17);
  if (!rec) return rec.err();
  const bytes& r = *rec;
  const std::size_t n = r.size();
  auto modulus = assemble_key(byte_view(r).subspan(icc_fixed, n - icc_overhead), r[19], remainder_9f48);
  if (!modulus) return modulus.err();
  if (!hash_matches(r, {remainder_9f48, exponent_9f47, static_data}))
    return fail("emv.oda_icc_cert_hash", "ICC public key certificate hash does not match");

  const auto cert_pan = padded_digits(byte_view(r).subspan(2, 10));
  if (!cert_pan || *cert_pan != pan)
    return fail("emv.oda_icc_pan_mismatch", "PAN in the ICC certificate differs");
  if (cert_expired(&r[12], *today))
    return fail("emv.oda_icc_cert_expired", "ICC public key certificate expired");
  if (r[18] != algo_rsa) return fail("emv.oda_bad_algorithm", "ICC public key algorithm is not RSA");
  if (r[20] != exponent_9f47.size())
    return fail("emv.oda_bad_key", "ICC public key exponent length differs from 9F47");

  return rsa_key{std::move(*modulus), bytes(exponent_9f47.begin(), exponent_9f47.end())};
}

result<bytes> verify_ssad(const rsa_key& issuer, byte_view ssad_93, byte_view static_data) {
  // 6A 03 | hash alg | DAC (2) | pad BB | hash | BC
  auto rec = recover_block(issuer, key_use::recurring, ssad_93, 0x03, 5 + hash_size + 1, 2);
  if (!rec) return rec.err();
  if (!hash_matches(*rec, {static_data}))
    return fail("emv.oda_ssad_hash", "signed static application data hash does not match");
  return bytes(rec->begin() + 3, rec->begin() + 5);
}

namespace {

// SDAD frame shared by DDA and CDA: 6A 05 | hash alg | Ldd | ICC dynamic data (Ldd) | pad BB |
// hash | BC. Returns the recovered block after the hash check over `terminal_data`.
result<bytes> recover_sdad(const rsa_key& icc, byte_view sdad, byte_view terminal_data) {
  auto rec = recover_block(icc, key_use::once, sdad, 0x05, 4 + hash_size + 1, 2);
  if (!rec) return rec.err();
  const bytes& r = *rec;
  if (static_cast<std::size_t>(r[3]) > r.size() - (4 + hash_size + 1))
    return fail("emv.oda_bad_dynamic_data", "ICC dynamic data length runs into the hash");
  if (!hash_matches(r, {terminal_data}))
    return fail("emv.oda_sdad_hash", "signed dynamic application data hash does not match");
  return rec;
}

// ICC dynamic number inside the ICC dynamic data: a length byte (2..8) then the number.
result<bytes> icc_dynamic_number(const bytes& r) {
  const std::size_t ldd = r[3];
  if (ldd < 1 || r[4] < 2 || r[4] > 8 || static_cast<std::size_t>(r[4]) + 1 > ldd)
    return fail("emv.oda_bad_dynamic_data", "ICC dynamic number missing or of a bad length");
  return bytes(r.begin() + 5, r.begin() + 5 + r[4]);
}

}  // namespace

result<bytes> verify_sdad(const rsa_key& icc, byte_view sdad_9f4b, byte_view ddol_data) {
  auto rec = recover_sdad(icc, sdad_9f4b, ddol_data);
  if (!rec) return rec.err();
  return icc_dynamic_number(*rec);
}

result<cda_result> recover_cda(const rsa_key& icc, byte_view sdad_9f4b, byte_view un_9f37) {
  auto rec = recover_sdad(icc, sdad_9f4b, un_9f37);
  if (!rec) return rec.err();
  const bytes& r = *rec;
  auto dn = icc_dynamic_number(r);
  if (!dn) return dn.err();
  // After the ICC dynamic number: CID (1), AC (8), TDHC (20) (Book 2 table 19).
  const std::size_t at = 5 + dn->size();
  if (static_cast<std::size_t>(r[3]) < 1 + dn->size() + 1 + 8 + hash_size)
    return fail("emv.oda_bad_dynamic_data", "ICC dynamic data too short for CID, AC and TDHC");
  cda_result out;
  out.icc_dynamic_number = std::move(*dn);
  out.cid = r[at];
  out.ac.assign(r.begin() + static_cast<std::ptrdiff_t>(at + 1),
                r.begin() + static_cast<std::ptrdiff_t>(at + 9));
  out.tdhc.assign(r.begin() + static_cast<std::ptrdiff_t>(at + 9),
                  r.begin() + static_cast<std::ptrdiff_t>(at + 9 + hash_size));
  return out;
}

result<cda_result> verify_cda(const rsa_key& icc, byte_view sdad_9f4b, byte_view un_9f37,
                              byte_view tdhc_input, std::uint8_t expected_cid) {
  auto out = recover_cda(icc, sdad_9f4b, un_9f37);
  if (!out) return out.err();
  if (out->cid != expected_cid) return fail("emv.oda_cid_mismatch", "CID in the signature differs from 9F27");
  if (sha1(tdhc_input) != out->tdhc)
    return fail("emv.oda_tdhc_mismatch", "transaction data hash code does not match");
  return out;
}

result<bytes> oda_static_data(std::span<const oda_record> records, byte_view aip,
                              byte_view sda_tag_list_9f4a) {
  bytes out;
  for (const auto& rec : records) {
    if (rec.sfi < 1 || rec.sfi > 30) return fail("emv.oda_bad_record", "SFI out of range 1..30");
    if (rec.sfi > 10) {
      // SFI 11-30: the whole record, tag and length included.
      out.insert(out.end(), rec.record.begin(), rec.record.end());
      continue;
    }
    // SFI 1-10: the value of the record template 70, which must be the whole record.
    const bytes& b = rec.record;
    if (b.size() < 2 || b[0] != 0x70)
      return fail("emv.oda_bad_record", "record for ODA is not a 70 template");
    std::size_t len = 0;
    std::size_t hdr = 2;
    if (b[1] < 0x80) {
      len = b[1];
    } else if (b[1] == 0x81 && b.size() >= 3) {
      len = b[2];
      hdr = 3;
    } else if (b[1] == 0x82 && b.size() >= 4) {
      len = (static_cast<std::size_t>(b[2]) << 8) | b[3];
      hdr = 4;
    } else {
      return fail("emv.oda_bad_record", "record template 70 has a bad length");
    }
    if (hdr + len != b.size())
      return fail("emv.oda_bad_record", "record template 70 length differs from the record");
    out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(hdr), b.end());
  }
  // The SDA tag list may only name the AIP (Book 3 10.3).
  if (!sda_tag_list_9f4a.empty()) {
    if (sda_tag_list_9f4a.size() != 1 || sda_tag_list_9f4a[0] != 0x82)
      return fail("emv.oda_bad_record", "static data authentication tag list names a tag other than 82");
    if (aip.size() != 2) return fail("emv.oda_bad_record", "AIP must be 2 bytes");
    out.insert(out.end(), aip.begin(), aip.end());
  }
  return out;
}

}  // namespace eftd::emv
