// Fuzz target: ISO 8583 unpack (iso87-ascii) and the frame reader.
//
// Properties: nothing crashes or hangs; whatever unpack accepts, pack accepts, and
// unpack(pack(m)) == m; the frame reader consumes any chunking without error other than its
// documented codes, and never returns more payload bytes than it was fed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/framing.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_codec(eftd::byte_view in) {
  const eftd::acq::dialect* d = eftd::acq::find_dialect("iso87-ascii");
  check(d != nullptr);
  auto m = eftd::acq::unpack(*d, in);
  if (!m) {
    check(m.err().code.rfind("iso8583.", 0) == 0);
    return;
  }
  auto packed = eftd::acq::pack(*d, *m);
  check(packed.has_value());
  check(packed->size() <= in.size());  // only an empty secondary bitmap can be dropped
  auto again = eftd::acq::unpack(*d, *packed);
  check(again.has_value());
  check(*again == *m);
  (void)m->describe(*d);
}

void fuzz_frames(eftd::byte_view in) {
  if (in.empty()) return;
  // First byte picks the header kind and the chunk size, the rest is the stream.
  const auto kind = static_cast<eftd::acq::length_header>(in[0] % 3);
  const std::size_t chunk = 1 + (in[0] >> 2);
  auto codec = eftd::acq::frame_codec::create({kind, 512});
  check(codec.has_value());
  eftd::acq::frame_reader reader{*codec};
  const auto stream = in.subspan(1);
  std::size_t out_bytes = 0;
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
    reader.feed(stream.subspan(pos, std::min(chunk, stream.size() - pos)));
    for (;;) {
      auto f = reader.next();
      if (!f) {
        check(f.err().code == "frame.too_large" || f.err().code == "frame.bad_header");
        return;
      }
      if (!*f) break;
      check(!(*f)->empty() && (*f)->size() <= 512);
      out_bytes += (*f)->size();
      check(out_bytes <= stream.size());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const eftd::byte_view in{data, size};
  fuzz_codec(in);
  fuzz_frames(in);
  return 0;
}
