// eftd POS client library, asynchronous API: for a POS whose UI thread must never block.
//
// Threading model: every async_client owns one background I/O thread, started by connect()
// and joined by the destructor. Methods may be called from any thread (also from inside a
// callback) and never block on the network: they queue the request and return. Every
// callback (status, prompt, done...) runs on the I/O thread, one at a time, in the order the
// server's messages arrived; a callback that blocks delays all others of this client, so hand
// long work (e.g. waiting for the cashier) to another thread and come back with answer().
//
// Completion: each request's `done` is called exactly once: with the reply, with the server's
// error (its code, codes.hpp), or with pos.disconnected / pos.timeout. After either of those the
// connection is closed: every request still pending and every later one completes with an
// error, and the POS follows the recovery procedure of PROTOCOL.md (connect again, login,
// status_query the order; never re-send a sale under a new order number).
//
// Timeouts as in the sync client (client_options): a transaction fails with pos.timeout after
// inactivity_timeout without any message from the server; other requests after reply_timeout.
//
// Destruction closes the connection at once and joins the I/O thread. Requests still pending
// are abandoned: their `done` is NOT called, and once the destructor has returned no callback
// of this client runs any more. A transaction running on the server is not aborted by that
// (PROTOCOL.md, section 7): ask for its outcome with status_query on a new connection.
// Destroying the client from inside one of its own callbacks is allowed: the thread then ends
// right after that callback returns, without calling any other.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "eftd/core/result.hpp"
#include "eftd/pos/client.hpp"
#include "eftd/pos/codes.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::pos {

// Completion of one request.
template <class T>
using on_done = std::function<void(eftd::result<T>)>;

struct async_callbacks {
  // Cashier display line. Also the acknowledgement of abort() (stage "aborting").
  std::function<void(const status&)> on_status;
  // A question for the cashier. Answer with async_client::answer(p.prompt_id, value), now or
  // later, from any thread; the server takes p.default_value when p.timeout_ms passes first.
  // Unset: the client answers default_value at once.
  std::function<void(const prompt&)> on_prompt;
  // The server refused an answer: pos.bad_field (not a valid value: the prompt stays open,
  // answer again) or unknown_prompt (it is not open any more). The transaction goes on.
  std::function<void(const error&)> on_answer_rejected;
};

class async_client {
 public:
  // Connects (and with options.tls completes the TLS handshake) on the calling thread within
  // `timeout`, then starts the I/O thread. Errors as client::connect.
  static eftd::result<std::unique_ptr<async_client>> connect(std::string host, std::uint16_t port,
                                                             std::chrono::milliseconds timeout,
                                                             client_options options = {});
  ~async_client();
  async_client(const async_client&) = delete;
  async_client& operator=(const async_client&) = delete;

  // A request whose id is "" gets a fresh one ("a1", "a2", ...).
  void login(const pos::login& request, on_done<login_ok> done);

  // Transactions: status lines and prompts go to `cb` while the transaction runs; `done` gets
  // the final result (any outcome) or the server's refusal as an error.
  void start_sale(const pos::sale& request, async_callbacks cb, on_done<result> done);
  void start_refund(const pos::refund& request, async_callbacks cb, on_done<result> done);
  void start_cancel(const pos::cancel& request, async_callbacks cb, on_done<result> done);
  void start_balance_inquiry(const pos::balance_inquiry& request, async_callbacks cb, on_done<result> done);
  // Any transaction request; pos.unexpected (through done) for other message types.
  void start_transaction(const message& request, async_callbacks cb, on_done<result> done);

  // Allowed while a transaction runs (e.g. status_query for another order).
  void query(const status_query& request, on_done<order_status> done);
  void totals(const pos::totals& request, on_done<totals_report> done);
  void ping(on_done<heartbeat_ack> done);
  // Sends logout; done is ok on logout_ok or when the server simply closes the connection.
  // The connection is closed afterwards either way.
  void logout(std::function<void(eftd::status)> done);

  // Answers an open prompt. Returns pos.disconnected when the connection is already closed;
  // a refusal by the server arrives through on_answer_rejected.
  eftd::status answer(const std::string& prompt_id, const std::string& value);

  // Asks the server to abort the running transaction of `order_no`; its own `done` then gets
  // the final result ("cancelled" when no money moved). `done` (optional) is ok once the server
  // acknowledged (a status with stage "aborting") or the transaction ended, or gets the
  // server's refusal (unknown_order: nothing of that order is running).
  void abort(const std::string& order_no, std::function<void(eftd::status)> done = {});

  // False once the connection was closed (I/O failure, timeout, logout).
  bool connected() const;

  struct impl;

 private:
  explicit async_client(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace eftd::pos
