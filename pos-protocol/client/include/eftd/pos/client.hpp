// eftd POS client library: a small synchronous API for cash-register integrators.
//
// One client = one TCP connection = one till session. Calls block the calling thread;
// only abort() may be called from another thread while a transaction call runs.
//
// Errors: a refusal by the server comes back with the server's code (codes.hpp, e.g.
// "busy", "not_supported"). Any I/O failure is "pos.disconnected" or "pos.timeout"; after
// one, the client is unusable and the POS follows the recovery procedure of PROTOCOL.md:
// connect again, login, status_query for the order; never re-send a sale under a new
// order number.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "eftd/core/result.hpp"
#include "eftd/pos/codes.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::pos {

struct callbacks {
  // Cashier display line (also arrives as the server's heartbeat during a transaction).
  std::function<void(const status&)> on_status;
  // Returns the answer value. Unset: the prompt's default_value is answered.
  std::function<std::string(const prompt&)> on_prompt;
};

struct client_options {
  // A transaction is declared lost after this long without any message from the server
  // (the server sends a status at least every 5 s while a transaction runs).
  std::chrono::milliseconds inactivity_timeout{std::chrono::seconds(30)};
  // Deadline for the reply to a non-transaction request (login, status_query, logout...).
  std::chrono::milliseconds reply_timeout{std::chrono::seconds(10)};
  // Deadline for writing one request.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
};

// Member functions share names with message types (login, sale, ...): inside the class
// the types are spelled pos::login, pos::sale.
class client {
 public:
  // Resolves host and connects within `timeout`. Error: pos.disconnected.
  static eftd::result<std::unique_ptr<client>> connect(std::string host, std::uint16_t port,
                                                       std::chrono::milliseconds timeout,
                                                       client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // A request whose id is "" gets a fresh one ("c1", "c2", ...).
  eftd::result<login_ok> login(const pos::login& request);

  // Transactions: send the request, report status lines, answer prompts, return the
  // final result (any outcome). An error reply from the server is returned as an error
  // with the server's code.
  eftd::result<result> sale(const pos::sale& request, const callbacks& cb = {});
  eftd::result<result> refund(const pos::refund& request, const callbacks& cb = {});
  eftd::result<result> cancel(const pos::cancel& request, const callbacks& cb = {});
  // Any transaction request (sale, refund, preauth, completion, incremental, cancel,
  // balance_inquiry). Error pos.unexpected for other message types.
  eftd::result<result> transaction(const message& request, const callbacks& cb = {});

  eftd::result<order_status> query(const status_query& request);
  eftd::result<heartbeat_ack> ping();
  // Sends logout and waits for logout_ok; the connection is closed afterwards either way.
  eftd::status logout();

  // Thread-safe: asks the server to abort the running transaction for `order_no`. The
  // transaction call in progress then returns its result (normally "cancelled").
  eftd::status abort(const std::string& order_no);

  void set_inactivity_timeout(std::chrono::milliseconds t);
  bool connected() const;

  struct impl;

 private:
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::pos
