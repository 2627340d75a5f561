// line_reader: NDJSON framing over a byte stream split at arbitrary points.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/pos/codec.hpp"
#include "golden.hpp"

using namespace eftd::pos;

namespace {

// Feeds `stream` in chunks of `chunk` bytes and collects every line, calling next() until
// it yields nullopt after each feed (as a socket loop does).
std::vector<std::string> split(const std::string& stream, std::size_t chunk, line_reader& r) {
  std::vector<std::string> out;
  for (std::size_t off = 0; off < stream.size(); off += chunk) {
    r.feed(std::string_view(stream).substr(off, chunk));
    for (;;) {
      auto l = r.next();
      REQUIRE(l.has_value());
      if (!*l) break;
      out.push_back(**l);
    }
  }
  return out;
}

std::string all_golden_lines() {
  std::string s;
  for (const auto& g : test::goldens()) s += g.line + "\n";
  return s;
}

}  // namespace

TEST_CASE("line_reader: several lines in one chunk", "[pos][framing]") {
  line_reader r;
  r.feed("{\"a\":1}\n{\"b\":2}\n{\"c\":");
  auto a = r.next();
  REQUIRE(a.has_value());
  REQUIRE(a->has_value());
  CHECK(**a == "{\"a\":1}");
  auto b = r.next();
  REQUIRE(b.has_value());
  CHECK(**b == "{\"b\":2}");
  auto none = r.next();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  CHECK(r.buffered() == 5);
  r.feed("3}\n");
  auto c = r.next();
  REQUIRE(c.has_value());
  CHECK(**c == "{\"c\":3}");
  CHECK(r.buffered() == 0);
}

TEST_CASE("line_reader: byte by byte", "[pos][framing]") {
  const auto stream = all_golden_lines();
  line_reader r;
  const auto lines = split(stream, 1, r);
  REQUIRE(lines.size() == test::goldens().size());
  for (std::size_t i = 0; i < lines.size(); ++i) CHECK(lines[i] == test::goldens()[i].line);
}

TEST_CASE("line_reader: every chunk size gives the same lines", "[pos][framing]") {
  const auto stream = all_golden_lines();
  for (std::size_t chunk : {2u, 3u, 7u, 64u, 100u, 333u, 4096u, 1u << 20}) {
    INFO("chunk " << chunk);
    line_reader r;
    const auto lines = split(stream, chunk, r);
    REQUIRE(lines.size() == test::goldens().size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CHECK(lines[i] == test::goldens()[i].line);
      auto d = decode(lines[i]);
      REQUIRE(d.has_value());
      CHECK(*d == test::goldens()[i].msg);
    }
  }
}

TEST_CASE("line_reader: CRLF and blank lines", "[pos][framing]") {
  line_reader r;
  const auto lines = split("\n\r\n{\"a\":1}\r\n\n\n{\"b\":2}\n", 5, r);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "{\"a\":1}");
  CHECK(lines[1] == "{\"b\":2}");
}

TEST_CASE("line_reader: oversize line without newline fails once past the limit", "[pos][framing]") {
  line_reader r(16);
  r.feed("{\"ok\":1}\n");
  r.feed(std::string(16, 'x'));  // exactly the limit, newline may still come
  auto first = r.next();
  REQUIRE(first.has_value());
  CHECK(**first == "{\"ok\":1}");  // lines before the oversize one are delivered
  auto wait = r.next();
  REQUIRE(wait.has_value());
  CHECK_FALSE(wait->has_value());
  r.feed("x");  // 17 bytes, no newline
  auto e = r.next();
  REQUIRE_FALSE(e.has_value());
  CHECK(e.err().code == codes::frame_too_large);
  CHECK(r.failed());
  // Poisoned: the stream has lost sync, further input is not parsed.
  r.feed("\n{\"late\":1}\n");
  auto again = r.next();
  REQUIRE_FALSE(again.has_value());
  CHECK(again.err().code == codes::frame_too_large);
  CHECK(r.buffered() == 0);
}

TEST_CASE("line_reader: complete line over the limit fails, at the limit passes", "[pos][framing]") {
  {
    line_reader r(8);
    r.feed("12345678\n");
    auto l = r.next();
    REQUIRE(l.has_value());
    CHECK(**l == "12345678");
  }
  {
    line_reader r(8);
    r.feed("123456789\n{}\n");
    auto l = r.next();
    REQUIRE_FALSE(l.has_value());
    CHECK(l.err().code == codes::frame_too_large);
  }
}

TEST_CASE("line_reader: default limit is 64 KiB", "[pos][framing]") {
  line_reader r;
  r.feed(std::string(max_line_bytes, 'a'));
  auto ok = r.next();
  REQUIRE(ok.has_value());
  CHECK_FALSE(ok->has_value());
  r.feed("a");
  auto e = r.next();
  REQUIRE_FALSE(e.has_value());
  CHECK(e.err().code == "pos.frame_too_large");
}

TEST_CASE("line_reader: long sessions do not accumulate consumed bytes", "[pos][framing]") {
  line_reader r;
  const std::string line = "{\"type\":\"heartbeat\",\"v\":1,\"id\":\"1\"}\n";
  for (int i = 0; i < 10000; ++i) {
    r.feed(line);
    auto l = r.next();
    REQUIRE(l.has_value());
    REQUIRE(l->has_value());
  }
  CHECK(r.buffered() == 0);
}
