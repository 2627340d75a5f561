// PAN and track 2 types. Clear PANs appear only as constants in this file: assertions compare
// through helpers returning bool or through masked()/luhn, so a failure never prints a PAN.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/core/card.hpp"

using namespace eftd;

namespace {

// Named so that a failing CHECK prints the constant's name, not the digits.
constexpr std::string_view k_moov_pan = "4000340000000506";
constexpr std::string_view k_moov_ascii = "4000340000000506=2512111123400001230";
constexpr std::string_view k_emvpt_pan = "1234560012345608";
constexpr std::string_view k_emvpt_ascii = "1234560012345608=18112211229424900200";
constexpr std::string_view k_pyemv_pan = "5123456789012345";
constexpr std::string_view k_visa_test_pan = "4111111111111111";

bool same_digits(const pan& p, std::string_view clear) {
  return p.reveal() == clear;
}
bool same_bytes(const secure_bytes& b, std::string_view clear) {
  return std::string_view(reinterpret_cast<const char*>(b.view().data()), b.size()) == clear;
}
pan make_pan(std::string_view d) {
  auto r = pan::parse(d);
  REQUIRE(r);
  return *r;
}
bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

}  // namespace

// test-vectors.md §9, Luhn lists.
TEST_CASE("luhn_valid accepts the published valid numbers", "[card][luhn]") {
  const std::string_view valid[] = {"79927398713",      "5116371146434084", "374648856525765",
                                    "4012345678909",    "4111111111111111", "4761739001010119",
                                    "5413330089020011", "4242424242424242"};
  for (std::size_t i = 0; i < std::size(valid); ++i) {
    INFO("valid vector #" << i);
    CHECK(luhn_valid(valid[i]));
  }
}

TEST_CASE("luhn_valid rejects the published invalid numbers and non-digits", "[card][luhn]") {
  const std::string_view invalid[] = {
      "5116371146434085",    "374648856525766", "4000340000000506", "5555555551234567", "",
      "4111 1111 1111 1111", "411111111111111a"};
  for (std::size_t i = 0; i < std::size(invalid); ++i) {
    INFO("invalid vector #" << i);
    CHECK_FALSE(luhn_valid(invalid[i]));
  }
}

TEST_CASE("pan::parse accepts 12..19 digits without checking Luhn", "[card][pan]") {
  for (std::size_t n = 12; n <= 19; ++n) {
    INFO("length " << n);
    auto p = pan::parse(std::string(n, '5'));
    REQUIRE(p);
    CHECK(p->length() == n);
  }
  auto bad_luhn = pan::parse("4000340000000506");
  REQUIRE(bad_luhn);
  CHECK_FALSE(bad_luhn->luhn_ok());
  CHECK(make_pan(k_visa_test_pan).luhn_ok());
}

TEST_CASE("pan::parse rejects wrong lengths and non-digits with typed errors", "[card][pan][security]") {
  for (std::string_view s : {"", "12345678901", "12345678901234567890"}) {
    auto p = pan::parse(s);
    REQUIRE_FALSE(p);
    CHECK(p.err().code == "pan.bad_length");
  }
  for (std::string_view s : {"4111-1111-1111", "411111111111111 ", "41111111111111a1", "４111111111111"}) {
    auto p = pan::parse(s);
    REQUIRE_FALSE(p);
    CHECK((p.err().code == "pan.not_numeric" || p.err().code == "pan.bad_length"));
  }
  auto p = pan::parse("41111111111111x1");
  REQUIRE_FALSE(p);
  CHECK(p.err().code == "pan.not_numeric");
  // The message names the field, never the value.
  CHECK(p.err().message.find("4111") == std::string::npos);
}

TEST_CASE("pan::masked shows at most first 6 and last 4, masks at least 4", "[card][pan][security]") {
  struct row {
    std::string_view clear;
    std::string_view masked;
  };
  const row rows[] = {
      {"4111111111111111", "411111******1111"}, {"374648856525765", "374648*****5765"},
      {"4012345678909", "40123****8909"},       {"123456789012", "1234****9012"},
      {"12345678901234", "123456****1234"},     {"6759000000000000005", "675900*********0005"},
  };
  for (const auto& r : rows) {
    const pan p = make_pan(r.clear);
    const std::string m = p.masked();
    CHECK(m == r.masked);
    CHECK(m.size() == r.clear.size());
    CHECK(std::count(m.begin(), m.end(), '*') >= 4);
  }
}

TEST_CASE("pan::bin and last4 give routing and receipt digits", "[card][pan]") {
  const pan p = make_pan("5413330089020011");
  CHECK(p.bin() == "54133300");
  CHECK(p.bin(6) == "541333");
  CHECK(p.bin(1) == "5");
  CHECK(p.bin(12) == "54133300");  // capped at 8 digits
  CHECK(p.last4() == "0011");
}

TEST_CASE("fmt prints a pan masked", "[card][pan][security]") {
  const pan p = make_pan("4111111111111111");
  CHECK(fmt::format("{}", p) == "411111******1111");
  CHECK(fmt::format("card {}", p).find(k_visa_test_pan) == std::string::npos);
}

TEST_CASE("pan_search_hash is a keyed lowercase HMAC-SHA256", "[card][pan][security]") {
  const pan p = make_pan("4111111111111111");
  // Python: hmac.new(b'journal-search-key', b'4111111111111111', sha256).hexdigest()
  CHECK(pan_search_hash(p, as_bytes("journal-search-key")) ==
        "a518acbb728f6ba7c5915ec5726df5e33b8b686184bfc1d9823b0992586f013a");
  const pan moov = make_pan(k_moov_pan);
  CHECK(pan_search_hash(moov, bytes(32, 0)) ==
        "c2ae0c01feda4e92fd31f9948ba6f9ac0b9ca2639c5e8b9e7743dab71903cabf");
  CHECK(pan_search_hash(p, as_bytes("other-key")) != pan_search_hash(p, as_bytes("journal-search-key")));
}

// test-vectors.md §9, MOOV8583 field/track_test.go.
TEST_CASE("track2::parse reads the moov-io vector with '=' and 'D' separators", "[card][track2]") {
  for (std::string_view in : {"4000340000000506=2512111123400001230", "4000340000000506D2512111123400001230",
                              ";4000340000000506=2512111123400001230?"}) {
    auto t = track2::parse(in);
    REQUIRE(t);
    CHECK(same_digits(t->account(), k_moov_pan));
    CHECK_FALSE(t->account().luhn_ok());  // the vector fails Luhn; parsing must not care
    CHECK(t->expiry_yymm() == "2512");
    CHECK(t->service_code() == "111");
    CHECK(t->reveal_discretionary() == "123400001230");
  }
}

// test-vectors.md §9: EMVPT and pyemv tag 57 values.
TEST_CASE("track2::parse_tag57 reads packed BCD with F padding", "[card][track2]") {
  auto a = track2::parse_tag57(hex("1234560012345608D18112211229424900200F"));
  REQUIRE(a);
  CHECK(same_digits(a->account(), k_emvpt_pan));
  CHECK(a->account().masked() == "123456******5608");
  CHECK(a->expiry_yymm() == "1811");
  CHECK(a->service_code() == "221");
  CHECK(a->reveal_discretionary() == "1229424900200");

  auto b = track2::parse_tag57(hex("5123456789012345D35121010000000000000F"));
  REQUIRE(b);
  CHECK(same_digits(b->account(), k_pyemv_pan));
  CHECK(b->expiry_yymm() == "3512");
  CHECK(b->service_code() == "101");
  CHECK(b->reveal_discretionary() == "0000000000000");
}

TEST_CASE("track2 encodes back to the ASCII and tag 57 forms", "[card][track2]") {
  auto a = track2::parse("4000340000000506D2512111123400001230");
  REQUIRE(a);
  CHECK(same_bytes(a->encode_ascii(), k_moov_ascii));

  const auto tag57 = hex("1234560012345608D18112211229424900200F");
  auto b = track2::parse_tag57(tag57);
  REQUIRE(b);
  CHECK((b->encode_tag57() == secure_bytes(tag57)));
  CHECK(same_bytes(b->encode_ascii(), k_emvpt_ascii));
  auto c = track2::parse(std::string_view(reinterpret_cast<const char*>(b->encode_ascii().view().data()),
                                          b->encode_ascii().size()));
  REQUIRE(c);
  CHECK((*c == *b));
}

TEST_CASE("track2 with even digit count has no F pad and empty discretionary is allowed", "[card][track2]") {
  auto t = track2::parse("4111111111111111=2512101");
  REQUIRE(t);
  CHECK(t->reveal_discretionary().empty());
  // 16 + 1 + 7 = 24 nibbles -> 12 bytes, no padding.
  const auto expected = hex("4111111111111111D2512101");
  CHECK(t->encode_tag57().view().size() == 12);
  CHECK((t->encode_tag57() == secure_bytes(expected)));
  auto back = track2::parse_tag57(t->encode_tag57().view());
  REQUIRE(back);
  CHECK((*back == *t));
}

TEST_CASE("track2::parse rejects malformed ASCII with typed errors", "[card][track2][security]") {
  struct row {
    std::string_view in;
    std::string_view code;
  };
  const row rows[] = {
      {"", "track2.empty"},
      {";?", "track2.empty"},
      {"4000340000000506", "track2.no_separator"},
      {"400034=2512111", "track2.bad_pan"},
      {"40003400000005x6=2512111", "track2.bad_pan"},
      {"4000340000000506=251211", "track2.short"},
      {"4000340000000506=", "track2.short"},
      {"4000340000000506=2512111A", "track2.bad_char"},
      {"4000340000000506=2512=111", "track2.bad_char"},
      {";4000340000000506=2512111?9", "track2.bad_char"},
      {"4000340000000506=25121111234567890123456", "track2.too_long"},
  };
  for (const auto& r : rows) {
    auto t = track2::parse(r.in);
    REQUIRE_FALSE(t);
    CHECK(t.err().code == r.code);
    CHECK(t.err().message.find(k_moov_pan) == std::string::npos);
  }
}

TEST_CASE("track2 length bound: 37 characters pass, 38 fail", "[card][track2][security]") {
  const std::string pan19 = "4000340000000506123";
  std::string s37 = pan19 + "=2512111" + std::string(37 - 19 - 8, '0');
  REQUIRE(s37.size() == 37);
  CHECK(track2::parse(s37));
  CHECK(track2::parse(";" + s37 + "?"));
  auto t = track2::parse(s37 + "0");
  REQUIRE_FALSE(t);
  CHECK(t.err().code == "track2.too_long");
}

TEST_CASE("track2::parse_tag57 rejects malformed BCD", "[card][track2][security]") {
  struct row {
    std::string_view hex_in;
    std::string_view code;
  };
  const row rows[] = {
      {"", "track2.empty"},
      {"4000340000000506", "track2.no_separator"},
      {"4000340000000506D2F12111", "track2.bad_padding"},
      {"4000340000000506D251211F1F", "track2.bad_padding"},
      {"4000340000000506A2512111", "track2.bad_char"},
      {"40003400000005E6D2512111", "track2.bad_char"},
      {"4000340000000506D251", "track2.short"},
      {"4000340000000506D2512111000000000000000000", "track2.too_long"},  // 21 bytes
  };
  for (const auto& r : rows) {
    auto t = track2::parse_tag57(hex(r.hex_in));
    REQUIRE_FALSE(t);
    CHECK(t.err().code == r.code);
  }
  // 19 bytes is the ceiling and still fine.
  const auto max_len = hex("4000340000000506D25121110000000000000F");
  CHECK(max_len.size() == 19);
  CHECK(track2::parse_tag57(max_len));
}

TEST_CASE("fmt prints a track2 as its masked PAN only", "[card][track2][security]") {
  auto t = track2::parse("4000340000000506=2512111123400001230");
  REQUIRE(t);
  const std::string s = fmt::format("{}", *t);
  CHECK(s == "track2[400034******0506]");
  CHECK(s.find("2512") == std::string::npos);
  CHECK(s.find("123400001230") == std::string::npos);
}
