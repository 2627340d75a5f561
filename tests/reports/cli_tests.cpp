// The real `eftctl report ...` binary on a journal written by the fixture: CSV on stdout and in
// --output files, JSON that parses, usage errors. Label: reports.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process.hpp"
#include "report_fixture.hpp"

using namespace report_test;
using namespace std::chrono_literals;

namespace {

struct run_result {
  int status = -1;
  std::vector<std::string> lines;
  std::string text;  // lines joined with '\n' (CR kept: CSV lines end in CRLF)
};

run_result run(const std::vector<std::string>& args) {
  eftd::test::process p(eftd::test::bin_path("eftctl"), args);
  run_result r;
  while (auto line = p.read_line(20s)) {
    r.lines.push_back(*line);
    r.text += *line + "\n";
  }
  auto st = p.wait_exit(20s);
  REQUIRE(st);
  r.status = *st;
  return r;
}

// Runs eftctl with stdin from a file, through /bin/sh (process() does not redirect stdin).
run_result run_with_stdin(const std::vector<std::string>& args, const std::string& stdin_file) {
  std::vector<std::string> sh{"-c", "f=\"$1\"; shift; exec \"$@\" < \"$f\"", "sh", stdin_file,
                              eftd::test::bin_path("eftctl")};
  sh.insert(sh.end(), args.begin(), args.end());
  eftd::test::process p("/bin/sh", sh);
  run_result r;
  while (auto line = p.read_line(20s)) {
    r.lines.push_back(*line);
    r.text += *line + "\n";
  }
  auto st = p.wait_exit(20s);
  REQUIRE(st);
  r.status = *st;
  return r;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("eftctl report transactions prints the filtered orders as CSV") {
  temp_dir dir;
  build_journal(dir);
  const std::string db = (dir.path() / "journal.db").string();
  auto r =
      run({"report", "transactions", "--db", db, "--till", "T01", "--date", "2026-11-21", "--format", "csv"});
  CHECK(r.status == 0);
  REQUIRE(r.lines.size() == 3);
  CHECK(r.lines[0].rfind("created,business_date,merchant,store,till,order_no,", 0) == 0);
  CHECK(r.lines[1].find(",T01,1001,sale,10.00,PLN,approved,approved,visa,chip,") != std::string::npos);
  CHECK(r.lines[2].find(",T01,1003,refund,7.00,PLN,approved,") != std::string::npos);
  CHECK(r.lines[1].back() == '\r');  // RFC 4180 line ends

  // Nothing matches: just the header.
  auto none = run({"report", "transactions", "--db", db, "--response-code", "05", "--format", "csv"});
  CHECK(none.status == 0);
  CHECK(none.lines.size() == 1);

  // Sorted by amount, descending, second page of two.
  auto paged = run({"report", "transactions", "--db", db, "--sort", "amount", "--desc", "--limit", "2",
                    "--offset", "2", "--format", "json"});
  CHECK(paged.status == 0);
  auto j = nlohmann::json::parse(paged.text);
  CHECK(j["total"] == 6);
  REQUIRE(j["rows"].size() == 2);
  CHECK(j["rows"][0]["order_no"] == "1006");
  CHECK(j["rows"][1]["order_no"] == "1001");

  // A batch by number.
  auto batch = run({"report", "transactions", "--db", db, "--batch", "acq1/TERM0001/1", "--format", "csv"});
  CHECK(batch.status == 0);
  CHECK(batch.lines.size() == 3);
}

TEST_CASE("eftctl report transactions finds a card by its full PAN read from stdin") {
  temp_dir dir;
  build_journal(dir);
  const std::string db = (dir.path() / "journal.db").string();
  const auto pan_file = dir.path() / "pan.txt";
  {
    std::ofstream out(pan_file);
    out << pan_b << "\n";
  }
  auto r = run_with_stdin({"report", "transactions", "--db", db, "--pan-stdin", "--keys",
                           (dir.path() / "journal.keys").string(), "--format", "csv"},
                          pan_file.string());
  CHECK(r.status == 0);
  REQUIRE(r.lines.size() == 2);
  CHECK(r.lines[1].find(",1002,") != std::string::npos);
  // The PAN itself never comes out: only the masked form's last digits.
  CHECK(r.text.find(std::string(pan_b)) == std::string::npos);
  CHECK(r.text.find(std::string(pan_b.substr(6, 6))) == std::string::npos);
}

TEST_CASE("eftctl report writes settlement and cases and tills and stats to --output files") {
  temp_dir dir;
  build_journal(dir);
  const std::string db = (dir.path() / "journal.db").string();
  const auto out = dir.path() / "settlement.csv";
  auto r = run({"report", "settlement", "--db", db, "--format", "csv", "--output", out.string()});
  CHECK(r.status == 0);
  CHECK(r.lines.empty());
  const auto csv = read_file(out);
  CHECK(csv.rfind("business_date,acquirer,terminal_id,batch_no,status,", 0) == 0);
  CHECK(csv.find("\r\n2026-11-21,acq1,TERM0001,1,out_of_balance,95,") != std::string::npos);
  CHECK(csv.find("\r\n2026-11-20,acq2,TERM0009,1,closed,") != std::string::npos);

  auto cases = run({"report", "cases", "--db", db, "--format", "json"});
  CHECK(cases.status == 0);
  auto j = nlohmann::json::parse(cases.text);
  std::vector<std::string> keys;
  for (const auto& c : j) keys.push_back(c["key"]);
  CHECK(std::find(keys.begin(), keys.end(), "batch_out_of_balance:B1") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "reversal_parked:R1001") != keys.end());

  auto tills = run({"report", "tills", "--db", db, "--date", "2026-11-21", "--format", "csv"});
  CHECK(tills.status == 0);
  CHECK(tills.lines.size() == 4);
  auto stats = run({"report", "stats", "--db", db, "--date", "2026-11-21", "--format", "csv"});
  CHECK(stats.status == 0);
  CHECK(stats.text.find("hour,2026-11-21T10:00:00.000Z,,,2,1,1,0,50.0,1000") != std::string::npos);
  auto pads = run({"report", "pads", "--db", db});
  CHECK(pads.status == 0);
  CHECK(pads.text.find("unreachable") != std::string::npos);
  auto show = run({"report", "show", "--db", db, "--till", "T02", "--order", "1002", "--format", "json"});
  CHECK(show.status == 0);
  CHECK(nlohmann::json::parse(show.text)["order_no"] == "1002");
}

TEST_CASE("eftctl report refuses bad filters with the usage exit code") {
  temp_dir dir;
  build_journal(dir);
  const std::string db = (dir.path() / "journal.db").string();
  CHECK(run({"report", "transactions", "--db", db, "--date", "21/11/2026"}).status == 2);
  CHECK(run({"report", "transactions", "--db", db, "--last4", "12"}).status == 2);
  CHECK(run({"report", "transactions", "--db", db, "--sort", "amount_minor;--"}).status == 2);
  CHECK(run({"report", "transactions", "--db", db, "--pad", "P1"}).status == 2);  // needs --config
  CHECK(run({"report", "transactions", "--db", (dir.path() / "none.db").string()}).status == 3);
  // `eftctl journal` still works next to `report`.
  CHECK(run({"journal", "orders", "--db", db, "--format", "csv"}).status == 0);
}

TEST_CASE("eftctl report transactions finds a pad's orders through the tills of the config") {
  temp_dir dir;
  build_journal(dir);
  const std::string db = (dir.path() / "journal.db").string();
  // etc/demo.toml: pad P02 serves till T02.
  const std::string config = eftd::test::source_path("etc/demo.toml");
  auto r = run({"report", "transactions", "--db", db, "--pad", "P02", "--config", config, "--format", "csv"});
  CHECK(r.status == 0);
  REQUIRE(r.lines.size() == 3);
  CHECK(r.lines[1].find(",T02,1002,") != std::string::npos);
  CHECK(r.lines[2].find(",T02,1006,") != std::string::npos);
  CHECK(run({"report", "transactions", "--db", db, "--pad", "P99", "--config", config}).status == 2);
}
