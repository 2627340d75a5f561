// One peer connection's bytes, plaintext TCP or TLS, behind one small interface, so a session
// is written once for both. The TLS side (OpenSSL through Asio) stays in byte_stream.cpp: no
// session or widely included header pulls in the SSL headers.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <tuple>

#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"

namespace boost::asio::ssl {
class context;
}

namespace eftd::server {

class byte_stream {
 public:
  virtual ~byte_stream() = default;
  // Completes with what arrived (at least one byte) or an error (eof when the peer closed).
  // A signal on `cancel` ends the wait with operation_aborted (read_deadline).
  virtual boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer b, boost::asio::cancellation_slot cancel) = 0;
  boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      boost::asio::mutable_buffer b) {
    return read_some(b, boost::asio::cancellation_slot());
  }
  // Writes all of b.
  virtual boost::asio::awaitable<boost::system::error_code> write_all(boost::asio::const_buffer b) = 0;
  // Sends what the connection takes without waiting: how much of b went (0 when the stream
  // cannot, or only by waiting); ec only when the connection failed. No write_all() may be
  // in progress.
  virtual std::size_t try_write(boost::asio::const_buffer b, boost::system::error_code& ec) {
    (void)b;
    ec = {};
    return 0;
  }
  // Immediate and idempotent: pending operations complete with an error.
  virtual void close() = 0;
  virtual boost::asio::any_io_executor get_executor() = 0;
};

std::unique_ptr<byte_stream> make_tcp_stream(boost::asio::ip::tcp::socket s);

// A server-side TLS context: TLS 1.2 or newer, the server's certificate, and (when
// client_ca_file is set) a client certificate from that CA required on every connection.
// Errors: tls.config (a file missing or unreadable; the message names it).
result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls(const config::tls_files& files);

// Runs the TLS handshake as the server, within `deadline`. On success the stream and the
// subject common name of the client's certificate ("" without one). Errors: tls.handshake
// (the message says why: no certificate, unknown CA, protocol version...), tls.timeout.
struct tls_peer {
  std::unique_ptr<byte_stream> stream;
  std::string client_cn;
};
// The socket is moved from.
boost::asio::awaitable<result<tls_peer>> tls_accept(boost::asio::ip::tcp::socket& s,
                                                    const std::shared_ptr<boost::asio::ssl::context>& ctx,
                                                    std::chrono::milliseconds deadline);

// A client-side TLS context for links between eftd nodes and to the witness: TLS 1.2 or newer,
// this node's certificate (files.cert_file/key_file, presented to the peer) and the peer's
// server certificate verified against files.client_ca_file (one CA for the pair).
// Errors: tls.config.
result<std::shared_ptr<boost::asio::ssl::context>> make_client_tls(const config::tls_files& files);

// Runs the TLS handshake as the client within `deadline`, checking that the server
// certificate's subject CN equals expected_cn. Errors: tls.handshake, tls.timeout, tls.peer.
boost::asio::awaitable<result<std::unique_ptr<byte_stream>>> tls_connect(
    boost::asio::ip::tcp::socket& s, const std::shared_ptr<boost::asio::ssl::context>& ctx,
    const std::string& expected_cn, std::chrono::milliseconds deadline);

}  // namespace eftd::server
