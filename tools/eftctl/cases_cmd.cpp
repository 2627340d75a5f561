// `eftctl cases resolve`: resolve a reconciliation case (eftctl report cases lists them) through
// a running eftd's admin socket. eftd owns the journal while it runs, so the resolution is
// written there, with an audit record naming the Unix user of this process (the socket's peer
// credentials), never a name given here.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"

namespace eftctl {

namespace {

struct resolve_args {
  std::string socket = "var/eftd-admin.sock";
  std::string kind, subject, note;
  bool json = false;
  int timeout_ms = 30000;
};

int resolve(const resolve_args& a) {
  const nlohmann::json req{
      {"cmd", "case_resolve"}, {"kind", a.kind}, {"subject", a.subject}, {"note", a.note}};
  const auto answer = admin_command(a.socket, req, a.timeout_ms, a.json);
  if (!answer.ok()) return answer.exit_code;
  const nlohmann::json& reply = answer.reply;
  if (!a.json) fmt::print("resolved: {} by {}\n", reply.value("key", ""), reply.value("resolved_by", ""));
  return exit_ok;
}

}  // namespace

void add_cases_commands(CLI::App& app, runner& run) {
  auto* cases = app.add_subcommand("cases", "reconciliation cases, through a running eftd's admin socket");
  cases->require_subcommand(1);
  auto a = std::make_shared<resolve_args>();
  auto* r =
      cases->add_subcommand("resolve", "resolve a case as listed by `eftctl report cases` (kind, subject)");
  r->add_option("--socket", a->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
  r->add_option("--kind", a->kind, "the case kind, e.g. batch_out_of_balance")->required();
  r->add_option("--subject", a->subject, "the case's subject id: its key without the \"<kind>:\" prefix")
      ->required();
  r->add_option("--note", a->note, "what was done (1 to 2000 characters)")->required();
  r->add_flag("--json", a->json, "print eftd's JSON answer");
  r->callback([a, &run] { run = [a] { return resolve(*a); }; });
}

}  // namespace eftctl
