// Offline approvals end to end (issue 5, "advices ... for completions and offline"): under the
// EMV floor limit a chip card may approve a purchase itself (TC at the first GENERATE AC). eftd
// takes the sale, and owes the acquirer an 0220 advice that carries the card (fields 2, 14, 23,
// 55, never the track). The advice is durable in the store-and-forward queue before the POS
// hears "approved", survives a restart while the acquirer is unreachable, and settles.
#include <catch2/catch.hpp>
#include <fstream>

#include "e2e_util.hpp"

using namespace eftd::test;

namespace {

// eftd with the EMV kernel and a floor limit of 50.00: a 25.00 purchase may stay offline.
std::vector<std::string> offline_emv(std::vector<std::string> more = {}) {
  auto a = emv_on();
  a.insert(a.end(), {"--set", "emv.floor_limit=5000"});
  for (auto& m : more) a.push_back(std::move(m));
  return a;
}

const eftd::journal::acquirer_message_row* advice_of(const eftd::journal::order_view& v) {
  for (const auto& m : v.messages)
    if (m.mti == "0220") return &m;
  return nullptr;
}

bool advice_answered(const eftd::journal::order_view& v) {
  const auto* m = advice_of(v);
  return m && m->state == "answered";
}

}  // namespace

TEST_CASE("a chip purchase under the floor limit is approved offline and its advice carries the card",
          "[e2e][emv][acquirer]") {
  installation inst("e2e-offline", true, issuer());
  inst.start_eftd(offline_emv());
  inst.start_pad("P01", "VP-0001", "visa-dda-approve.toml", customer_types_pin(inst));
  const auto order = order_no("OF");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "25.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result["reason"].value("code", "") == "approved.offline");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  CHECK(r.result.value("entry_mode", "") == "chip");
  CHECK(r.result.value("auth_code", "") == "Y1");

  // The advice was queued in the commit that approved the sale; the queue delivers it.
  auto v = wait_for_order(inst, order, advice_answered);
  REQUIRE(v);
  const auto* adv = advice_of(*v);
  REQUIRE(adv != nullptr);
  CHECK(adv->state == "answered");
  CHECK(adv->response_code.value_or("") == "00");
  CHECK(adv->auth_code.value_or("") == "Y1");
  CHECK(adv->amount_minor == 2500);
  CHECK(v->order.state == "approved");
  CHECK(v->operations.front().state == "approved");
  bool event_seen = false;
  for (const auto& e : v->events) event_seen = event_seen || e.kind == "approved_offline";
  CHECK(event_seen);
  CHECK(v->messages.size() == 1);  // no 0200: nothing was asked of the acquirer

  // The acquirer got the card in field 2 (not the track), verified the TC and settles the sale.
  inst.eftd->stop();
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "approved") == 1);
  CHECK(summary_number(sim, "debits") == 1);
  const auto acq_log = slurp(inst.dir + "/acquirer.log");
  CHECK(contains(acq_log, "offline advice acknowledged"));
  CHECK(contains(acq_log, "TC verified"));

  // The sealed card details are in the journal, never the PAN or the expiry in clear.
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto payload = rd->message_advice_payload(adv->msg_id);
  REQUIRE(payload);
  CHECK_FALSE(payload->icc_data.empty());
  CHECK_FALSE(payload->card_ciphertext.empty());
  CHECK_FALSE(contains(slurp(inst.db()), test_pan));
  CHECK_FALSE(contains(slurp(inst.db() + "-wal"), test_pan));
  CHECK_FALSE(contains(slurp(inst.dir + "/eftd.log"), test_pan));
}

TEST_CASE(
    "an offline approval's advice waits in the queue across a restart until the acquirer answers, "
    "then settles",
    "[e2e][emv][acquirer][chaos]") {
  installation inst("e2e-offline-saf", true, issuer());
  // First life: the acquirer's port is wrong (nothing listens), so the advice cannot be sent.
  inst.start_eftd(offline_emv({"--set", "acquirers.sim.port=9"}));
  inst.start_pad("P01", "VP-0001", "visa-dda-approve.toml", customer_types_pin(inst));
  const auto order = order_no("OS");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "25.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result["reason"].value("code", "") == "approved.offline");
  {
    auto v = wait_for_order(inst, order, [](const eftd::journal::order_view& v) {
      const auto* m = advice_of(v);
      return m && m->attempts >= 1;
    });
    REQUIRE(v);
    const auto* adv = advice_of(*v);
    REQUIRE(adv != nullptr);
    CHECK(adv->state == "pending");
    CHECK(adv->attempts >= 1);
  }
  inst.crash_eftd();
  inst.stop_pad();

  // Second life: the advice goes out (as an 0221 repeat) and is acknowledged.
  inst.start_eftd(offline_emv());
  auto v = wait_for_order(inst, order, advice_answered, std::chrono::seconds(30));
  REQUIRE(v);
  REQUIRE(advice_of(*v) != nullptr);
  INFO("advice state " << advice_of(*v)->state << ", attempts " << advice_of(*v)->attempts);
  CHECK(advice_answered(*v));

  // The day closes with the offline sale in it, in balance with the acquirer.
  auto closed = admin_request(inst.dir + "/admin.sock", {{"cmd", "settle"}});
  INFO(closed.dump());
  REQUIRE(closed.value("ok", false));
  REQUIRE(closed["batches"].size() == 1);
  const auto& b = closed["batches"][0];
  CHECK(b.value("state", "") == "closed");
  CHECK(b.value("debits", -1) == 1);
  CHECK(b.value("debit_amount", -1) == 2500);

  // Cancelled after settlement, the offline sale is refunded by a refund advice naming it.
  auto c = inst.pos("T01", {"cancel", "--order", order});
  REQUIRE(c.exit_code == 0);
  CHECK(c.result.value("outcome", "") == "approved");
  CHECK(c.result["reason"].value("code", "") == "cancel.refunded");
  auto refunded = wait_for_order(inst, order, [](const eftd::journal::order_view& v) {
    for (const auto& m : v.messages)
      if (m.mti == "0220" && m.state == "answered" && m.msg_id != advice_of(v)->msg_id) return true;
    return false;
  });
  REQUIRE(refunded);
  CHECK(refunded->messages.size() == 2);
  inst.eftd->stop();
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "debits") == 1);
  CHECK(refunded->order.state == "cancelled");
}

TEST_CASE("above the floor limit a purchase goes online, and under it a refund still does",
          "[e2e][emv][acquirer]") {
  installation inst("e2e-offline-refund", true, issuer());
  inst.start_eftd(offline_emv());
  inst.start_pad("P01", "VP-0001", "visa-dda-approve.toml", customer_types_pin(inst, 2));
  const auto sale = order_no("OP");
  auto r = inst.pos("T01", {"sale", "--order", sale, "--amount", "60.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK_FALSE(r.result.contains("reason"));  // a plain online approval
  const auto refund = order_no("OR");
  r = inst.pos("T01",
               {"refund", "--order", refund, "--amount", "5.00", "--currency", "PLN", "--original", sale});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK_FALSE(r.result.contains("reason"));
  for (const auto& order : {sale, refund}) {
    auto v = journal_view(inst, order);
    REQUIRE(v.messages.size() == 1);
    CHECK(v.messages.front().mti == "0200");
  }
}
