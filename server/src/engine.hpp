// The transaction engine: one coroutine per transaction that reads like the steps of a sale
// (ARCHITECTURE.md "Data flow of one chip sale"), with a deadline on every await and the
// write-ahead rule: the intent is durable before anything goes to the acquirer, and the
// answer is durable before the POS hears it.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <string>
#include <vector>

#include "context.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::server {

class tx_control;

// A card transaction as the POS asked for it. kind: "sale", "refund" or "balance_inquiry".
struct tx_request {
  std::string request_id;
  std::string till_id;
  std::string operator_id;
  std::string kind = "sale";
  std::string order_no;
  std::string currency;
  std::int64_t amount = 0;  // 0 for a balance inquiry
  std::int64_t cashback = 0;
  std::int64_t tip = 0;
  std::string business_date;            // a retry's business date ("" = within 48 h)
  std::string original_order_no;        // refund: the payment refunded, if the POS names it
  std::string original_business_date;   // refund: its business date, if known
  std::shared_ptr<tx_control> control;  // abort and prompt answers from the POS session
};

tx_request to_tx_request(const pos::sale& m);
tx_request to_tx_request(const pos::preauth& m);
tx_request to_tx_request(const pos::refund& m);
tx_request to_tx_request(const pos::balance_inquiry& m);

// Runs a card transaction to its final result. `to_pos` receives status lines and prompts
// while it runs; the final pos::result is returned (and already journaled). Never throws.
boost::asio::awaitable<pos::result> run_card_transaction(server_context& ctx, tx_request req,
                                                         std::function<void(pos::message)> to_pos);

// A request that builds on an approved pre-authorisation and needs no card: "completion"
// (the final amount, sent to the acquirer as an 0220 advice through the store-and-forward
// queue) or "incremental" (more on the authorisation, an online 0100). Both name the
// pre-authorisation by its order number.
struct follow_up_request {
  std::string request_id;
  std::string till_id;
  std::string operator_id;
  std::string kind;  // "completion" or "incremental"
  std::string order_no;
  std::string preauth_order_no;
  std::string currency;
  std::int64_t amount = 0;
};
follow_up_request to_follow_up(const pos::completion& m);
follow_up_request to_follow_up(const pos::incremental& m);

boost::asio::awaitable<pos::result> run_follow_up(server_context& ctx, follow_up_request req);

// "Cancel order X": before settlement the approved payment is reversed (0400). The result's
// outcome is approved when the cancel went through, declined with a reason when there is
// nothing to cancel. Repeating a cancel returns the same answer and never reverses twice.
boost::asio::awaitable<pos::result> run_cancel(server_context& ctx, std::string request_id,
                                               std::string till_id, pos::cancel req);

// Totals of a till for one business date.
pos::totals_report till_totals(server_context& ctx, const std::string& till_id,
                               const std::string& business_date);

// The POS-facing result of a journaled order (for repeated requests and status queries).
pos::result result_from_journal(const server_context& ctx, const journal::order_view& v);
// order state -> order_status state word.
std::string status_word(std::string_view order_state);

// Today's business date (YYYY-MM-DD, local time) for a Unix-ms instant.
std::string business_date_of(std::int64_t now_ms);

// What in-doubt recovery resolves: acquirer requests without a recorded answer (reversed
// through the store-and-forward queue) and orders left in progress with nothing owed to an
// acquirer (marked failed). Taken before the node serves anything, so that nothing this run
// starts is mistaken for what the previous run, or the old active, left behind.
struct recovery_plan {
  std::vector<journal::acquirer_message_row> in_doubt;
  std::vector<journal::order_view> interrupted;
};
recovery_plan plan_recovery(server_context& ctx);

// Start-up recovery: starts the reversal queues, then resolves the plan (all its journal
// writes submitted together, waited for). Blocks until they are durable.
void start_recovery(server_context& ctx, recovery_plan plan);
// Both steps at once, for a node that serves nothing yet (a single node before its listeners run).
void start_recovery(server_context& ctx);

}  // namespace eftd::server
