// Golden POS protocol lines: one fully populated example per message type (and a few
// minimal ones), with the exact line the codec must produce. PROTOCOL.md shows the same
// examples; a change here is a wire-format change.
#pragma once

#include <string>
#include <vector>

#include "eftd/pos/messages.hpp"

namespace eftd::pos::test {

struct golden {
  const char* name;
  message msg;
  std::string line;  // without '\n'
};

inline result approved_result() {
  result r;
  r.id = "3";
  r.order_no = "4711";
  r.outcome = "approved";
  r.business_date = "2024-05-02";
  r.amount = 12500;
  r.approved_amount = 12500;
  r.currency = "PLN";
  r.auth_code = "A1B2C3";
  r.masked_pan = "************0119";
  r.scheme = "visa";
  r.entry_mode = "chip";
  r.terminal_id = "T0000001";
  r.stan = "000123";
  r.rrn = "412300000123";
  r.emv = {{"AID", "A0000000031010"}, {"TVR", "0000000000"}, {"TSI", "E800"}, {"ARC", "00"}};
  r.rcpt.merchant = {"SHOP 1", "SALE 125.00 PLN"};
  r.rcpt.customer = {"SHOP 1", "SALE 125.00 PLN", "APPROVED"};
  return r;
}

inline result declined_result() {
  result r;
  r.id = "4";
  r.order_no = "4712";
  r.outcome = "declined";
  r.amount = 500;
  r.currency = "PLN";
  r.why = {"issuer.insufficient_funds", "Declined by issuer: insufficient funds", "Declined"};
  return r;
}

inline const std::vector<golden>& goldens() {
  static const std::vector<golden> table = [] {
    std::vector<golden> g;
    g.push_back(
        {"login", login{"1", "T01", "42", "kasa/3.1", 1, {"prompt"}},
         R"({"type":"login","v":1,"id":"1","till_id":"T01","operator_id":"42","client":"kasa/3.1","version":1,"capabilities":["prompt"]})"});
    g.push_back({"login (minimal)", login{"1", "T01", "", "", 1, {}},
                 R"({"type":"login","v":1,"id":"1","till_id":"T01","version":1})"});
    g.push_back({"logout", logout{"2"}, R"({"type":"logout","v":1,"id":"2"})"});
    g.push_back(
        {"sale", sale{"3", "4711", "PLN", 12500, 2000, 500},
         R"({"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN","cashback":2000,"tip":500})"});
    g.push_back({"sale (minimal)", sale{"3", "4711", "PLN", 12500, 0, 0},
                 R"({"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN"})"});
    g.push_back(
        {"refund", refund{"4", "4712", "4711", "PLN", 500},
         R"({"type":"refund","v":1,"id":"4","order_no":"4712","amount":500,"currency":"PLN","original_order_no":"4711"})"});
    g.push_back({"preauth", preauth{"5", "H-1", "EUR", 30000},
                 R"({"type":"preauth","v":1,"id":"5","order_no":"H-1","amount":30000,"currency":"EUR"})"});
    g.push_back(
        {"completion", completion{"6", "H-2", "H-1", "EUR", 28950},
         R"({"type":"completion","v":1,"id":"6","order_no":"H-2","preauth_order_no":"H-1","amount":28950,"currency":"EUR"})"});
    g.push_back(
        {"incremental", incremental{"7", "H-3", "H-1", "EUR", 5000},
         R"({"type":"incremental","v":1,"id":"7","order_no":"H-3","preauth_order_no":"H-1","amount":5000,"currency":"EUR"})"});
    g.push_back({"cancel", cancel{"8", "4711", "2024-05-02"},
                 R"({"type":"cancel","v":1,"id":"8","order_no":"4711","business_date":"2024-05-02"})"});
    g.push_back({"balance_inquiry", balance_inquiry{"9", "B-1"},
                 R"({"type":"balance_inquiry","v":1,"id":"9","order_no":"B-1"})"});
    g.push_back({"status_query", status_query{"10", "4711", ""},
                 R"({"type":"status_query","v":1,"id":"10","order_no":"4711"})"});
    g.push_back(
        {"status_query (with date)", status_query{"10", "4711", "2024-05-01"},
         R"({"type":"status_query","v":1,"id":"10","order_no":"4711","business_date":"2024-05-01"})"});
    g.push_back({"answer", answer{"11", "p1", "yes"},
                 R"({"type":"answer","v":1,"id":"11","prompt_id":"p1","value":"yes"})"});
    g.push_back({"abort", abort_tx{"12", "4711"}, R"({"type":"abort","v":1,"id":"12","order_no":"4711"})"});
    g.push_back({"heartbeat", heartbeat{"13"}, R"({"type":"heartbeat","v":1,"id":"13"})"});
    g.push_back({"totals", totals{"14", "2024-05-02"},
                 R"({"type":"totals","v":1,"id":"14","business_date":"2024-05-02"})"});
    {
      sale retry{"3", "4711", "PLN", 12500, 0, 0, "2024-05-02"};
      g.push_back(
          {"sale (retry with business date)", retry,
           R"({"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN","business_date":"2024-05-02"})"});
      refund r{"4", "4712", "4711", "PLN", 500, "2024-05-01", ""};
      g.push_back(
          {"refund (original on an earlier day)", r,
           R"({"type":"refund","v":1,"id":"4","order_no":"4712","amount":500,"currency":"PLN","original_order_no":"4711","original_business_date":"2024-05-01"})"});
    }
    g.push_back(
        {"login_ok", login_ok{"1", "eftd-a", "2024-05-02", 1, {"sale", "status_query"}},
         R"({"type":"login_ok","v":1,"id":"1","server":"eftd-a","business_date":"2024-05-02","version":1,"capabilities":["sale","status_query"]})"});
    g.push_back(
        {"status", status{"3", "4711", "card", "Insert or swipe card"},
         R"({"type":"status","v":1,"id":"3","order_no":"4711","stage":"card","text":"Insert or swipe card"})"});
    g.push_back(
        {"prompt", prompt{"3", "p1", "4711", "yes_no", "Signature OK?", {"yes", "no"}, 30000, "no"},
         R"({"type":"prompt","v":1,"id":"3","prompt_id":"p1","order_no":"4711","kind":"yes_no","text":"Signature OK?","options":["yes","no"],"timeout_ms":30000,"default":"no"})"});
    g.push_back(
        {"result (approved)", approved_result(),
         R"({"type":"result","v":1,"id":"3","order_no":"4711","outcome":"approved","business_date":"2024-05-02","amount":12500,"approved_amount":12500,"currency":"PLN","auth_code":"A1B2C3","masked_pan":"************0119","scheme":"visa","entry_mode":"chip","terminal_id":"T0000001","stan":"000123","rrn":"412300000123","emv":{"AID":"A0000000031010","ARC":"00","TSI":"E800","TVR":"0000000000"},"receipt":{"merchant":["SHOP 1","SALE 125.00 PLN"],"customer":["SHOP 1","SALE 125.00 PLN","APPROVED"]}})"});
    g.push_back(
        {"result (declined)", declined_result(),
         R"({"type":"result","v":1,"id":"4","order_no":"4712","outcome":"declined","amount":500,"currency":"PLN","reason":{"code":"issuer.insufficient_funds","cashier_text":"Declined by issuer: insufficient funds","customer_text":"Declined"}})"});
    g.push_back(
        {"order_status", order_status{"10", "4712", "2024-05-02", "declined", declined_result()},
         R"({"type":"order_status","v":1,"id":"10","order_no":"4712","state":"declined","business_date":"2024-05-02","last_result":{"id":"4","order_no":"4712","outcome":"declined","amount":500,"currency":"PLN","reason":{"code":"issuer.insufficient_funds","cashier_text":"Declined by issuer: insufficient funds","customer_text":"Declined"}}})"});
    g.push_back({"order_status (unknown)", order_status{"10", "9999", "", "unknown", std::nullopt},
                 R"({"type":"order_status","v":1,"id":"10","order_no":"9999","state":"unknown"})"});
    g.push_back(
        {"error", error{"3", "busy", "another transaction is running on this till", "4711", ""},
         R"({"type":"error","v":1,"id":"3","code":"busy","message":"another transaction is running on this till","order_no":"4711"})"});
    g.push_back(
        {"error (not active)", error{"", "not_active", "standby server", "", "10.0.0.2:9100"},
         R"({"type":"error","v":1,"code":"not_active","message":"standby server","active_server":"10.0.0.2:9100"})"});
    g.push_back({"heartbeat_ack", heartbeat_ack{"13"}, R"({"type":"heartbeat_ack","v":1,"id":"13"})"});
    g.push_back({"logout_ok", logout_ok{"2"}, R"({"type":"logout_ok","v":1,"id":"2"})"});
    {
      totals_report t;
      t.id = "14";
      t.till_id = "T01";
      t.business_date = "2024-05-02";
      t.lines = {{"refund", "approved", "PLN", 1, 500},
                 {"sale", "approved", "PLN", 2, 25000},
                 {"sale", "declined", "PLN", 1, 500}};
      t.net = {{"PLN", 24500}};
      g.push_back(
          {"totals_report", t,
           R"({"type":"totals_report","v":1,"id":"14","till_id":"T01","business_date":"2024-05-02","lines":[{"kind":"refund","outcome":"approved","currency":"PLN","count":1,"amount":500},{"kind":"sale","outcome":"approved","currency":"PLN","count":2,"amount":25000},{"kind":"sale","outcome":"declined","currency":"PLN","count":1,"amount":500}],"net":{"PLN":24500}})"});
      result b;
      b.id = "9";
      b.order_no = "B-1";
      b.outcome = "approved";
      b.currency = "PLN";
      b.balance = 123456;
      g.push_back(
          {"result (balance inquiry)", b,
           R"({"type":"result","v":1,"id":"9","order_no":"B-1","outcome":"approved","currency":"PLN","balance":123456})"});
    }
    return g;
  }();
  return table;
}

}  // namespace eftd::pos::test
