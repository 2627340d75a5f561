// Request/response matching rules, kept as data apart from the link that applies them.
//
// A response is matched to its request by an explicit key: the expected response MTI plus
// the values of the key fields for the message class. Never STAN alone: STANs wrap and are
// per terminal, so two tills can have the same STAN in flight on one acquirer connection.
//
//   class 01 (authorization), 02 (financial), 04 (reversal), 05 (reconciliation):
//     41 terminal id + 11 STAN + 7 transmission date-time
//   class 08 (network management): 11 STAN + 7 transmission date-time
//     (0800 belongs to the link, not to a terminal; ISO 8583:1987 makes field 41 optional)
//
// A key field missing from a request makes it unsendable; missing from a response makes it
// unmatchable. Both are "acq.match_field_missing" naming the field (never a value).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "eftd/acq/message.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acq {

// True for MTIs that expect a response: 4 digits, function digit 0 (request) or 2 (advice).
bool expects_response(std::string_view mti);
// True for response MTIs: 4 digits, function digit 1 or 3.
bool is_response_mti(std::string_view mti);
// The response MTI for a request: function digit + 1, origin digit with its "repeat" bit
// cleared (0200 -> 0210, 0221 -> 0230, 0401 -> 0410, 0800 -> 0810). nullopt if none expected.
std::optional<std::string> response_mti_for(std::string_view request_mti);
// The key fields for the MTI's class (second digit), in key order.
std::span<const int> match_fields(std::string_view mti);

// Key a request waits under: response MTI + key field values.
result<std::string> request_match_key(const message& request);
// Key a response is delivered under: its own MTI + key field values.
result<std::string> response_match_key(const message& response);

}  // namespace eftd::acq
