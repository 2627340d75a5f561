// PIN entry, offline PIN, chip APDU pass-through and P2PE through pad_session with a fake
// device (keys, card reader, ICC) and a hand-driven clock: get_pin's keys and deadlines, the
// VERIFY bytes the pad builds (plaintext and RSA-enciphered, checked by decrypting with a key
// made here), T=0 handling, apdu_script's stop rule and tap time, sealed values opened with
// eftd::p2pe::host_keys from the public DUKPT test BDKs (test-vectors.md §1, §2), and the pad's
// key files and counter state. Only derived or public-vector values are ever printed.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "eftd/core/p2pe.hpp"
#include "eftd/core/tr31.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/pad_keys.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/virtual_pad.hpp"
#include "pad_test_util.hpp"

using namespace eftd::padsim;
using namespace eftd::pad;
using namespace std::chrono_literals;
using pad_test::hx;
using pad_test::secret;
using pad_test::without_length;

namespace {

// Public DUKPT test vectors (test-vectors.md §1 TDES, §2 AES-128).
constexpr std::string_view tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";
constexpr std::string_view tdes_ipek = "6AC292FAA1315B4D858AB3A3D7D5933A";
constexpr std::string_view tdes_ksn0 = "FFFF9876543210E00000";
constexpr std::string_view aes_bdk = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
constexpr std::string_view aes_ik = "1273671EA26AC29AFA4D1084127652A1";
constexpr std::string_view aes_ksn0 = "123456789012345600000000";

// Visa test card (not a real card).
constexpr std::string_view test_track2 = "4761739001010119=29122011143804489";
constexpr std::string_view test_pan = "4761739001010119";

std::string text_of(const eftd::secure_bytes& b) {
  return {reinterpret_cast<const char*>(b.view().data()), b.size()};
}

pad_keys both_keys() {
  pad_keys k;
  REQUIRE(k.add(eftd::p2pe::dukpt_kind::tdes, eftd::secure_bytes(hx(tdes_ipek)), hx(tdes_ksn0)).has_value());
  REQUIRE(k.add(eftd::p2pe::dukpt_kind::aes, eftd::secure_bytes(hx(aes_ik)), hx(aes_ksn0)).has_value());
  return k;
}

eftd::p2pe::host_keys host_for(eftd::byte_view ksn) {
  auto h = eftd::p2pe::host_keys::derive(hx(ksn.size() == 10 ? tdes_bdk : aes_bdk), ksn);
  REQUIRE(h.has_value());
  return std::move(*h);
}

// A chip card: answers from a function, counts power cycles, advances the test clock per APDU.
struct fake_icc final : icc {
  std::function<eftd::bytes(eftd::byte_view)> answer = [](eftd::byte_view) { return hx("9000"); };
  std::vector<eftd::bytes> seen;
  eftd::bytes atr_bytes = hx("3B6800000073C84013009000");
  bool mute = false, powered = false;
  int power_ons = 0, power_offs = 0;
  std::function<void()> on_transmit;

  eftd::result<eftd::bytes> power_on() override {
    ++power_ons;
    if (mute) return eftd::make_error("padsim.icc_mute", "the chip does not answer");
    powered = true;
    return atr_bytes;
  }
  eftd::result<eftd::bytes> transmit(eftd::byte_view capdu) override {
    if (!powered) return eftd::make_error("padsim.icc_not_powered", "not powered");
    seen.emplace_back(capdu.begin(), capdu.end());
    if (on_transmit) on_transmit();
    return answer(capdu);
  }
  void power_off() override {
    powered = false;
    ++power_offs;
  }
};

// Display, keypad and card reader of a test pad.
struct fake_pad final : display_device, keypad, card_reader {
  std::vector<display> shown;
  std::deque<std::uint8_t> typed;
  std::size_t beeps = 0;
  std::optional<presented_card> card;  // presented by every read (copied)
  std::vector<read_card> reads;

  void show(const display& d) override { shown.push_back(d); }
  bool beep(std::uint8_t count, std::uint16_t) override {
    beeps += count;
    return true;
  }
  std::optional<std::uint8_t> poll_key(pad_clock::time_point) override {
    if (typed.empty()) return std::nullopt;
    auto k = typed.front();
    typed.pop_front();
    return k;
  }
  std::variant<presented_card, reader_failure> read(const read_card& r) override {
    reads.push_back(r);
    if (!card) return reader_failure{pad_error_code::timeout, "no card presented"};
    return *card;
  }
  void type(std::string_view keys_typed) {
    for (char c : keys_typed) {
      if (c == 'E')
        typed.push_back(keys::enter);
      else if (c == 'C')
        typed.push_back(keys::clear);
      else if (c == 'X')
        typed.push_back(keys::cancel);
      else
        typed.push_back(static_cast<std::uint8_t>(c));
    }
  }
  std::string last_screen() const {
    if (shown.empty()) return {};
    std::string s;
    for (const auto& l : shown.back().lines) s += l + "|";
    return s;
  }
};

presented_card stripe_card() {
  presented_card c;
  c.mode = entry_mode::magstripe;
  c.track2 = secret(test_track2);
  c.pan = secret(test_pan);
  return c;
}

presented_card chip_card(std::shared_ptr<fake_icc> chip, entry_mode mode = entry_mode::chip) {
  presented_card c;
  c.mode = mode;
  c.pan = secret(test_pan);
  c.chip = std::move(chip);
  return c;
}

// Fixed randomness: PIN blocks and VERIFY padding are reproducible.
struct counting_random final : eftd::random_source {
  std::uint8_t next = 0x40;
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = next++;
  }
};

struct fixture {
  fake_pad hw;
  pad_keys keys;
  counting_random rng;
  pad_identity id{"P01", "VP-0001"};
  pad_session session{id, hw, hw, hw};
  std::uint32_t server_seq = 0;
  pad_clock::time_point t0 = pad_clock::now();
  pad_clock::time_point clock_now = t0;

  explicit fixture(bool with_keys = true) {
    if (with_keys) keys = both_keys();
    session.set_keys(&keys);
    session.set_random(rng);
    session.set_clock([this] { return clock_now; });
    auto h = decode_body(without_length(session.start()));
    REQUIRE(h.has_value());
    auto out = session.on_bytes(encode(envelope{++server_seq, h->seq, hello_ack{true, "eftd", ""}}), t0);
    REQUIRE(out.has_value());
    REQUIRE(session.accepted());
  }

  std::vector<envelope> send(message m, std::chrono::milliseconds at = 0ms) {
    auto out = session.on_bytes(encode(envelope{++server_seq, 0, std::move(m)}), t0 + at);
    REQUIRE(out.has_value());
    return decode_all(out->send);
  }
  std::vector<envelope> tick(std::chrono::milliseconds at) {
    return decode_all(session.on_tick(t0 + at).send);
  }

  // The one reply to a command, of type T.
  template <class T>
  T one(message m, std::chrono::milliseconds at = 0ms) {
    auto r = send(std::move(m), at);
    REQUIRE(r.size() == 1);
    CHECK(r[0].ref == server_seq);
    const auto* v = std::get_if<T>(&r[0].body);
    if (v == nullptr) FAIL("reply was " << describe(r[0]));
    return *v;
  }
  std::uint16_t error(message m, std::chrono::milliseconds at = 0ms) {
    return one<pad_error>(std::move(m), at).code;
  }

  static std::vector<envelope> decode_all(const std::vector<eftd::bytes>& frames) {
    std::vector<envelope> v;
    for (const auto& fr : frames) {
      auto d = decode_body(without_length(fr));
      REQUIRE(d.has_value());
      v.push_back(std::move(*d));
    }
    return v;
  }
};

constexpr auto code_timeout = static_cast<std::uint16_t>(pad_error_code::timeout);
constexpr auto code_cancelled = static_cast<std::uint16_t>(pad_error_code::cancelled);
constexpr auto code_no_card = static_cast<std::uint16_t>(pad_error_code::no_card);
constexpr auto code_hardware = static_cast<std::uint16_t>(pad_error_code::hardware);
constexpr auto code_unsupported = static_cast<std::uint16_t>(pad_error_code::unsupported);
constexpr auto code_bad_request = static_cast<std::uint16_t>(pad_error_code::bad_request);

get_pin pin_request(std::uint8_t format = 4, bool bypass = false) {
  return get_pin{12500, "PLN", format, 4, 12, bypass, 30000, {"Enter PIN"}};
}

// The clear PIN in a pin_entered, recovered on the host side (test-only check).
std::string host_pin(const pin_entered& p) {
  auto h = host_for(p.ksn);
  auto pin = h.open_pin(p.pin_block.view(), test_pan);
  REQUIRE(pin.has_value());
  return std::string(pin->reveal());
}

// ---- RSA test key for the enciphered offline PIN ----------------------------------------------
struct rsa_key {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, EVP_PKEY_free};
  eftd::bytes n, e;

  rsa_key() {
    key.reset(EVP_RSA_gen(1024));
    REQUIRE(key != nullptr);
    n = param(OSSL_PKEY_PARAM_RSA_N);
    e = param(OSSL_PKEY_PARAM_RSA_E);
  }
  eftd::bytes param(const char* name) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key.get(), name, &bn) == 1);
    eftd::bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, out.data());
    BN_free(bn);
    return out;
  }
  eftd::bytes decrypt_raw(eftd::byte_view c) {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(key.get(), nullptr),
                                                                    EVP_PKEY_CTX_free);
    REQUIRE(EVP_PKEY_decrypt_init(ctx.get()) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) == 1);
    std::size_t len = 0;
    REQUIRE(EVP_PKEY_decrypt(ctx.get(), nullptr, &len, c.data(), c.size()) == 1);
    eftd::bytes out(len);
    REQUIRE(EVP_PKEY_decrypt(ctx.get(), out.data(), &len, c.data(), c.size()) == 1);
    out.resize(len);
    return out;
  }
};

}  // namespace

// ---- read_card and P2PE ----------------------------------------------------------------------

TEST_CASE("read_card with DUKPT keys: sealed track 2 under a new KSN each time", "[pad][p2pe]") {
  fixture f;
  f.hw.card = stripe_card();
  auto first = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  CHECK(first.track2.empty());  // never in the clear with a key
  CHECK(eftd::to_hex(first.ksn) == "123456789012345600000001");
  auto h = host_for(first.ksn);
  auto opened = h.open(1, first.sealed_track2.view());
  REQUIRE(opened.has_value());
  CHECK((text_of(*opened) == test_track2));

  auto second = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  CHECK(eftd::to_hex(second.ksn) == "123456789012345600000002");
  CHECK_FALSE(second.sealed_track2 == first.sealed_track2);
  auto h2 = host_for(second.ksn);
  auto opened2 = h2.open(1, second.sealed_track2.view());
  REQUIRE(opened2.has_value());
  CHECK((text_of(*opened2) == test_track2));

  // get_status reports the keys' real KSNs and counters (TDES first).
  auto st = f.one<pad_status>(get_status{1000});
  REQUIRE(st.ksns.size() == 2);
  CHECK(eftd::to_hex(st.ksns[0]) == "FFFF9876543210E00002");
  CHECK(eftd::to_hex(st.ksns[1]) == "123456789012345600000002");
  CHECK(st.dukpt_counters == std::vector<std::uint32_t>{2, 2});
}

TEST_CASE("read_card without keys sends the clear track 2 (development only)", "[pad][p2pe]") {
  fixture f(false);
  f.hw.card = stripe_card();
  auto c = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  CHECK((text_of(c.track2) == test_track2));
  CHECK(c.ksn.empty());
  CHECK(c.sealed_track2.empty());
}

TEST_CASE("read_card of a chip card powers it: mode chip, ATR, no track 2", "[pad][chip]") {
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  f.hw.card = chip_card(chip);
  auto c = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  CHECK(c.mode == entry_mode::chip);
  CHECK(eftd::to_hex(c.atr) == "3B6800000073C84013009000");
  CHECK(c.track2.empty());
  CHECK(c.sealed_track2.empty());
  CHECK(eftd::to_hex(c.ksn) == "123456789012345600000001");
  CHECK(chip->powered);
  CHECK(f.session.card_powered());
}

TEST_CASE("a mute chip falls back to the stripe: mode 4 and fallback", "[pad][chip]") {
  for (bool with_keys : {false, true}) {
    INFO("keys " << with_keys);
    fixture f(with_keys);
    auto chip = std::make_shared<fake_icc>();
    chip->mute = true;
    auto card = chip_card(chip);
    card.track2 = secret(test_track2);
    f.hw.card = card;
    auto c = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
    CHECK(c.mode == entry_mode::fallback_magstripe);
    CHECK(c.fallback);
    CHECK(c.atr.empty());
    CHECK(chip->power_ons == 1);
    if (with_keys) {
      auto h = host_for(c.ksn);
      auto opened = h.open(1, c.sealed_track2.view());
      REQUIRE(opened.has_value());
      CHECK((text_of(*opened) == test_track2));
    } else {
      CHECK((text_of(c.track2) == test_track2));
    }
    CHECK(f.hw.last_screen() == "Chip error|Swipe card|");
    // The fallback card has no chip for APDUs.
    CHECK(f.error(apdu{hx("00A4040000"), 1000}) == code_no_card);
  }
  // A mute contactless card (or a chip card without stripe): hardware error.
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  chip->mute = true;
  f.hw.card = chip_card(chip, entry_mode::contactless);
  auto e = f.one<pad_error>(read_card{100, "PLN", 7, 1000, {}});
  CHECK(e.code == code_hardware);
  CHECK(e.text == "chip error");
}

// ---- get_pin ---------------------------------------------------------------------------------

TEST_CASE("get_pin: ISO 4 under AES DUKPT, bound to the card's PAN, digits shown as stars", "[pad][pin]") {
  fixture f;
  f.hw.card = stripe_card();
  auto c = f.one<card_read>(read_card{12500, "PLN", 7, 1000, {}});
  f.hw.type("1234E");
  auto p = f.one<pin_entered>(pin_request(4));
  CHECK_FALSE(p.bypassed);
  CHECK(p.pin_block.size() == 16);
  CHECK(p.ksn == c.ksn);  // same card, same transaction
  CHECK(host_pin(p) == "1234");
  // The screens: prompt, amount, then one more star per digit; never a digit of the PIN.
  REQUIRE(f.hw.shown.size() >= 5);
  CHECK(f.hw.shown[0].lines == std::vector<std::string>{"Enter PIN", "125.00 PLN", ""});
  CHECK(f.hw.shown.back().lines.back() == "****");
  for (const auto& d : f.hw.shown)
    for (const auto& l : d.lines) CHECK((l.find_first_of("1234") == std::string::npos || l == "125.00 PLN"));
}

TEST_CASE("get_pin: ISO 0 under TDES DUKPT", "[pad][pin]") {
  fixture f;
  f.hw.card = stripe_card();
  (void)f.one<card_read>(read_card{12500, "PLN", 7, 1000, {}});
  f.hw.type("987654E");
  auto p = f.one<pin_entered>(pin_request(0));
  CHECK(p.pin_block.size() == 8);
  CHECK(eftd::to_hex(p.ksn) == "FFFF9876543210E00001");
  CHECK(host_pin(p) == "987654");
}

TEST_CASE("get_pin: clear deletes one digit, too few digits beep and wait", "[pad][pin]") {
  fixture f;
  f.hw.card = stripe_card();
  (void)f.one<card_read>(read_card{12500, "PLN", 7, 1000, {}});
  f.hw.type("129C34E");  // 1 2 9, clear -> 1 2, 3 4 -> 1234
  CHECK(host_pin(f.one<pin_entered>(pin_request())) == "1234");

  f.hw.type("12E");  // two digits and enter: beep, still waiting
  auto r = f.send(pin_request());
  CHECK(r.empty());
  CHECK(f.hw.beeps == 1);
  CHECK(f.session.waiting());
  f.hw.type("56E");
  auto done = f.tick(100ms);
  REQUIRE(done.size() == 1);
  CHECK(host_pin(std::get<pin_entered>(done[0].body)) == "1256");

  // Digits beyond max_digits are ignored.
  f.hw.type("1234567E");
  auto g = pin_request();
  g.max_digits = 5;
  CHECK(host_pin(f.one<pin_entered>(g)) == "12345");
}

TEST_CASE("get_pin bypass: allowed when asked for, else enter with no digits waits", "[pad][pin]") {
  fixture f;
  f.hw.card = stripe_card();
  (void)f.one<card_read>(read_card{12500, "PLN", 7, 1000, {}});
  f.hw.type("E");
  auto p = f.one<pin_entered>(pin_request(4, true));
  CHECK(p.bypassed);
  CHECK(p.pin_block.empty());
  CHECK(p.ksn.empty());

  f.hw.type("E");
  CHECK(f.send(pin_request(4, false)).empty());
  CHECK(f.hw.beeps == 1);
  // Nothing more typed: timeout exactly at the deadline.
  CHECK(f.tick(29999ms).empty());
  auto t = f.tick(30000ms);
  REQUIRE(t.size() == 1);
  CHECK(std::get<pad_error>(t[0].body).code == code_timeout);
}

TEST_CASE("get_pin: cancel key, cancel command, no card, no key, bad request", "[pad][pin]") {
  fixture f;
  // Before any card: no_card.
  CHECK(f.error(pin_request()) == code_no_card);
  f.hw.card = stripe_card();
  (void)f.one<card_read>(read_card{12500, "PLN", 7, 1000, {}});
  f.hw.type("12X");
  CHECK(f.error(pin_request()) == code_cancelled);
  CHECK_FALSE(f.session.waiting());

  CHECK(f.send(pin_request()).empty());
  auto r = f.send(cancel{});
  REQUIRE(r.size() == 2);
  CHECK(std::get<pad_error>(r[0].body).code == code_cancelled);
  CHECK(std::holds_alternative<ack>(r[1].body));

  // While PIN entry waits, other commands are busy.
  CHECK(f.send(pin_request()).empty());
  CHECK(f.error(apdu{hx("00A4040000"), 1000}) == static_cast<std::uint16_t>(pad_error_code::busy));
  (void)f.send(cancel{});

  CHECK(f.error(get_pin{1, "PLN", 2, 4, 12, false, 1000, {}}) == code_bad_request);  // format 2
  CHECK(f.error(get_pin{1, "PLN", 4, 8, 6, false, 1000, {}}) == code_bad_request);   // min > max

  // A pad with only an AES key cannot make an ISO 0 block.
  fixture aes_only(false);
  REQUIRE(aes_only.keys.add(eftd::p2pe::dukpt_kind::aes, eftd::secure_bytes(hx(aes_ik)), hx(aes_ksn0))
              .has_value());
  aes_only.hw.card = stripe_card();
  (void)aes_only.one<card_read>(read_card{1, "PLN", 7, 1000, {}});
  CHECK(aes_only.error(pin_request(0)) == code_unsupported);
  // And a pad without any key makes no PIN block at all.
  fixture none(false);
  none.hw.card = stripe_card();
  (void)none.one<card_read>(read_card{1, "PLN", 7, 1000, {}});
  CHECK(none.error(pin_request(4)) == code_unsupported);
}

// ---- offline PIN -----------------------------------------------------------------------------

TEST_CASE("offline_pin plaintext: the pad sends VERIFY with the format 2 block", "[pad][pin][chip]") {
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  chip->answer = [](eftd::byte_view c) {
    // Right PIN 1234: 9000; anything else: 63C2.
    return eftd::to_hex(c) == "0020008008241234FFFFFFFFFF" ? hx("9000") : hx("63C2");
  };
  f.hw.card = chip_card(chip);
  CHECK(f.error(offline_pin{1, {}, {}, {}, 4, 12, false, 1000, {}, {}}) == code_no_card);  // not yet read
  (void)f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});

  f.hw.type("1234E");
  auto ok = f.one<offline_pin_result>(offline_pin{1, {}, {}, {}, 4, 12, false, 30000, {}, 3});
  CHECK(ok.sw == 0x9000);
  CHECK_FALSE(ok.bypassed);
  REQUIRE(chip->seen.size() == 1);
  CHECK(chip->seen[0].size() == 13);

  f.hw.type("1235E");
  auto wrong = f.one<offline_pin_result>(offline_pin{1, {}, {}, {}, 4, 12, false, 30000, {}, 2});
  CHECK(wrong.sw == 0x63C2);
  // tries_left <= 2 is shown.
  bool shown = false;
  for (const auto& d : f.hw.shown)
    for (const auto& l : d.lines) shown = shown || l == "2 tries left";
  CHECK(shown);

  f.hw.type("E");
  auto bypass = f.one<offline_pin_result>(offline_pin{1, {}, {}, {}, 4, 12, true, 30000, {}, {}});
  CHECK(bypass.bypassed);
  CHECK(bypass.sw == 0);
  CHECK(chip->seen.size() == 2);  // no VERIFY for a bypass

  // Enciphered without the card's key: bad_request (validate()).
  CHECK(f.error(offline_pin{2, {}, {}, {}, 4, 12, false, 30000, {}, {}}) == code_bad_request);
}

TEST_CASE("offline_pin enciphered: RSA(7F || format 2 block || challenge || random)", "[pad][pin][chip]") {
  rsa_key k;
  REQUIRE(k.n.size() == 128);
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  f.hw.card = chip_card(chip);
  (void)f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  const auto challenge = hx("0123456789ABCDEF");
  f.hw.type("4321E");
  auto r = f.one<offline_pin_result>(offline_pin{2, k.n, k.e, challenge, 4, 12, false, 30000, {}, {}});
  CHECK(r.sw == 0x9000);
  REQUIRE(chip->seen.size() == 1);
  const auto& v = chip->seen[0];
  REQUIRE(v.size() == 5 + 128);
  CHECK(eftd::to_hex(eftd::byte_view(v).first(5)) == "0020008880");
  auto plain = k.decrypt_raw(eftd::byte_view(v).subspan(5));
  REQUIRE(plain.size() == 128);
  CHECK(plain[0] == 0x7F);
  CHECK(eftd::to_hex(eftd::byte_view(plain).subspan(1, 8)) == "244321FFFFFFFFFF");
  CHECK(eftd::to_hex(eftd::byte_view(plain).subspan(9, 8)) == "0123456789ABCDEF");
  // The rest is the pad's random padding (the test's counting source).
  CHECK(plain[17] == 0x40);
  CHECK(plain[127] == static_cast<std::uint8_t>(0x40 + 110));
}

// ---- APDU pass-through -----------------------------------------------------------------------

TEST_CASE("power_on, apdu with T=0 61xx and 6Cxx handling, power_off", "[pad][chip]") {
  fixture f(false);  // clear R-APDUs: easier to compare; sealing is tested below
  auto chip = std::make_shared<fake_icc>();
  const auto fci = hx("6F1A840E315041592E5359532E4444463031A5088801015F2D02656E");
  chip->answer = [&](eftd::byte_view c) {
    const auto h = eftd::to_hex(c);
    if (h.starts_with("00A40400")) return hx("611C");  // T=0: 28 bytes wait
    if (h == "00C000001C") {
      auto r = fci;
      r.push_back(0x90);
      r.push_back(0x00);
      return r;
    }
    if (h == "00B2010C00") return hx("6C05");  // wrong Le
    if (h == "00B2010C05") return hx("70035A01019000");
    return hx("6D00");
  };
  CHECK(f.error(power_on{2, 1000}) == code_no_card);
  f.hw.card = chip_card(chip);
  (void)f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  CHECK(f.error(power_on{3, 1000}) == code_no_card);  // not at the contactless interface
  auto a = f.one<atr>(power_on{2, 1000});
  CHECK(eftd::to_hex(a.value) == "3B6800000073C84013009000");

  auto sel = f.one<apdu_response>(apdu{hx("00A404000E315041592E5359532E444446303100"), 1000});
  CHECK(sel.sealed.empty());
  CHECK(eftd::to_hex(sel.rapdu.view()) == eftd::to_hex(fci) + "9000");
  REQUIRE(chip->seen.size() == 2);
  CHECK(eftd::to_hex(chip->seen[1]) == "00C000001C");

  auto rec = f.one<apdu_response>(apdu{hx("00B2010C00"), 1000});
  CHECK(eftd::to_hex(rec.rapdu.view()) == "70035A01019000");
  CHECK(eftd::to_hex(chip->seen.back()) == "00B2010C05");

  auto other = f.one<apdu_response>(apdu{hx("80CA9F3600"), 1000});
  CHECK(eftd::to_hex(other.rapdu.view()) == "6D00");

  CHECK(std::holds_alternative<ack>(f.send(power_off{1000})[0].body));
  CHECK_FALSE(chip->powered);
  CHECK(f.error(apdu{hx("00A4040000"), 1000}) == code_no_card);
  // A card that keeps answering 61xx does not hold the pad in a loop.
  (void)f.one<atr>(power_on{2, 1000});
  chip->answer = [](eftd::byte_view) { return hx("6101"); };
  CHECK(f.error(apdu{hx("00A4040000"), 1000}) == code_hardware);
}

TEST_CASE("apdu with keys: R-APDUs sealed as consecutive items of the card's KSN", "[pad][chip][p2pe]") {
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  chip->answer = [](eftd::byte_view c) {
    return eftd::to_hex(c).starts_with("00B2") ? hx("70105A0847617390010101195F24032912319000") : hx("9000");
  };
  f.hw.card = chip_card(chip);
  auto c = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  auto h = host_for(c.ksn);
  for (std::uint16_t item = 1; item <= 2; ++item) {
    auto r = f.one<apdu_response>(apdu{hx("00B2010C00"), 1000});
    CHECK(r.rapdu.empty());
    CHECK(r.ksn == c.ksn);
    REQUIRE(r.item.has_value());
    CHECK(*r.item == item);
    auto opened = h.open(*r.item, r.sealed.view());
    REQUIRE(opened.has_value());
    CHECK((opened->view().size() == 20 && opened->view()[18] == 0x90));
  }
}

TEST_CASE("apdu_script: stop rules, sealed items, elapsed time", "[pad][chip][p2pe]") {
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  // Every APDU takes the card 40 ms; the second one fails.
  chip->on_transmit = [&] { f.clock_now += 40ms; };
  chip->answer = [](eftd::byte_view c) { return c[1] == 0xB2 && c[2] == 2 ? hx("6A83") : hx("AA9000"); };
  f.hw.card = chip_card(chip);
  auto c = f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  const std::vector<eftd::bytes> script{hx("00B2010C00"), hx("00B2020C00"), hx("00B2030C00")};

  auto all = f.one<script_result>(apdu_script{script, 0, 1000, 0});
  CHECK(all.sealed.size() == 3);
  CHECK(all.rapdus.empty());
  CHECK(all.elapsed_ms == 120);
  CHECK(all.ksn == c.ksn);
  CHECK(all.atr.empty());
  REQUIRE(all.first_item.has_value());
  CHECK(*all.first_item == 1);
  auto h = host_for(c.ksn);
  std::vector<std::string> sws;
  for (std::size_t i = 0; i < all.sealed.size(); ++i) {
    auto o = h.open(static_cast<std::uint16_t>(*all.first_item + i), all.sealed[i].view());
    REQUIRE(o.has_value());
    sws.push_back(eftd::to_hex(o->view().last(2)));
  }
  CHECK(sws == std::vector<std::string>{"9000", "6A83", "9000"});

  auto stopped = f.one<script_result>(apdu_script{script, 1, 1000, 0});
  CHECK(stopped.sealed.size() == 2);  // the failing R-APDU is included, the third not sent
  CHECK(stopped.elapsed_ms == 80);
  REQUIRE(stopped.first_item.has_value());
  CHECK(*stopped.first_item == 4);  // items go on within the transaction
  CHECK(chip->seen.size() == 5);

  // A script needs a powered card (interface 0) ...
  (void)f.send(power_off{1000});
  CHECK(f.error(apdu_script{script, 0, 1000, 0}) == code_no_card);
  // ... and a well-formed request.
  CHECK(f.error(apdu_script{script, 0, 1000, 2}) == code_bad_request);
}

TEST_CASE("apdu_script interface 3: a whole contactless tap in one round trip", "[pad][chip][p2pe]") {
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  chip->atr_bytes = hx("3B8F8001804F0CA000000306030001000000006A");
  chip->on_transmit = [&] { f.clock_now += 30ms; };
  chip->answer = [](eftd::byte_view) { return hx("6F029000"); };
  f.hw.card = chip_card(chip, entry_mode::contactless);
  auto r = f.one<script_result>(
      apdu_script{{hx("00A404000E325041592E5359532E444446303100"), hx("80A8000002830000")}, 1, 500, 3});
  CHECK(eftd::to_hex(r.atr) == "3B8F8001804F0CA000000306030001000000006A");
  CHECK(r.sealed.size() == 2);
  CHECK(r.elapsed_ms == 60);
  CHECK(eftd::to_hex(r.ksn) == "123456789012345600000001");  // a tap is a new card: new KSN
  REQUIRE(r.first_item.has_value());
  CHECK(*r.first_item == 1);
  CHECK(chip->power_ons == 1);
  CHECK(chip->power_offs == 1);  // powered off after the script
  REQUIRE(f.hw.reads.size() == 1);
  CHECK(f.hw.reads[0].interfaces == static_cast<std::uint8_t>(interface_mask::contactless));
  auto h = host_for(r.ksn);
  auto o = h.open(1, r.sealed[0].view());
  REQUIRE(o.has_value());
  CHECK(eftd::to_hex(o->view()) == "6F029000");
  // The tapped card's PAN stays for an online PIN.
  f.hw.type("1234E");
  auto p = f.one<pin_entered>(pin_request());
  CHECK(host_pin(p) == "1234");
  CHECK(p.ksn == r.ksn);

  // No card in the field: the reader's timeout.
  f.hw.card.reset();
  CHECK(f.error(apdu_script{{hx("00A4040000")}, 0, 500, 3}) == code_timeout);
}

TEST_CASE("remove_card and reset forget the card and power it off", "[pad][chip]") {
  fixture f;
  auto chip = std::make_shared<fake_icc>();
  f.hw.card = chip_card(chip);
  (void)f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  REQUIRE(f.session.has_card());
  CHECK(std::holds_alternative<ack>(f.send(reset{1000}).back().body));
  CHECK_FALSE(f.session.has_card());
  CHECK_FALSE(chip->powered);
  (void)f.one<card_read>(read_card{100, "PLN", 7, 1000, {}});
  (void)f.one<ack>(remove_card{1000, {}});  // the fake reader reports no card present
  CHECK_FALSE(f.session.has_card());
  CHECK_FALSE(chip->powered);
}

TEST_CASE("virtual pad with the ICC simulator: chip profile read, SELECT PSE answered", "[pad][chip]") {
  const char* src = std::getenv("EFTD_SOURCE");
  REQUIRE(src != nullptr);
  const auto cards = std::filesystem::path(src) / "pinpad-firmware-shim" / "cards";
  auto chip_profile = load_card_profile(cards / "visa-chip-approve.toml");
  REQUIRE(chip_profile.has_value());
  std::vector<std::string> printed;
  virtual_pad pad({*chip_profile}, [&](const std::string& l) { printed.push_back(l); });
  pad_keys keys = both_keys();
  pad_session session(pad_identity{"P01", "VP-0001"}, pad, pad, pad);
  session.set_keys(&keys);
  auto h = decode_body(without_length(session.start()));
  REQUIRE(h.has_value());
  REQUIRE(session.on_bytes(encode(envelope{1, h->seq, hello_ack{true, "", ""}})).has_value());
  auto out = session.on_bytes(encode(envelope{2, 0, read_card{100, "PLN", 7, 1000, {}}}));
  REQUIRE(out.has_value());
  REQUIRE(out->send.size() == 1);
  auto c = decode_body(without_length(out->send[0]));
  REQUIRE(c.has_value());
  const auto& cr = std::get<card_read>(c->body);
  CHECK(cr.mode == entry_mode::chip);
  CHECK_FALSE(cr.atr.empty());
  out = session.on_bytes(encode(envelope{3, 0, apdu{hx("00A404000E315041592E5359532E444446303100"), 1000}}));
  REQUIRE(out.has_value());
  auto r = decode_body(without_length(out->send.at(0)));
  REQUIRE(r.has_value());
  const auto& resp = std::get<apdu_response>(r->body);
  auto host = host_for(resp.ksn);
  auto opened = host.open(*resp.item, resp.sealed.view());
  REQUIRE(opened.has_value());
  CHECK(eftd::to_hex(opened->view().last(2)) == "9000");
}

// ---- pad keys --------------------------------------------------------------------------------

TEST_CASE("pad keys: TR-31 B1 blocks, key files and the counter state across restarts", "[pad][p2pe]") {
  counting_random rng;
  const auto kbpk_tdes = hx("89E88CF7931444F334BD7547FC3F380C");
  eftd::tr31::header h;
  h.version = 'B';
  h.key_usage = "B1";
  h.algorithm = 'T';
  h.mode_of_use = 'X';
  h.optional_blocks.push_back({"KS", std::string(tdes_ksn0)});
  auto block = eftd::tr31::wrap(kbpk_tdes, h, hx(tdes_ipek), rng);
  REQUIRE(block.has_value());
  auto k = unwrap_dukpt_key(kbpk_tdes, *block);
  REQUIRE(k.has_value());
  CHECK(k->kind == eftd::p2pe::dukpt_kind::tdes);
  CHECK(eftd::to_hex(k->initial_ksn) == tdes_ksn0);
  CHECK((k->initial_key.view().size() == 16));

  // AES: the IK block gives the initial key ID; the KSN starts at counter 0.
  const auto kbpk_aes = hx("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6");
  eftd::tr31::header ha;
  ha.version = 'D';
  ha.key_usage = "B1";
  ha.algorithm = 'A';
  ha.mode_of_use = 'X';
  ha.optional_blocks.push_back({"IK", "1234567890123456"});
  auto ablock = eftd::tr31::wrap(kbpk_aes, ha, hx(aes_ik), rng);
  REQUIRE(ablock.has_value());

  // Wrong usage and a wrong KBPK are refused.
  auto hp = h;
  hp.key_usage = "P0";
  auto pblock = eftd::tr31::wrap(kbpk_tdes, hp, hx(tdes_ipek), rng);
  REQUIRE(pblock.has_value());
  CHECK(unwrap_dukpt_key(kbpk_tdes, *pblock).err().code == "padsim.key_bad_value");
  CHECK(unwrap_dukpt_key(hx("00112233445566778899AABBCCDDEEFF"), *block).err().code == "tr31.mac_mismatch");

  const auto dir = std::filesystem::temp_directory_path() / ("eftd-padkeys-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return dir / name;
  };
  const auto tdes_file =
      write("tdes.toml", "kbpk = \"" + eftd::to_hex(kbpk_tdes) + "\"\nblock = \"" + *block + "\"\n");
  const auto aes_file =
      write("aes.toml", "kbpk = \"" + eftd::to_hex(kbpk_aes) + "\"\nblock = \"" + *ablock + "\"\n");
  const auto state = dir / "state.toml";
  std::filesystem::remove(state);
  {
    auto keys = pad_keys::load({tdes_file, aes_file}, state);
    REQUIRE(keys.has_value());
    CHECK(keys->counters() == std::vector<std::uint32_t>{0, 0});
    REQUIRE(keys->begin_transaction().has_value());
    REQUIRE(keys->begin_transaction().has_value());
    CHECK(eftd::to_hex(keys->sealing_ksn()) == "123456789012345600000002");
    auto s = keys->seal(eftd::as_bytes("hello"));
    REQUIRE(s.has_value());
    CHECK(s->item == 1);
    auto host = host_for(keys->sealing_ksn());
    auto o = host.open(1, s->sealed);
    REQUIRE(o.has_value());
    CHECK(text_of(*o) == "hello");
  }
  // A restart continues after the last counter used, never reusing one.
  {
    auto keys = pad_keys::load({tdes_file, aes_file}, state);
    REQUIRE(keys.has_value());
    CHECK(keys->counters() == std::vector<std::uint32_t>{2, 2});
    REQUIRE(keys->begin_transaction().has_value());
    CHECK(eftd::to_hex(keys->ksn(eftd::p2pe::dukpt_kind::tdes)) == "FFFF9876543210E00003");
  }
  // Without a state file the counter starts from the block's KSN.
  {
    auto keys = pad_keys::load({tdes_file}, std::nullopt);
    REQUIRE(keys.has_value());
    CHECK(keys->counters() == std::vector<std::uint32_t>{0});
    CHECK_FALSE(keys->has(eftd::p2pe::dukpt_kind::aes));
  }
  // Two keys of one kind, an unknown key, bad hex: clear errors that quote no key material.
  CHECK(pad_keys::load({tdes_file, tdes_file}, std::nullopt).err().code == "padsim.key_duplicate");
  const auto typo = write("typo.toml", "kbpk = \"00\"\nblok = \"x\"\n");
  auto e = load_dukpt_key_file(typo);
  REQUIRE_FALSE(e.has_value());
  CHECK(e.err().code == "padsim.key_bad_value");
  CHECK(e.err().message.find("blok") != std::string::npos);
  const auto badhex = write("badhex.toml", "kbpk = \"XYZ1\"\nblock = \"B0\"\n");
  CHECK(load_dukpt_key_file(badhex).err().code == "padsim.key_bad_value");
  CHECK(load_dukpt_key_file(dir / "missing.toml").err().code == "padsim.key_io");
  std::filesystem::remove_all(dir);
}

TEST_CASE("raw RSA refuses data of the wrong length", "[pad][pin]") {
  CHECK(rsa_public_raw(hx("C0C1C2C3"), hx("03"), hx("0001")).err().code == "padsim.rsa");
}
