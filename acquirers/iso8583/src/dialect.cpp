#include "eftd/acq/dialect.hpp"

#include <fmt/format.h>

#include "dialect_tables.hpp"

namespace eftd::acq {

const field_spec* dialect::field(int number) const noexcept {
  if (number < 1 || number > max_field) return nullptr;
  const auto& f = fields[static_cast<std::size_t>(number)];
  return f.defined() ? &f : nullptr;
}

namespace {

struct registry_entry {
  std::string_view name;
  const dialect& (*get)();
};

constexpr registry_entry registry[] = {
    {"iso87-ascii", &detail::iso87_ascii},
    {"iso87-bcd", &detail::iso87_bcd},
};

std::string_view content_name(content_type c) {
  switch (c) {
    case content_type::n:
      return "n";
    case content_type::an:
      return "an";
    case content_type::ans:
      return "ans";
    case content_type::b:
      return "b";
    case content_type::z:
      return "z";
    case content_type::xn:
      return "xn";
  }
  return "?";
}

std::string_view encoding_name(encoding e) {
  switch (e) {
    case encoding::ascii:
      return "ASCII";
    case encoding::binary:
      return "binary";
    case encoding::bcd:
      return "BCD";
    case encoding::ebcdic:
      return "EBCDIC";
  }
  return "?";
}

// The encoding column: BCD needs a word on the two content classes it treats specially.
std::string_view value_encoding_text(const field_spec& f) {
  if (f.value_encoding == encoding::bcd) {
    if (f.content == content_type::z) return "BCD, separator nibble D";
    if (f.content == content_type::xn) return "ASCII sign + BCD";
  }
  return encoding_name(f.value_encoding);
}

std::string mti_text(const dialect& d) {
  switch (d.mti_encoding) {
    case encoding::bcd:
      return "4 digits in 2 BCD bytes";
    case encoding::ascii:
      return "4 ASCII digits";
    default:
      return fmt::format("4 digits, {}", encoding_name(d.mti_encoding));
  }
}

std::string_view padding_name(padding p) {
  switch (p) {
    case padding::none:
      return "-";
    case padding::left_zero:
      return "left '0'";
    case padding::right_space:
      return "right ' '";
  }
  return "?";
}

std::string prefix_text(const field_spec& f) {
  if (f.length == length_type::fixed) return "-";
  const int digits = f.length == length_type::llvar ? 2 : 3;
  const char* ll = digits == 2 ? "LL" : "LLL";
  switch (f.prefix_encoding) {
    case encoding::ascii:
      return fmt::format("{} ({} ASCII digits)", ll, digits);
    case encoding::ebcdic:
      return fmt::format("{} ({} EBCDIC digits)", ll, digits);
    case encoding::bcd:
      return fmt::format("{} ({} BCD byte{})", ll, digits == 2 ? 1 : 2, digits == 2 ? "" : "s");
    case encoding::binary:
      return fmt::format("{} (binary, {} byte{})", ll, digits - 1, digits == 2 ? "" : "s");
  }
  return "?";
}

}  // namespace

const dialect* find_dialect(std::string_view name) {
  for (const auto& e : registry)
    if (e.name == name) return &e.get();
  return nullptr;
}

std::vector<std::string_view> dialect_names() {
  std::vector<std::string_view> out;
  for (const auto& e : registry) out.push_back(e.name);
  return out;
}

std::string format_field(const field_spec& f) {
  const auto c = content_name(f.content);
  switch (f.length) {
    case length_type::fixed:
      return fmt::format("{} {}", c, f.size);
    case length_type::llvar:
      return fmt::format("{}..{}", c, f.size);
    case length_type::lllvar:
      return fmt::format("{}...{}", c, f.size);
  }
  return "?";
}

std::string spec_table(const dialect& d) {
  std::string out = fmt::format("Dialect {}: {}\n", d.name, d.title);
  out +=
      fmt::format("MTI: {}. Bitmaps: {}. Sizes: digits or characters, b fields in bytes.\n\n", mti_text(d),
                  d.bitmap == bitmap_encoding::binary ? "8 binary bytes each" : "16 ASCII hex digits each");
  out += "| field | name | format | length prefix | encoding | padding | card data |\n";
  out += "|---|---|---|---|---|---|---|\n";
  for (int i = 1; i <= max_field; ++i) {
    const auto* f = d.field(i);
    if (!f) continue;
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", f->number, f->name, format_field(*f),
                       prefix_text(*f), value_encoding_text(*f), padding_name(f->pad),
                       f->card_data ? "yes" : "");
  }
  return out;
}

std::vector<std::string> validate_dialect(const dialect& d) {
  std::vector<std::string> problems;
  if (d.mti_encoding != encoding::ascii && d.mti_encoding != encoding::bcd)
    problems.push_back(fmt::format("MTI: {} encoding is not supported", encoding_name(d.mti_encoding)));
  const auto* bitmap = d.field(1);
  if (!bitmap || bitmap->length != length_type::fixed || bitmap->content != content_type::b ||
      bitmap->size != 8)
    problems.push_back("field 1: must be the secondary bitmap, b 8 fixed");
  for (int i = 1; i <= max_field; ++i) {
    const auto& f = d.fields[static_cast<std::size_t>(i)];
    if (!f.defined()) continue;
    if (f.number != i) problems.push_back(fmt::format("field {}: table slot holds field {}", i, f.number));
    if (f.size == 0) problems.push_back(fmt::format("field {}: size 0", i));
    if (f.length == length_type::llvar && f.size > 99)
      problems.push_back(fmt::format("field {}: LLVAR maximum {} exceeds 99", i, f.size));
    if (f.length == length_type::lllvar && f.size > 999)
      problems.push_back(fmt::format("field {}: LLLVAR maximum {} exceeds 999", i, f.size));
    const bool is_b = f.content == content_type::b;
    if (is_b != (f.value_encoding == encoding::binary))
      problems.push_back(
          fmt::format("field {}: b content needs binary encoding and only b content may use it", i));
    if (f.value_encoding == encoding::bcd && f.content != content_type::n && f.content != content_type::z &&
        f.content != content_type::xn)
      problems.push_back(
          fmt::format("field {}: BCD encoding on {} content (n, z and xn only)", i, content_name(f.content)));
    if (f.pad != padding::none && f.length != length_type::fixed)
      problems.push_back(fmt::format("field {}: padding on a variable-length field", i));
    if (f.pad == padding::left_zero && f.content != content_type::n)
      problems.push_back(fmt::format("field {}: left-zero padding on non-numeric content", i));
    if (f.pad == padding::right_space && f.content != content_type::an && f.content != content_type::ans)
      problems.push_back(fmt::format("field {}: right-space padding on non-text content", i));
  }
  return problems;
}

}  // namespace eftd::acq
