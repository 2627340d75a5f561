// eftctl journal orders|show: read the journal (read-only), as a table, CSV or JSON.
// eftctl journal purge: ask the running eftd to purge old finished orders (its admin socket).
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/reports/orders.hpp"

namespace eftctl {

namespace {

struct orders_args {
  std::string db;
  std::string date;
  std::string till;
  std::string state;
  std::string format = "table";
  std::uint32_t limit = 1000;
};

bool valid_date(const std::string& d) {
  return eftd::reports::valid_business_date(d);
}

int run_orders(const orders_args& a) {
  if (!a.date.empty() && !valid_date(a.date)) {
    fmt::print(stderr, "eftctl: --date: expected YYYY-MM-DD\n");
    return exit_usage;
  }
  auto reader = eftd::journal::reader::open(a.db);
  if (!reader) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, reader.err().message, reader.err().code);
    return exit_io;
  }
  eftd::journal::order_filter f;
  if (!a.date.empty()) f.business_date_from = f.business_date_to = a.date;
  if (!a.till.empty()) f.till_id = a.till;
  if (!a.state.empty()) f.state = a.state;
  f.limit = a.limit;
  auto rows = reader->list_orders(f);
  if (!rows) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, rows.err().message, rows.err().code);
    return exit_io;
  }
  auto fmt_kind = eftd::reports::parse_format(a.format);
  if (!fmt_kind) {
    fmt::print(stderr, "eftctl: --format: {}\n", fmt_kind.err().message);
    return exit_usage;
  }
  fmt::print("{}", eftd::reports::render_orders(*rows, *fmt_kind));
  return exit_ok;
}

struct show_args {
  std::string db;
  std::string order_id;
  std::string till;
  std::string order_no;
  std::string format = "table";
};

// The full log of one transaction: to explain an error to a cashier or an auditor.
int run_show(const show_args& a) {
  auto fmt_kind = eftd::reports::parse_format(a.format);
  if (!fmt_kind) {
    fmt::print(stderr, "eftctl: --format: {}\n", fmt_kind.err().message);
    return exit_usage;
  }
  if (a.order_id.empty() && (a.till.empty() || a.order_no.empty())) {
    fmt::print(stderr, "eftctl: give --order-id, or --till and --order\n");
    return exit_usage;
  }
  auto reader = eftd::journal::reader::open(a.db);
  if (!reader) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, reader.err().message, reader.err().code);
    return exit_io;
  }
  std::string id = a.order_id;
  if (id.empty()) {
    auto rows = reader->find_orders_recent(a.till, a.order_no, 0);
    if (!rows) {
      fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, rows.err().message, rows.err().code);
      return exit_io;
    }
    if (rows->empty()) {
      fmt::print(stderr, "eftctl: no order {} on till {}\n", a.order_no, a.till);
      return exit_problems;
    }
    id = rows->front().order_id;  // newest first
  }
  auto view = reader->order_detail(id);
  if (!view) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, view.err().message, view.err().code);
    return exit_io;
  }
  if (!*view) {
    fmt::print(stderr, "eftctl: no order with id {}\n", id);
    return exit_problems;
  }
  fmt::print("{}", eftd::reports::render_order_detail(**view, *fmt_kind));
  return exit_ok;
}

struct purge_args {
  std::string socket = "var/eftd-admin.sock";
  std::string before;
  bool dry_run = false;
  bool json = false;
  int timeout_ms = 600000;
};

// Retention on request: eftd runs the purge on its journal writer (eftd/journal/retention.hpp),
// so it is safe while eftd takes sales; eftctl never writes the journal itself.
int run_purge(const purge_args& a) {
  if (!valid_date(a.before)) {
    fmt::print(stderr, "eftctl: --before must be YYYY-MM-DD\n");
    return exit_usage;
  }
  nlohmann::json req{{"cmd", "purge"}, {"before", a.before}, {"dry_run", a.dry_run}};
  auto answered = admin_call(a.socket, req, a.timeout_ms);
  if (!answered) return exit_io;
  nlohmann::json reply = std::move(*answered);
  const bool ok = reply.value("ok", false);
  if (a.json) {
    fmt::print("{}\n", reply.dump(2));
  } else if (!ok) {
    const auto err = reply.value("error", nlohmann::json::object());
    fmt::print(stderr, "eftctl: {} ({})\n", err.value("message", "refused"), err.value("code", ""));
  } else {
    const auto kept = reply.value("kept", nlohmann::json::object());
    fmt::print(
        "{} before {}: {} orders, {} operations, {} messages, {} events, {} notifications, "
        "{} batches, {} batch steps\n",
        reply.value("dry_run", false) ? "would purge" : "purged", reply.value("before", ""),
        reply.value("orders", 0), reply.value("operations", 0), reply.value("messages", 0),
        reply.value("events", 0), reply.value("notifications", 0), reply.value("batches", 0),
        reply.value("steps", 0));
    fmt::print(
        "kept {} older orders: {} not final, {} queued or in doubt, {} open cases, {} in open "
        "batches, {} referred to by kept orders\n",
        reply.value("kept_unsettled", 0), kept.value("not_final", 0), kept.value("in_queue", 0),
        kept.value("open_case", 0), kept.value("open_batch", 0), kept.value("linked", 0));
  }
  return ok ? exit_ok : exit_problems;
}

}  // namespace

void add_journal_commands(CLI::App& app, runner& run) {
  auto* journal = app.add_subcommand(
      "journal", "read the transaction journal (read-only), or ask eftd to purge old orders");
  journal->require_subcommand(1);

  auto args = std::make_shared<orders_args>();
  auto* orders = journal->add_subcommand("orders", "list orders, oldest first");
  orders->add_option("--db", args->db, "journal database (journal.path in the config)")->required();
  orders->add_option("--date", args->date, "business date YYYY-MM-DD");
  orders->add_option("--till", args->till, "till id");
  orders->add_option("--state", args->state, "order state");
  orders->add_option("--format", args->format, "table (default), csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  orders->add_option("--limit", args->limit, "at most this many orders (1..10000, default 1000)")
      ->check(CLI::Range(1, 10000));
  orders->callback([&run, args] { run = [args] { return run_orders(*args); }; });

  auto sargs = std::make_shared<show_args>();
  auto* show =
      journal->add_subcommand("show", "the full log of one order: operations, acquirer messages, events");
  show->add_option("--db", sargs->db, "journal database (journal.path in the config)")->required();
  show->add_option("--order-id", sargs->order_id, "the journal's order id");
  show->add_option("--till", sargs->till, "till id (with --order)");
  show->add_option("--order", sargs->order_no, "POS order number (with --till; the newest such order)");
  show->add_option("--format", sargs->format, "table (default), csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  show->callback([&run, sargs] { run = [sargs] { return run_show(*sargs); }; });

  auto pargs = std::make_shared<purge_args>();
  auto* purge = journal->add_subcommand(
      "purge", "ask the running eftd to remove finished, settled orders of business dates before --before");
  purge->add_option("--socket", pargs->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
  purge->add_option("--before", pargs->before, "business date YYYY-MM-DD: earlier orders are due")
      ->required();
  purge->add_flag("--dry-run", pargs->dry_run, "count what would go, remove nothing");
  purge->add_flag("--json", pargs->json, "print eftd's answer as JSON");
  purge->add_option("--timeout-ms", pargs->timeout_ms, "how long to wait for eftd (default 600000)")
      ->check(CLI::Range(1, 3600000));
  purge->callback([&run, pargs] { run = [pargs] { return run_purge(*pargs); }; });
}

}  // namespace eftctl
