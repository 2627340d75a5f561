// eftctl journal orders: list orders from the journal, read-only, as a table, CSV or JSON.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>
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

}  // namespace

void add_journal_commands(CLI::App& app, runner& run) {
  auto* journal = app.add_subcommand("journal", "read the transaction journal (read-only)");
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
}

}  // namespace eftctl
