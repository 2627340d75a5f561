// Helpers for the acquirer link tests: run a coroutine test body on its own io_context with a
// deadline, build requests, start the real simulator, and a scriptable in-process fake host.
//
// Never write co_await inside a Catch macro (CHECK(f(co_await x))): with gcc, Catch also
// passes the expression to __builtin_constant_p and the await runs twice. Await into a local
// first.
#pragma once

#include <fmt/format.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/framing.hpp"
#include "eftd/acq/link.hpp"
#include "eftd/acq/matching.hpp"
#include "process.hpp"

namespace asio = boost::asio;
namespace acq = eftd::acq;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace linktest {

using body_fn = std::function<asio::awaitable<void>(asio::any_io_executor)>;

// Runs `body` to completion on a fresh io_context. Whatever the body leaves running (a link's
// reader, a fake host) is destroyed with the io_context. The deadline only catches hangs;
// nothing waits for it in a passing test.
inline void run(const body_fn& body, std::chrono::seconds limit = 30s) {
  asio::io_context io;
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, body(io.get_executor()), [&](std::exception_ptr e) {
    done = true;
    failure = e;
    io.stop();
  });
  io.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  REQUIRE(done);
}

inline const acq::dialect& iso87() {
  const acq::dialect* d = acq::find_dialect("iso87-ascii");
  REQUIRE(d != nullptr);
  return *d;
}

inline acq::message sale(std::string terminal, int stan, std::string amount,
                         std::string pan = "4761739001010119") {
  acq::message m{"0200"};
  m.set(2, pan);
  m.set(3, "000000");
  m.set(4, std::move(amount));
  m.set(7, "0615123456");
  m.set(11, fmt::format("{:06}", stan));
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "051");
  m.set(25, "00");
  m.set(35, pan + "=25122011143800000");
  m.set(41, std::move(terminal));
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  m.set(52, std::string("\x01\x23\x45\x67\x89\xAB\xCD\xEF", 8));
  m.set(55, std::string("\x9F\x27\x01\x80\x9F\x36\x02\x00\x01", 9));
  return m;
}

inline acq::link_config link_config_for(std::uint16_t port,
                                        std::chrono::milliseconds response_timeout = 5000ms) {
  acq::link_config cfg;
  cfg.name = "test-acquirer";
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.connect_timeout = 2000ms;
  cfg.response_timeout = response_timeout;
  return cfg;
}

inline std::shared_ptr<acq::link> make_link(asio::any_io_executor ex, acq::link_config cfg) {
  auto l = acq::link::create(std::move(ex), std::move(cfg));
  if (!l) FAIL(l.err().code << ": " << l.err().message);
  return *l;
}

inline std::shared_ptr<acq::link> make_link(asio::any_io_executor ex, std::uint16_t port,
                                            std::chrono::milliseconds response_timeout = 5000ms) {
  return make_link(std::move(ex), link_config_for(port, response_timeout));
}

// A reversal (0400, or `mti` for a repeat/advice) of `original`, with its own STAN and time.
inline acq::message reversal_of(const acq::message& original, int stan, std::string mti = "0400") {
  acq::message rev{std::move(mti)};
  for (int f : {3, 4, 41, 42, 49})
    if (auto v = original.get(f)) rev.set(f, std::string{*v});
  rev.set(7, "0615123510");
  rev.set(11, fmt::format("{:06}", stan));
  rev.set(90, fmt::format("{}{}{}{}{}", original.mti(), original.get_or(11, ""), original.get_or(7, ""),
                          "00000000001", "00000000000"));
  return rev;
}

// A number from the SUMMARY line's JSON ("key":N, the first occurrence), or -1.
inline long long summary_number(const std::string& summary, const std::string& key) {
  const auto at = summary.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::stoll(summary.substr(at + key.size() + 3));
}

inline std::string code(const eftd::result<acq::message>& r) {
  return r ? std::string{r->get_or(39, "<no 39>")} : r.err().code;
}

// A vector of requests without an initializer_list: gcc 12 rejects a braced list of
// non-trivial temporaries inside a co_await expression ("array used as initializer").
template <class... M>
std::vector<acq::message> batch(M&&... m) {
  std::vector<acq::message> out;
  (out.push_back(std::forward<M>(m)), ...);
  return out;
}

// Sends every request concurrently on one link; results in request order.
inline asio::awaitable<std::vector<eftd::result<acq::message>>> request_all(std::shared_ptr<acq::link> l,
                                                                            std::vector<acq::message> reqs) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<std::optional<eftd::result<acq::message>>> slots(reqs.size());
  std::size_t left = reqs.size();
  std::exception_ptr failure;
  asio::steady_timer all_done{ex, asio::steady_timer::time_point::max()};
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    asio::co_spawn(
        ex,
        [l, i, &slots, m = std::move(reqs[i])]() mutable -> asio::awaitable<void> {
          slots[i].emplace(co_await l->request(std::move(m)));
        },
        [&](std::exception_ptr e) {
          if (e) failure = e;
          if (--left == 0) all_done.cancel();
        });
  }
  if (left != 0) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (failure) std::rethrow_exception(failure);
  std::vector<eftd::result<acq::message>> out;
  for (auto& s : slots) out.push_back(std::move(*s));
  co_return out;
}

// The real eft-acquirer-sim on a free port. Amounts ending 99 are never answered, 98 drop
// the connection.
struct sim {
  explicit sim(std::vector<std::string> extra = {})
      : proc(eftd::test::bin_path("eft-acquirer-sim"), args(std::move(extra))) {
    auto ready = proc.wait_ready(20s);
    REQUIRE(ready.has_value());
    port = static_cast<std::uint16_t>(eftd::test::json_port(*ready, "port"));
    REQUIRE(port != 0);
  }
  static std::vector<std::string> args(std::vector<std::string> extra) {
    std::vector<std::string> a{
        "--port",      "0",   "--no-reply-amount-suffix", "99", "--disconnect-amount-suffix", "98",
        "--log-level", "warn"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // SIGTERM, then the SUMMARY line's JSON; the process must exit 0.
  std::string stop_and_summary() {
    proc.signal(SIGTERM);
    auto summary = proc.wait_for_prefix("SUMMARY ", 10s);
    REQUIRE(summary.has_value());
    CHECK(proc.wait_exit(10s) == std::optional<int>{0});
    return *summary;
  }
  eftd::test::process proc;
  std::uint16_t port = 0;
};

inline acq::frame_codec default_codec() {
  auto c = acq::frame_codec::create({});
  REQUIRE(c.has_value());
  return *c;
}

// One accepted connection of the fake host, with its own frame reader.
struct peer {
  explicit peer(tcp::socket s) : sock(std::move(s)), reader(default_codec()) {}

  asio::awaitable<eftd::bytes> read_frame() {
    for (;;) {
      auto f = reader.next();
      REQUIRE(f.has_value());
      if (*f) co_return std::move(**f);
      std::array<std::uint8_t, 4096> buf;
      const std::size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
      reader.feed(eftd::byte_view{buf.data(), n});
    }
  }
  asio::awaitable<acq::message> read_message() {
    auto payload = co_await read_frame();
    auto m = acq::unpack(iso87(), payload);
    if (!m) FAIL(m.err().code << ": " << m.err().message);
    co_return std::move(*m);
  }
  asio::awaitable<void> send_raw(eftd::bytes b) {
    co_await asio::async_write(sock, asio::buffer(b), asio::use_awaitable);
  }
  asio::awaitable<void> send_hex(std::string_view hex) {
    auto b = eftd::from_hex(hex);
    REQUIRE(b.has_value());
    co_await send_raw(std::move(*b));
  }
  asio::awaitable<void> send(const acq::message& m) {
    auto packed = acq::pack(iso87(), m);
    REQUIRE(packed.has_value());
    auto framed = default_codec().encode(*packed);
    REQUIRE(framed.has_value());
    co_await send_raw(std::move(*framed));
  }

  tcp::socket sock;
  acq::frame_reader reader;
};

// A scriptable host on a free loopback port, in the test's own io_context.
struct fake_host {
  explicit fake_host(asio::any_io_executor ex)
      : acceptor(ex, tcp::endpoint{asio::ip::address_v4::loopback(), 0}) {}
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  asio::awaitable<std::unique_ptr<peer>> accept() {
    auto s = co_await acceptor.async_accept(asio::use_awaitable);
    co_return std::make_unique<peer>(std::move(s));
  }
  tcp::acceptor acceptor;
};

// The response a well-behaved host would send: key fields echoed, 39 set.
inline acq::message answer(const acq::message& req, std::string rc = "00") {
  acq::message r{acq::response_mti_for(req.mti()).value_or("9999")};
  for (int f : {4, 7, 11, 41})
    if (auto v = req.get(f)) r.set(f, std::string{*v});
  r.set(39, std::move(rc));
  return r;
}

}  // namespace linktest
