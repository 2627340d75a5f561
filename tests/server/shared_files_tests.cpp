// The pad and till registry a hot-standby pair shares (server/src/shared_files.hpp): its
// canonical JSON, how it is laid over a node's own file, and the differences people are shown.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared_files.hpp"

namespace {

namespace cfg = eftd::config;
using eftd::server::pad_registry;

cfg::pad pad(std::string id, std::string serial, bool revoked = false) {
  cfg::pad p;
  p.id = std::move(id);
  p.serial = std::move(serial);
  p.revoked = revoked;
  return p;
}

cfg::till till(std::string id, std::string pad_id, std::string terminal) {
  cfg::till t;
  t.id = std::move(id);
  t.store = "S01";
  t.pad = std::move(pad_id);
  t.terminal_id = std::move(terminal);
  return t;
}

cfg::server_config file_config() {
  cfg::server_config c;
  c.pads = {pad("P02", "VP-0002"), pad("P01", "VP-0001")};
  c.tills = {till("T02", "P02", "TERM0002"), till("T01", "P01", "TERM0001")};
  c.tills[0].limit.max_amount = 5000;
  return c;
}

}  // namespace

TEST_CASE("registry: canonical JSON, whatever the file's order", "[unit][ha]") {
  auto a = file_config();
  auto b = file_config();
  std::swap(b.pads[0], b.pads[1]);
  std::swap(b.tills[0], b.tills[1]);
  const auto ja = eftd::server::registry_json(eftd::server::registry_of(a));
  CHECK(ja == eftd::server::registry_json(eftd::server::registry_of(b)));
  CHECK(ja ==
        R"({"pads":[{"id":"P01","revoked":false,"serial":"VP-0001"},{"id":"P02","revoked":false,"serial":"VP-0002"}],)"
        R"("tills":[{"id":"T01","pad":"P01"},{"id":"T02","pad":"P02"}],"version":1})");
  auto back = eftd::server::parse_registry(ja);
  REQUIRE(back);
  CHECK(*back == eftd::server::registry_of(a));
}

TEST_CASE("registry: what does not parse is refused with ha.bad_registry", "[unit][ha]") {
  for (const std::string& bad : {
           std::string("not json"),
           std::string(R"({"version":2,"pads":[],"tills":[]})"),
           std::string(R"({"version":1,"pads":{},"tills":[]})"),
           std::string(R"({"version":1,"pads":[{"id":"P01","serial":"S"}],"tills":[]})"),
           std::string(R"({"version":1,"pads":[{"id":"P01","serial":"S","revoked":"yes"}],"tills":[]})"),
           std::string(R"({"version":1,"pads":[],"tills":[{"id":"T01"}]})"),
           std::string(R"({"version":1,"pads":[],"tills":[{"id":"T01","pad":"P09"}]})"),
       }) {
    CAPTURE(bad);
    auto r = eftd::server::parse_registry(bad);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "ha.bad_registry");
  }
}

TEST_CASE("registry: the pair's registry laid over a node's file", "[unit][ha]") {
  const auto file = file_config();
  pad_registry shared;
  shared.pads = {pad("P01", "VP-0001"), pad("P02", "VP-0002", /*revoked=*/true), pad("P09", "VP-0009")};
  shared.tills = {{"T02", "P09"}, {"T07", "P01"}};  // T01 dropped, T02 moved to P09, T07 unknown here

  const auto out = eftd::server::with_registry(file, shared);
  REQUIRE(out.pads.size() == 3);
  REQUIRE(out.find_pad("P02") != nullptr);
  CHECK(out.find_pad("P02")->revoked);
  CHECK(out.find_pad("P09") != nullptr);
  // Only the file's tills the registry names; their other settings stay the file's.
  CHECK(out.find_till("T01") == nullptr);
  CHECK(out.find_till("T07") == nullptr);
  const auto* t2 = out.find_till("T02");
  REQUIRE(t2 != nullptr);
  CHECK(t2->pad == "P09");
  CHECK(t2->terminal_id == "TERM0002");
  CHECK(t2->limit.max_amount == std::optional<std::int64_t>(5000));

  const auto diffs = eftd::server::registry_differences(eftd::server::registry_of(file), shared);
  const std::vector<std::string> expected{
      "pad P02: revoked in the pair's registry, accepted in this node's file",
      "pad P09: in the pair's registry, not in this node's file",
      "till T02: pad P09 in the pair's registry, P02 in this node's file",
      "till T07: in the pair's registry, not in this node's file: not served here",
      "till T01: in this node's file only: not accepted",
  };
  CHECK(diffs == expected);
  CHECK(eftd::server::registry_differences(shared, shared).empty());
}
