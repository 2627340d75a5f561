// message: field access, value semantics, and describe() never showing card data.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/acq/dialect.hpp"
#include "eftd/acq/message.hpp"
#include "wire.hpp"

using namespace eftd::acq;

namespace {

constexpr const char* pan = "4761739001010119";
constexpr const char* track2 = "4761739001010119=25122011143800000";

message card_message() {
  message m{"0200"};
  m.set(2, pan);
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(11, "000123");
  m.set(14, "2512");
  m.set(35, track2);
  m.set(41, "TERM0001");
  m.set(45, "B4761739001010119^CARDHOLDER/TEST^2512201");
  m.set(52, wire::raw("0123456789ABCDEF"));
  m.set(55, wire::raw("5A0847617390010101199F270180"));
  m.set(64, wire::raw("A1B2C3D4E5F60708"));
  return m;
}

}  // namespace

TEST_CASE("message set/get/has/erase", "[message]") {
  message m{"0800"};
  CHECK(m.mti() == "0800");
  CHECK_FALSE(m.has(11));
  CHECK_FALSE(m.get(11).has_value());
  CHECK(m.get_or(11, "none") == "none");
  m.set(11, "000001");
  REQUIRE(m.get(11).has_value());
  CHECK(*m.get(11) == "000001");
  m.set(11, "000002");  // replaces
  CHECK(*m.get(11) == "000002");
  CHECK(m.fields().size() == 1);
  m.erase(11);
  CHECK_FALSE(m.has(11));
  m.erase(11);  // erasing an absent field is harmless
  m.set_mti("0810");
  CHECK(m.mti() == "0810");
}

TEST_CASE("message copies are independent and moves leave the source empty", "[message]") {
  message a{"0200"};
  a.set(11, "000001");
  message b = a;
  b.set(11, "000002");
  CHECK(*a.get(11) == "000001");
  CHECK(*b.get(11) == "000002");
  CHECK_FALSE(a == b);
  b = a;
  CHECK(a == b);
  message c = std::move(b);
  CHECK(*c.get(11) == "000001");
  message d;
  d.set(2, pan);
  d = std::move(c);  // the old field 2 is wiped, then replaced
  CHECK_FALSE(d.has(2));
  CHECK(d == a);
  d.clear();
  CHECK(d.mti().empty());
  CHECK(d.fields().empty());
}

TEST_CASE("describe() never contains the PAN, track or PIN block", "[message][security]") {
  const message m = card_message();
  const dialect* d = find_dialect("iso87-ascii");
  REQUIRE(d);
  for (const std::string& text : {m.describe(), m.describe(*d)}) {
    INFO(text);
    CHECK(text.find("4761739001010119") == std::string::npos);
    CHECK(text.find("476173") == std::string::npos);  // not even the BIN
    CHECK(text.find("2512") == std::string::npos);    // expiry (field 14 and inside track 2)
    CHECK(text.find("0123456789ABCDEF") == std::string::npos);
    CHECK(text.find("CARDHOLDER") == std::string::npos);
    CHECK(text.find("2=<card data, 16 chars>") != std::string::npos);
    CHECK(text.find("35=<card data, 34 chars>") != std::string::npos);
    CHECK(text.find(" 3=000000 4=000000012500 11=000123") != std::string::npos);
    CHECK(text.find("41=TERM0001") != std::string::npos);
    CHECK(text.rfind("0200 ", 0) == 0);
  }
  CHECK(m.describe(*d).find("52=<card data, 8 bytes>") != std::string::npos);
  CHECK(m.describe(*d).find("64=hex:A1B2C3D4E5F60708") != std::string::npos);
}

TEST_CASE("describe() honours a dialect's extra card-data flags", "[message][security]") {
  dialect custom = *find_dialect("iso87-ascii");
  custom.name = "test-private-48";
  custom.fields[48].card_data = true;  // e.g. a host that puts CVV2 in field 48
  message m{"0100"};
  m.set(48, "CVV2=123");
  CHECK(m.describe().find("CVV2=123") != std::string::npos);
  CHECK(m.describe(custom).find("CVV2") == std::string::npos);
  CHECK(m.describe(custom).find("48=<card data, 8 chars>") != std::string::npos);
}

TEST_CASE("is_card_data_field covers PAN, tracks, expiry, PIN block and chip data", "[message]") {
  for (int f : {2, 14, 34, 35, 36, 45, 52, 55, 102, 103}) CHECK(is_card_data_field(f));
  for (int f : {1, 3, 4, 7, 11, 37, 39, 41, 42, 64, 90, 128}) CHECK_FALSE(is_card_data_field(f));
}
