// eftctl report: the back-office reports (reports/reports.hpp) in the terminal, or as CSV / JSON
// to stdout or a file. Read-only: the journal is opened with a reader.
//
//   eftctl report transactions --db var/eftd.db --date 2026-11-21 --till T01 --format csv
//   eftctl report settlement --db var/eftd.db --date-from 2026-11-01 --output nov.csv --format csv
//
// A full PAN is never taken from the command line (it would show in `ps` and the shell
// history): --pan-stdin reads it from standard input and turns it into the journal's keyed
// search hash at once.
#include <fmt/format.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "eftd/core/config.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/reports/orders.hpp"
#include "eftd/reports/reports.hpp"

namespace eftctl {

namespace {

namespace rp = eftd::reports;

// Options every report shares.
struct common_args {
  std::string db;
  std::string format = "table";
  std::string output;  // empty: stdout
};

struct transactions_args {
  common_args c;
  std::string date, date_from, date_to, from, to;
  std::string merchant, store, till, pad, config, operator_id, order_no;
  std::string pan_masked, last4, pan_hash, keys;
  bool pan_stdin = false;
  std::string scheme, entry_mode, currency, kind, state, result_code, response_code, acquirer, terminal,
      batch;
  std::optional<std::int64_t> amount_min, amount_max;
  std::string sort = "created";
  bool desc = false;
  std::uint32_t limit = 1000;
  std::uint32_t offset = 0;
};

struct show_args {
  common_args c;
  std::string order_id, till, order_no;
};

struct settlement_args {
  common_args c;
  std::string date, date_from, date_to, acquirer, terminal;
};

struct cases_args {
  common_args c;
  std::string date, date_from, date_to, kind;
  std::string status = "open";
  std::int64_t in_doubt_after_s = 600;
};

struct tills_args {
  common_args c;
  std::string date;
};

struct stats_args {
  common_args c;
  std::string date, date_from, date_to, from, to, merchant, store;
};

std::int64_t now_ms() {
  std::timespec ts{};
  std::timespec_get(&ts, TIME_UTC);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string today_utc() {
  const std::time_t t = static_cast<std::time_t>(now_ms() / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

bool valid_date(const std::string& d) {
  return eftd::reports::valid_business_date(d);
}

// A point in time: milliseconds since the epoch, or UTC "YYYY-MM-DDTHH:MM[:SS][Z]".
std::optional<std::int64_t> parse_time(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 15)
    return std::stoll(s);
  std::tm tm{};
  int sec = 0;
  char tail = 0;
  const int n = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &sec, &tail);
  if (n < 5 || (n == 7 && tail != 'Z')) return std::nullopt;
  if (n == 5 && s.size() > 16 && s.substr(16) != "Z") return std::nullopt;
  tm.tm_sec = n >= 6 ? sec : 0;
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

std::optional<std::string> opt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

int usage(const std::string& what) {
  fmt::print(stderr, "eftctl: {}\n", what);
  return exit_usage;
}

int journal_error(const std::string& db, const eftd::error& e) {
  fmt::print(stderr, "eftctl: {}: {} ({})\n", db, e.message, e.code);
  return e.code == "reports.invalid_filter" ? exit_usage : exit_io;
}

// --date D sets both bounds; --date-from / --date-to one each.
bool date_range(const std::string& date, const std::string& from, const std::string& to,
                std::optional<std::string>& lo, std::optional<std::string>& hi, std::string& problem) {
  for (const auto* d : {&date, &from, &to})
    if (!d->empty() && !valid_date(*d)) {
      problem = "dates: expected YYYY-MM-DD";
      return false;
    }
  if (!date.empty() && (!from.empty() || !to.empty())) {
    problem = "give --date, or --date-from / --date-to";
    return false;
  }
  lo = opt(date.empty() ? from : date);
  hi = opt(date.empty() ? to : date);
  return true;
}

bool time_range(const std::string& from, const std::string& to, std::optional<std::int64_t>& lo,
                std::optional<std::int64_t>& hi, std::string& problem) {
  if (!from.empty()) {
    lo = parse_time(from);
    if (!lo) problem = "--from: expected milliseconds or YYYY-MM-DDTHH:MM[:SS]Z (UTC)";
  }
  if (!to.empty()) {
    hi = parse_time(to);
    if (!hi) problem = "--to: expected milliseconds or YYYY-MM-DDTHH:MM[:SS]Z (UTC)";
  }
  return problem.empty();
}

// Writes the report to --output (replacing it) or stdout.
int emit(const common_args& c, const std::string& text) {
  if (c.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? exit_ok : exit_io;
  }
  std::ofstream out(c.output, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) {
    fmt::print(stderr, "eftctl: {}: cannot write the report\n", c.output);
    return exit_io;
  }
  return exit_ok;
}

// Opens the journal and parses --format; on failure returns the exit code in `rc`.
std::optional<eftd::journal::reader> open(const common_args& c, rp::format& f, int& rc) {
  auto fmt_kind = rp::parse_format(c.format);
  if (!fmt_kind) {
    rc = usage("--format: " + fmt_kind.err().message);
    return std::nullopt;
  }
  f = *fmt_kind;
  auto reader = eftd::journal::reader::open(c.db);
  if (!reader) {
    rc = journal_error(c.db, reader.err());
    return std::nullopt;
  }
  return std::move(*reader);
}

int run_transactions(const transactions_args& a) {
  rp::transaction_filter f;
  std::string problem;
  if (!date_range(a.date, a.date_from, a.date_to, f.business_date_from, f.business_date_to, problem) ||
      !time_range(a.from, a.to, f.created_from_ms, f.created_to_ms, problem))
    return usage(problem);
  f.merchant_id = opt(a.merchant);
  f.store_id = opt(a.store);
  f.till_id = opt(a.till);
  f.operator_id = opt(a.operator_id);
  f.order_no = opt(a.order_no);
  f.pan_masked = opt(a.pan_masked);
  f.pan_last4 = opt(a.last4);
  f.pan_hash = opt(a.pan_hash);
  f.scheme = opt(a.scheme);
  f.entry_mode = opt(a.entry_mode);
  f.amount_min = a.amount_min;
  f.amount_max = a.amount_max;
  f.currency = opt(a.currency);
  f.kind = opt(a.kind);
  f.state = opt(a.state);
  f.result_code = opt(a.result_code);
  f.response_code = opt(a.response_code);
  f.acquirer = opt(a.acquirer);
  f.terminal_id = opt(a.terminal);
  f.limit = a.limit;
  f.offset = a.offset;
  f.descending = a.desc;
  auto sort = rp::parse_sort(a.sort);
  if (!sort) return usage("--sort: " + sort.err().message);
  f.sort = *sort;
  if (!a.batch.empty()) {
    // ACQUIRER/TERMINAL/NUMBER or ACQUIRER/TERMINAL/YYYY-MM-DD.
    const auto s1 = a.batch.find('/');
    const auto s2 = s1 == std::string::npos ? s1 : a.batch.find('/', s1 + 1);
    if (s2 == std::string::npos)
      return usage("--batch: expected ACQUIRER/TERMINAL/NUMBER or ACQUIRER/TERMINAL/DATE");
    rp::batch_ref b{a.batch.substr(0, s1), a.batch.substr(s1 + 1, s2 - s1 - 1), std::nullopt, ""};
    const std::string last = a.batch.substr(s2 + 1);
    if (!last.empty() && last.size() <= 9 && last.find_first_not_of("0123456789") == std::string::npos)
      b.batch_no = std::stoll(last);
    else
      b.business_date = last;
    f.batch = std::move(b);
  }

  std::optional<eftd::config::server_config> cfg;
  if (!a.config.empty()) {
    auto c = eftd::config::load_config(a.config);
    if (!c) {
      fmt::print(stderr, "eftctl: {}: {} ({})\n", a.config, c.err().message, c.err().code);
      return exit_io;
    }
    cfg = std::move(*c);
  }
  if (!a.pad.empty()) {
    // The journal does not record the pad: its tills come from the config.
    if (!cfg) return usage("--pad needs --config (the tills a pad serves are in the config)");
    for (const auto& t : cfg->tills)
      if (t.pad == a.pad) f.till_ids.push_back(t.id);
    if (f.till_ids.empty()) return usage("--pad: no till of the config uses pad " + a.pad);
  }
  if (a.pan_stdin) {
    std::string keys = a.keys;
    if (keys.empty() && cfg) keys = cfg->journal_cfg.key_file.string();
    if (keys.empty()) return usage("--pan-stdin needs --keys FILE or --config (journal.key_file)");
    std::string line;
    std::getline(std::cin, line);
    std::string digits;
    for (char ch : line)
      if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') digits += ch;
    auto hash = rp::pan_search_hash(keys, digits);
    // Clear our copy at once; the error text of a bad PAN names the problem, never the digits.
    std::fill(line.begin(), line.end(), '\0');
    std::fill(digits.begin(), digits.end(), '\0');
    if (!hash) return usage("--pan-stdin: " + hash.err().message + " (" + hash.err().code + ")");
    f.pan_hash = *hash;
  }
  if (auto st = rp::validate(f); !st) return usage(st.err().message);

  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a.c, fk, rc);
  if (!reader) return rc;
  auto page = rp::search_transactions(*reader, f);
  if (!page) return journal_error(a.c.db, page.err());
  return emit(a.c, rp::render_transactions(*page, fk));
}

int run_show(const show_args& a) {
  if (a.order_id.empty() && (a.till.empty() || a.order_no.empty()))
    return usage("give --order-id, or --till and --order");
  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a.c, fk, rc);
  if (!reader) return rc;
  std::string id = a.order_id;
  if (id.empty()) {
    auto rows = reader->find_orders_recent(a.till, a.order_no, 0);
    if (!rows) return journal_error(a.c.db, rows.err());
    if (rows->empty()) {
      fmt::print(stderr, "eftctl: no order {} on till {}\n", a.order_no, a.till);
      return exit_problems;
    }
    id = rows->front().order_id;
  }
  auto view = reader->order_detail(id);
  if (!view) return journal_error(a.c.db, view.err());
  if (!*view) {
    fmt::print(stderr, "eftctl: no order with id {}\n", id);
    return exit_problems;
  }
  return emit(a.c, rp::render_order_detail(**view, fk));
}

int run_settlement(const settlement_args& a) {
  rp::settlement_filter f;
  std::string problem;
  if (!date_range(a.date, a.date_from, a.date_to, f.business_date_from, f.business_date_to, problem))
    return usage(problem);
  f.acquirer = opt(a.acquirer);
  f.terminal_id = opt(a.terminal);
  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a.c, fk, rc);
  if (!reader) return rc;
  auto rows = rp::settlement_report(*reader, f);
  if (!rows) return journal_error(a.c.db, rows.err());
  return emit(a.c, rp::render_settlement(*rows, fk));
}

int run_cases(const cases_args& a) {
  rp::case_filter f;
  std::string problem;
  if (!date_range(a.date, a.date_from, a.date_to, f.business_date_from, f.business_date_to, problem))
    return usage(problem);
  f.kind = opt(a.kind);
  auto status = rp::parse_case_status(a.status);
  if (!status) return usage(status.err().message);
  f.status = *status;
  f.now_ms = now_ms();
  f.in_doubt_after_ms = a.in_doubt_after_s * 1000;
  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a.c, fk, rc);
  if (!reader) return rc;
  auto rows = rp::list_cases(*reader, f);
  if (!rows) return journal_error(a.c.db, rows.err());
  return emit(a.c, rp::render_cases(*rows, fk));
}

int run_pads(const common_args& a) {
  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a, fk, rc);
  if (!reader) return rc;
  auto rows = reader->pad_health();
  if (!rows) return journal_error(a.db, rows.err());
  return emit(a, rp::render_pads(*rows, fk, now_ms()));
}

int run_tills(const tills_args& a) {
  const std::string date = a.date.empty() ? today_utc() : a.date;
  if (!valid_date(date)) return usage("--date: expected YYYY-MM-DD");
  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a.c, fk, rc);
  if (!reader) return rc;
  auto rows = rp::till_status(*reader, date);
  if (!rows) return journal_error(a.c.db, rows.err());
  return emit(a.c, rp::render_tills(*rows, fk));
}

int run_stats(const stats_args& a) {
  rp::stats_filter f;
  std::string problem;
  if (!date_range(a.date, a.date_from, a.date_to, f.business_date_from, f.business_date_to, problem) ||
      !time_range(a.from, a.to, f.created_from_ms, f.created_to_ms, problem))
    return usage(problem);
  f.merchant_id = opt(a.merchant);
  f.store_id = opt(a.store);
  rp::format fk{};
  int rc = exit_ok;
  auto reader = open(a.c, fk, rc);
  if (!reader) return rc;
  auto s = rp::transaction_stats(*reader, f);
  if (!s) return journal_error(a.c.db, s.err());
  return emit(a.c, rp::render_stats(*s, fk));
}

void add_common(CLI::App* cmd, common_args& c) {
  cmd->add_option("--db", c.db, "journal database (journal.path in the config)")->required();
  cmd->add_option("--format", c.format, "table (default), csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  cmd->add_option("--output", c.output, "write the report to this file instead of stdout");
}

void add_dates(CLI::App* cmd, std::string& date, std::string& from, std::string& to) {
  cmd->add_option("--date", date, "business date YYYY-MM-DD");
  cmd->add_option("--date-from", from, "first business date YYYY-MM-DD");
  cmd->add_option("--date-to", to, "last business date YYYY-MM-DD");
}

}  // namespace

void add_report_commands(CLI::App& app, runner& run) {
  auto* report = app.add_subcommand("report", "back-office reports from the journal (read-only)");
  report->require_subcommand(1);

  auto ta = std::make_shared<transactions_args>();
  auto* t = report->add_subcommand("transactions", "search transactions; every filter narrows (AND)");
  add_common(t, ta->c);
  add_dates(t, ta->date, ta->date_from, ta->date_to);
  t->add_option("--from", ta->from, "created at or after: ms or YYYY-MM-DDTHH:MM[:SS]Z");
  t->add_option("--to", ta->to, "created at or before: ms or YYYY-MM-DDTHH:MM[:SS]Z");
  t->add_option("--merchant", ta->merchant, "merchant id");
  t->add_option("--store", ta->store, "store id");
  t->add_option("--till", ta->till, "till id");
  t->add_option("--pad", ta->pad, "pad id: the tills it serves, from --config");
  t->add_option("--config", ta->config, "eftd config (for --pad, and journal.key_file for --pan-stdin)");
  t->add_option("--operator", ta->operator_id, "POS operator id (from the order's request event)");
  t->add_option("--order", ta->order_no, "POS order number");
  t->add_option("--pan-masked", ta->pan_masked, "masked PAN as shown, e.g. 476173******0119");
  t->add_option("--last4", ta->last4, "last 4 digits of the card number");
  t->add_flag("--pan-stdin", ta->pan_stdin, "read a full PAN from stdin; matched through the keyed hash");
  t->add_option("--keys", ta->keys, "journal key file (journal.key_file) for --pan-stdin");
  t->add_option("--pan-hash", ta->pan_hash, "the keyed PAN search hash (64 hex digits)");
  t->add_option("--scheme", ta->scheme, "card scheme, e.g. visa");
  t->add_option("--entry-mode", ta->entry_mode, "chip, contactless, magstripe, manual...");
  t->add_option("--amount-min", ta->amount_min, "smallest amount, minor units");
  t->add_option("--amount-max", ta->amount_max, "largest amount, minor units");
  t->add_option("--currency", ta->currency, "ISO 4217 code, e.g. PLN");
  t->add_option("--kind", ta->kind, "order kind: sale, refund, preauth, completion...");
  t->add_option("--state", ta->state, "result: approved, declined, failed, cancelled, reversed, in_progress");
  t->add_option("--result-code", ta->result_code, "eftd result code");
  t->add_option("--response-code", ta->response_code, "acquirer response code, e.g. 51");
  t->add_option("--acquirer", ta->acquirer, "acquirer name");
  t->add_option("--terminal", ta->terminal, "acquirer terminal id");
  t->add_option("--batch", ta->batch, "ACQUIRER/TERMINAL/BATCH_NO, or ACQUIRER/TERMINAL/YYYY-MM-DD");
  t->add_option("--sort", ta->sort, "created (default), amount or order_no")
      ->check(CLI::IsMember({"created", "amount", "order_no"}));
  t->add_flag("--desc", ta->desc, "sort descending");
  t->add_option("--limit", ta->limit, "at most this many rows (1..10000, default 1000)")
      ->check(CLI::Range(1, 10000));
  t->add_option("--offset", ta->offset, "skip this many rows first");
  t->callback([&run, ta] { run = [ta] { return run_transactions(*ta); }; });

  auto sa = std::make_shared<show_args>();
  auto* s = report->add_subcommand("show", "one transaction: operations, acquirer messages, events");
  add_common(s, sa->c);
  s->add_option("--order-id", sa->order_id, "the journal's order id");
  s->add_option("--till", sa->till, "till id (with --order)");
  s->add_option("--order", sa->order_no, "POS order number (with --till; the newest such order)");
  s->callback([&run, sa] { run = [sa] { return run_show(*sa); }; });

  auto sta = std::make_shared<settlement_args>();
  auto* st =
      report->add_subcommand("settlement", "batches per acquirer and terminal, with the journal's totals");
  add_common(st, sta->c);
  add_dates(st, sta->date, sta->date_from, sta->date_to);
  st->add_option("--acquirer", sta->acquirer, "acquirer name");
  st->add_option("--terminal", sta->terminal, "acquirer terminal id");
  st->callback([&run, sta] { run = [sta] { return run_settlement(*sta); }; });

  auto ca = std::make_shared<cases_args>();
  auto* c = report->add_subcommand("cases", "reconciliation differences and cases for people");
  add_common(c, ca->c);
  add_dates(c, ca->date, ca->date_from, ca->date_to);
  c->add_option("--kind", ca->kind, "one case kind, e.g. batch_out_of_balance, reversal_parked");
  c->add_option("--status", ca->status, "open | resolved | all (resolved: eftctl cases resolve)")
      ->capture_default_str();
  c->add_option("--in-doubt-after", ca->in_doubt_after_s,
                "seconds without an outcome before a request is a case")
      ->check(CLI::Range(0, 30 * 24 * 3600));
  c->callback([&run, ca] { run = [ca] { return run_cases(*ca); }; });

  auto pa = std::make_shared<common_args>();
  auto* p = report->add_subcommand("pads", "PIN pads as eftd last saw them");
  add_common(p, *pa);
  p->callback([&run, pa] { run = [pa] { return run_pads(*pa); }; });

  auto tla = std::make_shared<tills_args>();
  auto* tl = report->add_subcommand("tills", "tills: last activity and the business date's counts");
  add_common(tl, tla->c);
  tl->add_option("--date", tla->date, "business date YYYY-MM-DD (default: today, UTC)");
  tl->callback([&run, tla] { run = [tla] { return run_tills(*tla); }; });

  auto sx = std::make_shared<stats_args>();
  auto* x = report->add_subcommand("stats", "transactions and approval rate per hour, and by scheme");
  add_common(x, sx->c);
  add_dates(x, sx->date, sx->date_from, sx->date_to);
  x->add_option("--from", sx->from, "created at or after: ms or YYYY-MM-DDTHH:MM[:SS]Z");
  x->add_option("--to", sx->to, "created at or before: ms or YYYY-MM-DDTHH:MM[:SS]Z");
  x->add_option("--merchant", sx->merchant, "merchant id");
  x->add_option("--store", sx->store, "store id");
  x->callback([&run, sx] { run = [sx] { return run_stats(*sx); }; });
}

}  // namespace eftctl
