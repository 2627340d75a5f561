#include "byte_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <filesystem>

namespace eftd::server {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

class tcp_stream final : public byte_stream {
 public:
  explicit tcp_stream(tcp::socket s) : s_(std::move(s)) {}
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      asio::mutable_buffer b) override {
    co_return co_await s_.async_read_some(b, asio::as_tuple(asio::use_awaitable));
  }
  asio::awaitable<boost::system::error_code> write_all(asio::const_buffer b) override {
    auto [ec, n] = co_await asio::async_write(s_, b, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }
  void close() override {
    boost::system::error_code ec;
    s_.shutdown(tcp::socket::shutdown_both, ec);
    s_.close(ec);
  }
  asio::any_io_executor get_executor() override { return s_.get_executor(); }

 private:
  tcp::socket s_;
};

class tls_stream final : public byte_stream {
 public:
  tls_stream(tcp::socket s, std::shared_ptr<ssl::context> ctx)
      : ctx_(std::move(ctx)), s_(std::move(s), *ctx_) {}
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      asio::mutable_buffer b) override {
    co_return co_await s_.async_read_some(b, asio::as_tuple(asio::use_awaitable));
  }
  asio::awaitable<boost::system::error_code> write_all(asio::const_buffer b) override {
    auto [ec, n] = co_await asio::async_write(s_, b, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }
  void close() override {
    // No close_notify: close() is for the end of a session or a peer that misbehaves, and
    // waiting for the peer's part of a TLS shutdown would hand it a way to hold the socket.
    boost::system::error_code ec;
    s_.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
    s_.lowest_layer().close(ec);
  }
  asio::any_io_executor get_executor() override { return s_.get_executor(); }
  ssl::stream<tcp::socket>& raw() { return s_; }

 private:
  std::shared_ptr<ssl::context> ctx_;  // outlives the stream that uses it
  ssl::stream<tcp::socket> s_;
};

std::string openssl_reason(const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* r = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (r) return r;
  }
  return ec.message();
}

}  // namespace

std::unique_ptr<byte_stream> make_tcp_stream(tcp::socket s) {
  return std::make_unique<tcp_stream>(std::move(s));
}

namespace {

// A file the TLS set-up needs; "<what> '<path>' does not exist" when it is missing.
status need_file(const std::filesystem::path& p, std::string_view what) {
  if (p.empty() || !std::filesystem::exists(p))
    return make_error("tls.config", std::string(what) + " '" + p.string() + "' does not exist");
  return {};
}

// This end's certificate chain and key (they must match).
status load_identity(ssl::context& ctx, const config::tls_files& files) {
  if (auto st = need_file(files.cert_file, "certificate file"); !st) return st;
  if (auto st = need_file(files.key_file, "key file"); !st) return st;
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(files.cert_file.string(), ec);
  if (ec) return make_error("tls.config", "certificate '" + files.cert_file.string() + "': " + openssl_reason(ec));
  ctx.use_private_key_file(files.key_file.string(), ssl::context::pem, ec);
  if (ec) return make_error("tls.config", "key '" + files.key_file.string() + "': " + openssl_reason(ec));
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    return make_error("tls.config", "key '" + files.key_file.string() + "' does not match the certificate");
  return {};
}

// The CA(s) the peer's certificate must chain to.
status load_ca(ssl::context& ctx, const std::filesystem::path& ca, std::string_view what) {
  if (auto st = need_file(ca, what); !st) return st;
  boost::system::error_code ec;
  ctx.load_verify_file(ca.string(), ec);
  if (ec) return make_error("tls.config", std::string(what) + " '" + ca.string() + "': " + openssl_reason(ec));
  return {};
}

// The handshake of either side within `deadline`; the stream is closed when it fails.
asio::awaitable<status> handshake(tls_stream& stream, ssl::stream_base::handshake_type side,
                                  std::chrono::milliseconds deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto ex = stream.get_executor();
  asio::steady_timer timer(ex);
  timer.expires_after(deadline);
  auto r = co_await (stream.raw().async_handshake(side, asio::as_tuple(asio::use_awaitable)) ||
                     timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() == 1) {
    stream.close();
    co_return make_error("tls.timeout", "no TLS handshake within the deadline");
  }
  auto [ec] = std::get<0>(r);
  if (ec) {
    stream.close();
    co_return make_error("tls.handshake", "TLS handshake refused: " + openssl_reason(ec));
  }
  co_return status{};
}

// The subject CN of the peer's (verified) certificate; "" without one.
std::string peer_cn(tls_stream& stream) {
  std::string text;
  if (X509* cert = SSL_get1_peer_certificate(stream.raw().native_handle())) {
    char cn[256] = {0};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) text = cn;
    X509_free(cert);
  }
  return text;
}

}  // namespace

result<std::shared_ptr<ssl::context>> make_server_tls(const config::tls_files& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.2 is the floor; SSLv3, TLS 1.0 and 1.1 are refused at the handshake.
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  // Idle POS connections give their TLS buffers back (thousands of tills wait between sales).
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  if (auto st = load_identity(*ctx, files); !st) return st.err();
  if (!files.client_ca_file.empty()) {
    if (auto st = load_ca(*ctx, files.client_ca_file, "client CA file"); !st) return st.err();
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

result<std::shared_ptr<ssl::context>> make_client_tls(const config::tls_files& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (auto st = load_identity(*ctx, files); !st) return st.err();
  if (auto st = load_ca(*ctx, files.client_ca_file, "CA file"); !st) return st.err();
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

asio::awaitable<result<std::unique_ptr<byte_stream>>> tls_connect(tcp::socket& s,
                                                                  const std::shared_ptr<ssl::context>& ctx,
                                                                  const std::string& expected_cn,
                                                                  std::chrono::milliseconds deadline) {
  auto stream = std::make_unique<tls_stream>(std::move(s), ctx);
  auto shaken = co_await handshake(*stream, ssl::stream_base::client, deadline);
  if (!shaken) co_return shaken.err();
  const auto cn = peer_cn(*stream);
  if (cn != expected_cn) {
    stream->close();
    co_return make_error("tls.peer", "the peer's certificate names '" + cn + "', expected '" + expected_cn + "'");
  }
  co_return std::unique_ptr<byte_stream>(std::move(stream));
}

asio::awaitable<result<tls_peer>> tls_accept(tcp::socket& s, const std::shared_ptr<ssl::context>& ctx,
                                             std::chrono::milliseconds deadline) {
  auto stream = std::make_unique<tls_stream>(std::move(s), ctx);
  auto shaken = co_await handshake(*stream, ssl::stream_base::server, deadline);
  if (!shaken) co_return shaken.err();
  tls_peer peer;
  peer.client_cn = peer_cn(*stream);
  peer.stream = std::move(stream);
  co_return peer;
}

}  // namespace eftd::server
