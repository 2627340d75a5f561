// Decision tables of the EMV kernel: DOL building, CVM list parsing and conditions (OE-EMV
// emv_cvmlist_test.c vectors, test-vectors.md §8), terminal risk management TVR bits (OE-EMV
// emv_terminal_risk_management_test.c, §8), processing restrictions, TAA matrices, field 55.
#include <catch2/catch.hpp>

#include "eftd/core/bytes.hpp"
#include "eftd/core/tlv.hpp"
#include "eftd/emv/kernel.hpp"
#include "eftd/emv/rules.hpp"
#include "eftd/emv/tlv_store.hpp"

using namespace eftd;
using namespace eftd::emv;

namespace {

bytes h(std::string_view hex) {
  auto b = from_hex(hex);
  REQUIRE(b.has_value());
  return *b;
}

std::string tvr_hex(const tvr_bytes& t) {
  return to_hex(t);
}

}  // namespace

TEST_CASE("DOL data is cut and padded by format (Book 3 5.4)") {
  tlv_store s;
  s.set(0x9F02, h("000000000100"));      // n12
  s.set(0x5A, h("5413330089020011"));    // cn (test card PAN, public test vector)
  s.set(0x9F1E, h("3132333435363738"));  // an
  s.set(0x95, h("0000008000"));

  REQUIRE(to_hex(*build_dol_data(h("9F02069505"), s)) == "0000000001000000008000");
}

TEST_CASE("DOL: numeric keeps the rightmost digits and pads left") {
  tlv_store s;
  s.set(0x9F02, h("000000000100"));
  REQUIRE(to_hex(*build_dol_data(h("9F0204"), s)) == "00000100");
  REQUIRE(to_hex(*build_dol_data(h("9F0208"), s)) == "0000000000000100");
}

TEST_CASE("DOL: binary keeps the leftmost bytes and pads right, cn pads with FF") {
  tlv_store s;
  s.set(0x9F1E, h("3132333435363738"));
  s.set(0x5A, h("5413330089020011"));
  REQUIRE(to_hex(*build_dol_data(h("9F1E04"), s)) == "31323334");
  REQUIRE(to_hex(*build_dol_data(h("9F1E0A"), s)) == "31323334353637380000");
  REQUIRE(to_hex(*build_dol_data(h("5A0A"), s)) == "5413330089020011FFFF");
}

TEST_CASE("DOL: unknown and constructed tags give zeros") {
  tlv_store s;
  s.set(0x70, h("5A01FF"));
  REQUIRE(to_hex(*build_dol_data(h("9F7C03"), s)) == "000000");
  REQUIRE(to_hex(*build_dol_data(h("7002"), s)) == "0000");
}

TEST_CASE("DOL: the EMVPT CDOL1 builds the recorded GENERATE AC data") {
  // test-vectors.md §8: CDOL1 9F02069F03069F1A0295055F2A029A039C019F3704 and the data of the
  // recorded first GENERATE AC.
  tlv_store s;
  s.set(0x9F02, h("000000000001"));
  s.set(0x9F03, h("000000000000"));
  s.set(0x9F1A, h("0246"));
  s.set(0x95, h("0000000000"));
  s.set(0x5F2A, h("0978"));
  s.set(0x9A, h("200724"));
  s.set(0x9C, h("21"));
  s.set(0x9F37, h("01234567"));
  REQUIRE(to_hex(*build_dol_data(h("9F02069F03069F1A0295055F2A029A039C019F3704"), s)) ==
          "000000000001"
          "000000000000"
          "0246"
          "0000000000"
          "0978"
          "200724"
          "21"
          "01234567");
}

TEST_CASE("DOL: malformed lists are errors") {
  tlv_store s;
  REQUIRE(build_dol_data(h("9F"), s).err().code == "emv.bad_dol");
  REQUIRE(build_dol_data(h("9F02"), s).err().code == "emv.bad_dol");
  REQUIRE(build_dol_data(h("9F0281"), s).err().code == "emv.bad_dol");
  REQUIRE(build_dol_data(h("9FFFFF0101"), s).err().code == "emv.bad_dol");
}

TEST_CASE("CVM list: OE-EMV vectors parse") {
  auto one = parse_cvm_list(h("000186A0000003E81E03"));
  REQUIRE(one);
  REQUIRE(one->x == 100000);
  REQUIRE(one->y == 1000);
  REQUIRE(one->rules.size() == 1);
  REQUIRE(one->rules[0].method() == cvm::signature);
  REQUIRE(one->rules[0].condition == 0x03);
  REQUIRE_FALSE(one->rules[0].apply_next());

  auto multi = parse_cvm_list(h("00000000000000004201440341035E0342031F03"));
  REQUIRE(multi);
  REQUIRE(multi->rules.size() == 6);
  REQUIRE(multi->rules[0].method() == cvm::online_pin);
  REQUIRE(multi->rules[0].apply_next());
  REQUIRE(multi->rules[1].method() == cvm::offline_enc_pin);
  REQUIRE(multi->rules[3].method() == cvm::signature);
  REQUIRE(multi->rules[3].apply_next());
  REQUIRE(multi->rules[5].method() == cvm::no_cvm);
}

TEST_CASE("CVM list: a missing rule and an odd length are rejected") {
  REQUIRE(parse_cvm_list(h("000186A0000003E8")).err().code == "emv.cvm_list_empty");
  REQUIRE(parse_cvm_list(h("000186A0000003E81E0342")).err().code == "emv.cvm_list_odd");
  REQUIRE(parse_cvm_list(h("000186A0")).err().code == "emv.cvm_list_short");
}

TEST_CASE("CVM conditions: every condition code") {
  cvm_list list;
  list.x = 1000;
  list.y = 5000;
  cvm_context c;
  c.amount = 2000;
  c.same_currency = true;
  c.supported[cvm::signature] = true;
  auto cond = [&](std::uint8_t method, std::uint8_t code) { return cvm_condition({method, code}, list, c); };
  using cr = condition_result;
  REQUIRE(cond(0x1E, 0x00) == cr::satisfied);
  REQUIRE(cond(0x1E, 0x01) == cr::not_satisfied);  // attended purchase
  REQUIRE(cond(0x1E, 0x02) == cr::satisfied);
  REQUIRE(cond(0x1E, 0x03) == cr::satisfied);
  REQUIRE(cond(0x02, 0x03) == cr::not_satisfied);  // online PIN not supported here
  REQUIRE(cond(0x1E, 0x04) == cr::not_satisfied);
  REQUIRE(cond(0x1E, 0x05) == cr::not_satisfied);
  REQUIRE(cond(0x1E, 0x06) == cr::not_satisfied);  // 2000 < X=1000? no
  REQUIRE(cond(0x1E, 0x07) == cr::satisfied);      // 2000 > X
  REQUIRE(cond(0x1E, 0x08) == cr::satisfied);      // 2000 < Y
  REQUIRE(cond(0x1E, 0x09) == cr::not_satisfied);
  REQUIRE(cond(0x1E, 0x0A) == cr::not_understood);
  c.same_currency = false;  // X/Y in another currency: amount rules never apply
  REQUIRE(cond(0x1E, 0x07) == cr::not_satisfied);
  REQUIRE(cond(0x1E, 0x08) == cr::not_satisfied);
  c.cash = true;
  c.unattended = true;
  REQUIRE(cond(0x1E, 0x01) == cr::satisfied);
  REQUIRE(cond(0x1E, 0x02) == cr::not_satisfied);
  c.unattended = false;
  c.manual_cash = true;
  REQUIRE(cond(0x1E, 0x04) == cr::satisfied);
  c.cash = false;
  c.manual_cash = false;
  c.cashback = true;
  REQUIRE(cond(0x1E, 0x05) == cr::satisfied);
  REQUIRE(cond(0x1E, 0x02) == cr::not_satisfied);
}

TEST_CASE("TRM velocity: OE-EMV cases (LCOL 0x12, UCOL 0x34)") {
  struct row {
    const char* name;
    std::optional<std::uint16_t> atc, loatc;
    const char* tvr;
  };
  const row rows[] = {
      {"limits not exceeded", 1234, 1233, "0000000000"},
      {"velocity checking not possible", std::nullopt, std::nullopt, "0000006000"},
      {"LCOL matched, not exceeded", 1234, 1216, "0000000000"},
      {"LCOL exceeded", 1234, 1215, "0000004000"},
      {"UCOL matched, not exceeded", 1234, 1182, "0000004000"},
      {"UCOL exceeded", 1234, 1181, "0000006000"},
      {"new card", 5, 0, "0008000000"},
      {"new card with no ATC", std::nullopt, 0, "0008006000"},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    tvr_bytes t{};
    velocity_check(0x12, 0x34, r.atc, r.loatc, t);
    REQUIRE(tvr_hex(t) == r.tvr);
  }
}

TEST_CASE("TRM random selection: below threshold, biased zone, at the floor limit") {
  // Floor 10000, threshold 5000, target 20 %, max 60 %.
  REQUIRE(random_selection(1000, 10000, 5000, 20, 60, 20));
  REQUIRE_FALSE(random_selection(1000, 10000, 5000, 20, 60, 21));
  // 7500 is halfway: target percentage 40.
  REQUIRE(random_selection(7500, 10000, 5000, 20, 60, 40));
  REQUIRE_FALSE(random_selection(7500, 10000, 5000, 20, 60, 41));
  REQUIRE_FALSE(random_selection(10000, 10000, 5000, 20, 60, 1));  // floor limit: the bit is not random
  REQUIRE_FALSE(random_selection(1000, 10000, 5000, 0, 60, 1));    // disabled
}

TEST_CASE("Processing restrictions: versions, dates, AUC") {
  const bytes v1 = h("0096"), v2 = h("0002"), auc_all = h("FF80"), auc_intl_none = h("AB00");
  const bytes fi = h("0246"), pl = h("0616");
  const bytes eff = h("200101"), exp_old = h("181130"), exp_ok = h("291231");
  auto run = [](restriction_inputs in) {
    tvr_bytes t{};
    processing_restrictions(in, t);
    return to_hex(t);
  };
  restriction_inputs base;
  base.terminal_app_version = v1;
  base.terminal_country = fi;
  base.today = *date_number("200724");

  REQUIRE(run(base) == "0000000000");
  auto in = base;
  in.card_app_version = byte_view(v2);
  REQUIRE(run(in) == "0080000000");
  in = base;
  in.expiry = byte_view(exp_old);
  REQUIRE(run(in) == "0040000000");
  in.expiry = byte_view(exp_ok);
  in.effective = byte_view(eff);
  REQUIRE(run(in) == "0000000000");
  in.today = *date_number("191231");
  REQUIRE(run(in) == "0020000000");

  // AUC AB00 = 1010 1011: domestic cash, domestic goods, domestic services, ATMs, non-ATMs.
  in = base;
  in.auc = byte_view(auc_intl_none);
  in.issuer_country = byte_view(fi);
  REQUIRE(run(in) == "0000000000");  // domestic goods
  in.issuer_country = byte_view(pl);
  REQUIRE(run(in) == "0010000000");  // international goods not allowed
  in.issuer_country = byte_view(fi);
  in.transaction_type = 0x09;  // cashback: byte 2 bit 8 missing
  REQUIRE(run(in) == "0010000000");
  in.auc = byte_view(auc_all);
  REQUIRE(run(in) == "0000000000");
  in.transaction_type = 0x01;
  in.issuer_country = byte_view(pl);
  REQUIRE(run(in) == "0000000000");  // FF: international cash fine
}

TEST_CASE("Dates: windowing and invalid values") {
  REQUIRE(*date_number("491231") == 20491231u);
  REQUIRE(*date_number("500101") == 19500101u);
  REQUIRE_FALSE(date_number("201301"));
  REQUIRE_FALSE(date_number("2001A1"));
  REQUIRE(*date_number(h("291231")) == 20291231u);
  REQUIRE_FALSE(date_number(h("2913")));
}

TEST_CASE("TAA: denial, online and default matrices with IAC absence rules") {
  const action_codes no_tac{};
  tvr_bytes tvr{};
  issuer_action_codes iac;
  iac.denial = h("0000000000");
  iac.online = h("0000000000");
  iac.def = h("0000000000");
  using oc = online_capability;

  // Clean TVR: TC everywhere.
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::offline_with_online) == ac_type::tc);
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::offline_only) == ac_type::tc);
  // Online-only terminals always ask for an ARQC.
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::online_only) == ac_type::arqc);

  set_bit(tvr, tvr::floor_limit_exceeded);
  // No code covers the bit: TC.
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::offline_with_online) == ac_type::tc);
  // The IAC online covers it: ARQC.
  iac.online = h("0000008000");
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::offline_with_online) == ac_type::arqc);
  // Offline-only: the default codes decide.
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::offline_only) == ac_type::tc);
  iac.def = h("0000008000");
  REQUIRE(terminal_action_analysis(tvr, no_tac, iac, oc::offline_only) == ac_type::aac);
  // The TAC denial wins over everything.
  action_codes tac;
  tac.denial = h("0000008000");
  REQUIRE(terminal_action_analysis(tvr, tac, iac, oc::online_only) == ac_type::aac);

  // Absent IACs: denial counts as zeros, online and default as all ones.
  issuer_action_codes absent;
  REQUIRE(terminal_action_analysis(tvr, no_tac, absent, oc::offline_with_online) == ac_type::arqc);
  REQUIRE(terminal_action_analysis(tvr, no_tac, absent, oc::offline_only) == ac_type::aac);
  REQUIRE(default_action_analysis(tvr, no_tac, absent) == ac_type::aac);
  tvr_bytes clean{};
  REQUIRE(terminal_action_analysis(clean, no_tac, absent, oc::offline_with_online) == ac_type::tc);
  REQUIRE(default_action_analysis(clean, no_tac, absent) == ac_type::tc);

  // The EMVPT card's IACs (§8): an expired card goes online, a CVM failure is declined.
  issuer_action_codes emvpt{h("0010800000"), h("B8483C9800"), h("B8483C9800")};
  tvr_bytes expired{};
  set_bit(expired, tvr::expired);
  REQUIRE(terminal_action_analysis(expired, no_tac, emvpt, oc::offline_with_online) == ac_type::arqc);
  tvr_bytes cvm_failed{};
  set_bit(cvm_failed, tvr::cvm_not_successful);
  REQUIRE(terminal_action_analysis(cvm_failed, no_tac, emvpt, oc::offline_with_online) == ac_type::aac);
}

TEST_CASE("Terminal type decides the online capability") {
  REQUIRE(capability_of(0x11) == online_capability::online_only);
  REQUIRE(capability_of(0x22) == online_capability::offline_with_online);
  REQUIRE(capability_of(0x23) == online_capability::offline_only);
  REQUIRE(capability_of(0x14) == online_capability::online_only);
  REQUIRE(capability_of(0x25) == online_capability::offline_with_online);
  REQUIRE(capability_of(0x26) == online_capability::offline_only);
}

TEST_CASE("Field 55 carries the authorization tags and never track, PAN or name") {
  tlv_store s;
  for (const auto tag : field55_tags()) s.set(tag, h("01"));
  s.set(0x57, h("4761739001010119D29122011143804489"));
  s.set(0x5A, h("4761739001010119"));
  s.set(0x5F20, h("4341524448"));
  s.set(0x9F1F, h("3030"));
  s.set(0x56, h("3030"));
  const bytes f55 = build_field55(s);
  auto decoded = tlv_decode(f55);
  REQUIRE(decoded);
  for (const std::uint32_t must :
       {0x9F26u, 0x9F27u, 0x9F10u, 0x9F37u, 0x9F36u, 0x95u, 0x9Au, 0x9Cu, 0x9F02u, 0x9F03u, 0x5F2Au, 0x82u,
        0x9F1Au, 0x9F33u, 0x9F34u, 0x9F35u, 0x84u, 0x9F09u, 0x9F1Eu}) {
    INFO("tag " << std::hex << must);
    REQUIRE(tlv_find(*decoded, must) != nullptr);
  }
  for (const std::uint32_t never : {0x57u, 0x5Au, 0x5F20u, 0x9F1Fu, 0x56u}) {
    INFO("tag " << std::hex << never);
    REQUIRE(tlv_find(*decoded, never) == nullptr);
  }
}

TEST_CASE("Terminal capabilities follow the CVM and ODA flags") {
  terminal_config cfg;
  REQUIRE(to_hex(terminal_capabilities(cfg)) == "E0F8C8");
  cfg.cvm.signature = false;
  cfg.oda.sda = false;
  REQUIRE(to_hex(terminal_capabilities(cfg)) == "E0D848");
}
