// Test harness for the link layer: two stations joined by a simulated line with a simulated
// clock. The line can add noise between writes (frame boundaries), insert, damage or drop single
// bytes, or be cut; every random choice comes from one seeded generator, so a failing run
// replays exactly from its printed seed.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <string>

#include "eftd/core/bytes.hpp"
#include "eftd/pad/link/link_layer.hpp"

namespace link_test {

using eftd::byte_view;
using eftd::bytes;
using namespace eftd::pad::link;

// The seed for a randomised test: EFTD_LINK_SEED when set (to replay a failure), else the
// test's own fixed seed. Printed either way.
inline std::uint32_t test_seed(const char* test, std::uint32_t fixed) {
  std::uint32_t seed = fixed;
  if (const char* env = std::getenv("EFTD_LINK_SEED"); env && *env)
    seed = static_cast<std::uint32_t>(std::strtoul(env, nullptr, 0));
  std::cout << test << ": seed " << seed << " (replay with EFTD_LINK_SEED=" << seed << ")" << std::endl;
  return seed;
}

inline bytes random_bytes(std::mt19937& rng, std::size_t n) {
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

struct line_faults {
  double noise_between = 0;  // chance per write of 1..24 noise bytes before it
  double insert = 0;         // chance per byte of a random byte inserted after it
  double corrupt = 0;        // chance per byte of being replaced by a random value
  double drop = 0;           // chance per byte of being lost
  bool cut = false;          // everything written is lost

  bool any() const { return noise_between > 0 || insert > 0 || corrupt > 0 || drop > 0 || cut; }
};

struct station {
  explicit station(link_config cfg) : link(cfg) {}
  link_layer link;
  bytes received;  // every delivered payload, concatenated
  std::vector<std::size_t> payload_sizes;
  std::size_t peer_restarts = 0;
};

class link_pair {
 public:
  link_pair(link_config cfg, std::uint32_t seed) : a(cfg), b(cfg), rng_(seed) {}

  station a;
  station b;
  line_faults a_to_b;
  line_faults b_to_a;
  std::uint64_t now = 0;
  // Bytes handed to feed() at a time: 0 = everything in transit at once.
  std::size_t rx_chunk = 0;
  std::uint64_t noise_bytes = 0;  // noise the line added, for tests that must see some

  void start(std::uint32_t nonce_a = 0xA1A1A1A1, std::uint32_t nonce_b = 0xB2B2B2B2) {
    absorb(a, a.link.start(nonce_a, now), true);
    absorb(b, b.link.start(nonce_b, now), false);
  }
  void restart_a(std::uint32_t nonce) { absorb(a, a.link.start(nonce, now), true); }

  // Runs the line and both clocks until pred() holds, the simulated time passes `limit_ms`
  // from now, or nothing is left to happen. Returns pred().
  bool run_until(const std::function<bool()>& pred, std::uint64_t limit_ms = 10 * 60 * 1000) {
    const std::uint64_t end = now + limit_ms;
    for (std::uint64_t steps = 0; steps < 200'000'000; ++steps) {
      if (pred()) return true;
      bool progress = deliver(ab_, b, false);
      progress = deliver(ba_, a, true) || progress;
      for (station* s : {&a, &b}) {
        const auto d = s->link.next_deadline();
        if (d && *d <= now) {
          absorb(*s, s->link.on_tick(now), s == &a);
          progress = true;
        }
      }
      if (progress) continue;
      std::optional<std::uint64_t> next;
      for (station* s : {&a, &b})
        if (auto d = s->link.next_deadline()) next = next ? std::min(*next, *d) : *d;
      if (!next || *next > end) return pred();
      now = std::max(now, *next);
    }
    return pred();
  }

  bool both_up() const { return a.link.state() == link_state::up && b.link.state() == link_state::up; }
  bool idle() const { return ab_.empty() && ba_.empty(); }

  // Puts bytes on the line as if station A (or B) wrote them, without faults.
  void inject(bool from_a, byte_view data) {
    auto& q = from_a ? ab_ : ba_;
    q.insert(q.end(), data.begin(), data.end());
  }

 private:
  bool deliver(std::deque<std::uint8_t>& q, station& to, bool to_is_a) {
    if (q.empty()) return false;
    const std::size_t n = rx_chunk ? std::min(rx_chunk, q.size()) : q.size();
    bytes chunk(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(n));
    q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(n));
    absorb(to, to.link.feed(chunk, now), to_is_a);
    return true;
  }

  void absorb(station& s, link_output out, bool from_a) {
    for (auto& p : out.delivered) {
      s.payload_sizes.push_back(p.size());
      s.received.insert(s.received.end(), p.begin(), p.end());
    }
    if (out.peer_restarted) ++s.peer_restarts;
    if (!out.to_write.empty()) write(from_a, out.to_write);
  }

  void write(bool from_a, const bytes& data) {
    auto& q = from_a ? ab_ : ba_;
    const line_faults& f = from_a ? a_to_b : b_to_a;
    if (!f.any()) {
      q.insert(q.end(), data.begin(), data.end());
      return;
    }
    if (f.cut) return;
    std::uniform_real_distribution<double> p(0, 1);
    if (p(rng_) < f.noise_between) add_noise(q, 1 + rng_() % 24);
    for (std::uint8_t byte : data) {
      if (p(rng_) < f.drop) continue;
      q.push_back(p(rng_) < f.corrupt ? static_cast<std::uint8_t>(rng_()) : byte);
      if (p(rng_) < f.insert) add_noise(q, 1);
    }
  }

  // Noise rich in STX and ETX so that it starts phantom frames, not only random bytes.
  void add_noise(std::deque<std::uint8_t>& q, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto r = rng_();
      q.push_back(r % 4 == 0 ? stx : r % 4 == 1 ? etx : static_cast<std::uint8_t>(r >> 8));
    }
    noise_bytes += n;
  }

  std::deque<std::uint8_t> ab_;
  std::deque<std::uint8_t> ba_;
  std::mt19937 rng_;
};

}  // namespace link_test
