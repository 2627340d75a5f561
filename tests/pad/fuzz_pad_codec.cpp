// Fuzz harness: the bytes a peer sends go through frame_reader and decode_body exactly as in
// the session; every frame that decodes must re-encode and decode to the same envelope.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eftd/pad/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace eftd::pad;
  frame_reader reader;
  // Split the input once so both the buffered and the single-chunk paths run.
  const std::size_t half = size / 2;
  reader.feed(eftd::byte_view(data, half));
  bool fed_rest = false;
  for (int guard = 0; guard < 10000; ++guard) {
    auto next = reader.next();
    if (!next) return 0;  // stream out of sync: a session would close here
    if (!next->has_value()) {
      if (fed_rest) return 0;
      reader.feed(eftd::byte_view(data + half, size - half));
      fed_rest = true;
      continue;
    }
    const eftd::bytes& frame = **next;
    if (frame.size() > max_frame_length) std::abort();
    auto env = decode_body(frame);
    if (!env) continue;
    // The decoder accepts only what validate() accepts, so encode() must not alter it.
    if (!validate(*env)) std::abort();
    const auto again = encode(*env);
    if (again.size() - length_prefix_size > max_frame_length) std::abort();
    auto env2 = decode_body(eftd::byte_view(again).subspan(length_prefix_size));
    if (!env2 || !(*env2 == *env)) std::abort();
    (void)describe(*env);
  }
  return 0;
}
