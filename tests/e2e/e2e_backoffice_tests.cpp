// The back-office web pages end to end: the real eftd with [listen.backoffice] on port 0 and a
// self-signed certificate, a user made through the admin socket, login over HTTPS (an OpenSSL
// client), search, detail, exports, charts, CSRF refusals, lockout after 10 bad passwords and
// the idle timeout.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "e2e_util.hpp"
#include "eftd/journal/reader.hpp"
#include "https_client.hpp"

using namespace eftd::test;

namespace {

// One JSON line to eftd's admin socket, one back.
nlohmann::json admin(const std::string& socket_path, const nlohmann::json& req) {
  return admin_request(socket_path, req, 30s);
}

}  // namespace

TEST_CASE("back office: login over HTTPS, search, detail, exports, charts, CSRF, logout", "[e2e][reports]") {
  installation inst("e2e-backoffice");
  inst.start_eftd({"--set", "listen.backoffice.port=0"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  // The self-signed certificate's fingerprint is in the log, for staff to compare.
  std::string fp;
  (void)https(port, "GET", "/static/app.css", {}, {}, "application/x-www-form-urlencoded", std::nullopt, &fp);
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

namespace {

// The notifications of `state` in the journal (read after each change the test waits for).
std::vector<eftd::journal::notification_row> notifications_in(const installation& inst,
                                                              const std::string& state) {
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  eftd::journal::notification_filter f;
  f.state = state;
  auto rows = rd->list_notifications(f);
  REQUIRE(rows);
  return *rows;
}

bool wait_for_expired(const installation& inst, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!notifications_in(inst, "expired").empty()) return true;
    std::this_thread::sleep_for(50ms);  // the journal has no change feed for a test
  }
  return false;
}

}  // namespace

TEST_CASE("back office: Retry now on the notifications page, supervisors only, CSRF, audited",
          "[e2e][reports][security]") {
  installation inst("e2e-backoffice-notify");
  // A receiver that is never there: the notification expires after a second.
  notify_to_nowhere(inst);
  inst.start_eftd({"--set", "listen.backoffice.port=0"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  const auto sock = inst.dir + "/admin.sock";
  for (const auto& [name, role] : {std::pair{"sam", "supervisor"}, std::pair{"vic", "viewer"}})
    REQUIRE(admin(sock, {{"cmd", "user_add"},
                         {"name", name},
                         {"role", role},
                         {"password", std::string(name) + "-secret-12"}})
                .value("ok", false));
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  REQUIRE(inst.pos("T01", {"sale", "--order", order_no("BN"), "--amount", "7.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");
  REQUIRE(wait_for_expired(inst, 30s));
  const auto id = notifications_in(inst, "expired").at(0).notification_id;

  // A viewer sees the notification and its endpoint, without the button, and may not retry.
  auto vic = login(port, "vic", "vic-secret-12");
  auto seen = https(port, "GET", "/notifications", vic.cookie);
  REQUIRE(seen.status == 200);
  CHECK(contains(seen.body, id));
  CHECK(contains(seen.body, "<th>Endpoint</th>"));
  CHECK_FALSE(contains(seen.body, "action=\"/notifications/retry\""));
  CHECK_FALSE(contains(seen.body, ">Retry now</button>"));
  CHECK(https(port, "POST", "/notifications/retry", vic.cookie, "csrf=" + vic.csrf + "&id=" + id).status ==
        403);

  // A supervisor: the button, a refusal without the CSRF token, then the retry.
  auto sam = login(port, "sam", "sam-secret-12");
  auto page = https(port, "GET", "/notifications", sam.cookie);
  REQUIRE(page.status == 200);
  CHECK(contains(page.body, "action=\"/notifications/retry\""));
  CHECK(contains(page.body, ">Retry now</button>"));
  CHECK(https(port, "POST", "/notifications/retry", sam.cookie, "id=" + id).status == 403);
  auto done = https(port, "POST", "/notifications/retry", sam.cookie, "csrf=" + sam.csrf + "&id=" + id);
  CHECK(done.status == 200);
  CHECK(contains(done.body, "Notification " + id + " is pending"));
  // It went back to the queue with a fresh maximum age (then expires again: still no receiver).
  {
    auto rd = eftd::journal::reader::open(inst.db());
    REQUIRE(rd);
    auto row = rd->notification(id);
    REQUIRE(row);
    REQUIRE(row->has_value());
    CHECK((*row)->expires_ms.has_value());
  }
  auto unknown =
      https(port, "POST", "/notifications/retry", sam.cookie, "csrf=" + sam.csrf + "&id=NO-SUCH-ID");
  CHECK(unknown.status == 404);
  inst.stop_pad();
  inst.eftd->stop();

  // Audited like the admin socket's notify_retry: who, from where, which notification, outcome.
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  eftd::journal::audit_filter f;
  f.action = "notify_retry";
  auto audit = rd->audit_log(f);
  REQUIRE(audit);
  REQUIRE(audit->size() == 2);
  CHECK(audit->at(0).actor == "sam");
  CHECK(audit->at(0).source == "web");
  CHECK(audit->at(0).subject == id);
  CHECK(audit->at(0).outcome == "ok");
  CHECK(audit->at(1).subject == "NO-SUCH-ID");
  CHECK(audit->at(1).outcome == "journal.not_found");
}
