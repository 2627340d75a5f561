// `eftpad ports` as a real process: exits 0 and prints either the "no serial ports found"
// line or exactly the ports the library enumerates, one per line.
#include <catch2/catch.hpp>
#include <chrono>

#include "eftd/pad/serial_port.hpp"
#include "process.hpp"

using namespace std::chrono_literals;

TEST_CASE("eftpad ports lists the machine's serial ports and exits 0", "[serial][eftpad]") {
  eftd::test::process p(eftd::test::bin_path("eftpad"), {"ports"});
  std::vector<std::string> lines;
  while (auto line = p.read_line(10s)) lines.push_back(*line);
  const auto st = p.wait_exit(10s);
  REQUIRE(st.has_value());
  CHECK(*st == 0);

  auto ports = eftd::pad::list_serial_ports();
  REQUIRE(ports.has_value());
  if (ports->empty()) {
    CHECK(lines == std::vector<std::string>{"no serial ports found"});
  } else {
    std::vector<std::string> want;
    for (const auto& port : *ports) want.push_back(eftd::pad::format_port_line(port));
    CHECK(lines == want);
  }
  for (const auto& l : lines) INFO(l);
}

TEST_CASE("eftpad ports rejects stray arguments", "[serial][eftpad]") {
  eftd::test::process p(eftd::test::bin_path("eftpad"), {"ports", "--bogus"}, "/dev/null");
  while (p.read_line(10s)) {
  }
  const auto st = p.wait_exit(10s);
  REQUIRE(st.has_value());
  CHECK(*st != 0);
}
