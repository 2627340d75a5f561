// Fuzz harness for the link layer's receiver: arbitrary line bytes fed to a station that is
// up, in chunks whose sizes come from the input, with clock ticks in between. Whatever arrives,
// the station must not crash, must keep its buffer bounded, must deliver only legal payloads
// and must only write well-formed frames. Any violation aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eftd/pad/link/link_layer.hpp"

using namespace eftd::pad::link;

namespace {

void check_output(const link_output& out) {
  for (const auto& p : out.delivered)
    if (p.empty() || p.size() > max_payload) std::abort();
  // Our own output must parse back into whole, valid frames.
  frame_parser parser;
  parser.feed(out.to_write);
  frame f;
  for (;;) {
    const auto st = parser.next(f);
    if (st == parse_status::need_more) break;
    if (st != parse_status::frame) std::abort();
    if (f.type == frame_type::data) std::abort();  // nothing was sent, so no DATA
  }
  if (parser.buffered() != 0 || parser.stats().bytes_skipped != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  link_config cfg;
  cfg.retransmit_timeout_ms = 50;
  cfg.max_retries = 2;
  link_layer station(cfg);
  std::uint64_t now = 0;
  check_output(station.start(0x01020304, now));
  // Bring it up with the ACK a peer would send, so DATA paths are reachable.
  const std::uint8_t ack[] = {0x01, 0x02, 0x03, 0x04, 0xAA, 0xBB, 0xCC, 0xDD};
  eftd::bytes up;
  if (!append_frame(up, frame_type::ack, 0, ack)) std::abort();
  check_output(station.feed(up, now));
  if (station.state() != link_state::up) std::abort();

  const std::size_t chunk = size > 0 ? (data[0] % 64) + 1 : 1;
  for (std::size_t off = 0; off < size; off += chunk) {
    const std::size_t n = off + chunk <= size ? chunk : size - off;
    check_output(station.feed(eftd::byte_view(data + off, n), now));
    if (station.state() == link_state::down) {
      if (!station.down_reason()) std::abort();
      break;
    }
    now += data[off] % 16;
    check_output(station.on_tick(now));
  }
  if (station.stats().crc_errors > size) std::abort();
  return 0;
}
