#include "eftd/padsim/virtual_pad.hpp"

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

void virtual_pad::show(const pad::display& screen) {
  if (print_) print_(display_line(screen));
}

std::variant<presented_card, reader_failure> virtual_pad::read(const pad::read_card& request) {
  ++reads_;
  if (no_card_ || cards_.empty()) return reader_failure{pad::pad_error_code::timeout, "no card presented"};
  const card_profile& card = cards_[next_];
  next_ = (next_ + 1) % cards_.size();
  // A magstripe profile can only be read when the server enabled the stripe reader; a real
  // pad would keep waiting, so the honest answer is a timeout.
  if ((request.interfaces & static_cast<std::uint8_t>(pad::interface_mask::magstripe)) == 0)
    return reader_failure{pad::pad_error_code::timeout, "no card presented on an enabled interface"};
  return presented_card{card.mode, card.track2, card.fallback};
}

}  // namespace eftd::padsim
