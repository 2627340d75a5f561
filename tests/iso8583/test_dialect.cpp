// The iso87-ascii spec table compared with ISO 8583:1987, and the table printer/validator.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "eftd/acq/dialect.hpp"

using namespace eftd::acq;

namespace {

const dialect& iso87() {
  const dialect* d = find_dialect("iso87-ascii");
  REQUIRE(d != nullptr);
  return *d;
}

}  // namespace

TEST_CASE("find_dialect knows iso87-ascii and iso87-bcd and nothing else", "[dialect]") {
  CHECK(find_dialect("iso87-ascii") != nullptr);
  CHECK(find_dialect("iso87-ascii")->name == "iso87-ascii");
  CHECK(find_dialect("iso87-bcd") != nullptr);
  CHECK(find_dialect("iso87-bcd")->name == "iso87-bcd");
  CHECK(find_dialect("") == nullptr);
  CHECK(find_dialect("iso93-binary") == nullptr);
  CHECK(find_dialect("ISO87-BCD") == nullptr);
  const auto names = dialect_names();
  REQUIRE(names.size() == 2);
  CHECK(names[0] == "iso87-ascii");
  CHECK(names[1] == "iso87-bcd");
}

TEST_CASE("iso87-ascii field formats match ISO 8583:1987", "[dialect]") {
  // ISO 8583:1987 data element table (b sizes in bytes; 55 is carried as LLL binary chip data).
  struct row {
    int field;
    const char* format;
    length_type length;
  };
  const row rows[] = {
      {1, "b 8", length_type::fixed},         {2, "n..19", length_type::llvar},
      {3, "n 6", length_type::fixed},         {4, "n 12", length_type::fixed},
      {7, "n 10", length_type::fixed},        {11, "n 6", length_type::fixed},
      {12, "n 6", length_type::fixed},        {13, "n 4", length_type::fixed},
      {14, "n 4", length_type::fixed},        {22, "n 3", length_type::fixed},
      {23, "n 3", length_type::fixed},        {24, "n 3", length_type::fixed},
      {25, "n 2", length_type::fixed},        {28, "xn 9", length_type::fixed},
      {32, "n..11", length_type::llvar},      {35, "z..37", length_type::llvar},
      {36, "n...104", length_type::lllvar},   {37, "an 12", length_type::fixed},
      {38, "an 6", length_type::fixed},       {39, "an 2", length_type::fixed},
      {41, "ans 8", length_type::fixed},      {42, "ans 15", length_type::fixed},
      {43, "ans 40", length_type::fixed},     {45, "an..76", length_type::llvar},
      {49, "an 3", length_type::fixed},       {52, "b 8", length_type::fixed},
      {53, "n 16", length_type::fixed},       {54, "an...120", length_type::lllvar},
      {55, "b...999", length_type::lllvar},   {60, "ans...999", length_type::lllvar},
      {61, "ans...999", length_type::lllvar}, {62, "ans...999", length_type::lllvar},
      {63, "ans...999", length_type::lllvar}, {64, "b 8", length_type::fixed},
      {70, "n 3", length_type::fixed},        {90, "n 42", length_type::fixed},
      {95, "an 42", length_type::fixed},      {97, "xn 17", length_type::fixed},
      {102, "ans..28", length_type::llvar},   {128, "b 8", length_type::fixed},
  };
  for (const auto& r : rows) {
    INFO("field " << r.field);
    const field_spec* f = iso87().field(r.field);
    REQUIRE(f != nullptr);
    CHECK(f->number == r.field);
    CHECK(format_field(*f) == r.format);
    CHECK(f->length == r.length);
  }
}

TEST_CASE("iso87-ascii encodings and padding follow the content type", "[dialect]") {
  for (int i = 1; i <= max_field; ++i) {
    const field_spec* f = iso87().field(i);
    REQUIRE(f != nullptr);  // ISO 8583:1987 defines all 128 data elements
    INFO("field " << i);
    if (f->content == content_type::b) {
      CHECK(f->value_encoding == encoding::binary);
    } else {
      CHECK(f->value_encoding == encoding::ascii);
    }
    if (f->length != length_type::fixed) {
      CHECK(f->prefix_encoding == encoding::ascii);
      CHECK(f->pad == padding::none);
    } else if (f->content == content_type::n) {
      CHECK(f->pad == padding::left_zero);
    } else if (f->content == content_type::an || f->content == content_type::ans) {
      CHECK(f->pad == padding::right_space);
    } else {
      CHECK(f->pad == padding::none);
    }
  }
}

TEST_CASE("iso87-ascii flags card-data fields", "[dialect]") {
  for (int f : {2, 14, 34, 35, 36, 45, 52, 55, 102, 103}) {
    INFO("field " << f);
    CHECK(iso87().field(f)->card_data);
  }
  for (int f : {3, 4, 7, 11, 37, 38, 39, 41, 42, 49, 64, 90}) {
    INFO("field " << f);
    CHECK_FALSE(iso87().field(f)->card_data);
  }
}

TEST_CASE("dialect::field rejects numbers outside 1..128", "[dialect]") {
  CHECK(iso87().field(0) == nullptr);
  CHECK(iso87().field(-1) == nullptr);
  CHECK(iso87().field(129) == nullptr);
  CHECK(iso87().field(128) != nullptr);
}

TEST_CASE("spec_table prints one row per field with prefix and encoding", "[dialect]") {
  const std::string t = spec_table(iso87());
  CHECK(t.find("Dialect iso87-ascii") != std::string::npos);
  CHECK(t.find("| 2 | Primary account number (PAN) | n..19 | LL (2 ASCII digits) | ASCII | - | yes |") !=
        std::string::npos);
  CHECK(t.find("| 4 | Amount, transaction | n 12 | - | ASCII | left '0' |  |") != std::string::npos);
  CHECK(t.find("| 35 | Track 2 data | z..37 | LL (2 ASCII digits) | ASCII | - | yes |") != std::string::npos);
  CHECK(t.find("| 41 | Card acceptor terminal identification | ans 8 | - | ASCII | right ' ' |  |") !=
        std::string::npos);
  CHECK(t.find("| 52 | Personal identification number data (PIN block) | b 8 | - | binary | - | yes |") !=
        std::string::npos);
  CHECK(
      t.find(
          "| 55 | ICC data (EMV TLV; ISO reserved) | b...999 | LLL (3 ASCII digits) | binary | - | yes |") !=
      std::string::npos);
  CHECK(t.find("| 90 | Original data elements | n 42 | - | ASCII | left '0' |  |") != std::string::npos);
  std::size_t rows = 0;
  for (std::size_t p = t.find("\n| "); p != std::string::npos; p = t.find("\n| ", p + 1)) ++rows;
  CHECK(rows == 128 + 1);  // header row + 128 fields
}

TEST_CASE("validate_dialect accepts iso87-ascii and reports broken tables", "[dialect]") {
  CHECK(validate_dialect(iso87()).empty());

  dialect broken = iso87();
  broken.fields[2].size = 120;                         // LLVAR cannot express 120
  broken.fields[52].value_encoding = encoding::ascii;  // b content must be binary
  broken.fields[35].pad = padding::left_zero;          // padding on a variable field
  broken.fields[41].pad = padding::left_zero;          // left-zero on ans
  broken.fields[1] = field_spec{};                     // bitmap slot missing
  const auto problems = validate_dialect(broken);
  REQUIRE(problems.size() == 6);  // field 35 breaks two rules
  CHECK(problems[0] == "field 1: must be the secondary bitmap, b 8 fixed");
  CHECK(problems[1] == "field 2: LLVAR maximum 120 exceeds 99");
}

TEST_CASE("DIALECTS.md carries the current iso87-ascii table", "[dialect][docs]") {
  const char* src = std::getenv("EFTD_SOURCE");
  REQUIRE(src != nullptr);
  std::ifstream in{std::string(src) + "/acquirers/DIALECTS.md"};
  REQUIRE(in.good());
  const std::string doc{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::string table = spec_table(iso87());
  const std::string rows = table.substr(table.find("| field |"));
  CHECK(doc.find(rows) != std::string::npos);  // regenerate the table in DIALECTS.md if this fails
  const std::string bcd_table = spec_table(*find_dialect("iso87-bcd"));
  CHECK(doc.find(bcd_table.substr(bcd_table.find("| field |"))) != std::string::npos);
}

// ---- iso87-bcd ------------------------------------------------------------------------------

namespace {

const dialect& iso87_bcd() {
  const dialect* d = find_dialect("iso87-bcd");
  REQUIRE(d != nullptr);
  return *d;
}

}  // namespace

TEST_CASE("iso87-bcd has the iso87-ascii fields with BCD numerics and prefixes", "[dialect][bcd]") {
  const dialect& b = iso87_bcd();
  CHECK(b.mti_encoding == encoding::bcd);
  CHECK(b.bitmap == bitmap_encoding::binary);
  CHECK(validate_dialect(b).empty());
  for (int i = 1; i <= max_field; ++i) {
    INFO("field " << i);
    const field_spec* f = b.field(i);
    const field_spec* base = iso87().field(i);
    REQUIRE(f != nullptr);
    // Same data element: size, length type, content class, padding, name, card-data flag.
    CHECK(format_field(*f) == format_field(*base));
    CHECK(f->length == base->length);
    CHECK(f->pad == base->pad);
    CHECK(f->name == base->name);
    CHECK(f->card_data == base->card_data);
    // Encodings by content class.
    switch (f->content) {
      case content_type::n:
      case content_type::z:
      case content_type::xn:
        CHECK(f->value_encoding == encoding::bcd);
        break;
      case content_type::an:
      case content_type::ans:
        CHECK(f->value_encoding == encoding::ascii);
        break;
      case content_type::b:
        CHECK(f->value_encoding == encoding::binary);
        break;
    }
    if (f->length != length_type::fixed) CHECK(f->prefix_encoding == encoding::bcd);
  }
}

TEST_CASE("iso87-bcd spec table rows for the fields of the brief", "[dialect][bcd]") {
  const std::string t = spec_table(iso87_bcd());
  CHECK(t.find("Dialect iso87-bcd") != std::string::npos);
  CHECK(t.find("MTI: 4 digits in 2 BCD bytes. Bitmaps: 8 binary bytes each.") != std::string::npos);
  CHECK(t.find("| 2 | Primary account number (PAN) | n..19 | LL (1 BCD byte) | BCD | - | yes |") !=
        std::string::npos);
  CHECK(t.find("| 3 | Processing code | n 6 | - | BCD | left '0' |  |") != std::string::npos);
  CHECK(t.find("| 35 | Track 2 data | z..37 | LL (1 BCD byte) | BCD, separator nibble D | - | yes |") !=
        std::string::npos);
  CHECK(t.find("| 28 | Amount, transaction fee | xn 9 | - | ASCII sign + BCD | - |  |") != std::string::npos);
  CHECK(t.find("| 41 | Card acceptor terminal identification | ans 8 | - | ASCII | right ' ' |  |") !=
        std::string::npos);
  CHECK(t.find("| 48 | Additional data - private | ans...999 | LLL (2 BCD bytes) | ASCII | - |  |") !=
        std::string::npos);
  CHECK(t.find("| 52 | Personal identification number data (PIN block) | b 8 | - | binary | - | yes |") !=
        std::string::npos);
  CHECK(
      t.find("| 55 | ICC data (EMV TLV; ISO reserved) | b...999 | LLL (2 BCD bytes) | binary | - | yes |") !=
      std::string::npos);
}

TEST_CASE("validate_dialect reports BCD on text or binary content and unsupported MTI encodings",
          "[dialect][bcd]") {
  dialect d = iso87_bcd();
  d.fields[37].value_encoding = encoding::bcd;  // an
  d.fields[55].value_encoding = encoding::bcd;  // b: also breaks "b needs binary"
  d.mti_encoding = encoding::binary;
  const auto problems = validate_dialect(d);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0] == "MTI: binary encoding is not supported");
  CHECK(problems[1] == "field 37: BCD encoding on an content (n, z and xn only)");
}
