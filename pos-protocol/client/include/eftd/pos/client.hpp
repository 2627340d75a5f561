// eftd POS client library: a small synchronous API for cash-register integrators (the
// asynchronous one is eftd/pos/async_client.hpp).
//
// One client = one TCP connection (plaintext, or TLS with client_options::tls) = one till
// session. Calls block the calling thread; only abort() may be called from another thread
// while a transaction call runs.
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
#include <optional>
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

// TLS for the POS connection (production: PROTOCOL.md, Transport). TLS 1.2 is the minimum;
// the server's certificate is always verified against ca_file.
struct tls_options {
  // PEM file with the CA certificate(s) the server's certificate must chain to. "" = the
  // system's default CA store.
  std::string ca_file;
  // PEM client certificate of this till (its subject CN is the till id the server expects at
  // login), optionally followed by intermediates. "" = present none.
  std::string cert_file;
  // PEM private key of cert_file; "" = the key is in cert_file. Must not be encrypted.
  std::string key_file;
  // Name the server's certificate must carry (DNS name, or an IP address literal matched
  // against its IP SANs). "" = the host given to connect().
  std::string server_name;
  // Only for lab set-ups with certificates that name no usable host: the chain is still
  // verified, the name is not.
  bool check_server_name = true;
};

struct client_options {
  // A transaction is declared lost after this long without any message from the server
  // (the server sends a status at least every 5 s while a transaction runs).
  std::chrono::milliseconds inactivity_timeout{std::chrono::seconds(30)};
  // Deadline for the reply to a non-transaction request (login, status_query, logout...).
  std::chrono::milliseconds reply_timeout{std::chrono::seconds(10)};
  // Deadline for writing one request.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
  // Set: TLS on the connection, handshake within connect()'s timeout. A failed handshake is
  // pos.disconnected with a message "TLS handshake failed: <why>".
  std::optional<tls_options> tls;
  // Hot standby (server/HA.md): the highest fencing epoch this POS has seen, from any server
  // (client::epoch() of the previous connection). A message with a lower one comes from a
  // deposed node and fails the call with pos.stale_epoch (connection closed).
  std::uint64_t min_epoch = 0;
};

// Member functions share names with message types (login, sale, ...): inside the class
// the types are spelled pos::login, pos::sale.
class client {
 public:
  // Resolves host and connects (and with options.tls completes the TLS handshake) within
  // `timeout`. Errors: pos.disconnected (also for TLS set-up or handshake failures),
  // pos.timeout.
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
  // The result carries `balance` (minor units) when the inquiry was approved.
  eftd::result<result> balance_inquiry(const pos::balance_inquiry& request, const callbacks& cb = {});
  // Any transaction request (sale, refund, preauth, completion, incremental, cancel,
  // balance_inquiry). Error pos.unexpected for other message types.
  eftd::result<result> transaction(const message& request, const callbacks& cb = {});

  eftd::result<order_status> query(const status_query& request);
  // Totals of this till for a business date (the shift report).
  eftd::result<totals_report> totals(const pos::totals& request);
  eftd::result<heartbeat_ack> ping();
  // Sends logout and waits for logout_ok; the connection is closed afterwards either way.
  eftd::status logout();

  // Thread-safe: asks the server to abort the running transaction for `order_no`. The
  // transaction call in progress then returns its result (normally "cancelled").
  eftd::status abort(const std::string& order_no);

  void set_inactivity_timeout(std::chrono::milliseconds t);
  bool connected() const;
  // The highest fencing epoch seen on this connection or given as options.min_epoch (0: the
  // server is a single node).
  std::uint64_t epoch() const;

  struct impl;

 private:
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::pos
