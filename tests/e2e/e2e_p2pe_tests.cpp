// Card data under DUKPT end to end (P2PE) and online PIN, through the real processes: the
// virtual pad seals the track under its DUKPT key (tools/dev-keys loaded it as a TR-31 block),
// eftd's key-handling module opens it, asks for the PIN, translates the pad's PIN block to the
// acquirer's zone PIN key, and the acquirer simulator verifies the PIN (wrong: 55).
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

const std::string pin_pan = "5413330089020011";  // mc-pin.toml (public Mastercard test PAN)

// A pad script whose customer types `keys` (e.g. "1234") and enter when asked.
std::string pin_script(installation& inst, const std::string& name, std::vector<std::string> events) {
  std::string path = inst.dir + "/" + name + ".toml";
  std::ofstream out(path);
  out << "[input]\nevents = [";
  for (std::size_t i = 0; i < events.size(); ++i) out << (i ? ", " : "") << '"' << events[i] << '"';
  out << "]\n";
  return path;
}

// No clear card data in eftd's journal files or its log.
void check_no_clear_card_data(installation& inst) {
  for (const auto& file : {inst.db(), inst.db() + "-wal", inst.dir + "/eftd.log"}) {
    const auto text = slurp(file);
    CHECK_FALSE(contains(text, pin_pan));
    CHECK_FALSE(contains(text, test_pan));
  }
}

}  // namespace

TEST_CASE("an online PIN sale: sealed track, PIN under AES DUKPT, translated to the ZPK, approved") {
  installation inst("e2e-pin-aes");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "mc-pin.toml",
                 {"--script", pin_script(inst, "pin", {"1", "2", "3", "4", "enter"})});
  auto order = order_no("PIN");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "42.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("masked_pan", "") == "541333******0011");
  // The pad was asked for the PIN (its display), then showed the approval.
  CHECK(inst.pad->wait_for_prefix("DISPLAY 42.00 PLN | Enter PIN", 10s).has_value());
  CHECK(inst.pad->wait_for_prefix("DISPLAY Approved - order " + order, 10s).has_value());
  inst.eftd->stop();
  auto view = journal_view(inst, order);
  bool pin_event = false;
  for (const auto& e : view.events)
    if (e.kind == "pin_entered") pin_event = true;
  CHECK(pin_event);
  check_no_clear_card_data(inst);
}

TEST_CASE("a wrong PIN is declined by the acquirer with 55 and the reason quotes the order") {
  installation inst("e2e-pin-wrong");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "mc-pin.toml",
                 {"--script", pin_script(inst, "pin", {"9", "9", "9", "9", "enter"})});
  auto order = order_no("PINW");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "42.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(r.result["reason"].value("code", "") == "issuer.incorrect_pin");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
}

TEST_CASE("TDES DUKPT pad: ISO 0 PIN block, translated and approved") {
  installation inst("e2e-pin-tdes");
  inst.start_eftd();
  // Till T02 has pad P02, whose key tools/dev-keys made from the TDES BDK.
  inst.start_pad("P02", "VP-0002", "mc-pin.toml",
                 {"--script", pin_script(inst, "pin", {"1", "2", "3", "4", "enter"})});
  auto order = order_no("PINT");
  auto r = inst.pos("T02", {"sale", "--order", order, "--amount", "42.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  inst.eftd->stop();
  check_no_clear_card_data(inst);
}

TEST_CASE("PIN entry cancelled on the pad ends the sale cancelled with nothing sent to the acquirer") {
  installation inst("e2e-pin-cancel");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "mc-pin.toml", {"--script", pin_script(inst, "pin", {"1", "cancel"})});
  auto order = order_no("PINC");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "42.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "cancelled");
  CHECK(r.result["reason"].value("code", "") == "pin.cancelled");
  inst.eftd->stop();
  auto view = journal_view(inst, order);
  CHECK(view.order.state == "cancelled");
  CHECK(view.messages.empty());
}

TEST_CASE("a pad that disconnects during PIN entry gives the POS a clear error and the order ends") {
  installation inst("e2e-pin-vanish");
  inst.start_eftd();
  // No keys in the script: the pad waits in get_pin until it is killed.
  inst.start_pad("P01", "VP-0001", "mc-pin.toml");
  auto order = order_no("PINV");
  process pos(bin_path("eft-pos-sim"),
              {"--port", std::to_string(inst.pos_port), "--till", "T01", "--json", "sale", "--order", order,
               "--amount", "42.00", "--currency", "PLN"},
              inst.dir + "/pos.log");
  REQUIRE(inst.pad->wait_for_prefix("DISPLAY 42.00 PLN | Enter PIN", 20s).has_value());
  inst.pad->signal(SIGKILL);
  nlohmann::json final_result;
  while (auto line = pos.read_line(30s)) {
    auto j = nlohmann::json::parse(*line, nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == "result") final_result = j;
  }
  REQUIRE(final_result.is_object());
  CHECK(final_result.value("outcome", "") == "failed");
  CHECK(final_result["reason"].value("code", "") == "pad.disconnected");
  CHECK(contains(final_result["reason"].value("cashier_text", ""), order));
  inst.eftd->stop();
  auto view = journal_view(inst, order);
  CHECK(view.order.state == "failed");
  CHECK(view.messages.empty());
}

TEST_CASE("a pad that sends the track in clear is refused and nothing reaches the acquirer") {
  installation inst("e2e-p2pe-clear");
  inst.start_eftd();
  // The pad is started without its DUKPT key: the virtual pad sends track 2 in clear.
  inst.start_pad("P01", "VP-0001", "visa-approve.toml", {"--no-dukpt"});
  auto order = order_no("CLR");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "10.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result["reason"].value("code", "") == "card.unprotected");
  inst.eftd->stop();
  auto view = journal_view(inst, order);
  CHECK(view.messages.empty());
  check_no_clear_card_data(inst);
}
