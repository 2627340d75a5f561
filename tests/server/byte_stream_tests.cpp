// TLS between eftd's own ends over real loopback sockets: tls_accept (the server side of POS,
// replication and witness connections, over tls_channel) against tls_connect (Asio's client
// stream). Mutual authentication, a megabyte each way, writers that overlap, and the refusals.
#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "byte_stream.hpp"
#include "eftd/core/bytes.hpp"
#include "process.hpp"

using namespace eftd;
using namespace eftd::server;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A development CA with server "localhost" and clients "a" and "b" (tools/certs.sh); a second,
// untrusted CA in "rogue".
struct certs {
  std::string root = eftd::test::make_temp_dir("byte-stream-tls");
  certs() {
    for (const char* d : {"good", "rogue"}) {
      const std::string script = "source \"" + eftd::test::source_path("tools/certs.sh") +
                                 "\" && eftd_make_certs \"$1\" localhost \"test CA $2\" a b";
      eftd::test::process p("/bin/bash", {"-c", script, "certs", root + "/" + d, d}, root + "/certs.log");
      REQUIRE(p.wait_exit(60s) == std::optional<int>{0});
    }
  }
  ~certs() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  config::tls_files files(const std::string& dir, const std::string& who) const {
    config::tls_files f;
    f.cert_file = root + "/" + dir + "/" + who + ".pem";
    f.key_file = root + "/" + dir + "/" + who + ".key";
    f.client_ca_file = root + "/" + dir + "/ca.pem";
    return f;
  }
};

bytes pattern(std::size_t n, std::uint8_t seed) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

// Reads exactly n bytes (or fewer on error).
asio::awaitable<bytes> read_exactly(byte_stream& s, std::size_t n) {
  bytes out;
  std::array<std::uint8_t, 3000> buf{};
  while (out.size() < n) {
    auto [ec, got] = co_await s.read_some(asio::buffer(buf));
    if (ec) break;
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
  }
  co_return out;
}

struct server_result {
  std::optional<error> failure;
  std::string client_cn;
  bytes received;
};

// One accepted connection: handshake, then `expect` bytes read, then two overlapping writers
// send their blocks.
asio::awaitable<void> serve(tcp::acceptor& acc, std::shared_ptr<asio::ssl::context> ctx, std::size_t expect,
                            bytes block_a, bytes block_b, server_result& out,
                            std::chrono::milliseconds deadline) {
  auto sock = co_await acc.async_accept(asio::use_awaitable);
  auto peer = co_await tls_accept(sock, ctx, deadline);
  if (!peer) {
    out.failure = peer.err();
    co_return;
  }
  out.client_cn = peer->client_cn;
  out.received = co_await read_exactly(*peer->stream, expect);
  std::shared_ptr<byte_stream> stream = std::move(peer->stream);
  int done = 0;
  auto writer = [stream, &done](bytes block) -> asio::awaitable<void> {
    co_await stream->write_all(asio::buffer(block));
    ++done;
  };
  auto ex = co_await asio::this_coro::executor;
  asio::co_spawn(ex, writer(std::move(block_a)), asio::detached);
  asio::co_spawn(ex, writer(std::move(block_b)), asio::detached);
  asio::steady_timer t(ex);
  while (done < 2) {
    t.expires_after(5ms);
    co_await t.async_wait(asio::use_awaitable);
  }
}

// The certificates, an io_context, eftd's server context and a listening socket on loopback.
struct loopback {
  certs c;
  asio::io_context io;
  std::shared_ptr<asio::ssl::context> server_ctx = context(make_server_tls(c.files("good", "server")));
  tcp::acceptor acc{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  const std::uint16_t port = acc.local_endpoint().port();

  static std::shared_ptr<asio::ssl::context> context(result<std::shared_ptr<asio::ssl::context>> r) {
    REQUIRE(r);
    return *r;
  }
  // A client's connection to the listener, through tls_connect with `ctx` (eftd's name checked).
  asio::awaitable<result<std::unique_ptr<byte_stream>>> connect(std::shared_ptr<asio::ssl::context> ctx) {
    tcp::socket s(io);
    co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
    co_return co_await tls_connect(s, ctx, "localhost", 5s);
  }
  // A client context with the certificate of `who` from CA directory `dir`.
  std::shared_ptr<asio::ssl::context> client(const std::string& dir, const std::string& who) const {
    return context(make_client_tls(c.files(dir, who)));
  }
};

}  // namespace

TEST_CASE("tls_accept and tls_connect: mutual TLS, a megabyte each way, overlapping writers",
          "[tls][server]") {
  loopback lb;
  auto& io = lb.io;
  auto& acc = lb.acc;
  const auto server_ctx = lb.server_ctx;
  const auto client_ctx = lb.client("good", "a");

  const bytes up = pattern(1 << 20, 1);
  const bytes block_a = pattern(600 * 1024, 0x41), block_b = pattern(500 * 1024, 0x42);
  server_result srv;
  asio::co_spawn(io, serve(acc, server_ctx, up.size(), block_a, block_b, srv, 5s), asio::detached);

  std::optional<error> client_failure;
  bytes down;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto stream = co_await lb.connect(client_ctx);
        if (!stream) {
          client_failure = stream.err();
          co_return;
        }
        co_await (*stream)->write_all(asio::buffer(up));
        down = co_await read_exactly(**stream, block_a.size() + block_b.size());
      },
      asio::detached);
  io.run_for(30s);

  REQUIRE_FALSE(client_failure.has_value());
  REQUIRE_FALSE(srv.failure.has_value());
  CHECK(srv.client_cn == "a");
  CHECK(srv.received == up);
  // Each writer's block arrives whole: the socket writes never interleave.
  bytes ab = block_a, ba = block_b;
  ab.insert(ab.end(), block_b.begin(), block_b.end());
  ba.insert(ba.end(), block_a.begin(), block_a.end());
  REQUIRE(down.size() == ab.size());
  CHECK((down == ab || down == ba));
}

TEST_CASE("tls_accept: an untrusted client certificate and a silent peer are refused", "[tls][server]") {
  loopback lb;
  auto& io = lb.io;
  auto& acc = lb.acc;
  const auto port = lb.port;
  const auto server_ctx = lb.server_ctx;
  const auto rogue_ctx = lb.client("rogue", "a");

  // A client of another CA: the server refuses it with the reason.
  server_result rogue;
  asio::co_spawn(io, serve(acc, server_ctx, 0, {}, {}, rogue, 5s), asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // The server's certificate is not of the rogue CA either: the client gives up too.
        auto stream = co_await lb.connect(rogue_ctx);
        CHECK_FALSE(stream);
      },
      asio::detached);
  io.run_for(20s);
  REQUIRE(rogue.failure.has_value());
  CHECK(rogue.failure->code == "tls.handshake");
  CHECK(rogue.failure->message.starts_with("TLS handshake refused: "));

  // A peer that connects and says nothing: tls.timeout at the deadline.
  io.restart();
  server_result silent;
  asio::co_spawn(io, serve(acc, server_ctx, 0, {}, {}, silent, 200ms), asio::detached);
  tcp::socket quiet(io);
  quiet.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  io.run_for(10s);
  REQUIRE(silent.failure.has_value());
  CHECK(silent.failure->code == "tls.timeout");
}
