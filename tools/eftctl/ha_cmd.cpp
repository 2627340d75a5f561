// `eftctl status | promote [--force] | switchover`: the running eftd's role in a hot-standby
// pair (server/HA.md), through its admin socket. promote and switchover are operator actions:
// eftd writes them to the audit log with the Unix user of this process.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"

namespace eftctl {

namespace {

struct ha_args {
  std::string socket = "var/eftd-admin.sock";
  bool json = false;
  bool force = false;
  int timeout_ms = 30000;
};

void print_status(const nlohmann::json& r) {
  const auto ha = r.value("ha", nlohmann::json::object());
  fmt::print("node            {}\n", r.value("node", ""));
  fmt::print("role            {}\n", ha.value("role", "?"));
  if (ha.value("role", "") != "single") {
    fmt::print("epoch           {}\n", ha.value("epoch", 0));
    fmt::print("serving         {}\n", ha.value("serving", false) ? "yes" : "no");
    fmt::print("mode            {}\n", ha.value("mode", ""));
    fmt::print("lease left      {} ms\n", ha.value("lease_left_ms", 0));
    fmt::print("active (POS)    {}\n", ha.value("active_pos", ""));
    fmt::print("journal entry   {}\n", ha.value("last_seq", 0));
    if (ha.value("role", "") == "active") {
      fmt::print("standby         {}{}\n", ha.value("standby_connected", false) ? "connected" : "not connected",
                 ha.value("standby_in_sync", false) ? ", in sync" : ", behind");
      fmt::print("replication lag {} entries\n", ha.value("replication_lag_entries", 0));
    } else {
      fmt::print("applied entry   {}\n", ha.value("applied_seq", 0));
    }
  }
  const auto shared = r.value("shared", nlohmann::json::object());
  if (const auto k = shared.value("keystore", nlohmann::json::object()); !k.empty()) {
    std::string line = k.value("in_use", "");
    if (k.contains("shared"))
      line += k.value("same", false) ? " (the pair's)"
              : k.value("shared", "").empty() ? " (not shared yet)"
                                              : fmt::format(" (the pair's is {} from node {})", k.value("shared", ""),
                                                            k.value("shared_from", ""));
    fmt::print("key store       {}\n", line);
    if (k.contains("problem")) fmt::print("                {}\n", k.value("problem", ""));
  }
  if (const auto g = shared.value("registry", nlohmann::json::object()); !g.empty()) {
    const auto diffs = g.value("file_differences", nlohmann::json::array());
    fmt::print("registry        {}{}\n",
               g.value("shared", "").empty() ? std::string("not shared yet")
                                             : fmt::format("{} from node {}", g.value("shared", ""),
                                                           g.value("shared_from", "")),
               diffs.empty() ? ", same as this node's file" : ", differs from this node's file:");
    for (const auto& d : diffs) fmt::print("                {}\n", d.get<std::string>());
  }
  fmt::print("tills connected {}\n", r.value("tills_connected", 0));
  fmt::print("pads connected  {}\n", r.value("pads_connected", 0));
  fmt::print("business date   {}\n", r.value("business_date", ""));
}

int call(const ha_args& a, const nlohmann::json& req, bool status) {
  const auto answer = admin_command(a.socket, req, a.timeout_ms, a.json);
  if (!answer.ok()) return answer.exit_code;
  const nlohmann::json& reply = answer.reply;
  if (!a.json) {
    if (status)
      print_status(reply);
    else
      fmt::print("{}\n", reply.value("message", "done"));
  }
  return exit_ok;
}

}  // namespace

void add_ha_commands(CLI::App& app, runner& run) {
  auto a = std::make_shared<ha_args>();
  auto common = [a](CLI::App* c) {
    c->add_option("--socket", a->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
    c->add_flag("--json", a->json, "print eftd's JSON answer");
    c->add_option("--timeout-ms", a->timeout_ms, "how long to wait for the answer")->capture_default_str();
  };
  auto* st = app.add_subcommand("status", "role, epoch, lease, replication lag, connected tills and pads");
  common(st);
  st->callback([a, &run] { run = [a] { return call(*a, {{"cmd", "status"}}, true); }; });
  auto* pr = app.add_subcommand("promote", "make this standby active now (emergency; the witness decides)");
  common(pr);
  pr->add_flag("--force", a->force,
               "skip the witness's lease and in-sync checks (the active is known dead; entries it did not "
               "replicate are lost to this node)");
  pr->callback([a, &run] { run = [a] { return call(*a, {{"cmd", "promote"}, {"force", a->force}}, false); }; });
  auto* sw = app.add_subcommand("switchover", "planned switch: this active hands over to its caught-up standby");
  common(sw);
  sw->callback([a, &run] { run = [a] { return call(*a, {{"cmd", "switchover"}}, false); }; });
}

}  // namespace eftctl
