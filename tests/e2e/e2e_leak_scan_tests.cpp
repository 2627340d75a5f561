// R10: a day of mixed traffic with sentinel card data, then a scan of everything eftd wrote or
// printed for it: the journal files (DB, WAL), eftd's log, the store-and-forward queue (in the
// journal), a backup copy, reports exported as CSV and JSON, the POS results and eftctl's
// outputs. Sentinels: every card's PAN (ASCII digits and packed BCD), its track 2 (with '=' and
// with the 'D' separator of tag 57) and the part after the separator, and the customer's PIN
// (12 digits, so that it cannot appear by chance). Hits are reported by file and kind only.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;
namespace fs = std::filesystem;

namespace {

const std::string sentinel_pin = "739146285037";

struct sentinel {
  std::string kind;   // what it stands for, printed on a hit
  std::string bytes;  // what must not appear
};

std::string bcd_of(const std::string& digits) {
  std::string out;
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
    out.push_back(static_cast<char>(((digits[i] - '0') << 4) | (digits[i + 1] - '0')));
  return out;
}

// The sentinels of one card profile: its track 2 from the TOML file.
std::vector<sentinel> card_sentinels(const std::string& card_file) {
  const auto text = slurp(source_path("pinpad-firmware-shim/cards/" + card_file));
  std::smatch m;
  REQUIRE(std::regex_search(text, m, std::regex("track2 = \"([0-9]{12,19})=([0-9]+)\"")));
  const std::string pan = m[1], rest = m[2];
  std::vector<sentinel> out{{card_file + " PAN", pan},
                            {card_file + " track 2", pan + "=" + rest},
                            {card_file + " track 2 (D separator)", pan + "D" + rest},
                            {card_file + " track 2 discretionary data", rest}};
  if (pan.size() % 2 == 0) out.push_back({card_file + " PAN (BCD)", bcd_of(pan)});
  return out;
}

// A pad script whose customer types `digits` and enter at each of `times` PIN entries (a
// script's events are used up in order).
std::string pin_script(installation& inst, const std::string& name, const std::string& digits, int times) {
  const std::string path = inst.dir + "/" + name + ".toml";
  std::ofstream out(path);
  out << "[input]\nevents = [";
  for (int i = 0; i < times; ++i) {
    for (char c : digits) out << '"' << c << "\", ";
    out << "\"enter\"" << (i + 1 < times ? ", " : "");
  }
  out << "]\n";
  return path;
}

// Runs eftctl to completion; its stdout.
std::string eftctl(installation& inst, std::vector<std::string> args) {
  process p(bin_path("eftctl"), std::move(args), inst.dir + "/eftctl-" + std::to_string(::getpid()) + ".log");
  std::string out;
  while (auto line = p.read_line(30s)) out += *line + "\n";
  CHECK(p.wait_exit(30s).value_or(-1) == 0);
  return out;
}

}  // namespace

TEST_CASE("R10: no card number, track data or PIN in anything eftd writes or prints after a mixed day",
          "[e2e][security]") {
  installation inst(
      "e2e-leak-scan", true,
      {"--pin", sentinel_pin, "--issuer-keys", source_path("acquirers/sim/issuer-keys-test.toml")});
  inst.start_eftd({"--set", "admin.socket=" + inst.dir + "/admin.sock", "--set", "emv.enabled=true", "--set",
                   "emv.capk_file=" + source_path("pinpad-firmware-shim/cards/keys/capk-eftd-test.toml")});
  std::string outputs;  // everything the POS and eftctl printed
  auto sale = [&](const std::string& tag, const std::string& amount, const std::string& want) {
    const auto order = order_no(tag);
    auto r = inst.pos("T01", {"sale", "--order", order, "--amount", amount, "--currency", "PLN"});
    for (const auto& l : r.lines) outputs += l + "\n";
    CHECK(r.result.value("outcome", "") == want);
    return order;
  };

  // Magnetic stripe with online PIN (the sentinel PIN, checked by the simulator), a refund and
  // a cancel.
  inst.start_pad("P01", "VP-0001", "mc-pin.toml", {"--script", pin_script(inst, "pin", sentinel_pin, 4)});
  const auto a = sale("LA", "12.00", "approved");
  sale("LB", "8.00", "approved");
  const auto c = sale("LC", "5.00", "approved");
  {
    auto r = inst.pos("T01", {"refund", "--order", order_no("LR"), "--amount", "2.00", "--currency", "PLN",
                              "--original", a});
    for (const auto& l : r.lines) outputs += l + "\n";
    CHECK(r.result.value("outcome", "") == "approved");
  }
  {
    auto r = inst.pos("T01", {"cancel", "--order", c});
    for (const auto& l : r.lines) outputs += l + "\n";
    CHECK(r.result.value("outcome", "") == "approved");
  }
  inst.stop_pad();
  // A declined magnetic-stripe card.
  inst.start_pad("P01", "VP-0001", "visa-decline.toml");
  sale("LD", "9.00", "declined");
  inst.stop_pad();
  // A chip card through eftd's kernel (offline PIN on the pad, ARQC/ARPC).
  inst.start_pad("P01", "VP-0001", "visa-dda-approve.toml",
                 {"--script", pin_script(inst, "chip-pin", "1234", 1)});
  sale("LE", "33.00", "approved");
  inst.stop_pad();

  // End of day, a backup and the back-office reports.
  outputs += eftctl(inst, {"settlement", "close", "--socket", inst.dir + "/admin.sock", "--json"});
  outputs += eftctl(inst, {"backup", "--db", inst.db(), "--to", inst.dir + "/backup.db", "--socket",
                           inst.dir + "/admin.sock"});
  for (const char* f : {"csv", "json", "table"})
    outputs += eftctl(inst, {"report", "transactions", "--db", inst.db(), "--format", f});
  outputs += eftctl(inst, {"report", "settlement", "--db", inst.db(), "--format", "json"});
  outputs +=
      eftctl(inst, {"journal", "show", "--db", inst.db(), "--till", "T01", "--order", a, "--format", "json"});
  inst.eftd->stop();

  std::vector<sentinel> sentinels{{"PIN", sentinel_pin}, {"PIN (BCD)", bcd_of(sentinel_pin)}};
  for (const char* card : {"mc-pin.toml", "visa-decline.toml", "visa-dda-approve.toml"}) {
    auto s = card_sentinels(card);
    sentinels.insert(sentinels.end(), s.begin(), s.end());
  }
  // eftd's files: everything in the installation but the simulators' own logs (they stand for
  // the card and the issuer), the pad scripts and the development key material.
  std::vector<std::pair<std::string, std::string>> scanned{{"POS and eftctl output", outputs}};
  for (const auto& e : fs::recursive_directory_iterator(inst.dir)) {
    if (!e.is_regular_file()) continue;
    const auto rel = fs::relative(e.path(), inst.dir).string();
    const auto name = e.path().filename().string();
    if (rel.starts_with("keys") || name.starts_with("acquirer") || name.starts_with("pad") ||
        name.ends_with(".toml") || name.ends_with(".pem") || name.ends_with(".crt") || name.ends_with(".key"))
      continue;
    scanned.emplace_back(rel, slurp(e.path().string()));
  }
  bool saw_db = false, saw_log = false, saw_backup = false;
  for (const auto& [what, content] : scanned) {
    saw_db |= what == "eftd.db";
    saw_log |= what == "eftd.log";
    saw_backup |= what == "backup.db";
    for (const auto& s : sentinels) {
      INFO(what << ": " << s.kind);
      CHECK(content.find(s.bytes) == std::string::npos);
    }
  }
  CHECK(saw_db);
  CHECK(saw_log);
  CHECK(saw_backup);
  CHECK(scanned.size() >= 4);
  // The scan can see what it looks for: the sales really happened and are in the output, and
  // the same matcher finds the sentinels where they do belong (the card profile).
  CHECK(contains(outputs, "541333******0011"));
  const auto profile = slurp(source_path("pinpad-firmware-shim/cards/mc-pin.toml"));
  for (const auto& s : card_sentinels("mc-pin.toml"))
    if (s.kind.find("D separator") == std::string::npos && s.kind.find("BCD") == std::string::npos)
      CHECK(profile.find(s.bytes) != std::string::npos);
}
