// Known-answer tests for the EMV symmetric cryptography (emv_crypto.hpp): ICC master key
// derivation options A and B, the common session key, the Visa secure-messaging key, raw
// ARQC/ARPC, the HSM-generated chains and per-CVN rows, and issuer script MACs. Every value is
// a public test vector from /work/shared/test-vectors.md §6 (pyemv, PYEMV in §0; the HSM rows
// come from tests/test_kd_hsm.py and tests/test_cvn_hsm.py), so printing them on failure is fine.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/emv_crypto.hpp"

using namespace eftd;
using namespace eftd::emv;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

// Two-byte key check value as pyemv's key_check_digits(key, 2) prints it.
std::string kcv2(const secure_bytes& key) {
  auto k = tdes_kcv(key.view());
  REQUIRE(k.has_value());
  return to_hex(*k).substr(0, 4);
}

std::string key_hex(const result<secure_bytes>& k) {
  REQUIRE(k.has_value());
  return to_hex(k->view());
}

// Parsed at static initialisation, outside any test: no REQUIRE here.
bytes const_hex(std::string_view h) {
  return from_hex(h).value_or(bytes{});
}

const bytes issuer_mk_ac = const_hex("0123456789ABCDEFFEDCBA9876543210");
const bytes issuer_mk_smi = const_hex("FEDCBA98765432100123456789ABCDEF");
const bytes hsm_r = const_hex("1234567890123456");

}  // namespace

TEST_CASE("ICC master key derivation options A and B match the pyemv docstrings", "[emv][crypto]") {
  REQUIRE(to_hex(*tdes_kcv(issuer_mk_ac)).substr(0, 6) == "08D7B4");
  CHECK(key_hex(derive_icc_mk(issuer_mk_ac, "99012345678901234", "45", mk_option::a)) ==
        "67F8292358083E5EA7AB7FDA58D53B6B");
  CHECK(key_hex(derive_icc_mk(issuer_mk_ac, "12345678901234567", "01", mk_option::a)) ==
        "73AD54688CEF2934B0979857E3C719F1");
  CHECK(key_hex(derive_icc_mk(issuer_mk_ac, "12345678901234567", "01", mk_option::b)) ==
        "AD406D7F6D7570916D75E5DCAB8CF737");
}

TEST_CASE("Option B falls back to option A for PANs of 16 digits or fewer", "[emv][crypto]") {
  const auto a = derive_icc_mk(issuer_mk_ac, "1234567890123456", "00", mk_option::a);
  const auto b = derive_icc_mk(issuer_mk_ac, "1234567890123456", "00", mk_option::b);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);
  // test-vectors §6 per-CVN: ICC MK-AC for this PAN (DERIVED, KCV BAB0).
  CHECK(to_hex(b->view()) == "154F349D8585CB7F6B0798E9839B10C1");
  CHECK(kcv2(*b) == "BAB0");
}

TEST_CASE("A missing or one-digit PSN counts as 00 / 0n", "[emv][crypto]") {
  const auto none = derive_icc_mk(issuer_mk_ac, "12345678901234567", "", mk_option::a);
  const auto zero = derive_icc_mk(issuer_mk_ac, "12345678901234567", "00", mk_option::a);
  const auto one = derive_icc_mk(issuer_mk_ac, "12345678901234567", "1", mk_option::a);
  const auto zero_one = derive_icc_mk(issuer_mk_ac, "12345678901234567", "01", mk_option::a);
  REQUIRE((none && zero && one && zero_one));
  CHECK(*none == *zero);
  CHECK(*one == *zero_one);
}

TEST_CASE("Key derivation rejects bad inputs with exact codes", "[emv][crypto]") {
  CHECK(derive_icc_mk(hex("0123456789ABCDEF"), "1234567890123456", "00", mk_option::a).err().code ==
        "crypto.bad_key");
  CHECK(derive_icc_mk(issuer_mk_ac, "12345678901234X6", "00", mk_option::a).err().code == "emv.bad_pan");
  CHECK(derive_icc_mk(issuer_mk_ac, "12345678901", "00", mk_option::a).err().code == "emv.bad_pan");
  CHECK(derive_icc_mk(issuer_mk_ac, "12345678901234567890", "00", mk_option::b).err().code == "emv.bad_pan");
  CHECK(derive_icc_mk(issuer_mk_ac, "1234567890123456", "123", mk_option::a).err().code == "emv.bad_pan");
  CHECK(common_session_key(issuer_mk_ac, hex("0011")).err().code == "emv.bad_input");
  CHECK(arpc_method1(issuer_mk_ac, hex("1234567890ABCDEF"), hex("00")).err().code == "emv.bad_input");
  CHECK(arpc_method2(issuer_mk_ac, hex("1234567890ABCDEF"), hex("0000")).err().code == "emv.bad_input");
  CHECK(arpc_method2(issuer_mk_ac, hex("12345678"), hex("00000000")).err().code == "emv.bad_input");
  CHECK(script_mac(hex("0123456789ABCDEF"), hex("8424000008")).err().code == "crypto.bad_key");
}

TEST_CASE("Common session key and Visa SM session key match the docstrings", "[emv][crypto]") {
  CHECK(key_hex(common_session_key(issuer_mk_ac, hex("001C000000000000"))) ==
        "E9FB384AF807B940FEDCEA613461B0C4");
  CHECK(key_hex(visa_sm_session_key(issuer_mk_ac, 0x001C)) == "0123456789ABCDF2FEDCBA987654CDF2");
}

TEST_CASE("Raw ARQC and ARPC methods 1 and 2 match the docstrings", "[emv][crypto]") {
  const bytes sk = hex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB");
  // 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36
  const bytes data =
      hex("000000002000"
          "000000000000"
          "0124"
          "0000008000"
          "0124"
          "110309"
          "00"
          "3804823E"
          "5800"
          "0001");
  auto arqc = application_cryptogram(sk, data, mac_padding::method2);
  REQUIRE(arqc.has_value());
  CHECK(to_hex(*arqc) == "3B76CF10FECD8789");

  const bytes arqc2 = hex("1234567890ABCDEF");
  CHECK(to_hex(*arpc_method1(sk, arqc2, hex("0000"))) == "F5E6F44147E2F1B0");
  CHECK(to_hex(*arpc_method2(sk, arqc2, hex("00000000"))) == "9308BEBC");

  const bytes sk2 = hex("29B33180E567CE38EA4CBC9D753B0E61");
  auto arqc3 = application_cryptogram(sk2, hex("0123456789ABCDEF0123456789ABCDEF"), mac_padding::method2);
  REQUIRE(arqc3.has_value());
  CHECK(to_hex(*arqc3) == "FA624250B008B59A");
  CHECK(to_hex(*arpc_method1(sk2, *arqc3, hex("0000"))) == "45D4255EEF10C920");
  CHECK(to_hex(*arpc_method2(sk2, *arqc3, hex("00000000"))) == "CB56FA40");
}

TEST_CASE("HSM chains: derivation, session key, ARQC and ARPC", "[emv][crypto]") {
  struct row {
    const char* name;
    mk_option option;
    const char* pan;
    const char* psn;
    const char* mk_kcv;  // "" when the source gives none
    const char* r;
    const char* sk_kcv;
    const char* data;
    const char* arqc;
    int arpc_method;        // 1 or 2
    bool arpc_with_icc_mk;  // method 1: ICC MK instead of the session key
    const char* prop;       // method 2 proprietary data
    const char* arpc;
  };
  const char* std_data = "0123456789ABCDEF0123456789ABCDEF";
  const char* std_r = "1234567890123456";
  const std::vector<row> rows = {
      {"A psn45 M1 ICC MK", mk_option::a, "12345678901234567", "45", "FF08", std_r, "DF82", std_data,
       "19C1FBC83EBDC0D5", 1, true, "", "78A372523FA35A03"},
      {"A psn45 M1 SK", mk_option::a, "12345678901234567", "45", "FF08", std_r, "DF82", std_data,
       "19C1FBC83EBDC0D5", 1, false, "", "C3620580668E5B65"},
      {"A no psn M1 ICC MK", mk_option::a, "12345678901234567", "", "", std_r, "3F4F", std_data,
       "8698A7319324FD93", 1, true, "", "BEA11C8F4A47EF6F"},
      {"B pan16 falls back", mk_option::b, "1234567890123456", "", "BAB0", std_r, "BC19", std_data,
       "0CE77D211CB5459A", 2, false, "", "8CD9AA5D"},
      {"B pan17 psn45", mk_option::b, "12345678901234567", "45", "0BAF", std_r, "4262", std_data,
       "5760EE07B4FA65D1", 2, false, "", "106B81D9"},
      {"B pan17 no psn", mk_option::b, "12345678901234567", "", "4626", std_r, "7F36", std_data,
       "0BAA251EA8989442", 2, false, "", "C1C41F3A"},
      {"B pan18", mk_option::b, "123456789012345679", "00", "C2F3", std_r, "7C35", std_data,
       "DC95BCE3EBBE0296", 2, false, "", "ECCA0C4B"},
      // SHA-1 gives fewer than 16 decimal digits: the hex letters are decimalized too.
      {"B sha pad", mk_option::b, "000000000000000005", "23", "DD73", "001C000000000000", "04F8",
       "0000000040000000000000000124800004800001241911050152BF45851800001C06011203A0B800", "8CAD6F2489C640B1",
       2, false, "12345678", "E39F1876"},
  };
  for (const auto& t : rows) {
    SECTION(t.name) {
      auto mk = derive_icc_mk(issuer_mk_ac, t.pan, t.psn, t.option);
      REQUIRE(mk.has_value());
      if (std::string(t.mk_kcv).size() > 0) CHECK(kcv2(*mk) == t.mk_kcv);
      auto sk = common_session_key(mk->view(), hex(t.r));
      REQUIRE(sk.has_value());
      CHECK(kcv2(*sk) == t.sk_kcv);
      auto arqc = application_cryptogram(sk->view(), hex(t.data), mac_padding::method2);
      REQUIRE(arqc.has_value());
      CHECK(to_hex(*arqc) == t.arqc);
      result<bytes> arpc;
      if (t.arpc_method == 1)
        arpc = arpc_method1(t.arpc_with_icc_mk ? mk->view() : sk->view(), *arqc, hex("0000"));
      else
        arpc = arpc_method2(sk->view(), *arqc, hex("00000000"), hex(t.prop));
      REQUIRE(arpc.has_value());
      CHECK(to_hex(*arpc) == t.arpc);
    }
  }
  // The first row's intermediate keys (DERIVED in test-vectors §6).
  auto mk = derive_icc_mk(issuer_mk_ac, "12345678901234567", "45", mk_option::a);
  REQUIRE(mk.has_value());
  CHECK(to_hex(mk->view()) == "946DC1A8C78A624519BC4645CB073737");
  CHECK(key_hex(common_session_key(mk->view(), hsm_r)) == "C7AEDF49AEF2F146D692400E0B851A8F");
}

namespace {

// test-vectors §6 per-CVN: PAN 1234567890123456, PSN 00, ATC 001C.
// Field by field: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36.
const char* visa_data =
    "000000004000"
    "000000000000"
    "0124"
    "8000048000"
    "0124"
    "191105"
    "01"
    "52BF4585"
    "1800"
    "001C";
const char* mc_data =
    "000000009999"
    "000000000000"
    "0124"
    "8000000000"
    "0124"
    "209906"
    "00"
    "ABCDEF12"
    "1800"
    "001C";

ac_inputs visa_inputs(const char* appended) {
  ac_inputs in;
  in.atc = 0x001C;
  in.un = hex("52BF4585");
  in.data = hex(visa_data);
  in.iad_or_cvr = hex(appended);
  return in;
}

ac_inputs mc_inputs() {
  ac_inputs in;
  in.atc = 0x001C;
  in.un = hex("ABCDEF12");
  in.data = hex(mc_data);
  in.iad_or_cvr = hex("A00003220000");
  return in;
}

}  // namespace

TEST_CASE("Per-CVN rows: Visa CVN10 and CVN18, Mastercard CVN16 and CVN20", "[emv][crypto]") {
  auto mk = derive_icc_mk(issuer_mk_ac, "1234567890123456", "00", mk_option::a);
  REQUIRE(mk.has_value());
  REQUIRE(kcv2(*mk) == "BAB0");

  SECTION("Visa CVN10: ICC MK, zero padding, CVR appended, ARPC M1 with ICC MK") {
    const auto in = visa_inputs("03A06010");
    auto sk = ac_session_key(cvn::visa10, mk->view(), in);
    REQUIRE(sk.has_value());
    CHECK(kcv2(*sk) == "BAB0");
    auto arqc = generate_ac(cvn::visa10, mk->view(), in);
    REQUIRE(arqc.has_value());
    CHECK(to_hex(*arqc) == "29CCA15AE665FA2E");
    auto arpc = generate_arpc(cvn::visa10, mk->view(), in, *arqc, hex("3030"));
    REQUIRE(arpc.has_value());
    CHECK(to_hex(*arpc) == "28993816AFAE4AEB");
  }
  SECTION("Visa CVN18: CSK R = ATC, pad 2, full IAD appended, ARPC M2") {
    const auto in = visa_inputs("06011203A0B800");
    auto sk = ac_session_key(cvn::visa18, mk->view(), in);
    REQUIRE(sk.has_value());
    CHECK(to_hex(sk->view()) == "436B942AD637E08564B532B0EC97CB26");
    CHECK(kcv2(*sk) == "22C8");
    auto arqc = generate_ac(cvn::visa18, mk->view(), in);
    REQUIRE(arqc.has_value());
    CHECK(to_hex(*arqc) == "7A788EA6B8A3E733");
    auto arpc = generate_arpc(cvn::visa18, mk->view(), in, *arqc, hex("00000000"));
    REQUIRE(arpc.has_value());
    CHECK(to_hex(*arpc) == "9AF514C1");
  }
  SECTION("Mastercard CVN16: CSK R = ATC 0000 UN, ARPC M1 with ICC MK") {
    const auto in = mc_inputs();
    auto sk = ac_session_key(cvn::mc16, mk->view(), in);
    REQUIRE(sk.has_value());
    CHECK(to_hex(sk->view()) == "5D8F37BCD9E5DA68048CDFA2EA255D9E");
    CHECK(kcv2(*sk) == "2FD5");
    auto arqc = generate_ac(cvn::mc16, mk->view(), in);
    REQUIRE(arqc.has_value());
    CHECK(to_hex(*arqc) == "24CCF3DEE3158C70");
    auto arpc = generate_arpc(cvn::mc16, mk->view(), in, *arqc, hex("0010"));
    REQUIRE(arpc.has_value());
    CHECK(to_hex(*arpc) == "73F6BBF389A6586C");
  }
  SECTION("Mastercard CVN20: CSK R = ATC, ARPC M1 with the session key") {
    const auto in = mc_inputs();
    auto arqc = generate_ac(cvn::mc20, mk->view(), in);
    REQUIRE(arqc.has_value());
    CHECK(to_hex(*arqc) == "CD29615D6452E70E");
    auto arpc = generate_arpc(cvn::mc20, mk->view(), in, *arqc, hex("0010"));
    REQUIRE(arpc.has_value());
    CHECK(to_hex(*arpc) == "DFD0956606B68D64");
  }
  SECTION("CVN16 without a 4-byte UN is refused") {
    auto in = mc_inputs();
    in.un = hex("ABCD");
    CHECK(generate_ac(cvn::mc16, mk->view(), in).err().code == "emv.bad_input");
  }
}

TEST_CASE("A changed byte of the CDOL data changes the cryptogram", "[emv][crypto]") {
  auto mk = derive_icc_mk(issuer_mk_ac, "1234567890123456", "00", mk_option::a);
  REQUIRE(mk.has_value());
  auto in = visa_inputs("06011203A0B800");
  in.data[5] ^= 0x01;  // amount authorised
  auto arqc = generate_ac(cvn::visa18, mk->view(), in);
  REQUIRE(arqc.has_value());
  CHECK(to_hex(*arqc) != "7A788EA6B8A3E733");
}

TEST_CASE("Issuer script MACs: Visa SM key, CSK with R = ARQC, docstring", "[emv][crypto]") {
  auto mk_smi = derive_icc_mk(issuer_mk_smi, "1234567890123456", "00", mk_option::b);
  REQUIRE(mk_smi.has_value());
  CHECK(kcv2(*mk_smi) == "F010");

  SECTION("Visa CVN10 application unblock") {
    auto sk = visa_sm_session_key(mk_smi->view(), 0x001C);
    REQUIRE(sk.has_value());
    CHECK(kcv2(*sk) == "DB10");
    auto mac = script_mac(sk->view(), hex("8418000008"
                                          "001C"
                                          "29CCA15AE665FA2E"));
    REQUIRE(mac.has_value());
    CHECK(to_hex(*mac) == "DB56BA60087CEFD3");
    // Same key, CVN18's ARQC (pyemv test_cvn_hsm.py, SOURCE-ONLY in test-vectors).
    auto mac18 = script_mac(sk->view(), hex("8418000008"
                                            "001C"
                                            "7A788EA6B8A3E733"));
    REQUIRE(mac18.has_value());
    CHECK(to_hex(*mac18) == "04EDE90BC24CC35E");
  }
  SECTION("Mastercard CVN16 PIN unblock") {
    auto sk = common_session_key(mk_smi->view(), hex("24CCF3DEE3158C70"));
    REQUIRE(sk.has_value());
    CHECK(kcv2(*sk) == "FFA0");
    auto mac = script_mac(sk->view(), hex("8424000008"
                                          "001C"
                                          "24CCF3DEE3158C70"));
    REQUIRE(mac.has_value());
    CHECK(to_hex(*mac) == "ED0AB162BAB1DE61");
  }
  SECTION("Docstring") {
    auto mac = script_mac(hex("0123456789ABCDEFFEDCBA9876543210"), hex("8424000008"));
    REQUIRE(mac.has_value());
    CHECK(to_hex(*mac) == "0BFFF5DF3FAA24E1");
  }
}

TEST_CASE("CVN from issuer application data", "[emv][crypto]") {
  CHECK(cvn_from_iad(hex("06010A03A4A002")) == cvn::visa10);  // EMVPT GENERATE AC 1
  CHECK(cvn_from_iad(hex("06011203A0B800")) == cvn::visa18);
  CHECK(cvn_from_iad(hex("0110A00003220000000000000000000000FF")) == cvn::mc16);
  CHECK(cvn_from_iad(hex("0010904001220000000000000000000000FF")) == cvn::mc16);  // LUMAG CDA card
  CHECK(cvn_from_iad(hex("0114A00003220000000000000000000000FF")) == cvn::mc20);
  CHECK_FALSE(cvn_from_iad(hex("06011103A0B800")).has_value());  // Visa CVN17: not supported
  CHECK_FALSE(cvn_from_iad(hex("0111A00003220000000000000000000000FF")).has_value());
  CHECK_FALSE(cvn_from_iad({}).has_value());
  CHECK_FALSE(cvn_from_iad(hex("0601")).has_value());
}

TEST_CASE("CVN table rows are the documented choices", "[emv][crypto]") {
  CHECK(spec(cvn::visa10).number == 10);
  CHECK(spec(cvn::visa10).padding == mac_padding::method1);
  CHECK(spec(cvn::visa18).arpc == arpc_kind::method2_sk);
  CHECK(spec(cvn::mc16).session_key == session_key_kind::csk_atc_un);
  CHECK(spec(cvn::mc16).arpc == arpc_kind::method1_icc_mk);
  CHECK(spec(cvn::mc20).arpc == arpc_kind::method1_sk);
}

TEST_CASE("Odd parity is set on every derived key byte", "[emv][crypto]") {
  bytes k = hex("0000FFFE0102037F");
  set_odd_parity(k);
  CHECK(to_hex(k) == "0101FEFE0102027F");
}
