#include <catch2/catch.hpp>
#include <climits>
#include <string>

#include "eftd/core/money.hpp"

using namespace eftd;

namespace {
money m(std::int64_t minor, std::string_view ccy) {
  auto r = money::of(minor, ccy);
  REQUIRE(r);
  return *r;
}
}  // namespace

TEST_CASE("currency table has the required ISO 4217 rows", "[money]") {
  struct row {
    std::string_view alpha;
    std::uint16_t numeric;
    std::uint8_t exp;
  };
  const row rows[] = {
      {"PLN", 985, 2}, {"EUR", 978, 2}, {"USD", 840, 2}, {"GBP", 826, 2}, {"CHF", 756, 2},
      {"SEK", 752, 2}, {"NOK", 578, 2}, {"DKK", 208, 2}, {"CZK", 203, 2}, {"HUF", 348, 2},
      {"JPY", 392, 0}, {"KWD", 414, 3}, {"BHD", 48, 3},  {"CAD", 124, 2}, {"AUD", 36, 2},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.alpha));
    const currency* c = find_currency(r.alpha);
    REQUIRE(c != nullptr);
    CHECK(c->numeric == r.numeric);
    CHECK(int(c->exponent) == int(r.exp));
    CHECK(find_currency_numeric(r.numeric) == c);
  }
}

TEST_CASE("currency table rows are unique", "[money]") {
  const auto all = currencies();
  for (std::size_t i = 0; i < all.size(); ++i)
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      CHECK(all[i].alpha != all[j].alpha);
      CHECK(all[i].numeric != all[j].numeric);
    }
}

TEST_CASE("unknown currencies are rejected", "[money]") {
  CHECK(find_currency("XYZ") == nullptr);
  CHECK(find_currency("pln") == nullptr);
  CHECK(find_currency("") == nullptr);
  CHECK(find_currency_numeric(0) == nullptr);
  CHECK(find_currency_numeric(999) == nullptr);
  auto r = money::of(100, "XYZ");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "money.unknown_currency");
  auto p = money::parse("1.00", "ZZZ");
  REQUIRE_FALSE(p);
  CHECK(p.err().code == "money.unknown_currency");
}

TEST_CASE("money::parse accepts decimal amounts within the exponent", "[money]") {
  struct row {
    std::string_view text;
    std::string_view ccy;
    std::int64_t minor;
  };
  const row rows[] = {
      {"125.00", "PLN", 12500},
      {"125", "PLN", 12500},
      {"0.5", "PLN", 50},
      {"0.05", "EUR", 5},
      {"-1.00", "EUR", -100},
      {"0", "USD", 0},
      {"-0", "USD", 0},
      {"007.50", "GBP", 750},
      {"1250", "JPY", 1250},
      {"1.250", "KWD", 1250},
      {"1.25", "BHD", 1250},
      {"1.2", "KWD", 1200},
      {"92233720368547758.07", "PLN", INT64_MAX},
      {"-92233720368547758.08", "PLN", INT64_MIN},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.text) << " " << std::string(r.ccy));
    auto p = money::parse(r.text, r.ccy);
    REQUIRE(p);
    CHECK(p->minor_units() == r.minor);
    CHECK(p->ccy().alpha == r.ccy);
  }
}

TEST_CASE("money::parse rejects garbage with money.bad_amount", "[money]") {
  const std::string_view bad[] = {"",    "-",   "+1.00", " 1.00", "1.00 ", "1,00",  "1.",  ".5", "1.0.0",
                                  "1e3", "abc", "--1",   "1-",    "0x10",  "1 000", "-.5", "1.a"};
  for (auto t : bad) {
    INFO("'" << std::string(t) << "'");
    auto p = money::parse(t, "PLN");
    REQUIRE_FALSE(p);
    CHECK(p.err().code == "money.bad_amount");
  }
}

TEST_CASE("money::parse rejects more decimals than the currency has", "[money]") {
  const std::pair<std::string_view, std::string_view> rows[] = {
      {"0.505", "PLN"}, {"1.000", "EUR"}, {"1.0", "JPY"}, {"1.5", "JPY"}, {"1.0000", "KWD"}};
  for (const auto& [t, c] : rows) {
    INFO(std::string(t) << " " << std::string(c));
    auto p = money::parse(t, c);
    REQUIRE_FALSE(p);
    CHECK(p.err().code == "money.too_many_decimals");
  }
}

TEST_CASE("money::parse detects int64 overflow", "[money]") {
  for (std::string_view t : {"92233720368547758.08", "-92233720368547758.09", "99999999999999999999",
                             "100000000000000000000000000000"}) {
    INFO(std::string(t));
    auto p = money::parse(t, "PLN");
    REQUIRE_FALSE(p);
    CHECK(p.err().code == "money.overflow");
  }
  CHECK(money::parse("9223372036854775807", "JPY"));
  auto j = money::parse("9223372036854775808", "JPY");
  REQUIRE_FALSE(j);
  CHECK(j.err().code == "money.overflow");
}

TEST_CASE("money formats with the currency exponent", "[money]") {
  struct row {
    std::int64_t minor;
    std::string_view ccy;
    std::string_view amount;
  };
  const row rows[] = {
      {12500, "PLN", "125.00"},
      {5, "EUR", "0.05"},
      {0, "USD", "0.00"},
      {-100, "EUR", "-1.00"},
      {-5, "EUR", "-0.05"},
      {1250, "JPY", "1250"},
      {-7, "JPY", "-7"},
      {1250, "KWD", "1.250"},
      {1, "BHD", "0.001"},
      {INT64_MIN, "PLN", "-92233720368547758.08"},
      {INT64_MAX, "PLN", "92233720368547758.07"},
  };
  for (const auto& r : rows) {
    const money v = m(r.minor, r.ccy);
    CHECK(v.format_amount() == r.amount);
    CHECK(v.format() == std::string(r.amount) + " " + std::string(r.ccy));
  }
}

TEST_CASE("format_amount and parse round-trip", "[money]") {
  for (std::string_view ccy : {"PLN", "JPY", "KWD"})
    for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{999},
                           std::int64_t{123456789}, INT64_MAX, INT64_MIN}) {
      const money a = m(v, ccy);
      auto b = money::parse(a.format_amount(), ccy);
      REQUIRE(b);
      CHECK(*b == a);
    }
}

TEST_CASE("fmt formatter prints money like format()", "[money]") {
  CHECK(fmt::format("{}", m(12500, "PLN")) == "125.00 PLN");
  CHECK(fmt::format("[{:>12}]", m(1250, "KWD")) == "[   1.250 KWD]");
}

TEST_CASE("money arithmetic in one currency", "[money]") {
  const money a = m(12500, "PLN");
  const money b = m(250, "PLN");
  auto s = a.plus(b);
  REQUIRE(s);
  CHECK(s->minor_units() == 12750);
  auto d = b.minus(a);
  REQUIRE(d);
  CHECK(d->minor_units() == -12250);
  CHECK(d->is_negative());
  auto t = b.times(3);
  REQUIRE(t);
  CHECK(t->minor_units() == 750);
  CHECK(t->ccy().alpha == "PLN");
  auto z = a.times(0);
  REQUIRE(z);
  CHECK(z->is_zero());
}

TEST_CASE("money arithmetic refuses mixed currencies", "[money]") {
  const money pln = m(100, "PLN");
  const money eur = m(100, "EUR");
  auto p = pln.plus(eur);
  REQUIRE_FALSE(p);
  CHECK(p.err().code == "money.currency_mismatch");
  auto q = pln.minus(eur);
  REQUIRE_FALSE(q);
  CHECK(q.err().code == "money.currency_mismatch");
  CHECK_FALSE(pln == eur);
}

TEST_CASE("money arithmetic detects overflow", "[money]") {
  const money max = m(INT64_MAX, "EUR");
  const money min = m(INT64_MIN, "EUR");
  const money one = m(1, "EUR");
  auto a = max.plus(one);
  REQUIRE_FALSE(a);
  CHECK(a.err().code == "money.overflow");
  auto b = min.minus(one);
  REQUIRE_FALSE(b);
  CHECK(b.err().code == "money.overflow");
  auto c = max.times(2);
  REQUIRE_FALSE(c);
  CHECK(c.err().code == "money.overflow");
  auto d = min.times(-1);
  REQUIRE_FALSE(d);
  CHECK(d.err().code == "money.overflow");
  CHECK(max.times(1));
  CHECK(min.plus(max));
}
