// A scripted POS server for client tests: one listening socket on 127.0.0.1 port 0, one
// thread that accepts a single connection and runs the test's script against it; optionally
// over TLS (fake_tls), with a throwaway PKI made by test_pki().
//
// Catch2 assertions are not thread-safe, so the script never asserts: it records what it
// received (received()) and the test checks that after join(). Every wait has a deadline.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eftd/pos/codec.hpp"
#include "process.hpp"

namespace eftd::pos::test {

using test_clock = std::chrono::steady_clock;

inline int ms_left(test_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - test_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count()) + 1;
}

// ---------------------------------------------------------------- throwaway PKI

// PEM files in a temp dir: a CA, a server certificate for localhost/127.0.0.1 and a client
// certificate with CN "T01" from it; an unrelated CA with a server certificate of its own (the
// "unknown CA" case); and a server certificate from the good CA naming another host.
struct pki_files {
  std::string dir;
  std::string ca_cert;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string other_ca_cert;
  std::string rogue_server_cert, rogue_server_key;  // signed by the other CA
  std::string wrong_name_cert, wrong_name_key;      // good CA, names only "elsewhere.invalid"
};

namespace pki_detail {

struct key_del {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_del {
  void operator()(X509* x) const { X509_free(x); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_del>;
using x509_ptr = std::unique_ptr<X509, x509_del>;

inline key_ptr make_key() {
  key_ptr k(EVP_EC_gen("P-256"));
  if (!k) throw std::runtime_error("test pki: key generation failed");
  return k;
}

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) throw std::runtime_error("test pki: bad extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr: self-signed CA.
inline x509_ptr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                          const char* san, long serial) {
  x509_ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("eftd tests"),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(signer));
  add_ext(x.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer == nullptr) {
    add_ext(x.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x.get(), signer, NID_authority_key_identifier, "keyid:always");
    add_ext(x.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x.get(), signer, NID_key_usage, "critical,digitalSignature");
    add_ext(x.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (san != nullptr) add_ext(x.get(), signer, NID_subject_alt_name, san);
  }
  if (X509_sign(x.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    throw std::runtime_error("test pki: signing failed");
  }
  return x;
}

inline void write_cert(const std::string& path, X509* x) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr || PEM_write_X509(f, x) != 1) throw std::runtime_error("test pki: cannot write " + path);
  std::fclose(f);
}

inline void write_key(const std::string& path, EVP_PKEY* k) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr || PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw std::runtime_error("test pki: cannot write " + path);
  }
  std::fclose(f);
}

}  // namespace pki_detail

// Generated once per test process.
inline const pki_files& test_pki() {
  static const pki_files files = [] {
    using namespace pki_detail;
    pki_files f;
    f.dir = eftd::test::make_temp_dir("pos-tls");
    const auto path = [&](const char* name) { return f.dir + "/" + name; };
    auto ca_key = make_key();
    auto ca = make_cert(ca_key.get(), "eftd test CA", nullptr, nullptr, nullptr, 1);
    auto srv_key = make_key();
    auto srv = make_cert(srv_key.get(), "localhost", ca.get(), ca_key.get(), "DNS:localhost,IP:127.0.0.1", 2);
    auto cli_key = make_key();
    auto cli = make_cert(cli_key.get(), "T01", ca.get(), ca_key.get(), nullptr, 3);
    auto other_key = make_key();
    auto other = make_cert(other_key.get(), "unknown CA", nullptr, nullptr, nullptr, 1);
    auto rogue_key = make_key();
    auto rogue = make_cert(rogue_key.get(), "localhost", other.get(), other_key.get(),
                           "DNS:localhost,IP:127.0.0.1", 2);
    auto wrong_key = make_key();
    auto wrong =
        make_cert(wrong_key.get(), "elsewhere.invalid", ca.get(), ca_key.get(), "DNS:elsewhere.invalid", 4);
    f.ca_cert = path("ca.pem");
    f.server_cert = path("server.pem");
    f.server_key = path("server.key");
    f.client_cert = path("client.pem");
    f.client_key = path("client.key");
    f.other_ca_cert = path("other-ca.pem");
    f.rogue_server_cert = path("rogue.pem");
    f.rogue_server_key = path("rogue.key");
    f.wrong_name_cert = path("wrong-name.pem");
    f.wrong_name_key = path("wrong-name.key");
    write_cert(f.ca_cert, ca.get());
    write_cert(f.server_cert, srv.get());
    write_key(f.server_key, srv_key.get());
    write_cert(f.client_cert, cli.get());
    write_key(f.client_key, cli_key.get());
    write_cert(f.other_ca_cert, other.get());
    write_cert(f.rogue_server_cert, rogue.get());
    write_key(f.rogue_server_key, rogue_key.get());
    write_cert(f.wrong_name_cert, wrong.get());
    write_key(f.wrong_name_key, wrong_key.get());
    return f;
  }();
  // Throwaway keys do not outlive the test process.
  static const struct remover {
    std::string dir;
    ~remover() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_at_exit{files.dir};
  return files;
}

// TLS settings of the fake server.
struct fake_tls {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;        // "" = do not ask for a client certificate
  bool require_client_cert = false;  // with client_ca_file: refuse clients without one
};

// What the fake server saw of the TLS handshake.
struct tls_seen {
  bool handshake_ok = false;
  std::string error;      // why the handshake failed
  std::string client_cn;  // subject CN of the client certificate ("" = none presented)
  int version = 0;        // TLS1_2_VERSION, TLS1_3_VERSION...
};

// ---------------------------------------------------------------- connection

class fake_conn {
 public:
  explicit fake_conn(int fd, SSL* ssl = nullptr) : fd_(fd), ssl_(ssl) {}

  // Next decoded message from the client; nullopt on EOF, timeout or a decode error.
  std::optional<message> expect(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto line = read_line(timeout);
    if (!line) return std::nullopt;
    auto m = decode(*line);
    if (!m) return std::nullopt;
    return std::move(*m);
  }

  template <class T>
  std::optional<T> expect_type(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto m = expect(timeout);
    if (!m) return std::nullopt;
    if (auto* t = std::get_if<T>(&*m)) return *t;
    return std::nullopt;
  }

  void send(const message& m) { send_raw(encode(m)); }

  void send_raw(const std::string& bytes) {
    const auto deadline = test_clock::now() + std::chrono::seconds(10);
    std::size_t off = 0;
    while (off < bytes.size() && fd_ >= 0) {
      int want = POLLOUT;
      if (ssl_ != nullptr) {
        std::size_t n = 0;
        if (SSL_write_ex(ssl_, bytes.data() + off, bytes.size() - off, &n) == 1) {
          off += n;
          continue;
        }
        const int e = SSL_get_error(ssl_, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return;
        want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      } else {
        const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
          off += static_cast<std::size_t>(n);
          continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
      }
      pollfd p{fd_, static_cast<short>(want), 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0) return;
    }
  }

  void close() {
    if (ssl_ != nullptr) {
      (void)SSL_shutdown(ssl_);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Waits until the client closes its end (EOF); true if it did within the deadline.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = test_clock::now() + timeout;
    for (;;) {
      char buf[4096];
      const int r = read_some(buf, sizeof buf, deadline);
      if (r < 0) return r == eof;
    }
  }

  ~fake_conn() { close(); }

 private:
  static constexpr int eof = -1;
  static constexpr int timed_out = -2;

  // >0 bytes read; eof (also on errors); timed_out.
  int read_some(char* buf, std::size_t len, test_clock::time_point deadline) {
    for (;;) {
      if (fd_ < 0) return eof;
      int want = POLLIN;
      if (ssl_ != nullptr) {
        std::size_t n = 0;
        if (SSL_read_ex(ssl_, buf, len, &n) == 1) return static_cast<int>(n);
        const int e = SSL_get_error(ssl_, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return eof;
        want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      } else {
        const ssize_t n = ::recv(fd_, buf, len, 0);
        if (n > 0) return static_cast<int>(n);
        if (n == 0) return eof;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return eof;
      }
      pollfd p{fd_, static_cast<short>(want), 0};
      const int left = ms_left(deadline);
      if (left == 0) return timed_out;
      if (::poll(&p, 1, left) == 0) return timed_out;
    }
  }

  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = test_clock::now() + timeout;
    for (;;) {
      auto l = reader_.next();
      if (!l) return std::nullopt;
      if (*l) return **l;
      char buf[4096];
      const int n = read_some(buf, sizeof buf, deadline);
      if (n <= 0) return std::nullopt;
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

  int fd_;
  SSL* ssl_;
  line_reader reader_;
};

// ---------------------------------------------------------------- server

class fake_server {
 public:
  using script = std::function<void(fake_conn&, std::vector<message>& received)>;

  explicit fake_server(script s, std::optional<fake_tls> tls = std::nullopt) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 4) != 0) {
      throw std::runtime_error("fake_server: cannot listen");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, s = std::move(s), tls = std::move(tls)] {
      // SSL_write/SSL_shutdown use write(2): a client that already left must not kill the test
      // with SIGPIPE. Blocked in this thread only, so the client under test gets no such help.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      SSL* ssl = nullptr;
      if (tls) {
        ssl = handshake(fd, *tls);
        if (ssl == nullptr) {
          ::close(fd);
          return;
        }
      }
      fake_conn conn(fd, ssl);
      std::vector<message> got;
      s(conn, got);
      std::lock_guard lock(mu_);
      received_ = std::move(got);
    });
  }

  ~fake_server() {
    join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  std::uint16_t port() const { return port_; }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Messages the script recorded; call after join().
  std::vector<message> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

  // The TLS handshake as the server saw it; call after join().
  tls_seen tls() {
    std::lock_guard lock(mu_);
    return tls_;
  }

 private:
  static std::string ssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
      const char* r = ERR_reason_error_string(e);
      out += (out.empty() ? "" : "; ") + std::string(r != nullptr ? r : "?");
    }
    return out;
  }

  SSL* handshake(int fd, const fake_tls& t) {
    tls_seen seen;
    const auto give_up = [&](std::string why, SSL* ssl) -> SSL* {
      seen.error = std::move(why);
      if (ssl != nullptr) SSL_free(ssl);
      std::lock_guard lock(mu_);
      tls_ = seen;
      return nullptr;
    };
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (ctx_ == nullptr || SSL_CTX_use_certificate_chain_file(ctx_, t.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, t.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return give_up("server set-up: " + ssl_errors(), nullptr);
    }
    if (!t.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, t.client_ca_file.c_str(), nullptr) != 1) {
        return give_up("client CA: " + ssl_errors(), nullptr);
      }
      SSL_CTX_set_client_CA_list(ctx_, SSL_load_client_CA_file(t.client_ca_file.c_str()));
      SSL_CTX_set_verify(
          ctx_, SSL_VERIFY_PEER | (t.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    }
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    const auto deadline = test_clock::now() + std::chrono::seconds(10);
    for (;;) {
      ERR_clear_error();
      const int rc = SSL_accept(ssl);
      if (rc == 1) break;
      const int e = SSL_get_error(ssl, rc);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return give_up(ssl_errors(), ssl);
      pollfd p{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0) return give_up("handshake timed out", ssl);
    }
    seen.handshake_ok = true;
    seen.version = SSL_version(ssl);
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      char cn[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
      seen.client_cn = cn;
      X509_free(peer);
    }
    std::lock_guard lock(mu_);
    tls_ = seen;
    return ssl;
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  SSL_CTX* ctx_ = nullptr;
  std::thread thread_;
  std::mutex mu_;
  std::vector<message> received_;
  tls_seen tls_;
};

// The usual opening: accept the login and reply login_ok.
inline bool accept_login(fake_conn& c, std::vector<message>& got) {
  auto l = c.expect_type<login>();
  if (!l) return false;
  got.emplace_back(*l);
  c.send(login_ok{l->id, "fake", "2024-05-02", 1, {"sale", "status_query"}});
  return true;
}

}  // namespace eftd::pos::test
