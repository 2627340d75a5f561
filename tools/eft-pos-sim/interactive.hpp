// eft-pos-sim interactive: a cash register for a person at a terminal (or a test at a pipe),
// on the async client. Included by main.cpp only.
//
// Input is sequential, as in a script: a line is run once the previous request has its answer;
// lines typed meanwhile wait (held_), and the first of them answers a prompt that opens. Only
// `abort` and `help` act at once. So piped input behaves the same however fast it arrives.
//
// The main thread polls stdin and a self-pipe; the client's I/O thread prints status lines,
// prompts and results as they arrive. Stdin is read with read(2), not iostreams, so the main
// thread can also wake up when a transaction ends (quit waits for it) and never blocks in a
// library buffer. One mutex (mu_) guards the session state and serialises all output; the
// client's methods never wait for its I/O thread, so calling them under mu_ cannot deadlock.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "eftd/pos/async_client.hpp"
#include "eftd/pos/codec.hpp"
#include "print.hpp"
#include "settings.hpp"

namespace eft_pos_sim {

inline constexpr const char* interactive_help =
    "commands:\n"
    "  sale <order> <amount> [currency]            e.g. sale 4711 125.00 PLN\n"
    "  refund <order> <amount> [currency] [original_order]\n"
    "  cancel <order> [business_date]              reverse an approved order\n"
    "  balance <order>                             balance inquiry\n"
    "  status <order> [business_date]              what happened to an order\n"
    "  totals [business_date]                      the till's totals\n"
    "  abort                                       abort the running transaction\n"
    "  ping, help, quit\n"
    "a command runs when the previous one has its answer; lines typed meanwhile wait.\n"
    "while a question is shown, the next line is its answer (empty line = the default;\n"
    "a menu also takes the option's number; 'abort' aborts unless it is a valid answer).\n";

class interactive_session {
 public:
  interactive_session(settings s, std::string currency) : s_(std::move(s)), currency_(std::move(currency)) {}

  ~interactive_session() {
    client_.reset();  // joins the I/O thread before the pipe it writes to goes away
    if (wake_r_ >= 0) ::close(wake_r_);
    if (wake_w_ >= 0) ::close(wake_w_);
  }

  // Runs until quit or end of input (after the running transaction has ended); the exit code.
  int run() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return 2;
    wake_r_ = fds[0];
    wake_w_ = fds[1];
    tty_ = ::isatty(0) == 1;
    if (!open()) return 2;

    std::string pending_input;
    bool stdin_open = true;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        drain_held();
        if (broken_) break;
        if (quitting_ && outstanding_ == 0) break;
        if (!stdin_open && outstanding_ == 0 && held_.empty()) break;
      }
      pollfd p[2] = {{stdin_open ? 0 : -1, POLLIN, 0}, {wake_r_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if ((p[1].revents & POLLIN) != 0) {
        char drain[64];
        while (::read(wake_r_, drain, sizeof drain) > 0) {
        }
      }
      if (stdin_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[4096];
        const ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          stdin_open = false;
          if (!pending_input.empty()) handle_line(pending_input);
          pending_input.clear();
          end_of_input();
          continue;
        }
        pending_input.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending_input.find('\n')) != std::string::npos;) {
          std::string line = pending_input.substr(0, nl);
          pending_input.erase(0, nl + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          handle_line(line);
        }
      }
    }
    close();
    std::lock_guard lock(mu_);
    return exit_code_;
  }

 private:
  // ------------------------------------------------------------------ output (mu_ held)

  // Human text: stdout, or stderr when stdout carries JSON lines.
  FILE* human() const { return s_.json ? stderr : stdout; }

  void say(const std::string& line) {
    std::fprintf(human(), "%s\n", line.c_str());
    std::fflush(human());
  }

  void emit(const pos::message& m) {
    std::fputs(pos::encode(m).c_str(), stdout);
    std::fflush(stdout);
  }

  void report_error(const eftd::error& e, const std::string& what, bool transaction) {
    if (s_.json) emit(pos::error{"", e.code, e.message});
    std::fprintf(stderr, "eft-pos-sim: %s failed: %s: %s\n", what.c_str(), e.code.c_str(), e.message.c_str());
    if (!s_.json) say("[error] " + what + ": " + e.code + ": " + e.message);
    exit_code_ = 2;
    if (e.code == pos::codes::disconnected || e.code == pos::codes::timeout || e.code == pos::codes::stale_epoch) {
      broken_ = true;
      if (transaction) {
        std::fprintf(stderr,
                     "eft-pos-sim: the outcome of the running transaction is unknown; reconnect and ask with "
                     "'status <order>'\n");
      }
    }
  }

  void wake() {
    const char b = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_w_, &b, 1);
  }

  // ------------------------------------------------------------------ session

  // The first configured server that accepts the login (failover.hpp; a connection failure or
  // not_active moves on). A transaction lost later is not recovered here: the session ends
  // (broken_) and says how to ask for the order.
  bool open() {
    const auto servers = s_.server_list();
    server_round round(servers.size(), 0);
    for (;;) {
      const auto& server = servers[round.current()];
      auto c = pos::async_client::connect(
          server.host, server.port, std::chrono::milliseconds(s_.connect_timeout_ms), s_.client_options());
      eftd::error e;
      std::string stage = "connect";
      if (c) {
        auto ok = login(**c);
        if (ok) {
          std::lock_guard lock(mu_);
          client_ = std::move(*c);
          std::fprintf(stderr, "eft-pos-sim: server %s\n", server.text().c_str());
          if (s_.json) emit(*ok);
          say("[login] server " + ok->server + ", business date " + ok->business_date + ", protocol v" +
              std::to_string(ok->version) + (s_.use_tls() ? ", TLS" : ""));
          say("type 'help' for commands");
          return true;
        }
        e = ok.err();
        stage = "login";
      } else {
        e = c.err();
      }
      const bool try_another = other_server_may_answer(e.code);
      const auto next =
          try_another ? round.next(e.code == pos::codes::not_active ? configured_in_text(servers, e.message)
                                                                    : std::optional<std::size_t>{})
                      : std::optional<std::size_t>{};
      if (!next) {
        std::lock_guard lock(mu_);
        report_error(e, stage, false);
        return false;
      }
      std::fprintf(stderr, "eft-pos-sim: server %s: %s: %s; trying %s\n", server.text().c_str(),
                   e.code.c_str(), e.message.c_str(), servers[*next].text().c_str());
    }
  }

  static eftd::result<pos::login_ok> login(pos::async_client& client, const settings& s) {
    std::promise<eftd::result<pos::login_ok>> p;
    auto f = p.get_future();
    client.login(s.login_request({"prompt"}),
                 [&p](eftd::result<pos::login_ok> r) { p.set_value(std::move(r)); });
    // The client completes every request within its reply timeout; the margin is for scheduling.
    if (f.wait_for(s.client_options().reply_timeout + std::chrono::seconds(5)) != std::future_status::ready) {
      return eftd::error{std::string(pos::codes::timeout), "no reply to login"};
    }
    return f.get();
  }
  eftd::result<pos::login_ok> login(pos::async_client& client) const { return login(client, s_); }

  void close() {
    {
      std::lock_guard lock(mu_);
      if (broken_ || !client_) return;
    }
    std::promise<eftd::status> p;
    auto f = p.get_future();
    client_->logout([&p](eftd::status s) { p.set_value(std::move(s)); });
    (void)f.wait_for(s_.client_options().reply_timeout + std::chrono::seconds(5));
    std::lock_guard lock(mu_);
    say("[logout]");
  }

  void end_of_input() {
    std::lock_guard lock(mu_);
    stdin_eof_ = true;
  }

  // Runs held lines while nothing is outstanding; an open question takes the first held line.
  // Caller holds mu_.
  void drain_held() {
    while (!broken_ && !quitting_) {
      if (open_prompt_ && !held_.empty()) {
        const std::string line = held_.front();
        held_.pop_front();
        answer_open_prompt(line);
        continue;
      }
      if (held_.empty() || outstanding_ > 0 || open_prompt_) break;
      const std::string line = held_.front();
      held_.pop_front();
      execute(line);
    }
    if (open_prompt_ && held_.empty() && stdin_eof_) {
      // Nobody is left to answer: the open question takes its default now, later ones too.
      const pos::prompt p = *open_prompt_;
      open_prompt_.reset();
      send_answer(p, p.default_value);
    }
  }

  void answer_open_prompt(const std::string& line) {
    const pos::prompt p = *open_prompt_;
    const bool abort_is_answer =
        p.kind == "text" || std::find(p.options.begin(), p.options.end(), "abort") != p.options.end();
    if (trim(line) == "abort" && !abort_is_answer) {
      abort_running();
      return;
    }
    open_prompt_.reset();
    send_answer(p, answer_value(p, line));
  }

  void send_answer(const pos::prompt& p, const std::string& value) {
    last_answered_ = p;
    if (auto st = client_->answer(p.prompt_id, value); !st) {
      report_error(st.err(), "answer", true);
      return;
    }
    say("[answer] " + (value.empty() ? std::string("(empty)") : value));
  }

  pos::async_callbacks transaction_callbacks() {
    pos::async_callbacks cb;
    cb.on_status = [this](const pos::status& st) {
      std::lock_guard lock(mu_);
      if (s_.json) emit(st);
      say("[status] " + st.text);
    };
    cb.on_prompt = [this](const pos::prompt& p) {
      std::lock_guard lock(mu_);
      if (s_.json) emit(p);
      say("[prompt] " + render_prompt(p));
      open_prompt_ = p;
      wake();  // a held line may be its answer; at end of input the default is
    };
    cb.on_answer_rejected = [this](const pos::error& e) {
      std::lock_guard lock(mu_);
      if (s_.json) emit(e);
      if (e.code == pos::codes::unknown_prompt) {
        say("[answer] too late: " + e.message);
        return;
      }
      say("[answer] refused: " + e.message + "; answer again");
      if (last_answered_ && running_) {
        if (stdin_eof_ && held_.empty()) {
          // Do not loop on a refused default: the server takes it when the prompt times out.
          return;
        }
        open_prompt_ = last_answered_;
        say("[prompt] " + render_prompt(*open_prompt_));
        wake();
      }
    };
    return cb;
  }

  void start(const pos::message& request, const std::string& what) {
    if (running_) {
      say("[busy] order " + running_order_ + " is still running ('abort' aborts it)");
      return;
    }
    running_ = true;
    running_order_ = std::visit(
        [](const auto& r) -> std::string {
          if constexpr (requires { r.order_no; })
            return r.order_no;
          else
            return {};
        },
        request);
    ++outstanding_;
    client_->start_transaction(request, transaction_callbacks(), [this, what](eftd::result<pos::result> r) {
      std::lock_guard lock(mu_);
      running_ = false;
      running_order_.clear();
      open_prompt_.reset();
      last_answered_.reset();
      --outstanding_;
      if (!r) {
        report_error(r.err(), what, true);
      } else if (s_.json) {
        emit(*r);
      } else {
        print_result(stdout, *r);
        std::fflush(stdout);
      }
      wake();
    });
  }

  template <class Reply>
  std::function<void(eftd::result<Reply>)> reply_handler(std::string what,
                                                         void (*print)(FILE*, const Reply&)) {
    ++outstanding_;
    return [this, what = std::move(what), print](eftd::result<Reply> r) {
      std::lock_guard lock(mu_);
      --outstanding_;
      if (!r) {
        report_error(r.err(), what, false);
      } else if (s_.json) {
        emit(*r);
      } else {
        print(stdout, *r);
        std::fflush(stdout);
      }
      wake();
    };
  }

  static void print_ack(FILE* out, const pos::heartbeat_ack&) { std::fprintf(out, "[ping] ok\n"); }

  // ------------------------------------------------------------------ commands

  void handle_line(const std::string& line) {
    std::lock_guard lock(mu_);
    if (broken_ || quitting_) return;
    if (open_prompt_ && held_.empty()) {
      answer_open_prompt(line);
      return;
    }
    const std::string t = trim(line);
    if (t == "abort" || t == "help") {
      execute(t);
      return;
    }
    if (t.empty() && !open_prompt_ && held_.empty()) return;
    if (tty_ && outstanding_ > 0 && !t.empty()) say("[wait] runs when the running request has its answer");
    held_.push_back(line);
    drain_held();
  }

  void execute(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string x; in >> x;) w.push_back(x);
    if (w.empty() || w[0][0] == '#') return;
    if (!tty_ && !s_.json) say("> " + line);  // a transcript of piped input reads like a session
    const auto arg = [&](std::size_t i) { return i < w.size() ? w[i] : std::string(); };
    const auto need = [&](std::size_t min, std::size_t max) {
      if (w.size() >= min && w.size() <= max) return true;
      say("[usage] wrong number of arguments for '" + w[0] + "' (type 'help')");
      return false;
    };
    const std::string& cmd = w[0];
    if (cmd == "help") {
      std::fputs(interactive_help, human());
      std::fflush(human());
    } else if (cmd == "quit" || cmd == "exit") {
      quitting_ = true;
    } else if (cmd == "sale") {
      if (!need(3, 4)) return;
      pos::sale req;
      req.order_no = arg(1);
      req.currency = w.size() > 3 ? arg(3) : currency_;
      if (!minor_units(arg(2), req.currency, "amount", req.amount)) return;
      start(req, "sale");
    } else if (cmd == "refund") {
      if (!need(3, 5)) return;
      pos::refund req;
      req.order_no = arg(1);
      req.currency = w.size() > 3 ? arg(3) : currency_;
      req.original_order_no = arg(4);
      if (!minor_units(arg(2), req.currency, "amount", req.amount)) return;
      start(req, "refund");
    } else if (cmd == "cancel") {
      if (!need(2, 3)) return;
      start(pos::cancel{"", arg(1), arg(2)}, "cancel");
    } else if (cmd == "balance") {
      if (!need(2, 2)) return;
      start(pos::balance_inquiry{"", arg(1)}, "balance");
    } else if (cmd == "status") {
      if (!need(2, 3)) return;
      client_->query(pos::status_query{"", arg(1), arg(2)},
                     reply_handler<pos::order_status>("status", print_order_status));
    } else if (cmd == "totals") {
      if (!need(1, 2)) return;
      client_->totals(pos::totals{"", arg(1)}, reply_handler<pos::totals_report>("totals", print_totals));
    } else if (cmd == "ping") {
      if (!need(1, 1)) return;
      client_->ping(reply_handler<pos::heartbeat_ack>("ping", print_ack));
    } else if (cmd == "abort") {
      if (!need(1, 1)) return;
      abort_running();
    } else {
      say("[usage] unknown command '" + cmd + "' (type 'help')");
    }
  }

  void abort_running() {
    if (!running_) {
      say("[abort] no transaction is running");
      return;
    }
    say("[abort] order " + running_order_);
    client_->abort(running_order_, [this](eftd::status st) {
      if (st) return;
      std::lock_guard lock(mu_);
      if (s_.json) emit(pos::error{"", st.err().code, st.err().message});
      say("[abort] refused: " + st.err().code + ": " + st.err().message);
    });
  }

  settings s_;
  std::string currency_;
  std::unique_ptr<pos::async_client> client_;
  int wake_r_ = -1;
  int wake_w_ = -1;
  bool tty_ = false;

  std::mutex mu_;
  std::optional<pos::prompt> open_prompt_;    // shown, waiting for the next input line
  std::optional<pos::prompt> last_answered_;  // re-opened when the server refuses the answer
  std::deque<std::string> held_;              // input lines waiting for their turn
  bool running_ = false;
  std::string running_order_;
  int outstanding_ = 0;  // requests whose reply has not come yet
  bool stdin_eof_ = false;
  bool quitting_ = false;
  bool broken_ = false;
  int exit_code_ = 0;
};

}  // namespace eft_pos_sim
