// [[acquirers]] links = [...] and [acquirers.tls] in the configuration, and the
// acquirers.<name>.links override.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/core/config.hpp"

namespace cfg = eftd::config;

namespace {

// Only acquirers: every other section is optional.
const std::string base_toml;

eftd::result<cfg::server_config> parse(const std::string& acquirers) {
  return cfg::parse_config(base_toml + acquirers, "/etc/eftd");
}

bool has_problem(const eftd::result<cfg::server_config>& r, const std::string& needle) {
  return !r && r.err().message.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("config: links = [...] sets the first link as host/port and the rest in order", "[config][links]") {
  auto r = parse(
      "[[acquirers]]\nname = \"a\"\nlinks = [\"10.0.0.1:5000\", \"acq-2.example.net:5001\", "
      "\"[::1]:5002\"]\n");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  const auto& a = r->acquirers.at(0);
  CHECK(a.host == "10.0.0.1");
  CHECK(a.port == 5000);
  REQUIRE(a.extra_links.size() == 2);
  CHECK(a.extra_links[0].host == "acq-2.example.net");
  CHECK(a.extra_links[0].port == 5001);
  CHECK(a.extra_links[1].host == "::1");
  CHECK(a.extra_links[1].port == 5002);
  CHECK_FALSE(a.tls.enabled());
}

TEST_CASE("config: bad links are reported by element", "[config][links]") {
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nhost = \"h\"\nport = 1\nlinks = [\"h:2\"]\n"),
                    "use either links or host/port"));
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nlinks = []\n"),
                    "acquirers[0].links: must not be empty"));
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nlinks = [\"h:1\", \"nohost\"]\n"), "links[1]"));
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nlinks = [\"h:1\", \"h:0\"]\n"),
                    "port must be 1..65535"));
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nlinks = [\"h:1\", \"h:70000\"]\n"), "links[1]"));
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nlinks = [\"h:1\", \"h:1\"]\n"), "duplicate link"));
  // The first link may be the --set placeholder.
  auto placeholder = parse("[[acquirers]]\nname = \"a\"\nlinks = [\"h:0\", \"h:2\"]\n");
  REQUIRE(placeholder.has_value());
  CHECK_FALSE(cfg::check_ready(*placeholder).has_value());
  REQUIRE(cfg::apply_override(*placeholder, "acquirers.a.port=7000").has_value());
  CHECK(placeholder->acquirers[0].port == 7000);
  CHECK(placeholder->acquirers[0].extra_links.size() == 1);
  CHECK(cfg::check_ready(*placeholder).has_value());
}

TEST_CASE("config: --set acquirers.<name>.links replaces every link", "[config][links]") {
  auto r = parse("[[acquirers]]\nname = \"a\"\nport = 0\n");
  REQUIRE(r.has_value());
  REQUIRE(cfg::apply_override(*r, "acquirers.a.links=127.0.0.1:7001,127.0.0.2:7002").has_value());
  const auto& a = r->acquirers[0];
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 7001);
  REQUIRE(a.extra_links.size() == 1);
  CHECK(a.extra_links[0].host == "127.0.0.2");
  CHECK(a.extra_links[0].port == 7002);
  REQUIRE(cfg::apply_override(*r, "acquirers.a.links=127.0.0.3:7003").has_value());
  CHECK(r->acquirers[0].extra_links.empty());
  const auto bad = cfg::apply_override(*r, "acquirers.a.links=127.0.0.1:7001,:5");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.err().code == "config.override");
  CHECK(bad.err().message.find("link 2") != std::string::npos);
}

TEST_CASE("config: [acquirers.tls] files resolve against the config dir, ca_file required",
          "[config][links]") {
  auto r = parse(
      "[[acquirers]]\nname = \"a\"\nport = 1\n\n[acquirers.tls]\nca_file = \"tls/ca.pem\"\n"
      "cert_file = \"/abs/c.pem\"\nkey_file = \"/abs/c.key\"\nserver_name = \"acq.test\"\n");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  const auto& t = r->acquirers[0].tls;
  CHECK(t.enabled());
  CHECK(t.ca_file == "/etc/eftd/tls/ca.pem");
  CHECK(t.cert_file == "/abs/c.pem");
  CHECK(t.key_file == "/abs/c.key");
  CHECK(t.server_name == "acq.test");
  CHECK(has_problem(parse("[[acquirers]]\nname = \"a\"\nport = 1\n\n[acquirers.tls]\nserver_name = \"x\"\n"),
                    "acquirers[0].tls.ca_file"));
  CHECK(has_problem(
      parse("[[acquirers]]\nname = \"a\"\nport = 1\n\n[acquirers.tls]\nca_file = \"c\"\ncert_file = \"x\"\n"),
      "needs both cert_file and key_file"));
  CHECK(has_problem(
      parse("[[acquirers]]\nname = \"a\"\nport = 1\n\n[acquirers.tls]\nca_file = \"c\"\nverify = 1\n"),
      "unknown key"));
}
