// Hardware abstraction of a PIN pad: what the command executor needs from a device.
//
// One implementation today (virtual_pad: a card profile file and stdout). The PIN pad issue
// adds real readers (serial/USB devices), PIN entry and chip APDU exchange behind the same
// seams; the executor (session.hpp) never knows which device it drives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "eftd/core/secure.hpp"
#include "eftd/pad/messages.hpp"

namespace eftd::padsim {

class display_device {
 public:
  virtual ~display_device() = default;
  // Shows the lines (already checked by the decoder: UTF-8, no control characters).
  virtual void show(const pad::display& screen) = 0;
};

class keypad {
 public:
  virtual ~keypad() = default;
  // A key pressed since the last call, if any (non-blocking). Unused by the skeleton's
  // executor; the cancel key becomes an event_key once the executor polls it.
  virtual std::optional<std::uint8_t> poll_key() = 0;
};

// What a reader hands over when a card is presented. track2 is card data: secure_bytes,
// never logged.
struct presented_card {
  pad::entry_mode mode = pad::entry_mode::magstripe;
  eftd::secure_bytes track2;
  bool fallback = false;
};

// Why no card was read; becomes a pad_error reply.
struct reader_failure {
  pad::pad_error_code code = pad::pad_error_code::hardware;
  std::string text;  // human text, never card data
};

class card_reader {
 public:
  virtual ~card_reader() = default;
  // Waits for a card on the interfaces the request enables (a virtual reader answers at once).
  virtual std::variant<presented_card, reader_failure> read(const pad::read_card& request) = 0;
  // Abort a read in progress (no-op for a reader that answers at once).
  virtual void cancel() {}
};

}  // namespace eftd::padsim
