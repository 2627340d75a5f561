// Message MACs end to end: eftd with `mak = "mak-sim"` on its acquirer (the MAK from
// tools/dev-keys, in the key store) against the simulator holding the same key (--mak-file).
// The sim answers 63 to any request without a valid MAC, so an approval proves that eftd's
// MAC verified, and eftd accepts the answer only if the sim's MAC verified too.
#include <catch2/catch.hpp>
#include <string>

#include "e2e_util.hpp"

using namespace eftd::test;

TEST_CASE("a sale with message MACs on the acquirer link is approved", "[acquirer][e2e][mac]") {
  installation inst("e2e-mac", true, {"--mak-file", "{keys}/mak.hex"});
  inst.extra_config = "[[acquirers]]\nname = \"macd\"\nport = " + std::to_string(inst.acquirer_port) +
                      "\nmak = \"mak-sim\"\n\n[[routes]]\nbin_prefix = \"4761\"\nacquirer = \"macd\"\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("MAC");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "13.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*inst.acquirer);
  INFO(summary);
  CHECK(summary_number(summary, "approved") == 1);
  CHECK(summary_number(summary, "declined") == 0);
}
