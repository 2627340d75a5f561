// Acquirer links end to end: an acquirer with two links keeps taking sales when the host
// behind its first link is gone, and an acquirer reached over TLS (with a client certificate).
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

// Another simulator next to the installation's own, sharing its ZPK (the demo card's sales
// may carry an online PIN).
struct extra_sim {
  extra_sim(const installation& inst, const std::string& name, std::vector<std::string> args = {}) {
    std::vector<std::string> full{"--port", "0", "--zpk-file", inst.dir + "/keys/zpk.hex"};
    full.insert(full.end(), args.begin(), args.end());
    proc.emplace(bin_path("eft-acquirer-sim"), full, inst.dir + "/" + name + ".log");
    auto ready = proc->wait_ready();
    REQUIRE(ready.has_value());
    port = json_port(*ready, "port");
  }
  std::optional<process> proc;
  int port = 0;
};

std::vector<std::string> sale_acquirers(const installation& inst, const std::string& order) {
  std::vector<std::string> out;
  for (const auto& m : journal_view(inst, order).messages)
    if (m.mti == "0200") out.push_back(m.acquirer);
  return out;
}

}  // namespace

TEST_CASE("a sale is approved on an acquirer's second link while the host of its first is down",
          "[acquirer][e2e]") {
  installation inst("e2e-links-failover");
  extra_sim second(inst, "second");
  inst.extra_config =
      "[[acquirers]]\nname = \"multi\"\nlinks = [\"127.0.0.1:" + std::to_string(inst.acquirer_port) +
      "\", \"127.0.0.1:" + std::to_string(second.port) +
      "\"]\nzpk = \"zpk-sim\"\nreconnect_backoff_ms = 60000\nreconnect_backoff_max_ms = 60000\n\n"
      "[[routes]]\nbin_prefix = \"4761\"\nacquirer = \"multi\"\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  // Both hosts up: the first link carries the sale.
  const auto first = order_no("LK");
  auto r1 = inst.pos("T01", {"sale", "--order", first, "--amount", "15.00", "--currency", "PLN"});
  REQUIRE(r1.exit_code == 0);
  CHECK(r1.result.value("outcome", "") == "approved");
  // The first host goes away: the next sale goes out on the second link, no fallback needed.
  inst.stop_acquirer();
  const auto second_order = order_no("LK");
  auto r2 = inst.pos("T01", {"sale", "--order", second_order, "--amount", "16.00", "--currency", "PLN"});
  REQUIRE(r2.exit_code == 0);
  CHECK(r2.result.value("outcome", "") == "approved");
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*second.proc);
  INFO(summary);
  CHECK(summary_number(summary, "approved") == 1);
  CHECK(summary_number(summary, "approved_amount") == 1600);
  CHECK(sale_acquirers(inst, first) == std::vector<std::string>{"multi"});
  CHECK(sale_acquirers(inst, second_order) == std::vector<std::string>{"multi"});
}

TEST_CASE("a sale is approved over a TLS acquirer link with a client certificate", "[acquirer][e2e]") {
  installation inst("e2e-links-tls");
  const std::string pki = inst.dir + "/acq-pki";
  {
    const std::string script =
        "source \"" + source_path("tools/certs.sh") +
        "\" && eftd_make_certs \"$1\" acquirer.test \"eftd acquirer test CA\" eftd-node";
    process certs("/bin/bash", {"-c", script, "certs", pki}, inst.dir + "/certs.log");
    REQUIRE(certs.wait_exit(60s) == std::optional<int>{0});
  }
  extra_sim tls_sim(inst, "tls-sim",
                    {"--tls-cert", pki + "/server.pem", "--tls-key", pki + "/server.key", "--tls-client-ca",
                     pki + "/ca.pem"});
  inst.extra_config = "[[acquirers]]\nname = \"secure\"\nport = " + std::to_string(tls_sim.port) +
                      "\nzpk = \"zpk-sim\"\n\n[acquirers.tls]\nca_file = \"" + pki +
                      "/ca.pem\"\ncert_file = \"" + pki + "/eftd-node.pem\"\nkey_file = \"" + pki +
                      "/eftd-node.key\"\nserver_name = \"acquirer.test\"\n\n"
                      "[[routes]]\nbin_prefix = \"4761\"\nacquirer = \"secure\"\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("TLS");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "17.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*tls_sim.proc);
  INFO(summary);
  CHECK(summary_number(summary, "approved") == 1);
  CHECK(summary_number(summary, "malformed") == 0);
  CHECK(sale_acquirers(inst, order) == std::vector<std::string>{"secure"});
  CHECK(contains(slurp(inst.dir + "/eftd.log"), "(TLS)"));
}
