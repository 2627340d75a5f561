// Hardware abstraction of a PIN pad: what the command executor needs from a device.
//
// One implementation today (virtual_pad: card profile files and stdout). Real readers
// (serial/USB devices) go behind the same seams; the executor (session.hpp) never knows which
// device it drives. PIN entry uses the keypad (digits polled, shown as '*' by the executor);
// a chip or contactless card comes with its ICC (icc.hpp: power on, APDU exchange, power off).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/pad/messages.hpp"
#include "eftd/padsim/icc.hpp"

namespace eftd::padsim {

// The executor's clock: time is passed in (sans-I/O), so tests drive it by hand.
using pad_clock = std::chrono::steady_clock;

class display_device {
 public:
  virtual ~display_device() = default;
  // Shows the lines (already checked by the decoder: UTF-8, no control characters).
  virtual void show(const pad::display& screen) = 0;
  // Display languages this device has fonts and texts for; a display in another language is
  // answered pad_error unsupported.
  virtual bool has_language(std::string_view language) const {
    (void)language;
    return true;
  }
  // Buzzer and LEDs; false: the device has none (the command is answered unsupported).
  virtual bool beep(std::uint8_t count, std::uint16_t duration_ms) {
    (void)count;
    (void)duration_ms;
    return false;
  }
  virtual bool set_leds(std::uint8_t which, pad::led_state state) {
    (void)which;
    (void)state;
    return false;
  }
};

class keypad {
 public:
  virtual ~keypad() = default;
  // A key pressed since the last call, if any (non-blocking; the executor polls while a
  // command waits for input). Key codes: pad::keys and ASCII digits.
  virtual std::optional<std::uint8_t> poll_key(pad_clock::time_point now) = 0;
};

// What a reader hands over when a card is presented. track2 and pan are card data:
// secure_bytes, never logged.
//   magstripe / fallback: track2 (and the PAN from it);
//   chip: chip = the card's ICC, not yet powered (the executor powers it; a mute chip with a
//         track2 becomes a fallback swipe), track2 = the stripe of the same card if it has one;
//   contactless: chip = the card's ICC.
struct presented_card {
  pad::entry_mode mode = pad::entry_mode::magstripe;
  eftd::secure_bytes track2;
  bool fallback = false;
  eftd::secure_bytes pan;     // ASCII digits: what get_pin binds the PIN block to
  std::shared_ptr<icc> chip;  // chip and contactless cards
};

// Why no card was read; becomes a pad_error reply.
struct reader_failure {
  pad::pad_error_code code = pad::pad_error_code::hardware;
  std::string text;  // human text, never card data
};

class card_reader {
 public:
  using read_result = std::variant<presented_card, reader_failure>;
  virtual ~card_reader() = default;
  // Waits for a card on the interfaces the request enables (a virtual reader answers at once).
  virtual read_result read(const pad::read_card& request) = 0;
  // The session's form: start a read, then poll it (on every tick) until it has an answer, so
  // the session keeps answering ping, get_status and cancel while a person chooses a card. A
  // reader whose read() answers at once (the virtual pad) needs nothing more than these
  // defaults; a reader that waits for a person (the TUI) overrides both.
  virtual void begin_read(const pad::read_card& request) { started_ = read(request); }
  virtual std::optional<read_result> poll_read(pad_clock::time_point now) {
    (void)now;
    auto r = std::move(started_);
    started_.reset();
    return r;
  }
  // Abort a read in progress (no-op for a reader that answers at once).
  virtual void cancel() {}
  // True while a card sits in a reader (remove_card waits for false). Polled.
  virtual bool card_present(pad_clock::time_point now) {
    (void)now;
    return false;
  }

 private:
  std::optional<read_result> started_;
};

}  // namespace eftd::padsim
