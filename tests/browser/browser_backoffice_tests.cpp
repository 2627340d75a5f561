// The back-office pages in a real browser: a real eftd with a sale in its journal, then
// tests/browser/backoffice.mjs (playwright-core driving the Debian chromium) against it.
// tools/test installs chromium and runs `npm ci` in tests/browser first.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "../e2e/e2e_util.hpp"

using namespace eftd::test;

TEST_CASE("back office in headless Chromium: login, search, detail, CSV, charts, settlement", "[browser]") {
  const std::string dir = source_path("tests/browser");
  REQUIRE(std::filesystem::exists(dir + "/node_modules/playwright-core"));  // npm ci ran
  installation inst("browser-backoffice");
  inst.start_eftd({"--set", "listen.backoffice.port=0"});
  REQUIRE(inst.backoffice_port > 0);
  // The user through eftctl, password on stdin (never argv).
  const std::string add = "printf '%s\\n' 'browser-pass-1' | " + bin_path("eftctl") +
                          " users add web --role viewer --password-stdin --socket " + inst.dir +
                          "/admin.sock";
  REQUIRE(std::system(add.c_str()) == 0);
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("WB");
  REQUIRE(inst.pos("T01", {"sale", "--order", order, "--amount", "9.99", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");
  const std::string cmd = "printf '%s\\n' 'browser-pass-1' | node " + dir + "/backoffice.mjs " +
                          std::to_string(inst.backoffice_port) + " web " + order + " > " + inst.dir +
                          "/browser.log 2>&1";
  const int rc = std::system(cmd.c_str());
  INFO(slurp(inst.dir + "/browser.log"));
  CHECK(rc == 0);
}
