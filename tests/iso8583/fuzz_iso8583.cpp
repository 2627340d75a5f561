// Fuzz target: ISO 8583 unpack in every shipped dialect (iso87-ascii, iso87-bcd), the masked
// field rendering, and the frame reader in every framing (binary2, ascii4, bcd2, each with
// and without a TPDU).
//
// Properties: nothing crashes or hangs; whatever unpack accepts, pack accepts, and
// unpack(pack(m)) == m; masked rendering never shows a PAN or track 2 of 6+ characters; the
// frame reader consumes any chunking without error other than its documented codes, never
// returns more payload bytes than it was fed, and a TPDU it reports has ID 0x60.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/framing.hpp"
#include "eftd/acq/masking.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_masked(const eftd::acq::dialect& d, const eftd::acq::message& m) {
  for (const auto& f : eftd::acq::masked_fields(d, m)) {
    if (f.number != 2 && f.number != 35) continue;
    const auto raw = m.get_or(f.number, "");
    if (raw.size() >= 6) check(f.value.find(raw) == std::string::npos);
  }
  (void)m.describe(d);
}

void fuzz_codec(const eftd::acq::dialect& d, eftd::byte_view in) {
  auto m = eftd::acq::unpack(d, in);
  if (!m) {
    check(m.err().code.rfind("iso8583.", 0) == 0);
    return;
  }
  auto packed = eftd::acq::pack(d, *m);
  check(packed.has_value());
  check(packed->size() <= in.size());  // only an empty secondary bitmap can be dropped
  auto again = eftd::acq::unpack(d, *packed);
  check(again.has_value());
  check(*again == *m);
  check_masked(d, *m);
}

void fuzz_frames(eftd::byte_view in) {
  if (in.empty()) return;
  // First byte: header kind (3 values), TPDU or not, chunk size. The rest is the stream.
  const auto kind = static_cast<eftd::acq::length_header>(in[0] % 3);
  const bool tpdu = ((in[0] / 3) & 1) != 0;
  const std::size_t chunk = 1 + (in[0] / 6);
  constexpr std::size_t max = 512;
  eftd::acq::frame_options opts{kind, max};
  if (tpdu) opts.tpdu = eftd::acq::tpdu_header{};
  auto codec = eftd::acq::frame_codec::create(opts);
  check(codec.has_value());
  eftd::acq::frame_reader reader{*codec};
  const auto stream = in.subspan(1);
  std::size_t out_bytes = 0;
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
    reader.feed(stream.subspan(pos, std::min(chunk, stream.size() - pos)));
    for (;;) {
      auto f = reader.next();
      if (!f) {
        const auto& code = f.err().code;
        check(code == "frame.too_large" || code == "frame.bad_header" || (tpdu && code == "frame.bad_tpdu"));
        return;
      }
      if (!*f) break;
      check(!(*f)->empty() && (*f)->size() <= (tpdu ? max - eftd::acq::tpdu_header::size : max));
      check(tpdu == reader.last_tpdu().has_value());
      if (tpdu) check(reader.last_tpdu()->id == eftd::acq::tpdu_header::transaction_id);
      out_bytes += (*f)->size();
      check(out_bytes <= stream.size());
      // A frame's payload goes to the codec exactly as on a link.
      for (auto name : eftd::acq::dialect_names())
        (void)eftd::acq::unpack(*eftd::acq::find_dialect(name), **f);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const eftd::byte_view in{data, size};
  for (auto name : eftd::acq::dialect_names()) {
    const eftd::acq::dialect* d = eftd::acq::find_dialect(name);
    check(d != nullptr);
    fuzz_codec(*d, in);
  }
  fuzz_frames(in);
  return 0;
}
