// Receipt texts (merchant and customer copies) as ready-to-print lines of at most 40 columns.
// Only the masked PAN ever appears.
#pragma once

#include <cstdint>
#include <string>

#include "eftd/core/config.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::server {

struct receipt_input {
  const config::merchant* merchant = nullptr;
  const config::store* store = nullptr;
  std::string till_id, terminal_id, order_no, kind;
  std::int64_t at_ms = 0;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string masked_pan, scheme, entry_mode, auth_code, stan, rrn, response_code;
  std::string outcome;      // approved | declined | cancelled | failed
  std::string reason_text;  // customer text for non-approved outcomes
  std::string emv_data;     // chip/contactless: EMV receipt data (emv_receipt.hpp), JSON
};

pos::receipt build_receipt(const receipt_input& in);

}  // namespace eftd::server
