// Request/response matching keys: response MTIs and per-class key fields.
#include <catch2/catch.hpp>

#include "eftd/acq/matching.hpp"

using namespace eftd::acq;

TEST_CASE("response MTI is the request MTI + 10, repeats answered like originals", "[matching]") {
  struct row {
    const char* req;
    const char* resp;
  };
  const row rows[] = {{"0100", "0110"}, {"0200", "0210"}, {"0201", "0210"}, {"0220", "0230"},
                      {"0221", "0230"}, {"0400", "0410"}, {"0401", "0410"}, {"0420", "0430"},
                      {"0421", "0430"}, {"0500", "0510"}, {"0800", "0810"}, {"0802", "0812"}};
  for (const auto& r : rows) {
    INFO(r.req);
    auto got = response_mti_for(r.req);
    REQUIRE(got.has_value());
    CHECK(*got == r.resp);
    CHECK(expects_response(r.req));
    CHECK(is_response_mti(r.resp));
  }
  for (const char* none : {"0210", "0410", "0240", "02A0", "020", "", "0810"}) {
    INFO(none);
    CHECK_FALSE(response_mti_for(none).has_value());
  }
}

TEST_CASE("request and response keys agree on 41 + 11 + 7, not STAN alone", "[matching]") {
  message req{"0200"};
  req.set(41, "TERM0001");
  req.set(11, "000123");
  req.set(7, "0615123456");
  req.set(4, "000000012500");
  auto rk = request_match_key(req);
  REQUIRE(rk.has_value());
  CHECK(*rk == "0210|TERM0001|000123|0615123456");

  message resp{"0210"};
  resp.set(7, "0615123456");
  resp.set(11, "000123");
  resp.set(41, "TERM0001");
  resp.set(39, "00");
  auto pk = response_match_key(resp);
  REQUIRE(pk.has_value());
  CHECK(*pk == *rk);

  // Same STAN from another terminal must not match.
  resp.set(41, "TERM0002");
  CHECK(*response_match_key(resp) != *rk);
  // Same STAN and terminal, another day: no match either.
  resp.set(41, "TERM0001");
  resp.set(7, "0616123456");
  CHECK(*response_match_key(resp) != *rk);
}

TEST_CASE("network management keys on STAN + transmission time only", "[matching]") {
  message req{"0800"};
  req.set(7, "0615120000");
  req.set(11, "000001");
  req.set(70, "301");
  auto k = request_match_key(req);
  REQUIRE(k.has_value());
  CHECK(*k == "0810|000001|0615120000");
  CHECK(match_fields("0800").size() == 2);
  CHECK(match_fields("0200").size() == 3);
}

TEST_CASE("missing key fields and wrong MTI classes are errors", "[matching]") {
  message req{"0200"};
  req.set(11, "000123");
  req.set(7, "0615123456");
  auto k = request_match_key(req);
  REQUIRE_FALSE(k.has_value());
  CHECK(k.err().code == "acq.match_field_missing");
  CHECK(k.err().message.find("field 41") != std::string::npos);

  message resp{"0210"};
  resp.set(41, "TERM0001");
  resp.set(11, "000123");
  CHECK(response_match_key(resp).err().code == "acq.match_field_missing");

  CHECK(request_match_key(message{"0210"}).err().code == "acq.not_a_request");
  CHECK(response_match_key(message{"0200"}).err().code == "acq.not_a_response");
}
