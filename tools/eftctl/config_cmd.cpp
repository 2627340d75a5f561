// eftctl config check: validate a configuration file the way eftd would load it.
// eftctl reload: make a running eftd apply its changed configuration file (admin socket).
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "eftd/core/config.hpp"

namespace eftctl {

namespace {

struct check_args {
  std::string file;
  std::vector<std::string> sets;
};

struct reload_args {
  std::string socket = "var/eftd-admin.sock";
  bool json = false;
  int timeout_ms = 30000;
};

// Prints every line of a multi-line error, each prefixed with the file, compiler style,
// unless the line already names the file (syntax and I/O errors do).
void print_problems(const std::string& file, const std::string& message) {
  std::string_view rest = message;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    if (line.substr(0, file.size()) == file)
      fmt::print(stderr, "{}\n", line);
    else
      fmt::print(stderr, "{}: {}\n", file, line);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
}

std::size_t count_lines(const std::string& s) {
  std::size_t n = s.empty() ? 0 : 1;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

int run_check(const check_args& a) {
  auto cfg = eftd::config::load_config(a.file);
  if (!cfg) {
    print_problems(a.file, cfg.err().message);
    const std::size_t n = count_lines(cfg.err().message);
    fmt::print(stderr, "{}: {} ({} problem{})\n", a.file,
               cfg.err().code == "config.io" ? "unreadable" : "INVALID", n, n == 1 ? "" : "s");
    return cfg.err().code == "config.io" ? exit_io : exit_problems;
  }
  bool bad_set = false;
  for (const auto& s : a.sets) {
    auto r = eftd::config::apply_override(*cfg, s);
    if (!r) {
      fmt::print(stderr, "{}\n", r.err().message);
      bad_set = true;
    }
  }
  if (bad_set) return exit_problems;
  fmt::print("{}: OK ({} merchants, {} tills, {} acquirers)\n", a.file, cfg->merchants.size(),
             cfg->tills.size(), cfg->acquirers.size());
  // Placeholders are fine in a file (the demo sets ports on the command line) but eftd will
  // refuse to start with them; say so now rather than at start-up.
  if (auto ready = eftd::config::check_ready(*cfg); !ready) {
    std::string_view rest = ready.err().message;
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      fmt::print("{}: note: {}\n", a.file, rest.substr(0, nl));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }
  return exit_ok;
}

// eftd re-reads the file it started with (and its --set overrides); it installs it or keeps
// the configuration in force and says why. Both outcomes are in its audit log.
int run_reload(const reload_args& a) {
  auto answered = admin_call(a.socket, {{"cmd", "reload"}}, a.timeout_ms);
  if (!answered) return exit_io;
  const nlohmann::json& reply = *answered;
  if (a.json) fmt::print("{}\n", reply.dump());
  if (!reply.value("ok", false)) {
    if (!a.json) {
      const auto err = reply.value("error", nlohmann::json::object());
      fmt::print(stderr, "rejected: {} ({})\n", err.value("message", "refused"), err.value("code", ""));
    }
    return exit_problems;
  }
  if (!a.json) fmt::print("reloaded: {}\n", reply.value("message", "done"));
  return exit_ok;
}

}  // namespace

void add_config_commands(CLI::App& app, runner& run) {
  auto* config = app.add_subcommand("config", "configuration files");
  config->require_subcommand(1);

  auto args = std::make_shared<check_args>();
  auto* check = config->add_subcommand(
      "check", "validate a config file; prints 'FILE: OK (...)' or every problem, one per line");
  check->add_option("file", args->file, "eftd TOML configuration")->required();
  check->add_option("--set", args->sets, "apply an override as eftd --set key=value would (repeatable)");
  check->callback([&run, args] { run = [args] { return run_check(*args); }; });

  auto rargs = std::make_shared<reload_args>();
  auto* reload = app.add_subcommand(
      "reload", "make the running eftd apply its changed config file (as SIGHUP does); prints 'reloaded: "
                "<changes>' or 'rejected: <reason>' (exit 1), and the old configuration stays");
  reload->add_option("--socket", rargs->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
  reload->add_flag("--json", rargs->json, "print eftd's JSON answer");
  reload->add_option("--timeout-ms", rargs->timeout_ms, "how long to wait for the answer")->capture_default_str();
  reload->callback([&run, rargs] { run = [rargs] { return run_reload(*rargs); }; });
}

}  // namespace eftctl
