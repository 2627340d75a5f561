// The endpoint interface under a USB PIN pad: one bulk OUT endpoint (to the device) and one
// bulk IN endpoint (from it), each used with a timeout. Implementations: the libusb adapter
// (eftd/pad/usb.hpp) and an in-memory connected pair for tests (memory_endpoints.hpp).
//
// Bulk endpoints carry packets, not a byte stream, but nothing above them depends on packet
// boundaries: the link layer (eftd/pad/link) frames and checks its own bytes.
//
// Errors carry codes usb.* and name the device (VID:PID and serial), never data:
//   usb.closed        this side was closed
//   usb.disconnected  the device (or the other end of a memory pair) went away
//   usb.timeout       a write did not complete in time (the message says how many bytes went out)
//   usb.io            any other transfer failure (stall, babble, host controller error)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::pad::usb {

class bulk_endpoints {
 public:
  virtual ~bulk_endpoints() = default;
  bulk_endpoints() = default;
  bulk_endpoints(const bulk_endpoints&) = delete;
  bulk_endpoints& operator=(const bulk_endpoints&) = delete;

  // Waits up to `timeout` for data on the IN endpoint and returns the bytes received (at most
  // buf.size(); the rest of a packet is kept for the next read). 0 means the timeout passed
  // with nothing received; zero-length packets are absorbed, never returned as 0.
  // Errors: usb.closed, usb.disconnected, usb.io.
  virtual result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) = 0;

  // Sends all of `data` on the OUT endpoint within `timeout`.
  // Errors: usb.closed, usb.disconnected, usb.timeout, usb.io.
  virtual status write(byte_view data, std::chrono::milliseconds timeout) = 0;

  // Idempotent. Waits for a read or write running on another thread to end (at most its
  // timeout), then releases the device; later calls fail with usb.closed.
  virtual void close() = 0;
  virtual bool is_open() const = 0;

  // "VID:PID" or "VID:PID:SERIAL" (lower-case hex), for error texts and port paths.
  virtual const std::string& name() const = 0;
};

}  // namespace eftd::pad::usb
