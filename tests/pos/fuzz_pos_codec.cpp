// Fuzz harness for the POS codec: framing (line_reader) and decode. Whatever decodes must
// re-encode to a line that decodes to the same message and encodes identically again
// (encode is a fixed point after one round). Any violation aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "eftd/pos/codec.hpp"

namespace {

void check_line(std::string_view line) {
  auto first = eftd::pos::decode(line);
  if (!first) {
    if (first.err().code.empty()) std::abort();
    return;
  }
  const std::string once = eftd::pos::encode(*first);
  if (once.empty() || once.back() != '\n' || once.find('\n') != once.size() - 1) std::abort();
  auto second = eftd::pos::decode(std::string_view(once).substr(0, once.size() - 1));
  if (!second) std::abort();
  if (!(*second == *first)) std::abort();
  if (eftd::pos::encode(*second) != once) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check_line(in);

  // The same bytes as a stream: chunk size from the first byte, a small line limit so the
  // oversize path is reached with small inputs.
  const std::size_t chunk = size > 0 ? (data[0] % 17) + 1 : 1;
  eftd::pos::line_reader reader(size > 1 ? 64 + data[1] * 16 : 64);
  for (std::size_t off = 0; off < size; off += chunk) {
    reader.feed(in.substr(off, chunk));
    for (;;) {
      auto line = reader.next();
      if (!line) {
        if (line.err().code != "pos.frame_too_large") std::abort();
        return 0;
      }
      if (!*line) break;
      if ((*line)->empty() || (*line)->find('\n') != std::string::npos) std::abort();
      check_line(**line);
    }
  }
  return 0;
}
