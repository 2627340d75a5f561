// RELIABILITY.md R12: PIN pads and tills die mid-day, and the settlement is identical to the
// day without failures.
//
// The same scripted day runs twice against fresh installations, two tills (T01 with pad P01,
// T02 with pad P02): approved sales, declined ones (the simulator declines amounts ending in
// 51), a cancel. In the second run the pads are killed with SIGKILL between transactions, a
// till's POS connection is cut, and one sale is cut in the middle: its pad and its POS
// connection die while eftd waits for the card. That sale must end in a definite journaled
// state that never reached the acquirer; the till asks status(order) after reconnecting, gets
// exactly that state, and rings the sale again under a new order number. Then both days are
// closed (admin settle) and compared: per terminal counts and amounts of debits, credits and
// reversals, and the simulator's ledger.
//
// The kill point is at the card read on purpose: nothing was sent to the acquirer, so the
// outcome is deterministic. No sleeps: every wait is for an event (a READY line, a journal
// write seen through inotify, a reply) with a deadline.
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "e2e_util.hpp"

using namespace eftd::test;
using nlohmann::json;

namespace {

const std::set<std::string> final_states{"approved", "declined", "cancelled", "failed", "reversed"};

std::unique_ptr<process> start_pad2(installation& inst, const std::string& log) {
  std::vector<std::string> args{
      "virtual",  "--server", "127.0.0.1:" + std::to_string(inst.pad_port),
      "--pad-id", "P02",      "--serial",
      "VP-0002",  "--card",   source_path("pinpad-firmware-shim/cards/visa-approve.toml")};
  for (auto& a : inst.pad_key_args("P02")) args.push_back(a);
  auto p = std::make_unique<process>(bin_path("eftpad"), args, inst.dir + "/" + log);
  REQUIRE(p->wait_ready());
  return p;
}

// kill -9 of a pad process: no goodbye on its connection.
void kill9(std::unique_ptr<process>& p) {
  REQUIRE(p);
  p->signal(SIGKILL);
  CHECK(p->wait_exit(10s).has_value());
  p.reset();
}

// The order's journaled state (till, order number), or "" when there is no such order.
std::string journal_state(const installation& inst, const std::string& till, const std::string& order) {
  auto rd = eftd::journal::reader::open(inst.db());
  if (!rd) return {};
  auto rows = rd->find_orders_recent(till, order, 0);
  if (!rows || rows->size() != 1) return {};
  return rows->front().state;
}

// Waits (journal writes seen through inotify, a deadline) until the order is in a final state.
std::string wait_final(const installation& inst, const std::string& till, const std::string& order,
                       std::chrono::seconds limit = 30s) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::inotify_add_watch(fd, inst.dir.c_str(), IN_MODIFY | IN_CREATE) >= 0);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string state;
  while (std::chrono::steady_clock::now() < deadline) {
    state = journal_state(inst, till, order);
    if (final_states.count(state)) break;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char drain[4096];
      while (::read(fd, drain, sizeof drain) > 0) {
      }
    }
  }
  ::close(fd);
  return state;
}

struct step {
  std::string till;
  std::string kind;  // sale | cancel
  std::string key;   // the order's name in the script (order numbers differ per run)
  std::string amount;
  std::string outcome;  // expected (a cancel that went through: "approved")
};

// The scripted day: both tills, approvals, declines (amounts ending in 51), a cancel.
const std::vector<step> day{
    {"T01", "sale", "a1", "12.00", "approved"}, {"T02", "sale", "b1", "8.00", "approved"},
    {"T01", "sale", "a2", "10.51", "declined"}, {"T02", "sale", "b2", "3.51", "declined"},
    {"T01", "sale", "a3", "20.00", "approved"}, {"T01", "cancel", "a3", "", "approved"},
    {"T02", "sale", "b3", "15.00", "approved"}, {"T01", "sale", "a4", "5.00", "approved"},
    {"T02", "sale", "b4", "6.00", "approved"},  {"T02", "sale", "b5", "42.51", "declined"},
    {"T01", "sale", "a5", "9.99", "approved"},
};

// Logs `pos` in as `till` and starts a sale; returns once eftd asked `pad` for the card.
void sale_held_at_card(raw_client& pos, scripted_pad& pad, const std::string& till, const std::string& order,
                       int amount) {
  pos.send(R"({"type":"login","v":1,"id":"l1","till_id":")" + till + R"(","version":1})" + "\n");
  REQUIRE(pos.next().has_value());
  pos.send(R"({"type":"sale","v":1,"id":"s1","order_no":")" + order + R"(","amount":)" +
           std::to_string(amount) + R"(,"currency":"PLN"})" + "\n");
  std::optional<eftd::pad::envelope> cmd;
  while ((cmd = pad.next()) && !std::holds_alternative<eftd::pad::read_card>(cmd->body)) {
  }
  REQUIRE(cmd.has_value());
}

struct day_result {
  std::map<std::string, json> batches;  // terminal id -> the settle reply's totals
  json ledger;                          // the simulator's, counts and amounts only
};

// Only the counts and amounts: ids, times and STANs differ between runs by design.
json figures(const json& j) {
  static const std::set<std::string> keep{
      "debits",     "debit_amount",  "debit_reversals",  "debit_reversal_amount",
      "credits",    "credit_amount", "credit_reversals", "credit_reversal_amount",
      "net_amount", "in_doubt"};
  if (j.is_object()) {
    json out = json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (keep.count(it.key()) && it->is_number())
        out[it.key()] = *it;
      else if (it->is_object() || it->is_array()) {
        auto sub = figures(*it);
        if (!sub.empty()) out[it.key()] = sub;
      }
    }
    return out;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& x : j) out.push_back(figures(x));
    return out;
  }
  return json();
}

day_result run_day(const std::string& tag, bool with_failures) {
  installation inst(tag);
  // The same configuration in both runs. A short card wait: a pad that died during the card read
  // is not noticed before it, and the interrupted sale must end (the virtual pads present their
  // card at once, so the clean run never waits).
  inst.extra_config = "\n[timeouts]\ncard_read_ms = 3000\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto pad2 = start_pad2(inst, "pad2.log");
  std::map<std::string, std::string> orders;  // script key -> order number of this run

  auto run_step = [&](const step& s) {
    INFO(tag << " " << s.till << " " << s.kind << " " << s.key);
    if (s.kind == "sale") {
      orders[s.key] = order_no(s.key);
      auto r =
          inst.pos(s.till, {"sale", "--order", orders[s.key], "--amount", s.amount, "--currency", "PLN"});
      REQUIRE(r.exit_code != -1);
      CHECK(r.result.value("outcome", "") == s.outcome);
    } else {
      auto r = inst.pos(s.till, {"cancel", "--order", orders[s.key]});
      CHECK(r.result.value("outcome", "") == s.outcome);
    }
  };

  for (std::size_t i = 0; i < day.size(); ++i) {
    const auto& s = day[i];
    if (with_failures && i == 2) {
      // Between transactions: both pads die and come back; T01's POS connection is cut.
      kill9(inst.pad);
      kill9(pad2);
      {
        raw_client till(inst.pos_port);
        till.send(R"({"type":"login","v":1,"id":"l1","till_id":"T01","version":1})"
                  "\n");
        REQUIRE(till.next().has_value());
      }  // closed without a goodbye
      inst.start_pad("P01", "VP-0001", "visa-approve.toml");
      pad2 = start_pad2(inst, "pad2-b.log");
    }
    if (with_failures && s.key == "b3") {
      // In the middle of a transaction: P02 dies between transactions, a stand-in pad takes
      // the sale to the card read, then the pad and the till's connection die together.
      kill9(pad2);
      const auto cut = order_no("b3cut");
      {
        scripted_pad pad(inst.pad_port, "P02", "VP-0002");
        raw_client till(inst.pos_port);
        sale_held_at_card(till, pad, "T02", cut, 1500);
      }  // both connections gone while eftd waits for the card
      // The pad comes back (a restarted pad) while the interrupted sale runs on.
      pad2 = start_pad2(inst, "pad2-c.log");
      const auto state = wait_final(inst, "T02", cut, 60s);
      INFO("the interrupted sale ended " << state);
      const auto log = slurp(inst.dir + "/eftd.log");
      INFO("eftd.log tail: " << log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
      REQUIRE(final_states.count(state) == 1);
      CHECK(state != "approved");
      // Nothing of it reached the acquirer.
      {
        auto rd = eftd::journal::reader::open(inst.db());
        REQUIRE(rd);
        auto rows = rd->find_orders_recent("T02", cut, 0);
        REQUIRE(rows);
        REQUIRE(rows->size() == 1);
        auto v = rd->order_detail(rows->front().order_id);
        REQUIRE(v);
        REQUIRE(v->has_value());
        CHECK((**v).messages.empty());
      }
      // The till comes back, asks for the truth, and rings the sale again.
      auto st = inst.pos("T02", {"status", "--order", cut});
      CHECK(st.result.value("state", "") == state);
    }
    run_step(s);
    if (with_failures && i == 7) {
      kill9(inst.pad);
      inst.start_pad("P01", "VP-0001", "visa-approve.toml");
    }
  }

  // End of day: every batch closed, then the simulator's ledger.
  auto reply = admin_request(inst.dir + "/admin.sock", {{"cmd", "settle"}}, 60s);
  REQUIRE(reply.value("ok", false));
  day_result out;
  for (const auto& b : reply["batches"]) {
    CHECK(b.value("state", "") == "closed");
    out.batches[b.value("terminal_id", "")] = figures(b);
  }
  inst.eftd->stop();
  const auto summary = json::parse(stop_and_summary(*inst.acquirer), nullptr, false);
  REQUIRE_FALSE(summary.is_discarded());
  out.ledger = figures(summary["ledger"]);
  return out;
}

}  // namespace

TEST_CASE("R12: pads and tills killed mid-day, settlement identical to the day without failures",
          "[e2e][chaos][settlement]") {
  const auto clean = run_day("e2e-r12-clean", false);
  const auto failed = run_day("e2e-r12-fail", true);
  REQUIRE(clean.batches.size() == 2);  // TERM0001 and TERM0002
  for (const auto& [terminal, totals] : clean.batches) {
    INFO(terminal);
    REQUIRE(failed.batches.count(terminal) == 1);
    CHECK(failed.batches.at(terminal).dump() == totals.dump());
    CHECK(totals.value("debits", 0) > 0);
    CHECK(totals.value("debit_reversals", 0) + totals.value("credit_reversals", 0) >= 0);
  }
  CHECK_FALSE(clean.ledger.empty());
  CHECK(failed.ledger.dump() == clean.ledger.dump());
}
