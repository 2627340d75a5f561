// Configuration reload at run time (Ops issue 8): `eftctl reload` and SIGHUP apply a changed
// file atomically, or reject it with the reason and keep the configuration in force; both are
// in the audit log.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;
using json = nlohmann::json;

namespace {

const std::string till_t09 = R"(
[[pads]]
id = "P09"
serial = "VP-0009"

[[tills]]
id = "T09"
store = "S01"
pad = "P09"
terminal_id = "TERM0009"
)";

// eftd on a copy of the demo configuration in the test's directory, so the test can edit it.
void start(installation& inst) {
  inst.extra_config = "# e2e_reload_tests";
  inst.start_eftd();
}

std::string config_path(const installation& inst) {
  return inst.dir + "/eftd.toml";
}

void append_config(const installation& inst, const std::string& text) {
  std::ofstream(config_path(inst), std::ios::app) << text << "\n";
}

void replace_in_config(const installation& inst, const std::string& from, const std::string& to) {
  auto text = slurp(config_path(inst));
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  std::ofstream(config_path(inst), std::ios::trunc) << text;
}

// The first answer to a login of `till` on a fresh connection ("login_ok" or an error).
json login(const installation& inst, const std::string& till) {
  raw_client c(inst.pos_port);
  c.send(R"({"type":"login","v":1,"id":"l1","till_id":")" + till + R"(","version":1})" + "\n");
  auto reply = c.next();
  REQUIRE(reply.has_value());
  return *reply;
}

struct ctl_run {
  int exit_code = -1;
  std::vector<std::string> lines;  // stdout
};

ctl_run eftctl_reload(const installation& inst, bool as_json) {
  std::vector<std::string> args{"reload", "--socket", inst.dir + "/admin.sock"};
  if (as_json) args.emplace_back("--json");
  process p(bin_path("eftctl"), args, inst.dir + "/eftctl.log");
  ctl_run r;
  while (auto line = p.read_line(30s)) r.lines.push_back(*line);
  r.exit_code = p.wait_exit(30s).value_or(-1);
  return r;
}

json reload_json(const installation& inst, int want_exit) {
  auto r = eftctl_reload(inst, true);
  CHECK(r.exit_code == want_exit);
  REQUIRE(r.lines.size() == 1);
  auto j = json::parse(r.lines[0], nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

// Audit records of action "reload", re-read after each journal write until `n` are there or
// 20 s pass.
std::vector<eftd::journal::audit_row> wait_for_reload_audits(const installation& inst, std::size_t n) {
  std::vector<eftd::journal::audit_row> rows;
  eftd::test::wait_for_change_in(inst.dir, 20s, [&] {
    if (auto rd = eftd::journal::reader::open(inst.db())) {
      eftd::journal::audit_filter f;
      f.action = "reload";
      if (auto got = rd->audit_log(f)) rows = std::move(*got);
    }
    return rows.size() >= n;
  });
  return rows;
}

}  // namespace

TEST_CASE("eftctl reload adds a till: its login works afterwards, and the reload is audited", "[reload]") {
  installation inst("e2e-reload-add", /*with_acquirer=*/false);
  start(inst);
  CHECK(login(inst, "T09").value("code", "") == "unknown_till");

  append_config(inst, till_t09);
  auto r = eftctl_reload(inst, false);
  CHECK(r.exit_code == 0);
  REQUIRE(r.lines.size() == 1);
  CHECK(r.lines[0] == "reloaded: tills: added T09; pads: added P09");
  CHECK(login(inst, "T09").value("type", "") == "login_ok");
  CHECK(contains(slurp(inst.dir + "/eftd.log"), "applied: tills: added T09; pads: added P09"));

  // The same file again: nothing to do, still audited.
  auto again = reload_json(inst, 0);
  CHECK(again.value("message", "") == "no change");
  CHECK(again["changed"].empty());

  auto audit = wait_for_reload_audits(inst, 4);
  REQUIRE(audit.size() == 4);
  CHECK(audit[0].outcome == "requested");
  CHECK(audit[0].source == "admin-socket");
  CHECK(audit[0].subject == config_path(inst));
  CHECK(audit[1].outcome == "ok");
  CHECK(contains(audit[1].detail, "tills: added T09"));
  CHECK(audit[2].outcome == "requested");
  CHECK(audit[3].outcome == "ok");
  CHECK(audit[3].detail == "no change");
}

TEST_CASE("eftctl reload rejects start-up settings by name and applies nothing of the file", "[reload]") {
  installation inst("e2e-reload-restart", /*with_acquirer=*/false);
  start(inst);
  // A port given with --set stays: the command line wins over the file.
  replace_in_config(inst, "[listen.pos]\naddress = \"127.0.0.1\"\nport = 0",
                    "[listen.pos]\naddress = \"127.0.0.1\"\nport = 1");
  CHECK(reload_json(inst, 0).value("message", "") == "no change");

  // Settings eftd reads only at start-up, next to a till it could add: all refused.
  replace_in_config(inst, "[listen.pos]\naddress = \"127.0.0.1\"\nport = 1",
                    "[listen.pos]\naddress = \"127.0.0.1\"\nport = 1\nmax_connections = 100");
  replace_in_config(inst, "node_name = \"eftd-demo\"", "node_name = \"eftd-renamed\"");
  append_config(inst, till_t09);
  auto r = reload_json(inst, 1);
  CHECK_FALSE(r.value("ok", true));
  CHECK(r["error"].value("code", "") == "config.needs_restart");
  const auto why = r["error"].value("message", "");
  CHECK(contains(why, "server.node_name changed: needs a restart"));
  CHECK(contains(why, "listen.pos.max_connections changed: needs a restart"));
  CHECK(contains(slurp(inst.dir + "/eftd.log"), "refused, the configuration in force is kept"));

  // The old configuration is in force: the new till is still unknown, the old ones work on the
  // same port, and the node keeps its name.
  CHECK(login(inst, "T09").value("code", "") == "unknown_till");
  CHECK(login(inst, "T01").value("type", "") == "login_ok");
  auto status = admin_request(inst.dir + "/admin.sock", {{"cmd", "status"}});
  CHECK(status.value("node", "") == "eftd-demo");

  // The human form: "rejected: <reason>" on stderr, exit 1.
  auto human = eftctl_reload(inst, false);
  CHECK(human.exit_code == 1);
  CHECK(human.lines.empty());
  CHECK(contains(slurp(inst.dir + "/eftctl.log"), "rejected: "));
  auto audit = wait_for_reload_audits(inst, 6);
  REQUIRE(audit.size() >= 4);
  CHECK(audit[3].outcome == "config.needs_restart");
  CHECK(contains(audit[3].detail, "listen.pos.max_connections"));
}

TEST_CASE("a file that does not parse is rejected with the parser's message and eftd serves on", "[reload]") {
  installation inst("e2e-reload-syntax", /*with_acquirer=*/false);
  start(inst);
  append_config(inst, "[[tills]\nid = ");
  auto r = reload_json(inst, 1);
  CHECK(r["error"].value("code", "") == "config.syntax");
  // The parser's message, with the file and the position (file:line:column: ...).
  CHECK(r["error"].value("message", "").starts_with(config_path(inst) + ":"));
  CHECK(login(inst, "T01").value("type", "") == "login_ok");
}

TEST_CASE("SIGHUP reloads: a lower till limit declines the next sale above it", "[reload]") {
  installation inst("e2e-reload-hup");
  start(inst);
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto before = inst.pos("T01", {"sale", "--order", order_no("H1"), "--amount", "60.00", "--currency", "PLN"});
  REQUIRE(before.exit_code == 0);
  CHECK(before.result.value("outcome", "") == "approved");

  replace_in_config(inst, "pad = \"P01\"\nterminal_id = \"TERM0001\"",
                    "pad = \"P01\"\nterminal_id = \"TERM0001\"\nlimits = { max_amount = 5000 }");
  inst.eftd->signal(SIGHUP);
  REQUIRE(wait_for_text_in_file(inst.dir + "/eftd.log", "applied: tills: changed T01", 20s));

  const auto order = order_no("H2");
  auto after = inst.pos("T01", {"sale", "--order", order, "--amount", "60.00", "--currency", "PLN"});
  REQUIRE(after.exit_code == 0);
  CHECK(after.result.value("outcome", "") == "declined");
  CHECK(after.result["reason"].value("code", "") == "limit.amount_above_maximum");
  // Below the new limit: approved as before.
  auto small = inst.pos("T01", {"sale", "--order", order_no("H3"), "--amount", "40.00", "--currency", "PLN"});
  CHECK(small.result.value("outcome", "") == "approved");

  auto audit = wait_for_reload_audits(inst, 2);
  REQUIRE(audit.size() == 2);
  CHECK(audit[0].actor == "SIGHUP");
  CHECK(audit[0].source == "config");
  CHECK(audit[0].outcome == "requested");
  CHECK(audit[1].outcome == "ok");
  CHECK(contains(audit[1].detail, "tills: changed T01"));
}

TEST_CASE("removing a till ends its POS session and refuses its next login", "[reload]") {
  installation inst("e2e-reload-remove", /*with_acquirer=*/false);
  start(inst);
  raw_client pos(inst.pos_port);
  pos.send(R"({"type":"login","v":1,"id":"l1","till_id":"T02","version":1})"
           "\n");
  auto ok = pos.next();
  REQUIRE(ok.has_value());
  REQUIRE(ok->value("type", "") == "login_ok");

  replace_in_config(inst, "[[tills]]\nid = \"T02\"\nstore = \"S01\"\npad = \"P02\"\nterminal_id = \"TERM0002\"\n", "");
  auto r = reload_json(inst, 0);
  CHECK(r.value("message", "") == "tills: removed T02");

  // The logged-in connection is told why, then closed.
  auto last = pos.next(10s);
  REQUIRE(last.has_value());
  CHECK(last->value("type", "") == "error");
  CHECK(last->value("code", "") == "unknown_till");
  CHECK_FALSE(pos.next(10s).has_value());
  CHECK(login(inst, "T02").value("code", "") == "unknown_till");
  CHECK(login(inst, "T01").value("type", "") == "login_ok");
}
