#include "eftd/core/money.hpp"

#include <array>

namespace eftd {

namespace {

// ISO 4217 (list one, as published by SIX). Exponents follow the standard, not cash
// practice: HUF and CZK keep 2 decimals even though coins below 1 are gone.
// clang-format off
constexpr std::array<currency, 45> table{{
    {"AED", 784, 2}, {"AUD", 36, 2},  {"BGN", 975, 2}, {"BHD", 48, 3},  {"BRL", 986, 2},
    {"CAD", 124, 2}, {"CHF", 756, 2}, {"CLP", 152, 0}, {"CNY", 156, 2}, {"CZK", 203, 2},
    {"DKK", 208, 2}, {"EUR", 978, 2}, {"GBP", 826, 2}, {"HKD", 344, 2}, {"HUF", 348, 2},
    {"ILS", 376, 2}, {"INR", 356, 2}, {"IQD", 368, 3}, {"ISK", 352, 0}, {"JOD", 400, 3},
    {"JPY", 392, 0}, {"KRW", 410, 0}, {"KWD", 414, 3}, {"LYD", 434, 3}, {"MXN", 484, 2},
    {"NOK", 578, 2}, {"NZD", 554, 2}, {"OMR", 512, 3}, {"PLN", 985, 2}, {"RON", 946, 2},
    {"RSD", 941, 2}, {"SAR", 682, 2}, {"SEK", 752, 2}, {"SGD", 702, 2}, {"TND", 788, 3},
    {"TRY", 949, 2}, {"UAH", 980, 2}, {"USD", 840, 2}, {"VND", 704, 0}, {"XAF", 950, 0},
    {"XOF", 952, 0}, {"ZAR", 710, 2}, {"MAD", 504, 2}, {"EGP", 818, 2}, {"THB", 764, 2},
}};
// clang-format on

error unknown_currency() {
  return make_error("money.unknown_currency", "currency is not an ISO 4217 code in the table");
}

error overflow() {
  return make_error("money.overflow", "amount outside the 64-bit minor-unit range");
}

}  // namespace

std::span<const currency> currencies() {
  return table;
}

const currency* find_currency(std::string_view alpha) {
  for (const auto& c : table)
    if (c.alpha == alpha) return &c;
  return nullptr;
}

const currency* find_currency_numeric(std::uint16_t numeric) {
  for (const auto& c : table)
    if (c.numeric == numeric) return &c;
  return nullptr;
}

result<money> money::of(std::int64_t minor, std::string_view alpha) {
  const currency* c = find_currency(alpha);
  if (c == nullptr) return unknown_currency();
  return money{minor, c};
}

result<money> money::parse(std::string_view text, std::string_view alpha) {
  const currency* c = find_currency(alpha);
  if (c == nullptr) return unknown_currency();

  const auto bad = [] { return make_error("money.bad_amount", "amount is not a decimal number"); };
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  const auto dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
  // "125." and ".5" are ambiguous cash-register habits; insist on digits on both sides.
  if (whole.empty() || (dot != std::string_view::npos && frac.empty())) return bad();
  for (char ch : whole)
    if (ch < '0' || ch > '9') return bad();
  for (char ch : frac)
    if (ch < '0' || ch > '9') return bad();
  if (frac.size() > c->exponent)
    return make_error("money.too_many_decimals", "amount has more decimals than the currency allows");

  // Accumulate the magnitude as a negative number so that INT64_MIN stays reachable
  // ("-92233720368547758.08" in a 2-decimal currency).
  std::int64_t acc = 0;
  const auto push_digit = [&acc](int d) {
    return !__builtin_mul_overflow(acc, 10, &acc) && !__builtin_sub_overflow(acc, d, &acc);
  };
  for (char ch : whole)
    if (!push_digit(ch - '0')) return overflow();
  for (char ch : frac)
    if (!push_digit(ch - '0')) return overflow();
  for (std::size_t i = frac.size(); i < c->exponent; ++i)
    if (!push_digit(0)) return overflow();
  if (!negative) {
    if (acc == INT64_MIN) return overflow();
    acc = -acc;
  }
  return money{acc, c};
}

result<money> money::plus(const money& other) const {
  if (currency_ != other.currency_)
    return make_error("money.currency_mismatch", "cannot add amounts in different currencies");
  std::int64_t r = 0;
  if (__builtin_add_overflow(minor_, other.minor_, &r)) return overflow();
  return money{r, currency_};
}

result<money> money::minus(const money& other) const {
  if (currency_ != other.currency_)
    return make_error("money.currency_mismatch", "cannot subtract amounts in different currencies");
  std::int64_t r = 0;
  if (__builtin_sub_overflow(minor_, other.minor_, &r)) return overflow();
  return money{r, currency_};
}

result<money> money::times(std::int64_t factor) const {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(minor_, factor, &r)) return overflow();
  return money{r, currency_};
}

std::string money::format_amount() const {
  // Work on the unsigned magnitude: -INT64_MIN does not fit in int64.
  std::uint64_t mag =
      minor_ < 0 ? ~static_cast<std::uint64_t>(minor_) + 1 : static_cast<std::uint64_t>(minor_);
  std::string digits = std::to_string(mag);
  const std::size_t exp = currency_->exponent;
  if (digits.size() <= exp) digits.insert(0, exp + 1 - digits.size(), '0');
  if (exp > 0) digits.insert(digits.size() - exp, 1, '.');
  if (minor_ < 0) digits.insert(0, 1, '-');
  return digits;
}

std::string money::format() const {
  std::string s = format_amount();
  s.push_back(' ');
  s.append(currency_->alpha);
  return s;
}

}  // namespace eftd
