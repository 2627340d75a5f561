// Length-header framing: header encodings, keep-alives, reassembly across any chunking.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/acq/framing.hpp"
#include "wire.hpp"

using namespace eftd;
using namespace eftd::acq;
using wire::a;
using wire::h;

namespace {

frame_codec make(length_header hdr = length_header::binary2, std::size_t max = 8192) {
  auto c = frame_codec::create({hdr, max});
  REQUIRE(c.has_value());
  return *c;
}

// Drains every complete frame; fails the test on a framing error.
std::vector<std::string> drain(frame_reader& r) {
  std::vector<std::string> out;
  for (;;) {
    auto f = r.next();
    if (!f) FAIL(f.err().code << ": " << f.err().message);
    if (!*f) return out;
    out.emplace_back((*f)->begin(), (*f)->end());
  }
}

// Two messages with keep-alives before, between and after them.
bytes sample_stream() {
  return wire::build(
      {h("0000"), h("0003"), a("ABC"), h("0000"), h("0000"), h("0005"), a("HELLO"), h("0000")});
}

}  // namespace

TEST_CASE("binary2 header is 2 bytes big-endian and does not count itself", "[framing][golden]") {
  const auto c = make();
  CHECK(c.header_size() == 2);
  auto f = c.encode(as_bytes("ABC"));
  REQUIRE(f.has_value());
  CHECK(to_hex(*f) == "0003414243");
  const std::string big(300, 'x');
  f = c.encode(as_bytes(big));
  REQUIRE(f.has_value());
  CHECK(to_hex(byte_view{*f}.first(2)) == "012C");
  CHECK(f->size() == 302);
  CHECK(to_hex(c.keep_alive()) == "0000");
}

TEST_CASE("ascii4 and bcd2 headers", "[framing][golden]") {
  const auto ascii = make(length_header::ascii4);
  CHECK(ascii.header_size() == 4);
  auto f = ascii.encode(as_bytes("ABC"));
  REQUIRE(f.has_value());
  CHECK(to_hex(*f) == to_hex(wire::build({a("0003"), a("ABC")})));
  CHECK(to_hex(ascii.keep_alive()) == to_hex(wire::build({a("0000")})));
  CHECK(ascii.decode_length(wire::build({a("0X12")})).err().code == "frame.bad_header");

  const auto bcd = make(length_header::bcd2, 9999);
  const std::string payload(1234, 'z');
  f = bcd.encode(as_bytes(payload));
  REQUIRE(f.has_value());
  CHECK(to_hex(byte_view{*f}.first(2)) == "1234");
  auto len = bcd.decode_length(wire::build({h("0987")}));
  REQUIRE(len.has_value());
  CHECK(*len == 987);
  CHECK(bcd.decode_length(wire::build({h("0A00")})).err().code == "frame.bad_header");
}

TEST_CASE("TPDU framing is designed but not implemented", "[framing]") {
  auto c = frame_codec::create({length_header::binary2_tpdu, 8192});
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == "frame.unsupported_header");
  CHECK(parse_length_header("binary2_tpdu") == length_header::binary2_tpdu);
  CHECK(parse_length_header("ascii4") == length_header::ascii4);
  CHECK(parse_length_header("bcd2") == length_header::bcd2);
  CHECK(parse_length_header("binary2") == length_header::binary2);
  CHECK_FALSE(parse_length_header("binary4").has_value());
  CHECK(to_string(length_header::ascii4) == "ascii4");
}

TEST_CASE("frames over the maximum are too_large on both sides", "[framing][malformed]") {
  const auto c = make(length_header::binary2, 100);
  const std::string payload(101, 'x');
  CHECK(c.encode(as_bytes(payload)).err().code == "frame.too_large");
  CHECK(c.encode(as_bytes(payload.substr(1))).has_value());

  frame_reader r{c};
  r.feed(wire::build({h("0065")}));  // 101: rejected from the header alone
  auto f = r.next();
  REQUIRE_FALSE(f.has_value());
  CHECK(f.err().code == "frame.too_large");
  // The stream is out of sync now: the reader stays failed.
  r.feed(wire::build({h("0001"), a("A")}));
  CHECK(r.next().err().code == "frame.too_large");

  // The maximum is clamped to what the header can express.
  CHECK(make(length_header::ascii4, 1'000'000).max_payload() == 9999);
  CHECK(make(length_header::binary2, 1'000'000).max_payload() == 65535);
}

TEST_CASE("frame_reader reassembles frames fed one byte at a time and skips keep-alives", "[framing]") {
  frame_reader r{make()};
  std::vector<std::string> got;
  for (auto b : sample_stream()) {
    r.feed(byte_view{&b, 1});
    for (auto& s : drain(r)) got.push_back(s);
  }
  CHECK(got == std::vector<std::string>{"ABC", "HELLO"});
  CHECK(r.keep_alives() == 4);
  CHECK(r.buffered() == 0);
}

TEST_CASE("frame_reader gives the same frames for every split point", "[framing]") {
  const bytes stream = sample_stream();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= stream.size(); ++cut2) {
      frame_reader r{make()};
      std::vector<std::string> got;
      const byte_view all{stream};
      r.feed(all.subspan(0, cut));
      for (auto& s : drain(r)) got.push_back(s);
      r.feed(all.subspan(cut, cut2 - cut));
      for (auto& s : drain(r)) got.push_back(s);
      r.feed(all.subspan(cut2));
      for (auto& s : drain(r)) got.push_back(s);
      INFO("cuts at " << cut << ", " << cut2);
      REQUIRE(got == std::vector<std::string>{"ABC", "HELLO"});
      CHECK(r.keep_alives() == 4);
    }
  }
}

TEST_CASE("a zero-length header inside a payload is data, not a keep-alive", "[framing]") {
  frame_reader r{make()};
  r.feed(wire::build({h("0004"), h("00000000"), h("0000")}));
  auto got = drain(r);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == std::string(4, '\0'));
  CHECK(r.keep_alives() == 1);
}

TEST_CASE("keep-alives alone yield no frames", "[framing]") {
  frame_reader r{make(length_header::ascii4)};
  r.feed(wire::build({a("0000"), a("0000"), a("00")}));
  CHECK(drain(r).empty());
  CHECK(r.keep_alives() == 2);
  CHECK(r.buffered() == 2);
  r.feed(wire::build({a("02OK")}));
  CHECK(drain(r) == std::vector<std::string>{"OK"});
}

TEST_CASE("a bad ascii4 header fails the reader", "[framing][malformed]") {
  frame_reader r{make(length_header::ascii4)};
  r.feed(wire::build({a("00"), h("FF"), a("1X")}));
  auto f = r.next();
  REQUIRE_FALSE(f.has_value());
  CHECK(f.err().code == "frame.bad_header");
}
