#include "byte_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <cstring>
#include <filesystem>

#include "eftd/core/tls_channel.hpp"
#include "write_queue.hpp"

namespace eftd::server {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// One async_read_some on `s`, cancelled by `cancel` when that slot is connected. Without a slot
// of its own the read keeps the awaiting coroutine's, so `read_some() || timer` still cancels it.
template <class AsyncStream>
asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some_with(AsyncStream& s,
                                                                                  asio::mutable_buffer b,
                                                                                  asio::cancellation_slot cancel) {
  if (!cancel.is_connected()) co_return co_await s.async_read_some(b, asio::as_tuple(asio::use_awaitable));
  co_return co_await s.async_read_some(b, asio::bind_cancellation_slot(cancel, asio::as_tuple(asio::use_awaitable)));
}

class tcp_stream final : public byte_stream {
 public:
  explicit tcp_stream(tcp::socket s) : s_(std::move(s)) {}
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      asio::mutable_buffer b, asio::cancellation_slot cancel) override {
    return read_some_with(s_, b, cancel);
  }
  asio::awaitable<boost::system::error_code> write_all(asio::const_buffer b) override {
    auto [ec, n] = co_await asio::async_write(s_, b, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }
  std::size_t try_write(asio::const_buffer b, boost::system::error_code& ec) override {
    return send_now(s_, b, ec);
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
      asio::mutable_buffer b, asio::cancellation_slot cancel) override {
    return read_some_with(s_, b, cancel);
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

// The server side of TLS over a TCP socket through eftd's sans-I/O tls_channel (memory BIOs)
// rather than Asio's ssl::stream, which keeps four 17 KiB buffers per connection for its
// lifetime (tools/bench with 9,800 tills over TLS: eftd's RSS went from 1,426 to 1,020 MB).
// OpenSSL frees an idle session's own buffers (SSL_MODE_RELEASE_BUFFERS); this class holds
// what one read brings and what waits to be written.
class channel_stream final : public byte_stream {
 public:
  channel_stream(tcp::socket s, tls_channel ch)
      : s_(std::move(s)), ch_(std::move(ch)), wake_(s_.get_executor()) {}

  // The handshake within `deadline`: ok, or the channel's error (tls.handshake ...) or
  // tls.timeout. The alert that tells the client why is sent before the error returns.
  asio::awaitable<status> handshake(std::chrono::milliseconds deadline) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(s_.get_executor());
    timer.expires_after(deadline);
    while (!ch_.handshake_done()) {
      auto r = co_await (s_.async_read_some(asio::buffer(in_), asio::as_tuple(asio::use_awaitable)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) co_return make_error("tls.timeout", "no TLS handshake within the deadline");
      auto [ec, n] = std::get<0>(r);
      if (ec) co_return make_error("tls.handshake", "the client closed the connection during the handshake");
      const auto st = ch_.feed(byte_view(in_.data(), n));
      // Handshake messages, or the alert that says why not.
      co_await flush();
      if (!st) co_return st;
    }
    take_plaintext();
    co_return status{};
  }

  const std::string& peer_cn() const { return ch_.peer_cn(); }

  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      asio::mutable_buffer b, asio::cancellation_slot cancel) override {
    for (;;) {
      if (plain_off_ < plain_.size()) {
        const std::size_t n = std::min(b.size(), plain_.size() - plain_off_);
        std::memcpy(b.data(), plain_.data() + plain_off_, n);
        plain_off_ += n;
        if (plain_off_ == plain_.size()) {
          plain_.clear();
          plain_off_ = 0;
          if (plain_.capacity() > 64 * 1024) bytes().swap(plain_);  // a large message passed
        }
        co_return std::tuple{boost::system::error_code{}, n};
      }
      if (read_error_) co_return std::tuple{read_error_, std::size_t{0}};
      auto [ec, n] = co_await read_some_with(s_, asio::buffer(in_), cancel);
      if (ec) co_return std::tuple{ec, std::size_t{0}};
      const auto st = ch_.feed(byte_view(in_.data(), n));
      take_plaintext();
      // Rare after the handshake (a key update's answer, an alert): sent like data.
      if (auto wec = co_await flush(); wec && !read_error_) read_error_ = wec;
      if (!st) {
        // The session is over: what was decrypted before is still read, then the error.
        if (st.err().code == "tls.closed")
          read_error_ = asio::error::eof;
        else
          read_error_ = asio::error::connection_aborted;
        spdlog::debug("TLS session ended: {} ({})", st.err().message, st.err().code);
      }
    }
  }

  asio::awaitable<boost::system::error_code> write_all(asio::const_buffer b) override {
    if (auto st = ch_.write(byte_view(static_cast<const std::uint8_t*>(b.data()), b.size())); !st)
      co_return asio::error::connection_aborted;
    co_return co_await flush();
  }

  void close() override {
    // No close_notify: as tls_stream::close().
    boost::system::error_code ec;
    s_.shutdown(tcp::socket::shutdown_both, ec);
    s_.close(ec);
    wake_.cancel();
  }
  asio::any_io_executor get_executor() override { return s_.get_executor(); }

 private:
  void take_plaintext() {
    bytes p = ch_.read();
    if (p.empty()) return;
    if (plain_.empty()) {
      plain_ = std::move(p);
      plain_off_ = 0;
    } else {
      plain_.insert(plain_.end(), p.begin(), p.end());
    }
  }

  // Sends the channel's output. One write on the socket at a time: a second caller adds its
  // records to the queue and waits until the writer in progress has sent them too.
  asio::awaitable<boost::system::error_code> flush() {
    bytes more = ch_.take_output();
    out_.insert(out_.end(), more.begin(), more.end());
    if (writing_) {
      const auto mine = queued_ + out_.size();
      while (writing_ && sent_ < mine && !write_error_) {
        wake_.expires_at(asio::steady_timer::time_point::max());
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!s_.is_open()) co_return asio::error::operation_aborted;
      }
      if (write_error_ || sent_ >= mine) co_return write_error_;
    }
    writing_ = true;
    while (!out_.empty() && !write_error_) {
      bytes chunk;
      chunk.swap(out_);
      queued_ += chunk.size();
      auto [ec, n] = co_await asio::async_write(s_, asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
      sent_ += n;
      if (ec) write_error_ = ec;
    }
    writing_ = false;
    wake_.cancel();
    co_return write_error_;
  }

  tcp::socket s_;
  tls_channel ch_;
  asio::steady_timer wake_;              // writers waiting for the one in progress
  std::array<std::uint8_t, 4096> in_{};  // one read's ciphertext
  bytes plain_;                          // decrypted, not yet read
  std::size_t plain_off_ = 0;
  bytes out_;                            // records waiting for the socket
  std::uint64_t queued_ = 0, sent_ = 0;  // bytes handed to the socket / written by it
  bool writing_ = false;
  boost::system::error_code read_error_, write_error_;
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
  // The Asio context's settings (protocol range, certificate, client CA) drive the channel.
  auto ch = tls_channel::server(tls_context::adopt(ctx->native_handle(), true));
  if (!ch) {
    boost::system::error_code ec;
    s.close(ec);
    co_return ch.err();
  }
  auto stream = std::make_unique<channel_stream>(std::move(s), std::move(*ch));
  auto shaken = co_await stream->handshake(deadline);
  if (!shaken) {
    stream->close();
    if (shaken.err().code == "tls.timeout") co_return shaken.err();
    co_return make_error(shaken.err().code, "TLS handshake refused: " + shaken.err().message);
  }
  tls_peer peer;
  peer.client_cn = stream->peer_cn();
  peer.stream = std::move(stream);
  co_return peer;
}

}  // namespace eftd::server
