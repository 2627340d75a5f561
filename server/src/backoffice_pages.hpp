// Back-office HTML pages: pure functions from report rows to HTML text, no I/O. Every value
// from the journal or the request is escaped (html_escape) where it is written; the pages
// carry no script and no inline style, so the Content-Security-Policy can forbid both.
// Charts are SVG drawn here (nothing is fetched from elsewhere at run time).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backoffice_auth.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/reports/reports.hpp"

namespace eftd::server::backoffice {

using params = std::map<std::string, std::string, std::less<>>;

// application/x-www-form-urlencoded (query strings and form bodies): '+' is a space, %XX a
// byte. Malformed escapes are kept as they are; the first of a repeated name wins.
params parse_form(std::string_view text);
std::string url_encode(std::string_view text);
// Query string of `p` with `key` set to `value` (empty value: removed), keys in order.
std::string query_with(const params& p, std::string_view key, std::string_view value);

// Minor units as a decimal with two places ("1234" -> "12.34"), and back ("12.34" -> 1234;
// nullopt unless digits with at most two decimals).
std::string format_minor(std::int64_t minor);
std::optional<std::int64_t> parse_major(std::string_view text);
// UTC "YYYY-MM-DD HH:MM:SS".
std::string format_time(std::int64_t ms);

// The page frame: title, navigation for the user's role, logout form (with the CSRF token).
std::string layout(const session& s, std::string_view title, std::string_view body);
std::string login_page(std::string_view csrf, std::string_view message);
// Small status pages (403, 404, 400) with a link home.
std::string message_page(std::string_view title, std::string_view text);

// The search form (filled from `q`), the result table with links to the detail, paging and
// export links.
std::string search_page(const session& s, const params& q, const reports::transaction_page& page,
                        std::string_view problem);
std::string detail_page(const session& s, const journal::order_view& v);
std::string settlement_page(const session& s, const params& q,
                            const std::vector<reports::settlement_row>& rows);
// Open cases carry a "Resolve" form (POST /cases/resolve: kind, subject, note) for supervisors
// and administrators; `message` is shown above the list (the outcome of a resolve).
std::string cases_page(const session& s, const params& q, const std::vector<reports::case_row>& rows,
                       std::string_view message = {});
std::string status_page(const session& s, const std::string& business_date,
                        const std::vector<journal::pad_health_set>& pads,
                        const std::vector<reports::till_status_row>& tills, std::int64_t now_ms);
std::string charts_page(const session& s, const params& q, const reports::stats_report& st);
// Outcome notifications (server/NOTIFY.md): counts per delivery state and the latest pending
// and expired rows with their endpoint. Supervisors and administrators get a "Retry now"
// button per row (POST /notifications/retry, as `eftctl notifications retry`); `message` is
// shown above (the outcome of the last retry).
std::string notifications_page(const session& s,
                               const std::vector<std::pair<std::string, std::int64_t>>& counts,
                               const std::vector<journal::notification_row>& pending,
                               const std::vector<journal::notification_row>& expired,
                               std::string_view message = {});
std::string users_page(const session& s, const std::vector<user_row>& users, std::string_view message);

// Transactions and approval rate per hour (bars + line), and transactions by scheme (bars).
std::string svg_hourly(const std::vector<reports::hourly_stat>& hours);
std::string svg_schemes(const std::vector<reports::scheme_stat>& schemes);

// The style sheet served at /static/app.css.
std::string_view stylesheet();

}  // namespace eftd::server::backoffice
