// Through real libusb: a device that is not attached gives a clean usb.no_device naming the
// selector (or usb.unavailable where libusb cannot start at all), enumeration works or fails
// cleanly, and selector errors come before libusb is touched.
#include <catch2/catch.hpp>
#include <iostream>

#include "eftd/pad/usb.hpp"

using namespace eftd::pad::usb;

namespace {

// 1d6b is the Linux Foundation's vendor ID; it has never issued product fffe.
constexpr const char* absent = "1d6b:fffe:eftd-test-none";

}  // namespace

TEST_CASE("libusb: an absent device is a clean usb.no_device naming the selector", "[usb][libusb]") {
  auto port = open_usb_port(absent);
  REQUIRE_FALSE(port.has_value());
  INFO(port.err().code << ": " << port.err().message);
  if (port.err().code == "usb.unavailable") {
    std::cout << "libusb cannot start here: " << port.err().message << std::endl;
    CHECK(port.err().message.find("libusb") != std::string::npos);
    return;
  }
  CHECK(port.err().code == "usb.no_device");
  CHECK(port.err().message.find("1d6b:fffe") != std::string::npos);
  CHECK(port.err().message.find("eftd-test-none") != std::string::npos);

  // Without a serial, and with an interface asked for: the same clean answer.
  auto sel = parse_usb_selector("1D6B:FFFE");
  REQUIRE(sel.has_value());
  auto ep = open_usb_endpoints(*sel, {.interface_number = 3});
  REQUIRE_FALSE(ep.has_value());
  CHECK(ep.err().code == "usb.no_device");
  CHECK(ep.err().message == "no USB device 1d6b:fffe is attached");

  // Repeated opens leave nothing behind (each has its own libusb context).
  for (int i = 0; i < 20; ++i) CHECK(open_usb_port(absent).err().code == "usb.no_device");
}

TEST_CASE("libusb: a bad selector is refused before libusb is asked", "[usb][libusb]") {
  auto port = open_usb_port("1d6b:fffe:");
  REQUIRE_FALSE(port.has_value());
  CHECK(port.err().code == "usb.bad_selector");
}

TEST_CASE("libusb: enumeration lists devices or fails cleanly", "[usb][libusb]") {
  auto devs = list_usb_devices();
  if (!devs) {
    CHECK(devs.err().code == "usb.unavailable");
    return;
  }
  std::cout << devs->size() << " USB device(s) attached" << std::endl;
  for (const auto& d : *devs) {
    const std::string line = format_usb_device_line(d);
    std::cout << "  " << line << std::endl;
    CHECK(line.starts_with("usb:"));
    // The line's selector opens the same device class again.
    const std::string selector = line.substr(0, line.find(' '));
    auto sel = parse_usb_selector(selector);
    CHECK(sel.has_value());
  }
}
