// iso87-ascii pack/unpack: golden wire images for each message pair, malformed input with
// exact error codes, pack-side validation, and the designed-but-pluggable encodings.
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

const dialect& iso87() {
  const dialect* d = find_dialect("iso87-ascii");
  REQUIRE(d != nullptr);
  return *d;
}

// EMV data of a typical chip sale (TLV, 56 bytes): 9F26 ARQC, 9F27 CID, 9F37 UN, 9F36 ATC,
// 95 TVR, 9A date, 9C type, 5F2A currency, 9F02 amount.
constexpr std::string_view icc_hex =
    "9F26081122334455667788"
    "9F270180"
    "9F370412345678"
    "9F36020001"
    "95050000000000"
    "9A03250615"
    "9C0100"
    "5F2A020985"
    "9F0206000000012500";

void check_golden(const message& m, const bytes& expected) {
  auto packed = pack(iso87(), m);
  if (!packed) FAIL(packed.err().code << ": " << packed.err().message);
  CHECK(to_hex(*packed) == to_hex(expected));

  auto back = unpack(iso87(), expected);
  if (!back) FAIL(back.err().code << ": " << back.err().message);
  CHECK(back->mti() == m.mti());
  CHECK(back->fields() == m.fields());
}

std::string unpack_error(const bytes& in, const dialect* d = nullptr) {
  auto r = unpack(d ? *d : iso87(), in);
  return r ? std::string("ok") : r.err().code;
}

error pack_error(const message& m, const dialect* d = nullptr) {
  auto r = pack(d ? *d : iso87(), m);
  REQUIRE_FALSE(r.has_value());
  return r.err();
}

message sale_0200() {
  message m{"0200"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123456");
  m.set(11, "000123");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "051");
  m.set(23, "001");
  m.set(25, "00");
  m.set(35, "4761739001010119=25122011143800000");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  m.set(52, wire::raw("0123456789ABCDEF"));
  m.set(55, wire::raw(icc_hex));
  return m;
}

}  // namespace

TEST_CASE("golden 0200 chip sale with PIN block and field 55", "[codec][golden]") {
  const bytes expected = wire::build({
      a("0200"),
      h("323C068020C09200"),  // bits 3 4 7 | 11 12 13 14 | 22 23 | 25 | 35 | 41 42 | 49 52 55
      a("000000"),            // 3  processing code
      a("000000012500"),      // 4  amount 125.00
      a("0615123456"),        // 7  transmission date-time
      a("000123"),            // 11 STAN
      a("123456"),            // 12 local time
      a("0615"),              // 13 local date
      a("2512"),              // 14 expiry
      a("051"),               // 22 POS entry mode: chip, PIN
      a("001"),               // 23 card sequence number
      a("00"),                // 25 POS condition
      a("34"),
      a("4761739001010119=25122011143800000"),  // 35 LL track 2
      a("TERM0001"),                            // 41
      a("MERCHANT0000001"),                     // 42
      a("985"),                                 // 49
      h("0123456789ABCDEF"),                    // 52 PIN block, 8 raw bytes
      a("056"),
      h(icc_hex),  // 55 LLL (bytes) + raw TLV
  });
  check_golden(sale_0200(), expected);
}

TEST_CASE("golden 0210 approval", "[codec][golden]") {
  message m{"0210"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123456");
  m.set(11, "000123");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(37, "516612000123");
  m.set(38, "A1B2C3");
  m.set(39, "00");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  const bytes expected = wire::build({
      a("0210"),
      h("323800000EC08000"),  // bits 3 4 7 | 11 12 13 | 37 38 39 | 41 42 | 49
      a("000000"),
      a("000000012500"),
      a("0615123456"),
      a("000123"),
      a("123456"),
      a("0615"),
      a("516612000123"),  // 37 RRN
      a("A1B2C3"),        // 38 auth code
      a("00"),            // 39 response code
      a("TERM0001"),
      a("MERCHANT0000001"),
      a("985"),
  });
  check_golden(m, expected);
}

TEST_CASE("golden 0100 magstripe authorization with PAN and expiry", "[codec][golden]") {
  message m{"0100"};
  m.set(2, "4761739001010119");
  m.set(3, "000000");
  m.set(4, "000000005000");
  m.set(7, "0615123456");
  m.set(11, "000200");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "021");
  m.set(25, "00");
  m.set(41, "TERM0002");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  const bytes expected = wire::build({
      a("0100"),
      h("723C048000C08000"),  // bits 2 3 4 7 | 11 12 13 14 | 22 | 25 | 41 42 | 49
      a("16"),
      a("4761739001010119"),  // 2 LL PAN
      a("000000"),
      a("000000005000"),
      a("0615123456"),
      a("000200"),
      a("123456"),
      a("0615"),
      a("2512"),
      a("021"),
      a("00"),
      a("TERM0002"),
      a("MERCHANT0000001"),
      a("985"),
  });
  check_golden(m, expected);
}

TEST_CASE("golden 0400 reversal with secondary bitmap and field 90", "[codec][golden]") {
  message m{"0400"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123510");
  m.set(11, "000124");
  m.set(12, "123510");
  m.set(13, "0615");
  m.set(32, "00000000001");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  // original MTI, STAN, transmission date-time, acquirer id, forwarding id (zeros)
  m.set(90,
        "0200"
        "000123"
        "0615123456"
        "00000000001"
        "00000000000");
  const bytes expected = wire::build({
      a("0400"),
      h("B238000100C08000"),  // bit 1 (secondary) 3 4 7 | 11 12 13 | 32 | 41 42 | 49
      h("0000004000000000"),  // bit 90
      a("000000"), a("000000012500"), a("0615123510"), a("000124"), a("123510"), a("0615"), a("11"),
      a("00000000001"),  // 32 LL acquiring institution
      a("TERM0001"), a("MERCHANT0000001"), a("985"),
      a("020000012306151234560000000000100000000000"),  // 90 n 42
  });
  check_golden(m, expected);
}

TEST_CASE("golden 0410 reversal response", "[codec][golden]") {
  message m{"0410"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123510");
  m.set(11, "000124");
  m.set(12, "123510");
  m.set(13, "0615");
  m.set(37, "516612000124");
  m.set(39, "00");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  const bytes expected = wire::build({
      a("0410"),
      h("323800000AC08000"),  // bits 3 4 7 | 11 12 13 | 37 39 | 41 42 | 49
      a("000000"),
      a("000000012500"),
      a("0615123510"),
      a("000124"),
      a("123510"),
      a("0615"),
      a("516612000124"),
      a("00"),
      a("TERM0001"),
      a("MERCHANT0000001"),
      a("985"),
  });
  check_golden(m, expected);
}

TEST_CASE("golden 0800 echo test and 0810", "[codec][golden]") {
  message req{"0800"};
  req.set(7, "0615120000");
  req.set(11, "000001");
  req.set(70, "301");
  check_golden(req, wire::build({
                        a("0800"),
                        h("8220000000000000"),  // bit 1, 7 | 11
                        h("0400000000000000"),  // bit 70
                        a("0615120000"),
                        a("000001"),
                        a("301"),
                    }));

  message resp{"0810"};
  resp.set(7, "0615120000");
  resp.set(11, "000001");
  resp.set(39, "00");
  resp.set(70, "301");
  check_golden(resp, wire::build({
                         a("0810"),
                         h("8220000002000000"),  // bit 1, 7 | 11 | 39
                         h("0400000000000000"),  // bit 70
                         a("0615120000"),
                         a("000001"),
                         a("00"),
                         a("301"),
                     }));
}

TEST_CASE("a secondary bitmap that is present but empty is accepted", "[codec]") {
  const bytes in = wire::build({
      a("0800"),
      h("8220000000000000"),
      h("0000000000000000"),
      a("0615120000"),
      a("000001"),
  });
  auto m = unpack(iso87(), in);
  if (!m) FAIL(m.err().code << ": " << m.err().message);
  CHECK(m->mti() == "0800");
  CHECK(m->fields().size() == 2);
  CHECK(*m->get(7) == "0615120000");
  CHECK(*m->get(11) == "000001");
  // Re-packing drops the needless secondary bitmap.
  auto again = pack(iso87(), *m);
  REQUIRE(again.has_value());
  CHECK(to_hex(*again) ==
        to_hex(wire::build({a("0800"), h("0220000000000000"), a("0615120000"), a("000001")})));
}

TEST_CASE("pack pads short fixed fields: n left with zeros, an/ans right with spaces", "[codec]") {
  message m{"0200"};
  m.set(4, "12500");
  m.set(11, "7");
  m.set(39, "0");
  m.set(41, "T1");
  auto packed = pack(iso87(), m);
  REQUIRE(packed.has_value());
  CHECK(to_hex(*packed) == to_hex(wire::build({
                               a("0200"),
                               h("1020000002800000"),
                               a("000000012500"),
                               a("000007"),
                               a("0 "),
                               a("T1      "),
                           })));
  // unpack keeps the wire form, padding included.
  auto back = unpack(iso87(), *packed);
  REQUIRE(back.has_value());
  CHECK(*back->get(4) == "000000012500");
  CHECK(*back->get(41) == "T1      ");
}

TEST_CASE("variable fields may be empty and carry their length prefix", "[codec]") {
  message m{"0100"};
  m.set(2, "");
  m.set(48, "");
  auto packed = pack(iso87(), m);
  REQUIRE(packed.has_value());
  CHECK(to_hex(*packed) == to_hex(wire::build({a("0100"), h("4000000000010000"), a("00"), a("000")})));
  auto back = unpack(iso87(), *packed);
  REQUIRE(back.has_value());
  CHECK(back->get(2) == std::optional<std::string_view>{""});
}

TEST_CASE("malformed input gives the exact error code", "[codec][malformed]") {
  const std::string forty_digits(40, '1');
  struct vec {
    const char* what;
    bytes in;
    const char* code;
  };
  const std::vector<vec> vectors = {
      {"empty input", {}, "iso8583.truncated_mti"},
      {"MTI cut short", wire::build({a("02")}), "iso8583.truncated_mti"},
      {"MTI with a letter", wire::build({a("02A0"), h("0000000000000000")}), "iso8583.bad_mti"},
      {"primary bitmap cut short", wire::build({a("0200"), h("3238")}), "iso8583.truncated_bitmap"},
      {"MTI only", wire::build({a("0800")}), "iso8583.truncated_bitmap"},
      {"secondary bitmap cut short", wire::build({a("0800"), h("8220000000000000"), h("0400")}),
       "iso8583.truncated_bitmap"},
      {"fixed field cut short", wire::build({a("0200"), h("2000000000000000"), a("0000")}),
       "iso8583.truncated_field"},
      {"field missing entirely", wire::build({a("0200"), h("3000000000000000"), a("000000")}),
       "iso8583.truncated_field"},
      {"LL prefix cut short", wire::build({a("0200"), h("4000000000000000"), a("1")}),
       "iso8583.truncated_field"},
      {"LL value cut short", wire::build({a("0200"), h("4000000000000000"), a("16"), a("4761")}),
       "iso8583.truncated_field"},
      {"LLL prefix cut short", wire::build({a("0200"), h("0000000000000200"), a("05")}),
       "iso8583.truncated_field"},
      {"LL prefix not digits", wire::build({a("0200"), h("4000000000000000"), a("1X"), a("4761")}),
       "iso8583.bad_length_prefix"},
      {"LL prefix with a space", wire::build({a("0200"), h("4000000000000000"), a(" 4"), a("4761")}),
       "iso8583.bad_length_prefix"},
      {"LLL prefix binary junk", wire::build({a("0200"), h("0000000000000200"), h("FF3030")}),
       "iso8583.bad_length_prefix"},
      {"LL length over max (35: 40 > 37)",
       wire::build({a("0200"), h("0000000020000000"), a("40"), a(forty_digits)}), "iso8583.field_too_long"},
      {"LL length over max (2: 20 > 19)",
       wire::build({a("0200"), h("4000000000000000"), a("20"), a("47617390010101191234")}),
       "iso8583.field_too_long"},
      {"LLL length over max (54: 121 > 120)", wire::build({a("0200"), h("0000000000000400"), a("121")}),
       "iso8583.field_too_long"},
      {"letter in a numeric field", wire::build({a("0200"), h("2000000000000000"), a("00A000")}),
       "iso8583.bad_content"},
      {"bad character in track 2", wire::build({a("0200"), h("0000000020000000"), a("04"), a("47?1")}),
       "iso8583.bad_content"},
      {"control byte in an ans field",
       wire::build({a("0200"), h("0000000000800000"), a("TERM"), h("00"), a("001")}), "iso8583.bad_content"},
      {"trailing garbage",
       wire::build({a("0800"), h("0220000000000000"), a("0615120000"), a("000001"), a("XX")}),
       "iso8583.trailing_bytes"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    CHECK(unpack_error(v.in) == v.code);
  }
}

TEST_CASE("length errors name the field and sizes, never the value", "[codec][malformed][security]") {
  const bytes in =
      wire::build({a("0200"), h("0000000020000000"), a("40"), a("4761739001010119=2512201114380000000000")});
  auto r = unpack(iso87(), in);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "iso8583.field_too_long");
  CHECK(r.err().message == "field 35: length 40 exceeds 37");

  const bytes bad_pan = wire::build({a("0200"), h("4000000000000000"), a("16"), a("476173900101011X")});
  auto r2 = unpack(iso87(), bad_pan);
  REQUIRE_FALSE(r2.has_value());
  CHECK(r2.err().code == "iso8583.bad_content");
  CHECK(r2.err().message == "field 2: value is not numeric (n)");
}

TEST_CASE("a bit for a field the dialect does not define is unknown_field", "[codec][malformed]") {
  dialect d = iso87();
  d.name = "test-no-127";
  d.fields[127] = field_spec{};
  const bytes in = wire::build({a("0200"), h("8000000000000000"), h("0000000000000002"), a("000")});
  auto r = unpack(d, in);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "iso8583.unknown_field");
  CHECK(r.err().message == "field 127: set in the bitmap but not defined in dialect test-no-127");

  message m{"0200"};
  m.set(127, "x");
  CHECK(pack_error(m, &d).code == "iso8583.unknown_field");
}

TEST_CASE("unpack_prefix reports bytes consumed and leaves trailing bytes alone", "[codec]") {
  const bytes one = wire::build({a("0800"), h("0220000000000000"), a("0615120000"), a("000001")});
  bytes two = one;
  two.insert(two.end(), {0x01, 0x02, 0x03});
  unpack_info info;
  auto m = unpack_prefix(iso87(), two, info);
  REQUIRE(m.has_value());
  CHECK(info.consumed == one.size());
  CHECK(info.failed_field == 0);
  CHECK(info.partial.fields().empty());
  CHECK(unpack_error(two) == "iso8583.trailing_bytes");
}

TEST_CASE("on failure unpack_prefix keeps the fields decoded before the broken one", "[codec]") {
  // 7, 11, 39, 41 fine; 55 claims 10 bytes but carries 2.
  const bytes in = wire::build({a("0210"), h("0220000002800200"), a("0615123456"), a("000123"), a("00"),
                                a("TERM0001"), a("010"), h("9F27")});
  unpack_info info;
  auto m = unpack_prefix(iso87(), in, info);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.err().code == "iso8583.truncated_field");
  CHECK(info.failed_field == 55);
  CHECK(info.consumed == in.size() - 5);
  CHECK(info.partial.mti() == "0210");
  CHECK(info.partial.get_or(11, "") == "000123");
  CHECK(info.partial.get_or(41, "") == "TERM0001");
  CHECK_FALSE(info.partial.has(55));
}

TEST_CASE("unpack_field reports consumed bytes for fixed, LL and LLL fields", "[codec]") {
  std::string value;
  const bytes track = wire::build({a("34"), a("4761739001010119=25122011143800000"), a("rest")});
  auto used = unpack_field(*iso87().field(35), track, value);
  REQUIRE(used.has_value());
  CHECK(*used == 36);
  CHECK(value.size() == 34);

  const bytes icc = wire::build({a("003"), h("9F2701"), h("80")});
  used = unpack_field(*iso87().field(55), icc, value);
  REQUIRE(used.has_value());
  CHECK(*used == 6);
  CHECK(to_hex(as_bytes(value)) == "9F2701");

  used = unpack_field(*iso87().field(4), wire::build({a("000000012500"), a("9")}), value);
  REQUIRE(used.has_value());
  CHECK(*used == 12);
}

TEST_CASE("pack rejects what the wire cannot carry, with exact codes", "[codec][pack]") {
  {
    message m{"200"};
    CHECK(pack_error(m).code == "iso8583.bad_mti");
    m.set_mti("02X0");
    CHECK(pack_error(m).code == "iso8583.bad_mti");
  }
  for (int bad : {0, 1, 129, -5}) {
    message m{"0200"};
    m.set(bad, "1");
    INFO("field " << bad);
    CHECK(pack_error(m).code == "iso8583.bad_field_number");
  }
  {
    message m{"0200"};
    m.set(35, "4761739001010119=251220111438000000000");  // 38 > 37
    const auto e = pack_error(m);
    CHECK(e.code == "iso8583.field_too_long");
    CHECK(e.message == "field 35: length 38 exceeds 37");
  }
  {
    message m{"0200"};
    m.set(3, "0000001");
    CHECK(pack_error(m).code == "iso8583.field_too_long");
  }
  {
    message m{"0200"};
    m.set(52, wire::raw("01234567890ABC"));
    const auto e = pack_error(m);
    CHECK(e.code == "iso8583.bad_length");
    CHECK(e.message == "field 52: length 7, expected 8");
  }
  {
    message m{"0200"};
    m.set(4, "125.00");
    CHECK(pack_error(m).code == "iso8583.bad_content");
  }
  {
    message m{"0200"};
    m.set(2, "4761739001010119 ");
    const auto e = pack_error(m);
    CHECK(e.code == "iso8583.bad_content");
    CHECK(e.message.find("4761") == std::string::npos);
  }
  {
    message m{"0200"};
    m.set(28, "00000100");  // xn needs its C/D sign
    CHECK(pack_error(m).code == "iso8583.bad_content");
    m.set(28, "D00000100");
    CHECK(pack(iso87(), m).has_value());
  }
}

TEST_CASE("a hex-ASCII bitmap dialect packs and unpacks", "[codec][dialect]") {
  dialect d = iso87();
  d.name = "test-hex-bitmap";
  d.bitmap = bitmap_encoding::hex_ascii;
  message m{"0800"};
  m.set(7, "0615120000");
  m.set(11, "000001");
  m.set(70, "301");
  const bytes expected = wire::build(
      {a("0800"), a("8220000000000000"), a("0400000000000000"), a("0615120000"), a("000001"), a("301")});
  auto packed = pack(d, m);
  REQUIRE(packed.has_value());
  CHECK(*packed == expected);
  auto back = unpack(d, expected);
  REQUIRE(back.has_value());
  CHECK(*back == m);
  CHECK(unpack_error(wire::build({a("0800"), a("82200000000000ZZ")}), &d) == "iso8583.bad_bitmap");
}

TEST_CASE("binary length prefixes are table-driven too", "[codec][dialect]") {
  dialect d = iso87();
  d.name = "test-binary-prefix";
  d.fields[55].prefix_encoding = encoding::binary;  // LLL as 2 bytes big-endian
  d.fields[2].prefix_encoding = encoding::binary;   // LL as 1 byte
  bytes out;
  REQUIRE(pack_field(*d.field(55), wire::raw("9F270180"), out));
  REQUIRE(pack_field(*d.field(2), "4761739001010119", out));
  CHECK(to_hex(out) == to_hex(wire::build({h("0004"), h("9F270180"), h("10"), a("4761739001010119")})));
  std::string v;
  auto used = unpack_field(*d.field(2), wire::build({h("14"), a("47617390010101191234")}), v);
  REQUIRE_FALSE(used.has_value());
  CHECK(used.err().code == "iso8583.field_too_long");
}

TEST_CASE("EBCDIC is designed in but reports unsupported_encoding", "[codec][dialect]") {
  // BCD used to be in this test too; it is implemented now (test_codec_bcd.cpp).
  dialect d = iso87();
  d.name = "test-ebcdic";
  d.fields[3].value_encoding = encoding::ebcdic;
  d.fields[35].prefix_encoding = encoding::ebcdic;
  message m{"0200"};
  m.set(3, "000000");
  CHECK(pack_error(m, &d).code == "iso8583.unsupported_encoding");
  m.erase(3);
  m.set(35, "4761=2512");
  CHECK(pack_error(m, &d).code == "iso8583.unsupported_encoding");
  CHECK(unpack_error(wire::build({a("0200"), h("2000000000000000"), h("000000")}), &d) ==
        "iso8583.unsupported_encoding");
  d = iso87();
  d.mti_encoding = encoding::ebcdic;
  CHECK(pack_error(m, &d).code == "iso8583.unsupported_encoding");
  CHECK(unpack_error(wire::build({a("0200")}), &d) == "iso8583.unsupported_encoding");
}

TEST_CASE("a BCD field in an otherwise ASCII table is table-driven too", "[codec][dialect]") {
  dialect d = iso87();
  d.name = "test-bcd-field";
  d.fields[3].value_encoding = encoding::bcd;    // n 6 -> 3 bytes
  d.fields[35].prefix_encoding = encoding::bcd;  // LL -> 1 BCD byte, value stays ASCII
  message m{"0200"};
  m.set(3, "090000");
  m.set(35, "4761=2512");
  auto p = pack(d, m);
  REQUIRE(p.has_value());
  CHECK(wire::first_difference(
            *p, wire::build({a("0200"), h("2000000020000000"), h("090000"), h("09"), a("4761=2512")})) == "");
  auto back = unpack(d, *p);
  REQUIRE(back.has_value());
  CHECK(*back == m);
}

TEST_CASE("every field of iso87-ascii round-trips at its maximum size", "[codec]") {
  for (int no = 2; no <= max_field; ++no) {
    const field_spec& f = *iso87().field(no);
    std::string value;
    switch (f.content) {
      case content_type::n:
        value.assign(f.size, '7');
        break;
      case content_type::an:
        value.assign(f.size, 'A');
        break;
      case content_type::ans:
        value.assign(f.size, '~');
        break;
      case content_type::b:
        value.assign(f.size, '\xA5');
        break;
      case content_type::z:
        value.assign(f.size, '9');
        value[4] = '=';
        break;
      case content_type::xn:
        value.assign(f.size, '1');
        value[0] = 'C';
        break;
    }
    message m{"0200"};
    m.set(no, value);
    INFO("field " << no);
    auto packed = pack(iso87(), m);
    REQUIRE(packed.has_value());
    auto back = unpack(iso87(), *packed);
    REQUIRE(back.has_value());
    CHECK(*back == m);
  }
}
