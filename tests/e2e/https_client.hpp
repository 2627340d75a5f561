// A small HTTPS client for the back-office e2e tests (e2e_backoffice_tests, e2e_cases_tests,
// e2e_notify_tests): one exchange per connection over OpenSSL, the session cookie, the CSRF
// token of a page and a login. eftd's back-office certificate is self-signed and not verified
// here; e2e_backoffice_tests compares its fingerprint with eftd's log instead.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <regex>
#include <string>

namespace eftd::test {

struct http_reply {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One HTTPS exchange on a fresh connection (Connection: close) to 127.0.0.1:port.
// POST bodies are sent as `content_type`. declared_length: a Content-Length to announce
// without sending the body (a size refusal is answered at once, and no unread bytes turn the
// server's close into a reset that loses the answer). fingerprint: set to the server
// certificate's SHA-256 as colon-separated upper-case hex.
inline http_reply https(int port, const std::string& method, const std::string& target,
                        const std::string& cookie = {}, const std::string& body = {},
                        const std::string& content_type = "application/x-www-form-urlencoded",
                        std::optional<std::size_t> declared_length = std::nullopt,
                        std::string* fingerprint = nullptr) {
  http_reply r;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx != nullptr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  // A server that stops answering fails the test instead of hanging it.
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  REQUIRE(SSL_connect(ssl) == 1);
  if (fingerprint != nullptr) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    X509_digest(cert, EVP_sha256(), md, &n);
    X509_free(cert);
    fingerprint->clear();
    char buf[4];
    for (unsigned i = 0; i < n; ++i) {
      std::snprintf(buf, sizeof buf, "%02X", md[i]);
      *fingerprint += (i ? ":" : "") + std::string(buf);
    }
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  if (!cookie.empty()) req += "Cookie: " + cookie + "\r\n";
  if (method == "POST")
    req += "Content-Type: " + content_type +
           "\r\nContent-Length: " + std::to_string(declared_length.value_or(body.size())) + "\r\n";
  req += "\r\n" + (declared_length ? std::string() : body);
  // A refused upload may be answered (and the connection closed) before all of it is sent.
  std::size_t sent = 0;
  while (sent < req.size()) {
    const int n =
        SSL_write(ssl, req.data() + sent, static_cast<int>(std::min<std::size_t>(req.size() - sent, 65536)));
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string all;
  char buf[16384];
  for (;;) {
    const int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0) break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  const auto head_end = all.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  const std::string head = all.substr(0, head_end);
  r.body = all.substr(head_end + 4);
  r.status = std::stoi(head.substr(9, 3));
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos) {
    const auto next = head.find("\r\n", at + 2);
    const auto line = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers.emplace(name, line.substr(line.find_first_not_of(' ', colon + 1)));
    }
    at = next;
  }
  return r;
}

// "__Host-eftd=<id>" from a Set-Cookie header.
inline std::string session_cookie(const http_reply& r) {
  const auto sc = r.header("set-cookie");
  return sc.substr(0, sc.find(';'));
}

// The CSRF token of a page's first form.
inline std::string csrf_of(const std::string& html) {
  std::smatch m;
  REQUIRE(std::regex_search(html, m, std::regex("name=\"csrf\" value=\"([0-9a-f]{64})\"")));
  return m[1];
}

struct logged_in {
  std::string cookie;
  std::string csrf;
};

// GET /login for a session and its token, then POST the form; returns the reply of the POST.
// On success (303) `out` gets the logged-in session's cookie and CSRF token.
inline http_reply try_login(int port, const std::string& user, const std::string& password,
                            logged_in* out = nullptr) {
  auto form = https(port, "GET", "/login");
  REQUIRE(form.status == 200);
  const auto cookie = session_cookie(form);
  const auto csrf = csrf_of(form.body);
  auto r = https(port, "POST", "/login", cookie, "csrf=" + csrf + "&user=" + user + "&password=" + password);
  if (out != nullptr && r.status == 303) {
    out->cookie = session_cookie(r);
    auto page = https(port, "GET", "/transactions", out->cookie);
    REQUIRE(page.status == 200);
    out->csrf = csrf_of(page.body);
  }
  return r;
}

// A login that must succeed.
inline logged_in login(int port, const std::string& user, const std::string& password) {
  logged_in out;
  REQUIRE(try_login(port, user, password, &out).status == 303);
  return out;
}

}  // namespace eftd::test
