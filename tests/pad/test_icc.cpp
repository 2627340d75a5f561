// The ICC simulator (sim/include/eftd/padsim/icc.hpp) and the chip card profiles.
//
// Card data rule: R-APDUs of READ RECORD hold the PAN and track 2 equivalent, so they are
// compared as booleans (Catch then prints "false", never the bytes). Status words, FCIs, GPO
// answers and GET DATA values carry no card data and are compared as hex.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "eftd/core/tlv.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/icc.hpp"

using namespace eftd;
using namespace eftd::padsim;

namespace {

std::filesystem::path cards_dir() {
  const char* src = std::getenv("EFTD_SOURCE");
  return std::filesystem::path(src ? src : ".") / "pinpad-firmware-shim" / "cards";
}

bytes hx(std::string_view spaced) {
  std::string s;
  for (char c : spaced)
    if (c != ' ') s += c;
  auto b = from_hex(s);
  REQUIRE(b.has_value());
  return *b;
}

card_profile load(const char* file) {
  INFO(file);
  auto p = load_card_profile(cards_dir() / file);
  if (!p) FAIL(p.err().code << ": " << p.err().message);  // messages never hold card data
  return std::move(*p);
}

card_profile parse(const std::string& toml) {
  auto p = parse_card_profile(toml, "t.toml", cards_dir());
  if (!p) FAIL(p.err().code << ": " << p.err().message);
  return std::move(*p);
}

// A predictable "random" source: 01 02 03 ... so tests know the challenge.
icc_random counting_random() {
  auto next = std::make_shared<std::uint8_t>(0);
  return [next](std::span<std::uint8_t> out) {
    for (auto& b : out) b = ++*next;
  };
}

// A powered card from a profile.
struct card {
  card_profile profile;
  std::unique_ptr<icc> chip;
  bytes atr;

  explicit card(card_profile p) : profile(std::move(p)), chip(make_icc_sim(profile, counting_random())) {
    auto a = chip->power_on();
    if (!a) FAIL(a.err().code);
    atr = *a;
  }

  bytes tx(std::string_view capdu_hex) {
    auto r = chip->transmit(hx(capdu_hex));
    if (!r) FAIL(r.err().code);
    REQUIRE(r->size() >= 2);
    return *r;
  }
  bytes tx(const bytes& capdu) {
    auto r = chip->transmit(capdu);
    if (!r) FAIL(r.err().code);
    REQUIRE(r->size() >= 2);
    return *r;
  }
  // Status word of a command, as 4 hex digits.
  std::string sw(std::string_view capdu_hex) { return sw_of(tx(capdu_hex)); }

  static std::string sw_of(const bytes& r) { return to_hex(byte_view(r).subspan(r.size() - 2)); }
};

bytes data_of(const bytes& r) {
  return {r.begin(), r.end() - 2};
}

// SELECT by name (P1 04) for an ASCII name or hex AID.
std::string select_hex(std::string_view aid_hex, std::uint8_t p2 = 0x00) {
  const bytes p2_lc{p2, static_cast<std::uint8_t>(aid_hex.size() / 2)};
  return "00A404" + to_hex(p2_lc) + std::string(aid_hex) + "00";
}
std::string select_name(std::string_view name, std::uint8_t p2 = 0x00) {
  return select_hex(to_hex(as_bytes(name)), p2);
}

const tlv* find(const std::vector<tlv>& l, std::uint32_t tag) {
  return tlv_find(l, tag, true);
}

std::vector<tlv> decode(const bytes& r) {
  auto t = tlv_decode(data_of(r));
  REQUIRE(t.has_value());
  return std::move(*t);
}

// A one-application Visa chip card (offline PIN 9876) with extra lines in each table.
std::string visa_base(const std::string& card_extra, const std::string& chip_extra,
                      const std::string& app_extra, const std::string& pin = "9876") {
  return "[card]\nname = \"t\"\nkind = \"chip\"\n" + card_extra + "\n[chip]\npin = \"" + pin + "\"\n" +
         chip_extra +
         "\n[[chip.application]]\naid = \"A0000000031010\"\nlabel = \"VISA CREDIT\"\npriority = 1\n"
         "pan = \"4761739001010119\"\nexpiry = \"291231\"\n" +
         app_extra + "\n";
}

}  // namespace

TEST_CASE("every shipped chip profile loads with the records a kernel needs", "[pad][icc][profile]") {
  struct expect {
    const char* file;
    const char* kind;
    pad::entry_mode mode;
    const char* pan_suffix;  // last 4 digits only
    int tries_left;          // -1: no chip data
    std::size_t apps;
  };
  const expect files[] = {
      {"visa-chip-approve.toml", "chip", pad::entry_mode::chip, "0119", 3, 2},
      {"mc-contactless-approve.toml", "contactless", pad::entry_mode::contactless, "0434", 3, 1},
      {"chip-decline.toml", "chip", pad::entry_mode::chip, "0002", 3, 1},
      {"chip-expired.toml", "chip", pad::entry_mode::chip, "0119", 3, 1},
      {"chip-pin-blocked.toml", "chip", pad::entry_mode::chip, "0119", 0, 1},
      {"chip-fallback.toml", "chip", pad::entry_mode::chip, "0119", -1, 0},
  };
  for (const auto& f : files) {
    INFO(f.file);
    const card_profile p = load(f.file);
    CHECK(p.kind == f.kind);
    CHECK(p.mode == f.mode);
    const std::string pan(reinterpret_cast<const char*>(p.pan.view().data()), p.pan.size());
    CHECK(pan.size() == 16);
    CHECK(pan.substr(pan.size() - 4) == f.pan_suffix);
    CHECK(luhn_valid(pan));
    CHECK(p.chip_fails == (f.tries_left < 0));
    if (f.tries_left < 0) {
      CHECK_FALSE(p.chip.has_value());
      CHECK_FALSE(p.track2.empty());  // the fallback swipe
      continue;
    }
    REQUIRE(p.chip.has_value());
    CHECK(p.chip->pin_tries_left == f.tries_left);
    REQUIRE(p.chip->applications.size() == f.apps);
    for (const auto& app : p.chip->applications) {
      CHECK((app.pan == p.pan));
      // Every record the AFL names, with the tags a kernel reads.
      for (std::size_t i = 0; i < app.afl.size(); i += 4)
        for (int n = app.afl[i + 1]; n <= app.afl[i + 2]; ++n) {
          const auto* rec = [&]() -> const chip_record* {
            for (const auto& r : app.records)
              if (r.sfi == app.afl[i] >> 3 && r.number == n) return &r;
            return nullptr;
          }();
          REQUIRE(rec != nullptr);
          auto t = tlv_decode(rec->data.view());
          REQUIRE(t.has_value());
          REQUIRE(t->size() == 1);
          CHECK(t->front().tag == 0x70);
          for (std::uint32_t tag :
               {0x57u, 0x5Au, 0x5F24u, 0x5F34u, 0x8Cu, 0x8Du, 0x8Eu, 0x9F07u, 0x9F0Du, 0x9F0Eu, 0x9F0Fu}) {
            INFO("tag " << std::hex << tag);
            CHECK(find(*t, tag) != nullptr);
          }
          // 5A is the PAN in compressed numeric; 57 starts with it and a D separator.
          const tlv* a5 = find(*t, 0x5A);
          const tlv* t57 = find(*t, 0x57);
          REQUIRE(a5 != nullptr);
          REQUIRE(t57 != nullptr);
          const std::string pan_cn = to_hex(a5->value);
          CHECK((pan_cn == pan));
          CHECK((to_hex(t57->value).rfind(pan + "D", 0) == 0));
          // The stripe and the chip agree on expiry and service code (chip service code 2xx).
          const std::string t57_hex = to_hex(t57->value);
          const std::string t2(reinterpret_cast<const char*>(p.track2.view().data()), p.track2.size());
          if (!t2.empty()) CHECK((t57_hex.substr(17, 7) == t2.substr(17, 7)));
          CHECK(t57_hex[21] == '2');
          const tlv* exp = find(*t, 0x5F24);
          REQUIRE(exp != nullptr);
          const bool expired = std::string(f.file) == "chip-expired.toml";
          CHECK((to_hex(exp->value) == (expired ? "121231" : "291231")));
        }
    }
    // Each shipped card answers reset with its ATR.
    card c(p);
    CHECK(to_hex(c.atr) == (p.kind == "contactless" ? "3B80800101" : "3B6800000073C84013009000"));
  }

  // The magstripe profiles keep working and now carry their PAN.
  for (const char* f :
       {"visa-approve.toml", "mc-approve.toml", "visa-decline.toml", "expired.toml", "mc-pin.toml"}) {
    INFO(f);
    const card_profile p = load(f);
    CHECK(p.kind == "magstripe");
    CHECK_FALSE(p.chip.has_value());
    REQUIRE(p.pan.size() >= 12);
    CHECK(std::equal(p.pan.view().begin(), p.pan.view().end(), p.track2.view().begin()));
    CHECK(p.track2.view()[p.pan.size()] == '=');
  }
}

TEST_CASE("PSE selection lists the applications through READ RECORD", "[pad][icc]") {
  card c(load("visa-chip-approve.toml"));
  // 6F { 84 "1PAY.SYS.DDF01", A5 { 88 01 (directory SFI 1) } }
  const auto fci = c.tx(select_name("1PAY.SYS.DDF01"));
  CHECK(to_hex(fci) ==
        "6F15840E315041592E5359532E4444463031A503880101"
        "9000");

  // One directory record per application: 70 { 61 { 4F AID, 50 label, 87 priority } }.
  CHECK(to_hex(c.tx("00B2010C00")) ==
        "701B"
        "6119"
        "4F07A0000000031010"
        "500B56495341204352454449"
        "54"
        "870101"
        "9000");
  CHECK(to_hex(c.tx("00B2020C00")) ==
        "701D"
        "611B"
        "4F07A0000000032010"
        "500D564953412045"
        "4C454354524F4E"
        "870102"
        "9000");
  CHECK(c.sw("00B2030C00") == "6A83");
  CHECK(c.sw("00B20114"
             "00") == "6A83");  // SFI 2: no such directory file

  // A contact card has no PPSE.
  CHECK(c.sw(select_name("2PAY.SYS.DDF01")) == "6A82");
  // A card configured without a PSE: the terminal must fall back to its list of AIDs.
  card no_pse(parse(visa_base("", "pse = false", "")));
  CHECK(no_pse.sw(select_name("1PAY.SYS.DDF01")) == "6A82");
}

TEST_CASE("PPSE selection on a contactless card", "[pad][icc]") {
  card c(load("mc-contactless-approve.toml"));
  CHECK(to_hex(c.tx(select_name("2PAY.SYS.DDF01"))) ==
        "6F2F840E325041592E5359532E4444463031A51DBF0C1A6118"
        "4F07A0000000041010500A4D4153544552434152448701019000");
  CHECK(c.sw(select_name("1PAY.SYS.DDF01")) == "6A82");

  // The published PPSE answer (test-vectors.md §8), byte for byte, from an equivalent card.
  card v(
      parse("[card]\nname = \"v\"\nkind = \"contactless\"\n[chip]\npin = \"1234\"\n"
            "[[chip.application]]\naid = \"A0000000031010\"\nlabel = \"VISA DEBIT\"\npriority = 1\n"
            "pan = \"4761739001010119\"\nexpiry = \"291231\"\n"));
  CHECK(to_hex(v.tx(select_name("2PAY.SYS.DDF01"))) ==
        "6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000031010500A5649534120444542495487010190"
        "00");
}

TEST_CASE("SELECT by AID: full, partial, next occurrence, not found, blocked", "[pad][icc]") {
  card c(load("visa-chip-approve.toml"));
  // 6F { 84 AID, A5 { 50 label, 87 priority } } (no PDOL on this card).
  CHECK(to_hex(c.tx(select_hex("A0000000031010"))) ==
        "6F1B8407A0000000031010A510500B56495341204352454449548701019000");

  // Partial: RID + the first byte of the PIX matches both applications, in card order.
  auto first = c.tx(select_hex("A000000003"));
  REQUIRE(c.sw_of(first) == "9000");
  CHECK(to_hex(find(decode(first), 0x84)->value) == "A0000000031010");
  auto next = c.tx(select_hex("A000000003", 0x02));
  REQUIRE(c.sw_of(next) == "9000");
  CHECK(to_hex(find(decode(next), 0x84)->value) == "A0000000032010");
  CHECK(c.sw(select_hex("A000000003", 0x02)) == "6A82");
  CHECK(c.sw(select_hex("A0000000041010")) == "6A82");
  CHECK(c.sw(select_hex("A00000000310100001")) == "6A82");  // longer than any AID
  CHECK(c.sw("00A4040C07A000000003101000") == "6A86");      // P2 0C is not offered
  CHECK(c.sw("00A4000007A000000003101000") == "6A86");      // P1 00: select by file id

  // The PDOL travels in the FCI as 9F38.
  card mc(load("mc-contactless-approve.toml"));
  const auto fci = mc.tx(select_hex("A0000000041010"));
  REQUIRE(mc.sw_of(fci) == "9000");
  const auto fci_tlv = decode(fci);
  const tlv* pdol = find(fci_tlv, 0x9F38);
  REQUIRE(pdol != nullptr);
  CHECK(to_hex(pdol->value) == "9F02069F03069F1A0295055F2A029A039C019F3704");

  // A blocked application is still selectable (6283) but will not start a transaction.
  card b(parse(visa_base("", "", "blocked = true")));
  CHECK(b.sw(select_hex("A0000000031010")) == "6283");
  CHECK(b.sw("80A80000028300"
             "00") == "6985");
}

TEST_CASE("GET PROCESSING OPTIONS checks template 83 and increments the ATC", "[pad][icc]") {
  card c(load("visa-chip-approve.toml"));
  CHECK(c.sw("80A8000002830000") == "6985");  // no application selected
  REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
  CHECK(to_hex(c.tx("80CA9F3600")) == "9F360200019000");
  // Format 2: 77 { 82 AIP, 94 AFL }.
  CHECK(to_hex(c.tx("80A8000002830000")) ==
        "770A82021800940408010100"
        "9000");
  CHECK(to_hex(c.tx("80CA9F3600")) == "9F360200029000");
  CHECK(c.sw("80A8000002830000") == "6985");  // once per selection

  REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
  CHECK(c.sw("80A8000003830100"
             "00") == "6700");  // this card has no PDOL: 83 00 only
  CHECK(c.sw("80A80000028200"
             "00") == "6A80");                  // not template 83
  CHECK(c.sw("80A800000383020000") == "6700");  // 83 length runs past the data
  CHECK(c.sw("80A8010002830000") == "6A86");
  CHECK(c.sw("80A8000002830000") == "9000");
  CHECK(to_hex(c.tx("80CA9F3600")) == "9F360200039000");

  // The counter survives a power cycle, as on a real card.
  c.chip->power_off();
  REQUIRE(c.chip->power_on().has_value());
  CHECK(to_hex(c.tx("80CA9F3600")) == "9F360200039000");

  // PDOL of 29 bytes: 83 1D + the data; anything else is a wrong length.
  card mc(load("mc-contactless-approve.toml"));
  REQUIRE(mc.sw(select_hex("A0000000041010")) == "9000");
  CHECK(mc.sw("80A8000002830000") == "6700");
  const std::string pdol_data =
      "000000012500"
      "000000000000"
      "0616"
      "0000000000"
      "0985"
      "261122"
      "00"
      "01020304";
  CHECK(mc.sw("80A800001F831D" + pdol_data + "00") == "9000");
  CHECK(to_hex(mc.tx("80CA9F3600")) == "9F360200129000");  // atc = 17 in the profile, plus one

  // A configured answer (format 1: 80 { AIP || AFL }) comes back as it is.
  card f1(parse(visa_base("", "atc = 65534",
                          "gpo_response = \"80061800"
                          "08010100\"")));
  REQUIRE(f1.sw(select_hex("A0000000031010")) == "9000");
  CHECK(to_hex(f1.tx("80A8000002830000")) ==
        "800618000801010090"
        "00");
  REQUIRE(f1.sw(select_hex("A0000000031010")) == "9000");
  CHECK(f1.sw("80A8000002830000") == "6985");  // ATC FFFF: the card is worn out
}

TEST_CASE("READ RECORD by AFL returns the profile's records", "[pad][icc]") {
  const card_profile p = load("visa-chip-approve.toml");
  for (const auto& app : p.chip->applications) {
    card c(p);
    INFO(to_hex(app.aid));
    REQUIRE(c.sw(select_hex(to_hex(app.aid))) == "9000");
    CHECK(c.sw("00B2010C00") == "9000");  // READ RECORD works before GPO too
    const auto gpo = c.tx("80A8000002830000");
    REQUIRE(c.sw_of(gpo) == "9000");
    const auto gpo_tlv = decode(gpo);
    const tlv* afl = find(gpo_tlv, 0x94);
    REQUIRE(afl != nullptr);
    std::size_t read = 0;
    for (std::size_t i = 0; i < afl->value.size(); i += 4)
      for (int n = afl->value[i + 1]; n <= afl->value[i + 2]; ++n) {
        const bytes cmd{0x00, 0xB2, static_cast<std::uint8_t>(n),
                        static_cast<std::uint8_t>(afl->value[i] | 0x04), 0x00};
        const auto r = c.tx(cmd);
        REQUIRE(c.sw_of(r) == "9000");
        bool same = false;
        for (const auto& rec : app.records)
          if (rec.sfi == afl->value[i] >> 3 && rec.number == n)
            same = std::equal(rec.data.view().begin(), rec.data.view().end(), r.begin(), r.end() - 2);
        CHECK(same);
        ++read;
      }
    CHECK(read == 1);
    CHECK(c.sw("00B2020C00") == "6A83");
    CHECK(c.sw("00B2011400") == "6A83");  // SFI 2
    CHECK(c.sw("00B2010800") == "6A86");  // P2 low bits must be 100
    CHECK(c.sw("00B2000C00") == "6A86");  // record 0
  }
  card none(p);
  CHECK(none.sw("00B2010C00") == "6985");  // nothing selected

  // Records given in the profile are answered as written (no card data in these).
  card own(parse(visa_base("", "",
                           "afl = \"1001020118010100\"\n"
                           "[[chip.application.record]]\nsfi = 2\nnumber = 1\ndata = \"70045F340101\"\n"
                           "[[chip.application.record]]\nsfi = 2\nnumber = 2\ndata = \"70039F0700\"\n"
                           "[[chip.application.record]]\nsfi = 3\nnumber = 1\ndata = \"7000\"\n")));
  REQUIRE(own.sw(select_hex("A0000000031010")) == "9000");
  CHECK(to_hex(own.tx("80A8000002830000")) ==
        "770E8202180094081001020118010100"
        "9000");
  CHECK(to_hex(own.tx("00B2011400")) ==
        "70045F340101"
        "9000");
  CHECK(to_hex(own.tx("00B2021400")) ==
        "70039F0700"
        "9000");
  CHECK(to_hex(own.tx("00B2011C00")) ==
        "7000"
        "9000");
  CHECK(own.sw("00B2010C00") == "6A83");  // SFI 1 is not on this card
}

TEST_CASE("optional application fields reach the FCI and the built record", "[pad][icc][profile]") {
  card c(parse(visa_base("", "",
                         "confirm = true\nservice_code = \"601\"\nissuer_country = \"276\"\n"
                         "pan_sequence = \"03\"\ncvm_list = \"00000000000000001F00\"\npdol = \"9F1A02\"")));
  // 87 = 81: priority 1 with "cardholder confirmation required"; 9F38 the PDOL.
  CHECK(to_hex(c.tx(select_hex("A0000000031010"))) ==
        "6F218407A0000000031010A516500B5649534120435245444954870181"
        "9F38039F1A02"
        "9000");
  CHECK(c.sw("80A8000002830000") == "6700");  // the PDOL asks for 2 bytes
  CHECK(c.sw("80A800000483020616"
             "00") == "9000");
  const auto rec = c.tx("00B2010C00");
  REQUIRE(card::sw_of(rec) == "9000");
  const auto t = decode(rec);
  CHECK(to_hex(find(t, 0x5F30)->value) == "0601");
  CHECK(to_hex(find(t, 0x5F28)->value) == "0276");
  CHECK(to_hex(find(t, 0x5F34)->value) == "03");
  CHECK(to_hex(find(t, 0x8E)->value) == "00000000000000001F00");
  CHECK(find(t, 0x5F25) == nullptr);                                // no effective date given
  CHECK(to_hex(find(t, 0x57)->value).substr(16, 8) == "D2912601");  // PAN D YYMM service code
}

TEST_CASE("GET DATA: ATC, PIN try counter, last online ATC", "[pad][icc]") {
  card c(load("visa-chip-approve.toml"));
  CHECK(to_hex(c.tx("80CA9F3600")) == "9F360200019000");
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701039000");
  CHECK(to_hex(c.tx("80CA9F1300")) == "9F130200009000");
  CHECK(c.sw("80CA9F4F00") == "6A88");
  CHECK(c.sw("80CA9F360100"
             "00") == "6700");  // GET DATA takes no data
  card l(parse(visa_base("", "last_online_atc = 258", "")));
  CHECK(to_hex(l.tx("80CA9F1300")) == "9F130201029000");

  card blocked(load("chip-pin-blocked.toml"));
  CHECK(to_hex(blocked.tx("80CA9F1700")) == "9F1701009000");
}

TEST_CASE("plaintext offline PIN: right, wrong, counting down, blocked", "[pad][icc][pin]") {
  card c(load("visa-chip-approve.toml"));
  const std::string right =
      "002000800824"
      "1234FFFFFFFFFF";
  const std::string wrong =
      "002000800824"
      "1235FFFFFFFFFF";
  CHECK(c.sw(right) == "9000");
  CHECK(c.sw(wrong) == "63C2");
  CHECK(c.sw(wrong) == "63C1");
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701019000");
  CHECK(c.sw(right) == "9000");  // a right PIN resets the counter to the limit
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701039000");

  // Malformed blocks present no PIN: no try is counted.
  CHECK(c.sw("0020008008341234FFFFFFFFFF") == "6A80");  // format 3, not 2
  CHECK(c.sw("0020008008231234FFFFFFFFFF") == "6A80");  // 3 digits
  CHECK(c.sw("00200080082412A4FFFFFFFFFF") == "6A80");  // a non-digit
  CHECK(c.sw("0020008008241234FFFFFFFFF0") == "6A80");  // fill not F
  CHECK(c.sw("0020008007241234FFFFFFFF") == "6700");    // 7 bytes
  CHECK(c.sw("0020008108241234FFFFFFFFFF") == "6A86");
  CHECK(c.sw("0020008008241234FFFFFFFFFF00") == "6700");  // VERIFY has no Le
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701039000");

  // A longer PIN: 12 digits fill the block.
  card twelve(parse(visa_base("", "", "", "123456789012")));
  CHECK(twelve.sw("00200080082C123456789012FF") == "9000");

  CHECK(c.sw(wrong) == "63C2");
  CHECK(c.sw(wrong) == "63C1");
  CHECK(c.sw(wrong) == "63C0");  // the last try is used up
  CHECK(c.sw(right) == "6983");  // blocked from then on, even for the right PIN
  CHECK(c.sw(wrong) == "6983");
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701009000");

  card blocked(load("chip-pin-blocked.toml"));
  CHECK(blocked.sw(right) == "6983");
}

namespace {

// The public half of the shipped test key, as a terminal (the pad) would hold it.
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

pkey_ptr icc_pin_public_key() {
  std::ifstream in(cards_dir() / "keys" / "icc-pin-test.pem");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string pem = ss.str();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  pkey_ptr priv(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  REQUIRE(priv);
  std::unique_ptr<BIO, decltype(&BIO_free)> pub_bio(BIO_new(BIO_s_mem()), &BIO_free);
  REQUIRE(PEM_write_bio_PUBKEY(pub_bio.get(), priv.get()) == 1);
  pkey_ptr pub(PEM_read_bio_PUBKEY(pub_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  REQUIRE(pub);
  return pub;
}

// EMV Book 2 7.1: 7F || format 2 PIN block || ICC challenge || pad, then raw RSA with the
// ICC PIN public key. Returns the VERIFY 00 20 00 88 command.
bytes enciphered_verify(EVP_PKEY* pub, std::string_view pin_block_hex, const bytes& challenge,
                        std::uint8_t header = 0x7F) {
  const auto n = static_cast<std::size_t>(EVP_PKEY_get_size(pub));
  const auto block = hx(pin_block_hex);
  REQUIRE(block.size() == 8);
  REQUIRE(challenge.size() == 8);
  bytes plain(n);
  for (std::size_t i = 17; i < n; ++i) plain[i] = static_cast<std::uint8_t>(0xA5 ^ i);
  plain[0] = header;
  std::copy(block.begin(), block.end(), plain.begin() + 1);
  std::copy(challenge.begin(), challenge.end(), plain.begin() + 9);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(pub, nullptr),
                                                                  &EVP_PKEY_CTX_free);
  REQUIRE(ctx);
  REQUIRE(EVP_PKEY_encrypt_init(ctx.get()) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) == 1);
  bytes out(n);
  std::size_t len = n;
  REQUIRE(EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plain.data(), plain.size()) == 1);
  REQUIRE(len == n);
  bytes cmd(5 + n);
  const std::uint8_t header_bytes[] = {0x00, 0x20, 0x00, 0x88, static_cast<std::uint8_t>(n)};
  std::copy(std::begin(header_bytes), std::end(header_bytes), cmd.begin());
  std::copy(out.begin(), out.end(), cmd.begin() + 5);
  return cmd;
}

}  // namespace

TEST_CASE("enciphered offline PIN with the ICC PIN key and the card's challenge", "[pad][icc][pin]") {
  const auto pub = icc_pin_public_key();
  REQUIRE(EVP_PKEY_get_bits(pub.get()) == 1024);
  card c(load("visa-chip-approve.toml"));
  REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");

  // The challenge is what the card's random source gave (counting bytes in this test).
  auto ch = c.tx("0084000000");
  REQUIRE(c.sw_of(ch) == "9000");
  CHECK(to_hex(data_of(ch)) == "0102030405060708");
  CHECK(c.sw_of(c.tx(enciphered_verify(pub.get(), "241234FFFFFFFFFF", data_of(ch)))) == "9000");

  // The same cryptogram again: the challenge answered one VERIFY only.
  const bytes replay = enciphered_verify(pub.get(), "241234FFFFFFFFFF", data_of(ch));
  CHECK(c.sw_of(c.tx(replay)) == "6985");
  // ... and with a fresh challenge the old cryptogram no longer matches (no try counted).
  auto ch2 = c.tx("0084000008");
  REQUIRE(c.sw_of(ch2) == "9000");
  CHECK(to_hex(data_of(ch2)) == "090A0B0C0D0E0F10");
  CHECK(c.sw_of(c.tx(replay)) == "6A80");
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701039000");

  // Wrong PIN under a valid challenge counts a try.
  auto ch3 = data_of(c.tx("0084000000"));
  CHECK(c.sw_of(c.tx(enciphered_verify(pub.get(), "240000FFFFFFFFFF", ch3))) == "63C2");
  // Wrong header byte: not a PIN encipherment block.
  auto ch4 = data_of(c.tx("0084000000"));
  CHECK(c.sw_of(c.tx(enciphered_verify(pub.get(), "241234FFFFFFFFFF", ch4, 0x6F))) == "6A80");
  // A valid envelope around a malformed PIN block.
  auto ch5 = data_of(c.tx("0084000000"));
  CHECK(c.sw_of(c.tx(enciphered_verify(pub.get(), "341234FFFFFFFFFF", ch5))) == "6A80");
  // Right PIN resets the counter.
  auto ch6 = data_of(c.tx("0084000000"));
  CHECK(c.sw_of(c.tx(enciphered_verify(pub.get(), "241234FFFFFFFFFF", ch6))) == "9000");
  CHECK(to_hex(c.tx("80CA9F1700")) == "9F1701039000");

  // Length checks: the cryptogram is exactly the modulus; GET CHALLENGE answers 8 bytes.
  auto ch7 = data_of(c.tx("0084000000"));
  bytes short_cmd = enciphered_verify(pub.get(), "241234FFFFFFFFFF", ch7);
  short_cmd.pop_back();
  short_cmd[4] = static_cast<std::uint8_t>(short_cmd.size() - 5);
  CHECK(c.sw_of(c.tx(short_cmd)) == "6700");
  CHECK(c.sw("0084000004") == "6700");
  CHECK(c.sw("00840000") == "6700");
  CHECK(c.sw("0084010000") == "6A86");
  // A value not below the modulus cannot be deciphered.
  auto ch8 = data_of(c.tx("0084000000"));
  (void)ch8;
  bytes all_ff(5 + 128, 0xFF);
  all_ff[0] = 0x00;
  all_ff[1] = 0x20;
  all_ff[2] = 0x00;
  all_ff[3] = 0x88;
  all_ff[4] = 0x80;
  CHECK(c.sw_of(c.tx(all_ff)) == "6A80");

  // No challenge asked for: conditions of use not satisfied.
  card fresh(load("visa-chip-approve.toml"));
  CHECK(fresh.sw_of(fresh.tx(enciphered_verify(pub.get(), "241234FFFFFFFFFF", hx("0102030405060708")))) ==
        "6985");

  // A card without an ICC PIN key does not offer enciphered PIN.
  card nokey(load("chip-decline.toml"));
  REQUIRE(nokey.sw("0084000000") == "9000");
  CHECK(nokey.sw_of(nokey.tx(enciphered_verify(pub.get(), "241234FFFFFFFFFF", hx("0102030405060708")))) ==
        "6A81");

  // Blocked PIN: enciphered VERIFY gives 6983 too.
  card blocked(parse(visa_base("", "icc_pin_key = \"keys/icc-pin-test.pem\"\npin_tries_left = 0", "")));
  auto chb = data_of(blocked.tx("0084000000"));
  CHECK(blocked.sw_of(blocked.tx(enciphered_verify(pub.get(), "249876FFFFFFFFFF", chb))) == "6983");
}

TEST_CASE("mute chip, unpowered card, card without a chip", "[pad][icc]") {
  const card_profile fb = load("chip-fallback.toml");
  auto mute = make_icc_sim(fb);
  auto atr = mute->power_on();
  REQUIRE_FALSE(atr.has_value());
  CHECK(atr.err().code == "padsim.icc_mute");
  auto r = mute->transmit(hx("00A404000E315041592E5359532E444446303100"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "padsim.icc_not_powered");

  // A chip_fails card with chip data is mute all the same.
  auto also = make_icc_sim(
      parse(visa_base("chip_fails = true\ntrack2 = \"4761739001010119=29122011143804489\"", "", "")));
  CHECK(also->power_on().err().code == "padsim.icc_mute");

  auto stripe_only = make_icc_sim(load("visa-approve.toml"));
  CHECK(stripe_only->power_on().err().code == "padsim.icc_mute");

  auto visa = make_icc_sim(load("visa-chip-approve.toml"));
  auto before = visa->transmit(hx("80CA9F3600"));
  REQUIRE_FALSE(before.has_value());
  CHECK(before.err().code == "padsim.icc_not_powered");
  REQUIRE(visa->power_on().has_value());
  CHECK(visa->transmit(hx("80CA9F3600")).has_value());
  visa->power_off();
  auto after = visa->transmit(hx("80CA9F3600"));
  REQUIRE_FALSE(after.has_value());
  CHECK(after.err().code == "padsim.icc_not_powered");

  // Power on clears the selection: GPO needs a new SELECT.
  REQUIRE(visa->power_on().has_value());
  REQUIRE(visa->transmit(hx(select_hex("A0000000031010"))).has_value());
  visa->power_off();
  REQUIRE(visa->power_on().has_value());
  CHECK(to_hex(*visa->transmit(hx("80A8000002830000"))) == "6985");
}

TEST_CASE("unknown INS and CLA, GENERATE AC not yet", "[pad][icc]") {
  card c(load("visa-chip-approve.toml"));
  REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
  CHECK(c.sw("0088000004010203040"
             "0") == "6D00");  // INTERNAL AUTHENTICATE: no DDA keys yet
  CHECK(c.sw("00FF000000") == "6D00");
  CHECK(c.sw("80AE80001D"
             "000000012500000000000000061600000000000985261122000102030400") == "6985");
  CHECK(c.sw("FFA404000E315041592E5359532E444446303100") == "6E00");
  CHECK(c.sw("80A404000E315041592E5359532E444446303100") == "6E00");  // SELECT is an ISO command
  CHECK(c.sw("00A8000002830000") == "6E00");                          // GPO is proprietary (80)
  CHECK(c.sw("00CA9F3600") == "6E00");
  CHECK(c.sw("00C0000010") == "6D00");  // GET RESPONSE only on a T=0 card
}

TEST_CASE("malformed APDUs answer 6700, never crash", "[pad][icc][errors]") {
  card c(load("visa-chip-approve.toml"));
  CHECK(c.sw("") == "6700");
  CHECK(c.sw("00") == "6700");
  CHECK(c.sw("00A404") == "6700");
  CHECK(c.sw("00A404000E3150") == "6700");                            // Lc 14, 2 bytes
  CHECK(c.sw("00A404000231504142") == "6700");                        // Lc 2, 4 bytes
  CHECK(c.sw("00A40400000E315041592E5359532E4444463031") == "6700");  // extended length
  CHECK(c.sw("00A4040000") == "6700");                                // SELECT without a name
  CHECK(c.sw("80A80000") == "6700");                                  // GPO without data
  CHECK(c.sw("00B2010C01AA00") == "6700");                            // READ RECORD with data
  CHECK(c.sw("0020008000") == "6700");                                // VERIFY without data

  // Random APDUs against every kind of card: each gets a status word, and the card keeps
  // working afterwards (a fixed seed keeps a failure reproducible).
  std::mt19937 rng(20261122);
  for (const char* f : {"visa-chip-approve.toml", "mc-contactless-approve.toml", "chip-pin-blocked.toml"}) {
    INFO(f);
    const card_profile p = load(f);
    auto chip = make_icc_sim(p, counting_random());
    REQUIRE(chip->power_on().has_value());
    static constexpr std::uint8_t clas[] = {0x00, 0x80, 0x84, 0xFF};
    static constexpr std::uint8_t inss[] = {0xA4, 0xA8, 0xB2, 0xCA, 0x84, 0x20, 0xC0, 0xAE, 0x88, 0x00};
    std::size_t answered = 0;
    for (int i = 0; i < 20000; ++i) {
      bytes cmd(rng() % 300);
      for (auto& b : cmd) b = static_cast<std::uint8_t>(rng());
      if (cmd.size() >= 2 && rng() % 2 == 0) {  // mostly plausible headers, to get past CLA/INS
        cmd[0] = clas[rng() % std::size(clas)];
        cmd[1] = inss[rng() % std::size(inss)];
      }
      if (cmd.size() >= 5 && rng() % 2 == 0) cmd[4] = static_cast<std::uint8_t>(cmd.size() - 5 - rng() % 2);
      auto r = chip->transmit(cmd);
      REQUIRE(r.has_value());
      REQUIRE(r->size() >= 2);
      REQUIRE(r->size() <= 258);
      ++answered;
    }
    CHECK(answered == 20000);
    chip->power_off();
    REQUIRE(chip->power_on().has_value());
    const auto again = chip->transmit(hx(select_hex(to_hex(p.chip->applications.front().aid))));
    REQUIRE(again.has_value());
    CHECK(card::sw_of(*again) == "9000");
  }
}

TEST_CASE("T=0 card: 61xx, GET RESPONSE and 6Cxx", "[pad][icc][t0]") {
  card c(parse(visa_base("", "t0_get_response = true", "")));
  const std::string fci = "6F1B8407A0000000031010A510500B5649534120435245444954870101";
  CHECK(c.sw(select_hex("A0000000031010")) == "611D");
  CHECK(to_hex(c.tx("00C000001D")) == fci + "9000");
  CHECK(c.sw("00C000001D") == "6985");  // nothing left

  // In pieces: 16 bytes, then the remaining 13.
  CHECK(c.sw(select_hex("A0000000031010")) == "611D");
  CHECK(to_hex(c.tx("00C0000010")) == fci.substr(0, 32) + "610D");
  CHECK(c.sw("00C0000020") == "6C0D");  // asks for more than is left
  CHECK(to_hex(c.tx("00C000000D")) == fci.substr(32) + "9000");

  // GPO (case 4) too; any other command drops what was pending.
  CHECK(c.sw(select_hex("A0000000031010")) == "611D");
  CHECK(c.sw("80CA9F3600") == "6C05");                    // case 2 with Le 00 ...
  CHECK(to_hex(c.tx("80CA9F3605")) == "9F360200019000");  // ... repeated with the exact Le
  CHECK(c.sw("00C000001D") == "6985");
  CHECK(c.sw("80A8000002830000") == "610C");
  CHECK(to_hex(c.tx("00C000000C")) ==
        "770A82021800940408010100"
        "9000");

  // READ RECORD: 6Cxx with the record length, then the record with that Le.
  const auto r6c = c.tx("00B2010C00");
  REQUIRE(card::sw_of(r6c).substr(0, 2) == "6C");
  const bytes exact{0x00, 0xB2, 0x01, 0x0C, r6c[1]};
  const auto rec = c.tx(exact);
  CHECK(card::sw_of(rec) == "9000");
  CHECK(rec.size() == static_cast<std::size_t>(r6c[1]) + 2);

  // Errors are not deferred: a failing SELECT answers its status word at once.
  CHECK(c.sw("80C000000D") == "6E00");  // GET RESPONSE is an ISO command
  CHECK(c.sw(select_hex("A0000000041010")) == "6A82");
  CHECK(c.sw("00C00000"
             "00") == "6985");
}

TEST_CASE("bad chip profiles are named by key, never by value", "[pad][icc][profile][errors]") {
  const std::string t2 = "track2 = \"4761739001010119=29122011143804489\"";
  struct vec {
    const char* what;
    std::string text;
    const char* code;
    const char* names;
  };
  const vec vectors[] = {
      {"chip without [chip]", "[card]\nname = \"x\"\nkind = \"chip\"\n" + t2, "padsim.profile_missing_key",
       "[chip]"},
      {"unknown kind", "[card]\nname = \"x\"\nkind = \"nfc\"\n" + t2, "padsim.profile_bad_value",
       "card.kind"},
      {"unknown chip key", visa_base("", "pinn = \"9876\"", ""), "padsim.profile_unknown_key", "chip.pinn"},
      {"unknown application key", visa_base("", "", "lable = \"x\""), "padsim.profile_unknown_key",
       "chip.application[1].lable"},
      {"unknown record key",
       visa_base("", "", "[[chip.application.record]]\nsfi = 1\nnumber = 1\ndata = \"7000\"\nsize = 2"),
       "padsim.profile_unknown_key", "chip.application[1].record[1].size"},
      {"bad hex AID",
       visa_base("", "", "").replace(visa_base("", "", "").find("A0000000031010"), 14, "A00000000G1010"),
       "padsim.profile_bad_value", "chip.application[1].aid"},
      {"short AID",
       visa_base("", "", "").replace(visa_base("", "", "").find("A0000000031010"), 14, "A0000000"),
       "padsim.profile_bad_value", "chip.application[1].aid"},
      {"odd hex", visa_base("", "atr = \"3B680\"", ""), "padsim.profile_bad_value", "chip.atr"},
      {"ATR without TS", visa_base("", "atr = \"0068\"", ""), "padsim.profile_bad_value", "chip.atr"},
      {"PAN Luhn",
       visa_base("", "", "").replace(visa_base("", "", "").find("4761739001010119"), 16, "4761739001010118"),
       "padsim.profile_bad_value", "chip.application[1].pan"},
      {"PIN letters", visa_base("", "", "").replace(visa_base("", "", "").find("9876"), 4, "98a6"),
       "padsim.profile_bad_value", "chip.pin"},
      {"tries over the limit", visa_base("", "pin_try_limit = 3\npin_tries_left = 4", ""),
       "padsim.profile_bad_value", "chip.pin_tries_left"},
      {"ATC too big", visa_base("", "atc = 65536", ""), "padsim.profile_bad_value", "chip.atc"},
      {"expiry month 13", visa_base("", "", "").replace(visa_base("", "", "").find("291231"), 6, "291331"),
       "padsim.profile_bad_value", "chip.application[1].expiry"},
      {"AFL names a missing record", visa_base("", "", "afl = \"08010200\""), "padsim.profile_bad_value",
       "chip.application[1].afl"},
      {"AFL SFI 0", visa_base("", "", "afl = \"00010100\""), "padsim.profile_bad_value",
       "chip.application[1].afl"},
      {"record not template 70",
       visa_base("", "", "[[chip.application.record]]\nsfi = 1\nnumber = 1\ndata = \"77025A00\""),
       "padsim.profile_bad_value", "record[1].data"},
      {"record twice",
       visa_base("", "",
                 "[[chip.application.record]]\nsfi = 1\nnumber = 1\ndata = \"7000\"\n"
                 "[[chip.application.record]]\nsfi = 1\nnumber = 1\ndata = \"7000\""),
       "padsim.profile_bad_value", "record[2].number"},
      {"gpo_response and aip", visa_base("", "", "aip = \"1800\"\ngpo_response = \"8006180008010100\""),
       "padsim.profile_bad_value", "gpo_response"},
      {"bad gpo_response", visa_base("", "", "gpo_response = \"9F3602000100\""), "padsim.profile_bad_value",
       "gpo_response"},
      {"bad PDOL", visa_base("", "", "pdol = \"9F02069F\""), "padsim.profile_bad_value",
       "chip.application[1].pdol"},
      {"no application", "[card]\nname = \"x\"\nkind = \"chip\"\n[chip]\npin = \"9876\"\n",
       "padsim.profile_missing_key", "chip.application"},
      {"[chip] on a magstripe card",
       "[card]\nname = \"x\"\nkind = \"magstripe\"\n" + t2 + "\n[chip]\npin = \"9876\"",
       "padsim.profile_bad_value", "[chip]"},
      {"T=0 contactless",
       "[card]\nname = \"x\"\nkind = \"contactless\"\n[chip]\npin = \"9876\"\nt0_get_response = true\n"
       "[[chip.application]]\naid = \"A0000000041010\"\nlabel = \"M\"\npan = \"5413330089010434\"\nexpiry = "
       "\"291231\"",
       "padsim.profile_bad_value", "chip.t0_get_response"},
      {"chip_fails without track2", "[card]\nname = \"x\"\nkind = \"chip\"\nchip_fails = true",
       "padsim.profile_missing_key", "card.track2"},
      {"chip_fails contactless", "[card]\nname = \"x\"\nkind = \"contactless\"\nchip_fails = true\n" + t2,
       "padsim.profile_bad_value", "card.chip_fails"},
      {"fallback on a chip card", visa_base("fallback = true", "", ""), "padsim.profile_bad_value",
       "card.fallback"},
      {"stripe of a chip card with service code 101",
       visa_base("track2 = \"4761739001010119=29121011143804489\"", "", ""), "padsim.profile_bad_value",
       "card.track2"},
      {"stripe and chip disagree on the PAN",
       visa_base("track2 = \"4761739001010002=29122011143804489\"", "", ""), "padsim.profile_bad_value",
       "card.track2"},
      {"label too long",
       visa_base("", "", "").replace(visa_base("", "", "").find("VISA CREDIT"), 11, "VISA CREDIT CLASSIC"),
       "padsim.profile_bad_value", "chip.application[1].label"},
      {"AID twice",
       visa_base("", "",
                 "[[chip.application]]\naid = \"A0000000031010\"\nlabel = \"B\"\npan = \"4761739001010119\"\n"
                 "expiry = \"291231\""),
       "padsim.profile_bad_value", "chip.application[2].aid"},
      {"key file missing", visa_base("", "icc_pin_key = \"keys/none.pem\"", ""), "padsim.profile_io",
       "chip.icc_pin_key"},
      {"key file not a key", visa_base("", "icc_pin_key = \"visa-approve.toml\"", ""),
       "padsim.profile_bad_value", "chip.icc_pin_key"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    auto p = parse_card_profile(v.text, "t.toml", cards_dir());
    REQUIRE_FALSE(p.has_value());
    CHECK(p.err().code == v.code);
    CHECK(p.err().message.find(v.names) != std::string::npos);
    CHECK(p.err().message.rfind("t.toml", 0) == 0);
    for (const char* value : {"4761", "5413", "9876", "98a6", "A00000000G", "291331", "3B680", "9F02069F"})
      CHECK(p.err().message.find(value) == std::string::npos);
  }
}
