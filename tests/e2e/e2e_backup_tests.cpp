// Online backup and the audit log through a real eftd (issue 7): `eftctl backup` copies the
// journal while eftd takes sales, the copy is consistent and complete up to the moment the
// backup began, and every operator action on the admin socket lands in the audit log with the
// Unix user that made it.
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;
using nlohmann::json;

namespace {

std::string admin_path(const installation& inst) {
  return inst.dir + "/admin.sock";
}

// One request line to eftd's admin socket, one reply line back.
json admin(const installation& inst, const json& request, std::chrono::milliseconds within = 60s) {
  auto j = admin_request(admin_path(inst), request, within);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

std::string me() {
  const passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "uid:" + std::to_string(::getuid());
}

std::string sell(installation& inst, const std::string& tag) {
  const auto order = order_no(tag);
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "12.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.result.value("outcome", "") == "approved");
  return order;
}

// Runs eftctl to completion; its stdout.
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

}  // namespace

TEST_CASE("eftctl backup while eftd takes sales: a consistent copy with every order acknowledged before it",
          "[e2e][journal]") {
  installation inst("e2e-backup");
  inst.start_eftd({"--set", "admin.socket=" + admin_path(inst)});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  std::vector<std::string> before;
  for (int i = 0; i < 3; ++i) before.push_back(sell(inst, "BK"));

  // One page per step and a pause after each: the backup is still copying while the next
  // sales commit.
  const auto copy = inst.dir + "/backup.db";
  process ctl(bin_path("eftctl"),
              {"backup", "--db", inst.db(), "--to", copy, "--pages-per-step", "1", "--step-pause-ms", "200",
               "--socket", admin_path(inst), "--json"},
              inst.dir + "/eftctl-backup.log");
  std::vector<std::string> during;
  for (int i = 0; i < 2; ++i) during.push_back(sell(inst, "BD"));
  const bool overlapped = ctl.running();
  CHECK(overlapped);
  std::string out;
  while (auto line = ctl.read_line(60s)) out += *line;
  INFO(slurp(inst.dir + "/eftctl-backup.log"));
  REQUIRE(ctl.wait_exit(30s) == std::optional<int>{0});
  auto result = json::parse(out, nullptr, false);
  REQUIRE_FALSE(result.is_discarded());
  CHECK(result.value("ok", false));
  CHECK(result.value("audited", false));
  CHECK(result.value("pages", 0) > 0);

  // The copy: a journal of its own, intact, with every order acknowledged before the backup.
  CHECK_FALSE(std::filesystem::exists(copy + ".tmp"));
  auto rd = eftd::journal::reader::open(copy);
  INFO((rd ? "" : rd.err().code + ": " + rd.err().message));
  REQUIRE(rd);
  auto ic = rd->pragma("integrity_check");
  REQUIRE(ic);
  CHECK(*ic == "ok");
  for (const auto& o : before) {
    auto rows = rd->find_orders_recent("T01", o, 0);
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    CHECK(rows->front().state == "approved");
  }

  // eftd never noticed: it sells on, and the backup is in its audit log under my name.
  sell(inst, "BA");
  auto audits = audit_rows(inst.db(), "backup");
  REQUIRE(audits.size() == 1);
  CHECK(audits[0].source == "eftctl");
  CHECK(audits[0].actor == me());
  CHECK(audits[0].subject == copy);
  CHECK(audits[0].outcome == "ok");

  // A second backup to the same file is refused (exit 2) and audited as such.
  eftctl(inst, {"backup", "--db", inst.db(), "--to", copy, "--socket", admin_path(inst)}, 2);
  audits = audit_rows(inst.db(), "backup");
  REQUIRE(audits.size() == 2);
  CHECK(audits[1].outcome == "journal.backup_exists");

  // With eftd stopped, eftctl writes the audit record through a journal writer of its own.
  inst.eftd->stop();
  const auto offline = inst.dir + "/offline.db";
  eftctl(inst, {"backup", "--db", inst.db(), "--to", offline});
  audits = audit_rows(inst.db(), "backup");
  REQUIRE(audits.size() == 3);
  CHECK(audits[2].outcome == "ok");
  CHECK(audits[2].subject == offline);
  CHECK(audits[2].actor == me());
}

TEST_CASE(
    "admin socket actions are audited with the peer's user, secrets blanked, and eftctl audit lists them",
    "[e2e][journal][security]") {
  installation inst("e2e-audit", false);
  inst.start_eftd({"--set", "admin.socket=" + admin_path(inst)});

  CHECK(admin(inst, {{"cmd", "status"}}).value("ok", false));  // read-only: not audited
  CHECK(admin(inst, {{"cmd", "trace"}, {"acquirer", "sim"}, {"on", true}, {"password", "hunter2"}})
            .value("ok", false));
  auto refused = admin(inst, {{"cmd", "trace"}, {"acquirer", "nope"}, {"on", true}});
  CHECK_FALSE(refused.value("ok", true));
  const auto copy = inst.dir + "/admin-backup.db";
  auto b = admin(inst, {{"cmd", "backup"}, {"to", copy}});
  INFO(b.dump());
  CHECK(b.value("ok", false));
  CHECK_FALSE(admin(inst, {{"cmd", "backup"}, {"to", "relative.db"}}).value("ok", true));
  auto copy_reader = eftd::journal::reader::open(copy);
  REQUIRE(copy_reader);

  auto out = eftctl(inst, {"audit", "--db", inst.db(), "--format", "json"});
  auto rows = json::parse(out, nullptr, false);
  REQUIRE_FALSE(rows.is_discarded());
  REQUIRE(rows.is_array());
  std::vector<std::string> seen;
  for (const auto& r : rows) {
    seen.push_back(r.value("action", "") + " " + r.value("outcome", ""));
    CHECK(r.value("actor", "") == me());
    CHECK(r.value("source", "") == "admin-socket");
    CHECK_FALSE(contains(r.value("detail", ""), "hunter2"));
  }
  CHECK(seen == std::vector<std::string>{"trace ok", "trace admin.bad_request", "backup ok",
                                         "backup admin.bad_request"});
  CHECK(rows[0].value("subject", "") == "sim");
  CHECK(contains(rows[0].value("detail", ""), "\"password\":\"***\""));
  CHECK(rows[2].value("subject", "") == copy);

  auto csv = eftctl(inst, {"audit", "--db", inst.db(), "--format", "csv", "--action", "trace"});
  CHECK(csv.rfind("audit_id,at,actor,source,action,subject,detail,outcome\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  auto none = eftctl(inst, {"audit", "--db", inst.db(), "--since", "2999-01-01"});
  CHECK(contains(none, "0 record(s)"));
  eftctl(inst, {"audit", "--db", inst.db(), "--since", "yesterday"}, 2);
}
