// eftctl backup: a consistent copy of the journal while eftd runs (SQLite online backup from a
// read connection; see eftd/journal/backup.hpp), then an audit record of it.
//
//   backup --db PATH --to FILE [--overwrite] [--pages-per-step N] [--step-pause-ms N] [--socket PATH]
//          [--json]
//
// The audit record goes into the journal itself: through a journal writer when no eftd holds
// the journal, else through the running eftd's admin socket (--socket), which names the user
// from the socket's peer credentials. A backup that could not be audited exits 1.
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "eftd/journal/backup.hpp"
#include "eftd/journal/writer.hpp"

namespace eftctl {

namespace {

struct backup_args {
  std::string db;
  std::string to;
  std::string socket;
  bool overwrite = false;
  bool json = false;
  int pages_per_step = 256;
  int step_pause_ms = 0;
  int timeout_ms = 30000;
};

std::string current_user() {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(::getuid(), &pw, buf, sizeof(buf), &found) == 0 && found != nullptr &&
      pw.pw_name != nullptr)
    return pw.pw_name;
  return "uid:" + std::to_string(::getuid());
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ok, or why the action could not be audited.
eftd::status audit(const backup_args& a, const nlohmann::json& detail, const std::string& outcome) {
  std::error_code ec;
  if (std::filesystem::exists(a.db, ec)) {
    auto w = eftd::journal::writer::open(a.db, 16);
    if (w) {
      eftd::journal::audit_appended r;
      r.at_ms = now_ms();
      r.actor = current_user();
      r.source = std::string(eftd::journal::audit_sources::eftctl);
      r.action = "backup";
      r.subject = a.to;
      r.detail = detail.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
      r.outcome = outcome;
      eftd::journal::batch b;
      b.records.emplace_back(std::move(r));
      auto st = (*w)->submit_sync(std::move(b));
      (*w)->close();
      return st;
    }
    if (w.err().code != "journal.locked") return w.err();
  } else {
    return eftd::make_error("audit.no_journal", "there is no journal to write the audit record to");
  }
  if (a.socket.empty()) {
    return eftd::make_error("audit.no_socket", "eftd holds the journal: give --socket to audit through it");
  }
  nlohmann::json req{
      {"cmd", "audit"}, {"action", "backup"}, {"subject", a.to}, {"detail", detail}, {"outcome", outcome}};
  auto line = admin_request(a.socket, req.dump(), a.timeout_ms);
  if (!line) return line.err();
  auto reply = nlohmann::json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return eftd::make_error("admin.io", "eftd answered no JSON");
  if (!reply.value("ok", false)) {
    const auto& e = reply["error"];
    return eftd::make_error(e.value("code", "admin.refused"), e.value("message", "refused"));
  }
  return {};
}

int run_backup(const backup_args& a) {
  eftd::journal::backup_options opts;
  opts.overwrite = a.overwrite;
  opts.pages_per_step = a.pages_per_step;
  opts.step_pause = std::chrono::milliseconds(a.step_pause_ms);
  auto r = eftd::journal::backup(a.db, a.to, opts);
  nlohmann::json detail{{"db", a.db}};
  if (r) {
    detail["pages"] = r->pages;
    detail["bytes"] = r->bytes;
    detail["schema_version"] = r->schema_version;
  } else {
    detail["error"] = r.err().message;
  }
  auto audited = audit(a, detail, r ? "ok" : r.err().code);
  if (!audited) {
    fmt::print(stderr, "eftctl: the backup was not audited: {} ({})\n", audited.err().message,
               audited.err().code);
  }
  if (!r) {
    fmt::print(stderr, "eftctl: backup failed: {} ({})\n", r.err().message, r.err().code);
    return r.err().code == "journal.backup_exists" ? exit_usage : exit_io;
  }
  if (a.json) {
    nlohmann::json out{{"ok", true},
                       {"to", a.to},
                       {"pages", r->pages},
                       {"bytes", r->bytes},
                       {"steps", r->steps},
                       {"retries", r->retries},
                       {"schema_version", r->schema_version},
                       {"audited", static_cast<bool>(audited)}};
    fmt::print("{}\n", out.dump());
  } else {
    fmt::print("backup written to {}: {} pages, {} bytes, schema version {}, integrity ok\n", a.to, r->pages,
               r->bytes, r->schema_version);
  }
  return audited ? exit_ok : exit_problems;
}

}  // namespace

void add_backup_commands(CLI::App& app, runner& run) {
  auto args = std::make_shared<backup_args>();
  auto* c = app.add_subcommand("backup", "a consistent copy of the journal, also while eftd runs");
  c->add_option("--db", args->db, "journal database (journal.path in the config)")->required();
  c->add_option("--to", args->to, "the backup file (written as FILE.tmp, checked, then renamed)")->required();
  c->add_flag("--overwrite", args->overwrite, "replace an existing backup file");
  c->add_option("--pages-per-step", args->pages_per_step, "pages copied per backup step (default 256)")
      ->check(CLI::Range(1, 1 << 20));
  c->add_option("--step-pause-ms", args->step_pause_ms,
                "pause between steps, to spare a busy disk (default 0)")
      ->check(CLI::Range(0, 10000));
  c->add_option("--socket", args->socket, "eftd's admin socket, to audit the backup while eftd runs");
  c->add_option("--timeout-ms", args->timeout_ms, "how long to wait for eftd's answer (default 30000)");
  c->add_flag("--json", args->json, "print the result as JSON");
  c->callback([&run, args] { run = [args] { return run_backup(*args); }; });
}

}  // namespace eftctl
