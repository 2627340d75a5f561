// Store-and-forward reversals (RELIABILITY.md, "Timeout reversal").
//
// A reversal owed to an acquirer is journaled as its own acquirer message — mti 0400, its own
// STAN, original_msg_id naming the request it reverses, state 'pending' — in the same batch as
// the decision that makes it owed (a timeout, an abort after approval, a cancel). One queue per
// acquirer then sends the pending reversals oldest first: 0400 the first time, 0401 (same STAN,
// same transmission time) for each repeat, with capped exponential backoff, until:
//   acknowledged  the acquirer answered (any code but a retryable one): the original request
//                 and its order become 'reversed';
//   parked        the acquirer refuses the message's format, or it cannot be built: kept for
//                 people, and the queue goes on with the next one (a poison record never blocks);
//   expired       not acknowledged within the acquirer's reversal_expiry_ms: raised for people.
// Attempts, the next attempt's time and the last error are journaled with every try, so the
// queue resumes after a restart where it stopped. A late answer to the original request never
// changes an outcome: the link drops responses that match nothing in flight.
#pragma once

#include <memory>
#include <string>

#include "acquirer_gateway.hpp"
#include "context.hpp"

namespace eftd::server {

// Adds to `b` the reversal of `original` (journaled as `original_msg_id`), owed by operation
// `op_id` (the payment, or a cancel), first sent at `first_attempt_ms`. Returns its msg_id.
std::string queue_reversal(server_context& ctx, journal::batch& b, const acquirer_request& original,
                           const std::string& original_msg_id, const std::string& op_id,
                           const std::string& currency, std::int64_t now_ms, std::int64_t first_attempt_ms);

// Wakes the acquirer's queue after a batch with queue_reversal() was committed.
void notify_reversals(server_context& ctx, const std::string& acquirer);

// Wakes the queue and waits (at most `deadline`) until it has made one attempt at reversal
// `msg_id`, whatever its outcome: for a caller that wants to answer with the acquirer's
// acknowledgement in the usual case. The reversal stays queued if that attempt fails.
boost::asio::awaitable<void> send_reversal_now(server_context& ctx, const std::string& acquirer,
                                               const std::string& msg_id, std::chrono::milliseconds deadline);

// Starts one queue per configured acquirer (after create_links); each resumes the reversals
// the journal holds as pending.
void start_reversal_queues(server_context& ctx);
void stop_reversal_queues(server_context& ctx);

// The original request of a journaled acquirer message, as a reversal must repeat it.
acquirer_request request_from_message(const server_context& ctx, const journal::acquirer_message_row& m,
                                      std::string_view op_kind);

}  // namespace eftd::server
