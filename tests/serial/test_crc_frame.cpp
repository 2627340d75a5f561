// CRC-16/CCITT-FALSE and link frames: check value, golden frames (also printed in LINK.md),
// length rules per type, and the framer's resynchronisation after noise.
#include <catch2/catch.hpp>
#include <random>
#include <string_view>

#include "eftd/pad/link/crc16.hpp"
#include "eftd/pad/link/frame.hpp"
#include "link_sim.hpp"

using namespace eftd::pad::link;
using eftd::byte_view;
using eftd::bytes;
using eftd::from_hex;
using eftd::to_hex;

namespace {

bytes hx(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

// Bit-at-a-time reference, independent of the table in the library.
std::uint16_t crc_reference(byte_view data) {
  std::uint16_t crc = 0xFFFF;
  for (std::uint8_t b : data) {
    crc ^= static_cast<std::uint16_t>(b << 8);
    for (int i = 0; i < 8; ++i)
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
  }
  return crc;
}

std::vector<frame> parse_all(frame_parser& p) {
  std::vector<frame> out;
  frame f;
  for (;;) {
    const auto st = p.next(f);
    if (st == parse_status::need_more) return out;
    if (st == parse_status::frame) out.push_back(f);
  }
}

}  // namespace

TEST_CASE("CRC-16/CCITT-FALSE check value", "[serial][crc]") {
  CHECK(crc16_ccitt_false(eftd::as_bytes("123456789")) == 0x29B1);
  CHECK(crc16_ccitt_false({}) == 0xFFFF);
}

TEST_CASE("CRC-16 table matches the bitwise definition and can be chained", "[serial][crc]") {
  std::mt19937 rng(7);
  for (std::size_t n : {1u, 2u, 3u, 31u, 256u, 1029u}) {
    const bytes data = link_test::random_bytes(rng, n);
    CHECK(crc16_ccitt_false(data) == crc_reference(data));
    const std::size_t cut = n / 2;
    CHECK(crc16_ccitt_false(byte_view(data).subspan(cut), crc16_ccitt_false(byte_view(data).first(cut))) ==
          crc16_ccitt_false(data));
  }
}

TEST_CASE("golden frames of every type", "[serial][frame]") {
  struct golden {
    frame f;
    const char* hex;
  };
  // The same bytes appear in LINK.md section 4.
  const golden table[] = {
      {{frame_type::data, 0x00, hx("6869")}, "0200440010226869871203"},  // length 0x02 escaped
      {{frame_type::data, 0x07, hx("0203")}, "02074400102210221023665E03"},
      {{frame_type::data, 0x07, hx("021003")}, "020744001023102210301023429703"},
      {{frame_type::ack, 0x00, {}}, "0200410000AE5D03"},
      {{frame_type::nak, 0x01, {}}, "02014E0000F4D803"},
      {{frame_type::reset, 0x00, hx("12345678")}, "020052000412345678866003"},
      {{frame_type::ack, 0x00, hx("123456789ABCDEF0")}, "0200410008123456789ABCDEF0058003"},
  };
  for (const auto& g : table) {
    INFO(to_string(g.f.type) << " seq " << int(g.f.seq));
    auto enc = encode_frame(g.f);
    REQUIRE(enc.has_value());
    CHECK(to_hex(*enc) == g.hex);
    frame_parser p;
    p.feed(*enc);
    const auto got = parse_all(p);
    REQUIRE(got.size() == 1);
    CHECK(got[0] == g.f);
    CHECK(p.buffered() == 0);
  }
}

TEST_CASE("payload lengths are checked per frame type", "[serial][frame]") {
  CHECK(payload_length_valid(frame_type::data, 1));
  CHECK(payload_length_valid(frame_type::data, max_payload));
  CHECK_FALSE(payload_length_valid(frame_type::data, 0));
  CHECK_FALSE(payload_length_valid(frame_type::data, max_payload + 1));
  CHECK(payload_length_valid(frame_type::ack, 0));
  CHECK(payload_length_valid(frame_type::ack, 8));
  CHECK_FALSE(payload_length_valid(frame_type::ack, 4));
  CHECK_FALSE(payload_length_valid(frame_type::nak, 1));
  CHECK(payload_length_valid(frame_type::reset, 4));
  CHECK_FALSE(payload_length_valid(frame_type::reset, 0));

  bytes out;
  auto st = append_frame(out, frame_type::data, 0, bytes(max_payload + 1, 0x55));
  REQUIRE_FALSE(st);
  CHECK(st.err().code == "link.bad_frame");
  CHECK(out.empty());
  CHECK(encode_frame({frame_type::data, 0, {}}).err().code == "link.bad_frame");
  CHECK(encode_frame({static_cast<frame_type>(0x99), 0, {}}).err().code == "link.bad_frame");
  // Worst case on the line: every content byte escaped.
  REQUIRE(append_frame(out, frame_type::data, stx, bytes(max_payload, dle)));
  CHECK(out.size() <= max_frame_size);
  CHECK(out.size() >= 2 + 2 * (1 + max_payload) + 3);
}

TEST_CASE("framer finds every frame whatever the chunking", "[serial][frame]") {
  std::mt19937 rng(11);
  bytes stream;
  std::vector<frame> sent;
  for (int i = 0; i < 40; ++i) {
    frame f{frame_type::data, static_cast<std::uint8_t>(i), link_test::random_bytes(rng, 1 + rng() % 1024)};
    REQUIRE(append_frame(stream, f.type, f.seq, f.payload));
    sent.push_back(std::move(f));
  }
  for (std::size_t chunk :
       {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{1031}, stream.size()}) {
    INFO("chunk " << chunk);
    frame_parser p;
    std::vector<frame> got;
    for (std::size_t off = 0; off < stream.size(); off += chunk) {
      p.feed(byte_view(stream).subspan(off, std::min(chunk, stream.size() - off)));
      for (auto& f : parse_all(p)) got.push_back(std::move(f));
    }
    CHECK(got == sent);
    CHECK(p.stats().bytes_skipped == 0);
    CHECK(p.buffered() == 0);
  }
}

TEST_CASE("framer resynchronises after noise, damaged and truncated frames", "[serial][frame]") {
  const bytes good = *encode_frame({frame_type::data, 4, eftd::bytes{0x41, 0x42, 0x43, 0x44, 0x45}});
  REQUIRE(good.size() == min_frame_size + 5);  // nothing escaped in this one
  bytes damaged = good;
  damaged[6] ^= 0x01;  // payload bit flip: delimiters intact, CRC wrong
  const bytes truncated(good.begin(), good.begin() + 6);

  SECTION("noise full of STX and ETX before a frame") {
    frame_parser p;
    p.feed(hx("0202020300FF0244FFFF0203"));
    p.feed(good);
    const auto got = parse_all(p);
    REQUIRE(got.size() == 1);
    CHECK(got[0].seq == 4);
    CHECK(p.stats().bytes_skipped == 12);
    CHECK(p.stats().crc_errors == 0);  // no known type inside: noise, not a damaged frame
  }
  SECTION("a damaged frame reports bad_crc, the next one is found") {
    frame_parser p;
    p.feed(damaged);
    p.feed(good);
    frame f;
    CHECK(p.next(f) == parse_status::bad_crc);
    CHECK(p.next(f) == parse_status::frame);
    CHECK(f.seq == 4);
    CHECK(p.next(f) == parse_status::need_more);
    CHECK(p.stats().crc_errors == 1);
  }
  SECTION("a byte lost or added inside a frame is a damaged frame") {
    bytes shorter = good;
    shorter.erase(shorter.begin() + 7);
    bytes longer = good;
    longer.insert(longer.begin() + 7, 0x55);
    for (const auto& b : {shorter, longer}) {
      frame_parser p;
      p.feed(b);
      frame f;
      CHECK(p.next(f) == parse_status::bad_crc);
    }
  }
  SECTION("an invalid escape is a damaged frame") {
    frame_parser p;
    p.feed(hx("020444000510414243444500000003"));
    frame f;
    CHECK(p.next(f) == parse_status::bad_crc);
  }
  SECTION("a truncated frame is cut off by the next STX") {
    frame_parser p;
    p.feed(truncated);
    frame f;
    CHECK(p.next(f) == parse_status::need_more);
    CHECK(p.in_frame());
    p.feed(good);
    p.feed(good);
    CHECK(parse_all(p).size() == 2);
    CHECK(p.stats().bytes_skipped == truncated.size());
  }
  SECTION("a phantom header in noise does not hold back the frame after it") {
    frame_parser p;
    p.feed(hx("02004400FF"));  // plausible DATA header announcing 255 bytes
    p.feed(*encode_frame({frame_type::ack, 5, {}}));
    frame f;
    CHECK(p.next(f) == parse_status::frame);
    CHECK(f.type == frame_type::ack);
    CHECK(f.seq == 5);
  }
  SECTION("a candidate longer than any frame is dropped") {
    frame_parser p;
    p.feed(bytes{stx});
    p.feed(bytes(3000, 0x41));
    p.feed(hx("03"));
    CHECK(parse_all(p).empty());
    CHECK(p.buffered() == 0);
    p.feed(good);
    const auto got = parse_all(p);
    REQUIRE(got.size() == 1);
    CHECK(p.stats().bytes_skipped == 3002);
  }
}

TEST_CASE("random noise never decodes to a frame and never grows the buffer", "[serial][frame]") {
  const auto seed = link_test::test_seed("framer noise", 20240611);
  std::mt19937 rng(seed);
  frame_parser p;
  std::size_t frames = 0;
  for (int i = 0; i < 256; ++i) {
    bytes noise = link_test::random_bytes(rng, 4096);
    for (auto& b : noise)
      if (rng() % 8 == 0) b = stx;
    p.feed(noise);
    frames += parse_all(p).size();
    CHECK(p.buffered() <= max_content);
  }
  CHECK(frames == 0);
}
