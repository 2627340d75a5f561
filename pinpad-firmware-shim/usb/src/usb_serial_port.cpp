// bulk_endpoints presented as a serial_port: the link layer drivers and `eftpad bridge` were
// written against serial_port and its serial.* error codes (serial.hangup ends a bridge
// session, serial.closed a shutdown), so USB errors are translated to those codes; the
// message keeps the USB code for the operator.
#include "eftd/pad/usb.hpp"

namespace eftd::pad::usb {
namespace {

class usb_serial_port final : public serial_port {
 public:
  explicit usb_serial_port(std::unique_ptr<bulk_endpoints> ep)
      : ep_(std::move(ep)), path_("usb:" + ep_->name()) {}
  ~usb_serial_port() override { ep_->close(); }

  result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) override {
    auto r = ep_->read(buf, timeout);
    if (!r) return translate(r.err(), "serial.read_failed");
    return *r;
  }

  status write(byte_view data, std::chrono::milliseconds timeout) override {
    auto st = ep_->write(data, timeout);
    if (!st) return translate(st.err(), "serial.write_failed");
    return {};
  }

  void close() override { ep_->close(); }
  bool is_open() const override { return ep_->is_open(); }
  const std::string& path() const override { return path_; }

 private:
  error translate(const error& e, const char* other) const {
    const char* code = other;
    if (e.code == "usb.closed")
      code = "serial.closed";
    else if (e.code == "usb.disconnected")
      code = "serial.hangup";
    else if (e.code == "usb.timeout")
      code = "serial.write_timeout";
    return make_error(code, e.message + " [" + e.code + "]");
  }

  std::unique_ptr<bulk_endpoints> ep_;
  std::string path_;
};

}  // namespace

std::unique_ptr<serial_port> make_usb_serial_port(std::unique_ptr<bulk_endpoints> endpoints) {
  return std::make_unique<usb_serial_port>(std::move(endpoints));
}

result<std::unique_ptr<serial_port>> open_usb_port(std::string_view selector, const usb_open_options& opts) {
  auto sel = parse_usb_selector(selector);
  if (!sel) return sel.err();
  auto ep = open_usb_endpoints(*sel, opts);
  if (!ep) return ep.err();
  return make_usb_serial_port(std::move(*ep));
}

}  // namespace eftd::pad::usb
