// eftctl notifications: the outbox of outcome notifications to back-office systems
// (server/NOTIFY.md).
//
//   notifications list --db PATH [--state pending|delivered|expired] [--order ID] [--endpoint NAME]
//                      [--limit N] [--json]
//   notifications retry [--socket PATH] [--endpoint NAME] [ID]
//       an expired notification goes back to pending (a pending one is sent at once); with
//       --endpoint and no ID, every expired one of that [[notify]] endpoint (through a running
//       eftd's admin socket, audited)
#include <fmt/format.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "eftd/journal/reader.hpp"

namespace eftctl {

namespace {

struct list_args {
  std::string db;
  std::string state;
  std::string order;
  std::string endpoint;
  bool endpoint_set = false;
  std::uint32_t limit = 100;
  bool json = false;
};

struct retry_args {
  std::string socket = "var/eftd-admin.sock";
  std::string id;
  std::string endpoint;
  bool endpoint_set = false;
  int timeout_ms = 10000;
  bool json = false;
};

std::string iso_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

int run_list(const list_args& a) {
  auto reader = eftd::journal::reader::open(a.db);
  if (!reader) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, reader.err().message, reader.err().code);
    return exit_io;
  }
  eftd::journal::notification_filter f;
  if (!a.state.empty()) f.state = a.state;
  if (!a.order.empty()) f.order_id = a.order;
  if (a.endpoint_set) f.endpoint = a.endpoint;
  f.limit = a.limit;
  auto rows = reader->list_notifications(f);
  if (!rows) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, rows.err().message, rows.err().code);
    return exit_io;
  }
  auto counts = reader->notification_counts();
  if (!counts) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, counts.err().message, counts.err().code);
    return exit_io;
  }
  if (a.json) {
    auto out = nlohmann::json::object();
    auto by_state = nlohmann::json::object();
    for (const auto& [state, n] : *counts) by_state[state] = n;
    out["counts"] = by_state;
    auto list = nlohmann::json::array();
    for (const auto& r : *rows) {
      nlohmann::json j{{"notification_id", r.notification_id},
                       {"order_id", r.order_id},
                       {"endpoint", r.endpoint},
                       {"event", r.event},
                       {"order_state", r.order_state},
                       {"state", r.state},
                       {"attempts", r.attempts},
                       {"created_ms", r.created_ms},
                       {"next_attempt_ms", r.next_attempt_ms},
                       {"updated_ms", r.updated_ms}};
      j["expires_ms"] = r.expires_ms ? nlohmann::json(*r.expires_ms) : nlohmann::json();
      j["last_error"] = r.last_error ? nlohmann::json(*r.last_error) : nlohmann::json();
      j["delivered_ms"] = r.delivered_ms ? nlohmann::json(*r.delivered_ms) : nlohmann::json();
      // The body as sent: its only card field is the masked PAN.
      j["payload"] = nlohmann::json::parse(r.payload, nullptr, false);
      list.push_back(std::move(j));
    }
    out["notifications"] = std::move(list);
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return exit_ok;
  }
  std::string summary;
  for (const auto& [state, n] : *counts)
    summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, state);
  fmt::print("{:<32} {:<16} {:<32} {:<10} {:<10} {:>8} {:<24} {}\n", "NOTIFICATION", "ENDPOINT", "ORDER",
             "ORDER STATE", "STATE", "ATTEMPTS", "CREATED (UTC)", "LAST ERROR");
  for (const auto& r : *rows) {
    // "" is the first (or only) endpoint's: rows from before endpoints had names.
    fmt::print("{:<32} {:<16} {:<32} {:<10} {:<10} {:>8} {:<24} {}\n", r.notification_id,
               r.endpoint.empty() ? "(default)" : r.endpoint, r.order_id, r.order_state, r.state, r.attempts,
               iso_time(r.created_ms), r.last_error.value_or(""));
  }
  fmt::print("{} shown; in the journal: {}\n", rows->size(), summary.empty() ? "none" : summary);
  return exit_ok;
}

int run_retry(const retry_args& a) {
  if (a.id.empty() && !a.endpoint_set) {
    fmt::print(stderr, "eftctl: give a notification id, or --endpoint for all its expired ones\n");
    return exit_usage;
  }
  nlohmann::json req{{"cmd", "notify_retry"}};
  if (!a.id.empty()) req["id"] = a.id;
  if (a.endpoint_set) req["endpoint"] = a.endpoint;
  const auto answer = admin_command(a.socket, req, a.timeout_ms, a.json);
  if (!answer.ok()) return answer.exit_code;
  const nlohmann::json& reply = answer.reply;
  if (!a.json) {
    for (const auto& id : reply.value("ids", nlohmann::json::array()))
      if (id.is_string()) fmt::print("ok: {} is pending, to be sent now\n", id.get<std::string>());
    if (reply.value("count", 0) == 0) fmt::print("ok: nothing to retry\n");
  }
  return exit_ok;
}

}  // namespace

void add_notify_commands(CLI::App& app, runner& run) {
  auto* n = app.add_subcommand("notifications", "outcome notifications to back-office systems");
  n->require_subcommand(1);

  auto la = std::make_shared<list_args>();
  auto* l = n->add_subcommand("list", "the notification outbox, newest first (read-only)");
  l->add_option("--db", la->db, "journal database (journal.path in the config)")->required();
  l->add_option("--state", la->state, "only this delivery state")
      ->check(CLI::IsMember({"pending", "delivered", "expired"}));
  l->add_option("--order", la->order, "only this order id");
  l->add_option("--endpoint", la->endpoint, "only this [[notify]] endpoint (\"\" = the unnamed/default one)")
      ->each([la](const std::string&) { la->endpoint_set = true; });
  l->add_option("--limit", la->limit, "at most this many rows (1..100000, default 100)")
      ->check(CLI::Range(1, 100000));
  l->add_flag("--json", la->json, "JSON for other systems");
  l->callback([&run, la] { run = [la] { return run_list(*la); }; });

  auto ra = std::make_shared<retry_args>();
  auto* r = n->add_subcommand(
      "retry", "send a notification again now: an expired one goes back in the queue (audited)");
  r->add_option("--socket", ra->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
  r->add_option("--timeout-ms", ra->timeout_ms, "how long to wait for eftd's answer")->capture_default_str();
  r->add_flag("--json", ra->json, "print eftd's JSON answer");
  r->add_option("--endpoint", ra->endpoint,
                "only this [[notify]] endpoint; without an id: all its expired ones")
      ->each([ra](const std::string&) { ra->endpoint_set = true; });
  r->add_option("id", ra->id, "notification id");
  r->callback([&run, ra] { run = [ra] { return run_retry(*ra); }; });
}

}  // namespace eftctl
