// The link layer's state machine, frame by frame against a hand-played peer, then two real
// stations over a simulated line with noise, damage, lost bytes and a cut line.
#include <catch2/catch.hpp>
#include <string_view>

#include "eftd/pad/link/link_layer.hpp"
#include "link_sim.hpp"

using namespace eftd::pad::link;
using eftd::byte_view;
using eftd::bytes;
using eftd::to_hex;
using link_test::link_pair;
using link_test::random_bytes;

namespace {

constexpr std::uint32_t my_nonce = 0x11111111;
constexpr std::uint32_t peer_nonce = 0x22222222;

bytes hx(std::string_view h) {
  auto b = eftd::from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

bytes fr(frame_type t, std::uint8_t seq, const bytes& payload = {}) {
  auto b = encode_frame({t, seq, payload});
  REQUIRE(b.has_value());
  return *b;
}

bytes data(std::uint8_t seq, std::string_view text) {
  return fr(frame_type::data, seq, bytes(text.begin(), text.end()));
}
bytes ack(std::uint8_t seq) {
  return fr(frame_type::ack, seq);
}

bytes nonce_bytes(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
          static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}
bytes reset_frame(std::uint32_t nonce) {
  return fr(frame_type::reset, 0, nonce_bytes(nonce));
}
bytes reset_ack(std::uint32_t echoed, std::uint32_t responder) {
  bytes p = nonce_bytes(echoed);
  const bytes r = nonce_bytes(responder);
  p.insert(p.end(), r.begin(), r.end());
  return fr(frame_type::ack, 0, p);
}

std::vector<frame> frames_in(const bytes& wire) {
  frame_parser p;
  p.feed(wire);
  std::vector<frame> out;
  frame f;
  for (;;) {
    const auto st = p.next(f);
    if (st == parse_status::need_more) break;
    REQUIRE(st == parse_status::frame);
    out.push_back(f);
  }
  CHECK(p.buffered() == 0);
  return out;
}

std::string text(const bytes& b) {
  return std::string(b.begin(), b.end());
}

link_config fast_config() {
  link_config c;
  c.retransmit_timeout_ms = 100;
  c.max_retries = 3;
  return c;
}

// A station brought up against the hand-played peer: RESET exchanged both ways.
link_layer up_station(link_config cfg = fast_config()) {
  link_layer l(cfg);
  auto out = l.start(my_nonce, 0);
  CHECK(out.to_write == reset_frame(my_nonce));
  out = l.feed(reset_frame(peer_nonce), 0);
  CHECK(out.to_write == reset_ack(peer_nonce, my_nonce));
  out = l.feed(reset_ack(my_nonce, peer_nonce), 0);
  CHECK(out.to_write.empty());
  REQUIRE(l.state() == link_state::up);
  return l;
}

}  // namespace

TEST_CASE("start sends RESET and its ACK brings the link up", "[serial][link]") {
  link_layer l(fast_config());
  CHECK(l.state() == link_state::idle);
  CHECK_FALSE(l.next_deadline());
  CHECK(l.feed(data(0, "ignored while idle"), 0).delivered.empty());

  auto out = l.start(my_nonce, 1000);
  CHECK(to_hex(out.to_write) == "020052000411111111195E03");
  CHECK(l.state() == link_state::connecting);
  CHECK(l.next_deadline() == std::optional<std::uint64_t>(1100));

  SECTION("an ACK echoing another nonce is stale") {
    l.feed(reset_ack(0x33333333, peer_nonce), 1010);
    CHECK(l.state() == link_state::connecting);
    CHECK(l.stats().stale_acks == 1);
  }
  SECTION("the right ACK") {
    out = l.feed(reset_ack(my_nonce, peer_nonce), 1010);
    CHECK(out.to_write.empty());
    CHECK(l.state() == link_state::up);
    CHECK_FALSE(l.next_deadline());
  }
}

TEST_CASE("RESET from the peer is answered with both nonces", "[serial][link]") {
  link_layer l(fast_config());
  (void)l.start(my_nonce, 0);
  auto out = l.feed(reset_frame(peer_nonce), 5);
  CHECK(out.to_write == reset_ack(peer_nonce, my_nonce));
  CHECK(l.state() == link_state::connecting);  // only our own RESET's ACK brings it up
}

TEST_CASE("DATA is delivered once and acknowledged", "[serial][link]") {
  auto l = up_station();
  auto out = l.feed(data(0, "hello"), 10);
  REQUIRE(out.delivered.size() == 1);
  CHECK(text(out.delivered[0]) == "hello");
  CHECK(out.to_write == ack(0));

  out = l.feed(data(1, "world"), 11);
  REQUIRE(out.delivered.size() == 1);
  CHECK(text(out.delivered[0]) == "world");
  CHECK(out.to_write == ack(1));
  CHECK(l.stats().payloads_delivered == 2);
}

TEST_CASE("duplicate DATA is re-acknowledged, not delivered twice", "[serial][link]") {
  auto l = up_station();
  REQUIRE(l.feed(data(0, "once"), 10).delivered.size() == 1);
  auto out = l.feed(data(0, "once"), 20);  // our ACK was lost; the peer retransmits
  CHECK(out.delivered.empty());
  CHECK(out.to_write == ack(0));
  CHECK(l.stats().duplicates == 1);
  out = l.feed(data(1, "next"), 30);
  REQUIRE(out.delivered.size() == 1);
  CHECK(text(out.delivered[0]) == "next");
}

TEST_CASE("out-of-order DATA is rejected without ACK", "[serial][link]") {
  auto l = up_station();
  SECTION("ahead of the expected seq") {
    auto out = l.feed(data(5, "skip"), 10);
    CHECK(out.delivered.empty());
    CHECK(out.to_write.empty());
  }
  SECTION("seq 255 right after a reset is not taken for a duplicate of nothing") {
    auto out = l.feed(data(255, "old"), 10);
    CHECK(out.delivered.empty());
    CHECK(out.to_write.empty());
  }
  CHECK(l.stats().out_of_order == 1);
  auto out = l.feed(data(0, "in order"), 20);
  CHECK(out.delivered.size() == 1);
}

TEST_CASE("DATA before our RESET is acknowledged is dropped", "[serial][link]") {
  link_layer l(fast_config());
  (void)l.start(my_nonce, 0);
  auto out = l.feed(data(0, "early"), 1);
  CHECK(out.delivered.empty());
  CHECK(out.to_write.empty());
  CHECK(l.stats().not_ready == 1);
}

TEST_CASE("a damaged frame is answered with one NAK and a NAK makes the sender resend at once",
          "[serial][link]") {
  auto l = up_station();
  SECTION("receiver side") {
    bytes bad = data(0, "damaged");
    bad[7] ^= 0x01;
    bytes two_bad = bad;
    two_bad.insert(two_bad.end(), bad.begin(), bad.end());
    auto out = l.feed(two_bad, 10);
    CHECK(out.delivered.empty());
    CHECK(out.to_write == fr(frame_type::nak, 0));  // one NAK per batch, carrying the expected seq
    CHECK(l.stats().crc_errors == 2);
    CHECK(l.stats().naks_sent == 1);
  }
  SECTION("sender side") {
    REQUIRE(l.send(eftd::as_bytes("payload")));
    auto out = l.on_tick(50);
    CHECK(out.to_write == data(0, "payload"));
    out = l.feed(fr(frame_type::nak, 0), 60);
    CHECK(out.to_write == data(0, "payload"));
    CHECK(l.stats().retransmissions == 1);
    CHECK(l.next_deadline() == std::optional<std::uint64_t>(160));  // timer restarted at the resend
    out = l.feed(ack(0), 70);
    CHECK(out.to_write.empty());
    CHECK(l.queued_bytes() == 0);
    CHECK_FALSE(l.next_deadline());
  }
}

TEST_CASE("unacknowledged DATA is retransmitted on timeout, then the link goes down", "[serial][link]") {
  auto l = up_station();  // retransmit_timeout 100 ms, 3 retries
  REQUIRE(l.send(eftd::as_bytes("lost")));
  CHECK(l.next_deadline() == std::optional<std::uint64_t>(0));  // queued: transmit now
  auto out = l.on_tick(1000);
  CHECK(out.to_write == data(0, "lost"));
  CHECK(l.next_deadline() == std::optional<std::uint64_t>(1100));
  CHECK(l.on_tick(1099).to_write.empty());
  for (std::uint64_t t : {1100u, 1200u, 1300u}) {
    out = l.on_tick(t);
    CHECK(out.to_write == data(0, "lost"));
  }
  CHECK(l.stats().retransmissions == 3);
  out = l.on_tick(1400);
  CHECK(out.to_write.empty());
  CHECK(l.state() == link_state::down);
  REQUIRE(l.down_reason());
  CHECK(l.down_reason()->code == "link.retries_exhausted");
  CHECK_FALSE(l.next_deadline());
  auto st = l.send(eftd::as_bytes("more"));
  REQUIRE_FALSE(st);
  CHECK(st.err().code == "link.down");
  CHECK(l.feed(data(0, "ignored"), 1500).delivered.empty());

  // start() revives it.
  out = l.start(0x44444444, 2000);
  CHECK(l.state() == link_state::connecting);
  CHECK_FALSE(l.down_reason());
}

TEST_CASE("a peer that never answers RESET gives link.connect_timeout", "[serial][link]") {
  link_layer l(fast_config());
  (void)l.start(my_nonce, 0);
  std::uint64_t t = 0;
  int resets = 0;
  while (l.state() == link_state::connecting) {
    t = *l.next_deadline();
    auto out = l.on_tick(t);
    resets += static_cast<int>(frames_in(out.to_write).size());
  }
  CHECK(resets == 3);
  CHECK(t == 400);
  REQUIRE(l.down_reason());
  CHECK(l.down_reason()->code == "link.connect_timeout");
}

TEST_CASE("stale and duplicate ACKs are ignored", "[serial][link]") {
  auto l = up_station();
  CHECK(l.feed(ack(0), 5).to_write.empty());  // nothing in flight
  REQUIRE(l.send(eftd::as_bytes("ab")));
  (void)l.on_tick(10);
  (void)l.feed(ack(7), 11);  // wrong seq: still in flight
  CHECK(l.queued_bytes() == 2);
  (void)l.feed(ack(0), 12);
  CHECK(l.queued_bytes() == 0);
  (void)l.feed(ack(0), 13);  // the duplicate
  CHECK(l.stats().stale_acks == 3);
}

TEST_CASE("sends larger than a frame are split, and the queue is bounded", "[serial][link]") {
  auto cfg = fast_config();
  cfg.max_queued_bytes = 3000;
  auto l = up_station(cfg);
  REQUIRE(l.send(bytes(2500, 0x41)));
  auto st = l.send(bytes(501, 0x42));
  REQUIRE_FALSE(st);
  CHECK(st.err().code == "link.queue_full");
  REQUIRE(l.send(bytes(500, 0x42)));
  CHECK(l.queued_bytes() == 3000);
  CHECK(l.send({}));  // empty: nothing to do, never an error

  std::vector<std::size_t> sizes;
  std::uint8_t seq = 0;
  std::uint64_t t = 10;
  for (auto out = l.on_tick(t); !out.to_write.empty(); out = l.feed(ack(seq++), ++t))
    for (const auto& f : frames_in(out.to_write)) {
      CHECK(f.type == frame_type::data);
      CHECK(f.seq == seq);
      sizes.push_back(f.payload.size());
    }
  CHECK(sizes == std::vector<std::size_t>{1024, 1024, 452, 500});
  CHECK(l.queued_bytes() == 0);
}

TEST_CASE("a repeated RESET changes nothing but a new nonce is a peer restart", "[serial][link]") {
  auto l = up_station();
  REQUIRE(l.feed(data(0, "first"), 1).delivered.size() == 1);
  REQUIRE(l.send(eftd::as_bytes("unacknowledged")));
  (void)l.on_tick(2);

  auto out = l.feed(reset_frame(peer_nonce), 3);  // retransmitted RESET, same nonce
  CHECK(out.to_write == reset_ack(peer_nonce, my_nonce));
  CHECK_FALSE(out.peer_restarted);
  CHECK(l.queued_bytes() == 14);
  CHECK(l.feed(data(0, "first"), 4).delivered.empty());  // still a duplicate: numbering kept

  out = l.feed(reset_frame(0x55555555), 5);
  CHECK(out.peer_restarted);
  CHECK(out.to_write == reset_ack(0x55555555, my_nonce));
  CHECK(l.queued_bytes() == 0);  // old-session data dropped
  CHECK(l.stats().peer_restarts == 1);
  CHECK(l.state() == link_state::up);
  out = l.feed(data(0, "new session"), 6);  // numbering restarted
  REQUIRE(out.delivered.size() == 1);
  REQUIRE(l.send(eftd::as_bytes("x")));
  out = l.on_tick(7);
  CHECK(out.to_write == data(0, "x"));
}

TEST_CASE("a phantom frame started by noise does not delay the real frame after it", "[serial][link]") {
  auto l = up_station();
  // Noise that looks like the start of a DATA frame announcing 300 bytes, then a real frame.
  bytes in = hx("02994401");
  const bytes real = data(0, "behind the phantom");
  in.insert(in.end(), real.begin(), real.end());
  auto out = l.feed(in, 100);
  REQUIRE(out.delivered.size() == 1);
  CHECK(text(out.delivered[0]) == "behind the phantom");
  CHECK(out.to_write == ack(0));
  CHECK(l.stats().bytes_skipped == 4);
  CHECK_FALSE(l.next_deadline());
}

TEST_CASE("the exchange shown in LINK.md section 5", "[serial][link]") {
  link_layer a(fast_config());
  link_layer b(fast_config());
  auto spaced = [](const bytes& x) {
    std::string s;
    for (std::uint8_t v : x) s += (s.empty() ? "" : " ") + to_hex(byte_view(&v, 1));
    return s;
  };
  const bytes a_reset = a.start(0xA1A1A1A1, 0).to_write;
  const bytes b_reset = b.start(0xB2B2B2B2, 0).to_write;
  CHECK(spaced(a_reset) == "02 00 52 00 04 A1 A1 A1 A1 AF A6 03");
  CHECK(spaced(b_reset) == "02 00 52 00 04 B2 B2 B2 B2 41 9C 03");
  const bytes b_ack = b.feed(a_reset, 1).to_write;
  const bytes a_ack = a.feed(b_reset, 1).to_write;
  CHECK(spaced(b_ack) == "02 00 41 00 08 A1 A1 A1 A1 B2 B2 B2 B2 DA A3 03");
  CHECK(spaced(a_ack) == "02 00 41 00 08 B2 B2 B2 B2 A1 A1 A1 A1 10 30 4D 03");  // CRC 104D: DLE escaped
  CHECK(a.feed(b_ack, 2).to_write.empty());
  CHECK(b.feed(a_ack, 2).to_write.empty());
  REQUIRE(a.state() == link_state::up);
  REQUIRE(b.state() == link_state::up);

  REQUIRE(a.send(eftd::as_bytes("hi")));
  const bytes d0 = a.on_tick(3).to_write;
  CHECK(spaced(d0) == "02 00 44 00 10 22 68 69 87 12 03");  // length 0002: 02 escaped
  auto out = b.feed(d0, 4);
  CHECK(spaced(out.to_write) == "02 00 41 00 00 AE 5D 03");
  REQUIRE(out.delivered.size() == 1);
  CHECK(a.feed(out.to_write, 5).to_write.empty());

  REQUIRE(a.send(eftd::as_bytes("there")));
  bytes d1 = a.on_tick(6).to_write;
  CHECK(spaced(d1) == "02 01 44 00 05 74 68 65 72 65 23 DF 03");
  d1[7] = 0x00;  // line noise hits the payload
  out = b.feed(d1, 7);
  CHECK(spaced(out.to_write) == "02 01 4E 00 00 F4 D8 03");
  CHECK(out.delivered.empty());
  const bytes again = a.feed(out.to_write, 8).to_write;
  CHECK(spaced(again) == "02 01 44 00 05 74 68 65 72 65 23 DF 03");
  out = b.feed(again, 9);
  CHECK(spaced(out.to_write) == "02 01 41 00 00 D8 E9 03");
  REQUIRE(out.delivered.size() == 1);
  CHECK(text(out.delivered[0]) == "there");
}

// ---- two stations over the simulated line ----

TEST_CASE("two stations: handshake and ordered delivery both ways", "[serial][link]") {
  link_pair net(fast_config(), 1);
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  std::mt19937 rng(3);
  bytes to_b;
  bytes to_a;
  for (int i = 0; i < 50; ++i) {
    const bytes x = random_bytes(rng, 1 + rng() % 3000);
    const bytes y = random_bytes(rng, 1 + rng() % 100);
    REQUIRE(net.a.link.send(x));
    REQUIRE(net.b.link.send(y));
    to_b.insert(to_b.end(), x.begin(), x.end());
    to_a.insert(to_a.end(), y.begin(), y.end());
  }
  REQUIRE(net.run_until(
      [&] { return net.b.received.size() == to_b.size() && net.a.received.size() == to_a.size(); }));
  CHECK(net.b.received == to_b);
  CHECK(net.a.received == to_a);
  CHECK(net.a.link.stats().retransmissions == 0);
  CHECK(net.b.link.stats().bytes_skipped == 0);
}

namespace {

// Pushes `total` random bytes from A to B and B to A through whatever the line does; both
// streams must arrive intact. Sends are paced by the queue bound, as a real driver would.
void transfer_both_ways(link_pair& net, std::mt19937& rng, std::size_t total) {
  bytes to_b;
  bytes to_a;
  while (to_b.size() < total) {
    const bytes x = random_bytes(rng, 1 + rng() % 2500);
    const bytes y = random_bytes(rng, 1 + rng() % 700);
    REQUIRE(net.a.link.send(x));
    REQUIRE(net.b.link.send(y));
    to_b.insert(to_b.end(), x.begin(), x.end());
    to_a.insert(to_a.end(), y.begin(), y.end());
    REQUIRE(
        net.run_until([&] { return net.a.link.queued_bytes() < 8192 && net.b.link.queued_bytes() < 8192; }));
    REQUIRE(net.a.link.state() == link_state::up);
    REQUIRE(net.b.link.state() == link_state::up);
  }
  REQUIRE(net.run_until(
      [&] { return net.b.received.size() >= to_b.size() && net.a.received.size() >= to_a.size(); }));
  CHECK(net.b.received.size() == to_b.size());
  CHECK(net.a.received.size() == to_a.size());
  CHECK(net.b.received == to_b);
  CHECK(net.a.received == to_a);
}

link_config noisy_config() {
  link_config c;
  c.retransmit_timeout_ms = 100;
  c.max_retries = 30;  // the line below is far worse than any real one
  return c;
}

}  // namespace

TEST_CASE("two stations: line noise between frames", "[serial][link][noise]") {
  const auto seed = link_test::test_seed("noise between frames", 1001);
  std::mt19937 rng(seed);
  link_pair net(noisy_config(), seed);
  net.a_to_b.noise_between = net.b_to_a.noise_between = 0.5;
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  transfer_both_ways(net, rng, 200 * 1024);
  CHECK(net.noise_bytes > 1000);
  CHECK(net.a.link.stats().bytes_skipped + net.b.link.stats().bytes_skipped >= net.noise_bytes / 2);
}

TEST_CASE("two stations: noise and damage inside frames", "[serial][link][noise]") {
  const auto seed = link_test::test_seed("noise inside frames", 1002);
  std::mt19937 rng(seed);
  link_pair net(noisy_config(), seed);
  for (auto* f : {&net.a_to_b, &net.b_to_a}) {
    f->noise_between = 0.2;
    f->insert = 0.0003;
    f->corrupt = 0.0003;
  }
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  transfer_both_ways(net, rng, 200 * 1024);
  const auto sa = net.a.link.stats();
  const auto sb = net.b.link.stats();
  CHECK(sa.crc_errors + sb.crc_errors > 0);
  CHECK(sa.retransmissions + sb.retransmissions > 0);
  CHECK(sa.naks_received + sb.naks_received > 0);
}

TEST_CASE("two stations: dropped bytes", "[serial][link][noise]") {
  const auto seed = link_test::test_seed("dropped bytes", 1003);
  std::mt19937 rng(seed);
  link_pair net(noisy_config(), seed);
  net.a_to_b.drop = net.b_to_a.drop = 0.0005;
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  transfer_both_ways(net, rng, 200 * 1024);
  CHECK(net.a.link.stats().retransmissions + net.b.link.stats().retransmissions > 0);
}

TEST_CASE("two stations: everything at once, received byte by byte", "[serial][link][noise]") {
  const auto seed = link_test::test_seed("all faults byte by byte", 1004);
  std::mt19937 rng(seed);
  link_pair net(noisy_config(), seed);
  for (auto* f : {&net.a_to_b, &net.b_to_a}) {
    f->noise_between = 0.3;
    f->insert = 0.0002;
    f->corrupt = 0.0002;
    f->drop = 0.0002;
  }
  net.rx_chunk = 1;
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  transfer_both_ways(net, rng, 100 * 1024);
}

TEST_CASE("two stations: a cut line takes both down and restarting after repair works", "[serial][link]") {
  link_pair net(fast_config(), 5);
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  net.a_to_b.cut = net.b_to_a.cut = true;
  REQUIRE(net.a.link.send(eftd::as_bytes("into the void")));
  REQUIRE(net.b.link.send(eftd::as_bytes("and back")));
  const auto t0 = net.now;
  REQUIRE(net.run_until(
      [&] { return net.a.link.state() == link_state::down && net.b.link.state() == link_state::down; }));
  CHECK(net.now - t0 == 400);  // first send + 3 retransmissions, 100 ms apart
  CHECK(net.a.link.down_reason()->code == "link.retries_exhausted");
  CHECK(net.b.received.empty());

  net.a_to_b.cut = net.b_to_a.cut = false;
  net.restart_a(0xA2A2A2A2);
  net.b.link.start(0xB3B3B3B3, net.now);  // B's own RESET is lost in this simulation: not written
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  REQUIRE(net.a.link.send(eftd::as_bytes("after repair")));
  REQUIRE(net.run_until([&] { return !net.b.received.empty(); }));
  CHECK(std::string(net.b.received.begin(), net.b.received.end()) == "after repair");
}

TEST_CASE("two stations: a restarted peer is detected and numbering restarts", "[serial][link]") {
  link_pair net(fast_config(), 6);
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  REQUIRE(net.a.link.send(eftd::as_bytes("before")));
  REQUIRE(net.run_until([&] { return net.b.received.size() == 6; }));
  net.restart_a(0xA9A9A9A9);
  REQUIRE(net.b.link.send(eftd::as_bytes("to the new A")));
  REQUIRE(net.run_until([&] { return net.b.peer_restarts == 1 && net.both_up(); }));
  REQUIRE(net.b.link.send(eftd::as_bytes("hello new A")));
  REQUIRE(net.a.link.send(eftd::as_bytes("after")));
  REQUIRE(net.run_until([&] { return net.b.received.size() == 11 && !net.a.received.empty(); }));
  CHECK(std::string(net.b.received.begin(), net.b.received.end()) == "beforeafter");
  // "to the new A" was queued before B learnt of the restart: dropped with the old session.
  CHECK(std::string(net.a.received.begin(), net.a.received.end()) == "hello new A");
}

TEST_CASE("1 MB in chunks, arriving byte by byte", "[serial][link]") {
  link_config cfg;
  cfg.max_queued_bytes = 64 * 1024;
  link_pair net(cfg, 7);
  net.rx_chunk = 1;
  net.start();
  REQUIRE(net.run_until([&] { return net.both_up(); }));
  std::mt19937 rng(8);
  const bytes payload = random_bytes(rng, 1024 * 1024);
  std::size_t off = 0;
  while (off < payload.size()) {
    const std::size_t n = std::min<std::size_t>(1 + rng() % 5000, payload.size() - off);
    if (!net.a.link.send(byte_view(payload).subspan(off, n))) {
      REQUIRE(net.run_until([&] { return net.a.link.queued_bytes() + n <= cfg.max_queued_bytes; }));
      continue;
    }
    off += n;
  }
  REQUIRE(net.run_until([&] { return net.b.received.size() >= payload.size(); }));
  CHECK(net.b.received == payload);
  for (auto s : net.b.payload_sizes) CHECK(s <= max_payload);
  CHECK(net.a.link.stats().retransmissions == 0);
  CHECK(net.b.link.stats().duplicates == 0);
}
