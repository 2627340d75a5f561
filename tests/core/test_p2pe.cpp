// P2PE under DUKPT (p2pe.hpp): the pad's originator and eftd's host_keys, checked against the
// published vectors of /work/shared/test-vectors.md §1 (TDES, X9.24-1 A.4) and §2 (AES,
// X9.24-3 supplement): PIN blocks and data keys of the first counters, and the counter
// sequence rules. Every key, PAN and PIN here is a public test value.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/dukpt.hpp"
#include "eftd/core/p2pe.hpp"

using namespace eftd;
using p2pe::dukpt_kind;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

const char* const tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";
const char* const tdes_ipek = "6AC292FAA1315B4D858AB3A3D7D5933A";
const char* const aes_bdk = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
const char* const aes_ik = "1273671EA26AC29AFA4D1084127652A1";

// Replays the supplement's fixed format 4 filler (the random half of its PIN field).
class fixed_random final : public random_source {
 public:
  explicit fixed_random(bytes b) : b_(std::move(b)) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& x : out) x = b_[i_++ % b_.size()];
  }

 private:
  bytes b_;
  std::size_t i_ = 0;
};

p2pe::originator tdes_pad() {
  auto o =
      p2pe::originator::create(dukpt_kind::tdes, secure_bytes(hex(tdes_ipek)), hex("FFFF9876543210E00000"));
  REQUIRE(o);
  return std::move(*o);
}

p2pe::originator aes_pad() {
  auto o =
      p2pe::originator::create(dukpt_kind::aes, secure_bytes(hex(aes_ik)), hex("123456789012345600000000"));
  REQUIRE(o);
  return std::move(*o);
}

}  // namespace

TEST_CASE("p2pe TDES: the pad's first PIN blocks are the X9.24-1 A.4 ones and eftd opens them", "[p2pe]") {
  auto pad = tdes_pad();
  const char* const want[] = {"1B9C1845EB993A7A", "10A01C8D02C69107", "18DC07B94797B466"};
  auto p = pin::parse("1234");
  REQUIRE(p);
  for (int i = 0; i < 3; ++i) {
    auto ksn = pad.begin_transaction();
    REQUIRE(ksn);
    CHECK(to_hex(*ksn) == "FFFF9876543210E0000" + std::to_string(i + 1));
    auto block = pad.pin_block(*p, "4012345678909", system_random());
    REQUIRE(block);
    CHECK(to_hex(*block) == want[i]);
    auto host = p2pe::host_keys::derive(hex(tdes_bdk), *ksn);
    REQUIRE(host);
    auto back = host->open_pin(*block, "4012345678909");
    REQUIRE(back);
    CHECK(back->reveal() == "1234");
    // A wrong PAN does not give the PIN back.
    CHECK_FALSE(host->open_pin(*block, "4012345678917"));
  }
}

TEST_CASE("p2pe AES: format 4 PIN block of counter 1 is the supplement's", "[p2pe]") {
  auto pad = aes_pad();
  auto ksn = pad.begin_transaction();
  REQUIRE(ksn);
  CHECK(to_hex(*ksn) == "123456789012345600000001");
  auto p = pin::parse("1234");
  REQUIRE(p);
  fixed_random filler(hex("2F69ADDE2E9E7ACE"));
  auto block = pad.pin_block(*p, "4111111111111111", filler);
  REQUIRE(block);
  CHECK(to_hex(*block) == "A912150391AB65A67E52883D81CE2D15");
  auto host = p2pe::host_keys::derive(hex(aes_bdk), *ksn);
  REQUIRE(host);
  auto back = host->open_pin(*block, "4111111111111111");
  REQUIRE(back);
  CHECK(back->reveal() == "1234");
}

TEST_CASE("p2pe sealed values use the published data keys and open only once, in order", "[p2pe]") {
  struct kase {
    dukpt_kind kind;
    const char* bdk;
    const char* data_key;  // counter 1, from the vectors
    std::size_t block;
  };
  const kase cases[] = {{dukpt_kind::tdes, tdes_bdk, "448D3F076D8304036A55A3D7E0055A78", 8},
                        {dukpt_kind::aes, aes_bdk, "A35C412EFD41FDB98B69797C02DCD08F", 16}};
  const std::string track = "4761739001010119=29122011143804489";  // public Visa test card
  for (const auto& c : cases) {
    INFO("kind " << static_cast<int>(c.kind));
    auto pad = c.kind == dukpt_kind::tdes ? tdes_pad() : aes_pad();
    auto ksn = pad.begin_transaction();
    REQUIRE(ksn);
    auto sealed = pad.seal(1, as_bytes(track));
    REQUIRE(sealed);
    CHECK(sealed->size() % c.block == 0);
    // The layout: item || length || data || zeros, CBC under the published data key.
    bytes plain{0x00, 0x01, 0x00, static_cast<std::uint8_t>(track.size())};
    plain.insert(plain.end(), track.begin(), track.end());
    auto expect = c.kind == dukpt_kind::tdes ? tdes_dukpt::encrypt_data(hex(c.data_key), plain)
                                             : aes_dukpt::encrypt_data(hex(c.data_key), plain);
    REQUIRE(expect);
    CHECK(*sealed == *expect);

    auto host = p2pe::host_keys::derive(hex(c.bdk), *ksn);
    REQUIRE(host);
    // Claimed under another item number: refused, and it does not burn item 1.
    auto moved = host->open(2, *sealed);
    REQUIRE_FALSE(moved);
    CHECK(moved.err().code == "p2pe.bad_sealed");
    auto opened = host->open(1, *sealed);
    REQUIRE(opened);
    CHECK(std::string(reinterpret_cast<const char*>(opened->view().data()), opened->size()) == track);
    auto replay = host->open(1, *sealed);
    REQUIRE_FALSE(replay);
    CHECK(replay.err().code == "p2pe.bad_item");
    // Values ending in zero bytes come back whole (an R-APDU may end in 00).
    bytes rapdu{0x6F, 0x00, 0x00, 0x90, 0x00, 0x00};
    auto s2 = pad.seal(3, rapdu);
    REQUIRE(s2);
    auto o2 = host->open(3, *s2);
    REQUIRE(o2);
    CHECK(bytes(o2->view().begin(), o2->view().end()) == rapdu);
    // Damage: a truncated value and a flipped byte are refused, never returned.
    bytes cut(s2->begin(), s2->end() - 1);
    CHECK_FALSE(host->open(4, cut));
    auto s3 = pad.seal(5, as_bytes(track));
    REQUIRE(s3);
    (*s3)[0] ^= 0x01;
    CHECK_FALSE(host->open(5, *s3));
  }
}

TEST_CASE("p2pe keys of another KSN or BDK do not open a sealed value", "[p2pe]") {
  auto pad = aes_pad();
  auto ksn1 = pad.begin_transaction();
  REQUIRE(ksn1);
  auto sealed = pad.seal(1, as_bytes(std::string("4111111111111111=30121010000000000")));
  REQUIRE(sealed);
  auto ksn2 = pad.begin_transaction();
  REQUIRE(ksn2);
  auto other_ksn = p2pe::host_keys::derive(hex(aes_bdk), *ksn2);
  REQUIRE(other_ksn);
  CHECK_FALSE(other_ksn->open(1, *sealed));
  auto other_bdk = p2pe::host_keys::derive(hex("00112233445566778899AABBCCDDEEFF"), *ksn1);
  REQUIRE(other_bdk);
  CHECK_FALSE(other_bdk->open(1, *sealed));
}

TEST_CASE("p2pe counters follow X9.24: skip values with too many one-bits, end when none is left", "[p2pe]") {
  using p2pe::next_counter;
  CHECK(next_counter(dukpt_kind::tdes, 0) == 1u);
  // The A.4 rollover sequence: 0x0FFC00 (10 ones) advances to 0x100000.
  CHECK(next_counter(dukpt_kind::tdes, 0x0FF800) == 0x0FF801u);
  CHECK(next_counter(dukpt_kind::tdes, 0x0FFC00) == 0x100000u);
  CHECK(next_counter(dukpt_kind::tdes, 0x1FF800) == std::nullopt);
  CHECK(next_counter(dukpt_kind::aes, 0xFFFF0000) == std::nullopt);
  CHECK(next_counter(dukpt_kind::aes, 0x0000FFFF) == 0x00010000u);
  // 2^21 - 1 values below the top, with at most 10 ones: sum of C(21, r), r = 1..10.
  CHECK(p2pe::counters_left(dukpt_kind::tdes, 0) == 1048575u);
  CHECK(p2pe::counters_left(dukpt_kind::tdes, 1) == 1048574u);
  CHECK(p2pe::counters_left(dukpt_kind::tdes, 0x1FF800) == 0u);
  CHECK(p2pe::counters_left(dukpt_kind::aes, 0xFFFF0000) == 0u);
  // Walking the last few TDES counters reaches exhaustion exactly when counters_left says.
  std::uint32_t c = 0x1FF7FE;
  std::uint64_t steps = 0;
  const auto left = p2pe::counters_left(dukpt_kind::tdes, c);
  while (auto n = next_counter(dukpt_kind::tdes, c)) {
    c = *n;
    ++steps;
  }
  CHECK(steps == left);
  // The originator stops with a clear error instead of reusing a key.
  auto o =
      p2pe::originator::create(dukpt_kind::tdes, secure_bytes(hex(tdes_ipek)), hex("FFFF9876543210FFF800"));
  REQUIRE(o);
  auto r = o->begin_transaction();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "p2pe.exhausted");
}
