#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "eftd/reports/orders.hpp"

using namespace eftd;

namespace {
journal::order_row sample(std::string order_no, std::string state, std::int64_t amount) {
  journal::order_row r;
  r.order_id = "ID" + order_no;
  r.merchant_id = "M001";
  r.store_id = "S01";
  r.till_id = "T01";
  r.order_no = std::move(order_no);
  r.business_date = "2026-11-22";
  r.kind = "sale";
  r.amount_minor = amount;
  r.currency = "PLN";
  r.state = std::move(state);
  r.created_ms = 1'790'000'000'000;
  return r;
}
}  // namespace

TEST_CASE("report formats parse by name and unknown names are refused") {
  CHECK(*reports::parse_format("csv") == reports::format::csv);
  CHECK(*reports::parse_format("json") == reports::format::json);
  CHECK(*reports::parse_format("table") == reports::format::table);
  auto bad = reports::parse_format("xml");
  REQUIRE_FALSE(bad);
  CHECK(bad.err().code == "reports.bad_format");
}

TEST_CASE("CSV fields are quoted per RFC 4180 only when needed") {
  CHECK(reports::csv_field("plain") == "plain");
  CHECK(reports::csv_field("a,b") == "\"a,b\"");
  CHECK(reports::csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(reports::csv_field("two\nlines") == "\"two\nlines\"");
  // Formula injection: a cell a spreadsheet would evaluate is defused.
  CHECK(reports::csv_field("=HYPERLINK(1)") == "'=HYPERLINK(1)");
  CHECK(reports::csv_field("@SUM(1,2)") == "\"'@SUM(1,2)\"");
}

TEST_CASE("the order list renders as CSV with a header and one CRLF line per order") {
  auto r1 = sample("4711", "approved", 12500);
  auto r2 = sample("4712", "declined", 2051);
  r2.result_code = "issuer.insufficient_funds";
  r2.reason_cashier = "Order 4712: declined, insufficient funds";
  auto csv = reports::render_orders({r1, r2}, reports::format::csv);
  CHECK(csv.rfind("created,business_date,merchant,store,till,order_no,kind,amount,currency,state,result_code,"
                  "reason,order_id\r\n",
                  0) == 0);
  CHECK(csv.find(",4711,sale,125.00,PLN,approved,,,ID4711\r\n") != std::string::npos);
  CHECK(csv.find(",4712,sale,20.51,PLN,declined,issuer.insufficient_funds,\"Order 4712: declined, "
                 "insufficient funds\",ID4712\r\n") != std::string::npos);
}

TEST_CASE("the order list renders as a JSON array that round-trips the amounts") {
  auto json = reports::render_orders({sample("1", "approved", 1), sample("2", "failed", -250)},
                                     reports::format::json);
  auto j = nlohmann::json::parse(json);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 2);
  CHECK(j[0]["amount_minor"] == 1);
  CHECK(j[1]["amount_minor"] == -250);
  CHECK(j[1]["state"] == "failed");
  CHECK(j[1]["amount"] == "-2.50");
}

TEST_CASE("the order list table aligns columns and counts the orders") {
  auto t = reports::render_orders({sample("1", "approved", 100), sample("22222", "declined", 99)},
                                  reports::format::table);
  CHECK(t.find("2026-") != std::string::npos);
  CHECK(t.find("(2 orders)") != std::string::npos);
  CHECK(t.find("0.99") != std::string::npos);
  CHECK(t.find("1.00") != std::string::npos);
}

TEST_CASE("the log of one transaction shows operations, acquirer messages and events in order") {
  journal::order_view v;
  v.order = sample("4711", "approved", 12500);
  journal::operation_row op;
  op.op_id = "OP1234567890";
  op.kind = "payment";
  op.state = "approved";
  op.pan_masked = "476173******0119";
  op.auth_code = "123456";
  v.operations.push_back(op);
  journal::acquirer_message_row m;
  m.acquirer = "sim";
  m.mti = "0200";
  m.terminal_id = "TERM0001";
  m.stan = 42;
  m.state = "answered";
  m.response_code = "00";
  v.messages.push_back(m);
  journal::event_row e1;
  e1.at_ms = 1'790'000'000'000;
  e1.actor = journal::actor::pos;
  e1.kind = "sale_requested";
  e1.reason = "order 4711: sale requested";
  journal::event_row e2 = e1;
  e2.actor = journal::actor::acquirer;
  e2.kind = "approved";
  e2.reason = "order 4711: approved";
  v.events = {e1, e2};
  auto text = reports::render_order_detail(v, reports::format::table);
  CHECK(text.find("Order 4711") != std::string::npos);
  CHECK(text.find("476173******0119") != std::string::npos);
  CHECK(text.find("STAN 000042") != std::string::npos);
  CHECK(text.find("sale_requested") < text.find("order 4711: approved"));
  CHECK(text.find("order 4711: approved") != std::string::npos);
  auto j = nlohmann::json::parse(reports::render_order_detail(v, reports::format::json));
  CHECK(j["events"].size() == 2);
  CHECK(j["events"][1]["actor"] == "acquirer");
  CHECK(j["messages"][0]["stan"] == 42);
  auto csv = reports::render_order_detail(v, reports::format::csv);
  CHECK(csv.rfind("time,actor,event,reason\r\n", 0) == 0);
}
