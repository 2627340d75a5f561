// eftctl subcommands. Each registers itself on the CLI and returns the exit code when run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "eftd/core/result.hpp"

namespace eftctl {

// Exit codes (also printed by --help).
inline constexpr int exit_ok = 0;
inline constexpr int exit_problems =
    1;  // the checked thing is wrong (config errors), or nothing matched where required
inline constexpr int exit_usage = 2;  // bad command line
inline constexpr int exit_io = 3;     // a file or the journal cannot be read

using runner = std::function<int()>;

// `config check FILE [--set k=v]...`, `reload [--socket PATH]` (a running eftd re-reads its file)
void add_config_commands(CLI::App& app, runner& run);
// `journal orders|show --db PATH [--date D] [--till T] [--state S] [--format table|csv|json]`,
// `journal purge --before DATE [--dry-run] [--socket PATH]` (retention, through the admin socket)
void add_journal_commands(CLI::App& app, runner& run);
// `dukpt ipek|decrypt-data --bdk HEX --ksn HEX [--data HEX] [--aes]` (test keys only)
void add_dukpt_commands(CLI::App& app, runner& run);
// `pinblock decode --format 0|1|3|4 --block HEX [--pan DIGITS] [--key HEX]` (test keys only)
void add_pinblock_commands(CLI::App& app, runner& run);
// `iso8583 decode --dialect NAME [--framing NAME] [--hex HEX | --file PATH] [--raw]` (card data masked)
void add_iso8583_commands(CLI::App& app, runner& run);
// `keys component add|finish|cancel`, `keys list|rotate|retire|export-ipek|import` (key store; KCVs only)
void add_keys_commands(CLI::App& app, runner& run);

// `pads --db FILE`: pad health and DUKPT counters from the journal.
void add_pads_commands(CLI::App& app, runner& run);

// `settlement export|match|close`: settlement files in a layout (export from the journal; match
// an acquirer's file against it); close batches through a running eftd's admin socket.
void add_settlement_commands(CLI::App& app, runner& run);

// `report transactions|show|settlement|cases|pads|tills|stats --db PATH [filters]
//  [--format table|csv|json] [--output FILE]`: back-office reports (reports/reports.hpp).
void add_report_commands(CLI::App& app, runner& run);

// `users add|passwd|role|unlock|remove|list [--socket PATH]`: back-office users through a running
// eftd's admin socket; passwords from stdin only.
void add_users_commands(CLI::App& app, runner& run);

// `audit --db PATH [--since T] [--until T] [--actor U] [--action A] [--format table|csv|json]`
void add_audit_commands(CLI::App& app, runner& run);
// `backup --db PATH --to FILE [--socket PATH]`: online backup of the journal, audited.
void add_backup_commands(CLI::App& app, runner& run);

// `cases resolve --socket S --kind K --subject ID --note TEXT` (cases_cmd.cpp).
void add_cases_commands(CLI::App& app, runner& run);
// `notifications list [--endpoint NAME] | retry [--endpoint NAME] [ID]` (notify_cmd.cpp).
void add_notify_commands(CLI::App& app, runner& run);
// `status`, `promote [--force]`, `switchover` (hot standby, ha_cmd.cpp; through --socket).
void add_ha_commands(CLI::App& app, runner& run);

// One request line to a running eftd's admin socket ([admin] socket), one reply line back.
// Errors: admin.path, admin.connect, admin.io, admin.timeout.
eftd::result<std::string> admin_request(const std::string& path, const std::string& line, int timeout_ms);
// admin_request with a JSON request: the reply object, or nullopt after printing on stderr why
// there is none (no socket, no answer, not JSON); the caller then exits with exit_io.
std::optional<nlohmann::json> admin_call(const std::string& path, const nlohmann::json& request,
                                         int timeout_ms);

// An operator command through admin_call. With `print_json` eftd's answer is printed as is;
// without, a refusal is printed on stderr as "eftctl: <message> (<code>)". exit_code is exit_ok
// when eftd said ok (reply holds its answer), exit_problems when it refused, exit_io when there
// was no answer.
struct admin_answer {
  int exit_code = exit_io;
  nlohmann::json reply;
  bool ok() const { return exit_code == exit_ok; }
};
admin_answer admin_command(const std::string& path, const nlohmann::json& request, int timeout_ms,
                           bool print_json);

}  // namespace eftctl
