// Known-answer tests for the block-cipher layer (block_cipher.hpp) and the payment MACs
// (mac.hpp): ISO 9797-1 algorithms 1 and 3, CMAC. Vectors: /work/shared/test-vectors.md §5
// (ISO 9797-1 B.4, PSEC), NIST SP 800-38B Appendix D (via OE-CRYPTO), FIPS 197 / FIPS 81
// block KATs, and the TDES/AES checks test-vectors.md marks "+openssl". All public values.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/mac.hpp"

using namespace eftd;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

std::string hx(byte_view b) {
  return to_hex(b);
}

// NIST SP 800-38B D examples share one message; each case MACs a prefix of it.
constexpr std::string_view nist_message =
    "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51"
    "30C81C46A35CE411E5FBC1191A0A52EFF69F2445DF4F9B17AD2B417BE66C3710";

struct cmac_vector {
  const char* key;
  std::size_t length;  // bytes of nist_message
  const char* mac;
};

}  // namespace

TEST_CASE("tdes_ecb and aes_ecb match published single-block answers", "[crypto][block]") {
  struct vec {
    const char* name;
    bool aes;
    const char* key;
    const char* plain;
    const char* cipher;
  };
  const std::vector<vec> vectors = {
      // FIPS 81 / classic DES example "Now is t", run through the K1=K2=K3 path.
      {"DES 'Now is t'", false, "0123456789ABCDEF", "4E6F772069732074", "3FA40E8A984D4815"},
      // test-vectors §1 (+openssl): IPEK left half = TDES(BDK, initial KSN).
      {"TDES IPEK left half", false, "0123456789ABCDEFFEDCBA9876543210", "FFFF9876543210E0",
       "6AC292FAA1315B4D"},
      // test-vectors §1 (+openssl): first encrypted PIN block under the counter-1 PEK.
      {"TDES DUKPT PIN block", false, "042666B49184CF5C68DE9628D0397B36", "041274EDCBA9876F",
       "1B9C1845EB993A7A"},
      // test-vectors §2 (+openssl): AES DUKPT initial key = AES-ECB(BDK, derivation data).
      {"AES-128 DUKPT IK", true, "FEDCBA9876543210F1F1F1F1F1F1F1F1", "01018001000200801234567890123456",
       "1273671EA26AC29AFA4D1084127652A1"},
      // FIPS 197 Appendix C.1-C.3.
      {"FIPS 197 AES-128", true, "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
       "69C4E0D86A7B0430D8CDB78070B4C55A"},
      {"FIPS 197 AES-192", true, "000102030405060708090A0B0C0D0E0F1011121314151617",
       "00112233445566778899AABBCCDDEEFF", "DDA97CA4864CDFE06EAF70A0EC0D7191"},
      {"FIPS 197 AES-256", true, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
       "00112233445566778899AABBCCDDEEFF", "8EA2B7CA516745BFEAFC49904B496089"},
  };
  for (const auto& v : vectors) {
    INFO(v.name);
    const auto key = hex(v.key);
    const auto pt = hex(v.plain);
    auto ct = v.aes ? aes_ecb(cipher_op::encrypt, key, pt) : tdes_ecb(cipher_op::encrypt, key, pt);
    REQUIRE(ct);
    CHECK(hx(ct->view()) == v.cipher);
    auto back =
        v.aes ? aes_ecb(cipher_op::decrypt, key, ct->view()) : tdes_ecb(cipher_op::decrypt, key, ct->view());
    REQUIRE(back);
    CHECK(hx(back->view()) == v.plain);
  }
}

TEST_CASE("three-key TDES with equal thirds equals two-key and single DES", "[crypto][block]") {
  const auto k8 = hex("0123456789ABCDEF");
  const auto k24 = hex("0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
  const auto k16 = hex("0123456789ABCDEFFEDCBA9876543210");
  const auto k16as24 = hex("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF");
  const auto pt = hex("4E6F7720697320744E6F772069732074");
  auto a = tdes_ecb(cipher_op::encrypt, k8, pt);
  auto b = tdes_ecb(cipher_op::encrypt, k24, pt);
  auto c = tdes_ecb(cipher_op::encrypt, k16, pt);
  auto d = tdes_ecb(cipher_op::encrypt, k16as24, pt);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  REQUIRE(d);
  CHECK(a->view().size() == 16);
  CHECK(*a == *b);
  CHECK(*c == *d);
  CHECK(!(*a == *c));
}

TEST_CASE("CBC modes chain with the IV and round-trip", "[crypto][block]") {
  const auto key = hex("0123456789ABCDEFFEDCBA9876543210");
  const auto iv = hex("1122334455667788");
  const auto pt = hex("00000000000000000000000000000000");
  auto ct = tdes_cbc(cipher_op::encrypt, key, iv, pt);
  REQUIRE(ct);
  // First block of CBC is ECB of (IV xor P1) = ECB of the IV here.
  auto first = tdes_ecb(cipher_op::encrypt, key, iv);
  REQUIRE(first);
  CHECK(hx(ct->view().first(8)) == hx(first->view()));
  auto back = tdes_cbc(cipher_op::decrypt, key, iv, ct->view());
  REQUIRE(back);
  CHECK(hx(back->view()) == hx(pt));

  const auto akey = hex("000102030405060708090A0B0C0D0E0F");
  const bytes aiv(16, 0);
  const auto apt = hex("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF");
  auto act = aes_cbc(cipher_op::encrypt, akey, aiv, apt);
  REQUIRE(act);
  CHECK(hx(act->view().first(16)) == "69C4E0D86A7B0430D8CDB78070B4C55A");  // zero IV: block 1 = ECB
  auto aback = aes_cbc(cipher_op::decrypt, akey, aiv, act->view());
  REQUIRE(aback);
  CHECK(hx(aback->view()) == hx(apt));

  auto empty = aes_cbc(cipher_op::encrypt, akey, aiv, {});
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("block cipher rejects bad key, data and IV lengths", "[crypto][block]") {
  const bytes data8(8, 0);
  const bytes data16(16, 0);
  for (std::size_t n : {0, 7, 9, 15, 17, 23, 25, 32}) {
    const bytes key(n, 0x11);
    auto r = tdes_ecb(cipher_op::encrypt, key, data8);
    INFO(n);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.bad_key");
  }
  for (std::size_t n : {0, 8, 15, 17, 31, 33}) {
    const bytes key(n, 0x11);
    auto r = aes_ecb(cipher_op::encrypt, key, data16);
    INFO(n);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.bad_key");
  }
  const bytes k16(16, 0x11);
  auto r1 = tdes_ecb(cipher_op::encrypt, k16, bytes(12, 0));
  REQUIRE_FALSE(r1);
  CHECK(r1.err().code == "crypto.bad_input");
  auto r2 = aes_ecb(cipher_op::encrypt, k16, bytes(8, 0));
  REQUIRE_FALSE(r2);
  CHECK(r2.err().code == "crypto.bad_input");
  auto r3 = tdes_cbc(cipher_op::encrypt, k16, bytes(16, 0), data8);
  REQUIRE_FALSE(r3);
  CHECK(r3.err().code == "crypto.bad_input");
  auto r4 = aes_cbc(cipher_op::encrypt, k16, bytes(8, 0), data16);
  REQUIRE_FALSE(r4);
  CHECK(r4.err().code == "crypto.bad_input");
  auto r5 = tdes_cmac(bytes(10, 0), data8);
  REQUIRE_FALSE(r5);
  CHECK(r5.err().code == "crypto.bad_key");
  auto r6 = aes_cmac(bytes(20, 0), data8);
  REQUIRE_FALSE(r6);
  CHECK(r6.err().code == "crypto.bad_key");
}

TEST_CASE("TDES-CMAC matches NIST SP 800-38B Appendix D", "[crypto][mac]") {
  const char* k3 = "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123";
  const char* k2 = "0123456789ABCDEF23456789ABCDEF01";
  const std::vector<cmac_vector> vectors = {
      {k3, 0, "7DB0D37DF936C550"},  {k3, 16, "30239CF1F52E6609"}, {k3, 20, "6C9F3EE4923F6BE2"},
      {k3, 32, "99429BD0BF7904E5"}, {k2, 0, "79CE52A7F786A960"},  {k2, 16, "CC18A0B79AF2413B"},
      {k2, 20, "C06D377ECD101969"}, {k2, 32, "9CD33580F9B64DFB"},
  };
  const auto msg = hex(nist_message);
  for (const auto& v : vectors) {
    INFO(v.key << " / " << v.length);
    auto m = cmac_tdes(hex(v.key), byte_view(msg).first(v.length));
    REQUIRE(m);
    CHECK(hx(*m) == v.mac);
  }
}

TEST_CASE("AES-CMAC matches NIST SP 800-38B Appendix D and RFC 4493", "[crypto][mac]") {
  const char* k128 = "2B7E151628AED2A6ABF7158809CF4F3C";
  const char* k192 = "8E73B0F7DA0E6452C810F32B809079E562F8EAD2522C6B7B";
  const char* k256 = "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4";
  const std::vector<cmac_vector> vectors = {
      {k128, 0, "BB1D6929E95937287FA37D129B756746"},  {k128, 16, "070A16B46B4D4144F79BDD9DD04A287C"},
      {k128, 20, "7D85449EA6EA19C823A7BF78837DFADE"}, {k128, 40, "DFA66747DE9AE63030CA32611497C827"},
      {k128, 64, "51F0BEBF7E3B9D92FC49741779363CFE"}, {k192, 0, "D17DDF46ADAACDE531CAC483DE7A9367"},
      {k192, 16, "9E99A7BF31E710900662F65E617C5184"}, {k192, 20, "3D75C194ED96070444A9FA7EC740ECF8"},
      {k192, 64, "A1D5DF0EED790F794D77589659F39A11"}, {k256, 0, "028962F61B7BF89EFC6B551F4667D983"},
      {k256, 16, "28A7023F452E8F82BD4BF28D8C37C35C"}, {k256, 20, "156727DC0878944A023C1FE03BAD6D93"},
      {k256, 64, "E1992190549F6ED5696A2C056C315410"},
  };
  const auto msg = hex(nist_message);
  for (const auto& v : vectors) {
    INFO(v.key << " / " << v.length);
    auto m = cmac_aes(hex(v.key), byte_view(msg).first(v.length));
    REQUIRE(m);
    CHECK(hx(*m) == v.mac);
  }
}

TEST_CASE("key check values match the TR-31 test vector table", "[crypto][block]") {
  // test-vectors §4: TDES keys use TDES-ECB of zeros (3 bytes), AES keys the CMAC KCV (5 bytes).
  struct vec {
    const char* key;
    bool aes;
    const char* kcv;
  };
  const std::vector<vec> vectors = {
      {"F039121BEC83D26B169BDCD5B22AAF8F", false, "CB9DEA"},
      {"3F419E1CB7079442AA37474C2EFBF8B8", false, "57C409"},
      {"EDB380DD340BC2620247D445F5B8D678", false, "F4B08D"},
      {"E8BC63E5479455E26577F715D587FE68", false, "9A4212"},
      {"5DB50B454F8389ADCE573BE50861F2BF", false, "5C9405"},
      {"1FA1F7CEC798D91545DA8AE0C7796BD9", false, "FF5087"},
      {"3F419E1CB7079442AA37474C2EFBF8B8", true, "08793E25AB"},
      {"BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC", true, "0A00E3"},
  };
  for (const auto& v : vectors) {
    INFO(v.key);
    auto k = v.aes ? aes_cmac_kcv(hex(v.key)) : tdes_kcv(hex(v.key));
    REQUIRE(k);
    CHECK(hx(*k).substr(0, std::string(v.kcv).size()) == v.kcv);
    CHECK(k->size() == (v.aes ? 5u : 3u));
  }
}

TEST_CASE("ISO 9797-1 padding methods", "[crypto][mac]") {
  CHECK(hx(mac_pad({}, mac_padding::method1, 8)) == "0000000000000000");
  CHECK(hx(mac_pad(hex("01"), mac_padding::method1, 8)) == "0100000000000000");
  CHECK(hx(mac_pad(hex("0102030405060708"), mac_padding::method1, 8)) == "0102030405060708");
  CHECK(hx(mac_pad({}, mac_padding::method2, 8)) == "8000000000000000");
  CHECK(hx(mac_pad(hex("0102030405060708"), mac_padding::method2, 8)) == "01020304050607088000000000000000");
  CHECK(hx(mac_pad(hex("01"), mac_padding::method3, 8)) == "00000000000000080100000000000000");
  CHECK(hx(mac_pad({}, mac_padding::method3, 8)) == "0000000000000000");
}

TEST_CASE("ISO 9797-1 MAC algorithm 3 (retail MAC) matches §5 vectors", "[crypto][mac]") {
  struct vec {
    const char* name;
    const char* key;
    std::string data;
    mac_padding padding;
    const char* mac;  // compared on its length: ISO B.4 publishes 4 bytes
  };
  const std::vector<vec> vectors = {
      {"ISO 9797-1 B.4 (24 bytes)", "0123456789ABCDEFFEDCBA9876543210", "Now is the time for all ",
       mac_padding::method1, "A1C72E74"},
      {"ISO 9797-1 B.4 (22 bytes)", "0123456789ABCDEFFEDCBA9876543210", "Now is the time for it",
       mac_padding::method1, "2E2B1428"},
      {"PSEC pad 1", "41414141414141414242424242424242", "hello world", mac_padding::method1,
       "3DDE5C5511661CBF"},
      {"PSEC pad 2", "41414141414141414242424242424242", "hello world", mac_padding::method2,
       "E16941032C3BC7D4"},
      {"PSEC pad 3", "41414141414141414242424242424242", "hello world", mac_padding::method3,
       "BA90F750EF43F668"},
  };
  for (const auto& v : vectors) {
    INFO(v.name);
    auto m = iso9797_mac_alg3(hex(v.key), as_bytes(v.data), v.padding);
    REQUIRE(m);
    CHECK(m->size() == 8);
    CHECK(hx(*m).substr(0, std::string(v.mac).size()) == v.mac);
  }
  auto bad = iso9797_mac_alg3(hex("0123456789ABCDEF"), as_bytes("x"), mac_padding::method1);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == "crypto.bad_key");
}

TEST_CASE("ISO 9797-1 MAC algorithm 1 (CBC-MAC, 2-key TDES) matches PSEC", "[crypto][mac]") {
  const auto key = hex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB");
  const std::vector<std::pair<mac_padding, const char*>> vectors = {
      {mac_padding::method1, "68D9038F23360DF3"},
      {mac_padding::method2, "32DC341271ACCD00"},
      {mac_padding::method3, "CDACA53E2DAA5412"},
  };
  for (const auto& [padding, expected] : vectors) {
    auto m = iso9797_mac_alg1(key, as_bytes("hello world"), padding);
    REQUIRE(m);
    CHECK(hx(*m) == expected);
  }
  auto bad = iso9797_mac_alg1(bytes(12, 0), as_bytes("x"), mac_padding::method1);
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == "crypto.bad_key");
}

TEST_CASE("mac_equal compares in full and by length", "[crypto][mac]") {
  CHECK(mac_equal(hex("9CCC7817"), hex("9CCC7817")));
  CHECK_FALSE(mac_equal(hex("9CCC7817"), hex("9CCC7816")));
  CHECK_FALSE(mac_equal(hex("9CCC7817"), hex("9CCC78")));
  CHECK(mac_equal({}, {}));
}

namespace {
class counting_random final : public random_source {
 public:
  void fill(std::span<std::uint8_t> out) override { calls_ += out.size(); }
  std::size_t calls_ = 0;
};
}  // namespace

TEST_CASE("system_random fills buffers and differs between calls, sources are injectable",
          "[crypto][block]") {
  std::array<std::uint8_t, 32> a{};
  std::array<std::uint8_t, 32> b{};
  system_random().fill(a);
  system_random().fill(b);
  CHECK(a != b);  // 2^-256 chance of a false failure
  counting_random c;
  random_source& r = c;
  r.fill(a);
  CHECK(c.calls_ == 32);
}
