// eft-pos-sim: a cash register on the command line, over the eftd POS client library.
//
//   eft-pos-sim --host H --port N --till T01 [--operator 42] [TLS options] COMMAND
//   eft-pos-sim --server A:N --server B:N --till T01 ... COMMAND   (active/standby pair)
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
//
// Several servers (issue 8): the first that accepts the login is used; a connection failure or
// error not_active moves on (failover.hpp), and stderr names the server in use. When a
// transaction's connection is lost (or its server turns standby), the simulator reconnects and
// asks status_query for the order until it is final (PROTOCOL.md section 8), then prints the
// order_status (JSON line with --json): exit 0 for a final state, 2 for `unknown` (the request
// never arrived: send it again with the same order number) or when recovery gives up.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
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
  explicit sim(settings s)
      : s_(std::move(s)), servers_(s_.server_list()), answers_(s_.answers.begin(), s_.answers.end()) {}

  // Connects and logs in to the first configured server that accepts; false (message printed)
  // when none does.
  bool open() {
    std::string stage;
    if (auto st = connect_any(0, stage); !st) return fail(st.err(), stage.c_str());
    return true;
  }

  void close() {
    if (client_ && client_->connected()) (void)client_->logout();
    drop_client();
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
    return finish(client_->sale(req, cbs()), "sale", order);
  }

  bool refund(const std::string& order, const std::string& amount, const std::string& currency,
              const std::string& original, const std::string& original_date = {}) {
    pos::refund req;
    req.order_no = order;
    req.currency = currency;
    req.original_order_no = original;
    req.original_business_date = original_date;
    if (!eft_pos_sim::minor_units(amount, currency, "amount", req.amount)) return false;
    return finish(client_->refund(req, cbs()), "refund", order);
  }

  bool preauth(const std::string& order, const std::string& amount, const std::string& currency) {
    pos::preauth req;
    req.order_no = order;
    req.currency = currency;
    if (!eft_pos_sim::minor_units(amount, currency, "amount", req.amount)) return false;
    return finish(client_->transaction(pos::message{req}, cbs()), "preauth", order);
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
    return finish(client_->transaction(pos::message{req}, cbs()), what.c_str(), order);
  }

  bool cancel(const std::string& order, const std::string& date) {
    pos::cancel req;
    req.order_no = order;
    req.business_date = date;
    return finish(client_->cancel(req, cbs()), "cancel", order);
  }

  bool balance(const std::string& order) {
    pos::balance_inquiry req;
    req.order_no = order;
    return finish(client_->balance_inquiry(req, cbs()), "balance", order);
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
        drop_client();
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

  // The final answer of transaction `order`; a lost connection, a silent server or a switch to
  // the other server (not_active) starts the recovery procedure for the order.
  bool finish(const eftd::result<pos::result>& r, const char* what, const std::string& order) {
    if (!r) {
      const auto& code = r.err().code;
      if (eft_pos_sim::other_server_may_answer(code)) return recover(order, r.err(), what);
      return fail(r.err(), what);
    }
    if (s_.json) {
      emit_json(*r);
    } else {
      eft_pos_sim::print_result(stdout, *r);
      std::fflush(stdout);
    }
    return true;
  }

  // One attempt over the configured servers (failover.hpp), starting with servers_[first]:
  // connect and log in; on success client_ is the new session and current_ its server. An
  // error that no other server would answer differently (unknown_till, till_in_use...) ends
  // the attempt at once. `stage` says what failed ("connect" or "login").
  eftd::status connect_any(std::size_t first, std::string& stage) {
    drop_client();
    eft_pos_sim::server_round round(servers_.size(), first);
    for (;;) {
      const auto& server = servers_[round.current()];
      auto options = s_.client_options();
      options.min_epoch = epoch_;
      auto c = pos::client::connect(server.host, server.port, std::chrono::milliseconds(s_.connect_timeout_ms),
                                    std::move(options));
      eftd::error e;
      if (c) {
        // A POS that can answer prompts says so; without --answer the server takes the defaults.
        auto ok = (*c)->login(s_.login_request(s_.answers.empty() ? std::vector<std::string>{}
                                                                  : std::vector<std::string>{"prompt"}));
        if (ok) {
          client_ = std::move(*c);
          current_ = round.current();
          std::fprintf(stderr, "eft-pos-sim: server %s\n", server.text().c_str());
          if (!s_.json) {
            std::printf("[login] server %s, business date %s, protocol v%d%s\n", ok->server.c_str(),
                        ok->business_date.c_str(), ok->version, s_.use_tls() ? ", TLS" : "");
            std::fflush(stdout);
          }
          return {};
        }
        e = ok.err();
        stage = "login";
      } else {
        e = c.err();
        stage = "connect";
      }
      const bool try_another = eft_pos_sim::other_server_may_answer(e.code);
      if (!try_another) return e;
      const auto active = e.code == pos::codes::not_active
                              ? eft_pos_sim::configured_in_text(servers_, e.message)
                              : std::optional<std::size_t>{};
      const auto next = round.next(active);
      std::fprintf(stderr, "eft-pos-sim: server %s: %s: %s%s\n", server.text().c_str(), e.code.c_str(),
                   e.message.c_str(), next ? ("; trying " + servers_[*next].text()).c_str() : "");
      if (!next) return e;
    }
  }

  static void pause_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

  // PROTOCOL.md section 8: the outcome of `order` is unknown (connection lost, no message within
  // the inactivity timeout, or the server turned standby). Reconnect — the other server first,
  // as the one that failed is the least likely to answer — log in, and ask for the order until
  // its state is final. Never re-sends the transaction.
  bool recover(const std::string& order, const eftd::error& lost, const char* what) {
    std::fprintf(stderr, "eft-pos-sim: %s of order %s: %s: %s; outcome unknown, asking the server\n", what,
                 order.c_str(), lost.code.c_str(), lost.message.c_str());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(s_.recover_ms);
    const auto expired = [&] { return std::chrono::steady_clock::now() >= deadline; };
    const auto give_up = [&](const eftd::error& e, const char* stage) {
      fail(e, stage);
      std::fprintf(
          stderr,
          "eft-pos-sim: the outcome of order %s is still unknown; ask later with 'status --order %s'\n",
          order.c_str(), order.c_str());
      return false;
    };
    std::size_t first = (current_ + 1) % servers_.size();
    if (lost.code == pos::codes::not_active) {
      if (auto named = eft_pos_sim::configured_in_text(servers_, lost.message)) first = *named;
    }
    drop_client();
    eftd::error last = lost;
    for (;;) {
      if (!client_) {
        std::string stage;
        if (auto st = connect_any(first, stage); !st) {
          last = st.err();
          // till_in_use: the old connection still runs the transaction on the server; it is
          // taken over once that ends. Anything else: the next round starts where this one did.
          if (expired() || (last.code != pos::codes::till_in_use && !eft_pos_sim::other_server_may_answer(last.code)))
            return give_up(last, stage.c_str());
          pause_ms(s_.status_retry_ms);
          continue;
        }
      }
      pos::status_query q;
      q.order_no = order;
      auto r = client_->query(q);
      if (!r) {
        last = r.err();
        if (!eft_pos_sim::other_server_may_answer(last.code)) return give_up(last, "status");
        first = (current_ + 1) % servers_.size();
        drop_client();
        if (expired()) return give_up(last, "status");
        continue;
      }
      if (eft_pos_sim::final_state(r->state) || r->state == "unknown") {
        std::fprintf(stderr, "eft-pos-sim: recovered order %s on %s: %s\n", order.c_str(),
                     servers_[current_].text().c_str(), r->state.c_str());
        if (s_.json) {
          emit_json(*r);
        } else {
          eft_pos_sim::print_order_status(stdout, *r);
          std::fflush(stdout);
        }
        if (r->state == "unknown") {
          // The request never reached the server: nothing happened, and the same order number
          // may be sent again (never a new one).
          std::fprintf(stderr,
                       "eft-pos-sim: order %s never reached the server; send it again with the same "
                       "order number\n",
                       order.c_str());
          return false;
        }
        return true;
      }
      if (expired()) {
        return give_up({std::string(pos::codes::timeout), "order " + order + " still " + r->state}, "status");
      }
      pause_ms(s_.status_retry_ms);
    }
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
  std::vector<eft_pos_sim::endpoint> servers_;
  std::size_t current_ = 0;  // index in servers_ of the session's server
  std::deque<std::string> answers_;
  std::unique_ptr<pos::client> client_;
  // The highest fencing epoch any server has answered with (hot standby): a connection to a
  // node with a lower one is refused as pos.stale_epoch.
  std::uint64_t epoch_ = 0;

  void drop_client() {
    if (client_) epoch_ = std::max(epoch_, client_->epoch());
    client_.reset();
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eft-pos-sim: a POS (cash register) simulator for eftd"};
  app.require_subcommand(1);
  settings s;
  app.add_option("--host", s.host, "eftd POS listener host")->capture_default_str();
  app.add_option("--port", s.port, "eftd POS listener port (with --host: the first server)");
  std::vector<std::string> server_texts;
  app.add_option("--server", server_texts,
                 "host:port of an eftd POS listener; repeat for the active/standby pair (tried in order, "
                 "after --host/--port)")
      ->allow_extra_args(false);
  app.add_option("--status-retry-ms", s.status_retry_ms,
                 "recovery: ask again after this long while the order is in progress")
      ->capture_default_str();
  app.add_option("--recover-ms", s.recover_ms, "recovery: give up after this long")->capture_default_str();
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
  for (const auto& text : server_texts) {
    auto e = eft_pos_sim::parse_endpoint(text);
    if (!e) {
      std::fprintf(stderr, "eft-pos-sim: --server '%s' is not host:port\n", text.c_str());
      return exit_error;
    }
    s.servers.push_back(std::move(*e));
  }
  if (s.server_list().empty()) {
    std::fprintf(stderr, "eft-pos-sim: give --port (with --host) or --server host:port\n");
    return exit_error;
  }
  if (s.status_retry_ms < 1) s.status_retry_ms = 1;

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
