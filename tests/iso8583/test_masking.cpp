// masked_fields(): what an operator may see of a message. Card data never in the clear.
// Only the public test card 4761739001010119 appears; checks compare masked text, and the
// "not in the output" checks print positions, never the values.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/acq/masking.hpp"
#include "wire.hpp"

using namespace eftd;
using namespace eftd::acq;

namespace {

const dialect& bcd() {
  const dialect* d = find_dialect("iso87-bcd");
  REQUIRE(d != nullptr);
  return *d;
}

constexpr const char* pan = "4761739001010119";

message card_message() {
  message m{"0200"};
  m.set(2, pan);
  m.set(4, "000000012500");
  m.set(14, "2512");
  m.set(35, "4761739001010119=25122011143800000");
  m.set(41,
        "TERM\x01"
        "001");
  m.set(45, "B4761739001010119^CARDHOLDER/TEST^2512201");
  m.set(52, wire::raw("0123456789ABCDEF"));
  // 9F26 ARQC, 5A PAN, 70 template holding 57 track 2 equivalent and 5F20 name, 9F02 amount.
  m.set(55, wire::raw("9F26081122334455667788"
                      "5A084761739001010119"
                      "7019"
                      "57104761739001010119D25122011143800F"
                      "5F200454455354"
                      "9F0206000000012500"));
  m.set(64, wire::raw("A1B2C3D4E5F60708"));
  m.set(102, "4761739001010119");
  return m;
}

const masked_field& field(const std::vector<masked_field>& all, int no) {
  for (const auto& f : all)
    if (f.number == no) return f;
  FAIL("field " << no << " missing");
  return all.front();
}

}  // namespace

TEST_CASE("mask_pan shows at most the first 6 and last 4 digits", "[masking][security]") {
  CHECK(mask_pan(pan) == "476173******0119");
  CHECK(mask_pan("4012345678909") == "40123****8909");
  CHECK(mask_pan("12345") == "*****");
  CHECK(mask_pan("47617390010101191234") == std::string(20, '*'));
  CHECK(mask_pan("4761 7390") == "<hidden, 9 chars>");
}

TEST_CASE("masked_fields masks every card-data field", "[masking][security]") {
  const auto all = masked_fields(bcd(), card_message());
  REQUIRE(all.size() == 10);
  CHECK(all[0].number == 2);
  CHECK(all[0].name == "Primary account number (PAN)");
  CHECK(all[0].format == "n..19");
  CHECK(all[0].value == "476173******0119");
  CHECK(field(all, 4).value == "000000012500");
  CHECK(field(all, 14).value == "****");
  CHECK(field(all, 35).value == "476173******0119=*****************");
  CHECK(field(all, 41).value == "TERM.001");
  CHECK(field(all, 45).value == "<hidden, 41 chars>");
  CHECK(field(all, 52).value == "<PIN block hidden, 8 bytes>");
  CHECK(field(all, 64).value == "A1B2C3D4E5F60708");
  CHECK(field(all, 102).value == "<hidden, 16 chars>");

  const auto& icc = field(all, 55);
  CHECK(icc.value == "57 bytes BER-TLV");
  const std::vector<std::string> expected = {
      "9F26 (8): 1122334455667788", "5A (8): <hidden>",     "70 (25):",
      "  57 (16): <hidden>",        "  5F20 (4): <hidden>", "9F02 (6): 000000012500",
  };
  CHECK(icc.details == expected);

  // Nothing anywhere carries the PAN, in ASCII or in the BCD of tag 5A/57.
  for (const auto& f : all) {
    INFO("field " << f.number);
    CHECK(f.value.find(pan) == std::string::npos);
    CHECK(f.value.find("0123456789ABCDEF") == std::string::npos);
    for (const auto& line : f.details) CHECK(line.find(pan) == std::string::npos);
  }
}

TEST_CASE("track 2 with a D separator or sentinels, and track 2 that does not parse", "[masking][security]") {
  message m{"0200"};
  m.set(35, "4761739001010119D2512201");
  CHECK(masked_fields(bcd(), m)[0].value == "476173******0119D*******");
  m.set(35, "47617390");  // no separator: hidden as a whole
  CHECK(masked_fields(bcd(), m)[0].value == "<hidden, 8 chars>");
}

TEST_CASE("field 55 that is not BER-TLV is hidden as a whole", "[masking][security]") {
  message m{"0200"};
  m.set(55, wire::raw("9F2608112233"));  // length runs past the end
  const auto all = masked_fields(bcd(), m);
  CHECK(all[0].value == "<hidden, 6 bytes, not valid BER-TLV: tlv.length_overflow>");
  CHECK(all[0].details.empty());
}

TEST_CASE("a field the dialect does not define is shown as text", "[masking]") {
  dialect d = bcd();
  d.fields[48] = field_spec{};
  message m{"0200"};
  m.set(48, "ABC");
  const auto all = masked_fields(d, m);
  CHECK(all[0].name.empty());
  CHECK(all[0].value == "ABC");
}

TEST_CASE("describe_mti names class, function and repeats", "[masking]") {
  CHECK(describe_mti("0200") == "0200 financial request");
  CHECK(describe_mti("0110") == "0110 authorization response");
  CHECK(describe_mti("0221") == "0221 financial advice, repeat");
  CHECK(describe_mti("0320") == "0320 file action advice");
  CHECK(describe_mti("0430") == "0430 reversal advice response");
  CHECK(describe_mti("0500") == "0500 reconciliation request");
  CHECK(describe_mti("0810") == "0810 network management response");
  CHECK(describe_mti("02A0") == "<bad MTI>");
  CHECK(describe_mti("020") == "<bad MTI>");
}
