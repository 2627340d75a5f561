// eft-loadgen end to end: a short closed-loop run of simulated tills (POS connection + LAN pad
// each) against the real eftd and acquirer simulator. The figures depend on the machine, so
// only completeness and the summary's shape are checked.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace eftd::test;
using namespace std::chrono_literals;

namespace {

struct loadgen_run {
  int exit_code = -1;
  std::vector<std::string> lines;
};

// The tables eftd needs for `tills` loadgen tills (pads and tills with their serials).
std::string loadgen_config(int tills) {
  process p(bin_path("eft-loadgen"), {"--print-config", std::to_string(tills)});
  std::string text;
  while (auto line = p.read_line(30s)) text += *line + "\n";
  REQUIRE(p.wait_exit(30s).value_or(-1) == 0);
  return text;
}

loadgen_run run_loadgen(installation& inst, std::vector<std::string> args) {
  std::vector<std::string> full{"--pos-port",   std::to_string(inst.pos_port),
                                "--pad-port",   std::to_string(inst.pad_port),
                                "--keys",       inst.dir + "/keys",
                                "--cards",      source_path("pinpad-firmware-shim/cards"),
                                "--server-pid", std::to_string(inst.eftd->pid()),
                                "--sim-pid",    std::to_string(inst.acquirer->pid()),
                                "--quiet"};
  for (auto& a : args) full.push_back(a);
  process p(bin_path("eft-loadgen"), full, inst.dir + "/loadgen.log");
  loadgen_run r;
  while (auto line = p.read_line(120s)) r.lines.push_back(*line);
  r.exit_code = p.wait_exit(30s).value_or(-1);
  return r;
}

}  // namespace

TEST_CASE("eft-loadgen runs 40 chip+PIN sales and declines on 4 tills and prints a JSON summary", "[e2e]") {
  installation inst("loadgen-e2e", true,
                    {"--issuer-keys", source_path("acquirers/sim/issuer-keys-test.toml")});
  inst.extra_config = loadgen_config(4);
  inst.start_eftd({"--set", "emv.enabled=true", "--set",
                   "emv.capk_file=" + source_path("pinpad-firmware-shim/cards/keys/capk-eftd-test.toml")});
  auto r = run_loadgen(
      inst, {"--tills", "4", "--concurrency", "4", "--count", "40", "--mix", "chip=3,magstripe=1,decline=1"});
  REQUIRE_FALSE(r.lines.empty());
  INFO("loadgen log: " << inst.dir << "/loadgen.log");
  CHECK(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.lines.back(), nullptr, false);
  REQUIRE(j.is_object());
  for (const char* key :
       {"tx", "tps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors", "approved", "declined", "tills",
        "server_rss_mb", "cpu_s_per_tx_eftd", "cpu_s_per_tx_loadgen", "cpu_s_per_tx_sim"}) {
    INFO("key " << key);
    CHECK(j.contains(key));
  }
  CHECK(j.value("tx", 0) == 40);
  CHECK(j.value("errors", -1) == 0);
  CHECK(j.value("tills", 0) == 4);
  CHECK(j.value("approved", 0) + j.value("declined", 0) == 40);
  CHECK(j.value("approved", 0) > 0);
  CHECK(j["server_rss_mb"].is_number());
  CHECK(j["cpu_s_per_tx_eftd"].is_number());
  CHECK(j["cpu_s_per_tx_sim"].is_number());
}

TEST_CASE("eft-loadgen over TLS: tills and pads get certificates issued in memory by the development CAs",
          "[e2e][security]") {
  installation inst("loadgen-tls", true,
                    {"--issuer-keys", source_path("acquirers/sim/issuer-keys-test.toml")});
  // CAs and eftd's server certificates only: no till or pad certificate file exists.
  for (const char* side : {"pos", "pad"}) {
    const std::string cmd = source_path(std::string("tools/") + side + "-certs") + " " + inst.dir + "/" +
                            side + "-certs localhost >/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  inst.extra_config = loadgen_config(3);
  for (const char* side : {"pos", "pad"}) {
    const std::string d = inst.dir + "/" + side + "-certs";
    inst.extra_config += std::string("\n[listen.") + side + ".tls]\ncert_file = \"" + d +
                         "/server.pem\"\nkey_file = \"" + d + "/server.key\"\nclient_ca_file = \"" + d +
                         "/ca.pem\"\n";
  }
  inst.start_eftd({"--set", "emv.enabled=true", "--set",
                   "emv.capk_file=" + source_path("pinpad-firmware-shim/cards/keys/capk-eftd-test.toml")});
  auto r = run_loadgen(inst, {"--tills", "3", "--count", "12", "--mix", "chip=1", "--pos-tls",
                              inst.dir + "/pos-certs", "--pad-tls", inst.dir + "/pad-certs"});
  REQUIRE_FALSE(r.lines.empty());
  INFO("loadgen log: " << inst.dir << "/loadgen.log");
  CHECK(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.lines.back(), nullptr, false);
  REQUIRE(j.is_object());
  // eftd demands a client certificate of its CA on both listeners: every till got in and sold.
  CHECK(j.value("tills", 0) == 3);
  CHECK(j.value("approved", 0) == 12);
  CHECK(j.value("errors", -1) == 0);
  // Nothing was written next to the CAs: the certificates lived in memory only.
  CHECK_FALSE(std::filesystem::exists(inst.dir + "/pos-certs/L00001.pem"));
}

TEST_CASE("eft-loadgen refuses more tills than its open-file limit holds, saying how many fit", "[e2e]") {
  installation inst("loadgen-nofile", /*with_acquirer=*/false);
  // 100 descriptors: 64 kept for the load generator itself, two sockets per till.
  process p("/usr/bin/prlimit",
            {"--nofile=100:100", bin_path("eft-loadgen"), "--pos-port", "1", "--pad-port", "2", "--keys",
             inst.dir, "--tills", "19", "--count", "1"},
            inst.dir + "/loadgen.log");
  while (p.read_line(30s)) {
  }
  CHECK(p.wait_exit(30s).value_or(-1) == 2);
  const std::string err = slurp(inst.dir + "/loadgen.log");
  CHECK(err.find("--tills 19 needs 102 open files, the limit here is 100: at most 18 tills") !=
        std::string::npos);
}

TEST_CASE("eft-loadgen without eftd's pad port fails with a clear message", "[e2e]") {
  process p(bin_path("eft-loadgen"), {"--pos-port", "1", "--count", "1"});
  std::vector<std::string> lines;
  while (auto line = p.read_line(30s)) lines.push_back(*line);
  CHECK(p.wait_exit(30s).value_or(-1) == 2);
}
