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

#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/emv_oda.hpp"
#include "eftd/core/tlv.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/emv_cert_mint.hpp"
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

TEST_CASE("unknown INS and CLA, GENERATE AC before GPO", "[pad][icc]") {
  card c(load("visa-chip-approve.toml"));
  REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
  CHECK(c.sw("0088000004010203040"
             "0") == "6D00");  // INTERNAL AUTHENTICATE: not a DDA card
  CHECK(c.sw("00FF000000") == "6D00");
  CHECK(c.sw("80AE80001D"
             "000000012500000000000000061600000000000985261122000102030400") == "6985");  // no GPO
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
  for (const char* f : {"visa-chip-approve.toml", "mc-contactless-approve.toml", "chip-pin-blocked.toml",
                        "mc-cda-approve.toml", "visa-qvsdc-contactless.toml"}) {
    INFO(f);
    const card_profile p = load(f);
    auto chip = make_icc_sim(p, counting_random());
    REQUIRE(chip->power_on().has_value());
    static constexpr std::uint8_t clas[] = {0x00, 0x80, 0x84, 0xFF};
    static constexpr std::uint8_t inss[] = {0xA4, 0xA8, 0xB2, 0xCA, 0x84, 0x20, 0xC0,
                                            0xAE, 0x88, 0x82, 0x24, 0x1E, 0x18, 0x00};
    const bytes select = hx(select_hex(to_hex(p.chip->applications.front().aid)));
    std::size_t answered = 0;
    for (int i = 0; i < 20000; ++i) {
      // Now and then a real selection and GPO, so GENERATE AC, EXTERNAL AUTHENTICATE and the
      // script commands meet a card in the state where they do their work.
      if (i % 50 == 0) {
        REQUIRE(chip->transmit(select).has_value());
        REQUIRE(chip->transmit(hx("80A8000002830000")).has_value());
      }
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

// ---------------------------------------------------------------------------------------------
// Cryptograms, ODA and issuer scripts. Cryptograms, ARPCs and MACs are not card data; the
// §6 values are public test vectors and are compared as hex. PANs stay inside the code.

namespace {

constexpr std::string_view issuer_mk_ac = "0123456789ABCDEFFEDCBA9876543210";   // §6 MK-AC
constexpr std::string_view issuer_mk_smi = "FEDCBA98765432100123456789ABCDEF";  // §6 MK-SMI
constexpr std::string_view today = "261122";

// CDOL1 data of the default CDOL1 (9F02 9F03 9F1A 95 5F2A 9A 9C 9F37): 29 bytes.
std::string cdol1_data(std::string_view amount, std::string_view tvr, std::string_view date,
                       std::string_view type, std::string_view un, std::string_view country = "0124") {
  return std::string(amount) + "000000000000" + std::string(country) + std::string(tvr) +
         std::string(country) + std::string(date) + std::string(type) + std::string(un);
}
std::string genac(std::uint8_t p1, const std::string& data_hex) {
  const bytes h{0x80, 0xAE, p1, 0x00, static_cast<std::uint8_t>(data_hex.size() / 2)};
  return to_hex(h) + data_hex + "00";
}

// The inputs the card MACs, rebuilt by the test from what it sent and what the card answered.
emv::ac_inputs rebuild_inputs(const std::string& cdol1_hex, const bytes& aip, std::uint16_t atc,
                              const bytes& iad_or_cvr) {
  emv::ac_inputs in;
  in.atc = atc;
  in.data = hx(cdol1_hex);
  in.un.assign(in.data.end() - 4, in.data.end());
  in.data.insert(in.data.end(), aip.begin(), aip.end());
  in.data.push_back(static_cast<std::uint8_t>(atc >> 8));
  in.data.push_back(static_cast<std::uint8_t>(atc));
  in.iad_or_cvr = iad_or_cvr;
  return in;
}

secure_bytes derived_mk(std::string_view issuer_mk, std::string_view pan, std::string_view psn) {
  auto k = emv::derive_icc_mk(hx(issuer_mk), pan, psn, emv::mk_option::a);
  REQUIRE(k.has_value());
  return std::move(*k);
}

struct genac_answer {
  std::uint8_t cid = 0;
  std::uint16_t atc = 0;
  bytes ac, iad, sdad;
  bytes shown_tlvs;  // the response TLVs but 9F4B, in order (the CDA hash input)
};

genac_answer parse_genac(const bytes& r) {
  REQUIRE(card::sw_of(r) == "9000");
  auto t = decode(r);
  REQUIRE(t.size() == 1);
  genac_answer g;
  if (t[0].tag == 0x80) {
    const bytes& v = t[0].value;
    REQUIRE(v.size() >= 11);
    g.cid = v[0];
    g.atc = static_cast<std::uint16_t>(v[1] << 8 | v[2]);
    g.ac.assign(v.begin() + 3, v.begin() + 11);
    g.iad.assign(v.begin() + 11, v.end());
    return g;
  }
  REQUIRE(t[0].tag == 0x77);
  for (const auto& c : t[0].children) {
    if (c.tag == 0x9F4B) {
      g.sdad = c.value;
      continue;
    }
    const bytes enc = tlv_encode(c);
    g.shown_tlvs.insert(g.shown_tlvs.end(), enc.begin(), enc.end());
    if (c.tag == 0x9F27) g.cid = c.value.at(0);
    if (c.tag == 0x9F36) g.atc = static_cast<std::uint16_t>(c.value.at(0) << 8 | c.value.at(1));
    if (c.tag == 0x9F26) g.ac = c.value;
    if (c.tag == 0x9F10) g.iad = c.value;
  }
  return g;
}

// What the CVN appends: CVN 18 the whole IAD; CVN 10 the CVR (IAD bytes 3..6); M/Chip bytes 2..7.
bytes appended(emv::cvn v, const bytes& iad) {
  if (v == emv::cvn::visa18) return iad;
  if (v == emv::cvn::visa10) return bytes(iad.begin() + 3, iad.begin() + 7);
  return bytes(iad.begin() + 2, iad.begin() + 8);
}

// Select, GPO (empty PDOL) and read every record the AFL names.
struct read_card {
  bytes aip, afl;
  std::vector<std::pair<std::uint8_t, bytes>> records;  // sfi, record (no SW)
  std::vector<tlv> all;                                 // every record's objects
};
read_card select_and_read(card& c, std::string_view aid) {
  read_card out;
  REQUIRE(c.sw(select_hex(aid)) == "9000");
  const bytes g = c.tx("80A8000002830000");
  REQUIRE(card::sw_of(g) == "9000");
  auto t = decode(g);
  out.aip = find(t, 0x82)->value;
  out.afl = find(t, 0x94)->value;
  for (std::size_t i = 0; i < out.afl.size(); i += 4)
    for (int n = out.afl[i + 1]; n <= out.afl[i + 2]; ++n) {
      const bytes cmd{0x00, 0xB2, static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(out.afl[i] | 0x04),
                      0x00};
      const bytes r = c.tx(cmd);
      REQUIRE(card::sw_of(r) == "9000");
      out.records.emplace_back(out.afl[i] >> 3, data_of(r));
      auto objs = decode(r);
      for (auto& o : objs.front().children) out.all.push_back(std::move(o));
    }
  return out;
}

bytes tag_value(const read_card& rc, std::uint32_t tag) {
  const tlv* t = tlv_find(rc.all, tag, false);
  return t ? t->value : bytes{};
}

// The static data to authenticate: ODA records as the AFL counts them, then the AIP (9F4A 82).
bytes static_data_of(const read_card& rc) {
  std::vector<emv::oda_record> recs;
  std::size_t k = 0;
  for (std::size_t i = 0; i < rc.afl.size(); i += 4)
    for (int n = rc.afl[i + 1]; n <= rc.afl[i + 2]; ++n, ++k)
      if (n - rc.afl[i + 1] < rc.afl[i + 3]) recs.push_back({rc.records[k].first, rc.records[k].second});
  auto sd = emv::oda_static_data(recs, rc.aip, tag_value(rc, 0x9F4A));
  REQUIRE(sd.has_value());
  return *sd;
}

emv::capk_table eftd_capks() {
  auto t = emv::capk_table::load(cards_dir() / "keys" / "capk-eftd-test.toml");
  if (!t) FAIL(t.err().code << ": " << t.err().message);
  return std::move(*t);
}

// Issuer and ICC public keys recovered the way a kernel does.
result<emv::rsa_key> recover_issuer(const read_card& rc, std::string_view pan, byte_view rid) {
  static const emv::capk_table capks = eftd_capks();
  const bytes idx = tag_value(rc, 0x8F);
  REQUIRE(idx.size() == 1);
  const auto* capk = capks.find(rid, idx[0]);
  REQUIRE(capk != nullptr);
  return emv::recover_issuer_key(*capk, tag_value(rc, 0x90), tag_value(rc, 0x92), tag_value(rc, 0x9F32), pan,
                                 today);
}
emv::rsa_key recover_icc(const read_card& rc, std::string_view pan, byte_view rid) {
  auto issuer = recover_issuer(rc, pan, rid);
  if (!issuer) FAIL(issuer.err().code);
  auto icc = emv::recover_icc_key(*issuer, tag_value(rc, 0x9F46), tag_value(rc, 0x9F48),
                                  tag_value(rc, 0x9F47), static_data_of(rc), pan, today);
  if (!icc) FAIL(icc.err().code);
  return std::move(*icc);
}

std::string vector_profile(std::string_view cvn, std::string_view cvr, const std::string& extra = "") {
  return visa_base("",
                   "atc = 27\nicc_mk = \"154F349D8585CB7F6B0798E9839B10C1\"\ncvn = \"" + std::string(cvn) +
                       "\"\ncvr = \"" + std::string(cvr) + "\"\n" + extra,
                   "");
}

}  // namespace

TEST_CASE("ODA and cryptogram profiles load with minted certificate records", "[pad][icc][profile][emv]") {
  struct expect {
    const char* file;
    oda_kind oda;
    emv::cvn cvn;
    const char* aid;
  };
  const expect files[] = {
      {"visa-dda-approve.toml", oda_kind::dda, emv::cvn::visa18, "A0000000031010"},
      {"visa-sda-approve.toml", oda_kind::sda, emv::cvn::visa10, "A0000000031010"},
      {"mc-cda-approve.toml", oda_kind::cda, emv::cvn::mc16, "A0000000041010"},
      {"chip-card-decline.toml", oda_kind::none, emv::cvn::visa18, "A0000000031010"},
      {"chip-online-always.toml", oda_kind::dda, emv::cvn::visa18, "A0000000031010"},
      {"chip-bad-cert.toml", oda_kind::dda, emv::cvn::visa18, "A0000000031010"},
      {"visa-qvsdc-contactless.toml", oda_kind::none, emv::cvn::visa18, "A0000000031010"},
      {"mc-mchip-contactless.toml", oda_kind::cda, emv::cvn::mc16, "A0000000041010"},
      {"visa-chip-approve.toml", oda_kind::none, emv::cvn::visa10, "A0000000031010"},
      {"mc-contactless-approve.toml", oda_kind::none, emv::cvn::mc16, "A0000000041010"},
  };
  for (const auto& f : files) {
    INFO(f.file);
    const card_profile p = load(f.file);
    REQUIRE(p.chip.has_value());
    CHECK(p.chip->oda == f.oda);
    CHECK(p.chip->cvn == f.cvn);
    const auto& app = p.chip->applications.front();
    CHECK(app.icc_mk_ac.size() == 16);
    CHECK(app.icc_mk_smi.size() == 16);
    CHECK(to_hex(app.cdol1) == "9F02069F03069F1A0295055F2A029A039C019F3704");
    if (f.oda == oda_kind::none) continue;
    CHECK(to_hex(app.afl) == "0801010110010200");
    const std::uint8_t bit = f.oda == oda_kind::sda ? 0x40 : f.oda == oda_kind::dda ? 0x20 : 0x21;
    CHECK((app.aip.at(0) & bit) == bit);
    card c(p);
    const read_card rc = select_and_read(c, f.aid);
    CHECK(to_hex(tag_value(rc, 0x8F)) == "E1");
    CHECK(to_hex(tag_value(rc, 0x9F4A)) == "82");
    CHECK(tag_value(rc, 0x90).size() == 176);  // the 1408-bit test CA
    const std::string pan(reinterpret_cast<const char*>(app.pan.view().data()), app.pan.size());
    auto issuer = recover_issuer(rc, pan, byte_view(app.aid).first(5));
    if (std::string(f.file) == "chip-bad-cert.toml") {
      REQUIRE_FALSE(issuer.has_value());  // signed by a CA the terminal does not know
      continue;
    }
    REQUIRE(issuer.has_value());
    if (f.oda == oda_kind::sda) {
      auto dac = emv::verify_ssad(*issuer, tag_value(rc, 0x93), static_data_of(rc));
      REQUIRE(dac.has_value());
      CHECK(to_hex(*dac) == "DAC0");
      // Static data changed (another AIP): the SSAD no longer verifies.
      read_card other = rc;
      other.aip[1] ^= 0x01;
      CHECK_FALSE(emv::verify_ssad(*issuer, tag_value(rc, 0x93), static_data_of(other)).has_value());
    } else {
      CHECK(to_hex(tag_value(rc, 0x9F49)) == "9F3704");
      auto icc = emv::recover_icc_key(*issuer, tag_value(rc, 0x9F46), tag_value(rc, 0x9F48),
                                      tag_value(rc, 0x9F47), static_data_of(rc), pan, today);
      REQUIRE(icc.has_value());
      CHECK(icc->modulus.size() == 128);
    }
  }
}

TEST_CASE("DDA: INTERNAL AUTHENTICATE signs the DDOL data with the ICC key", "[pad][icc][emv][oda]") {
  card c(load("visa-dda-approve.toml"));
  const read_card rc = select_and_read(c, "A0000000031010");
  const emv::rsa_key icc = recover_icc(rc, "4761739001010119", hx("A000000003"));
  const bytes r = c.tx(
      "008800000401020304"
      "00");
  REQUIRE(card::sw_of(r) == "9000");
  auto t = decode(r);
  const tlv* sdad = find(t, 0x9F4B);
  REQUIRE(sdad != nullptr);
  auto dn = emv::verify_sdad(icc, sdad->value, hx("01020304"));
  REQUIRE(dn.has_value());
  CHECK(dn->size() == 8);
  // Another unpredictable number does not verify against this signature.
  CHECK_FALSE(emv::verify_sdad(icc, sdad->value, hx("01020305")).has_value());
  CHECK(c.sw("0088000000") == "6700");
  CHECK(c.sw("008801000401020304") == "6A86");
  // Nothing selected: 6985.
  card fresh(load("visa-dda-approve.toml"));
  CHECK(fresh.sw("008800000401020304"
                 "00") == "6985");
}

TEST_CASE("GENERATE AC: the AC is eftd::emv::generate_ac over the CDOL1 data", "[pad][icc][emv]") {
  struct row {
    const char* file;
    const char* aid;
    const char* psn;
    emv::cvn cvn;
  };
  for (const row& rw : {row{"visa-dda-approve.toml", "A0000000031010", "01", emv::cvn::visa18},
                        row{"visa-chip-approve.toml", "A0000000031010", "01", emv::cvn::visa10},
                        row{"mc-cda-approve.toml", "A0000000041010", "00", emv::cvn::mc16},
                        row{"chip-decline.toml", "A0000000031010", "00", emv::cvn::visa18}}) {
    INFO(rw.file);
    const card_profile p = load(rw.file);
    const std::string pan(reinterpret_cast<const char*>(p.pan.view().data()), p.pan.size());
    card c(p);
    const read_card rc = select_and_read(c, rw.aid);
    const std::string data = cdol1_data("000000001500", "0000008000", "261122", "00", "A1B2C3D4", "0616");
    const genac_answer g = parse_genac(c.tx(genac(0x80, data)));
    CHECK(g.cid == 0x80);
    CHECK(g.atc == p.chip->atc + 1);
    REQUIRE(g.iad.size() >= 7);
    CHECK(emv::cvn_from_iad(g.iad) == rw.cvn);
    const auto mk = derived_mk(issuer_mk_ac, pan, rw.psn);
    const auto in = rebuild_inputs(data, rc.aip, g.atc, appended(rw.cvn, g.iad));
    auto want = emv::generate_ac(rw.cvn, mk.view(), in);
    REQUIRE(want.has_value());
    CHECK(to_hex(g.ac) == to_hex(*want));
    // The CVR says: ARQC at the first GENERATE AC, second not requested yet.
    CHECK(to_hex(g.iad).substr(rw.cvn == emv::cvn::mc16 ? 4 : 8, 2) == "A0");
  }
}

TEST_CASE("GENERATE AC reproduces the section 6 per-CVN ARQC and ARPC vectors", "[pad][icc][emv][vectors]") {
  struct vec {
    const char* cvn;
    const char* cvr;
    const char* data;
    const char* arqc;
    const char* issuer_auth;  // EXTERNAL AUTHENTICATE data
    const char* iad_start;
  };
  const vec vectors[] = {
      {"visa10", "03006010",
       "000000004000000000000000012480000480000124191105"
       "01"
       "52BF4585",
       "29CCA15AE665FA2E", "28993816AFAE4AEB3030", "06010A03A06010"},
      {"visa18", "0300B800",
       "000000004000000000000000012480000480000124191105"
       "01"
       "52BF4585",
       "7A788EA6B8A3E733", "9AF514C100000000", "06011203A0B800"},
      {"mc16", "000003220000",
       "000000009999000000000000012480000000000124209906"
       "00"
       "ABCDEF12",
       "24CCF3DEE3158C70", "73F6BBF389A6586C0010", "0110A00003220000"},
      {"mc20", "000003220000",
       "000000009999000000000000012480000000000124209906"
       "00"
       "ABCDEF12",
       "CD29615D6452E70E", "DFD0956606B68D640010", "0114A00003220000"},
  };
  for (const auto& v : vectors) {
    INFO(v.cvn);
    card c(parse(vector_profile(v.cvn, v.cvr)));
    REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
    REQUIRE(c.sw("80A8000002830000") == "9000");  // ATC 27 -> 001C, AIP 1800
    const genac_answer g = parse_genac(c.tx(genac(0x80, v.data)));
    CHECK(g.cid == 0x80);
    CHECK(g.atc == 0x001C);
    CHECK(to_hex(g.ac) == v.arqc);
    CHECK(to_hex(g.iad).rfind(v.iad_start, 0) == 0);
    CHECK(c.sw("0082000000") == "6700");
    const bytes ea = hx(v.issuer_auth);
    const bytes cmd_head{0x00, 0x82, 0x00, 0x00, static_cast<std::uint8_t>(ea.size())};
    CHECK(c.sw(to_hex(cmd_head) + v.issuer_auth) == "9000");
    CHECK(c.sw(to_hex(cmd_head) + v.issuer_auth) == "6985");  // once per transaction
  }
}

TEST_CASE("issuer script MACs: the section 6 vectors through the card", "[pad][icc][emv][vectors][script]") {
  // ICC MK-SMI derived from the §6 MK-SMI for PAN 1234567890123456, PSN 00 (a Luhn-invalid
  // crypto test PAN, so the profile carries the derived key and a valid PAN of its own).
  const auto smi = derived_mk(issuer_mk_smi, "1234567890123456", "00");
  const std::string smi_line = "icc_mk_smi = \"" + to_hex(smi.view()) + "\"\n";
  const std::string visa_data =
      "000000004000000000000000012480000480000124191105"
      "01"
      "52BF4585";
  const std::string mc_data =
      "000000009999000000000000012480000000000124209906"
      "00"
      "ABCDEF12";

  SECTION("Visa CVN10: APPLICATION UNBLOCK MAC DB56BA60087CEFD3") {
    card c(parse(vector_profile("visa10", "03006010", smi_line)));
    REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
    REQUIRE(c.sw("80A8000002830000") == "9000");
    CHECK(c.sw("8418000008DB56BA60087CEFD3") == "6985");  // no ARQC yet
    REQUIRE(to_hex(parse_genac(c.tx(genac(0x80, visa_data))).ac) == "29CCA15AE665FA2E");
    CHECK(c.sw("8418000008DB56BA60087CEFD4") == "6988");
    CHECK(c.sw("8418000008DB56BA60087CEFD3") == "9000");
    CHECK(c.sw("8418010008DB56BA60087CEFD3") == "6A86");
  }
  SECTION("M/Chip CVN16: PIN UNBLOCK MAC ED0AB162BAB1DE61") {
    card c(parse(vector_profile("mc16", "000003220000", smi_line + "pin_tries_left = 0\n")));
    REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
    REQUIRE(c.sw("80A8000002830000") == "9000");
    CHECK(c.sw("0020008008249876FFFFFFFFFF") == "6983");
    REQUIRE(to_hex(parse_genac(c.tx(genac(0x80, mc_data))).ac) == "24CCF3DEE3158C70");
    CHECK(c.sw("8424000008ED0AB162BAB1DE60") == "6988");
    CHECK(c.sw("0020008008249876FFFFFFFFFF") == "6983");  // still blocked
    CHECK(c.sw("8424000008ED0AB162BAB1DE61") == "9000");
    CHECK(c.sw("0020008008249876FFFFFFFFFF") == "9000");  // unblocked: the PIN works again
  }
}

namespace {

// A card after select, GPO and an ARQC, with what the issuer needs to answer it.
struct online_card {
  card c;
  read_card rc;
  std::string cdol1;
  genac_answer first;
  emv::ac_inputs inputs;
  secure_bytes mk;
  emv::cvn cvn;

  online_card(const char* file, const char* aid, const char* pan, const char* psn, std::uint8_t p1 = 0x80)
      : c(load(file)) {
    rc = select_and_read(c, aid);
    cvn = c.profile.chip->cvn;
    cdol1 = cdol1_data("000000002500", "0000000000", "261122", "00", "11223344", "0616");
    first = parse_genac(c.tx(genac(p1, cdol1)));
    inputs = rebuild_inputs(cdol1, rc.aip, first.atc, appended(cvn, first.iad));
    mk = derived_mk(issuer_mk_ac, pan, psn);
    if (first.ac.empty()) {  // CDA: the AC is in the signature; the caller recovers it
    }
  }

  // EXTERNAL AUTHENTICATE data the issuer would send for `arc` (method 1) or a CSU (method 2).
  std::string issuer_auth(const bytes& ac, std::string_view arc_hex = "3030") {
    const bool m2 = cvn == emv::cvn::visa18;
    const bytes code = m2 ? hx("00000000") : hx(arc_hex);
    auto arpc = emv::generate_arpc(cvn, mk.view(), inputs, ac, code);
    REQUIRE(arpc.has_value());
    bytes data = *arpc;
    data.insert(data.end(), code.begin(), code.end());
    const bytes head{0x00, 0x82, 0x00, 0x00, static_cast<std::uint8_t>(data.size())};
    return to_hex(head) + to_hex(data);
  }
  std::string second(std::uint8_t p1, std::string_view arc_hex) {
    return genac(p1, std::string(arc_hex) + cdol1);  // default CDOL2: 8A 02 then CDOL1
  }
};

}  // namespace

TEST_CASE("EXTERNAL AUTHENTICATE and the second GENERATE AC", "[pad][icc][emv]") {
  SECTION("approved and ARPC right: TC") {
    online_card o("visa-dda-approve.toml", "A0000000031010", "4761739001010119", "01");
    REQUIRE(o.first.cid == 0x80);
    CHECK(o.c.sw(o.issuer_auth(o.first.ac)) == "9000");
    const genac_answer g = parse_genac(o.c.tx(o.second(0x40, "3030")));
    CHECK(g.cid == 0x40);
    CHECK(g.atc == o.first.atc);
    CHECK(to_hex(g.iad).substr(8, 2) == "60");        // CVR: TC second, ARQC first
    CHECK(o.c.sw(o.second(0x40, "3030")) == "6985");  // no third
    // The card remembers the online transaction.
    CHECK(to_hex(data_of(o.c.tx("80CA9F1300"))) ==
          "9F1302" + to_hex(bytes{0, static_cast<std::uint8_t>(g.atc)}));
  }
  SECTION("ARPC wrong: 6300, then AAC even for an approval") {
    online_card o("visa-dda-approve.toml", "A0000000031010", "4761739001010119", "01");
    std::string bad = o.issuer_auth(o.first.ac);
    bad[10] = bad[10] == '0' ? '1' : '0';
    CHECK(o.c.sw(bad) == "6300");
    CHECK(o.c.sw(o.issuer_auth(o.first.ac)) == "6985");  // one try
    const genac_answer g = parse_genac(o.c.tx(o.second(0x40, "3030")));
    CHECK(g.cid == 0x00);
    CHECK((g.iad.at(4) & 0x08) == 0x08);  // CVR: issuer authentication failed
  }
  SECTION("no issuer authentication, host decline, AAC asked, unable to go online") {
    online_card a("visa-chip-approve.toml", "A0000000031010", "4761739001010119", "01");
    // Its AIP (1800) claims no issuer authentication and CDOL2 asks for no 91: an approval
    // without EXTERNAL AUTHENTICATE is a TC.
    CHECK(parse_genac(a.c.tx(a.second(0x40, "3030"))).cid == 0x40);
    online_card b("visa-chip-approve.toml", "A0000000031010", "4761739001010119", "01");
    CHECK(b.c.sw(b.issuer_auth(b.first.ac, "3035")) == "9000");      // ARPC for "05"
    CHECK(parse_genac(b.c.tx(b.second(0x40, "3035"))).cid == 0x00);  // declined
    online_card d("visa-chip-approve.toml", "A0000000031010", "4761739001010119", "01");
    CHECK(d.c.sw(d.issuer_auth(d.first.ac)) == "9000");
    CHECK(parse_genac(d.c.tx(d.second(0x00, "3030"))).cid == 0x00);  // the terminal asks AAC
    online_card y("visa-chip-approve.toml", "A0000000031010", "4761739001010119", "01");
    CHECK(parse_genac(y.c.tx(y.second(0x40, "5933"))).cid == 0x40);  // Y3: offline approval
    online_card z("chip-online-always.toml", "A0000000031010", "4761739001010119", "01", 0x40);
    CHECK(z.first.cid == 0x80);
    CHECK(parse_genac(z.c.tx(z.second(0x40, "5933"))).cid == 0x00);  // but not for this card
  }
  SECTION("M/Chip CVN16: ARPC method 1 under the ICC MK, format 1 answers") {
    online_card o("mc-cda-approve.toml", "A0000000041010", "5413330089020011", "00");
    REQUIRE(o.first.cid == 0x80);
    CHECK(o.c.sw(o.issuer_auth(o.first.ac, "0010")) == "9000");
    CHECK(parse_genac(o.c.tx(o.second(0x40, "3030"))).cid == 0x40);
  }
  SECTION("wrong lengths and order") {
    online_card o("visa-dda-approve.toml", "A0000000031010", "4761739001010119", "01");
    CHECK(o.c.sw("00820000070102030405060708") == "6700");
    CHECK(o.c.sw(genac(0x40, "3030")) == "6700");   // CDOL2 data too short
    CHECK(o.c.sw(genac(0xC0, o.cdol1)) == "6A86");  // RFU cryptogram type
    CHECK(o.c.sw(genac(0x88, o.cdol1)) == "6A86");  // RFU bit
    card t(load("visa-dda-approve.toml"));
    select_and_read(t, "A0000000031010");
    const genac_answer tc = parse_genac(t.tx(genac(0x40, o.cdol1)));
    CHECK(tc.cid == 0x40);                                    // offline TC
    CHECK(t.sw("008200000A01020304050607083030") == "6985");  // EXTERNAL AUTHENTICATE after a TC
    CHECK(t.sw(genac(0x40, "3030" + o.cdol1)) == "6985");     // no second after a TC
  }
}

TEST_CASE("card action analysis: decline, online only, offline limit", "[pad][icc][emv]") {
  const std::string data = cdol1_data("000000001000", "0000000000", "261122", "00", "01020304");
  SECTION("a card that declines: AAC whatever is asked") {
    for (std::uint8_t p1 : {0x00, 0x40, 0x80}) {
      card c(load("chip-card-decline.toml"));
      select_and_read(c, "A0000000031010");
      CHECK(parse_genac(c.tx(genac(p1, data))).cid == 0x00);
    }
  }
  SECTION("online only: a TC asked gets an ARQC") {
    card c(load("chip-online-always.toml"));
    select_and_read(c, "A0000000031010");
    CHECK(parse_genac(c.tx(genac(0x40, data))).cid == 0x80);
  }
  SECTION("offline limit: three offline TCs, then the card asks to go online") {
    card c(load("visa-chip-approve.toml"));  // offline_limit 3 by default
    for (int i = 0; i < 3; ++i) {
      INFO(i);
      select_and_read(c, "A0000000031010");
      CHECK(parse_genac(c.tx(genac(0x40, data))).cid == 0x40);
    }
    select_and_read(c, "A0000000031010");
    CHECK(parse_genac(c.tx(genac(0x40, data))).cid == 0x80);
    // AAC asked is always honoured, ARQC asked always given.
    select_and_read(c, "A0000000031010");
    CHECK(parse_genac(c.tx(genac(0x00, data))).cid == 0x00);
  }
  SECTION("T=0 card: GENERATE AC answers through GET RESPONSE") {
    card c(parse(
        visa_base("", "t0_get_response = true\nissuer_mk = \"" + std::string(issuer_mk_ac) + "\"", "")));
    REQUIRE(c.sw(select_hex("A0000000031010")).substr(0, 2) == "61");
    REQUIRE(c.sw("80A8000002830000").substr(0, 2) == "61");
    const std::string sw = c.sw(genac(0x80, data));
    REQUIRE(sw.substr(0, 2) == "61");
    CHECK(parse_genac(c.tx("00C00000" + sw.substr(2, 2))).cid == 0x80);
  }
  SECTION("format 1 answers on request") {
    card c(parse(visa_base("", "genac_format = 1\nissuer_mk = \"" + std::string(issuer_mk_ac) + "\"", "")));
    select_and_read(c, "A0000000031010");
    const bytes r = c.tx(genac(0x80, data));
    CHECK(to_hex(data_of(r)).substr(0, 6) == "801280");  // 80 len CID=ARQC
  }
}

TEST_CASE("CDA: the GENERATE AC signature verifies with emv_oda", "[pad][icc][emv][oda]") {
  for (const char* file : {"mc-cda-approve.toml", "mc-mchip-contactless.toml"}) {
    INFO(file);
    card c(load(file));
    const bool contactless = c.profile.kind == "contactless";
    if (contactless) REQUIRE(c.sw(select_name("2PAY.SYS.DDF01")) == "9000");
    const read_card rc = select_and_read(c, "A0000000041010");
    const emv::rsa_key icc = recover_icc(rc, "5413330089020011", hx("A000000004"));
    const std::string cdol1 = cdol1_data("000000002500", "0000000000", "261122", "00", "8B55633B", "0616");
    const genac_answer g = parse_genac(c.tx(genac(0x90, cdol1)));  // ARQC + CDA
    REQUIRE(g.cid == 0x80);
    CHECK(g.ac.empty());  // under CDA the AC is only inside the signature
    REQUIRE_FALSE(g.sdad.empty());
    bytes tdhc_input = hx(cdol1);  // empty PDOL
    tdhc_input.insert(tdhc_input.end(), g.shown_tlvs.begin(), g.shown_tlvs.end());
    auto v = emv::verify_cda(icc, g.sdad, hx("8B55633B"), tdhc_input, g.cid);
    REQUIRE(v.has_value());
    CHECK(v->cid == 0x80);
    // The signed AC is the one the issuer recomputes.
    const auto mk = derived_mk(issuer_mk_ac, "5413330089020011", "00");
    const auto in = rebuild_inputs(cdol1, rc.aip, g.atc, appended(emv::cvn::mc16, g.iad));
    auto want = emv::generate_ac(emv::cvn::mc16, mk.view(), in);
    REQUIRE(want.has_value());
    CHECK(to_hex(v->ac) == to_hex(*want));
    // Tampered transaction data: the hash code no longer matches.
    bytes other = tdhc_input;
    other[5] ^= 0x01;
    CHECK_FALSE(emv::verify_cda(icc, g.sdad, hx("8B55633B"), other, g.cid).has_value());
    // Host approval, then a CDA-signed TC over PDOL || CDOL1 || CDOL2 || response.
    auto arpc = emv::generate_arpc(emv::cvn::mc16, mk.view(), in, v->ac, hx("3030"));
    REQUIRE(arpc.has_value());
    CHECK(c.sw("008200000A" + to_hex(*arpc) + "3030") == "9000");
    const std::string cdol2 = "3030" + cdol1;
    const genac_answer t = parse_genac(c.tx(genac(0x50, cdol2)));
    REQUIRE(t.cid == 0x40);
    bytes second_input = hx(cdol1 + cdol2);
    second_input.insert(second_input.end(), t.shown_tlvs.begin(), t.shown_tlvs.end());
    auto v2 = emv::verify_cda(icc, t.sdad, hx("8B55633B"), second_input, 0x40);
    REQUIRE(v2.has_value());
  }
  // An AAC is never signed; a CDA request to a DDA card gets a plain answer.
  card d(load("mc-cda-approve.toml"));
  select_and_read(d, "A0000000041010");
  const std::string cdol1 = cdol1_data("000000002500", "0000000000", "261122", "00", "8B55633B", "0616");
  const genac_answer aac = parse_genac(d.tx(genac(0x10, cdol1)));
  CHECK(aac.cid == 0x00);
  CHECK(aac.sdad.empty());
  card e(load("visa-dda-approve.toml"));
  select_and_read(e, "A0000000031010");
  const genac_answer plain = parse_genac(e.tx(genac(0x90, cdol1)));
  CHECK(plain.sdad.empty());
  CHECK(plain.ac.size() == 8);
}

TEST_CASE("issuer scripts: application block and unblock with the script MAC", "[pad][icc][emv][script]") {
  online_card o("visa-dda-approve.toml", "A0000000031010", "4761739001010119", "01");
  const auto smi = derived_mk(issuer_mk_smi, "4761739001010119", "01");
  auto sk = emv::visa_sm_session_key(smi.view(), o.first.atc);
  REQUIRE(sk.has_value());
  auto command = [&](std::string_view head) {
    bytes data = hx(head);
    data.push_back(static_cast<std::uint8_t>(o.first.atc >> 8));
    data.push_back(static_cast<std::uint8_t>(o.first.atc));
    data.insert(data.end(), o.first.ac.begin(), o.first.ac.end());
    auto mac = emv::script_mac(sk->view(), data);
    REQUIRE(mac.has_value());
    return std::string(head) + to_hex(*mac);
  };
  const std::string block = command("841E000008");
  std::string bad = block;
  bad.back() = bad.back() == '0' ? '1' : '0';
  CHECK(o.c.sw(bad) == "6988");
  CHECK(o.c.sw("841E000004AABBCCDD") == "6700");  // shorter than a MAC
  CHECK(o.c.sw("84CA9F3600") == "6E00");          // only script commands take CLA 84
  CHECK(o.c.sw(block) == "9000");
  // The CVR of the second GENERATE AC counts the scripts; the blocked application declines.
  CHECK(o.c.sw(o.issuer_auth(o.first.ac)) == "9000");
  const genac_answer g = parse_genac(o.c.tx(o.second(0x40, "3030")));
  CHECK(g.cid == 0x00);
  CHECK((g.iad.at(6) & 0xF8) == 0x28);  // two scripts, one failed
  CHECK(o.c.sw(select_hex("A0000000031010")) == "6283");
  CHECK(o.c.sw("80A8000002830000") == "6985");
}

TEST_CASE("qVSDC-like tap: GPO answers the ARQC over the PDOL data", "[pad][icc][emv][contactless]") {
  card c(load("visa-qvsdc-contactless.toml"));
  REQUIRE(c.sw(select_name("2PAY.SYS.DDF01")) == "9000");
  REQUIRE(c.sw(select_hex("A0000000031010")) == "9000");
  const std::string pdol =
      "36000000" + cdol1_data("000000000900", "0000000000", "261122", "00", "CAFEBABE", "0616");
  const bytes head{0x80,
                   0xA8,
                   0x00,
                   0x00,
                   static_cast<std::uint8_t>(pdol.size() / 2 + 2),
                   0x83,
                   static_cast<std::uint8_t>(pdol.size() / 2)};
  const bytes r = c.tx(to_hex(head) + pdol + "00");
  REQUIRE(card::sw_of(r) == "9000");
  auto t = decode(r);
  REQUIRE(find(t, 0x9F27) != nullptr);
  CHECK(to_hex(find(t, 0x9F27)->value) == "80");
  CHECK(to_hex(find(t, 0x9F36)->value) == "0008");
  const bytes iad = find(t, 0x9F10)->value;
  const auto mk = derived_mk(issuer_mk_ac, "4761739001010119", "01");
  const auto in = rebuild_inputs(pdol.substr(8), find(t, 0x82)->value, 0x0008, iad);
  auto want = emv::generate_ac(emv::cvn::visa18, mk.view(), in);
  REQUIRE(want.has_value());
  CHECK(to_hex(find(t, 0x9F26)->value) == to_hex(*want));
  // The records follow in the same tap; no GENERATE AC is needed (nor allowed: not after an ARQC
  // without CDOL2 data of the right length).
  CHECK(c.sw("00B2010C00") == "9000");
}

TEST_CASE("cryptogram and ODA profile keys are checked by name, never by value",
          "[pad][icc][profile][errors]") {
  const std::string mk = "issuer_mk = \"" + std::string(issuer_mk_ac) + "\"\n";
  const std::string keys =
      "oda = \"dda\"\nca_key = \"keys/ca-eftd-test.pem\"\nissuer_key = \"keys/issuer-visa-test.pem\"\n"
      "icc_key = \"keys/icc-visa-test.pem\"\n";
  struct vec {
    const char* what;
    std::string text;
    const char* code;
    const char* names;
  };
  const vec vectors[] = {
      {"both MKs", visa_base("", mk + "icc_mk = \"" + std::string(issuer_mk_smi) + "\"", ""),
       "padsim.profile_bad_value", "chip.icc_mk"},
      {"short MK", visa_base("", "issuer_mk = \"0123456789ABCDEF\"", ""), "padsim.profile_bad_value",
       "chip.issuer_mk"},
      {"unknown CVN", visa_base("", mk + "cvn = \"visa22\"", ""), "padsim.profile_bad_value", "chip.cvn"},
      {"Visa CVR length", visa_base("", mk + "cvr = \"000000000000\"", ""), "padsim.profile_bad_value",
       "chip.cvr"},
      {"mk option", visa_base("", mk + "mk_option = \"c\"", ""), "padsim.profile_bad_value",
       "chip.mk_option"},
      {"unknown ODA", visa_base("", mk + "oda = \"fdda\"", ""), "padsim.profile_bad_value", "chip.oda"},
      {"ODA without CA key",
       visa_base("", mk + "oda = \"sda\"\nissuer_key = \"keys/issuer-visa-test.pem\"", ""),
       "padsim.profile_missing_key", "chip.ca_key"},
      {"DDA without ICC key",
       visa_base("",
                 mk + "oda = \"dda\"\nca_key = \"keys/ca-eftd-test.pem\"\nissuer_key = "
                      "\"keys/issuer-visa-test.pem\"",
                 ""),
       "padsim.profile_missing_key", "chip.icc_key"},
      {"keys without ODA", visa_base("", mk + "ca_key = \"keys/ca-eftd-test.pem\"", ""),
       "padsim.profile_bad_value", "chip.ca_key"},
      {"ODA with own AFL", visa_base("", mk + keys, "afl = \"08010100\""), "padsim.profile_bad_value",
       "chip.application[1].afl"},
      {"CDA in format 1", visa_base("", mk + "oda = \"cda\"\ngenac_format = 1", ""),
       "padsim.profile_bad_value", "chip.genac_format"},
      {"qVSDC on a contact card", visa_base("", mk + "qvsdc = true", ""), "padsim.profile_bad_value",
       "chip.qvsdc"},
      {"key file not a key",
       visa_base("", mk + keys.substr(0, keys.find("icc_key")) + "icc_key = \"README.md\"", ""),
       "padsim.profile_bad_value", "chip.icc_key"},
      {"issuer key larger than the CA",
       visa_base("",
                 mk + "oda = \"sda\"\nca_key = \"keys/icc-visa-test.pem\"\nissuer_key = "
                      "\"keys/issuer-visa-test.pem\"",
                 ""),
       "padsim.profile_bad_value", "ca_key"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    auto p = parse_card_profile(v.text, "t.toml", cards_dir());
    REQUIRE_FALSE(p.has_value());
    CHECK(p.err().code == v.code);
    CHECK(p.err().message.find(v.names) != std::string::npos);
    for (const char* value : {"0123456789", "FEDCBA98", "4761", "visa22", "fdda"})
      CHECK(p.err().message.find(value) == std::string::npos);
  }
}

TEST_CASE("issuer authentication data in CDOL2 (tag 91) instead of EXTERNAL AUTHENTICATE",
          "[pad][icc][emv]") {
  const std::string cdol = "9F02069F03069F1A0295055F2A029A039C019F3704";
  const std::string record =
      "7032"
      "8C15" +
      cdol +
      "8D19"
      "8A02910A" +
      cdol;
  const std::string profile = visa_base(
      "", "issuer_mk = \"" + std::string(issuer_mk_ac) + "\"\ncvn = \"visa10\"",
      "pan_sequence = \"01\"\n[[chip.application.record]]\nsfi = 1\nnumber = 1\ndata = \"" + record + "\"");
  const std::string data = cdol1_data("000000003000", "0000000000", "261122", "00", "55667788");
  const auto mk = derived_mk(issuer_mk_ac, "4761739001010119", "01");
  for (int variant = 0; variant < 3; ++variant) {
    INFO(variant);
    card c(parse(profile));
    const read_card rc = select_and_read(c, "A0000000031010");
    const genac_answer g = parse_genac(c.tx(genac(0x80, data)));
    REQUIRE(g.cid == 0x80);
    const auto in = rebuild_inputs(data, rc.aip, g.atc, appended(emv::cvn::visa10, g.iad));
    auto arpc = emv::generate_arpc(emv::cvn::visa10, mk.view(), in, g.ac, hx("3030"));
    REQUIRE(arpc.has_value());
    std::string ia = to_hex(*arpc) + "3030";
    if (variant == 1) ia[0] = ia[0] == '0' ? '1' : '0';  // a wrong ARPC
    if (variant == 2) ia = std::string(20, '0');         // none sent
    const genac_answer t = parse_genac(c.tx(genac(0x40, "3030" + ia + data)));
    CHECK(t.cid == (variant == 0 ? 0x40 : 0x00));
  }
  // A card without an ICC MK answers GENERATE AC with 6985 even after GPO.
  card plain(parse(visa_base("", "", "")));
  select_and_read(plain, "A0000000031010");
  CHECK(plain.sw(genac(0x80, data)) == "6985");
}
