// What a chip or contactless receipt prints about the card's EMV processing: the application
// (AID and label), TVR and TSI, the final application cryptogram and its type, and the CVM
// performed. Schemes ask for these so that a disputed sale can be explained from the paper.
// Kept as a small JSON object with the payment operation (journal column operations.emv_data),
// so a repeated request or a status query prints the same receipt. None of it is card data.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"

namespace eftd::emv {
class tlv_store;
}

namespace eftd::server {

// The CVM words stored and printed: online_pin, offline_pin, offline_pin_signature, signature,
// cdcvm, no_cvm, none (no CVM performed or it failed).
// From the card's data (84/4F, 9F12/50, 9F26, 9F27) and the kernel's TVR and TSI.
std::string emv_receipt_data(const emv::tlv_store& data, byte_view tvr, byte_view tsi, std::string_view cvm);

// The CVM word for a contact card's CVM results (9F34); "signature" when the kernel asked for one.
std::string contact_cvm_word(const emv::tlv_store& data, bool signature_required);

// The receipt lines for stored EMV data (label/value pairs, at most 40 columns). Empty for
// malformed or missing data: the receipt is then printed without them.
struct emv_receipt_lines {
  std::vector<std::pair<std::string, std::string>> rows;
  bool signature_line = false;  // the merchant copy gets a line for the customer's signature
};
emv_receipt_lines emv_receipt_rows(std::string_view emv_data);

// The result's `emv` object for the POS (pos-protocol/PROTOCOL.md): AID, app_label, TVR, TSI,
// AC, AC_type, CVM, and ARC (the acquirer's response code) when there was one.
std::map<std::string, std::string> emv_result_fields(std::string_view emv_data,
                                                     std::string_view response_code);

}  // namespace eftd::server
