// eftctl settlement: settlement files in a layout (acquirers/settlement/layouts, LAYOUTS.md).
//
//   settlement export --db J --acquirer A --date YYYY-MM-DD --layout L --out F
//       what eftd's journal says settles with A on that business date, as a file in layout L
//   settlement match --db J --file F --layout L [--acquirer A] [--date D] [--format table|json|csv]
//       an acquirer's file against the journal: matched, only in the file, only in the journal,
//       differences (amount, auth code, date, RRN); exit 0 when all match, 1 otherwise
//
//   settlement close [--socket PATH] [--date D] [--acquirer A] [--json] [--timeout-ms N]
//       asks the running eftd (its admin socket, [admin] socket) to close the batches of a
//       business date (default today) with 0500 / batch upload; prints each batch's result.
//       Exit 0 when every batch closed, 1 when one is out of balance, refused or unfinished.
//
// --layout takes a layout file or the name of a shipped one: fixed-width, csv.
// Exit codes: 2 for a bad layout, a refused file or bad options; 3 when a file or the journal
// cannot be read or written.
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "eftd/reports/orders.hpp"
#include "eftd/settlement/layout.hpp"
#include "eftd/settlement/reconcile.hpp"

namespace eftctl {

namespace {

namespace st = eftd::settlement;

struct export_args {
  std::string db, acquirer, date, layout = "fixed-width", out;
};

struct match_args {
  std::string db, file, layout = "fixed-width", acquirer, date, format = "table";
};

bool valid_date(const std::string& d) {
  return eftd::reports::valid_business_date(d);
}

int fail(const eftd::error& e) {
  fmt::print(stderr, "eftctl: {} ({})\n", e.message, e.code);
  return e.code.starts_with("journal.") || e.code == "settlement.io" ? exit_io : exit_usage;
}

int run_export(const export_args& a) {
  if (!valid_date(a.date)) {
    fmt::print(stderr, "eftctl: --date must be YYYY-MM-DD\n");
    return exit_usage;
  }
  auto layout = st::load_layout_or_shipped(a.layout);
  if (!layout) return fail(layout.err());
  auto f = st::export_file(a.db, a.acquirer, a.date);
  if (!f) return fail(f.err());
  auto bytes = st::encode(*layout, *f);
  if (!bytes) return fail(bytes.err());
  if (auto w = st::write_text_file(a.out, *bytes); !w) return fail(w.err());
  fmt::print("{}: {} transactions, debits {}, credits {}, net {} (layout {})\n", a.out, f->trailer.count,
             f->trailer.total_debits, f->trailer.total_credits, f->trailer.net, layout->name);
  return exit_ok;
}

std::string row(std::string_view what, const st::detail& d) {
  return fmt::format("{:<16} {:<8} {:<12} {:<6} {:>12} {:<6} {}\n", what, d.terminal_id, d.rrn, d.auth_code,
                     d.amount, d.kind == st::entry_kind::credit ? "credit" : "debit", d.date);
}

int run_match(const match_args& a) {
  if (a.format != "table" && a.format != "json" && a.format != "csv") {
    fmt::print(stderr, "eftctl: --format must be table, json or csv\n");
    return exit_usage;
  }
  if (!a.date.empty() && !valid_date(a.date)) {
    fmt::print(stderr, "eftctl: --date must be YYYY-MM-DD\n");
    return exit_usage;
  }
  auto layout = st::load_layout_or_shipped(a.layout);
  if (!layout) return fail(layout.err());
  auto text = st::read_text_file(a.file);
  if (!text) return fail(text.err());
  auto f = st::decode(*layout, *text);
  if (!f) return fail(f.err());
  // The journal side: the file's business date and acquirer unless told otherwise.
  std::string date = a.date;
  if (date.empty()) {
    const auto& h = f->header.date;
    if (h.size() != 8) {
      fmt::print(stderr, "eftctl: the file's header has no date: give --date\n");
      return exit_usage;
    }
    date = h.substr(0, 4) + "-" + h.substr(4, 2) + "-" + h.substr(6, 2);
  }
  st::journal_query q;
  q.business_date = date;
  if (!a.acquirer.empty())
    q.acquirer = a.acquirer;
  else if (!f->header.acquirer.empty())
    q.acquirer = f->header.acquirer;
  auto journal = st::journal_details(a.db, q);
  if (!journal) return fail(journal.err());
  const auto r = st::match(f->details, *journal, layout->match_keys, layout->match_confirm);

  if (a.format == "json") {
    fmt::print("{}", st::match_json(r, {date, q.acquirer.value_or(""), std::nullopt}));
  } else if (a.format == "csv") {
    fmt::print("{}", st::match_csv(r, {date, q.acquirer.value_or(""), std::nullopt}));
  } else {
    std::string t = fmt::format("settlement {} against the journal, business date {}, acquirer {}\n", a.file,
                                date, q.acquirer.value_or("(any)"));
    t += fmt::format("{:<16} {:<8} {:<12} {:<6} {:>12} {:<6} {}\n", "RESULT", "TERMINAL", "RRN", "AUTH",
                     "AMOUNT", "KIND", "DATE");
    for (const auto& d : r.matched) t += row("matched", d);
    for (const auto& d : r.only_in_file) t += row("only-in-file", d);
    for (const auto& d : r.only_in_journal) t += row("only-in-journal", d);
    for (const auto& d : r.differences) {
      std::string fields;
      for (const auto& f : d.fields) fields += (fields.empty() ? "" : ",") + f;
      t += row("differs(file)", d.in_file);
      t += row("differs(journal)", d.in_journal);
      t += fmt::format("{:<16} fields: {}\n", "", fields);
    }
    t += fmt::format("matched {}, only in file {}, only in journal {}, differences {}: {}\n",
                     r.matched.size(), r.only_in_file.size(), r.only_in_journal.size(), r.differences.size(),
                     r.all_matched() ? "ALL MATCHED" : "DIFFERENCES");
    fmt::print("{}", t);
  }
  return r.all_matched() ? exit_ok : exit_problems;
}

struct close_args {
  std::string socket = "var/eftd-admin.sock", date, acquirer;
  bool json = false;
  int timeout_ms = 120000;
};

}  // namespace

// One request line to the admin socket, one reply line back (admin.hpp), within the deadline.
eftd::result<std::string> admin_request(const std::string& path, const std::string& line, int timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return eftd::make_error("admin.path", "socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return eftd::make_error("admin.connect", std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
    return eftd::make_error("admin.connect", fmt::format("cannot connect to {}: {} (is eftd running?)", path,
                                                         std::strerror(errno)));
  const std::string out = line + "\n";
  for (std::size_t sent = 0; sent < out.size();) {
    const auto n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return eftd::make_error("admin.io", "write to the admin socket failed");
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (in.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return eftd::make_error("admin.timeout", "no answer from eftd in time");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const auto n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return eftd::make_error("admin.io", "eftd closed the admin connection");
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in.substr(0, in.find('\n'));
}

std::optional<nlohmann::json> admin_call(const std::string& path, const nlohmann::json& request,
                                         int timeout_ms) {
  auto line = admin_request(path, request.dump(), timeout_ms);
  if (!line) {
    fmt::print(stderr, "eftctl: {} ({})\n", line.err().message, line.err().code);
    return std::nullopt;
  }
  auto reply = nlohmann::json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    fmt::print(stderr, "eftctl: eftd answered something that is not JSON\n");
    return std::nullopt;
  }
  return reply;
}

admin_answer admin_command(const std::string& path, const nlohmann::json& request, int timeout_ms,
                           bool print_json) {
  admin_answer a;
  auto answered = admin_call(path, request, timeout_ms);
  if (!answered) return a;
  a.reply = std::move(*answered);
  if (print_json) fmt::print("{}\n", a.reply.dump());
  if (!a.reply.value("ok", false)) {
    if (!print_json) {
      const auto err = a.reply.value("error", nlohmann::json::object());
      fmt::print(stderr, "eftctl: {} ({})\n", err.value("message", "refused"), err.value("code", ""));
    }
    a.exit_code = exit_problems;
    return a;
  }
  a.exit_code = exit_ok;
  return a;
}

namespace {

int run_close(const close_args& a) {
  if (!a.date.empty() && !valid_date(a.date)) {
    fmt::print(stderr, "eftctl: --date must be YYYY-MM-DD\n");
    return exit_usage;
  }
  nlohmann::json req{{"cmd", "settle"}};
  if (!a.date.empty()) req["business_date"] = a.date;
  if (!a.acquirer.empty()) req["acquirer"] = a.acquirer;
  auto answered = admin_call(a.socket, req, a.timeout_ms);
  if (!answered) return exit_io;
  nlohmann::json reply = std::move(*answered);
  if (!reply.value("ok", false)) {
    if (a.json)
      fmt::print("{}\n", reply.dump(2));
    else
      fmt::print(stderr, "eftctl: {} ({})\n", reply["error"].value("message", "refused"),
                 reply["error"].value("code", ""));
    return exit_usage;
  }
  bool all_closed = true;
  const auto& batches = reply["batches"];
  for (const auto& b : batches)
    if (b.value("state", "") != "closed" || b.contains("error")) all_closed = false;
  if (a.json) {
    fmt::print("{}\n", reply.dump(2));
  } else {
    std::string t = fmt::format(
        "{:<10} {:<8} {:>5} {:<10} {:<20} {:>6} {:>12} {:>6} {:>12} {:>13} {:>4} {}\n", "ACQUIRER",
        "TERMINAL", "BATCH", "DATE", "STATE", "DEBITS", "AMOUNT", "CREDIT", "AMOUNT", "NET", "UPL", "NOTE");
    for (const auto& b : batches) {
      std::string note;
      if (b.value("already_closed", false)) note = "closed before (nothing sent)";
      if (b.value("needs_attention", false)) note = "NEEDS ATTENTION: totals differ from the acquirer's";
      if (b.contains("error")) note = "unfinished: " + b["error"].value("message", "") + "; run again";
      if (b.value("in_doubt", 0) > 0) note += fmt::format(" ({} in doubt, left out)", b.value("in_doubt", 0));
      t += fmt::format("{:<10} {:<8} {:>5} {:<10} {:<20} {:>6} {:>12} {:>6} {:>12} {:>13} {:>4} {}\n",
                       b.value("acquirer", ""), b.value("terminal_id", ""), b.value("batch_no", 0),
                       b.value("business_date", ""), b.value("state", ""), b.value("debits", 0),
                       b.value("debit_amount", 0), b.value("credits", 0), b.value("credit_amount", 0),
                       b.value("net_amount", 0), b.value("uploads", 0), note);
    }
    if (batches.empty())
      t += fmt::format("nothing to settle and no batches labelled {}\n", reply.value("business_date", ""));
    fmt::print("{}", t);
  }
  return all_closed ? exit_ok : exit_problems;
}

}  // namespace

void add_settlement_commands(CLI::App& app, runner& run) {
  auto* s = app.add_subcommand(
      "settlement", "settlement files: export from the journal, match an acquirer's file; close batches");
  s->require_subcommand(1);

  auto ea = std::make_shared<export_args>();
  auto* ex =
      s->add_subcommand("export", "write what the journal says settles with an acquirer on a business date");
  ex->add_option("--db", ea->db, "journal database (journal.path in the config)")->required();
  ex->add_option("--acquirer", ea->acquirer, "acquirer name (as in the config)")->required();
  ex->add_option("--date", ea->date, "business date YYYY-MM-DD")->required();
  ex->add_option("--layout", ea->layout, "layout TOML file, or fixed-width / csv (shipped)")
      ->capture_default_str();
  ex->add_option("--out", ea->out, "file to write (replaced atomically)")->required();
  ex->callback([&run, ea] { run = [ea] { return run_export(*ea); }; });

  auto ma = std::make_shared<match_args>();
  auto* m = s->add_subcommand(
      "match", "match an acquirer's settlement file against the journal (exit 1: differences)");
  m->add_option("--db", ma->db, "journal database (journal.path in the config)")->required();
  m->add_option("--file", ma->file, "the acquirer's settlement file")->required();
  m->add_option("--layout", ma->layout, "layout TOML file, or fixed-width / csv (shipped)")
      ->capture_default_str();
  m->add_option("--acquirer", ma->acquirer, "journal acquirer name (default: the file header's, else any)");
  m->add_option("--date", ma->date, "business date YYYY-MM-DD (default: the file header's)");
  m->add_option("--format", ma->format, "table (default), json or csv")->capture_default_str();
  m->callback([&run, ma] { run = [ma] { return run_match(*ma); }; });

  auto ca = std::make_shared<close_args>();
  auto* c = s->add_subcommand(
      "close",
      "ask the running eftd to close a business date's batches (0500, batch upload when out of balance)");
  c->add_option("--socket", ca->socket, "eftd's admin socket ([admin] socket)")->capture_default_str();
  c->add_option("--date", ca->date, "business date YYYY-MM-DD (default: eftd's today)");
  c->add_option("--acquirer", ca->acquirer, "only this acquirer (default: every acquirer)");
  c->add_flag("--json", ca->json, "print eftd's JSON answer");
  c->add_option("--timeout-ms", ca->timeout_ms, "how long to wait for eftd's answer")->capture_default_str();
  c->callback([&run, ca] { run = [ca] { return run_close(*ca); }; });
}

}  // namespace eftctl
