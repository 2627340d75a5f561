// Journal writes as data.
//
// Every change to the journal is one of these plain records. A writer applies them; a hot
// standby can receive the very same records and apply them to its own journal, so nothing
// about a write lives only in code. A `batch` is all-or-nothing.
//
// Card data: the only card field a record can carry is `stored_pan` (ciphertext, masked form,
// keyed hash). There is no field for track data, CVV or a PIN block, on purpose.
//
// Times are milliseconds since the Unix epoch, supplied by the caller (time is injected).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "eftd/core/bytes.hpp"

namespace eftd::journal {

// A PAN as it is kept at rest: AES-256-GCM ciphertext (nonce||ct||tag), the masked form for
// display, and the keyed search hash (hex HMAC-SHA256). Built by seal_pan() (card_data.hpp).
struct stored_pan {
  bytes ciphertext;
  std::string masked;
  std::string search_hash;

  friend bool operator==(const stored_pan&, const stored_pan&) = default;
};

// Who caused a state change. Stored as 'pos', 'pad', 'acquirer', 'operator', 'server'.
enum class actor { pos, pad, acquirer, operator_, server };

std::string_view to_string(actor a) noexcept;
std::optional<actor> parse_actor(std::string_view s) noexcept;

// Vocabulary the schema enforces (CHECK constraints) or the queries rely on. States of
// orders and operations belong to the transaction engine and are free text here.
namespace order_kinds {
inline constexpr std::string_view sale = "sale";
inline constexpr std::string_view refund = "refund";
inline constexpr std::string_view preauth = "preauth";          // an 0100 that holds funds, settles nothing
inline constexpr std::string_view incremental = "incremental";  // more on a preauth (0100 naming it)
inline constexpr std::string_view completion = "completion";    // settles a preauth (0220 advice)
}  // namespace order_kinds

namespace operation_kinds {  // enforced by the schema
inline constexpr std::string_view payment = "payment";
inline constexpr std::string_view cancel = "cancel";
inline constexpr std::string_view refund = "refund";
inline constexpr std::string_view completion = "completion";
}  // namespace operation_kinds

// Acquirer message states. reader::in_doubt_messages() returns the unresolved ones:
// intent, sent, timeout, reversal_pending.
namespace message_states {
inline constexpr std::string_view intent = "intent";  // persisted before sending
inline constexpr std::string_view sent = "sent";
inline constexpr std::string_view answered = "answered";
inline constexpr std::string_view timeout = "timeout";
inline constexpr std::string_view reversal_pending = "reversal_pending";
inline constexpr std::string_view reversed = "reversed";
inline constexpr std::string_view failed = "failed";  // never left eftd; nothing to reverse
// States of a queued reversal (a 0400 row): waiting to be (re)sent; acknowledged by the
// acquirer; parked (the acquirer refuses its format: kept for people, never blocks the queue);
// expired (not acknowledged within the acquirer's expiry: a case for people).
inline constexpr std::string_view pending = "pending";
inline constexpr std::string_view acknowledged = "acknowledged";
inline constexpr std::string_view parked = "parked";
inline constexpr std::string_view expired = "expired";
}  // namespace message_states

// --- orders -------------------------------------------------------------------------------

struct order_created {
  std::string order_id;
  std::string merchant_id;
  std::string store_id;
  std::string till_id;
  std::string order_no;       // the POS order number
  std::string business_date;  // 'YYYY-MM-DD'
  std::string kind;           // order_kinds
  std::int64_t amount_minor = 0;
  std::string currency;  // ISO 4217, 3 characters
  std::string state;
  std::int64_t created_ms = 0;
};

// Fields left empty are unchanged (an update cannot clear a field back to NULL).
// If expect_state is set, the update applies only when the current state equals it,
// else the batch fails with "journal.state_conflict".
struct order_updated {
  std::string order_id;
  std::optional<std::string> expect_state;
  std::optional<std::string> state;
  std::optional<std::string> result_code;
  std::optional<std::string> reason_cashier;
  std::optional<std::string> reason_customer;
  std::optional<std::int64_t> approved_amount_minor;
  std::int64_t updated_ms = 0;
};

// --- operations ---------------------------------------------------------------------------

struct operation_created {
  std::string op_id;
  std::string order_id;
  std::optional<std::string> parent_op_id;  // e.g. the payment a cancel or completion refers to
  std::string kind;                         // operation_kinds
  std::string state;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::optional<std::string> entry_mode;  // 'chip', 'contactless', 'magstripe', 'manual'...
  std::optional<std::string> scheme;
  std::optional<stored_pan> pan;
  std::int64_t created_ms = 0;
};

// Same rules as order_updated. The PAN is usually known only after the card read, so it
// can be attached here.
struct operation_updated {
  std::string op_id;
  std::optional<std::string> expect_state;
  std::optional<std::string> state;
  std::optional<std::string> entry_mode;
  std::optional<std::string> scheme;
  std::optional<stored_pan> pan;
  std::optional<std::string> auth_code;
  std::optional<std::string> response_code;
  std::optional<std::string> result_code;
  // JSON object printed on chip/contactless receipts (AID, label, TVR, TSI, AC, CVM); no card data.
  std::optional<std::string> emv_data;
  std::int64_t updated_ms = 0;
};

// --- acquirer messages --------------------------------------------------------------------

// (acquirer, terminal_id, stan, local_datetime, mti) is unique: a second message with the
// same key fails with "journal.duplicate_message" (a STAN reused within the same second).
struct acquirer_message_written {
  std::string msg_id;
  std::string op_id;
  std::optional<std::string> original_msg_id;  // the message a reversal/advice refers to
  std::string acquirer;
  std::string terminal_id;
  std::string mti;             // 4 digits, e.g. "0200"
  std::uint32_t stan = 0;      // 0..999999
  std::string local_datetime;  // MMDDhhmmss (field 12/13 of the message)
  std::optional<std::string> rrn;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string state;  // message_states
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> next_attempt_ms;  // queued messages: when to send (first) next
  // An offline approval's advice (schema v9): field 55 (no card data in it) and the expiry and
  // card sequence number sealed by seal_advice_card() (card_data.hpp). Empty: NULL.
  bytes icc_data;
  bytes card_ciphertext;
};

struct acquirer_message_updated {
  std::string msg_id;
  std::optional<std::string> expect_state;
  std::optional<std::string> state;
  std::optional<std::string> rrn;
  std::optional<std::string> response_code;
  std::optional<std::string> auth_code;
  std::optional<std::int64_t> attempts;  // queued messages: sends so far
  std::optional<std::int64_t> next_attempt_ms;
  std::optional<std::string> last_error;  // why the last send failed (never card data)
  std::int64_t updated_ms = 0;
};

// --- events and counters ------------------------------------------------------------------

// Every state change is explained by an event: when, who, what and why.
// reason and detail are free text for people; they must never carry card data. As a last
// line of defence the writer masks any Luhn-valid run of 13..19 digits in them (and in the
// order reasons) before storing.
struct event_appended {
  std::string order_id;
  std::optional<std::string> op_id;
  std::int64_t at_ms = 0;
  journal::actor actor = actor::server;
  std::string kind;
  std::string reason;
  std::string detail;
};

// Absolute value (not an increment), so applying it twice, e.g. on a standby, is harmless.
struct counter_set {
  std::string name;  // e.g. "stan/<acquirer>/<terminal>", "batch/<acquirer>/<terminal>"
  std::int64_t value = 0;
};

// A PIN pad's health (upsert by pad_id). dukpt: JSON array of {"ksn","counter","left"} as the
// pad reported them (KSNs are not secret).
struct pad_health_set {
  std::string pad_id;
  std::string state;  // online | unreachable | offline
  std::string serial, model, firmware, peer, node;
  std::optional<std::int64_t> connected_ms, last_seen_ms, rtt_ms;
  std::int64_t missed_pings = 0;
  std::string dukpt = "[]";
  std::int64_t updated_ms = 0;
};

// --- end of day: settlement batches (server/src/settlement.hpp) ------------------------------

// A batch is what settles for (acquirer, terminal id, business date). States as stored:
// open (known, not being closed), closing (0500 920000 written), uploading (answered 95: one
// 0320 per settling transaction), closing_after_upload (0500 960000 written), and the final
// ones: closed, out_of_balance (still 95 after the upload: a case for people), refused (any
// other answer: a case for people).
namespace batch_states {
inline constexpr std::string_view open = "open";
inline constexpr std::string_view closing = "closing";
inline constexpr std::string_view uploading = "uploading";
inline constexpr std::string_view closing_after_upload = "closing_after_upload";
inline constexpr std::string_view closed = "closed";
inline constexpr std::string_view out_of_balance = "out_of_balance";
inline constexpr std::string_view refused = "refused";
}  // namespace batch_states

// Counts and amounts (minor units) of a batch: fields 74-77 and 86-89 of a 0500.
struct settlement_totals {
  std::int64_t credits = 0;
  std::int64_t credit_reversals = 0;
  std::int64_t debits = 0;
  std::int64_t debit_reversals = 0;
  std::int64_t credit_amount = 0;
  std::int64_t credit_reversal_amount = 0;
  std::int64_t debit_amount = 0;
  std::int64_t debit_reversal_amount = 0;
  // Field 97: debits - debit reversals - credits + credit reversals.
  std::int64_t net() const noexcept {
    return debit_amount - debit_reversal_amount - credit_amount + credit_reversal_amount;
  }
  friend bool operator==(const settlement_totals&, const settlement_totals&) = default;
};

// (acquirer, terminal_id, batch_no) is unique: "journal.duplicate_batch". Writing the row
// closes batch_no to new messages (they are stamped with the next number).
struct settlement_batch_written {
  std::string batch_id;
  std::string acquirer;
  std::string terminal_id;
  std::int64_t batch_no = 0;     // the terminal's open batch number (reader::open_batch_no)
  std::string business_date;     // 'YYYY-MM-DD': the label (field 15 of its 0500); not unique
  std::string card_acceptor_id;  // field 42 of the batch's 0500
  std::string state;             // batch_states
  settlement_totals totals;
  std::int64_t in_doubt = 0;  // requests without a known outcome or acknowledged reversal, left out
  std::int64_t created_ms = 0;
};

// Same rules as order_updated (expect_state, fields left empty are unchanged).
struct settlement_batch_updated {
  std::string batch_id;
  std::optional<std::string> expect_state;
  std::optional<std::string> state;
  std::optional<std::string> response_code;  // the last 0510's field 39
  std::optional<std::int64_t> uploads_total;
  std::optional<std::int64_t> uploads_done;
  // Fixed once, when an 'open' batch starts closing.
  std::optional<settlement_totals> totals;
  std::optional<std::int64_t> in_doubt;
  std::int64_t updated_ms = 0;
};

// Step kinds: "close" (0500 920000), "upload" (0320 of subject_msg_id), "close_after_upload"
// (0500 960000). States: "sent" (written before sending), "answered".
struct settlement_step_written {
  std::string step_id;
  std::string batch_id;
  std::int64_t seq = 0;  // order within the batch, unique
  std::string kind;
  std::string mti;
  std::string processing_code;  // field 3 as sent
  std::uint32_t stan = 0;
  std::int64_t at_ms = 0;  // fields 7 and 12/13 derive from it: a resend reuses it
  std::optional<std::string> subject_msg_id;
  std::string state;
  std::int64_t created_ms = 0;
};

struct settlement_step_updated {
  std::string step_id;
  std::optional<std::string> expect_state;
  std::optional<std::string> state;
  std::optional<std::string> response_code;
  std::int64_t updated_ms = 0;
};

// --- audit log ----------------------------------------------------------------------------

// Where an operator action came from. Stored as 'admin-socket', 'web', 'eftctl', 'config'.
namespace audit_sources {
inline constexpr std::string_view admin_socket = "admin-socket";
inline constexpr std::string_view web = "web";
inline constexpr std::string_view eftctl = "eftctl";
inline constexpr std::string_view config = "config";
}  // namespace audit_sources

// One operator action, appended to the audit log (never updated). actor: the person or
// account (a Unix user name from the admin socket's peer credentials, a web login). subject:
// what was acted on (an acquirer, a file, a user). detail and outcome are free text for people:
// the writer masks card numbers in them like in event details. outcome: "ok" or an error code.
struct audit_appended {
  std::int64_t at_ms = 0;
  std::string actor;
  std::string source;  // audit_sources
  std::string action;  // e.g. "settle", "trace", "backup"
  std::string subject;
  std::string detail;  // at most 4096 bytes
  std::string outcome;
};

// A guard, written nothing: the batch fails with "journal.state_conflict" when the terminal's
// batch `batch_no` has been written (its close started). Lets a cancel choose between a
// reversal and a refund without racing an end-of-day close.
struct batch_still_open {
  std::string acquirer;
  std::string terminal_id;
  std::int64_t batch_no = 0;
};

// --- reconciliation cases ------------------------------------------------------------------

// Staff resolved a reconciliation case (reports.hpp, list_cases). subject_id: what the case is
// about, the part of the case key after "<kind>:" (a batch id, an acquirer message id or an
// order id). A case is resolved once: a second record for the same (case_kind, subject_id)
// fails the batch with "journal.state_conflict" ("already resolved"). actor: as in
// audit_appended; note: why, for people (1..2000 bytes, card numbers masked by the writer).
struct case_resolved {
  std::string case_kind;
  std::string subject_id;
  std::int64_t resolved_ms = 0;
  std::string actor;
  std::string note;
};

// --- outcome notifications (schema v10, server/NOTIFY.md) ----------------------------------

// The writer inserts a 'pending' notification itself, in the same transaction, when an
// order_updated makes an order final (writer_options::notifications). This record changes a
// notification's delivery state afterwards. Same rules as order_updated (expect_state, fields
// left empty are unchanged). last_error: why the last POST failed, for people (never card data).
namespace notification_states {
inline constexpr std::string_view pending = "pending";
inline constexpr std::string_view delivered = "delivered";
inline constexpr std::string_view expired = "expired";
}  // namespace notification_states

struct notification_updated {
  std::string notification_id;
  std::optional<std::string> expect_state;
  std::optional<std::string> state;
  std::optional<std::int64_t> attempts;
  std::optional<std::int64_t> next_attempt_ms;
  std::optional<std::int64_t> expires_ms;
  std::optional<std::string> last_error;
  std::optional<std::int64_t> delivered_ms;
  std::int64_t updated_ms = 0;
};

// One notification row exactly as inserted: every column of `notifications`. The writer
// generates these rows itself with random ids (see above), so a hot standby cannot rebuild
// them; the active node ships the generated rows with its batch and the standby inserts them
// as they are (with generation disabled). Nothing else submits it. The schema's CHECKs apply
// (journal.invalid_record); last_error is scrubbed like other free text.
struct notification_created {
  std::string notification_id;
  std::string order_id;
  std::string event;        // e.g. "order.final"
  std::string order_state;  // the order state the row announces
  std::string payload;      // the JSON body as sent (its only card field is the masked PAN)
  std::int64_t created_ms = 0;
  std::string state;  // notification_states
  std::int64_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::optional<std::int64_t> expires_ms;
  std::optional<std::string> last_error;
  std::optional<std::int64_t> delivered_ms;
  std::int64_t updated_ms = 0;
  std::string endpoint;  // schema v14; '' = the rows of before v14
};

// --- hot standby: the files a pair shares (schema v16, server/HA.md) ------------------------

// The newest content of a file the active node shares with its standby through the journal,
// so that it reaches the standby with every guarantee the journal has (in order, acknowledged,
// in snapshots): "keystore" (the sealed key store file as it is on disk: it never holds a clear
// key) and "registry" (the pads and tills eftd accepts, with revocations, as JSON). Upsert by
// name: the row holds the last one written. sha256: upper-case hex of content; the writer
// checks it (journal.invalid_record). origin: the node id that wrote it.
struct shared_file_set {
  std::string name;
  bytes content;
  std::string sha256;
  std::string origin;
  std::int64_t set_ms = 0;
};

// Append new alternatives at the end: the replica codec's tags (replica_codec.hpp) are
// explicit, but keeping the order keeps the variant index stable for everyone else too.
using record =
    std::variant<order_created, order_updated, operation_created, operation_updated, acquirer_message_written,
                 acquirer_message_updated, event_appended, counter_set, pad_health_set,
                 settlement_batch_written, settlement_batch_updated, settlement_step_written,
                 settlement_step_updated, audit_appended, batch_still_open, case_resolved,
                 notification_updated, notification_created, shared_file_set>;

// Applied atomically: all records or none.
struct batch {
  std::vector<record> records;
};

// A 128-bit identifier as 32 upper-case hex digits (order_id, op_id, msg_id): 48 bits of
// milliseconds since 1970, so that later ids sort after earlier ones, then 80 random bits.
std::string new_id();

}  // namespace eftd::journal
