#include "backoffice_pages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace eftd::server::backoffice {

namespace {

std::string e(std::string_view s) {
  return html_escape(s);
}
std::string e(const std::string& s) {
  return html_escape(s);
}

std::string e(const std::optional<std::string>& s) {
  return s ? html_escape(*s) : std::string();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string get(const params& q, std::string_view key) {
  auto it = q.find(key);
  return it == q.end() ? std::string() : it->second;
}

// <input> of the search form, filled with the current value.
std::string field(const params& q, std::string_view name, std::string_view label,
                  std::string_view type = "text") {
  return fmt::format("<label>{} <input type=\"{}\" name=\"{}\" value=\"{}\"></label>\n", e(label), type,
                     e(name), e(get(q, name)));
}

std::string select(const params& q, std::string_view name, std::string_view label,
                   std::initializer_list<std::string_view> options) {
  const auto cur = get(q, name);
  std::string out = fmt::format("<label>{} <select name=\"{}\">", e(label), e(name));
  for (auto o : options)
    out += fmt::format("<option value=\"{}\"{}>{}</option>", e(o), o == cur ? " selected" : "",
                       o.empty() ? "(any)" : e(o));
  return out + "</select></label>\n";
}

std::string export_links(std::string_view path, const params& q) {
  return fmt::format(
      "<p class=\"export\">Export: <a href=\"{0}?{1}\" download>CSV</a> "
      "<a href=\"{0}?{2}\" download>JSON</a></p>\n",
      path, e(query_with(q, "format", "csv")), e(query_with(q, "format", "json")));
}

std::string opt_num(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string();
}

}  // namespace

params parse_form(std::string_view text) {
  params out;
  while (!text.empty()) {
    auto amp = text.find('&');
    auto pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

std::string url_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(digits[u >> 4]);
      out.push_back(digits[u & 0xF]);
    }
  }
  return out;
}

std::string query_with(const params& p, std::string_view key, std::string_view value) {
  params q = p;
  if (value.empty())
    q.erase(std::string(key));
  else
    q.insert_or_assign(std::string(key), std::string(value));
  std::string out;
  for (const auto& [k, v] : q) {
    if (v.empty()) continue;
    if (!out.empty()) out += '&';
    out += url_encode(k) + "=" + url_encode(v);
  }
  return out;
}

std::string format_minor(std::int64_t minor) {
  const bool neg = minor < 0;
  const auto a = neg ? -minor : minor;
  return fmt::format("{}{}.{:02}", neg ? "-" : "", a / 100, a % 100);
}

std::optional<std::int64_t> parse_major(std::string_view t) {
  if (t.empty() || t.size() > 15) return std::nullopt;
  auto dot = t.find('.');
  auto whole = t.substr(0, dot);
  auto frac = dot == std::string_view::npos ? std::string_view{} : t.substr(dot + 1);
  if (whole.empty() || frac.size() > 2 || (dot != std::string_view::npos && frac.empty()))
    return std::nullopt;
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(whole) || !digits(frac)) return std::nullopt;
  std::int64_t v = 0;
  std::from_chars(whole.data(), whole.data() + whole.size(), v);
  std::int64_t f = 0;
  if (!frac.empty()) std::from_chars(frac.data(), frac.data() + frac.size(), f);
  if (frac.size() == 1) f *= 10;
  return v * 100 + f;
}

std::string format_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string layout(const session& s, std::string_view title, std::string_view body) {
  std::string nav =
      "<a href=\"/transactions\">Transactions</a> <a href=\"/settlement\">Settlement</a> "
      "<a href=\"/cases\">Cases</a> <a href=\"/status\">Pads &amp; tills</a> <a href=\"/charts\">Charts</a> "
      "<a href=\"/notifications\">Notifications</a>";
  if (role_allows(s.user_role, role::supervisor)) nav += " <a href=\"/users\">Users</a>";
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0} - eftd</title>"
      "<link rel=\"stylesheet\" href=\"/static/app.css\"></head>\n<body>\n<header><nav>{1}</nav>"
      "<form class=\"logout\" method=\"post\" action=\"/logout\"><span id=\"whoami\">{2} ({3})</span> "
      "<input type=\"hidden\" name=\"csrf\" value=\"{4}\"><button type=\"submit\">Log "
      "out</button></form></header>\n"
      "<main>\n<h1>{0}</h1>\n{5}</main>\n</body></html>\n",
      e(title), nav, e(s.user), to_string(s.user_role), e(s.csrf), body);
}

std::string login_page(std::string_view csrf, std::string_view message) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log in - eftd</title>"
      "<link rel=\"stylesheet\" href=\"/static/app.css\"></head>\n<body><main class=\"login\">\n"
      "<h1>eftd back office</h1>\n{}"
      "<form method=\"post\" action=\"/login\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n"
      "<label>User <input type=\"text\" name=\"user\" autocomplete=\"username\" required></label>\n"
      "<label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" "
      "required></label>\n<button type=\"submit\">Log in</button>\n</form>\n</main></body></html>\n",
      message.empty() ? std::string()
                      : fmt::format("<p class=\"problem\" id=\"problem\">{}</p>\n", e(message)),
      e(csrf));
}

std::string message_page(std::string_view title, std::string_view text) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>"
      "<link rel=\"stylesheet\" href=\"/static/app.css\"></head>\n<body><main><h1>{0}</h1><p>{1}</p>"
      "<p><a href=\"/\">Back office</a></p></main></body></html>\n",
      e(title), e(text));
}

std::string search_page(const session& s, const params& q, const reports::transaction_page& page,
                        std::string_view problem) {
  std::string b = "<form class=\"filters\" method=\"get\" action=\"/transactions\" id=\"search\">\n";
  b += field(q, "date_from", "Business date from", "date") + field(q, "date_to", "to", "date");
  b += field(q, "store", "Store") + field(q, "till", "Till") + field(q, "pad", "Pad") +
       field(q, "operator", "Operator") + field(q, "order", "Order no.");
  b += field(q, "card", "Masked PAN or last 4");
  b += select(q, "scheme", "Scheme",
              {"", "visa", "mastercard", "maestro", "amex", "discover", "jcb", "unionpay"});
  b += select(q, "entry_mode", "Entry", {"", "chip", "contactless", "magstripe", "manual", "fallback"});
  b +=
      field(q, "amount_min", "Amount from") + field(q, "amount_max", "to") + field(q, "currency", "Currency");
  b += select(q, "kind", "Type", {"", "sale", "refund", "preauth", "incremental", "completion"});
  b += select(q, "state", "Result",
              {"", "approved", "declined", "failed", "cancelled", "reversed", "in_progress"});
  b += field(q, "result_code", "Result code") + field(q, "response_code", "Response code");
  b += field(q, "acquirer", "Acquirer") + field(q, "terminal", "Terminal id");
  b += field(q, "batch_date", "Batch date", "date");
  b += select(q, "sort", "Sort by", {"created", "amount", "order_no"});
  b += select(q, "dir", "Order", {"desc", "asc"});
  if (auto h = get(q, "pan_hash"); !h.empty())
    b += fmt::format(
        "<input type=\"hidden\" name=\"pan_hash\" value=\"{}\"><span class=\"note\">Filtered by one "
        "card (full PAN search)</span>\n",
        e(h));
  b += "<button type=\"submit\" id=\"search-button\">Search</button>\n</form>\n";
  // The full PAN never goes into a URL (history, proxies): it is posted, hashed and forgotten.
  b += fmt::format(
      "<form class=\"pan\" method=\"post\" action=\"/transactions/by-card\"><input type=\"hidden\" "
      "name=\"csrf\" "
      "value=\"{}\"><label>Full card number <input type=\"password\" name=\"pan\" autocomplete=\"off\" "
      "inputmode=\"numeric\"></label><button type=\"submit\">Find card</button></form>\n",
      e(s.csrf));
  if (!problem.empty()) b += fmt::format("<p class=\"problem\" id=\"problem\">{}</p>\n", e(problem));
  b += fmt::format("<p id=\"count\">{} transaction(s)</p>\n", page.total);
  params all_pages = q;
  all_pages.erase("page");
  b += export_links("/transactions", all_pages);
  b += "<table id=\"results\"><thead><tr><th>Created (UTC)</th><th>Date</th><th>Store</th><th>Till</th>"
       "<th>Order</th><th>Type</th><th>Amount</th><th>Cur</th><th>Result</th><th>Code</th><th>Scheme</th>"
       "<th>Entry</th><th>Card</th><th>Auth</th><th>RC</th><th>Acquirer</th><th>Operator</th></tr></"
       "thead><tbody>\n";
  for (const auto& r : page.rows) {
    const auto& o = r.order;
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a class=\"detail\" "
        "href=\"/transactions/{}\">{}</a></td>"
        "<td>{}</td><td "
        "class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        format_time(o.created_ms), e(o.business_date), e(o.store_id), e(o.till_id), url_encode(o.order_id),
        e(o.order_no), e(o.kind), format_minor(o.amount_minor), e(o.currency), e(o.state), e(o.result_code),
        e(r.scheme), e(r.entry_mode), e(r.pan_masked), e(r.auth_code), e(r.response_code), e(r.acquirer),
        e(r.operator_id));
  }
  b += "</tbody></table>\n";
  // Paging: page numbers are 1-based in the URL.
  const std::uint32_t limit = std::max<std::uint32_t>(page.limit, 1);
  const auto current = page.offset / limit + 1;
  const auto pages = static_cast<std::uint32_t>((page.total + limit - 1) / limit);
  b += "<nav class=\"paging\">";
  if (current > 1)
    b += fmt::format("<a rel=\"prev\" href=\"/transactions?{}\">Previous</a> ",
                     e(query_with(q, "page", std::to_string(current - 1))));
  b += fmt::format("<span>Page {} of {}</span>", current, std::max<std::uint32_t>(pages, 1));
  if (current < pages)
    b += fmt::format(" <a rel=\"next\" href=\"/transactions?{}\">Next</a>",
                     e(query_with(q, "page", std::to_string(current + 1))));
  b += "</nav>\n";
  return layout(s, "Transactions", b);
}

std::string detail_page(const session& s, const journal::order_view& v) {
  const auto& o = v.order;
  std::string b = fmt::format(
      "<dl class=\"order\"><dt>Order id</dt><dd id=\"order-id\">{}</dd><dt>Merchant / store / "
      "till</dt><dd>{} / {} / "
      "{}</dd><dt>Order no.</dt><dd>{}</dd><dt>Business date</dt><dd>{}</dd><dt>Type</dt><dd>{}</dd>"
      "<dt>Amount</dt><dd>{} {}</dd><dt>State</dt><dd id=\"order-state\">{}</dd><dt>Result "
      "code</dt><dd>{}</dd>"
      "<dt>Cashier text</dt><dd>{}</dd><dt>Customer text</dt><dd>{}</dd><dt>Approved amount</dt><dd>{}</dd>"
      "<dt>Created / updated (UTC)</dt><dd>{} / {}</dd></dl>\n",
      e(o.order_id), e(o.merchant_id), e(o.store_id), e(o.till_id), e(o.order_no), e(o.business_date),
      e(o.kind), format_minor(o.amount_minor), e(o.currency), e(o.state), e(o.result_code),
      e(o.reason_cashier), e(o.reason_customer),
      o.approved_amount_minor ? format_minor(*o.approved_amount_minor) : "", format_time(o.created_ms),
      format_time(o.updated_ms));
  b += fmt::format(
      "<p class=\"export\">Export: <a href=\"/transactions/{0}?format=csv\" download>CSV</a> "
      "<a href=\"/transactions/{0}?format=json\" download>JSON</a></p>\n",
      url_encode(o.order_id));
  b += "<h2>Operations</h2>\n<table id=\"operations\"><thead><tr><th>Op id</th><th>Parent</th><th>Kind</th>"
       "<th>State</th><th>Amount</th><th>Entry</th><th>Scheme</th><th>Card</th><th>Auth</th><th>RC</th>"
       "<th>Result</th><th>Created</th></tr></thead><tbody>\n";
  for (const auto& op : v.operations)
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{} "
        "{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        e(op.op_id), e(op.parent_op_id), e(op.kind), e(op.state), format_minor(op.amount_minor),
        e(op.currency), e(op.entry_mode), e(op.scheme), e(op.pan_masked), e(op.auth_code),
        e(op.response_code), e(op.result_code), format_time(op.created_ms));
  b += "</tbody></table>\n<h2>Acquirer messages</h2>\n<table id=\"messages\"><thead><tr><th>Msg id</th>"
       "<th>Acquirer</th><th>Terminal</th><th>MTI</th><th>STAN</th><th>Local "
       "time</th><th>RRN</th><th>Amount</th>"
       "<th>State</th><th>RC</th><th>Auth</th><th>Attempts</th><th>Last "
       "error</th><th>Created</th></tr></thead>"
       "<tbody>\n";
  for (const auto& m : v.messages)
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:06}</td><td>{}</td><td>{}</td><td "
        "class=\"num\">{} "
        "{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        e(m.msg_id), e(m.acquirer), e(m.terminal_id), e(m.mti), m.stan, e(m.local_datetime), e(m.rrn),
        format_minor(m.amount_minor), e(m.currency), e(m.state), e(m.response_code), e(m.auth_code),
        m.attempts, e(m.last_error), format_time(m.created_ms));
  b += "</tbody></table>\n<h2>Event log</h2>\n<table id=\"events\"><thead><tr><th>#</th><th>At (UTC)</th>"
       "<th>Actor</th><th>Event</th><th>Reason</th><th>Detail</th><th>Op</th></tr></thead><tbody>\n";
  for (const auto& ev : v.events)
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        ev.event_id, format_time(ev.at_ms), e(journal::to_string(ev.actor)), e(ev.kind), e(ev.reason),
        e(ev.detail), e(ev.op_id));
  b += "</tbody></table>\n";
  return layout(s, "Transaction " + o.order_no, b);
}

std::string settlement_page(const session& s, const params& q,
                            const std::vector<reports::settlement_row>& rows) {
  std::string b =
      "<p><a href=\"/settlement/file\">Match an acquirer's settlement file</a></p>\n"
      "<form class=\"filters\" method=\"get\" action=\"/settlement\">\n";
  b += field(q, "date_from", "Business date from", "date") + field(q, "date_to", "to", "date") +
       field(q, "acquirer", "Acquirer") + field(q, "terminal", "Terminal id");
  b += "<button type=\"submit\">Show</button></form>\n" + export_links("/settlement", q);
  b += "<table id=\"settlement\"><thead><tr><th>Date</th><th>Acquirer</th><th>Terminal</th><th>Status</th>"
       "<th>Debits</th><th>Debit amount</th><th>Credits</th><th>Credit amount</th><th>Net (journal)</th>"
       "<th>Net (batch)</th><th>In doubt</th><th>Declined</th><th>Differs</th></tr></thead><tbody>\n";
  for (const auto& r : rows) {
    const auto& t = r.journal_totals;
    b += fmt::format(
        "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
        r.differs ? " class=\"differs\"" : "", e(r.business_date), e(r.acquirer), e(r.terminal_id),
        e(r.status), t.debits, format_minor(t.debit_amount), t.credits, format_minor(t.credit_amount),
        format_minor(t.net()), r.batch ? format_minor(r.batch->totals.net()) : std::string("-"),
        r.journal_in_doubt, r.declined, r.differs ? "yes (" + format_minor(r.net_difference) + ")" : "no");
  }
  b += "</tbody></table>\n";
  return layout(s, "Settlement", b);
}

std::string cases_page(const session& s, const params& q, const std::vector<reports::case_row>& rows,
                       std::string_view message) {
  // Viewers read; supervisors and administrators may also resolve (resolving closes the case
  // for everybody, so it is an action like unlocking a user).
  const bool can_resolve = role_allows(s.user_role, role::supervisor);
  std::string b;
  if (!message.empty()) b += fmt::format("<p class=\"problem\" id=\"message\">{}</p>\n", e(message));
  b += "<form class=\"filters\" method=\"get\" action=\"/cases\">\n";
  b += field(q, "date_from", "Business date from", "date") + field(q, "date_to", "to", "date") +
       field(q, "kind", "Kind");
  params shown = q;
  if (get(q, "status").empty()) shown["status"] = "open";
  b += select(shown, "status", "Status", {"open", "resolved", "all"});
  b += "<button type=\"submit\">Show</button></form>\n" + export_links("/cases", q);
  b += "<table id=\"cases\"><thead><tr><th>Since "
       "(UTC)</th><th>Kind</th><th>Date</th><th>Subject</th><th>What to "
       "do</th><th>Status</th></tr></thead><tbody>\n";
  for (const auto& c : rows) {
    std::string subject = e(c.label);
    if (c.subject_type == "order")
      subject = fmt::format("<a href=\"/transactions/{}\">{}</a>", url_encode(c.subject), e(c.label));
    std::string status;
    if (c.resolved_ms) {
      status = fmt::format("<span class=\"resolved\">resolved {} by {}</span>: {}",
                           format_time(*c.resolved_ms), e(c.resolved_by), e(c.note));
    } else if (can_resolve) {
      status = fmt::format(
          "open <form class=\"resolve\" method=\"post\" action=\"/cases/resolve\">"
          "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"kind\" "
          "value=\"{}\">"
          "<input type=\"hidden\" name=\"subject\" value=\"{}\">"
          "<input type=\"text\" name=\"note\" maxlength=\"2000\" required placeholder=\"what was done\">"
          "<button type=\"submit\">Resolve</button></form>",
          e(s.csrf), e(c.kind), e(c.subject_id()));
    } else {
      status = "open";
    }
    b += fmt::format(
        "<tr id=\"case-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        e(c.key), format_time(c.since_ms), e(c.kind), e(c.business_date), subject, e(c.text), status);
  }
  b += "</tbody></table>\n";
  return layout(s, "Reconciliation cases", b);
}

std::string status_page(const session& s, const std::string& business_date,
                        const std::vector<journal::pad_health_set>& pads,
                        const std::vector<reports::till_status_row>& tills, std::int64_t now_ms) {
  std::string b =
      "<h2>PIN pads</h2>\n" + export_links("/status/pads", {}) +
      "<table id=\"pads\"><thead><tr><th>Pad</th><th>State</th><th>Serial</th><th>Model</th>"
      "<th>Firmware</th><th>Node</th><th>Last seen</th><th>RTT ms</th><th>Missed pings</th></tr></thead>"
      "<tbody>\n";
  for (const auto& p : pads)
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td "
        "class=\"num\">{}</td>"
        "<td class=\"num\">{}</td></tr>\n",
        e(p.pad_id), e(p.state), e(p.serial), e(p.model), e(p.firmware), e(p.node),
        p.last_seen_ms
            ? fmt::format("{} ({} s ago)", format_time(*p.last_seen_ms), (now_ms - *p.last_seen_ms) / 1000)
            : std::string(),
        opt_num(p.rtt_ms), p.missed_pings);
  b +=
      "</tbody></table>\n<h2>Tills, business date " + e(business_date) + "</h2>\n" +
      export_links("/status/tills", {{"date", business_date}}) +
      "<table id=\"tills\"><thead><tr><th>Till</th><th>Merchant</th><th>Store</th><th>Last activity</th>"
      "<th>Last order</th><th>Last state</th><th>Orders</th><th>Approved</th><th>Declined</th><th>Failed</th>"
      "<th>In progress</th><th>Approved amount</th></tr></thead><tbody>\n";
  for (const auto& t : tills)
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{} {}</td></tr>\n",
        e(t.till_id), e(t.merchant_id), e(t.store_id), t.last_seen_ms ? format_time(t.last_seen_ms) : "",
        e(t.last_order_no), e(t.last_state), t.orders, t.approved, t.declined, t.failed, t.in_progress,
        format_minor(t.approved_amount_minor), e(t.currency));
  b += "</tbody></table>\n";
  return layout(s, "Pads and tills", b);
}

std::string notifications_page(const session& s,
                               const std::vector<std::pair<std::string, std::int64_t>>& counts,
                               const std::vector<journal::notification_row>& pending,
                               const std::vector<journal::notification_row>& expired,
                               std::string_view message) {
  // Sending again is an action (audited), like resolving a case: not for viewers.
  const bool can_retry = role_allows(s.user_role, role::supervisor);
  std::string b;
  if (!message.empty()) b += fmt::format("<p class=\"problem\" id=\"message\">{}</p>\n", e(message));
  b += "<table id=\"notification-counts\"><thead><tr><th>State</th><th>Notifications</th></tr></thead>"
       "<tbody>\n";
  for (const auto& [state, n] : counts)
    b += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td></tr>\n", e(state), n);
  b += "</tbody></table>\n";
  auto table = [&](std::string_view id, std::string_view title,
                   const std::vector<journal::notification_row>& rows) {
    b += fmt::format(
        "<h2>{}</h2>\n<table id=\"{}\"><thead><tr><th>Notification</th><th>Endpoint</th><th>Order</th>"
        "<th>Order state</th><th>Created</th><th>Attempts</th><th>Next attempt</th><th>Last error</th>{}"
        "</tr></thead><tbody>\n",
        e(title), e(id), can_retry ? "<th></th>" : "");
    for (const auto& r : rows) {
      std::string action;
      if (can_retry)
        action = fmt::format(
            "<td><form class=\"retry\" method=\"post\" action=\"/notifications/retry\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" "
            "value=\"{}\"><button type=\"submit\">Retry now</button></form></td>",
            e(s.csrf), e(r.notification_id));
      b += fmt::format(
          "<tr id=\"notification-{}\"><td>{}</td><td>{}</td><td><a href=\"/transactions/{}\">{}</a></td>"
          "<td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td>{}</tr>\n",
          e(r.notification_id), e(r.notification_id), e(r.endpoint.empty() ? "(default)" : r.endpoint),
          e(url_encode(r.order_id)), e(r.order_id), e(r.order_state), format_time(r.created_ms), r.attempts,
          r.state == "pending" ? format_time(r.next_attempt_ms) : "", e(r.last_error.value_or("")), action);
    }
    b += "</tbody></table>\n";
  };
  table("notifications-pending", "Pending (oldest first)", pending);
  table("notifications-expired", "Expired (newest first)", expired);
  b += "<p>\"Retry now\" sends a pending notification at once and puts an expired one back in its "
       "endpoint's queue with a fresh maximum age (as <code>eftctl notifications retry "
       "&lt;id&gt;</code>).</p>\n";
  return layout(s, "Outcome notifications", b);
}

std::string svg_hourly(const std::vector<reports::hourly_stat>& hours) {
  // 24 slots of the UTC day(s) shown; bars are the count, the line the approval rate (0..100 %).
  constexpr int w = 720, h = 260, left = 40, bottom = 30, top = 20, right = 40;
  const int plot_w = w - left - right, plot_h = h - top - bottom;
  std::int64_t max_total = 1;
  for (const auto& x : hours) max_total = std::max(max_total, x.total);
  const int n = std::max<int>(static_cast<int>(hours.size()), 1);
  const double slot = static_cast<double>(plot_w) / n;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-hourly\" role=\"img\" width=\"{0}\" "
      "height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\"><title>Transactions and approval rate per hour (UTC)</title>"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>"
      "<line x1=\"{2}\" y1=\"{3}\" x2=\"{4}\" y2=\"{3}\" stroke=\"#333\"/>"
      "<line x1=\"{2}\" y1=\"{5}\" x2=\"{2}\" y2=\"{3}\" stroke=\"#333\"/>"
      "<text x=\"4\" y=\"{6}\" font-size=\"10\">{7}</text><text x=\"{8}\" y=\"{6}\" "
      "font-size=\"10\">100%</text>",
      w, h, left, top + plot_h, left + plot_w, top, top + 8, max_total, left + plot_w + 4);
  std::string line;
  for (int i = 0; i < static_cast<int>(hours.size()); ++i) {
    const auto& x = hours[static_cast<std::size_t>(i)];
    const double bh =
        static_cast<double>(plot_h) * static_cast<double>(x.total) / static_cast<double>(max_total);
    const double bx = left + i * slot + slot * 0.15;
    out += fmt::format(
        "<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#4a7ab5\">"
        "<title>{} UTC: {} transaction(s), {:.0f}% approved</title></rect>",
        bx, top + plot_h - bh, slot * 0.7, bh, format_time(x.hour_start_ms).substr(0, 13) + ":00", x.total,
        x.approval_rate * 100);
    line += fmt::format("{}{:.1f},{:.1f}", line.empty() ? "" : " ", left + i * slot + slot / 2,
                        top + plot_h - plot_h * x.approval_rate);
    if (hours.size() <= 24 || i % 4 == 0)
      out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
                         left + i * slot + slot / 2, h - 12, format_time(x.hour_start_ms).substr(11, 2));
  }
  if (!line.empty())
    out += fmt::format(
        "<polyline class=\"rate\" points=\"{}\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\"/>", line);
  if (hours.empty())
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\">no transactions</text>", left + 10,
                       top + plot_h / 2);
  return out + "</svg>";
}

std::string svg_schemes(const std::vector<reports::scheme_stat>& schemes) {
  constexpr int w = 720, row = 24, left = 140, right = 120;
  const int h = std::max<int>(static_cast<int>(schemes.size()), 1) * row + 30;
  std::int64_t max_total = 1;
  for (const auto& x : schemes) max_total = std::max(max_total, x.total);
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-schemes\" role=\"img\" width=\"{0}\" "
      "height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\"><title>Transactions by scheme</title>"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>",
      w, h);
  int i = 0;
  for (const auto& x : schemes) {
    const double bw =
        static_cast<double>(w - left - right) * static_cast<double>(x.total) / static_cast<double>(max_total);
    const double aw = static_cast<double>(w - left - right) * static_cast<double>(x.approved) /
                      static_cast<double>(max_total);
    const int y = 10 + i * row;
    out += fmt::format(
        "<text x=\"4\" y=\"{}\" font-size=\"11\">{} {}</text>"
        "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"#b0c4de\"/>"
        "<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"#4a7ab5\"/>"
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\">{} ({} approved)</text>",
        y + 14, e(x.scheme), e(x.currency), left, y, bw, row - 6, left, y, aw, row - 6, left + bw + 6, y + 14,
        x.total, x.approved);
    ++i;
  }
  if (schemes.empty()) out += "<text x=\"10\" y=\"20\" font-size=\"12\">no transactions</text>";
  return out + "</svg>";
}

std::string charts_page(const session& s, const params& q, const reports::stats_report& st) {
  std::string b = "<form class=\"filters\" method=\"get\" action=\"/charts\">\n";
  b += field(q, "date_from", "Business date from", "date") + field(q, "date_to", "to", "date") +
       field(q, "store", "Store");
  b += "<button type=\"submit\">Show</button></form>\n" + export_links("/charts", q);
  b += "<h2>Transactions and approval rate per hour (UTC)</h2>\n<figure>" + svg_hourly(st.hours) +
       "</figure>\n";
  b += "<h2>By scheme</h2>\n<figure>" + svg_schemes(st.schemes) + "</figure>\n";
  return layout(s, "Charts", b);
}

std::string users_page(const session& s, const std::vector<user_row>& users, std::string_view message) {
  std::string b;
  if (!message.empty()) b += fmt::format("<p class=\"problem\" id=\"problem\">{}</p>\n", e(message));
  b += "<table id=\"users\"><thead><tr><th>Name</th><th>Role</th><th>Failed attempts</th><th>Locked</th>"
       "<th>Updated (UTC)</th><th></th></tr></thead><tbody>\n";
  for (const auto& u : users) {
    std::string action;
    if (u.locked || u.failed_attempts > 0)
      action = fmt::format(
          "<form method=\"post\" action=\"/users/unlock\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">"
          "<input type=\"hidden\" name=\"name\" value=\"{}\"><button type=\"submit\">Unlock</button></form>",
          e(s.csrf), e(u.name));
    b += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        e(u.name), to_string(u.user_role), u.failed_attempts, u.locked ? "yes" : "no",
        format_time(u.updated_ms), action);
  }
  b += "</tbody></table>\n";
  if (role_allows(s.user_role, role::admin))
    b += fmt::format(
        "<h2>Add a user</h2>\n<form method=\"post\" action=\"/users\"><input type=\"hidden\" name=\"csrf\" "
        "value=\"{}\"><label>Name <input type=\"text\" name=\"name\" required></label> <label>Role <select "
        "name=\"role\"><option>viewer</option><option>supervisor</option><option>admin</option></select></"
        "label> "
        "<label>Password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" "
        "minlength=\"10\" required></label> <button type=\"submit\">Add</button></form>\n",
        e(s.csrf));
  return layout(s, "Users", b);
}

std::string_view stylesheet() {
  return R"css(body{font-family:sans-serif;margin:0;color:#222}
header{display:flex;justify-content:space-between;align-items:center;background:#2c3e50;padding:6px 12px}
header a{color:#fff;margin-right:12px;text-decoration:none}
header .logout{color:#fff}
main{padding:12px}
main.login{max-width:320px;margin:60px auto}
main.login label{display:block;margin:8px 0}
form.filters label{display:inline-block;margin:2px 8px 2px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}
td.num{text-align:right}
tr.differs{background:#fde2e2}
.problem{color:#a00;font-weight:bold}
.note{font-style:italic}
dl.order{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dl.order dt{font-weight:bold}
)css";
}

}  // namespace eftd::server::backoffice
