// TCP connect with a deadline, and TLS with OpenSSL straight on the non-blocking socket.
#include "transport.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace eftd::pos::detail {
namespace {

eftd::error make(std::string_view code, std::string message) {
  return eftd::error{std::string(code), std::move(message)};
}

// Connects a non-blocking socket to one address within the deadline; -1 and errno on failure.
int connect_one(const addrinfo& ai, clock::time_point deadline) {
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return -1;
  if (::connect(fd, ai.ai_addr, ai.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, poll_timeout_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n == 0 ? ETIMEDOUT : errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
      const int e = err != 0 ? err : errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    return fd;
  }
}

class plain_transport final : public transport {
 public:
  explicit plain_transport(int fd) : fd_(fd) {}
  ~plain_transport() override { ::close(fd_); }

  int fd() const override { return fd_; }

  io_result read_some(char* buf, std::size_t len) override {
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, len, 0);
      if (n > 0) return {io_result::state::done, static_cast<std::size_t>(n), {}};
      if (n == 0) return {io_result::state::closed, 0, {}};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_result::state::want_read, 0, {}};
      return {io_result::state::failed, 0, std::string("read failed: ") + std::strerror(errno)};
    }
  }

  io_result write_some(const char* buf, std::size_t len) override {
    for (;;) {
      const ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
      if (n >= 0) return {io_result::state::done, static_cast<std::size_t>(n), {}};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_result::state::want_write, 0, {}};
      return {io_result::state::failed, 0, std::string("write failed: ") + std::strerror(errno)};
    }
  }

  void shutdown() override { ::shutdown(fd_, SHUT_RDWR); }

 private:
  int fd_;
};

// OpenSSL writes to the socket with write(2), not send(MSG_NOSIGNAL): on a connection the peer
// has reset, that raises SIGPIPE, whose default action kills the whole POS. A library must not
// change the process's signal disposition, so SIGPIPE is blocked in this thread around each
// SSL call and a SIGPIPE the call raised is consumed before unblocking; the call itself then
// just fails with EPIPE.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    // One already pending belongs to someone else: leave it for them.
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~sigpipe_guard() {
    if (!was_pending_) {
      const int saved = errno;
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
      errno = saved;
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// OpenSSL's error queue as one short human text (reason strings only, no file/line noise).
std::string ssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : "error " + std::to_string(ERR_GET_REASON(e));
  }
  return out;
}

struct ctx_deleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct ssl_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

class tls_transport final : public transport {
 public:
  tls_transport(int fd, std::unique_ptr<SSL_CTX, ctx_deleter> ctx, std::unique_ptr<SSL, ssl_deleter> ssl)
      : fd_(fd), ctx_(std::move(ctx)), ssl_(std::move(ssl)) {}
  ~tls_transport() override {
    ssl_.reset();
    ctx_.reset();
    ::close(fd_);
  }

  int fd() const override { return fd_; }

  io_result read_some(char* buf, std::size_t len) override {
    std::lock_guard lock(mu_);
    const sigpipe_guard no_sigpipe;  // a read may write too (TLS 1.3 key update, alerts)
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_read_ex(ssl_.get(), buf, len, &n) == 1) return {io_result::state::done, n, {}};
    return map_error();
  }

  io_result write_some(const char* buf, std::size_t len) override {
    std::lock_guard lock(mu_);
    const sigpipe_guard no_sigpipe;
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_write_ex(ssl_.get(), buf, len, &n) == 1) return {io_result::state::done, n, {}};
    return map_error();
  }

  void shutdown() override {
    std::lock_guard lock(mu_);
    const sigpipe_guard no_sigpipe;
    if (!shut_) {
      // Best effort close_notify; the socket is non-blocking, so this never waits for the peer.
      ERR_clear_error();
      (void)SSL_shutdown(ssl_.get());
      ERR_clear_error();
      shut_ = true;
    }
    ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  // Caller holds mu_: SSL_get_error reads state the last SSL call left behind.
  io_result map_error() {
    const int e = SSL_get_error(ssl_.get(), 0);
    switch (e) {
      case SSL_ERROR_WANT_READ:
        return {io_result::state::want_read, 0, {}};
      case SSL_ERROR_WANT_WRITE:
        return {io_result::state::want_write, 0, {}};
      case SSL_ERROR_ZERO_RETURN:
        return {io_result::state::closed, 0, {}};
      case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && errno == 0) return {io_result::state::closed, 0, {}};
        return {io_result::state::failed, 0, std::string("TLS I/O failed: ") + std::strerror(errno)};
      default:
        return {io_result::state::failed, 0, "TLS error: " + ssl_errors()};
    }
  }

  int fd_;
  std::mutex mu_;
  std::unique_ptr<SSL_CTX, ctx_deleter> ctx_;
  std::unique_ptr<SSL, ssl_deleter> ssl_;
  bool shut_ = false;
};

// An encrypted key file must never make the library ask for a passphrase on the terminal.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

bool is_ip_literal(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, s.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

eftd::result<std::unique_ptr<transport>> start_tls(int fd, const std::string& host,
                                                   clock::time_point deadline, const tls_options& tls) {
  const auto setup_failed = [&](std::string what) {
    ::close(fd);
    return make(codes::disconnected, "TLS setup failed: " + what);
  };
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, ctx_deleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return setup_failed(ssl_errors());
  // Production tills use TLS 1.2 or 1.3 only (PROTOCOL.md, Transport).
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A peer that drops TCP without close_notify is a plain disconnect here: a line is only ever
  // taken whole, so a truncated stream cannot forge a message.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_passphrase);
  if (!tls.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr) != 1) {
      return setup_failed("cannot load CA file " + tls.ca_file + ": " + ssl_errors());
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return setup_failed("cannot load the system CA store: " + ssl_errors());
  }
  if (!tls.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1) {
      return setup_failed("cannot load certificate file " + tls.cert_file + ": " + ssl_errors());
    }
    const std::string& key = tls.key_file.empty() ? tls.cert_file : tls.key_file;
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return setup_failed("cannot load private key file " + key + ": " + ssl_errors());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      return setup_failed("the private key does not match the certificate " + tls.cert_file);
    }
  } else if (!tls.key_file.empty()) {
    return setup_failed("a key file without a certificate file");
  }

  std::unique_ptr<SSL, ssl_deleter> ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return setup_failed(ssl_errors());
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const std::string name = tls.server_name.empty() ? host : tls.server_name;
  const bool ip = is_ip_literal(name);
  // SNI carries DNS names only (RFC 6066), never address literals.
  if (!ip && !name.empty()) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  if (tls.check_server_name) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    const int ok =
        ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) : SSL_set1_host(ssl.get(), name.c_str());
    if (ok != 1) return setup_failed("cannot set the expected server name " + name);
  }

  for (;;) {
    ERR_clear_error();
    int rc = 0;
    {
      const sigpipe_guard no_sigpipe;
      rc = SSL_connect(ssl.get());
    }
    if (rc == 1) break;
    const int e = SSL_get_error(ssl.get(), rc);
    short events = 0;
    if (e == SSL_ERROR_WANT_READ) events = POLLIN;
    if (e == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0) {
      std::string why;
      const long verify = SSL_get_verify_result(ssl.get());
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        why = errno != 0 ? std::strerror(errno) : "the server closed the connection";
      } else {
        why = ssl_errors();
      }
      if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      ::close(fd);
      return make(codes::disconnected, "TLS handshake failed: " + why);
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, poll_timeout_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return make(n == 0 ? codes::timeout : codes::disconnected,
                  n == 0 ? std::string("TLS handshake timed out")
                         : std::string("TLS handshake failed: poll: ") + std::strerror(errno));
    }
  }
  return std::unique_ptr<transport>(new tls_transport(fd, std::move(ctx), std::move(ssl)));
}

}  // namespace

int poll_timeout_ms(clock::time_point deadline) {
  if (deadline == clock::time_point::max()) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count()) + 1;
}

eftd::result<std::unique_ptr<transport>> open_transport(const std::string& host, std::uint16_t port,
                                                        clock::time_point deadline,
                                                        const client_options& options) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    return make(codes::disconnected, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  int fd = -1;
  int last_errno = 0;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = connect_one(*ai, deadline);
    if (fd < 0) last_errno = errno;
  }
  ::freeaddrinfo(list);
  if (fd < 0) {
    return make(last_errno == ETIMEDOUT ? codes::timeout : codes::disconnected,
                "cannot connect to " + host + ":" + service + ": " + std::strerror(last_errno));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (options.tls) return start_tls(fd, host, deadline, *options.tls);
  return std::unique_ptr<transport>(new plain_transport(fd));
}

}  // namespace eftd::pos::detail
