// Private helpers shared by the report renderers and queries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eftd/journal/reader.hpp"
#include "eftd/reports/orders.hpp"

namespace eftd::reports::detail {

// "2026-11-22T10:15:00.000Z": report times are UTC, so nodes in different zones line up.
std::string iso_time(std::int64_t ms);
// "125.00" in the currency's exponent; the raw minor units if the currency is unknown.
std::string amount_text(std::int64_t minor, const std::string& currency);

// Aligned columns, two spaces apart, header first.
std::string text_table(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows);
// RFC 4180 lines (CRLF), header first.
std::string csv_lines(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows);

// report_query values.
std::string text(const journal::report_value& v);
std::optional<std::string> opt_text(const journal::report_value& v);
std::int64_t integer(const journal::report_value& v);

bool valid_date(const std::string& d);

}  // namespace eftd::reports::detail
