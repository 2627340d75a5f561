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

TEST_CASE(
    "a card that asks for a signature: the cashier confirms it, or refuses it and the approval is reversed",
    "[e2e][emv]") {
  installation inst("e2e-chip-signature", true, issuer());
  inst.start_eftd(emv_on());
  inst.start_pad("P01", "VP-0001", "visa-chip-signature.toml");
  const auto accepted = order_no("S");
  auto r = inst.pos(
      "T01", {"--answer", "yes", "sale", "--order", accepted, "--amount", "18.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("approved_amount", 0) == 1800);
  // The result's EMV object and the receipt: the CVM is the signature, and the merchant copy
  // has a line to sign on; the final cryptogram is the card's TC after the issuer approved.
  const auto emv = r.result.value("emv", nlohmann::json::object());
  CHECK(emv.value("CVM", "") == "signature");
  CHECK(emv.value("AID", "") == "A0000000031010");
  CHECK(emv.value("app_label", "") == "VISA CREDIT");
  CHECK(emv.value("AC_type", "") == "TC");
  CHECK(emv.value("ARC", "") == "00");
  const auto merchant = r.result["receipt"]["merchant"].get<std::vector<std::string>>();
  const auto customer = r.result["receipt"]["customer"].get<std::vector<std::string>>();
  CHECK(any_line_contains(merchant, "Signature:"));
  CHECK_FALSE(any_line_contains(customer, "Signature:"));
  CHECK(any_line_contains(customer, "A0000000031010"));
  CHECK(any_line_contains(customer, "VISA CREDIT"));

  const auto refused = order_no("S");
  r = inst.pos("T01",
               {"--answer", "no", "sale", "--order", refused, "--amount", "27.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(r.result["reason"].value("code", "") == "cvm.signature_refused");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), refused));
  CHECK(r.result.value("approved_amount", 0) == 0);
  // The refused sale is reversed in the background: the acquirer keeps only the accepted one.
  auto v = wait_for_order(inst, refused,
                          [](const eftd::journal::order_view& v) { return v.order.state == "reversed"; });
  REQUIRE(v.has_value());
  CHECK(v->order.state == "reversed");
  CHECK(has_event(*v, "signature_checked", "refused"));
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "reversed") == 1);
  CHECK(summary_number(sim, "approved_amount") == 1800);
  inst.eftd->stop();
  // A status query rebuilds the same EMV receipt data from the journal.
  auto kept = journal_view(inst, accepted);
  bool stored = false;
  for (const auto& op : kept.operations)
    if (op.emv_data && contains(*op.emv_data, "\"cvm\":\"signature\"")) stored = true;
  CHECK(stored);
  CHECK_FALSE(contains(slurp(inst.dir + "/eftd.log"), test_pan));
}

TEST_CASE(
    "a chip without a mutual application falls back to a swipe of the same card, within the fallback rule",
    "[e2e][emv]") {
  installation inst("e2e-chip-fallback", true, issuer());
  // Fallback is allowed up to 10.00 at this till.
  auto args = emv_on();
  args.insert(args.end(), {"--set", "emv.fallback_max_amount=1000"});
  inst.start_eftd(args);
  inst.start_pad("P01", "VP-0001", "chip-no-mutual-aid.toml");
  const auto swiped = order_no("FB");
  auto r = inst.pos("T01", {"sale", "--order", swiped, "--amount", "9.50", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("entry_mode", "") == "fallback");
  // No EMV data on a stripe read.
  CHECK(r.result.value("emv", nlohmann::json::object()).empty());

  // Above the rule's amount the chip error ends the sale: nothing is swiped or sent.
  const auto refused = order_no("FB");
  r = inst.pos("T01", {"sale", "--order", refused, "--amount", "25.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result["reason"].value("code", "") == "card.chip_error");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), refused));
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "requests") == 1);
  CHECK(summary_number(sim, "approved") == 1);
  inst.eftd->stop();
  auto v = journal_view(inst, swiped);
  CHECK(has_event(v, "chip_fallback", "the customer swipes the card"));
  bool fallback_mode = false;
  for (const auto& op : v.operations)
    if (op.entry_mode == "fallback") fallback_mode = true;
  CHECK(fallback_mode);
  // The request went out with a fallback entry mode (field 22 = 80x).
  CHECK(contains(slurp(inst.dir + "/acquirer.log"), " 22=802"));
  CHECK_FALSE(contains(slurp(inst.dir + "/eftd.log"), test_pan));
}

TEST_CASE("with refuse_chip_swipes a chip card's stripe swiped without a chip failure is refused: insert it",
          "[e2e][emv]") {
  installation inst("e2e-chip-swipe-refused", true, issuer());
  auto args = emv_on();
  args.insert(args.end(), {"--set", "emv.refuse_chip_swipes=true"});
  inst.start_eftd(args);
  // visa-approve.toml is a stripe with service code 201 (a chip card's); mc-pin.toml has 120.
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("SW");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "12.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(r.result["reason"].value("code", "") == "card.use_chip");
  CHECK(r.result["reason"].value("customer_text", "").starts_with("Insert card"));
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "requests") == 0);
}
