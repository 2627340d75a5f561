// eftctl dukpt / pinblock run as the real executable against the public vectors of
// /work/shared/test-vectors.md §1-§3: stdout, the stderr warning, exit codes, and one error
// line for every kind of bad input.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "process.hpp"

namespace fs = std::filesystem;

namespace {

std::string eftctl() {
  const char* v = std::getenv("EFTD_BIN");
  const fs::path dir = v != nullptr && *v != '\0' ? fs::path(v) : fs::path(EFTD_TEST_BIN_DIR);
  return (dir / "eftctl").string();
}

struct run_result {
  int exit_code = -1;
  std::string out;               // stdout, lines joined with '\n'
  std::vector<std::string> err;  // stderr lines
};

run_result run(std::vector<std::string> args) {
  const fs::path dir = eftd::test::make_temp_dir("eftctl-crypto");
  const fs::path err_file = dir / "stderr";
  run_result r;
  {
    eftd::test::process p(eftctl(), std::move(args), err_file.string());
    auto status = p.wait_exit(std::chrono::seconds(30));
    REQUIRE(status.has_value());
    r.exit_code = *status;
    for (const auto& line : p.output()) r.out += line + "\n";
  }
  std::ifstream in(err_file);
  for (std::string line; std::getline(in, line);) r.err.push_back(line);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

std::string joined(const std::vector<std::string>& lines) {
  std::ostringstream s;
  for (const auto& l : lines) s << l << "\n";
  return s.str();
}

// Success: the value on stdout, a warning (and nothing else) on stderr.
void expect_output(const std::vector<std::string>& args, const std::string& expected) {
  const auto r = run(args);
  INFO(joined(r.err));
  CHECK(r.exit_code == 0);
  CHECK(r.out == expected + "\n");
  REQUIRE(r.err.size() == 1);
  CHECK(r.err[0].rfind("eftctl: warning: ", 0) == 0);
}

// Failure: nothing on stdout, exactly one "eftctl: ..." line on stderr.
void expect_error(const std::vector<std::string>& args, int code, const std::string& fragment) {
  const auto r = run(args);
  INFO(joined(r.err));
  CHECK(r.exit_code == code);
  CHECK(r.out.empty());
  REQUIRE(r.err.size() == 1);
  CHECK(r.err[0].rfind("eftctl: ", 0) == 0);
  CHECK(r.err[0].find(fragment) != std::string::npos);
}

const char* const tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";
const char* const aes_bdk = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
const char* const message_hex =
    "34303132333435363738393039443938"
    "37";  // "4012345678909D987"

}  // namespace

TEST_CASE("eftctl dukpt ipek prints the TDES IPEK and the AES initial keys", "[eftctl][dukpt]") {
  expect_output({"dukpt", "ipek", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210E00000"},
                "6AC292FAA1315B4D858AB3A3D7D5933A");
  // Counter bits are ignored, lower-case hex is accepted.
  expect_output(
      {"dukpt", "ipek", "--bdk", "0123456789abcdeffedcba9876543210", "--ksn", "ffff9876543210e00015"},
      "6AC292FAA1315B4D858AB3A3D7D5933A");
  expect_output({"dukpt", "ipek", "--aes", "--bdk", aes_bdk, "--ksn", "123456789012345600000001"},
                "1273671EA26AC29AFA4D1084127652A1");
  expect_output({"dukpt", "ipek", "--aes", "--bdk", std::string(aes_bdk) + aes_bdk, "--ksn",
                 "123456789012345600000001"},
                "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F");
}

TEST_CASE("eftctl dukpt decrypt-data recovers the X9.24 and moov test message", "[eftctl][dukpt]") {
  expect_output({"dukpt", "decrypt-data", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210E00001", "--data",
                 "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F"},
                std::string(message_hex) + "00000000000000");
  expect_output({"dukpt", "decrypt-data", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210F00000", "--data",
                 "1E830E7F53FC171E35380145320233EF9C6F3B08CED984AB"},
                std::string(message_hex) + "00000000000000");
  expect_output({"dukpt", "decrypt-data", "--aes", "--bdk", aes_bdk, "--ksn", "123456789012345600000001",
                 "--data", "E5AFA5B408A3310E3D779C8A9A2AE29448BD5B4232582090DB703AF647205A79"},
                std::string(message_hex) + "000000000000000000000000000000");
  expect_output({"dukpt", "decrypt-data", "--aes", "--bdk", aes_bdk, "--ksn", "123456789012345600000008",
                 "--data", "304EC254A7B528D9892E47F7C1315D498C0D88EA8CD71CA52D38F362721AEA67"},
                std::string(message_hex) + "000000000000000000000000000000");
}

TEST_CASE("eftctl pinblock decode handles formats 0, 1, 3 and 4", "[eftctl][pinblock]") {
  expect_output(
      {"pinblock", "decode", "--format", "0", "--block", "041274EDCBA9876F", "--pan", "4012345678909"},
      "1234");
  // Encrypted under the X9.24-1 counter-1 PIN key.
  expect_output({"pinblock", "decode", "--format", "0", "--block", "1B9C1845EB993A7A", "--pan",
                 "4012345678909", "--key", "042666B49184CF5C68DE9628D0397B36"},
                "1234");
  expect_output({"pinblock", "decode", "--format", "1", "--block", "1512345EDCBA9876"}, "12345");
  expect_output(
      {"pinblock", "decode", "--format", "3", "--block", "3C1261032D8226A9", "--pan", "5555555551234567"},
      "123456789012");
  expect_output({"pinblock", "decode", "--format", "4", "--block", "CC17F65586BFD0953010226C4FC5B3CA",
                 "--pan", "432198765432109870", "--key", "C1D0F8FB4958670DBA40AB1F3752EF0D"},
                "1234");
  // X9.24-3 supplement: counter-1 AES PIN key.
  expect_output({"pinblock", "decode", "--format", "4", "--block", "A912150391AB65A67E52883D81CE2D15",
                 "--pan", "4111111111111111", "--key", "AF8CB133A78F8DC2D1359F18527593FB"},
                "1234");
}

TEST_CASE("eftctl crypto commands: bad input gives one error line and exit 2", "[eftctl][dukpt][pinblock]") {
  const std::string ksn1 = "FFFF9876543210E00001";
  expect_error({"dukpt", "ipek", "--bdk", "0123456789ABCDEFFEDCBA987654321", "--ksn", ksn1}, 2, "--bdk: odd");
  expect_error({"dukpt", "ipek", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210E0000G"}, 2,
               "--ksn: not hexadecimal");
  expect_error({"dukpt", "ipek", "--bdk", "0123456789ABCDEF", "--ksn", ksn1}, 2, "--bdk:");
  expect_error({"dukpt", "ipek", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210E000"}, 2, "--ksn:");
  expect_error({"dukpt", "ipek", "--aes", "--bdk", aes_bdk, "--ksn", "1234567890123456"}, 2, "--ksn:");
  expect_error({"dukpt", "ipek", "--aes", "--bdk", "FEDCBA9876543210", "--ksn", "123456789012345600000001"},
               2, "--bdk:");
  // Invalid counters: zero, 11 one-bits (TDES), 17 one-bits (AES).
  expect_error({"dukpt", "decrypt-data", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210E00000", "--data",
                "FC0D53B7EA1FDA9E"},
               2, "dukpt.bad_counter");
  expect_error({"dukpt", "decrypt-data", "--bdk", tdes_bdk, "--ksn", "FFFF9876543210E007FF", "--data",
                "FC0D53B7EA1FDA9E"},
               2, "dukpt.bad_counter");
  expect_error({"dukpt", "decrypt-data", "--aes", "--bdk", aes_bdk, "--ksn", "12345678901234560001FFFF",
                "--data", "E5AFA5B408A3310E3D779C8A9A2AE294"},
               2, "dukpt.bad_counter");
  expect_error({"dukpt", "decrypt-data", "--bdk", tdes_bdk, "--ksn", ksn1, "--data", "FC0D53B7EA1FDA9EE6"}, 2,
               "--data:");
  expect_error({"dukpt", "decrypt-data", "--aes", "--bdk", aes_bdk, "--ksn", "123456789012345600000001",
                "--data", "E5AFA5B408A3310E3D779C8A9A2AE294E5"},
               2, "--data:");
  expect_error({"pinblock", "decode", "--format", "2", "--block", "241234FFFFFFFFFF"}, 2, "--format:");
  expect_error({"pinblock", "decode", "--format", "0", "--block", "041274EDCBA9876F"}, 2, "--pan:");
  expect_error({"pinblock", "decode", "--format", "0", "--block", "041274EDCBA987", "--pan", "4012345678909"},
               2, "--block:");
  expect_error(
      {"pinblock", "decode", "--format", "0", "--block", "041274EDCBA9876", "--pan", "4012345678909"}, 2,
      "--block: odd");
  expect_error(
      {"pinblock", "decode", "--format", "0", "--block", "041274EDCBA9876F", "--pan", "401234567890"}, 2,
      "--pan:");
  expect_error({"pinblock", "decode", "--format", "4", "--block", "A912150391AB65A67E52883D81CE2D15", "--pan",
                "4111111111111111"},
               2, "--key:");
  expect_error({"pinblock", "decode", "--format", "4", "--block", "A912150391AB65A67E52883D81CE2D15", "--pan",
                "4111111111111111", "--key", "AF8CB133A78F8DC2"},
               2, "--key:");
  expect_error({"pinblock", "decode", "--format", "0", "--block", "1B9C1845EB993A7A", "--pan",
                "4012345678909", "--key", "042666B49184CF5C68DE9628D0397B"},
               2, "--key:");
  // A required option missing: CLI11's usage error, exit 2 as well.
  const auto r = run({"dukpt", "ipek", "--bdk", tdes_bdk});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
}

TEST_CASE("eftctl pinblock decode exits 1 when a well-formed block does not decode", "[eftctl][pinblock]") {
  // Right format, wrong PAN: the fill check fails.
  expect_error(
      {"pinblock", "decode", "--format", "0", "--block", "041274EDCBA9876F", "--pan", "4012345678919"}, 1,
      "pin_block.bad_fill");
  // Wrong TDES key: a random-looking clear block.
  expect_error({"pinblock", "decode", "--format", "0", "--block", "1B9C1845EB993A7A", "--pan",
                "4012345678909", "--key", "C46551CEF9FD244FAA9AD834130D3B38"},
               1, "does not decode");
  // Error lines name the problem, never the digits or key material given.
  const auto r = run(
      {"pinblock", "decode", "--format", "3", "--block", "341261AAAAEDCBA2", "--pan", "5555555551234567"});
  CHECK(r.exit_code == 1);
  REQUIRE(r.err.size() == 1);
  CHECK(r.err[0].find("5555555551234567") == std::string::npos);
  CHECK(r.err[0].find("341261") == std::string::npos);
}
