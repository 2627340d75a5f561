// Motivated results: every decline or failure carries a stable reason code and a text for the
// cashier (POS), one for the customer (pad) and one for the journal, each quoting the POS
// order number. The table is data so that wording can be reviewed in one place.
#pragma once

#include <string>
#include <string_view>

#include "eftd/pos/messages.hpp"

namespace eftd::server {

struct motivated {
  std::string outcome;  // approved | declined | cancelled | failed
  pos::reason why;      // code + cashier text + customer text (customer text also goes to the pad)
  std::string journal;  // the text for the journal's event
};

// A reason by code (see reasons.cpp for the table), with the order number and an optional
// detail for the cashier/journal ("limit 10000.00 PLN"). Unknown codes get a generic text.
motivated motivate(std::string_view code, std::string_view order_no, std::string_view detail = {});

// The reason code for an ISO 8583 response code from the acquirer ("51" -> issuer.insufficient_funds).
std::string reason_for_response_code(std::string_view rc);
// True when an ISO 8583 response code means approved (00, 08, 10, 11 partial...).
bool response_code_approves(std::string_view rc);

}  // namespace eftd::server
