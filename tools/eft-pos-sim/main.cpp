// eft-pos-sim: a cash register on the command line, over the eftd POS client library.
//
//   eft-pos-sim --host 127.0.0.1 --port N --till T01 [--operator 42] sale --order 4711 --amount 125.00
//   --currency PLN eft-pos-sim ... status --order 4711 [--date YYYY-MM-DD] eft-pos-sim ... script FILE (one
//   command per line, see print_script_help)
//
// Status lines are printed as they arrive, then the final result as a readable block, or
// with --json as one JSON line (the protocol message) for tests. Exit code 0 when every
// command got its final answer (any outcome), 2 on a connection/protocol error or an error
// reply from the server (printed; with --json as the error message line).
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "eftd/core/money.hpp"
#include "eftd/pos/client.hpp"
#include "eftd/pos/codec.hpp"

namespace {

namespace pos = eftd::pos;

constexpr int exit_ok = 0;
constexpr int exit_error = 2;

struct settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string till;
  std::string operator_id;
  std::string client_name = "eft-pos-sim";
  bool json = false;
  int connect_timeout_ms = 5000;
  int inactivity_timeout_ms = 30000;
  std::vector<std::string> answers;
};

class sim {
 public:
  explicit sim(settings s) : s_(std::move(s)), answers_(s_.answers.begin(), s_.answers.end()) {}

  // Connects and logs in; false (message printed) on failure.
  bool open() {
    pos::client_options o;
    o.inactivity_timeout = std::chrono::milliseconds(s_.inactivity_timeout_ms);
    auto c = pos::client::connect(s_.host, s_.port, std::chrono::milliseconds(s_.connect_timeout_ms), o);
    if (!c) return fail(c.err(), "connect");
    client_ = std::move(*c);
    pos::login req;
    req.till_id = s_.till;
    req.operator_id = s_.operator_id;
    req.client = s_.client_name;
    auto ok = client_->login(req);
    if (!ok) return fail(ok.err(), "login");
    if (!s_.json) {
      std::printf("[login] server %s, business date %s, protocol v%d\n", ok->server.c_str(),
                  ok->business_date.c_str(), ok->version);
      std::fflush(stdout);
    }
    return true;
  }

  void close() {
    if (client_ && client_->connected()) (void)client_->logout();
    client_.reset();
  }

  bool sale(const std::string& order, const std::string& amount, const std::string& currency,
            const std::string& cashback = {}, const std::string& tip = {}) {
    pos::sale req;
    req.order_no = order;
    req.currency = currency;
    if (!minor_units(amount, currency, "amount", req.amount)) return false;
    if (!cashback.empty() && !minor_units(cashback, currency, "cashback", req.cashback)) return false;
    if (!tip.empty() && !minor_units(tip, currency, "tip", req.tip)) return false;
    return finish(client_->sale(req, cbs()), "sale");
  }

  bool refund(const std::string& order, const std::string& amount, const std::string& currency,
              const std::string& original) {
    pos::refund req;
    req.order_no = order;
    req.currency = currency;
    req.original_order_no = original;
    if (!minor_units(amount, currency, "amount", req.amount)) return false;
    return finish(client_->refund(req, cbs()), "refund");
  }

  bool cancel(const std::string& order, const std::string& date) {
    pos::cancel req;
    req.order_no = order;
    req.business_date = date;
    return finish(client_->cancel(req, cbs()), "cancel");
  }

  bool status(const std::string& order, const std::string& date) {
    pos::status_query req;
    req.order_no = order;
    req.business_date = date;
    auto r = client_->query(req);
    if (!r) return fail(r.err(), "status");
    if (s_.json) {
      emit_json(*r);
      return true;
    }
    std::printf("== order %s: %s ==\n", r->order_no.c_str(), r->state.c_str());
    if (!r->business_date.empty()) std::printf("business date  %s\n", r->business_date.c_str());
    if (r->last_result) print_result(*r->last_result);
    std::fflush(stdout);
    return true;
  }

  bool ping() {
    auto r = client_->ping();
    if (!r) return fail(r.err(), "ping");
    if (s_.json)
      emit_json(*r);
    else
      std::printf("[ping] ok\n");
    std::fflush(stdout);
    return true;
  }

  bool run_script(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "eft-pos-sim: cannot open script %s\n", path.c_str());
      return false;
    }
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      std::istringstream words(line);
      std::vector<std::string> w;
      for (std::string x; words >> x;) w.push_back(x);
      if (w.empty() || w[0][0] == '#') continue;
      if (!s_.json) std::printf("> %s\n", line.c_str());
      const auto arg = [&](std::size_t i) { return i < w.size() ? w[i] : std::string(); };
      const auto need = [&](std::size_t min, std::size_t max) {
        if (w.size() >= min && w.size() <= max) return true;
        std::fprintf(stderr, "eft-pos-sim: %s:%d: wrong number of arguments for '%s'\n", path.c_str(),
                     line_no, w[0].c_str());
        return false;
      };
      bool ok = false;
      if (w[0] == "sale") {
        ok = need(4, 6) && sale(arg(1), arg(2), arg(3), arg(4), arg(5));
      } else if (w[0] == "refund") {
        ok = need(4, 5) && refund(arg(1), arg(2), arg(3), arg(4));
      } else if (w[0] == "cancel") {
        ok = need(2, 3) && cancel(arg(1), arg(2));
      } else if (w[0] == "status") {
        ok = need(2, 3) && status(arg(1), arg(2));
      } else if (w[0] == "ping") {
        ok = need(1, 1) && ping();
      } else if (w[0] == "reconnect") {
        // The recovery procedure: a new connection and a new login, same till.
        client_.reset();
        ok = need(1, 1) && open();
      } else if (w[0] == "logout") {
        ok = need(1, 1);
        if (ok) {
          auto r = client_->logout();
          ok = r ? true : fail(r.err(), "logout");
        }
      } else {
        std::fprintf(stderr, "eft-pos-sim: %s:%d: unknown command '%s'\n", path.c_str(), line_no,
                     w[0].c_str());
      }
      if (!ok) return false;
    }
    return true;
  }

 private:
  template <class M>
  void emit_json(const M& m) {
    std::fputs(pos::encode(m).c_str(), stdout);
    std::fflush(stdout);
  }

  // Status lines go to stdout in the human mode; with --json stdout carries only messages.
  FILE* chatter() const { return s_.json ? stderr : stdout; }

  pos::callbacks cbs() {
    pos::callbacks cb;
    cb.on_status = [this](const pos::status& st) {
      std::fprintf(chatter(), "[status] %s\n", st.text.c_str());
      std::fflush(chatter());
    };
    cb.on_prompt = [this](const pos::prompt& p) {
      std::string value = p.default_value;
      if (!answers_.empty()) {
        value = answers_.front();
        answers_.pop_front();
      }
      std::string opts;
      for (const auto& o : p.options) opts += (opts.empty() ? "" : "/") + o;
      std::fprintf(chatter(), "[prompt] %s%s%s%s -> %s\n", p.text.c_str(), opts.empty() ? "" : " (",
                   opts.c_str(), opts.empty() ? "" : ")", value.c_str());
      std::fflush(chatter());
      return value;
    };
    return cb;
  }

  bool minor_units(const std::string& text, const std::string& currency, const char* what,
                   std::int64_t& out) {
    auto m = eftd::money::parse(text, currency);
    if (!m) {
      std::fprintf(stderr, "eft-pos-sim: bad %s '%s' for %s: %s\n", what, text.c_str(), currency.c_str(),
                   m.err().message.c_str());
      return false;
    }
    out = m->minor_units();
    return true;
  }

  static std::string amount_text(std::int64_t minor, const std::string& currency) {
    auto m = eftd::money::of(minor, currency);
    return m ? m->format() : std::to_string(minor) + " (minor units) " + currency;
  }

  bool finish(const eftd::result<pos::result>& r, const char* what) {
    if (!r) return fail(r.err(), what);
    if (s_.json) {
      emit_json(*r);
    } else {
      print_result(*r);
      std::fflush(stdout);
    }
    return true;
  }

  static void row(const char* label, const std::string& value) {
    if (!value.empty()) std::printf("%-15s%s\n", label, value.c_str());
  }

  static void print_result(const pos::result& r) {
    std::string outcome = r.outcome;
    for (auto& ch : outcome) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::printf("== %s ==\n", outcome.c_str());
    row("order", r.order_no);
    row("business date", r.business_date);
    if (!r.currency.empty()) {
      std::string amount = amount_text(r.amount, r.currency);
      if (r.approved_amount != 0 && r.approved_amount != r.amount) {
        amount += " (approved " + amount_text(r.approved_amount, r.currency) + ")";
      }
      row("amount", amount);
    }
    if (!r.why.code.empty()) {
      row("reason", r.why.code);
      row("cashier text", r.why.cashier_text);
      row("customer text", r.why.customer_text);
    }
    row("auth code", r.auth_code);
    row("card", r.masked_pan);
    row("scheme", r.scheme);
    row("entry mode", r.entry_mode);
    row("terminal", r.terminal_id);
    row("stan", r.stan);
    row("rrn", r.rrn);
    for (const auto& [k, v] : r.emv) row(("emv " + k).c_str(), v);
    const auto print_copy = [](const char* title, const std::vector<std::string>& lines) {
      if (lines.empty()) return;
      std::printf("--- %s ---\n", title);
      for (const auto& l : lines) std::printf("%s\n", l.c_str());
    };
    print_copy("merchant receipt", r.rcpt.merchant);
    print_copy("customer receipt", r.rcpt.customer);
  }

  bool fail(const eftd::error& e, const char* what) {
    if (s_.json) {
      // Tests assert on the code: give them the error as a protocol message.
      emit_json(pos::error{"", e.code, e.message});
    }
    std::fprintf(stderr, "eft-pos-sim: %s failed: %s: %s\n", what, e.code.c_str(), e.message.c_str());
    const std::string_view op(what);
    const bool transaction = op == "sale" || op == "refund" || op == "cancel";
    if (transaction && (e.code == pos::codes::disconnected || e.code == pos::codes::timeout)) {
      std::fprintf(stderr,
                   "eft-pos-sim: the outcome of a running transaction is unknown; reconnect and ask with "
                   "'status --order <order>'\n");
    }
    return false;
  }

  settings s_;
  std::deque<std::string> answers_;
  std::unique_ptr<pos::client> client_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eft-pos-sim: a POS (cash register) simulator for eftd"};
  app.require_subcommand(1);
  settings s;
  app.add_option("--host", s.host, "eftd POS listener host")->capture_default_str();
  app.add_option("--port", s.port, "eftd POS listener port")->required();
  app.add_option("--till", s.till, "till id")->required();
  app.add_option("--operator", s.operator_id, "operator (cashier) id");
  app.add_option("--client", s.client_name, "client name sent at login")->capture_default_str();
  app.add_flag("--json", s.json, "print final messages as JSON lines");
  app.add_option("--connect-timeout-ms", s.connect_timeout_ms, "connect timeout")->capture_default_str();
  app.add_option("--timeout-ms", s.inactivity_timeout_ms,
                 "declare a transaction lost after this long without a message")
      ->capture_default_str();
  app.add_option("--answer", s.answers,
                 "answer to the next prompt; repeat for several (default: the prompt's default)")
      ->allow_extra_args(false);

  std::string order, amount, currency, cashback, tip, date, script;
  auto* sale_cmd = app.add_subcommand("sale", "run a sale");
  sale_cmd->add_option("--order", order, "POS order number")->required();
  sale_cmd->add_option("--amount", amount, "amount in major units, e.g. 125.00")->required();
  sale_cmd->add_option("--currency", currency, "ISO 4217 alpha code")->required();
  sale_cmd->add_option("--cashback", cashback, "cashback part of the amount");
  sale_cmd->add_option("--tip", tip, "tip part of the amount");

  auto* status_cmd = app.add_subcommand("status", "ask for the state of an order");
  status_cmd->add_option("--order", order, "POS order number")->required();
  status_cmd->add_option("--date", date, "business date YYYY-MM-DD (default: current)");

  auto* script_cmd = app.add_subcommand(
      "script",
      "run commands from FILE, one per line: 'sale ORDER AMOUNT CCY [CASHBACK [TIP]]', "
      "'refund ORDER AMOUNT CCY [ORIGINAL_ORDER]', 'cancel ORDER [DATE]', 'status ORDER [DATE]', "
      "'ping', 'reconnect', 'logout'; '#' starts a comment");
  script_cmd->add_option("file", script, "script file")->required();

  CLI11_PARSE(app, argc, argv);

  sim session(s);
  if (!session.open()) return exit_error;
  bool ok = false;
  if (sale_cmd->parsed())
    ok = session.sale(order, amount, currency, cashback, tip);
  else if (status_cmd->parsed())
    ok = session.status(order, date);
  else if (script_cmd->parsed())
    ok = session.run_script(script);
  session.close();
  return ok ? exit_ok : exit_error;
}
