// Settlement report and reconciliation cases.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "eftd/journal/settlement_rules.hpp"
#include "eftd/reports/reports.hpp"
#include "util.hpp"

namespace eftd::reports {

namespace {

using journal::report_record;
using journal::report_value;

bool is_final(std::string_view state) {
  return journal::is_final_batch_state(state);
}

}  // namespace

result<std::vector<settlement_row>> settlement_report(journal::reader& r, const settlement_filter& f) {
  for (const auto* d : {&f.business_date_from, &f.business_date_to})
    if (*d && !detail::valid_date(**d))
      return make_error("reports.invalid_filter", "business date: expected YYYY-MM-DD");
  auto opt = [](const std::optional<std::string>& v) -> report_value {
    if (v) return *v;
    return std::monostate{};
  };
  // Every batch written, and every terminal's open batch holding financial requests (MTI
  // x2xx), labelled with the latest business date of its orders.
  auto keys = r.report_query(
      "SELECT acquirer, terminal_id, batch_no, business_date FROM settlement_batches"
      " WHERE (?1 IS NULL OR business_date >= ?1) AND (?2 IS NULL OR business_date <= ?2)"
      " AND (?3 IS NULL OR acquirer = ?3) AND (?4 IS NULL OR terminal_id = ?4)"
      " UNION SELECT m.acquirer, m.terminal_id, m.batch_no, max(o.business_date) FROM acquirer_messages m"
      " JOIN operations op ON op.op_id = m.op_id JOIN orders o ON o.order_id = op.order_id"
      " WHERE substr(m.mti, 2, 1) = '2' AND m.batch_no IS NOT NULL"
      " AND (?3 IS NULL OR m.acquirer = ?3) AND (?4 IS NULL OR m.terminal_id = ?4)"
      " AND NOT EXISTS (SELECT 1 FROM settlement_batches b WHERE b.acquirer = m.acquirer"
      "   AND b.terminal_id = m.terminal_id AND b.batch_no = m.batch_no)"
      " GROUP BY m.acquirer, m.terminal_id, m.batch_no"
      " HAVING (?1 IS NULL OR max(o.business_date) >= ?1) AND (?2 IS NULL OR max(o.business_date) <= ?2)"
      " ORDER BY 4, 1, 2, 3",
      {opt(f.business_date_from), opt(f.business_date_to), opt(f.acquirer), opt(f.terminal_id)});
  if (!keys) return keys.err();

  std::vector<settlement_row> out;
  out.reserve(keys->size());
  for (const auto& k : *keys) {
    settlement_row s;
    s.acquirer = detail::text(k[0]);
    s.terminal_id = detail::text(k[1]);
    s.batch_no = detail::integer(k[2]);
    s.business_date = detail::text(k[3]);
    auto batch = r.settlement_batch_no(s.acquirer, s.terminal_id, s.batch_no);
    if (!batch) return batch.err();
    s.batch = std::move(*batch);
    auto cands = r.batch_candidates(s.acquirer, s.terminal_id, s.batch_no);
    if (!cands) return cands.err();
    const auto c = journal::batch_content_of(*cands);
    s.journal_totals = c.totals;
    s.journal_in_doubt = c.in_doubt;
    s.declined = c.declined;
    if (s.batch) {
      s.status = s.batch->state;
      s.differs = !(s.batch->totals == s.journal_totals);
      s.net_difference = s.journal_totals.net() - s.batch->totals.net();
    } else {
      s.status = "not_closed";
    }
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

std::vector<std::string> settlement_header() {
  return {"business_date",
          "acquirer",
          "terminal_id",
          "batch_no",
          "status",
          "response_code",
          "debits",
          "debit_amount",
          "debit_reversals",
          "debit_reversal_amount",
          "credits",
          "credit_amount",
          "credit_reversals",
          "credit_reversal_amount",
          "net",
          "in_doubt",
          "declined",
          "journal_net",
          "net_difference",
          "differs",
          "uploads",
          "batch_id"};
}

nlohmann::json totals_json(const journal::settlement_totals& t) {
  return {{"debits", t.debits},
          {"debit_amount", t.debit_amount},
          {"debit_reversals", t.debit_reversals},
          {"debit_reversal_amount", t.debit_reversal_amount},
          {"credits", t.credits},
          {"credit_amount", t.credit_amount},
          {"credit_reversals", t.credit_reversals},
          {"credit_reversal_amount", t.credit_reversal_amount},
          {"net", t.net()}};
}

}  // namespace

std::string render_settlement(const std::vector<settlement_row>& rows, format f) {
  if (f == format::json) {
    auto arr = nlohmann::json::array();
    for (const auto& s : rows) {
      nlohmann::json j{{"business_date", s.business_date},
                       {"acquirer", s.acquirer},
                       {"terminal_id", s.terminal_id},
                       {"batch_no", s.batch_no},
                       {"status", s.status},
                       {"journal_totals", totals_json(s.journal_totals)},
                       {"journal_in_doubt", s.journal_in_doubt},
                       {"declined", s.declined},
                       {"differs", s.differs},
                       {"net_difference", s.net_difference}};
      if (s.batch) {
        const auto& b = *s.batch;
        nlohmann::json bj{{"batch_id", b.batch_id},
                          {"state", b.state},
                          {"card_acceptor_id", b.card_acceptor_id},
                          {"totals", totals_json(b.totals)},
                          {"in_doubt", b.in_doubt},
                          {"uploads_total", b.uploads_total},
                          {"uploads_done", b.uploads_done},
                          {"created_ms", b.created_ms},
                          {"updated_ms", b.updated_ms}};
        if (b.response_code) bj["response_code"] = *b.response_code;
        j["batch"] = std::move(bj);
      }
      arr.push_back(std::move(j));
    }
    return arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  // Amounts in minor units: a batch has no currency of its own (fields 86-89 of the 0500).
  std::vector<std::vector<std::string>> cells;
  for (const auto& s : rows) {
    // The batch's totals as sent in its 0500 when closed; the journal's own totals otherwise.
    const auto& t = s.batch ? s.batch->totals : s.journal_totals;
    auto n = [](std::int64_t v) { return std::to_string(v); };
    cells.push_back({s.business_date,
                     s.acquirer,
                     s.terminal_id,
                     n(s.batch_no),
                     s.status,
                     s.batch ? s.batch->response_code.value_or("") : "",
                     n(t.debits),
                     n(t.debit_amount),
                     n(t.debit_reversals),
                     n(t.debit_reversal_amount),
                     n(t.credits),
                     n(t.credit_amount),
                     n(t.credit_reversals),
                     n(t.credit_reversal_amount),
                     n(t.net()),
                     n(s.batch ? s.batch->in_doubt : s.journal_in_doubt),
                     n(s.declined),
                     n(s.journal_totals.net()),
                     n(s.net_difference),
                     s.differs ? "yes" : "no",
                     s.batch ? fmt::format("{}/{}", s.batch->uploads_done, s.batch->uploads_total) : "",
                     s.batch ? s.batch->batch_id : ""});
  }
  if (f == format::csv) return detail::csv_lines(settlement_header(), cells);
  return detail::text_table(settlement_header(), cells) +
         fmt::format("({} batch{}; amounts in minor units)\n", rows.size(), rows.size() == 1 ? "" : "es");
}

// ---- cases --------------------------------------------------------------------------------

result<case_status> parse_case_status(std::string_view name) {
  if (name == "open") return case_status::open;
  if (name == "resolved") return case_status::resolved;
  if (name == "all") return case_status::all;
  return make_error("reports.invalid_filter",
                    fmt::format("unknown case status '{}': use open, resolved or all", name));
}

namespace {

// Journal schema 11 keeps what staff decided about a case; a case is derived anew on every
// run, so the decision is joined by (kind, subject id) and survives the case's own changes.
status attach_resolutions(journal::reader& r, case_status want, std::vector<case_row>& rows) {
  constexpr int resolutions_schema = 11;
  if (r.schema_version() >= resolutions_schema && !rows.empty()) {
    auto res =
        r.report_query("SELECT case_kind, subject_id, resolved_ms, actor, note FROM case_resolutions", {});
    if (!res) return res.err();
    std::map<std::pair<std::string, std::string>, const journal::report_record*> by_case;
    for (const auto& x : *res) by_case.emplace(std::pair{detail::text(x[0]), detail::text(x[1])}, &x);
    for (auto& c : rows) {
      auto it = by_case.find(std::pair{c.kind, c.subject_id()});
      if (it == by_case.end()) continue;
      const auto& x = *it->second;
      c.resolved_ms = detail::integer(x[2]);
      c.resolved_by = detail::text(x[3]);
      c.note = detail::text(x[4]);
    }
  }
  if (want == case_status::all) return {};
  std::erase_if(
      rows, [&](const case_row& c) { return c.resolved_ms.has_value() != (want == case_status::resolved); });
  return {};
}

}  // namespace

result<std::vector<case_row>> list_cases(journal::reader& r, const case_filter& f) {
  std::vector<case_row> out;
  auto want = [&](std::string_view kind) { return !f.kind || *f.kind == kind; };

  // Batches: from the settlement report, which also knows what the journal says now.
  settlement_filter sf;
  sf.business_date_from = f.business_date_from;
  sf.business_date_to = f.business_date_to;
  auto batches = settlement_report(r, sf);
  if (!batches) return batches.err();
  for (const auto& s : *batches) {
    if (!s.batch) continue;
    const auto& b = *s.batch;
    const std::string label =
        fmt::format("{}/{} batch {} ({})", b.acquirer, b.terminal_id, b.batch_no, b.business_date);
    auto add = [&](std::string_view kind, std::int64_t since, std::string text) {
      if (!want(kind)) return;
      out.push_back({fmt::format("{}:{}", kind, b.batch_id), std::string(kind), since, "batch", b.batch_id,
                     label, b.business_date, std::move(text)});
    };
    if (b.state == journal::batch_states::out_of_balance)
      add(case_kinds::batch_out_of_balance, b.updated_ms,
          fmt::format("the acquirer's totals differ from eftd's (response {}) after the batch upload ({}/{} "
                      "uploaded); compare with the acquirer's settlement file",
                      b.response_code.value_or("-"), b.uploads_done, b.uploads_total));
    else if (b.state == journal::batch_states::refused)
      add(case_kinds::batch_refused, b.updated_ms,
          fmt::format("the acquirer refused the close (response {}); settle again or contact the acquirer",
                      b.response_code.value_or("-")));
    else if (!is_final(b.state) && f.now_ms > 0 && b.updated_ms <= f.now_ms - f.in_doubt_after_ms)
      add(case_kinds::batch_unfinished, b.updated_ms,
          fmt::format("the close stopped in state {}; run the settlement again", b.state));
    if (is_final(b.state) && b.in_doubt > 0)
      add(case_kinds::batch_in_doubt, b.created_ms,
          fmt::format("{} request(s) had no known outcome at the close and were left out", b.in_doubt));
    if (is_final(b.state) && s.differs)
      add(case_kinds::batch_totals_differ, b.updated_ms,
          fmt::format("the journal now comes to a net of {} against {} sent at the close (difference {})",
                      s.journal_totals.net(), b.totals.net(), s.net_difference));
  }

  auto opt = [](const std::optional<std::string>& v) -> report_value {
    if (v) return *v;
    return std::monostate{};
  };
  // Store-and-forward messages parked or expired, and requests in doubt for too long.
  const std::int64_t in_doubt_before = f.now_ms > 0 ? f.now_ms - f.in_doubt_after_ms : -1;
  auto msgs = r.report_query(
      "SELECT m.msg_id, m.mti, m.state, m.stan, m.acquirer, m.terminal_id, m.created_ms, m.updated_ms,"
      " m.last_error, o.order_id, o.till_id, o.order_no, o.business_date,"
      " (SELECT e.reason FROM events e WHERE e.op_id = m.op_id AND e.kind IN ('reversal_parked',"
      "   'reversal_expired', 'advice_parked', 'advice_expired') ORDER BY e.event_id DESC LIMIT 1)"
      " FROM acquirer_messages m JOIN operations op ON op.op_id = m.op_id JOIN orders o ON o.order_id = "
      "op.order_id"
      " WHERE (m.state IN ('parked', 'expired') OR (m.state IN ('intent', 'sent', 'timeout', "
      "'reversal_pending')"
      "   AND m.created_ms <= ?3))"
      " AND (?1 IS NULL OR o.business_date >= ?1) AND (?2 IS NULL OR o.business_date <= ?2)"
      " ORDER BY m.created_ms, m.msg_id",
      {opt(f.business_date_from), opt(f.business_date_to), in_doubt_before});
  if (!msgs) return msgs.err();
  for (const auto& m : *msgs) {
    const std::string msg_id = detail::text(m[0]);
    const std::string mti = detail::text(m[1]);
    const std::string state = detail::text(m[2]);
    const bool reversal = mti.rfind("04", 0) == 0;
    std::string_view kind;
    std::int64_t since = detail::integer(m[7]);
    if (state == journal::message_states::parked) {
      kind = reversal ? case_kinds::reversal_parked : case_kinds::advice_parked;
    } else if (state == journal::message_states::expired) {
      kind = reversal ? case_kinds::reversal_expired : case_kinds::advice_expired;
    } else {
      kind = case_kinds::message_in_doubt;
      since = detail::integer(m[6]);
    }
    if (!want(kind)) continue;
    // The queue's own explanation (its event) when there is one; else the last send error.
    std::string text;
    if (kind == case_kinds::message_in_doubt)
      text = fmt::format(
          "{} STAN {:06} to {} still has no outcome (state {}); recovery reverses or completes it", mti,
          detail::integer(m[3]), detail::text(m[4]), state);
    else if (auto why = detail::opt_text(m[13]))
      text = *why;
    else
      text = fmt::format("{} STAN {:06} to {} {}{}{}", mti, detail::integer(m[3]), detail::text(m[4]), state,
                         m[8].index() == 0 ? "" : ": last error ", detail::text(m[8]));
    out.push_back({fmt::format("{}:{}", kind, msg_id), std::string(kind), since, "order", detail::text(m[9]),
                   fmt::format("till {} order {} ({}/{})", detail::text(m[10]), detail::text(m[11]),
                               detail::text(m[4]), detail::text(m[5])),
                   detail::text(m[12]), std::move(text)});
  }

  // Completions the acquirer or eftd refused: the customer's hold was not settled.
  if (want(case_kinds::completion_refused)) {
    auto orders = r.report_query(
        "SELECT o.order_id, o.till_id, o.order_no, o.business_date, o.state, o.updated_ms, o.result_code,"
        " o.reason_cashier FROM orders o WHERE o.kind = 'completion' AND o.state IN ('declined', 'failed')"
        " AND (?1 IS NULL OR o.business_date >= ?1) AND (?2 IS NULL OR o.business_date <= ?2)"
        " ORDER BY o.updated_ms, o.order_id",
        {opt(f.business_date_from), opt(f.business_date_to)});
    if (!orders) return orders.err();
    for (const auto& o : *orders) {
      const std::string id = detail::text(o[0]);
      out.push_back({fmt::format("{}:{}", case_kinds::completion_refused, id),
                     std::string(case_kinds::completion_refused), detail::integer(o[5]), "order", id,
                     fmt::format("till {} order {}", detail::text(o[1]), detail::text(o[2])),
                     detail::text(o[3]),
                     fmt::format("completion {} ({}){}{}", detail::text(o[4]), detail::text(o[6]),
                                 o[7].index() == 0 ? "" : ": ", detail::text(o[7]))});
    }
  }
  if (auto st = attach_resolutions(r, f.status, out); !st) return st.err();
  std::stable_sort(out.begin(), out.end(), [](const case_row& a, const case_row& b) {
    return std::tie(a.since_ms, a.key) < std::tie(b.since_ms, b.key);
  });
  return out;
}

std::string render_cases(const std::vector<case_row>& rows, format f) {
  if (f == format::json) {
    auto arr = nlohmann::json::array();
    for (const auto& c : rows)
      arr.push_back(
          {{"key", c.key},
           {"kind", c.kind},
           {"since_ms", c.since_ms},
           {"since", detail::iso_time(c.since_ms)},
           {"subject_type", c.subject_type},
           {"subject", c.subject},
           {"label", c.label},
           {"business_date", c.business_date},
           {"text", c.text},
           {"status", c.resolved_ms ? "resolved" : "open"},
           {"resolved_ms", c.resolved_ms ? nlohmann::json(*c.resolved_ms) : nlohmann::json()},
           {"resolved", c.resolved_ms ? nlohmann::json(detail::iso_time(*c.resolved_ms)) : nlohmann::json()},
           {"resolved_by", c.resolved_by},
           {"note", c.note}});
    return arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  const std::vector<std::string> header{"since", "kind",   "business_date", "subject_type", "label", "text",
                                        "key",   "status", "resolved",      "resolved_by",  "note"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& c : rows)
    cells.push_back({detail::iso_time(c.since_ms), c.kind, c.business_date, c.subject_type, c.label, c.text,
                     c.key, c.resolved_ms ? "resolved" : "open",
                     c.resolved_ms ? detail::iso_time(*c.resolved_ms) : "", c.resolved_by, c.note});
  if (f == format::csv) return detail::csv_lines(header, cells);
  return detail::text_table(header, cells) +
         fmt::format("({} case{})\n", rows.size(), rows.size() == 1 ? "" : "s");
}

}  // namespace eftd::reports
