// The in-memory endpoint pair (packets, timeouts, capacity, close, unplug, faults, threads)
// and the serial_port adapter over it (path, read/write semantics, error translation).
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "eftd/pad/usb.hpp"
#include "eftd/pad/usb/memory_endpoints.hpp"

using namespace std::chrono_literals;
using namespace eftd::pad::usb;
using eftd::byte_view;
using eftd::bytes;
using clock_type = std::chrono::steady_clock;

namespace {

bytes counting(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return b;
}

bytes read_all(bulk_endpoints& ep, std::size_t want, std::chrono::milliseconds timeout = 5s) {
  bytes got;
  const auto deadline = clock_type::now() + timeout;
  std::uint8_t buf[300];
  while (got.size() < want && clock_type::now() < deadline) {
    auto r = ep.read(buf, 50ms);
    REQUIRE(r.has_value());
    got.insert(got.end(), buf, buf + *r);
  }
  return got;
}

}  // namespace

TEST_CASE("memory endpoints: bytes cross in packets, both ways", "[usb][memory]") {
  memory_endpoint_pair pair;
  const bytes data = counting(150);
  REQUIRE(pair.host().write(data, 1s));
  // One read returns at most one packet, like one bulk transfer ending at a short packet.
  std::uint8_t buf[1024];
  auto r = pair.device().read(buf, 1s);
  REQUIRE(r.has_value());
  CHECK(*r == 64);
  // A small buffer takes part of a packet; the rest waits for the next read.
  r = pair.device().read(std::span(buf, 10), 1s);
  REQUIRE(r.has_value());
  CHECK(*r == 10);
  CHECK(read_all(pair.device(), 150 - 74) == bytes(data.begin() + 74, data.end()));

  const bytes back = counting(1000);
  REQUIRE(pair.device().write(back, 1s));
  CHECK(read_all(pair.host(), back.size()) == back);
  CHECK(pair.host().name() == "0000:0000:memory");
  CHECK(pair.host_to_device_counts().packets == 3);
  CHECK(pair.device_to_host_counts().packets == 16);
}

TEST_CASE("memory endpoints: read timeout, write timeout at capacity", "[usb][memory]") {
  memory_pair_options o;
  o.capacity = 256;
  memory_endpoint_pair pair(o);
  std::uint8_t buf[16];
  auto t0 = clock_type::now();
  auto r = pair.host().read(buf, 40ms);
  REQUIRE(r.has_value());
  CHECK(*r == 0);
  CHECK(clock_type::now() - t0 >= 40ms);

  t0 = clock_type::now();
  auto st = pair.host().write(counting(1000), 40ms);
  REQUIRE_FALSE(st);
  CHECK(st.err().code == "usb.timeout");
  CHECK(st.err().message.find("only 256 of 1000 bytes written") != std::string::npos);
  CHECK(clock_type::now() - t0 >= 40ms);
  CHECK(clock_type::now() - t0 < 5s);
}

TEST_CASE("memory endpoints: a blocked reader wakes for a writer on another thread", "[usb][memory]") {
  memory_endpoint_pair pair;
  std::mutex m;
  std::condition_variable cv;
  bool reading = false;
  eftd::result<std::size_t> got = std::size_t{0};
  std::uint8_t buf[64];
  std::thread reader([&] {
    {
      std::lock_guard lock(m);
      reading = true;
    }
    cv.notify_all();
    got = pair.device().read(buf, 10s);
  });
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 5s, [&] { return reading; }));
  }
  const auto t0 = clock_type::now();
  REQUIRE(pair.host().write(eftd::as_bytes("wake"), 1s));
  reader.join();
  CHECK(clock_type::now() - t0 < 5s);
  REQUIRE(got.has_value());
  CHECK(*got == 4);
}

TEST_CASE("memory endpoints: close and unplug", "[usb][memory]") {
  memory_endpoint_pair pair;
  std::uint8_t buf[64];
  SECTION("a closed side fails with usb.closed; the other side reads what was sent, then the end") {
    REQUIRE(pair.host().write(eftd::as_bytes("last words"), 1s));
    pair.host().close();
    pair.host().close();
    CHECK_FALSE(pair.host().is_open());
    CHECK(pair.host().read(buf, 10ms).err().code == "usb.closed");
    CHECK(pair.host().write(eftd::as_bytes("x"), 10ms).err().code == "usb.closed");
    auto r = pair.device().read(buf, 1s);
    REQUIRE(r.has_value());
    CHECK(*r == 10);
    auto gone = pair.device().read(buf, 1s);
    REQUIRE_FALSE(gone);
    CHECK(gone.err().code == "usb.disconnected");
    CHECK(pair.device().write(eftd::as_bytes("x"), 10ms).err().code == "usb.disconnected");
  }
  SECTION("unplugging wakes a blocked reader with usb.disconnected") {
    eftd::result<std::size_t> got = std::size_t{0};
    std::thread reader([&] { got = pair.host().read(buf, 10s); });
    pair.unplug();
    reader.join();
    REQUIRE_FALSE(got);
    CHECK(got.err().code == "usb.disconnected");
    CHECK(got.err().message.find("0000:0000:memory") != std::string::npos);
    CHECK(pair.device().write(eftd::as_bytes("x"), 10ms).err().code == "usb.disconnected");
  }
  SECTION("sides taken out of a pair keep working after the pair object is gone") {
    std::unique_ptr<bulk_endpoints> host;
    std::unique_ptr<bulk_endpoints> device;
    {
      memory_endpoint_pair other;
      host = other.take_host();
      device = other.take_device();
    }
    REQUIRE(device->write(eftd::as_bytes("abc"), 1s));
    CHECK(read_all(*host, 3) == bytes{'a', 'b', 'c'});
  }
}

TEST_CASE("memory endpoints: dropped and damaged packets, seeded", "[usb][memory][faults]") {
  SECTION("every packet dropped") {
    memory_pair_options o;
    o.host_to_device.drop_packet = 1;
    memory_endpoint_pair pair(o);
    REQUIRE(pair.host().write(counting(640), 1s));
    std::uint8_t buf[64];
    auto r = pair.device().read(buf, 20ms);
    REQUIRE(r.has_value());
    CHECK(*r == 0);
    CHECK(pair.host_to_device_counts().packets == 10);
    CHECK(pair.host_to_device_counts().dropped == 10);
  }
  SECTION("every packet has exactly one byte damaged") {
    memory_pair_options o;
    o.device_to_host.corrupt_packet = 1;
    o.device_to_host.seed = 77;
    memory_endpoint_pair pair(o);
    const bytes sent = counting(640);
    REQUIRE(pair.device().write(sent, 1s));
    const bytes got = read_all(pair.host(), sent.size());
    REQUIRE(got.size() == sent.size());
    for (std::size_t p = 0; p < 10; ++p) {
      int differing = 0;
      for (std::size_t i = p * 64; i < (p + 1) * 64; ++i) differing += got[i] != sent[i];
      CHECK(differing == 1);
    }
    CHECK(pair.device_to_host_counts().corrupted == 10);
  }
  SECTION("the same seed damages the same packets") {
    auto run = [] {
      memory_pair_options o;
      o.host_to_device = {0.2, 0.2, 1234};
      memory_endpoint_pair pair(o);
      REQUIRE(pair.host().write(counting(64 * 100), 1s));
      return read_all(pair.device(), 64 * 100, 50ms);
    };
    const bytes first = run();
    CHECK(first.size() < 64 * 100);
    CHECK(run() == first);
  }
}

TEST_CASE("serial_port adapter over bulk endpoints", "[usb][serial_adapter]") {
  memory_pair_options o;
  o.name = "0483:5740:PAD0001";
  o.capacity = 128;
  memory_endpoint_pair pair(o);
  auto port = make_usb_serial_port(pair.take_host());
  CHECK(port->path() == "usb:0483:5740:PAD0001");
  CHECK(port->is_open());

  std::uint8_t buf[64];
  auto r = port->read(buf, 20ms);
  REQUIRE(r.has_value());
  CHECK(*r == 0);

  REQUIRE(port->write(eftd::as_bytes("ping"), 1s));
  CHECK(read_all(pair.device(), 4) == bytes{'p', 'i', 'n', 'g'});
  REQUIRE(pair.device().write(eftd::as_bytes("pong"), 1s));
  bytes got;
  while (got.size() < 4) {
    auto rr = port->read(buf, 1s);
    REQUIRE(rr.has_value());
    REQUIRE(*rr > 0);
    got.insert(got.end(), buf, buf + *rr);
  }
  CHECK(got == bytes{'p', 'o', 'n', 'g'});

  SECTION("a full pipe is serial.write_timeout") {
    auto st = port->write(counting(1000), 30ms);
    REQUIRE_FALSE(st);
    CHECK(st.err().code == "serial.write_timeout");
    CHECK(st.err().message.find("[usb.timeout]") != std::string::npos);
    CHECK(st.err().message.find("0483:5740:PAD0001") != std::string::npos);
  }
  SECTION("an unplugged pad is serial.hangup, as the bridge expects of a vanished pad") {
    pair.unplug();
    auto h = port->read(buf, 1s);
    REQUIRE_FALSE(h);
    CHECK(h.err().code == "serial.hangup");
    CHECK(h.err().message.find("[usb.disconnected]") != std::string::npos);
    CHECK(port->write(eftd::as_bytes("x"), 10ms).err().code == "serial.hangup");
  }
  SECTION("a closed port is serial.closed") {
    port->close();
    port->close();
    CHECK_FALSE(port->is_open());
    CHECK(port->read(buf, 10ms).err().code == "serial.closed");
    CHECK(port->write(eftd::as_bytes("x"), 10ms).err().code == "serial.closed");
  }
}
