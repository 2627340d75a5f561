// Layout loading and validation. Every error names the layout file, the TOML line, the record
// and the field; values are never quoted (a layout holds no card data, but the habit is kept).
#include "eftd/settlement/layout.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

namespace eftd::settlement {

namespace detail_shipped {
extern const std::string_view fixed_width_toml;
extern const std::string_view csv_toml;
}  // namespace detail_shipped

namespace {

constexpr std::array<std::string_view, 22> known_names{
    "record_type", "acquirer",   "terminal_id",     "merchant_id",   "rrn",
    "auth_code",   "stan",       "amount",          "currency",      "date",
    "time",        "pan_masked", "processing_code", "kind",          "response_code",
    "batch",       "count",      "total_debits",    "total_credits", "net",
    "net_sign",    "filler"};

// Which names each record may carry ("filler" is a constant or blank anywhere).
const std::set<std::string_view> header_names{"record_type", "acquirer", "merchant_id",
                                              "date",        "batch",    "filler"};
const std::set<std::string_view> detail_names{
    "record_type", "terminal_id",   "merchant_id", "rrn",   "auth_code",  "stan",
    "amount",      "currency",      "date",        "time",  "pan_masked", "processing_code",
    "kind",        "response_code", "batch",       "filler"};
const std::set<std::string_view> trailer_names{"record_type", "count", "total_debits", "total_credits", "net",
                                               "net_sign",    "date",  "batch",        "filler"};

// The type a field name must have, when only one makes sense.
std::optional<field_type> required_type(std::string_view name) {
  static const std::map<std::string_view, field_type> m{{"amount", field_type::amount},
                                                        {"total_debits", field_type::amount},
                                                        {"total_credits", field_type::amount},
                                                        {"net", field_type::amount},
                                                        {"date", field_type::date},
                                                        {"time", field_type::time},
                                                        {"kind", field_type::sign},
                                                        {"net_sign", field_type::sign},
                                                        {"count", field_type::n},
                                                        {"stan", field_type::n},
                                                        {"processing_code", field_type::n},
                                                        {"currency", field_type::n}};
  if (auto it = m.find(name); it != m.end()) return it->second;
  return std::nullopt;
}

std::optional<field_type> parse_type(std::string_view s) {
  if (s == "n") return field_type::n;
  if (s == "an") return field_type::an;
  if (s == "amount") return field_type::amount;
  if (s == "date") return field_type::date;
  if (s == "time") return field_type::time;
  if (s == "sign") return field_type::sign;
  return std::nullopt;
}

std::string_view type_name(field_type t) {
  switch (t) {
    case field_type::n:
      return "n";
    case field_type::an:
      return "an";
    case field_type::amount:
      return "amount";
    case field_type::date:
      return "date";
    case field_type::time:
      return "time";
    case field_type::sign:
      return "sign";
  }
  return "?";
}

struct checker {
  const std::string& source;
  std::vector<std::string> problems;

  void add(const toml::node* where, std::string what) {
    std::string at = source;
    if (where != nullptr && where->source().begin.line > 0)
      at += fmt::format(":{}", where->source().begin.line);
    problems.push_back(fmt::format("{}: {}", at, what));
  }
};

template <class T>
std::optional<T> get(const toml::table& t, std::string_view key) {
  if (auto v = t[key].value<T>()) return *v;
  return std::nullopt;
}

record_spec read_record(checker& c, const toml::table& root, std::string_view record, const layout& l,
                        std::size_t record_length) {
  record_spec r;
  r.width = record_length;
  const auto* tbl = root[record].as_table();
  if (tbl == nullptr) {
    c.add(&root, fmt::format("[{}] is missing", record));
    return r;
  }
  const auto* fields = (*tbl)["fields"].as_array();
  if (fields == nullptr || fields->empty()) {
    c.add(tbl, fmt::format("[{}] needs a non-empty fields = [...] list", record));
    return r;
  }
  const auto& allowed = record == "header" ? header_names : record == "detail" ? detail_names : trailer_names;
  std::set<std::string> seen;
  for (const auto& node : *fields) {
    const auto* f = node.as_table();
    if (f == nullptr) {
      c.add(&node, fmt::format("[{}]: every field is a table {{ name = ..., type = ... }}", record));
      continue;
    }
    field_spec s;
    s.name = get<std::string>(*f, "name").value_or("");
    const std::string where = fmt::format("[{}] field '{}'", record, s.name);
    if (std::find(known_names.begin(), known_names.end(), s.name) == known_names.end()) {
      c.add(f, fmt::format("{}: not a field name the code knows (see LAYOUTS.md)", where));
      continue;
    }
    if (!allowed.count(s.name)) c.add(f, fmt::format("{}: not allowed in a {} record", where, record));
    if (s.name != "filler" && !seen.insert(s.name).second) c.add(f, fmt::format("{}: appears twice", where));
    const auto type = parse_type(get<std::string>(*f, "type").value_or(""));
    if (!type) {
      c.add(f, fmt::format("{}: type must be n, an, amount, date, time or sign", where));
      continue;
    }
    s.type = *type;
    if (auto want = required_type(s.name); want && *want != s.type)
      c.add(f, fmt::format("{}: must have type {}", where, type_name(*want)));
    if (s.name == "pan_masked" && s.type != field_type::an)
      c.add(f, fmt::format("{}: must have type an", where));
    s.value = get<std::string>(*f, "value");
    if (s.name == "record_type" && !s.value) c.add(f, fmt::format("{}: needs a constant value", where));
    const auto length = get<std::int64_t>(*f, "length").value_or(0);
    if (length < 0 || length > 4096) c.add(f, fmt::format("{}: length out of range", where));
    s.length = static_cast<std::size_t>(std::max<std::int64_t>(length, 0));
    if (l.format == file_format::fixed) {
      const auto start = get<std::int64_t>(*f, "start").value_or(0);
      if (start < 1 || s.length == 0) {
        c.add(f, fmt::format("{}: fixed-width fields need start >= 1 and length >= 1", where));
        continue;
      }
      s.start = static_cast<std::size_t>(start);
      if (s.start + s.length - 1 > record_length)
        c.add(f, fmt::format("{}: ends at column {}, past record_length {}", where, s.start + s.length - 1,
                             record_length));
      const std::size_t need = s.type == field_type::date   ? 8
                               : s.type == field_type::time ? 6
                               : s.type == field_type::sign ? 1
                                                            : 0;
      if (need != 0 && s.length != need)
        c.add(f, fmt::format("{}: type {} needs length {}", where, type_name(s.type), need));
    } else {
      const auto column = get<std::int64_t>(*f, "column").value_or(0);
      if (column < 1 || column > 1000) {
        c.add(f, fmt::format("{}: csv fields need column >= 1", where));
        continue;
      }
      s.column = static_cast<std::size_t>(column);
    }
    if (s.value) {
      if (l.format == file_format::fixed && s.value->size() > s.length)
        c.add(f, fmt::format("{}: the constant is longer than the field", where));
      if (s.value->find_first_of("\r\n") != std::string::npos)
        c.add(f, fmt::format("{}: the constant holds a line break", where));
    }
    r.fields.push_back(std::move(s));
  }
  // Fields must not overlap (fixed) or share a column (csv).
  for (std::size_t i = 0; i < r.fields.size(); ++i) {
    for (std::size_t j = i + 1; j < r.fields.size(); ++j) {
      const auto& a = r.fields[i];
      const auto& b = r.fields[j];
      const bool clash = l.format == file_format::fixed
                             ? a.start < b.start + b.length && b.start < a.start + a.length
                             : a.column == b.column;
      if (clash) c.add(tbl, fmt::format("[{}] fields '{}' and '{}' overlap", record, a.name, b.name));
    }
  }
  for (const auto& f : r.fields)
    if (f.name == "record_type" && f.value) r.record_type = *f.value;
  if (r.record_type.empty()) c.add(tbl, fmt::format("[{}] needs a record_type field with a value", record));
  return r;
}

}  // namespace

std::span<const std::string_view> known_field_names() noexcept {
  return known_names;
}

result<layout> parse_layout(std::string_view toml_text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view{source});
  } catch (const toml::parse_error& e) {
    return make_error("settlement.layout_invalid",
                      fmt::format("{}:{}: {}", source, e.source().begin.line, e.description()));
  }
  checker c{source, {}};
  layout l;
  l.source = source;
  l.name = get<std::string>(root, "name").value_or("");
  if (l.name.empty()) c.add(&root, "name = \"...\" is missing");
  const auto format = get<std::string>(root, "format").value_or("");
  std::size_t record_length = 0;
  if (format == "fixed") {
    l.format = file_format::fixed;
    const auto len = get<std::int64_t>(root, "record_length").value_or(0);
    if (len < 1 || len > 4096) c.add(root.get("record_length"), "record_length must be 1..4096 for fixed");
    record_length = static_cast<std::size_t>(std::clamp<std::int64_t>(len, 0, 4096));
  } else if (format == "csv") {
    l.format = file_format::csv;
    const auto delim = get<std::string>(root, "delimiter").value_or(",");
    const auto quote = get<std::string>(root, "quote").value_or("\"");
    if (delim.size() != 1 || quote.size() != 1 || delim == quote || delim == "\n" || delim == "\r")
      c.add(&root, "delimiter and quote must be two different single characters");
    else {
      l.delimiter = delim[0];
      l.quote = quote[0];
    }
    l.header_row = get<bool>(root, "header_row").value_or(false);
  } else {
    c.add(root.get("format"), "format must be \"fixed\" or \"csv\"");
    return make_error("settlement.layout_invalid", c.problems.front());
  }
  l.header = read_record(c, root, "header", l, record_length);
  l.detail = read_record(c, root, "detail", l, record_length);
  l.trailer = read_record(c, root, "trailer", l, record_length);

  // Records are told apart by their record_type field: same place in every record, distinct values.
  const field_spec* first = nullptr;
  for (const auto* r : {&l.header, &l.detail, &l.trailer}) {
    for (const auto& f : r->fields) {
      if (f.name != "record_type") continue;
      if (first == nullptr)
        first = &f;
      else if (first->start != f.start || first->length != f.length || first->column != f.column)
        c.add(&root, "record_type must be at the same place in header, detail and trailer");
    }
  }
  if (!l.header.record_type.empty() &&
      (l.header.record_type == l.detail.record_type || l.header.record_type == l.trailer.record_type ||
       l.detail.record_type == l.trailer.record_type))
    c.add(&root, "header, detail and trailer need different record_type values");

  if (const auto* m = root["match"].as_table()) {
    auto names = [&](std::string_view key, std::vector<std::string>& out) {
      if (const auto* a = (*m)[key].as_array()) {
        out.clear();
        for (const auto& n : *a)
          if (auto s = n.value<std::string>()) out.push_back(*s);
      }
    };
    names("keys", l.match_keys);
    names("confirm", l.match_confirm);
  }
  for (const auto* list : {&l.match_keys, &l.match_confirm}) {
    for (const auto& k : *list) {
      const bool present = std::any_of(l.detail.fields.begin(), l.detail.fields.end(),
                                       [&](const field_spec& f) { return f.name == k; });
      if (!present) c.add(root.get("match"), fmt::format("[match] '{}' is not a field of [detail]", k));
    }
  }
  if (l.match_keys.empty()) c.add(root.get("match"), "[match] keys must name at least one detail field");

  if (!c.problems.empty()) {
    std::string msg;
    for (const auto& p : c.problems) msg += (msg.empty() ? "" : "; ") + p;
    return make_error("settlement.layout_invalid", msg);
  }
  return l;
}

result<layout> load_layout(const std::filesystem::path& file) {
  auto text = read_text_file(file);
  if (!text) return text.err();
  return parse_layout(*text, file.filename().string());
}

result<layout> shipped_layout(std::string_view name) {
  if (name == "fixed-width") return parse_layout(detail_shipped::fixed_width_toml, "fixed-width.toml");
  if (name == "csv") return parse_layout(detail_shipped::csv_toml, "csv.toml");
  return make_error("settlement.layout_invalid",
                    fmt::format("no shipped layout '{}' (fixed-width, csv)", name));
}

result<layout> load_layout_or_shipped(const std::string& file_or_name) {
  std::error_code ec;
  if (!std::filesystem::exists(file_or_name, ec) && (file_or_name == "fixed-width" || file_or_name == "csv"))
    return shipped_layout(file_or_name);
  return load_layout(file_or_name);
}

}  // namespace eftd::settlement
