// Records <-> bytes for both formats. A value travels as canonical text (digits, D/C, ...)
// between the record structs and the field encoders, so both formats share one field table.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "eftd/settlement/layout.hpp"

namespace eftd::settlement {

namespace {

using values = std::map<std::string, std::string, std::less<>>;

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view kind_name(entry_kind k) {
  return k == entry_kind::credit ? "C" : "D";
}

values values_of(const header& h) {
  return {{"acquirer", h.acquirer}, {"merchant_id", h.merchant_id}, {"date", h.date}, {"batch", h.batch}};
}

values values_of(const detail& d) {
  return {{"terminal_id", d.terminal_id},
          {"merchant_id", d.merchant_id},
          {"rrn", d.rrn},
          {"auth_code", d.auth_code},
          {"stan", d.stan},
          {"amount", std::to_string(d.amount)},
          {"currency", d.currency},
          {"date", d.date},
          {"time", d.time},
          {"pan_masked", d.pan_masked},
          {"kind", std::string{kind_name(d.kind)}},
          // Positions 1-2 are the transaction type (00 purchase, 20 refund), as in ISO 8583 field 3.
          {"processing_code", d.kind == entry_kind::credit ? "200000" : "000000"},
          {"response_code", d.response_code},
          {"batch", d.batch}};
}

values values_of(const trailer& t, const header& h) {
  // The sign of the net is a field of its own: D when the acquirer owes the merchant (as 0500 field 97).
  return {{"count", std::to_string(t.count)},
          {"total_debits", std::to_string(t.total_debits)},
          {"total_credits", std::to_string(t.total_credits)},
          {"net", std::to_string(t.net < 0 ? -t.net : t.net)},
          {"net_sign", t.net < 0 ? "C" : "D"},
          {"date", h.date},
          {"batch", h.batch}};
}

// Checks a canonical value against its type; "" when fine, else why (never the value).
std::string check_value(const field_spec& f, std::string_view v) {
  switch (f.type) {
    case field_type::n:
      if (!v.empty() && !digits(v)) return "not digits";
      if (f.name == "count" && (v.empty() || v.size() > 18)) return "not a count";
      break;
    case field_type::amount:
      if (!digits(v)) return "not an amount in minor units (digits)";
      if (v.size() > 18) return "amount too large";
      break;
    case field_type::date: {
      if (v.size() != 8 || !digits(v)) return "not a date YYYYMMDD";
      const int month = std::stoi(std::string{v.substr(4, 2)});
      const int day = std::stoi(std::string{v.substr(6, 2)});
      if (month < 1 || month > 12 || day < 1 || day > 31) return "not a date YYYYMMDD";
      break;
    }
    case field_type::time: {
      if (v.size() != 6 || !digits(v)) return "not a time hhmmss";
      if (std::stoi(std::string{v.substr(0, 2)}) > 23 || std::stoi(std::string{v.substr(2, 2)}) > 59 ||
          std::stoi(std::string{v.substr(4, 2)}) > 59)
        return "not a time hhmmss";
      break;
    }
    case field_type::sign:
      if (v != "D" && v != "C") return "not D or C";
      break;
    case field_type::an:
      if (v.find_first_of("\r\n") != std::string_view::npos) return "holds a line break";
      break;
  }
  if (f.name == "pan_masked" && !v.empty() && !is_masked_pan(v)) return "not a masked PAN";
  return {};
}

std::string csv_quote(const layout& l, const std::string& v) {
  if (v.find(l.delimiter) == std::string::npos && v.find(l.quote) == std::string::npos) return v;
  std::string out(1, l.quote);
  for (char c : v) {
    if (c == l.quote) out += l.quote;  // a quote inside is doubled
    out += c;
  }
  out += l.quote;
  return out;
}

result<std::string> encode_record(const layout& l, const record_spec& r, std::string_view record,
                                  const values& v) {
  std::vector<std::string> cells;
  std::string line = l.format == file_format::fixed ? std::string(r.width, ' ') : std::string{};
  for (const auto& f : r.fields) {
    std::string value;
    if (f.value)
      value = *f.value;
    else if (auto it = v.find(f.name); it != v.end())
      value = it->second;
    if (auto why = check_value(f, value); !why.empty() && !f.value)
      return make_error("settlement.encode_failed", fmt::format("{} field {}: {}", record, f.name, why));
    const bool numeric = f.type == field_type::n || f.type == field_type::amount;
    if (f.length > 0 && value.size() > f.length)
      return make_error("settlement.encode_failed", fmt::format("{} field {}: {} characters do not fit in {}",
                                                                record, f.name, value.size(), f.length));
    // Numbers are right-justified with zeros, text left-justified with spaces; an absent
    // number stays blank so it decodes as absent, not as zero.
    if (f.length > 0 && numeric && !value.empty()) value.insert(0, f.length - value.size(), '0');
    if (l.format == file_format::fixed) {
      value.resize(f.length, ' ');
      line.replace(f.start - 1, f.length, value);
    } else {
      if (f.length > 0 && !numeric) value.resize(f.length, ' ');
      if (cells.size() < f.column) cells.resize(f.column);
      cells[f.column - 1] = csv_quote(l, value);
    }
  }
  if (l.format == file_format::csv) {
    for (std::size_t i = 0; i < cells.size(); ++i) line += (i ? std::string(1, l.delimiter) : "") + cells[i];
  }
  return line;
}

// Splits a CSV line; nullopt when a quote is misplaced (the reason in `why`).
std::optional<std::vector<std::string>> split_csv(const layout& l, std::string_view line, std::string& why) {
  std::vector<std::string> cells;
  std::size_t i = 0;
  while (true) {
    std::string cell;
    if (i < line.size() && line[i] == l.quote) {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == l.quote) {
          if (i + 1 < line.size() && line[i + 1] == l.quote) {
            cell += l.quote;
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        cell += line[i++];
      }
      if (!closed || (i < line.size() && line[i] != l.delimiter)) {
        why = fmt::format("column {}: badly quoted", cells.size() + 1);
        return std::nullopt;
      }
    } else {
      while (i < line.size() && line[i] != l.delimiter) {
        if (line[i] == l.quote) {
          why = fmt::format("column {}: a quote inside an unquoted value", cells.size() + 1);
          return std::nullopt;
        }
        cell += line[i++];
      }
    }
    cells.push_back(std::move(cell));
    if (i >= line.size()) break;
    ++i;  // the delimiter
  }
  return cells;
}

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// The raw text of each field of a record, or why the line is bad.
result<values> decode_record(const layout& l, const record_spec& r, std::string_view line,
                             const std::vector<std::string>* cells) {
  values out;
  for (const auto& f : r.fields) {
    std::string raw;
    if (l.format == file_format::fixed) {
      raw = std::string{line.substr(f.start - 1, f.length)};
    } else {
      if (f.column > cells->size())
        return make_error("settlement.bad_file",
                          fmt::format("field {}: column {} is missing", f.name, f.column));
      raw = (*cells)[f.column - 1];
    }
    const bool numeric = f.type == field_type::n || f.type == field_type::amount;
    // Numbers are taken as written: all digits at full width (zero-padded), or all blank for
    // an absent identifier. " 8" or "8 " is not a number in this format.
    std::string v = numeric ? raw : rtrim(raw);
    if (numeric && !raw.empty() && raw.find_first_not_of(' ') == std::string::npos) v.clear();
    if (numeric && !v.empty() && f.length > 0 && v.size() != f.length && f.type == field_type::n)
      return make_error("settlement.bad_file", fmt::format("field {}: not {} digits", f.name, f.length));
    if (f.value) {
      if (v != rtrim(*f.value))
        return make_error("settlement.bad_file", fmt::format("field {}: not the layout's constant", f.name));
      continue;
    }
    if (auto why = check_value(f, v); !why.empty())
      return make_error("settlement.bad_file", fmt::format("field {}: {}", f.name, why));
    if (numeric && !v.empty()) {
      // Zero padding is presentation; amounts and counts are numbers, identifiers keep their width.
      if (f.type == field_type::amount || f.name == "count") {
        v.erase(0, std::min(v.find_first_not_of('0'), v.size() - 1));
      }
    }
    out[f.name] = std::move(v);
  }
  return out;
}

std::string take(values& v, const char* name) {
  auto it = v.find(name);
  return it == v.end() ? std::string{} : it->second;
}

std::int64_t number(values& v, const char* name) {
  const auto s = take(v, name);
  return s.empty() ? 0 : std::stoll(s);
}

}  // namespace

bool is_masked_pan(std::string_view s) noexcept {
  if (s.size() < 12 || s.size() > 19) return false;
  std::size_t shown = 0, hidden = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9')
      ++shown;
    else if (c == '*' || c == 'X' || c == 'x')
      ++hidden;
    else
      return false;
  }
  // PCI DSS: at most the first 6 and last 4 digits shown, so at least length - 10 masked.
  if (shown > 10 || hidden < 2 || hidden + 10 < s.size()) return false;
  // The masked part is one run in the middle: the last 4 characters are digits.
  const auto first_mask = s.find_first_of("*Xx");
  const auto last_mask = s.find_last_of("*Xx");
  return last_mask - first_mask + 1 == hidden && first_mask <= 6 && s.size() - last_mask - 1 <= 4;
}

std::string field_value(const detail& d, std::string_view name) {
  const auto v = values_of(d);
  auto it = v.find(name);
  return it == v.end() ? std::string{} : it->second;
}

trailer totals_of(const std::vector<detail>& details) {
  trailer t;
  t.count = details.size();
  for (const auto& d : details) (d.kind == entry_kind::credit ? t.total_credits : t.total_debits) += d.amount;
  t.net = t.total_debits - t.total_credits;
  return t;
}

result<std::string> encode(const layout& l, const file& f) {
  std::string out;
  if (l.format == file_format::csv && l.header_row) {
    std::vector<std::string> names;
    for (const auto& fs : l.detail.fields) {
      if (names.size() < fs.column) names.resize(fs.column);
      names[fs.column - 1] = fs.name;
    }
    for (std::size_t i = 0; i < names.size(); ++i) out += (i ? std::string(1, l.delimiter) : "") + names[i];
    out += '\n';
  }
  if (f.trailer.net < 0 && std::none_of(l.trailer.fields.begin(), l.trailer.fields.end(),
                                        [](const field_spec& s) { return s.name == "net_sign"; }))
    return make_error("settlement.encode_failed",
                      "trailer field net: negative and the layout has no net_sign");
  auto h = encode_record(l, l.header, "header", values_of(f.header));
  if (!h) return h.err();
  out += *h + '\n';
  for (std::size_t i = 0; i < f.details.size(); ++i) {
    auto d = encode_record(l, l.detail, fmt::format("detail {}", i + 1), values_of(f.details[i]));
    if (!d) return d.err();
    out += *d + '\n';
  }
  auto t = encode_record(l, l.trailer, "trailer", values_of(f.trailer, f.header));
  if (!t) return t.err();
  out += *t + '\n';
  return out;
}

result<file> decode(const layout& l, std::string_view bytes) {
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < bytes.size();) {
    auto nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) nl = bytes.size();
    auto line = bytes.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  std::vector<std::string> bad;
  std::size_t bad_count = 0;
  auto report = [&](std::size_t n, const std::string& why) {
    if (++bad_count <= 50) bad.push_back(fmt::format("line {}: {}", n, why));
  };

  const field_spec* type_field = nullptr;
  for (const auto& f : l.detail.fields)
    if (f.name == "record_type") type_field = &f;

  file out;
  bool have_header = false, have_trailer = false;
  std::size_t first = 0;
  if (l.format == file_format::csv && l.header_row) {
    std::string expect;
    std::vector<std::string> names;
    for (const auto& fs : l.detail.fields) {
      if (names.size() < fs.column) names.resize(fs.column);
      names[fs.column - 1] = fs.name;
    }
    for (std::size_t i = 0; i < names.size(); ++i)
      expect += (i ? std::string(1, l.delimiter) : "") + names[i];
    if (lines.empty() || lines[0] != expect) report(1, "not the header row the layout names");
    first = 1;
  }
  for (std::size_t i = first; i < lines.size(); ++i) {
    const auto n = i + 1;
    const auto line = lines[i];
    if (line.empty()) {
      report(n, "empty line");
      continue;
    }
    std::vector<std::string> cells;
    std::string rtype;
    if (l.format == file_format::fixed) {
      if (line.size() != l.detail.width) {
        report(n, fmt::format("{} characters, records are {}", line.size(), l.detail.width));
        continue;
      }
      rtype = rtrim(std::string{line.substr(type_field->start - 1, type_field->length)});
    } else {
      std::string why;
      auto split = split_csv(l, line, why);
      if (!split) {
        report(n, why);
        continue;
      }
      cells = std::move(*split);
      if (type_field->column <= cells.size()) rtype = rtrim(cells[type_field->column - 1]);
    }
    const record_spec* spec = rtype == rtrim(l.header.record_type)    ? &l.header
                              : rtype == rtrim(l.detail.record_type)  ? &l.detail
                              : rtype == rtrim(l.trailer.record_type) ? &l.trailer
                                                                      : nullptr;
    if (spec == nullptr) {
      report(n, "unknown record type");
      continue;
    }
    auto v = decode_record(l, *spec, line, &cells);
    if (!v) {
      report(n, v.err().message);
      continue;
    }
    if (spec == &l.header) {
      if (have_header || !out.details.empty() || have_trailer)
        report(n, "a header that is not the first record");
      have_header = true;
      out.header = {take(*v, "acquirer"), take(*v, "merchant_id"), take(*v, "date"), take(*v, "batch")};
    } else if (spec == &l.detail) {
      if (!have_header || have_trailer) report(n, "a detail outside header ... trailer");
      detail d;
      d.terminal_id = take(*v, "terminal_id");
      d.merchant_id = take(*v, "merchant_id");
      d.rrn = take(*v, "rrn");
      d.auth_code = take(*v, "auth_code");
      d.stan = take(*v, "stan");
      d.amount = number(*v, "amount");
      d.currency = take(*v, "currency");
      d.date = take(*v, "date");
      d.time = take(*v, "time");
      d.pan_masked = take(*v, "pan_masked");
      d.response_code = take(*v, "response_code");
      d.batch = take(*v, "batch");
      if (auto k = take(*v, "kind"); !k.empty()) {
        d.kind = k == "C" ? entry_kind::credit : entry_kind::debit;
      } else if (auto pc = take(*v, "processing_code"); !pc.empty()) {
        const auto type = pc.substr(0, 2);
        if (type != "00" && type != "20") {
          report(n, "field processing_code: neither 00 (purchase) nor 20 (refund)");
          continue;
        }
        d.kind = type == "20" ? entry_kind::credit : entry_kind::debit;
      }
      out.details.push_back(std::move(d));
    } else {
      if (have_trailer || !have_header) report(n, "a trailer that is not the last record after a header");
      have_trailer = true;
      trailer& t = out.trailer;
      t.count = static_cast<std::uint64_t>(number(*v, "count"));
      t.total_debits = number(*v, "total_debits");
      t.total_credits = number(*v, "total_credits");
      t.net = number(*v, "net");
      if (take(*v, "net_sign") == "C") t.net = -t.net;
    }
  }
  if (!have_header) report(lines.size(), "no header record");
  if (!have_trailer) report(lines.size(), "no trailer record");
  if (!bad.empty()) {
    std::string msg = fmt::format("{}: {} bad line(s), file refused: ", l.source, bad_count);
    for (std::size_t i = 0; i < bad.size(); ++i) msg += (i ? "; " : "") + bad[i];
    return make_error("settlement.bad_file", msg);
  }
  // The trailer must agree with the details, for each total the layout carries.
  const auto sums = totals_of(out.details);
  auto has = [&](std::string_view name) {
    return std::any_of(l.trailer.fields.begin(), l.trailer.fields.end(),
                       [&](const field_spec& f) { return f.name == name; });
  };
  std::string wrong;
  if (has("count") && sums.count != out.trailer.count)
    wrong = fmt::format("count says {}, the file has {} details", out.trailer.count, sums.count);
  else if (has("total_debits") && sums.total_debits != out.trailer.total_debits)
    wrong = fmt::format("total_debits says {}, the details add up to {}", out.trailer.total_debits,
                        sums.total_debits);
  else if (has("total_credits") && sums.total_credits != out.trailer.total_credits)
    wrong = fmt::format("total_credits says {}, the details add up to {}", out.trailer.total_credits,
                        sums.total_credits);
  else if (has("net") && sums.net != out.trailer.net)
    wrong = fmt::format("net says {}, the details add up to {}", out.trailer.net, sums.net);
  if (!wrong.empty())
    return make_error("settlement.trailer_mismatch", fmt::format("{}: trailer {}", l.source, wrong));
  return out;
}

result<std::string> read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error("settlement.io", fmt::format("{}: cannot be opened", p.string()));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return make_error("settlement.io", fmt::format("{}: read failed", p.string()));
  return s.str();
}

status write_text_file(const std::filesystem::path& p, std::string_view text) {
  const auto tmp = std::filesystem::path{p.string() + ".tmp"};
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error("settlement.io", fmt::format("{}: cannot be created", tmp.string()));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return make_error("settlement.io", fmt::format("{}: write failed", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, p, ec);
  if (ec) return make_error("settlement.io", fmt::format("{}: {}", p.string(), ec.message()));
  return {};
}

}  // namespace eftd::settlement
