// A real bulk loop through the kernel: a FunctionFS gadget (one vendor-specific interface with
// a bulk IN and a bulk OUT endpoint, echoing what it receives) bound to dummy_hcd's virtual
// device controller, so the host side of the same kernel sees a USB device; the test opens it
// with open_usb_port() and moves payloads through libusb.
//
// It needs root, configfs with usb_gadget, FunctionFS, a dummy_udc and /dev/bus/usb. Where
// any is missing (containers, most CI machines) it prints "SKIPPED: <reason>" (CTest then
// reports it as skipped; Catch2 v2 has no SKIP) and passes.
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "eftd/pad/usb.hpp"

#if __has_include(<linux/usb/functionfs.h>)
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#define EFTD_HAVE_FUNCTIONFS 1
#endif

using namespace std::chrono_literals;
using eftd::byte_view;
using eftd::bytes;
using clock_type = std::chrono::steady_clock;

namespace {

void skipped(const std::string& why) {
  // The exact prefix is what tests/usb/CMakeLists.txt turns into a CTest skip.
  WARN("SKIPPED: " << why);
  std::cout << "SKIPPED: " << why << std::endl;
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Writes a configfs attribute; returns 0 or errno.
int write_attr(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int e = n < 0 ? errno : 0;
  ::close(fd);
  return e;
}

bool filesystem_known(const std::string& name) {
  std::ifstream in("/proc/filesystems");
  std::string line;
  while (std::getline(in, line))
    if (line.size() >= name.size() && line.compare(line.size() - name.size(), name.size(), name) == 0)
      return true;
  return false;
}

std::string find_dummy_udc() {
  DIR* d = ::opendir("/sys/class/udc");
  if (!d) return {};
  std::string found;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.starts_with("dummy_udc")) {
      found = n;
      break;
    }
  }
  ::closedir(d);
  return found;
}

void try_modprobe(const char* module) {
  // Best effort: absent modprobe or module just leaves the check below to report a skip.
  if (exists("/sbin/modprobe") || exists("/usr/sbin/modprobe")) {
    const std::string cmd = std::string("modprobe ") + module + " >/dev/null 2>&1";
    [[maybe_unused]] const int rc = std::system(cmd.c_str());
  }
}

// Everything the loop needs, or why it cannot run here.
std::string why_unavailable() {
#ifndef EFTD_HAVE_FUNCTIONFS
  return "built without <linux/usb/functionfs.h>";
#else
  if (::geteuid() != 0) return "creating a USB gadget needs root";
  try_modprobe("libcomposite");
  try_modprobe("usb_f_fs");
  try_modprobe("dummy_hcd");
  if (!exists("/sys/kernel/config/usb_gadget")) {
    if (exists("/sys/kernel/config") && filesystem_known("configfs"))
      ::mount("none", "/sys/kernel/config", "configfs", 0, nullptr);
    if (!exists("/sys/kernel/config/usb_gadget"))
      return "no configfs usb_gadget (/sys/kernel/config/usb_gadget; kernel needs CONFIG_USB_CONFIGFS)";
  }
  if (!filesystem_known("functionfs")) return "the kernel offers no FunctionFS (CONFIG_USB_FUNCTIONFS)";
  if (find_dummy_udc().empty()) return "no dummy_hcd virtual controller (/sys/class/udc/dummy_udc.*)";
  if (!exists("/dev/bus/usb")) return "no /dev/bus/usb: libusb cannot reach host-side devices";
  return {};
#endif
}

#ifdef EFTD_HAVE_FUNCTIONFS

// FunctionFS descriptors (format v2): full- and high-speed copies of one interface with two
// bulk endpoints. Endpoint files appear as ep1 (IN, to the host) and ep2 (OUT, from it).
struct __attribute__((packed)) ffs_interface {
  usb_interface_descriptor intf;
  usb_endpoint_descriptor_no_audio to_host;
  usb_endpoint_descriptor_no_audio from_host;
};

struct __attribute__((packed)) ffs_descriptors {
  usb_functionfs_descs_head_v2 header;
  std::uint32_t fs_count;
  std::uint32_t hs_count;
  ffs_interface fs;
  ffs_interface hs;
};

ffs_interface make_interface(std::uint16_t max_packet) {
  ffs_interface d{};
  d.intf.bLength = sizeof d.intf;
  d.intf.bDescriptorType = USB_DT_INTERFACE;
  d.intf.bNumEndpoints = 2;
  d.intf.bInterfaceClass = USB_CLASS_VENDOR_SPEC;
  d.intf.iInterface = 1;
  for (auto* ep : {&d.to_host, &d.from_host}) {
    ep->bLength = sizeof *ep;
    ep->bDescriptorType = USB_DT_ENDPOINT;
    ep->bmAttributes = USB_ENDPOINT_XFER_BULK;
    ep->wMaxPacketSize = htole16(max_packet);
  }
  d.to_host.bEndpointAddress = 1 | USB_DIR_IN;
  d.from_host.bEndpointAddress = 2 | USB_DIR_OUT;
  return d;
}

struct __attribute__((packed)) ffs_strings {
  usb_functionfs_strings_head header;
  std::uint16_t lang;
  char text[10];
};

void wake(int) {}

// Configfs gadget + FunctionFS instance + the echo thread, torn down in reverse order.
class loop_gadget {
 public:
  explicit loop_gadget(std::string udc) : udc_(std::move(udc)) {
    const std::string id = std::to_string(::getpid());
    serial_ = "eftd-loop-" + id;
    instance_ = "eftd_loop_" + id;
    gadget_ = "/sys/kernel/config/usb_gadget/" + instance_;
    mount_ = "/tmp/eftd-ffs-" + id;
  }
  ~loop_gadget() { teardown(); }
  loop_gadget(const loop_gadget&) = delete;
  loop_gadget& operator=(const loop_gadget&) = delete;

  const std::string& serial() const { return serial_; }

  // Empty on success, else what failed. `busy` is set when the controller is taken by another
  // gadget (a reason to skip, not to fail).
  std::string setup(bool& busy) {
    busy = false;
    auto mk = [&](const std::string& p) { return ::mkdir(p.c_str(), 0755) == 0 || errno == EEXIST; };
    if (!mk(gadget_)) return "mkdir " + gadget_ + ": " + std::strerror(errno);
    made_gadget_ = true;
    if (write_attr(gadget_ + "/idVendor", "0x1d6b") || write_attr(gadget_ + "/idProduct", "0x0104") ||
        write_attr(gadget_ + "/bcdUSB", "0x0200"))
      return "cannot set the gadget's IDs";
    if (!mk(gadget_ + "/strings/0x409") || write_attr(gadget_ + "/strings/0x409/serialnumber", serial_) ||
        write_attr(gadget_ + "/strings/0x409/manufacturer", "eftd") ||
        write_attr(gadget_ + "/strings/0x409/product", "eftd bulk loop"))
      return "cannot set the gadget's strings";
    if (!mk(gadget_ + "/configs/c.1") || !mk(gadget_ + "/configs/c.1/strings/0x409") ||
        write_attr(gadget_ + "/configs/c.1/strings/0x409/configuration", "loop"))
      return "cannot create the configuration";
    if (!mk(gadget_ + "/functions/ffs." + instance_)) return "cannot create the FunctionFS function";
    if (::symlink((gadget_ + "/functions/ffs." + instance_).c_str(),
                  (gadget_ + "/configs/c.1/ffs." + instance_).c_str()) != 0 &&
        errno != EEXIST)
      return std::string("cannot link the function into the configuration: ") + std::strerror(errno);
    if (!mk(mount_)) return "mkdir " + mount_;
    if (::mount(instance_.c_str(), mount_.c_str(), "functionfs", 0, nullptr) != 0)
      return std::string("mount functionfs: ") + std::strerror(errno);
    mounted_ = true;

    ep0_ = ::open((mount_ + "/ep0").c_str(), O_RDWR | O_CLOEXEC);
    if (ep0_ < 0) return std::string("open ep0: ") + std::strerror(errno);
    ffs_descriptors desc{};
    desc.header.magic = htole32(FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
    desc.header.flags = htole32(FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC);
    desc.header.length = htole32(sizeof desc);
    desc.fs_count = htole32(3);
    desc.hs_count = htole32(3);
    desc.fs = make_interface(64);
    desc.hs = make_interface(512);
    if (::write(ep0_, &desc, sizeof desc) != static_cast<ssize_t>(sizeof desc))
      return std::string("write descriptors: ") + std::strerror(errno);
    ffs_strings str{};
    str.header.magic = htole32(FUNCTIONFS_STRINGS_MAGIC);
    str.header.length = htole32(sizeof str);
    str.header.str_count = htole32(1);
    str.header.lang_count = htole32(1);
    str.lang = htole16(0x0409);
    std::memcpy(str.text, "eftd loop", 10);
    if (::write(ep0_, &str, sizeof str) != static_cast<ssize_t>(sizeof str))
      return std::string("write strings: ") + std::strerror(errno);

    if (const int e = write_attr(gadget_ + "/UDC", udc_)) {
      busy = e == EBUSY;
      return "bind to " + udc_ + ": " + std::strerror(e);
    }
    bound_ = true;
    // The host has configured the device when FunctionFS reports ENABLE.
    if (!wait_for_enable(10s)) return "no FUNCTIONFS_ENABLE within 10 s of binding";
    to_host_ = ::open((mount_ + "/ep1").c_str(), O_RDWR | O_CLOEXEC);
    from_host_ = ::open((mount_ + "/ep2").c_str(), O_RDWR | O_CLOEXEC);
    if (to_host_ < 0 || from_host_ < 0) return std::string("open ep1/ep2: ") + std::strerror(errno);
    start_echo();
    return {};
  }

  // Like pulling the plug: the host sees the device disconnect.
  void unbind() {
    if (bound_) write_attr(gadget_ + "/UDC", "\n");
    bound_ = false;
  }

 private:
  bool wait_for_enable(std::chrono::milliseconds limit) {
    const auto deadline = clock_type::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left.count() <= 0) return false;
      pollfd p{ep0_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      usb_functionfs_event ev[4];
      const ssize_t n = ::read(ep0_, ev, sizeof ev);
      if (n <= 0) continue;
      for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof ev[0]; ++i)
        if (ev[i].type == FUNCTIONFS_ENABLE) return true;
    }
  }

  void start_echo() {
    struct sigaction sa {};
    sa.sa_handler = wake;  // no SA_RESTART: a blocked endpoint read returns EINTR
    ::sigaction(SIGUSR1, &sa, nullptr);
    echo_ = std::thread([this] {
      std::vector<std::uint8_t> buf(16 * 1024);
      // EINTR is the stop signal; any other error means the function was disabled (unbound).
      bool failed = false;
      while (!stop_ && !failed) {
        const ssize_t n = ::read(from_host_, buf.data(), buf.size());
        if (n < 0 && errno != EINTR) failed = true;
        if (n <= 0) continue;  // also a zero-length packet
        ssize_t done = 0;
        while (done < n && !stop_ && !failed) {
          const ssize_t w = ::write(to_host_, buf.data() + done, static_cast<std::size_t>(n - done));
          if (w > 0) done += w;
          if (w < 0 && errno != EINTR) failed = true;
        }
      }
      std::lock_guard lock(m_);
      echo_done_ = true;
      cv_.notify_all();
    });
  }

  void teardown() {
    if (echo_.joinable()) {
      stop_ = true;
      // Endpoint I/O blocks in the kernel; a signal interrupts it. Repeated, in case one lands
      // just before the thread enters read().
      std::unique_lock lock(m_);
      while (!cv_.wait_for(lock, 50ms, [&] { return echo_done_; }))
        ::pthread_kill(echo_.native_handle(), SIGUSR1);
      lock.unlock();
      echo_.join();
    }
    unbind();
    for (int* fd : {&to_host_, &from_host_, &ep0_})
      if (*fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
    if (mounted_) ::umount2(mount_.c_str(), 0);
    ::rmdir(mount_.c_str());
    if (made_gadget_) {
      ::unlink((gadget_ + "/configs/c.1/ffs." + instance_).c_str());
      ::rmdir((gadget_ + "/configs/c.1/strings/0x409").c_str());
      ::rmdir((gadget_ + "/configs/c.1").c_str());
      ::rmdir((gadget_ + "/functions/ffs." + instance_).c_str());
      ::rmdir((gadget_ + "/strings/0x409").c_str());
      ::rmdir(gadget_.c_str());
    }
  }

  std::string udc_;
  std::string serial_;
  std::string instance_;
  std::string gadget_;
  std::string mount_;
  bool made_gadget_ = false;
  bool mounted_ = false;
  bool bound_ = false;
  int ep0_ = -1;
  int to_host_ = -1;
  int from_host_ = -1;
  std::thread echo_;
  std::atomic<bool> stop_{false};
  std::mutex m_;
  std::condition_variable cv_;
  bool echo_done_ = false;
};

#endif  // EFTD_HAVE_FUNCTIONFS

}  // namespace

TEST_CASE("real bulk loop through dummy_hcd and a FunctionFS gadget", "[usb][gadget]") {
  const std::string why = why_unavailable();
  if (!why.empty()) {
    skipped(why);
    return;
  }
#ifdef EFTD_HAVE_FUNCTIONFS
  loop_gadget gadget(find_dummy_udc());
  bool busy = false;
  const std::string failed = gadget.setup(busy);
  if (busy) {
    skipped(failed);
    return;
  }
  INFO(failed);
  REQUIRE(failed.empty());

  const std::string selector = "1d6b:0104:" + gadget.serial();
  auto port = eftd::pad::usb::open_usb_port(selector);
  INFO((port ? "" : port.err().code + " " + port.err().message));
  REQUIRE(port.has_value());
  CHECK((*port)->path() == "usb:" + selector);

  // The gadget is listed with its bulk interface, and a second open finds it claimed.
  auto devs = eftd::pad::usb::list_usb_devices();
  REQUIRE(devs.has_value());
  bool listed = false;
  for (const auto& d : *devs)
    if (d.serial == gadget.serial()) listed = d.bulk_interfaces == std::vector<int>{0};
  CHECK(listed);
  auto second = eftd::pad::usb::open_usb_port(selector);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.err().code == "usb.busy");

  // Sizes around the packet sizes (64 full speed, 512 high speed): exact multiples need the
  // zero-length packet that ends a transfer.
  std::mt19937 rng(5150);
  for (std::size_t size : {1u, 63u, 64u, 511u, 512u, 513u, 1024u, 4000u, 16384u, 65536u}) {
    bytes out(size);
    for (auto& b : out) b = static_cast<std::uint8_t>(rng());
    INFO("payload of " << size << " bytes");
    auto st = (*port)->write(out, 5s);
    INFO((st ? "" : st.err().code + " " + st.err().message));
    REQUIRE(st);
    bytes back;
    const auto deadline = clock_type::now() + 10s;
    std::uint8_t buf[700];  // deliberately not a multiple of the packet size
    while (back.size() < size && clock_type::now() < deadline) {
      auto r = (*port)->read(buf, 1s);
      INFO((r ? "" : r.err().code + " " + r.err().message));
      REQUIRE(r.has_value());
      back.insert(back.end(), buf, buf + *r);
    }
    CHECK(back.size() == size);
    CHECK(back == out);
  }

  // Unplugging is a hangup to the link drivers, not a timeout.
  gadget.unbind();
  std::uint8_t buf[64];
  eftd::result<std::size_t> r = std::size_t{0};
  const auto deadline = clock_type::now() + 5s;
  while (r && clock_type::now() < deadline) r = (*port)->read(buf, 200ms);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "serial.hangup");
#endif
}
