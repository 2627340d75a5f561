#include "eftd/padsim/emv_cert_mint.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>

namespace eftd::padsim {

namespace {

constexpr std::uint8_t header = 0x6A;
constexpr std::uint8_t trailer = 0xBC;
constexpr std::uint8_t pad = 0xBB;
constexpr std::uint8_t sha1_alg = 0x01;
constexpr std::uint8_t rsa_alg = 0x01;
constexpr std::size_t hash_size = 20;

error openssl_error(std::string_view what) {
  return make_error("crypto.openssl", std::string(what));
}

bytes bn_bytes(const EVP_PKEY* k, const char* name, std::size_t width) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &bn) != 1 || bn == nullptr) return {};
  const int n = BN_num_bytes(bn);
  bytes out(width == 0 ? static_cast<std::size_t>(n) : width);
  if (BN_bn2binpad(bn, out.data(), static_cast<int>(out.size())) < 0) out.clear();
  BN_free(bn);
  return out;
}

void append(bytes& out, byte_view v) {
  out.insert(out.end(), v.begin(), v.end());
}

// header || body || SHA-1(body || hashed_tail) || trailer, signed: the EMV recovery format.
result<bytes> sign_block(const rsa_private_key& signer, const bytes& body, byte_view hashed_tail) {
  if (body.size() + hash_size + 2 != signer.size())
    return make_error("padsim.mint_size", "certificate body does not fill the signer's modulus");
  bytes hashed = body;
  append(hashed, hashed_tail);
  bytes block{header};
  append(block, body);
  append(block, sha1(hashed));
  block.push_back(trailer);
  return signer.sign_raw(block);
}

result<public_key_certificate> mint_pk_certificate(const rsa_private_key& signer,
                                                   const rsa_private_key& subject, std::uint8_t format,
                                                   byte_view id, byte_view expiry, byte_view serial,
                                                   byte_view static_data) {
  if (signer.empty() || subject.empty()) return make_error("padsim.mint_key", "no key");
  if (expiry.size() != 2 || serial.size() != 3)
    return make_error("padsim.mint_size", "expiry is 2 bytes and serial 3");
  // Fixed fields: header, format, id, expiry, serial, 2 algorithm bytes, 2 length bytes, hash,
  // trailer: 36 bytes with a 4-byte issuer id (02), 42 with a 10-byte PAN (04).
  const std::size_t fixed = 1 + 1 + id.size() + 2 + 3 + 4 + hash_size + 1;
  if (signer.size() <= fixed) return make_error("padsim.mint_size", "signer key too small");
  const std::size_t room = signer.size() - fixed;
  const bytes n = subject.modulus();
  const bytes e = subject.exponent();
  // EMV Book 2 5.1: a key is never longer than the key that certifies it.
  if (n.size() > signer.size() || e.size() > 3)
    return make_error("padsim.mint_size", "certified key longer than its signer's");
  public_key_certificate out;
  bytes body{format};
  append(body, id);
  append(body, expiry);
  append(body, serial);
  body.push_back(sha1_alg);
  body.push_back(rsa_alg);
  body.push_back(static_cast<std::uint8_t>(n.size()));
  body.push_back(static_cast<std::uint8_t>(e.size()));
  const std::size_t in_cert = std::min(room, n.size());
  body.insert(body.end(), n.begin(), n.begin() + static_cast<std::ptrdiff_t>(in_cert));
  body.resize(body.size() + (room - in_cert), pad);
  out.remainder.assign(n.begin() + static_cast<std::ptrdiff_t>(in_cert), n.end());
  out.exponent = e;
  bytes tail = out.remainder;
  append(tail, e);
  append(tail, static_data);
  auto cert = sign_block(signer, body, tail);
  if (!cert) return cert.err();
  out.certificate = std::move(*cert);
  return out;
}

}  // namespace

struct rsa_private_key::impl {
  EVP_PKEY* key = nullptr;
  ~impl() { EVP_PKEY_free(key); }
};

result<rsa_private_key> rsa_private_key::from_pem(byte_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  if (!bio) return openssl_error("BIO_new_mem_buf");
  auto i = std::make_shared<impl>();
  i->key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (i->key == nullptr || EVP_PKEY_base_id(i->key) != EVP_PKEY_RSA)
    return make_error("padsim.mint_key", "not a PEM RSA private key");
  rsa_private_key k;
  k.key_ = std::move(i);
  return k;
}

std::size_t rsa_private_key::size() const noexcept {
  return key_ ? static_cast<std::size_t>(EVP_PKEY_get_size(key_->key)) : 0;
}

bytes rsa_private_key::modulus() const {
  return key_ ? bn_bytes(key_->key, OSSL_PKEY_PARAM_RSA_N, size()) : bytes{};
}

bytes rsa_private_key::exponent() const {
  return key_ ? bn_bytes(key_->key, OSSL_PKEY_PARAM_RSA_E, 0) : bytes{};
}

result<bytes> rsa_private_key::sign_raw(byte_view block) const {
  if (!key_) return make_error("padsim.mint_key", "no key");
  if (block.size() != size()) return make_error("padsim.mint_size", "block is not the modulus length");
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(key_->key, nullptr),
                                                                  &EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) <= 0)
    return openssl_error("EVP_PKEY_sign_init");
  bytes out(size());
  std::size_t n = out.size();
  if (EVP_PKEY_sign(ctx.get(), out.data(), &n, block.data(), block.size()) <= 0 || n != out.size())
    return openssl_error("EVP_PKEY_sign (raw RSA)");
  return out;
}

bytes sha1(byte_view data) {
  bytes out(hash_size);
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha1(), nullptr) != 1 || n != hash_size)
    out.clear();
  return out;
}

result<public_key_certificate> mint_issuer_certificate(const rsa_private_key& ca,
                                                       const rsa_private_key& issuer, byte_view issuer_id,
                                                       byte_view expiry_mmyy, byte_view serial) {
  if (issuer_id.size() != 4) return make_error("padsim.mint_size", "issuer id is 4 bytes");
  return mint_pk_certificate(ca, issuer, 0x02, issuer_id, expiry_mmyy, serial, {});
}

result<public_key_certificate> mint_icc_certificate(const rsa_private_key& issuer, const rsa_private_key& icc,
                                                    byte_view pan10, byte_view expiry_mmyy, byte_view serial,
                                                    byte_view static_data) {
  if (pan10.size() != 10) return make_error("padsim.mint_size", "PAN field is 10 bytes");
  return mint_pk_certificate(issuer, icc, 0x04, pan10, expiry_mmyy, serial, static_data);
}

result<bytes> mint_ssad(const rsa_private_key& issuer, byte_view dac, byte_view static_data) {
  if (issuer.empty()) return make_error("padsim.mint_key", "no key");
  if (dac.size() != 2) return make_error("padsim.mint_size", "data authentication code is 2 bytes");
  if (issuer.size() < 26 + 1) return make_error("padsim.mint_size", "issuer key too small");
  bytes body{0x03, sha1_alg};
  append(body, dac);
  body.resize(issuer.size() - hash_size - 2, pad);
  return sign_block(issuer, body, static_data);
}

result<bytes> sign_sdad(const rsa_private_key& icc, byte_view icc_dynamic_data, byte_view tail) {
  if (icc.empty()) return make_error("padsim.mint_key", "no key");
  if (icc_dynamic_data.size() + 25 > icc.size())
    return make_error("padsim.mint_size", "dynamic data does not fit the ICC key");
  bytes body{0x05, sha1_alg, static_cast<std::uint8_t>(icc_dynamic_data.size())};
  append(body, icc_dynamic_data);
  body.resize(icc.size() - hash_size - 2, pad);
  return sign_block(icc, body, tail);
}

}  // namespace eftd::padsim
