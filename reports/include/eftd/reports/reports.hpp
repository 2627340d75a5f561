// Back-office reports over the journal: transaction search, settlement, reconciliation cases,
// pad and till status, statistics for charts. Each report is a query returning plain structs
// (for the web pages to lay out) and a renderer to a terminal table, CSV (RFC 4180, CRLF) or
// JSON (for exports and other systems).
//
// Card data: rows carry the masked PAN only. A full PAN typed by staff is turned into the
// journal's keyed search hash (pan_search_hash) and then forgotten; nothing here can read the
// stored ciphertext (journal::reader::report_query refuses BLOB values).
//
// All times are milliseconds since the Unix epoch; reports show them as UTC. Dates are
// business dates 'YYYY-MM-DD' (inclusive bounds). Functions take an open reader and never
// write. Error codes: reports.invalid_filter (a bad filter value), reports.keys (the journal
// key file is missing or unreadable), plus the reader's journal.* codes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/reports/orders.hpp"  // format, parse_format, csv_field, render_order_detail

namespace eftd::reports {

// ---- transaction search -------------------------------------------------------------------

// Whitelisted sort columns: the only ones a caller can name (the SQL text is never built from
// caller text). Ties are broken by order id, so paging is stable.
enum class sort_by { created, amount, order_no };
// "created" | "amount" | "order_no"; anything else: reports.invalid_filter.
result<sort_by> parse_sort(std::string_view name);

// A settlement batch as the back office names it: the terminal's batch number (journal schema
// v6, acquirer_messages.batch_no), or, without one, the business date the batch is labelled
// with (every financial request of that date's orders on that terminal).
struct batch_ref {
  std::string acquirer;
  std::string terminal_id;
  std::optional<std::int64_t> batch_no;  // >= 1
  std::string business_date;             // used when batch_no is unset
};

// Every set field narrows the result (AND). Text fields match exactly, except pan_last4.
struct transaction_filter {
  std::optional<std::string> business_date_from;  // inclusive 'YYYY-MM-DD'
  std::optional<std::string> business_date_to;
  std::optional<std::int64_t> created_from_ms;  // inclusive
  std::optional<std::int64_t> created_to_ms;
  std::optional<std::string> merchant_id;
  std::optional<std::string> store_id;
  std::optional<std::string> till_id;
  // The journal does not record which pad served an order: a pad is attached to a till in the
  // config ([[tills]] pad = ...). Callers filter by pad by passing that pad's tills here; a
  // non-empty list matches orders of any of them (an empty list: no narrowing).
  std::vector<std::string> till_ids;
  // The journal has no operator column; the POS operator id is in the text of the order's
  // "<kind>_requested" event ("... requested by till T operator X"). Matches that exactly.
  std::optional<std::string> operator_id;
  std::optional<std::string> order_no;
  std::optional<std::string> pan_masked;   // the masked form as shown, e.g. "476173******0119"
  std::optional<std::string> pan_last4;    // 4 digits: the masked PAN ends with them
  std::optional<std::string> pan_hash;     // from pan_search_hash(): any operation of the order
  std::optional<std::string> scheme;       // any operation of the order
  std::optional<std::string> entry_mode;   // any operation: chip, contactless, magstripe, manual...
  std::optional<std::int64_t> amount_min;  // minor units, inclusive, the requested amount
  std::optional<std::int64_t> amount_max;
  std::optional<std::string> currency;
  std::optional<std::string> kind;           // order kind: sale, refund, preauth, completion...
  std::optional<std::string> state;          // order state (the result): approved, declined...
  std::optional<std::string> result_code;    // eftd's result code of the order
  std::optional<std::string> response_code;  // acquirer response code of any operation
  std::optional<std::string> acquirer;       // any acquirer message of the order
  std::optional<std::string> terminal_id;    // any acquirer message of the order
  // Orders with a financial request (MTI x2xx) in that batch: what it settles or considered.
  std::optional<batch_ref> batch;
  std::uint32_t limit = 100;  // 1..10000
  std::uint32_t offset = 0;
  sort_by sort = sort_by::created;
  bool descending = false;
};

// Checks dates, last 4 digits, hash shape, limit and ranges: reports.invalid_filter.
status validate(const transaction_filter& f);

// One order with what a list shows of its card and acquirer side.
struct transaction_row {
  journal::order_row order;
  // From the order's first operation (the payment, refund or completion itself).
  std::optional<std::string> scheme;
  std::optional<std::string> entry_mode;
  std::optional<std::string> pan_masked;
  std::optional<std::string> auth_code;
  std::optional<std::string> response_code;
  // From the first acquirer message of the order (none: never reached an acquirer).
  std::optional<std::string> acquirer;
  std::optional<std::string> terminal_id;
  std::optional<std::string> rrn;
  std::optional<std::string> operator_id;  // from the "<kind>_requested" event, if any
};

struct transaction_page {
  std::vector<transaction_row> rows;
  std::int64_t total = 0;  // orders matching the filter, ignoring limit/offset
  std::uint32_t offset = 0;
  std::uint32_t limit = 0;
};

result<transaction_page> search_transactions(journal::reader& r, const transaction_filter& f);

// The keyed search hash of a PAN typed by staff, with the journal's key file (journal.keys
// in the config). The key file must exist: it is never created here. The digits are not
// kept or logged. Errors: reports.keys, pan.* (not a PAN).
result<std::string> pan_search_hash(const std::filesystem::path& key_file, std::string_view digits);

// Table/CSV: one line per order; JSON: {"total","offset","limit","rows":[...]}.
std::string render_transactions(const transaction_page& p, format f);

// Transaction detail: render_order_detail(reader.order_detail(id)) from orders.hpp.

// ---- settlement ---------------------------------------------------------------------------

struct settlement_filter {
  std::optional<std::string> business_date_from;  // of the batch's label; unset: every date
  std::optional<std::string> business_date_to;
  std::optional<std::string> acquirer;
  std::optional<std::string> terminal_id;
};

// One batch of a terminal (acquirer, terminal id, batch number): the batch as closed (if it
// was) and what the journal says it comes to now, by the same rules as the close
// (server/src/settlement.hpp). A terminal's open batch (no batch row yet) is listed when it
// holds financial requests, labelled with the latest business date of its orders.
struct settlement_row {
  std::string acquirer;
  std::string terminal_id;
  std::int64_t batch_no = 0;
  std::string business_date;                           // the batch's label
  std::optional<journal::settlement_batch_row> batch;  // none: still open (not closed yet)
  journal::settlement_totals journal_totals;           // recomputed from the journal now
  std::int64_t journal_in_doubt = 0;                   // requests with no known outcome now
  std::int64_t declined = 0;                           // financial requests that settle nothing
  // batch totals != journal totals (e.g. an in-doubt request resolved after the close).
  bool differs = false;
  std::int64_t net_difference = 0;  // journal net - batch net (0 without a batch)
  std::string status;               // batch state, or "not_closed"
};

// Ordered by business date, acquirer, terminal id, batch number.
result<std::vector<settlement_row>> settlement_report(journal::reader& r, const settlement_filter& f);
std::string render_settlement(const std::vector<settlement_row>& rows, format f);

// ---- reconciliation cases -----------------------------------------------------------------

// Case kinds (stable strings, also in exports).
namespace case_kinds {
inline constexpr std::string_view batch_out_of_balance = "batch_out_of_balance";
inline constexpr std::string_view batch_refused = "batch_refused";
inline constexpr std::string_view batch_totals_differ = "batch_totals_differ";  // journal moved on
inline constexpr std::string_view batch_in_doubt = "batch_in_doubt";      // closed with requests in doubt
inline constexpr std::string_view batch_unfinished = "batch_unfinished";  // a close that stopped
inline constexpr std::string_view reversal_parked = "reversal_parked";
inline constexpr std::string_view reversal_expired = "reversal_expired";
inline constexpr std::string_view advice_parked = "advice_parked";  // e.g. a completion refused
inline constexpr std::string_view advice_expired = "advice_expired";
inline constexpr std::string_view completion_refused = "completion_refused";  // order declined/failed
inline constexpr std::string_view message_in_doubt = "message_in_doubt";      // no outcome for too long
}  // namespace case_kinds

// Which cases a list shows: those nobody resolved yet (the default), resolved ones, or both.
enum class case_status { open, resolved, all };
// "open" | "resolved" | "all"; anything else: reports.invalid_filter.
result<case_status> parse_case_status(std::string_view name);

struct case_filter {
  std::optional<std::string> business_date_from;  // of the batch or the order
  std::optional<std::string> business_date_to;
  std::optional<std::string> kind;  // one of case_kinds
  case_status status = case_status::open;
  // "Now", for message_in_doubt: a request still in doubt at now_ms - in_doubt_after_ms.
  std::int64_t now_ms = 0;
  std::int64_t in_doubt_after_ms = 10 * 60 * 1000;
};

struct case_row {
  std::string key;            // stable: "<kind>:<subject id>", the same on every run
  std::string kind;           // case_kinds
  std::int64_t since_ms = 0;  // when the journal first showed it
  std::string subject_type;   // "batch" or "order"
  std::string subject;        // batch id or order id
  std::string label;          // for people: "sim/TERM0001/2026-11-22" or "till T01 order 4711"
  std::string business_date;
  std::string text;  // what is wrong and what to do
  // Set when staff resolved the case (journal table case_resolutions, keyed by kind and
  // subject_id): when, who, and their note.
  std::optional<std::int64_t> resolved_ms;
  std::string resolved_by;
  std::string note;
  // The id the resolution is keyed by: the key without its "<kind>:" prefix.
  std::string subject_id() const { return key.substr(kind.size() + 1); }
};

// Oldest first. A resolved case stays in the list (status resolved/all) even though the
// journal still shows it: resolving records a decision, it changes nothing in the journal.
result<std::vector<case_row>> list_cases(journal::reader& r, const case_filter& f);
std::string render_cases(const std::vector<case_row>& rows, format f);

// ---- pad and till status ------------------------------------------------------------------

// Every pad eftd has seen (reader.pad_health()); now_ms gives "seen N s ago" in the table.
std::string render_pads(const std::vector<journal::pad_health_set>& pads, format f, std::int64_t now_ms);

struct till_status_row {
  std::string till_id;
  std::string merchant_id;
  std::string store_id;
  std::int64_t last_seen_ms = 0;  // the last order's last change
  std::string last_order_no;
  std::string last_state;
  // Orders of `business_date`:
  std::int64_t orders = 0;
  std::int64_t approved = 0;
  std::int64_t declined = 0;
  std::int64_t failed = 0;  // failed, cancelled, reversed
  std::int64_t in_progress = 0;
  // Net approved: sales and completions minus refunds (pre-authorisations hold, settle nothing).
  std::int64_t approved_amount_minor = 0;
  std::string currency;  // of those orders: "" if none, "*" if mixed
};

// Every till that has orders in the journal, by till id; counts for `business_date`.
result<std::vector<till_status_row>> till_status(journal::reader& r, const std::string& business_date);
std::string render_tills(const std::vector<till_status_row>& rows, format f);

// ---- statistics for charts ----------------------------------------------------------------

struct stats_filter {
  std::optional<std::string> business_date_from;
  std::optional<std::string> business_date_to;
  std::optional<std::int64_t> created_from_ms;
  std::optional<std::int64_t> created_to_ms;
  std::optional<std::string> merchant_id;
  std::optional<std::string> store_id;
};

// One UTC hour with orders (hours without orders are left out).
struct hourly_stat {
  std::int64_t hour_start_ms = 0;
  std::int64_t total = 0;
  std::int64_t approved = 0;
  std::int64_t declined = 0;
  std::int64_t other = 0;    // failed, cancelled, reversed, in progress
  double approval_rate = 0;  // approved / total, 0..1
  // Approved orders' amounts added up, every kind (a chart value, not accounting: refunds add).
  std::int64_t approved_amount_minor = 0;
};

// Per scheme of the order's first operation ("none" when no card was read) and currency.
struct scheme_stat {
  std::string scheme;
  std::string currency;
  std::int64_t total = 0;
  std::int64_t approved = 0;
  std::int64_t approved_amount_minor = 0;
};

struct stats_report {
  std::vector<hourly_stat> hours;    // ascending
  std::vector<scheme_stat> schemes;  // by total, descending, then scheme
};

result<stats_report> transaction_stats(journal::reader& r, const stats_filter& f);
// Table: both tables. CSV: one header "section,hour,scheme,currency,total,approved,declined,
// other,approval_rate_pct,approved_amount_minor", then "hour" and "scheme" lines. JSON:
// {"hours":[...],"schemes":[...]}.
std::string render_stats(const stats_report& s, format f);

}  // namespace eftd::reports
