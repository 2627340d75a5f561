// config::reload_changes: which changes a running eftd applies (`eftctl reload`, SIGHUP) and
// which it refuses, naming the key, because it reads them only at start-up.
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "eftd/core/config.hpp"

using eftd::config::parse_config;
using eftd::config::reload_changes;
using eftd::config::server_config;

namespace {

const char* const base_toml = R"(
[server]
node_name = "eftd-test"
[listen.pos]
port = 9100
[listen.pad]
port = 9200
[log]
level = "info"
[limits]
max_amount = 1000000
[[merchants]]
id = "M001"
name = "Shop"
acquirer_merchant_id = "SHOP00000000001"
[[stores]]
id = "S01"
merchant = "M001"
[[pads]]
id = "P01"
serial = "VP-0001"
[[pads]]
id = "P02"
serial = "VP-0002"
[[tills]]
id = "T01"
store = "S01"
pad = "P01"
terminal_id = "TERM0001"
[[tills]]
id = "T02"
store = "S01"
pad = "P02"
terminal_id = "TERM0002"
[[acquirers]]
name = "sim"
port = 7000
[[routes]]
bin_prefix = ""
acquirer = "sim"
)";

server_config base() {
  auto r = parse_config(base_toml, "/etc/eftd");
  REQUIRE(r.has_value());
  return *r;
}

server_config parsed(const std::string& extra) {
  auto r = parse_config(std::string(base_toml) + extra, "/etc/eftd");
  if (!r) FAIL(r.err().message);
  return *r;
}

}  // namespace

TEST_CASE("reload: the same configuration is no change") {
  auto r = reload_changes(base(), base());
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

TEST_CASE("reload: a new till and pad from the file are applied and listed") {
  const auto next = parsed(R"(
[[pads]]
id = "P09"
serial = "VP-0009"
[[tills]]
id = "T09"
store = "S01"
pad = "P09"
terminal_id = "TERM0009"
)");
  auto r = reload_changes(base(), next);
  REQUIRE(r.has_value());
  CHECK(*r == std::vector<std::string>{"tills: added T09", "pads: added P09"});
}

TEST_CASE("reload: removed, revoked and changed entries and run-time sections are listed") {
  const auto now = base();
  auto next = now;
  next.tills.erase(next.tills.begin() + 1);  // T02
  next.tills[0].limit.max_amount = 5000;
  next.pads[1].revoked = true;
  next.default_limits.min_amount = 100;
  next.prompts.push_back({});
  next.cvm.pin_bypass = true;
  next.routes[0].fallback = "sim";
  next.timeout.card_read_ms = 1000;
  next.pad_health.ping_interval_ms = 500;
  next.log.level = "debug";
  next.merchants[0].receipt_header = "NEW HEADER";
  next.stores[0].name = "Renamed";
  auto r = reload_changes(now, next);
  REQUIRE(r.has_value());
  CHECK(*r == std::vector<std::string>{"merchants: changed M001", "stores: changed S01",
                                       "tills: removed T02, changed T01", "pads: changed P02", "limits",
                                       "prompts", "cvm", "routes", "timeouts", "pad_health", "log.level"});
}

TEST_CASE("reload: every key read only at start-up is refused by name") {
  struct change {
    std::string key;
    std::function<void(server_config&)> apply;
  };
  const std::vector<change> changes{
      {"server.node_name", [](server_config& c) { c.node_name = "other"; }},
      {"listen.pos.port", [](server_config& c) { c.pos.port = 9101; }},
      {"listen.pos.address", [](server_config& c) { c.pos.address = "::1"; }},
      {"listen.pos.max_connections", [](server_config& c) { c.pos.max_connections = 10; }},
      {"listen.pos.tls", [](server_config& c) { c.pos.tls.cert_file = "/etc/eftd/pos.pem"; }},
      {"listen.pad.port", [](server_config& c) { c.pad.port = 9201; }},
      {"listen.pad.login_timeout_ms", [](server_config& c) { c.pad.login_timeout_ms = 1; }},
      {"listen.metrics", [](server_config& c) { c.metrics.emplace(); }},
      {"listen.backoffice", [](server_config& c) { c.backoffice.emplace(); }},
      {"journal.path", [](server_config& c) { c.journal_cfg.path = "/var/other.db"; }},
      {"journal.key_file", [](server_config& c) { c.journal_cfg.key_file = "/var/other.key"; }},
      {"journal.retention_days", [](server_config& c) { c.journal_cfg.retention_days = 30; }},
      {"log.format", [](server_config& c) { c.log.format = "json"; }},
      {"log.file", [](server_config& c) { c.log.file = "/var/log/eftd.log"; }},
      {"keys", [](server_config& c) { c.keys.require_p2pe = !c.keys.require_p2pe; }},
      {"keys", [](server_config& c) { c.keys.dukpt.push_back({"AE5D", "bdk"}); }},
      {"emv", [](server_config& c) { c.emv.enabled = true; }},
      {"emv", [](server_config& c) { c.emv.capk_file = "/etc/eftd/capk.toml"; }},
      {"cards.bin_table", [](server_config& c) { c.bin_table = "/etc/eftd/bins.csv"; }},
      {"acquirers", [](server_config& c) { c.acquirers[0].port = 7001; }},
      {"acquirers", [](server_config& c) { c.acquirers[0].mak = "mak"; }},
      {"notify", [](server_config& c) { c.notify.push_back({}); }},
      {"settlement", [](server_config& c) { c.settlement.cutover = "00:30"; }},
      {"admin", [](server_config& c) { c.admin.socket = "/run/other.sock"; }},
      {"ha", [](server_config& c) { c.ha.enabled = true; }},
      {"ha", [](server_config& c) { c.ha.peer.id = "b"; }},
      {"backoffice", [](server_config& c) { c.backoffice_web.page_size = 10; }},
  };
  const auto now = base();
  for (const auto& ch : changes) {
    INFO(ch.key);
    auto next = now;
    ch.apply(next);
    auto r = reload_changes(now, next);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "config.needs_restart");
    CHECK(r.err().message == ch.key + " changed: needs a restart");
  }
}

TEST_CASE("reload: a refusal names every start-up key, even next to run-time changes") {
  const auto now = base();
  auto next = now;
  next.pos.port = 9105;
  next.journal_cfg.path = "/var/other.db";
  next.default_limits.max_amount = 10;  // allowed alone, but nothing is applied
  auto r = reload_changes(now, next);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "config.needs_restart");
  CHECK(r.err().message ==
        "listen.pos.port changed: needs a restart\njournal.path changed: needs a restart");
}

TEST_CASE("reload: the EMV overrides of merchants and tills are read per transaction") {
  const auto now = base();
  auto next = now;
  next.tills[0].emv.floor_limit = 1000;
  auto r = reload_changes(now, next);
  REQUIRE(r.has_value());
  CHECK(*r == std::vector<std::string>{"tills: changed T01"});
}
