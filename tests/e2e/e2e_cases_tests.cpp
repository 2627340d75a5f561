// Reconciliation cases resolved by staff, and an acquirer's settlement file matched in the back
// office (issue 7), end to end: the real eftd with [listen.backoffice] on port 0 over HTTPS, the
// admin socket, eftctl and the acquirer simulator.
//
// Cases: two sales the simulator answers too late are reversed, and the reversals expire
// (reversal_expired, a case for people). A viewer sees them but cannot resolve; a supervisor
// resolves one on the web page (CSRF token, note), the other is resolved with `eftctl cases
// resolve` through the admin socket; a second resolution is refused as already resolved; both
// are in the audit log; the open / resolved / all filters show them where they belong.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <regex>

#include "e2e_util.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/reports/reports.hpp"
#include "eftd/settlement/layout.hpp"
#include "https_client.hpp"

using namespace eftd::test;
using nlohmann::json;

namespace {

void add_user(const installation& inst, const std::string& name, const std::string& role) {
  auto r = admin_request(
      inst.dir + "/admin.sock",
      {{"cmd", "user_add"}, {"name", name}, {"role", role}, {"password", name + "-secret-123"}}, 30s);
  REQUIRE(r.value("ok", false));
}

// Runs eftctl to completion; its stdout. Its exit code must be `want_exit`.
std::string eftctl(installation& inst, std::vector<std::string> args, int want_exit = 0) {
  process ctl(bin_path("eftctl"), std::move(args), inst.dir + "/eftctl.log");
  std::string out;
  while (auto line = ctl.read_line(60s)) out += *line + "\n";
  INFO(slurp(inst.dir + "/eftctl.log"));
  CHECK(ctl.wait_exit(30s) == std::optional<int>{want_exit});
  return out;
}

std::vector<eftd::journal::audit_row> audit_rows(const std::string& db, const std::string& action) {
  auto rd = eftd::journal::reader::open(db);
  REQUIRE(rd);
  eftd::journal::audit_filter f;
  f.action = action;
  auto rows = rd->audit_log(f);
  REQUIRE(rows);
  return *rows;
}

// The reversal of `order` (till T01) has expired: a reversal_expired case.
std::string expired_reversal(const installation& inst, const std::string& order) {
  auto v = wait_for_order(
      inst, order,
      [](const eftd::journal::order_view& o) {
        for (const auto& m : o.messages)
          if (m.mti == "0400" && m.state == "expired") return true;
        return false;
      },
      60s);
  REQUIRE(v);
  for (const auto& m : v->messages)
    if (m.mti == "0400" && m.state == "expired") return m.msg_id;
  FAIL("the reversal of " << order << " did not expire");
  return {};
}

std::string form_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.')
      out.push_back(static_cast<char>(c));
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("cases: a viewer reads, a supervisor resolves on the web, eftctl resolves, resolved once",
          "[e2e][reports]") {
  // The simulator holds answers to amounts ending in 77 for 4 s, longer than eftd waits: the
  // sale is reversed, the reversal is held too, and it expires after 1 s: a case for people.
  installation inst("e2e-cases", true, {"--delay-amount-suffix", "77=4000"});
  inst.start_eftd({"--set", "listen.backoffice.port=0", "--set", "acquirers.sim.response_timeout_ms=500",
                   "--set", "acquirers.sim.reversal_expiry_ms=1000"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  add_user(inst, "sue", "supervisor");
  add_user(inst, "vic", "viewer");
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");

  const auto first = order_no("CA"), second = order_no("CB");
  for (const auto& o : {first, second}) {
    auto r = inst.pos("T01", {"sale", "--order", o, "--amount", "10.77", "--currency", "PLN"});
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.result["reason"].value("code", "") == "acquirer.timeout");
  }
  const auto msg1 = expired_reversal(inst, first);
  const auto msg2 = expired_reversal(inst, second);
  const std::string key1 = "reversal_expired:" + msg1, key2 = "reversal_expired:" + msg2;

  // eftctl: both open (the default filter), none resolved.
  auto open_json = json::parse(
      eftctl(inst, {"report", "cases", "--db", inst.db(), "--kind", "reversal_expired", "--format", "json"}));
  REQUIRE(open_json.size() == 2);
  for (const auto& c : open_json) CHECK(c.value("status", "") == "open");
  CHECK(json::parse(
            eftctl(inst, {"report", "cases", "--db", inst.db(), "--status", "resolved", "--format", "json"}))
            .empty());
  eftctl(inst, {"report", "cases", "--db", inst.db(), "--status", "bogus"}, 2);

  // A viewer sees the cases, without a Resolve form, and cannot post one.
  auto vic = login(port, "vic", "vic-secret-123");
  auto page = https(port, "GET", "/cases", vic.cookie);
  REQUIRE(page.status == 200);
  CHECK(contains(page.body, "case-" + key1));
  CHECK(contains(page.body, "case-" + key2));
  CHECK_FALSE(contains(page.body, "/cases/resolve"));
  const std::string resolve1 = "kind=reversal_expired&subject=" + msg1 +
                               "&note=" + form_encode("acquirer confirmed by phone: reversed on their side");
  CHECK(https(port, "POST", "/cases/resolve", vic.cookie, "csrf=" + vic.csrf + "&" + resolve1).status == 403);

  // A supervisor: the form is there; without the token the post is refused.
  auto sue = login(port, "sue", "sue-secret-123");
  page = https(port, "GET", "/cases", sue.cookie);
  REQUIRE(page.status == 200);
  CHECK(contains(page.body, "action=\"/cases/resolve\""));
  CHECK(https(port, "POST", "/cases/resolve", sue.cookie, resolve1).status == 403);
  // An empty note is refused: a resolution says what was done.
  CHECK(https(port, "POST", "/cases/resolve", sue.cookie,
              "csrf=" + sue.csrf + "&kind=reversal_expired&subject=" + msg1 + "&note=")
            .status == 400);
  auto done = https(port, "POST", "/cases/resolve", sue.cookie, "csrf=" + sue.csrf + "&" + resolve1);
  CHECK(done.status == 200);
  CHECK(contains(done.body, "resolved."));
  // Now it is off the open list, on the resolved list with who, when and the note.
  page = https(port, "GET", "/cases", sue.cookie);
  CHECK_FALSE(contains(page.body, "case-" + key1));
  CHECK(contains(page.body, "case-" + key2));
  page = https(port, "GET", "/cases?status=resolved", sue.cookie);
  REQUIRE(page.status == 200);
  CHECK(contains(page.body, "case-" + key1));
  CHECK_FALSE(contains(page.body, "case-" + key2));
  CHECK(contains(page.body, "by sue"));
  CHECK(contains(page.body, "acquirer confirmed by phone: reversed on their side"));
  page = https(port, "GET", "/cases?status=all", sue.cookie);
  CHECK(contains(page.body, "case-" + key1));
  CHECK(contains(page.body, "case-" + key2));
  CHECK(https(port, "GET", "/cases?status=bogus", sue.cookie).status == 400);

  // Twice: refused as already resolved, on the web and on the admin socket.
  auto again = https(port, "POST", "/cases/resolve", sue.cookie, "csrf=" + sue.csrf + "&" + resolve1);
  CHECK(again.status == 409);
  CHECK(contains(again.body, "already resolved"));
  auto sock = admin_request(
      inst.dir + "/admin.sock",
      {{"cmd", "case_resolve"}, {"kind", "reversal_expired"}, {"subject", msg1}, {"note", "x"}}, 30s);
  CHECK_FALSE(sock.value("ok", true));
  CHECK(sock["error"].value("code", "") == "journal.state_conflict");
  CHECK(contains(sock["error"].value("message", ""), "already resolved"));
  // A case that does not exist.
  sock = admin_request(
      inst.dir + "/admin.sock",
      {{"cmd", "case_resolve"}, {"kind", "reversal_expired"}, {"subject", "NOSUCHMSG"}, {"note", "x"}}, 30s);
  CHECK(sock["error"].value("code", "") == "cases.not_found");

  // The second through eftctl (admin socket; the actor is this process's Unix user).
  const auto out =
      eftctl(inst, {"cases", "resolve", "--socket", inst.dir + "/admin.sock", "--kind", "reversal_expired",
                    "--subject", msg2, "--note", "written off, ticket 4711"});
  CHECK(contains(out, "resolved: " + key2));
  eftctl(inst,
         {"cases", "resolve", "--socket", inst.dir + "/admin.sock", "--kind", "reversal_expired", "--subject",
          msg2, "--note", "again"},
         1);

  auto resolved = json::parse(
      eftctl(inst, {"report", "cases", "--db", inst.db(), "--status", "resolved", "--format", "json"}));
  REQUIRE(resolved.size() == 2);
  std::map<std::string, json> by_key;
  for (const auto& c : resolved) by_key[c.value("key", "")] = c;
  CHECK(by_key[key1].value("resolved_by", "") == "sue");
  CHECK(by_key[key1].value("note", "") == "acquirer confirmed by phone: reversed on their side");
  CHECK(by_key[key2].value("note", "") == "written off, ticket 4711");
  CHECK_FALSE(by_key[key2].value("resolved_by", "").empty());
  CHECK(by_key[key2].value("resolved_ms", 0LL) >= by_key[key1].value("resolved_ms", 0LL));
  CHECK(json::parse(eftctl(inst, {"report", "cases", "--db", inst.db(), "--format", "json"})).empty());

  // The audit log: both resolutions ok (web by sue, admin socket), and the refused attempts.
  const auto audits = audit_rows(inst.db(), "case_resolve");
  int ok_web = 0, ok_socket = 0, refused = 0;
  for (const auto& a : audits) {
    if (a.outcome == "ok" && a.source == "web" && a.actor == "sue" && a.subject == key1) ++ok_web;
    if (a.outcome == "ok" && a.source == "admin-socket" && a.subject == key2) ++ok_socket;
    if (a.outcome != "ok") ++refused;
  }
  CHECK(ok_web == 1);
  CHECK(ok_socket == 1);
  CHECK(refused >= 4);  // empty note, web twice, socket twice, not found, eftctl twice
}

TEST_CASE("settlement file: an exported file matches, an altered amount is one difference, size limit",
          "[e2e][reports][settlement]") {
  installation inst("e2e-settle-file");
  inst.start_eftd({"--set", "listen.backoffice.port=0"});
  const int port = inst.backoffice_port;
  REQUIRE(port > 0);
  add_user(inst, "sue", "supervisor");
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  std::vector<std::string> orders;
  for (const char* amount : {"12.00", "7.50", "30.10"}) {
    orders.push_back(order_no("SF"));
    REQUIRE(inst.pos("T01", {"sale", "--order", orders.back(), "--amount", amount, "--currency", "PLN"})
                .result.value("outcome", "") == "approved");
  }
  const auto date = journal_view(inst, orders.front()).order.business_date;

  const std::string exported = inst.dir + "/sim.csv";
  eftctl(inst, {"settlement", "export", "--db", inst.db(), "--acquirer", "sim", "--date", date, "--layout",
                "csv", "--out", exported});
  const auto text = slurp(exported);
  REQUIRE_FALSE(text.empty());

  auto sue = login(port, "sue", "sue-secret-123");
  auto form = https(port, "GET", "/settlement/file", sue.cookie);
  REQUIRE(form.status == 200);
  CHECK(contains(form.body, "enctype=\"multipart/form-data\""));
  const std::string boundary = "----eftd-test-boundary-7MA4YWxk";
  auto upload = [&](const std::string& csrf, const std::string& layout, const std::string& file,
                    const std::string& format = "html") {
    std::string b;
    auto field = [&](const std::string& name, const std::string& value) {
      b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value +
           "\r\n";
    };
    if (!csrf.empty()) field("csrf", csrf);
    field("layout", layout);
    field("format", format);
    b += "--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"settle.csv\"\r\nContent-Type: "
         "text/csv\r\n\r\n" +
         file + "\r\n--" + boundary + "--\r\n";
    return https(port, "POST", "/settlement/file", sue.cookie, b,
                 "multipart/form-data; boundary=" + boundary);
  };

  // Without the CSRF token: refused.
  CHECK(upload("", "csv", text).status == 403);

  auto all = upload(sue.csrf, "csv", text);
  REQUIRE(all.status == 200);
  INFO(all.body);
  CHECK(contains(all.body, "matched 3, only in file 0, only in journal 0, differences 0"));
  CHECK(contains(all.body, "all matched"));

  auto as_json = upload(sue.csrf, "csv", text, "json");
  REQUIRE(as_json.status == 200);
  CHECK(contains(as_json.header("content-disposition"), "attachment"));
  auto j = json::parse(as_json.body);
  CHECK(j.value("all_matched", false));
  CHECK(j["matched"].size() == 3);
  CHECK(j.value("layout", "") == "csv");

  // The same rows as CSV (RFC 4180, CRLF): a header line, then one line per matched detail.
  auto as_csv = upload(sue.csrf, "csv", text, "csv");
  REQUIRE(as_csv.status == 200);
  CHECK(contains(as_csv.header("content-type"), "text/csv"));
  CHECK(contains(as_csv.header("content-disposition"), "settlement-match-" + date + ".csv"));
  CHECK(as_csv.body.starts_with("business_date,acquirer,result,terminal_id,rrn,"));
  std::size_t csv_lines = 0;
  for (std::size_t at = 0; (at = as_csv.body.find("\r\n", at)) != std::string::npos; at += 2) ++csv_lines;
  CHECK(csv_lines == 1 + 3);
  for (const auto& d : j["matched"])
    CHECK(contains(as_csv.body,
                   date + ",sim,matched," + d.value("terminal_id", "") + "," + d.value("rrn", "")));

  // One amount altered (the trailer made to agree, as an acquirer's file would): one difference.
  auto layout = eftd::settlement::shipped_layout("csv");
  REQUIRE(layout);
  auto decoded = eftd::settlement::decode(*layout, text);
  REQUIRE(decoded);
  REQUIRE(decoded->details.size() == 3);
  decoded->details[1].amount += 100;
  decoded->trailer = eftd::settlement::totals_of(decoded->details);
  auto altered = eftd::settlement::encode(*layout, *decoded);
  REQUIRE(altered);
  auto diff = upload(sue.csrf, "csv", *altered);
  REQUIRE(diff.status == 200);
  CHECK(contains(diff.body, "matched 2, only in file 0, only in journal 0, differences 1"));
  CHECK(contains(diff.body, "difference (file)"));
  CHECK(contains(diff.body, "amount"));
  auto diff_csv = upload(sue.csrf, "csv", *altered, "csv");
  REQUIRE(diff_csv.status == 200);
  CHECK(contains(diff_csv.body, ",difference (file),"));
  CHECK(contains(diff_csv.body, ",difference (journal),"));
  CHECK(contains(diff_csv.body, ",amount\r\n"));

  // The wrong layout: a clear refusal, not a crash.
  auto wrong = upload(sue.csrf, "fixed-width", text);
  CHECK(wrong.status == 400);
  CHECK(contains(wrong.body, "does not decode"));
  CHECK(upload(sue.csrf, "../../etc/passwd", text).status == 400);

  // Over 16 MiB: 413 with the limit in the text.
  const std::string multipart = "multipart/form-data; boundary=" + boundary;
  auto big = https(port, "POST", "/settlement/file", sue.cookie, {}, multipart, 16 * 1024 * 1024 + 1);
  CHECK(big.status == 413);
  CHECK(contains(big.body, "16 MiB"));
  // Not logged in (or any other page): the ordinary limit of 64 KiB.
  CHECK(https(port, "POST", "/settlement/file", {}, {}, multipart, 100 * 1024).status == 413);
  CHECK(https(port, "POST", "/cases/resolve", sue.cookie, {}, multipart, 100 * 1024).status == 413);
  // Just under the limit is read and refused as a file that does not decode, not for its size.
  auto near = upload(sue.csrf, "csv", std::string(15 * 1024 * 1024, 'x'));
  CHECK(near.status == 400);
}
