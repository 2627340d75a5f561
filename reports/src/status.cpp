// Pad and till status, and statistics for the charts.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "eftd/reports/reports.hpp"
#include "util.hpp"

namespace eftd::reports {

namespace {

using journal::report_record;
using journal::report_value;

report_value opt(const std::optional<std::string>& v) {
  if (v) return *v;
  return std::monostate{};
}
report_value opt(const std::optional<std::int64_t>& v) {
  if (v) return *v;
  return std::monostate{};
}

std::string ago(std::optional<std::int64_t> at, std::int64_t now_ms) {
  if (!at) return "never";
  if (now_ms <= 0) return detail::iso_time(*at);
  const std::int64_t s = (now_ms - *at) / 1000;
  if (s < 0) return detail::iso_time(*at);
  if (s < 120) return fmt::format("{} s ago", s);
  if (s < 7200) return fmt::format("{} min ago", s / 60);
  return fmt::format("{} h ago", s / 3600);
}

}  // namespace

std::string render_pads(const std::vector<journal::pad_health_set>& pads, format f, std::int64_t now_ms) {
  if (f == format::json) {
    auto arr = nlohmann::json::array();
    for (const auto& p : pads) {
      nlohmann::json j{{"pad_id", p.pad_id},
                       {"state", p.state},
                       {"serial", p.serial},
                       {"model", p.model},
                       {"firmware", p.firmware},
                       {"peer", p.peer},
                       {"node", p.node},
                       {"missed_pings", p.missed_pings},
                       {"updated_ms", p.updated_ms}};
      if (p.connected_ms) j["connected_ms"] = *p.connected_ms;
      if (p.last_seen_ms) j["last_seen_ms"] = *p.last_seen_ms;
      if (p.rtt_ms) j["rtt_ms"] = *p.rtt_ms;
      // KSNs and counters as the pad reported them (not secret); kept as JSON if it parses.
      auto dukpt = nlohmann::json::parse(p.dukpt, nullptr, false);
      j["dukpt"] = dukpt.is_discarded() ? nlohmann::json::array() : dukpt;
      arr.push_back(std::move(j));
    }
    return arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  const std::vector<std::string> header{"pad_id", "state", "last_seen", "rtt_ms", "missed_pings",
                                        "serial", "model", "firmware",  "peer",   "node"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& p : pads)
    cells.push_back({p.pad_id, p.state,
                     f == format::csv ? (p.last_seen_ms ? detail::iso_time(*p.last_seen_ms) : "")
                                      : ago(p.last_seen_ms, now_ms),
                     p.rtt_ms ? std::to_string(*p.rtt_ms) : "", std::to_string(p.missed_pings), p.serial,
                     p.model, p.firmware, p.peer, p.node});
  if (f == format::csv) return detail::csv_lines(header, cells);
  return detail::text_table(header, cells) +
         fmt::format("({} pad{})\n", pads.size(), pads.size() == 1 ? "" : "s");
}

result<std::vector<till_status_row>> till_status(journal::reader& r, const std::string& business_date) {
  if (!detail::valid_date(business_date))
    return make_error("reports.invalid_filter", "business date: expected YYYY-MM-DD");
  // SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum: the
  // till's most recently changed order.
  auto last = r.report_query(
      "SELECT till_id, merchant_id, store_id, order_no, state, MAX(updated_ms) FROM orders"
      " GROUP BY till_id ORDER BY till_id",
      {});
  if (!last) return last.err();
  auto today = r.report_query(
      "SELECT till_id, COUNT(*), SUM(state = 'approved'), SUM(state = 'declined'),"
      " SUM(state IN ('failed', 'cancelled', 'reversed')), SUM(state = 'in_progress'),"
      " SUM(CASE WHEN state <> 'approved' THEN 0"
      "          WHEN kind = 'refund' THEN -COALESCE(approved_amount_minor, amount_minor)"
      "          WHEN kind IN ('sale', 'completion') THEN COALESCE(approved_amount_minor, amount_minor)"
      "          ELSE 0 END),"
      " MIN(CASE WHEN state = 'approved' AND kind IN ('sale', 'completion', 'refund') THEN currency END),"
      " MAX(CASE WHEN state = 'approved' AND kind IN ('sale', 'completion', 'refund') THEN currency END)"
      " FROM orders WHERE business_date = ?1 GROUP BY till_id",
      {business_date});
  if (!today) return today.err();
  std::vector<till_status_row> out;
  for (const auto& v : *last) {
    till_status_row t;
    t.till_id = detail::text(v[0]);
    t.merchant_id = detail::text(v[1]);
    t.store_id = detail::text(v[2]);
    t.last_order_no = detail::text(v[3]);
    t.last_state = detail::text(v[4]);
    t.last_seen_ms = detail::integer(v[5]);
    for (const auto& d : *today) {
      if (detail::text(d[0]) != t.till_id) continue;
      t.orders = detail::integer(d[1]);
      t.approved = detail::integer(d[2]);
      t.declined = detail::integer(d[3]);
      t.failed = detail::integer(d[4]);
      t.in_progress = detail::integer(d[5]);
      t.approved_amount_minor = detail::integer(d[6]);
      const auto lo = detail::opt_text(d[7]);
      const auto hi = detail::opt_text(d[8]);
      t.currency = !lo ? "" : (lo == hi ? *lo : "*");
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string render_tills(const std::vector<till_status_row>& rows, format f) {
  if (f == format::json) {
    auto arr = nlohmann::json::array();
    for (const auto& t : rows)
      arr.push_back({{"till_id", t.till_id},
                     {"merchant_id", t.merchant_id},
                     {"store_id", t.store_id},
                     {"last_seen_ms", t.last_seen_ms},
                     {"last_seen", detail::iso_time(t.last_seen_ms)},
                     {"last_order_no", t.last_order_no},
                     {"last_state", t.last_state},
                     {"orders", t.orders},
                     {"approved", t.approved},
                     {"declined", t.declined},
                     {"failed", t.failed},
                     {"in_progress", t.in_progress},
                     {"approved_amount_minor", t.approved_amount_minor},
                     {"currency", t.currency}});
    return arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  const std::vector<std::string> header{"till",        "merchant",     "store",    "last_seen", "last_order",
                                        "last_state",  "orders",       "approved", "declined",  "failed",
                                        "in_progress", "net_approved", "currency"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& t : rows) {
    auto n = [](std::int64_t v) { return std::to_string(v); };
    cells.push_back({t.till_id, t.merchant_id, t.store_id, detail::iso_time(t.last_seen_ms), t.last_order_no,
                     t.last_state, n(t.orders), n(t.approved), n(t.declined), n(t.failed), n(t.in_progress),
                     t.currency.size() == 3 ? detail::amount_text(t.approved_amount_minor, t.currency)
                                            : n(t.approved_amount_minor),
                     t.currency});
  }
  if (f == format::csv) return detail::csv_lines(header, cells);
  return detail::text_table(header, cells) +
         fmt::format("({} till{})\n", rows.size(), rows.size() == 1 ? "" : "s");
}

// ---- statistics ---------------------------------------------------------------------------

result<stats_report> transaction_stats(journal::reader& r, const stats_filter& f) {
  for (const auto* d : {&f.business_date_from, &f.business_date_to})
    if (*d && !detail::valid_date(**d))
      return make_error("reports.invalid_filter", "business date: expected YYYY-MM-DD");
  const std::string where =
      " WHERE (?1 IS NULL OR o.business_date >= ?1) AND (?2 IS NULL OR o.business_date <= ?2)"
      " AND (?3 IS NULL OR o.created_ms >= ?3) AND (?4 IS NULL OR o.created_ms <= ?4)"
      " AND (?5 IS NULL OR o.merchant_id = ?5) AND (?6 IS NULL OR o.store_id = ?6)";
  const report_record params{opt(f.business_date_from), opt(f.business_date_to), opt(f.created_from_ms),
                             opt(f.created_to_ms),      opt(f.merchant_id),      opt(f.store_id)};
  auto hours = r.report_query(
      "SELECT (o.created_ms / 3600000) * 3600000 AS h, COUNT(*), SUM(o.state = 'approved'),"
      " SUM(o.state = 'declined'),"
      " SUM(CASE WHEN o.state = 'approved' THEN COALESCE(o.approved_amount_minor, o.amount_minor) ELSE 0 END)"
      " FROM orders o" +
          where + " GROUP BY h ORDER BY h",
      params);
  if (!hours) return hours.err();
  auto schemes = r.report_query(
      "SELECT COALESCE(p.scheme, 'none') AS s, o.currency, COUNT(*), SUM(o.state = 'approved'),"
      " SUM(CASE WHEN o.state = 'approved' THEN COALESCE(o.approved_amount_minor, o.amount_minor) ELSE 0 END)"
      " FROM orders o LEFT JOIN operations p ON p.op_id = (SELECT x.op_id FROM operations x"
      "   WHERE x.order_id = o.order_id ORDER BY x.created_ms, x.rowid LIMIT 1)" +
          where + " GROUP BY s, o.currency ORDER BY 3 DESC, s, o.currency",
      params);
  if (!schemes) return schemes.err();
  stats_report out;
  for (const auto& v : *hours) {
    hourly_stat h;
    h.hour_start_ms = detail::integer(v[0]);
    h.total = detail::integer(v[1]);
    h.approved = detail::integer(v[2]);
    h.declined = detail::integer(v[3]);
    h.other = h.total - h.approved - h.declined;
    h.approval_rate = h.total > 0 ? static_cast<double>(h.approved) / static_cast<double>(h.total) : 0.0;
    h.approved_amount_minor = detail::integer(v[4]);
    out.hours.push_back(h);
  }
  for (const auto& v : *schemes) {
    scheme_stat s;
    s.scheme = detail::text(v[0]);
    s.currency = detail::text(v[1]);
    s.total = detail::integer(v[2]);
    s.approved = detail::integer(v[3]);
    s.approved_amount_minor = detail::integer(v[4]);
    out.schemes.push_back(std::move(s));
  }
  return out;
}

std::string render_stats(const stats_report& s, format f) {
  if (f == format::json) {
    nlohmann::json j{{"hours", nlohmann::json::array()}, {"schemes", nlohmann::json::array()}};
    for (const auto& h : s.hours)
      j["hours"].push_back({{"hour_start_ms", h.hour_start_ms},
                            {"hour", detail::iso_time(h.hour_start_ms)},
                            {"total", h.total},
                            {"approved", h.approved},
                            {"declined", h.declined},
                            {"other", h.other},
                            {"approval_rate", h.approval_rate},
                            {"approved_amount_minor", h.approved_amount_minor}});
    for (const auto& c : s.schemes)
      j["schemes"].push_back({{"scheme", c.scheme},
                              {"currency", c.currency},
                              {"total", c.total},
                              {"approved", c.approved},
                              {"approved_amount_minor", c.approved_amount_minor}});
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  auto n = [](std::int64_t v) { return std::to_string(v); };
  auto rate = [](double r) { return fmt::format("{:.1f}", r * 100.0); };
  std::vector<std::vector<std::string>> hours;
  for (const auto& h : s.hours)
    hours.push_back({detail::iso_time(h.hour_start_ms), n(h.total), n(h.approved), n(h.declined), n(h.other),
                     rate(h.approval_rate), n(h.approved_amount_minor)});
  std::vector<std::vector<std::string>> schemes;
  for (const auto& c : s.schemes)
    schemes.push_back({c.scheme, c.currency, n(c.total), n(c.approved),
                       detail::amount_text(c.approved_amount_minor, c.currency)});
  if (f == format::csv) {
    // One file, two sections: a "section" column says which table a line belongs to.
    std::vector<std::vector<std::string>> cells;
    for (auto& h : hours) {
      std::vector<std::string> l{"hour", h[0], "", ""};
      l.insert(l.end(), h.begin() + 1, h.end());
      cells.push_back(std::move(l));
    }
    for (const auto& c : s.schemes)
      cells.push_back({"scheme", "", c.scheme, c.currency, n(c.total), n(c.approved), "", "", "",
                       n(c.approved_amount_minor)});
    return detail::csv_lines({"section", "hour", "scheme", "currency", "total", "approved", "declined",
                              "other", "approval_rate_pct", "approved_amount_minor"},
                             cells);
  }
  return "Per hour (UTC):\n" +
         detail::text_table(
             {"hour", "total", "approved", "declined", "other", "approval_%", "approved_minor"}, hours) +
         "\nPer scheme:\n" +
         detail::text_table({"scheme", "currency", "total", "approved", "approved_amount"}, schemes);
}

}  // namespace eftd::reports
