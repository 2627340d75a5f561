#include "eftd/core/bin_table.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace eftd {

namespace {

constexpr std::size_t max_prefix = 12;  // a PAN has at least 12 digits

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool scheme_name_ok(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

error bad_line(std::size_t line_no, std::string_view what) {
  return make_error("bin_table.bad_line", "line " + std::to_string(line_no) + ": " + std::string(what));
}

}  // namespace

result<bin_table> bin_table::parse(std::string_view csv) {
  bin_table t;
  std::vector<std::size_t> line_of;  // for overlap messages
  bool header_seen = false;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= csv.size()) {
    const auto nl = csv.find('\n', pos);
    std::string_view line = csv.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? csv.size() + 1 : nl + 1;
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;

    const auto f = split(line);
    if (!header_seen) {
      if (f.size() != 4 || f[0] != "low" || f[1] != "high" || f[2] != "scheme" || f[3] != "label")
        return make_error("bin_table.no_header",
                          "line " + std::to_string(line_no) + ": expected header low,high,scheme,label");
      header_seen = true;
      continue;
    }
    if (f.size() != 4) return bad_line(line_no, "expected 4 fields");
    if (!all_digits(f[0]) || !all_digits(f[1])) return bad_line(line_no, "low and high must be digits");
    if (f[0].size() != f[1].size()) return bad_line(line_no, "low and high differ in length");
    if (f[0].size() > max_prefix) return bad_line(line_no, "prefix longer than 12 digits");
    // Equal-length digit strings compare numerically when compared as text.
    if (f[0] > f[1]) return bad_line(line_no, "low is greater than high");
    if (!scheme_name_ok(f[2]))
      return bad_line(line_no, "scheme must be lower-case letters, digits, '_' or '-'");
    if (f[3].empty()) return bad_line(line_no, "label is empty");
    t.ranges_.push_back({std::string(f[2]), std::string(f[3]), std::string(f[0]), std::string(f[1])});
    line_of.push_back(line_no);
  }
  if (!header_seen) return make_error("bin_table.no_header", "no header line low,high,scheme,label");
  if (t.ranges_.empty()) return make_error("bin_table.empty", "no BIN ranges");

  // Same-length ranges must not overlap, or "longest prefix wins" would not decide.
  for (std::size_t i = 0; i < t.ranges_.size(); ++i)
    for (std::size_t j = i + 1; j < t.ranges_.size(); ++j) {
      const auto& a = t.ranges_[i];
      const auto& b = t.ranges_[j];
      if (a.low.size() == b.low.size() && a.low <= b.high && b.low <= a.high)
        return make_error("bin_table.overlap", "line " + std::to_string(line_of[j]) +
                                                   ": range overlaps line " + std::to_string(line_of[i]));
    }
  std::stable_sort(t.ranges_.begin(), t.ranges_.end(),
                   [](const scheme_match& a, const scheme_match& b) { return a.low.size() > b.low.size(); });
  return t;
}

result<bin_table> bin_table::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("bin_table.io", "cannot read BIN table " + file.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  auto t = parse(ss.str());
  if (!t) return make_error(t.err().code, file.string() + ": " + t.err().message);
  return t;
}

std::optional<scheme_match> bin_table::lookup(std::string_view digits) const {
  for (const auto& r : ranges_) {
    if (digits.size() < r.low.size()) continue;
    const std::string_view head = digits.substr(0, r.low.size());
    if (!all_digits(head)) continue;
    if (head >= r.low && head <= r.high) return r;
  }
  return std::nullopt;
}

std::optional<scheme_match> bin_table::lookup(const pan& p) const {
  return lookup(p.reveal());
}

}  // namespace eftd
