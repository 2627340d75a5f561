// The simulator's decision logic without sockets: every rule, the ledger, reversals, summary.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/acqsim/host.hpp"

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

  // Idempotent: again, and as an advice repeat.
  rev.set_mti("0421");
  o = h.handle(rev);
  CHECK(code_of(o) == "00");
  CHECK(o.response->mti() == "0430");
  CHECK(o.note == "already reversed");
  CHECK(h.counts().reversed == 1);
  CHECK(h.counts().reversals == 2);
}

TEST_CASE("sim reversal without field 90 uses its own 41 + 11 + 7; unknown originals get 00", "[sim]") {
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
        "\"approved_amount\":12500}");
}
