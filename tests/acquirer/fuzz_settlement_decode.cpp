// Fuzz harness: an acquirer's settlement file is untrusted input. Every input is decoded with
// both shipped layouts; a file that decodes must encode and decode to the same records.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eftd/settlement/layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = eftd::settlement;
  static const auto fixed = st::shipped_layout("fixed-width");
  static const auto csv = st::shipped_layout("csv");
  if (!fixed || !csv) std::abort();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const auto* l : {&*fixed, &*csv}) {
    auto f = st::decode(*l, bytes);
    if (!f) continue;
    auto again = st::encode(*l, *f);
    if (!again) std::abort();  // what decoded must be encodable
    auto back = st::decode(*l, *again);
    if (!back || !(*back == *f)) std::abort();
  }
  return 0;
}
