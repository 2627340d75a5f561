// Read-only queries over the journal.
//
// A reader owns its own read-only SQLite connection; WAL lets it read while the writer
// commits. A reader is not thread-safe: open one per thread. Rows carry the masked PAN and
// the search hash only; the ciphertext is returned only by operation_pan(), on request.
//
// Error codes: journal.open_failed, journal.schema_too_new, journal.schema_outdated (the
// database was never migrated to this code's version: open a writer first),
// journal.query_failed, journal.invalid_argument.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/journal/records.hpp"
#include "eftd/journal/replication.hpp"

namespace eftd::journal {

struct order_row {
  std::string order_id;
  std::string merchant_id;
  std::string store_id;
  std::string till_id;
  std::string order_no;
  std::string business_date;
  std::string kind;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string state;
  std::optional<std::string> result_code;
  std::optional<std::string> reason_cashier;
  std::optional<std::string> reason_customer;
  std::optional<std::int64_t> approved_amount_minor;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

struct operation_row {
  std::string op_id;
  std::string order_id;
  std::optional<std::string> parent_op_id;
  std::string kind;
  std::string state;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::optional<std::string> entry_mode;
  std::optional<std::string> scheme;
  std::optional<std::string> pan_masked;
  std::optional<std::string> pan_hash;
  std::optional<std::string> auth_code;
  std::optional<std::string> response_code;
  std::optional<std::string> result_code;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::optional<std::string> emv_data;  // EMV receipt data (JSON), chip and contactless payments
};

struct acquirer_message_row {
  std::string msg_id;
  std::string op_id;
  std::optional<std::string> original_msg_id;
  std::string acquirer;
  std::string terminal_id;
  std::string mti;
  std::uint32_t stan = 0;
  std::string local_datetime;
  std::optional<std::string> rrn;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string state;
  std::optional<std::string> response_code;
  std::optional<std::string> auth_code;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::int64_t attempts = 0;                    // queued messages: sends so far
  std::optional<std::int64_t> next_attempt_ms;  // queued messages: next send
  std::optional<std::string> last_error;
  std::optional<std::int64_t> batch_no;  // its terminal's batch (schema v6)
};

struct event_row {
  std::int64_t event_id = 0;
  std::string order_id;
  std::optional<std::string> op_id;
  std::int64_t at_ms = 0;
  journal::actor actor = actor::server;
  std::string kind;
  std::string reason;
  std::string detail;
};

// Everything needed to explain one transaction. Children are in creation order; events in
// the order they were journaled.
struct order_view {
  order_row order;
  std::vector<operation_row> operations;
  std::vector<acquirer_message_row> messages;
  std::vector<event_row> events;
};

// Every set field narrows the result (AND). Date bounds are inclusive 'YYYY-MM-DD';
// amount and created bounds are inclusive. scheme and pan_hash match any operation of the order.
struct order_filter {
  std::optional<std::string> business_date_from;
  std::optional<std::string> business_date_to;
  std::optional<std::string> merchant_id;
  std::optional<std::string> store_id;
  std::optional<std::string> till_id;
  std::optional<std::string> order_no;
  std::optional<std::string> kind;
  std::optional<std::string> state;
  std::optional<std::string> result_code;
  std::optional<std::string> scheme;
  std::optional<std::string> pan_hash;
  std::optional<std::int64_t> amount_min;
  std::optional<std::int64_t> amount_max;
  std::optional<std::int64_t> created_from_ms;
  std::optional<std::int64_t> created_to_ms;
  std::uint32_t limit = 100;  // 1..10000
  std::uint32_t offset = 0;
  bool newest_first = false;  // default: oldest first (created_ms, then order_id)
};

// End of day (server/src/settlement.hpp).
struct settlement_batch_row {
  std::string batch_id;
  std::string acquirer;
  std::string terminal_id;
  std::int64_t batch_no = 0;
  std::string business_date;
  std::string card_acceptor_id;
  std::string state;  // batch_states
  settlement_totals totals;
  std::int64_t in_doubt = 0;
  std::optional<std::string> response_code;
  std::int64_t uploads_total = 0;
  std::int64_t uploads_done = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

struct settlement_step_row {
  std::string step_id;
  std::string batch_id;
  std::int64_t seq = 0;
  std::string kind;
  std::string mti;
  std::string processing_code;
  std::uint32_t stan = 0;
  std::int64_t at_ms = 0;
  std::optional<std::string> subject_msg_id;
  std::string state;
  std::optional<std::string> response_code;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

// A financial request (MTI x2xx: 0200, 0220, ...) of an order of one business date, with what
// the batch rules need from its order and operation.
struct settlement_candidate {
  acquirer_message_row message;
  std::string order_kind;
  std::string merchant_id;
  std::optional<std::int64_t> approved_amount_minor;  // the order's
  std::optional<std::string> entry_mode;              // the operation's
  std::string op_kind;                                // the operation's ("refund": a credit)
  bool reversal_acknowledged = false;                 // a 04xx naming it was acknowledged
};

// A batch to close: an existing one (batch_no >= 1), or the terminal's open batch (0), to be
// written under `business_date` as its label.
struct settlement_key {
  std::string acquirer;
  std::string terminal_id;
  std::string business_date;
  std::int64_t batch_no = 0;
  friend bool operator==(const settlement_key&, const settlement_key&) = default;
  friend auto operator<=>(const settlement_key&, const settlement_key&) = default;
};

// The audit log (records.hpp: audit_appended), as stored.
struct audit_row {
  std::int64_t audit_id = 0;  // order of journaling
  std::int64_t at_ms = 0;
  std::string actor;
  std::string source;
  std::string action;
  std::string subject;
  std::string detail;
  std::string outcome;
};

// Every set field narrows the result (AND); time bounds are inclusive.
struct audit_filter {
  std::optional<std::int64_t> since_ms;
  std::optional<std::int64_t> until_ms;
  std::optional<std::string> actor;
  std::optional<std::string> action;
  std::uint32_t limit = 1000;  // 1..100000
  bool newest_first = false;   // default: oldest first (audit_id)
};

// An outcome notification (schema v10, server/NOTIFY.md). payload: the JSON body as POSTed.
struct notification_row {
  std::string notification_id;
  std::string order_id;
  std::string event;
  std::string order_state;  // the order state it announces
  std::string payload;
  std::int64_t created_ms = 0;
  std::string state;  // notification_states
  std::int64_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::optional<std::int64_t> expires_ms;  // set by an operator's retry; else created + max age
  std::optional<std::string> last_error;
  std::optional<std::int64_t> delivered_ms;
  std::int64_t updated_ms = 0;
  // The [[notify]] endpoint's name (schema v14); "" = written before v14 or by an unnamed
  // endpoint (the first configured one delivers those).
  std::string endpoint;
};

struct notification_filter {
  std::optional<std::string> state;
  std::optional<std::string> order_id;
  std::optional<std::string> endpoint;
  std::uint32_t limit = 1000;  // 1..100000
  bool newest_first = true;
};

// A value of a report query (reader::report_query): NULL, integer, real or text. There is no
// BLOB alternative: the only BLOB in the journal is the PAN ciphertext.
using report_value = std::variant<std::monostate, std::int64_t, double, std::string>;
using report_record = std::vector<report_value>;

class reader {
 public:
  static result<reader> open(const std::filesystem::path& db);

  reader(reader&&) noexcept;
  reader& operator=(reader&&) noexcept;
  ~reader();

  // The order a POS means by (till, order number, business date): the idempotency key.
  result<std::optional<order_row>> find_order(const std::string& till_id, const std::string& order_no,
                                              const std::string& business_date);

  // Orders with this till and order number created at or after since_ms, newest first:
  // idempotency when the POS does not send a business date (callers pass now - 48 h).
  result<std::vector<order_row>> find_orders_recent(const std::string& till_id, const std::string& order_no,
                                                    std::int64_t since_ms);

  result<std::optional<order_view>> order_detail(const std::string& order_id);

  result<std::vector<order_row>> list_orders(const order_filter& filter);

  // A counter that was never set reads as 0.
  result<std::int64_t> counter(const std::string& name);

  // Every pad eftd has seen, by pad id.
  result<std::vector<pad_health_set>> pad_health();

  // Acquirer messages without a final outcome, oldest first: state intent or sent (the
  // answer never got recorded), timeout or reversal_pending (a reversal is still owed).
  // Start-up recovery reverses or completes each of them.
  result<std::vector<acquirer_message_row>> in_doubt_messages();

  // Hot standby (replication.hpp). The log's position as committed (history, newest entry).
  result<repl_position> replication_position();
  // Entries with seq > after, in order, at most max_entries and about max_bytes of payload
  // (at least one entry when there is one).
  result<std::vector<repl_entry>> replication_entries(std::uint64_t after, std::size_t max_entries,
                                                      std::size_t max_bytes);
  // The epoch of entry seq, and the oldest entry kept (nullopt: none). A standby at
  // (history, seq, epoch) can catch up here only if history matches, the entry at seq has the
  // same epoch (or seq is 0 and nothing was trimmed) and the oldest kept entry is <= seq + 1.
  result<std::optional<std::uint64_t>> replication_epoch_at(std::uint64_t seq);
  result<std::optional<std::uint64_t>> replication_first_seq();
  // The newest shared file of that name ("keystore", "registry"; records.hpp), if any.
  result<std::optional<shared_file_set>> shared_file(const std::string& name);

  // The store-and-forward queue of one acquirer: messages in state 'pending', oldest first.
  result<std::vector<acquirer_message_row>> queued_messages(const std::string& acquirer);

  // The reversals (mti 04xx rows) queued for one original request, in any state.
  result<std::vector<acquirer_message_row>> reversals_of(const std::string& original_msg_id);

  // One acquirer message by id.
  result<std::optional<acquirer_message_row>> message(const std::string& msg_id);

  // One operation by id (e.g. to find the order of an in-doubt acquirer message).
  result<std::optional<operation_row>> operation(const std::string& op_id);

  // What has been refunded against a payment operation: the approved amounts of refund orders
  // whose refund operation names it as parent, plus the requested amounts of refunds still in
  // progress (they may yet be approved). Refund limits are checked against this.
  result<std::int64_t> refunded_amount(const std::string& payment_op_id);

  // The same sum for follow-up orders of one kind ("incremental", "completion") whose
  // operation names `parent_op_id`: approved amounts plus requested amounts still in progress.
  result<std::int64_t> follow_up_amount(const std::string& parent_op_id, std::string_view order_kind);

  // The approved follow-ups of one kind naming `parent_op_id` (e.g. the incrementals of a
  // pre-authorisation): each order with its answered request, oldest first.
  struct follow_up_row {
    std::string order_id;
    std::string order_no;
    acquirer_message_row message;
  };
  result<std::vector<follow_up_row>> approved_follow_ups(const std::string& parent_op_id,
                                                         std::string_view order_kind);

  // End of day. The batch of one key, if any.
  result<std::optional<settlement_batch_row>> settlement_batch(const std::string& acquirer,
                                                               const std::string& terminal_id,
                                                               const std::string& business_date);
  // Every batch of a business date (any state), by acquirer and terminal id.
  result<std::vector<settlement_batch_row>> settlement_batches(const std::string& business_date);
  // A batch's steps in order (seq).
  result<std::vector<settlement_step_row>> settlement_steps(const std::string& batch_id);
  // The financial requests of a business date's orders, oldest first; unset filters match all.
  result<std::vector<settlement_candidate>> settlement_candidates(
      const std::string& business_date, const std::optional<std::string>& acquirer,
      const std::optional<std::string>& terminal_id);
  // What a catch-up close must do: every unfinished batch (any date), plus the open batch of
  // each (acquirer, terminal) holding financial requests of business dates before
  // `before_date` (batch_no 0, labelled with the latest such date).
  result<std::vector<settlement_key>> settlement_keys_to_close(const std::string& before_date);

  // Batch numbers (schema v6). The batch numbered `batch_no` of a terminal, if written.
  result<std::optional<settlement_batch_row>> settlement_batch_no(const std::string& acquirer,
                                                                  const std::string& terminal_id,
                                                                  std::int64_t batch_no);
  // The number new messages of the terminal get: one above the last batch written.
  result<std::int64_t> open_batch_no(const std::string& acquirer, const std::string& terminal_id);
  // The financial requests (x2xx) of one batch of a terminal, oldest first.
  result<std::vector<settlement_candidate>> batch_candidates(const std::string& acquirer,
                                                             const std::string& terminal_id,
                                                             std::int64_t batch_no);
  // Terminals whose open batch holds financial requests of sale, refund or completion orders
  // (any business date); unset acquirer: every acquirer. Keys have batch_no 0.
  result<std::vector<settlement_key>> open_batch_keys(const std::optional<std::string>& acquirer,
                                                      const std::string& label);

  // The stored (encrypted) PAN of an operation, only when explicitly asked for.
  result<std::optional<stored_pan>> operation_pan(const std::string& op_id);
  // What an offline approval's advice carries besides the PAN (schema v9): field 55 and the
  // sealed expiry / card sequence number; both empty for any other message.
  // Errors: journal.not_found (no such message).
  struct advice_payload {
    bytes icc_data;
    bytes card_ciphertext;
  };
  result<advice_payload> message_advice_payload(const std::string& msg_id);

  // Operator actions from the audit log. Errors: journal.invalid_argument (limit out of range).
  result<std::vector<audit_row>> audit_log(const audit_filter& filter);

  // Outcome notifications (schema v10). The outbox in delivery order: every 'pending' row,
  // oldest first (created_ms, then insertion), at most `limit` (1..100000).
  result<std::vector<notification_row>> pending_notifications(std::uint32_t limit);
  // The same for one endpoint (schema v14): its rows, and with_unnamed also the rows of
  // endpoint "" (written before v14: the first configured endpoint delivers them).
  result<std::vector<notification_row>> pending_notifications(const std::string& endpoint, bool with_unnamed,
                                                               std::uint32_t limit);
  // Filtered listing (eftctl notifications list, the back-office page).
  result<std::vector<notification_row>> list_notifications(const notification_filter& filter);
  result<std::optional<notification_row>> notification(const std::string& notification_id);
  // Rows per state ("pending", "delivered", "expired"); states without rows are absent.
  result<std::vector<std::pair<std::string, std::int64_t>>> notification_counts();

  // PRAGMA values, for health checks and tests: "journal_mode" -> "wal", etc.
  result<std::string> pragma(const std::string& name);

  int schema_version() const noexcept;

  // Back-office reports (reports/): one read-only SELECT (or WITH ... SELECT) with ?N
  // parameters bound from `params` (text, integer or real; monostate binds NULL). The
  // statement is not cached, so report filter shapes do not grow the cache. Refused with
  // journal.invalid_argument: more than one statement, a statement that could write, SQL that
  // names pan_ciphertext; a BLOB in a result fails the query (journal.query_failed), so the
  // PAN ciphertext can never come out of here.
  result<std::vector<report_record>> report_query(const std::string& sql, const report_record& params);

 private:
  struct impl;
  explicit reader(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::journal
