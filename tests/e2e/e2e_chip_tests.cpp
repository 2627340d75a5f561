// Chip cards end to end through the central EMV kernel: eftd selects the application, reads
// the records, authenticates the card offline, verifies the cardholder and asks the card for its
// cryptogram, all through the pad's APDU commands under DUKPT; the acquirer simulator checks the
// ARQC with the issuer master keys and answers the ARPC, which the card accepts.
#include <catch2/catch.hpp>
#include <fstream>

#include "e2e_util.hpp"

using namespace eftd::test;

TEST_CASE("a Visa DDA chip card is read by eftd's kernel and approved online with a verified ARQC",
          "[e2e][emv]") {
  installation inst("e2e-chip-dda", true, issuer());
  inst.start_eftd(emv_on());
  inst.start_pad("P01", "VP-0001", "visa-dda-approve.toml", customer_types_pin(inst));
  const auto order = order_no("C");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "25.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("entry_mode", "") == "chip");
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "approved") == 1);
  CHECK(summary_number(sim, "debits") == 1);
  // The simulator recomputed the card's ARQC from field 55 and answered the ARPC in 91.
  CHECK(contains(slurp(inst.dir + "/acquirer.log"), "arqc verified"));
  inst.eftd->stop();
  auto v = journal_view(inst, order);
  CHECK(has_event(v, "chip_read", "AID A000000003"));
  // No card data in eftd's log or the journal's texts.
  CHECK_FALSE(contains(slurp(inst.dir + "/eftd.log"), test_pan));
  for (const auto& e : v.events) CHECK_FALSE(contains(e.reason, test_pan));
}

TEST_CASE("a Mastercard CDA chip card is approved online", "[e2e][emv]") {
  installation inst("e2e-chip-cda", true, issuer());
  inst.start_eftd(emv_on());
  inst.start_pad("P01", "VP-0001", "mc-cda-approve.toml", customer_types_pin(inst));
  auto r = inst.pos("T01", {"sale", "--order", order_no("D"), "--amount", "31.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "debits") == 1);
  CHECK(contains(slurp(inst.dir + "/acquirer.log"), "arqc verified"));
}

TEST_CASE("a card that declines at its first GENERATE AC is declined with a reason and nothing is sent",
          "[e2e][emv]") {
  installation inst("e2e-chip-aac", true, issuer());
  inst.start_eftd(emv_on());
  inst.start_pad("P01", "VP-0001", "chip-card-decline.toml", customer_types_pin(inst));
  const auto order = order_no("E");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "12.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(r.result["reason"].value("code", "") == "card.declined_by_card");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "approved") == 0);
  CHECK(summary_number(sim, "declined") == 0);
}

TEST_CASE("without [emv] a chip card is not read at the chip: the pad is asked for a swipe only",
          "[e2e][emv]") {
  installation inst("e2e-chip-off", true, issuer());
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto r = inst.pos("T01", {"sale", "--order", order_no("F"), "--amount", "10.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("entry_mode", "") == "magstripe");
}
