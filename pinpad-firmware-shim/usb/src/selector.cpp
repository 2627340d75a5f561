// Selector parsing and formatting, and the device line for `eftpad ports`.
#include <cstdio>

#include "eftd/pad/usb.hpp"

namespace eftd::pad::usb {
namespace {

// USB string descriptors hold at most 126 UTF-16 code units (bLength is one byte: 2 + 2*126).
constexpr std::size_t max_serial_length = 126;

std::optional<std::uint16_t> parse_hex4(std::string_view s) {
  if (s.size() != 4) return std::nullopt;
  std::uint16_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    v = static_cast<std::uint16_t>(v << 4 | d);
  }
  return v;
}

std::string hex4(std::uint16_t v) {
  char buf[5];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

error bad(std::string_view text, const std::string& why) {
  // The selector is a device address typed by an operator, not data: quoting it helps.
  return make_error("usb.bad_selector",
                    "bad USB selector \"" + std::string(text) + "\": " + why +
                        " (expected VID:PID[:SERIAL], e.g. 0483:5740 or 0483:5740:PAD0001)");
}

}  // namespace

result<usb_selector> parse_usb_selector(std::string_view text) {
  std::string_view s = text;
  if (s.starts_with("usb:")) s.remove_prefix(4);
  // Only printable text is echoed back in the error; anything else is replaced.
  std::string shown;
  for (char c : text) shown += (c >= 0x20 && c <= 0x7e) ? c : '?';
  if (shown.size() > 160) shown = shown.substr(0, 160) + "...";

  const auto c1 = s.find(':');
  if (c1 == std::string_view::npos) return bad(shown, "no ':' between VID and PID");
  const auto c2 = s.find(':', c1 + 1);
  const std::string_view vid_text = s.substr(0, c1);
  const std::string_view pid_text =
      s.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1);
  const auto vid = parse_hex4(vid_text);
  if (!vid) return bad(shown, "the vendor ID must be exactly 4 hex digits");
  const auto pid = parse_hex4(pid_text);
  if (!pid) return bad(shown, "the product ID must be exactly 4 hex digits");

  usb_selector sel;
  sel.vid = *vid;
  sel.pid = *pid;
  if (c2 != std::string_view::npos) {
    const std::string_view serial = s.substr(c2 + 1);
    if (serial.empty()) return bad(shown, "the serial number after the second ':' is empty");
    if (serial.size() > max_serial_length)
      return bad(shown,
                 "the serial number is longer than " + std::to_string(max_serial_length) + " characters");
    for (char c : serial)
      if (c < 0x20 || c > 0x7e) return bad(shown, "the serial number must be printable ASCII");
    sel.serial = std::string(serial);
  }
  return sel;
}

std::string to_string(const usb_selector& s) {
  std::string out = hex4(s.vid) + ":" + hex4(s.pid);
  if (s.serial) out += ":" + *s.serial;
  return out;
}

std::string format_usb_device_line(const usb_device_info& d) {
  usb_selector sel{d.vid, d.pid, std::nullopt};
  if (!d.serial.empty()) sel.serial = d.serial;
  std::string line = "usb:" + to_string(sel) + " bus=" + std::to_string(d.bus) +
                     " address=" + std::to_string(d.address) + " interfaces=";
  if (d.bulk_interfaces.empty()) line += "-";
  for (std::size_t i = 0; i < d.bulk_interfaces.size(); ++i)
    line += (i ? "," : "") + std::to_string(d.bulk_interfaces[i]);
  if (!d.strings_read) {
    line += " (strings unreadable: no permission)";
  } else {
    std::string desc = d.manufacturer;
    if (!d.product.empty()) desc += (desc.empty() ? "" : " ") + d.product;
    line += " \"" + desc + "\"";
  }
  return line;
}

}  // namespace eftd::pad::usb
