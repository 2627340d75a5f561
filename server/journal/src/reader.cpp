#include "eftd/journal/reader.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

#include "eftd/journal/schema.hpp"
#include "sqlite_db.hpp"

namespace eftd::journal {

using detail::stmt;

namespace {

constexpr const char* order_columns =
    "o.order_id, o.merchant_id, o.store_id, o.till_id, o.order_no, o.business_date, o.kind,"
    " o.amount_minor, o.currency, o.state, o.result_code, o.reason_cashier, o.reason_customer,"
    " o.approved_amount_minor, o.created_ms, o.updated_ms";

// No pan_ciphertext here: rows never carry it (see operation_pan()).
constexpr const char* operation_columns =
    "op_id, order_id, parent_op_id, kind, state, amount_minor, currency, entry_mode, scheme,"
    " pan_masked, pan_hash, auth_code, response_code, result_code, created_ms, updated_ms, emv_data";

constexpr const char* message_columns =
    "msg_id, op_id, original_msg_id, acquirer, terminal_id, mti, stan, local_datetime, rrn,"
    " amount_minor, currency, state, response_code, auth_code, created_ms, updated_ms, attempts,"
    " next_attempt_ms, last_error, batch_no";

order_row read_order(const stmt& s) {
  order_row r;
  r.order_id = s.text(0);
  r.merchant_id = s.text(1);
  r.store_id = s.text(2);
  r.till_id = s.text(3);
  r.order_no = s.text(4);
  r.business_date = s.text(5);
  r.kind = s.text(6);
  r.amount_minor = s.int64(7);
  r.currency = s.text(8);
  r.state = s.text(9);
  r.result_code = s.opt_text(10);
  r.reason_cashier = s.opt_text(11);
  r.reason_customer = s.opt_text(12);
  r.approved_amount_minor = s.opt_int64(13);
  r.created_ms = s.int64(14);
  r.updated_ms = s.int64(15);
  return r;
}

operation_row read_operation(const stmt& s) {
  operation_row r;
  r.op_id = s.text(0);
  r.order_id = s.text(1);
  r.parent_op_id = s.opt_text(2);
  r.kind = s.text(3);
  r.state = s.text(4);
  r.amount_minor = s.int64(5);
  r.currency = s.text(6);
  r.entry_mode = s.opt_text(7);
  r.scheme = s.opt_text(8);
  r.pan_masked = s.opt_text(9);
  r.pan_hash = s.opt_text(10);
  r.auth_code = s.opt_text(11);
  r.response_code = s.opt_text(12);
  r.result_code = s.opt_text(13);
  r.created_ms = s.int64(14);
  r.updated_ms = s.int64(15);
  r.emv_data = s.opt_text(16);
  return r;
}

acquirer_message_row read_message(const stmt& s) {
  acquirer_message_row r;
  r.msg_id = s.text(0);
  r.op_id = s.text(1);
  r.original_msg_id = s.opt_text(2);
  r.acquirer = s.text(3);
  r.terminal_id = s.text(4);
  r.mti = s.text(5);
  r.stan = static_cast<std::uint32_t>(s.int64(6));
  r.local_datetime = s.text(7);
  r.rrn = s.opt_text(8);
  r.amount_minor = s.int64(9);
  r.currency = s.text(10);
  r.state = s.text(11);
  r.response_code = s.opt_text(12);
  r.auth_code = s.opt_text(13);
  r.created_ms = s.int64(14);
  r.updated_ms = s.int64(15);
  r.attempts = s.int64(16);
  if (!s.is_null(17)) r.next_attempt_ms = s.int64(17);
  r.last_error = s.opt_text(18);
  r.batch_no = s.opt_int64(19);
  return r;
}

event_row read_event(const stmt& s) {
  event_row r;
  r.event_id = s.int64(0);
  r.order_id = s.text(1);
  r.op_id = s.opt_text(2);
  r.at_ms = s.int64(3);
  r.actor = parse_actor(s.text(4)).value_or(actor::server);
  r.kind = s.text(5);
  r.reason = s.text(6);
  r.detail = s.text(7);
  return r;
}

}  // namespace

struct reader::impl {
  detail::connection db;
  int version = 0;

  error failed(std::string_view what) const {
    return make_error("journal.query_failed", std::string(what) + ": " + db.errmsg());
  }

  // Runs a prepared query and turns every row into a T.
  template <class T, class Bind, class Read>
  result<std::vector<T>> rows(const std::string& sql, std::string_view what, Bind&& bind, Read&& read) {
    auto* raw = db.prepare(sql);
    if (raw == nullptr) return failed(what);
    stmt s(raw);
    bind(s);
    std::vector<T> out;
    for (;;) {
      int rc = s.step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return failed(what);
      out.push_back(read(s));
    }
  }
};

// Keeps a multi-statement read on one snapshot; ends the read transaction on every path.
class read_snapshot {
 public:
  explicit read_snapshot(detail::connection& c) : c_(c) { ok_ = c_.exec("BEGIN") == SQLITE_OK; }
  ~read_snapshot() {
    if (ok_) c_.exec("COMMIT");
  }
  read_snapshot(const read_snapshot&) = delete;
  read_snapshot& operator=(const read_snapshot&) = delete;
  bool ok() const { return ok_; }

 private:
  detail::connection& c_;
  bool ok_ = false;
};

reader::reader(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
reader::reader(reader&&) noexcept = default;
reader& reader::operator=(reader&&) noexcept = default;
reader::~reader() = default;

result<reader> reader::open(const std::filesystem::path& db) {
  std::error_code ec;
  if (!std::filesystem::exists(db, ec)) {
    return make_error("journal.open_failed", "journal database does not exist");
  }
  auto c = detail::open_connection(db, detail::open_mode::read_only, 5000, {});
  if (!c) return c.err();
  auto p = std::make_unique<impl>();
  p->db = std::move(*c);
  auto v = detail::user_version(p->db);
  if (!v) return v.err();
  if (*v > latest_schema_version()) {
    return make_error("journal.schema_too_new", "journal schema version " + std::to_string(*v) +
                                                    " is newer than this program knows (" +
                                                    std::to_string(latest_schema_version()) + ")");
  }
  if (*v < latest_schema_version()) {
    return make_error("journal.schema_outdated", "journal schema version " + std::to_string(*v) +
                                                     " predates this program; open a writer to migrate it");
  }
  p->version = *v;
  return reader(std::move(p));
}

int reader::schema_version() const noexcept {
  return impl_->version;
}

result<std::string> reader::pragma(const std::string& name) {
  return detail::query_pragma(impl_->db, name);
}

result<std::optional<order_row>> reader::find_order(const std::string& till_id, const std::string& order_no,
                                                    const std::string& business_date) {
  auto r = impl_->rows<order_row>(
      std::string("SELECT ") + order_columns +
          " FROM orders o WHERE o.till_id = ?1 AND o.order_no = ?2 AND o.business_date = ?3",
      "find_order",
      [&](stmt& s) {
        s.bind(1, till_id);
        s.bind(2, order_no);
        s.bind(3, business_date);
      },
      read_order);
  if (!r) return r.err();
  if (r->empty()) return std::optional<order_row>();
  return std::optional<order_row>(std::move(r->front()));
}

result<std::vector<order_row>> reader::find_orders_recent(const std::string& till_id,
                                                          const std::string& order_no,
                                                          std::int64_t since_ms) {
  return impl_->rows<order_row>(
      std::string("SELECT ") + order_columns +
          " FROM orders o WHERE o.till_id = ?1 AND o.order_no = ?2 AND o.created_ms >= ?3"
          " ORDER BY o.created_ms DESC, o.order_id DESC",
      "find_orders_recent",
      [&](stmt& s) {
        s.bind(1, till_id);
        s.bind(2, order_no);
        s.bind(3, since_ms);
      },
      read_order);
}

result<std::optional<order_view>> reader::order_detail(const std::string& order_id) {
  read_snapshot snap(impl_->db);
  if (!snap.ok()) return impl_->failed("order_detail");
  auto bind_id = [&](stmt& s) { s.bind(1, order_id); };

  auto orders =
      impl_->rows<order_row>(std::string("SELECT ") + order_columns + " FROM orders o WHERE o.order_id = ?1",
                             "order_detail", bind_id, read_order);
  if (!orders) return orders.err();
  if (orders->empty()) return std::optional<order_view>();

  order_view v;
  v.order = std::move(orders->front());
  auto ops = impl_->rows<operation_row>(std::string("SELECT ") + operation_columns +
                                            " FROM operations WHERE order_id = ?1 ORDER BY created_ms, rowid",
                                        "order_detail", bind_id, read_operation);
  if (!ops) return ops.err();
  v.operations = std::move(*ops);

  auto msgs = impl_->rows<acquirer_message_row>(
      std::string("SELECT ") + message_columns +
          " FROM acquirer_messages WHERE op_id IN (SELECT op_id FROM operations WHERE order_id = ?1)"
          " ORDER BY created_ms, rowid",
      "order_detail", bind_id, read_message);
  if (!msgs) return msgs.err();
  v.messages = std::move(*msgs);

  auto evs = impl_->rows<event_row>(
      "SELECT event_id, order_id, op_id, at_ms, actor, kind, reason, detail FROM events"
      " WHERE order_id = ?1 ORDER BY event_id",
      "order_detail", bind_id, read_event);
  if (!evs) return evs.err();
  v.events = std::move(*evs);
  return std::optional<order_view>(std::move(v));
}

result<std::vector<order_row>> reader::list_orders(const order_filter& f) {
  if (f.limit == 0 || f.limit > 10000) {
    return make_error("journal.invalid_argument", "limit must be between 1 and 10000");
  }
  // Only placeholders go into the SQL text; values are bound, so a filter value can never
  // change the statement. Each filter shape is prepared once and then reused.
  std::string sql = std::string("SELECT ") + order_columns + " FROM orders o WHERE 1";
  std::vector<std::function<void(stmt&, int)>> binds;
  auto add = [&](const char* before, const char* after, std::function<void(stmt&, int)> bind) {
    binds.push_back(std::move(bind));
    sql += " AND ";
    sql += before;
    sql += " ?" + std::to_string(binds.size());
    sql += after;
  };
  auto text_cond = [&](const std::optional<std::string>& v, const char* before, const char* after = "") {
    if (v) add(before, after, [value = *v](stmt& s, int i) { s.bind(i, value); });
  };
  auto int_cond = [&](const std::optional<std::int64_t>& v, const char* before) {
    if (v) add(before, "", [value = *v](stmt& s, int i) { s.bind(i, value); });
  };
  text_cond(f.business_date_from, "o.business_date >=");
  text_cond(f.business_date_to, "o.business_date <=");
  text_cond(f.merchant_id, "o.merchant_id =");
  text_cond(f.store_id, "o.store_id =");
  text_cond(f.till_id, "o.till_id =");
  text_cond(f.order_no, "o.order_no =");
  text_cond(f.kind, "o.kind =");
  text_cond(f.state, "o.state =");
  text_cond(f.result_code, "o.result_code =");
  text_cond(f.scheme, "EXISTS (SELECT 1 FROM operations p WHERE p.order_id = o.order_id AND p.scheme =", ")");
  text_cond(f.pan_hash,
            "EXISTS (SELECT 1 FROM operations p WHERE p.order_id = o.order_id AND p.pan_hash =", ")");
  int_cond(f.amount_min, "o.amount_minor >=");
  int_cond(f.amount_max, "o.amount_minor <=");
  int_cond(f.created_from_ms, "o.created_ms >=");
  int_cond(f.created_to_ms, "o.created_ms <=");
  sql +=
      f.newest_first ? " ORDER BY o.created_ms DESC, o.order_id DESC" : " ORDER BY o.created_ms, o.order_id";
  const int limit_i = static_cast<int>(binds.size()) + 1;
  sql += " LIMIT ?" + std::to_string(limit_i) + " OFFSET ?" + std::to_string(limit_i + 1);

  return impl_->rows<order_row>(
      sql, "list_orders",
      [&](stmt& s) {
        for (std::size_t i = 0; i < binds.size(); ++i) binds[i](s, static_cast<int>(i) + 1);
        s.bind(limit_i, static_cast<std::int64_t>(f.limit));
        s.bind(limit_i + 1, static_cast<std::int64_t>(f.offset));
      },
      read_order);
}

result<std::int64_t> reader::counter(const std::string& name) {
  auto r = impl_->rows<std::int64_t>(
      "SELECT value FROM counters WHERE name = ?1", "counter", [&](stmt& s) { s.bind(1, name); },
      [](const stmt& s) { return s.int64(0); });
  if (!r) return r.err();
  return r->empty() ? std::int64_t{0} : r->front();
}

result<repl_position> reader::replication_position() {
  read_snapshot snap(impl_->db);
  repl_position pos;
  auto h = impl_->rows<std::string>(
      "SELECT value FROM repl_meta WHERE key = 'history'", "replication history", [](stmt&) {},
      [](const stmt& s) { return s.text(0); });
  if (!h) return h.err();
  if (!h->empty()) pos.history = h->front();
  auto last = impl_->rows<std::pair<std::int64_t, std::int64_t>>(
      "SELECT seq, epoch FROM repl_log ORDER BY seq DESC LIMIT 1", "replication log", [](stmt&) {},
      [](const stmt& s) { return std::pair{s.int64(0), s.int64(1)}; });
  if (!last) return last.err();
  if (!last->empty()) {
    pos.last_seq = static_cast<std::uint64_t>(last->front().first);
    pos.last_epoch = static_cast<std::uint64_t>(last->front().second);
  }
  return pos;
}

result<std::vector<repl_entry>> reader::replication_entries(std::uint64_t after, std::size_t max_entries,
                                                            std::size_t max_bytes) {
  auto* raw = impl_->db.prepare("SELECT seq, epoch, payload FROM repl_log WHERE seq > ?1 ORDER BY seq LIMIT ?2");
  if (raw == nullptr) return impl_->failed("replication log");
  stmt s(raw);
  s.bind(1, static_cast<std::int64_t>(after));
  s.bind(2, static_cast<std::int64_t>(std::max<std::size_t>(max_entries, 1)));
  std::vector<repl_entry> out;
  std::size_t bytes_so_far = 0;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return impl_->failed("replication log");
    repl_entry e{static_cast<std::uint64_t>(s.int64(0)), static_cast<std::uint64_t>(s.int64(1)), s.blob(2)};
    bytes_so_far += e.payload.size();
    out.push_back(std::move(e));
    if (bytes_so_far >= max_bytes) return out;
  }
}

result<std::optional<std::uint64_t>> reader::replication_epoch_at(std::uint64_t seq) {
  auto r = impl_->rows<std::int64_t>(
      "SELECT epoch FROM repl_log WHERE seq = ?1", "replication log",
      [&](stmt& s) { s.bind(1, static_cast<std::int64_t>(seq)); }, [](const stmt& s) { return s.int64(0); });
  if (!r) return r.err();
  if (r->empty()) return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>{static_cast<std::uint64_t>(r->front())};
}

result<std::optional<std::uint64_t>> reader::replication_first_seq() {
  auto r = impl_->rows<std::int64_t>(
      "SELECT seq FROM repl_log ORDER BY seq LIMIT 1", "replication log", [](stmt&) {},
      [](const stmt& s) { return s.int64(0); });
  if (!r) return r.err();
  if (r->empty()) return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>{static_cast<std::uint64_t>(r->front())};
}

result<std::optional<shared_file_set>> reader::shared_file(const std::string& name) {
  auto r = impl_->rows<shared_file_set>(
      "SELECT name, content, sha256, origin, set_ms FROM shared_files WHERE name = ?1", "shared file",
      [&](stmt& s) { s.bind(1, name); },
      [](const stmt& s) { return shared_file_set{s.text(0), s.blob(1), s.text(2), s.text(3), s.int64(4)}; });
  if (!r) return r.err();
  if (r->empty()) return std::optional<shared_file_set>{};
  return std::optional<shared_file_set>{std::move(r->front())};
}

result<std::vector<pad_health_set>> reader::pad_health() {
  return impl_->rows<pad_health_set>(
      "SELECT pad_id, state, serial, model, firmware, peer, node, connected_ms, last_seen_ms, rtt_ms,"
      " missed_probes, dukpt, updated_ms FROM pad_health ORDER BY pad_id",
      "pad_health", [](stmt&) {},
      [](const stmt& s) {
        pad_health_set r;
        r.pad_id = s.text(0);
        r.state = s.text(1);
        r.serial = s.text(2);
        r.model = s.text(3);
        r.firmware = s.text(4);
        r.peer = s.text(5);
        r.node = s.text(6);
        r.connected_ms = s.opt_int64(7);
        r.last_seen_ms = s.opt_int64(8);
        r.rtt_ms = s.opt_int64(9);
        r.missed_pings = s.int64(10);
        r.dukpt = s.text(11);
        r.updated_ms = s.int64(12);
        return r;
      });
}

result<std::vector<acquirer_message_row>> reader::in_doubt_messages() {
  return impl_->rows<acquirer_message_row>(
      std::string("SELECT ") + message_columns +
          " FROM acquirer_messages"
          " WHERE state IN ('intent', 'sent', 'timeout', 'reversal_pending')"
          " ORDER BY created_ms, rowid",
      "in_doubt_messages", [](stmt&) {}, read_message);
}

result<std::vector<acquirer_message_row>> reader::queued_messages(const std::string& acquirer) {
  return impl_->rows<acquirer_message_row>(
      std::string("SELECT ") + message_columns +
          " FROM acquirer_messages WHERE state = 'pending' AND acquirer = ?1 ORDER BY created_ms, rowid",
      "queued_messages", [&](stmt& s) { s.bind(1, acquirer); }, read_message);
}

result<std::vector<acquirer_message_row>> reader::reversals_of(const std::string& original_msg_id) {
  return impl_->rows<acquirer_message_row>(
      std::string("SELECT ") + message_columns +
          " FROM acquirer_messages WHERE original_msg_id = ?1 AND mti LIKE '04%' ORDER BY created_ms, rowid",
      "reversals_of", [&](stmt& s) { s.bind(1, original_msg_id); }, read_message);
}

result<std::optional<acquirer_message_row>> reader::message(const std::string& msg_id) {
  auto r = impl_->rows<acquirer_message_row>(
      std::string("SELECT ") + message_columns + " FROM acquirer_messages WHERE msg_id = ?1", "message",
      [&](stmt& s) { s.bind(1, msg_id); }, read_message);
  if (!r) return r.err();
  if (r->empty()) return std::optional<acquirer_message_row>();
  return std::optional<acquirer_message_row>(std::move(r->front()));
}

result<std::optional<operation_row>> reader::operation(const std::string& op_id) {
  auto r = impl_->rows<operation_row>(
      std::string("SELECT ") + operation_columns + " FROM operations WHERE op_id = ?1", "operation",
      [&](stmt& s) { s.bind(1, op_id); }, read_operation);
  if (!r) return r.err();
  if (r->empty()) return std::optional<operation_row>();
  return std::optional<operation_row>(std::move(r->front()));
}

result<std::int64_t> reader::refunded_amount(const std::string& payment_op_id) {
  auto r = impl_->rows<std::int64_t>(
      "SELECT COALESCE(SUM(CASE WHEN o.state = 'approved' THEN COALESCE(o.approved_amount_minor, 0)"
      "                         WHEN o.state = 'in_progress' THEN o.amount_minor ELSE 0 END), 0)"
      " FROM operations op JOIN orders o ON o.order_id = op.order_id"
      " WHERE op.parent_op_id = ?1 AND op.kind = 'refund'",
      "refunded_amount", [&](stmt& s) { s.bind(1, payment_op_id); },
      [](const stmt& s) { return s.int64(0); });
  if (!r) return r.err();
  return r->empty() ? std::int64_t{0} : r->front();
}

result<std::int64_t> reader::follow_up_amount(const std::string& parent_op_id, std::string_view order_kind) {
  auto r = impl_->rows<std::int64_t>(
      "SELECT COALESCE(SUM(CASE WHEN o.state = 'approved' THEN COALESCE(o.approved_amount_minor, 0)"
      "                         WHEN o.state = 'in_progress' THEN o.amount_minor ELSE 0 END), 0)"
      " FROM operations op JOIN orders o ON o.order_id = op.order_id"
      " WHERE op.parent_op_id = ?1 AND o.kind = ?2",
      "follow_up_amount",
      [&](stmt& s) {
        s.bind(1, parent_op_id);
        s.bind(2, std::string(order_kind));
      },
      [](const stmt& s) { return s.int64(0); });
  if (!r) return r.err();
  return r->empty() ? std::int64_t{0} : r->front();
}

result<std::optional<stored_pan>> reader::operation_pan(const std::string& op_id) {
  auto r = impl_->rows<std::optional<stored_pan>>(
      "SELECT pan_ciphertext, pan_masked, pan_hash FROM operations WHERE op_id = ?1", "operation_pan",
      [&](stmt& s) { s.bind(1, op_id); },
      [](const stmt& s) -> std::optional<stored_pan> {
        if (s.is_null(0)) return std::nullopt;
        return stored_pan{s.blob(0), s.text(1), s.text(2)};
      });
  if (!r) return r.err();
  if (r->empty()) return make_error("journal.not_found", "no such operation");
  return std::move(r->front());
}

result<reader::advice_payload> reader::message_advice_payload(const std::string& msg_id) {
  auto r = impl_->rows<advice_payload>(
      "SELECT icc_data, card_ciphertext FROM acquirer_messages WHERE msg_id = ?1", "message_advice_payload",
      [&](stmt& s) { s.bind(1, msg_id); },
      [](const stmt& s) {
        advice_payload p;
        if (!s.is_null(0)) p.icc_data = s.blob(0);
        if (!s.is_null(1)) p.card_ciphertext = s.blob(1);
        return p;
      });
  if (!r) return r.err();
  if (r->empty()) return make_error("journal.not_found", "no such acquirer message");
  return std::move(r->front());
}

namespace {

constexpr const char* batch_columns =
    "batch_id, acquirer, terminal_id, business_date, card_acceptor_id, state, credits, credit_reversals,"
    " debits, debit_reversals, credit_amount, credit_reversal_amount, debit_amount, debit_reversal_amount,"
    " in_doubt, response_code, uploads_total, uploads_done, created_ms, updated_ms, batch_no";

settlement_batch_row read_batch(const stmt& s) {
  settlement_batch_row r;
  r.batch_id = s.text(0);
  r.acquirer = s.text(1);
  r.terminal_id = s.text(2);
  r.business_date = s.text(3);
  r.card_acceptor_id = s.text(4);
  r.state = s.text(5);
  r.totals.credits = s.int64(6);
  r.totals.credit_reversals = s.int64(7);
  r.totals.debits = s.int64(8);
  r.totals.debit_reversals = s.int64(9);
  r.totals.credit_amount = s.int64(10);
  r.totals.credit_reversal_amount = s.int64(11);
  r.totals.debit_amount = s.int64(12);
  r.totals.debit_reversal_amount = s.int64(13);
  r.in_doubt = s.int64(14);
  r.response_code = s.opt_text(15);
  r.uploads_total = s.int64(16);
  r.uploads_done = s.int64(17);
  r.created_ms = s.int64(18);
  r.updated_ms = s.int64(19);
  r.batch_no = s.int64(20);
  return r;
}

// The financial requests' own columns, prefixed for the join below (same order as
// message_columns, so read_message reads them).
constexpr const char* joined_message_columns =
    "m.msg_id, m.op_id, m.original_msg_id, m.acquirer, m.terminal_id, m.mti, m.stan, m.local_datetime,"
    " m.rrn, m.amount_minor, m.currency, m.state, m.response_code, m.auth_code, m.created_ms,"
    " m.updated_ms, m.attempts, m.next_attempt_ms, m.last_error, m.batch_no";

}  // namespace

result<std::optional<settlement_batch_row>> reader::settlement_batch(const std::string& acquirer,
                                                                     const std::string& terminal_id,
                                                                     const std::string& business_date) {
  auto r = impl_->rows<settlement_batch_row>(
      std::string("SELECT ") + batch_columns +
          " FROM settlement_batches WHERE acquirer = ?1 AND terminal_id = ?2 AND business_date = ?3"
          " ORDER BY batch_no DESC",
      "settlement_batch",
      [&](stmt& s) {
        s.bind(1, acquirer);
        s.bind(2, terminal_id);
        s.bind(3, business_date);
      },
      read_batch);
  if (!r) return r.err();
  if (r->empty()) return std::optional<settlement_batch_row>{};
  return std::optional<settlement_batch_row>{std::move(r->front())};
}

result<std::vector<settlement_batch_row>> reader::settlement_batches(const std::string& business_date) {
  return impl_->rows<settlement_batch_row>(
      std::string("SELECT ") + batch_columns +
          " FROM settlement_batches WHERE business_date = ?1 ORDER BY acquirer, terminal_id",
      "settlement_batches", [&](stmt& s) { s.bind(1, business_date); }, read_batch);
}

result<std::vector<settlement_step_row>> reader::settlement_steps(const std::string& batch_id) {
  return impl_->rows<settlement_step_row>(
      "SELECT step_id, batch_id, seq, kind, mti, processing_code, stan, at_ms, subject_msg_id, state,"
      " response_code, created_ms, updated_ms FROM settlement_steps WHERE batch_id = ?1 ORDER BY seq",
      "settlement_steps", [&](stmt& s) { s.bind(1, batch_id); },
      [](const stmt& s) {
        settlement_step_row r;
        r.step_id = s.text(0);
        r.batch_id = s.text(1);
        r.seq = s.int64(2);
        r.kind = s.text(3);
        r.mti = s.text(4);
        r.processing_code = s.text(5);
        r.stan = static_cast<std::uint32_t>(s.int64(6));
        r.at_ms = s.int64(7);
        r.subject_msg_id = s.opt_text(8);
        r.state = s.text(9);
        r.response_code = s.opt_text(10);
        r.created_ms = s.int64(11);
        r.updated_ms = s.int64(12);
        return r;
      });
}

namespace {

// The candidate columns after the message's: order kind, merchant, approved amount, entry
// mode, operation kind, and whether a reversal naming the message was acknowledged.
constexpr const char* candidate_select =
    ", o.kind, o.merchant_id, o.approved_amount_minor, op.entry_mode, op.kind,"
    " EXISTS(SELECT 1 FROM acquirer_messages r WHERE r.original_msg_id = m.msg_id"
    "   AND substr(r.mti, 1, 2) = '04' AND r.state = 'acknowledged')"
    " FROM acquirer_messages m JOIN operations op ON op.op_id = m.op_id"
    " JOIN orders o ON o.order_id = op.order_id";

settlement_candidate read_candidate(const stmt& s) {
  settlement_candidate c;
  c.message = read_message(s);
  c.order_kind = s.text(20);
  c.merchant_id = s.text(21);
  c.approved_amount_minor = s.opt_int64(22);
  c.entry_mode = s.opt_text(23);
  c.op_kind = s.text(24);
  c.reversal_acknowledged = s.int64(25) != 0;
  return c;
}

}  // namespace

result<std::vector<settlement_candidate>> reader::settlement_candidates(
    const std::string& business_date, const std::optional<std::string>& acquirer,
    const std::optional<std::string>& terminal_id) {
  return impl_->rows<settlement_candidate>(
      std::string("SELECT ") + joined_message_columns + candidate_select +
          " WHERE substr(m.mti, 2, 1) = '2' AND o.business_date = ?1"
          " AND (?2 IS NULL OR m.acquirer = ?2) AND (?3 IS NULL OR m.terminal_id = ?3)"
          " ORDER BY m.created_ms, m.rowid",
      "settlement_candidates",
      [&](stmt& s) {
        s.bind(1, business_date);
        s.bind(2, acquirer);
        s.bind(3, terminal_id);
      },
      read_candidate);
}

result<std::vector<reader::follow_up_row>> reader::approved_follow_ups(const std::string& parent_op_id,
                                                                       std::string_view order_kind) {
  return impl_->rows<follow_up_row>(
      std::string("SELECT ") + joined_message_columns +
          ", o.order_id, o.order_no FROM operations op JOIN orders o ON o.order_id = op.order_id"
          " JOIN acquirer_messages m ON m.op_id = op.op_id"
          " WHERE op.parent_op_id = ?1 AND o.kind = ?2 AND o.state = 'approved' AND m.state = 'answered'"
          " AND m.original_msg_id IS NOT NULL AND substr(m.mti, 1, 2) IN ('01', '02')"
          " ORDER BY m.created_ms, m.rowid",
      "approved_follow_ups",
      [&](stmt& s) {
        s.bind(1, parent_op_id);
        s.bind(2, std::string(order_kind));
      },
      [](const stmt& s) {
        return follow_up_row{s.text(20), s.text(21), read_message(s)};
      });
}

result<std::vector<settlement_candidate>> reader::batch_candidates(const std::string& acquirer,
                                                                   const std::string& terminal_id,
                                                                   std::int64_t batch_no) {
  return impl_->rows<settlement_candidate>(
      std::string("SELECT ") + joined_message_columns + candidate_select +
          " WHERE m.acquirer = ?1 AND m.terminal_id = ?2 AND m.batch_no = ?3"
          " AND substr(m.mti, 2, 1) = '2' ORDER BY m.created_ms, m.rowid",
      "batch_candidates",
      [&](stmt& s) {
        s.bind(1, acquirer);
        s.bind(2, terminal_id);
        s.bind(3, batch_no);
      },
      read_candidate);
}

result<std::optional<settlement_batch_row>> reader::settlement_batch_no(const std::string& acquirer,
                                                                        const std::string& terminal_id,
                                                                        std::int64_t batch_no) {
  auto r = impl_->rows<settlement_batch_row>(
      std::string("SELECT ") + batch_columns +
          " FROM settlement_batches WHERE acquirer = ?1 AND terminal_id = ?2 AND batch_no = ?3",
      "settlement_batch_no",
      [&](stmt& s) {
        s.bind(1, acquirer);
        s.bind(2, terminal_id);
        s.bind(3, batch_no);
      },
      read_batch);
  if (!r) return r.err();
  if (r->empty()) return std::optional<settlement_batch_row>{};
  return std::optional<settlement_batch_row>{std::move(r->front())};
}

result<std::int64_t> reader::open_batch_no(const std::string& acquirer, const std::string& terminal_id) {
  auto r = impl_->rows<std::int64_t>(
      "SELECT coalesce(max(batch_no), 0) + 1 FROM settlement_batches WHERE acquirer = ?1 AND terminal_id = "
      "?2",
      "open_batch_no",
      [&](stmt& s) {
        s.bind(1, acquirer);
        s.bind(2, terminal_id);
      },
      [](const stmt& s) { return s.int64(0); });
  if (!r) return r.err();
  return r->empty() ? std::int64_t{1} : r->front();
}

// The open batch of a terminal is the one above its highest written batch.
namespace {
constexpr const char* open_batch_condition =
    " m.batch_no = (SELECT coalesce(max(b.batch_no), 0) + 1 FROM settlement_batches b"
    "   WHERE b.acquirer = m.acquirer AND b.terminal_id = m.terminal_id)";
}  // namespace

result<std::vector<settlement_key>> reader::open_batch_keys(const std::optional<std::string>& acquirer,
                                                            const std::string& label) {
  return impl_->rows<settlement_key>(
      std::string("SELECT DISTINCT m.acquirer, m.terminal_id FROM acquirer_messages m"
                  " JOIN operations op ON op.op_id = m.op_id JOIN orders o ON o.order_id = op.order_id"
                  " WHERE substr(m.mti, 2, 1) = '2' AND o.kind IN ('sale', 'refund', 'completion')"
                  " AND (?1 IS NULL OR m.acquirer = ?1) AND") +
          open_batch_condition + " ORDER BY 1, 2",
      "open_batch_keys", [&](stmt& s) { s.bind(1, acquirer); },
      [&](const stmt& s) {
        return settlement_key{s.text(0), s.text(1), label, 0};
      });
}

result<std::vector<settlement_key>> reader::settlement_keys_to_close(const std::string& before_date) {
  return impl_->rows<settlement_key>(
      std::string("SELECT acquirer, terminal_id, business_date, batch_no FROM settlement_batches"
                  " WHERE state IN ('open', 'closing', 'uploading', 'closing_after_upload')"
                  " UNION SELECT m.acquirer, m.terminal_id, max(o.business_date), 0"
                  " FROM acquirer_messages m JOIN operations op ON op.op_id = m.op_id"
                  " JOIN orders o ON o.order_id = op.order_id"
                  " WHERE substr(m.mti, 2, 1) = '2' AND o.business_date < ?1 AND") +
          open_batch_condition + " GROUP BY m.acquirer, m.terminal_id ORDER BY 3, 1, 2, 4",
      "settlement_keys_to_close", [&](stmt& s) { s.bind(1, before_date); },
      [](const stmt& s) {
        return settlement_key{s.text(0), s.text(1), s.text(2), s.int64(3)};
      });
}

namespace {

constexpr const char* notification_columns =
    "notification_id, order_id, event, order_state, payload, created_ms, state, attempts, next_attempt_ms,"
    " expires_ms, last_error, delivered_ms, updated_ms, endpoint";

notification_row read_notification(const stmt& s) {
  notification_row r;
  r.notification_id = s.text(0);
  r.order_id = s.text(1);
  r.event = s.text(2);
  r.order_state = s.text(3);
  r.payload = s.text(4);
  r.created_ms = s.int64(5);
  r.state = s.text(6);
  r.attempts = s.int64(7);
  r.next_attempt_ms = s.int64(8);
  r.expires_ms = s.opt_int64(9);
  r.last_error = s.opt_text(10);
  r.delivered_ms = s.opt_int64(11);
  r.updated_ms = s.int64(12);
  r.endpoint = s.text(13);
  return r;
}

}  // namespace

result<std::vector<notification_row>> reader::pending_notifications(std::uint32_t limit) {
  if (limit < 1 || limit > 100000)
    return make_error("journal.invalid_argument", "pending_notifications: limit must be 1..100000");
  return impl_->rows<notification_row>(
      std::string("SELECT ") + notification_columns +
          " FROM notifications WHERE state = 'pending' ORDER BY created_ms, rowid LIMIT ?1",
      "pending_notifications", [&](stmt& s) { s.bind(1, static_cast<std::int64_t>(limit)); },
      read_notification);
}

result<std::vector<notification_row>> reader::pending_notifications(const std::string& endpoint,
                                                                    bool with_unnamed, std::uint32_t limit) {
  if (limit < 1 || limit > 100000)
    return make_error("journal.invalid_argument", "pending_notifications: limit must be 1..100000");
  return impl_->rows<notification_row>(
      std::string("SELECT ") + notification_columns +
          " FROM notifications WHERE state = 'pending' AND (endpoint = ?2 OR (?3 AND endpoint = ''))"
          " ORDER BY created_ms, rowid LIMIT ?1",
      "pending_notifications",
      [&](stmt& s) {
        s.bind(1, static_cast<std::int64_t>(limit));
        s.bind(2, endpoint);
        s.bind(3, static_cast<std::int64_t>(with_unnamed ? 1 : 0));
      },
      read_notification);
}

result<std::vector<notification_row>> reader::list_notifications(const notification_filter& f) {
  if (f.limit < 1 || f.limit > 100000)
    return make_error("journal.invalid_argument", "list_notifications: limit must be 1..100000");
  std::string sql = std::string("SELECT ") + notification_columns +
                    " FROM notifications WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR order_id = ?2)"
                    " AND (?4 IS NULL OR endpoint = ?4) ORDER BY created_ms" +
                    (f.newest_first ? " DESC, rowid DESC" : ", rowid") + " LIMIT ?3";
  return impl_->rows<notification_row>(
      sql, "list_notifications",
      [&](stmt& s) {
        s.bind(1, f.state);
        s.bind(2, f.order_id);
        s.bind(3, static_cast<std::int64_t>(f.limit));
        s.bind(4, f.endpoint);
      },
      read_notification);
}

result<std::optional<notification_row>> reader::notification(const std::string& notification_id) {
  auto r = impl_->rows<notification_row>(
      std::string("SELECT ") + notification_columns + " FROM notifications WHERE notification_id = ?1",
      "notification", [&](stmt& s) { s.bind(1, notification_id); }, read_notification);
  if (!r) return r.err();
  if (r->empty()) return std::optional<notification_row>();
  return std::optional<notification_row>(std::move(r->front()));
}

result<std::vector<std::pair<std::string, std::int64_t>>> reader::notification_counts() {
  return impl_->rows<std::pair<std::string, std::int64_t>>(
      "SELECT state, count(*) FROM notifications GROUP BY state ORDER BY state", "notification_counts",
      [](stmt&) {}, [](const stmt& s) { return std::make_pair(s.text(0), s.int64(1)); });
}

result<std::vector<audit_row>> reader::audit_log(const audit_filter& f) {
  if (f.limit < 1 || f.limit > 100000) {
    return make_error("journal.invalid_argument", "audit_log: limit must be 1..100000");
  }
  std::string sql =
      "SELECT audit_id, at_ms, actor, source, action, subject, detail, outcome FROM audit_log"
      " WHERE (?1 IS NULL OR at_ms >= ?1) AND (?2 IS NULL OR at_ms <= ?2)"
      " AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4) ORDER BY audit_id";
  sql += f.newest_first ? " DESC" : "";
  sql += " LIMIT ?5";
  return impl_->rows<audit_row>(
      sql, "audit_log",
      [&](stmt& s) {
        s.bind(1, f.since_ms);
        s.bind(2, f.until_ms);
        s.bind(3, f.actor);
        s.bind(4, f.action);
        s.bind(5, static_cast<std::int64_t>(f.limit));
      },
      [](const stmt& s) {
        audit_row r;
        r.audit_id = s.int64(0);
        r.at_ms = s.int64(1);
        r.actor = s.text(2);
        r.source = s.text(3);
        r.action = s.text(4);
        r.subject = s.text(5);
        r.detail = s.text(6);
        r.outcome = s.text(7);
        return r;
      });
}

namespace {

// Installed only while a report query is prepared and run: whatever the SQL says (SELECT *, a
// CTE that renames columns), sealed card data (PAN, advice card details) reads as NULL, and anything but
// reading (writes, ATTACH, PRAGMA, transactions) is denied.
int report_authorizer(void*, int action, const char* /*table*/, const char* column, const char*,
                      const char*) {
  switch (action) {
    case SQLITE_READ:
      if (column != nullptr &&
          (std::string_view(column) == "pan_ciphertext" || std::string_view(column) == "card_ciphertext"))
        return SQLITE_IGNORE;
      return SQLITE_OK;
    case SQLITE_SELECT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    default:
      return SQLITE_DENY;
  }
}

class report_authorizer_scope {
 public:
  explicit report_authorizer_scope(sqlite3* db) : db_(db) {
    sqlite3_set_authorizer(db_, report_authorizer, nullptr);
  }
  ~report_authorizer_scope() { sqlite3_set_authorizer(db_, nullptr, nullptr); }
  report_authorizer_scope(const report_authorizer_scope&) = delete;
  report_authorizer_scope& operator=(const report_authorizer_scope&) = delete;

 private:
  sqlite3* db_;
};

}  // namespace

result<std::vector<report_record>> reader::report_query(const std::string& sql, const report_record& params) {
  std::string lower(sql.size(), ' ');
  std::transform(sql.begin(), sql.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("pan_ciphertext") != std::string::npos ||
      lower.find("card_ciphertext") != std::string::npos) {
    return make_error("journal.invalid_argument", "report_query: sealed card data is not reportable");
  }
  const auto first = lower.find_first_not_of(" \t\r\n(");
  if (first == std::string::npos ||
      (lower.compare(first, 6, "select") != 0 && lower.compare(first, 4, "with") != 0)) {
    return make_error("journal.invalid_argument", "report_query: only SELECT statements");
  }
  report_authorizer_scope guard(impl_->db.get());
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(impl_->db.get(), sql.c_str(), static_cast<int>(sql.size()), &raw, &tail) !=
      SQLITE_OK) {
    return impl_->failed("report_query");
  }
  detail::stmt_ptr owned(raw);
  if (raw == nullptr) return make_error("journal.invalid_argument", "report_query: empty statement");
  for (const char* p = tail; p != nullptr && *p != '\0'; ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != ';') {
      return make_error("journal.invalid_argument", "report_query: one statement only");
    }
  }
  if (!sqlite3_stmt_readonly(raw) || sqlite3_column_count(raw) == 0) {
    return make_error("journal.invalid_argument", "report_query: not a read-only query");
  }
  stmt s(raw);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int at = static_cast<int>(i) + 1;
    const auto& v = params[i];
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      s.bind(at, *n);
    } else if (const auto* d = std::get_if<double>(&v)) {
      sqlite3_bind_double(raw, at, *d);
    } else if (const auto* t = std::get_if<std::string>(&v)) {
      s.bind(at, *t);
    } else {
      s.bind_null(at);
    }
  }
  const int cols = sqlite3_column_count(raw);
  std::vector<report_record> out;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return impl_->failed("report_query");
    report_record row;
    row.reserve(static_cast<std::size_t>(cols));
    for (int c = 0; c < cols; ++c) {
      switch (sqlite3_column_type(raw, c)) {
        case SQLITE_NULL:
          row.emplace_back(std::monostate{});
          break;
        case SQLITE_INTEGER:
          row.emplace_back(s.int64(c));
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(raw, c));
          break;
        case SQLITE_TEXT:
          row.emplace_back(s.text(c));
          break;
        default:
          return make_error("journal.query_failed", "report_query: BLOB values are not reportable");
      }
    }
    out.push_back(std::move(row));
  }
}

}  // namespace eftd::journal
