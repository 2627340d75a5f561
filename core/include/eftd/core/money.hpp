// Amounts as integer minor units of an ISO 4217 currency. No floating point anywhere.
//
// Error codes: "money.unknown_currency", "money.bad_amount" (not a decimal number),
// "money.too_many_decimals" (more fraction digits than the currency's exponent),
// "money.overflow" (outside int64 minor units), "money.currency_mismatch".
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "eftd/core/result.hpp"

namespace eftd {

// One row of the ISO 4217 table: alpha code, numeric code, minor-unit exponent.
struct currency {
  std::string_view alpha;  // "PLN"
  std::uint16_t numeric;   // 985 (ISO 8583 fields 49/50/51 and EMV 5F2A carry this)
  std::uint8_t exponent;   // 2 = cents; JPY 0; KWD/BHD 3
};

// The built-in table (static storage, never null entries).
std::span<const currency> currencies();
// Exact, upper-case alpha code ("PLN"); nullptr if unknown. Returned pointers live forever.
const currency* find_currency(std::string_view alpha);
// ISO numeric code (985); nullptr if unknown.
const currency* find_currency_numeric(std::uint16_t numeric);

class money {
 public:
  // Pre: none. Post: money in `alpha`, or "money.unknown_currency".
  static result<money> of(std::int64_t minor, std::string_view alpha);
  // Decimal text in major units: "125.00", "125", "0.5", "-1.00". An optional leading '-' is
  // the only sign accepted; no '+', spaces, exponents, or thousands separators. At most
  // `exponent` fraction digits ("0.5" is fine for PLN, "0.505" is not; JPY takes no '.').
  static result<money> parse(std::string_view decimal, std::string_view alpha);

  std::int64_t minor_units() const noexcept { return minor_; }
  const currency& ccy() const noexcept { return *currency_; }
  bool is_zero() const noexcept { return minor_ == 0; }
  bool is_negative() const noexcept { return minor_ < 0; }

  // Overflow-checked arithmetic; both operands must be in the same currency.
  result<money> plus(const money& other) const;
  result<money> minus(const money& other) const;
  result<money> times(std::int64_t factor) const;

  // "125.00 PLN", "-1.00 EUR", "1250 JPY", "1.250 KWD".
  std::string format() const;
  // The amount alone with exactly `exponent` decimals: "125.00", "1250", "1.250".
  std::string format_amount() const;

  friend bool operator==(const money& a, const money& b) noexcept {
    return a.minor_ == b.minor_ && a.currency_ == b.currency_;
  }

 private:
  money(std::int64_t minor, const currency* c) noexcept : minor_(minor), currency_(c) {}
  std::int64_t minor_;
  const currency* currency_;
};

}  // namespace eftd

// fmt::format("{}", m) -> "125.00 PLN".
template <>
struct fmt::formatter<eftd::money> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const eftd::money& m, FormatContext& ctx) const {
    const std::string s = m.format();
    return fmt::formatter<std::string_view>::format(std::string_view{s}, ctx);
  }
};
