#include "eftd/core/tls_channel.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509err.h>

#include <array>
#include <memory>
#include <utility>

namespace eftd {

namespace {

// OpenSSL decrypts at most one record (16 KiB of plaintext) per read.
constexpr std::size_t read_chunk = 16384;

// An encrypted key file must fail to load, not ask for a passphrase on the terminal of a
// service or a pad.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

// Empties this thread's OpenSSL error queue and returns its most telling entry: the first from
// libssl (the TLS-level reason), else the oldest.
unsigned long take_errors() {
  unsigned long first = 0;
  unsigned long first_ssl = 0;
  while (unsigned long e = ERR_get_error()) {
    if (first == 0) first = e;
    if (first_ssl == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) first_ssl = e;
  }
  return first_ssl != 0 ? first_ssl : first;
}

std::string reason_text(unsigned long e) {
  if (e == 0) return "no reason given";
  if (const char* r = ERR_reason_error_string(e)) return r;
  return fmt::format("OpenSSL error {:x}", e);
}

// Turns an OpenSSL failure into the channel's error: an operator reads the first words (unknown
// CA, no certificate, protocol version) and OpenSSL's own reason in brackets.
error diagnose(SSL* ssl, int ssl_error, unsigned long e, bool in_handshake) {
  const std::string raw = reason_text(e);
  if (ssl_error == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(e)) {
      case SSL_R_CERTIFICATE_VERIFY_FAILED: {
        const long v = SSL_get_verify_result(ssl);
        const std::string detail = X509_verify_cert_error_string(v);
        switch (v) {
          case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
          case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
          case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
          case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
          case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            return make_error(
                "tls.handshake",
                "unknown CA: the peer's certificate is not issued by a trusted CA (" + detail + ")");
          case X509_V_ERR_HOSTNAME_MISMATCH:
          case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return make_error("tls.handshake",
                              "certificate name mismatch: the server's certificate is not for "
                              "the address connected to (" +
                                  detail + ")");
          default:
            return make_error("tls.handshake", "certificate rejected: " + detail);
        }
      }
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return make_error("tls.handshake", "no certificate: the peer presented no client certificate");
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return make_error("tls.handshake",
                          "no certificate: the peer requires a client certificate (" + raw + ")");
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
      case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return make_error("tls.handshake", std::string("protocol version: ") +
                                               (SSL_get_min_proto_version(ssl) == TLS1_2_VERSION
                                                    ? "only TLS 1.2 and 1.3 are accepted"
                                                    : "only TLS 1.3 is accepted") +
                                               " (" + raw + ")");
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        return make_error("tls.handshake",
                          "unknown CA: the peer does not trust our certificate (" + raw + ")");
      // TLS 1.3 lets a server refuse the client's certificate after the client's side of the
      // handshake is over: these alerts are still a failed handshake, not a damaged record.
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        return make_error("tls.handshake", "certificate refused by the peer (" + raw + ")");
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_HTTP_REQUEST:
      case SSL_R_UNEXPECTED_RECORD:
      case SSL_R_UNKNOWN_PROTOCOL:
        if (in_handshake)
          return make_error("tls.handshake", "not TLS: the peer's bytes are no TLS record (" + raw + ")");
        break;
      default:
        break;
    }
  }
  if (in_handshake) return make_error("tls.handshake", "TLS handshake failed (" + raw + ")");
  return make_error("tls.protocol", "TLS record rejected (" + raw + ")");
}

std::string subject_cn(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return {};
  X509_NAME* name = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, value);
  if (len < 0) return {};
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  // An embedded NUL could make "VP-0001\0evil" compare equal somewhere downstream: no name.
  if (cn.find('\0') != std::string::npos) return {};
  return cn;
}

struct ctx_deleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_deleter>;

status need_file(const std::filesystem::path& p, std::string_view what) {
  std::error_code ec;
  if (p.empty()) return make_error("tls.config", fmt::format("{} is not set", what));
  if (!std::filesystem::is_regular_file(p, ec))
    return make_error("tls.config", fmt::format("{} '{}' does not exist or is not a file", what, p.string()));
  return {};
}

status config_error(std::string_view what, const std::filesystem::path& p) {
  return make_error("tls.config", fmt::format("{} '{}': {}", what, p.string(), reason_text(take_errors())));
}

// What both sides share: TLS 1.3 and nothing else, no session resumption (a resumed session
// would skip the certificate check that revocation relies on), no passphrase prompts.
ctx_ptr new_context(bool server) {
  ctx_ptr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return ctx;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_passphrase);
  // An idle connection gives its read and write buffers (about 34 KiB) back: 10,000 pads mostly
  // wait between sales.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

status load_identity(SSL_CTX* ctx, const std::filesystem::path& cert, const std::filesystem::path& key) {
  if (auto st = need_file(cert, "certificate file"); !st) return st;
  if (auto st = need_file(key, "key file"); !st) return st;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) return config_error("certificate", cert);
  auto mismatch = [&] {
    return make_error("tls.config", fmt::format("key '{}' does not match the certificate '{}'", key.string(),
                                                cert.string()));
  };
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate while loading it.
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return mismatch();
    }
    return config_error("key", key);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return mismatch();
  }
  return {};
}

status load_trust(SSL_CTX* ctx, const std::filesystem::path& ca, std::string_view what) {
  if (auto st = need_file(ca, what); !st) return st;
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) return config_error(what, ca);
  return {};
}

// A client context that verifies the server's chain against `ca`; its identity comes next.
result<ctx_ptr> client_context(const std::filesystem::path& ca) {
  ERR_clear_error();
  ctx_ptr ctx = new_context(false);
  if (!ctx) return make_error("tls.config", "cannot create a TLS context: " + reason_text(take_errors()));
  if (auto st = load_trust(ctx.get(), ca, "CA file"); !st) return st.err();
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

SSL* new_ssl(SSL_CTX* ctx) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl);
    return nullptr;
  }
  // An empty input buffer means "wait for more bytes", not end of stream.
  BIO_set_mem_eof_return(in, -1);
  BIO_set_mem_eof_return(out, -1);
  SSL_set_bio(ssl, in, out);
  return ssl;
}

}  // namespace

// ---- tls_context -------------------------------------------------------------------------

result<std::shared_ptr<const tls_context>> tls_context::server(const config::tls_files& files) {
  ERR_clear_error();
  if (files.client_ca_file.empty())
    return make_error("tls.config", "client_ca_file is required: every pad presents a device certificate");
  ctx_ptr ctx = new_context(true);
  if (!ctx) return make_error("tls.config", "cannot create a TLS context: " + reason_text(take_errors()));
  if (auto st = load_identity(ctx.get(), files.cert_file, files.key_file); !st) return st.err();
  if (auto st = load_trust(ctx.get(), files.client_ca_file, "client CA file"); !st) return st.err();
  // Names the accepted CAs in the CertificateRequest, so a pad holding several certificates
  // picks the right one.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str()))
    SSL_CTX_set_client_CA_list(ctx.get(), names);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  ERR_clear_error();
  return std::shared_ptr<const tls_context>(new tls_context(ctx.release(), true));
}

result<std::shared_ptr<const tls_context>> tls_context::client(const std::filesystem::path& ca,
                                                               const std::filesystem::path& cert,
                                                               const std::filesystem::path& key) {
  auto made = client_context(ca);
  if (!made) return made.err();
  ctx_ptr ctx = std::move(*made);
  // Without a certificate the client can still be built (tests of the refusal), and a server
  // context refuses it at the handshake.
  if (!cert.empty() || !key.empty())
    if (auto st = load_identity(ctx.get(), cert, key); !st) return st.err();
  ERR_clear_error();
  return std::shared_ptr<const tls_context>(new tls_context(ctx.release(), false));
}

result<std::shared_ptr<const tls_context>> tls_context::client_pem(const std::filesystem::path& ca,
                                                                   std::string_view cert_pem,
                                                                   std::string_view key_pem) {
  auto made = client_context(ca);
  if (!made) return made.err();
  ctx_ptr ctx = std::move(*made);
  const auto bio_of = [](std::string_view pem) {
    return std::unique_ptr<BIO, decltype(&BIO_free)>(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  };
  auto cert_bio = bio_of(cert_pem);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  if (!cert || SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1)
    return make_error("tls.config", "certificate PEM: " + reason_text(take_errors()));
  auto key_bio = bio_of(key_pem);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (!key || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    return make_error("tls.config", "the key PEM is not a key, or not the certificate's");
  }
  ERR_clear_error();
  return std::shared_ptr<const tls_context>(new tls_context(ctx.release(), false));
}

std::shared_ptr<const tls_context> tls_context::adopt(ssl_ctx_st* ctx, bool server) {
  SSL_CTX_up_ref(ctx);
  return std::shared_ptr<const tls_context>(new tls_context(ctx, server));
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

// ---- tls_channel -------------------------------------------------------------------------

tls_channel::tls_channel(std::shared_ptr<const tls_context> ctx, ssl_st* ssl)
    : ctx_(std::move(ctx)), ssl_(ssl) {}

tls_channel::tls_channel(tls_channel&& o) noexcept
    : ctx_(std::move(o.ctx_)),
      ssl_(std::exchange(o.ssl_, nullptr)),
      plaintext_in_(std::move(o.plaintext_in_)),
      plaintext_out_(std::move(o.plaintext_out_)),
      peer_cn_(std::move(o.peer_cn_)),
      error_(std::move(o.error_)),
      handshake_done_(o.handshake_done_),
      failed_(o.failed_),
      closed_(o.closed_) {}

tls_channel& tls_channel::operator=(tls_channel&& o) noexcept {
  if (this != &o) {
    wipe();
    if (ssl_ != nullptr) SSL_free(ssl_);
    ctx_ = std::move(o.ctx_);
    ssl_ = std::exchange(o.ssl_, nullptr);
    plaintext_in_ = std::move(o.plaintext_in_);
    plaintext_out_ = std::move(o.plaintext_out_);
    peer_cn_ = std::move(o.peer_cn_);
    error_ = std::move(o.error_);
    handshake_done_ = o.handshake_done_;
    failed_ = o.failed_;
    closed_ = o.closed_;
  }
  return *this;
}

tls_channel::~tls_channel() {
  wipe();
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void tls_channel::wipe() noexcept {
  // Plaintext on this channel carries card data (track 2 in protocol version 1).
  if (!plaintext_in_.empty()) OPENSSL_cleanse(plaintext_in_.data(), plaintext_in_.size());
  if (!plaintext_out_.empty()) OPENSSL_cleanse(plaintext_out_.data(), plaintext_out_.size());
}

result<tls_channel> tls_channel::server(std::shared_ptr<const tls_context> ctx) {
  if (!ctx || !ctx->is_server()) return make_error("tls.config", "a server channel needs a server context");
  ERR_clear_error();
  SSL* ssl = new_ssl(ctx->native());
  if (ssl == nullptr)
    return make_error("tls.config", "cannot create a TLS session: " + reason_text(take_errors()));
  SSL_set_accept_state(ssl);
  return tls_channel(std::move(ctx), ssl);
}

result<tls_channel> tls_channel::client(std::shared_ptr<const tls_context> ctx,
                                        std::string_view server_name) {
  if (!ctx || ctx->is_server()) return make_error("tls.config", "a client channel needs a client context");
  ERR_clear_error();
  SSL* ssl = new_ssl(ctx->native());
  if (ssl == nullptr)
    return make_error("tls.config", "cannot create a TLS session: " + reason_text(take_errors()));
  tls_channel ch(std::move(ctx), ssl);
  if (!server_name.empty()) {
    const std::string name(server_name);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    // An address is checked against the certificate's IP entries; a name also goes out as SNI.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
      ERR_clear_error();
      if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 || SSL_set1_host(ssl, name.c_str()) != 1)
        return make_error("tls.config",
                          "cannot use server name '" + name + "': " + reason_text(take_errors()));
    }
  }
  SSL_set_connect_state(ssl);
  if (auto st = ch.advance(); !st) return st.err();  // queues the ClientHello
  return ch;
}

status tls_channel::fail(error e) {
  failed_ = true;
  error_ = std::move(e);
  return error_;
}

status tls_channel::feed(byte_view ciphertext) {
  if (failed_) return error_;
  if (ciphertext.empty()) return {};
  BIO* in = SSL_get_rbio(ssl_);
  // A memory BIO takes any amount; the loop only splits what does not fit an int.
  while (!ciphertext.empty()) {
    const int n = static_cast<int>(std::min<std::size_t>(ciphertext.size(), 1 << 30));
    if (BIO_write(in, ciphertext.data(), n) != n) return fail(make_error("tls.protocol", "out of memory"));
    ciphertext = ciphertext.subspan(static_cast<std::size_t>(n));
  }
  return advance();
}

status tls_channel::advance() {
  ERR_clear_error();
  if (!handshake_done_) {
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      const int why = SSL_get_error(ssl_, rc);
      if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) return {};
      return fail(diagnose(ssl_, why, take_errors(), true));
    }
    handshake_done_ = true;
    peer_cn_ = subject_cn(ssl_);
    if (auto st = flush_pending(); !st) return st;
  }
  std::array<std::uint8_t, read_chunk> buf;
  status outcome;
  for (;;) {
    std::size_t n = 0;
    const int rc = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
    if (rc == 1) {
      plaintext_in_.insert(plaintext_in_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      continue;
    }
    const int why = SSL_get_error(ssl_, rc);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) break;
    if (why == SSL_ERROR_ZERO_RETURN) {
      outcome = fail(make_error("tls.closed", "the peer closed the TLS session"));
      break;
    }
    outcome = fail(diagnose(ssl_, why, take_errors(), false));
    break;
  }
  OPENSSL_cleanse(buf.data(), buf.size());
  return outcome;
}

status tls_channel::flush_pending() {
  if (plaintext_out_.empty()) return {};
  bytes pending = std::move(plaintext_out_);
  plaintext_out_.clear();
  auto st = write(pending);
  OPENSSL_cleanse(pending.data(), pending.size());
  return st;
}

bytes tls_channel::take_output() {
  bytes out;
  if (ssl_ == nullptr) return out;
  BIO* w = SSL_get_wbio(ssl_);
  const std::size_t pending = BIO_ctrl_pending(w);
  if (pending == 0) return out;
  out.resize(pending);
  const int n = BIO_read(w, out.data(), static_cast<int>(pending));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

status tls_channel::write(byte_view plaintext) {
  if (failed_) return error_;
  if (closed_) return make_error("tls.closed", "the TLS session was closed");
  if (plaintext.empty()) return {};
  if (!handshake_done_) {
    plaintext_out_.insert(plaintext_out_.end(), plaintext.begin(), plaintext.end());
    return {};
  }
  ERR_clear_error();
  std::size_t n = 0;
  // Without SSL_MODE_ENABLE_PARTIAL_WRITE, a successful write took everything.
  const int rc = SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &n);
  if (rc != 1) return fail(diagnose(ssl_, SSL_get_error(ssl_, rc), take_errors(), false));
  return {};
}

bytes tls_channel::read() {
  return std::exchange(plaintext_in_, {});
}

void tls_channel::close() {
  if (failed_ || closed_ || ssl_ == nullptr) return;
  closed_ = true;
  if (!handshake_done_) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);  // queues close_notify; the peer's answer is not awaited
  ERR_clear_error();
}

}  // namespace eftd
