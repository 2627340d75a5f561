// POS codec: golden lines for every message type, decode errors with exact codes, and the
// forward-compatibility rules of PROTOCOL.md.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "eftd/pos/codec.hpp"
#include "golden.hpp"

using namespace eftd::pos;
using eftd::pos::test::goldens;

namespace {

// Every golden entry of one wire type: encode gives the exact line, the line decodes to the
// same message, and the message survives encode -> decode unchanged.
void check_golden(std::string_view type) {
  int seen = 0;
  for (const auto& g : goldens()) {
    if (type_name(g.msg) != type) continue;
    ++seen;
    INFO(g.name);
    CHECK(encode(g.msg) == g.line + "\n");
    auto d = decode(g.line);
    REQUIRE(d.has_value());
    CHECK(d->index() == g.msg.index());
    CHECK(*d == g.msg);
    auto again = decode(encode(*d).substr(0, encode(*d).size() - 1));
    REQUIRE(again.has_value());
    CHECK(*again == g.msg);
  }
  CHECK(seen > 0);
}

std::string err_code(std::string_view line) {
  auto d = decode(line);
  return d ? std::string("ok") : d.err().code;
}

std::string err_message(std::string_view line) {
  auto d = decode(line);
  return d ? std::string() : d.err().message;
}

}  // namespace

TEST_CASE("golden: login", "[pos][codec]") {
  check_golden("login");
}
TEST_CASE("golden: logout", "[pos][codec]") {
  check_golden("logout");
}
TEST_CASE("golden: sale", "[pos][codec]") {
  check_golden("sale");
}
TEST_CASE("golden: refund", "[pos][codec]") {
  check_golden("refund");
}
TEST_CASE("golden: preauth", "[pos][codec]") {
  check_golden("preauth");
}
TEST_CASE("golden: completion", "[pos][codec]") {
  check_golden("completion");
}
TEST_CASE("golden: incremental", "[pos][codec]") {
  check_golden("incremental");
}
TEST_CASE("golden: cancel", "[pos][codec]") {
  check_golden("cancel");
}
TEST_CASE("golden: balance_inquiry", "[pos][codec]") {
  check_golden("balance_inquiry");
}
TEST_CASE("golden: status_query", "[pos][codec]") {
  check_golden("status_query");
}
TEST_CASE("golden: answer", "[pos][codec]") {
  check_golden("answer");
}
TEST_CASE("golden: abort", "[pos][codec]") {
  check_golden("abort");
}
TEST_CASE("golden: heartbeat", "[pos][codec]") {
  check_golden("heartbeat");
}
TEST_CASE("golden: login_ok", "[pos][codec]") {
  check_golden("login_ok");
}
TEST_CASE("golden: status", "[pos][codec]") {
  check_golden("status");
}
TEST_CASE("golden: prompt", "[pos][codec]") {
  check_golden("prompt");
}
TEST_CASE("golden: result", "[pos][codec]") {
  check_golden("result");
}
TEST_CASE("golden: order_status", "[pos][codec]") {
  check_golden("order_status");
}
TEST_CASE("golden: error", "[pos][codec]") {
  check_golden("error");
}
TEST_CASE("golden: heartbeat_ack", "[pos][codec]") {
  check_golden("heartbeat_ack");
}
TEST_CASE("golden: logout_ok", "[pos][codec]") {
  check_golden("logout_ok");
}

TEST_CASE("every message type has a golden line", "[pos][codec]") {
  std::set<std::size_t> covered;
  for (const auto& g : goldens()) covered.insert(g.msg.index());
  CHECK(covered.size() == std::variant_size_v<message>);
}

TEST_CASE("type_name, is_request and id_of", "[pos][codec]") {
  CHECK(type_name(abort_tx{}) == "abort");
  CHECK(type_name(order_status{}) == "order_status");
  CHECK(is_request(sale{}));
  CHECK(is_request(heartbeat{}));
  CHECK(is_request(answer{}));
  CHECK_FALSE(is_request(login_ok{}));
  CHECK_FALSE(is_request(heartbeat_ack{}));
  CHECK_FALSE(is_request(logout_ok{}));
  CHECK_FALSE(is_request(error{}));
  CHECK(is_request(totals{}));
  CHECK_FALSE(is_request(totals_report{}));
  CHECK(id_of(sale{"s-9", "1", "PLN", 1, 0, 0}) == "s-9");
  CHECK(id_of(status{}).empty());
  std::set<std::string_view> names;
  for (const auto& g : goldens()) names.insert(type_name(g.msg));
  CHECK(names.size() == std::variant_size_v<message>);  // wire names are unique
}

TEST_CASE("unknown type is pos.unknown_type and does not echo the type", "[pos][codec]") {
  CHECK(err_code(R"({"type":"teleport","v":1,"id":"1"})") == codes::unknown_type);
  CHECK(err_message(R"({"type":"teleport","v":1,"id":"1"})").find("teleport") == std::string::npos);
  CHECK(err_code(R"({"type":"SALE","v":1,"id":"1"})") == codes::unknown_type);
  CHECK(err_code(R"({"type":"","v":1})") == codes::unknown_type);
  // Internal names that are not wire names.
  CHECK(err_code(R"({"type":"abort_tx","v":1,"id":"1","order_no":"1"})") == codes::unknown_type);
}

TEST_CASE("missing required fields are pos.missing_field naming the field", "[pos][codec]") {
  struct row {
    const char* line;
    const char* field;
  };
  const row rows[] = {
      {R"({"v":1,"id":"1"})", "'type'"},
      {R"({"type":"sale","id":"1"})", "'v'"},
      {R"({"type":"sale","v":1,"order_no":"4711","amount":1,"currency":"PLN"})", "'id'"},
      {R"({"type":"sale","v":1,"id":"1","amount":1,"currency":"PLN"})", "'order_no'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","currency":"PLN"})", "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":1})", "'currency'"},
      {R"({"type":"login","v":1,"id":"1","version":1})", "'till_id'"},
      {R"({"type":"login","v":1,"id":"1","till_id":"T01"})", "'version'"},
      {R"({"type":"answer","v":1,"id":"1","prompt_id":"p"})", "'value'"},
      {R"({"type":"result","v":1,"id":"1","order_no":"4711"})", "'outcome'"},
      {R"({"type":"result","v":1,"id":"1","order_no":"4711","outcome":"declined","reason":{}})",
       "'reason.code'"},
      {R"({"type":"order_status","v":1,"id":"1","order_no":"1","state":"declined","last_result":{"id":"1","order_no":"1","outcome":"declined","reason":{"cashier_text":"x"}}})",
       "'last_result.reason.code'"},
      {R"({"type":"error","v":1,"message":"x"})", "'code'"},
  };
  for (const auto& r : rows) {
    INFO(r.line);
    CHECK(err_code(r.line) == codes::missing_field);
    CHECK(err_message(r.line).find(r.field) != std::string::npos);
  }
}

TEST_CASE("fields of the wrong type are pos.bad_field naming the field", "[pos][codec]") {
  struct row {
    const char* line;
    const char* field;
  };
  const row rows[] = {
      {R"({"type":7,"v":1})", "'type'"},
      {R"({"type":"sale","v":"1","id":"1"})", "'v'"},
      {R"({"type":"sale","v":1.0,"id":"1"})", "'v'"},
      {R"({"type":"sale","v":1,"id":1,"order_no":"4711","amount":1,"currency":"PLN"})", "'id'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":4711,"amount":1,"currency":"PLN"})", "'order_no'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":"125.00","currency":"PLN"})", "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":125.5,"currency":"PLN"})", "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":12500.0,"currency":"PLN"})", "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":true,"currency":"PLN"})", "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":9223372036854775808,"currency":"PLN"})",
       "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":null,"currency":"PLN"})", "'amount'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":1,"currency":["PLN"]})", "'currency'"},
      {R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":1,"currency":"PLN","tip":"1"})", "'tip'"},
      {R"({"type":"login","v":1,"id":"1","till_id":"T01","version":4294967296})", "'version'"},
      {R"({"type":"login","v":1,"id":"1","till_id":"T01","version":1,"capabilities":"sale"})",
       "'capabilities'"},
      {R"({"type":"prompt","v":1,"prompt_id":"p","order_no":"1","kind":"menu","text":"t","options":["a",2]})",
       "'options[1]'"},
      {R"({"type":"prompt","v":1,"prompt_id":"p","order_no":"1","kind":"menu","text":"t","timeout_ms":-1})",
       "'timeout_ms'"},
      {R"({"type":"prompt","v":1,"prompt_id":"p","order_no":"1","kind":"menu","text":"t","timeout_ms":4294967296})",
       "'timeout_ms'"},
      {R"({"type":"result","v":1,"id":"1","order_no":"1","outcome":"approved","emv":{"AID":1}})", "'emv.*'"},
      {R"({"type":"totals_report","v":1,"id":"1","till_id":"T01","business_date":"2024-05-02","lines":[{"kind":"sale","outcome":"approved","currency":"PLN","count":"1","amount":1}]})",
       "'lines[0].count'"},
      {R"({"type":"totals_report","v":1,"id":"1","till_id":"T01","business_date":"2024-05-02","net":{"PLN":"1"}})",
       "'net.*'"},
      {R"({"type":"result","v":1,"id":"1","order_no":"1","outcome":"approved","emv":["AID"]})", "'emv'"},
      {R"({"type":"result","v":1,"id":"1","order_no":"1","outcome":"approved","receipt":{"merchant":"x"}})",
       "'receipt.merchant'"},
      {R"({"type":"result","v":1,"id":"1","order_no":"1","outcome":"approved","reason":"none"})", "'reason'"},
      {R"({"type":"order_status","v":1,"id":"1","order_no":"1","state":"x","last_result":[]})",
       "'last_result'"},
  };
  for (const auto& r : rows) {
    INFO(r.line);
    CHECK(err_code(r.line) == codes::bad_field);
    CHECK(err_message(r.line).find(r.field) != std::string::npos);
  }
}

TEST_CASE("error texts name the field, never its value", "[pos][codec][security]") {
  // A POS that puts a card number where an amount belongs must not see it echoed into logs.
  const auto m = err_message(
      R"({"type":"sale","v":1,"id":"1","order_no":"4711","amount":"4111111111111111","currency":"PLN"})");
  CHECK(m.find("amount") != std::string::npos);
  CHECK(m.find("4111") == std::string::npos);
}

TEST_CASE("integer range edges", "[pos][codec]") {
  auto ok = decode(
      R"({"type":"sale","v":1,"id":"1","order_no":"1","amount":9223372036854775807,"currency":"PLN"})");
  REQUIRE(ok.has_value());
  CHECK(std::get<sale>(*ok).amount == INT64_MAX);
  // Negative amounts are well-formed; rejecting them is the server's invalid_amount.
  auto neg = decode(R"({"type":"sale","v":1,"id":"1","order_no":"1","amount":-5,"currency":"PLN"})");
  REQUIRE(neg.has_value());
  CHECK(std::get<sale>(*neg).amount == -5);
  auto t = decode(
      R"({"type":"prompt","v":1,"prompt_id":"p","order_no":"1","kind":"menu","text":"t","timeout_ms":4294967295})");
  REQUIRE(t.has_value());
  CHECK(std::get<prompt>(*t).timeout_ms == UINT32_MAX);
  CHECK(err_code(R"({"type":"login","v":1,"id":"1","till_id":"T01","version":-2147483649})") ==
        codes::bad_field);
}

TEST_CASE("bad JSON is pos.bad_json", "[pos][codec]") {
  const char* rows[] = {
      "",
      " ",
      "{",
      "}",
      "[1,2]",
      "\"sale\"",
      "null",
      "42",
      R"({"type":"sale","v":1)",
      R"({"type":"sale","v":1,})",
      R"({type:"sale"})",
      R"({"type":"sale","v":1} {"type":"sale","v":1})",
      "{\"type\":\"heartbeat\",\"v\":1,\"id\":\"\xff\xfe\"}",  // invalid UTF-8
      "{\"type\":\"heartbeat\",\"v\":1,\"id\":\"a\x01\"}",     // raw control character
  };
  for (const char* line : rows) {
    INFO(line);
    CHECK(err_code(line) == codes::bad_json);
  }
}

TEST_CASE("v other than 1 is pos.unsupported_version", "[pos][codec]") {
  CHECK(err_code(R"({"type":"heartbeat","v":2,"id":"1"})") == codes::unsupported_version);
  CHECK(err_code(R"({"type":"heartbeat","v":0,"id":"1"})") == codes::unsupported_version);
  CHECK(err_code(R"({"type":"heartbeat","v":-1,"id":"1"})") == codes::unsupported_version);
  // Version is checked before the type, so a newer client learns about the version first.
  CHECK(err_code(R"({"type":"hologram","v":2,"id":"1"})") == codes::unsupported_version);
}

TEST_CASE("a line over 64 KiB is pos.frame_too_large in decode", "[pos][codec]") {
  std::string line = R"({"type":"heartbeat","v":1,"id":")";
  line += std::string(max_line_bytes, 'x');
  line += "\"}";
  CHECK(err_code(line) == codes::frame_too_large);
  // Exactly at the limit is still decoded.
  std::string at_limit = R"({"type":"heartbeat","v":1,"id":")";
  at_limit += std::string(max_line_bytes - at_limit.size() - 2, 'x') + "\"}";
  REQUIRE(at_limit.size() == max_line_bytes);
  CHECK(err_code(at_limit) == "ok");
}

TEST_CASE("unknown fields are ignored", "[pos][codec]") {
  auto d = decode(
      R"({"x-vendor":{"a":[1,2,{"b":null}]},"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN","loyalty":"gold","cashback":0})");
  REQUIRE(d.has_value());
  CHECK(std::get<sale>(*d) == sale{"3", "4711", "PLN", 12500, 0, 0});
  auto r = decode(
      R"({"type":"result","v":1,"id":"3","order_no":"4711","outcome":"approved","reason":{"code":"ok","future":1},"receipt":{"merchant":["a"],"footer":["b"]}})");
  REQUIRE(r.has_value());
  CHECK(std::get<result>(*r).rcpt.merchant == std::vector<std::string>{"a"});
}

TEST_CASE("null optional fields count as absent", "[pos][codec]") {
  auto d =
      decode(R"({"type":"sale","v":1,"id":"3","order_no":"4711","amount":100,"currency":"PLN","tip":null})");
  REQUIRE(d.has_value());
  CHECK(std::get<sale>(*d).tip == 0);
  auto q =
      decode(R"({"type":"order_status","v":1,"id":"1","order_no":"1","state":"unknown","last_result":null})");
  REQUIRE(q.has_value());
  CHECK_FALSE(std::get<order_status>(*q).last_result.has_value());
  // null in a required field is not "absent": it is the wrong type.
  CHECK(err_code(R"({"type":"heartbeat","v":1,"id":null})") == codes::bad_field);
}

TEST_CASE("field order and whitespace on input do not matter", "[pos][codec]") {
  auto d = decode(
      "  { \"currency\" : \"PLN\", \"amount\": 12500 "
      ",\"order_no\":\"4711\",\"id\":\"3\",\"v\":1,\"type\":\"sale\" }\r");
  REQUIRE(d.has_value());
  CHECK(encode(*d) ==
        "{\"type\":\"sale\",\"v\":1,\"id\":\"3\",\"order_no\":\"4711\",\"amount\":12500,\"currency\":\"PLN\"}"
        "\n");
}

TEST_CASE("strings keep UTF-8 and escapes exactly", "[pos][codec]") {
  status s{"1", "4711", "", "Włóż kartę \"teraz\"\n\\ \xE2\x82\xAC"};
  const auto line = encode(s);
  CHECK(line ==
        "{\"type\":\"status\",\"v\":1,\"id\":\"1\",\"order_no\":\"4711\",\"text\":\"Włóż kartę "
        "\\\"teraz\\\"\\n\\\\ €\"}\n");
  auto d = decode(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(d.has_value());
  CHECK(std::get<status>(*d) == s);
  // An encoded line never contains a raw newline except its terminator.
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("encode never throws on invalid UTF-8 in a field", "[pos][codec]") {
  status s{"1", "4711", "", std::string("bad \xff\xfe bytes")};
  std::string line;
  REQUIRE_NOTHROW(line = encode(s));
  auto d = decode(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(d.has_value());
  CHECK(std::get<status>(*d).text == "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");  // U+FFFD twice
}

TEST_CASE("peek_id recovers the request id of a bad request", "[pos][codec]") {
  CHECK(peek_id(R"({"type":"teleport","v":1,"id":"77"})") == "77");
  CHECK(peek_id(R"({"type":"sale","v":1,"id":"78","amount":"1"})") == "78");
  CHECK(peek_id(R"({"type":"sale","v":1,"id":79})").empty());
  CHECK(peek_id("{broken").empty());
  CHECK(peek_id("[\"id\"]").empty());
}

TEST_CASE("duplicate keys: the last one wins, consistently", "[pos][codec]") {
  auto d = decode(R"({"type":"heartbeat","v":1,"id":"a","id":"b"})");
  REQUIRE(d.has_value());
  CHECK(id_of(*d) == "b");
}

TEST_CASE("PROTOCOL.md shows every golden line and documents every error code", "[pos][codec][docs]") {
  const char* src = std::getenv("EFTD_SOURCE");
  REQUIRE(src != nullptr);
  std::ifstream in(std::string(src) + "/pos-protocol/PROTOCOL.md");
  REQUIRE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  for (const auto& g : goldens()) {
    INFO(g.name);
    CHECK(text.find(g.line) != std::string::npos);
  }
  for (std::string_view code : {codes::bad_json,        codes::unknown_type,      codes::missing_field,
                                codes::bad_field,       codes::frame_too_large,   codes::unsupported_version,
                                codes::unexpected,      codes::disconnected,      codes::timeout,
                                codes::not_logged_in,   codes::already_logged_in, codes::unknown_till,
                                codes::till_in_use,     codes::not_active,        codes::busy,
                                codes::not_supported,   codes::invalid_amount,    codes::invalid_currency,
                                codes::duplicate_order, codes::in_progress,       codes::unknown_order,
                                codes::unknown_prompt,  codes::pad_unavailable,   codes::internal}) {
    INFO(code);
    CHECK(text.find("`" + std::string(code) + "`") != std::string::npos);
  }
}

TEST_CASE("a server message of a hot-standby node carries its epoch after \"v\"", "[pos][codec]") {
  const heartbeat_ack ack{"13"};
  CHECK(encode(ack, 4) == "{\"type\":\"heartbeat_ack\",\"v\":1,\"epoch\":4,\"id\":\"13\"}\n");
  CHECK(encode(ack, 0) == encode(ack));  // a single node: no epoch field
  const auto line = encode(ack, 4);
  CHECK(peek_epoch(std::string_view(line).substr(0, line.size() - 1)) == 4);
  CHECK(peek_epoch(R"({"type":"heartbeat_ack","v":1,"id":"13"})") == 0);
  CHECK(peek_epoch(R"({"type":"heartbeat_ack","v":1,"epoch":-3})") == 0);
  CHECK(peek_epoch(R"({"type":"heartbeat_ack","v":1,"epoch":"5"})") == 0);
  CHECK(peek_epoch("{broken") == 0);
  // Unknown fields are ignored: a POS that knows nothing of epochs decodes it as before.
  auto d = decode(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(d.has_value());
  CHECK(std::get<heartbeat_ack>(*d).id == "13");
}
