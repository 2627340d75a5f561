// BER-TLV decoder/encoder: vectors from test-vectors.md §8, malformed input, round trips.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/core/card.hpp"
#include "eftd/core/tlv.hpp"

using namespace eftd;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

std::vector<tlv> decode_ok(std::string_view h) {
  auto r = tlv_decode(hex(h));
  if (!r) FAIL(r.err().code << ": " << r.err().message);
  return *r;
}

std::string decode_error(std::string_view h) {
  auto r = tlv_decode(hex(h));
  return r ? std::string("ok") : r.err().code;
}

tlv prim(std::uint32_t tag, std::string_view value_hex) {
  return tlv{tag, hex(value_hex), {}};
}

}  // namespace

// pyemv tlv docstring: zero-length primitive and a constructed template in one list.
TEST_CASE("pyemv docstring vector decodes and round-trips", "[tlv]") {
  const std::string_view in = "9C0101E0055F2A0202089F0200";
  const auto list = decode_ok(in);
  REQUIRE(list.size() == 3);
  CHECK(list[0].tag == 0x9C);
  CHECK(to_hex(list[0].value) == "01");
  CHECK(list[1].tag == 0xE0);
  CHECK(list[1].constructed());
  REQUIRE(list[1].children.size() == 1);
  CHECK(list[1].children[0].tag == 0x5F2A);
  CHECK(to_hex(list[1].children[0].value) == "0208");
  CHECK(list[2].tag == 0x9F02);
  CHECK(list[2].value.empty());
  CHECK(to_hex(tlv_encode(list)) == in);
}

// javisHuang/Learn PPSE sample; the trailing 9000 is the status word, not TLV.
TEST_CASE("PPSE select response decodes to the Visa Debit directory entry", "[tlv][emv]") {
  const std::string_view body =
      "6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000031010500A564953412044454249548701"
      "01";
  const auto list = decode_ok(body);
  REQUIRE(list.size() == 1);
  const tlv& fci = list[0];
  CHECK(fci.tag == 0x6F);
  const tlv* df_name = tlv_find(list, 0x84);
  REQUIRE(df_name != nullptr);
  CHECK(std::string(df_name->value.begin(), df_name->value.end()) == "2PAY.SYS.DDF01");
  const tlv* entry = tlv_find(list, 0x61);
  REQUIRE(entry != nullptr);
  REQUIRE(entry->children.size() == 3);
  const tlv* aid = tlv_find(entry->children, 0x4F);
  REQUIRE(aid != nullptr);
  CHECK(to_hex(aid->value) == "A0000000031010");
  const tlv* label = tlv_find(list, 0x50);
  REQUIRE(label != nullptr);
  CHECK(std::string(label->value.begin(), label->value.end()) == "VISA DEBIT");
  const tlv* prio = tlv_find(list, 0x87);
  REQUIRE(prio != nullptr);
  CHECK(to_hex(prio->value) == "01");
  CHECK(tlv_find(list, 0xBF0C) != nullptr);
  CHECK(tlv_find(list, 0xBF0C)->constructed());
  CHECK(to_hex(tlv_encode(list)) == body);
}

// EMVPT transcript: GPO format 1 and GENERATE AC format 1 (both tag 80, primitive).
TEST_CASE("EMVPT GPO and GENERATE AC responses decode as format 1", "[tlv][emv]") {
  const auto gpo = decode_ok("800E3C00080202001001020018010201");
  REQUIRE(gpo.size() == 1);
  CHECK(gpo[0].tag == 0x80);
  CHECK_FALSE(gpo[0].constructed());
  REQUIRE(gpo[0].value.size() == 14);
  CHECK(to_hex(byte_view(gpo[0].value).first(2)) == "3C00");                        // AIP
  CHECK(to_hex(byte_view(gpo[0].value).subspan(2)) == "080202001001020018010201");  // AFL

  const auto genac = decode_ok("80128000F3B0189101D11416C106010A03A4A002");
  REQUIRE(genac.size() == 1);
  REQUIRE(genac[0].value.size() == 18);
  CHECK(genac[0].value[0] == 0x80);                                              // CID: ARQC
  CHECK(to_hex(byte_view(genac[0].value).subspan(1, 2)) == "00F3");              // ATC
  CHECK(to_hex(byte_view(genac[0].value).subspan(3, 8)) == "B0189101D11416C1");  // AC
}

TEST_CASE("record template with tag 57 feeds track2::parse_tag57", "[tlv][emv]") {
  // READ RECORD body: 70 { 57 <EMVPT track 2 equivalent>, 5F24 expiry }
  const auto list = decode_ok("701B57131234560012345608D18112211229424900200F5F2403181130");
  const tlv* t57 = tlv_find(list, 0x57);
  REQUIRE(t57 != nullptr);
  CHECK(tlv_find(list, 0x57, false) == nullptr);  // not at top level
  auto t2 = track2::parse_tag57(t57->value);
  REQUIRE(t2);
  CHECK(t2->account().masked() == "123456******5608");
  CHECK(t2->expiry_yymm() == "1811");
  const tlv* exp = tlv_find(list, 0x5F24);
  REQUIRE(exp != nullptr);
  CHECK(to_hex(exp->value) == "181130");
}

TEST_CASE("tag forms: one, two and three bytes", "[tlv]") {
  const auto list = decode_ok(
      "5A0112"
      "9F3303E0F8C8"
      "9F810102ABCD"
      "DF7F0101");
  REQUIRE(list.size() == 4);
  CHECK(list[0].tag == 0x5A);
  CHECK(list[1].tag == 0x9F33);
  CHECK(list[2].tag == 0x9F8101);
  CHECK(to_hex(list[2].value) == "ABCD");
  CHECK(list[3].tag == 0xDF7F);
  CHECK(to_hex(tlv_encode(list)) == "5A01129F3303E0F8C89F810102ABCDDF7F0101");
}

TEST_CASE("constructed() follows bit 0x20 of the first tag byte", "[tlv]") {
  const std::pair<std::uint32_t, bool> rows[] = {
      {0x70, true},    {0x77, true},    {0x6F, true},  {0xA5, true},  {0xBF0C, true},    {0xE1, true},
      {0x9F02, false}, {0x5F2A, false}, {0x57, false}, {0x80, false}, {0x9F8101, false}, {0xFF8101, true}};
  for (const auto& [tag, c] : rows) {
    INFO(std::hex << tag);
    CHECK(tlv{tag, {}, {}}.constructed() == c);
  }
}

TEST_CASE("long-form lengths decode and encode minimally", "[tlv]") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{127}, std::size_t{128}, std::size_t{255},
                        std::size_t{256}, std::size_t{65535}, std::size_t{65536}, std::size_t{70000}}) {
    INFO("length " << n);
    const tlv t{0x9F10, bytes(n, 0xAB), {}};
    const bytes enc = tlv_encode(t);
    const std::size_t len_bytes = n < 0x80 ? 1 : n <= 0xFF ? 2 : n <= 0xFFFF ? 3 : 4;
    CHECK(enc.size() == 2 + len_bytes + n);
    if (n >= 0x80) CHECK(enc[2] == 0x80 + len_bytes - 1);
    auto back = tlv_decode(enc);
    REQUIRE(back);
    REQUIRE(back->size() == 1);
    CHECK((back->front() == t));
  }
}

TEST_CASE("non-minimal long form is accepted on input", "[tlv]") {
  const auto list = decode_ok(
      "9C8101AA"
      "9F02820003010203"
      "5F2A8300000101");
  REQUIRE(list.size() == 3);
  CHECK(to_hex(list[0].value) == "AA");
  CHECK(to_hex(list[1].value) == "010203");
  CHECK(to_hex(list[2].value) == "01");
  // Lengths are re-encoded in the shortest form.
  CHECK(to_hex(tlv_encode(list)) ==
        "9C01AA"
        "9F0203010203"
        "5F2A0101");
}

TEST_CASE("equality compares constructed objects by children, primitives by value", "[tlv]") {
  const auto padded = decode_ok(
      "7005"
      "00"
      "9C0101"
      "FF");
  const auto plain = decode_ok(
      "7003"
      "9C0101");
  CHECK(padded[0].value != plain[0].value);
  CHECK((padded == plain));
  CHECK_FALSE((decode_ok("9C0101") == decode_ok("9C0102")));
  CHECK_FALSE((decode_ok("9C0101") == decode_ok("9D0101")));
  CHECK_FALSE((decode_ok("7003"
                         "9C0101") == decode_ok("7003"
                                                "9C0102")));
}

TEST_CASE("padding bytes 00 and FF between objects are skipped", "[tlv]") {
  const auto list = decode_ok(
      "00009C0101FFFF00"
      "700600"
      "9F0201"
      "07FF"
      "FF");
  REQUIRE(list.size() == 2);
  CHECK(list[0].tag == 0x9C);
  CHECK(list[1].tag == 0x70);
  REQUIRE(list[1].children.size() == 1);
  CHECK(list[1].children[0].tag == 0x9F02);
  CHECK(decode_ok("").empty());
  CHECK(decode_ok("0000FFFF").empty());
}

TEST_CASE("truncated tags and lengths give typed errors", "[tlv][security]") {
  CHECK(decode_error("9F") == "tlv.truncated_tag");
  CHECK(decode_error("9F81") == "tlv.truncated_tag");
  CHECK(decode_error("5F") == "tlv.truncated_tag");
  CHECK(decode_error("9C") == "tlv.truncated_length");
  CHECK(decode_error("9F02") == "tlv.truncated_length");
  CHECK(decode_error("9C81") == "tlv.truncated_length");
  CHECK(decode_error("9C8201") == "tlv.truncated_length");
  CHECK(decode_error("9C830001") == "tlv.truncated_length");
  CHECK(decode_error("9C0101"
                     "9F") == "tlv.truncated_tag");
}

TEST_CASE("tags longer than 3 bytes are rejected", "[tlv][security]") {
  CHECK(decode_error("9F81810100") == "tlv.tag_too_long");
  CHECK(decode_error("9F8181818181") == "tlv.tag_too_long");
  CHECK(decode_error("9F81010100") == "ok");
}

TEST_CASE("indefinite and over-long length forms are rejected", "[tlv][security]") {
  CHECK(decode_error("9C80") == "tlv.indefinite_length");
  CHECK(decode_error("708000000000") == "tlv.indefinite_length");
  CHECK(decode_error("9C840000000100") == "tlv.bad_length_form");
  CHECK(decode_error("9C88FFFFFFFFFFFFFFFF") == "tlv.bad_length_form");
  CHECK(decode_error("9CFF") == "tlv.bad_length_form");
}

TEST_CASE("lengths beyond the buffer are rejected", "[tlv][security]") {
  CHECK(decode_error("9C0201") == "tlv.length_overflow");
  CHECK(decode_error("9C81FF01") == "tlv.length_overflow");
  CHECK(decode_error("9C82FFFF") == "tlv.length_overflow");
  CHECK(decode_error("9C83FFFFFF01020304") == "tlv.length_overflow");
  CHECK(decode_error("9C7F") == "tlv.length_overflow");
  // The outer length fits but an inner one does not: error carries the outer tag in its message.
  auto r =
      tlv_decode(hex("7003"
                     "9C0501"));
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "tlv.length_overflow");
  CHECK(r.err().message.rfind("in 70: ", 0) == 0);
  // Inner object claims bytes that belong to the next outer object.
  CHECK(decode_error("7002"
                     "9C02"
                     "0101") == "tlv.length_overflow");
}

TEST_CASE("nesting depth is limited", "[tlv][security]") {
  // n nested E0 templates around 9C0101.
  const auto nest = [](int n) {
    tlv t{0x9C, {0x01}, {}};
    for (int i = 0; i < n; ++i) t = tlv{0xE0, {}, {t}};
    return tlv_encode(t);
  };
  CHECK(tlv_decode(nest(tlv_max_depth - 1)));
  auto deep = tlv_decode(nest(tlv_max_depth));
  REQUIRE_FALSE(deep);
  CHECK(deep.err().code == "tlv.too_deep");
  auto very_deep = tlv_decode(nest(200));
  REQUIRE_FALSE(very_deep);
  CHECK(very_deep.err().code == "tlv.too_deep");
}

TEST_CASE("encode builds constructed values from children", "[tlv]") {
  tlv field55{
      0x70, {}, {prim(0x9F02, "000000012500"), prim(0x5F2A, "0985"), tlv{0xE1, {}, {prim(0x9C, "00")}}}};
  const bytes enc = tlv_encode(field55);
  CHECK(to_hex(enc) ==
        "7013"
        "9F0206000000012500"
        "5F2A020985"
        "E103"
        "9C0100");
  auto back = tlv_decode(enc);
  REQUIRE(back);
  REQUIRE(back->size() == 1);
  // Decoding keeps the raw constructed value too; equality looks at children only.
  CHECK(((*back)[0] == field55));
  CHECK(((*back)[0].children == field55.children));
  CHECK(to_hex((*back)[0].value) == to_hex(byte_view(enc).subspan(2)));
}

TEST_CASE("tlv_find searches depth first and can stay at top level", "[tlv]") {
  const auto list = decode_ok(
      "9C0100"
      "E109"
      "9F0203000001"
      "9C0101"
      "9C0102");
  const tlv* first = tlv_find(list, 0x9C);
  REQUIRE(first != nullptr);
  CHECK(to_hex(first->value) == "00");
  const tlv* inner = tlv_find(list, 0x9F02);
  REQUIRE(inner != nullptr);
  CHECK(tlv_find(list, 0x9F02, false) == nullptr);
  CHECK(tlv_find(list, 0x8A) == nullptr);
  CHECK(tlv_find({}, 0x9C) == nullptr);
}
