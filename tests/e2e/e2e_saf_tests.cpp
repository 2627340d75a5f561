// Store-and-forward reversals end to end (RELIABILITY.md R5): a reversal owed when the acquirer
// does not answer is journaled in the queue before the POS hears anything, repeated as 0401
// with backoff, survives a kill -9 of eftd, and expires into a case for people when the
// acquirer never acknowledges it.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

// The order's POS-visible state, polled (each poll a full status query) until it is `want`
// or the deadline passes.
std::string wait_for_state(installation& inst, const std::string& order, const std::string& want,
                           std::chrono::seconds within) {
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = inst.pos("T01", {"status", "--order", order});
    state = st.result.value("state", "");
    if (state == want) break;
  }
  return state;
}

std::vector<eftd::journal::acquirer_message_row> reversals(const installation& inst,
                                                           const std::string& order) {
  auto v = journal_view(inst, order);
  std::vector<eftd::journal::acquirer_message_row> out;
  for (const auto& m : v.messages)
    if (m.mti == "0400") out.push_back(m);
  return out;
}

}  // namespace

TEST_CASE("a queued reversal survives kill -9 of eftd and is sent after the restart", "[acquirer][chaos]") {
  // The simulator holds its answer to amounts ending in 77 for 3 s, longer than eftd waits:
  // the sale is in doubt, and the reversal cannot get through before eftd is killed.
  installation inst("e2e-saf-restart", true, {"--delay-amount-suffix", "77=3000"});
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=500"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("SR");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "10.77", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result["reason"].value("code", "") == "acquirer.timeout");
  inst.crash_eftd();
  {
    // The journal holds the owed reversal, pending, written before the POS heard "failed".
    auto revs = reversals(inst, order);
    REQUIRE(revs.size() == 1);
    CHECK(revs.front().state == "pending");
  }
  inst.stop_pad();
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=5000"});
  CHECK(wait_for_state(inst, order, "reversed", 30s) == "reversed");
  inst.eftd->stop();
  auto revs = reversals(inst, order);
  REQUIRE(revs.size() == 1);  // one reversal, repeated if need be, never a second one
  CHECK(revs.front().state == "acknowledged");
  CHECK(revs.front().attempts >= 1);
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto doubt = rd->in_doubt_messages();
  REQUIRE(doubt);
  CHECK(doubt->empty());
}

TEST_CASE("a reversal the acquirer never acknowledges expires into a case, and the queue goes on",
          "[acquirer]") {
  installation inst("e2e-saf-expire", true, {"--delay-amount-suffix", "77=4000"});
  inst.start_eftd(
      {"--set", "acquirers.sim.response_timeout_ms=500", "--set", "acquirers.sim.reversal_expiry_ms=1000"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("SE");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "10.77", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result["reason"].value("code", "") == "acquirer.timeout");
  // The first attempt times out behind the held answer; the repeat comes after the expiry.
  bool expired = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!expired && std::chrono::steady_clock::now() < deadline) {
    auto log = slurp(inst.dir + "/eftd.log");
    expired = contains(log, "needs manual handling");
    if (!expired) inst.pos("T01", {"status", "--order", order});  // a paced wait: one status round trip
  }
  CHECK(expired);
  // The expired reversal does not block the queue, not even after a restart: a cancel's
  // reversal after it gets through (the simulator may still hold its old answer: wait longer).
  inst.eftd->stop();
  inst.stop_pad();
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=8000"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto next = order_no("SE");
  auto r2 = inst.pos("T01", {"sale", "--order", next, "--amount", "12.00", "--currency", "PLN"});
  REQUIRE(r2.result.value("outcome", "") == "approved");
  auto c = inst.pos("T01", {"cancel", "--order", next});
  CHECK(c.result.value("outcome", "") == "approved");
  CHECK(wait_for_state(inst, next, "reversed", 30s) == "reversed");
  inst.eftd->stop();
  auto revs = reversals(inst, order);
  REQUIRE(revs.size() == 1);
  CHECK(revs.front().state == "expired");
  auto v = journal_view(inst, order);
  bool explained = false;
  for (const auto& e : v.events) explained = explained || e.kind == "reversal_expired";
  CHECK(explained);
}

// R5 through eftd: each acquirer fault of the simulator, and what the POS and the acquirer's
// ledger end up with. Amount suffixes pick the fault (see eft-acquirer-sim --help).
TEST_CASE("acquirer faults end to end: the POS result and the acquirer's ledger agree", "[acquirer][chaos]") {
  installation inst(
      "e2e-saf-faults", true,
      {"--drip-amount-suffix", "11=2", "--duplicate-amount-suffix", "22", "--wrong-stan-amount-suffix", "33",
       "--reset-amount-suffix", "44", "--after-reversal-amount-suffix", "55"});
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=2500"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  struct row {
    const char* amount;
    const char* outcome;      // what the POS is told
    const char* final_state;  // what status_query says once everything settled
  };
  const row rows[] = {
      {"10.11", "approved", "approved"},  // byte-by-byte drip (2 ms a byte), inside the response timeout
      {"10.22", "approved", "approved"},  // answered twice: the second answer matches nothing
      {"10.33", "failed", "reversed"},    // wrong STAN: never matches, times out, reversed
      {"10.44", "failed", "reversed"},    // reset mid-message: in doubt, reversed
      {"10.55", "failed", "reversed"},    // answer only after the reversal: too late to flip
  };
  std::int64_t approved_total = 0;
  for (const auto& r : rows) {
    INFO(r.amount);
    const auto order = order_no("F");
    auto res = inst.pos("T01", {"sale", "--order", order, "--amount", r.amount, "--currency", "PLN"});
    REQUIRE(res.exit_code == 0);
    CHECK(res.result.value("outcome", "") == r.outcome);
    CHECK(wait_for_state(inst, order, r.final_state, 30s) == r.final_state);
    if (std::string(r.outcome) == "approved") approved_total += res.result.value("approved_amount", 0);
  }
  // The ledger: only the approvals the POS saw stand; every in-doubt one was reversed.
  inst.acquirer->signal(SIGTERM);
  auto line = inst.acquirer->wait_for_prefix("SUMMARY ", 10s);
  REQUIRE(line.has_value());
  auto sum = nlohmann::json::parse(*line, nullptr, false);
  REQUIRE(sum.is_object());
  CHECK(sum.value("approved_amount", -1) == approved_total);
}
