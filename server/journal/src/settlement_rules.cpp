#include "eftd/journal/settlement_rules.hpp"

namespace eftd::journal {

bool settling_response(const std::optional<std::string>& rc) {
  return rc && (*rc == "00" || *rc == "10");
}

bool settling_order_kind(std::string_view k) {
  return k == order_kinds::sale || k == order_kinds::refund || k == order_kinds::completion;
}

bool is_credit(const settlement_candidate& c) {
  return c.order_kind == order_kinds::refund || c.op_kind == operation_kinds::refund;
}

std::int64_t settled_amount(const settlement_candidate& c) {
  if (c.message.response_code == "10" && c.approved_amount_minor && *c.approved_amount_minor > 0)
    return *c.approved_amount_minor;
  return c.message.amount_minor;
}

bool is_final_batch_state(std::string_view state) {
  return state == batch_states::closed || state == batch_states::out_of_balance ||
         state == batch_states::refused;
}

batch_content batch_content_of(const std::vector<settlement_candidate>& candidates) {
  batch_content out;
  auto& t = out.totals;
  for (const auto& c : candidates) {
    if (!settling_order_kind(c.order_kind)) continue;
    const bool credit = is_credit(c);
    const auto amount = settled_amount(c);
    const bool approved = settling_response(c.message.response_code);
    // No answer recorded: the outcome at the acquirer is unknown.
    const bool unknown = !c.message.response_code && c.message.state != message_states::failed;
    if (approved || (unknown && c.reversal_acknowledged)) {
      (credit ? t.credits : t.debits) += 1;
      (credit ? t.credit_amount : t.debit_amount) += amount;
      if (c.reversal_acknowledged) {
        (credit ? t.credit_reversals : t.debit_reversals) += 1;
        (credit ? t.credit_reversal_amount : t.debit_reversal_amount) += amount;
      } else {
        out.settling.push_back(&c);
      }
    } else if (unknown) {
      ++out.in_doubt;
    } else {
      ++out.declined;
    }
  }
  return out;
}

}  // namespace eftd::journal
