#include "dev_certs.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>

namespace eftd::loadgen {

namespace {

template <class T, void (*F)(T*)>
struct ossl_free {
  void operator()(T* p) const { F(p); }
};
using x509_ptr = std::unique_ptr<X509, ossl_free<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, ossl_free<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, ossl_free<BIO, BIO_free_all>>;

std::string openssl_reason() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

struct dev_ca::impl {
  x509_ptr cert;
  pkey_ptr key;
};

dev_ca::dev_ca(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
dev_ca::~dev_ca() = default;

result<std::shared_ptr<const dev_ca>> dev_ca::open(const std::filesystem::path& dir) {
  auto p = std::make_unique<impl>();
  const auto cert_file = dir / "ca.pem";
  const auto key_file = dir / "ca.key";
  if (FILE* f = std::fopen(cert_file.c_str(), "r")) {
    p->cert.reset(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
  }
  if (!p->cert)
    return make_error("loadgen.tls_ca",
                      fmt::format("'{}' is no readable PEM certificate", cert_file.string()));
  if (FILE* f = std::fopen(key_file.c_str(), "r")) {
    p->key.reset(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
    std::fclose(f);
  }
  ERR_clear_error();
  if (!p->key)
    return make_error("loadgen.tls_ca", fmt::format("'{}' is no readable PEM key", key_file.string()));
  if (X509_check_private_key(p->cert.get(), p->key.get()) != 1) {
    ERR_clear_error();
    return make_error("loadgen.tls_ca",
                      fmt::format("'{}' is not the key of '{}'", key_file.string(), cert_file.string()));
  }
  return std::shared_ptr<const dev_ca>(new dev_ca(std::move(p)));
}

result<issued_cert> dev_ca::issue(std::string_view common_name) const {
  const auto fail = [](std::string_view step) {
    return make_error("loadgen.tls_ca", fmt::format("issuing a certificate: {}: {}", step, openssl_reason()));
  };
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) return fail("key generation");
  x509_ptr cert(X509_new());
  if (!cert) return fail("X509_new");
  X509_set_version(cert.get(), X509_VERSION_3);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return fail("serial");
  serial[0] &= 0x7F;  // a positive INTEGER
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) == nullptr) {
    BN_free(bn);
    return fail("serial");
  }
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1)
    return fail("subject");
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(impl_->cert.get())) != 1) return fail("issuer");
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return fail("public key");
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, impl_->cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
        std::pair{NID_key_usage, "critical,digitalSignature"}, std::pair{NID_ext_key_usage, "clientAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) return fail("extension");
    const int ok = X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
    if (ok != 1) return fail("extension");
  }
  if (X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) == 0) return fail("signature");
  bio_ptr cert_bio(BIO_new(BIO_s_mem()));
  bio_ptr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return fail("PEM");
  return issued_cert{bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

}  // namespace eftd::loadgen
