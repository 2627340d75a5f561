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

TEST_CASE("binary2_tpdu is a reserved name, not a header kind, and names parse", "[framing]") {
  // The TPDU combines with every header through frame_options::tpdu (tests below); the
  // first design's binary2_tpdu stays rejected so a config naming it fails loudly.
  auto c = frame_codec::create({length_header::binary2_tpdu, 8192});
  REQUIRE_FALSE(c.has_value());
  CHECK(c.err().code == "frame.unsupported_header");
  CHECK(c.err().message.find("binary2+tpdu") != std::string::npos);
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

// ---- TPDU -----------------------------------------------------------------------------------

namespace {

// A terminal's TPDU: the host's NII 0001 as destination, its own NII 0123 as source.
constexpr tpdu_header terminal_tpdu{0x60, 0x0001, 0x0123};

frame_codec make_tpdu(length_header hdr, std::size_t max = 8192) {
  frame_options o{hdr, max, terminal_tpdu};
  auto c = frame_codec::create(o);
  REQUIRE(c.has_value());
  return *c;
}

}  // namespace

TEST_CASE("TPDU header is 60, destination, source, and reply swaps the addresses", "[framing][tpdu][golden]") {
  bytes out;
  terminal_tpdu.encode(out);
  CHECK(to_hex(out) == "6000010123");
  const tpdu_header reply = terminal_tpdu.reply();
  CHECK(reply.id == 0x60);
  CHECK(reply.destination == 0x0123);
  CHECK(reply.source == 0x0001);
  CHECK(reply.reply() == terminal_tpdu);
  CHECK(terminal_tpdu.to_string() == "60 0001 0123");

  auto back = tpdu_header::decode(wire::build({h("6000010123"), a("rest")}));
  REQUIRE(back.has_value());
  CHECK(*back == terminal_tpdu);
  auto bad = tpdu_header::decode(wire::build({h("6800010123")}));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.err().code == "frame.bad_tpdu");
  CHECK(bad.err().message == "TPDU ID is 0x68, expected 0x60");
  CHECK(tpdu_header::decode(wire::build({h("60000101")})).err().code == "frame.bad_tpdu");
}

TEST_CASE("TPDU combines with every length header, counted in the length", "[framing][tpdu][golden]") {
  auto f = make_tpdu(length_header::binary2).encode(as_bytes("ABC"));
  REQUIRE(f.has_value());
  CHECK(to_hex(*f) == to_hex(wire::build({h("0008"), h("6000010123"), a("ABC")})));

  f = make_tpdu(length_header::bcd2).encode(as_bytes("ABC"));
  REQUIRE(f.has_value());
  CHECK(to_hex(*f) == to_hex(wire::build({h("0008"), h("6000010123"), a("ABC")})));
  const std::string payload(1229, 'z');  // + 5 = 1234
  f = make_tpdu(length_header::bcd2).encode(as_bytes(payload));
  REQUIRE(f.has_value());
  CHECK(to_hex(byte_view{*f}.first(7)) == "12346000010123");

  f = make_tpdu(length_header::ascii4).encode(as_bytes("ABC"));
  REQUIRE(f.has_value());
  CHECK(to_hex(*f) == to_hex(wire::build({a("0008"), h("6000010123"), a("ABC")})));

  // A host answers with the request's TPDU swapped.
  f = make_tpdu(length_header::bcd2).encode(as_bytes("OK"), terminal_tpdu.reply());
  REQUIRE(f.has_value());
  CHECK(to_hex(*f) == to_hex(wire::build({h("0007"), h("6001230001"), a("OK")})));
  // Without TPDU framing there is nowhere to put one.
  CHECK(make(length_header::bcd2).encode(as_bytes("OK"), terminal_tpdu).err().code == "frame.bad_tpdu");
}

TEST_CASE("a keep-alive never carries a TPDU", "[framing][tpdu]") {
  for (auto hdr : {length_header::binary2, length_header::bcd2, length_header::ascii4}) {
    INFO(to_string(hdr));
    const auto c = make_tpdu(hdr);
    CHECK(c.keep_alive().size() == c.header_size());
    auto f = c.encode({});
    REQUIRE(f.has_value());
    CHECK(*f == c.keep_alive());
  }
}

TEST_CASE("the TPDU counts against the maximum", "[framing][tpdu][malformed]") {
  const auto c = make_tpdu(length_header::binary2, 100);
  CHECK(c.encode(as_bytes(std::string(95, 'x'))).has_value());
  CHECK(c.encode(as_bytes(std::string(96, 'x'))).err().code == "frame.too_large");
}

TEST_CASE("frame_reader strips the TPDU, reports it, and skips keep-alives in every split",
          "[framing][tpdu]") {
  const bytes stream = wire::build({h("0000"), h("0008"), h("6000010123"), a("ABC"), h("0000"), h("0000"),
                                    h("0010"), h("6001230001"), a("HELLO"), h("0000")});  // bcd2: 10
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    frame_reader r{make_tpdu(length_header::bcd2)};
    std::vector<std::string> got;
    std::vector<tpdu_header> tpdus;
    const byte_view all{stream};
    for (auto part : {all.subspan(0, cut), all.subspan(cut)}) {
      r.feed(part);
      for (;;) {
        auto f = r.next();
        if (!f) FAIL(f.err().code << ": " << f.err().message);
        if (!*f) break;
        got.emplace_back((*f)->begin(), (*f)->end());
        REQUIRE(r.last_tpdu().has_value());
        tpdus.push_back(*r.last_tpdu());
      }
    }
    INFO("cut at " << cut);
    REQUIRE(got == std::vector<std::string>{"ABC", "HELLO"});
    CHECK(tpdus[0] == terminal_tpdu);
    CHECK(tpdus[1] == terminal_tpdu.reply());
    CHECK(r.keep_alives() == 4);
    CHECK(r.buffered() == 0);
  }
}

TEST_CASE("a zero-length header inside a TPDU frame is data, not a keep-alive", "[framing][tpdu]") {
  frame_reader r{make_tpdu(length_header::bcd2)};
  r.feed(wire::build({h("0009"), h("6000010123"), h("00000000"), h("0000")}));
  auto got = drain(r);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == std::string(4, '\0'));
  CHECK(r.keep_alives() == 1);
}

TEST_CASE("a bad TPDU fails the reader", "[framing][tpdu][malformed]") {
  struct vec {
    const char* what;
    bytes in;
    const char* message;
  };
  const std::vector<vec> vectors = {
      {"wrong ID", wire::build({h("0008"), h("6800010123"), a("ABC")}), "TPDU ID is 0x68, expected 0x60"},
      {"frame shorter than a TPDU", wire::build({h("0003"), h("600001")}),
       "frame of 3 bytes cannot hold a TPDU and a message"},
      {"TPDU and no message", wire::build({h("0005")}), "frame of 5 bytes cannot hold a TPDU and a message"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    frame_reader r{make_tpdu(length_header::binary2)};
    r.feed(v.in);
    auto f = r.next();
    REQUIRE_FALSE(f.has_value());
    CHECK(f.err().code == "frame.bad_tpdu");
    CHECK(f.err().message == v.message);
    r.feed(wire::build({h("0008"), h("6000010123"), a("ABC")}));
    CHECK(r.next().err().code == "frame.bad_tpdu");  // stays failed
  }
}

TEST_CASE("bcd2 keep-alives and a bad bcd2 header", "[framing]") {
  frame_reader r{make(length_header::bcd2)};
  r.feed(wire::build({h("0000"), h("0002"), a("OK"), h("0000")}));
  CHECK(drain(r) == std::vector<std::string>{"OK"});
  CHECK(r.keep_alives() == 2);
  r.feed(wire::build({h("00A1")}));
  auto f = r.next();
  REQUIRE_FALSE(f.has_value());
  CHECK(f.err().code == "frame.bad_header");
}

TEST_CASE("parse_framing names every header kind with and without a TPDU", "[framing][tpdu]") {
  for (std::string_view name : {"binary2", "ascii4", "bcd2"}) {
    auto o = parse_framing(name);
    REQUIRE(o.has_value());
    CHECK_FALSE(o->tpdu.has_value());
    CHECK(framing_name(*o) == name);
    const std::string with = std::string(name) + "+tpdu";
    o = parse_framing(with);
    REQUIRE(o.has_value());
    REQUIRE(o->tpdu.has_value());
    CHECK(*o->tpdu == tpdu_header{});
    CHECK(framing_name(*o) == with);
    CHECK(frame_codec::create(*o).has_value());
  }
  CHECK(parse_framing("bcd2+tpdu")->header == length_header::bcd2);
  for (std::string_view bad :
       {"", "+tpdu", "tpdu", "binary2_tpdu", "bcd2+", "bcd2+tpdu+tpdu", "BCD2", "none"}) {
    INFO(bad);
    auto o = parse_framing(bad);
    REQUIRE_FALSE(o.has_value());
    CHECK(o.err().code == "frame.bad_name");
  }
}
