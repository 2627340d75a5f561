// EMV offline data authentication (EMV Book 2 sections 5 and 6): certification authority
// public keys (CAPK table), recovery of the issuer and ICC public keys from their
// certificates, and verification of static (SDA), dynamic (DDA) and combined (CDA) signatures.
//
// The RSA public operation and SHA-1 are OpenSSL's (EVP); nothing here does its own big-number
// arithmetic. Inputs come from the card and are untrusted: every length is checked before use.
//
// Each failed check returns its own error code, so the kernel can set the right TVR bit and
// tests can assert the exact reason. Messages never contain the PAN or other card data.
//   emv.oda_bad_key              modulus/exponent empty or unusable by OpenSSL
//   emv.oda_bad_length           signature length differs from the key's modulus length
//   emv.oda_bad_signature        the signature is not a number below the modulus
//   emv.oda_bad_header           recovered data does not start with 6A
//   emv.oda_bad_format           wrong certificate/signature format byte (02, 04, 03, 05)
//   emv.oda_bad_trailer          recovered data does not end with BC
//   emv.oda_bad_algorithm        hash algorithm or public key algorithm is not 01
//   emv.oda_missing_remainder    the key does not fit its certificate and no remainder (92 /
//                                9F48) was given: ICC data missing (TVR byte 1 bit 6) as well
//   emv.oda_bad_remainder        a remainder of the wrong length, or one given for a key that
//                                fits its certificate
//   emv.oda_issuer_cert_hash     issuer certificate hash mismatch
//   emv.oda_issuer_id_mismatch   issuer identifier does not match the leftmost PAN digits
//   emv.oda_issuer_cert_expired  issuer certificate expiry (MMYY) is before today
//   emv.oda_icc_cert_hash        ICC certificate hash mismatch (covers the static data)
//   emv.oda_icc_pan_mismatch     PAN in the ICC certificate differs from the card's PAN (5A)
//   emv.oda_icc_cert_expired     ICC certificate expired
//   emv.oda_ssad_hash            signed static application data hash mismatch (SDA)
//   emv.oda_sdad_hash            signed dynamic application data hash mismatch (DDA / CDA)
//   emv.oda_bad_dynamic_data     ICC dynamic data too short for the ICC dynamic number / CDA fields
//   emv.oda_cid_mismatch         CDA: CID in the signature differs from the GENERATE AC 9F27
//   emv.oda_tdhc_mismatch        CDA: transaction data hash code mismatch
//   emv.oda_bad_date             today is not YYMMDD
//   emv.oda_bad_record           a record for ODA is not a tag 70 template (SFI 1-10) or
//                                9F4A lists a tag other than 82
//   emv.capk_io / emv.capk_syntax / emv.capk_invalid / emv.capk_checksum   CAPK file problems
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::emv {

// A certification authority public key, identified by RID (5 bytes) and index (8F).
struct ca_public_key {
  bytes rid;
  std::uint8_t index = 0;
  bytes modulus;
  bytes exponent;
  std::string expiry;  // "YYYYMMDD" (last day valid) or empty: no expiry known
};

// SHA-1 of RID || index || modulus || exponent, the checksum published with each CAPK.
result<bytes> capk_checksum(const ca_public_key& key);

// True when the key has an expiry date and today ("YYMMDD", 9A) is after it, or today is not
// a valid date. An expired CAPK must not be used (the kernel then treats it as missing).
bool capk_expired(const ca_public_key& key, std::string_view today_yymmdd);

class capk_table {
 public:
  // A TOML file of [[capk]] tables: rid, index (hex string "94" or integer), modulus, exponent,
  // checksum (all hex strings) and optional expiry "YYYYMMDD". The checksum is checked on
  // load; an error names the entry (RID/index), never loads a partial table.
  static result<capk_table> load(const std::filesystem::path& toml);

  // Adds or replaces the key with the same RID and index.
  void add(ca_public_key key);
  // nullptr when the table has no such key.
  const ca_public_key* find(byte_view rid, std::uint8_t index) const;
  std::size_t size() const noexcept { return keys_.size(); }

 private:
  std::vector<ca_public_key> keys_;
};

struct rsa_key {
  bytes modulus;
  bytes exponent;
};

// recurring: a CA or issuer key, met again on other cards. Its OpenSSL form is kept (a bounded,
// least-recently-used set shared by all threads) and the next recovery with it is cheaper.
// once: a card's own key, not kept.
enum class key_use { recurring, once };

// Raw RSA public operation (signature^e mod n) with OpenSSL, no padding. The signature must
// be exactly as long as the modulus; the result has the modulus length.
result<bytes> rsa_recover(const rsa_key& key, byte_view signature, key_use use = key_use::once);

// In both recoveries `pan` is the digits of 5A without its F padding, and today_yymmdd the
// transaction date 9A as six digits.
//
// Issuer public key from the issuer certificate (90), remainder (92, may be empty) and
// exponent (9F32) under the CAPK. Checks header/format 02/trailer, algorithms, the hash,
// the issuer identifier against the PAN and the expiry against today ("YYMMDD", from 9A).
result<rsa_key> recover_issuer_key(const ca_public_key& capk, byte_view cert_90, byte_view remainder_92,
                                   byte_view exponent_9f32, std::string_view pan,
                                   std::string_view today_yymmdd);

// ICC public key from the ICC certificate (9F46), remainder (9F48) and exponent (9F47) under
// the issuer key. The hash covers `static_data` (see oda_static_data). Format 04, PAN and
// expiry are checked.
result<rsa_key> recover_icc_key(const rsa_key& issuer, byte_view cert_9f46, byte_view remainder_9f48,
                                byte_view exponent_9f47, byte_view static_data, std::string_view pan,
                                std::string_view today_yymmdd);

// SDA: verifies the signed static application data (93) under the issuer key; returns the
// data authentication code (9F45, 2 bytes).
result<bytes> verify_ssad(const rsa_key& issuer, byte_view ssad_93, byte_view static_data);

// DDA: verifies the signed dynamic application data (9F4B) against the DDOL data the terminal
// sent in INTERNAL AUTHENTICATE; returns the ICC dynamic number (9F4C).
result<bytes> verify_sdad(const rsa_key& icc, byte_view sdad_9f4b, byte_view ddol_data);

struct cda_result {
  bytes icc_dynamic_number;  // 9F4C
  std::uint8_t cid = 0;      // 9F27 as signed
  bytes ac;                  // 9F26 as signed (the card does not send it in clear under CDA)
  bytes tdhc;                // transaction data hash code as signed (20 bytes)
};

// CDA first half: recovers the SDAD of a GENERATE AC response and checks its format and hash
// (over the signed fields || UN) without comparing CID or TDHC. verify_cda does the rest.
result<cda_result> recover_cda(const rsa_key& icc, byte_view sdad_9f4b, byte_view un_9f37);

// CDA: verifies the SDAD of a GENERATE AC response. tdhc_input is PDOL data || CDOL1 (or
// CDOL2) data || the GENERATE AC response TLVs in order, without 9F4B. expected_cid is the
// 9F27 of the response.
result<cda_result> verify_cda(const rsa_key& icc, byte_view sdad_9f4b, byte_view un_9f37,
                              byte_view tdhc_input, std::uint8_t expected_cid);

// One record read for ODA (AFL entries with a non-zero "records for ODA" count): its SFI and
// the whole READ RECORD response data (the tag 70 template, without SW1 SW2).
struct oda_record {
  std::uint8_t sfi = 0;
  bytes record;
};

// The static data to authenticate: for SFI 1-10 the value inside tag 70, for SFI 11-30 the
// whole record, in the order given; then the AIP (82) if the SDA tag list (9F4A) lists 82.
result<bytes> oda_static_data(std::span<const oda_record> records, byte_view aip,
                              byte_view sda_tag_list_9f4a);

}  // namespace eftd::emv
