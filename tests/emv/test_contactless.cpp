// Contactless kernel: plan a tap, run its C-APDUs through the pad's ICC simulator with the
// contactless card profiles (as the pad's apdu_script does), evaluate the R-APDUs. The card
// keys are the public test keys of test-vectors.md section 6; ARQCs are recomputed with
// core emv_crypto, CDA is verified with the eftd test CA keys.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config_fixture.hpp"
#include "eftd/core/config.hpp"
#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/emv_oda.hpp"
#include "eftd/core/tlv.hpp"
#include "eftd/emv/contactless.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/icc.hpp"
#include "harness.hpp"

using namespace eftd;
using namespace eftd::emv;
using namespace eftd::emv::test;

namespace {

std::filesystem::path cards_dir() {
  if (const char* s = std::getenv("EFTD_SOURCE"))
    return std::filesystem::path(s) / "pinpad-firmware-shim" / "cards";
  return std::filesystem::path(EFTD_EMV_TEST_SOURCE_DIR) / "pinpad-firmware-shim" / "cards";
}

const capk_table& test_capks() {
  static const capk_table t = [] {
    auto loaded = capk_table::load(cards_dir() / "keys" / "capk-eftd-test.toml");
    REQUIRE(loaded);
    return std::move(loaded).value();
  }();
  return t;
}

padsim::card_profile load(std::string_view file,
                          std::vector<std::pair<std::string, std::string>> edits = {}) {
  std::ifstream in(cards_dir() / std::string(file));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  REQUIRE_FALSE(text.empty());
  for (const auto& [from, to] : edits) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
  }
  auto p = padsim::parse_card_profile(text, file, cards_dir());
  if (!p) FAIL(p.err().code << ": " << p.err().message);
  return std::move(p).value();
}

terminal_config term() {
  terminal_config t;
  t.country_code = 616;
  t.currency_code = 985;
  return t;
}

contactless_config clss() {
  contactless_config c;
  c.aids = {default_visa_contactless(), default_mastercard_contactless()};
  c.transaction_limit = 100000;
  c.cvm_required_limit = 5000;
  c.floor_limit = 0;
  return c;
}

transaction txn(std::uint64_t amount = 2500) {
  transaction t;
  t.amount = amount;
  t.currency = 985;
  t.date = "251122";
  t.time = "101500";
  t.random = [](std::span<std::uint8_t> out) {
    std::uint8_t v = 0x5A;
    for (auto& b : out) b = v++;
  };
  return t;
}

// A card in the field: the pad's apdu_script (interface 3) powers it, runs every C-APDU in
// order (stop = run all) and powers it off.
struct field {
  std::unique_ptr<padsim::icc> icc;
  explicit field(const padsim::card_profile& p) : icc(padsim::make_icc_sim(p)) {}
  std::vector<bytes> tap(const std::vector<bytes>& script) {
    std::vector<bytes> out;
    REQUIRE(icc->power_on());
    for (const auto& c : script) {
      auto r = icc->transmit(c);
      REQUIRE(r);
      out.push_back(*r);
    }
    icc->power_off();
    return out;
  }
};

struct tap_run {
  contactless_result res;
  std::vector<bytes> script, rapdus;
  tlv_store data;
  tvr_bytes tvr{};
};

tap_run run(field& card, contactless_cache& cache, const contactless_config& cfg = clss(),
            transaction t = txn(), const capk_table* capks = &test_capks(),
            const std::function<void(std::vector<bytes>&)>& tamper = {}) {
  contactless_kernel k(term(), cfg, cache, capks, std::move(t));
  tap_run out;
  out.script = k.plan();
  if (!out.script.empty()) {
    out.rapdus = card.tap(out.script);
    if (tamper) tamper(out.rapdus);
  }
  out.res = k.evaluate(out.rapdus, 312);
  out.data = k.data();
  out.tvr = k.tvr();
  return out;
}

std::vector<tlv> f55(const contactless_result& r) {
  auto d = tlv_decode(r.field55);
  REQUIRE(d);
  for (const std::uint32_t never : {0x57u, 0x5Au, 0x5F20u}) CHECK(tlv_find(*d, never) == nullptr);
  return std::move(d).value();
}

bytes value(const std::vector<tlv>& tags, std::uint32_t tag) {
  const tlv* x = tlv_find(tags, tag);
  REQUIRE(x != nullptr);
  return x->value;
}

// The issuer's check: the ARQC recomputed from field 55 with the ICC MK derived from the test
// issuer MK-AC (public test key), PAN and PAN sequence number.
bool arqc_verifies(const tap_run& r) {
  const auto tags = f55(r.res);
  const auto iad = value(tags, 0x9F10);
  const auto version = cvn_from_iad(iad);
  REQUIRE(version);
  std::string pan;
  const auto pan_bcd = r.data.get(0x5A);
  REQUIRE(pan_bcd);
  for (const auto b : *pan_bcd)
    for (const int nib : {b >> 4, b & 0x0F})
      if (nib <= 9) pan.push_back(static_cast<char>('0' + nib));
  const auto psn = r.data.get(0x5F34);
  auto mk =
      derive_icc_mk(hx("0123456789ABCDEFFEDCBA9876543210"), pan, psn ? to_hex(*psn) : "00", mk_option::a);
  REQUIRE(mk);
  ac_inputs in;
  const auto atc = value(tags, 0x9F36);
  in.atc = static_cast<std::uint16_t>((atc[0] << 8) | atc[1]);
  for (const std::uint32_t t : {0x9F02u, 0x9F03u, 0x9F1Au, 0x95u, 0x5F2Au, 0x9Au, 0x9Cu, 0x9F37u}) {
    const auto x = value(tags, t);
    in.data.insert(in.data.end(), x.begin(), x.end());
  }
  in.un = value(tags, 0x9F37);
  const auto aip = value(tags, 0x82);
  in.data.insert(in.data.end(), aip.begin(), aip.end());
  in.data.insert(in.data.end(), atc.begin(), atc.end());
  if (*version == cvn::visa18)
    in.iad_or_cvr = iad;
  else
    in.iad_or_cvr.assign(iad.begin() + 2, iad.begin() + 8);
  auto check = generate_ac(*version, mk->view(), in);
  REQUIRE(check);
  return to_hex(*check) == to_hex(value(tags, 0x9F26));
}

std::uint16_t sw(const bytes& r) {
  return static_cast<std::uint16_t>((r[r.size() - 2] << 8) | r.back());
}

}  // namespace

TEST_CASE("Contactless: qVSDC card answers an ARQC at GPO, online request with a verifiable ARQC") {
  field card(load("visa-qvsdc-contactless.toml"));
  contactless_cache cache(clss());
  const auto r = run(card, cache);
  CHECK(to_string(r.res.outcome) == "online_request");
  CHECK(to_string(r.res.cvm) == "none");
  CHECK(r.res.tap_ms == 312);
  CHECK(to_hex(r.res.aid) == "A0000000031010");
  // One tap: PPSE, then for each terminal AID SELECT, GPO, records (+ GENERATE AC for M/Chip).
  CHECK(to_hex(r.script.front()) == "00A404000E325041592E5359532E444446303100");
  CHECK(r.script.size() == 1 + 3 + 6);
  CHECK(arqc_verifies(r));
  const auto tags = f55(r.res);
  CHECK(to_hex(value(tags, 0x9F66)) == "36804000");  // qVSDC, contact, online PIN, sig; online; CDCVM
  CHECK(to_hex(value(tags, 0x9F27)) == "80");
  CHECK(r.data.has(0x57));  // the track 2 equivalent for the engine
  CHECK(to_hex(*r.data.get(0x5F34)) == "01");
  CHECK(cache.updates() == 0);
}

TEST_CASE("Contactless: the host answer is recorded after an online request") {
  field card(load("visa-qvsdc-contactless.toml"));
  contactless_cache cache(clss());
  contactless_kernel k(term(), clss(), cache, &test_capks(), txn());
  const auto rapdus = card.tap(k.plan());
  REQUIRE(k.evaluate(rapdus, 200).outcome == clss_outcome::online_request);
  online_result host;
  host.approved = true;
  k.feed_online_result(host);
  REQUIRE(k.result().host_approved.has_value());
  CHECK(*k.result().host_approved);
  // A second evaluate changes nothing.
  CHECK(k.evaluate({}, 0).outcome == clss_outcome::online_request);
}

TEST_CASE("Contactless: M/Chip card, ARQC with CDA verified in the tap") {
  field card(load("mc-mchip-contactless.toml"));
  contactless_cache cache(clss());
  const auto r = run(card, cache);
  CHECK(to_string(r.res.outcome) == "online_request");
  CHECK(r.res.reason_code.empty());
  CHECK_FALSE(has_bit(r.tvr, tvr::cda_failed));
  CHECK_FALSE(has_bit(r.tvr, tvr::oda_not_performed));
  CHECK(r.data.has(0x9F4C));  // ICC dynamic number: the signature was recovered and checked
  CHECK(arqc_verifies(r));
  // GENERATE AC asked ARQC with CDA (P1 90).
  CHECK(to_hex(r.script.back()).substr(0, 8) == "80AE9000");
}

TEST_CASE("Contactless: M/Chip card below the floor limit approves offline with a CDA-signed TC") {
  field card(load("mc-mchip-contactless.toml"));
  auto cfg = clss();
  cfg.floor_limit = 3000;
  contactless_cache cache(cfg);
  const auto r = run(card, cache, cfg);
  CHECK(to_string(r.res.outcome) == "approved");
  CHECK(to_hex(*r.data.get(0x9F27)) == "40");
  CHECK(r.res.field55.empty());
}

TEST_CASE("Contactless: M/Chip CDA that cannot be verified (no CA keys) declines") {
  field card(load("mc-mchip-contactless.toml"));
  contactless_cache cache(clss());
  const auto r = run(card, cache, clss(), txn(), nullptr);
  CHECK(to_string(r.res.outcome) == "declined");
  CHECK(r.res.reason_code == "emv.cda_failed");
  CHECK(has_bit(r.tvr, tvr::cda_failed));
}

TEST_CASE("Contactless: over the contactless limit: try another interface without a tap") {
  contactless_cache cache(clss());
  contactless_kernel k(term(), clss(), cache, &test_capks(), txn(100000));
  CHECK(k.plan().empty());
  CHECK(to_string(k.result().outcome) == "try_another_interface");
  CHECK(k.result().reason_code == "emv.clss_over_limit");
}

TEST_CASE("Contactless: a per-AID limit leaves that AID out and its card is sent to another interface") {
  auto cfg = clss();
  cfg.aids[1].transaction_limit = 1000;  // Mastercard only up to 10.00
  field card(load("mc-mchip-contactless.toml"));
  contactless_cache cache(cfg);
  const auto r = run(card, cache, cfg);
  CHECK(r.script.size() == 1 + 3);  // PPSE + the Visa AID only
  CHECK(to_string(r.res.outcome) == "try_another_interface");
}

TEST_CASE("Contactless: a card with two supported AIDs: the PPSE priority decides") {
  // Second application VISA ELECTRON with priority 1; the first drops to priority 2.
  const std::string pdol_line = "pdol = \"9F66049F02069F03069F1A0295055F2A029A039C019F3704\"";
  field card(load("visa-qvsdc-contactless.toml",
                  {{"priority = 1", "priority = 2"},
                   {pdol_line, pdol_line +
                                   "\n\n[[chip.application]]\naid = \"A0000000032010\"\nlabel = "
                                   "\"VISA ELECTRON\"\npriority = 1\npan = \"4761739001010119\"\n"
                                   "expiry = \"291231\"\npan_sequence = \"02\"\naip = \"0080\"\n" +
                                   pdol_line}}));
  auto cfg = clss();
  auto electron = default_visa_contactless();
  electron.aid = hx("A0000000032010");
  cfg.aids.insert(cfg.aids.begin() + 1, electron);  // terminal order: 031010, 032010, 041010
  contactless_cache cache(cfg);
  const auto r = run(card, cache, cfg);
  CHECK(to_string(r.res.outcome) == "online_request");
  CHECK(to_hex(r.res.aid) == "A0000000032010");
  CHECK(to_hex(*r.data.get(0x5F34)) == "02");
  CHECK(arqc_verifies(r));
}

TEST_CASE("Contactless: a card with no AID the terminal supports ends the application") {
  auto cfg = clss();
  cfg.aids.pop_back();  // Visa only
  field card(load("mc-mchip-contactless.toml"));
  contactless_cache cache(cfg);
  const auto r = run(card, cache, cfg);
  CHECK(to_string(r.res.outcome) == "end_application");
  CHECK(r.res.reason_code == "emv.no_application");
}

TEST_CASE("Contactless: CVM-required limit: online PIN, signature, CDCVM") {
  SECTION("qVSDC card without CTQ: online PIN, TTQ says CVM required") {
    field card(load("visa-qvsdc-contactless.toml"));
    contactless_cache cache(clss());
    const auto r = run(card, cache, clss(), txn(6000));
    CHECK(to_string(r.res.outcome) == "online_request");
    CHECK(to_string(r.res.cvm) == "online_pin");
    CHECK(to_hex(*r.data.get(0x9F66)) == "36C04000");
  }
  SECTION("qVSDC, a reader without online PIN: signature") {
    auto cfg = clss();
    cfg.ttq.online_pin = false;
    field card(load("visa-qvsdc-contactless.toml"));
    contactless_cache cache(cfg);
    const auto r = run(card, cache, cfg, txn(6000));
    CHECK(to_string(r.res.cvm) == "signature");
  }
  SECTION("qVSDC, no CVM the reader can do: try another interface") {
    auto cfg = clss();
    cfg.ttq.online_pin = false;
    cfg.ttq.signature = false;
    field card(load("visa-qvsdc-contactless.toml"));
    contactless_cache cache(cfg);
    const auto r = run(card, cache, cfg, txn(6000));
    CHECK(to_string(r.res.outcome) == "try_another_interface");
    CHECK(r.res.reason_code == "emv.clss_cvm_unavailable");
  }
  SECTION("qVSDC phone wallet: CTQ says CDCVM performed") {
    field card(load("visa-qvsdc-cdcvm.toml"));
    contactless_cache cache(clss());
    const auto r = run(card, cache, clss(), txn(6000));
    CHECK(to_string(r.res.outcome) == "online_request");
    CHECK(to_string(r.res.cvm) == "cdcvm_done");
    CHECK(to_hex(value(f55(r.res), 0x9F6C)) == "0080");
    CHECK(to_hex(*r.data.get(0x9F34)) == "010002");
  }
  SECTION("below the limit: no CVM") {
    field card(load("visa-qvsdc-cdcvm.toml"));
    contactless_cache cache(clss());
    const auto r = run(card, cache, clss(), txn(4999));
    CHECK(to_string(r.res.cvm) == "none");
  }
  SECTION("M/Chip card: online PIN from its CVM list") {
    field card(load("mc-mchip-contactless.toml"));
    contactless_cache cache(clss());
    const auto r = run(card, cache, clss(), txn(6000));
    CHECK(to_string(r.res.outcome) == "online_request");
    CHECK(to_string(r.res.cvm) == "online_pin");
  }
  SECTION("M/Chip card with on-device CVM (AIP byte 1 bit 2): CDCVM") {
    field card(load("mc-mchip-contactless.toml",
                    {{"pan_sequence = \"00\"", "pan_sequence = \"00\"\naip = \"3B80\""}}));
    contactless_cache cache(clss());
    const auto r = run(card, cache, clss(), txn(6000));
    CHECK(to_string(r.res.outcome) == "online_request");
    CHECK(to_string(r.res.cvm) == "cdcvm_done");
    CHECK_FALSE(has_bit(r.tvr, tvr::cda_failed));
  }
}

TEST_CASE("Contactless: a PDOL other than the cached one: try again, then the second tap works") {
  SECTION("qVSDC card without 9F03 in its PDOL") {
    field card(load("visa-qvsdc-contactless.toml",
                    {{"pdol = \"9F66049F02069F03069F1A02", "pdol = \"9F66049F02069F1A02"}}));
    contactless_cache cache(clss());
    const auto first = run(card, cache);
    CHECK(to_string(first.res.outcome) == "try_again");
    CHECK(first.res.reason_code == "emv.clss_pdol_changed");
    CHECK(cache.updates() == 1);
    CHECK(to_hex(cache.find(hx("A0000000031010"))->pdol) == "9F66049F02069F1A0295055F2A029A039C019F3704");
    const auto second = run(card, cache);
    CHECK(to_string(second.res.outcome) == "online_request");
    CHECK(cache.updates() == 1);
  }
  SECTION("Mastercard card with a PDOL (the cache expects none)") {
    field card(load("mc-contactless-approve.toml"));
    contactless_cache cache(clss());
    const auto first = run(card, cache);
    CHECK(to_string(first.res.outcome) == "try_again");
    // One record only on this card: the cache drops the two it does not have.
    const auto second = run(card, cache);
    CHECK(to_string(second.res.outcome) == "online_request");
    CHECK(cache.find(hx("A0000000041010"))->records == std::vector<record_ref>{{1, 1}});
    CHECK(arqc_verifies(second));
  }
}

TEST_CASE("Contactless: an AFL with records the cache did not plan: try again, then approved") {
  auto cfg = clss();
  cfg.aids[1].records = {{1, 1}};
  cfg.floor_limit = 3000;
  field card(load("mc-mchip-contactless.toml"));
  contactless_cache cache(cfg);
  const auto first = run(card, cache, cfg);
  CHECK(to_string(first.res.outcome) == "try_again");
  CHECK(first.res.reason_code == "emv.clss_afl_changed");
  const auto second = run(card, cache, cfg);
  CHECK(to_string(second.res.outcome) == "approved");
}

TEST_CASE("Contactless: a CDOL1 other than the cached one: try again") {
  auto cfg = clss();
  cfg.aids[1].cdol1 = hx("9F02069F1A0295055F2A029A039C019F3704");
  field card(load("mc-mchip-contactless.toml"));
  contactless_cache cache(cfg);
  CHECK(run(card, cache, cfg).res.reason_code == "emv.clss_cdol1_changed");
  CHECK(to_string(run(card, cache, cfg).res.outcome) == "online_request");
}

TEST_CASE("Contactless: qVSDC card with fDDA within the floor limit approves offline") {
  auto cfg = clss();
  cfg.floor_limit = 3000;
  field card(load("visa-qvsdc-fdda.toml"));
  contactless_cache cache(cfg);
  SECTION("the default Visa records miss the certificate records: try again, then the TC") {
    const auto first = run(card, cache, cfg);
    CHECK(first.res.reason_code == "emv.clss_afl_changed");
    const auto second = run(card, cache, cfg);
    CHECK(to_string(second.res.outcome) == "approved");
    CHECK(to_hex(*second.data.get(0x9F27)) == "40");
    CHECK(second.data.has(0x9F4C));  // the fDDA signature was verified
    CHECK_FALSE(has_bit(second.tvr, tvr::dda_failed));
  }
  SECTION("without the CA keys the fDDA cannot be verified: declined") {
    cache.find_mutable(hx("A0000000031010"))->records = {{1, 1}, {2, 1}, {2, 2}};
    const auto r = run(card, cache, cfg, txn(), nullptr);
    CHECK(to_string(r.res.outcome) == "declined");
    CHECK(r.res.reason_code == "emv.fdda_failed");
    CHECK(has_bit(r.tvr, tvr::dda_failed));
  }
  SECTION("above the floor limit the TTQ asks for an online cryptogram: ARQC") {
    cache.find_mutable(hx("A0000000031010"))->records = {{1, 1}, {2, 1}, {2, 2}};
    const auto r = run(card, cache, cfg, txn(4000));
    CHECK(to_string(r.res.outcome) == "online_request");
    CHECK(arqc_verifies(r));
  }
}

TEST_CASE("Contactless: a qVSDC card that declines (AAC)") {
  field card(load("visa-qvsdc-contactless.toml", {{"qvsdc = true", "qvsdc = true\ndecline_always = true"}}));
  contactless_cache cache(clss());
  const auto r = run(card, cache);
  CHECK(to_string(r.res.outcome) == "declined");
  CHECK(r.res.reason_code == "emv.card_declined");
}

TEST_CASE("Contactless: malformed answers end the application, never a crash") {
  const auto profile = load("visa-qvsdc-contactless.toml");
  // Script positions: 0 PPSE, 1 SELECT Visa, 2 GPO, 3 READ RECORD.
  auto with = [&](const std::function<void(std::vector<bytes>&)>& tamper) {
    field card(profile);
    contactless_cache cache(clss());
    return run(card, cache, clss(), txn(), &test_capks(), tamper).res;
  };
  SECTION("GPO answer with a broken TLV") {
    const auto r = with([](std::vector<bytes>& a) { a[2] = hx("77FF9000"); });
    CHECK(to_string(r.outcome) == "end_application");
  }
  SECTION("GPO answer without 9F26") {
    const auto r = with([](std::vector<bytes>& a) {
      auto d = tlv_decode(byte_view(a[2]).first(a[2].size() - 2));
      REQUIRE(d);
      auto& kids = (*d)[0].children;
      std::erase_if(kids, [](const tlv& t) { return t.tag == 0x9F26; });
      a[2] = tlv_encode(*d);
      a[2].push_back(0x90);
      a[2].push_back(0x00);
    });
    CHECK(to_string(r.outcome) == "end_application");
    CHECK(r.reason_code == "emv.icc_data_missing");
  }
  SECTION("GPO 6A80") {
    const auto r = with([](std::vector<bytes>& a) { a[2] = hx("6A80"); });
    CHECK(r.reason_code == "emv.gpo_failed");
  }
  SECTION("GPO 6985: the card wants another interface") {
    const auto r = with([](std::vector<bytes>& a) { a[2] = hx("6985"); });
    CHECK(to_string(r.outcome) == "try_another_interface");
  }
  SECTION("READ RECORD 6A83") {
    const auto r = with([](std::vector<bytes>& a) { a[3] = hx("6A83"); });
    CHECK(r.reason_code == "emv.read_record_failed");
  }
  SECTION("PPSE not found") {
    const auto r = with([](std::vector<bytes>& a) { a[0] = hx("6A82"); });
    CHECK(to_string(r.outcome) == "end_application");
  }
  SECTION("blocked application (SELECT 6283)") {
    const auto r = with([](std::vector<bytes>& a) { a[1] = hx("6283"); });
    CHECK(r.reason_code == "emv.clss_select_failed");
  }
  SECTION("a one-byte answer") {
    const auto r = with([](std::vector<bytes>& a) { a[3] = hx("90"); });
    CHECK(r.reason_code == "emv.clss_bad_answer");
  }
  SECTION("the card left the field after the GPO") {
    const auto r = with([](std::vector<bytes>& a) { a.resize(3); });
    CHECK(to_string(r.outcome) == "try_again");
  }
  SECTION("every answer replaced by truncations and bit flips") {
    field card(profile);
    contactless_cache cache(clss());
    contactless_kernel k(term(), clss(), cache, &test_capks(), txn());
    const auto good = card.tap(k.plan());
    int ends = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
      for (std::size_t cut = 0; cut < good[i].size(); cut += 3) {
        for (const bool flip : {false, true}) {
          auto a = good;
          a[i].resize(cut);
          if (flip && !a[i].empty()) a[i][a[i].size() / 2] ^= 0x41;
          if (a[i].size() >= 2 && sw(good[i]) == 0x9000) {
            a[i].push_back(0x90);
            a[i].push_back(0x00);
          }
          contactless_cache c2(clss());
          contactless_kernel k2(term(), clss(), c2, &test_capks(), txn());
          (void)k2.plan();
          const auto& r = k2.evaluate(a, 0);
          if (r.outcome == clss_outcome::end_application) ++ends;
          if (r.outcome == clss_outcome::online_request) f55(r);
        }
      }
    }
    CHECK(ends > 0);
  }
}

namespace {
// The minimal configuration plus [emv].
const std::string config_base = eftd::test::minimal_config_toml + R"(
[emv]
capk_file = "capk.toml"
)";
}  // namespace

TEST_CASE("Contactless: [emv.contactless] configuration") {
  SECTION("limits, TTQ and an AID table with defaults filled in") {
    auto cfg = config::parse_config(config_base + R"(
[emv.contactless]
enabled = true
transaction_limit = 100000
cvm_required_limit = 10000
floor_limit = 0
cdcvm = false

[[emv.contactless.aid]]
aid = "A0000000041010"
kernel = "mchip"
records = ["1.1", "2.1"]
transaction_limit = 50000
)",
                                    "/base");
    if (!cfg) FAIL(cfg.err().message);
    const auto& c = cfg->emv.contactless;
    CHECK(c.enabled);
    CHECK(c.transaction_limit == std::optional<std::uint64_t>(100000));
    auto k = contactless_config_from(c);
    REQUIRE(k);
    REQUIRE(k->aids.size() == 1);
    CHECK(k->aids[0].path == clss_path::mchip);
    CHECK(k->aids[0].records == std::vector<record_ref>{{1, 1}, {2, 1}});
    CHECK(to_hex(k->aids[0].cdol1) == "9F02069F03069F1A0295055F2A029A039C019F3704");
    CHECK(k->aids[0].transaction_limit == std::optional<std::uint64_t>(50000));
    CHECK(k->cvm_required_limit == std::optional<std::uint64_t>(10000));
    CHECK_FALSE(k->ttq.cdcvm);
  }
  SECTION("no AID tables: the Visa and Mastercard defaults") {
    auto cfg = config::parse_config(config_base + "\n[emv.contactless]\nenabled = true\n", "/base");
    REQUIRE(cfg);
    auto k = contactless_config_from(cfg->emv.contactless);
    REQUIRE(k);
    REQUIRE(k->aids.size() == 2);
    CHECK(k->aids[0].path == clss_path::qvsdc);
    CHECK(k->aids[1].path == clss_path::mchip);
    CHECK_FALSE(k->transaction_limit.has_value());
  }
  SECTION("errors name the key") {
    auto cfg = config::parse_config(config_base + R"(
[emv.contactless]
transaction_limit = -1
colour = "red"

[[emv.contactless.aid]]
aid = "A000"
kernel = "amex"
records = ["1-1"]
pdol = "XYZ"
)",
                                    "/base");
    REQUIRE_FALSE(cfg);
    const std::string m = cfg.err().message;
    for (const char* key : {"emv.contactless.transaction_limit", "emv.contactless.colour",
                            "emv.contactless.aid[0].aid", "emv.contactless.aid[0].kernel",
                            "emv.contactless.aid[0].records[0]", "emv.contactless.aid[0].pdol"})
      CHECK(m.find(key) != std::string::npos);
  }
}
