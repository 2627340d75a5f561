// The pad-side executor driven with bytes only (no sockets): handshake, commands, replies,
// errors; plus server address parsing and the reconnect backoff.
#include <catch2/catch.hpp>

#include "eftd/pad/codec.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/tcp_client.hpp"
#include "eftd/padsim/virtual_pad.hpp"
#include "pad_test_util.hpp"

using namespace eftd::padsim;
using namespace eftd::pad;
using pad_test::frame_body;
using pad_test::secret;
using pad_test::without_length;

namespace {

card_profile test_card() {
  card_profile p;
  p.name = "t";
  p.kind = "magstripe";
  p.track2 = secret("4761739001010119=29122011143804489");
  return p;
}

struct fixture {
  std::vector<std::string> printed;
  virtual_pad hw{{test_card()}, [this](const std::string& l) { printed.push_back(l); }};
  pad_session session{pad_identity{"P01", "VP-0001"}, hw, hw};
  std::uint32_t server_seq = 0;

  envelope start() {
    auto d = decode_body(without_length(session.start()));
    REQUIRE(d.has_value());
    return std::move(*d);
  }

  eftd::result<session_output> send(message m, std::uint32_t ref = 0) {
    return session.on_bytes(encode(envelope{++server_seq, ref, std::move(m)}));
  }

  void handshake() {
    auto h = start();
    auto out = send(hello_ack{true, "eftd", ""}, h.seq);
    REQUIRE(out.has_value());
    REQUIRE(out->events == std::vector<session_event>{session_event::accepted});
    REQUIRE(out->send.empty());
  }

  static envelope only_reply(const eftd::result<session_output>& out) {
    REQUIRE(out.has_value());
    REQUIRE(out->send.size() == 1);
    auto d = decode_body(without_length(out->send[0]));
    REQUIRE(d.has_value());
    return std::move(*d);
  }
};

}  // namespace

TEST_CASE("session starts with hello seq 1 carrying the identity", "[pad][session]") {
  fixture f;
  auto h = f.start();
  CHECK(h.seq == 1);
  CHECK(h.ref == 0);
  const auto& body = std::get<hello>(h.body);
  CHECK(body.pad_id == "P01");
  CHECK(body.serial == "VP-0001");
  CHECK(body.version == protocol_version);
  CHECK_FALSE(f.session.accepted());
}

TEST_CASE("session handshake: accepted, refused, wrong ref, command first", "[pad][session]") {
  SECTION("accepted") {
    fixture f;
    f.handshake();
    CHECK(f.session.accepted());
  }
  SECTION("refused carries the server's reason") {
    fixture f;
    auto h = f.start();
    auto out = f.send(hello_ack{false, "eftd", "unknown pad"}, h.seq);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.err().code == "padsim.refused");
    CHECK(out.err().message == "unknown pad");
  }
  SECTION("hello_ack answering another seq") {
    fixture f;
    auto h = f.start();
    auto out = f.send(hello_ack{true, "eftd", ""}, h.seq + 5);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.err().code == "padsim.bad_ref");
  }
  SECTION("a command before hello_ack") {
    fixture f;
    f.start();
    auto out = f.send(display{{"x"}, "en"});
    REQUIRE_FALSE(out.has_value());
    CHECK(out.err().code == "padsim.not_accepted");
    CHECK(f.printed.empty());
  }
}

TEST_CASE("session executes display, read_card, cancel, ping with ref = command seq", "[pad][session]") {
  fixture f;
  f.handshake();

  auto d = fixture::only_reply(f.send(display{{"Insert card", "125.00 PLN"}, "en"}));
  CHECK(std::holds_alternative<ack>(d.body));
  CHECK(d.ref == f.server_seq);
  CHECK(d.seq == 2);  // hello was 1
  CHECK(f.printed == std::vector<std::string>{"DISPLAY Insert card | 125.00 PLN"});

  auto out = f.send(read_card{12500, "PLN", 7, 60000, {}});
  auto c = fixture::only_reply(out);
  CHECK(out->events == std::vector<session_event>{session_event::card_answered});
  CHECK(c.ref == f.server_seq);
  CHECK(c.seq == 3);
  const auto& card = std::get<card_read>(c.body);
  CHECK(card.mode == entry_mode::magstripe);
  CHECK((card.track2 == secret("4761739001010119=29122011143804489")));

  auto x = fixture::only_reply(f.send(cancel{}));
  CHECK(std::holds_alternative<ack>(x.body));
  CHECK(x.ref == f.server_seq);

  auto p = fixture::only_reply(f.send(ping{}));
  CHECK(std::holds_alternative<pong>(p.body));
  CHECK(p.ref == f.server_seq);
}

TEST_CASE("session answers an unknown type with unsupported and a bad body with bad_request",
          "[pad][session]") {
  fixture f;
  f.handshake();

  auto unknown = fixture::only_reply(f.session.on_bytes([&] {
    auto b = frame_body(0x55, "01 0001 00", ++f.server_seq);
    b.insert(b.begin(), {0x00, static_cast<std::uint8_t>(b.size())});
    return b;
  }()));
  CHECK(unknown.ref == f.server_seq);
  CHECK(std::get<pad_error>(unknown.body).code == static_cast<std::uint16_t>(pad_error_code::unsupported));

  auto broken = fixture::only_reply(f.session.on_bytes([&] {
    auto b = frame_body(0x11, "02 0003 504C4E", ++f.server_seq);  // read_card without amount
    b.insert(b.begin(), {0x00, static_cast<std::uint8_t>(b.size())});
    return b;
  }()));
  CHECK(broken.ref == f.server_seq);
  const auto& e = std::get<pad_error>(broken.body);
  CHECK(e.code == static_cast<std::uint16_t>(pad_error_code::bad_request));
  CHECK(e.text == "pad.missing_field");

  // A pad -> server message sent to the pad is no command.
  auto wrong_way = fixture::only_reply(f.send(ack{}));
  CHECK(std::get<pad_error>(wrong_way.body).code == static_cast<std::uint16_t>(pad_error_code::bad_request));
  CHECK(f.session.accepted());  // the connection goes on
}

TEST_CASE("session rejects a replayed or lower seq and framing errors", "[pad][session]") {
  SECTION("replay of the same frame") {
    fixture f;
    f.handshake();
    const auto frame = encode(envelope{++f.server_seq, 0, display{{"once"}, "en"}});
    REQUIRE(f.session.on_bytes(frame).has_value());
    auto again = f.session.on_bytes(frame);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.err().code == "pad.replay");
    CHECK(f.printed.size() == 1);  // not executed twice
  }
  SECTION("bad length") {
    fixture f;
    f.handshake();
    auto out = f.session.on_bytes(pad_test::hx("0000"));
    REQUIRE_FALSE(out.has_value());
    CHECK(out.err().code == "pad.bad_length");
  }
  SECTION("bad version") {
    fixture f;
    f.handshake();
    auto b = frame_body(0x13, "", ++f.server_seq);
    b[0] = 0x02;
    b.insert(b.begin(), {0x00, static_cast<std::uint8_t>(b.size())});
    auto out = f.session.on_bytes(b);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.err().code == "pad.bad_version");
  }
}

TEST_CASE("session handles frames split and coalesced across reads", "[pad][session]") {
  fixture f;
  f.handshake();
  eftd::bytes stream;
  for (int i = 0; i < 3; ++i) {
    auto fr = encode(envelope{++f.server_seq, 0, ping{}});
    stream.insert(stream.end(), fr.begin(), fr.end());
  }
  std::size_t replies = 0;
  for (std::size_t pos = 0; pos < stream.size(); pos += 7) {
    auto out = f.session.on_bytes(
        eftd::byte_view(stream.data() + pos, std::min<std::size_t>(7, stream.size() - pos)));
    REQUIRE(out.has_value());
    replies += out->send.size();
  }
  CHECK(replies == 3);
}

TEST_CASE("session start() resets counters for a new connection", "[pad][session]") {
  fixture f;
  f.handshake();
  REQUIRE(fixture::only_reply(f.send(ping{})).seq == 2);
  auto h = f.start();
  CHECK(h.seq == 1);
  CHECK_FALSE(f.session.accepted());
  f.server_seq = 0;  // the new server connection counts from 1 again
  auto out = f.send(hello_ack{true, "", ""}, h.seq);
  REQUIRE(out.has_value());
  CHECK(f.session.accepted());
}

TEST_CASE("server address parsing", "[pad][tcp]") {
  auto a = parse_server_address("127.0.0.1:9200");
  REQUIRE(a.has_value());
  CHECK((*a == server_address{"127.0.0.1", 9200}));
  auto b = parse_server_address("[::1]:1");
  REQUIRE(b.has_value());
  CHECK((*b == server_address{"::1", 1}));
  auto c = parse_server_address("eftd-a.example:65535");
  REQUIRE(c.has_value());
  CHECK(c->port == 65535);
  for (const char* bad : {"", "host", "host:", ":9200", "host:0", "host:65536", "host:92x0", "::1:9200",
                          "[::1]9200", "[::1]:"}) {
    INFO(bad);
    auto r = parse_server_address(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "padsim.bad_address");
  }
}

TEST_CASE("reconnect backoff doubles up to its cap and resets", "[pad][tcp]") {
  using ms = std::chrono::milliseconds;
  backoff_policy b(ms(100), ms(1000));
  std::vector<long> got;
  for (int i = 0; i < 7; ++i) got.push_back(static_cast<long>(b.next().count()));
  CHECK(got == std::vector<long>{100, 200, 400, 800, 1000, 1000, 1000});
  b.reset();
  CHECK(b.next() == ms(100));
}

namespace {

// A reader that waits for a person: begin_read starts, poll_read answers only once the test
// "presents" the card (or a failure), like the TUI.
class slow_reader final : public card_reader, public display_device {
 public:
  read_result read(const eftd::pad::read_card&) override {
    return reader_failure{pad_error_code::hardware, "blocking read used"};
  }
  void begin_read(const eftd::pad::read_card&) override { started = true; }
  std::optional<read_result> poll_read(pad_clock::time_point) override {
    if (!ready) return std::nullopt;
    ready = false;
    presented_card c;
    c.track2 = secret("4761739001010119=29122011143804489");
    return read_result(std::move(c));
  }
  void cancel() override { cancelled = true; }
  void show(const display&) override {}
  bool started = false, ready = false, cancelled = false;
};

}  // namespace

TEST_CASE("session: while a person chooses a card it still answers ping and get_status", "[pad][session]") {
  slow_reader hw;
  pad_session session{pad_identity{"P01", "VP-0001"}, hw, hw};
  std::uint32_t seq = 0;
  auto send = [&](message m) { return session.on_bytes(encode(envelope{++seq, 0, std::move(m)})); };
  auto h = decode_body(without_length(session.start()));
  REQUIRE(h.has_value());
  REQUIRE(session.on_bytes(encode(envelope{++seq, h->seq, hello_ack{true, "eftd", ""}})).has_value());

  auto read = send(read_card{1250, "PLN", 1, 60000, {}});
  REQUIRE(read.has_value());
  CHECK(read->send.empty());  // no answer yet: the card is not there
  CHECK(hw.started);
  CHECK(session.waiting());
  const auto read_seq = seq;

  auto pong_out = fixture::only_reply(send(ping{42}));
  CHECK(std::get<pong>(pong_out.body).timestamp == 42);
  auto status_out = fixture::only_reply(send(get_status{1000}));
  CHECK(std::holds_alternative<pad_status>(status_out.body));
  // Another card command meanwhile is busy, the read goes on.
  auto busy = fixture::only_reply(send(display{{"x"}, "en", {}}));
  CHECK(std::get<pad_error>(busy.body).code == static_cast<std::uint16_t>(pad_error_code::busy));

  hw.ready = true;
  auto tick = session.on_tick(pad_clock::now());
  REQUIRE(tick.send.size() == 1);
  auto answer = decode_body(without_length(tick.send[0]));
  REQUIRE(answer.has_value());
  CHECK(answer->ref == read_seq);
  CHECK(std::holds_alternative<card_read>(answer->body));
  CHECK(tick.events == std::vector<session_event>{session_event::card_answered});
  CHECK_FALSE(session.waiting());
}

TEST_CASE("session: a waiting read_card times out on its deadline and is cancelled by cancel",
          "[pad][session]") {
  slow_reader hw;
  pad_session session{pad_identity{"P01", "VP-0001"}, hw, hw};
  std::uint32_t seq = 0;
  auto t0 = pad_clock::now();
  auto send = [&](message m) { return session.on_bytes(encode(envelope{++seq, 0, std::move(m)}), t0); };
  auto h = decode_body(without_length(session.start()));
  REQUIRE(h.has_value());
  REQUIRE(session.on_bytes(encode(envelope{++seq, h->seq, hello_ack{true, "eftd", ""}}), t0).has_value());
  REQUIRE(send(read_card{100, "PLN", 1, 500, {}})->send.empty());
  CHECK(session.on_tick(t0 + std::chrono::milliseconds(499)).send.empty());
  auto late = session.on_tick(t0 + std::chrono::milliseconds(500));
  REQUIRE(late.send.size() == 1);
  auto err = decode_body(without_length(late.send[0]));
  REQUIRE(err.has_value());
  CHECK(std::get<pad_error>(err->body).code == static_cast<std::uint16_t>(pad_error_code::timeout));
  CHECK(hw.cancelled);

  hw.cancelled = false;
  REQUIRE(send(read_card{100, "PLN", 1, 60000, {}})->send.empty());
  auto out = send(cancel{});
  REQUIRE(out.has_value());
  REQUIRE(out->send.size() == 2);  // cancelled answer to the read, then the cancel's ack
  auto first = decode_body(without_length(out->send[0]));
  REQUIRE(first.has_value());
  CHECK(std::get<pad_error>(first->body).code == static_cast<std::uint16_t>(pad_error_code::cancelled));
  CHECK(hw.cancelled);
}
