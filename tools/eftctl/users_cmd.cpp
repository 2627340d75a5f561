// `eftctl users add|passwd|role|unlock|remove|list`: back-office users, through a running eftd's
// admin socket (eftd owns the journal while it runs, so every write goes through it). The
// password is read from stdin (one line; with a terminal, without echo), never from argv.
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "commands.hpp"

namespace eftctl {

namespace {

struct users_args {
  std::string socket = "var/eftd-admin.sock";
  std::string name;
  std::string role = "viewer";
  bool password_stdin = false;
  bool json = false;
  int timeout_ms = 30000;
};

// One line from stdin; with a terminal the typed characters are not echoed.
std::optional<std::string> read_password() {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  termios old{};
  if (tty) {
    std::fprintf(stderr, "Password: ");
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!ok) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int send(const users_args& a, nlohmann::json req) {
  const auto answer = admin_command(a.socket, req, a.timeout_ms, a.json);
  if (!answer.ok()) return answer.exit_code;
  const nlohmann::json& reply = answer.reply;
  if (a.json) return exit_ok;
  if (req["cmd"] == "user_list") {
    fmt::print("{:<24} {:<11} {:>6} {}\n", "NAME", "ROLE", "FAILED", "LOCKED");
    for (const auto& u : reply.value("users", nlohmann::json::array()))
      fmt::print("{:<24} {:<11} {:>6} {}\n", u.value("name", ""), u.value("role", ""),
                 u.value("failed_attempts", 0), u.value("locked", false) ? "yes" : "no");
  } else {
    fmt::print("ok: {}\n", reply.value("name", ""));
  }
  return exit_ok;
}

}  // namespace

void add_users_commands(CLI::App& app, runner& run) {
  auto* users = app.add_subcommand("users", "back-office users, through a running eftd's admin socket");
  users->require_subcommand(1);
  auto a = std::make_shared<users_args>();
  auto common = [a](CLI::App* c) {
    c->add_option("--socket", a->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
    c->add_flag("--json", a->json, "print eftd's JSON answer");
  };
  auto with_password = [a](CLI::App* c) {
    c->add_flag("--password-stdin", a->password_stdin,
                "read the password from stdin (the default; for scripts)");
  };
  auto* add = users->add_subcommand("add", "add a user (password from stdin)");
  add->add_option("name", a->name, "user name")->required();
  add->add_option("--role", a->role, "viewer | supervisor | admin")->capture_default_str();
  common(add);
  with_password(add);
  add->callback([a, &run] {
    run = [a] {
      auto pw = read_password();
      if (!pw) {
        fmt::print(stderr, "eftctl: no password on stdin\n");
        return exit_usage;
      }
      return send(*a, {{"cmd", "user_add"}, {"name", a->name}, {"role", a->role}, {"password", *pw}});
    };
  });
  auto* passwd = users->add_subcommand("passwd", "set a user's password (from stdin); also unlocks");
  passwd->add_option("name", a->name, "user name")->required();
  common(passwd);
  with_password(passwd);
  passwd->callback([a, &run] {
    run = [a] {
      auto pw = read_password();
      if (!pw) {
        fmt::print(stderr, "eftctl: no password on stdin\n");
        return exit_usage;
      }
      return send(*a, {{"cmd", "user_passwd"}, {"name", a->name}, {"password", *pw}});
    };
  });
  auto* role = users->add_subcommand("role", "change a user's role");
  role->add_option("name", a->name, "user name")->required();
  role->add_option("--role", a->role, "viewer | supervisor | admin")->required();
  common(role);
  role->callback([a, &run] {
    run = [a] { return send(*a, {{"cmd", "user_role"}, {"name", a->name}, {"role", a->role}}); };
  });
  auto* unlock = users->add_subcommand("unlock", "clear a user's failed attempts and lock");
  unlock->add_option("name", a->name, "user name")->required();
  common(unlock);
  unlock->callback([a, &run] {
    run = [a] { return send(*a, {{"cmd", "user_unlock"}, {"name", a->name}}); };
  });
  auto* remove = users->add_subcommand("remove", "delete a user");
  remove->add_option("name", a->name, "user name")->required();
  common(remove);
  remove->callback([a, &run] {
    run = [a] { return send(*a, {{"cmd", "user_remove"}, {"name", a->name}}); };
  });
  auto* list = users->add_subcommand("list", "list users, roles, failed attempts and locks");
  common(list);
  list->callback([a, &run] { run = [a] { return send(*a, {{"cmd", "user_list"}}); }; });
}

}  // namespace eftctl
