// EMV parameters per till end to end (issue 6: "terminal and application parameters are data,
// set per merchant and terminal"): a [tills.emv] table changes what eftd's kernel does for that
// till only. The same chip card and amount stay online at one till of the installation and are
// approved offline by the card at the till whose floor limit allows it, and that till's 9F33
// reaches the acquirer in field 55.
#include <catch2/catch.hpp>
#include <fstream>

#include "e2e_util.hpp"
#include "eftd/core/bytes.hpp"

using namespace eftd::test;

TEST_CASE("a till's [tills.emv] floor limit and terminal capabilities apply to that till only",
          "[e2e][emv][acquirer]") {
  installation inst("e2e-emv-params", true, issuer());
  // Appended after etc/demo.toml, whose last [[tills]] is T02: the table belongs to T02. [emv]
  // keeps its floor limit of 0 (every chip sale online) for T01.
  inst.extra_config =
      "[tills.emv]\n"
      "floor_limit = 5000\n"
      "terminal_capabilities = \"60F8C8\"\n";
  inst.start_eftd(emv_on());

  // T01: [emv] as it is: the sale goes online (0200).
  inst.start_pad("P01", "VP-0001", "visa-dda-approve.toml", customer_types_pin(inst));
  const auto online = order_no("PA");
  auto r = inst.pos("T01", {"sale", "--order", online, "--amount", "25.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("entry_mode", "") == "chip");
  CHECK_FALSE(r.result.contains("reason"));  // a plain online approval
  {
    auto v = journal_view(inst, online, "T01");
    REQUIRE(v.messages.size() == 1);
    CHECK(v.messages.front().mti == "0200");
  }
  inst.stop_pad();

  // T02, same card and amount: under its own floor limit the card approves offline (TC).
  inst.start_pad("P02", "VP-0002", "visa-dda-approve.toml", customer_types_pin(inst));
  const auto offline = order_no("PB");
  r = inst.pos("T02", {"sale", "--order", offline, "--amount", "25.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("entry_mode", "") == "chip");
  CHECK(r.result["reason"].value("code", "") == "approved.offline");
  auto v = journal_view(inst, offline, "T02");
  const eftd::journal::acquirer_message_row* advice = nullptr;
  for (const auto& m : v.messages) {
    CHECK(m.mti != "0200");  // nothing asked of the acquirer
    if (m.mti == "0220") advice = &m;
  }
  REQUIRE(advice != nullptr);

  // The advice's field 55 carries T02's terminal capabilities (9F33 03 60F8C8), not the
  // kernel's default E0F8C8. (Field 55 holds no PAN or track data.)
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto payload = rd->message_advice_payload(advice->msg_id);
  REQUIRE(payload);
  const std::string icc = eftd::to_hex(payload->icc_data);
  CHECK(contains(icc, "9F330360F8C8"));
  CHECK_FALSE(contains(icc, "9F3303E0F8C8"));

  inst.eftd->stop();
  CHECK_FALSE(contains(slurp(inst.dir + "/eftd.log"), test_pan));
}
