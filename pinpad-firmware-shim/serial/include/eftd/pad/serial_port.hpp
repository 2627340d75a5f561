// One interface for a serial line to a PIN pad, with two implementations:
//   - termios: any tty path, pseudo-terminals included (tests run it over socat pty pairs);
//   - libserialport: real ports as libserialport knows them (it cannot open ptys in 0.1.1).
// Plus enumeration of the machine's ports through libserialport (`eftpad ports`).
//
// The line is always 8 data bits, no parity, 1 stop bit, no flow control: the link layer
// (eftd/pad/link) does its own error recovery, and PIN pads' RS232 ports rarely wire RTS/CTS.
// Errors carry codes serial.* and name the port path, never data.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::pad {

struct serial_settings {
  std::uint32_t baud = 115200;
};

class serial_port {
 public:
  virtual ~serial_port() = default;
  serial_port() = default;
  serial_port(const serial_port&) = delete;
  serial_port& operator=(const serial_port&) = delete;

  // Waits up to `timeout` for input, then returns the bytes available (at most buf.size()).
  // 0 bytes means the timeout passed. Errors: serial.closed, serial.hangup (the other end of
  // a pty went away, or a USB adapter was unplugged), serial.read_failed.
  virtual result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) = 0;
  // Writes all of `data` within `timeout`. Errors: serial.closed, serial.hangup,
  // serial.write_timeout (message says how many bytes went out), serial.write_failed.
  virtual status write(byte_view data, std::chrono::milliseconds timeout) = 0;
  // Idempotent; later reads and writes fail with serial.closed.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
  virtual const std::string& path() const = 0;
};

enum class serial_backend { termios, libserialport };

// Errors: serial.not_found, serial.open_failed, serial.not_a_tty, serial.busy (another process
// holds the port's advisory lock), serial.bad_baud, serial.config_failed.
result<std::unique_ptr<serial_port>> open_termios_port(const std::string& path,
                                                       const serial_settings& s = {});
result<std::unique_ptr<serial_port>> open_libserialport_port(const std::string& path,
                                                             const serial_settings& s = {});
result<std::unique_ptr<serial_port>> open_serial_port(serial_backend backend, const std::string& path,
                                                      const serial_settings& s = {});

struct serial_port_info {
  std::string name;         // device path, e.g. /dev/ttyUSB0
  std::string description;  // libserialport's human description
  std::string transport;    // "native", "usb", "bluetooth" or "unknown"
  std::optional<std::uint16_t> usb_vid;
  std::optional<std::uint16_t> usb_pid;
  std::string usb_serial;
  std::string usb_manufacturer;
  std::string usb_product;
};

// The machine's serial ports, sorted by name. Error: serial.enumerate_failed.
result<std::vector<serial_port_info>> list_serial_ports();

// One line for `eftpad ports`:
//   /dev/ttyUSB0 usb 0403:6001 serial=A50285BI "FT232R USB UART"
//   /dev/ttyS0 native "ttyS0"
std::string format_port_line(const serial_port_info& p);

}  // namespace eftd::pad
