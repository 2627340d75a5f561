// Back-office renderings of journal rows: a transaction list and the log of one transaction,
// as a text table (terminal), CSV (RFC 4180, for spreadsheets) or JSON (for other systems).
// Rows carry only masked card data, so nothing here can print a PAN.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/journal/reader.hpp"

namespace eftd::reports {

enum class format { table, csv, json };

// "table" | "csv" | "json"; anything else: reports.bad_format.
result<format> parse_format(std::string_view name);

// One line per order (header first for table/CSV; a JSON array for json).
std::string render_orders(const std::vector<journal::order_row>& rows, format f);

// Everything about one order: the order, its operations, acquirer messages and events.
std::string render_order_detail(const journal::order_view& v, format f);

// RFC 4180 field quoting: quotes when the value holds a comma, quote, CR or LF.
std::string csv_field(std::string_view v);

// A business date as the journal keeps it: YYYY-MM-DD with month 01-12 and day 01-31.
bool valid_business_date(std::string_view d);

}  // namespace eftd::reports
