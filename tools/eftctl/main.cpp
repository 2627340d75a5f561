// eftctl: operator's command-line tool. A thin shell over the libraries; every subcommand
// prints a clear message and returns a documented exit code, never a stack trace.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
  try {
    CLI::App app{"eftctl: operate and inspect an eftd installation"};
    app.require_subcommand(1);
    app.footer(
        "Exit codes:\n"
        "  0  success\n"
        "  1  problems found (e.g. config check reported errors, a PIN block does not decode)\n"
        "  2  bad command line or input (e.g. a frame that does not decode)\n"
        "  3  a file or the journal cannot be read");
    eftctl::runner run;
    eftctl::add_config_commands(app, run);
    eftctl::add_journal_commands(app, run);
    eftctl::add_dukpt_commands(app, run);
    eftctl::add_pinblock_commands(app, run);
    eftctl::add_iso8583_commands(app, run);
    eftctl::add_keys_commands(app, run);
    eftctl::add_pads_commands(app, run);
    eftctl::add_settlement_commands(app, run);
    eftctl::add_report_commands(app, run);
    eftctl::add_audit_commands(app, run);
    eftctl::add_backup_commands(app, run);
    eftctl::add_users_commands(app, run);
    eftctl::add_cases_commands(app, run);
    eftctl::add_notify_commands(app, run);
    eftctl::add_ha_commands(app, run);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int rc = app.exit(e);  // prints help or the usage error
      return rc == 0 ? eftctl::exit_ok : eftctl::exit_usage;
    }
    if (!run) {
      std::fprintf(stderr, "eftctl: missing subcommand, see --help\n");
      return eftctl::exit_usage;
    }
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eftctl: %s\n", e.what());
    return eftctl::exit_io;
  } catch (...) {
    std::fprintf(stderr, "eftctl: unexpected error\n");
    return eftctl::exit_io;
  }
}
