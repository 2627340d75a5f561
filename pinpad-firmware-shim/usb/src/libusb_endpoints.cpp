// The libusb adapter: find a device by VID:PID[:SERIAL], claim the interface with a bulk
// endpoint pair, and move bytes with synchronous bulk transfers.
//
// Each open device has its own libusb context, so nothing is shared between devices or with
// enumeration, and closing one never disturbs another.
#include <libusb.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <mutex>
#include <shared_mutex>

#include "eftd/pad/usb.hpp"

namespace eftd::pad::usb {
namespace {

using clock_type = std::chrono::steady_clock;

// Transfers are cut into slices of at most this long, so close() on another thread is
// noticed within one slice instead of after a caller's long timeout.
constexpr std::chrono::milliseconds slice{100};
// The IN transfer buffer: a multiple of every bulk wMaxPacketSize (64 full speed, 512 high
// speed, 1024 SuperSpeed). A read into a buffer that is not a multiple of the packet size
// fails with an overflow when the device sends a longer packet, so callers' small buffers
// are served from this one.
constexpr std::size_t rx_buffer_size = 16 * 1024;

std::string hex4(std::uint16_t v) {
  char buf[5];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

std::string libusb_text(int rc) {
  return std::string(libusb_error_name(rc)) + " (" + libusb_strerror(rc) + ")";
}

struct context_owner {
  libusb_context* ctx = nullptr;
  ~context_owner() {
    if (ctx) libusb_exit(ctx);
  }
};

struct device_list {
  libusb_device** list = nullptr;
  ssize_t count = 0;
  ~device_list() {
    if (list) libusb_free_device_list(list, 1);
  }
};

result<libusb_context*> start_libusb() {
  libusb_context* ctx = nullptr;
  const int rc = libusb_init(&ctx);
  if (rc != 0)
    return make_error("usb.unavailable",
                      "libusb cannot start on this machine (no USB subsystem?): " + libusb_text(rc));
  return ctx;
}

std::string read_string(libusb_device_handle* h, std::uint8_t index) {
  if (index == 0) return {};
  unsigned char buf[256];
  const int n = libusb_get_string_descriptor_ascii(h, index, buf, sizeof buf);
  if (n <= 0) return {};
  return std::string(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

struct bulk_pair {
  int interface_number = -1;
  std::uint8_t in = 0;
  std::uint8_t out = 0;
  std::uint16_t in_max_packet = 0;
  std::uint16_t out_max_packet = 0;
};

// Interfaces (alternate setting 0, the one active after claiming) with a bulk IN and a bulk
// OUT endpoint, in descriptor order. A pad that also offers HID or audio interfaces is
// reached on the first interface that looks like a byte pipe.
std::vector<bulk_pair> bulk_pairs(libusb_device* dev) {
  std::vector<bulk_pair> out;
  libusb_config_descriptor* cfg = nullptr;
  if (libusb_get_active_config_descriptor(dev, &cfg) != 0 || !cfg) return out;
  for (int i = 0; i < cfg->bNumInterfaces; ++i) {
    const libusb_interface& itf = cfg->interface[i];
    if (itf.num_altsetting < 1) continue;
    const libusb_interface_descriptor& alt = itf.altsetting[0];
    bulk_pair p;
    p.interface_number = alt.bInterfaceNumber;
    for (int e = 0; e < alt.bNumEndpoints; ++e) {
      const libusb_endpoint_descriptor& ep = alt.endpoint[e];
      if ((ep.bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) != LIBUSB_TRANSFER_TYPE_BULK) continue;
      const bool is_in = (ep.bEndpointAddress & LIBUSB_ENDPOINT_DIR_MASK) == LIBUSB_ENDPOINT_IN;
      if (is_in && p.in == 0) {
        p.in = ep.bEndpointAddress;
        p.in_max_packet = ep.wMaxPacketSize;
      } else if (!is_in && p.out == 0) {
        p.out = ep.bEndpointAddress;
        p.out_max_packet = ep.wMaxPacketSize;
      }
    }
    if (p.in != 0 && p.out != 0) out.push_back(p);
  }
  libusb_free_config_descriptor(cfg);
  return out;
}

class libusb_endpoints final : public bulk_endpoints {
 public:
  libusb_endpoints(libusb_context* ctx, libusb_device_handle* h, bulk_pair pair, std::string name)
      : ctx_(ctx), h_(h), pair_(pair), name_(std::move(name)), rx_(rx_buffer_size) {}
  ~libusb_endpoints() override { close(); }

  result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) override {
    // Checked before locking too: after close() no new call may hold up its exclusive lock.
    if (closed_) return closed_error();
    std::shared_lock use(use_);
    if (closed_) return closed_error();
    if (buf.empty()) return std::size_t{0};
    std::lock_guard one_reader(read_m_);
    const auto deadline = clock_type::now() + timeout;
    while (rx_off_ == rx_len_) {
      if (closed_) return closed_error();
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now());
      // libusb treats a timeout of 0 as "wait forever": the smallest real wait is 1 ms.
      const auto wait = std::clamp(left, std::chrono::milliseconds{1}, slice);
      int got = 0;
      const int rc = libusb_bulk_transfer(h_, pair_.in, rx_.data(), static_cast<int>(rx_.size()), &got,
                                          static_cast<unsigned>(wait.count()));
      if (got > 0) {
        rx_off_ = 0;
        rx_len_ = static_cast<std::size_t>(got);
        break;
      }
      if (rc != 0 && rc != LIBUSB_ERROR_TIMEOUT) return transfer_error("read", rc, pair_.in);
      // A timeout slice or a zero-length packet: keep waiting until the caller's deadline.
      if (clock_type::now() >= deadline) return std::size_t{0};
    }
    const std::size_t n = std::min(buf.size(), rx_len_ - rx_off_);
    std::copy_n(rx_.begin() + static_cast<std::ptrdiff_t>(rx_off_), n, buf.begin());
    rx_off_ += n;
    return n;
  }

  status write(byte_view data, std::chrono::milliseconds timeout) override {
    // Checked before locking too: after close() no new call may hold up its exclusive lock.
    if (closed_) return closed_error();
    std::shared_lock use(use_);
    if (closed_) return closed_error();
    std::lock_guard one_writer(write_m_);
    const auto deadline = clock_type::now() + timeout;
    std::size_t done = 0;
    while (done < data.size()) {
      if (closed_) return closed_error();
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0) return timeout_error(done, data.size(), timeout);
      const auto wait = std::min(left, slice);
      const std::size_t n = std::min<std::size_t>(data.size() - done, INT_MAX);
      int sent = 0;
      // libusb takes a non-const buffer for both directions; OUT transfers only read it.
      auto* p = const_cast<std::uint8_t*>(data.data() + done);
      const int rc = libusb_bulk_transfer(h_, pair_.out, p, static_cast<int>(n), &sent,
                                          static_cast<unsigned>(wait.count()));
      done += static_cast<std::size_t>(std::max(sent, 0));
      if (rc != 0 && rc != LIBUSB_ERROR_TIMEOUT) return transfer_error("write", rc, pair_.out);
    }
    // A transfer ending on a packet boundary looks unfinished to a device that asked for more
    // bytes: a zero-length packet ends it (what CDC-ACM hosts do for the same reason).
    if (!data.empty() && pair_.out_max_packet != 0 && data.size() % pair_.out_max_packet == 0) {
      int sent = 0;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now());
      const auto wait = std::clamp(left, std::chrono::milliseconds{1}, slice);
      std::uint8_t none = 0;
      const int rc =
          libusb_bulk_transfer(h_, pair_.out, &none, 0, &sent, static_cast<unsigned>(wait.count()));
      if (rc == LIBUSB_ERROR_TIMEOUT) return timeout_error(done, data.size(), timeout);
      if (rc != 0) return transfer_error("write", rc, pair_.out);
    }
    return {};
  }

  void close() override {
    closed_ = true;
    // Waits for transfers on other threads: they notice closed_ within one slice.
    std::unique_lock use(use_);
    if (!h_) return;
    libusb_release_interface(h_, pair_.interface_number);  // reattaches a detached kernel driver
    libusb_close(h_);
    h_ = nullptr;
    libusb_exit(ctx_);
    ctx_ = nullptr;
  }

  bool is_open() const override { return !closed_; }
  const std::string& name() const override { return name_; }

 private:
  error closed_error() const { return make_error("usb.closed", name_ + ": USB endpoints are closed"); }

  error timeout_error(std::size_t done, std::size_t total, std::chrono::milliseconds timeout) const {
    return make_error("usb.timeout", name_ + ": only " + std::to_string(done) + " of " +
                                         std::to_string(total) + " bytes written in " +
                                         std::to_string(timeout.count()) + " ms");
  }

  error transfer_error(const char* what, int rc, std::uint8_t ep) {
    const std::string where = name_ + ": bulk " + what + " on endpoint 0x" + hex4(ep).substr(2) + ": ";
    if (rc == LIBUSB_ERROR_NO_DEVICE)
      return make_error("usb.disconnected", where + "the device was disconnected");
    // A stalled endpoint stays stalled until cleared; clear it so the next transfer (the link
    // layer's retransmission) has a chance.
    if (rc == LIBUSB_ERROR_PIPE) libusb_clear_halt(h_, ep);
    return make_error("usb.io", where + libusb_text(rc));
  }

  libusb_context* ctx_;
  libusb_device_handle* h_;
  bulk_pair pair_;
  std::string name_;
  std::atomic<bool> closed_{false};
  std::shared_mutex use_;  // shared by transfers, exclusive for close()
  std::mutex read_m_;      // one reader at a time: rx_ is the reader's
  std::mutex write_m_;     // one writer at a time: packets of two writes must not interleave
  bytes rx_;
  std::size_t rx_off_ = 0;
  std::size_t rx_len_ = 0;
};

std::string describe(const usb_selector& sel) {
  std::string s = hex4(sel.vid) + ":" + hex4(sel.pid);
  if (sel.serial) s += " serial=" + *sel.serial;
  return s;
}

error open_error(int rc, const std::string& device) {
  if (rc == LIBUSB_ERROR_ACCESS)
    return make_error("usb.access", "no permission to open USB device " + device +
                                        " (a udev rule or group membership is needed)");
  if (rc == LIBUSB_ERROR_NO_DEVICE)
    return make_error("usb.no_device", "USB device " + device + " was disconnected while being opened");
  return make_error("usb.io", "cannot open USB device " + device + ": " + libusb_text(rc));
}

std::string bus_address(libusb_device* dev) {
  return "bus " + std::to_string(libusb_get_bus_number(dev)) + " address " +
         std::to_string(libusb_get_device_address(dev));
}

}  // namespace

result<std::unique_ptr<bulk_endpoints>> open_usb_endpoints(const usb_selector& sel,
                                                           const usb_open_options& opts) {
  auto started = start_libusb();
  if (!started) return started.err();
  context_owner ctx{*started};
  device_list devs;
  devs.count = libusb_get_device_list(ctx.ctx, &devs.list);
  if (devs.count < 0)
    return make_error("usb.io", "cannot enumerate USB devices: " + libusb_text(static_cast<int>(devs.count)));

  const std::string wanted = describe(sel);
  std::vector<libusb_device*> candidates;
  for (ssize_t i = 0; i < devs.count; ++i) {
    libusb_device_descriptor d{};
    if (libusb_get_device_descriptor(devs.list[i], &d) != 0) continue;
    if (d.idVendor == sel.vid && d.idProduct == sel.pid) candidates.push_back(devs.list[i]);
  }
  if (candidates.empty()) return make_error("usb.no_device", "no USB device " + wanted + " is attached");
  if (!sel.serial && candidates.size() > 1)
    return make_error("usb.ambiguous",
                      std::to_string(candidates.size()) + " USB devices " + wanted +
                          " are attached: add :SERIAL to choose one (eftpad ports lists them)");

  // Open candidates until one has the serial asked for. Devices that cannot be opened cannot
  // be told apart: if the one wanted is not found, that is reported as the likely reason.
  libusb_device* dev = nullptr;
  libusb_device_handle* h = nullptr;
  std::string found_serial;
  std::optional<error> first_open_error;
  std::vector<std::string> other_serials;
  for (libusb_device* c : candidates) {
    libusb_device_handle* ch = nullptr;
    const int rc = libusb_open(c, &ch);
    if (rc != 0) {
      if (!first_open_error) first_open_error = open_error(rc, wanted + " (" + bus_address(c) + ")");
      continue;
    }
    libusb_device_descriptor d{};
    libusb_get_device_descriptor(c, &d);
    std::string serial = read_string(ch, d.iSerialNumber);
    if (!sel.serial || serial == *sel.serial) {
      dev = c;
      h = ch;
      found_serial = std::move(serial);
      break;
    }
    other_serials.push_back(serial.empty() ? "(none)" : serial);
    libusb_close(ch);
  }
  if (!h) {
    if (first_open_error) return *first_open_error;
    std::string others;
    for (const auto& s : other_serials) others += (others.empty() ? "" : ", ") + s;
    return make_error("usb.no_device", "no USB device " + wanted + " is attached (devices " + hex4(sel.vid) +
                                           ":" + hex4(sel.pid) + " present have serial " + others + ")");
  }
  auto close_handle = [&h](error e) {
    libusb_close(h);
    return e;
  };

  usb_selector actual{sel.vid, sel.pid, std::nullopt};
  if (!found_serial.empty()) actual.serial = found_serial;
  const std::string name = to_string(actual);

  const auto pairs = bulk_pairs(dev);
  std::optional<bulk_pair> pair;
  for (const auto& p : pairs)
    if (!opts.interface_number || p.interface_number == *opts.interface_number) {
      pair = p;
      break;
    }
  if (!pair)
    return close_handle(make_error(
        "usb.no_interface",
        "USB device " + name +
            (opts.interface_number ? " has no interface " + std::to_string(*opts.interface_number) +
                                         " with a bulk IN and a bulk OUT endpoint"
                                   : " has no interface with a bulk IN and a bulk OUT endpoint")));

  // A kernel driver (cdc_acm, usbserial, ...) bound to the interface is detached when claimed
  // and reattached when released. Not supported off Linux: then there is nothing to detach.
  libusb_set_auto_detach_kernel_driver(h, 1);
  const int rc = libusb_claim_interface(h, pair->interface_number);
  if (rc != 0) {
    const std::string itf = "interface " + std::to_string(pair->interface_number) + " of USB device " + name;
    if (rc == LIBUSB_ERROR_BUSY)
      return close_handle(make_error("usb.busy", itf + " is claimed by another driver or process"));
    if (rc == LIBUSB_ERROR_ACCESS)
      return close_handle(make_error(
          "usb.access", "no permission to claim " + itf + " (a udev rule or group membership is needed)"));
    if (rc == LIBUSB_ERROR_NO_DEVICE)
      return close_handle(
          make_error("usb.no_device", "USB device " + name + " was disconnected while being opened"));
    return close_handle(make_error("usb.io", "cannot claim " + itf + ": " + libusb_text(rc)));
  }

  libusb_context* owned = ctx.ctx;
  ctx.ctx = nullptr;  // the endpoints own the context from here
  return std::unique_ptr<bulk_endpoints>(std::make_unique<libusb_endpoints>(owned, h, *pair, name));
}

result<std::vector<usb_device_info>> list_usb_devices() {
  auto started = start_libusb();
  if (!started) return started.err();
  context_owner ctx{*started};
  device_list devs;
  devs.count = libusb_get_device_list(ctx.ctx, &devs.list);
  if (devs.count < 0)
    return make_error("usb.io", "cannot enumerate USB devices: " + libusb_text(static_cast<int>(devs.count)));

  std::vector<usb_device_info> out;
  for (ssize_t i = 0; i < devs.count; ++i) {
    libusb_device* dev = devs.list[i];
    libusb_device_descriptor d{};
    if (libusb_get_device_descriptor(dev, &d) != 0) continue;
    usb_device_info info;
    info.vid = d.idVendor;
    info.pid = d.idProduct;
    info.bus = libusb_get_bus_number(dev);
    info.address = libusb_get_device_address(dev);
    for (const auto& p : bulk_pairs(dev)) info.bulk_interfaces.push_back(p.interface_number);
    libusb_device_handle* h = nullptr;
    if (libusb_open(dev, &h) == 0) {
      info.strings_read = true;
      info.serial = read_string(h, d.iSerialNumber);
      info.manufacturer = read_string(h, d.iManufacturer);
      info.product = read_string(h, d.iProduct);
      libusb_close(h);
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const usb_device_info& a, const usb_device_info& b) {
    return std::pair(a.bus, a.address) < std::pair(b.bus, b.address);
  });
  return out;
}

}  // namespace eftd::pad::usb
