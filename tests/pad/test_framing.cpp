// frame_reader (arbitrary chunking, length errors) and replay_guard.
#include <catch2/catch.hpp>

#include "eftd/pad/codec.hpp"
#include "pad_test_util.hpp"

using namespace eftd::pad;
using pad_test::hx;
using pad_test::without_length;

namespace {

std::vector<eftd::bytes> three_frames() {
  return {encode(envelope{1, 0, hello{1, "P01", "VP-0001", "", "", {"display"}}}),
          encode(envelope{2, 0, ping{}}),
          encode(envelope{3, 0, display{{"Insert card", std::string(64, 'z')}, "en"}})};
}

// Feeds `stream` in pieces of `chunk` bytes, collecting every frame as soon as it is complete.
std::vector<eftd::bytes> read_all(const eftd::bytes& stream, std::size_t chunk) {
  frame_reader r;
  std::vector<eftd::bytes> got;
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
    const auto n = std::min(chunk, stream.size() - pos);
    r.feed(eftd::byte_view(stream.data() + pos, n));
    for (;;) {
      auto f = r.next();
      REQUIRE(f.has_value());
      if (!f->has_value()) break;
      got.push_back(std::move(**f));
    }
  }
  CHECK(r.buffered() == 0);
  return got;
}

}  // namespace

TEST_CASE("frame_reader yields the same frames for every chunk size", "[pad][framing]") {
  const auto frames = three_frames();
  eftd::bytes stream;
  for (const auto& f : frames) stream.insert(stream.end(), f.begin(), f.end());
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    INFO("chunk " << chunk);
    const auto got = read_all(stream, chunk);
    REQUIRE(got.size() == frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i) CHECK((got[i] == without_length(frames[i])));
  }
}

TEST_CASE("frame_reader waits for the rest of a frame", "[pad][framing]") {
  const auto f = encode(envelope{2, 0, ping{}});
  frame_reader r;
  r.feed(eftd::byte_view(f.data(), 1));
  auto a = r.next();
  REQUIRE(a.has_value());
  CHECK_FALSE(a->has_value());
  r.feed(eftd::byte_view(f.data() + 1, f.size() - 2));
  auto b = r.next();
  REQUIRE(b.has_value());
  CHECK_FALSE(b->has_value());
  CHECK(r.buffered() == f.size() - 1);
  r.feed(eftd::byte_view(f.data() + f.size() - 1, 1));
  auto c = r.next();
  REQUIRE(c.has_value());
  REQUIRE(c->has_value());
  CHECK(decode_body(**c).has_value());
}

TEST_CASE("frame_reader length errors", "[pad][framing][errors]") {
  struct vec {
    const char* what;
    const char* hex;
    const char* code;
  };
  const vec vectors[] = {
      {"zero length", "0000", "pad.bad_length"},
      {"shorter than a header", "0009 01 80 00000001 000000", "pad.bad_length"},
      {"one byte", "0001 01", "pad.bad_length"},
      {"4097", "1001", "pad.frame_too_large"},
      {"65535", "FFFF", "pad.frame_too_large"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    frame_reader r;
    r.feed(hx(v.hex));
    auto f = r.next();
    REQUIRE_FALSE(f.has_value());
    CHECK(f.err().code == v.code);
    // The stream is out of sync for good: the same error until reset().
    r.feed(encode(envelope{1, 0, ping{}}));
    auto again = r.next();
    REQUIRE_FALSE(again.has_value());
    CHECK(again.err().code == v.code);
    r.reset();
    r.feed(encode(envelope{1, 0, ping{}}));
    auto ok = r.next();
    REQUIRE(ok.has_value());
    CHECK(ok->has_value());
  }
}

TEST_CASE("frame_reader refuses an oversize length before the body arrives", "[pad][framing]") {
  // Decided on the prefix alone: a peer cannot make us buffer 64 KiB by announcing it.
  frame_reader r;
  r.feed(hx("1001"));
  auto f = r.next();
  REQUIRE_FALSE(f.has_value());
  CHECK(f.err().code == "pad.frame_too_large");
}

TEST_CASE("frame_reader accepts exactly the maximum length", "[pad][framing]") {
  eftd::bytes frame{0x10, 0x00, 0x01, 0x80, 0, 0, 0, 1, 0, 0, 0, 0};
  // Fill the body with one unknown-tag field so the frame is 4096 bytes long and still decodes.
  const std::size_t value_len = max_frame_length - header_size - 3;
  frame.push_back(0x7E);
  frame.push_back(static_cast<std::uint8_t>(value_len >> 8));
  frame.push_back(static_cast<std::uint8_t>(value_len));
  frame.resize(length_prefix_size + max_frame_length, 0xAB);
  frame_reader r;
  r.feed(frame);
  auto f = r.next();
  REQUIRE(f.has_value());
  REQUIRE(f->has_value());
  CHECK((*f)->size() == max_frame_length);
  auto d = decode_body(**f);
  REQUIRE(d.has_value());
  CHECK(std::holds_alternative<ack>(d->body));
}

TEST_CASE("frame_reader keeps its buffer small over a long stream", "[pad][framing]") {
  frame_reader r;
  const auto f = encode(envelope{1, 0, display{{std::string(60, 'a')}, "en"}});
  for (int i = 0; i < 10000; ++i) {
    r.feed(f);
    auto got = r.next();
    REQUIRE(got.has_value());
    REQUIRE(got->has_value());
  }
  CHECK(r.buffered() == 0);
}

TEST_CASE("replay_guard accepts strictly increasing seq only", "[pad][replay]") {
  replay_guard g;
  CHECK(g.last() == 0);
  auto zero = g.accept(0);
  REQUIRE_FALSE(zero.has_value());
  CHECK(zero.err().code == "pad.replay");
  CHECK(g.accept(1).has_value());
  CHECK(g.accept(2).has_value());
  CHECK(g.accept(10).has_value());  // gaps are allowed: a sender may skip numbers
  auto same = g.accept(10);
  REQUIRE_FALSE(same.has_value());
  CHECK(same.err().code == "pad.replay");
  auto lower = g.accept(3);
  REQUIRE_FALSE(lower.has_value());
  CHECK(lower.err().code == "pad.replay");
  CHECK(g.last() == 10);  // a rejected seq does not move the window
  CHECK(g.accept(0xFFFFFFFFu).has_value());
  CHECK_FALSE(g.accept(0xFFFFFFFFu).has_value());  // the counter never wraps: reconnect instead
  g.reset();
  CHECK(g.accept(1).has_value());
}

TEST_CASE("seq_counter starts at 1", "[pad][replay]") {
  seq_counter c;
  CHECK(c.next() == 1);
  CHECK(c.next() == 2);
  CHECK(c.last() == 2);
}
