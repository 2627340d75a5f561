// Card scheme detection from a BIN range table kept as data (etc/bin-ranges.csv).
//
// CSV format: '#' starts a comment (whole line or trailing), blank lines ignored, the first
// data line is the header `low,high,scheme,label`, then one range per line. low and high
// are digit prefixes of equal length (1..12), low <= high; a PAN matches when its first
// len(low) digits lie in [low, high]. The longest matching prefix wins (so 6011 discover
// beats 6 anything); two ranges of the same length must not overlap.
//
// Error codes: "bin_table.no_header", "bin_table.bad_line" (message starts "line N: ..."),
// "bin_table.overlap", "bin_table.empty", "bin_table.io" (load only).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/card.hpp"
#include "eftd/core/result.hpp"

namespace eftd {

struct scheme_match {
  std::string scheme;  // machine name, lower case: "visa", "mastercard"
  std::string label;   // display name: "Visa"
  std::string low;     // the range that matched
  std::string high;
};

class bin_table {
 public:
  static result<bin_table> parse(std::string_view csv);
  // Reads the file and parses it; "bin_table.io" if it cannot be read.
  static result<bin_table> load(const std::filesystem::path& file);

  // nullopt when no range covers the PAN.
  std::optional<scheme_match> lookup(const pan& p) const;
  // Same on leading digits (at least as many as the longest range needs to match it).
  std::optional<scheme_match> lookup(std::string_view digits) const;

  std::size_t size() const noexcept { return ranges_.size(); }

 private:
  bin_table() = default;
  std::vector<scheme_match> ranges_;  // sorted: longest prefix first
};

}  // namespace eftd
