// Operator-facing rendering of a message, field by field, with card data masked: what
// `eftctl iso8583 decode` prints and what a per-link message trace may log. Unlike
// message::describe() (one line, card data reduced to its length) it shows as much as PCI DSS
// allows: the PAN's first 6 / last 4 digits, field 55 as its TLV objects.
//
// Masking rules (by field number, and for any other field the dialect flags as card data):
//   2, 34      PAN: first min(6, n-8) and last 4 digits, '*' between; fewer than 12 digits or
//              not all digits: hidden
//   35         track 2: the masked PAN, the separator, '*' for everything after it; a value that
//              does not parse as track 2: hidden
//   14         expiry: "****"
//   52         PIN block: hidden
//   55         EMV data: one line per TLV object (constructed ones indented with their
//              children); the values of 5A, 56, 57, 5F20, 5F24, 99, 9F0B, 9F1F, 9F20, 9F6B are
//              hidden. Data that is not valid BER-TLV: hidden as a whole.
//   36, 45, 102, 103 and other card data: hidden ("<hidden, 76 chars>")
// Other b fields are hex; other text fields are shown with non-printable bytes as '.'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/acq/dialect.hpp"
#include "eftd/acq/message.hpp"

namespace eftd::acq {

struct masked_field {
  int number = 0;
  std::string_view name;  // from the dialect; "" for a field it does not define
  std::string format;     // "n..19" as format_field() writes it; "" when undefined
  std::string value;      // safe to print
  // Field 55: one line per TLV object, "9F26 (8): 1122334455667788", children indented by
  // two spaces per level.
  std::vector<std::string> details;
};

// Every field of `m`, in field order.
std::vector<masked_field> masked_fields(const dialect& d, const message& m);

// "0200 financial request", "0421 reversal advice, repeat", "0810 network management
// response"; an MTI that is not 4 digits is returned as "<bad MTI>".
std::string describe_mti(std::string_view mti);

// The PAN display rule above, for a string of digits.
std::string mask_pan(std::string_view digits);

// True for the EMV tags whose values masked_fields() hides in field 55.
bool is_sensitive_emv_tag(std::uint32_t tag) noexcept;

}  // namespace eftd::acq
