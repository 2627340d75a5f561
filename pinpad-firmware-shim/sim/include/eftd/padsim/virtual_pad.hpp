// The virtual pad: a display that prints `DISPLAY <line1> | <line2>` lines, a keypad with
// no keys, and a card reader that presents card profiles in turn (one per read_card).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/hardware.hpp"

namespace eftd::padsim {

class virtual_pad final : public display_device, public keypad, public card_reader {
 public:
  // `print` receives each display as one line without a newline (eftpad writes it to stdout).
  // No cards, or no_card = true: every read_card times out.
  virtual_pad(std::vector<card_profile> cards, std::function<void(const std::string&)> print,
              bool no_card = false);

  void show(const pad::display& screen) override;
  std::optional<std::uint8_t> poll_key() override { return std::nullopt; }
  std::variant<presented_card, reader_failure> read(const pad::read_card& request) override;

  // "DISPLAY a | b" for a screen (also "DISPLAY" for an empty screen).
  static std::string display_line(const pad::display& screen);

  std::size_t reads() const noexcept { return reads_; }

 private:
  std::vector<card_profile> cards_;
  std::function<void(const std::string&)> print_;
  bool no_card_;
  std::size_t next_ = 0;
  std::size_t reads_ = 0;
};

}  // namespace eftd::padsim
