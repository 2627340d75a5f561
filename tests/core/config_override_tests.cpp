// Command-line overrides (eftd --set key=value) and the start-up readiness check.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "eftd/core/config.hpp"

namespace fs = std::filesystem;
using eftd::config::apply_override;
using eftd::config::parse_config;

namespace {

eftd::config::server_config demo_like() {
  auto r = parse_config(
      "[[acquirers]]\nname = \"sim\"\nport = 0\n[[acquirers]]\nname = \"backup-1\"\nhost = "
      "\"10.0.0.2\"\nport = 7000\n"
      "[[routes]]\nbin_prefix = \"\"\nacquirer = \"sim\"\n",
      "/etc/eftd");
  REQUIRE(r.has_value());
  return *r;
}

}  // namespace

TEST_CASE("overrides set the EMV floor limit and terminal action codes, and refuse bad values") {
  auto cfg = eftd::config::server_config{};
  REQUIRE(apply_override(cfg, "emv.floor_limit=5000").has_value());
  CHECK(cfg.emv.floor_limit == 5000);
  REQUIRE(apply_override(cfg, "emv.tac_online=DC4004F800").has_value());
  CHECK(cfg.emv.tac_online == "DC4004F800");
  CHECK_FALSE(apply_override(cfg, "emv.floor_limit=-1").has_value());
  CHECK_FALSE(apply_override(cfg, "emv.tac_default=00").has_value());
  CHECK(cfg.emv.tac_default == "0000000000");
}

TEST_CASE("overrides set listener ports, acquirer endpoints, journal and log settings") {
  auto cfg = demo_like();
  REQUIRE(apply_override(cfg, "listen.pos.port=0").has_value());
  REQUIRE(apply_override(cfg, "listen.pad.port=40123").has_value());
  REQUIRE(apply_override(cfg, "listen.pos.address=127.0.0.9").has_value());
  REQUIRE(apply_override(cfg, "acquirers.sim.port=41000").has_value());
  REQUIRE(apply_override(cfg, "acquirers.sim.host=localhost").has_value());
  REQUIRE(apply_override(cfg, "acquirers.backup-1.port=7001").has_value());
  REQUIRE(apply_override(cfg, "journal.path=/tmp/x/eftd.db").has_value());
  REQUIRE(apply_override(cfg, "journal.key_file=/tmp/x/j.key").has_value());
  REQUIRE(apply_override(cfg, "log.format=json").has_value());
  REQUIRE(apply_override(cfg, "log.level=debug").has_value());
  REQUIRE(apply_override(cfg, "server.node_name=node-b").has_value());
  CHECK(cfg.pos.port == 0);
  CHECK(cfg.pos.address == "127.0.0.9");
  CHECK(cfg.pad.port == 40123);
  CHECK(cfg.find_acquirer("sim")->port == 41000);
  CHECK(cfg.find_acquirer("sim")->host == "localhost");
  CHECK(cfg.find_acquirer("backup-1")->port == 7001);
  CHECK(cfg.journal_cfg.path == fs::path("/tmp/x/eftd.db"));
  CHECK(cfg.journal_cfg.key_file == fs::path("/tmp/x/j.key"));
  CHECK(cfg.log.format == "json");
  CHECK(cfg.log.level == "debug");
  CHECK(cfg.node_name == "node-b");
  CHECK(eftd::config::check_ready(cfg).has_value());
}

TEST_CASE("relative override paths resolve against the current directory") {
  auto cfg = demo_like();
  REQUIRE(apply_override(cfg, "journal.path=var/eftd.db").has_value());
  CHECK(cfg.journal_cfg.path == (fs::current_path() / "var/eftd.db").lexically_normal());
  REQUIRE(apply_override(cfg, "log.file=").has_value());
  CHECK(cfg.log.file.empty());
  REQUIRE(apply_override(cfg, "acquirers.sim.response_timeout_ms=750").has_value());
  CHECK(cfg.find_acquirer("sim")->response_timeout_ms == 750);
  REQUIRE(apply_override(cfg, "acquirers.sim.connect_timeout_ms=1500").has_value());
  CHECK(cfg.find_acquirer("sim")->connect_timeout_ms == 1500);
}

TEST_CASE("acquirer link options can be overridden: sign-on, echo interval, reconnect backoff") {
  auto cfg = demo_like();
  REQUIRE(apply_override(cfg, "acquirers.sim.sign_on=true").has_value());
  CHECK(cfg.find_acquirer("sim")->sign_on);
  REQUIRE(apply_override(cfg, "acquirers.sim.sign_on=false").has_value());
  CHECK_FALSE(cfg.find_acquirer("sim")->sign_on);
  REQUIRE(apply_override(cfg, "acquirers.sim.echo_interval_ms=0").has_value());
  CHECK(cfg.find_acquirer("sim")->echo_interval_ms == 0);
  REQUIRE(apply_override(cfg, "acquirers.sim.echo_interval_ms=20000").has_value());
  CHECK(cfg.find_acquirer("sim")->echo_interval_ms == 20000);
  REQUIRE(apply_override(cfg, "acquirers.sim.reconnect_backoff_ms=0").has_value());
  CHECK(cfg.find_acquirer("sim")->reconnect_backoff_ms == 0);
  REQUIRE(apply_override(cfg, "acquirers.sim.reconnect_backoff_max_ms=2000").has_value());
  CHECK(cfg.find_acquirer("sim")->reconnect_backoff_max_ms == 2000);

  auto bad = apply_override(cfg, "acquirers.sim.reconnect_backoff_ms=5000");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.err().code == "config.override");
  CHECK(bad.err().message.find(
            "reconnect_backoff_max_ms (2000) must be at least reconnect_backoff_ms (5000)") !=
        std::string::npos);
  CHECK(cfg.find_acquirer("sim")->reconnect_backoff_ms == 0);  // unchanged
  CHECK_FALSE(apply_override(cfg, "acquirers.sim.sign_on=yes").has_value());
  CHECK_FALSE(apply_override(cfg, "acquirers.sim.echo_interval_ms=-1").has_value());
  CHECK_FALSE(apply_override(cfg, "acquirers.sim.echo_interval_ms=3600001").has_value());
}

TEST_CASE("bad overrides are rejected with config.override naming the key") {
  struct bad_case {
    const char* arg;
    const char* needle;
  };
  const bad_case cases[] = {
      {"listen.pos.port=abc", "--set listen.pos.port: expected an integer 0..65535"},
      {"listen.pos.port=65536", "--set listen.pos.port: expected an integer 0..65535"},
      {"listen.pos.port=-1", "--set listen.pos.port: expected an integer 0..65535"},
      {"listen.pad.port=", "--set listen.pad.port: expected an integer"},
      {"acquirers.sim.port=0", "--set acquirers.sim.port: expected an integer 1..65535"},
      {"acquirers.nobody.port=1", "--set acquirers.nobody.port: unknown acquirer 'nobody'"},
      {"acquirers.sim.dialect=x", "--set acquirers.sim.dialect: only host, port, response_timeout_ms"},
      {"acquirers.sim.response_timeout_ms=0",
       "--set acquirers.sim.response_timeout_ms: expected milliseconds"},
      {"acquirers.sim.connect_timeout_ms=x", "--set acquirers.sim.connect_timeout_ms: expected milliseconds"},
      {"acquirers.sim=1", "--set acquirers.sim: expected acquirers.<name>.host"},
      {"log.format=xml", "--set log.format: expected text or json"},
      {"log.level=loud", "--set log.level: expected one of"},
      {"journal.path=", "--set journal.path: must not be empty"},
      {"server.lisen=1", "--set server.lisen: unsupported key"},
      {"listen.pos.port", "expected key=value"},
      {"=5", "expected key=value"},
  };
  for (const auto& c : cases) {
    auto cfg = demo_like();
    const auto before_port = cfg.pos.port;
    auto r = apply_override(cfg, c.arg);
    INFO(c.arg);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "config.override");
    CHECK(r.err().message.find(c.needle) != std::string::npos);
    CHECK(cfg.pos.port == before_port);
  }
}

TEST_CASE("check_ready lists every acquirer port placeholder") {
  auto r = parse_config(
      "[[acquirers]]\nname = \"a\"\nport = 0\n[[acquirers]]\nname = \"b\"\nport = 0\n[[acquirers]]\nname = "
      "\"c\"\nport = 9\n",
      "/b");
  REQUIRE(r.has_value());
  auto ready = eftd::config::check_ready(*r);
  REQUIRE_FALSE(ready.has_value());
  CHECK(ready.err().code == "config.not_ready");
  CHECK(ready.err().message ==
        "acquirers[0].port: placeholder 0 is still set (use --set acquirers.a.port=N)\n"
        "acquirers[1].port: placeholder 0 is still set (use --set acquirers.b.port=N)");
}

TEST_CASE("overrides turn the metrics listener on, on loopback addresses only") {
  auto cfg = demo_like();
  CHECK_FALSE(cfg.metrics.has_value());
  REQUIRE(apply_override(cfg, "listen.metrics.port=0").has_value());
  REQUIRE(cfg.metrics.has_value());
  CHECK(cfg.metrics->port == 0);
  CHECK(cfg.metrics->address == "127.0.0.1");
  auto bad = apply_override(cfg, "listen.metrics.address=10.0.0.1");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.err().message.find("listen.metrics.address") != std::string::npos);
  REQUIRE(apply_override(cfg, "listen.metrics.address=127.0.0.2").has_value());
  CHECK(cfg.metrics->address == "127.0.0.2");
}
