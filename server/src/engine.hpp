// The transaction engine: one coroutine per transaction that reads like the steps of a sale
// (ARCHITECTURE.md "Data flow of one chip sale"), with a deadline on every await and the
// write-ahead rule: the intent is durable before anything goes to the acquirer, and the
// answer is durable before the POS hears it.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <string>

#include "context.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::server {

struct sale_request {
  std::string request_id;
  std::string till_id;
  std::string operator_id;
  pos::sale sale;
};

// Runs a sale to its final result. `to_pos` receives status lines while it runs; the final
// pos::result is returned (and already journaled). Never throws.
boost::asio::awaitable<pos::result> run_sale(server_context& ctx, sale_request req,
                                             std::function<void(pos::message)> to_pos);

// The POS-facing result of a journaled order (for repeated requests and status queries).
pos::result result_from_journal(const server_context& ctx, const journal::order_view& v);
// order state -> order_status state word.
std::string status_word(std::string_view order_state);

// Today's business date (YYYY-MM-DD, local time) for a Unix-ms instant.
std::string business_date_of(std::int64_t now_ms);

// Start-up recovery: reverse every acquirer request that has no recorded final answer.
void start_recovery(server_context& ctx);

}  // namespace eftd::server
