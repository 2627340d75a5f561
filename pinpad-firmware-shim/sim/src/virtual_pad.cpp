#include "eftd/padsim/virtual_pad.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace eftd::padsim {

virtual_pad::virtual_pad(std::vector<card_profile> cards, std::function<void(const std::string&)> print,
                         bool no_card)
    : cards_(std::move(cards)), print_(std::move(print)), no_card_(no_card) {}

std::string virtual_pad::display_line(const pad::display& screen) {
  std::string line = "DISPLAY";
  for (std::size_t i = 0; i < screen.lines.size(); ++i) {
    line += i == 0 ? " " : " | ";
    line += screen.lines[i];
  }
  return line;
}

void virtual_pad::load_script(const pad_script& script) {
  languages_ = script.languages;
  card_in_ = script.card_inserted;
  card_stays_in_ = script.card_stays_in;
  input_.assign(script.events.begin(), script.events.end());
  pause_started_.reset();
}

void virtual_pad::show(const pad::display& screen) {
  screen_ = screen;
  if (print_) print_(display_line(screen));
}

std::vector<std::string> virtual_pad::render(const pad::display& screen, std::size_t width) {
  std::vector<std::string> rows;
  for (std::size_t i = 0; i < screen.lines.size(); ++i) {
    // Width in bytes: the virtual display is a test fixture, not a font renderer.
    std::string text = screen.lines[i].substr(0, width);
    const auto a = i < screen.align.size() ? screen.align[i] : pad::alignment::left;
    const std::size_t pad = width - text.size();
    const std::size_t left = a == pad::alignment::right ? pad : a == pad::alignment::center ? pad / 2 : 0;
    rows.push_back(std::string(left, ' ') + text + std::string(pad - left, ' '));
  }
  return rows;
}

bool virtual_pad::has_language(std::string_view language) const {
  return languages_.empty() || std::find(languages_.begin(), languages_.end(), language) != languages_.end();
}

bool virtual_pad::beep(std::uint8_t count, std::uint16_t duration_ms) {
  beeps_ += count;
  if (print_) print_(fmt::format("BEEP {}x{}ms", count, duration_ms));
  return true;
}

bool virtual_pad::set_leds(std::uint8_t which, pad::led_state state) {
  which &= 0x0F;
  leds_on_ = state == pad::led_state::on ? (leds_on_ | which) : (leds_on_ & ~which);
  leds_blink_ = state == pad::led_state::blink ? (leds_blink_ | which) : (leds_blink_ & ~which);
  if (print_) print_(fmt::format("LEDS on=0x{:X} blink=0x{:X}", leds_on_, leds_blink_));
  return true;
}

bool virtual_pad::input_ready(pad_clock::time_point now) {
  while (!input_.empty() && input_.front().what == script_event::kind::pause) {
    if (!pause_started_) pause_started_ = now;
    if (now - *pause_started_ < input_.front().pause) return false;
    input_.pop_front();
    pause_started_.reset();
  }
  return !input_.empty();
}

std::optional<std::uint8_t> virtual_pad::poll_key(pad_clock::time_point now) {
  if (!input_ready(now) || input_.front().what != script_event::kind::key) return std::nullopt;
  const auto key = input_.front().key;
  input_.pop_front();
  return key;
}

bool virtual_pad::card_present(pad_clock::time_point now) {
  if (card_in_ && input_ready(now) && input_.front().what == script_event::kind::remove) {
    input_.pop_front();
    card_in_ = false;
  }
  return card_in_;
}

std::variant<presented_card, reader_failure> virtual_pad::read(const pad::read_card& request) {
  ++reads_;
  if (no_card_ || cards_.empty()) return reader_failure{pad::pad_error_code::timeout, "no card presented"};
  const std::size_t index = next_;
  const card_profile& card = cards_[index];
  next_ = (next_ + 1) % cards_.size();
  auto enabled = [&](pad::interface_mask m) {
    return (request.interfaces & static_cast<std::uint8_t>(m)) != 0;
  };
  // A card can only be read at an interface the server enabled; a real pad would keep
  // waiting, so the honest answer is a timeout. A chip card is inserted when the chip reader
  // is on, else swiped when it has a stripe.
  presented_card out;
  out.pan = card.pan;
  if (card.kind == "contactless") {
    if (!enabled(pad::interface_mask::contactless))
      return reader_failure{pad::pad_error_code::timeout, "no card presented on an enabled interface"};
    out.mode = pad::entry_mode::contactless;
    out.chip = chip_of(index);
    out.track2 = card.track2;  // unused: a contactless read reports no stripe
    return out;
  }
  if (card.kind == "chip" && enabled(pad::interface_mask::chip)) {
    out.mode = pad::entry_mode::chip;
    out.chip = chip_of(index);
    out.track2 = card.track2;  // the stripe of the same card, for a fallback swipe
    if (card_stays_in_) card_in_ = true;
    return out;
  }
  if (!enabled(pad::interface_mask::magstripe) || card.track2.empty())
    return reader_failure{pad::pad_error_code::timeout, "no card presented on an enabled interface"};
  if (card_stays_in_) card_in_ = true;
  out.mode = card.mode == pad::entry_mode::fallback_magstripe ? card.mode : pad::entry_mode::magstripe;
  out.track2 = card.track2;
  out.fallback = card.fallback;
  return out;
}

std::shared_ptr<icc> virtual_pad::chip_of(std::size_t index) {
  // One simulator per profile for the pad's lifetime: the card's counters (ATC, PIN tries)
  // survive between reads, as on a real card.
  if (chips_.size() < cards_.size()) chips_.resize(cards_.size());
  if (!chips_[index]) chips_[index] = make_icc_sim(cards_[index]);
  return chips_[index];
}

}  // namespace eftd::padsim
