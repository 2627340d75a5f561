// The back-office web pages end to end: the real eftd with [listen.backoffice] on port 0 and a
// self-signed certificate, a user made through the admin socket, login over HTTPS (an OpenSSL
// client), search, detail, exports, charts, CSRF refusals, lockout after 10 bad passwords and
// the idle timeout.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <thread>

#include "e2e_util.hpp"

using namespace eftd::test;

namespace {

struct http_reply {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One HTTPS exchange on a fresh connection (Connection: close). The certificate is
// self-signed, so it is not verified here; its fingerprint is checked against eftd's log.
http_reply https(int port, const std::string& method, const std::string& target,
                 const std::string& cookie = {}, const std::string& form = {},
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
    req +=
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + std::to_string(form.size()) +
        "\r\n";
  req += "\r\n" + form;
  REQUIRE(SSL_write(ssl, req.data(), static_cast<int>(req.size())) == static_cast<int>(req.size()));
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
std::string session_cookie(const http_reply& r) {
  const auto sc = r.header("set-cookie");
  return sc.substr(0, sc.find(';'));
}

std::string csrf_of(const std::string& html) {
  std::smatch m;
  REQUIRE(std::regex_search(html, m, std::regex("name=\"csrf\" value=\"([0-9a-f]{64})\"")));
  return m[1];
}

// One JSON line to eftd's admin socket, one back.
nlohmann::json admin(const std::string& socket_path, const nlohmann::json& req) {
  return admin_request(socket_path, req, 30s);
}

struct logged_in {
  std::string cookie;
  std::string csrf;
};

// GET /login for a session and its token, then POST the form; returns the reply of the POST.
http_reply try_login(int port, const std::string& user, const std::string& password,
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

}  // namespace

TEST_CASE("back office: login over HTTPS, search, detail, exports, charts, CSRF, logout", "[e2e][reports]") {
  installation inst("e2e-backoffice");
  inst.start_eftd({"--set", "listen.backoffice.port=0"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  // The self-signed certificate's fingerprint is in the log, for staff to compare.
  std::string fp;
  (void)https(port, "GET", "/static/app.css", {}, {}, &fp);
  CHECK(fp.size() == 95);
  CHECK(contains(slurp(inst.dir + "/eftd.log"), fp));

  auto added =
      admin(inst.dir + "/admin.sock",
            {{"cmd", "user_add"}, {"name", "anna"}, {"role", "admin"}, {"password", "anna-secret-1"}});
  REQUIRE(added.value("ok", false));
  auto dup =
      admin(inst.dir + "/admin.sock",
            {{"cmd", "user_add"}, {"name", "anna"}, {"role", "viewer"}, {"password", "anna-secret-2"}});
  CHECK(dup["error"].value("code", "") == "users.exists");

  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("BO");
  REQUIRE(inst.pos("T01", {"sale", "--order", order, "--amount", "12.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");

  // Not logged in: pages redirect to the login form.
  auto anon = https(port, "GET", "/transactions");
  CHECK(anon.status == 303);
  CHECK(anon.header("location") == "/login");

  // The login form's session cookie and security headers.
  auto form = https(port, "GET", "/login");
  REQUIRE(form.status == 200);
  const auto sc = form.header("set-cookie");
  CHECK(contains(sc, "; Secure"));
  CHECK(contains(sc, "; HttpOnly"));
  CHECK(contains(sc, "; SameSite=Strict"));
  CHECK(std::regex_search(sc, std::regex("^__Host-eftd=[0-9a-f]{64};")));
  CHECK(contains(form.header("content-security-policy"), "default-src 'none'"));
  CHECK_FALSE(contains(form.header("content-security-policy"), "unsafe-inline"));
  CHECK(form.header("x-frame-options") == "DENY");
  CHECK(form.header("cache-control") == "no-store");
  CHECK_FALSE(contains(form.body, "<script"));

  // POST without the token (or with another one): 403, whatever the password.
  const auto form_cookie = session_cookie(form);
  CHECK(https(port, "POST", "/login", form_cookie, "user=anna&password=anna-secret-1").status == 403);
  CHECK(https(port, "POST", "/login", form_cookie,
              "csrf=" + std::string(64, '0') + "&user=anna&password=anna-secret-1")
            .status == 403);
  CHECK(https(port, "POST", "/login", {}, "csrf=x&user=anna&password=anna-secret-1").status == 403);

  CHECK(try_login(port, "anna", "wrong-password").status == 401);
  logged_in s;
  auto ok = try_login(port, "anna", "anna-secret-1", &s);
  REQUIRE(ok.status == 303);
  CHECK(ok.header("location") == "/transactions");
  CHECK(s.cookie != form_cookie);  // a fresh session id at login

  // Search by till and order number; the masked PAN only.
  auto list = https(port, "GET", "/transactions?till=T01&order=" + order, s.cookie);
  REQUIRE(list.status == 200);
  CHECK(contains(list.body, ">" + order + "<"));
  CHECK(contains(list.body, "1 transaction(s)"));
  CHECK(contains(list.body, "476173******0119"));
  CHECK_FALSE(contains(list.body, test_pan));
  auto none = https(port, "GET", "/transactions?till=T01&order=NOPE" + order, s.cookie);
  CHECK(contains(none.body, "0 transaction(s)"));
  // Last 4 digits, and the full PAN through the posted card form (hash only in the URL).
  CHECK(contains(https(port, "GET", "/transactions?card=0119&order=" + order, s.cookie).body,
                 "1 transaction(s)"));
  auto by_card =
      https(port, "POST", "/transactions/by-card", s.cookie, "csrf=" + s.csrf + "&pan=" + test_pan);
  REQUIRE(by_card.status == 303);
  CHECK(std::regex_match(by_card.header("location"), std::regex("/transactions\\?pan_hash=[0-9a-f]{64}")));
  CHECK(contains(https(port, "GET", by_card.header("location"), s.cookie).body, ">" + order + "<"));
  CHECK(https(port, "POST", "/transactions/by-card", s.cookie, "pan=" + test_pan).status == 403);

  // Detail with the full event log.
  std::smatch m;
  REQUIRE(std::regex_search(list.body, m, std::regex("href=\"/transactions/([0-9A-F]{32})\"")));
  const std::string order_id = m[1];
  auto detail = https(port, "GET", "/transactions/" + order_id, s.cookie);
  REQUIRE(detail.status == 200);
  CHECK(contains(detail.body, "Event log"));
  CHECK(contains(detail.body, "id=\"events\""));
  CHECK(contains(detail.body, "id=\"messages\""));
  CHECK_FALSE(contains(detail.body, test_pan));
  CHECK(https(port, "GET", "/transactions/" + std::string(32, 'F'), s.cookie).status == 404);

  // Exports.
  auto csv = https(port, "GET", "/transactions?till=T01&format=csv", s.cookie);
  REQUIRE(csv.status == 200);
  CHECK(contains(csv.header("content-type"), "text/csv"));
  CHECK(contains(csv.body, order));
  CHECK_FALSE(contains(csv.body, test_pan));
  auto js = https(port, "GET", "/transactions/" + order_id + "?format=json", s.cookie);
  REQUIRE(js.status == 200);
  CHECK_FALSE(nlohmann::json::parse(js.body, nullptr, false).is_discarded());

  // The other pages render.
  auto charts = https(port, "GET", "/charts", s.cookie);
  REQUIRE(charts.status == 200);
  CHECK(contains(charts.body, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-hourly\""));
  CHECK(contains(charts.body, "class=\"bar\""));
  CHECK(https(port, "GET", "/settlement", s.cookie).status == 200);
  CHECK(https(port, "GET", "/cases", s.cookie).status == 200);
  auto status = https(port, "GET", "/status", s.cookie);
  CHECK(status.status == 200);
  CHECK(contains(status.body, "id=\"tills\""));
  CHECK(https(port, "GET", "/users", s.cookie).status == 200);

  // Logout needs the token too; afterwards the old cookie is worthless.
  CHECK(https(port, "POST", "/logout", s.cookie, "").status == 403);
  CHECK(https(port, "POST", "/logout", s.cookie, "csrf=" + s.csrf).status == 303);
  CHECK(https(port, "GET", "/transactions", s.cookie).status == 303);

  // eftctl lists users through the admin socket.
  process ctl(bin_path("eftctl"), {"users", "list", "--socket", inst.dir + "/admin.sock"});
  std::vector<std::string> out;
  while (auto line = ctl.read_line(30s)) out.push_back(*line);
  CHECK(ctl.wait_exit(30s) == std::optional<int>{0});
  CHECK(any_line_contains(out, "anna"));

  // A clean stop with a connection still open on the listener (its coroutine is destroyed).
  raw_client idle(port);
  CHECK(inst.eftd->stop() == 0);
}

TEST_CASE("back office: lockout after 10 bad passwords, unlock through the admin socket",
          "[e2e][reports][security]") {
  installation inst("e2e-backoffice-lock", /*with_acquirer=*/false);
  inst.start_eftd({"--set", "listen.backoffice.port=0"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  REQUIRE(admin(inst.dir + "/admin.sock",
                {{"cmd", "user_add"}, {"name", "bob"}, {"role", "viewer"}, {"password", "bob-secret-12"}})
              .value("ok", false));
  for (int i = 1; i <= 9; ++i) CHECK(try_login(port, "bob", "not-his-password").status == 401);
  CHECK(try_login(port, "bob", "not-his-password").status == 401);  // the 10th locks
  auto locked = try_login(port, "bob", "bob-secret-12");
  CHECK(locked.status == 403);
  CHECK(contains(locked.body, "locked"));
  auto users = admin(inst.dir + "/admin.sock", {{"cmd", "user_list"}});
  REQUIRE(users["users"].size() == 1);
  CHECK(users["users"][0].value("locked", false));
  CHECK(users["users"][0].value("failed_attempts", 0) == 10);
  REQUIRE(admin(inst.dir + "/admin.sock", {{"cmd", "user_unlock"}, {"name", "bob"}}).value("ok", false));
  CHECK(try_login(port, "bob", "bob-secret-12").status == 303);
  // A viewer cannot manage users.
  logged_in s;
  REQUIRE(try_login(port, "bob", "bob-secret-12", &s).status == 303);
  CHECK(https(port, "GET", "/users", s.cookie).status == 403);
  CHECK(https(port, "POST", "/users", s.cookie,
              "csrf=" + s.csrf + "&name=eve&role=admin&password=eve-secret-123")
            .status == 403);
}

TEST_CASE("back office: an idle session ends after backoffice.session_idle_s", "[e2e][reports][security]") {
  installation inst("e2e-backoffice-idle", /*with_acquirer=*/false);
  inst.start_eftd({"--set", "listen.backoffice.port=0", "--set", "backoffice.session_idle_s=2"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  REQUIRE(admin(inst.dir + "/admin.sock",
                {{"cmd", "user_add"}, {"name", "cid"}, {"role", "viewer"}, {"password", "cid-secret-123"}})
              .value("ok", false));
  auto login = try_login(port, "cid", "cid-secret-123");
  REQUIRE(login.status == 303);
  const auto cookie = session_cookie(login);
  CHECK(https(port, "GET", "/transactions", cookie).status == 200);
  // Idle time must pass untouched (any request restarts it), so this waits for time itself,
  // not for an event: more than the 2 s idle limit, then one look, under an overall deadline.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int status = 200;
  while (status == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2500ms);
    status = https(port, "GET", "/transactions", cookie).status;
  }
  CHECK(status == 303);
}
