// iso87-bcd field encodings one by one (BCD numerics and prefixes, track 2 separator nibble,
// xn sign byte, ASCII text, binary b fields, BCD MTI), malformed input with exact error codes
// and texts, and a round trip of every field at its limits. Whole messages: test_golden_messages.cpp.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/acq/codec.hpp"
#include "wire.hpp"

using namespace eftd;
using namespace eftd::acq;
using wire::a;
using wire::h;

namespace {

const dialect& bcd() {
  const dialect* d = find_dialect("iso87-bcd");
  REQUIRE(d != nullptr);
  return *d;
}

// pack_field of one value; fails the test on an error.
bytes packed_field(int no, std::string_view value) {
  bytes out;
  auto st = pack_field(*bcd().field(no), value, out);
  if (!st) FAIL(st.err().code << ": " << st.err().message);
  return out;
}

error pack_field_error(int no, std::string_view value) {
  bytes out;
  auto st = pack_field(*bcd().field(no), value, out);
  REQUIRE_FALSE(st.has_value());
  return st.err();
}

struct decoded {
  std::string value;
  std::size_t used = 0;
};

decoded unpacked_field(int no, const bytes& in) {
  decoded d;
  auto used = unpack_field(*bcd().field(no), in, d.value);
  if (!used) FAIL(used.err().code << ": " << used.err().message);
  d.used = *used;
  return d;
}

error unpack_field_error(int no, const bytes& in) {
  std::string value = "untouched";
  auto used = unpack_field(*bcd().field(no), in, value);
  REQUIRE_FALSE(used.has_value());
  CHECK(value.empty());  // a rejected value is not handed out, not even in part
  return used.err();
}

// Field `no` packed, then unpacked from `wire` + a trailing byte: same bytes, same value,
// and the trailing byte left alone.
void check_field(int no, std::string_view value, const bytes& wire) {
  INFO("field " << no);
  CHECK(wire::first_difference(packed_field(no, value), wire) == "");
  bytes more = wire;
  more.push_back(0x99);
  const auto d = unpacked_field(no, more);
  CHECK(d.used == wire.size());
  CHECK((d.value == value));  // parenthesised: Catch2 would print the values
}

std::string unpack_error(const bytes& in) {
  auto r = unpack(bcd(), in);
  return r ? std::string("ok") : r.err().code;
}

}  // namespace

TEST_CASE("bcd: fixed n fields take two digits per byte, odd counts a zero nibble in front",
          "[codec][bcd][golden]") {
  check_field(3, "000000", wire::build({h("000000")}));              // n 6 -> 3 bytes
  check_field(4, "000000012500", wire::build({h("000000012500")}));  // n 12 -> 6 bytes
  check_field(7, "0615123456", wire::build({h("0615123456")}));      // n 10 -> 5 bytes
  check_field(22, "051", wire::build({h("0051")}));                  // n 3 -> 2 bytes
  check_field(24, "123", wire::build({h("0123")}));                  // NII
  check_field(66, "1", wire::build({h("01")}));                      // n 1 -> 1 byte
  check_field(70, "301", wire::build({h("0301")}));
  check_field(90, std::string(42, '9'), wire::build({h(std::string(42, '9'))}));  // n 42 -> 21 bytes
}

TEST_CASE("bcd: pack pads short n fields with zeros before packing", "[codec][bcd]") {
  CHECK(to_hex(packed_field(4, "12500")) == "000000012500");
  CHECK(to_hex(packed_field(11, "7")) == "000007");
  CHECK(to_hex(packed_field(22, "51")) == "0051");
  CHECK(to_hex(packed_field(70, "1")) == "0001");
  // unpack keeps the wire form: all the digits, padding included.
  CHECK(unpacked_field(4, wire::build({h("000000012500")})).value == "000000012500");
}

TEST_CASE("bcd: LLVAR and LLLVAR prefixes are BCD and count digits, characters or bytes",
          "[codec][bcd][golden]") {
  // LL n: 1 BCD byte counting digits, value packed.
  check_field(32, "00000000001", wire::build({h("11"), h("000000000001")}));  // 11 digits, 6 bytes
  check_field(2, "4761739001010119", wire::build({h("16"), h("4761739001010119")}));
  check_field(2, "4012345678909", wire::build({h("13"), h("04012345678909")}));  // odd: zero nibble first
  check_field(2, "", wire::build({h("00")}));
  // LLL n: 2 BCD bytes (first nibble 0).
  check_field(36, std::string(104, '1'), wire::build({h("0104"), h(std::string(104, '1'))}));
  // LL an / LLL ans: the prefix counts characters, the value stays ASCII.
  check_field(44, "APPROVED", wire::build({h("08"), a("APPROVED")}));
  check_field(48, "HELLO", wire::build({h("0005"), a("HELLO")}));
  // LLL b (field 55): the prefix counts bytes, the value is raw.
  check_field(55, wire::raw("9F270180"), wire::build({h("0004"), h("9F270180")}));
  const std::string big(999, '\x5A');
  check_field(55, big, wire::build({h("0999"), a(big)}));
  // LL z: counts characters of track 2 (nibbles).
  check_field(35, "4761739001010119D2512201114380000",
              wire::build({h("33"), h("04761739001010119D2512201114380000")}));
}

TEST_CASE("bcd: track 2 separator is nibble D, '=' packs to it and unpacks as 'D'", "[codec][bcd]") {
  const bytes with_d = packed_field(35, "4761739001010119D25122011143800000");
  const bytes with_eq = packed_field(35, "4761739001010119=25122011143800000");
  CHECK(wire::first_difference(with_d, with_eq) == "");
  CHECK(wire::first_difference(with_d, wire::build({h("34"), h("4761739001010119D25122011143800000")})) ==
        "");
  const auto d = unpacked_field(35, with_eq);
  CHECK(d.value.find('=') == std::string::npos);
  CHECK(d.value.find('D') == 16);
  CHECK(d.value.size() == 34);
}

TEST_CASE("bcd: xn fields carry the sign as one ASCII byte, then BCD digits", "[codec][bcd][golden]") {
  check_field(28, "C00000100", wire::build({a("C"), h("00000100")}));  // xn 9 -> 5 bytes
  check_field(31, "D12345678", wire::build({a("D"), h("12345678")}));
  check_field(97, "D0000000000172000", wire::build({a("D"), h("0000000000172000")}));  // xn 17 -> 9 bytes
  CHECK(pack_field_error(28, "00000100").code == "iso8583.bad_content");               // no sign
  CHECK(pack_field_error(28, "X00000100").code == "iso8583.bad_content");
  CHECK(unpack_field_error(28, wire::build({a("X"), h("00000100")})).code == "iso8583.bad_content");
  CHECK(unpack_field_error(28, wire::build({a("C"), h("0000010A")})).code == "iso8583.bad_content");
}

TEST_CASE("bcd: text fields stay ASCII and b fields raw", "[codec][bcd][golden]") {
  check_field(37, "516612000123", wire::build({a("516612000123")}));
  check_field(39, "00", wire::build({a("00")}));
  check_field(41, "TERM0001", wire::build({a("TERM0001")}));
  check_field(49, "985", wire::build({a("985")}));
  check_field(52, wire::raw("0123456789ABCDEF"), wire::build({h("0123456789ABCDEF")}));
  check_field(64, wire::raw("A1B2C3D4E5F60708"), wire::build({h("A1B2C3D4E5F60708")}));
  CHECK(to_hex(packed_field(41, "T1")) == to_hex(wire::build({a("T1      ")})));  // right-padded
}

TEST_CASE("bcd: MTI is 2 BCD bytes", "[codec][bcd][golden]") {
  message m{"0800"};
  m.set(11, "000001");
  auto p = pack(bcd(), m);
  REQUIRE(p.has_value());
  CHECK(to_hex(*p) == "08000020000000000000000001");
  auto back = unpack(bcd(), *p);
  REQUIRE(back.has_value());
  CHECK(*back == m);

  CHECK(unpack_error({}) == "iso8583.truncated_mti");
  CHECK(unpack_error(wire::build({h("08")})) == "iso8583.truncated_mti");
  CHECK(unpack_error(wire::build({h("08A0"), h("0020000000000000"), h("000001")})) == "iso8583.bad_mti");
  CHECK(unpack_error(wire::build({h("F800"), h("0020000000000000"), h("000001")})) == "iso8583.bad_mti");
  CHECK(unpack_error(wire::build({h("0800")})) == "iso8583.truncated_bitmap");
  message bad{"08X0"};
  CHECK_FALSE(pack(bcd(), bad).has_value());
}

TEST_CASE("bcd: malformed fields give the exact error code", "[codec][bcd][malformed]") {
  struct vec {
    const char* what;
    bytes in;
    const char* code;
  };
  const std::vector<vec> vectors = {
      {"fixed n field cut short (4: 6 bytes)", wire::build({h("0200"), h("1000000000000000"), h("000000")}),
       "iso8583.truncated_field"},
      {"LL prefix missing", wire::build({h("0200"), h("4000000000000000")}), "iso8583.truncated_field"},
      {"LL value cut short", wire::build({h("0200"), h("4000000000000000"), h("16"), h("47617390")}),
       "iso8583.truncated_field"},
      {"LLL prefix cut short", wire::build({h("0200"), h("0000000000000200"), h("00")}),
       "iso8583.truncated_field"},
      {"LL prefix nibble above 9", wire::build({h("0200"), h("4000000000000000"), h("1A"), h("4761")}),
       "iso8583.bad_length_prefix"},
      {"LLL prefix nibble above 9", wire::build({h("0200"), h("0000000000000200"), h("00F4"), h("9F270180")}),
       "iso8583.bad_length_prefix"},
      {"LLL prefix 1000", wire::build({h("0200"), h("0000000000000200"), h("1000")}),
       "iso8583.field_too_long"},
      {"LL over max (2: 20 > 19)",
       wire::build({h("0200"), h("4000000000000000"), h("20"), h("47617390010101191234")}),
       "iso8583.field_too_long"},
      {"LL over max (35: 38 > 37)", wire::build({h("0200"), h("0000000020000000"), h("38")}),
       "iso8583.field_too_long"},
      {"LLL value missing (55: 999 announced)", wire::build({h("0200"), h("0000000000000200"), h("0999")}),
       "iso8583.truncated_field"},
      {"nibble A in an n field", wire::build({h("0200"), h("2000000000000000"), h("00A000")}),
       "iso8583.bad_content"},
      {"nibble D in an n field", wire::build({h("0200"), h("2000000000000000"), h("00D000")}),
       "iso8583.bad_content"},
      {"pad nibble not zero (22)", wire::build({h("0200"), h("0000040000000000"), h("1051")}),
       "iso8583.bad_content"},
      {"pad nibble F (LL n, odd)",
       wire::build({h("0200"), h("4000000000000000"), h("13"), h("F4012345678909")}), "iso8583.bad_content"},
      {"nibble E in track 2", wire::build({h("0200"), h("0000000020000000"), h("04"), h("47E1")}),
       "iso8583.bad_content"},
      {"control byte in an ans field",
       wire::build({h("0200"), h("0000000000800000"), a("TERM"), h("00"), a("001")}), "iso8583.bad_content"},
      {"trailing bytes", wire::build({h("0800"), h("0020000000000000"), h("000001"), h("00")}),
       "iso8583.trailing_bytes"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    CHECK(unpack_error(v.in) == v.code);
  }
}

TEST_CASE("bcd: errors name the field and sizes, never the value", "[codec][bcd][malformed][security]") {
  auto e = unpack_field_error(35, wire::build({h("40"), h("47617390010101190D2512201114380000000000")}));
  CHECK(e.code == "iso8583.field_too_long");
  CHECK(e.message == "field 35: length 40 exceeds 37");

  e = unpack_field_error(2, wire::build({h("16"), h("476173900101011A")}));
  CHECK(e.code == "iso8583.bad_content");
  CHECK(e.message == "field 2: value is not numeric (n)");

  e = unpack_field_error(2, wire::build({h("13"), h("54012345678909")}));
  CHECK(e.message == "field 2: BCD pad nibble is not 0");

  e = unpack_field_error(2, wire::build({h("16"), h("47617390")}));
  CHECK(e.message == "field 2: need 8 bytes, have 4");

  e = unpack_field_error(55, wire::build({h("05")}));
  CHECK(e.message == "field 55: length prefix needs 2 bytes, have 1");

  e = unpack_field_error(2, wire::build({h("B6"), h("4761739001010119")}));
  CHECK(e.message == "field 2: length prefix is not 1 BCD byte");

  e = pack_field_error(2, "4761739001010119 ");
  CHECK(e.code == "iso8583.bad_content");
  CHECK(e.message.find("4761") == std::string::npos);
  e = pack_field_error(35, "4761739001010119=251220111438000000000");  // 38 > 37
  CHECK(e.message == "field 35: length 38 exceeds 37");
}

TEST_CASE("bcd: unpack_prefix keeps the fields before a broken one", "[codec][bcd]") {
  // 7, 11, 39, 41 fine; 55 claims 10 bytes but carries 2.
  const bytes in = wire::build({h("0210"), h("0220000002800200"), h("0615123456"), h("000123"), a("00"),
                                a("TERM0001"), h("0010"), h("9F27")});
  unpack_info info;
  auto m = unpack_prefix(bcd(), in, info);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.err().code == "iso8583.truncated_field");
  CHECK(info.failed_field == 55);
  CHECK(info.consumed == in.size() - 4);
  CHECK(info.partial.mti() == "0210");
  CHECK(info.partial.get_or(11, "") == "000123");
  CHECK(info.partial.get_or(41, "") == "TERM0001");
}

TEST_CASE("bcd: every field round-trips at its maximum and at an odd size", "[codec][bcd]") {
  for (int no = 2; no <= max_field; ++no) {
    const field_spec& f = *bcd().field(no);
    std::vector<std::size_t> sizes{f.size};
    if (f.length != length_type::fixed) sizes.push_back(f.size % 2 == 0 ? f.size - 1 : f.size - 2);
    for (std::size_t size : sizes) {
      std::string value;
      switch (f.content) {
        case content_type::n:
          value.assign(size, '7');
          break;
        case content_type::an:
          value.assign(size, 'A');
          break;
        case content_type::ans:
          value.assign(size, '~');
          break;
        case content_type::b:
          value.assign(size, '\xA5');
          break;
        case content_type::z:
          value.assign(size, '9');
          value[4] = 'D';
          break;
        case content_type::xn:
          value.assign(size, '1');
          value[0] = 'C';
          break;
      }
      message m{"0200"};
      m.set(no, value);
      INFO("field " << no << " size " << size);
      auto packed = pack(bcd(), m);
      REQUIRE(packed.has_value());
      auto back = unpack(bcd(), *packed);
      REQUIRE(back.has_value());
      CHECK(wire::differing_fields(*back, m) == "");
    }
  }
}

TEST_CASE("BCD on content it cannot carry is refused by the codec and the validator", "[codec][dialect]") {
  dialect d = bcd();
  d.name = "test-bcd-text";
  d.fields[41].value_encoding = encoding::bcd;
  message m{"0200"};
  m.set(41, "TERM0001");
  auto r = pack(d, m);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "iso8583.unsupported_encoding");
  CHECK(r.err().message == "field 41: BCD cannot carry printable (ans) content");
  const auto problems = validate_dialect(d);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "field 41: BCD encoding on ans content (n, z and xn only)");
}
