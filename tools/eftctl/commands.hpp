// eftctl subcommands. Each registers itself on the CLI and returns the exit code when run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace eftctl {

// Exit codes (also printed by --help).
inline constexpr int exit_ok = 0;
inline constexpr int exit_problems =
    1;  // the checked thing is wrong (config errors), or nothing matched where required
inline constexpr int exit_usage = 2;  // bad command line
inline constexpr int exit_io = 3;     // a file or the journal cannot be read

using runner = std::function<int()>;

// `config check FILE [--set k=v]...`
void add_config_commands(CLI::App& app, runner& run);
// `journal orders --db PATH [--date D] [--till T] [--state S] [--format table|csv|json]`
void add_journal_commands(CLI::App& app, runner& run);

}  // namespace eftctl
