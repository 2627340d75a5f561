// The in-memory endpoint pair: one mutex and one condition variable for both directions keep
// it simple and obviously race-free; tests move megabytes, not gigabytes.
#include "eftd/pad/usb/memory_endpoints.hpp"

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>

namespace eftd::pad::usb {

namespace {

struct direction {
  explicit direction(const memory_faults& f) : faults(f), rng(f.seed) {}
  std::deque<bytes> packets;
  std::size_t front_offset = 0;  // bytes of packets.front() already read
  std::size_t in_transit = 0;    // unread bytes, for the capacity bound
  memory_faults faults;
  std::mt19937 rng;
  memory_fault_counts counts;
};

}  // namespace

struct memory_endpoint_pair::shared {
  explicit shared(const memory_pair_options& o)
      : opts(o), to_device(o.host_to_device), to_host(o.device_to_host) {
    if (opts.packet_size == 0) opts.packet_size = 1;
    if (opts.capacity < opts.packet_size) opts.capacity = opts.packet_size;
  }
  memory_pair_options opts;
  std::mutex m;
  std::condition_variable cv;
  direction to_device;
  direction to_host;
  bool host_closed = false;
  bool device_closed = false;
  bool unplugged = false;
};

namespace {

using clock_type = std::chrono::steady_clock;
using shared_state = memory_endpoint_pair::shared;

class memory_side final : public bulk_endpoints {
 public:
  memory_side(std::shared_ptr<shared_state> s, bool host) : s_(std::move(s)), host_(host) {}
  ~memory_side() override { close(); }

  result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) override {
    const auto deadline = clock_type::now() + timeout;
    std::unique_lock lock(s_->m);
    direction& in = host_ ? s_->to_host : s_->to_device;
    for (;;) {
      if (my_closed()) return closed_error();
      if (buf.empty()) return std::size_t{0};
      if (!in.packets.empty()) {
        bytes& front = in.packets.front();
        const std::size_t n = std::min(buf.size(), front.size() - in.front_offset);
        std::copy_n(front.begin() + static_cast<std::ptrdiff_t>(in.front_offset), n, buf.begin());
        in.front_offset += n;
        in.in_transit -= n;
        if (in.front_offset == front.size()) {
          in.packets.pop_front();
          in.front_offset = 0;
        }
        s_->cv.notify_all();  // a writer may wait for room
        return n;
      }
      // Data in transit is read first; then the absence of the other end shows.
      if (s_->unplugged || peer_closed()) return gone_error();
      if (s_->cv.wait_until(lock, deadline) == std::cv_status::timeout && in.packets.empty() &&
          !my_closed() && !s_->unplugged && !peer_closed())
        return std::size_t{0};
    }
  }

  status write(byte_view data, std::chrono::milliseconds timeout) override {
    const auto deadline = clock_type::now() + timeout;
    std::unique_lock lock(s_->m);
    direction& out = host_ ? s_->to_device : s_->to_host;
    std::size_t done = 0;
    while (done < data.size()) {
      if (my_closed()) return closed_error();
      if (s_->unplugged || peer_closed()) return gone_error();
      const std::size_t n = std::min(s_->opts.packet_size, data.size() - done);
      if (out.in_transit + n > s_->opts.capacity) {
        if (s_->cv.wait_until(lock, deadline) == std::cv_status::timeout &&
            out.in_transit + n > s_->opts.capacity)
          return make_error("usb.timeout", s_->opts.name + ": only " + std::to_string(done) + " of " +
                                               std::to_string(data.size()) + " bytes written in " +
                                               std::to_string(timeout.count()) + " ms");
        continue;
      }
      bytes packet(data.begin() + static_cast<std::ptrdiff_t>(done),
                   data.begin() + static_cast<std::ptrdiff_t>(done + n));
      done += n;
      ++out.counts.packets;
      std::uniform_real_distribution<double> chance(0, 1);
      if (out.faults.drop_packet > 0 && chance(out.rng) < out.faults.drop_packet) {
        ++out.counts.dropped;
        continue;
      }
      if (out.faults.corrupt_packet > 0 && chance(out.rng) < out.faults.corrupt_packet) {
        // XOR with a non-zero value: the byte really changes.
        const std::size_t at = out.rng() % packet.size();
        packet[at] ^= static_cast<std::uint8_t>(1 + out.rng() % 255);
        ++out.counts.corrupted;
      }
      out.in_transit += packet.size();
      out.packets.push_back(std::move(packet));
      s_->cv.notify_all();
    }
    return {};
  }

  void close() override {
    std::lock_guard lock(s_->m);
    (host_ ? s_->host_closed : s_->device_closed) = true;
    s_->cv.notify_all();
  }

  bool is_open() const override {
    std::lock_guard lock(s_->m);
    return !(host_ ? s_->host_closed : s_->device_closed);
  }

  const std::string& name() const override { return s_->opts.name; }

 private:
  bool my_closed() const { return host_ ? s_->host_closed : s_->device_closed; }
  bool peer_closed() const { return host_ ? s_->device_closed : s_->host_closed; }
  error closed_error() const { return make_error("usb.closed", s_->opts.name + ": endpoints are closed"); }
  error gone_error() const {
    return make_error("usb.disconnected", s_->opts.name + (host_ ? ": device" : ": host") + " disconnected");
  }

  std::shared_ptr<shared_state> s_;
  bool host_;
};

}  // namespace

memory_endpoint_pair::memory_endpoint_pair(memory_pair_options opts)
    : shared_(std::make_shared<shared>(opts)),
      host_(std::make_unique<memory_side>(shared_, true)),
      device_(std::make_unique<memory_side>(shared_, false)) {}

memory_endpoint_pair::~memory_endpoint_pair() = default;

bulk_endpoints& memory_endpoint_pair::host() {
  assert(host_);
  return *host_;
}
bulk_endpoints& memory_endpoint_pair::device() {
  assert(device_);
  return *device_;
}
std::unique_ptr<bulk_endpoints> memory_endpoint_pair::take_host() {
  return std::move(host_);
}
std::unique_ptr<bulk_endpoints> memory_endpoint_pair::take_device() {
  return std::move(device_);
}

void memory_endpoint_pair::unplug() {
  std::lock_guard lock(shared_->m);
  shared_->unplugged = true;
  shared_->cv.notify_all();
}

memory_fault_counts memory_endpoint_pair::host_to_device_counts() const {
  std::lock_guard lock(shared_->m);
  return shared_->to_device.counts;
}
memory_fault_counts memory_endpoint_pair::device_to_host_counts() const {
  std::lock_guard lock(shared_->m);
  return shared_->to_host.counts;
}

}  // namespace eftd::pad::usb
