// read_deadline (server/src/read_deadline.hpp): one timer per connection guards each read's
// deadline. Over a real loopback connection: a read past its deadline is cancelled and only that
// read; a read that gets its bytes in time is not cut by a timer set for an earlier read; a
// deadline earlier than the one the timer waits for is kept; a connection that goes is not held.
#include <boost/asio.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "read_deadline.hpp"

using namespace eftd::server;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

// Both ends of one loopback TCP connection.
struct socket_pair {
  asio::io_context io;
  tcp::socket a{io}, b{io};
  socket_pair() {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    a.connect(acc.local_endpoint());
    acc.accept(b);
  }
};

// The connection under test: the guarded end and its deadline, owned as eftd's sessions are.
struct guarded : std::enable_shared_from_this<guarded> {
  tcp::socket& s;
  read_deadline deadline;
  explicit guarded(tcp::socket& sock) : s(sock), deadline(sock.get_executor()) {}
};

struct read_outcome {
  boost::system::error_code ec;
  std::size_t n = 0;
  bool expired = false;
  clock_type::time_point at{};
};

asio::awaitable<read_outcome> guarded_read(std::shared_ptr<guarded> g, clock_type::time_point deadline) {
  std::array<char, 256> buf{};
  g->deadline.arm(deadline, g->weak_from_this());
  auto [ec, n] = co_await g->s.async_read_some(
      asio::buffer(buf),
      asio::bind_cancellation_slot(g->deadline.slot(), asio::as_tuple(asio::use_awaitable)));
  read_outcome out;
  out.ec = ec;
  out.n = n;
  out.expired = g->deadline.disarm();
  out.at = clock_type::now();
  co_return out;
}

// Runs the io_context until `done()` holds, at most `limit`.
template <class Pred>
void run_until(asio::io_context& io, Pred done, std::chrono::seconds limit = 10s) {
  const auto end = clock_type::now() + limit;
  while (!done() && clock_type::now() < end) {
    io.restart();
    io.run_for(50ms);
  }
}

}  // namespace

TEST_CASE("read_deadline: a silent peer's read ends at its deadline and a write carries on", "[unit]") {
  socket_pair p;
  auto g = std::make_shared<guarded>(p.b);
  // More than the loopback socket buffers hold: the write is still under way at the deadline.
  const std::string big(16 << 20, 'x');
  std::optional<read_outcome> read;
  std::optional<boost::system::error_code> wrote;
  bool write_pending_at_deadline = false;
  std::string received;
  bool done = false;
  const auto deadline = clock_type::now() + 200ms;
  asio::co_spawn(p.io, guarded_read(g, deadline), [&](std::exception_ptr, read_outcome r) {
    read = r;
    write_pending_at_deadline = !wrote.has_value();
  });
  asio::async_write(p.b, asio::buffer(big), [&](boost::system::error_code ec, std::size_t) { wrote = ec; });
  // The peer starts reading only after the deadline, then takes it all.
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer start(p.io);
        start.expires_at(deadline + 100ms);
        co_await start.async_wait(asio::as_tuple(asio::use_awaitable));
        std::vector<char> buf(1 << 16);
        while (received.size() < big.size()) {
          auto [ec, n] = co_await p.a.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
          if (ec) break;
          received.append(buf.data(), n);
        }
        done = true;
      },
      asio::detached);
  run_until(p.io, [&] { return done; });
  REQUIRE(read.has_value());
  CHECK(read->expired);
  CHECK(read->ec == asio::error::operation_aborted);
  CHECK(read->at >= deadline);
  CHECK(write_pending_at_deadline);
  run_until(p.io, [&] { return wrote.has_value(); });
  REQUIRE(wrote.has_value());
  CHECK_FALSE(*wrote);
  CHECK(received.size() == big.size());
  CHECK(received == big);
}

TEST_CASE("read_deadline: a read that gets its bytes is not cut by an earlier read's timer", "[unit]") {
  socket_pair p;
  auto g = std::make_shared<guarded>(p.b);
  std::optional<read_outcome> first, second;
  bool done = false;
  const auto start = clock_type::now();
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        // The first read's bytes are there at once; its deadline (100 ms) leaves the timer armed.
        asio::write(p.a, asio::buffer(std::string("one")));
        first = co_await guarded_read(g, start + 100ms);
        // The second read may take 2 s; its bytes come at 300 ms, after the first deadline rang.
        asio::steady_timer later(p.io);
        later.expires_at(start + 300ms);
        later.async_wait(
            [&](boost::system::error_code) { asio::write(p.a, asio::buffer(std::string("two"))); });
        second = co_await guarded_read(g, start + 2s);
        done = true;
      },
      asio::detached);
  run_until(p.io, [&] { return done; });
  REQUIRE(first.has_value());
  CHECK_FALSE(first->ec);
  CHECK(first->n == 3);
  CHECK_FALSE(first->expired);
  REQUIRE(second.has_value());
  CHECK_FALSE(second->ec);
  CHECK(second->n == 3);
  CHECK_FALSE(second->expired);
  CHECK(second->at >= start + 300ms);
}

TEST_CASE("read_deadline: a deadline earlier than the one the timer waits for is kept", "[unit]") {
  socket_pair p;
  auto g = std::make_shared<guarded>(p.b);
  std::optional<read_outcome> first, second;
  bool done = false;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        // The timer waits for a far deadline (an hour) ...
        asio::write(p.a, asio::buffer(std::string("one")));
        first = co_await guarded_read(g, clock_type::now() + 1h);
        // ... and the next read must end after 150 ms, not an hour.
        second = co_await guarded_read(g, clock_type::now() + 150ms);
        done = true;
      },
      asio::detached);
  run_until(p.io, [&] { return done; });
  REQUIRE(first.has_value());
  CHECK_FALSE(first->expired);
  REQUIRE(second.has_value());
  CHECK(second->expired);
  CHECK(second->ec == asio::error::operation_aborted);
}

TEST_CASE("read_deadline: the timer does not keep a connection that has gone", "[unit]") {
  socket_pair p;
  std::weak_ptr<guarded> watch;
  {
    auto g = std::make_shared<guarded>(p.b);
    watch = g;
    g->deadline.arm(clock_type::now() + 1h, g->weak_from_this());
  }
  // The connection is gone at once (the timer holds no strong reference), and its timer's
  // cancelled wait completes without touching it: the io_context runs out of work.
  CHECK(watch.expired());
  p.a.close();
  p.b.close();
  std::size_t handlers = 0;
  const auto end = clock_type::now() + 10s;
  while (!p.io.stopped() && clock_type::now() < end) handlers += p.io.run_for(50ms);
  CHECK(p.io.stopped());
  CHECK(handlers == 1);

  // stop(): a connection that closes lets its timer go at once as well.
  socket_pair q;
  auto g = std::make_shared<guarded>(q.b);
  g->deadline.arm(clock_type::now() + 1h, g->weak_from_this());
  g->deadline.stop();
  const auto end2 = clock_type::now() + 10s;
  while (!q.io.stopped() && clock_type::now() < end2) q.io.run_for(50ms);
  CHECK(q.io.stopped());
}
