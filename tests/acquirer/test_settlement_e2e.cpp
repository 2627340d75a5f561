// End to end: sales through eftd to the real acquirer simulator, the simulator stopped (it
// writes its settlement file), then `eftctl settlement match` of that file against eftd's
// journal, and of eftctl's own export: everything matches on terminal id + RRN + auth code +
// amount + date.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

struct run_result {
  int exit_code = -1;
  std::string out;
};

run_result eftctl(std::vector<std::string> args, const std::string& log) {
  process p(bin_path("eftctl"), std::move(args), log);
  run_result r;
  while (auto line = p.read_line(30s)) r.out += *line + "\n";
  r.exit_code = p.wait_exit(30s).value_or(-1);
  return r;
}

std::string header_date_iso(const std::string& file) {
  const auto text = slurp(file);
  // Fixed-width header: the business date in columns 29-36.
  REQUIRE(text.size() > 36);
  REQUIRE(text[0] == 'H');
  return text.substr(28, 4) + "-" + text.substr(32, 2) + "-" + text.substr(34, 2);
}

}  // namespace

TEST_CASE("settlement e2e: the sim's file matches eftd's journal, and so does eftctl's export",
          "[settlement][e2e]") {
  const std::string out_dir = make_temp_dir("settle-e2e");
  const std::string sim_file = out_dir + "/sim-settlement.txt";
  installation inst("e2e-settle", true, {"--settlement-file", sim_file});
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const std::string tag = std::to_string(::getpid() % 10000);
  for (auto [order, amount] : std::vector<std::pair<std::string, std::string>>{
           {"S1-" + tag, "125.00"}, {"S2-" + tag, "40.00"}, {"S3-" + tag, "20.51"}}) {  // 20.51: declined
    auto r = inst.pos("T01", {"sale", "--order", order, "--amount", amount, "--currency", "PLN"});
    REQUIRE(r.exit_code == 0);
  }
  inst.stop_acquirer();  // SIGTERM: the sim writes its file before it exits
  REQUIRE(std::filesystem::exists(sim_file));

  auto m = eftctl({"settlement", "match", "--db", inst.db(), "--file", sim_file, "--layout", "fixed-width",
                   "--acquirer", "sim"},
                  out_dir + "/match.log");
  INFO(m.out);
  CHECK(m.exit_code == 0);
  CHECK(m.out.find("matched 2, only in file 0, only in journal 0, differences 0: ALL MATCHED") !=
        std::string::npos);

  const auto date = header_date_iso(sim_file);
  const std::string exported = out_dir + "/eftd-settlement.csv";
  auto e = eftctl({"settlement", "export", "--db", inst.db(), "--acquirer", "sim", "--date", date, "--layout",
                   "csv", "--out", exported},
                  out_dir + "/export.log");
  INFO(e.out);
  REQUIRE(e.exit_code == 0);
  auto again = eftctl(
      {"settlement", "match", "--db", inst.db(), "--file", exported, "--layout", "csv", "--format", "json"},
      out_dir + "/match2.log");
  INFO(again.out);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("\"all_matched\": true") != std::string::npos);

  // Another business date: the journal has none of the file's transactions -> exit 1.
  auto other = eftctl({"settlement", "match", "--db", inst.db(), "--file", exported, "--layout", "csv",
                       "--date", "2000-01-01"},
                      out_dir + "/match3.log");
  INFO(other.out);
  CHECK(other.exit_code == 1);
  CHECK(other.out.find("matched 0, only in file 2, only in journal 0, differences 0: DIFFERENCES") !=
        std::string::npos);

  // The file never carries the clear PAN.
  CHECK(slurp(sim_file).find("4761739001010119") == std::string::npos);
  CHECK(slurp(exported).find("4761739001010119") == std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(out_dir, ec);
}
