// libFuzzer harness for the BER-TLV decoder: decoding anything must not crash, and whatever
// decodes must survive encode -> decode unchanged (then encode again to the same bytes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eftd/core/tlv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto first = eftd::tlv_decode(eftd::byte_view(data, size));
  if (!first) return 0;
  const eftd::bytes enc = eftd::tlv_encode(*first);
  auto second = eftd::tlv_decode(enc);
  if (!second) std::abort();                           // our own encoding must decode
  if (!(*second == *first)) std::abort();              // and mean the same objects
  if (eftd::tlv_encode(*second) != enc) std::abort();  // encoding is canonical
  return 0;
}
