// libFuzzer harness for track 2: the input is tried as ASCII track 2 and as tag 57 BCD.
// Whatever parses must re-encode to a form that parses to the same track.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eftd/core/card.hpp"

namespace {
void check_round_trip(const eftd::track2& t) {
  const eftd::secure_bytes ascii = t.encode_ascii();
  auto again =
      eftd::track2::parse(std::string_view(reinterpret_cast<const char*>(ascii.view().data()), ascii.size()));
  if (!again || !(*again == t)) std::abort();
  auto from57 = eftd::track2::parse_tag57(t.encode_tag57().view());
  if (!from57 || !(*from57 == t)) std::abort();
  // Masking must never expose more than 10 digits.
  const std::string m = t.account().masked();
  std::size_t shown = 0;
  for (char c : m) shown += (c != '*');
  if (shown > 10 || m.size() - shown < 4) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto a = eftd::track2::parse(std::string_view(reinterpret_cast<const char*>(data), size)))
    check_round_trip(*a);
  if (auto b = eftd::track2::parse_tag57(eftd::byte_view(data, size))) check_round_trip(*b);
  return 0;
}
