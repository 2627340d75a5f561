// The chaos tests' checkers (RELIABILITY.md, "Test recipes"): each takes what a run left
// behind -- the load generator's history (tools/loadgen/README.md), the surviving journal and
// the acquirer simulator's --ledger-file -- and returns its violations, empty when the run
// passes. Messages name tills, order numbers, terminals and STANs, never card data.
//
// The journal is read with its own read-only SQLite connection (eftd may still be running).
// Journal and ledger meet on (terminal id, STAN, local date-time): the journal keeps fields
// 13 + 12 of each request, the ledger file carries them as "local_datetime".
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace eftd::test::chaos {

using violations = std::vector<std::string>;

// ------------------------------------------------------------------ inputs

struct history_event {
  std::string till, op, order, type, value;
  bool via_status = false;
};

struct ledger_row {
  std::string terminal, stan, local_datetime, mti, response_code;
  std::int64_t amount = 0;
  bool approved = false, reversed = false, settles = false, credit = false;
  // Where it meets the journal: terminal|STAN as a number|local date-time.
  std::string match_key() const {
    return terminal + "|" + std::to_string(std::stol(stan)) + "|" + local_datetime;
  }
};

struct journal_message {
  std::string msg_id, order_id, op_kind, terminal, mti, local_datetime, state, response_code;
  std::optional<std::string> original_msg_id;
  std::int64_t stan = 0, amount = 0;
  std::string match_key() const { return terminal + "|" + std::to_string(stan) + "|" + local_datetime; }
  bool is_reversal() const { return mti.rfind("04", 0) == 0; }
  bool approved() const { return response_code == "00" || response_code == "10"; }
};

struct journal_order {
  std::string order_id, till, order_no, state;
};

struct journal_snapshot {
  std::string error;                            // set when the journal could not be read
  std::map<std::string, journal_order> orders;  // by order_id
  std::map<std::pair<std::string, std::string>, std::string> by_till_order;  // (till, order_no) -> id
  std::vector<journal_message> messages;
};

inline std::vector<history_event> read_history(const std::string& path, violations& out) {
  std::vector<history_event> events;
  std::ifstream in(path);
  if (!in) out.push_back("history " + path + " cannot be read");
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) {
      out.push_back("history line " + std::to_string(n) + " is not a JSON object");
      continue;
    }
    events.push_back({j.value("till", ""), j.value("op", ""), j.value("order", ""), j.value("type", ""),
                      j.value("value", ""), j.value("via", "") == "status"});
  }
  return events;
}

inline std::vector<ledger_row> read_ledger(const std::string& path, violations& out) {
  std::vector<ledger_row> rows;
  std::ifstream in(path);
  if (!in) out.push_back("ledger file " + path + " cannot be read");
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("stan") || j.value("stan", "").empty()) {
      out.push_back("ledger line " + std::to_string(n) + " is not a ledger entry");
      continue;
    }
    ledger_row r;
    r.terminal = j.value("terminal", "");
    r.stan = j.value("stan", "");
    r.local_datetime = j.value("local_datetime", "");
    r.mti = j.value("mti", "");
    r.response_code = j.value("response_code", "");
    r.amount = j.value("amount", std::int64_t{0});
    r.approved = j.value("approved", false);
    r.reversed = j.value("reversed", false);
    r.settles = j.value("settles", false);
    r.credit = j.value("credit", false);
    rows.push_back(std::move(r));
  }
  return rows;
}

namespace detail {

struct db_handle {
  sqlite3* db = nullptr;
  ~db_handle() {
    if (db) sqlite3_close(db);
  }
};

inline std::string text_at(sqlite3_stmt* st, int col) {
  const auto* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

// Runs `sql`, calling row(stmt) per result row; false (with `error`) when it fails.
template <class Row>
bool each_row(sqlite3* db, const char* sql, Row row, std::string& error) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db);
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  if (rc != SQLITE_DONE) error = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE;
}

inline bool open_read_only(const std::string& path, db_handle& h, std::string& error) {
  if (sqlite3_open_v2(path.c_str(), &h.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    error = h.db ? sqlite3_errmsg(h.db) : "cannot open";
    return false;
  }
  sqlite3_busy_timeout(h.db, 5000);
  return true;
}

}  // namespace detail

inline journal_snapshot read_journal(const std::string& path) {
  journal_snapshot s;
  detail::db_handle h;
  if (!detail::open_read_only(path, h, s.error)) return s;
  // One read transaction: orders and messages from the same moment.
  sqlite3_exec(h.db, "BEGIN", nullptr, nullptr, nullptr);
  detail::each_row(
      h.db, "SELECT order_id, till_id, order_no, state FROM orders",
      [&](sqlite3_stmt* st) {
        journal_order o{detail::text_at(st, 0), detail::text_at(st, 1), detail::text_at(st, 2),
                        detail::text_at(st, 3)};
        s.by_till_order[{o.till, o.order_no}] = o.order_id;
        s.orders[o.order_id] = std::move(o);
      },
      s.error);
  detail::each_row(
      h.db,
      "SELECT m.msg_id, p.order_id, p.kind, m.terminal_id, m.mti, m.local_datetime, m.state, "
      "m.response_code, m.original_msg_id, m.stan, m.amount_minor "
      "FROM acquirer_messages m JOIN operations p ON p.op_id = m.op_id ORDER BY m.created_ms",
      [&](sqlite3_stmt* st) {
        journal_message m;
        m.msg_id = detail::text_at(st, 0);
        m.order_id = detail::text_at(st, 1);
        m.op_kind = detail::text_at(st, 2);
        m.terminal = detail::text_at(st, 3);
        m.mti = detail::text_at(st, 4);
        m.local_datetime = detail::text_at(st, 5);
        m.state = detail::text_at(st, 6);
        m.response_code = detail::text_at(st, 7);
        if (sqlite3_column_type(st, 8) != SQLITE_NULL) m.original_msg_id = detail::text_at(st, 8);
        m.stan = sqlite3_column_int64(st, 9);
        m.amount = sqlite3_column_int64(st, 10);
        s.messages.push_back(std::move(m));
      },
      s.error);
  sqlite3_exec(h.db, "COMMIT", nullptr, nullptr, nullptr);
  return s;
}

namespace detail {

inline std::string order_name(const journal_snapshot& j, const std::string& order_id) {
  auto it = j.orders.find(order_id);
  if (it == j.orders.end()) return "order id " + order_id;
  return "till " + it->second.till + " order " + it->second.order_no;
}

// Original requests (not reversals) whose reversal the acquirer acknowledged, by msg_id.
inline std::set<std::string> reversed_messages(const journal_snapshot& j) {
  std::set<std::string> out;
  for (const auto& m : j.messages) {
    if (m.state == "reversed") out.insert(m.msg_id);
    if (m.is_reversal() && m.original_msg_id && m.state == "acknowledged") out.insert(*m.original_msg_id);
  }
  return out;
}

}  // namespace detail

// read_journal for a checker: false, with the reason as a violation, when it cannot be read.
inline bool read_journal_checked(const std::string& path, journal_snapshot& j, violations& out) {
  j = read_journal(path);
  if (j.error.empty()) return true;
  out.push_back("journal " + path + ": " + j.error);
  return false;
}

// ------------------------------------------------------------------ the checkers

// (1) Every approval a POS saw (a sale's "ok approved", directly or via status) is an approved
// order in the journal. An order the till later asked to cancel may be cancelled or reversed.
inline violations check_pos_approvals(const std::string& history, const std::string& journal) {
  violations out;
  const auto events = read_history(history, out);
  journal_snapshot j;
  if (!read_journal_checked(journal, j, out)) return out;
  std::set<std::pair<std::string, std::string>> cancel_asked;
  for (const auto& e : events)
    if (e.op == "cancel" && e.type == "invoke") cancel_asked.insert({e.till, e.order});
  for (const auto& e : events) {
    if (e.op != "sale" || e.type != "ok" || e.value != "approved") continue;
    const auto it = j.by_till_order.find({e.till, e.order});
    if (it == j.by_till_order.end()) {
      out.push_back("till " + e.till + " order " + e.order +
                    ": the POS saw approved, the journal has no such order");
      continue;
    }
    const auto& state = j.orders.at(it->second).state;
    if (state == "approved") continue;
    if (cancel_asked.count({e.till, e.order}) && (state == "cancelled" || state == "reversed")) continue;
    out.push_back("till " + e.till + " order " + e.order + ": the POS saw approved, the journal says " +
                  state);
  }
  return out;
}

// (2) Nothing authorized twice at the acquirer: per journal order at most one approved,
// unreversed ledger entry; every approved, unreversed ledger entry belongs to a journal order
// (else money was taken with no record); (terminal, STAN, local date-time) unique on both sides.
inline violations check_no_double_authorization(const std::string& journal, const std::string& ledger) {
  violations out;
  const auto rows = read_ledger(ledger, out);
  journal_snapshot j;
  if (!read_journal_checked(journal, j, out)) return out;
  std::map<std::string, const journal_message*> by_key;
  for (const auto& m : j.messages) {
    if (m.is_reversal()) continue;
    if (!by_key.emplace(m.match_key(), &m).second)
      out.push_back("journal: terminal " + m.terminal + " STAN " + std::to_string(m.stan) + " at " +
                    m.local_datetime + " used by two requests (" + detail::order_name(j, m.order_id) + ")");
  }
  std::set<std::string> ledger_keys;
  std::map<std::string, int> live_per_order;
  for (const auto& r : rows) {
    if (r.mti.rfind("04", 0) == 0) continue;
    const auto key = r.match_key();
    if (!ledger_keys.insert(key).second)
      out.push_back("ledger: terminal " + r.terminal + " STAN " + r.stan + " at " + r.local_datetime +
                    " authorized twice");
    if (!r.approved || r.reversed) continue;
    const auto it = by_key.find(key);
    if (it == by_key.end()) {
      out.push_back("ledger: terminal " + r.terminal + " STAN " + r.stan + " at " + r.local_datetime +
                    " approved and not reversed, but no journal order has it (money taken with no record)");
      continue;
    }
    if (++live_per_order[it->second->order_id] == 2)
      out.push_back(detail::order_name(j, it->second->order_id) +
                    ": more than one approved, unreversed authorization at the acquirer");
  }
  return out;
}

// (3) Every in-doubt transaction is resolved (call after the store-and-forward queue drained):
// no request is left without a final state, and every request without a recorded approval
// (timeout, reversed, never answered) that the acquirer approved was reversed there.
inline violations check_in_doubt_resolved(const std::string& journal, const std::string& ledger) {
  violations out;
  const auto rows = read_ledger(ledger, out);
  journal_snapshot j;
  if (!read_journal_checked(journal, j, out)) return out;
  std::map<std::string, const ledger_row*> ledger_by_key;
  for (const auto& r : rows)
    if (r.mti.rfind("04", 0) != 0) ledger_by_key.emplace(r.match_key(), &r);
  const auto reversed = detail::reversed_messages(j);
  for (const auto& m : j.messages) {
    const std::string name = detail::order_name(j, m.order_id) + " (terminal " + m.terminal + " STAN " +
                             std::to_string(m.stan) + ", " + m.mti + ")";
    if (m.state == "intent" || m.state == "sent" || m.state == "timeout" || m.state == "reversal_pending" ||
        m.state == "pending") {
      out.push_back(name + ": still in doubt after the queue drained (state " + m.state + ")");
      continue;
    }
    if (m.is_reversal()) continue;
    const bool approval_recorded = m.approved() && !reversed.count(m.msg_id);
    if (approval_recorded) continue;
    const auto it = ledger_by_key.find(m.match_key());
    if (it == ledger_by_key.end()) continue;  // the acquirer never saw it
    if (it->second->approved && !it->second->reversed)
      out.push_back(name + ": approved at the acquirer, no approval recorded in the journal and no reversal");
  }
  return out;
}

// (4) Per terminal: approved - reversed in the journal equals what the ledger settles
// (approved, not reversed; refunds count negative on both sides).
inline violations check_ledger_totals(const std::string& journal, const std::string& ledger) {
  violations out;
  const auto rows = read_ledger(ledger, out);
  journal_snapshot j;
  if (!read_journal_checked(journal, j, out)) return out;
  std::map<std::string, std::int64_t> journal_net, ledger_net;
  const auto reversed = detail::reversed_messages(j);
  for (const auto& m : j.messages) {
    if (m.mti.rfind("02", 0) != 0 || !m.approved() || reversed.count(m.msg_id)) continue;
    journal_net[m.terminal] += m.op_kind == "refund" ? -m.amount : m.amount;
  }
  for (const auto& r : rows) {
    if (!r.settles || r.reversed) continue;
    ledger_net[r.terminal] += r.credit ? -r.amount : r.amount;
  }
  std::set<std::string> terminals;
  for (const auto& [t, v] : journal_net) terminals.insert(t);
  for (const auto& [t, v] : ledger_net) terminals.insert(t);
  for (const auto& t : terminals) {
    const auto jv = journal_net.count(t) ? journal_net.at(t) : 0;
    const auto lv = ledger_net.count(t) ? ledger_net.at(t) : 0;
    if (jv != lv)
      out.push_back("terminal " + t + ": journal approved - reversed = " + std::to_string(jv) +
                    ", acquirer ledger settles " + std::to_string(lv));
  }
  return out;
}

// (5) PRAGMA integrity_check is "ok".
inline violations check_integrity(const std::string& journal) {
  violations out;
  detail::db_handle h;
  std::string error;
  if (!detail::open_read_only(journal, h, error)) return {"journal " + journal + ": " + error};
  std::vector<std::string> lines;
  if (!detail::each_row(
          h.db, "PRAGMA integrity_check", [&](sqlite3_stmt* st) { lines.push_back(detail::text_at(st, 0)); },
          error))
    return {"journal " + journal + ": integrity_check failed to run: " + error};
  if (lines.size() != 1 || lines.front() != "ok")
    for (const auto& l : lines) out.push_back("journal " + journal + ": integrity_check: " + l);
  return out;
}

// All five, each violation prefixed with its checker's number.
inline violations check_all(const std::string& history, const std::string& journal,
                            const std::string& ledger) {
  violations out;
  const auto add = [&](int n, const violations& v) {
    for (const auto& s : v) out.push_back("checker " + std::to_string(n) + ": " + s);
  };
  add(1, check_pos_approvals(history, journal));
  add(2, check_no_double_authorization(journal, ledger));
  add(3, check_in_doubt_resolved(journal, ledger));
  add(4, check_ledger_totals(journal, ledger));
  add(5, check_integrity(journal));
  return out;
}

}  // namespace eftd::test::chaos
