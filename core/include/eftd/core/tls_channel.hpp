// A sans-I/O TLS 1.3 endpoint: OpenSSL's state machine between two memory buffers, so the same
// code secures the PIN pad channel over any byte stream (TCP, a serial link layer, a till
// bridge relaying bytes it cannot read). The caller moves bytes: what arrived from the peer
// goes into feed(), what take_output() returns goes to the peer; plaintext goes in through
// write() and comes out of read().
//
// Only TLS 1.3 is spoken (minimum = maximum = 1.3): an older peer fails the handshake. A server
// context always demands a client certificate issued by its client CA; a client context
// verifies the server's chain against its CA (and, given a server name, the name or IP address
// in the certificate). No session tickets and no resumption: every connection presents and
// verifies a certificate, so a revocation applies at the next connection.
//
// Error codes:
//   tls.config     building a context: a file missing, unreadable, not PEM, or a key that does
//                  not match its certificate (the message names the file)
//   tls.handshake  the handshake failed; the message says why (unknown CA, no certificate,
//                  protocol version, not TLS at all, ...). Also on a client whose certificate
//                  the server refused after the client's side of the handshake had finished.
//   tls.protocol   after the handshake: a damaged or forged record, an unexpected message
//   tls.closed     the peer closed the TLS session (close_notify)
// After an error the channel stays failed: every later call returns the same error, but
// take_output() still hands out the alert that tells the peer why.
//
// Not thread-safe: one channel belongs to one connection (its strand). Contexts are immutable
// once built and shared between channels on any thread. Key material never leaves OpenSSL and
// is never logged; error texts carry OpenSSL's reason strings, certificate names at most.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"

struct ssl_ctx_st;
struct ssl_st;

namespace eftd {

class tls_context {
 public:
  // eftd's side of the pad listener: files.cert_file (chain) and files.key_file, and client
  // certificates required from files.client_ca_file (which must be set).
  static result<std::shared_ptr<const tls_context>> server(const config::tls_files& files);
  // A pad: trusts `ca` for the server's certificate and presents `cert` with `key`.
  static result<std::shared_ptr<const tls_context>> client(const std::filesystem::path& ca,
                                                           const std::filesystem::path& cert,
                                                           const std::filesystem::path& key);
  // The same with the certificate and its key given as PEM text (eft-loadgen issues thousands
  // of device certificates in memory rather than reading them from files).
  static result<std::shared_ptr<const tls_context>> client_pem(const std::filesystem::path& ca,
                                                               std::string_view cert_pem,
                                                               std::string_view key_pem);
  // A context built elsewhere (an Asio ssl::context's native handle, with its own protocol
  // range and verification settings), shared: OpenSSL's reference count keeps it alive.
  static std::shared_ptr<const tls_context> adopt(ssl_ctx_st* ctx, bool server);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  bool is_server() const noexcept { return server_; }
  ssl_ctx_st* native() const noexcept { return ctx_; }

 private:
  tls_context(ssl_ctx_st* ctx, bool server) : ctx_(ctx), server_(server) {}
  ssl_ctx_st* ctx_;
  bool server_;
};

class tls_channel {
 public:
  // A server endpoint: waits for the client's hello. Error: tls.config (ctx is a client context,
  // or OpenSSL cannot allocate).
  static result<tls_channel> server(std::shared_ptr<const tls_context> ctx);
  // A client endpoint; take_output() returns its ClientHello at once. With server_name set, the
  // server's certificate must carry that DNS name or IP address (and SNI names it).
  static result<tls_channel> client(std::shared_ptr<const tls_context> ctx,
                                    std::string_view server_name = {});

  tls_channel(tls_channel&&) noexcept;
  tls_channel& operator=(tls_channel&&) noexcept;
  ~tls_channel();

  // Ciphertext from the peer (any split: byte by byte works). Advances the handshake and
  // decrypts what it can; the plaintext waits in read(). An error fails the channel; plaintext
  // decrypted before the error is still returned by read().
  status feed(byte_view ciphertext);
  // Ciphertext for the peer produced so far (handshake messages, records, alerts).
  bytes take_output();
  // Plaintext for the peer. Before the handshake is done it is queued and sent right after it.
  status write(byte_view plaintext);
  // Plaintext received so far (and not yet taken).
  bytes read();
  // Queues a close_notify for the peer (idempotent; nothing on a failed channel).
  void close();

  // Server: the client's certificate has been verified. Client: its side is done (TLS 1.3
  // lets a server refuse the client's certificate later; that shows up as a feed() error).
  bool handshake_done() const noexcept { return handshake_done_; }
  // Subject CN of the peer's verified certificate; "" before the handshake or without one.
  const std::string& peer_cn() const noexcept { return peer_cn_; }
  // The error the channel failed with, if any.
  const error* failure() const noexcept { return failed_ ? &error_ : nullptr; }

 private:
  tls_channel(std::shared_ptr<const tls_context> ctx, ssl_st* ssl);
  status advance();
  status fail(error e);
  status flush_pending();
  void wipe() noexcept;

  std::shared_ptr<const tls_context> ctx_;
  ssl_st* ssl_ = nullptr;  // owns both memory BIOs
  bytes plaintext_in_;     // decrypted, waiting for read()
  bytes plaintext_out_;    // written before the handshake finished
  std::string peer_cn_;
  error error_;
  bool handshake_done_ = false;
  bool failed_ = false;
  bool closed_ = false;
};

}  // namespace eftd
