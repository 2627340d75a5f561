// Fuzz harness: the bytes a standby receives go through decode_batch exactly as in the
// replication client. The format has one encoding per batch (exact lengths, presence and
// boolean bytes 0/1, no trailing bytes), so whatever decodes must re-encode to the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eftd/journal/replica_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const eftd::byte_view in(data, size);
  auto b = eftd::journal::decode_batch(in);
  if (!b) {
    if (b.err().code != "journal.bad_replica") std::abort();
    return 0;
  }
  const auto again = eftd::journal::encode_batch(*b);
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  return 0;
}
