// [[notify]]: outcome notifications to a back-office system (server/NOTIFY.md).
#include <catch2/catch.hpp>
#include <string>

#include "config_fixture.hpp"
#include "eftd/core/config.hpp"

using eftd::config::parse_config;

namespace {

const std::string& base = eftd::test::minimal_config_toml;

std::string error_text(const std::string& notify_tables) {
  auto r = parse_config(base + notify_tables, "/base");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "config.invalid");
  return r.err().message;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("notify: an https endpoint is parsed with its defaults", "[config][notify]") {
  auto r = parse_config(base + R"(
[[notify]]
url = "https://erp.example.com:8443/eftd/outcomes"
secret_file = "secrets/notify.key"
ca_file = "secrets/ca.pem"
max_age_s = 5
)",
                        "/base");
  INFO((r ? "" : r.err().message));
  REQUIRE(r);
  REQUIRE(r->notify.size() == 1);
  const auto& n = r->notify.front();
  CHECK(n.tls);
  CHECK(n.host == "erp.example.com");
  CHECK(n.port == 8443);
  CHECK(n.target == "/eftd/outcomes");
  CHECK(n.secret_file == "/base/secrets/notify.key");
  CHECK(n.ca_file == "/base/secrets/ca.pem");
  CHECK(n.timeout_ms == 5000);
  CHECK(n.max_age_h == 72);
  CHECK(n.max_age_ms() == 5000);
  CHECK(n.events == std::vector<std::string>{"order.final"});

  auto none = parse_config(base, "/base");
  REQUIRE(none);
  CHECK(none->notify.empty());
}

TEST_CASE("notify: a default port, an IPv6 host, and max_age_h", "[config][notify]") {
  auto r = parse_config(base + R"(
[[notify]]
url = "https://[::1]/hook"
secret_file = "/k"
ca_file = "/ca.pem"
max_age_h = 1
)",
                        "/base");
  INFO((r ? "" : r.err().message));
  REQUIRE(r);
  CHECK(r->notify.front().host == "::1");
  CHECK(r->notify.front().port == 443);
  CHECK(r->notify.front().max_age_ms() == 3600 * 1000);
}

TEST_CASE("notify: bad endpoints are refused with the key named", "[config][notify]") {
  CHECK(contains(error_text("[[notify]]\nurl = \"http://erp.example.com/x\"\nsecret_file = \"/k\"\n"),
                 "notify[0].url: notifications are signed but not encrypted"));
  CHECK(contains(error_text("[[notify]]\nurl = \"ftp://erp/x\"\nsecret_file = \"/k\"\nca_file = \"/c\"\n"),
                 "notify[0].url: must be https://host[:port]/path"));
  CHECK(contains(
      error_text("[[notify]]\nurl = \"https://erp:99999/x\"\nsecret_file = \"/k\"\nca_file = \"/c\"\n"),
      "notify[0].url"));
  CHECK(contains(error_text("[[notify]]\nurl = \"https://erp/x\"\nsecret_file = \"/k\"\n"),
                 "notify[0].ca_file: missing required key"));
  CHECK(contains(error_text("[[notify]]\nurl = \"https://erp/x\"\nca_file = \"/c\"\n"),
                 "notify[0].secret_file: missing required key"));
  CHECK(contains(
      error_text(
          "[[notify]]\nurl = \"https://erp/x\"\nsecret_file = \"/k\"\nca_file = \"/c\"\nevents = [\"x\"]\n"),
      "notify[0].events[0]: unknown event 'x'"));
  // Several endpoints must be named, uniquely; merchants must exist.
  CHECK(contains(error_text("[[notify]]\nurl = \"https://a/x\"\nsecret_file = \"/k\"\nca_file = \"/c\"\n"
                            "[[notify]]\nurl = \"https://b/x\"\nsecret_file = \"/k\"\nca_file = \"/c\"\n"),
                 "notify[0].name: missing required key"));
  CHECK(contains(error_text("[[notify]]\nname = \"erp\"\nurl = \"https://a/x\"\nsecret_file = \"/k\"\n"
                            "ca_file = \"/c\"\n[[notify]]\nname = \"erp\"\nurl = \"https://b/x\"\n"
                            "secret_file = \"/k\"\nca_file = \"/c\"\n"),
                 "notify[1].name: another [[notify]] is already named 'erp'"));
  CHECK(contains(error_text("[[notify]]\nname = \"e r p\"\nurl = \"https://a/x\"\nsecret_file = \"/k\"\n"
                            "ca_file = \"/c\"\n"),
                 "notify[0].name: 1 to 64 characters"));
  CHECK(contains(error_text("[[notify]]\nmerchants = [\"M001\", \"M999\"]\nurl = \"https://a/x\"\n"
                            "secret_file = \"/k\"\nca_file = \"/c\"\n"),
                 "notify[0].merchants[1]: unknown merchant 'M999'"));
  // Plain http is for a receiver on the same host only.
  auto local =
      parse_config(base + "[[notify]]\nurl = \"http://127.0.0.1:8080/x\"\nsecret_file = \"/k\"\n", "/");
  INFO((local ? "" : local.err().message));
  REQUIRE(local);
  CHECK_FALSE(local->notify.front().tls);
  CHECK(local->notify.front().port == 8080);
}

TEST_CASE("notify: several named endpoints, each for its merchants", "[config][notify]") {
  auto r = parse_config(base +
                            "[[notify]]\nname = \"erp\"\nmerchants = [\"M001\"]\nurl = \"https://erp/x\"\n"
                            "secret_file = \"/k\"\nca_file = \"/c\"\n"
                            "[[notify]]\nname = \"loyalty-1\"\nurl = \"https://loyalty/y\"\n"
                            "secret_file = \"/k2\"\nca_file = \"/c\"\n",
                        "/");
  INFO((r ? "" : r.err().message));
  REQUIRE(r);
  REQUIRE(r->notify.size() == 2);
  CHECK(r->notify[0].name == "erp");
  CHECK(r->notify[0].merchants == std::vector<std::string>{"M001"});
  CHECK(r->notify[1].name == "loyalty-1");
  CHECK(r->notify[1].merchants.empty());
  CHECK(r->notify[1].host == "loyalty");
  // One endpoint needs no name.
  auto one = parse_config(
      base + "[[notify]]\nurl = \"https://erp/x\"\nsecret_file = \"/k\"\nca_file = \"/c\"\n", "/");
  REQUIRE(one);
  CHECK(one->notify.front().name.empty());
}
