#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "eftd/core/bin_table.hpp"

using namespace eftd;

namespace {

std::filesystem::path default_table_path() {
  if (const char* src = std::getenv("EFTD_SOURCE"))
    return std::filesystem::path(src) / "etc" / "bin-ranges.csv";
#ifdef EFTD_TEST_SOURCE_DIR
  if (const std::filesystem::path p = std::filesystem::path(EFTD_TEST_SOURCE_DIR) / "etc" / "bin-ranges.csv";
      std::filesystem::exists(p))
    return p;
#endif
  // Run by hand from the build directory or the source tree.
  for (const char* rel : {"etc/bin-ranges.csv", "../etc/bin-ranges.csv", "../../etc/bin-ranges.csv"})
    if (std::filesystem::exists(rel)) return rel;
  return "etc/bin-ranges.csv";
}

const bin_table& default_table() {
  static const bin_table t = [] {
    auto r = bin_table::load(default_table_path());
    if (!r) FAIL(r.err().code << ": " << r.err().message);
    return *r;
  }();
  return t;
}

std::string scheme_of(const bin_table& t, std::string_view digits) {
  auto m = t.lookup(digits);
  return m ? m->scheme : "none";
}

}  // namespace

TEST_CASE("default BIN table loads and detects the main schemes", "[bin]") {
  const auto& t = default_table();
  CHECK(t.size() > 20);
  // Only leading digits are needed for a lookup; these are prefixes, not PANs.
  struct row {
    std::string_view digits;
    std::string_view scheme;
  };
  const row rows[] = {
      {"411111", "visa"},       {"476173", "visa"},       {"510000", "mastercard"}, {"555555", "mastercard"},
      {"222100", "mastercard"}, {"272099", "mastercard"}, {"272100", "none"},       {"340000", "amex"},
      {"370000", "amex"},       {"601100", "discover"},   {"650000", "discover"},   {"620000", "unionpay"},
      {"352800", "jcb"},        {"358999", "jcb"},        {"501800", "maestro"},    {"675900", "maestro"},
      {"676200", "maestro"},    {"501900", "dankort"},    {"360000", "diners"},     {"305000", "diners"},
      {"220000", "mir"},        {"652100", "rupay"},      {"999999", "none"},       {"000000", "none"},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.digits));
    CHECK(scheme_of(t, r.digits) == r.scheme);
  }
}

TEST_CASE("lookup by pan uses the PAN's leading digits", "[bin]") {
  const auto& t = default_table();
  auto p = pan::parse("5413330089020011");
  REQUIRE(p);
  auto m = t.lookup(*p);
  REQUIRE(m);
  CHECK(m->scheme == "mastercard");
  CHECK(m->label == "Mastercard");
  CHECK(m->low == "51");
  CHECK(m->high == "55");
}

TEST_CASE("longest matching prefix wins", "[bin]") {
  auto t = bin_table::parse(
      "low,high,scheme,label\n"
      "4,4,visa,Visa\n"
      "4571,4571,dankort,Visa/Dankort\n"
      "45,45,other,Other\n");
  REQUIRE(t);
  CHECK(scheme_of(*t, "457100") == "dankort");
  CHECK(scheme_of(*t, "457200") == "other");
  CHECK(scheme_of(*t, "411111") == "visa");
  // Too few digits to judge the 4-digit range: the shorter ranges still apply.
  CHECK(scheme_of(*t, "457") == "other");
  CHECK(scheme_of(*t, "") == "none");
}

TEST_CASE("parse skips comments, blank lines, CRLF and spaces", "[bin]") {
  auto t = bin_table::parse(
      "# comment first\r\n"
      "\r\n"
      "  low , high , scheme , label  # trailing\r\n"
      "51,55, mastercard ,Mastercard\r\n"
      "   # indented comment\n"
      "34,34,amex,American Express");
  REQUIRE(t);
  CHECK(t->size() == 2);
  auto m = t->lookup("340000");
  REQUIRE(m);
  CHECK(m->label == "American Express");
  CHECK(scheme_of(*t, "530000") == "mastercard");
}

TEST_CASE("parse names the line of a bad row", "[bin]") {
  struct row {
    std::string_view csv;
    std::string_view code;
    std::string_view message_start;
  };
  const row rows[] = {
      {"low,high,scheme,label\n4,4,visa,Visa\n51,5,mastercard,MC\n", "bin_table.bad_line",
       "line 3: low and high differ in length"},
      {"low,high,scheme,label\n\n\n55,51,mastercard,MC\n", "bin_table.bad_line", "line 4: low is greater"},
      {"low,high,scheme,label\n4,4,visa\n", "bin_table.bad_line", "line 2: expected 4 fields"},
      {"low,high,scheme,label\n4,4,visa,Visa,extra\n", "bin_table.bad_line", "line 2: expected 4 fields"},
      {"low,high,scheme,label\n4x,4y,visa,Visa\n", "bin_table.bad_line",
       "line 2: low and high must be digits"},
      {"low,high,scheme,label\n,,visa,Visa\n", "bin_table.bad_line", "line 2: low and high must be digits"},
      {"low,high,scheme,label\n4,4,Visa,Visa\n", "bin_table.bad_line", "line 2: scheme must be"},
      {"low,high,scheme,label\n4,4,visa,\n", "bin_table.bad_line", "line 2: label is empty"},
      {"low,high,scheme,label\n1234567890123,1234567890123,x,X\n", "bin_table.bad_line",
       "line 2: prefix longer"},
      {"# c\nlow,high,scheme,label\n51,55,mc,MC\n4,4,visa,V\n53,56,x,X\n", "bin_table.overlap",
       "line 5: range overlaps line 3"},
      {"4,4,visa,Visa\n", "bin_table.no_header", "line 1:"},
      {"# only comments\n", "bin_table.no_header", ""},
      {"low,high,scheme,label\n# nothing\n", "bin_table.empty", ""},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.csv));
    auto t = bin_table::parse(r.csv);
    REQUIRE_FALSE(t);
    CHECK(t.err().code == r.code);
    CHECK(t.err().message.rfind(std::string(r.message_start), 0) == 0);
  }
}

TEST_CASE("load reports a missing file as bin_table.io", "[bin]") {
  auto t = bin_table::load("/nonexistent/eftd/bin-ranges.csv");
  REQUIRE_FALSE(t);
  CHECK(t.err().code == "bin_table.io");
}
