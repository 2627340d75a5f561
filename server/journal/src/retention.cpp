#include "eftd/journal/retention.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "retention_steps.hpp"

namespace eftd::journal {

std::string to_string(const purge_report& r) {
  return fmt::format(
      "before={} dry_run={} orders={} operations={} messages={} events={} notifications={} batches={} "
      "steps={} kept_not_final={} kept_in_queue={} kept_open_case={} kept_open_batch={} kept_linked={}",
      r.before, r.dry_run, r.orders, r.operations, r.messages, r.events, r.notifications, r.batches, r.steps,
      r.kept_not_final, r.kept_in_queue, r.kept_open_case, r.kept_open_batch, r.kept_linked);
}

namespace detail {

namespace {

// The vocabularies the rules rely on (records.hpp, settlement_rules.cpp, the engine's final
// order states). Written out as SQL lists: test_retention.cpp covers each of them.
constexpr const char* final_orders = "('approved', 'declined', 'failed', 'cancelled', 'reversed')";
constexpr const char* queued_messages = "('intent', 'sent', 'timeout', 'reversal_pending', 'pending')";
constexpr const char* finished_messages = "('answered', 'reversed', 'failed', 'acknowledged')";
constexpr const char* final_batches = "('closed', 'out_of_balance', 'refused')";

// The window's orders still due for removal, and their operations.
constexpr const char* due = "(SELECT order_id FROM temp.purge_window WHERE reason IS NULL)";
constexpr const char* due_ops =
    "(SELECT op_id FROM operations WHERE order_id IN (SELECT order_id FROM temp.purge_window WHERE reason IS "
    "NULL))";

struct step_failed {
  error err;
};

class step_db {
 public:
  explicit step_db(connection& c) : c_(c) {}

  // Runs one statement (binding ?1 = before when used); rows changed.
  result<std::int64_t> run(const std::string& sql, const std::string& before = {}) {
    auto* s = c_.prepare(sql);
    if (s == nullptr) return fail("prepare");
    stmt st(s);
    if (sqlite3_bind_parameter_count(s) >= 1) st.bind(1, before);
    const int rc = st.step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail("step");
    return static_cast<std::int64_t>(sqlite3_changes(c_.get()));
  }

  template <class Bind, class Row>
  status rows(const std::string& sql, Bind bind, Row row) {
    auto* s = c_.prepare(sql);
    if (s == nullptr) return fail("prepare").err();
    stmt st(s);
    bind(st);
    for (;;) {
      const int rc = st.step();
      if (rc == SQLITE_DONE) return {};
      if (rc != SQLITE_ROW) return fail("step").err();
      row(st);
    }
  }

  result<bool> table_exists(const std::string& name) {
    bool found = false;
    auto st = rows(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [&](stmt& s) { s.bind(1, name); },
        [&](const stmt&) { found = true; });
    if (!st) return st.err();
    return found;
  }

  bool in_transaction() const { return sqlite3_get_autocommit(c_.get()) == 0; }
  void rollback() {
    if (in_transaction()) c_.exec("ROLLBACK");
  }
  connection& conn() { return c_; }

  result<std::int64_t> fail(const char* what) {
    return make_error("journal.io_error", fmt::format("purge: {} failed: {}", what, c_.errmsg()));
  }

 private:
  connection& c_;
};

// Removes the window's due orders and everything that hangs off them, child rows first.
status remove_due(step_db& db, bool notifications, purge_report* count) {
  const std::string d = due;
  const std::string ops = due_ops;
  struct del {
    std::string sql;
    std::int64_t purge_report::*field;
  };
  std::vector<del> dels;
  if (notifications)
    dels.push_back({"DELETE FROM notifications WHERE order_id IN " + d, &purge_report::notifications});
  dels.push_back({"DELETE FROM events WHERE order_id IN " + d, &purge_report::events});
  dels.push_back(
      {"DELETE FROM settlement_steps WHERE subject_msg_id IN (SELECT msg_id FROM acquirer_messages"
       " WHERE op_id IN " +
           ops + ")",
       &purge_report::steps});
  dels.push_back({"DELETE FROM acquirer_messages WHERE op_id IN " + ops, &purge_report::messages});
  dels.push_back({"DELETE FROM operations WHERE order_id IN " + d, &purge_report::operations});
  dels.push_back({"DELETE FROM orders WHERE order_id IN " + d, &purge_report::orders});
  for (const auto& x : dels) {
    auto n = db.run(x.sql);
    if (!n) return n.err();
    if (count != nullptr) count->*(x.field) += *n;
  }
  return {};
}

// Marks the window's orders that must stay, each with the first rule it fails.
status mark_kept(step_db& db, const std::string& before, bool notifications, bool resolutions) {
  const std::string pw = "purge_window.order_id";
  const std::string msgs_of_order =
      " FROM operations op JOIN acquirer_messages m ON m.op_id = op.op_id WHERE op.order_id = " + pw;
  const std::string set = "UPDATE temp.purge_window SET reason = ";
  const std::string open = " WHERE reason IS NULL AND ";

  std::vector<std::string> rules;
  rules.push_back(set + "'not_final'" + open + "NOT EXISTS(SELECT 1 FROM orders o WHERE o.order_id = " + pw +
                  " AND o.state IN " + final_orders + ")");
  rules.push_back(set + "'in_queue'" + open + "(EXISTS(SELECT 1" + msgs_of_order + " AND m.state IN " +
                  queued_messages + ")" +
                  (notifications ? " OR EXISTS(SELECT 1 FROM notifications n WHERE n.order_id = " + pw +
                                       " AND n.state = 'pending')"
                                 : std::string()) +
                  ")");
  rules.push_back(set + "'open_case'" + open + "EXISTS(SELECT 1" + msgs_of_order + " AND m.state NOT IN " +
                  finished_messages +
                  (resolutions ? " AND NOT (m.state IN ('parked', 'expired') AND EXISTS(SELECT 1 FROM "
                                 "case_resolutions cr WHERE cr.subject_id = m.msg_id))"
                               : std::string()) +
                  ")");
  // What batch_content_of counts or holds in doubt: every financial request of a settling
  // order kind that was not declined (approved, or without an answer and not failed).
  rules.push_back(
      set + "'open_batch'" + open + "(EXISTS(SELECT 1" + msgs_of_order +
      " AND substr(m.mti, 2, 1) = '2'"
      " AND (SELECT o.kind FROM orders o WHERE o.order_id = op.order_id) IN ('sale', 'refund', "
      "'completion')"
      " AND (m.response_code IN ('00', '10') OR (m.response_code IS NULL AND m.state <> 'failed'))"
      " AND NOT EXISTS(SELECT 1 FROM settlement_batches b WHERE b.acquirer = m.acquirer"
      " AND b.terminal_id = m.terminal_id AND b.batch_no = m.batch_no AND b.state IN " +
      final_batches +
      "))"
      " OR EXISTS(SELECT 1" +
      msgs_of_order +
      " AND EXISTS(SELECT 1 FROM settlement_steps s JOIN settlement_batches b ON b.batch_id = s.batch_id"
      " WHERE s.subject_msg_id = m.msg_id AND NOT (b.state IN " +
      final_batches + " AND b.business_date < ?1))))");
  for (const auto& sql : rules) {
    if (auto n = db.run(sql, before); !n) return n.err();
  }
  return {};
}

status mark_linked(step_db& db) {
  const std::string pw = "purge_window.order_id";
  const std::string d = due;
  // Referred to by an operation, message or event of an order that stays. Repeated until
  // nothing changes: keeping an order may keep the orders it refers to.
  const std::string sql =
      "UPDATE temp.purge_window SET reason = 'linked' WHERE reason IS NULL AND ("
      "EXISTS(SELECT 1 FROM operations p JOIN operations c ON c.parent_op_id = p.op_id WHERE p.order_id = " +
      pw + " AND c.order_id <> " + pw + " AND c.order_id NOT IN " + d +
      ") OR EXISTS(SELECT 1 FROM operations p JOIN acquirer_messages pm ON pm.op_id = p.op_id"
      " JOIN acquirer_messages cm ON cm.original_msg_id = pm.msg_id JOIN operations c ON c.op_id = cm.op_id"
      " WHERE p.order_id = " +
      pw + " AND c.order_id <> " + pw + " AND c.order_id NOT IN " + d +
      ") OR EXISTS(SELECT 1 FROM temp.purge_event_refs r WHERE r.parent = " + pw + " AND r.child NOT IN " +
      d + " AND EXISTS(SELECT 1 FROM orders o WHERE o.order_id = r.child)))";
  for (;;) {
    auto n = db.run(sql);
    if (!n) return n.err();
    if (*n == 0) return {};
  }
}

// Brings st.event_refs up to date and puts them where mark_linked looks.
status load_event_refs(step_db& db, purge_state& st) {
  std::int64_t seen = st.events_seen;
  auto s = db.rows(
      "SELECT p.order_id, e.order_id, e.event_id FROM events e JOIN operations p ON p.op_id = e.op_id"
      " WHERE e.event_id > ?1 AND e.op_id IS NOT NULL AND e.order_id <> p.order_id",
      [&](stmt& x) { x.bind(1, st.event_refs_loaded ? st.events_seen : std::int64_t{0}); },
      [&](const stmt& x) {
        st.event_refs.emplace_back(x.text(0), x.text(1));
        seen = std::max(seen, x.int64(2));
      });
  if (!s) return s;
  s = db.rows(
      "SELECT coalesce(max(event_id), 0) FROM events", [](stmt&) {},
      [&](const stmt& x) { seen = std::max(seen, x.int64(0)); });
  if (!s) return s;
  st.events_seen = seen;
  st.event_refs_loaded = true;
  if (auto n = db.run(
          "CREATE TEMP TABLE IF NOT EXISTS purge_event_refs(parent TEXT NOT NULL, child TEXT NOT NULL)");
      !n)
    return n.err();
  if (auto n = db.run("DELETE FROM temp.purge_event_refs"); !n) return n.err();
  for (const auto& [parent, child] : st.event_refs) {
    s = db.rows(
        "INSERT INTO temp.purge_event_refs(parent, child) VALUES (?1, ?2)",
        [&](stmt& x) {
          x.bind(1, parent);
          x.bind(2, child);
        },
        [](const stmt&) {});
    if (!s) return s;
  }
  return {};
}

status count_kept(step_db& db, purge_report& r) {
  return db.rows(
      "SELECT reason, count(*) FROM temp.purge_window WHERE reason IS NOT NULL GROUP BY reason", [](stmt&) {},
      [&](const stmt& s) {
        const auto reason = s.text(0);
        const auto n = s.int64(1);
        if (reason == "not_final") r.kept_not_final += n;
        if (reason == "in_queue") r.kept_in_queue += n;
        if (reason == "open_case") r.kept_open_case += n;
        if (reason == "open_batch") r.kept_open_batch += n;
        if (reason == "linked") r.kept_linked += n;
      });
}

// What a dry run must remember of a step it rolls back (purge_state).
status remember_for_dry_run(step_db& db, purge_state& st) {
  const std::string pw = "purge_window.order_id";
  auto s1 = db.rows(
      "SELECT order_id FROM temp.purge_window WHERE reason IS NULL AND ("
      "EXISTS(SELECT 1 FROM operations c JOIN operations p ON p.op_id = c.parent_op_id WHERE c.order_id = " +
          pw +
          " AND p.order_id <> c.order_id) OR EXISTS(SELECT 1 FROM operations c JOIN acquirer_messages cm ON "
          "cm.op_id = c.op_id JOIN acquirer_messages pm ON pm.msg_id = cm.original_msg_id JOIN operations p "
          "ON "
          "p.op_id = pm.op_id WHERE c.order_id = " +
          pw + " AND p.order_id <> c.order_id))",
      [](stmt&) {}, [&](const stmt& s) { st.carried.push_back(s.text(0)); });
  if (!s1) return s1;
  return db.rows(
      std::string(
          "SELECT acquirer, terminal_id, batch_no, count(*) FROM acquirer_messages WHERE batch_no IS NOT "
          "NULL AND op_id IN ") +
          due_ops + " GROUP BY 1, 2, 3",
      [](stmt&) {},
      [&](const stmt& s) {
        st.removed_per_batch[{s.text(0), s.text(1), s.int64(2)}] += s.int64(3);
      });
}

status begin(step_db& db) {
  if (db.conn().exec("BEGIN IMMEDIATE") != SQLITE_OK) return db.fail("begin").err();
  return {};
}

status finish(step_db& db, bool dry_run) {
  if (dry_run) {
    db.rollback();
    return {};
  }
  if (db.conn().exec("COMMIT") == SQLITE_OK) return {};
  auto err = db.fail("commit").err();
  db.rollback();
  return err;
}

status orders_step(step_db& db, const purge_request& req, purge_state& st) {
  auto notifications = db.table_exists("notifications");
  if (!notifications) return notifications.err();
  auto resolutions = db.table_exists("case_resolutions");
  if (!resolutions) return resolutions.err();

  if (auto n = db.run("CREATE TEMP TABLE IF NOT EXISTS purge_window(order_id TEXT PRIMARY KEY, reason TEXT)");
      !n)
    return n.err();
  if (auto n = db.run("DELETE FROM temp.purge_window"); !n) return n.err();

  if (req.dry_run && !st.carried.empty()) {
    for (const auto& id : st.carried) {
      auto s = db.rows(
          "INSERT INTO temp.purge_window(order_id) VALUES (?1)", [&](stmt& x) { x.bind(1, id); },
          [](const stmt&) {});
      if (!s) return s;
    }
    if (auto s = remove_due(db, *notifications, nullptr); !s) return s;
    if (auto n = db.run("DELETE FROM temp.purge_window"); !n) return n.err();
  }

  // Newest first along orders_by_business_date (its entries end with the rowid).
  std::vector<std::string> window;
  auto sel = db.rows(
      "SELECT order_id, business_date, created_ms, rowid FROM orders WHERE business_date < ?1 AND"
      " (?2 = 0 OR (business_date, created_ms, rowid) < (?3, ?4, ?5))"
      " ORDER BY business_date DESC, created_ms DESC, rowid DESC LIMIT ?6",
      [&](stmt& s) {
        s.bind(1, req.before);
        s.bind(2, std::int64_t{st.started ? 1 : 0});
        s.bind(3, st.cursor_date);
        s.bind(4, st.cursor_created_ms);
        s.bind(5, st.cursor_rowid);
        s.bind(6, static_cast<std::int64_t>(req.chunk_orders));
      },
      [&](const stmt& s) {
        window.push_back(s.text(0));
        st.started = true;
        st.cursor_date = s.text(1);
        st.cursor_created_ms = s.int64(2);
        st.cursor_rowid = s.int64(3);
      });
  if (!sel) return sel;
  if (window.empty()) {
    st.at = purge_state::phase::batches;
    return {};
  }
  for (const auto& id : window) {
    auto s = db.rows(
        "INSERT INTO temp.purge_window(order_id) VALUES (?1)", [&](stmt& x) { x.bind(1, id); },
        [](const stmt&) {});
    if (!s) return s;
  }
  if (auto s = load_event_refs(db, st); !s) return s;
  if (auto s = mark_kept(db, req.before, *notifications, *resolutions); !s) return s;
  if (auto s = mark_linked(db); !s) return s;
  if (auto s = count_kept(db, st.report); !s) return s;
  if (req.dry_run) {
    if (auto s = remember_for_dry_run(db, st); !s) return s;
  }
  return remove_due(db, *notifications, &st.report);
}

status batches_step(step_db& db, const purge_request& req, purge_state& st) {
  // Final, due, and not the terminal's highest batch (its number + 1 is the open batch).
  const std::string due_batches = std::string(" FROM settlement_batches b WHERE b.state IN ") +
                                  final_batches +
                                  " AND b.business_date < ?1 AND b.batch_no < (SELECT max(x.batch_no) FROM "
                                  "settlement_batches x WHERE x.acquirer = b.acquirer AND x.terminal_id = "
                                  "b.terminal_id)";
  const std::string messages_left =
      "(SELECT count(*) FROM acquirer_messages m WHERE m.acquirer = b.acquirer AND m.terminal_id = "
      "b.terminal_id"
      " AND m.batch_no = b.batch_no)";
  if (req.dry_run) {
    // Nothing was really removed: a batch would be empty if every message left in it was
    // removed by the rolled-back steps.
    auto s = db.rows(
        "SELECT b.acquirer, b.terminal_id, b.batch_no, " + messages_left +
            ", (SELECT count(*) FROM settlement_steps s WHERE s.batch_id = b.batch_id AND s.subject_msg_id "
            "IS "
            "NULL)" +
            due_batches,
        [&](stmt& x) { x.bind(1, req.before); },
        [&](const stmt& x) {
          auto it = st.removed_per_batch.find({x.text(0), x.text(1), x.int64(2)});
          const std::int64_t removed = it == st.removed_per_batch.end() ? 0 : it->second;
          if (x.int64(3) == removed) {
            ++st.report.batches;
            st.report.steps += x.int64(4);
          }
        });
    if (!s) return s;
    st.at = purge_state::phase::vacuum;
    return {};
  }
  std::vector<std::string> ids;
  auto s = db.rows(
      "SELECT b.batch_id" + due_batches + " AND " + messages_left + " = 0 LIMIT ?2",
      [&](stmt& x) {
        x.bind(1, req.before);
        x.bind(2, static_cast<std::int64_t>(req.chunk_orders));
      },
      [&](const stmt& x) { ids.push_back(x.text(0)); });
  if (!s) return s;
  if (ids.empty()) {
    st.at = purge_state::phase::vacuum;
    return {};
  }
  for (const auto& id : ids) {
    for (auto [sql, field] :
         {std::pair{"DELETE FROM settlement_steps WHERE batch_id = ?1", &purge_report::steps},
          std::pair{"DELETE FROM settlement_batches WHERE batch_id = ?1", &purge_report::batches}}) {
      auto n = db.run(sql, id);
      if (!n) return n.err();
      st.report.*field += *n;
    }
  }
  return {};
}

}  // namespace

status check_purge_request(const purge_request& req) {
  const auto& d = req.before;
  bool ok = d.size() == 10 && d[4] == '-' && d[7] == '-';
  for (std::size_t i = 0; ok && i < d.size(); ++i)
    if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) ok = false;
  if (!ok) return make_error("journal.invalid_argument", "purge: before must be a YYYY-MM-DD date");
  if (req.chunk_orders == 0)
    return make_error("journal.invalid_argument", "purge: chunk_orders must be >= 1");
  return {};
}

status purge_step(connection& c, const purge_request& req, purge_state& st) {
  step_db db(c);
  st.report.before = req.before;
  st.report.dry_run = req.dry_run;
  if (st.at == purge_state::phase::vacuum) {
    st.at = purge_state::phase::done;
    if (req.dry_run || st.report.orders + st.report.batches == 0) return {};
    auto mode = query_pragma(c, "auto_vacuum");
    if (!mode) return mode.err();
    // 2 = INCREMENTAL: freed pages stay in the file until asked for; otherwise SQLite reuses them.
    if (*mode == "2" && c.exec("PRAGMA incremental_vacuum") != SQLITE_OK)
      return db.fail("incremental_vacuum").err();
    return {};
  }
  if (st.at == purge_state::phase::done) return {};
  // Foreign keys stay enforced: the referring columns are indexed (schema v12), so each
  // delete finds what refers to it cheaply, and the rules above delete children first.
  if (auto s = begin(db); !s) {
    db.rollback();
    return s;
  }
  auto s = st.at == purge_state::phase::orders ? orders_step(db, req, st) : batches_step(db, req, st);
  if (!s) {
    db.rollback();
    return s;
  }
  ++st.report.transactions;
  return finish(db, req.dry_run);
}

}  // namespace detail

}  // namespace eftd::journal
