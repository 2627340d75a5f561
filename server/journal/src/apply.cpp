#include "apply.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "eftd/core/card.hpp"
#include "eftd/core/crypto.hpp"

namespace eftd::journal::detail {

std::string scrub_card_numbers(std::string_view text) {
  std::string out(text);
  std::size_t i = 0;
  while (i < out.size()) {
    if (out[i] < '0' || out[i] > '9') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < out.size() && out[j] >= '0' && out[j] <= '9') ++j;
    const std::size_t n = j - i;
    // 13..19 digits: every PAN length in use except 12-digit ones, which would also hit
    // 12-digit RRNs that people need to read here.
    if (n >= 13 && n <= 19 && luhn_valid(std::string_view(out).substr(i, n))) {
      // pan::masked()'s display rule; for 13..19 digits it keeps the first 6 and last 4.
      for (std::size_t k = i + 6; k < j - 4; ++k) out[k] = '*';
    }
    i = j;
  }
  return out;
}

namespace {

std::optional<std::string> scrubbed(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  return scrub_card_numbers(*v);
}

struct failure {
  std::string code;
  std::string message;
  bool io = false;
};

// SQLite's constraint messages name the table, columns or CHECK expression, never the
// values, so they are safe to pass on (no card data can leak through them).
failure classify(connection& c, int rc, std::string_view what, std::string_view duplicate_code) {
  std::string msg = std::string(what) + ": " + c.errmsg();
  if (is_io_failure(rc)) return {"journal.io_error", msg, true};
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return {std::string(duplicate_code), msg};
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return {"journal.unknown_reference", msg};
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_DATATYPE:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return {"journal.invalid_record", msg};
    default:
      return {"journal.write_failed", msg};
  }
}

class applier {
 public:
  applier(connection& c, const writer_options::notification_options* notify)
      : c_(c), notify_(notify != nullptr && notify->enabled ? notify : nullptr) {}

  bool notifications_touched() const { return notifications_touched_; }
  std::vector<notification_created> take_generated() { return std::move(generated_); }

  std::optional<failure> operator()(const order_created& r) {
    stmt s(
        prepare("INSERT INTO orders(order_id, merchant_id, store_id, till_id, order_no, business_date,"
                " kind, amount_minor, currency, state, created_ms, updated_ms)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.order_id);
    s.bind(2, r.merchant_id);
    s.bind(3, r.store_id);
    s.bind(4, r.till_id);
    s.bind(5, r.order_no);
    s.bind(6, r.business_date);
    s.bind(7, r.kind);
    s.bind(8, r.amount_minor);
    s.bind(9, r.currency);
    s.bind(10, r.state);
    s.bind(11, r.created_ms);
    return done(s.step(), "order_created", "journal.duplicate_order");
  }

  std::optional<failure> operator()(const order_updated& r) {
    stmt s(
        prepare("UPDATE orders SET state = coalesce(?2, state), result_code = coalesce(?3, result_code),"
                " reason_cashier = coalesce(?4, reason_cashier),"
                " reason_customer = coalesce(?5, reason_customer),"
                " approved_amount_minor = coalesce(?6, approved_amount_minor), updated_ms = ?7"
                " WHERE order_id = ?1 AND (?8 IS NULL OR state = ?8)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.order_id);
    s.bind(2, r.state);
    s.bind(3, r.result_code);
    s.bind(4, scrubbed(r.reason_cashier));
    s.bind(5, scrubbed(r.reason_customer));
    s.bind(6, r.approved_amount_minor);
    s.bind(7, r.updated_ms);
    s.bind(8, r.expect_state);
    if (auto f = done(s.step(), "order_updated", "journal.duplicate_order")) return f;
    if (auto f = check_updated("SELECT state FROM orders WHERE order_id = ?1", r.order_id, "order_updated"))
      return f;
    // The notification is written once the whole batch is applied, so its payload shows
    // the order as the batch leaves it (reasons, amounts, the operation's masked PAN).
    if (notify_ != nullptr && r.state && is_final(*r.state) &&
        std::find_if(to_notify_.begin(), to_notify_.end(),
                     [&](const auto& p) { return p.first == r.order_id; }) == to_notify_.end())
      to_notify_.emplace_back(r.order_id, r.updated_ms);
    return std::nullopt;
  }

  std::optional<failure> operator()(const notification_updated& r) {
    stmt s(
        prepare("UPDATE notifications SET state = coalesce(?2, state), attempts = coalesce(?3, attempts),"
                " next_attempt_ms = coalesce(?4, next_attempt_ms), expires_ms = coalesce(?5, expires_ms),"
                " last_error = coalesce(?6, last_error), delivered_ms = coalesce(?7, delivered_ms),"
                " updated_ms = ?8"
                " WHERE notification_id = ?1 AND (?9 IS NULL OR state = ?9)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.notification_id);
    s.bind(2, r.state);
    s.bind(3, r.attempts);
    s.bind(4, r.next_attempt_ms);
    s.bind(5, r.expires_ms);
    s.bind(6, scrubbed(r.last_error));
    s.bind(7, r.delivered_ms);
    s.bind(8, r.updated_ms);
    s.bind(9, r.expect_state);
    if (auto f = done(s.step(), "notification_updated", "journal.duplicate_id")) return f;
    if (auto f = check_updated("SELECT state FROM notifications WHERE notification_id = ?1",
                               r.notification_id, "notification_updated"))
      return f;
    notifications_touched_ = true;
    return std::nullopt;
  }

  // A row generated by another node's writer (a standby applying the active's batch).
  std::optional<failure> operator()(const notification_created& r) {
    stmt s(
        prepare("INSERT INTO notifications(notification_id, order_id, event, order_state, payload,"
                " created_ms, state, attempts, next_attempt_ms, expires_ms, last_error, delivered_ms,"
                " updated_ms, endpoint)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.notification_id);
    s.bind(2, r.order_id);
    s.bind(3, r.event);
    s.bind(4, r.order_state);
    s.bind(5, r.payload);
    s.bind(6, r.created_ms);
    s.bind(7, r.state);
    s.bind(8, r.attempts);
    s.bind(9, r.next_attempt_ms);
    s.bind(10, r.expires_ms);
    s.bind(11, scrubbed(r.last_error));
    s.bind(12, r.delivered_ms);
    s.bind(13, r.updated_ms);
    s.bind(14, r.endpoint);
    if (auto f = done(s.step(), "notification_created", "journal.duplicate_id")) return f;
    notifications_touched_ = true;
    return std::nullopt;
  }

  std::optional<failure> operator()(const shared_file_set& r) {
    if (r.name != "keystore" && r.name != "registry")
      return failure{"journal.invalid_record", "shared_file_set: unknown name '" + r.name + "'"};
    if (r.origin.empty()) return failure{"journal.invalid_record", "shared_file_set: empty origin"};
    if (to_hex(sha256(r.content)) != r.sha256)
      return failure{"journal.invalid_record", "shared_file_set: " + r.name + ": SHA-256 does not match the content"};
    stmt s(
        prepare("INSERT INTO shared_files(name, content, sha256, origin, set_ms) VALUES(?1, ?2, ?3, ?4, ?5)"
                " ON CONFLICT(name) DO UPDATE SET content = excluded.content, sha256 = excluded.sha256,"
                " origin = excluded.origin, set_ms = excluded.set_ms"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.name);
    s.bind_blob(2, r.content);
    s.bind(3, r.sha256);
    s.bind(4, r.origin);
    s.bind(5, r.set_ms);
    return done(s.step(), "shared_file_set", "journal.duplicate_id");
  }

  // Inserts the outbox rows of the orders this batch made final (writer.hpp, notifications):
  // one per endpoint that takes the order's merchant.
  std::optional<failure> write_notifications() {
    static const std::vector<writer_options::notify_endpoint> every_merchant{{"", {}, true}};
    const auto& endpoints =
        notify_ == nullptr || notify_->endpoints.empty() ? every_merchant : notify_->endpoints;
    for (const auto& [order_id, at_ms] : to_notify_) {
      std::string state, merchant;
      {
        stmt q(prepare("SELECT state, merchant_id FROM orders WHERE order_id = ?1"));
        if (!ok_) return prepare_failure();
        q.bind(1, order_id);
        const int rc = q.step();
        if (rc != SQLITE_ROW) return classify(c_, rc, "notification", "journal.write_failed");
        state = q.text(0);
        merchant = q.text(1);
      }
      // A later record of the batch may have moved the order on again.
      if (!is_final(state)) continue;
      for (const auto& ep : endpoints) {
        if (!ep.merchants.empty() &&
            std::find(ep.merchants.begin(), ep.merchants.end(), merchant) == ep.merchants.end())
          continue;
        if (auto f = insert_notification(order_id, at_ms, ep)) return f;
      }
    }
    return std::nullopt;
  }

  std::optional<failure> insert_notification(const std::string& order_id, std::int64_t at_ms,
                                             const writer_options::notify_endpoint& ep) {
    // Only the masked PAN goes out, and only as the operations table holds it (its CHECKs
    // refuse a masked form that keeps more than the first 8 and last 4 digits).
    stmt s(prepare(
        "INSERT INTO notifications(notification_id, order_id, event, order_state, payload, created_ms,"
        " state, attempts, next_attempt_ms, updated_ms, endpoint)"
        " SELECT ?1, o.order_id, 'order.final', o.state, json_object('notification_id', ?1,"
        "  'event', 'order.final', 'order_id', o.order_id, 'order_no', o.order_no,"
        "  'merchant', o.merchant_id, 'store', o.store_id, 'till', o.till_id, 'kind', o.kind,"
        "  'state', o.state, 'result_code', o.result_code, 'amount_minor', o.amount_minor,"
        "  'approved_amount_minor', o.approved_amount_minor, 'currency', o.currency,"
        "  'reason_cashier', o.reason_cashier, 'business_date', o.business_date, 'at_ms', ?2,"
        "  'pan_masked', (SELECT op.pan_masked FROM operations op WHERE op.order_id = o.order_id"
        "                 AND op.pan_masked IS NOT NULL ORDER BY op.created_ms, op.rowid LIMIT 1)),"
        "  ?2, 'pending', 0, ?2, ?2, ?4"
        " FROM orders o WHERE o.order_id = ?3 AND o.state IS NOT (SELECT n.order_state FROM notifications n"
        "   WHERE n.order_id = o.order_id AND (n.endpoint = ?4 OR (?5 AND n.endpoint = ''))"
        "   ORDER BY n.created_ms DESC, n.rowid DESC LIMIT 1)"));
    if (!ok_) return prepare_failure();
    const std::string id = new_id();
    s.bind(1, id);
    s.bind(2, at_ms);
    s.bind(3, order_id);
    s.bind(4, ep.name);
    s.bind(5, static_cast<std::int64_t>(ep.legacy_rows ? 1 : 0));
    if (auto f = done(s.step(), "notification", "journal.duplicate_id")) return f;
    if (sqlite3_changes(c_.get()) == 0) return std::nullopt;
    notifications_touched_ = true;
    return read_generated(id);
  }

  // The row as SQLite stored it (the payload is built in SQL), for apply_outcome::generated.
  std::optional<failure> read_generated(const std::string& id) {
    stmt q(
        prepare("SELECT notification_id, order_id, event, order_state, payload, created_ms, state,"
                " attempts, next_attempt_ms, expires_ms, last_error, delivered_ms, updated_ms, endpoint"
                " FROM notifications WHERE notification_id = ?1"));
    if (!ok_) return prepare_failure();
    q.bind(1, id);
    const int rc = q.step();
    if (rc != SQLITE_ROW) return classify(c_, rc, "notification", "journal.write_failed");
    notification_created n;
    n.notification_id = q.text(0);
    n.order_id = q.text(1);
    n.event = q.text(2);
    n.order_state = q.text(3);
    n.payload = q.text(4);
    n.created_ms = q.int64(5);
    n.state = q.text(6);
    n.attempts = q.int64(7);
    n.next_attempt_ms = q.int64(8);
    n.expires_ms = q.opt_int64(9);
    n.last_error = q.opt_text(10);
    n.delivered_ms = q.opt_int64(11);
    n.updated_ms = q.int64(12);
    n.endpoint = q.text(13);
    generated_.push_back(std::move(n));
    return std::nullopt;
  }

  std::optional<failure> operator()(const operation_created& r) {
    stmt s(
        prepare("INSERT INTO operations(op_id, order_id, parent_op_id, kind, state, amount_minor,"
                " currency, entry_mode, scheme, pan_masked, pan_hash, pan_ciphertext, created_ms,"
                " updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.op_id);
    s.bind(2, r.order_id);
    s.bind(3, r.parent_op_id);
    s.bind(4, r.kind);
    s.bind(5, r.state);
    s.bind(6, r.amount_minor);
    s.bind(7, r.currency);
    s.bind(8, r.entry_mode);
    s.bind(9, r.scheme);
    bind_pan(s, 10, r.pan);
    s.bind(13, r.created_ms);
    return done(s.step(), "operation_created", "journal.duplicate_id");
  }

  std::optional<failure> operator()(const operation_updated& r) {
    stmt s(
        prepare("UPDATE operations SET state = coalesce(?2, state), entry_mode = coalesce(?3, entry_mode),"
                " scheme = coalesce(?4, scheme), pan_masked = coalesce(?5, pan_masked),"
                " pan_hash = coalesce(?6, pan_hash), pan_ciphertext = coalesce(?7, pan_ciphertext),"
                " auth_code = coalesce(?8, auth_code), response_code = coalesce(?9, response_code),"
                " result_code = coalesce(?10, result_code), updated_ms = ?11,"
                " emv_data = coalesce(?13, emv_data)"
                " WHERE op_id = ?1 AND (?12 IS NULL OR state = ?12)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.op_id);
    s.bind(2, r.state);
    s.bind(3, r.entry_mode);
    s.bind(4, r.scheme);
    bind_pan(s, 5, r.pan);
    s.bind(8, r.auth_code);
    s.bind(9, r.response_code);
    s.bind(10, r.result_code);
    s.bind(11, r.updated_ms);
    s.bind(12, r.expect_state);
    s.bind(13, r.emv_data);
    if (auto f = done(s.step(), "operation_updated", "journal.duplicate_id")) return f;
    return check_updated("SELECT state FROM operations WHERE op_id = ?1", r.op_id, "operation_updated");
  }

  std::optional<failure> operator()(const acquirer_message_written& r) {
    stmt s(
        prepare("INSERT INTO acquirer_messages(msg_id, op_id, original_msg_id, acquirer, terminal_id, mti,"
                " stan, local_datetime, rrn, amount_minor, currency, state, created_ms, updated_ms,"
                " next_attempt_ms, icc_data, card_ciphertext, batch_no)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16,"
                // The terminal's open batch (schema v6): one above the last batch written.
                " (SELECT coalesce(max(batch_no), 0) + 1 FROM settlement_batches"
                "   WHERE acquirer = ?4 AND terminal_id = ?5))"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.msg_id);
    s.bind(2, r.op_id);
    s.bind(3, r.original_msg_id);
    s.bind(4, r.acquirer);
    s.bind(5, r.terminal_id);
    s.bind(6, r.mti);
    s.bind(7, static_cast<std::int64_t>(r.stan));
    s.bind(8, r.local_datetime);
    s.bind(9, r.rrn);
    s.bind(10, r.amount_minor);
    s.bind(11, r.currency);
    s.bind(12, r.state);
    s.bind(13, r.created_ms);
    s.bind(14, r.next_attempt_ms);
    if (r.icc_data.empty())
      s.bind_null(15);
    else
      s.bind_blob(15, r.icc_data);
    if (r.card_ciphertext.empty())
      s.bind_null(16);
    else
      s.bind_blob(16, r.card_ciphertext);
    int rc = s.step();
    // The primary key (msg_id) and the acquirer key share the UNIQUE error code; the
    // message names the columns, so it tells which one was hit.
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
        (rc == SQLITE_CONSTRAINT_UNIQUE && c_.errmsg().find(".msg_id") != std::string::npos)) {
      return classify(c_, rc, "acquirer_message_written", "journal.duplicate_id");
    }
    return done(rc, "acquirer_message_written", "journal.duplicate_message");
  }

  std::optional<failure> operator()(const acquirer_message_updated& r) {
    stmt s(
        prepare("UPDATE acquirer_messages SET state = coalesce(?2, state), rrn = coalesce(?3, rrn),"
                " response_code = coalesce(?4, response_code), auth_code = coalesce(?5, auth_code),"
                " updated_ms = ?6, attempts = coalesce(?8, attempts),"
                " next_attempt_ms = coalesce(?9, next_attempt_ms), last_error = coalesce(?10, last_error)"
                " WHERE msg_id = ?1 AND (?7 IS NULL OR state = ?7)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.msg_id);
    s.bind(2, r.state);
    s.bind(3, r.rrn);
    s.bind(4, r.response_code);
    s.bind(5, r.auth_code);
    s.bind(6, r.updated_ms);
    s.bind(7, r.expect_state);
    s.bind(8, r.attempts);
    s.bind(9, r.next_attempt_ms);
    s.bind(10, r.last_error);
    if (auto f = done(s.step(), "acquirer_message_updated", "journal.duplicate_message")) return f;
    return check_updated("SELECT state FROM acquirer_messages WHERE msg_id = ?1", r.msg_id,
                         "acquirer_message_updated");
  }

  std::optional<failure> operator()(const event_appended& r) {
    stmt s(
        prepare("INSERT INTO events(order_id, op_id, at_ms, actor, kind, reason, detail)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.order_id);
    s.bind(2, r.op_id);
    s.bind(3, r.at_ms);
    s.bind(4, to_string(r.actor));
    s.bind(5, r.kind);
    s.bind(6, scrub_card_numbers(r.reason));
    s.bind(7, scrub_card_numbers(r.detail));
    return done(s.step(), "event_appended", "journal.duplicate_id");
  }

  std::optional<failure> operator()(const counter_set& r) {
    stmt s(
        prepare("INSERT INTO counters(name, value) VALUES(?1, ?2)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value"));
    if (!ok_) return prepare_failure();
    if (r.name.empty()) return failure{"journal.invalid_record", "counter_set: empty name"};
    s.bind(1, r.name);
    s.bind(2, r.value);
    return done(s.step(), "counter_set", "journal.duplicate_id");
  }

  std::optional<failure> operator()(const pad_health_set& r) {
    stmt s(prepare(
        "INSERT INTO pad_health(pad_id, state, serial, model, firmware, peer, node, connected_ms, "
        "last_seen_ms,"
        " rtt_ms, missed_probes, dukpt, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
        "?12, ?13)"
        " ON CONFLICT(pad_id) DO UPDATE SET state = excluded.state, serial = excluded.serial,"
        " model = excluded.model, firmware = excluded.firmware, peer = excluded.peer, node = excluded.node,"
        " connected_ms = excluded.connected_ms, last_seen_ms = excluded.last_seen_ms, rtt_ms = "
        "excluded.rtt_ms,"
        " missed_probes = excluded.missed_probes, dukpt = excluded.dukpt, updated_ms = excluded.updated_ms"
        " WHERE excluded.updated_ms >= pad_health.updated_ms"));
    if (!ok_) return prepare_failure();
    if (r.pad_id.empty()) return failure{"journal.invalid_record", "pad_health_set: empty pad_id"};
    s.bind(1, r.pad_id);
    s.bind(2, r.state);
    s.bind(3, r.serial);
    s.bind(4, r.model);
    s.bind(5, r.firmware);
    s.bind(6, r.peer);
    s.bind(7, r.node);
    s.bind(8, r.connected_ms);
    s.bind(9, r.last_seen_ms);
    s.bind(10, r.rtt_ms);
    s.bind(11, r.missed_pings);
    s.bind(12, r.dukpt);
    s.bind(13, r.updated_ms);
    return done(s.step(), "pad_health_set", "journal.invalid_record");
  }

  std::optional<failure> operator()(const settlement_batch_written& r) {
    stmt s(prepare(
        "INSERT INTO settlement_batches(batch_id, acquirer, terminal_id, business_date, card_acceptor_id,"
        " state, credits, credit_reversals, debits, debit_reversals, credit_amount, credit_reversal_amount,"
        " debit_amount, debit_reversal_amount, in_doubt, created_ms, updated_ms, batch_no)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?17)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.batch_id);
    s.bind(2, r.acquirer);
    s.bind(3, r.terminal_id);
    s.bind(4, r.business_date);
    s.bind(5, r.card_acceptor_id);
    s.bind(6, r.state);
    const auto& t = r.totals;
    s.bind(7, t.credits);
    s.bind(8, t.credit_reversals);
    s.bind(9, t.debits);
    s.bind(10, t.debit_reversals);
    s.bind(11, t.credit_amount);
    s.bind(12, t.credit_reversal_amount);
    s.bind(13, t.debit_amount);
    s.bind(14, t.debit_reversal_amount);
    s.bind(15, r.in_doubt);
    s.bind(16, r.created_ms);
    s.bind(17, r.batch_no);
    return done(s.step(), "settlement_batch_written", "journal.duplicate_batch");
  }

  std::optional<failure> operator()(const settlement_batch_updated& r) {
    stmt s(
        prepare("UPDATE settlement_batches SET state = coalesce(?2, state), response_code = coalesce(?3, "
                "response_code),"
                " uploads_total = coalesce(?4, uploads_total), uploads_done = coalesce(?5, uploads_done),"
                " updated_ms = ?6, credits = coalesce(?8, credits),"
                " credit_reversals = coalesce(?9, credit_reversals), debits = coalesce(?10, debits),"
                " debit_reversals = coalesce(?11, debit_reversals),"
                " credit_amount = coalesce(?12, credit_amount),"
                " credit_reversal_amount = coalesce(?13, credit_reversal_amount),"
                " debit_amount = coalesce(?14, debit_amount),"
                " debit_reversal_amount = coalesce(?15, debit_reversal_amount),"
                " in_doubt = coalesce(?16, in_doubt)"
                " WHERE batch_id = ?1 AND (?7 IS NULL OR state = ?7)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.batch_id);
    s.bind(2, r.state);
    s.bind(3, r.response_code);
    s.bind(4, r.uploads_total);
    s.bind(5, r.uploads_done);
    s.bind(6, r.updated_ms);
    s.bind(7, r.expect_state);
    if (r.totals) {
      const auto& t = *r.totals;
      s.bind(8, t.credits);
      s.bind(9, t.credit_reversals);
      s.bind(10, t.debits);
      s.bind(11, t.debit_reversals);
      s.bind(12, t.credit_amount);
      s.bind(13, t.credit_reversal_amount);
      s.bind(14, t.debit_amount);
      s.bind(15, t.debit_reversal_amount);
    }
    s.bind(16, r.in_doubt);
    if (auto f = done(s.step(), "settlement_batch_updated", "journal.duplicate_batch")) return f;
    return check_updated("SELECT state FROM settlement_batches WHERE batch_id = ?1", r.batch_id,
                         "settlement_batch_updated");
  }

  std::optional<failure> operator()(const settlement_step_written& r) {
    stmt s(prepare(
        "INSERT INTO settlement_steps(step_id, batch_id, seq, kind, mti, processing_code, stan, at_ms,"
        " subject_msg_id, state, created_ms, updated_ms)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.step_id);
    s.bind(2, r.batch_id);
    s.bind(3, r.seq);
    s.bind(4, r.kind);
    s.bind(5, r.mti);
    s.bind(6, r.processing_code);
    s.bind(7, static_cast<std::int64_t>(r.stan));
    s.bind(8, r.at_ms);
    s.bind(9, r.subject_msg_id);
    s.bind(10, r.state);
    s.bind(11, r.created_ms);
    return done(s.step(), "settlement_step_written", "journal.duplicate_id");
  }

  std::optional<failure> operator()(const settlement_step_updated& r) {
    stmt s(
        prepare("UPDATE settlement_steps SET state = coalesce(?2, state),"
                " response_code = coalesce(?3, response_code), updated_ms = ?4"
                " WHERE step_id = ?1 AND (?5 IS NULL OR state = ?5)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.step_id);
    s.bind(2, r.state);
    s.bind(3, r.response_code);
    s.bind(4, r.updated_ms);
    s.bind(5, r.expect_state);
    if (auto f = done(s.step(), "settlement_step_updated", "journal.duplicate_id")) return f;
    return check_updated("SELECT state FROM settlement_steps WHERE step_id = ?1", r.step_id,
                         "settlement_step_updated");
  }

  std::optional<failure> operator()(const batch_still_open& r) {
    stmt s(
        prepare("SELECT state FROM settlement_batches WHERE acquirer = ?1 AND terminal_id = ?2"
                " AND batch_no = ?3"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.acquirer);
    s.bind(2, r.terminal_id);
    s.bind(3, r.batch_no);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc == SQLITE_ROW)
      return failure{"journal.state_conflict",
                     "batch_still_open: batch " + std::to_string(r.batch_no) + " is '" + s.text(0) + "'"};
    return classify(c_, rc, "batch_still_open", "journal.write_failed");
  }

  std::optional<failure> operator()(const audit_appended& r) {
    stmt s(
        prepare("INSERT INTO audit_log(at_ms, actor, source, action, subject, detail, outcome)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.at_ms);
    s.bind(2, r.actor);
    s.bind(3, r.source);
    s.bind(4, r.action);
    s.bind(5, scrub_card_numbers(r.subject));
    s.bind(6, scrub_card_numbers(r.detail));
    s.bind(7, scrub_card_numbers(r.outcome));
    return done(s.step(), "audit_appended", "journal.duplicate_id");
  }

  std::optional<failure> operator()(const case_resolved& r) {
    stmt s(
        prepare("INSERT INTO case_resolutions(case_kind, subject_id, resolved_ms, actor, note)"
                " VALUES(?1, ?2, ?3, ?4, ?5)"));
    if (!ok_) return prepare_failure();
    s.bind(1, r.case_kind);
    s.bind(2, r.subject_id);
    s.bind(3, r.resolved_ms);
    s.bind(4, r.actor);
    s.bind(5, scrub_card_numbers(r.note));
    const int rc = s.step();
    // A second resolution is a state conflict that people read, not a bare key error.
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
      return failure{"journal.state_conflict",
                     "case_resolved: the case " + r.case_kind + ":" + r.subject_id + " is already resolved"};
    return done(rc, "case_resolved", "journal.state_conflict");
  }

 private:
  sqlite3_stmt* prepare(std::string_view sql) {
    auto* s = c_.prepare(sql);
    ok_ = s != nullptr;
    return s;
  }

  failure prepare_failure() {
    int rc = sqlite3_extended_errcode(c_.get());
    return failure{"journal.write_failed", "prepare: " + c_.errmsg(), is_io_failure(rc)};
  }

  std::optional<failure> done(int rc, std::string_view what, std::string_view duplicate_code) {
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return std::nullopt;
    return classify(c_, rc, what, duplicate_code);
  }

  // An UPDATE that changed nothing either named a missing row or met another state.
  std::optional<failure> check_updated(const char* select_state, const std::string& id,
                                       std::string_view what) {
    if (sqlite3_changes(c_.get()) > 0) return std::nullopt;
    stmt s(prepare(select_state));
    if (!ok_) return prepare_failure();
    s.bind(1, id);
    int rc = s.step();
    if (rc == SQLITE_DONE) return failure{"journal.not_found", std::string(what) + ": no such row"};
    if (rc == SQLITE_ROW) {
      return failure{"journal.state_conflict",
                     std::string(what) + ": current state is '" + s.text(0) + "', not the expected one"};
    }
    return classify(c_, rc, what, "journal.write_failed");
  }

  static void bind_pan(stmt& s, int first, const std::optional<stored_pan>& pan) {
    if (pan) {
      s.bind(first, std::string_view(pan->masked));
      s.bind(first + 1, std::string_view(pan->search_hash));
      s.bind_blob(first + 2, pan->ciphertext);
    } else {
      s.bind_null(first);
      s.bind_null(first + 1);
      s.bind_null(first + 2);
    }
  }

  bool is_final(std::string_view state) const {
    const auto& f = notify_->final_states;
    return std::find(f.begin(), f.end(), state) != f.end();
  }

  connection& c_;
  bool ok_ = true;
  const writer_options::notification_options* notify_;
  std::vector<std::pair<std::string, std::int64_t>> to_notify_;  // order id, at_ms
  bool notifications_touched_ = false;
  std::vector<notification_created> generated_;
};

}  // namespace

apply_outcome apply_records(connection& c, const std::vector<record>& records,
                            const writer_options::notification_options* notify) {
  applier a(c, notify);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (auto f = std::visit(a, records[i])) {
      return {make_error(std::move(f->code), "record " + std::to_string(i) + " " + std::move(f->message)),
              f->io};
    }
  }
  if (auto f = a.write_notifications()) return {make_error(std::move(f->code), std::move(f->message)), f->io};
  apply_outcome out;
  out.notifications = a.notifications_touched();
  out.generated = a.take_generated();
  return out;
}

}  // namespace eftd::journal::detail
