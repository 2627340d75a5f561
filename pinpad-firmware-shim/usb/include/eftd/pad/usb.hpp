// PIN pads on USB (LINK.md section 11, "USB"): a thin libusb adapter over the bulk-endpoint interface,
// and the adapter that presents any bulk_endpoints as an eftd::pad::serial_port, so the link
// layer drivers and `eftpad bridge` use a USB pad exactly like a serial one.
//
// A device is chosen by a selector "VID:PID[:SERIAL]": vendor and product ID as exactly four
// hex digits each, optionally the device's serial number string (iSerialNumber). "usb:" in
// front is accepted, so a port's path() can be used as a selector again.
//
// Errors (codes usb.*, texts naming the selector and the device, never data):
//   usb.bad_selector  the selector does not parse
//   usb.unavailable   libusb cannot start (no USB subsystem on this machine)
//   usb.no_device     no attached device matches the selector
//   usb.ambiguous     several devices match VID:PID and no serial was given
//   usb.access        the device cannot be opened (permissions: udev rule or group needed)
//   usb.busy          another driver or process has claimed the interface
//   usb.no_interface  no interface with one bulk IN and one bulk OUT endpoint (or the one asked
//                     for has none)
//   usb.io            anything else libusb reports while opening
// and the transfer errors of bulk_endpoints.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/pad/serial_port.hpp"
#include "eftd/pad/usb/bulk_endpoints.hpp"

namespace eftd::pad::usb {

struct usb_selector {
  std::uint16_t vid = 0;
  std::uint16_t pid = 0;
  std::optional<std::string> serial;

  friend bool operator==(const usb_selector&, const usb_selector&) = default;
};

// Serial numbers: 1..126 printable ASCII characters (126 is the most a USB string descriptor
// holds); they may contain ':'. Error: usb.bad_selector (the text says what is wrong).
result<usb_selector> parse_usb_selector(std::string_view text);
// "0483:5740" or "0483:5740:SERIAL": lower-case hex, four digits each.
std::string to_string(const usb_selector& s);

struct usb_open_options {
  // bInterfaceNumber to claim; unset: the first interface (in the active configuration's
  // order) that has one bulk IN and one bulk OUT endpoint.
  std::optional<int> interface_number;
};

// Finds the device, detaches a kernel driver bound to the interface (it is reattached on
// close), claims the interface and returns its bulk endpoint pair.
result<std::unique_ptr<bulk_endpoints>> open_usb_endpoints(const usb_selector& sel,
                                                           const usb_open_options& opts = {});

// The serial-port face of any bulk endpoints: read() returns 0 on timeout, write() writes all
// within its timeout, path() is "usb:" + endpoints->name(). Transfer errors map to the serial
// codes the link drivers handle (usb.closed -> serial.closed, usb.disconnected ->
// serial.hangup, usb.timeout -> serial.write_timeout, usb.io -> serial.read_failed or
// serial.write_failed); the message keeps the USB detail.
std::unique_ptr<serial_port> make_usb_serial_port(std::unique_ptr<bulk_endpoints> endpoints);

// parse_usb_selector + open_usb_endpoints + make_usb_serial_port.
result<std::unique_ptr<serial_port>> open_usb_port(std::string_view selector,
                                                   const usb_open_options& opts = {});

struct usb_device_info {
  std::uint16_t vid = 0;
  std::uint16_t pid = 0;
  std::string serial;  // empty when the device has none or it could not be read
  std::string manufacturer;
  std::string product;
  std::uint8_t bus = 0;
  std::uint8_t address = 0;
  // Whether the string descriptors could be read (opening the device needs permission).
  bool strings_read = false;
  // bInterfaceNumber of each interface with one bulk IN and one bulk OUT endpoint: the
  // interfaces a pad can be reached on. Empty for hubs, keyboards and the like.
  std::vector<int> bulk_interfaces;
};

// Every attached USB device, sorted by bus and address. Errors: usb.unavailable, usb.io.
result<std::vector<usb_device_info>> list_usb_devices();

// One line for `eftpad ports`:
//   usb:0483:5740:PAD0001 bus=1 address=4 interfaces=0 "STM32 Virtual PIN pad"
//   usb:1d6b:0002 bus=1 address=1 interfaces=- "xHCI Host Controller"
// (the selector first, so it can be pasted into `eftpad bridge --usb`).
std::string format_usb_device_line(const usb_device_info& d);

}  // namespace eftd::pad::usb
