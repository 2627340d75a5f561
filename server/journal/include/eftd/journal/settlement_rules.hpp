// What a settlement batch comes to: the one statement of the batch rules, shared by eftd's
// batch close (server/src/settlement.hpp, which documents them) and the back-office reports,
// so the two can never disagree about a total.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/journal/reader.hpp"

namespace eftd::journal {

// 00 (approved) and 10 (partially approved) settle; nothing else does.
bool settling_response(const std::optional<std::string>& response_code);
// Orders whose financial requests settle: sale, refund, completion.
bool settling_order_kind(std::string_view order_kind);
// A credit: a refund order, or the refund that cancelled an already settled sale (an
// operation of kind refund under the sale's order).
bool is_credit(const settlement_candidate& c);
// What a request settled for: a partial approval (10) settles the approved part.
std::int64_t settled_amount(const settlement_candidate& c);
// closed, out_of_balance, refused.
bool is_final_batch_state(std::string_view state);

struct batch_content {
  settlement_totals totals;
  std::int64_t in_doubt = 0;  // no answer and no acknowledged reversal: left out, shown to people
  std::int64_t declined = 0;  // answered with a code that settles nothing
  // The transactions a batch upload sends: counted, not reversed, oldest first (pointers into
  // the candidates passed in).
  std::vector<const settlement_candidate*> settling;
};
batch_content batch_content_of(const std::vector<settlement_candidate>& candidates);

}  // namespace eftd::journal
