// Transaction search: one SQL statement built from fixed fragments (filters present add
// "AND <fragment>" with ?N placeholders; every value is bound), so no filter value or sort
// name can change the statement.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "eftd/core/card.hpp"
#include "eftd/journal/card_data.hpp"
#include "eftd/reports/reports.hpp"
#include "util.hpp"

namespace eftd::reports {

namespace {

using journal::report_record;
using journal::report_value;

// The page of orders is chosen first (filter, sort, limit), then joined with the order's first
// operation, first acquirer message and request event: the joins run for the page's rows
// only. The total reuses the filter's placeholders, so it counts in the same statement.
constexpr const char* search_columns =
    "SELECT o.order_id, o.merchant_id, o.store_id, o.till_id, o.order_no, o.business_date, o.kind,"
    " o.amount_minor, o.currency, o.state, o.result_code, o.reason_cashier, o.reason_customer,"
    " o.approved_amount_minor, o.created_ms, o.updated_ms,"
    " p.scheme, p.entry_mode, p.pan_masked, p.auth_code, p.response_code,"
    " m.acquirer, m.terminal_id, m.rrn,"
    " (SELECT e.reason FROM events e WHERE e.order_id = o.order_id"
    "   AND e.kind LIKE '%\\_requested' ESCAPE '\\' ORDER BY e.event_id LIMIT 1),";

constexpr const char* search_joins =
    " LEFT JOIN operations p ON p.op_id = (SELECT x.op_id FROM operations x WHERE x.order_id = o.order_id"
    "   ORDER BY x.created_ms, x.rowid LIMIT 1)"
    " LEFT JOIN acquirer_messages m ON m.msg_id = (SELECT y.msg_id FROM acquirer_messages y"
    "   JOIN operations z ON z.op_id = y.op_id WHERE z.order_id = o.order_id"
    "   ORDER BY y.created_ms, y.rowid LIMIT 1)";

struct where_clause {
  std::string sql;
  report_record params;

  // `fragment` holds "?" where the value goes (each "?" becomes the next ?N).
  void add(std::string_view fragment, std::vector<report_value> values) {
    sql += " AND ";
    std::size_t v = 0;
    for (char c : fragment) {
      if (c == '?' && v < values.size()) {
        params.push_back(std::move(values[v++]));
        sql += "?" + std::to_string(params.size());
      } else {
        sql += c;
      }
    }
  }
  void text(const std::optional<std::string>& value, std::string_view fragment) {
    if (value) add(fragment, {*value});
  }
  void integer(const std::optional<std::int64_t>& value, std::string_view fragment) {
    if (value) add(fragment, {*value});
  }
};

where_clause where_of(const transaction_filter& f) {
  where_clause w;
  w.text(f.business_date_from, "o.business_date >= ?");
  w.text(f.business_date_to, "o.business_date <= ?");
  w.integer(f.created_from_ms, "o.created_ms >= ?");
  w.integer(f.created_to_ms, "o.created_ms <= ?");
  w.text(f.merchant_id, "o.merchant_id = ?");
  w.text(f.store_id, "o.store_id = ?");
  w.text(f.till_id, "o.till_id = ?");
  if (!f.till_ids.empty()) {
    std::string frag = "o.till_id IN (";
    std::vector<report_value> values;
    for (std::size_t i = 0; i < f.till_ids.size(); ++i) {
      frag += i ? ", ?" : "?";
      values.emplace_back(f.till_ids[i]);
    }
    w.add(frag + ")", std::move(values));
  }
  if (f.operator_id) {
    // The requested event's text ends in " operator <id>" (server/src/engine.cpp).
    w.add(
        "EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.order_id AND e.kind LIKE '%\\_requested' ESCAPE "
        "'\\'"
        " AND substr(e.reason, -length(?) - 10) = ' operator ' || ?)",
        {*f.operator_id, *f.operator_id});
  }
  w.text(f.order_no, "o.order_no = ?");
  w.text(f.pan_masked,
         "EXISTS (SELECT 1 FROM operations q WHERE q.order_id = o.order_id AND q.pan_masked = ?)");
  w.text(
      f.pan_last4,
      "EXISTS (SELECT 1 FROM operations q WHERE q.order_id = o.order_id AND substr(q.pan_masked, -4) = ?)");
  if (f.pan_hash) {
    // The journal writes lower-case hex; accept what staff paste in either case.
    std::string h = *f.pan_hash;
    for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    w.add("EXISTS (SELECT 1 FROM operations q WHERE q.order_id = o.order_id AND lower(q.pan_hash) = ?)", {h});
  }
  w.text(f.scheme, "EXISTS (SELECT 1 FROM operations q WHERE q.order_id = o.order_id AND q.scheme = ?)");
  w.text(f.entry_mode,
         "EXISTS (SELECT 1 FROM operations q WHERE q.order_id = o.order_id AND q.entry_mode = ?)");
  w.integer(f.amount_min, "o.amount_minor >= ?");
  w.integer(f.amount_max, "o.amount_minor <= ?");
  w.text(f.currency, "o.currency = ?");
  w.text(f.kind, "o.kind = ?");
  w.text(f.state, "o.state = ?");
  w.text(f.result_code, "o.result_code = ?");
  w.text(f.response_code,
         "EXISTS (SELECT 1 FROM operations q WHERE q.order_id = o.order_id AND q.response_code = ?)");
  w.text(f.acquirer,
         "EXISTS (SELECT 1 FROM acquirer_messages y JOIN operations z ON z.op_id = y.op_id"
         " WHERE z.order_id = o.order_id AND y.acquirer = ?)");
  w.text(f.terminal_id,
         "EXISTS (SELECT 1 FROM acquirer_messages y JOIN operations z ON z.op_id = y.op_id"
         " WHERE z.order_id = o.order_id AND y.terminal_id = ?)");
  if (f.batch && f.batch->batch_no) {
    w.add(
        "EXISTS (SELECT 1 FROM acquirer_messages y JOIN operations z ON z.op_id = y.op_id"
        " WHERE z.order_id = o.order_id AND y.acquirer = ? AND y.terminal_id = ? AND y.batch_no = ?"
        " AND substr(y.mti, 2, 1) = '2')",
        {f.batch->acquirer, f.batch->terminal_id, *f.batch->batch_no});
  } else if (f.batch) {
    w.add(
        "o.business_date = ? AND EXISTS (SELECT 1 FROM acquirer_messages y JOIN operations z ON z.op_id = "
        "y.op_id"
        " WHERE z.order_id = o.order_id AND y.acquirer = ? AND y.terminal_id = ? AND substr(y.mti, 2, 1) = "
        "'2')",
        {f.batch->business_date, f.batch->acquirer, f.batch->terminal_id});
  }
  return w;
}

// "order 4711: sale 12.50 requested by till T01 operator 7" -> "7".
std::optional<std::string> operator_of(const std::optional<std::string>& reason) {
  if (!reason) return std::nullopt;
  const auto at = reason->rfind(" operator ");
  if (at == std::string::npos) return std::nullopt;
  return reason->substr(at + 10);
}

bool hex_only(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

}  // namespace

result<sort_by> parse_sort(std::string_view name) {
  if (name == "created") return sort_by::created;
  if (name == "amount") return sort_by::amount;
  if (name == "order_no") return sort_by::order_no;
  return make_error("reports.invalid_filter",
                    fmt::format("unknown sort '{}': use created, amount or order_no", name));
}

status validate(const transaction_filter& f) {
  auto bad = [](std::string what) { return make_error("reports.invalid_filter", std::move(what)); };
  for (const auto* d : {&f.business_date_from, &f.business_date_to})
    if (*d && !detail::valid_date(**d)) return bad("business date: expected YYYY-MM-DD");
  if (f.batch && f.batch->batch_no && *f.batch->batch_no < 1) return bad("batch: the number starts at 1");
  if (f.batch && !f.batch->batch_no && !detail::valid_date(f.batch->business_date))
    return bad("batch: a batch number or a business date YYYY-MM-DD is required");
  if (f.batch && (f.batch->acquirer.empty() || f.batch->terminal_id.empty()))
    return bad("batch: acquirer and terminal id are required");
  if (f.pan_last4 && (f.pan_last4->size() != 4 || !std::all_of(f.pan_last4->begin(), f.pan_last4->end(),
                                                               [](char c) { return c >= '0' && c <= '9'; })))
    return bad("last 4 digits: expected exactly 4 digits");
  if (f.pan_hash && (f.pan_hash->size() != 64 || !hex_only(*f.pan_hash)))
    return bad("PAN hash: expected 64 hex digits");
  if (f.amount_min && f.amount_max && *f.amount_min > *f.amount_max)
    return bad("amount: minimum above maximum");
  if (f.created_from_ms && f.created_to_ms && *f.created_from_ms > *f.created_to_ms)
    return bad("created: start after end");
  if (f.limit < 1 || f.limit > 10000) return bad("limit must be between 1 and 10000");
  return {};
}

result<transaction_page> search_transactions(journal::reader& r, const transaction_filter& f) {
  if (auto st = validate(f); !st) return st.err();
  auto w = where_of(f);
  const char* dir = f.descending ? " DESC" : "";
  const char* col = f.sort == sort_by::amount     ? "o.amount_minor"
                    : f.sort == sort_by::order_no ? "o.order_no"
                                                  : "o.created_ms";
  const std::string order_by = std::string(" ORDER BY ") + col + dir + ", o.order_id" + dir;
  report_record params = w.params;
  params.emplace_back(static_cast<std::int64_t>(f.limit));
  params.emplace_back(static_cast<std::int64_t>(f.offset));
  const std::string sql = std::string(search_columns) + " (SELECT COUNT(*) FROM orders o WHERE 1" + w.sql +
                          ") FROM (SELECT o.* FROM orders o WHERE 1" + w.sql + order_by + " LIMIT ?" +
                          std::to_string(params.size() - 1) + " OFFSET ?" + std::to_string(params.size()) +
                          ") o" + search_joins + order_by;
  auto rows = r.report_query(sql, params);
  if (!rows) return rows.err();

  transaction_page page;
  page.offset = f.offset;
  page.limit = f.limit;
  for (const auto& v : *rows) {
    transaction_row t;
    auto& o = t.order;
    o.order_id = detail::text(v[0]);
    o.merchant_id = detail::text(v[1]);
    o.store_id = detail::text(v[2]);
    o.till_id = detail::text(v[3]);
    o.order_no = detail::text(v[4]);
    o.business_date = detail::text(v[5]);
    o.kind = detail::text(v[6]);
    o.amount_minor = detail::integer(v[7]);
    o.currency = detail::text(v[8]);
    o.state = detail::text(v[9]);
    o.result_code = detail::opt_text(v[10]);
    o.reason_cashier = detail::opt_text(v[11]);
    o.reason_customer = detail::opt_text(v[12]);
    if (auto a = detail::opt_text(v[13])) o.approved_amount_minor = detail::integer(v[13]);
    o.created_ms = detail::integer(v[14]);
    o.updated_ms = detail::integer(v[15]);
    t.scheme = detail::opt_text(v[16]);
    t.entry_mode = detail::opt_text(v[17]);
    t.pan_masked = detail::opt_text(v[18]);
    t.auth_code = detail::opt_text(v[19]);
    t.response_code = detail::opt_text(v[20]);
    t.acquirer = detail::opt_text(v[21]);
    t.terminal_id = detail::opt_text(v[22]);
    t.rrn = detail::opt_text(v[23]);
    t.operator_id = operator_of(detail::opt_text(v[24]));
    page.total = detail::integer(v[25]);
    page.rows.push_back(std::move(t));
  }
  if (page.rows.empty() && f.offset > 0) {
    // Paged past the end: the window count came with no row, so count on its own.
    auto n = r.report_query("SELECT COUNT(*) FROM orders o WHERE 1" + w.sql, w.params);
    if (!n) return n.err();
    page.total = n->empty() ? 0 : detail::integer(n->front()[0]);
  }
  return page;
}

result<std::string> pan_search_hash(const std::filesystem::path& key_file, std::string_view digits) {
  std::error_code ec;
  // load_or_create_keys would create a fresh key file: a report must never do that (the
  // hashes would match nothing, silently).
  if (!std::filesystem::exists(key_file, ec))
    return make_error("reports.keys", "the journal key file does not exist (journal.keys in the config)");
  auto k = journal::load_or_create_keys(key_file);
  if (!k) return make_error("reports.keys", "the journal key file cannot be used: " + k.err().message);
  auto p = pan::parse(digits);
  if (!p) return p.err();
  return journal::search_hash(*k, *p);
}

namespace {

const std::vector<std::string>& transaction_header() {
  static const std::vector<std::string> h{
      "created",   "business_date", "merchant", "store",       "till",     "order_no",   "kind",
      "amount",    "currency",      "state",    "result_code", "scheme",   "entry_mode", "pan",
      "auth_code", "response_code", "acquirer", "terminal_id", "operator", "order_id"};
  return h;
}

std::vector<std::string> transaction_cells(const transaction_row& t) {
  const auto& o = t.order;
  return {detail::iso_time(o.created_ms),
          o.business_date,
          o.merchant_id,
          o.store_id,
          o.till_id,
          o.order_no,
          o.kind,
          detail::amount_text(o.amount_minor, o.currency),
          o.currency,
          o.state,
          o.result_code.value_or(""),
          t.scheme.value_or(""),
          t.entry_mode.value_or(""),
          t.pan_masked.value_or(""),
          t.auth_code.value_or(""),
          t.response_code.value_or(""),
          t.acquirer.value_or(""),
          t.terminal_id.value_or(""),
          t.operator_id.value_or(""),
          o.order_id};
}

void put(nlohmann::json& j, const char* key, const std::optional<std::string>& v) {
  if (v) j[key] = *v;
}

}  // namespace

std::string render_transactions(const transaction_page& p, format f) {
  if (f == format::json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& t : p.rows) {
      const auto& o = t.order;
      nlohmann::json j{{"order_id", o.order_id},
                       {"merchant_id", o.merchant_id},
                       {"store_id", o.store_id},
                       {"till_id", o.till_id},
                       {"order_no", o.order_no},
                       {"business_date", o.business_date},
                       {"kind", o.kind},
                       {"amount_minor", o.amount_minor},
                       {"amount", detail::amount_text(o.amount_minor, o.currency)},
                       {"currency", o.currency},
                       {"state", o.state},
                       {"created_ms", o.created_ms},
                       {"created", detail::iso_time(o.created_ms)},
                       {"updated_ms", o.updated_ms}};
      put(j, "result_code", o.result_code);
      put(j, "reason_cashier", o.reason_cashier);
      if (o.approved_amount_minor) j["approved_amount_minor"] = *o.approved_amount_minor;
      put(j, "scheme", t.scheme);
      put(j, "entry_mode", t.entry_mode);
      put(j, "pan_masked", t.pan_masked);
      put(j, "auth_code", t.auth_code);
      put(j, "response_code", t.response_code);
      put(j, "acquirer", t.acquirer);
      put(j, "terminal_id", t.terminal_id);
      put(j, "rrn", t.rrn);
      put(j, "operator_id", t.operator_id);
      rows.push_back(std::move(j));
    }
    nlohmann::json out{
        {"total", p.total}, {"offset", p.offset}, {"limit", p.limit}, {"rows", std::move(rows)}};
    return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& t : p.rows) cells.push_back(transaction_cells(t));
  if (f == format::csv) return detail::csv_lines(transaction_header(), cells);
  std::string out = detail::text_table(transaction_header(), cells);
  if (p.rows.empty())
    out += fmt::format("(no transactions; {} match)\n", p.total);
  else
    out += fmt::format("({}-{} of {} transaction{})\n", p.offset + 1, p.offset + p.rows.size(), p.total,
                       p.total == 1 ? "" : "s");
  return out;
}

}  // namespace eftd::reports
