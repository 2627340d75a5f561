// The sans-I/O TLS 1.3 channel of the PIN pad link, as an in-memory pair: handshake, data
// both ways in any split, and every refusal (unknown CA, no certificate, TLS 1.2, a tampered
// record, bytes that are not TLS). Certificates come from tools/pad-certs in a temp dir; a
// second run makes a "rogue" CA that eftd does not trust.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "eftd/core/tls_channel.hpp"
#include "process.hpp"

using namespace eftd;

namespace {

struct cert_dir {
  std::string root;
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  std::string cert(const std::string& n) const { return dir + "/" + n + ".pem"; }
  std::string key(const std::string& n) const { return dir + "/" + n + ".key"; }
};

// One CA with eftd's listener certificate ("localhost", IP 127.0.0.1) and devices VP-0001/2.
cert_dir make_certs(const std::string& tag) {
  cert_dir c;
  c.root = test::make_temp_dir(tag);
  c.dir = c.root + "/certs";
  const std::string cmd =
      test::source_path("tools/pad-certs") + " " + c.dir + " localhost VP-0001 VP-0002 >/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return c;
}

struct fixture {
  cert_dir good = make_certs("tls-good");
  ~fixture() {
    std::error_code ec;
    std::filesystem::remove_all(good.root, ec);
  }
  std::shared_ptr<const tls_context> server_ctx() const {
    auto ctx = tls_context::server({good.cert("server"), good.key("server"), good.ca()});
    REQUIRE(ctx);
    return *ctx;
  }
  std::shared_ptr<const tls_context> client_ctx(const std::string& serial = "VP-0001") const {
    auto ctx = tls_context::client(good.ca(), good.cert(serial), good.key(serial));
    REQUIRE(ctx);
    return *ctx;
  }
};

tls_channel make_server(const std::shared_ptr<const tls_context>& ctx) {
  auto ch = tls_channel::server(ctx);
  REQUIRE(ch);
  return std::move(*ch);
}

tls_channel make_client(const std::shared_ptr<const tls_context>& ctx, std::string_view name = "localhost") {
  auto ch = tls_channel::client(ctx, name);
  REQUIRE(ch);
  return std::move(*ch);
}

// A plain OpenSSL endpoint over memory BIOs with any protocol range: the "outdated pad" and the
// "outdated server" the channel must refuse.
class raw_peer {
 public:
  raw_peer(bool server, int max_version, const cert_dir& c, const std::string& name) {
    ctx_ = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    REQUIRE(ctx_ != nullptr);
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, c.cert(name).c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, c.key(name).c_str(), SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_load_verify_locations(ctx_, c.ca().c_str(), nullptr) == 1);
    ssl_ = SSL_new(ctx_);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl_, in, out);
    if (server)
      SSL_set_accept_state(ssl_);
    else
      SSL_set_connect_state(ssl_);
    step();
  }
  ~raw_peer() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ERR_clear_error();
  }
  status feed(byte_view b) {
    BIO_write(SSL_get_rbio(ssl_), b.data(), static_cast<int>(b.size()));
    step();
    return failed_ ? status(make_error("raw.failed", "handshake failed")) : status();
  }
  bytes take_output() {
    BIO* w = SSL_get_wbio(ssl_);
    bytes out(BIO_ctrl_pending(w));
    if (!out.empty()) BIO_read(w, out.data(), static_cast<int>(out.size()));
    return out;
  }
  bool done() const { return done_; }
  bool failed() const { return failed_; }

 private:
  void step() {
    const int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
      done_ = true;
    } else {
      const int e = SSL_get_error(ssl_, rc);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) failed_ = true;
    }
    ERR_clear_error();
  }
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool done_ = false;
  bool failed_ = false;
};

// What each side's first error was while bytes moved between them.
struct pump_result {
  status a;
  status b;
};

template <class A, class B>
void deliver(A& to, const bytes& data, std::size_t chunk, status& first_error) {
  for (std::size_t at = 0; at < data.size();) {
    const std::size_t n = chunk == 0 ? data.size() : std::min(chunk, data.size() - at);
    auto st = to.feed(byte_view(data).subspan(at, n));
    if (!st && first_error) first_error = st;
    at += n;
  }
}

// Moves ciphertext between a and b until neither has anything to send. chunk > 0 delivers
// at most that many bytes per feed() (1 = byte by byte).
template <class A, class B>
pump_result pump(A& a, B& b, std::size_t chunk = 0) {
  pump_result r;
  for (int round = 0; round < 64; ++round) {
    const bytes ab = a.take_output();
    const bytes ba = b.take_output();
    if (ab.empty() && ba.empty()) break;
    deliver<B, A>(b, ab, chunk, r.b);
    deliver<A, B>(a, ba, chunk, r.a);
  }
  return r;
}

std::string text_of(const bytes& b) {
  return std::string(b.begin(), b.end());
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("tls_channel: an in-memory pair completes a TLS 1.3 handshake with client certificates",
          "[tls][security]") {
  fixture f;
  auto server = make_server(f.server_ctx());
  auto client = make_client(f.client_ctx());
  CHECK_FALSE(server.handshake_done());
  auto r = pump(client, server);
  REQUIRE(r.a);
  REQUIRE(r.b);
  CHECK(client.handshake_done());
  CHECK(server.handshake_done());
  // The server knows which pad it talks to; the pad knows it reached eftd.
  CHECK(server.peer_cn() == "VP-0001");
  CHECK(client.peer_cn() == "localhost");
  CHECK(server.failure() == nullptr);
}

TEST_CASE("tls_channel: data flows both ways, also written before the handshake ended", "[tls][security]") {
  fixture f;
  auto server = make_server(f.server_ctx());
  auto client = make_client(f.client_ctx());
  // The pad sends hello right after connecting: queued until the handshake is done.
  REQUIRE(client.write(as_bytes("hello from the pad")));
  auto r = pump(client, server);
  REQUIRE(r.a);
  REQUIRE(r.b);
  CHECK(text_of(server.read()) == "hello from the pad");
  CHECK(server.read().empty());  // taken once

  REQUIRE(server.write(as_bytes("hello_ack")));
  REQUIRE(pump(client, server).a);
  CHECK(text_of(client.read()) == "hello_ack");

  // More than one record's worth (16 KiB) arrives whole and in order.
  std::string big(70000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  REQUIRE(client.write(as_bytes(big)));
  r = pump(client, server);
  REQUIRE(r.b);
  CHECK(text_of(server.read()) == big);
}

TEST_CASE("tls_channel: byte-by-byte delivery", "[tls][security]") {
  fixture f;
  auto server = make_server(f.server_ctx());
  auto client = make_client(f.client_ctx());
  REQUIRE(client.write(as_bytes("ping")));
  auto r = pump(client, server, 1);
  REQUIRE(r.a);
  REQUIRE(r.b);
  REQUIRE(server.handshake_done());
  CHECK(text_of(server.read()) == "ping");
  REQUIRE(server.write(as_bytes("pong")));
  REQUIRE(pump(client, server, 1).a);
  CHECK(text_of(client.read()) == "pong");
  // Odd chunk sizes too: records split across feeds and several records per feed.
  for (std::size_t chunk : {2u, 3u, 7u, 100u}) {
    REQUIRE(client.write(as_bytes("chunked")));
    REQUIRE(client.write(as_bytes("-twice")));
    REQUIRE(pump(client, server, chunk).b);
    CHECK(text_of(server.read()) == "chunked-twice");
  }
}

TEST_CASE("tls_channel: a device certificate from an unknown CA is refused on both sides",
          "[tls][security]") {
  fixture f;
  const auto rogue = make_certs("tls-rogue");
  auto ctx = tls_context::client(f.good.ca(), rogue.cert("VP-0001"), rogue.key("VP-0001"));
  REQUIRE(ctx);
  auto server = make_server(f.server_ctx());
  auto client = make_client(*ctx);
  REQUIRE(client.write(as_bytes("hello")));
  auto r = pump(client, server);
  REQUIRE_FALSE(r.b);
  CHECK(r.b.err().code == "tls.handshake");
  CHECK(contains(r.b.err().message, "unknown CA"));
  CHECK_FALSE(server.handshake_done());
  CHECK(server.read().empty());  // nothing of the client's data got through
  // The client learns why from the server's alert.
  REQUIRE_FALSE(r.a);
  CHECK(r.a.err().code == "tls.handshake");
  CHECK(contains(r.a.err().message, "unknown CA"));
  // The channel stays failed.
  CHECK(server.feed(as_bytes("x")).err().code == "tls.handshake");
  CHECK(server.write(as_bytes("x")).err().code == "tls.handshake");

  // The other way round: a pad that does not trust eftd's certificate refuses it.
  auto stranger = tls_context::client(rogue.ca(), f.good.cert("VP-0001"), f.good.key("VP-0001"));
  REQUIRE(stranger);
  auto server2 = make_server(f.server_ctx());
  auto client2 = make_client(*stranger);
  auto r2 = pump(client2, server2);
  REQUIRE_FALSE(r2.a);
  CHECK(r2.a.err().code == "tls.handshake");
  CHECK(contains(r2.a.err().message, "unknown CA"));
  CHECK_FALSE(server2.handshake_done());
  std::error_code ec;
  std::filesystem::remove_all(rogue.root, ec);
}

TEST_CASE("tls_channel: a client without a certificate is refused", "[tls][security]") {
  fixture f;
  auto ctx = tls_context::client(f.good.ca(), "", "");
  REQUIRE(ctx);
  auto server = make_server(f.server_ctx());
  auto client = make_client(*ctx);
  REQUIRE(client.write(as_bytes("hello")));
  auto r = pump(client, server);
  REQUIRE_FALSE(r.b);
  CHECK(r.b.err().code == "tls.handshake");
  CHECK(contains(r.b.err().message, "no certificate"));
  CHECK(server.read().empty());
  REQUIRE_FALSE(r.a);
  CHECK(r.a.err().code == "tls.handshake");
}

TEST_CASE("tls_channel: TLS 1.2 peers are refused, as client and as server", "[tls][security]") {
  fixture f;
  {
    raw_peer old_pad(false, TLS1_2_VERSION, f.good, "VP-0001");
    auto server = make_server(f.server_ctx());
    auto r = pump(old_pad, server);
    REQUIRE_FALSE(r.b);
    CHECK(r.b.err().code == "tls.handshake");
    CHECK(contains(r.b.err().message, "protocol version"));
    CHECK(old_pad.failed());
    CHECK_FALSE(old_pad.done());
  }
  {
    raw_peer old_server(true, TLS1_2_VERSION, f.good, "server");
    auto client = make_client(f.client_ctx());
    auto r = pump(client, old_server);
    REQUIRE_FALSE(r.a);
    CHECK(r.a.err().code == "tls.handshake");
    CHECK(contains(r.a.err().message, "protocol version"));
    CHECK_FALSE(client.handshake_done());
  }
  {
    // The same raw peer allowed TLS 1.3 does connect: the refusal above is the version.
    raw_peer pad13(false, TLS1_3_VERSION, f.good, "VP-0001");
    auto server = make_server(f.server_ctx());
    auto r = pump(pad13, server);
    CHECK(r.b);
    CHECK(server.handshake_done());
  }
}

TEST_CASE("tls_channel: a tampered record is an error, not a crash or bad data", "[tls][security]") {
  fixture f;
  auto server = make_server(f.server_ctx());
  auto client = make_client(f.client_ctx());
  auto r = pump(client, server);
  REQUIRE(r.a);
  REQUIRE(r.b);
  REQUIRE(client.write(as_bytes("display: 125.00 PLN")));
  bytes record = client.take_output();
  REQUIRE(record.size() > 5);
  SECTION("a flipped bit in the ciphertext") {
    record[record.size() / 2] ^= 0x01;
  }
  SECTION("a flipped bit in the tag") {
    record.back() ^= 0x80;
  }
  SECTION("a record header that lies about the length") {
    record[4] ^= 0x01;
  }
  auto st = server.feed(record);
  if (st) st = server.feed(as_bytes(std::string(64, '\x17')));  // a short header lie needs more bytes
  REQUIRE_FALSE(st);
  CHECK(st.err().code == "tls.protocol");
  CHECK(server.read().empty());
  CHECK_FALSE(server.take_output().empty());  // the alert telling the pad why
}

TEST_CASE("tls_channel: garbage instead of TLS is an error", "[tls][security]") {
  fixture f;
  SECTION("a plaintext pad frame to a server") {
    auto server = make_server(f.server_ctx());
    // A version-1 hello header (PROTOCOL.md section 7): what a pad without TLS sends first.
    const auto frame = from_hex("00320101000000010000000001000101");
    REQUIRE(frame);
    auto st = server.feed(*frame);
    REQUIRE_FALSE(st);
    CHECK(st.err().code == "tls.handshake");
    CHECK(contains(st.err().message, "not TLS"));
  }
  SECTION("random bytes, fed whole or byte by byte, to either side") {
    bytes noise(3000);
    std::uint32_t x = 0x12345678;
    for (auto& b : noise) {
      x = x * 1664525u + 1013904223u;
      b = static_cast<std::uint8_t>(x >> 24);
    }
    for (std::size_t chunk : {0u, 1u}) {
      auto server = make_server(f.server_ctx());
      auto client = make_client(f.client_ctx());
      (void)client.take_output();
      status s_err, c_err;
      deliver<tls_channel, tls_channel>(server, noise, chunk, s_err);
      deliver<tls_channel, tls_channel>(client, noise, chunk, c_err);
      CHECK_FALSE(s_err);
      CHECK_FALSE(c_err);
      CHECK(server.read().empty());
      CHECK(client.read().empty());
    }
  }
  SECTION("garbage after the handshake") {
    auto server = make_server(f.server_ctx());
    auto client = make_client(f.client_ctx());
    REQUIRE(pump(client, server).b);
    auto st = server.feed(as_bytes("GET / HTTP/1.1\r\n\r\n"));
    REQUIRE_FALSE(st);
    CHECK(st.err().code == "tls.protocol");
  }
}

TEST_CASE("tls_channel: close_notify ends the session with tls.closed", "[tls][security]") {
  fixture f;
  auto server = make_server(f.server_ctx());
  auto client = make_client(f.client_ctx());
  REQUIRE(pump(client, server).b);
  REQUIRE(client.write(as_bytes("last words")));
  client.close();
  CHECK(client.write(as_bytes("more")).err().code == "tls.closed");
  auto st = server.feed(client.take_output());
  REQUIRE_FALSE(st);
  CHECK(st.err().code == "tls.closed");
  CHECK(text_of(server.read()) == "last words");  // what came before the close still arrives
}

TEST_CASE("tls_channel: the server name is checked when given", "[tls][security]") {
  fixture f;
  auto server = make_server(f.server_ctx());
  auto client = make_client(f.client_ctx(), "eftd.example.net");
  auto r = pump(client, server);
  REQUIRE_FALSE(r.a);
  CHECK(r.a.err().code == "tls.handshake");
  CHECK(contains(r.a.err().message, "name mismatch"));
  // The address form works too: the certificate carries IP 127.0.0.1.
  auto server2 = make_server(f.server_ctx());
  auto client2 = make_client(f.client_ctx(), "127.0.0.1");
  auto r2 = pump(client2, server2);
  CHECK(r2.a);
  CHECK(r2.b);
  CHECK(server2.handshake_done());
}

TEST_CASE("tls_context: bad files give tls.config naming the file", "[tls][security]") {
  fixture f;
  const auto& g = f.good;
  auto missing = tls_context::server({g.dir + "/nope.pem", g.key("server"), g.ca()});
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == "tls.config");
  CHECK(contains(missing.err().message, "nope.pem"));

  auto no_ca = tls_context::server({g.cert("server"), g.key("server"), ""});
  REQUIRE_FALSE(no_ca);
  CHECK(contains(no_ca.err().message, "client_ca_file"));

  auto mismatch = tls_context::server({g.cert("server"), g.key("VP-0001"), g.ca()});
  REQUIRE_FALSE(mismatch);
  CHECK(contains(mismatch.err().message, "does not match"));

  auto not_pem = tls_context::client(g.ca(), g.dir + "/ca.srl", g.key("VP-0001"));
  REQUIRE_FALSE(not_pem);
  CHECK(not_pem.err().code == "tls.config");
  CHECK(contains(not_pem.err().message, "ca.srl"));

  // A context of the wrong side cannot make a channel.
  auto client_ctx = f.client_ctx();
  CHECK_FALSE(tls_channel::server(client_ctx));
  CHECK_FALSE(tls_channel::client(f.server_ctx()));
}

namespace {
std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("tls_context: a client identity given as PEM text handshakes like the files", "[tls][security]") {
  fixture f;
  const auto& g = f.good;
  auto ctx = tls_context::client_pem(g.ca(), file_text(g.cert("VP-0002")), file_text(g.key("VP-0002")));
  REQUIRE(ctx);
  auto server = make_server(f.server_ctx());
  auto client = make_client(*ctx);
  auto r = pump(client, server);
  REQUIRE(r.a);
  REQUIRE(r.b);
  CHECK(server.peer_cn() == "VP-0002");

  // Text that is no certificate, or a key of another certificate, is refused with tls.config.
  auto not_pem = tls_context::client_pem(g.ca(), "not a certificate", file_text(g.key("VP-0002")));
  REQUIRE_FALSE(not_pem);
  CHECK(not_pem.err().code == "tls.config");
  auto mismatch = tls_context::client_pem(g.ca(), file_text(g.cert("VP-0002")), file_text(g.key("VP-0001")));
  REQUIRE_FALSE(mismatch);
  CHECK(contains(mismatch.err().message, "not the certificate's"));
  // The key text never shows in an error.
  CHECK_FALSE(contains(mismatch.err().message, "PRIVATE KEY"));
}
