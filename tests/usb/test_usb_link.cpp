// The link layer (LINK.md) at both ends of an in-memory USB endpoint pair, each station on its
// own thread behind the serial_port adapter, as the bridge and a pad would run it: many
// payloads both ways, then the same with packets dropped and damaged on the pipe. Every
// payload must arrive in order and exactly once; the faults must have been recovered by
// NAK/retransmission. Random choices are seeded (EFTD_LINK_SEED replays a run).
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "eftd/pad/link/link_layer.hpp"
#include "eftd/pad/usb.hpp"
#include "eftd/pad/usb/memory_endpoints.hpp"

using namespace std::chrono_literals;
using namespace eftd::pad::link;
using namespace eftd::pad::usb;
using eftd::byte_view;
using eftd::bytes;
using clock_type = std::chrono::steady_clock;

namespace {

std::uint32_t test_seed(const char* test, std::uint32_t fixed) {
  std::uint32_t seed = fixed;
  if (const char* env = std::getenv("EFTD_LINK_SEED"); env && *env)
    seed = static_cast<std::uint32_t>(std::strtoul(env, nullptr, 0));
  std::cout << test << ": seed " << seed << " (replay with EFTD_LINK_SEED=" << seed << ")" << std::endl;
  return seed;
}

std::vector<bytes> random_payloads(std::mt19937& rng, std::size_t count, std::size_t max_size) {
  std::vector<bytes> out;
  for (std::size_t i = 0; i < count; ++i) {
    bytes b(1 + rng() % max_size);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    out.push_back(std::move(b));
  }
  return out;
}

bytes concat(const std::vector<bytes>& v) {
  bytes all;
  for (const auto& b : v) all.insert(all.end(), b.begin(), b.end());
  return all;
}

// Shared between the two station threads and the test: who is finished, who failed.
struct run_control {
  std::mutex m;
  std::condition_variable cv;
  int finished = 0;
  std::optional<std::string> failure;
  std::atomic<bool> stop{false};

  void fail(std::string why) {
    std::lock_guard lock(m);
    if (!failure) failure = std::move(why);
    stop = true;
    cv.notify_all();
  }
  void finish() {
    std::lock_guard lock(m);
    ++finished;
    cv.notify_all();
  }
};

struct station_result {
  bytes received;
  std::size_t payloads = 0;
  link_stats stats;
  bool peer_restarted = false;
};

// One station: sends `outgoing` (paced by the link's queue), collects what arrives, reports
// itself finished once it has `expect_bytes` and everything it sent is acknowledged, and keeps
// answering the peer until told to stop.
void run_station(eftd::pad::serial_port& port, link_config cfg, std::uint32_t nonce,
                 const std::vector<bytes>& outgoing, std::size_t expect_bytes, run_control& ctl,
                 station_result& res) {
  link_layer link(cfg);
  const auto t0 = clock_type::now();
  auto now_ms = [&] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
  };
  auto handle = [&](link_output out) -> bool {
    for (auto& p : out.delivered) {
      res.received.insert(res.received.end(), p.begin(), p.end());
      ++res.payloads;
    }
    if (out.peer_restarted) res.peer_restarted = true;
    if (out.to_write.empty()) return true;
    auto st = port.write(out.to_write, 2s);
    if (!st) ctl.fail(port.path() + ": write: " + st.err().code + " " + st.err().message);
    return static_cast<bool>(st);
  };
  if (!handle(link.start(nonce, now_ms()))) return;
  std::size_t next = 0;
  bool reported = false;
  std::uint8_t buf[4096];
  while (!ctl.stop) {
    // Pace the sender: keep a few frames queued, never near max_queued_bytes.
    while (next < outgoing.size() && link.queued_bytes() < 8 * 1024) {
      auto st = link.send(outgoing[next]);
      if (!st) return ctl.fail("send: " + st.err().code);
      ++next;
    }
    // Block on the pipe until input arrives or the link's next timer is due.
    std::chrono::milliseconds wait = 20ms;
    if (auto d = link.next_deadline()) {
      const auto now = now_ms();
      wait = *d <= now ? 0ms : std::min<std::chrono::milliseconds>(wait, std::chrono::milliseconds(*d - now));
    }
    auto r = port.read(buf, wait);
    if (!r) return ctl.fail(port.path() + ": read: " + r.err().code + " " + r.err().message);
    if (*r > 0 && !handle(link.feed(byte_view(buf, *r), now_ms()))) return;
    if (auto d = link.next_deadline(); d && *d <= now_ms() && !handle(link.on_tick(now_ms()))) return;
    if (link.state() == link_state::down)
      return ctl.fail(port.path() + ": link down: " + link.down_reason()->code);
    if (!reported && next == outgoing.size() && link.queued_bytes() == 0 &&
        res.received.size() >= expect_bytes) {
      reported = true;
      ctl.finish();
    }
  }
  res.stats = link.stats();
}

struct exchange_result {
  station_result host;
  station_result device;
  std::optional<std::string> failure;
};

exchange_result exchange(memory_endpoint_pair& pair, link_config cfg, const std::vector<bytes>& to_device,
                         const std::vector<bytes>& to_host, std::chrono::seconds limit) {
  auto host_port = make_usb_serial_port(pair.take_host());
  auto device_port = make_usb_serial_port(pair.take_device());
  run_control ctl;
  exchange_result res;
  const bytes all_to_device = concat(to_device);
  const bytes all_to_host = concat(to_host);
  std::thread host(
      [&] { run_station(*host_port, cfg, 0xA1A1A1A1, to_device, all_to_host.size(), ctl, res.host); });
  std::thread device(
      [&] { run_station(*device_port, cfg, 0xB2B2B2B2, to_host, all_to_device.size(), ctl, res.device); });
  {
    std::unique_lock lock(ctl.m);
    if (!ctl.cv.wait_for(lock, limit, [&] { return ctl.finished == 2 || ctl.failure.has_value(); }))
      ctl.failure = "not finished within " + std::to_string(limit.count()) + " s";
    ctl.stop = true;
    res.failure = ctl.failure;
  }
  host.join();
  device.join();
  return res;
}

void print_stats(const char* what, const link_stats& s) {
  std::cout << what << ": frames sent " << s.frames_sent << ", received " << s.frames_received
            << ", delivered " << s.payloads_delivered << ", retransmissions " << s.retransmissions
            << ", duplicates " << s.duplicates << ", NAKs sent " << s.naks_sent << ", CRC errors "
            << s.crc_errors << ", skipped " << s.bytes_skipped << std::endl;
}

// Payload count after the link splits sends into frames of at most max_frame_payload.
std::size_t frames_for(const std::vector<bytes>& v, std::size_t max_frame) {
  std::size_t n = 0;
  for (const auto& b : v) n += (b.size() + max_frame - 1) / max_frame;
  return n;
}

}  // namespace

TEST_CASE("link layer carries many payloads both ways over an in-memory USB endpoint pair", "[usb][link]") {
  std::mt19937 rng(test_seed("usb link clean", 3003));
  const auto to_device = random_payloads(rng, 300, 3000);
  const auto to_host = random_payloads(rng, 300, 700);
  memory_pair_options o;
  o.name = "0483:5740:PAD0001";
  memory_endpoint_pair pair(o);
  link_config cfg;
  cfg.retransmit_timeout_ms = 200;

  auto res = exchange(pair, cfg, to_device, to_host, 60s);
  INFO(res.failure.value_or("ok"));
  REQUIRE_FALSE(res.failure);
  // Byte-for-byte equality of the streams: in order, nothing lost, nothing delivered twice.
  CHECK(res.device.received == concat(to_device));
  CHECK(res.host.received == concat(to_host));
  CHECK(res.device.payloads == frames_for(to_device, cfg.max_frame_payload));
  CHECK(res.host.payloads == frames_for(to_host, cfg.max_frame_payload));
  CHECK_FALSE(res.host.peer_restarted);
  CHECK_FALSE(res.device.peer_restarted);
  CHECK(res.host.stats.crc_errors == 0);
  CHECK(res.device.stats.crc_errors == 0);
}

TEST_CASE("link layer recovers dropped and damaged USB packets by NAK and retransmission",
          "[usb][link][faults]") {
  const auto seed = test_seed("usb link faults", 4004);
  std::mt19937 rng(seed);
  const auto to_device = random_payloads(rng, 200, 2500);
  const auto to_host = random_payloads(rng, 200, 600);
  memory_pair_options o;
  o.name = "0483:5740:PAD0001";
  // Per 64-byte packet; a full frame is 17 packets, so about one frame in four is hit.
  o.host_to_device = {0.008, 0.008, seed};
  o.device_to_host = {0.008, 0.008, seed + 1};
  memory_endpoint_pair pair(o);
  link_config cfg;
  // Real time on an in-memory pipe: a short timeout keeps the test fast; enough retries that
  // a frame hit repeatedly by the faults does not take the link down.
  cfg.retransmit_timeout_ms = 30;
  cfg.max_retries = 40;

  auto res = exchange(pair, cfg, to_device, to_host, 90s);
  const auto h2d = pair.host_to_device_counts();
  const auto d2h = pair.device_to_host_counts();
  std::cout << "usb link faults: host->device " << h2d.packets << " packets, " << h2d.dropped << " dropped, "
            << h2d.corrupted << " damaged; device->host " << d2h.packets << " packets, " << d2h.dropped
            << " dropped, " << d2h.corrupted << " damaged" << std::endl;
  print_stats("host", res.host.stats);
  print_stats("device", res.device.stats);
  INFO(res.failure.value_or("ok"));
  REQUIRE_FALSE(res.failure);
  CHECK(res.device.received == concat(to_device));
  CHECK(res.host.received == concat(to_host));
  CHECK(res.device.payloads == frames_for(to_device, cfg.max_frame_payload));
  CHECK(res.host.payloads == frames_for(to_host, cfg.max_frame_payload));
  // The faults happened and were recovered from, not avoided.
  CHECK(h2d.dropped > 0);
  CHECK(h2d.corrupted > 0);
  CHECK(d2h.dropped > 0);
  CHECK(d2h.corrupted > 0);
  CHECK(res.host.stats.retransmissions + res.device.stats.retransmissions > 0);
  CHECK(res.host.stats.naks_sent + res.device.stats.naks_sent > 0);
  CHECK(res.host.stats.crc_errors + res.device.stats.crc_errors > 0);
}
