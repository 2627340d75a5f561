#include <catch2/catch.hpp>
#include <string>

#include "receipt.hpp"

using eftd::server::build_receipt;
using eftd::server::receipt_input;

namespace {
receipt_input approved_input(const eftd::config::merchant& m, const eftd::config::store& s) {
  receipt_input in;
  in.merchant = &m;
  in.store = &s;
  in.till_id = "T01";
  in.terminal_id = "TERM0001";
  in.order_no = "4711";
  in.kind = "SALE";
  in.at_ms = 1'790'000'000'000;
  in.amount_minor = 12500;
  in.currency = "PLN";
  in.masked_pan = "476173******0119";
  in.scheme = "visa";
  in.entry_mode = "magstripe";
  in.auth_code = "123456";
  in.stan = "000042";
  in.rrn = "632615000042";
  in.response_code = "00";
  in.outcome = "approved";
  return in;
}

bool has_line_containing(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("receipts carry the order, amount, masked card and auth code, within 40 columns") {
  eftd::config::merchant m;
  m.name = "DEMO SHOP";
  m.receipt_header = "DEMO SHOP\nul. Prosta 1";
  m.acquirer_merchant_id = "DEMO00000000001";
  eftd::config::store s;
  s.address = "00-001 Warszawa";
  auto r = build_receipt(approved_input(m, s));
  for (const auto* copy : {&r.merchant, &r.customer}) {
    CHECK(has_line_containing(*copy, "DEMO SHOP"));
    CHECK(has_line_containing(*copy, "ul. Prosta 1"));
    CHECK(has_line_containing(*copy, "4711"));
    CHECK(has_line_containing(*copy, "125.00 PLN"));
    CHECK(has_line_containing(*copy, "476173******0119"));
    CHECK(has_line_containing(*copy, "123456"));
    CHECK(has_line_containing(*copy, "APPROVED"));
    for (const auto& line : *copy) CHECK(line.size() <= 40);
  }
  CHECK(has_line_containing(r.merchant, "MERCHANT COPY"));
  CHECK(has_line_containing(r.customer, "CUSTOMER COPY"));
}

TEST_CASE("a declined receipt shows the response code and the customer's reason, not an auth code") {
  eftd::config::merchant m;
  m.name = "SHOP";
  eftd::config::store s;
  auto in = approved_input(m, s);
  in.outcome = "declined";
  in.auth_code.clear();
  in.response_code = "51";
  in.reason_text = "Insufficient funds - order 4711";
  auto r = build_receipt(in);
  CHECK(has_line_containing(r.customer, "DECLINED"));
  CHECK(has_line_containing(r.customer, "Insufficient funds - order 4711"));
  CHECK(has_line_containing(r.customer, "51"));
  CHECK_FALSE(has_line_containing(r.customer, "Auth code"));
  CHECK_FALSE(has_line_containing(r.customer, "Please keep this receipt"));
}
