// The batch content rules of server/src/settlement.hpp as a table: which financial requests
// count as debits, credits and their reversals, and what a batch upload sends.
#include <catch2/catch.hpp>

#include "settlement.hpp"

namespace ej = eftd::journal;

namespace {

ej::settlement_candidate candidate(std::string id, std::string kind, std::int64_t amount, std::string state,
                                   std::optional<std::string> rc, bool reversed = false) {
  ej::settlement_candidate c;
  c.message.msg_id = std::move(id);
  c.message.mti = kind == "completion" ? "0220" : "0200";
  c.message.amount_minor = amount;
  c.message.state = std::move(state);
  c.message.response_code = std::move(rc);
  c.order_kind = std::move(kind);
  c.reversal_acknowledged = reversed;
  return c;
}

}  // namespace

TEST_CASE("settlement batch content follows the acquirer ledger rules", "[settlement]") {
  std::vector<ej::settlement_candidate> rows{
      candidate("sale", "sale", 1000, "answered", "00"),
      candidate("completion", "completion", 700, "answered", "00"),
      candidate("refund", "refund", 300, "answered", "00"),
      candidate("cancelled", "sale", 2000, "reversed", "00", true),
      candidate("timeout-reversed", "sale", 1077, "reversed", std::nullopt, true),
      candidate("refund-reversed", "refund", 50, "reversed", "00", true),
      candidate("declined", "sale", 5100, "answered", "51"),
      candidate("never-sent", "sale", 900, "failed", std::nullopt),
      candidate("in-doubt", "sale", 400, "reversal_pending", std::nullopt),
      candidate("inquiry", "balance_inquiry", 0, "answered", "00"),
  };
  auto partial = candidate("partial", "sale", 1000, "answered", "10");
  partial.approved_amount_minor = 500;
  rows.push_back(partial);

  const auto c = eftd::server::batch_content_of(rows);
  CHECK(c.totals.debits == 5);  // sale, completion, cancelled, timeout-reversed, partial
  CHECK(c.totals.debit_amount == 1000 + 700 + 2000 + 1077 + 500);
  CHECK(c.totals.debit_reversals == 2);
  CHECK(c.totals.debit_reversal_amount == 2000 + 1077);
  CHECK(c.totals.credits == 2);
  CHECK(c.totals.credit_amount == 350);
  CHECK(c.totals.credit_reversals == 1);
  CHECK(c.totals.credit_reversal_amount == 50);
  CHECK(c.totals.net() == 1000 + 700 + 500 - 300);
  CHECK(c.in_doubt == 1);
  std::vector<std::string> uploaded;
  for (const auto* s : c.settling) uploaded.push_back(s->message.msg_id);
  CHECK(uploaded == std::vector<std::string>{"sale", "completion", "refund", "partial"});
}
