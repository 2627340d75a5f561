#include <catch2/catch.hpp>
#include <string>

#include "reasons.hpp"

using eftd::server::motivate;

TEST_CASE("every decline reason quotes the order number for cashier, customer and journal") {
  const char* codes[] = {"limit.amount_below_minimum",
                         "limit.amount_above_maximum",
                         "limit.type_not_allowed",
                         "card.scheme_not_accepted",
                         "card.unknown_scheme",
                         "card.expired",
                         "card.unreadable",
                         "card.timeout",
                         "card.cancelled",
                         "pad.unavailable",
                         "pad.disconnected",
                         "pad.timeout",
                         "route.none",
                         "acquirer.unreachable",
                         "acquirer.timeout",
                         "acquirer.bad_response",
                         "journal.unavailable",
                         "issuer.do_not_honour",
                         "issuer.insufficient_funds",
                         "issuer.expired_card",
                         "issuer.exceeds_limit",
                         "issuer.invalid_card",
                         "issuer.lost_or_stolen",
                         "issuer.incorrect_pin",
                         "issuer.not_permitted",
                         "issuer.unavailable",
                         "issuer.system_error",
                         "issuer.declined",
                         "server.restarted",
                         "server.internal"};
  for (const char* code : codes) {
    INFO(code);
    auto m = motivate(code, "4711");
    CHECK(m.why.code == code);
    CHECK(m.outcome != "approved");
    CHECK(m.why.cashier_text.find("4711") != std::string::npos);
    CHECK(m.why.customer_text.find("4711") != std::string::npos);
    CHECK(m.journal.find("4711") != std::string::npos);
    CHECK(m.journal.find(code) != std::string::npos);
    // A customer text has to fit a two-line pad display.
    CHECK(m.why.customer_text.size() <= 64);
  }
}

TEST_CASE("outcomes follow the reason: declines, failures and cancellations are told apart") {
  CHECK(motivate("issuer.insufficient_funds", "1").outcome == "declined");
  CHECK(motivate("limit.amount_above_maximum", "1").outcome == "declined");
  CHECK(motivate("acquirer.timeout", "1").outcome == "failed");
  CHECK(motivate("pad.unavailable", "1").outcome == "failed");
  CHECK(motivate("card.timeout", "1").outcome == "cancelled");
  CHECK(motivate("approved", "1").outcome == "approved");
}

TEST_CASE("a detail goes to the cashier and the journal, and an unknown code is a generic failure") {
  auto m = motivate("limit.amount_above_maximum", "9", "maximum 10000.00 PLN");
  CHECK(m.why.cashier_text.find("maximum 10000.00 PLN") != std::string::npos);
  CHECK(m.journal.find("maximum 10000.00 PLN") != std::string::npos);
  auto u = motivate("no.such.code", "9");
  CHECK(u.outcome == "failed");
  CHECK(u.why.code == "no.such.code");
  CHECK(u.why.cashier_text.find("9") != std::string::npos);
}

TEST_CASE("ISO 8583 response codes map to issuer reasons") {
  using eftd::server::reason_for_response_code;
  using eftd::server::response_code_approves;
  CHECK(reason_for_response_code("51") == "issuer.insufficient_funds");
  CHECK(reason_for_response_code("05") == "issuer.do_not_honour");
  CHECK(reason_for_response_code("54") == "issuer.expired_card");
  CHECK(reason_for_response_code("91") == "issuer.unavailable");
  CHECK(reason_for_response_code("Z9") == "issuer.declined");
  CHECK(response_code_approves("00"));
  CHECK_FALSE(response_code_approves("05"));
  CHECK_FALSE(response_code_approves(""));
}
