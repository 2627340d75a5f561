// The simulator's decision logic without sockets: every rule, the ledger, reversals, summary.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/acqsim/host.hpp"
#include "eftd/core/block_cipher.hpp"
#include "eftd/core/pin_block.hpp"

namespace acq = eftd::acq;
using eftd::acqsim::action;
using eftd::acqsim::host;
using eftd::acqsim::rules;

namespace {

acq::message sale(std::string amount, std::string pan = "4761739001010119", std::string stan = "000123") {
  acq::message m{"0200"};
  m.set(2, std::move(pan));
  m.set(3, "000000");
  m.set(4, std::move(amount));
  m.set(7, "0615123456");
  m.set(11, std::move(stan));
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "051");
  m.set(35, "4761739001010119=25122011143800000");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  m.set(52, std::string(8, '\x11'));
  m.set(55, std::string("\x9F\x27\x01\x80", 4));
  return m;
}

std::string code_of(const eftd::acqsim::outcome& o) {
  REQUIRE(o.what == action::reply);
  REQUIRE(o.response.has_value());
  return std::string{o.response->get_or(39, "<none>")};
}

}  // namespace

TEST_CASE("sim approves a sale and echoes the required fields, never card data", "[sim]") {
  host h;
  const auto request = sale("000000012500");
  auto o = h.handle(request);
  REQUIRE(o.what == action::reply);
  const auto& r = *o.response;
  CHECK(r.mti() == "0210");
  CHECK(r.get_or(39, "") == "00");
  CHECK(r.get_or(38, "") == "000001");
  CHECK(r.get_or(37, "") == "000000000001");  // generated RRN
  for (int f : {3, 4, 7, 11, 12, 13, 41, 42, 49}) {
    INFO("field " << f);
    CHECK(r.get(f) == request.get(f));
  }
  for (int f : {2, 14, 22, 35, 52, 55}) {
    INFO("field " << f);
    CHECK_FALSE(r.has(f));
  }
  CHECK(h.counts().approved == 1);
  CHECK(h.counts().approved_amount == 12500);
  REQUIRE(h.ledger().count("TERM0001|000123|0615123456") == 1);
  CHECK(h.ledger().at("TERM0001|000123|0615123456").response_code == "00");
}

TEST_CASE("sim decline rules give their response codes", "[sim]") {
  struct vec {
    const char* what;
    const char* amount;
    const char* pan;
    const char* code;
  };
  const vec vectors[] = {
      {"amount ending 51", "000000012551", "4761739001010119", "51"},
      {"amount above the limit", "000001000001", "4761739001010119", "61"},
      {"amount at the limit", "000001000000", "4761739001010119", "00"},
      {"PAN ending 0002", "000000012500", "4761739001010002", "05"},
      {"PAN ending 0004", "000000012500", "4761739001010004", "54"},
      {"PAN rule before amount rules", "000000012551", "4761739001010004", "54"},
      {"limit before amount suffix", "000002000051", "4761739001010119", "61"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    host h;
    auto o = h.handle(sale(v.amount, v.pan));
    CHECK(code_of(o) == v.code);
    CHECK(o.response->has(38) == (std::string(v.code) == "00"));
  }
}

TEST_CASE("sim takes the PAN from track 2 when field 2 is absent", "[sim]") {
  host h;
  auto m = sale("000000012500");
  m.erase(2);
  m.set(35, "4761739001010002=25122011143800000");
  CHECK(code_of(h.handle(m)) == "05");
}

TEST_CASE("sim answers 30 when a required field is missing", "[sim]") {
  for (int missing : {4, 7, 11, 41}) {
    INFO("without field " << missing);
    host h;
    auto m = sale("000000012500");
    m.erase(missing);
    CHECK(code_of(h.handle(m)) == "30");
    CHECK(h.ledger().empty());
  }
  host h;
  auto m = sale("000000012500");
  m.erase(2);
  m.erase(35);
  CHECK(code_of(h.handle(m)) == "30");
}

TEST_CASE("sim answers 94 to a duplicate and the original decision to a repeat", "[sim]") {
  host h;
  CHECK(code_of(h.handle(sale("000000012551"))) == "51");
  CHECK(code_of(h.handle(sale("000000012551"))) == "94");
  auto repeat = sale("000000012551");
  repeat.set_mti("0201");
  auto o = h.handle(repeat);
  CHECK(code_of(o) == "51");
  CHECK(o.response->mti() == "0210");
  CHECK(h.counts().declined == 2);  // the repeat is not a new decision
}

TEST_CASE("sim no-reply and disconnect rules", "[sim]") {
  rules r;
  r.no_reply_amount_suffixes = {"99"};
  r.disconnect_amount_suffixes = {"98"};
  host h{r};
  auto o = h.handle(sale("000000012599"));
  CHECK(o.what == action::no_reply);
  CHECK_FALSE(o.response.has_value());
  REQUIRE(h.ledger().size() == 1);
  CHECK_FALSE(h.ledger().begin()->second.answered);
  CHECK(h.counts().unanswered == 1);

  o = h.handle(sale("000000012598", "4761739001010119", "000124"));
  CHECK(o.what == action::disconnect);
  CHECK(h.counts().disconnects == 1);
  CHECK(h.ledger().size() == 1);
}

TEST_CASE("sim reversal by field 90 marks the original and nets the amount", "[sim]") {
  host h;
  REQUIRE(code_of(h.handle(sale("000000012500"))) == "00");
  acq::message rev{"0400"};
  rev.set(4, "000000012500");
  rev.set(7, "0615123510");
  rev.set(11, "000124");
  rev.set(41, "TERM0001");
  rev.set(90,
          "0200"
          "000123"
          "0615123456"
          "00000000001"
          "00000000000");
  auto o = h.handle(rev);
  CHECK(code_of(o) == "00");
  CHECK(o.response->mti() == "0410");
  CHECK(o.note == "reversed");
  CHECK(h.ledger().at("TERM0001|000123|0615123456").reversed);
  CHECK(h.counts().approved_amount == 0);
  CHECK(h.counts().reversed == 1);

  // Idempotent: the same reversal again (here as an advice repeat) is answered, not counted.
  rev.set_mti("0421");
  o = h.handle(rev);
  CHECK(code_of(o) == "00");
  CHECK(o.response->mti() == "0430");
  CHECK(o.note == "reversal seen before: answered again");
  CHECK(h.counts().reversed == 1);
  CHECK(h.counts().reversals == 1);
  CHECK(h.counts().reversal_repeats == 1);
  // A second, distinct reversal of the same original reverses nothing more.
  rev.set_mti("0400");
  rev.set(11, "000125");
  o = h.handle(rev);
  CHECK(code_of(o) == "00");
  CHECK(o.note == "already reversed");
  CHECK(h.counts().reversed == 1);
  CHECK(h.counts().reversals == 2);
  CHECK(h.counts().approved_amount == 0);
  CHECK(h.terminals().at("TERM0001").open.debit_reversals == 1);
}

TEST_CASE("sim reversal without field 90 uses its own 41 + 11 + 7 and unknown originals get 00", "[sim]") {
  host h;
  REQUIRE(code_of(h.handle(sale("000000012500"))) == "00");
  acq::message rev{"0400"};
  rev.set(7, "0615123456");
  rev.set(11, "000123");
  rev.set(41, "TERM0001");
  CHECK(code_of(h.handle(rev)) == "00");
  CHECK(h.counts().reversed == 1);

  rev.set(11, "999999");
  auto o = h.handle(rev);
  CHECK(code_of(o) == "00");
  CHECK(o.note == "reversal of an unknown transaction accepted");
  CHECK(h.counts().reversed == 1);
}

TEST_CASE("sim answers 0800 with 0810 and ignores what it does not serve", "[sim]") {
  host h;
  acq::message echo{"0800"};
  echo.set(7, "0615120000");
  echo.set(11, "000001");
  echo.set(70, "301");
  auto o = h.handle(echo);
  CHECK(code_of(o) == "00");
  CHECK(o.response->mti() == "0810");
  CHECK(o.response->get_or(70, "") == "301");
  CHECK(o.response->get_or(11, "") == "000001");

  CHECK(h.handle(acq::message{"0300"}).what == action::ignore);  // file actions: not served
  CHECK(h.handle(acq::message{"0210"}).what == action::ignore);  // a response is not a request
  CHECK(h.handle(acq::message{"0240"}).what == action::ignore);  // notification: no answer
  CHECK(h.counts().ignored == 3);
  CHECK(h.counts().network == 1);
}

TEST_CASE("sim 0100 authorization answers 0110", "[sim]") {
  host h;
  auto m = sale("000000005000");
  m.set_mti("0100");
  auto o = h.handle(m);
  CHECK(code_of(o) == "00");
  CHECK(o.response->mti() == "0110");
}

TEST_CASE("sim checks an online PIN under its zone PIN key: right approves, wrong or garbled is 55",
          "[sim]") {
  // Test ZPK and the §1 test PAN; the clear ISO 0 block of PIN 1234 is §1's 041274EDCBA9876F.
  eftd::acqsim::rules r;
  r.zpk = *eftd::from_hex("89ABCDEF0123456776543210FEDCBA98");
  host h(r);
  auto block_for = [&](const char* pin) {
    auto p = eftd::pin::parse(pin);
    REQUIRE(p);
    auto clear =
        eftd::build_pin_block(eftd::pin_block_format::iso0, *p, "4012345678909", eftd::system_random());
    REQUIRE(clear);
    auto enc = eftd::tdes_ecb(eftd::cipher_op::encrypt, r.zpk, clear->view());
    REQUIRE(enc);
    return std::string(reinterpret_cast<const char*>(enc->view().data()), enc->size());
  };
  auto right = sale("000000001000", "4012345678909", "000201");
  right.set(52, block_for("1234"));
  CHECK(code_of(h.handle(right)) == "00");
  auto wrong = sale("000000001000", "4012345678909", "000202");
  wrong.set(52, block_for("4321"));
  auto o = h.handle(wrong);
  CHECK(code_of(o) == "55");
  CHECK(o.note == "incorrect PIN");
  auto garbled = sale("000000001000", "4012345678909", "000203");
  garbled.set(52, std::string(8, '\x5A'));
  CHECK(code_of(h.handle(garbled)) == "55");
  // The same block against another PAN does not verify (ISO 0 binds the PAN).
  auto other_pan = sale("000000001000", "4761739001010119", "000204");
  other_pan.set(52, block_for("1234"));
  CHECK(code_of(h.handle(other_pan)) == "55");
  // Without a PIN the ZPK changes nothing.
  auto no_pin = sale("000000001000", "4012345678909", "000205");
  no_pin.erase(52);
  CHECK(code_of(h.handle(no_pin)) == "00");
}

TEST_CASE("parse_suffix_rule accepts SUFFIX=CODE and rejects the rest", "[sim]") {
  auto r = eftd::acqsim::parse_suffix_rule("51=51");
  REQUIRE(r.has_value());
  CHECK(r->suffix == "51");
  CHECK(r->response_code == "51");
  CHECK(eftd::acqsim::parse_suffix_rule("0002=05")->suffix == "0002");
  CHECK(eftd::acqsim::parse_suffix_rule("7=N7")->response_code == "N7");
  for (const char* bad :
       {"51", "=51", "5x=51", "51=", "51=5", "51=511", "51=5-", "12345678901234567890=05"}) {
    INFO(bad);
    auto e = eftd::acqsim::parse_suffix_rule(bad);
    REQUIRE_FALSE(e.has_value());
    CHECK(e.err().code == "sim.bad_rule");
  }
}

TEST_CASE("sim summary line is one JSON object after SUMMARY", "[sim]") {
  host h;
  (void)h.handle(sale("000000012500"));
  (void)h.handle(sale("000000012551", "4761739001010119", "000124"));
  h.note_malformed();
  CHECK(h.summary_line() ==
        "SUMMARY {\"requests\":2,\"approved\":1,\"declined\":1,\"reversals\":0,\"reversed\":0,"
        "\"unanswered\":0,\"disconnects\":0,\"network\":0,\"malformed\":1,\"ignored\":0,"
        "\"approved_amount\":12500,\"refund_amount\":0,\"inquiries\":0,\"reversal_repeats\":0,"
        "\"faults\":0,\"reconciliations\":0,\"out_of_balance\":0,\"batches_closed\":0,\"uploads\":0,"
        "\"uploads_added\":0,\"incrementals\":0,\"advices\":0,\"ledger\":{\"debits\":1,\"debit_amount\":12500,\"debit_reversals\":0,"
        "\"debit_reversal_amount\":0,\"credits\":0,\"credit_amount\":0,\"credit_reversals\":0,"
        "\"credit_reversal_amount\":0,\"net_amount\":12500}}");
}

namespace {

acq::message reversal(std::string stan, std::string original_stan, std::string mti = "0400") {
  acq::message rev{std::move(mti)};
  rev.set(3, "000000");
  rev.set(4, "000000012500");
  rev.set(7, "0615123510");
  rev.set(11, std::move(stan));
  rev.set(41, "TERM0001");
  rev.set(90, "0200" + original_stan + "0615123456" + "00000000001" + "00000000000");
  return rev;
}

acq::message close_request(const eftd::acqsim::batch_totals& t, std::string stan, std::string mti = "0500") {
  acq::message m{std::move(mti)};
  m.set(3, "920000");
  m.set(7, "0615230000");
  m.set(11, std::move(stan));
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  eftd::acqsim::set_reconciliation_fields(m, t);
  return m;
}

}  // namespace

TEST_CASE("sim faults: chosen by amount suffix, acted out by the server, decided as usual", "[sim][fault]") {
  rules r;
  r.faults = {{"71", eftd::acqsim::fault::drip, 5},
              {"73", eftd::acqsim::fault::wrong_stan, 0},
              {"74", eftd::acqsim::fault::reset, 0},
              {"76", eftd::acqsim::fault::after_reversal, 0}};
  host h{r};
  auto drip = h.handle(sale("000000012571", "4761739001010119", "000001"));
  CHECK(code_of(drip) == "00");
  CHECK(drip.how == eftd::acqsim::fault::drip);
  CHECK(drip.drip_ms == 5);

  auto wrong = h.handle(sale("000000012573", "4761739001010119", "000002"));
  CHECK(wrong.how == eftd::acqsim::fault::wrong_stan);
  CHECK(wrong.response->get_or(11, "") == "000003");

  auto reset = h.handle(sale("000000012574", "4761739001010119", "000004"));
  CHECK(reset.how == eftd::acqsim::fault::reset);
  CHECK_FALSE(h.ledger().at("TERM0001|000004|0615123456").answered);

  auto held = h.handle(sale("000000012576", "4761739001010119", "000005"));
  CHECK(held.how == eftd::acqsim::fault::after_reversal);
  CHECK(held.transaction_key == "TERM0001|000005|0615123456");
  auto rev = h.handle(reversal("000006", "000005"));
  CHECK(code_of(rev) == "00");
  CHECK(rev.how == eftd::acqsim::fault::none);
  CHECK(rev.transaction_key == held.transaction_key);  // the server pairs them by this key

  // A repeat of a faulted request is answered plainly.
  auto repeat = sale("000000012573", "4761739001010119", "000002");
  repeat.set_mti("0201");
  auto again = h.handle(repeat);
  CHECK(again.how == eftd::acqsim::fault::none);
  CHECK(again.response->get_or(11, "") == "000002");

  auto plain = h.handle(sale("000000012500", "4761739001010119", "000007"));
  CHECK(plain.how == eftd::acqsim::fault::none);
  CHECK(h.counts().faults == 4);
}

TEST_CASE("sim ledger: only approved financial debits and credits settle, reversals net them",
          "[sim][settlement]") {
  host h;
  REQUIRE(code_of(h.handle(sale("000000012500", "4761739001010119", "000001"))) == "00");
  auto refund = sale("000000000700", "4761739001010119", "000002");
  refund.set(3, "200000");
  REQUIRE(code_of(h.handle(refund)) == "00");
  auto preauth = sale("000000005000", "4761739001010119", "000003");
  preauth.set_mti("0100");  // settled by its completion, not by itself
  REQUIRE(code_of(h.handle(preauth)) == "00");
  auto inquiry = sale("000000000000", "4761739001010119", "000004");
  inquiry.set(3, "310000");
  REQUIRE(code_of(h.handle(inquiry)) == "00");
  REQUIRE(code_of(h.handle(sale("000000000151", "4761739001010119", "000005"))) == "51");
  REQUIRE(code_of(h.handle(reversal("000006", "000001"))) == "00");

  const auto& t = h.terminals().at("TERM0001").open;
  CHECK(t.debits == 1);
  CHECK(t.debit_amount == 12500);
  CHECK(t.debit_reversals == 1);
  CHECK(t.debit_reversal_amount == 12500);
  CHECK(t.credits == 1);
  CHECK(t.credit_amount == 700);
  CHECK(t.net() == -700);
  CHECK(h.counts().ledger == t);
}

TEST_CASE("sim reconciliation fields: iso87 text both ways, 97 must be the net", "[sim][settlement]") {
  eftd::acqsim::batch_totals t;
  t.debits = 15;
  t.debit_amount = 187500;
  t.debit_reversals = 1;
  t.debit_reversal_amount = 12500;
  t.credits = 2;
  t.credit_amount = 3000;
  acq::message m{"0500"};
  eftd::acqsim::set_reconciliation_fields(m, t);
  // The figures of the golden 0500 in tests/iso8583 (DIALECTS.md).
  CHECK(m.get_or(74, "") == "0000000002");
  CHECK(m.get_or(76, "") == "0000000015");
  CHECK(m.get_or(88, "") == "0000000000187500");
  CHECK(m.get_or(89, "") == "0000000000012500");
  CHECK(m.get_or(97, "") == "D0000000000172000");
  auto back = eftd::acqsim::reconciliation_fields(m);
  REQUIRE(back.has_value());
  CHECK(*back == t);

  m.set(97, "C0000000000172000");
  auto wrong_sign = eftd::acqsim::reconciliation_fields(m);
  REQUIRE_FALSE(wrong_sign.has_value());
  CHECK(wrong_sign.err().code == "sim.bad_totals");
  m.erase(77);
  auto missing = eftd::acqsim::reconciliation_fields(m);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.err().message == "field 77 missing or not numeric");
}

TEST_CASE("sim reconciliation: in balance closes, out of balance asks for an upload, repeats close nothing",
          "[sim][settlement]") {
  host h;
  REQUIRE(code_of(h.handle(sale("000000012500", "4761739001010119", "000001"))) == "00");
  eftd::acqsim::batch_totals ours;
  ours.debits = 1;
  ours.debit_amount = 12500;

  auto closed = h.handle(close_request(ours, "000010"));
  CHECK(code_of(closed) == "00");
  CHECK(closed.response->mti() == "0510");
  CHECK(closed.response->get_or(66, "") == "1");
  CHECK(h.terminals().at("TERM0001").batches_closed == 1);
  CHECK(h.terminals().at("TERM0001").open == eftd::acqsim::batch_totals{});
  // The same 0500 again (its 0510 was lost): same answer, no second close.
  auto repeat = h.handle(close_request(ours, "000010", "0501"));
  CHECK(code_of(repeat) == "00");
  CHECK(repeat.response->mti() == "0510");
  CHECK(h.counts().batches_closed == 1);

  // Next batch: the terminal claims a sale the host never saw.
  REQUIRE(code_of(h.handle(sale("000000001000", "4761739001010119", "000011"))) == "00");
  eftd::acqsim::batch_totals claimed;
  claimed.debits = 2;
  claimed.debit_amount = 1300;
  auto off = h.handle(close_request(claimed, "000012"));
  CHECK(code_of(off) == "95");
  CHECK(off.response->get_or(66, "") == "2");
  CHECK(h.counts().out_of_balance == 1);
  // Asking again without uploading: still out of balance.
  CHECK(code_of(h.handle(close_request(claimed, "000013"))) == "95");

  acq::message up{"0320"};
  up.set(3, "000000");
  up.set(4, "000000000300");
  up.set(7, "0615231000");
  up.set(11, "000014");
  up.set(39, "Y1");
  up.set(41, "TERM0001");
  up.set(90,
         "0220000009061512000000000000001"
         "00000000000");
  auto uploaded = h.handle(up);
  CHECK(code_of(uploaded) == "00");
  CHECK(uploaded.response->mti() == "0330");
  CHECK(h.counts().uploads_added == 1);
  CHECK(h.handle(up).response->get_or(39, "") == "00");  // a resend adds nothing
  CHECK(h.counts().uploads_added == 1);
  CHECK(h.terminals().at("TERM0001").open == claimed);

  auto second = h.handle(close_request(claimed, "000015"));
  CHECK(code_of(second) == "00");
  CHECK(second.response->get_or(66, "") == "1");
  CHECK(h.counts().batches_closed == 2);
  CHECK(h.counts().ledger.debits == 3);
  CHECK(h.counts().ledger.debit_amount == 13800);

  acq::message bad{"0500"};
  bad.set(7, "0615230000");
  bad.set(11, "000016");
  bad.set(41, "TERM0001");
  CHECK(code_of(h.handle(bad)) == "30");
}
