// The POS protocol end to end, message by message, against real processes: refunds, cancels,
// balance inquiries, aborts at each stage, prompts defined in configuration, totals, and the
// requests this server version refuses.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;
using json = nlohmann::json;

namespace {

// A logged-in raw POS connection with helpers to run one request to its final message.
class till_conn {
 public:
  till_conn(int port, const std::string& till, bool prompts = false) : c_(port) {
    c_.send(std::string(R"({"type":"login","v":1,"id":"l1","till_id":")") + till + R"(","version":1)" +
            (prompts ? R"(,"capabilities":["prompt"])" : "") + "}\n");
    auto ok = c_.next();
    REQUIRE(ok.has_value());
    REQUIRE(ok->value("type", "") == "login_ok");
    login_ok = *ok;
  }
  void send(const json& j) { c_.send(j.dump() + "\n"); }
  std::optional<json> next(std::chrono::milliseconds t = 20s) { return c_.next(t); }
  // Messages up to and including the first of type `type` (or an error); seen collects all.
  std::optional<json> until(const std::string& type, std::chrono::milliseconds t = 30s) {
    std::optional<json> m;
    while ((m = c_.next(t))) {
      seen.push_back(*m);
      const auto ty = m->value("type", "");
      if (ty == type || ty == "error") return m;
    }
    return std::nullopt;
  }
  json run(const json& request) {
    send(request);
    auto r = until("result");
    REQUIRE(r.has_value());
    return *r;
  }
  // Asks for the order's status (paced, with a deadline) until its state is `want`; returns the
  // last order_status seen. Background work such as a queued reversal finishes meanwhile.
  json wait_for_state(const std::string& order, const std::string& want) {
    std::optional<json> st;
    for (int i = 0; i < 100; ++i) {
      send({{"type", "status_query"}, {"v", 1}, {"id", "q"}, {"order_no", order}});
      st = until("order_status");
      REQUIRE(st.has_value());
      if (st->value("state", "") == want) break;
      c_.next(100ms);  // nothing arrives: a paced poll
    }
    return *st;
  }
  json login_ok;
  std::vector<json> seen;

 private:
  raw_client c_;
};

json sale(const std::string& id, const std::string& order, std::int64_t amount) {
  return {{"type", "sale"},    {"v", 1},           {"id", id},
          {"order_no", order}, {"amount", amount}, {"currency", "PLN"}};
}

// Stops the acquirer simulator and returns its SUMMARY line (its ledger's totals).
json sim_summary(installation& inst) {
  inst.acquirer->signal(SIGTERM);
  auto line = inst.acquirer->wait_for_prefix("SUMMARY ", 10s);
  REQUIRE(line.has_value());
  auto j = json::parse(*line, nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

int sim_summary_field(installation& inst, const std::string& field) {
  return sim_summary(inst).value(field, -1);
}

}  // namespace

TEST_CASE("login_ok lists what the server serves, pre-authorisations included", "[pos]") {
  installation inst("e2e-pos-caps");
  inst.start_eftd();
  till_conn t(inst.pos_port, "T01");
  const auto caps = t.login_ok["capabilities"];
  for (const char* c : {"sale", "refund", "preauth", "completion", "incremental", "cancel", "balance_inquiry",
                        "status_query", "abort", "answer", "totals", "heartbeat"})
    CHECK(std::find(caps.begin(), caps.end(), c) != caps.end());
  // A completion without a valid pre-authorisation number, or without an amount, is refused
  // before anything is journaled.
  t.send({{"type", "completion"},
          {"v", 1},
          {"id", "p1"},
          {"order_no", "H1"},
          {"amount", 100},
          {"currency", "PLN"},
          {"preauth_order_no", ""}});
  auto e = t.next();
  REQUIRE(e.has_value());
  CHECK(e->value("code", "") == "pos.bad_field");
  CHECK(e->value("id", "") == "p1");
  t.send({{"type", "incremental"},
          {"v", 1},
          {"id", "p2"},
          {"order_no", "H1"},
          {"amount", 0},
          {"currency", "PLN"},
          {"preauth_order_no", "H0"}});
  e = t.next();
  REQUIRE(e.has_value());
  CHECK(e->value("code", "") == "invalid_amount");
}

TEST_CASE("a refund of part of a sale is approved and more than what is left is declined with a reason",
          "[pos]") {
  installation inst("e2e-pos-refund");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  const auto paid = order_no("RS");
  REQUIRE(t.run(sale("s1", paid, 10000)).value("outcome", "") == "approved");

  const auto r1 = order_no("RR");
  json refund{{"type", "refund"},         {"v", 1},         {"id", "r1"},
              {"order_no", r1},           {"amount", 6000}, {"currency", "PLN"},
              {"original_order_no", paid}};
  auto res = t.run(refund);
  CHECK(res.value("outcome", "") == "approved");
  CHECK(res.value("approved_amount", 0) == 6000);
  CHECK(contains(res["receipt"]["customer"].dump(), "REFUND"));

  // 60.00 of 100.00 is refunded: 50.00 more is over what is left.
  refund["id"] = "r2";
  refund["order_no"] = order_no("RR");
  refund["amount"] = 5000;
  res = t.run(refund);
  CHECK(res.value("outcome", "") == "declined");
  CHECK(res["reason"].value("code", "") == "refund.exceeds_original");
  CHECK(contains(res["reason"].value("cashier_text", ""), "40.00"));

  // An original that does not exist.
  refund["id"] = "r3";
  refund["order_no"] = order_no("RR");
  refund["original_order_no"] = "NO-SUCH-ORDER";
  res = t.run(refund);
  CHECK(res["reason"].value("code", "") == "refund.original_unknown");

  // A refund without an original: card present, any amount within limits.
  json plain{{"type", "refund"},           {"v", 1},        {"id", "r4"},
             {"order_no", order_no("RR")}, {"amount", 300}, {"currency", "PLN"}};
  CHECK(t.run(plain).value("outcome", "") == "approved");

  // Totals: two approved refunds, one approved sale, two declined refunds; net 100.00 - 63.00.
  t.send({{"type", "totals"}, {"v", 1}, {"id", "t1"}});
  auto tot = t.until("totals_report");
  REQUIRE(tot.has_value());
  REQUIRE(tot->value("type", "") == "totals_report");
  CHECK(tot->value("till_id", "") == "T01");
  CHECK((*tot)["net"].value("PLN", 0) == 10000 - 6000 - 300);
  bool saw_refunds = false;
  for (const auto& l : (*tot)["lines"]) {
    if (l.value("kind", "") == "refund" && l.value("outcome", "") == "approved") {
      saw_refunds = true;
      CHECK(l.value("count", 0) == 2);
      CHECK(l.value("amount", 0) == 6300);
    }
  }
  CHECK(saw_refunds);
  CHECK(sim_summary_field(inst, "refund_amount") == 6300);
}

TEST_CASE("cancel reverses an approved sale once, however often it is asked, and nothing else is cancellable",
          "[pos]") {
  installation inst("e2e-pos-cancel");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  const auto order = order_no("C");
  REQUIRE(t.run(sale("s1", order, 2500)).value("outcome", "") == "approved");

  json cancel{{"type", "cancel"}, {"v", 1}, {"id", "c1"}, {"order_no", order}};
  auto res = t.run(cancel);
  CHECK(res.value("outcome", "") == "approved");
  CHECK(res.value("id", "") == "c1");
  CHECK(res.value("approved_amount", 0) == 0);  // absent on the wire when 0
  cancel["id"] = "c2";
  CHECK(t.run(cancel).value("outcome", "") == "approved");

  // The reversal goes out through the store-and-forward queue; the order ends "reversed".
  auto st = t.wait_for_state(order, "reversed");
  CHECK(st.value("state", "") == "reversed");
  CHECK(st["last_result"].value("outcome", "") == "cancelled");

  cancel["id"] = "c3";
  cancel["order_no"] = "NEVER-SOLD";
  res = t.run(cancel);
  CHECK(res.value("outcome", "") == "declined");
  CHECK(res["reason"].value("code", "") == "cancel.unknown_order");
  CHECK(contains(res["reason"].value("cashier_text", ""), "NEVER-SOLD"));

  // A declined sale has nothing to cancel (amount suffix 51: the simulator declines).
  const auto declined = order_no("CD");
  REQUIRE(t.run(sale("s2", declined, 1051)).value("outcome", "") == "declined");
  cancel["id"] = "c4";
  cancel["order_no"] = declined;
  res = t.run(cancel);
  CHECK(res["reason"].value("code", "") == "cancel.nothing_to_cancel");

  // The acquirer saw exactly one reversal, and its ledger is back to nothing.
  auto sum = sim_summary(inst);
  CHECK(sum.value("reversed", -1) == 1);
  CHECK(sum.value("approved_amount", -1) == 0);
}

TEST_CASE("a balance inquiry returns the card's balance and moves no money", "[pos]") {
  installation inst("e2e-pos-balance", true, {"--balance", "43210"});
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  json req{{"type", "balance_inquiry"}, {"v", 1}, {"id", "b1"}, {"order_no", order_no("B")}};
  auto res = t.run(req);
  CHECK(res.value("outcome", "") == "approved");
  CHECK(res.value("balance", -1) == 43210);
  CHECK(res.value("approved_amount", 0) == 0);
  CHECK(sim_summary_field(inst, "approved_amount") == 0);
}

TEST_CASE("abort while the customer should present a card: cancelled at once, the pad told to stop",
          "[pos]") {
  installation inst("e2e-pos-abort-card");
  inst.start_eftd();
  scripted_pad pad(inst.pad_port, "P01", "VP-0001");
  raw_client pos(inst.pos_port);
  const auto order = order_no("AB");
  start_sale_held_at_card(pos, pad, order, 900);
  pos.send(R"({"type":"abort","v":1,"id":"a1","order_no":")" + order + "\"}\n");
  std::optional<json> m;
  bool acked = false;
  while ((m = pos.next(20s)) && m->value("type", "") != "result")
    if (m->value("type", "") == "status" && m->value("id", "") == "a1")
      acked = m->value("stage", "") == "aborting";
  REQUIRE(m.has_value());
  CHECK(acked);
  CHECK(m->value("outcome", "") == "cancelled");
  CHECK(m->value("id", "") == "s1");
  CHECK((*m)["reason"].value("code", "") == "pos.aborted");
  CHECK(contains((*m)["reason"].value("cashier_text", ""), order));
  // The pad got a cancel for the card read.
  std::optional<eftd::pad::envelope> cmd;
  bool cancelled = false;
  while (!cancelled && (cmd = pad.next(5s))) cancelled = std::holds_alternative<eftd::pad::cancel>(cmd->body);
  CHECK(cancelled);
  // An abort for an order that is not running.
  pos.send(R"({"type":"abort","v":1,"id":"a2","order_no":")" + order + "\"}\n");
  auto e = pos.next();
  REQUIRE(e.has_value());
  CHECK(e->value("code", "") == "unknown_order");
}

TEST_CASE("prompts are data: a configured question is asked, answered, validated, and can cancel", "[pos]") {
  installation inst("e2e-pos-prompt");
  inst.extra_config = R"(
[[prompts]]
id = "id_check"
stage = "before_card"
types = ["sale"]
kind = "yes_no"
text = "Check the customer's ID. Checked?"
default = "no"
timeout_ms = 1500
min_amount = 5000
cancel_on = ["no"]
)";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01", /*prompts=*/true);

  // Under the prompt's minimum amount: no question.
  CHECK(t.run(sale("s0", order_no("P"), 1000)).value("outcome", "") == "approved");
  for (const auto& m : t.seen) CHECK(m.value("type", "") != "prompt");

  // Answered "yes" (after one invalid answer that leaves the prompt open): approved.
  t.send(sale("s1", order_no("P"), 6000));
  auto p = t.until("prompt");
  REQUIRE(p.has_value());
  REQUIRE(p->value("type", "") == "prompt");
  CHECK(p->value("prompt_id", "") == "id_check");
  CHECK(p->value("kind", "") == "yes_no");
  CHECK(p->value("default", "") == "no");
  t.send({{"type", "answer"}, {"v", 1}, {"id", "x1"}, {"prompt_id", "id_check"}, {"value", "maybe"}});
  auto bad = t.until("error");
  REQUIRE(bad.has_value());
  CHECK(bad->value("code", "") == "pos.bad_field");
  t.send({{"type", "answer"}, {"v", 1}, {"id", "x2"}, {"prompt_id", "id_check"}, {"value", "yes"}});
  auto res = t.until("result");
  REQUIRE(res.has_value());
  CHECK(res->value("outcome", "") == "approved");

  // Answered "no": cancelled with the motivated reason; nothing went to the acquirer.
  const auto refused = order_no("P");
  t.send(sale("s2", refused, 6000));
  REQUIRE(t.until("prompt").has_value());
  t.send({{"type", "answer"}, {"v", 1}, {"id", "x3"}, {"prompt_id", "id_check"}, {"value", "no"}});
  res = t.until("result");
  REQUIRE(res.has_value());
  CHECK(res->value("outcome", "") == "cancelled");
  CHECK((*res)["reason"].value("code", "") == "pos.prompt_cancelled");

  // Not answered: the default ("no") after the timeout.
  t.send(sale("s3", order_no("P"), 6000));
  REQUIRE(t.until("prompt").has_value());
  res = t.until("result", 20s);
  REQUIRE(res.has_value());
  CHECK((*res)["reason"].value("code", "") == "pos.prompt_cancelled");

  // An answer to no open prompt.
  t.send({{"type", "answer"}, {"v", 1}, {"id", "x4"}, {"prompt_id", "id_check"}, {"value", "yes"}});
  auto e = t.until("error");
  REQUIRE(e.has_value());
  CHECK(e->value("code", "") == "unknown_prompt");

  // The journal explains the refusal.
  inst.eftd->stop();
  auto v = journal_view(inst, refused);
  bool explained = false;
  for (const auto& ev : v.events)
    explained = explained || (ev.kind == "prompt_answered" && contains(ev.reason, "no"));
  CHECK(explained);
}

TEST_CASE("abort while a prompt is open ends the transaction as cancelled", "[pos]") {
  installation inst("e2e-pos-abort-prompt");
  inst.extra_config = R"(
[[prompts]]
id = "loyalty"
stage = "after_card"
kind = "menu"
text = "Loyalty programme?"
options = ["none", "gold", "silver"]
default = "none"
timeout_ms = 60000
)";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01", true);
  const auto order = order_no("AP");
  t.send(sale("s1", order, 700));
  auto p = t.until("prompt");
  REQUIRE(p.has_value());
  CHECK(p->value("kind", "") == "menu");
  CHECK((*p)["options"].size() == 3);
  t.send({{"type", "abort"}, {"v", 1}, {"id", "a1"}, {"order_no", order}});
  auto res = t.until("result");
  REQUIRE(res.has_value());
  CHECK(res->value("outcome", "") == "cancelled");
  CHECK((*res)["reason"].value("code", "") == "pos.aborted");
  CHECK(sim_summary_field(inst, "requests") == 0);
}

TEST_CASE("a POS without the prompt capability never sees a prompt: the default is taken", "[pos]") {
  installation inst("e2e-pos-noprompt");
  inst.extra_config = R"(
[[prompts]]
id = "receipt_copy"
kind = "yes_no"
text = "Print a copy for the customer?"
default = "yes"
)";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01", /*prompts=*/false);
  CHECK(t.run(sale("s1", order_no("NP"), 800)).value("outcome", "") == "approved");
  for (const auto& m : t.seen) CHECK(m.value("type", "") != "prompt");
}

TEST_CASE("the same order number with another amount or type is refused as duplicate_order", "[pos]") {
  installation inst("e2e-pos-dup");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  const auto order = order_no("D");
  REQUIRE(t.run(sale("s1", order, 1200)).value("outcome", "") == "approved");
  t.send(sale("s2", order, 1300));
  auto e = t.until("result");
  REQUIRE(e.has_value());
  CHECK(e->value("type", "") == "error");
  CHECK(e->value("code", "") == "duplicate_order");
  json refund{{"type", "refund"},  {"v", 1},         {"id", "r1"},
              {"order_no", order}, {"amount", 1200}, {"currency", "PLN"}};
  t.send(refund);
  e = t.until("result");
  REQUIRE(e.has_value());
  CHECK(e->value("code", "") == "duplicate_order");
  // The identical request is the stored result, not a second charge.
  auto again = t.run(sale("s3", order, 1200));
  CHECK(again.value("outcome", "") == "approved");
  CHECK(again.value("id", "") == "s3");
  CHECK(sim_summary_field(inst, "approved") == 1);
}

TEST_CASE("abort while the acquirer decides: an approval that follows is reversed and the sale is cancelled",
          "[pos]") {
  installation inst("e2e-pos-abort-acq", true, {"--delay-amount-suffix", "77=1500"});
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  const auto order = order_no("AA");
  t.send(sale("s1", order, 1077));
  std::optional<json> m;
  while ((m = t.next()) && m->value("stage", "") != "authorizing") {
  }
  REQUIRE(m.has_value());
  t.send({{"type", "abort"}, {"v", 1}, {"id", "a1"}, {"order_no", order}});
  auto res = t.until("result");
  REQUIRE(res.has_value());
  CHECK(res->value("outcome", "") == "cancelled");
  CHECK((*res)["reason"].value("code", "") == "pos.aborted");
  CHECK(res->value("approved_amount", 0) == 0);
  // The reversal goes out in the background; the order ends reversed, still "cancelled".
  auto st = t.wait_for_state(order, "reversed");
  CHECK(st.value("state", "") == "reversed");
  CHECK(st["last_result"].value("outcome", "") == "cancelled");
  auto sum = sim_summary(inst);
  CHECK(sum.value("reversed", -1) == 1);
  CHECK(sum.value("approved_amount", -1) == 0);
}

TEST_CASE("partial approval: the cashier accepts the approved part, or refuses it and it is reversed",
          "[pos]") {
  installation inst("e2e-pos-partial", true, {"--partial-amount-suffix", "33=50"});
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01", /*prompts=*/true);

  t.send(sale("s1", order_no("PA"), 2033));  // 20.33: half is approved
  auto p = t.until("prompt");
  REQUIRE(p.has_value());
  REQUIRE(p->value("type", "") == "prompt");
  CHECK(p->value("prompt_id", "") == "partial_approval");
  CHECK(contains(p->value("text", ""), "10.16"));
  t.send({{"type", "answer"}, {"v", 1}, {"id", "x1"}, {"prompt_id", "partial_approval"}, {"value", "yes"}});
  auto res = t.until("result");
  REQUIRE(res.has_value());
  CHECK(res->value("outcome", "") == "approved");
  CHECK(res->value("amount", 0) == 2033);
  CHECK(res->value("approved_amount", 0) == 1016);

  const auto refused = order_no("PA");
  t.send(sale("s2", refused, 4033));
  REQUIRE(t.until("prompt").has_value());
  t.send({{"type", "answer"}, {"v", 1}, {"id", "x2"}, {"prompt_id", "partial_approval"}, {"value", "no"}});
  res = t.until("result");
  REQUIRE(res.has_value());
  CHECK(res->value("outcome", "") == "cancelled");
  CHECK((*res)["reason"].value("code", "") == "pos.partial_declined");

  // The refused part is reversed in the background; then the acquirer's ledger holds only the
  // accepted partial payment.
  CHECK(t.wait_for_state(refused, "reversed").value("state", "") == "reversed");
  CHECK(sim_summary_field(inst, "approved_amount") == 1016);
}

TEST_CASE("a POS that vanishes while a prompt is open: the default is taken at once and the order ends",
          "[pos]") {
  installation inst("e2e-pos-prompt-gone");
  inst.extra_config = R"(
[[prompts]]
id = "bag"
kind = "yes_no"
text = "Does the customer want a bag?"
default = "yes"
timeout_ms = 600000
)";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("PG");
  {
    till_conn t(inst.pos_port, "T01", true);
    t.send(sale("s1", order, 900));
    REQUIRE(t.until("prompt").has_value());
  }  // the POS disconnects with the prompt open (its timeout is 10 minutes)
  // Reconnect as the recovery procedure says: until the server has seen the old connection
  // go, a login may be answered till_in_use; then log in again.
  std::optional<json> st;
  for (int i = 0; i < 100; ++i) {
    raw_client again(inst.pos_port);
    again.send(R"({"type":"login","v":1,"id":"l1","till_id":"T01","version":1})"
               "\n");
    auto login = again.next();
    REQUIRE(login.has_value());
    if (login->value("type", "") == "login_ok") {
      again.send(R"({"type":"status_query","v":1,"id":"q","order_no":")" + order + "\"}\n");
      st = again.next();
      REQUIRE(st.has_value());
      if (st->value("state", "") != "in_progress") break;
    } else {
      CHECK(login->value("code", "") == "till_in_use");
    }
    again.next(100ms);  // a paced poll with a deadline
  }
  REQUIRE(st.has_value());
  CHECK(st->value("state", "") == "approved");
}

namespace {

json preauth_req(const std::string& id, const std::string& order, std::int64_t amount) {
  return {{"type", "preauth"}, {"v", 1},           {"id", id},
          {"order_no", order}, {"amount", amount}, {"currency", "PLN"}};
}

json follow_up(const std::string& type, const std::string& id, const std::string& order,
               const std::string& preauth, std::int64_t amount) {
  return {{"type", type},
          {"v", 1},
          {"id", id},
          {"order_no", order},
          {"amount", amount},
          {"currency", "PLN"},
          {"preauth_order_no", preauth}};
}

const eftd::journal::acquirer_message_row* message_with_mti(const eftd::journal::order_view& v,
                                                            const std::string& mti) {
  for (const auto& m : v.messages)
    if (m.mti == mti) return &m;
  return nullptr;
}

}  // namespace

TEST_CASE("a pre-authorisation, an incremental and a completion settle only the completed amount",
          "[pos][acquirer][settlement]") {
  installation inst("e2e-preauth");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  const auto hold = order_no("PA");
  auto pa = t.run(preauth_req("a1", hold, 10000));
  REQUIRE(pa.value("outcome", "") == "approved");
  CHECK(pa.value("approved_amount", 0) == 10000);
  CHECK(pa["receipt"].dump().find("PRE-AUTH") != std::string::npos);
  const auto pre_auth_code = pa.value("auth_code", "");
  CHECK_FALSE(pre_auth_code.empty());

  const auto more = order_no("PI");
  auto inc = t.run(follow_up("incremental", "i1", more, hold, 2000));
  CHECK(inc.value("outcome", "") == "approved");
  CHECK(inc.value("approved_amount", 0) == 2000);
  CHECK(inc["receipt"].dump().find("INCREMENTAL") != std::string::npos);

  // More than the 120.00 now authorised is refused with a reason quoting the order.
  const auto too_much = order_no("PX");
  auto big = t.run(follow_up("completion", "c0", too_much, hold, 12001));
  CHECK(big.value("outcome", "") == "declined");
  CHECK(big["reason"].value("code", "") == "completion.exceeds_authorised");
  CHECK(big["reason"].value("cashier_text", "").find(too_much) != std::string::npos);

  const auto done = order_no("PC");
  auto comp = t.run(follow_up("completion", "c1", done, hold, 11500));
  CHECK(comp.value("outcome", "") == "approved");
  CHECK(comp.value("approved_amount", 0) == 11500);
  CHECK(comp.value("auth_code", "") == pre_auth_code);
  CHECK(comp["receipt"].dump().find("COMPLETION") != std::string::npos);
  // Repeating the request answers from the journal; a second completion is refused.
  auto again = t.run(follow_up("completion", "c2", done, hold, 11500));
  CHECK(again.value("outcome", "") == "approved");
  auto second = t.run(follow_up("completion", "c3", order_no("PD"), hold, 100));
  CHECK(second["reason"].value("code", "") == "preauth.already_completed");
  auto unknown = t.run(follow_up("completion", "c4", order_no("PU"), "NO-SUCH", 100));
  CHECK(unknown["reason"].value("code", "") == "preauth.unknown");
  // The pre-authorisation cannot be cancelled once completed: the completion can.
  auto cancel_pre = t.run({{"type", "cancel"}, {"v", 1}, {"id", "x1"}, {"order_no", hold}});
  CHECK(cancel_pre["reason"].value("code", "") == "cancel.not_possible");

  // The till's totals charge the completion only.
  t.send({{"type", "totals"}, {"v", 1}, {"id", "t1"}});
  auto tot = t.until("totals_report");
  REQUIRE(tot.has_value());
  CHECK((*tot)["net"].value("PLN", 0) == 11500);

  // The acquirer saw a 0100 with field 25 = 06, an 0100 naming it, and one 0220 that settles.
  auto sim = sim_summary(inst);
  CHECK(sim.value("incrementals", 0) == 1);
  CHECK(sim.value("advices", 0) == 1);
  CHECK(sim["ledger"].value("debits", 0) == 1);
  CHECK(sim["ledger"].value("debit_amount", 0) == 11500);
  inst.eftd->stop();
  auto v = journal_view(inst, done);
  const auto* adv = message_with_mti(v, "0220");
  REQUIRE(adv != nullptr);
  CHECK(adv->state == "answered");
  CHECK(adv->response_code.value_or("") == "00");
  CHECK(adv->original_msg_id.has_value());
}

TEST_CASE(
    "cancelling a pre-authorisation reverses its 0100 and its incrementals and a completion is then refused",
    "[pos][acquirer]") {
  installation inst("e2e-preauth-cancel");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  till_conn t(inst.pos_port, "T01");
  const auto hold = order_no("PK");
  const auto more = order_no("PM");
  REQUIRE(t.run(preauth_req("a1", hold, 5000)).value("outcome", "") == "approved");
  REQUIRE(t.run(follow_up("incremental", "i1", more, hold, 1500)).value("outcome", "") == "approved");
  auto c = t.run({{"type", "cancel"}, {"v", 1}, {"id", "x1"}, {"order_no", hold}});
  CHECK(c.value("outcome", "") == "approved");  // the cancel went through
  CHECK(c["reason"].value("code", "") == "cancel.done");
  CHECK(t.wait_for_state(hold, "reversed").value("state", "") == "reversed");
  // The incremental's own hold is released with it.
  CHECK(t.wait_for_state(more, "reversed").value("state", "") == "reversed");
  auto comp = t.run(follow_up("completion", "c1", order_no("PL"), hold, 5000));
  CHECK(comp.value("outcome", "") == "declined");
  CHECK(comp["reason"].value("code", "") == "preauth.not_approved");
  auto sim = sim_summary(inst);
  CHECK(sim.value("reversed", 0) == 2);
  CHECK(sim.value("approved_amount", -1) == 0);
  CHECK(sim["ledger"].value("debits", 0) == 0);
}

TEST_CASE("a completion advice the acquirer does not answer is repeated as 0221 after kill -9 of eftd",
          "[pos][acquirer][chaos]") {
  // Amounts ending in 77 are answered after 3 s, longer than eftd waits: the first 0220 is
  // unanswered when eftd dies; the restarted queue repeats it and the repeat is acknowledged.
  installation inst("e2e-preauth-saf", true, {"--delay-amount-suffix", "77=3000"});
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=500"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto hold = order_no("PS");
  const auto done = order_no("PT");
  {
    till_conn t(inst.pos_port, "T01");
    REQUIRE(t.run(preauth_req("a1", hold, 10000)).value("outcome", "") == "approved");
    auto comp = t.run(follow_up("completion", "c1", done, hold, 9977));
    // The advice is owed, durable and queued: the completion stands.
    CHECK(comp.value("outcome", "") == "approved");
  }
  inst.crash_eftd();
  {
    auto v = journal_view(inst, done);
    const auto* adv = message_with_mti(v, "0220");
    REQUIRE(adv != nullptr);
    CHECK(adv->state == "pending");
  }
  inst.stop_pad();
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=5000"});
  // The queue resumes: poll the journal copy of the advice until it is acknowledged.
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto rd = eftd::journal::reader::open(inst.db());
    REQUIRE(rd);
    auto rows = rd->find_orders_recent("T01", done, 0);
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    auto d = rd->order_detail(rows->front().order_id);
    REQUIRE(d);
    const auto* adv = message_with_mti(**d, "0220");
    REQUIRE(adv != nullptr);
    state = adv->state;
    if (state == "answered") break;
    raw_client idle(inst.pos_port);
    idle.next(200ms);  // paced poll with a deadline
  }
  CHECK(state == "answered");
  auto sim = sim_summary(inst);
  CHECK(sim.value("advices", 0) == 1);  // the repeat is the same advice, not a second one
  CHECK(sim["ledger"].value("debits", 0) == 1);
  CHECK(sim["ledger"].value("debit_amount", 0) == 9977);
}
