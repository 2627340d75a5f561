// Device selectors "VID:PID[:SERIAL]": what parses, what does not (usb.bad_selector), and the
// device line `eftpad ports` prints.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/pad/usb.hpp"

using namespace eftd::pad::usb;

TEST_CASE("usb selectors that parse", "[usb][selector]") {
  struct row {
    std::string text;
    std::uint16_t vid;
    std::uint16_t pid;
    std::optional<std::string> serial;
    std::string canonical;
  };
  const row rows[] = {
      {"0483:5740", 0x0483, 0x5740, std::nullopt, "0483:5740"},
      {"0483:5740:PAD0001", 0x0483, 0x5740, "PAD0001", "0483:5740:PAD0001"},
      {"1D6B:FFFE:eftd-test-none", 0x1d6b, 0xfffe, "eftd-test-none", "1d6b:fffe:eftd-test-none"},
      {"usb:0403:6001:A50285BI", 0x0403, 0x6001, "A50285BI", "0403:6001:A50285BI"},
      {"0000:0000", 0, 0, std::nullopt, "0000:0000"},
      {"ffff:ffff:with:colons", 0xffff, 0xffff, "with:colons", "ffff:ffff:with:colons"},
      {"0483:5740:two words", 0x0483, 0x5740, "two words", "0483:5740:two words"},
      {"0483:5740:" + std::string(126, 'S'), 0x0483, 0x5740, std::string(126, 'S'),
       "0483:5740:" + std::string(126, 'S')},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    auto sel = parse_usb_selector(r.text);
    REQUIRE(sel.has_value());
    CHECK(sel->vid == r.vid);
    CHECK(sel->pid == r.pid);
    CHECK(sel->serial == r.serial);
    CHECK(to_string(*sel) == r.canonical);
    // A port's path ("usb:" + canonical) selects the same device again.
    auto again = parse_usb_selector("usb:" + to_string(*sel));
    REQUIRE(again.has_value());
    CHECK(*again == *sel);
  }
}

TEST_CASE("usb selectors that do not parse give usb.bad_selector", "[usb][selector]") {
  struct row {
    std::string text;
    std::string why;  // a word of the explanation
  };
  const row rows[] = {
      {"", "no ':'"},
      {"0483", "no ':'"},
      {"04835740", "no ':'"},
      {"usb:", "no ':'"},
      {"0483-5740", "no ':'"},
      {"483:5740", "vendor ID"},
      {"04830:5740", "vendor ID"},
      {"0x83:5740", "vendor ID"},
      {" 0483:5740", "vendor ID"},
      {":5740", "vendor ID"},
      {"0483:", "product ID"},
      {"0483:574", "product ID"},
      {"0483:57g0", "product ID"},
      {"0483:57400", "product ID"},
      {"0483::PAD", "product ID"},
      {"0483:5740:", "empty"},
      {"0483:5740:" + std::string(127, 'S'), "longer than 126"},
      {"0483:5740:bad\x01serial", "printable"},
      {"0483:5740:caf\xc3\xa9", "printable"},
  };
  for (const auto& r : rows) {
    INFO("selector #" << (&r - rows));
    auto sel = parse_usb_selector(r.text);
    REQUIRE_FALSE(sel.has_value());
    CHECK(sel.err().code == "usb.bad_selector");
    CHECK(sel.err().message.find(r.why) != std::string::npos);
    CHECK(sel.err().message.find("VID:PID[:SERIAL]") != std::string::npos);
    // Control characters never reach a log line through the error text.
    for (char c : sel.err().message) CHECK((c >= 0x20 && c <= 0x7e));
  }
}

TEST_CASE("device lines for eftpad ports put the selector first", "[usb][selector]") {
  usb_device_info pad;
  pad.vid = 0x0483;
  pad.pid = 0x5740;
  pad.serial = "PAD0001";
  pad.manufacturer = "STMicroelectronics";
  pad.product = "Virtual PIN pad";
  pad.bus = 1;
  pad.address = 4;
  pad.strings_read = true;
  pad.bulk_interfaces = {0, 2};
  CHECK(format_usb_device_line(pad) ==
        "usb:0483:5740:PAD0001 bus=1 address=4 interfaces=0,2 \"STMicroelectronics Virtual PIN pad\"");

  usb_device_info hub;
  hub.vid = 0x1d6b;
  hub.pid = 0x0002;
  hub.bus = 2;
  hub.address = 1;
  CHECK(format_usb_device_line(hub) ==
        "usb:1d6b:0002 bus=2 address=1 interfaces=- (strings unreadable: no permission)");
}
