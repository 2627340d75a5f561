// libserialport implementation (real ports) and port enumeration.
#include <libserialport.h>

#include <algorithm>
#include <cstdio>

#include "eftd/pad/serial_port.hpp"
#include "serial_util.hpp"

namespace eftd::pad {
namespace {

// libserialport keeps the OS error text only for SP_ERR_FAIL; other codes have fixed meanings.
std::string sp_error_text(sp_return r) {
  switch (r) {
    case SP_OK:
      return "ok";
    case SP_ERR_ARG:
      return "invalid argument";
    case SP_ERR_MEM:
      return "out of memory";
    case SP_ERR_SUPP:
      return "not supported";
    case SP_ERR_FAIL: {
      char* m = sp_last_error_message();
      std::string s = m ? m : "failed";
      sp_free_error_message(m);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      return s;
    }
  }
  return "error " + std::to_string(static_cast<int>(r));
}

std::string text_or_empty(const char* s) {
  return s ? s : "";
}

class sp_port_impl final : public serial_port {
 public:
  sp_port_impl(sp_port* port, std::string path) : port_(port), path_(std::move(path)) {}
  ~sp_port_impl() override { close(); }

  result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) override {
    if (!port_) return closed_error();
    if (buf.empty()) return std::size_t{0};
    // A timeout of 0 means "wait forever" to libserialport: poll without waiting instead.
    const int r =
        timeout.count() <= 0
            ? sp_nonblocking_read(port_, buf.data(), buf.size())
            : sp_blocking_read_next(port_, buf.data(), buf.size(),
                                    static_cast<unsigned>(std::min<long long>(timeout.count(), 1 << 30)));
    if (r < 0) {
      const auto e = static_cast<sp_return>(r);
      return make_error("serial.read_failed", path_ + ": " + sp_error_text(e));
    }
    return static_cast<std::size_t>(r);
  }

  status write(byte_view data, std::chrono::milliseconds timeout) override {
    if (!port_) return closed_error();
    if (data.empty()) return {};
    const auto ms = static_cast<unsigned>(std::clamp<long long>(timeout.count(), 1, 1 << 30));
    const int r = sp_blocking_write(port_, data.data(), data.size(), ms);
    if (r < 0)
      return make_error("serial.write_failed", path_ + ": " + sp_error_text(static_cast<sp_return>(r)));
    if (static_cast<std::size_t>(r) < data.size())
      return make_error("serial.write_timeout", path_ + ": only " + std::to_string(r) + " of " +
                                                    std::to_string(data.size()) + " bytes written in " +
                                                    std::to_string(timeout.count()) + " ms");
    return {};
  }

  void close() override {
    if (port_) {
      sp_close(port_);
      sp_free_port(port_);
      port_ = nullptr;
    }
  }
  bool is_open() const override { return port_ != nullptr; }
  const std::string& path() const override { return path_; }

 private:
  error closed_error() const { return make_error("serial.closed", path_ + ": port is closed"); }

  sp_port* port_;
  std::string path_;
};

}  // namespace

result<std::unique_ptr<serial_port>> open_libserialport_port(const std::string& path,
                                                             const serial_settings& s) {
  if (s.baud == 0 || s.baud > 4000000)
    return make_error("serial.bad_baud", path + ": unsupported baud rate " + std::to_string(s.baud));
  sp_port* port = nullptr;
  if (const sp_return r = sp_get_port_by_name(path.c_str(), &port); r != SP_OK) {
    // 0.1.1 answers SP_ERR_ARG both for a missing device and for a pty it does not recognise.
    return make_error(r == SP_ERR_ARG ? "serial.not_found" : "serial.open_failed",
                      "libserialport cannot use " + path + ": " + sp_error_text(r) +
                          " (not a serial port it knows; ptys need the termios backend)");
  }
  if (const sp_return r = sp_open(port, SP_MODE_READ_WRITE); r != SP_OK) {
    const std::string why = sp_error_text(r);
    sp_free_port(port);
    return make_error("serial.open_failed", "cannot open " + path + ": " + why);
  }
  auto fail = [port](std::string code, std::string msg) {
    sp_close(port);
    sp_free_port(port);
    return make_error(std::move(code), std::move(msg));
  };
  if (const sp_return r = sp_set_baudrate(port, static_cast<int>(s.baud)); r != SP_OK)
    return fail("serial.bad_baud", path + ": baud rate " + std::to_string(s.baud) + ": " + sp_error_text(r));
  sp_return r = sp_set_bits(port, 8);
  if (r == SP_OK) r = sp_set_parity(port, SP_PARITY_NONE);
  if (r == SP_OK) r = sp_set_stopbits(port, 1);
  if (r == SP_OK) r = sp_set_flowcontrol(port, SP_FLOWCONTROL_NONE);
  if (r != SP_OK)
    return fail("serial.config_failed", path + ": cannot set 8N1 without flow control: " + sp_error_text(r));
  sp_flush(port, SP_BUF_INPUT);
  return std::unique_ptr<serial_port>(std::make_unique<sp_port_impl>(port, path));
}

result<std::vector<serial_port_info>> list_serial_ports() {
  sp_port** list = nullptr;
  if (const sp_return r = sp_list_ports(&list); r != SP_OK)
    return make_error("serial.enumerate_failed", "cannot list serial ports: " + sp_error_text(r));
  std::vector<serial_port_info> out;
  for (sp_port** it = list; *it; ++it) {
    serial_port_info info;
    info.name = text_or_empty(sp_get_port_name(*it));
    info.description = text_or_empty(sp_get_port_description(*it));
    switch (sp_get_port_transport(*it)) {
      case SP_TRANSPORT_NATIVE:
        info.transport = "native";
        break;
      case SP_TRANSPORT_USB:
        info.transport = "usb";
        break;
      case SP_TRANSPORT_BLUETOOTH:
        info.transport = "bluetooth";
        break;
      default:
        info.transport = "unknown";
        break;
    }
    if (info.transport == "usb") {
      int vid = 0;
      int pid = 0;
      if (sp_get_port_usb_vid_pid(*it, &vid, &pid) == SP_OK) {
        info.usb_vid = static_cast<std::uint16_t>(vid);
        info.usb_pid = static_cast<std::uint16_t>(pid);
      }
      // These strings belong to the port structure; copied before the list is freed.
      info.usb_serial = text_or_empty(sp_get_port_usb_serial(*it));
      info.usb_manufacturer = text_or_empty(sp_get_port_usb_manufacturer(*it));
      info.usb_product = text_or_empty(sp_get_port_usb_product(*it));
    }
    out.push_back(std::move(info));
  }
  sp_free_port_list(list);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::string format_port_line(const serial_port_info& p) {
  // Device strings come from USB descriptors: keep the line one line and unambiguous.
  auto clean = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7F) continue;
      if (c == '"' || c == '\\') o += '\\';
      o += c;
    }
    return o;
  };
  std::string line = clean(p.name) + " " + (p.transport.empty() ? "unknown" : clean(p.transport));
  if (p.usb_vid && p.usb_pid) {
    char id[16];
    std::snprintf(id, sizeof id, "%04x:%04x", *p.usb_vid, *p.usb_pid);
    line += std::string(" ") + id;
  }
  if (!p.usb_serial.empty()) line += " serial=" + clean(p.usb_serial);
  line += " \"" + clean(p.description) + "\"";
  return line;
}

}  // namespace eftd::pad
