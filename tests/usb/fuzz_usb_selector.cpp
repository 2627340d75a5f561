// Fuzz harness for the USB selector parser (operator input from `eftpad bridge --usb`): any
// text either parses into a selector whose canonical form parses back to the same selector,
// or is refused as usb.bad_selector with a printable message. Any violation aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eftd/pad/usb.hpp"

using namespace eftd::pad::usb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto sel = parse_usb_selector(text);
  if (!sel) {
    if (sel.err().code != "usb.bad_selector") std::abort();
    for (char c : sel.err().message)
      if (c < 0x20 || c > 0x7e) std::abort();
    return 0;
  }
  if (sel->serial && (sel->serial->empty() || sel->serial->size() > 126)) std::abort();
  auto again = parse_usb_selector("usb:" + to_string(*sel));
  if (!again || !(*again == *sel)) std::abort();
  return 0;
}
