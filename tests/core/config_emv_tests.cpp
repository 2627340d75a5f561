// EMV parameters per merchant and till ([merchants.emv], [tills.emv]), their precedence over
// [emv] (server_config::emv_for) and the fallback keys, in the file and on the command line.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/core/config.hpp"

using eftd::config::apply_override;
using eftd::config::parse_config;
using eftd::config::server_config;

namespace {

// Two merchants; M001 has two stores' worth of tills (T01, T02), M002 one (T03).
const std::string base_toml = R"(
[[merchants]]
id = "M001"
acquirer_merchant_id = "MERCHANT0000001"

[[merchants]]
id = "M002"
acquirer_merchant_id = "MERCHANT0000002"

[[stores]]
id = "S01"
merchant = "M001"

[[stores]]
id = "S02"
merchant = "M002"

[[pads]]
id = "P01"
serial = "VP-0001"

[[pads]]
id = "P02"
serial = "VP-0002"

[[pads]]
id = "P03"
serial = "VP-0003"

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

[[tills]]
id = "T03"
store = "S02"
pad = "P03"
terminal_id = "TERM0003"

[[acquirers]]
name = "a1"
port = 5000

[[routes]]
bin_prefix = ""
acquirer = "a1"
)";

// Inserts `extra` right after the line `anchor` (a table header) of base_toml, so that the
// added keys/tables belong to that array element.
std::string with(const std::string& anchor_block, const std::string& extra) {
  std::string text = base_toml;
  const auto at = text.find(anchor_block);
  REQUIRE(at != std::string::npos);
  text.insert(at + anchor_block.size(), extra);
  return text;
}

const std::string merchant1 = "acquirer_merchant_id = \"MERCHANT0000001\"\n";
const std::string till1 = "terminal_id = \"TERM0001\"\n";

std::string errors_of(const std::string& text) {
  auto r = parse_config(text, "/base");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "config.invalid");
  return r.err().message;
}

}  // namespace

TEST_CASE("[emv] fallback keys: defaults, values and bad values") {
  auto dflt = parse_config(base_toml, "/base");
  REQUIRE(dflt.has_value());
  CHECK(dflt->emv.fallback_allowed);
  CHECK_FALSE(dflt->emv.fallback_max_amount.has_value());
  CHECK(dflt->emv.terminal_capabilities.empty());
  CHECK(dflt->emv.additional_capabilities.empty());

  auto set = parse_config(base_toml +
                              "[emv]\nfallback = false\nfallback_max_amount = 20000\n"
                              "terminal_capabilities = \"e0b0c8\"\n"
                              "additional_capabilities = \"6000F0A001\"\n",
                          "/base");
  REQUIRE(set.has_value());
  CHECK_FALSE(set->emv.fallback_allowed);
  CHECK(set->emv.fallback_max_amount == 20000u);
  CHECK(set->emv.terminal_capabilities == "E0B0C8");
  CHECK(set->emv.additional_capabilities == "6000F0A001");

  CHECK_THAT(errors_of(base_toml + "[emv]\nfallback_max_amount = -1\n"),
             Catch::Contains("emv.fallback_max_amount: must not be negative"));
  CHECK_THAT(errors_of(base_toml + "[emv]\nfallback = \"yes\"\n"),
             Catch::Contains("emv.fallback: expected boolean"));
  CHECK_THAT(errors_of(base_toml + "[emv]\nterminal_capabilities = \"E0F8\"\n"),
             Catch::Contains("emv.terminal_capabilities: must be 3 bytes in hex"));
  CHECK_THAT(errors_of(base_toml + "[emv]\nadditional_capabilities = \"6000F0A0ZZ\"\n"),
             Catch::Contains("emv.additional_capabilities: must be 5 bytes in hex"));
}

TEST_CASE("overrides (--set) emv.fallback and emv.fallback_max_amount, and their bad values") {
  server_config cfg;
  REQUIRE(apply_override(cfg, "emv.fallback=false").has_value());
  CHECK_FALSE(cfg.emv.fallback_allowed);
  REQUIRE(apply_override(cfg, "emv.fallback=true").has_value());
  CHECK(cfg.emv.fallback_allowed);
  REQUIRE(apply_override(cfg, "emv.fallback_max_amount=15000").has_value());
  CHECK(cfg.emv.fallback_max_amount == 15000u);
  REQUIRE(apply_override(cfg, "emv.fallback_max_amount=0").has_value());
  CHECK(cfg.emv.fallback_max_amount == 0u);

  CHECK_FALSE(apply_override(cfg, "emv.fallback=yes").has_value());
  CHECK(cfg.emv.fallback_allowed);
  CHECK_FALSE(apply_override(cfg, "emv.fallback_max_amount=-5").has_value());
  CHECK_FALSE(apply_override(cfg, "emv.fallback_max_amount=abc").has_value());
  CHECK(cfg.emv.fallback_max_amount == 0u);
}

TEST_CASE("[merchants.emv] and [tills.emv] are read into the merchant and till") {
  const std::string text = with(merchant1,
                                "[merchants.emv]\ncountry_code = 276\nterminal_type = 0x21\n"
                                "floor_limit = 3000\ntac_online = \"DC4004F800\"\n"
                                "applications = [\"A0000000041010\"]\nfallback = false\n"
                                "[merchants.emv.contactless]\ntransaction_limit = 50000\n");
  auto r = parse_config(with(till1,
                             "[tills.emv]\nfloor_limit = 9000\nterminal_capabilities = \"E0B0C8\"\n"
                             "additional_capabilities = \"6000F0A001\"\n"
                             "tac_denial = \"0010000000\"\ntac_default = \"DC4000A800\"\n"
                             "fallback_max_amount = 10000\n"
                             "[tills.emv.contactless]\ncvm_required_limit = 10000\nfloor_limit = 0\n"),
                        "/base");
  REQUIRE(r.has_value());
  const auto* t1 = r->find_till("T01");
  REQUIRE(t1 != nullptr);
  CHECK(t1->emv.floor_limit == 9000u);
  CHECK(t1->emv.terminal_capabilities == std::string("E0B0C8"));
  CHECK(t1->emv.additional_capabilities == std::string("6000F0A001"));
  CHECK(t1->emv.tac_denial == std::string("0010000000"));
  CHECK(t1->emv.tac_default == std::string("DC4000A800"));
  CHECK_FALSE(t1->emv.tac_online.has_value());
  CHECK(t1->emv.fallback_max_amount == 10000u);
  CHECK(t1->emv.contactless.cvm_required_limit == 10000u);
  CHECK(t1->emv.contactless.floor_limit == 0u);
  CHECK_FALSE(t1->emv.contactless.transaction_limit.has_value());
  const auto* t2 = r->find_till("T02");
  REQUIRE(t2 != nullptr);
  CHECK_FALSE(t2->emv.floor_limit.has_value());

  auto m = parse_config(text, "/base");
  REQUIRE(m.has_value());
  const auto* m1 = m->find_merchant("M001");
  REQUIRE(m1 != nullptr);
  CHECK(m1->emv.country_code == std::uint16_t{276});
  CHECK(m1->emv.terminal_type == std::uint8_t{0x21});
  CHECK(m1->emv.floor_limit == 3000u);
  CHECK(m1->emv.tac_online == std::string("DC4004F800"));
  REQUIRE(m1->emv.applications.has_value());
  CHECK(*m1->emv.applications == std::vector<std::string>{"A0000000041010"});
  CHECK(m1->emv.fallback_allowed == false);
  CHECK(m1->emv.contactless.transaction_limit == 50000u);
  CHECK_FALSE(m->find_merchant("M002")->emv.floor_limit.has_value());
}

TEST_CASE("emv_for: [emv], then the merchant's overrides, then the till's") {
  std::string text = with(merchant1,
                          "[merchants.emv]\nfloor_limit = 2000\ncountry_code = 276\nfallback = false\n"
                          "[merchants.emv.contactless]\nfloor_limit = 5000\n");
  text +=
      "[emv]\nfloor_limit = 1000\ncountry_code = 616\ntac_online = \"000004F800\"\n"
      "fallback_max_amount = 50000\n[emv.contactless]\ntransaction_limit = 100000\nfloor_limit = 0\n";
  const auto at = text.find(till1);
  REQUIRE(at != std::string::npos);
  text.insert(at + till1.size(),
              "[tills.emv]\nfloor_limit = 3000\nterminal_capabilities = \"E0B0C8\"\n"
              "[tills.emv.contactless]\nfloor_limit = 7000\n");
  auto r = parse_config(text, "/base");
  REQUIRE(r.has_value());

  // The till's own value wins over its merchant's, which wins over [emv].
  const auto t1 = r->emv_for("M001", "T01");
  CHECK(t1.floor_limit == 3000u);
  CHECK(t1.country_code == 276);            // from the merchant
  CHECK_FALSE(t1.fallback_allowed);         // from the merchant
  CHECK(t1.fallback_max_amount == 50000u);  // from [emv]
  CHECK(t1.terminal_capabilities == "E0B0C8");
  CHECK(t1.tac_online == "000004F800");
  CHECK(t1.contactless.floor_limit == 7000u);
  CHECK(t1.contactless.transaction_limit == 100000u);

  // Another till of the same merchant: the merchant's values.
  const auto t2 = r->emv_for("M001", "T02");
  CHECK(t2.floor_limit == 2000u);
  CHECK(t2.country_code == 276);
  CHECK(t2.terminal_capabilities.empty());
  CHECK(t2.contactless.floor_limit == 5000u);

  // Another merchant: [emv] only.
  const auto t3 = r->emv_for("M002", "T03");
  CHECK(t3.floor_limit == 1000u);
  CHECK(t3.country_code == 616);
  CHECK(t3.fallback_allowed);
  CHECK(t3.contactless.floor_limit == 0u);

  // The merchant is found through the till's store when not given; unknown ids add nothing.
  CHECK(r->emv_for("", "T02").floor_limit == 2000u);
  CHECK(r->emv_for("M404", "T404").floor_limit == 1000u);
  CHECK(r->emv_for("M001", "").floor_limit == 2000u);
  // [emv] itself is untouched.
  CHECK(r->emv.floor_limit == 1000u);
}

TEST_CASE("[merchants.emv] / [tills.emv]: unknown keys and bad values are named") {
  CHECK_THAT(errors_of(with(merchant1, "[merchants.emv]\nfloor_limt = 10\n")),
             Catch::Contains("merchants[0].emv.floor_limt: unknown key (did you mean 'floor_limit'?)"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\nenabled = true\n")),
             Catch::Contains("tills[0].emv.enabled: unknown key"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\ncapk_file = \"x.toml\"\n")),
             Catch::Contains("tills[0].emv.capk_file: unknown key"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv.contactless]\nonline_pin = true\n")),
             Catch::Contains("tills[0].emv.contactless.online_pin: unknown key"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\ntac_online = \"DC4004F8\"\n")),
             Catch::Contains("tills[0].emv.tac_online: must be 5 bytes in hex"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\nterminal_capabilities = \"E0F8CG\"\n")),
             Catch::Contains("tills[0].emv.terminal_capabilities: must be 3 bytes in hex"));
  CHECK_THAT(errors_of(with(merchant1, "[merchants.emv]\nadditional_capabilities = \"6000\"\n")),
             Catch::Contains("merchants[0].emv.additional_capabilities: must be 5 bytes in hex"));
  CHECK_THAT(errors_of(with(merchant1, "[merchants.emv]\napplications = [\"A00\"]\n")),
             Catch::Contains("merchants[0].emv.applications[0]"));
  CHECK_THAT(errors_of(with(merchant1, "[merchants.emv]\ncountry_code = 1000\n")),
             Catch::Contains("merchants[0].emv.country_code"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\nterminal_type = 5\n")),
             Catch::Contains("tills[0].emv.terminal_type"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\nfloor_limit = -1\n")),
             Catch::Contains("tills[0].emv.floor_limit: must not be negative"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv]\nfallback_max_amount = -1\n")),
             Catch::Contains("tills[0].emv.fallback_max_amount: must not be negative"));
  CHECK_THAT(errors_of(with(till1, "[tills.emv.contactless]\ntransaction_limit = -1\n")),
             Catch::Contains("tills[0].emv.contactless.transaction_limit: must not be negative"));
  CHECK_THAT(errors_of(with(till1, "emv = 5\n")), Catch::Contains("tills[0].emv: expected table"));
}
