// Known-answer tests for the OpenSSL wrappers in eftd/core/crypto.hpp.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/core/crypto.hpp"

using namespace eftd;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

std::string hex_of(byte_view b) {
  return to_hex(b);
}

std::string upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

}  // namespace

// McGrew/Viega, "The Galois/Counter Mode of Operation", Appendix B, test case 16
// (256-bit key, 60-byte plaintext, 20-byte AAD).
TEST_CASE("aes256_gcm_seal_with_nonce matches GCM spec test case 16", "[crypto]") {
  const auto key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const auto iv = hex("cafebabefacedbaddecaf888");
  const auto pt =
      hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  const auto aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string ct =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
  const std::string tag = "76fc6ece0f4e1768cddf8853bb2d551b";

  auto sealed = aes256_gcm_seal_with_nonce(key, iv, pt, aad);
  REQUIRE(sealed);
  CHECK(hex_of(*sealed) == upper("cafebabefacedbaddecaf888" + ct + tag));

  auto opened = aes256_gcm_open(key, *sealed, aad);
  REQUIRE(opened);
  CHECK(hex_of(opened->view()) == hex_of(pt));
}

// Same spec, test cases 13 and 14: all-zero key and nonce, empty and one-block plaintext.
TEST_CASE("aes256_gcm_seal_with_nonce matches GCM spec test cases 13 and 14", "[crypto]") {
  const bytes key(32, 0);
  const bytes iv(12, 0);
  auto tc13 = aes256_gcm_seal_with_nonce(key, iv, {}, {});
  REQUIRE(tc13);
  CHECK(hex_of(*tc13) == upper("000000000000000000000000"
                               "530f8afbc74536b9a963b4f1c4cb738b"));

  const bytes zero_block(16, 0);
  auto tc14 = aes256_gcm_seal_with_nonce(key, iv, zero_block, {});
  REQUIRE(tc14);
  CHECK(hex_of(*tc14) == upper("000000000000000000000000"
                               "cea7403d4d606b6e074ec5d3baf39d18"
                               "d0d1c8a799996bf0265b98b5d48ab919"));
  auto empty_open = aes256_gcm_open(key, *tc13, {});
  REQUIRE(empty_open);
  CHECK(empty_open->empty());
}

TEST_CASE("aes256_gcm_seal round-trips with a fresh nonce each time", "[crypto][security]") {
  const auto key = random_bytes(32);
  const auto pt = as_bytes("4111111111111111");
  const auto aad = as_bytes("journal:v1");
  auto a = aes256_gcm_seal(key.view(), pt, aad);
  auto b = aes256_gcm_seal(key.view(), pt, aad);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->size() == gcm_nonce_size + pt.size() + gcm_tag_size);
  // Two seals of the same data must differ (random nonce), else GCM's nonce rule is broken.
  CHECK(hex_of(byte_view(*a).first(gcm_nonce_size)) != hex_of(byte_view(*b).first(gcm_nonce_size)));
  auto opened = aes256_gcm_open(key.view(), *a, aad);
  REQUIRE(opened);
  CHECK(opened->view().size() == pt.size());
  CHECK(std::equal(pt.begin(), pt.end(), opened->view().begin()));
}

TEST_CASE("aes256_gcm_open rejects tampering, wrong AAD and wrong key", "[crypto][security]") {
  const auto key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const auto aad = as_bytes("aad");
  auto sealed = aes256_gcm_seal(key, as_bytes("secret"), aad);
  REQUIRE(sealed);

  SECTION("flipped ciphertext bit") {
    auto t = *sealed;
    t[gcm_nonce_size] ^= 0x01;
    auto r = aes256_gcm_open(key, t, aad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.auth_failed");
  }
  SECTION("flipped tag bit") {
    auto t = *sealed;
    t.back() ^= 0x80;
    auto r = aes256_gcm_open(key, t, aad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.auth_failed");
  }
  SECTION("flipped nonce bit") {
    auto t = *sealed;
    t[0] ^= 0x01;
    auto r = aes256_gcm_open(key, t, aad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.auth_failed");
  }
  SECTION("different AAD") {
    auto r = aes256_gcm_open(key, *sealed, as_bytes("aae"));
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.auth_failed");
  }
  SECTION("different key") {
    auto other = key;
    other[31] ^= 1;
    auto r = aes256_gcm_open(other, *sealed, aad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.auth_failed");
  }
}

TEST_CASE("aes256_gcm rejects bad key and short input sizes", "[crypto][security]") {
  const bytes short_key(16, 1);
  auto s = aes256_gcm_seal(short_key, as_bytes("x"), {});
  REQUIRE_FALSE(s);
  CHECK(s.err().code == "crypto.bad_key");
  auto o = aes256_gcm_open(short_key, bytes(40, 0), {});
  REQUIRE_FALSE(o);
  CHECK(o.err().code == "crypto.bad_key");

  const bytes key(32, 1);
  auto too_short = aes256_gcm_open(key, bytes(27, 0), {});
  REQUIRE_FALSE(too_short);
  CHECK(too_short.err().code == "crypto.bad_input");
  auto bad_nonce = aes256_gcm_seal_with_nonce(key, bytes(8, 0), as_bytes("x"), {});
  REQUIRE_FALSE(bad_nonce);
  CHECK(bad_nonce.err().code == "crypto.bad_input");
}

// RFC 4231 test cases 1, 2 and 4.
TEST_CASE("hmac_sha256 matches RFC 4231", "[crypto]") {
  CHECK(hex_of(hmac_sha256(bytes(20, 0x0b), as_bytes("Hi There"))) ==
        upper("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  CHECK(hex_of(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))) ==
        upper("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  CHECK(hex_of(hmac_sha256(hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), bytes(50, 0xcd))) ==
        upper("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"));
}

TEST_CASE("sha256 matches FIPS 180-2 examples", "[crypto]") {
  CHECK(hex_of(sha256(as_bytes("abc"))) ==
        upper("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK(hex_of(sha256({})) == upper("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

TEST_CASE("random_bytes returns the requested size and differs between calls", "[crypto][security]") {
  CHECK(random_bytes(0).empty());
  auto a = random_bytes(32);
  auto b = random_bytes(32);
  CHECK(a.size() == 32);
  CHECK_FALSE(a == b);
}
