// The card side of offline data authentication (EMV Book 2 sections 5 and 6): certificates and
// signatures a test card carries, minted when a profile loads from test RSA private keys
// (pinpad-firmware-shim/cards/keys/), so the simulated cards carry real, verifiable ODA data
// without any certificate file in the tree.
//
// Formats (all SHA-1, hash algorithm 01, RSA algorithm 01, header 6A, trailer BC, signed with the
// raw RSA private operation: the EMV block is its own padding):
//   issuer public key certificate (tag 90, format 02, N_CA bytes, signed by the CA key):
//     02 | issuer id (4) | expiry MMYY (2) | serial (3) | 01 | 01 | N_I | exponent length |
//     issuer modulus, leftmost N_CA-36 bytes (BB padded) | hash | BC; the rest of the modulus is
//     the remainder (tag 92); the hash covers 02..modulus part || remainder || exponent (9F32).
//   ICC public key certificate (9F46, format 04, N_I bytes, signed by the issuer key):
//     04 | PAN (10, F padded) | expiry MMYY | serial | 01 | 01 | N_IC | exponent length |
//     ICC modulus, leftmost N_I-42 bytes | hash | BC; remainder 9F48, exponent 9F47; the hash
//     also covers the static data to be authenticated.
//   signed static application data (93, format 03, N_I bytes): 03 | 01 | DAC (2) | BB padding |
//     hash over 03..padding || static data | BC.
//   signed dynamic application data (9F4B, format 05, N_IC bytes): 05 | 01 | Ldd | ICC dynamic
//     data | BB padding | hash over 05..padding || tail | BC, where the tail is the DDOL data
//     (DDA, INTERNAL AUTHENTICATE) or the unpredictable number (CDA).
//
// Error codes: "padsim.mint_key" (the PEM is not an RSA private key), "padsim.mint_size" (a key
// does not fit in its signer's block), "crypto.openssl". Messages never hold key or card data.
#pragma once

#include <cstdint>
#include <memory>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::padsim {

// An RSA private key (a test key from a PEM file); shared by copies of a card profile.
class rsa_private_key {
 public:
  rsa_private_key() = default;
  static eftd::result<rsa_private_key> from_pem(byte_view pem);

  bool empty() const noexcept { return !key_; }
  std::size_t size() const noexcept;  // modulus length in bytes
  eftd::bytes modulus() const;        // big-endian, size() bytes
  eftd::bytes exponent() const;       // big-endian, minimal length (03, 010001)
  // Raw RSA private operation on a block of size() bytes below the modulus.
  eftd::result<eftd::bytes> sign_raw(byte_view block) const;

 private:
  struct impl;
  std::shared_ptr<impl> key_;
};

eftd::bytes sha1(byte_view data);

struct public_key_certificate {
  eftd::bytes certificate;  // 90 or 9F46
  eftd::bytes remainder;    // 92 or 9F48; empty when the modulus fits
  eftd::bytes exponent;     // 9F32 or 9F47
};

// issuer_id: 4 bytes (leftmost PAN digits, F padded); expiry_mmyy, serial: 2 and 3 bytes.
eftd::result<public_key_certificate> mint_issuer_certificate(const rsa_private_key& ca,
                                                             const rsa_private_key& issuer,
                                                             byte_view issuer_id, byte_view expiry_mmyy,
                                                             byte_view serial);
// pan10: the PAN as cn 10 (F padded).
eftd::result<public_key_certificate> mint_icc_certificate(const rsa_private_key& issuer,
                                                          const rsa_private_key& icc, byte_view pan10,
                                                          byte_view expiry_mmyy, byte_view serial,
                                                          byte_view static_data);
eftd::result<eftd::bytes> mint_ssad(const rsa_private_key& issuer, byte_view dac, byte_view static_data);
// icc_dynamic_data: DDA: length || ICC dynamic number; CDA: that || CID || AC || TDHC.
eftd::result<eftd::bytes> sign_sdad(const rsa_private_key& icc, byte_view icc_dynamic_data, byte_view tail);

}  // namespace eftd::padsim
