// Settlement file layouts as data, and the codec that turns settlement records into file bytes
// and back (sans-I/O apart from load_layout / read_file helpers).
//
// A layout (TOML, see acquirers/settlement/LAYOUTS.md) names a format (fixed-width or CSV) and
// three record definitions, header / detail / trailer, each a list of fields. The code knows a
// fixed vocabulary of field names (known_field_names()); a layout chooses which of them appear,
// where, and how they are encoded. Full PANs have no field: only pan_masked exists, and it is
// refused unless it is masked.
//
// Error codes: settlement.layout_invalid (names file, record, field; never values),
// settlement.bad_file (every bad line by number, with the field and the rule it broke),
// settlement.trailer_mismatch (names the trailer field that disagrees with the details),
// settlement.encode_failed (a value does not fit its field: names the field and record),
// settlement.io (a file cannot be read or written).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/result.hpp"

namespace eftd::settlement {

enum class file_format { fixed, csv };

// How a field's value is written: n digits zero-padded right-justified; an text left-justified
// space-padded; amount minor units as digits (zero-padded in fixed); date YYYYMMDD; time
// hhmmss; sign one of D / C.
enum class field_type { n, an, amount, date, time, sign };

struct field_spec {
  std::string name;  // one of known_field_names()
  field_type type = field_type::an;
  std::size_t start = 0;             // fixed: 1-based first column
  std::size_t length = 0;            // fixed: width; csv: 0 = no padding, else padded to it
  std::size_t column = 0;            // csv: 1-based column
  std::optional<std::string> value;  // a constant (record_type "H", "D", "T", ...)
};

struct record_spec {
  std::string record_type;  // the constant of its record_type field: tells records apart
  std::vector<field_spec> fields;
  std::size_t width = 0;  // fixed: the record length (every line has exactly this many bytes)
};

struct layout {
  std::string name;
  std::string source;  // file name, for error texts
  file_format format = file_format::fixed;
  char delimiter = ',';
  char quote = '"';
  bool header_row = false;  // csv: a first line with the detail record's field names
  record_spec header, detail, trailer;
  // Detail fields that identify a transaction (default terminal_id, rrn) and that confirm a
  // match (default auth_code, amount, date).
  std::vector<std::string> match_keys{"terminal_id", "rrn"};
  std::vector<std::string> match_confirm{"auth_code", "amount", "date"};
};

// The field names the code knows (see LAYOUTS.md for each).
std::span<const std::string_view> known_field_names() noexcept;

// Parses and validates a layout. `source` names it in errors.
result<layout> parse_layout(std::string_view toml_text, const std::string& source);
result<layout> load_layout(const std::filesystem::path& file);
// The layouts shipped in acquirers/settlement/layouts, compiled in: "fixed-width" or "csv".
result<layout> shipped_layout(std::string_view name);
// A layout file, or a shipped layout's name when no such file exists.
result<layout> load_layout_or_shipped(const std::string& file_or_name);

enum class entry_kind { debit, credit };  // debit: a sale (card pays); credit: a refund

// One settled transaction.
struct detail {
  std::string terminal_id;
  std::string merchant_id;
  std::string rrn;
  std::string auth_code;
  std::string stan;         // 6 digits
  std::int64_t amount = 0;  // minor units, > 0
  std::string currency;     // ISO 4217 numeric, 3 digits
  std::string date;         // YYYYMMDD (local date of the transaction)
  std::string time;         // hhmmss
  std::string pan_masked;   // masked PAN only, may be empty
  entry_kind kind = entry_kind::debit;
  std::string response_code;
  std::string batch;
  friend bool operator==(const detail&, const detail&) = default;
};

struct header {
  std::string acquirer;
  std::string merchant_id;
  std::string date;  // YYYYMMDD: the business date the file settles
  std::string batch;
  friend bool operator==(const header&, const header&) = default;
};

struct trailer {
  std::uint64_t count = 0;
  std::int64_t total_debits = 0;
  std::int64_t total_credits = 0;
  std::int64_t net = 0;  // debits - credits (may be negative: see the net_sign field)
  friend bool operator==(const trailer&, const trailer&) = default;
};

struct file {
  struct header header;
  std::vector<detail> details;
  struct trailer trailer;
  friend bool operator==(const file&, const file&) = default;
};

// A detail field by its layout name as canonical text ("amount" -> "12500", "kind" -> "D");
// "" for names a detail does not have.
std::string field_value(const detail& d, std::string_view name);

// The trailer the details add up to.
trailer totals_of(const std::vector<detail>& details);

// Encodes a file (its trailer as given: callers normally set it with totals_of). Lines end in
// "\n"; the last line too.
result<std::string> encode(const layout& l, const file& f);

// Decodes bytes: CRLF or LF line ends, a missing or present final newline. Any bad line refuses
// the whole file; the error lists every bad line (up to 50) by number. The trailer must agree
// with the details (count, total_debits, total_credits, net, when the layout has them).
result<file> decode(const layout& l, std::string_view bytes);

result<std::string> read_text_file(const std::filesystem::path& p);
// Writes to a temporary file next to `p`, then renames: readers never see half a file.
status write_text_file(const std::filesystem::path& p, std::string_view text);

// A PAN shown as at most the first 6 and last 4 digits (the rest '*'); anything else (a clear
// PAN, stray characters) is refused.
bool is_masked_pan(std::string_view s) noexcept;

}  // namespace eftd::settlement
