// The virtual pad: a display that prints `DISPLAY <line1> | <line2>` lines (and `BEEP ...`,
// `LEDS ...`), a keypad and card slot driven by a pad_script's input events, and a card
// reader that presents card profiles in turn (one per read_card). Chip and contactless
// profiles come with an ICC simulator (icc.hpp), one per profile for the pad's lifetime.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/hardware.hpp"
#include "eftd/padsim/icc.hpp"
#include "eftd/padsim/pad_script.hpp"

namespace eftd::padsim {

class virtual_pad final : public display_device, public keypad, public card_reader {
 public:
  // `print` receives each display as one line without a newline (eftpad writes it to stdout).
  // No cards, or no_card = true: every read_card times out.
  virtual_pad(std::vector<card_profile> cards, std::function<void(const std::string&)> print,
              bool no_card = false);

  // Input events, languages and card slot state from a script (replaces earlier input).
  void load_script(const pad_script& script);

  void show(const pad::display& screen) override;
  bool has_language(std::string_view language) const override;
  bool beep(std::uint8_t count, std::uint16_t duration_ms) override;
  bool set_leds(std::uint8_t which, pad::led_state state) override;
  std::optional<std::uint8_t> poll_key(pad_clock::time_point now) override;
  std::variant<presented_card, reader_failure> read(const pad::read_card& request) override;
  bool card_present(pad_clock::time_point now) override;

  // "DISPLAY a | b" for a screen (also "DISPLAY" for an empty screen).
  static std::string display_line(const pad::display& screen);
  // The screen as `width` columns: each line cut to width and placed by its alignment.
  static std::vector<std::string> render(const pad::display& screen, std::size_t width = 20);

  std::size_t reads() const noexcept { return reads_; }
  const pad::display& screen() const noexcept { return screen_; }
  std::uint8_t leds_on() const noexcept { return leds_on_; }
  std::uint8_t leds_blinking() const noexcept { return leds_blink_; }
  std::size_t beeps() const noexcept { return beeps_; }
  std::size_t pending_input() const noexcept { return input_.size(); }

 private:
  std::vector<card_profile> cards_;
  std::function<void(const std::string&)> print_;
  bool no_card_;
  std::size_t next_ = 0;
  std::size_t reads_ = 0;
  pad::display screen_;
  std::vector<std::string> languages_;  // empty: any
  bool card_in_ = false;
  bool card_stays_in_ = false;
  std::deque<script_event> input_;
  std::optional<pad_clock::time_point> pause_started_;
  std::uint8_t leds_on_ = 0, leds_blink_ = 0;
  std::size_t beeps_ = 0;

  std::vector<std::shared_ptr<icc>> chips_;  // per card profile, made on first use

  // Drops elapsed pauses at the front; false while a pause still holds the queue.
  bool input_ready(pad_clock::time_point now);
  std::shared_ptr<icc> chip_of(std::size_t index);
};

}  // namespace eftd::padsim
