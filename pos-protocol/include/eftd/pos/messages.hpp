// POS protocol message types (see pos-protocol/PROTOCOL.md for the wire format).
//
// Plain value types, one per message "type" on the wire. They carry no behaviour and no
// I/O; eftd::pos::decode / encode (codec.hpp) convert them from/to one NDJSON line.
// Amounts are integers in minor units of `currency` (ISO 4217 alpha, e.g. "PLN").
// Optional string fields are "" when absent, optional numbers 0; the codec omits them
// from the wire in that case and fills them in with those defaults when absent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace eftd::pos {

// Protocol version spoken by this codec: the "v" of every message and login.version.
inline constexpr int protocol_version = 1;

// Why a transaction was declined / failed / cancelled: a stable code plus one text for the
// cashier (POS screen) and one for the customer (pad display, receipt).
struct reason {
  std::string code;  // e.g. "issuer.insufficient_funds", "limit.amount", "card.removed"
  std::string cashier_text;
  std::string customer_text;
  friend bool operator==(const reason&, const reason&) = default;
};

// Receipt text, one entry per printed line (already formatted to the receipt width).
struct receipt {
  std::vector<std::string> merchant;
  std::vector<std::string> customer;
  friend bool operator==(const receipt&, const receipt&) = default;
};

// ---------------------------------------------------------------- POS -> server (requests)
// Every request carries "id": a client-chosen request id that the server echoes in the reply
// (login_ok, result, order_status, error, heartbeat_ack, logout_ok).

// Opens a till session. Must be the first request on a connection.
struct login {
  std::string id;
  std::string till_id;                    // required, configured on the server
  std::string operator_id;                // optional: cashier number
  std::string client;                     // optional: POS software name/version, for the log
  int version = protocol_version;         // highest protocol version the POS speaks
  std::vector<std::string> capabilities;  // optional: features the POS supports (e.g. "prompt")
  friend bool operator==(const login&, const login&) = default;
};

struct logout {
  std::string id;
  friend bool operator==(const logout&, const logout&) = default;
};

// Payment. order_no is the POS order number: the idempotency key of the transaction
// (re-sending the same sale with the same order_no returns the stored result / progress).
struct sale {
  std::string id;
  std::string order_no;
  std::string currency;
  std::int64_t amount = 0;    // total to charge, including cashback and tip
  std::int64_t cashback = 0;  // optional
  std::int64_t tip = 0;       // optional
  // Optional, YYYY-MM-DD: on a retry, the business_date of the first reply for this order, so
  // a retry after midnight still finds it (without it eftd matches (till, order) within 48 h).
  std::string business_date;
  friend bool operator==(const sale&, const sale&) = default;
};

struct refund {
  std::string id;
  std::string order_no;
  std::string original_order_no;  // optional: the order being refunded, if known
  std::string currency;
  std::int64_t amount = 0;
  std::string original_business_date;  // optional: business date of the original order
  std::string business_date;           // optional: on a retry, as for sale
  friend bool operator==(const refund&, const refund&) = default;
};

struct preauth {
  std::string id;
  std::string order_no;
  std::string currency;
  std::int64_t amount = 0;
  friend bool operator==(const preauth&, const preauth&) = default;
};

struct completion {
  std::string id;
  std::string order_no;
  std::string preauth_order_no;
  std::string currency;
  std::int64_t amount = 0;
  friend bool operator==(const completion&, const completion&) = default;
};

struct incremental {
  std::string id;
  std::string order_no;
  std::string preauth_order_no;
  std::string currency;
  std::int64_t amount = 0;
  friend bool operator==(const incremental&, const incremental&) = default;
};

// Cancel a completed order (eftd decides void/reversal vs. refund).
struct cancel {
  std::string id;
  std::string order_no;
  std::string business_date;  // optional, YYYY-MM-DD; "" = current business date
  friend bool operator==(const cancel&, const cancel&) = default;
};

struct balance_inquiry {
  std::string id;
  std::string order_no;
  friend bool operator==(const balance_inquiry&, const balance_inquiry&) = default;
};

// "What happened to order X?" — the recovery request after any timeout or disconnect.
struct status_query {
  std::string id;
  std::string order_no;
  std::string business_date;  // optional, YYYY-MM-DD; "" = current business date
  friend bool operator==(const status_query&, const status_query&) = default;
};

// Answer to a prompt of the running transaction.
struct answer {
  std::string id;
  std::string prompt_id;
  std::string value;
  friend bool operator==(const answer&, const answer&) = default;
};

// The cashier aborts the running transaction (wire type "abort"). The running transaction
// ends with its own result (outcome "cancelled" if the abort was still possible).
struct abort_tx {
  std::string id;
  std::string order_no;
  friend bool operator==(const abort_tx&, const abort_tx&) = default;
};

struct heartbeat {
  std::string id;
  friend bool operator==(const heartbeat&, const heartbeat&) = default;
};

// Totals of this till for one business date (the shift report printed at the end of a shift).
struct totals {
  std::string id;
  std::string business_date;  // optional, YYYY-MM-DD; "" = current business date
  friend bool operator==(const totals&, const totals&) = default;
};

// ---------------------------------------------------------------- server -> POS

struct login_ok {
  std::string id;
  std::string server;                     // server node name (for the log / failover display)
  std::string business_date;              // YYYY-MM-DD
  int version = protocol_version;         // version chosen for this session
  std::vector<std::string> capabilities;  // e.g. "sale", "status_query", "abort"
  friend bool operator==(const login_ok&, const login_ok&) = default;
};

// Cashier display line while a transaction runs; also the server's heartbeat during a
// transaction (sent at least every 5 s).
struct status {
  std::string id;  // optional: id of the request being served
  std::string order_no;
  std::string stage;  // optional machine-readable stage, e.g. "card", "pin", "authorizing"
  std::string text;
  friend bool operator==(const status&, const status&) = default;
};

// A question for the cashier (or customer at the POS); answered with `answer`.
struct prompt {
  std::string id;  // optional: id of the request being served
  std::string prompt_id;
  std::string order_no;
  std::string kind;  // yes_no | menu | numeric | text
  std::string text;
  std::vector<std::string> options;  // optional: for menu (values to answer with)
  std::uint32_t timeout_ms = 0;      // optional: 0 = server default
  std::string default_value;         // optional: taken when the prompt times out
  friend bool operator==(const prompt&, const prompt&) = default;
};

// Final answer to a transaction request (sale, refund, cancel, ...).
struct result {
  std::string id;
  std::string order_no;
  std::string business_date;
  std::string outcome;  // approved | declined | cancelled | failed
  std::string currency;
  std::int64_t amount = 0;           // requested amount
  std::int64_t approved_amount = 0;  // may be lower on partial approval
  std::string auth_code;
  std::string masked_pan;  // never the clear PAN: e.g. "************1234"
  std::string scheme;      // visa | mastercard | ...
  std::string entry_mode;  // chip | contactless | swipe | fallback | manual
  std::string terminal_id;
  std::string stan;
  std::string rrn;
  reason why;                              // wire key "reason"; empty when approved
  std::map<std::string, std::string> emv;  // AID, app label, TVR, TSI, ARC, CVM result
  receipt rcpt;                            // wire key "receipt"
  std::optional<std::int64_t> balance;     // balance_inquiry: available balance, minor units
  friend bool operator==(const result&, const result&) = default;
};

// Answer to status_query.
struct order_status {
  std::string id;
  std::string order_no;
  std::string business_date;
  std::string state;  // approved | declined | cancelled | failed | reversed | in_progress | unknown
  std::optional<result> last_result;  // the stored final result, when there is one
  friend bool operator==(const order_status&, const order_status&) = default;
};

// Any request can be answered by an error instead of its normal reply. code is one of
// eftd::pos::codes (codes.hpp).
struct error {
  std::string id;  // "" when the request id could not be read
  std::string code;
  std::string message;
  std::string order_no;       // optional: order concerned
  std::string active_server;  // optional: with code "not_active", where the POS should go
  friend bool operator==(const error&, const error&) = default;
};

struct heartbeat_ack {
  std::string id;
  friend bool operator==(const heartbeat_ack&, const heartbeat_ack&) = default;
};

// Reply to logout; the server closes the connection after sending it.
struct logout_ok {
  std::string id;
  friend bool operator==(const logout_ok&, const logout_ok&) = default;
};

// One line of a totals report: how many transactions of one kind ended with one outcome, and
// their amount (approved amounts for "approved", requested amounts otherwise).
struct totals_line {
  std::string kind;     // sale | refund | cancel | balance_inquiry | ...
  std::string outcome;  // approved | declined | cancelled | failed | reversed
  std::string currency;
  std::int64_t count = 0;
  std::int64_t amount = 0;
  friend bool operator==(const totals_line&, const totals_line&) = default;
};

// Answer to totals.
struct totals_report {
  std::string id;
  std::string till_id;
  std::string business_date;
  std::vector<totals_line> lines;  // sorted by kind, outcome, currency
  // Net amount per currency that moved to the merchant: approved sales minus approved refunds
  // (reversed and cancelled orders count nothing).
  std::map<std::string, std::int64_t> net;
  friend bool operator==(const totals_report&, const totals_report&) = default;
};

using message =
    std::variant<login, logout, sale, refund, preauth, completion, incremental, cancel, balance_inquiry,
                 status_query, answer, abort_tx, heartbeat, totals, login_ok, status, prompt, result,
                 order_status, error, heartbeat_ack, logout_ok, totals_report>;

// Wire "type" of each message ("abort" for abort_tx), e.g. type_name(sale{}) == "sale".
std::string_view type_name(const message& m);

// True for POS -> server messages.
bool is_request(const message& m);

// The "id" field of any message ("" when it has none set).
const std::string& id_of(const message& m);

}  // namespace eftd::pos
