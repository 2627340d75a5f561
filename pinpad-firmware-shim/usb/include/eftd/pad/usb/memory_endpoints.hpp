// Two connected bulk_endpoints objects in memory: what one side writes, the other reads, cut
// into packets of `packet_size` bytes like a bulk pipe. Thread-safe: each side may be used by
// a reader thread and a writer thread at once, and the two sides by different threads.
//
// Faults for tests: per direction, packets can be dropped or have one byte damaged, chosen
// by a seeded generator so a run replays; the pair can be unplugged (both sides then fail
// with usb.disconnected once the data already in transit has been read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "eftd/pad/usb/bulk_endpoints.hpp"

namespace eftd::pad::usb {

struct memory_faults {
  double drop_packet = 0;     // chance per packet of being lost
  double corrupt_packet = 0;  // chance per packet of one of its bytes being changed
  std::uint32_t seed = 1;
};

struct memory_pair_options {
  std::string name = "0000:0000:memory";  // name() of both sides
  std::size_t packet_size = 64;           // full-speed bulk packet size
  std::size_t capacity = 1024 * 1024;     // bytes in transit per direction before writes wait
  memory_faults host_to_device;           // applied to what `host` writes
  memory_faults device_to_host;           // applied to what `device` writes
};

struct memory_fault_counts {
  std::uint64_t packets = 0;  // packets written
  std::uint64_t dropped = 0;
  std::uint64_t corrupted = 0;
};

class memory_endpoint_pair {
 public:
  explicit memory_endpoint_pair(memory_pair_options opts = {});
  ~memory_endpoint_pair();
  memory_endpoint_pair(const memory_endpoint_pair&) = delete;
  memory_endpoint_pair& operator=(const memory_endpoint_pair&) = delete;

  // The two sides. Ownership can be taken (take_host/take_device), for example to hand a side
  // to make_usb_serial_port(); the shared state outlives both sides and this object.
  bulk_endpoints& host();
  bulk_endpoints& device();
  std::unique_ptr<bulk_endpoints> take_host();
  std::unique_ptr<bulk_endpoints> take_device();

  // Like pulling the cable: both sides fail with usb.disconnected once data in transit is read.
  void unplug();

  memory_fault_counts host_to_device_counts() const;
  memory_fault_counts device_to_host_counts() const;

  struct shared;

 private:
  std::shared_ptr<shared> shared_;
  std::unique_ptr<bulk_endpoints> host_;
  std::unique_ptr<bulk_endpoints> device_;
};

}  // namespace eftd::pad::usb
