// Config parsing and validation: every error names its key, all errors are reported at once.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config_fixture.hpp"
#include "eftd/core/config.hpp"

namespace fs = std::filesystem;
using eftd::config::load_config;
using eftd::config::parse_config;
using eftd::config::server_config;

namespace {

fs::path source_root() {
  const char* s = std::getenv("EFTD_SOURCE");
  return s != nullptr && *s != '\0' ? fs::path(s) : fs::path(EFTD_TEST_SOURCE_DIR);
}

// A valid base every error test starts from, so that each test breaks exactly one thing.
const std::string base_toml = eftd::test::minimal_config_toml + R"(
[[pads]]
id = "P02"
serial = "VP-0002"
)";

// Parses text that must fail; returns its lines.
std::vector<std::string> errors_of(const std::string& text,
                                   const std::string& expected_code = "config.invalid") {
  auto r = parse_config(text, "/base");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == expected_code);
  std::vector<std::string> lines;
  std::string cur;
  for (char c : r.err().message) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

#define REQUIRE_ERROR(text, needle)      \
  do {                                   \
    const auto lines_ = errors_of(text); \
    INFO(joined(lines_));                \
    CHECK(has_line(lines_, needle));     \
  } while (0)

}  // namespace

TEST_CASE("the reference example config parses") {
  auto r = load_config(source_root() / "etc/eftd.example.toml");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  CHECK(r->node_name == "eftd-waw-1");
  CHECK(r->merchants.size() == 1);
  CHECK(r->tills.size() == 2);
  CHECK(r->acquirers.size() == 2);
  CHECK(r->routes.size() == 3);
  CHECK(r->journal_cfg.group_commit_max == 512);
  REQUIRE(r->find_acquirer("backup") != nullptr);
  CHECK(r->find_acquirer("backup")->framing == "bcd2+tpdu");
  CHECK(r->find_acquirer("backup")->tpdu_destination == "0001");
  CHECK(r->routes[0].fallback == "backup");
  CHECK(r->log.format == "json");
  CHECK(r->bin_table == (source_root() / "etc/bin-ranges.csv").lexically_normal());
  REQUIRE(r->find_till("T02") != nullptr);
  CHECK(r->find_till("T02")->limit.allowed_types == std::vector<std::string>{"sale"});
  CHECK(r->merchants[0].limit.max_amount == 2000000);
  CHECK(eftd::config::check_ready(*r).has_value());
}

TEST_CASE("the demo config parses and has what tools/demo expects") {
  auto r = load_config(source_root() / "etc/demo.toml");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  REQUIRE(r->merchants.size() == 1);
  CHECK(r->merchants[0].id == "M001");
  CHECK(r->merchants[0].currency == "PLN");
  REQUIRE(r->find_till("T01") != nullptr);
  CHECK(r->find_till("T01")->pad == "P01");
  CHECK(r->find_till("T01")->terminal_id == "TERM0001");
  REQUIRE(r->find_till("T02") != nullptr);
  CHECK(r->find_till("T02")->pad == "P02");
  CHECK(r->find_pad("P01")->serial == "VP-0001");
  CHECK(r->find_pad("P02")->serial == "VP-0002");
  REQUIRE(r->find_acquirer("sim") != nullptr);
  CHECK(r->find_acquirer("sim")->host == "127.0.0.1");
  REQUIRE(r->route_for("4111111111111111") != nullptr);
  CHECK(r->route_for("4111111111111111")->acquirer == "sim");
  CHECK(r->effective_limits(*r->find_till("T01")).max_amount == 1000000);
  CHECK(r->bin_table.filename() == "bin-ranges.csv");
  // The acquirer port is a placeholder the demo script fills in.
  auto ready = eftd::config::check_ready(*r);
  REQUIRE_FALSE(ready.has_value());
  CHECK(ready.err().code == "config.not_ready");
  CHECK(ready.err().message.find("acquirers[0].port") != std::string::npos);
}

TEST_CASE("an empty document gives the documented defaults") {
  auto r = parse_config("", "/etc/eftd");
  REQUIRE(r.has_value());
  CHECK(r->node_name == "eftd");
  CHECK(r->pos.port == 9100);
  CHECK(r->pad.port == 9200);
  CHECK(r->log.level == "info");
  CHECK(r->journal_cfg.path == fs::path("/etc/eftd/var/eftd.db"));
  CHECK(r->route_for("4111") == nullptr);
}

TEST_CASE("base config used by the error tests is valid") {
  auto r = parse_config(base_toml, "/base");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
}

TEST_CASE("TOML syntax errors report config.syntax with line:column") {
  auto r = parse_config("[server]\nnode_name = \"x\"\nbroken = = 3\n", "/base");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "config.syntax");
  CHECK(r.err().message.rfind("3:", 0) == 0);  // "3:<col>: description"
}

TEST_CASE("a missing file or a directory is config.io, not an exception") {
  auto r = load_config("/nonexistent/dir/eftd.toml");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "config.io");
  CHECK(r.err().message.find("/nonexistent/dir/eftd.toml") != std::string::npos);
  auto d = load_config(fs::temp_directory_path());
  REQUIRE_FALSE(d.has_value());
  CHECK(d.err().code == "config.io");
}

TEST_CASE("the two listeners cannot share an address and port") {
  REQUIRE_ERROR("[listen.pos]\nport = 9000\n[listen.pad]\nport = 9000\n",
                "listen.pad.port: same address and port as listen.pos");
  CHECK(parse_config("[listen.pos]\nport = 0\n[listen.pad]\nport = 0\n", "/b").has_value());
}

TEST_CASE("unknown keys are errors, with a suggestion for typos") {
  const auto lines = errors_of("[server]\nnode_nam = \"x\"\n[listen.pos]\nprot = 1\n[bogus]\n");
  INFO(joined(lines));
  CHECK(has_line(lines, "server.node_nam: unknown key (did you mean 'node_name'?) (line 2)"));
  CHECK(has_line(lines, "listen.pos.prot: unknown key (did you mean 'port'?)"));
  CHECK(has_line(lines, "bogus: unknown key"));
  REQUIRE_ERROR("[server]\nlisen = 1\n", "server.lisen: unknown key");
  REQUIRE_ERROR(base_toml + "[tills.limits]\nmax_amout = 5\n", "tills[0].limits.max_amout: unknown key");
}

TEST_CASE("wrong value types name the key and both types") {
  REQUIRE_ERROR("[listen.pos]\nport = \"9100\"\n", "listen.pos.port: expected integer, got string");
  REQUIRE_ERROR("[server]\nnode_name = 5\n", "server.node_name: expected string, got integer");
  REQUIRE_ERROR("[journal]\ngroup_commit_max = 1.5\n",
                "journal.group_commit_max: expected integer, got float");
  REQUIRE_ERROR("server = 3\n", "server: expected table, got integer");
  REQUIRE_ERROR("merchants = \"M001\"\n", "merchants: expected array of tables");
  REQUIRE_ERROR("[limits]\nallowed_types = [\"sale\", 3]\n",
                "limits.allowed_types[1]: expected string, got integer");
}

TEST_CASE("numeric ranges: ports, counts, timeouts, amounts") {
  REQUIRE_ERROR("[listen.pad]\nport = 70000\n", "listen.pad.port: must be 0..65535");
  REQUIRE_ERROR("[journal]\ngroup_commit_max = 0\n", "journal.group_commit_max: must be a positive integer");
  REQUIRE_ERROR("[journal]\ngroup_commit_max = -4\n", "journal.group_commit_max: must be a positive integer");
  REQUIRE_ERROR("[timeouts]\ncard_read_ms = 0\n", "timeouts.card_read_ms: must be a positive integer");
  REQUIRE_ERROR("[limits]\nmax_amount = -1\n", "limits.max_amount: must be 0..999999999999");
  REQUIRE_ERROR("[limits]\nmin_amount = 500\nmax_amount = 100\n",
                "limits.min_amount: must not exceed max_amount");

  std::string t = base_toml;
  t.replace(t.find("port = 5000"), 11, "port = 65536");
  REQUIRE_ERROR(t, "acquirers[0].port: must be 1..65535");
  t = base_toml;
  t.replace(t.find("port = 5000"), 11, "port = -1");
  REQUIRE_ERROR(t, "acquirers[0].port: must be 1..65535");
}

TEST_CASE("enumerated values: log level and format, transaction types") {
  REQUIRE_ERROR("[log]\nlevel = \"verbose\"\n", "log.level: unknown level 'verbose'");
  REQUIRE_ERROR("[log]\nformat = \"xml\"\n", "log.format: unknown format 'xml'");
  REQUIRE_ERROR("[limits]\nallowed_types = [\"sale\", \"sael\"]\n",
                "limits.allowed_types[1]: unknown transaction type 'sael'");
  REQUIRE_ERROR("[limits]\nallowed_schemes = []\n", "limits.allowed_schemes: must not be empty");
}

TEST_CASE("dangling references: pad, store, merchant, acquirer") {
  std::string t = base_toml;
  t.replace(t.find("pad = \"P01\""), 11, "pad = \"P9\"");
  REQUIRE_ERROR(t, "tills[0].pad: unknown pad 'P9'");

  t = base_toml;
  t.replace(t.find("store = \"S01\""), 13, "store = \"S99\"");
  REQUIRE_ERROR(t, "tills[0].store: unknown store 'S99'");

  t = base_toml;
  t.replace(t.find("merchant = \"M001\""), 17, "merchant = \"MX\"");
  REQUIRE_ERROR(t, "stores[0].merchant: unknown merchant 'MX'");

  REQUIRE_ERROR(base_toml + "[[routes]]\nbin_prefix = \"4\"\nacquirer = \"x\"\n",
                "routes[1].acquirer: unknown acquirer 'x'");
}

TEST_CASE("merchant fields: currency, acquirer merchant id, country") {
  std::string t = base_toml;
  t.replace(t.find("currency = \"PLN\""), 16, "currency = \"XYZ\"");
  REQUIRE_ERROR(t, "merchants[0].currency: unknown ISO 4217 code 'XYZ'");

  t = base_toml;
  t.replace(t.find("\"MERCHANT0000001\""), 17, "\"MERCHANT00000012\"");  // 16 chars
  REQUIRE_ERROR(t, "merchants[0].acquirer_merchant_id: must be 1..15");

  REQUIRE_ERROR(base_toml + "[[merchants]]\nid = \"M2\"\n",
                "merchants[1].acquirer_merchant_id: missing required key");
  REQUIRE_ERROR(base_toml + "[[merchants]]\nid = \"M2\"\nacquirer_merchant_id = \"X\"\ncountry = \"PL\"\n",
                "merchants[1].country: must be a 3-digit ISO 3166 numeric code");
}

TEST_CASE("till terminal id must be exactly 8 characters") {
  for (const char* bad : {"TERM001", "TERM00001", ""}) {
    std::string t = base_toml;
    t.replace(t.find("\"TERM0001\""), 10, std::string("\"") + bad + "\"");
    REQUIRE_ERROR(t, "tills[0].terminal_id: must be exactly 8");
  }
}

TEST_CASE("duplicate ids are reported with the earlier index") {
  REQUIRE_ERROR(base_toml + "[[pads]]\nid = \"P01\"\nserial = \"VP-9\"\n",
                "pads[2].id: duplicate pad id 'P01' (also at index 0)");
  REQUIRE_ERROR(base_toml + "[[pads]]\nid = \"P03\"\nserial = \"VP-0001\"\n",
                "pads[2].serial: duplicate pad serial 'VP-0001'");
  REQUIRE_ERROR(
      base_toml + "[[tills]]\nid = \"T01\"\nstore = \"S01\"\npad = \"P02\"\nterminal_id = \"TERM0002\"\n",
      "tills[1].id: duplicate till id 'T01'");
  REQUIRE_ERROR(base_toml + "[[acquirers]]\nname = \"a1\"\nport = 1\n",
                "acquirers[1].name: duplicate acquirer name 'a1'");
  REQUIRE_ERROR(base_toml + "[[routes]]\nbin_prefix = \"\"\nacquirer = \"a1\"\n",
                "routes[1].bin_prefix: duplicate prefix ''");
  REQUIRE_ERROR(
      base_toml + "[[tills]]\nid = \"T02\"\nstore = \"S01\"\npad = \"P01\"\nterminal_id = \"TERM0002\"\n",
      "tills[1].pad: pad 'P01' is already attached to till 'T01'");
  REQUIRE_ERROR(
      base_toml + "[[tills]]\nid = \"T02\"\nstore = \"S01\"\npad = \"P02\"\nterminal_id = \"TERM0001\"\n",
      "tills[1].terminal_id: terminal id 'TERM0001' is already used by till 'T01'");
}

TEST_CASE("routes: digits only, and at least one acquirer") {
  REQUIRE_ERROR(base_toml + "[[routes]]\nbin_prefix = \"4x\"\nacquirer = \"a1\"\n",
                "routes[1].bin_prefix: must be 0..19 digits");
  REQUIRE_ERROR("[[routes]]\nbin_prefix = \"4\"\nacquirer = \"a\"\n",
                "routes: at least one [[acquirers]] entry is required");
}

TEST_CASE("required keys are reported as missing") {
  const auto lines = errors_of("[[tills]]\nid = \"T1\"\n");
  INFO(joined(lines));
  CHECK(has_line(lines, "tills[0].store: missing required key (line 1)"));
  CHECK(has_line(lines, "tills[0].pad: missing required key"));
  CHECK(has_line(lines, "tills[0].terminal_id: missing required key"));
}

TEST_CASE("all errors of a file are reported together, one per line") {
  const std::string text = R"(
[server]
lisen = 1
[listen.pos]
port = "x"
[journal]
group_commit_max = 0
[[merchants]]
id = "M1"
acquirer_merchant_id = "A"
currency = "XYZ"
[[stores]]
id = "S1"
merchant = "M1"
[[tills]]
id = "T1"
store = "S1"
pad = "P9"
terminal_id = "SHORT"
[[routes]]
bin_prefix = "4"
acquirer = "nobody"
)";
  const auto lines = errors_of(text);
  INFO(joined(lines));
  CHECK(lines.size() == 7);
  CHECK(has_line(lines, "server.lisen: unknown key"));
  CHECK(has_line(lines, "listen.pos.port: expected integer, got string"));
  CHECK(has_line(lines, "journal.group_commit_max: must be a positive integer"));
  CHECK(has_line(lines, "merchants[0].currency: unknown ISO 4217 code 'XYZ'"));
  CHECK(has_line(lines, "tills[0].pad: unknown pad 'P9'"));
  CHECK(has_line(lines, "tills[0].terminal_id: must be exactly 8"));
  CHECK(has_line(lines, "routes: at least one [[acquirers]] entry is required"));
}

TEST_CASE("relative paths resolve against the base directory, absolute ones stay") {
  auto r = parse_config(
      "[cards]\nbin_table = \"bins.csv\"\n[journal]\npath = \"../var/j.db\"\nkey_file = \"/secure/j.key\"\n"
      "[log]\nfile = \"logs/eftd.log\"\n",
      "/etc/eftd");
  REQUIRE(r.has_value());
  CHECK(r->bin_table == fs::path("/etc/eftd/bins.csv"));
  CHECK(r->journal_cfg.path == fs::path("/etc/var/j.db"));
  CHECK(r->journal_cfg.key_file == fs::path("/secure/j.key"));
  CHECK(r->log.file == fs::path("/etc/eftd/logs/eftd.log"));
}

TEST_CASE("route_for picks the longest matching prefix") {
  auto r = parse_config(base_toml +
                            "[[acquirers]]\nname = \"visa\"\nport = 1\n"
                            "[[acquirers]]\nname = \"special\"\nport = 2\n"
                            "[[routes]]\nbin_prefix = \"4\"\nacquirer = \"visa\"\n"
                            "[[routes]]\nbin_prefix = \"411111\"\nacquirer = \"special\"\n",
                        "/base");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  CHECK(r->route_for("4111111111111111")->acquirer == "special");
  CHECK(r->route_for("4111121111111111")->acquirer == "visa");
  CHECK(r->route_for("5500000000000004")->acquirer == "a1");
  CHECK(r->route_for("41111")->acquirer == "visa");  // shorter than the long prefix
  CHECK(r->route_for("")->acquirer == "a1");

  auto no_default = parse_config(
      "[[acquirers]]\nname = \"v\"\nport = 1\n[[routes]]\nbin_prefix = \"4\"\nacquirer = \"v\"\n", "/b");
  REQUIRE(no_default.has_value());
  CHECK(no_default->route_for("5500000000000004") == nullptr);
}

TEST_CASE("acquirer link keys: framing, TPDU addresses, sign-on, echo, backoff") {
  const std::string bcd_acquirer =
      "[[acquirers]]\nname = \"b\"\nport = 1\ndialect = \"iso87-bcd\"\nframing = \"bcd2+tpdu\"\n"
      "tpdu_destination = \"0001\"\ntpdu_source = \"0123\"\nsign_on = true\necho_interval_ms = 60000\n"
      "reconnect_backoff_ms = 0\nreconnect_backoff_max_ms = 5000\n";
  auto r = parse_config(base_toml + bcd_acquirer, "/base");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  const auto* b = r->find_acquirer("b");
  REQUIRE(b != nullptr);
  CHECK(b->dialect == "iso87-bcd");
  CHECK(b->framing == "bcd2+tpdu");
  CHECK(b->tpdu());
  CHECK(b->tpdu_destination == "0001");
  CHECK(b->tpdu_source == "0123");
  CHECK(b->sign_on);
  CHECK(b->echo_interval_ms == 60000);
  CHECK(b->reconnect_backoff_ms == 0);
  CHECK(b->reconnect_backoff_max_ms == 5000);
  // Defaults.
  const auto* a1 = r->find_acquirer("a1");
  REQUIRE(a1 != nullptr);
  CHECK(a1->framing == "binary2");
  CHECK_FALSE(a1->tpdu());
  CHECK_FALSE(a1->sign_on);
  CHECK(a1->echo_interval_ms == 0);
  CHECK(a1->reconnect_backoff_ms == 1000);
  CHECK(a1->reconnect_backoff_max_ms == 30000);

  const std::string b0 = "[[acquirers]]\nname = \"b\"\nport = 1\n";
  REQUIRE_ERROR(base_toml + b0 + "framing = \"binary4\"\n",
                "acquirers[1].framing: unknown framing 'binary4'");
  REQUIRE_ERROR(base_toml + b0 + "framing = \"tpdu\"\n", "acquirers[1].framing: unknown framing");
  REQUIRE_ERROR(base_toml + b0 + "framing = \"ascii4+tpdu\"\ntpdu_source = \"0000\"\n",
                "acquirers[1].tpdu_destination: required with framing 'ascii4+tpdu'");
  REQUIRE_ERROR(base_toml + b0 + "framing = \"ascii4+tpdu\"\ntpdu_destination = \"0000\"\n",
                "acquirers[1].tpdu_source: required with framing 'ascii4+tpdu'");
  REQUIRE_ERROR(
      base_toml + b0 + "framing = \"bcd2+tpdu\"\ntpdu_destination = \"12\"\ntpdu_source = \"0000\"\n",
      "acquirers[1].tpdu_destination: must be 4 digits");
  REQUIRE_ERROR(
      base_toml + b0 + "framing = \"bcd2+tpdu\"\ntpdu_destination = \"000A\"\ntpdu_source = \"0000\"\n",
      "acquirers[1].tpdu_destination: must be 4 digits");
  REQUIRE_ERROR(base_toml + b0 + "tpdu_source = \"0001\"\n",
                "acquirers[1].tpdu_source: only with a +tpdu framing");
  REQUIRE_ERROR(base_toml + b0 + "sign_on = \"yes\"\n", "acquirers[1].sign_on: expected boolean, got string");
  REQUIRE_ERROR(base_toml + b0 + "echo_interval_ms = -1\n",
                "acquirers[1].echo_interval_ms: must be 0 or a positive");
  REQUIRE_ERROR(base_toml + b0 + "reconnect_backoff_ms = 5000\nreconnect_backoff_max_ms = 1000\n",
                "acquirers[1].reconnect_backoff_max_ms: must be at least reconnect_backoff_ms (5000)");
  REQUIRE_ERROR(base_toml + b0 + "reconect_backoff_ms = 5\n", "did you mean 'reconnect_backoff_ms'");
}

TEST_CASE("routes: fallback, scheme and merchant routes are validated") {
  const std::string b0 = "[[acquirers]]\nname = \"b\"\nport = 1\n";
  REQUIRE_ERROR(base_toml + b0 + "[[routes]]\nbin_prefix = \"4\"\nacquirer = \"b\"\nfallback = \"zz\"\n",
                "routes[1].fallback: unknown acquirer 'zz'");
  REQUIRE_ERROR(base_toml + b0 + "[[routes]]\nbin_prefix = \"4\"\nacquirer = \"b\"\nfallback = \"b\"\n",
                "routes[1].fallback: must name another acquirer");
  REQUIRE_ERROR(base_toml + "[[routes]]\nbin_prefix = \"4\"\nscheme = \"visa\"\nacquirer = \"a1\"\n",
                "routes[1].scheme: give either bin_prefix or scheme, not both");
  REQUIRE_ERROR(base_toml + "[[routes]]\nacquirer = \"a1\"\n", "routes[1].bin_prefix: missing required key");
  REQUIRE_ERROR(base_toml + "[[routes]]\nscheme = \"vi sa\"\nacquirer = \"a1\"\n",
                "routes[1].scheme: must be a scheme name");
  REQUIRE_ERROR(base_toml + "[[routes]]\nscheme = \"visa\"\nmerchant = \"M999\"\nacquirer = \"a1\"\n",
                "routes[1].merchant: unknown merchant 'M999'");
  REQUIRE_ERROR(base_toml +
                    "[[routes]]\nscheme = \"visa\"\nacquirer = \"a1\"\n[[routes]]\nscheme = "
                    "\"visa\"\nacquirer = \"a1\"\n",
                "routes[2].scheme: duplicate scheme 'visa' (also routes[1])");
  REQUIRE_ERROR(base_toml + "[[routes]]\nbin_prefix = \"\"\nacquirer = \"a1\"\n",
                "routes[1].bin_prefix: duplicate prefix '' (also routes[0])");
  {
    // A wrong type is reported once, not also as a duplicate of the default route.
    const auto lines = errors_of(base_toml + "[[routes]]\nbin_prefix = 4\nacquirer = \"a1\"\n");
    INFO(joined(lines));
    CHECK(has_line(lines, "routes[1].bin_prefix: expected string, got integer"));
    CHECK(lines.size() == 1);
  }
  // The same criteria for one merchant only are no duplicate.
  auto ok = parse_config(
      base_toml + "[[routes]]\nbin_prefix = \"\"\nmerchant = \"M001\"\nacquirer = \"a1\"\n", "/b");
  INFO((ok ? std::string() : ok.err().message));
  CHECK(ok.has_value());
}

TEST_CASE("route_for: merchant before general, BIN prefix before scheme before default") {
  auto r = parse_config(base_toml +
                            "[[merchants]]\nid = \"M002\"\nacquirer_merchant_id = \"MERCHANT0000002\"\n"
                            "[[acquirers]]\nname = \"visa\"\nport = 1\n"
                            "[[acquirers]]\nname = \"bin\"\nport = 2\n"
                            "[[acquirers]]\nname = \"m1\"\nport = 3\n"
                            "[[acquirers]]\nname = \"m1visa\"\nport = 4\n"
                            "[[routes]]\nscheme = \"visa\"\nacquirer = \"visa\"\nfallback = \"a1\"\n"
                            "[[routes]]\nbin_prefix = \"476173\"\nacquirer = \"bin\"\n"
                            "[[routes]]\nbin_prefix = \"\"\nmerchant = \"M001\"\nacquirer = \"m1\"\n"
                            "[[routes]]\nscheme = \"visa\"\nmerchant = \"M001\"\nacquirer = \"m1visa\"\n",
                        "/base");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  const auto pick = [&](std::string_view pan, std::string_view scheme, std::string_view merchant) {
    const auto* route = r->route_for(pan, scheme, merchant);
    return route == nullptr ? std::string("<none>") : route->acquirer;
  };
  CHECK(pick("4111111111111111", "visa", "M002") == "visa");
  CHECK(r->route_for("4111111111111111", "visa", "M002")->fallback == "a1");
  CHECK(pick("4761739001010119", "visa", "M002") == "bin");       // a BIN prefix beats the scheme
  CHECK(pick("5500000000000004", "mastercard", "M002") == "a1");  // default route
  CHECK(pick("5500000000000004", "", "M002") == "a1");            // unknown scheme: default
  CHECK(pick("5500000000000004", "mastercard", "M001") == "m1");  // the merchant's default
  CHECK(pick("4761739001010119", "visa", "M001") == "m1visa");    // merchant routes first
  // The one-argument form ignores scheme and merchant routes.
  CHECK(r->route_for("4111111111111111")->acquirer == "a1");
  CHECK(r->route_for("4761739001010119")->acquirer == "bin");
}

TEST_CASE("effective limits: till, then merchant, then [limits]") {
  auto r = parse_config(
      "[limits]\nmin_amount = 1\nmax_amount = 1000\nallowed_types = [\"sale\", \"refund\"]\nallowed_schemes "
      "= [\"visa\"]\n" +
          base_toml +
          "[merchants.limits]\nmax_amount = 500\nallowed_schemes = [\"visa\", \"mastercard\"]\n"
          "[tills.limits]\nallowed_types = [\"sale\"]\n"
          "[[tills]]\nid = \"T02\"\nstore = \"S01\"\npad = \"P02\"\nterminal_id = \"TERM0002\"\n",
      "/base");
  INFO((r ? std::string() : r.err().message));
  REQUIRE(r.has_value());
  const auto t1 = r->effective_limits(*r->find_till("T01"));
  CHECK(t1.min_amount == 1);                                                    // defaults
  CHECK(t1.max_amount == 500);                                                  // merchant
  CHECK(t1.allowed_types == std::vector<std::string>{"sale"});                  // till
  CHECK(t1.allowed_schemes == std::vector<std::string>{"visa", "mastercard"});  // merchant
  const auto t2 = r->effective_limits(*r->find_till("T02"));
  CHECK(t2.allowed_types == std::vector<std::string>{"sale", "refund"});  // defaults
  CHECK(t2.max_amount == 500);
  CHECK(r->merchant_of(*r->find_till("T02"))->id == "M001");

  auto none = parse_config(base_toml, "/base");
  REQUIRE(none.has_value());
  const auto l = none->effective_limits(none->tills[0]);
  CHECK_FALSE(l.min_amount.has_value());
  CHECK_FALSE(l.allowed_types.has_value());
}

TEST_CASE("limits that contradict only after inheritance are reported on the till") {
  REQUIRE_ERROR("[limits]\nmax_amount = 100\n" + base_toml + "[tills.limits]\nmin_amount = 500\n",
                "tills[0].limits: effective min_amount 500 exceeds effective max_amount 100");
}

TEST_CASE("hostile input never throws: binary, bad UTF-8, deep nesting, huge numbers") {
  std::string deep(5000, '[');
  const std::string inputs[] = {
      std::string("\0\0\0", 3),
      "\xff\xfe[server]\n",
      "[server]\nnode_name = \"\xc3\x28\"\n",
      "x = " + deep,
      "[listen.pos]\nport = 99999999999999999999999\n",
      "[[tills]]\n[[tills]]\n[[tills]]\n",
      "tills = [1, \"a\", {id = 3}]\n",
      "[limits]\nallowed_types = [[\"sale\"]]\n",
  };
  for (const auto& in : inputs) {
    INFO(in.substr(0, 40));
    eftd::result<server_config> r = eftd::make_error("none", "");
    REQUIRE_NOTHROW(r = parse_config(in, "/b"));
    CHECK_FALSE(r.has_value());
  }
}

TEST_CASE("POS transport: plaintext only on loopback, TLS needs a client CA, limits are positive") {
  REQUIRE_ERROR("[listen.pos]\naddress = \"0.0.0.0\"\n",
                "listen.pos: plaintext POS connections are only allowed on loopback addresses");
  CHECK(parse_config("[listen.pos]\naddress = \"127.0.0.2\"\n", "/b").has_value());
  CHECK(parse_config("[listen.pos]\naddress = \"::1\"\n", "/b").has_value());
  REQUIRE_ERROR(
      "[listen.pos]\naddress = \"0.0.0.0\"\n[listen.pos.tls]\ncert_file = \"s.pem\"\nkey_file = \"s.key\"\n",
      "listen.pos.tls.client_ca_file: required");
  REQUIRE_ERROR("[listen.pos.tls]\ncert_file = \"s.pem\"\n", "listen.pos.tls.key_file: missing required key");
  REQUIRE_ERROR("[listen.pos]\nmax_per_address = 0\n", "listen.pos.max_per_address");
  auto ok = parse_config(
      "[listen.pos]\naddress = \"0.0.0.0\"\nlogin_timeout_ms = 500\n[listen.pos.tls]\ncert_file = \"s.pem\"\n"
      "key_file = \"s.key\"\nclient_ca_file = \"ca.pem\"\n",
      "/base");
  REQUIRE(ok.has_value());
  CHECK(ok->pos.tls.enabled());
  CHECK(ok->pos.tls.client_ca_file == fs::path("/base/ca.pem"));
  CHECK(ok->pos.login_timeout_ms == 500);
  CHECK(ok->pos.max_per_address == 256);
}

TEST_CASE("prompts are validated: kind, stage, menu options, defaults, transaction types") {
  auto ok = parse_config(base_toml + R"(
[[prompts]]
id = "check"
text = "ID checked?"
cancel_on = ["no"]
min_amount = 100
[[prompts]]
id = "menu1"
kind = "menu"
stage = "after_card"
text = "Programme?"
options = ["a", "b"]
default = "b"
)",
                         "/b");
  REQUIRE(ok.has_value());
  REQUIRE(ok->prompts.size() == 2);
  CHECK(ok->prompts[0].kind == "yes_no");
  CHECK(ok->prompts[0].default_value == "no");  // the safe default for a yes/no question
  CHECK(ok->prompts[0].min_amount == 100);
  CHECK(ok->prompts[1].options == std::vector<std::string>{"a", "b"});
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"m\"\nkind = \"menu\"\ntext = \"t\"\n",
                "prompts[0].options: a menu prompt needs options");
  REQUIRE_ERROR(
      base_toml +
          "[[prompts]]\nid = \"m\"\nkind = \"menu\"\ntext = \"t\"\noptions = [\"a\"]\ndefault = \"z\"\n",
      "prompts[0].default: must be one of the options");
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"y\"\ntext = \"t\"\ndefault = \"maybe\"\n",
                "prompts[0].default: must be \"yes\" or \"no\"");
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"k\"\nkind = \"slider\"\ntext = \"t\"\n",
                "prompts[0].kind: unknown kind 'slider'");
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"s\"\nstage = \"after_pin\"\ntext = \"t\"\n",
                "prompts[0].stage: unknown stage 'after_pin'");
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"t\"\ntypes = [\"teleport\"]\ntext = \"t\"\n",
                "prompts[0].types[0]: unknown transaction type 'teleport'");
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"a\"\ntext = \"t\"\n[[prompts]]\nid = \"a\"\ntext = \"u\"\n",
                "prompts[1].id: duplicate prompt id 'a'");
  REQUIRE_ERROR(base_toml + "[[prompts]]\nid = \"a\"\n", "prompts[0].text: missing required key");
}

TEST_CASE("pads can be revoked, plaintext pad connections only on loopback, pad TLS needs the pad CA") {
  // base_toml's pads come first: a revoked flag on the second [[pads]] table.
  auto ok = parse_config(base_toml + "[[pads]]\nid = \"P03\"\nserial = \"VP-0003\"\nrevoked = true\n", "/b");
  REQUIRE(ok.has_value());
  REQUIRE(ok->pads.size() == 3);
  CHECK_FALSE(ok->pads[0].revoked);  // default
  CHECK(ok->pads[2].revoked);
  CHECK_FALSE(ok->find_pad("P01")->revoked);
  REQUIRE_ERROR(base_toml + "[[pads]]\nid = \"P03\"\nserial = \"VP-0003\"\nrevoked = \"yes\"\n",
                "pads[2].revoked: expected boolean, got string");

  REQUIRE_ERROR(
      "[listen.pad]\naddress = \"0.0.0.0\"\n",
      "listen.pad: plaintext pad connections are only allowed on loopback addresses, not '0.0.0.0'");
  CHECK(parse_config("[listen.pad]\naddress = \"127.0.0.1\"\n", "/b").has_value());
  CHECK(parse_config("[listen.pad]\naddress = \"::1\"\n", "/b").has_value());
  REQUIRE_ERROR(
      "[listen.pad]\naddress = \"10.0.0.5\"\n[listen.pad.tls]\ncert_file = \"p.pem\"\nkey_file = \"p.key\"\n",
      "listen.pad.tls.client_ca_file: required");
  auto tls = parse_config(
      "[listen.pad]\naddress = \"0.0.0.0\"\nlogin_timeout_ms = 700\n[listen.pad.tls]\ncert_file = \"p.pem\"\n"
      "key_file = \"p.key\"\nclient_ca_file = \"pad-ca.pem\"\n",
      "/base");
  REQUIRE(tls.has_value());
  CHECK(tls->pad.tls.enabled());
  CHECK(tls->pad.tls.cert_file == fs::path("/base/p.pem"));
  CHECK(tls->pad.tls.client_ca_file == fs::path("/base/pad-ca.pem"));
  CHECK(tls->pad.login_timeout_ms == 700);
  CHECK_FALSE(tls->pos.tls.enabled());  // each listener has its own TLS
}

TEST_CASE("check_ready refuses a listener moved off loopback by --set without TLS") {
  auto cfg = parse_config("", "/b");
  REQUIRE(cfg.has_value());
  CHECK(eftd::config::check_ready(*cfg).has_value());
  REQUIRE(eftd::config::apply_override(*cfg, "listen.pos.address=0.0.0.0").has_value());
  auto r = eftd::config::check_ready(*cfg);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().message.find("listen.pos: plaintext connections are only allowed on loopback") !=
        std::string::npos);
  REQUIRE(eftd::config::apply_override(*cfg, "listen.pos.address=127.0.0.1").has_value());
  REQUIRE(eftd::config::apply_override(*cfg, "listen.pad.address=10.0.0.5").has_value());
  auto p = eftd::config::check_ready(*cfg);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.err().message.find("listen.pad:") != std::string::npos);
}

TEST_CASE("acquirer mak: a key store name that needs [keys] store") {
  std::string text = base_toml;
  const std::string port = "port = 5000\n";
  text.insert(text.find(port) + port.size(), "mak = \"mak-a1\"\n");
  REQUIRE_ERROR(text, "acquirers[0].mak: a message authentication key needs a key store (keys.store)");
  auto cfg =
      parse_config(text + "\n[keys]\nstore = \"keys.store\"\nmaster_key_file = \"keys.master\"\n", "/base");
  if (!cfg) FAIL(cfg.err().message);
  CHECK(cfg->acquirers.at(0).mak == "mak-a1");
  std::string empty = base_toml;
  empty.insert(empty.find(port) + port.size(), "mak = \"\"\n");
  REQUIRE_ERROR(empty, "acquirers[0].mak");
}

TEST_CASE("the metrics listener is optional, loopback only and plaintext") {
  auto none = parse_config(base_toml, "/base");
  REQUIRE(none.has_value());
  CHECK_FALSE(none->metrics.has_value());
  auto on = parse_config(base_toml + "[listen.metrics]\nport = 0\n", "/base");
  INFO((on ? std::string() : on.err().message));
  REQUIRE(on.has_value());
  REQUIRE(on->metrics.has_value());
  CHECK(on->metrics->address == "127.0.0.1");
  CHECK(on->metrics->port == 0);
  REQUIRE_ERROR(base_toml + "[listen.metrics]\naddress = \"0.0.0.0\"\n",
                "listen.metrics.address: the metrics listener is plaintext HTTP: use a loopback address");
  auto example = load_config(source_root() / "etc/eftd.example.toml");
  REQUIRE(example.has_value());
  REQUIRE(example->metrics.has_value());
  CHECK(example->metrics->port == 9300);
}

TEST_CASE("[emv] turns the central kernel on, and AIDs, country and the CA key file are checked") {
  auto off = parse_config(base_toml, "/base");
  REQUIRE(off.has_value());
  CHECK_FALSE(off->emv.enabled);
  CHECK(off->emv.floor_limit == 0);
  auto on = parse_config(base_toml +
                             "[emv]\nenabled = true\ncapk_file = \"capk.toml\"\n"
                             "applications = [\"A0000000031010\"]\nfloor_limit = 5000\n",
                         "/etc/eftd");
  INFO((on ? std::string() : on.err().message));
  REQUIRE(on.has_value());
  CHECK(on->emv.enabled);
  CHECK(on->emv.capk_file == fs::path("/etc/eftd/capk.toml"));
  CHECK(on->emv.applications == std::vector<std::string>{"A0000000031010"});
  CHECK(on->emv.floor_limit == 5000);
  REQUIRE_ERROR(base_toml + "[emv]\nenabled = true\n", "emv.capk_file: missing required key");
  REQUIRE_ERROR(base_toml + "[emv]\napplications = [\"A00\"]\n", "emv.applications[0]");
  REQUIRE_ERROR(base_toml + "[emv]\ncountry_code = 1000\n", "emv.country_code");
}

TEST_CASE(
    "[emv] terminal action codes default to online for floor limit, velocity and online PIN, and "
    "are checked") {
  auto dflt = parse_config(base_toml, "/base");
  REQUIRE(dflt.has_value());
  CHECK(dflt->emv.tac_online == "000004F800");
  CHECK(dflt->emv.tac_denial == "0000000000");
  auto set = parse_config(base_toml +
                              "[emv]\ntac_denial = \"0010000000\"\ntac_online = \"DC4004F800\"\n"
                              "tac_default = \"DC4000A800\"\n",
                          "/base");
  INFO((set ? std::string() : set.err().message));
  REQUIRE(set.has_value());
  CHECK(set->emv.tac_denial == "0010000000");
  CHECK(set->emv.tac_online == "DC4004F800");
  CHECK(set->emv.tac_default == "DC4000A800");
  REQUIRE_ERROR(base_toml + "[emv]\ntac_online = \"DC4004F8\"\n", "emv.tac_online");
  REQUIRE_ERROR(base_toml + "[emv]\ntac_denial = \"00100000ZZ\"\n", "emv.tac_denial");
}
