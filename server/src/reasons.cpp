#include "reasons.hpp"

#include <fmt/format.h>

#include <array>

namespace eftd::server {

namespace {

struct reason_entry {
  std::string_view code;
  std::string_view outcome;
  std::string_view cashier;   // what happened and what to do
  std::string_view customer;  // short, for the pad display
};

// Cashier texts say what the cashier should do next; customer texts stay short for a
// two-line pad display. "{}" in a cashier text takes the optional detail.
constexpr std::array reason_table{
    reason_entry{"approved", "approved", "approved", "Approved"},
    reason_entry{"approved.offline", "approved",
                 "approved offline by the card's chip{}; the acquirer is told by an advice", "Approved"},
    reason_entry{"limit.amount_below_minimum", "declined", "amount below the minimum allowed for this till{}",
                 "Amount not allowed"},
    reason_entry{"limit.amount_above_maximum", "declined", "amount above the maximum allowed for this till{}",
                 "Amount not allowed"},
    reason_entry{"limit.type_not_allowed", "declined", "this transaction type is not allowed on this till{}",
                 "Not allowed here"},
    reason_entry{"card.scheme_not_accepted", "declined",
                 "this card scheme is not accepted here{}; ask for another card", "Card not accepted"},
    reason_entry{"card.unknown_scheme", "declined", "card not recognised{}; ask for another card",
                 "Card not accepted"},
    reason_entry{"card.expired", "declined", "the card has expired; ask for another card", "Card expired"},
    reason_entry{"card.unreadable", "failed", "the card could not be read{}; try again", "Card read error"},
    reason_entry{"card.timeout", "cancelled", "no card was presented in time", "Timed out"},
    reason_entry{"card.declined_by_card", "declined", "declined by the card's chip{}; no money was taken",
                 "Declined by card"},
    reason_entry{"card.declined_after_approval", "declined",
                 "the issuer approved but the card's chip refused{}; the approval is reversed, no money was "
                 "taken",
                 "Declined by card"},
    reason_entry{"cvm.signature_refused", "declined",
                 "the cashier did not confirm the customer's signature{}; the approval is reversed, no money "
                 "was taken",
                 "Signature not accepted"},
    reason_entry{"card.offline_not_supported", "failed",
                 "the card approved offline, which this terminal does not accept{}; try again", "Not accepted"},
    reason_entry{"card.try_another_interface", "failed",
                 "the card cannot be used contactless here{}; start again and insert or swipe it",
                 "Insert or swipe card"},
    reason_entry{"card.use_chip", "declined", "the card has a chip and was swiped{}; insert the card instead",
                 "Insert card"},
    reason_entry{"card.chip_error", "failed", "the chip could not be used{}; swipe the card instead",
                 "Chip error - swipe"},
    reason_entry{"card.cancelled", "cancelled", "cancelled on the PIN pad", "Cancelled"},
    reason_entry{"card.unprotected", "failed",
                 "the PIN pad sent card data without encryption and it was refused{}; call support",
                 "PIN pad error"},
    reason_entry{"card.key_error", "failed",
                 "the card data from the PIN pad could not be decrypted{}; call support (the pad's "
                 "key may need reloading)",
                 "PIN pad error"},
    reason_entry{"pin.cancelled", "cancelled", "the customer cancelled PIN entry; no money was taken",
                 "Cancelled"},
    reason_entry{"pin.timeout", "cancelled", "no PIN was entered in time; no money was taken", "Timed out"},
    reason_entry{"pin.required", "declined", "this card needs a PIN and it was not entered{}",
                 "PIN required"},
    reason_entry{"pin.unavailable", "failed",
                 "the PIN could not be prepared for the acquirer{}; no money was taken; call support",
                 "PIN error"},
    reason_entry{"pos.aborted", "cancelled", "aborted by the cashier{}; no money was taken", "Cancelled"},
    reason_entry{"pos.partial_declined", "cancelled",
                 "the issuer approved only part of the amount and the partial payment was not accepted; "
                 "it has been reversed, no money was taken{}",
                 "Cancelled"},
    reason_entry{"pos.prompt_cancelled", "cancelled",
                 "cancelled by the cashier's answer to a question{}; no money was taken", "Cancelled"},
    reason_entry{"refund.original_unknown", "declined",
                 "the original order{} is not known here; check the order number and date",
                 "Refund not possible"},
    reason_entry{"refund.original_not_approved", "declined",
                 "the original order{} was not approved, so there is nothing to refund",
                 "Refund not possible"},
    reason_entry{"refund.currency_mismatch", "declined",
                 "the refund is in another currency than the original payment{}", "Refund not possible"},
    reason_entry{"refund.exceeds_original", "declined",
                 "the refund is larger than what is left of the original payment{}", "Refund not possible"},
    reason_entry{"refund.original_busy", "declined",
                 "another refund of the original order{} is being processed; try again in a moment",
                 "Refund not possible"},
    reason_entry{"preauth.unknown", "declined",
                 "the pre-authorisation{} is not known here; check the order number", "Not possible"},
    reason_entry{"preauth.not_approved", "declined",
                 "the pre-authorisation{} is not approved (or was cancelled), so it cannot be used",
                 "Not possible"},
    reason_entry{"preauth.currency_mismatch", "declined",
                 "the amount is in another currency than the pre-authorisation{}", "Not possible"},
    reason_entry{"preauth.already_completed", "declined",
                 "the pre-authorisation{} has already been completed; start a new sale for more",
                 "Not possible"},
    reason_entry{"preauth.busy", "declined",
                 "another request on the pre-authorisation{} is being processed; try again in a moment",
                 "Not possible"},
    reason_entry{"completion.exceeds_authorised", "declined",
                 "the completion is larger than what was authorised{}; ask for an incremental "
                 "authorisation first",
                 "Not possible"},
    reason_entry{"cancel.done", "approved",
                 "cancelled: the payment is reversed, the customer is not charged{}", "Cancelled"},
    reason_entry{"cancel.refunded", "approved",
                 "cancelled: the sale was already settled, so its amount is refunded to the card{}",
                 "Cancelled - refunded"},
    reason_entry{"cancel.unknown_order", "declined", "no such order on this till{}; nothing was cancelled",
                 "Not cancelled"},
    reason_entry{"cancel.nothing_to_cancel", "declined",
                 "the order was not approved{}, so there is nothing to cancel", "Not cancelled"},
    reason_entry{"cancel.in_progress", "declined",
                 "the order is still being processed{}; abort it or ask for its status first",
                 "Not cancelled"},
    reason_entry{"cancel.not_possible", "declined", "the order cannot be cancelled{}", "Not cancelled"},
    reason_entry{"pad.unavailable", "failed",
                 "the PIN pad of this till is not connected; check its cable or power",
                 "PIN pad unavailable"},
    reason_entry{"pad.disconnected", "failed",
                 "the PIN pad disconnected during the transaction; no money was taken", "PIN pad error"},
    reason_entry{"pad.timeout", "failed", "the PIN pad stopped answering; no money was taken",
                 "PIN pad error"},
    reason_entry{"route.none", "declined", "no acquirer is configured for this card{}", "Card not accepted"},
    reason_entry{"acquirer.unreachable", "failed",
                 "the acquirer could not be reached{}; no money was taken, try again or take another payment",
                 "Not available"},
    reason_entry{"acquirer.timeout", "failed",
                 "no answer from the acquirer in time; the payment has been reversed, no money was taken",
                 "Not approved"},
    reason_entry{"acquirer.bad_response", "failed",
                 "the acquirer's answer could not be read; the payment has been reversed", "Not approved"},
    reason_entry{"journal.unavailable", "failed",
                 "the server could not record the transaction durably; no money was taken", "Not available"},
    reason_entry{"issuer.do_not_honour", "declined", "declined by the card issuer (do not honour)",
                 "Declined"},
    reason_entry{"issuer.insufficient_funds", "declined", "declined by the card issuer: insufficient funds",
                 "Insufficient funds"},
    reason_entry{"issuer.expired_card", "declined", "declined by the card issuer: card expired",
                 "Card expired"},
    reason_entry{"issuer.exceeds_limit", "declined",
                 "declined by the card issuer: amount over the card's limit", "Limit exceeded"},
    reason_entry{"issuer.invalid_card", "declined", "declined by the card issuer: invalid card number",
                 "Declined"},
    reason_entry{
        "issuer.lost_or_stolen", "declined",
        "declined by the card issuer: card reported lost or stolen; keep the card if it is safe to do so",
        "Declined"},
    reason_entry{"issuer.incorrect_pin", "declined", "declined by the card issuer: incorrect PIN",
                 "Incorrect PIN"},
    reason_entry{"issuer.not_permitted", "declined",
                 "declined by the card issuer: transaction not permitted for this card", "Not permitted"},
    reason_entry{"issuer.unavailable", "declined", "the card issuer is unavailable; try again later",
                 "Try again later"},
    reason_entry{"issuer.system_error", "declined",
                 "the acquirer reported a system malfunction; try again later", "Try again later"},
    reason_entry{"issuer.declined", "declined", "declined by the card issuer{}", "Declined"},
    reason_entry{"server.restarted", "failed",
                 "the server restarted before this transaction completed; no money was taken",
                 "Not completed"},
    reason_entry{"server.internal", "failed", "internal server error{}; no money was taken", "Not available"},
};

struct rc_entry {
  std::string_view rc;
  std::string_view reason;
};

// ISO 8583:1987 field 39 values as commonly used by acquirers.
constexpr std::array rc_table{
    rc_entry{"05", "issuer.do_not_honour"},  rc_entry{"51", "issuer.insufficient_funds"},
    rc_entry{"54", "issuer.expired_card"},   rc_entry{"33", "issuer.expired_card"},
    rc_entry{"61", "issuer.exceeds_limit"},  rc_entry{"65", "issuer.exceeds_limit"},
    rc_entry{"14", "issuer.invalid_card"},   rc_entry{"41", "issuer.lost_or_stolen"},
    rc_entry{"43", "issuer.lost_or_stolen"}, rc_entry{"55", "issuer.incorrect_pin"},
    rc_entry{"57", "issuer.not_permitted"},  rc_entry{"58", "issuer.not_permitted"},
    rc_entry{"91", "issuer.unavailable"},    rc_entry{"96", "issuer.system_error"},
};

}  // namespace

motivated motivate(std::string_view code, std::string_view order_no, std::string_view detail) {
  const reason_entry* e = nullptr;
  for (const auto& r : reason_table)
    if (r.code == code) e = &r;
  if (!e) {
    for (const auto& r : reason_table)
      if (r.code == "server.internal") e = &r;
  }
  std::string suffix = detail.empty() ? std::string() : fmt::format(" ({})", detail);
  std::string what = fmt::format(fmt::runtime(e->cashier), suffix);
  motivated m;
  m.outcome = std::string(e->outcome);
  m.why.code = std::string(code);
  if (code == "approved") {
    m.why.cashier_text = fmt::format("Order {}: approved", order_no);
    m.why.customer_text = fmt::format("Approved - order {}", order_no);
  } else {
    m.why.cashier_text = fmt::format("Order {}: {}", order_no, what);
    m.why.customer_text = fmt::format("{} - order {}", e->customer, order_no);
  }
  m.journal = fmt::format("order {}: {} [{}]", order_no, what, code);
  return m;
}

std::string reason_for_response_code(std::string_view rc) {
  for (const auto& e : rc_table)
    if (e.rc == rc) return std::string(e.reason);
  return "issuer.declined";
}

bool response_code_approves(std::string_view rc) {
  return rc == "00" || rc == "08" || rc == "10" || rc == "11";
}

}  // namespace eftd::server
