// The simulator's --ledger-file: every ledger entry as one JSON line, with what the chaos
// checkers match against eftd's journal, and never card data.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "eftd/acqsim/host.hpp"
#include "eftd/acqsim/ledger_file.hpp"

namespace acq = eftd::acq;
using eftd::acqsim::host;

namespace {

const std::string pan = "4761739001010119";

acq::message sale(const std::string& amount, const std::string& stan, const std::string& card = pan) {
  acq::message m{"0200"};
  m.set(2, card);
  m.set(3, "000000");
  m.set(4, amount);
  m.set(7, "0615103456");
  m.set(11, stan);
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(35, card + "=25122011143800000");
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  return m;
}

std::vector<nlohmann::json> parse_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

TEST_CASE("ledger file lists every ledger entry with its decision, reversal and settlement", "[sim]") {
  host h;
  REQUIRE(h.handle(sale("000000001000", "000001")).response->get_or(39, "") == "00");
  REQUIRE(h.handle(sale("000000001051", "000002")).response->get_or(39, "") == "51");
  REQUIRE(h.handle(sale("000000002000", "000003")).response->get_or(39, "") == "00");
  acq::message rev{"0400"};
  rev.set(4, "000000002000");
  rev.set(7, "0615103510");
  rev.set(11, "000004");
  rev.set(41, "TERM0001");
  rev.set(90,
          "0200000003061510345600000000001"
          "00000000000");
  REQUIRE(h.handle(rev).response->get_or(39, "") == "00");

  const std::string text = eftd::acqsim::ledger_lines(h);
  CHECK(text.find(pan) == std::string::npos);
  CHECK(text.find(pan.substr(pan.size() - 4)) == std::string::npos);
  const auto lines = parse_lines(text);
  REQUIRE(lines.size() == h.ledger().size());
  REQUIRE(lines.size() == 3);

  const auto& ok = lines[0];
  CHECK(ok["key"] == "TERM0001|000001|0615103456");
  CHECK(ok["terminal"] == "TERM0001");
  CHECK(ok["stan"] == "000001");
  CHECK(ok["transmission"] == "0615103456");
  CHECK(ok["local_datetime"] == "0615123456");
  CHECK(ok["mti"] == "0200");
  CHECK(ok["amount"] == 1000);
  CHECK(ok["currency"] == "985");
  CHECK(ok["response_code"] == "00");
  CHECK(ok["approved"] == true);
  CHECK(ok["reversed"] == false);
  CHECK(ok["settles"] == true);
  CHECK(ok["credit"] == false);
  CHECK(ok["merchant_id"] == "MERCHANT0000001");
  CHECK(ok["rrn"] == h.ledger().at("TERM0001|000001|0615103456").rrn);
  CHECK_FALSE(ok["auth_code"].get<std::string>().empty());

  CHECK(lines[1]["response_code"] == "51");
  CHECK(lines[1]["approved"] == false);
  CHECK(lines[1]["settles"] == false);

  CHECK(lines[2]["stan"] == "000003");
  CHECK(lines[2]["approved"] == true);
  CHECK(lines[2]["reversed"] == true);
}

TEST_CASE("ledger file is written whole and an empty ledger writes an empty file", "[sim]") {
  const auto dir = std::filesystem::temp_directory_path() / ("ledger-file-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  host h;
  REQUIRE(eftd::acqsim::write_ledger_file(h, dir / "empty.jsonl"));
  CHECK(std::filesystem::file_size(dir / "empty.jsonl") == 0);
  REQUIRE(h.handle(sale("000000001000", "000001")).response->get_or(39, "") == "00");
  REQUIRE(eftd::acqsim::write_ledger_file(h, dir / "one.jsonl"));
  std::ifstream in(dir / "one.jsonl");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == eftd::acqsim::ledger_lines(h));
  CHECK(parse_lines(text).size() == 1);
  std::filesystem::remove_all(dir);
}
