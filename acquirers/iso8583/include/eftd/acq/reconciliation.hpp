// The totals of a reconciliation request (0500) as ISO 8583:1987 carries them, in one place
// for both ends: eftd's batch close writes them and the acquirer simulator checks them.
#pragma once

#include <fmt/format.h>

#include "eftd/acq/message.hpp"

namespace eftd::acq {

// Fields 74-77 (counts, n 10), 86-89 (amounts in minor units, n 16) and 97 (the net, x+n 16:
// 'D' when positive, the acquirer owes the merchant; 'C' otherwise). `Totals` has the members
// credits, credit_reversals, debits, debit_reversals, credit_amount, credit_reversal_amount,
// debit_amount, debit_reversal_amount and net().
template <class Totals>
void set_reconciliation_fields(message& m, const Totals& t) {
  m.set(74, fmt::format("{:010}", t.credits));
  m.set(75, fmt::format("{:010}", t.credit_reversals));
  m.set(76, fmt::format("{:010}", t.debits));
  m.set(77, fmt::format("{:010}", t.debit_reversals));
  m.set(86, fmt::format("{:016}", t.credit_amount));
  m.set(87, fmt::format("{:016}", t.credit_reversal_amount));
  m.set(88, fmt::format("{:016}", t.debit_amount));
  m.set(89, fmt::format("{:016}", t.debit_reversal_amount));
  const auto net = t.net();
  m.set(97, fmt::format("{}{:016}", net > 0 ? 'D' : 'C', net < 0 ? -net : net));
}

}  // namespace eftd::acq
