// Contactless end to end (issue 6): the pad reports a tapped card, eftd's contactless kernel
// runs the whole read as one APDU script while the card is in the field, and each outcome of
// the kernel reaches the POS: online request (approved by the issuer with a verified ARQC),
// approved offline (an fDDA TC, with its advice), declined by the card, try another interface
// (over the contactless limit), end application (no application the terminal supports), the
// CVM-required limit (online PIN, or CDCVM on a phone) and "present the card again".
#include <catch2/catch.hpp>
#include <fstream>

#include "e2e_util.hpp"

using namespace eftd::test;

namespace {

// Contactless on: taps up to 1000.00, a CVM above 50.00, offline possible up to 20.00.
const std::string clss_config =
    "[emv.contactless]\nenabled = true\ntransaction_limit = 100000\ncvm_required_limit = 5000\n"
    "floor_limit = 2000\n";

pos_run tap_and_pay(installation& inst, const std::string& card, const std::string& order,
                    const std::string& amount, std::vector<std::string> pad_args = {},
                    const std::string& config = clss_config) {
  inst.extra_config = config;
  inst.start_eftd(emv_on());
  inst.start_pad("P01", "VP-0001", card, std::move(pad_args));
  return inst.pos("T01", {"sale", "--order", order, "--amount", amount, "--currency", "PLN"});
}

std::string reason_of(const pos_run& r) {
  return r.result.contains("reason") ? r.result["reason"].value("code", "") : std::string();
}

}  // namespace

TEST_CASE("contactless online request: a tapped qVSDC card is approved with its ARQC verified",
          "[e2e][emv][contactless]") {
  installation inst("e2e-clss-online", true, issuer());
  const auto order = order_no("CL");
  auto r = tap_and_pay(inst, "visa-qvsdc-contactless.toml", order, "10.00");
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("entry_mode", "") == "contactless");
  inst.eftd->stop();
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "approved") == 1);
  const auto acq_log = slurp(inst.dir + "/acquirer.log");
  CHECK(contains(acq_log, "arqc verified"));
  CHECK(contains(acq_log, "22=071"));
  auto v = journal_view(inst, order);
  CHECK(has_event(v, "card_tapped", "online_request"));
  CHECK(has_event(v, "card_tapped", "tap "));  // the tap time is journaled
  CHECK_FALSE(contains(slurp(inst.dir + "/eftd.log"), test_pan));
}

TEST_CASE("contactless approved offline: an fDDA TC under the floor limit, its advice goes to the acquirer",
          "[e2e][emv][contactless][acquirer]") {
  installation inst("e2e-clss-offline", true, issuer());
  const auto order = order_no("CF");
  auto r = tap_and_pay(inst, "visa-qvsdc-fdda.toml", order, "15.00");
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(reason_of(r) == "approved.offline");
  auto v = wait_for_order(inst, order, [](const eftd::journal::order_view& v) {
    for (const auto& m : v.messages)
      if (m.mti == "0220" && m.state == "answered") return true;
    return false;
  });
  REQUIRE(v);
  REQUIRE(v->messages.size() == 1);
  CHECK(v->messages.front().state == "answered");
  inst.eftd->stop();
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "debits") == 1);
  const auto acq_log = slurp(inst.dir + "/acquirer.log");
  CHECK(contains(acq_log, "offline advice acknowledged"));
  CHECK(contains(acq_log, "22=071"));
}

TEST_CASE("contactless declined: a card that answers an AAC is declined and nothing goes online",
          "[e2e][emv][contactless]") {
  installation inst("e2e-clss-aac", true, issuer());
  const auto order = order_no("CD");
  auto r = tap_and_pay(inst, "visa-qvsdc-decline.toml", order, "10.00");
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(reason_of(r) == "card.declined_by_card");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  auto v = journal_view(inst, order);
  CHECK(v.messages.empty());
}

TEST_CASE("contactless try another interface: over the contactless limit the customer is asked to insert",
          "[e2e][emv][contactless]") {
  installation inst("e2e-clss-limit", true, issuer());
  const auto order = order_no("CI");
  auto r = tap_and_pay(inst, "visa-qvsdc-contactless.toml", order, "1500.00");
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(reason_of(r) == "card.try_another_interface");
  CHECK(contains(r.result["reason"].value("customer_text", ""), "Insert"));
  CHECK(journal_view(inst, order).messages.empty());
}

TEST_CASE("contactless end application: a card with no application the terminal supports is not read",
          "[e2e][emv][contactless]") {
  installation inst("e2e-clss-noaid", true, issuer());
  const auto order = order_no("CE");
  // Only Mastercard is accepted contactless here; the card is a Visa.
  auto r =
      tap_and_pay(inst, "visa-qvsdc-contactless.toml", order, "10.00", {},
                  clss_config + "\n[[emv.contactless.aid]]\naid = \"A0000000041010\"\nkernel = \"mchip\"\n");
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(reason_of(r) == "card.unreadable");
  auto v = journal_view(inst, order);
  CHECK(v.messages.empty());
  CHECK(has_event(v, "card_tapped", "end_application"));
}

TEST_CASE("contactless over the CVM-required limit: online PIN on the pad, or CDCVM on the phone",
          "[e2e][emv][contactless]") {
  SECTION("a card without CDCVM: the customer enters the PIN, which goes online") {
    installation inst("e2e-clss-pin", true, issuer());
    const auto order = order_no("CP");
    auto r = tap_and_pay(inst, "visa-qvsdc-contactless.toml", order, "60.00", customer_types_pin(inst));
    REQUIRE(r.exit_code == 0);
    CHECK(r.result.value("outcome", "") == "approved");
    CHECK(contains(slurp(inst.dir + "/pos.log"), "PIN"));
    inst.eftd->stop();
    stop_and_summary(*inst.acquirer);
    // Field 52 was sent (the simulator checks the PIN under its ZPK).
    CHECK(contains(slurp(inst.dir + "/acquirer.log"), "52=<"));
    CHECK(has_event(journal_view(inst, order), "card_tapped", "CVM online_pin"));
  }
  SECTION("a phone that verified the cardholder itself (CDCVM): no PIN") {
    installation inst("e2e-clss-cdcvm", true, issuer());
    const auto order = order_no("CC");
    auto r = tap_and_pay(inst, "visa-qvsdc-cdcvm.toml", order, "60.00");
    REQUIRE(r.exit_code == 0);
    CHECK(r.result.value("outcome", "") == "approved");
    CHECK(has_event(journal_view(inst, order), "card_tapped", "CVM cdcvm_done"));
    inst.eftd->stop();
    stop_and_summary(*inst.acquirer);
    CHECK_FALSE(contains(slurp(inst.dir + "/acquirer.log"), "52=<"));
  }
}

TEST_CASE(
    "contactless present the card again: a PDOL the pad's cache did not expect costs one more tap, once",
    "[e2e][emv][contactless]") {
  installation inst("e2e-clss-again", true, issuer());
  const auto first = order_no("CA");
  auto r = tap_and_pay(inst, "visa-qvsdc-newpdol.toml", first, "10.00");
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("entry_mode", "") == "contactless");
  // The cache learnt the card's PDOL: the next sale on the same pad takes a single tap.
  const auto second = order_no("CA");
  r = inst.pos("T01", {"sale", "--order", second, "--amount", "11.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  inst.eftd->stop();
  const auto log = slurp(inst.dir + "/eftd.log");
  std::size_t agains = 0;
  for (auto at = log.find("contactless tap again"); at != std::string::npos;
       at = log.find("contactless tap again", at + 1))
    ++agains;
  CHECK(agains == 1);
  CHECK(contains(log, "emv.clss_pdol_changed"));
  const auto sim = stop_and_summary(*inst.acquirer);
  CHECK(summary_number(sim, "approved") == 2);
  CHECK(has_event(journal_view(inst, first), "card_tapped", "online_request"));
  CHECK_FALSE(contains(log, test_pan));
}
