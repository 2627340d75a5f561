#include "eftd/journal/schema.hpp"

#include <iterator>

namespace eftd::journal {

namespace {

// Version 1: the transaction model. Order -> operations -> acquirer messages, plus the
// event log that explains every state change and the counters (STAN, batch numbers).
//
// Card data: the only card columns are pan_masked, pan_hash and pan_ciphertext. There is
// no column for track data, CVV or a PIN block. The CHECKs on pan_masked are a second line
// of defence: a "masked" PAN that still shows more than 12 digits, or 9 digits in a row
// (PCI allows at most the first 8 and the last 4), is refused by the database itself.
constexpr std::string_view v1_sql = R"sql(
CREATE TABLE schema_migrations(
  version     INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE orders(
  order_id              TEXT PRIMARY KEY,
  merchant_id           TEXT NOT NULL,
  store_id              TEXT NOT NULL,
  till_id               TEXT NOT NULL,
  order_no              TEXT NOT NULL CHECK (length(order_no) > 0),
  business_date         TEXT NOT NULL
                        CHECK (business_date GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]'),
  kind                  TEXT NOT NULL CHECK (length(kind) > 0),
  amount_minor          INTEGER NOT NULL CHECK (amount_minor >= 0),
  currency              TEXT NOT NULL CHECK (length(currency) = 3),
  state                 TEXT NOT NULL CHECK (length(state) > 0),
  result_code           TEXT,
  reason_cashier        TEXT,
  reason_customer       TEXT,
  approved_amount_minor INTEGER CHECK (approved_amount_minor IS NULL OR approved_amount_minor >= 0),
  created_ms            INTEGER NOT NULL,
  updated_ms            INTEGER NOT NULL,
  UNIQUE (till_id, order_no, business_date)
) STRICT;

CREATE TABLE operations(
  op_id          TEXT PRIMARY KEY,
  order_id       TEXT NOT NULL REFERENCES orders(order_id),
  parent_op_id   TEXT REFERENCES operations(op_id),
  kind           TEXT NOT NULL CHECK (kind IN ('payment', 'cancel', 'refund', 'completion')),
  state          TEXT NOT NULL CHECK (length(state) > 0),
  amount_minor   INTEGER NOT NULL CHECK (amount_minor >= 0),
  currency       TEXT NOT NULL CHECK (length(currency) = 3),
  entry_mode     TEXT,
  scheme         TEXT,
  pan_masked     TEXT CHECK (pan_masked IS NULL OR (
                   pan_masked NOT GLOB '*[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*'
                   AND length(pan_masked) - length(replace(replace(replace(replace(replace(
                       replace(replace(replace(replace(replace(pan_masked, '0', ''), '1', ''),
                       '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''),
                       '9', '')) <= 12)),
  pan_hash       TEXT CHECK (pan_hash IS NULL OR
                   (length(pan_hash) = 64 AND pan_hash NOT GLOB '*[^0-9A-Fa-f]*')),
  pan_ciphertext BLOB,
  auth_code      TEXT,
  response_code  TEXT,
  result_code    TEXT,
  created_ms     INTEGER NOT NULL,
  updated_ms     INTEGER NOT NULL,
  CHECK ((pan_masked IS NULL) = (pan_hash IS NULL) AND (pan_hash IS NULL) = (pan_ciphertext IS NULL))
) STRICT;

CREATE TABLE acquirer_messages(
  msg_id          TEXT PRIMARY KEY,
  op_id           TEXT NOT NULL REFERENCES operations(op_id),
  original_msg_id TEXT REFERENCES acquirer_messages(msg_id),
  acquirer        TEXT NOT NULL CHECK (length(acquirer) > 0),
  terminal_id     TEXT NOT NULL CHECK (length(terminal_id) > 0),
  mti             TEXT NOT NULL CHECK (mti GLOB '[0-9][0-9][0-9][0-9]'),
  stan            INTEGER NOT NULL CHECK (stan BETWEEN 0 AND 999999),
  local_datetime  TEXT NOT NULL CHECK (local_datetime GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'),
  rrn             TEXT,
  amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
  currency        TEXT NOT NULL CHECK (length(currency) = 3),
  state           TEXT NOT NULL CHECK (length(state) > 0),
  response_code   TEXT,
  auth_code       TEXT,
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL,
  UNIQUE (acquirer, terminal_id, stan, local_datetime, mti)
) STRICT;

CREATE TABLE events(
  event_id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id TEXT NOT NULL REFERENCES orders(order_id),
  op_id    TEXT REFERENCES operations(op_id),
  at_ms    INTEGER NOT NULL,
  actor    TEXT NOT NULL CHECK (actor IN ('pos', 'pad', 'acquirer', 'operator', 'server')),
  kind     TEXT NOT NULL CHECK (length(kind) > 0),
  reason   TEXT NOT NULL,
  detail   TEXT NOT NULL
) STRICT;

CREATE TABLE counters(
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;
)sql";

// Version 2: indexes for the back-office filters and for start-up recovery. The UNIQUE
// constraints of version 1 already index (till_id, order_no, business_date) and the
// acquirer message key.
constexpr std::string_view v2_sql = R"sql(
CREATE INDEX orders_by_created       ON orders(created_ms);
CREATE INDEX orders_by_business_date ON orders(business_date, created_ms);
CREATE INDEX orders_by_merchant      ON orders(merchant_id, business_date);
CREATE INDEX orders_by_store         ON orders(store_id, business_date);
CREATE INDEX orders_by_till          ON orders(till_id, created_ms);
CREATE INDEX orders_by_state         ON orders(state, created_ms);
CREATE INDEX orders_by_order_no      ON orders(order_no);
CREATE INDEX operations_by_order     ON operations(order_id, created_ms);
CREATE INDEX operations_by_pan_hash  ON operations(pan_hash) WHERE pan_hash IS NOT NULL;
CREATE INDEX operations_by_scheme    ON operations(scheme, order_id);
CREATE INDEX messages_by_op          ON acquirer_messages(op_id, created_ms);
CREATE INDEX messages_in_doubt       ON acquirer_messages(created_ms)
  WHERE state IN ('intent', 'sent', 'timeout', 'reversal_pending');
CREATE INDEX events_by_order         ON events(order_id, event_id);
)sql";

// Version 3: the store-and-forward reversal queue. A reversal is its own acquirer message
// (mti 0400, original_msg_id = the message it reverses) that stays 'pending' until the
// acquirer acknowledges it; attempts, the next attempt's time and the last error survive a
// restart, so the queue resumes where it stopped.
constexpr std::string_view v3_sql = R"sql(
ALTER TABLE acquirer_messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE acquirer_messages ADD COLUMN next_attempt_ms INTEGER;
ALTER TABLE acquirer_messages ADD COLUMN last_error TEXT;
CREATE INDEX messages_queued ON acquirer_messages(acquirer, created_ms) WHERE state = 'pending';
)sql";

// Version 4: PIN pad health as eftd last saw it (pings, DUKPT counters), one row per pad, for
// `eftctl pads` and the back-office status page. Upserted on connect, disconnect, a change of
// state and periodically; it holds no card data (KSNs are not secret).
constexpr std::string_view v4_sql = R"sql(
CREATE TABLE pad_health(
  pad_id        TEXT PRIMARY KEY,
  state         TEXT NOT NULL CHECK (state IN ('online', 'unreachable', 'offline')),
  serial        TEXT NOT NULL DEFAULT '',
  model         TEXT NOT NULL DEFAULT '',
  firmware      TEXT NOT NULL DEFAULT '',
  peer          TEXT NOT NULL DEFAULT '',
  node          TEXT NOT NULL DEFAULT '',
  connected_ms  INTEGER,
  last_seen_ms  INTEGER,
  rtt_ms        INTEGER,
  missed_probes INTEGER NOT NULL DEFAULT 0 CHECK (missed_probes >= 0),
  dukpt         TEXT NOT NULL DEFAULT '[]',
  updated_ms    INTEGER NOT NULL
) STRICT;
)sql";

// Version 5: end of day. One batch per (acquirer, terminal id, business date) with the totals
// eftd sent in its 0500 (fixed when the close starts, so a resend after a crash is identical),
// and the log of its steps: every 0500 / 0320 is written with its STAN and transmission time
// before it is sent (write-ahead), and its answer after. A step still 'sent' is resent as it
// was, never replaced by a new one, so the acquirer closes the batch once.
constexpr std::string_view v5_sql = R"sql(
CREATE TABLE settlement_batches(
  batch_id               TEXT PRIMARY KEY,
  acquirer               TEXT NOT NULL CHECK (length(acquirer) > 0),
  terminal_id            TEXT NOT NULL CHECK (length(terminal_id) > 0),
  business_date          TEXT NOT NULL
                         CHECK (business_date GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]'),
  card_acceptor_id       TEXT NOT NULL,
  state                  TEXT NOT NULL CHECK (state IN ('open', 'closing', 'uploading',
                           'closing_after_upload', 'closed', 'out_of_balance', 'refused')),
  credits                INTEGER NOT NULL CHECK (credits >= 0),
  credit_reversals       INTEGER NOT NULL CHECK (credit_reversals >= 0),
  debits                 INTEGER NOT NULL CHECK (debits >= 0),
  debit_reversals        INTEGER NOT NULL CHECK (debit_reversals >= 0),
  credit_amount          INTEGER NOT NULL CHECK (credit_amount >= 0),
  credit_reversal_amount INTEGER NOT NULL CHECK (credit_reversal_amount >= 0),
  debit_amount           INTEGER NOT NULL CHECK (debit_amount >= 0),
  debit_reversal_amount  INTEGER NOT NULL CHECK (debit_reversal_amount >= 0),
  in_doubt               INTEGER NOT NULL DEFAULT 0 CHECK (in_doubt >= 0),
  response_code          TEXT,
  uploads_total          INTEGER NOT NULL DEFAULT 0 CHECK (uploads_total >= 0),
  uploads_done           INTEGER NOT NULL DEFAULT 0 CHECK (uploads_done >= 0),
  created_ms             INTEGER NOT NULL,
  updated_ms             INTEGER NOT NULL,
  UNIQUE (acquirer, terminal_id, business_date)
) STRICT;

CREATE TABLE settlement_steps(
  step_id         TEXT PRIMARY KEY,
  batch_id        TEXT NOT NULL REFERENCES settlement_batches(batch_id),
  seq             INTEGER NOT NULL CHECK (seq >= 0),
  kind            TEXT NOT NULL CHECK (kind IN ('close', 'upload', 'close_after_upload')),
  mti             TEXT NOT NULL CHECK (mti GLOB '[0-9][0-9][0-9][0-9]'),
  processing_code TEXT NOT NULL CHECK (length(processing_code) = 6),
  stan            INTEGER NOT NULL CHECK (stan BETWEEN 0 AND 999999),
  at_ms           INTEGER NOT NULL,
  subject_msg_id  TEXT REFERENCES acquirer_messages(msg_id),
  state           TEXT NOT NULL CHECK (state IN ('sent', 'answered')),
  response_code   TEXT,
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL,
  UNIQUE (batch_id, seq)
) STRICT;
CREATE INDEX settlement_batches_by_date ON settlement_batches(business_date, acquirer, terminal_id);
CREATE INDEX settlement_batches_unfinished ON settlement_batches(business_date)
  WHERE state IN ('open', 'closing', 'uploading', 'closing_after_upload');
)sql";

// The audit log: every operator action (admin socket, web pages, eftctl, configuration),
// who did it, from where, on what, and how it ended. Rows are only ever inserted. detail is
// free text for people and, like event details, is scrubbed of card numbers by the writer;
// no column is meant for card data, and none is named like one (the schema test checks it).
constexpr std::string_view audit_log_sql = R"sql(
CREATE TABLE audit_log(
  audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms    INTEGER NOT NULL,
  actor    TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 128),
  source   TEXT NOT NULL CHECK (source IN ('admin-socket', 'web', 'eftctl', 'config')),
  action   TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
  subject  TEXT NOT NULL,
  detail   TEXT NOT NULL CHECK (length(detail) <= 4096),
  outcome  TEXT NOT NULL CHECK (length(outcome) BETWEEN 1 AND 128)
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log(at_ms);
)sql";

// Back-office users (web pages, server/src/backoffice_*). The password is kept only as a
// scrypt hash with its own random salt; kdf names the parameters so they can be raised
// later without invalidating old rows. failed_attempts counts consecutive bad passwords;
// locked is set at the configured limit and cleared only by an administrator.
constexpr std::string_view users_sql = R"sql(
CREATE TABLE users(
  name            TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
  role            TEXT NOT NULL CHECK (role IN ('viewer', 'supervisor', 'admin')),
  password_hash   TEXT NOT NULL,
  salt            TEXT NOT NULL,
  kdf             TEXT NOT NULL,
  failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
  locked          INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL
) STRICT;
)sql";

// Version 6: batch numbers. What settles is no longer "a business date" but the terminal's
// open batch: every acquirer message is stamped at insert with the number of its (acquirer,
// terminal)'s open batch, one above the highest batch written so far. Writing a batch row
// therefore closes its number to new messages in the same transaction, and transactions after
// a close (the same day included) fall into the next batch instead of into none. A batch keeps
// its business date as a label; several batches may share one. The table is rebuilt because
// SQLite cannot drop the old UNIQUE(acquirer, terminal_id, business_date). Foreign keys stay on
// (a migration runs in one transaction), so the steps that reference the batches are set
// aside while the parent table is replaced, then put back under the same ids.
// Existing batches are numbered per (acquirer, terminal) in business-date order; existing
// messages join the batch of their order's business date, or the open batch if it has none.
constexpr std::string_view v6_sql = R"sql(
CREATE TEMP TABLE settlement_steps_v5 AS SELECT * FROM settlement_steps;
DELETE FROM settlement_steps;
CREATE TABLE settlement_batches_v6(
  batch_id               TEXT PRIMARY KEY,
  acquirer               TEXT NOT NULL CHECK (length(acquirer) > 0),
  terminal_id            TEXT NOT NULL CHECK (length(terminal_id) > 0),
  batch_no               INTEGER NOT NULL CHECK (batch_no >= 1),
  business_date          TEXT NOT NULL
                         CHECK (business_date GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]'),
  card_acceptor_id       TEXT NOT NULL,
  state                  TEXT NOT NULL CHECK (state IN ('open', 'closing', 'uploading',
                           'closing_after_upload', 'closed', 'out_of_balance', 'refused')),
  credits                INTEGER NOT NULL CHECK (credits >= 0),
  credit_reversals       INTEGER NOT NULL CHECK (credit_reversals >= 0),
  debits                 INTEGER NOT NULL CHECK (debits >= 0),
  debit_reversals        INTEGER NOT NULL CHECK (debit_reversals >= 0),
  credit_amount          INTEGER NOT NULL CHECK (credit_amount >= 0),
  credit_reversal_amount INTEGER NOT NULL CHECK (credit_reversal_amount >= 0),
  debit_amount           INTEGER NOT NULL CHECK (debit_amount >= 0),
  debit_reversal_amount  INTEGER NOT NULL CHECK (debit_reversal_amount >= 0),
  in_doubt               INTEGER NOT NULL DEFAULT 0 CHECK (in_doubt >= 0),
  response_code          TEXT,
  uploads_total          INTEGER NOT NULL DEFAULT 0 CHECK (uploads_total >= 0),
  uploads_done           INTEGER NOT NULL DEFAULT 0 CHECK (uploads_done >= 0),
  created_ms             INTEGER NOT NULL,
  updated_ms             INTEGER NOT NULL,
  UNIQUE (acquirer, terminal_id, batch_no)
) STRICT;
INSERT INTO settlement_batches_v6
  SELECT batch_id, acquirer, terminal_id,
         (SELECT count(*) FROM settlement_batches e WHERE e.acquirer = b.acquirer
            AND e.terminal_id = b.terminal_id AND e.business_date <= b.business_date),
         business_date, card_acceptor_id, state, credits, credit_reversals, debits, debit_reversals,
         credit_amount, credit_reversal_amount, debit_amount, debit_reversal_amount, in_doubt,
         response_code, uploads_total, uploads_done, created_ms, updated_ms
  FROM settlement_batches b;
DROP TABLE settlement_batches;
ALTER TABLE settlement_batches_v6 RENAME TO settlement_batches;
INSERT INTO settlement_steps SELECT * FROM temp.settlement_steps_v5;
DROP TABLE temp.settlement_steps_v5;
CREATE INDEX settlement_batches_by_date ON settlement_batches(business_date, acquirer, terminal_id);
CREATE INDEX settlement_batches_unfinished ON settlement_batches(business_date)
  WHERE state IN ('open', 'closing', 'uploading', 'closing_after_upload');

ALTER TABLE acquirer_messages ADD COLUMN batch_no INTEGER CHECK (batch_no IS NULL OR batch_no >= 1);
UPDATE acquirer_messages SET batch_no = coalesce(
  (SELECT b.batch_no FROM settlement_batches b, operations op, orders o
    WHERE op.op_id = acquirer_messages.op_id AND o.order_id = op.order_id
      AND b.acquirer = acquirer_messages.acquirer AND b.terminal_id = acquirer_messages.terminal_id
      AND b.business_date = o.business_date),
  (SELECT coalesce(max(b.batch_no), 0) + 1 FROM settlement_batches b
    WHERE b.acquirer = acquirer_messages.acquirer AND b.terminal_id = acquirer_messages.terminal_id));
CREATE INDEX messages_by_batch ON acquirer_messages(acquirer, terminal_id, batch_no);
)sql";

// Version 9: offline approvals. The advice of a sale the card approved offline (TC at the
// first GENERATE AC) is owed to the acquirer and carries the card: field 55 (the TC and the
// terminal data, never 57, 5A or 5F20: not card data) and, sealed like the PAN, the expiry
// date and card sequence number (fields 14 and 23). The PAN itself stays in operations.
constexpr std::string_view offline_advice_sql = R"sql(
ALTER TABLE acquirer_messages ADD COLUMN icc_data BLOB;
ALTER TABLE acquirer_messages ADD COLUMN card_ciphertext BLOB;
)sql";

// Version 11: reconciliation cases that staff resolved. A case itself is not stored: the
// reports derive it from the journal each time (reports.hpp, list_cases). Only the decision
// is kept, keyed by what the case is about (case kind and its subject: the batch id, the
// acquirer message id or the order id), so the case shows as resolved on every later run.
// Rows are only inserted: a case is resolved once, with who and why (also in audit_log).
constexpr std::string_view case_resolutions_sql = R"sql(
CREATE TABLE case_resolutions(
  case_kind   TEXT NOT NULL CHECK (length(case_kind) BETWEEN 1 AND 64),
  subject_id  TEXT NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 128),
  resolved_ms INTEGER NOT NULL,
  actor       TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 128),
  note        TEXT NOT NULL CHECK (length(note) BETWEEN 1 AND 2000),
  PRIMARY KEY (case_kind, subject_id)
) STRICT;
)sql";

// Version 10: the outbox of outcome notifications to back-office systems (server/NOTIFY.md).
// A row is inserted by the writer in the same transaction as the order update that makes the
// order final, so a committed outcome always has its notification and a rolled-back one never
// does. order_state is the order state the row announces: a later change to another final
// state (approved -> cancelled -> reversed) announces again, a repeat of the same one does not.
// payload is the JSON body as sent. Its only card field is the masked PAN, copied from
// operations.pan_masked (whose CHECKs refuse anything longer than first 8 + last 4 digits).
// expires_ms: when delivery gives up; NULL = created_ms + the configured maximum age (set by
// an operator's retry of an expired row).
constexpr std::string_view notifications_sql = R"sql(
CREATE TABLE notifications(
  notification_id TEXT PRIMARY KEY,
  order_id        TEXT NOT NULL REFERENCES orders(order_id),
  event           TEXT NOT NULL CHECK (length(event) > 0),
  order_state     TEXT NOT NULL,
  payload         TEXT NOT NULL CHECK (json_valid(payload)),
  created_ms      INTEGER NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'expired')),
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_ms INTEGER NOT NULL,
  expires_ms      INTEGER,
  last_error      TEXT,
  delivered_ms    INTEGER,
  updated_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX notifications_due ON notifications(state, next_attempt_ms);
CREATE INDEX notifications_by_order ON notifications(order_id, created_ms);
)sql";

// Version 12: indexes on the columns that refer to other rows, so that deleting a row (the
// retention purge) finds what refers to it without scanning a whole table when SQLite
// enforces the foreign keys. Partial: most rows refer to nothing.
constexpr std::string_view reference_indexes_sql = R"sql(
CREATE INDEX operations_by_parent ON operations(parent_op_id) WHERE parent_op_id IS NOT NULL;
CREATE INDEX messages_by_original ON acquirer_messages(original_msg_id) WHERE original_msg_id IS NOT NULL;
CREATE INDEX events_by_op ON events(op_id) WHERE op_id IS NOT NULL;
CREATE INDEX settlement_steps_by_subject ON settlement_steps(subject_msg_id) WHERE subject_msg_id IS NOT NULL;
)sql";

// Version 13: what a chip or contactless receipt prints about the card's EMV processing: AID,
// application label, TVR, TSI, the application cryptogram and its type, the CVM performed.
// A small JSON object kept with the payment operation so that a repeated request or a status
// query rebuilds the same receipt. None of it is card data (no PAN, track or expiry).
constexpr std::string_view emv_receipt_sql = R"sql(
ALTER TABLE operations ADD COLUMN emv_data TEXT CHECK (emv_data IS NULL OR json_valid(emv_data));
)sql";

// Version 14: several back-office endpoints ([[notify]] name, merchants). A final outcome gets
// one outbox row per endpoint that takes the order's merchant, each with its own id and
// delivery state; each endpoint's delivery loop reads only its own rows. Rows written before
// have endpoint '' (the one endpoint there was): they belong to the first configured endpoint.
constexpr std::string_view notify_endpoints_sql = R"sql(
ALTER TABLE notifications ADD COLUMN endpoint TEXT NOT NULL DEFAULT '' CHECK (length(endpoint) <= 64);
CREATE INDEX notifications_outbox ON notifications(endpoint, state, created_ms);
)sql";

// Version 15: the replication log of a hot-standby pair (server/HA.md). Every batch the active
// commits gets a row with its sequence number, the fencing epoch it was written under and the
// batch as shipped (replica_codec.hpp), in the same transaction, so a standby that was away
// catches up from here. repl_meta.history names this log's lineage: a new one whenever the log
// restarts (replication was off for a while, or a journal was re-seeded), so a standby never
// mistakes another history's sequence numbers for its own.
constexpr std::string_view replication_log_sql = R"sql(
CREATE TABLE repl_log(
  seq     INTEGER PRIMARY KEY CHECK (seq > 0),
  epoch   INTEGER NOT NULL CHECK (epoch >= 0),
  payload BLOB NOT NULL
) STRICT;
CREATE TABLE repl_meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
)sql";

// Version 16: the files a hot-standby pair shares through the journal (records.hpp,
// shared_file_set): the sealed key store and the pad and till registry, the newest per name.
constexpr std::string_view shared_files_sql = R"sql(
CREATE TABLE shared_files(
  name    TEXT PRIMARY KEY CHECK (name IN ('keystore', 'registry')),
  content BLOB NOT NULL,
  sha256  TEXT NOT NULL CHECK (length(sha256) = 64),
  origin  TEXT NOT NULL,
  set_ms  INTEGER NOT NULL
) STRICT;
)sql";

// Version 17: the idempotency check at the start of every sale looks an order up by till,
// order number and age (reader::find_orders_recent). With order_no alone in its index the
// planner walked every recent order of the till instead, a cost that grew with the day.
// The index now leads with the order number (the back-office search still uses it) and
// carries the till and the creation time.
constexpr std::string_view order_lookup_sql = R"sql(
DROP INDEX orders_by_order_no;
CREATE INDEX orders_by_order_no ON orders(order_no, till_id, created_ms);
)sql";

// One line per migration, appended in version order (the schema test checks 1..N).
constexpr migration all_migrations[] = {
    {1, "transaction model: orders, operations, acquirer messages, events, counters", v1_sql},
    {2, "indexes for report filters and recovery", v2_sql},
    {3, "store-and-forward reversal queue: attempts, next attempt, last error", v3_sql},
    {4, "PIN pad health: state, round trip, DUKPT counters", v4_sql},
    {5, "end of day: settlement batches and the log of their steps", v5_sql},
    {6, "batch numbers: messages stamped with their terminal's open batch", v6_sql},
    {7, "back-office users: role, scrypt password hash, lockout", users_sql},
    {8, "audit log of operator actions", audit_log_sql},
    {9, "offline approvals: the advice's ICC data and sealed card details", offline_advice_sql},
    {10, "outbox of outcome notifications to back-office systems", notifications_sql},
    {11, "reconciliation cases resolved by staff", case_resolutions_sql},
    {12, "indexes on the referring columns (foreign keys checked cheaply on delete)", reference_indexes_sql},
    {13, "EMV receipt data of chip and contactless payments", emv_receipt_sql},
    {14, "notifications per back-office endpoint", notify_endpoints_sql},
    {15, "replication log and lineage of a hot-standby pair", replication_log_sql},
    {16, "files a hot-standby pair shares: key store and registry", shared_files_sql},
    {17, "orders found by order number, till and age", order_lookup_sql},
};

}  // namespace

std::span<const migration> migrations() noexcept {
  return all_migrations;
}

int latest_schema_version() noexcept {
  return all_migrations[std::size(all_migrations) - 1].version;
}

}  // namespace eftd::journal
