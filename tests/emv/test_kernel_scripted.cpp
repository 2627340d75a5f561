// Kernel flows against a programmable card: application selection edge cases, GPO and record
// checks, one test per TVR condition the kernel sets, CVM, TRM, action analysis, online
// completion (issuer authentication, scripts, second GENERATE AC) and misuse of the API.
#include "eftd/core/crypto.hpp"
#include "fake_card.hpp"

using namespace eftd;
using namespace eftd::emv;
using namespace eftd::emv::test;

namespace {

struct run_result {
  contact_kernel::finished fin;
  std::string tvr;
  std::string tsi;
  driver d;
};

// Runs one transaction; `tune` adjusts the driver (PIN answers, host answer...).
run_result run(fake_card& card, const terminal_config& cfg, const transaction& txn,
               const std::function<void(driver&)>& tune = {}) {
  contact_kernel k(cfg, nullptr, txn);
  run_result r;
  r.d.card = [&](const bytes& c) { return card.transmit(c); };
  if (tune) tune(r.d);
  r.fin = r.d.run(k);
  r.tvr = to_hex(k.tvr());
  r.tsi = to_hex(k.tsi());
  return r;
}

record_fields no_cvm_card() {
  record_fields f;
  f.cvm_list = hx("00000000000000001F00");
  return f;
}

bool tvr_has(const std::string& tvr_hex, bit b) {
  auto v = from_hex(tvr_hex);
  return v && ((*v)[b.byte] & b.mask) != 0;
}

std::string ins_list(const std::vector<bytes>& log) {
  std::string s;
  for (const auto& c : log) {
    if (!s.empty()) s += ' ';
    s += to_hex(byte_view(c).first(2));
  }
  return s;
}

}  // namespace

// ---- application selection -------------------------------------------------------------

TEST_CASE("Selection: PSE directory lists the candidates by priority and the cardholder chooses") {
  fake_card card;
  card.pse = true;
  auto a = visa_app(no_cvm_card());
  a.priority = 2;
  a.label = "VISA CREDIT";
  auto b = visa_app(no_cvm_card());
  b.aid = hx("A0000000032010");
  b.label = "VISA ELECTRON";
  b.priority = 1;
  card.apps = {a, b};
  auto cfg = test_terminal();
  cfg.use_pse = true;
  cfg.applications[0].aid = hx("A000000003");  // partial match covers both
  std::vector<std::string> labels;
  auto r = run(card, cfg, test_transaction(), [&](driver& d) {
    d.choose = [&](contact_kernel& k, const contact_kernel::choose_application& c) {
      for (const auto& x : c.list) labels.push_back(x.label);
      k.feed_choice(1);  // VISA CREDIT, second by priority
    };
  });
  CHECK(labels == std::vector<std::string>{"VISA ELECTRON", "VISA CREDIT"});
  CHECK(to_string(r.fin.o) == "approved_offline");
  // The final SELECT went to the chosen AID.
  bool selected_credit = false;
  for (const auto& c : card.log)
    if (c.size() > 5 && c[1] == 0xA4 && to_hex(byte_view(c).subspan(5, 7)) == "A0000000031010")
      selected_credit = true;
  CHECK(selected_credit);
}

TEST_CASE("Selection: list of AIDs with partial matching uses SELECT next and skips a blocked application") {
  fake_card card;
  auto blocked = visa_app(no_cvm_card());
  blocked.aid = hx("A0000000031010");
  blocked.select_sw = 0x6283;
  auto ok = visa_app(no_cvm_card());
  ok.aid = hx("A0000000032010");
  card.apps = {blocked, ok};
  auto cfg = test_terminal();
  cfg.applications[0].aid = hx("A000000003");
  int choices = 0;
  auto r = run(card, cfg, test_transaction(), [&](driver& d) {
    d.choose = [&](contact_kernel& k, const contact_kernel::choose_application&) {
      ++choices;
      k.feed_choice(0);
    };
  });
  CHECK(choices == 0);  // one candidate left, no confirmation needed: no prompt
  CHECK(to_string(r.fin.o) == "approved_offline");
  // SELECT A000000003 (P2 00), then P2 02 twice (next, next -> not found), final SELECT.
  int select_next = 0;
  for (const auto& c : card.log)
    if (c[1] == 0xA4 && c[3] == 0x02) ++select_next;
  CHECK(select_next == 2);
}

TEST_CASE("Selection: exact AIDs without partial matching ignore longer card AIDs") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.aid = hx("A000000003101001");
  card.apps = {a};
  auto cfg = test_terminal();
  cfg.applications[0].partial_match = false;
  auto r = run(card, cfg, test_transaction());
  CHECK(to_string(r.fin.o) == "fallback_to_magstripe");
  CHECK(r.fin.reason_code == "emv.no_application");
}

TEST_CASE("Selection: no mutual application ends the chip session, with or without fallback") {
  fake_card card;
  auto a = visa_app();
  a.aid = hx("A0000000651010");
  card.apps = {a};
  auto cfg = test_terminal();
  CHECK(to_string(run(card, cfg, test_transaction()).fin.o) == "fallback_to_magstripe");
  cfg.fallback_on_no_application = false;
  fake_card card2;
  card2.apps = {a};
  CHECK(to_string(run(card2, cfg, test_transaction()).fin.o) == "end_application");
}

TEST_CASE("Selection: a blocked card (PSE 6A81) ends the session") {
  fake_card card;
  card.pse = true;
  card.pse_sw = 0x6A81;
  card.apps = {visa_app()};
  auto cfg = test_terminal();
  cfg.use_pse = true;
  auto r = run(card, cfg, test_transaction());
  CHECK(to_string(r.fin.o) == "end_application");
  CHECK(r.fin.reason_code == "emv.card_blocked");
}

TEST_CASE("Selection: a single application that needs confirmation is confirmed, or dropped without a pad") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.priority = 0x81;
  card.apps = {a};
  auto cfg = test_terminal();
  bool asked = false;
  auto r = run(card, cfg, test_transaction(), [&](driver& d) {
    d.choose = [&](contact_kernel& k, const contact_kernel::choose_application& c) {
      asked = true;
      CHECK(c.list.size() == 1);
      CHECK(c.list[0].confirmation_required);
      k.feed_choice(0);
    };
  });
  CHECK(asked);
  CHECK(to_string(r.fin.o) == "approved_offline");

  cfg.cardholder_selection = false;
  fake_card card2;
  card2.apps = {a};
  CHECK(to_string(run(card2, cfg, test_transaction()).fin.o) == "fallback_to_magstripe");
}

TEST_CASE("Selection: the cardholder cancelling the choice ends the transaction") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  auto b = visa_app(no_cvm_card());
  b.aid = hx("A0000000041010");
  card.apps = {a, b};
  auto r = run(card, test_terminal(), test_transaction(), [](driver& d) {
    d.choose = [](contact_kernel& k, const contact_kernel::choose_application&) {
      k.feed_choice_cancelled();
    };
  });
  CHECK(to_string(r.fin.o) == "end_application");
  CHECK(r.fin.reason_code == "emv.cancelled");
}

TEST_CASE("GPO 6985 removes the application and the next candidate is used") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.gpo_sw = 0x6985;
  auto b = visa_app(no_cvm_card());
  b.aid = hx("A0000000041010");
  card.apps = {a, b};
  int prompts = 0;
  auto r = run(card, test_terminal(), test_transaction(), [&](driver& d) {
    d.choose = [&](contact_kernel& k, const contact_kernel::choose_application& c) {
      ++prompts;
      CHECK(c.list.size() == 2);
      k.feed_choice(0);
    };
  });
  CHECK(prompts == 1);  // after the 6985 one candidate remains: selected without a prompt
  CHECK(to_string(r.fin.o) == "approved_offline");
  CHECK(ins_list(card.log) == "00A4 00A4 00A4 00A4 00A4 80A8 00A4 80A8 00B2 80AE");
}

TEST_CASE("GPO: PDOL data is built from terminal data") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.pdol = hx("9F1A025F2A029F0206");
  card.apps = {a};
  run(card, test_terminal(), test_transaction(1234));
  bytes gpo;
  for (const auto& c : card.log)
    if (c[1] == 0xA8) gpo = c;
  CHECK(to_hex(gpo) ==
        "80A800000C830A061609850000000012340"
        "0");
}

TEST_CASE("GPO: a broken AFL or answer ends the transaction") {
  fake_card card;
  auto a = visa_app();
  a.afl = hx("08020100");  // last record before the first
  card.apps = {a};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(to_string(r.fin.o) == "end_application");
  CHECK(r.fin.reason_code == "emv.bad_gpo_response");
}

// ---- records -----------------------------------------------------------------------------

TEST_CASE("Records: a tag twice ends the transaction") {
  fake_card card;
  record_fields f;
  f.extra = tlvb(0x5F24, hx("301231"));
  card.apps = {visa_app(f)};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(r.fin.reason_code == "emv.duplicate_data");
  CHECK(to_string(r.fin.o) == "end_application");
}

TEST_CASE("Records: mandatory data missing ends the transaction") {
  fake_card card;
  auto a = visa_app();
  // A record without CDOL2 (8D).
  a.records[{1, 1}] = tlvb(
      0x70, cat({tlvb(0x5A, hx("4761739001010119")), tlvb(0x5F24, hx("291231")), tlvb(0x8C, hx("9F0206"))}));
  card.apps = {a};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(r.fin.reason_code == "emv.icc_data_missing");
}

TEST_CASE("Records: malformed TLV or a non-70 record in SFI 1-10 ends the transaction") {
  fake_card card;
  auto a = visa_app();
  a.records[{1, 1}] = hx("7005 5A08 4761");  // length overflow
  card.apps = {a};
  CHECK(run(card, test_terminal(), test_transaction()).fin.reason_code == "emv.bad_record");
  fake_card card2;
  auto b = visa_app();
  b.records[{1, 1}] = hx("6F035A0100");
  card2.apps = {b};
  CHECK(run(card2, test_terminal(), test_transaction()).fin.reason_code == "emv.bad_record");
}

TEST_CASE("Records: a record the AFL names but the card lacks ends the transaction") {
  fake_card card;
  auto a = visa_app();
  a.afl = hx("08010200");
  card.apps = {a};
  CHECK(run(card, test_terminal(), test_transaction()).fin.reason_code == "emv.read_record_failed");
}

// ---- TVR byte 1: ODA and exception file ----------------------------------------------

TEST_CASE("TVR: offline data authentication not performed") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::oda_not_performed));
  CHECK(r.tsi.substr(0, 1) != "8");
}

TEST_CASE("TVR: SDA selected and SDA failed (no CA key)") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.aip = hx("5C00");
  a.afl = hx("08010101");
  record_fields f = no_cvm_card();
  f.extra = cat({tlvb(0x8F, hx("94")), tlvb(0x90, bytes(144, 0x11)), tlvb(0x9F32, hx("03")),
                 tlvb(0x93, bytes(144, 0x22))});
  a.records[{1, 1}] = make_record(f);
  card.apps = {a};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::sda_selected));
  CHECK(tvr_has(r.tvr, tvr::sda_failed));
  CHECK_FALSE(tvr_has(r.tvr, tvr::oda_not_performed));
  CHECK(r.tsi.substr(0, 1) == "E");  // ODA, CVM and card risk management performed
}

TEST_CASE("TVR: ICC data missing when the ODA data is absent (and DDA failed)") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.aip = hx("3C00");  // DDA
  card.apps = {a};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::icc_data_missing));
  CHECK(tvr_has(r.tvr, tvr::dda_failed));
}

TEST_CASE("TVR: DDA failed when the CA key is unknown") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.aip = hx("3C00");
  a.afl = hx("08010101");
  record_fields f = no_cvm_card();
  f.extra = cat({tlvb(0x8F, hx("94")), tlvb(0x90, bytes(144, 0x11)), tlvb(0x9F32, hx("03")),
                 tlvb(0x9F46, bytes(144, 0x33)), tlvb(0x9F47, hx("03"))});
  a.records[{1, 1}] = make_record(f);
  card.apps = {a};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::dda_failed));
  CHECK_FALSE(tvr_has(r.tvr, tvr::icc_data_missing));
  // No INTERNAL AUTHENTICATE without an ICC key.
  CHECK(ins_list(card.log).find("0088") == std::string::npos);
}

TEST_CASE("TVR: CDA failed when the keys cannot be recovered, no CDA request at GENERATE AC") {
  fake_card card;
  auto a = visa_app(no_cvm_card());
  a.aip = hx("1D00");  // CDA
  a.afl = hx("08010101");
  record_fields f = no_cvm_card();
  f.extra = cat({tlvb(0x8F, hx("94")), tlvb(0x90, bytes(144, 0x11)), tlvb(0x9F32, hx("03")),
                 tlvb(0x9F46, bytes(144, 0x33)), tlvb(0x9F47, hx("03"))});
  a.records[{1, 1}] = make_record(f);
  card.apps = {a};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::cda_failed));
  REQUIRE(card.genac_p1.size() == 1);
  CHECK((card.genac_p1[0] & 0x10) == 0);
}

TEST_CASE("TVR: card on the exception file") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto cfg = test_terminal();
  cfg.exception_file.push_back(sha256(as_bytes("4761739001010119")));
  auto r = run(card, cfg, test_transaction());
  CHECK(tvr_has(r.tvr, tvr::exception_file));
}

// ---- TVR byte 2: processing restrictions and new card -----------------------------------

TEST_CASE("TVR: different application versions") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.app_version = hx("0003");
  card.apps = {visa_app(f)};
  CHECK(tvr_has(run(card, test_terminal(), test_transaction()).tvr, tvr::different_versions));
}

TEST_CASE("TVR: expired application") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.expiry = hx("251121");
  card.apps = {visa_app(f)};
  CHECK(tvr_has(run(card, test_terminal(), test_transaction()).tvr, tvr::expired));
}

TEST_CASE("TVR: application not yet effective") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.effective = hx("251123");
  card.apps = {visa_app(f)};
  CHECK(tvr_has(run(card, test_terminal(), test_transaction()).tvr, tvr::not_yet_effective));
}

TEST_CASE("TVR: requested service not allowed (AUC, international goods)") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.auc = hx("AB00");             // domestic only
  f.issuer_country = hx("0276");  // issued elsewhere
  card.apps = {visa_app(f)};
  CHECK(tvr_has(run(card, test_terminal(), test_transaction()).tvr, tvr::service_not_allowed));
}

TEST_CASE("TVR: new card, LCOL and UCOL exceeded via GET DATA") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.extra = cat({tlvb(0x9F14, hx("02")), tlvb(0x9F23, hx("05"))});
  card.apps = {visa_app(f)};
  card.get_data[0x9F36] = with_sw(tlvb(0x9F36, hx("0007")), 0x9000);
  card.get_data[0x9F13] = with_sw(tlvb(0x9F13, hx("0000")), 0x9000);
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::new_card));
  CHECK(tvr_has(r.tvr, tvr::lcol_exceeded));
  CHECK(tvr_has(r.tvr, tvr::ucol_exceeded));
}

TEST_CASE("TVR: LCOL exceeded only") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.extra = cat({tlvb(0x9F14, hx("02")), tlvb(0x9F23, hx("05"))});
  card.apps = {visa_app(f)};
  card.get_data[0x9F36] = with_sw(tlvb(0x9F36, hx("0010")), 0x9000);
  card.get_data[0x9F13] = with_sw(tlvb(0x9F13, hx("000D")), 0x9000);
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::lcol_exceeded));
  CHECK_FALSE(tvr_has(r.tvr, tvr::ucol_exceeded));
  CHECK_FALSE(tvr_has(r.tvr, tvr::new_card));
}

// ---- TVR byte 3: cardholder verification ----------------------------------------------

TEST_CASE("TVR: cardholder verification not successful (fail CVM)") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("00000000000000000000");
  card.apps = {visa_app(f)};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(tvr_has(r.tvr, tvr::cvm_not_successful));
}

TEST_CASE("TVR: unrecognised CVM, then the next rule applies") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("000000000000000050001F00");  // method 10 (RFU) with apply-next, then no CVM
  card.apps = {visa_app(f)};
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.run(k);
  CHECK(has_bit(k.tvr(), tvr::unrecognised_cvm));
  CHECK_FALSE(has_bit(k.tvr(), tvr::cvm_not_successful));
  CHECK(to_hex(*k.data().get(0x9F34)) == "1F0002");
}

TEST_CASE("TVR: PIN try limit exceeded (9F17 = 0), then signature") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("000000000000000041031E03");
  card.apps = {visa_app(f)};
  card.get_data[0x9F17] = with_sw(tlvb(0x9F17, hx("00")), 0x9000);
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.offline_pin = [](contact_kernel&, const contact_kernel::need_offline_pin&) {
    FAIL("no PIN prompt expected");
  };
  d.run(k);
  CHECK(has_bit(k.tvr(), tvr::pin_try_limit_exceeded));
  CHECK(d.signatures == 1);
  CHECK(to_hex(*k.data().get(0x9F34)) == "1E0300");
}

TEST_CASE("TVR: PIN try limit exceeded on the last wrong PIN (63C0)") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("00000000000000000103");
  card.apps = {visa_app(f)};
  card.get_data[0x9F17] = with_sw(tlvb(0x9F17, hx("02")), 0x9000);
  std::vector<int> tries;
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.offline_pin = [&](contact_kernel& kk, const contact_kernel::need_offline_pin& p) {
    tries.push_back(p.tries_left ? *p.tries_left : -1);
    kk.feed_rapdu(tries.size() == 1 ? hx("63C1") : hx("63C0"));
  };
  d.run(k);
  CHECK(tries == std::vector<int>{2, 1});
  CHECK(has_bit(k.tvr(), tvr::pin_try_limit_exceeded));
  CHECK(has_bit(k.tvr(), tvr::cvm_not_successful));
  CHECK(to_hex(*k.data().get(0x9F34)) == "010301");
}

TEST_CASE("TVR: PIN pad not working") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("000000000000000042031F00");
  card.apps = {visa_app(f)};
  auto r = run(card, test_terminal(), test_transaction(), [](driver& d) {
    d.online_pin = [](contact_kernel& k) { k.feed_pin_result(pin_result::failed); };
  });
  CHECK(tvr_has(r.tvr, tvr::pin_pad_not_working));
}

TEST_CASE("TVR: PIN required, pad present, PIN not entered (bypass)") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("000000000000000042034103");  // online PIN, then offline PIN
  card.apps = {visa_app(f)};
  int offline_prompts = 0;
  auto r = run(card, test_terminal(), test_transaction(), [&](driver& d) {
    d.online_pin = [](contact_kernel& k) { k.feed_pin_result(pin_result::bypassed); };
    d.offline_pin = [&](contact_kernel& k, const contact_kernel::need_offline_pin&) {
      ++offline_prompts;
      k.feed_rapdu(hx("9000"));
    };
  });
  CHECK(tvr_has(r.tvr, tvr::pin_not_entered));
  CHECK(offline_prompts == 0);  // a bypassed PIN counts for the later PIN methods too
  CHECK(tvr_has(r.tvr, tvr::cvm_not_successful));
}

TEST_CASE("TVR: online PIN entered, 9F34 result unknown") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("00000000000000000200");
  card.apps = {visa_app(f)};
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.run(k);
  CHECK(has_bit(k.tvr(), tvr::online_pin_entered));
  CHECK(to_hex(*k.data().get(0x9F34)) == "020000");
}

TEST_CASE("CVM: amount conditions pick the rule (X in the application currency)") {
  // Rule 1: signature if amount > X (10.00); rule 2: no CVM always.
  for (const auto& [amount, want] :
       std::vector<std::pair<std::uint64_t, std::string>>{{500, "1F0002"}, {5000, "1E0700"}}) {
    fake_card card;
    record_fields f;
    f.cvm_list = hx("000003E8000000001E071F00");
    card.apps = {visa_app(f)};
    contact_kernel k(test_terminal(), nullptr, test_transaction(amount));
    driver d;
    d.card = [&](const bytes& c) { return card.transmit(c); };
    d.run(k);
    CHECK(to_hex(*k.data().get(0x9F34)) == want);
  }
}

TEST_CASE("CVM: offline plaintext PIN with a wrong try first") {
  fake_card card;
  record_fields f;
  f.cvm_list = hx("00000000000000000100");
  card.apps = {visa_app(f)};
  int prompts = 0;
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.offline_pin = [&](contact_kernel& kk, const contact_kernel::need_offline_pin& p) {
    CHECK_FALSE(p.enciphered);
    kk.feed_rapdu(++prompts == 1 ? hx("63C2") : hx("9000"));
  };
  d.run(k);
  CHECK(prompts == 2);
  CHECK(to_hex(*k.data().get(0x9F34)) == "010002");
  CHECK(to_hex(k.tvr()).substr(4, 2) == "00");
}

TEST_CASE("CVM: the card without CVM support in its AIP skips cardholder verification") {
  fake_card card;
  auto a = visa_app();
  a.aip = hx("0C00");
  card.apps = {a};
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.run(k);
  CHECK(to_hex(*k.data().get(0x9F34)) == "3F0000");
  CHECK((k.tsi()[0] & 0x40) == 0);
}

// ---- TVR byte 4: terminal risk management ---------------------------------------------

TEST_CASE("TVR: floor limit exceeded -> online") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.iac_online = hx("0000008000");
  card.apps = {visa_app(f)};
  auto r = run(card, test_terminal(), test_transaction(100000));
  CHECK(tvr_has(r.tvr, tvr::floor_limit_exceeded));
  CHECK(to_string(r.fin.o) == "approved_online");
  CHECK(r.d.online_requests == 1);
}

TEST_CASE("TVR: floor limit exceeded with the transaction log amount") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto txn = test_transaction(60000);
  txn.logged_amount_same_card = 40000;
  CHECK(tvr_has(run(card, test_terminal(), txn).tvr, tvr::floor_limit_exceeded));
}

TEST_CASE("TVR: transaction selected randomly for online processing") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto cfg = test_terminal();
  cfg.applications[0].random_target_percent = 99;
  cfg.applications[0].random_max_percent = 99;
  auto r = run(card, cfg, test_transaction());
  CHECK(tvr_has(r.tvr, tvr::random_selection));
}

TEST_CASE("TVR: merchant forced online") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto txn = test_transaction();
  txn.force_online = true;
  CHECK(tvr_has(run(card, test_terminal(), txn).tvr, tvr::merchant_forced_online));
}

// ---- TVR byte 5 and online completion --------------------------------------------------

namespace {
terminal_config online_only() {
  auto cfg = test_terminal();
  cfg.terminal_type = 0x21;
  return cfg;
}
}  // namespace

TEST_CASE("TVR: issuer authentication failed (EXTERNAL AUTHENTICATE 6300)") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  card.external_auth_sw = 0x6300;
  auto r = run(card, online_only(), test_transaction(), [](driver& d) {
    d.online = [](contact_kernel& k, const contact_kernel::go_online&) {
      online_result o;
      o.approved = true;
      o.arc = {'0', '0'};
      o.issuer_auth_data = hx("11223344556677883030");
      k.feed_online_result(o);
    };
  });
  CHECK(tvr_has(r.tvr, tvr::issuer_auth_failed));
  CHECK((from_hex(r.tsi)->at(0) & 0x10) != 0);  // issuer authentication performed
  CHECK(ins_list(card.log).find("0082") != std::string::npos);
}

TEST_CASE("TVR: script processing failed before and after the final GENERATE AC, 9F5B results") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  card.other_sw = 0x6A80;
  contact_kernel k(online_only(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.online = [](contact_kernel& kk, const contact_kernel::go_online&) {
    online_result o;
    o.approved = true;
    o.arc = {'0', '0'};
    // 71 { 9F18 id 00000001, 86 script command }, 72 { 86 command }
    o.scripts =
        cat({tlvb(0x71, cat({tlvb(0x9F18, hx("00000001")), tlvb(0x86, hx("8424000008AABBCCDDEEFF0011"))})),
             tlvb(0x72, tlvb(0x86, hx("841E000008AABBCCDDEEFF0011")))});
    kk.feed_online_result(o);
  };
  const auto fin = d.run(k);
  CHECK(to_string(fin.o) == "approved_online");
  CHECK(has_bit(k.tvr(), tvr::script_failed_before_final_ac));
  CHECK(has_bit(k.tvr(), tvr::script_failed_after_final_ac));
  CHECK(has_bit(k.tsi(), tsi::script_performed));
  CHECK(to_hex(*k.data().get(0x9F5B)) == "11000000011100000000");
  // Order: 71 command before the second GENERATE AC, 72 after it.
  CHECK(ins_list(card.log).substr(ins_list(card.log).size() - 14) == "8424 80AE 841E");
}

TEST_CASE("Online: scripts that succeed are reported successful") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  contact_kernel k(online_only(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.online = [](contact_kernel& kk, const contact_kernel::go_online&) {
    online_result o;
    o.approved = true;
    o.scripts = tlvb(0x72, cat({tlvb(0x9F18, hx("0000000A")), tlvb(0x86, hx("8418000008AABBCCDDEEFF0011"))}));
    kk.feed_online_result(o);
  };
  d.run(k);
  CHECK(to_hex(*k.data().get(0x9F5B)) == "200000000A");
  CHECK(to_hex(k.tvr()).substr(8) == "00");
}

TEST_CASE("Outcome: card declines at the first GENERATE AC") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  card.genac = [](std::uint8_t, const bytes&, int) {
    return with_sw(tlvb(0x80, cat({hx("00"), hx("0001"), hx("1122334455667788")})), 0x9000);
  };
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(to_string(r.fin.o) == "declined_offline");
  CHECK(r.fin.reason_code == "emv.card_declined");
}

TEST_CASE("Outcome: terminal denial codes ask for an AAC") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.iac_denial = hx("8000000000");  // ODA not performed -> deny
  card.apps = {visa_app(f)};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(to_string(r.fin.o) == "declined_offline");
  CHECK(r.fin.reason_code == "emv.terminal_declined");
  REQUIRE(card.genac_p1.size() == 1);
  CHECK(card.genac_p1[0] == 0x00);
}

TEST_CASE("Outcome: the card answers TC when an ARQC was asked: terminate") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  card.genac = [](std::uint8_t, const bytes&, int) {
    return with_sw(tlvb(0x80, cat({hx("40"), hx("0001"), hx("1122334455667788")})), 0x9000);
  };
  auto r = run(card, online_only(), test_transaction());
  CHECK(to_string(r.fin.o) == "end_application");
  CHECK(r.fin.reason_code == "emv.generate_ac_failed");
}

TEST_CASE("Outcome: host approves, card declines at the second GENERATE AC: reverse") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  card.genac = [](std::uint8_t p1, const bytes&, int n) {
    const std::uint8_t cid = n == 0 ? (p1 & 0xC0) : 0x00;
    return with_sw(tlvb(0x80, cat({bytes{cid}, hx("0001"), hx("1122334455667788")})), 0x9000);
  };
  auto r = run(card, online_only(), test_transaction());
  CHECK(to_string(r.fin.o) == "declined_after_approval");
  REQUIRE(card.genac_p1.size() == 2);
  CHECK(card.genac_p1[1] == 0x40);
}

TEST_CASE("Outcome: host declines -> AAC at the second GENERATE AC") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto r = run(card, online_only(), test_transaction(), [](driver& d) {
    d.online = [](contact_kernel& k, const contact_kernel::go_online&) {
      online_result o;
      o.approved = false;
      o.arc = {'0', '5'};
      k.feed_online_result(o);
    };
  });
  CHECK(to_string(r.fin.o) == "declined_online");
  REQUIRE(card.genac_p1.size() == 2);
  CHECK(card.genac_p1[1] == 0x00);
  // CDOL2 starts with the ARC.
  bytes second;
  for (const auto& c : card.log)
    if (c[1] == 0xAE) second = c;
  CHECK(to_hex(byte_view(second).subspan(5, 2)) == "3035");
}

TEST_CASE("Outcome: unable to go online, default codes allow -> TC with Y3") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto r = run(card, online_only(), test_transaction(), [](driver& d) {
    d.online = [](contact_kernel& k, const contact_kernel::go_online&) { k.feed_online_failed(); };
  });
  CHECK(to_string(r.fin.o) == "approved_offline");
  CHECK(r.fin.reason_code == "emv.unable_online_approved");
  REQUIRE(card.genac_p1.size() == 2);
  CHECK(card.genac_p1[1] == 0x40);
}

TEST_CASE("Outcome: unable to go online, default IAC covers the TVR -> AAC with Z3") {
  fake_card card;
  record_fields f = no_cvm_card();
  f.iac_default = hx("8000000000");
  card.apps = {visa_app(f)};
  auto r = run(card, online_only(), test_transaction(), [](driver& d) {
    d.online = [](contact_kernel& k, const contact_kernel::go_online&) { k.feed_online_failed(); };
  });
  CHECK(to_string(r.fin.o) == "declined_offline");
  CHECK(r.fin.reason_code == "emv.unable_online_declined");
}

TEST_CASE("Field 55 from a real flow has the required tags and no card data") {
  fake_card card;
  card.apps = {visa_app(no_cvm_card())};
  auto r = run(card, online_only(), test_transaction());
  auto f55 = tlv_decode(r.d.field55);
  REQUIRE(f55);
  for (const std::uint32_t must :
       {0x9F26u, 0x9F27u, 0x9F10u, 0x9F37u, 0x9F36u, 0x95u, 0x9Au, 0x9Cu, 0x9F02u, 0x9F03u, 0x5F2Au, 0x82u,
        0x9F1Au, 0x9F33u, 0x9F34u, 0x9F35u, 0x84u, 0x9F09u, 0x9F1Eu}) {
    INFO("tag " << std::hex << must);
    CHECK(tlv_find(*f55, must) != nullptr);
  }
  for (const std::uint32_t never : {0x57u, 0x5Au, 0x5F20u}) CHECK(tlv_find(*f55, never) == nullptr);
}

// ---- API use -----------------------------------------------------------------------------

TEST_CASE("API: next() repeats the pending step, a wrong answer ends the transaction") {
  fake_card card;
  card.apps = {visa_app()};
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  auto s1 = k.next();
  auto s2 = k.next();
  REQUIRE(std::holds_alternative<contact_kernel::send_apdu>(s1));
  REQUIRE(std::holds_alternative<contact_kernel::send_apdu>(s2));
  CHECK(std::get<contact_kernel::send_apdu>(s1).capdu == std::get<contact_kernel::send_apdu>(s2).capdu);
  k.feed_choice(0);
  auto s3 = k.next();
  REQUIRE(std::holds_alternative<contact_kernel::finished>(s3));
  CHECK(std::get<contact_kernel::finished>(s3).reason_code == "emv.kernel_misuse");
}

TEST_CASE("API: a transmission failure ends the transaction, destroying a kernel mid-flow is safe") {
  fake_card card;
  card.apps = {visa_app()};
  {
    contact_kernel k(test_terminal(), nullptr, test_transaction());
    (void)k.next();
    k.feed_rapdu(card.transmit(std::get<contact_kernel::send_apdu>(k.next()).capdu));
    (void)k.next();
    k.feed_transmit_failed();
    auto s = k.next();
    REQUIRE(std::holds_alternative<contact_kernel::finished>(s));
    CHECK(std::get<contact_kernel::finished>(s).reason_code == "emv.card_error");
  }
  {
    contact_kernel k(test_terminal(), nullptr, test_transaction());
    (void)k.next();  // suspended inside the selection coroutines
  }
}

TEST_CASE("API: reason codes and the kernel's errors never carry the PAN") {
  fake_card card;
  record_fields f;
  f.extra = tlvb(0x5A, hx("4761739001010119"));  // duplicate PAN
  card.apps = {visa_app(f)};
  auto r = run(card, test_terminal(), test_transaction());
  CHECK(r.fin.reason_code.find("4761") == std::string::npos);
  CHECK(r.fin.reason_code == "emv.duplicate_data");
}

TEST_CASE("TVR: ICC data missing when the card supports CVM but has no CVM list") {
  fake_card card;
  record_fields f;
  f.cvm_list = std::nullopt;
  card.apps = {visa_app(f)};
  contact_kernel k(test_terminal(), nullptr, test_transaction());
  driver d;
  d.card = [&](const bytes& c) { return card.transmit(c); };
  d.run(k);
  CHECK(has_bit(k.tvr(), tvr::icc_data_missing));
  CHECK_FALSE(has_bit(k.tsi(), tsi::cvm_performed));
  CHECK(to_hex(*k.data().get(0x9F34)) == "3F0000");
}
