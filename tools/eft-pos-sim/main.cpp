// eft-pos-sim: a cash register on the command line, over the eftd POS client library.
//
//   eft-pos-sim --host H --port N --till T01 [--operator 42] [TLS options] COMMAND
//     sale --order 4711 --amount 125.00 --currency PLN [--cashback X] [--tip Y]
//     refund --order 4712 --amount 5.00 --currency PLN [--original 4711] [--original-date D]
//     cancel --order 4711 [--date D]          balance --order B-1
//     status --order 4711 [--date D]          totals [--date D]
//     script FILE                             (one command per line, see the script help)
//     interactive [--currency PLN]            (commands typed on stdin, see interactive.hpp)
//   TLS: --tls-ca FILE --tls-cert FILE --tls-key FILE [--tls-server-name NAME], or --tls
//
// One-shot commands and scripts use the synchronous client; interactive mode the async one.
// Status lines are printed as they arrive, then the final answer as a readable block, or with
// --json as one JSON line (the protocol message) for tests; interactive --json prints every
// message (status, prompt, result...) as a JSON line. Exit code 0 when every command got its
// final answer (any outcome), 2 on a connection/protocol error or an error reply from the
// server (printed; with --json also as an error message line).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "eftd/pos/client.hpp"
#include "eftd/pos/codec.hpp"
#include "interactive.hpp"
#include "print.hpp"
#include "settings.hpp"

namespace {

namespace pos = eftd::pos;
using eft_pos_sim::settings;

constexpr int exit_ok = 0;
constexpr int exit_error = 2;

class sim {
 public:
  explicit sim(settings s) : s_(std::move(s)), answers_(s_.answers.begin(), s_.answers.end()) {}

  // Connects and logs in; false (message printed) on failure.
  bool open() {
    auto c = pos::client::connect(s_.host, s_.port, std::chrono::milliseconds(s_.connect_timeout_ms),
                                  s_.client_options());
    if (!c) return fail(c.err(), "connect");
    client_ = std::move(*c);
    // A POS that can answer prompts says so; without --answer the server takes the defaults.
    auto ok = client_->login(s_.login_request(s_.answers.empty() ? std::vector<std::string>{}
                                                                 : std::vector<std::string>{"prompt"}));
    if (!ok) return fail(ok.err(), "login");
    if (!s_.json) {
      std::printf("[login] server %s, business date %s, protocol v%d%s\n", ok->server.c_str(),
                  ok->business_date.c_str(), ok->version, s_.use_tls() ? ", TLS" : "");
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
    if (!eft_pos_sim::minor_units(amount, currency, "amount", req.amount)) return false;
    if (!cashback.empty() && !eft_pos_sim::minor_units(cashback, currency, "cashback", req.cashback))
      return false;
    if (!tip.empty() && !eft_pos_sim::minor_units(tip, currency, "tip", req.tip)) return false;
    return finish(client_->sale(req, cbs()), "sale");
  }

  bool refund(const std::string& order, const std::string& amount, const std::string& currency,
              const std::string& original, const std::string& original_date = {}) {
    pos::refund req;
    req.order_no = order;
    req.currency = currency;
    req.original_order_no = original;
    req.original_business_date = original_date;
    if (!eft_pos_sim::minor_units(amount, currency, "amount", req.amount)) return false;
    return finish(client_->refund(req, cbs()), "refund");
  }

  bool preauth(const std::string& order, const std::string& amount, const std::string& currency) {
    pos::preauth req;
    req.order_no = order;
    req.currency = currency;
    if (!eft_pos_sim::minor_units(amount, currency, "amount", req.amount)) return false;
    return finish(client_->transaction(pos::message{req}, cbs()), "preauth");
  }

  // A completion or incremental of pre-authorisation `preauth_order`.
  template <typename Request>
  bool follow_up(const std::string& what, const std::string& order, const std::string& preauth_order,
                 const std::string& amount, const std::string& currency) {
    Request req;
    req.order_no = order;
    req.preauth_order_no = preauth_order;
    req.currency = currency;
    if (!eft_pos_sim::minor_units(amount, currency, "amount", req.amount)) return false;
    return finish(client_->transaction(pos::message{req}, cbs()), what.c_str());
  }

  bool cancel(const std::string& order, const std::string& date) {
    pos::cancel req;
    req.order_no = order;
    req.business_date = date;
    return finish(client_->cancel(req, cbs()), "cancel");
  }

  bool balance(const std::string& order) {
    pos::balance_inquiry req;
    req.order_no = order;
    return finish(client_->balance_inquiry(req, cbs()), "balance");
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
    eft_pos_sim::print_order_status(stdout, *r);
    std::fflush(stdout);
    return true;
  }

  bool totals(const std::string& date) {
    auto r = client_->totals(pos::totals{"", date});
    if (!r) return fail(r.err(), "totals");
    if (s_.json) {
      emit_json(*r);
      return true;
    }
    eft_pos_sim::print_totals(stdout, *r);
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
      } else if (w[0] == "balance") {
        ok = need(2, 2) && balance(arg(1));
      } else if (w[0] == "status") {
        ok = need(2, 3) && status(arg(1), arg(2));
      } else if (w[0] == "totals") {
        ok = need(1, 2) && totals(arg(1));
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
        value = eft_pos_sim::answer_value(p, answers_.front());
        answers_.pop_front();
      }
      std::fprintf(chatter(), "[prompt] %s -> %s\n", eft_pos_sim::render_prompt(p).c_str(), value.c_str());
      std::fflush(chatter());
      return value;
    };
    return cb;
  }

  bool finish(const eftd::result<pos::result>& r, const char* what) {
    if (!r) return fail(r.err(), what);
    if (s_.json) {
      emit_json(*r);
    } else {
      eft_pos_sim::print_result(stdout, *r);
      std::fflush(stdout);
    }
    return true;
  }

  bool fail(const eftd::error& e, const char* what) {
    if (s_.json) {
      // Tests assert on the code: give them the error as a protocol message.
      emit_json(pos::error{"", e.code, e.message});
    }
    std::fprintf(stderr, "eft-pos-sim: %s failed: %s: %s\n", what, e.code.c_str(), e.message.c_str());
    const std::string_view op(what);
    const bool transaction = op == "sale" || op == "refund" || op == "cancel" || op == "balance";
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
  app.add_flag("--json", s.json, "print messages as JSON lines");
  app.add_option("--connect-timeout-ms", s.connect_timeout_ms, "connect timeout")->capture_default_str();
  app.add_option("--timeout-ms", s.inactivity_timeout_ms,
                 "declare a transaction lost after this long without a message")
      ->capture_default_str();
  app.add_option("--answer", s.answers,
                 "answer to the next prompt; repeat for several (default: the prompt's default)")
      ->allow_extra_args(false);
  app.add_flag("--tls", s.tls, "use TLS (implied by any --tls-* file option)");
  app.add_option("--tls-ca", s.tls_ca,
                 "PEM CA file the server's certificate must chain to (default: system store)");
  app.add_option("--tls-cert", s.tls_cert, "PEM client certificate of this till");
  app.add_option("--tls-key", s.tls_key, "PEM private key of --tls-cert (default: in the certificate file)");
  app.add_option("--tls-server-name", s.tls_server_name,
                 "name the server's certificate must carry (default: --host)");

  std::string order, amount, currency, cashback, tip, date, original, original_date, script;
  auto* sale_cmd = app.add_subcommand("sale", "run a sale");
  sale_cmd->add_option("--order", order, "POS order number")->required();
  sale_cmd->add_option("--amount", amount, "amount in major units, e.g. 125.00")->required();
  sale_cmd->add_option("--currency", currency, "ISO 4217 alpha code")->required();
  sale_cmd->add_option("--cashback", cashback, "cashback part of the amount");
  sale_cmd->add_option("--tip", tip, "tip part of the amount");

  auto* refund_cmd = app.add_subcommand("refund", "money back to a card");
  refund_cmd->add_option("--order", order, "POS order number of the refund")->required();
  refund_cmd->add_option("--amount", amount, "amount in major units, e.g. 5.00")->required();
  refund_cmd->add_option("--currency", currency, "ISO 4217 alpha code")->required();
  refund_cmd->add_option("--original", original, "order number of the sale being refunded");
  refund_cmd->add_option("--original-date", original_date, "business date of that sale, YYYY-MM-DD");

  std::string preauth_order;
  auto* preauth_cmd = app.add_subcommand("preauth", "reserve an amount on a card (pre-authorisation)");
  preauth_cmd->add_option("--order", order, "POS order number")->required();
  preauth_cmd->add_option("--amount", amount, "amount in major units, e.g. 300.00")->required();
  preauth_cmd->add_option("--currency", currency, "ISO 4217 alpha code")->required();
  auto* completion_cmd = app.add_subcommand("completion", "charge a pre-authorisation's final amount");
  auto* incremental_cmd = app.add_subcommand("incremental", "raise a pre-authorisation");
  for (auto* cmd : {completion_cmd, incremental_cmd}) {
    cmd->add_option("--order", order, "POS order number of this request")->required();
    cmd->add_option("--preauth", preauth_order, "order number of the pre-authorisation")->required();
    cmd->add_option("--amount", amount, "amount in major units")->required();
    cmd->add_option("--currency", currency, "ISO 4217 alpha code")->required();
  }

  auto* cancel_cmd = app.add_subcommand("cancel", "cancel (reverse) a completed order");
  cancel_cmd->add_option("--order", order, "POS order number")->required();
  cancel_cmd->add_option("--date", date, "business date YYYY-MM-DD (default: current)");

  auto* balance_cmd = app.add_subcommand("balance", "balance inquiry");
  balance_cmd->add_option("--order", order, "POS order number of the inquiry")->required();

  auto* status_cmd = app.add_subcommand("status", "ask for the state of an order");
  status_cmd->add_option("--order", order, "POS order number")->required();
  status_cmd->add_option("--date", date, "business date YYYY-MM-DD (default: current)");

  auto* totals_cmd = app.add_subcommand("totals", "the till's totals for a business date");
  totals_cmd->add_option("--date", date, "business date YYYY-MM-DD (default: current)");

  auto* script_cmd = app.add_subcommand(
      "script",
      "run commands from FILE, one per line: 'sale ORDER AMOUNT CCY [CASHBACK [TIP]]', "
      "'refund ORDER AMOUNT CCY [ORIGINAL_ORDER]', 'cancel ORDER [DATE]', 'balance ORDER', "
      "'status ORDER [DATE]', 'totals [DATE]', 'ping', 'reconnect', 'logout'; '#' starts a comment");
  script_cmd->add_option("file", script, "script file")->required();

  std::string default_currency = "PLN";
  auto* interactive_cmd = app.add_subcommand(
      "interactive", "read commands from stdin (type 'help'); prompts are asked and answered on stdin");
  interactive_cmd->add_option("--currency", default_currency, "currency when a command names none")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (interactive_cmd->parsed()) {
    eft_pos_sim::interactive_session session(s, default_currency);
    return session.run();
  }

  sim session(s);
  if (!session.open()) return exit_error;
  bool ok = false;
  if (sale_cmd->parsed())
    ok = session.sale(order, amount, currency, cashback, tip);
  else if (refund_cmd->parsed())
    ok = session.refund(order, amount, currency, original, original_date);
  else if (preauth_cmd->parsed())
    ok = session.preauth(order, amount, currency);
  else if (completion_cmd->parsed())
    ok = session.follow_up<pos::completion>("completion", order, preauth_order, amount, currency);
  else if (incremental_cmd->parsed())
    ok = session.follow_up<pos::incremental>("incremental", order, preauth_order, amount, currency);
  else if (cancel_cmd->parsed())
    ok = session.cancel(order, date);
  else if (balance_cmd->parsed())
    ok = session.balance(order);
  else if (status_cmd->parsed())
    ok = session.status(order, date);
  else if (totals_cmd->parsed())
    ok = session.totals(date);
  else if (script_cmd->parsed())
    ok = session.run_script(script);
  session.close();
  return ok ? exit_ok : exit_error;
}
