// eftctl audit: the audit log of operator actions (admin socket, web, eftctl, config), read-only.
//
//   audit --db PATH [--since T] [--until T] [--actor USER] [--action NAME] [--limit N]
//         [--newest-first] [--format table|csv|json]
//
// T is YYYY-MM-DD, YYYY-MM-DDThh:mm:ss (UTC) or milliseconds since the epoch.
#include <fmt/format.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "commands.hpp"
#include "eftd/journal/reader.hpp"

namespace eftctl {

namespace {

struct audit_args {
  std::string db;
  std::string since;
  std::string until;
  std::string actor;
  std::string action;
  std::string format = "table";
  std::uint32_t limit = 1000;
  bool newest_first = false;
};

std::optional<std::int64_t> parse_time(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() > 10) {
    try {
      return std::stoll(s);
    } catch (...) {
      return std::nullopt;
    }
  }
  std::tm tm{};
  const char* end = nullptr;
  if (s.size() == 10) {
    end = ::strptime(s.c_str(), "%Y-%m-%d", &tm);
  } else if (s.size() == 19) {
    end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  }
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000;
}

std::string iso_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

// RFC 4180: quote every field that needs it; a leading = + - @ is prefixed with ' so that a
// spreadsheet never runs an operator-typed detail as a formula.
std::string csv_field(const std::string& v) {
  std::string s = v;
  if (!s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')) s.insert(0, "'");
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

int run_audit(const audit_args& a) {
  eftd::journal::audit_filter f;
  auto time_arg = [](const std::string& text, const char* name, std::optional<std::int64_t>& slot) {
    if (text.empty()) return true;
    slot = parse_time(text);
    if (!slot) {
      fmt::print(stderr, "eftctl: {}: expected YYYY-MM-DD, YYYY-MM-DDThh:mm:ss (UTC) or epoch milliseconds\n",
                 name);
    }
    return slot.has_value();
  };
  if (!time_arg(a.since, "--since", f.since_ms) || !time_arg(a.until, "--until", f.until_ms))
    return exit_usage;
  if (!a.actor.empty()) f.actor = a.actor;
  if (!a.action.empty()) f.action = a.action;
  f.limit = a.limit;
  f.newest_first = a.newest_first;

  auto reader = eftd::journal::reader::open(a.db);
  if (!reader) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, reader.err().message, reader.err().code);
    return exit_io;
  }
  auto rows = reader->audit_log(f);
  if (!rows) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, rows.err().message, rows.err().code);
    return exit_io;
  }
  if (a.format == "json") {
    auto out = nlohmann::json::array();
    for (const auto& r : *rows) {
      out.push_back({{"audit_id", r.audit_id},
                     {"at_ms", r.at_ms},
                     {"at", iso_time(r.at_ms)},
                     {"actor", r.actor},
                     {"source", r.source},
                     {"action", r.action},
                     {"subject", r.subject},
                     {"detail", r.detail},
                     {"outcome", r.outcome}});
    }
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (a.format == "csv") {
    fmt::print("audit_id,at,actor,source,action,subject,detail,outcome\n");
    for (const auto& r : *rows) {
      fmt::print("{},{},{},{},{},{},{},{}\n", r.audit_id, iso_time(r.at_ms), csv_field(r.actor),
                 csv_field(r.source), csv_field(r.action), csv_field(r.subject), csv_field(r.detail),
                 csv_field(r.outcome));
    }
  } else {
    fmt::print("{:<24} {:<12} {:<12} {:<14} {:<24} {:<18} {}\n", "AT (UTC)", "ACTOR", "SOURCE", "ACTION",
               "SUBJECT", "OUTCOME", "DETAIL");
    for (const auto& r : *rows) {
      fmt::print("{:<24} {:<12} {:<12} {:<14} {:<24} {:<18} {}\n", iso_time(r.at_ms), r.actor, r.source,
                 r.action, r.subject, r.outcome, r.detail);
    }
    fmt::print("{} record(s)\n", rows->size());
  }
  return exit_ok;
}

}  // namespace

void add_audit_commands(CLI::App& app, runner& run) {
  auto args = std::make_shared<audit_args>();
  auto* c = app.add_subcommand("audit", "the audit log of operator actions (read-only)");
  c->add_option("--db", args->db, "journal database (journal.path in the config)")->required();
  c->add_option("--since", args->since, "from this time on (YYYY-MM-DD, YYYY-MM-DDThh:mm:ss UTC, epoch ms)");
  c->add_option("--until", args->until, "up to this time (same forms)");
  c->add_option("--actor", args->actor, "only this user");
  c->add_option("--action", args->action, "only this action (settle, trace, backup, ...)");
  c->add_option("--limit", args->limit, "at most this many records (1..100000, default 1000)")
      ->check(CLI::Range(1, 100000));
  c->add_flag("--newest-first", args->newest_first, "newest record first");
  c->add_option("--format", args->format, "table (default), csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  c->callback([&run, args] { run = [args] { return run_audit(*args); }; });
}

}  // namespace eftctl
