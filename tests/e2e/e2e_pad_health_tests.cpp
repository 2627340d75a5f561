// Pad health: eftd pings its pads and reads their DUKPT counters; `eftctl pads` shows each pad's
// state, round trip and counters, warning before a key runs out. A pad that stops answering is
// marked unreachable and dropped, and never holds up another pad's sale.
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

// Fast health checks for tests: pings every 100 ms, rows rewritten every 200 ms.
const char* const fast_health = R"(
[timeouts]
pad_command_ms = 400

[pad_health]
ping_interval_ms = 100
write_interval_ms = 200
missed_pings_to_drop = 3
)";

struct pads_output {
  int exit_code = -1;
  std::string text;  // stdout
  nlohmann::json json;
};

pads_output eftctl_pads(installation& inst, bool json) {
  std::vector<std::string> args{"pads", "--db", inst.db()};
  if (json) args.insert(args.end(), {"--format", "json"});
  process p(bin_path("eftctl"), args, inst.dir + "/eftctl-pads.log");
  pads_output out;
  while (auto line = p.read_line(10s)) out.text += *line + "\n";
  out.exit_code = p.wait_exit(10s).value_or(-1);
  if (json) out.json = nlohmann::json::parse(out.text, nullptr, false);
  return out;
}

// Runs `eftctl pads` (a separate process reading the journal) until `pred` holds for the row of
// `pad_id`, or the deadline passes; between runs it waits for the next journal write (inotify on
// the journal's directory: the WAL file changes on every commit). Returns the row, or null.
template <class Pred>
nlohmann::json wait_for_pad(installation& inst, const std::string& pad_id, Pred pred,
                            std::chrono::seconds limit = 15s) {
  nlohmann::json last, found;
  eftd::test::wait_for_change_in(inst.dir, limit, [&] {
    auto out = eftctl_pads(inst, true);
    if (out.exit_code == 0 && out.json.is_array())
      for (const auto& row : out.json)
        if (row.value("pad_id", "") == pad_id) {
          last = row;
          if (pred(row)) found = row;
        }
    return found.is_object();
  });
  if (!found.is_object()) INFO("last row: " << last.dump());
  return found;
}

}  // namespace

TEST_CASE("eftctl pads shows a pad online with its ping round trip and DUKPT counter") {
  installation inst("e2e-pad-health");
  inst.extra_config = fast_health;
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto r = inst.pos("T01", {"sale", "--order", order_no("H"), "--amount", "10.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  // After the sale the pad's AES key has used counter 1; the row shows it with the RTT.
  auto row = wait_for_pad(inst, "P01", [](const nlohmann::json& j) {
    return j.value("state", "") == "online" && j["rtt_ms"].is_number() && j["dukpt"].is_array() &&
           !j["dukpt"].empty() && j["dukpt"][0].value("counter", 0) >= 1;
  });
  REQUIRE(row.is_object());
  CHECK(row.value("serial", "") == "VP-0001");
  CHECK(row["dukpt"][0].value("ksn", "").starts_with("AE5D0001"));
  CHECK_FALSE(row["dukpt"][0].value("warning", true));
  auto table = eftctl_pads(inst, false);
  CHECK(table.exit_code == 0);
  CHECK(contains(table.text, "P01"));
  CHECK(contains(table.text, "online"));
  // Stopping the pad: the row turns offline.
  inst.stop_pad();
  auto gone =
      wait_for_pad(inst, "P01", [](const nlohmann::json& j) { return j.value("state", "") == "offline"; });
  CHECK(gone.is_object());
}

TEST_CASE("a pad near the end of its DUKPT counters is flagged before it runs out") {
  installation inst("e2e-pad-dukpt-warn");
  inst.extra_config = fast_health;
  inst.start_eftd();
  // P02 (TDES key): its counter state says counter 0x1FF000 was used last, a few hundred left.
  const std::string state = inst.dir + "/p02.state";
  std::ofstream(state) << "tdes = \"FFFF0D000100005FF000\"\n";
  inst.start_pad("P02", "VP-0002", "visa-approve.toml", {"--dukpt-state", state});
  auto row = wait_for_pad(inst, "P02", [](const nlohmann::json& j) {
    return j["dukpt"].is_array() && !j["dukpt"].empty() && j["dukpt"][0].value("warning", false);
  });
  REQUIRE(row.is_object());
  CHECK(row["dukpt"][0].value("left", 999999) < 10000);
  auto table = eftctl_pads(inst, false);
  CHECK(contains(table.text, "WARNING"));
  // The pad still works until the counters are gone: a sale on its till is approved.
  auto r = inst.pos("T02", {"sale", "--order", order_no("W"), "--amount", "10.00", "--currency", "PLN"});
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(contains(slurp(inst.dir + "/eftd.log"), "transactions left"));
}

TEST_CASE("an unreachable pad is dropped and never holds up the sale of a working pad") {
  installation inst("e2e-pad-unreachable");
  inst.extra_config = fast_health;
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  // P02 completes the handshake, then never answers anything (a hung pad).
  scripted_pad dead(inst.pad_port, "P02", "VP-0002");
  auto r = inst.pos("T01", {"sale", "--order", order_no("U"), "--amount", "10.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  // eftd gives up on P02 after missed pings and closes its connection.
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    auto f = dead.next(1s);
    if (!f) closed = dead.at_eof();
  }
  CHECK(closed);
  auto row = wait_for_pad(inst, "P02", [](const nlohmann::json& j) {
    return j.value("state", "") == "offline" && j.value("missed_pings", 0) >= 3;
  });
  CHECK(row.is_object());
  CHECK(contains(slurp(inst.dir + "/eftd.log"), "pad P02: unreachable"));
  // A sale on the dead pad's till fails at once with a clear reason, not after a long wait.
  auto t2 = inst.pos("T02", {"sale", "--order", order_no("U2"), "--amount", "10.00", "--currency", "PLN"});
  CHECK(t2.result.value("outcome", "") == "failed");
  CHECK(t2.result["reason"].value("code", "") == "pad.unavailable");
}
