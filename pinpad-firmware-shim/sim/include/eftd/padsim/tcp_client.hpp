// LAN transport of the pad: a TCP client that keeps one connection to one of a list of eftd
// servers, runs a pad_session on it, and reconnects with capped exponential backoff. With a
// TLS context the frames travel inside TLS 1.3 (a sans-I/O tls_channel between the socket and
// the session); the server's certificate must name the host connected to.
// Asio stays in the .cpp: this header is plain C++.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/core/tls_channel.hpp"
#include "eftd/padsim/session.hpp"

namespace eftd::padsim {

struct server_address {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const server_address&, const server_address&) = default;
};

// "host:port" or "[v6addr]:port"; padsim.bad_address otherwise (port 1..65535).
eftd::result<server_address> parse_server_address(std::string_view text);

// Deterministic capped exponential backoff: initial, 2x, 4x, ... up to max; reset() after a
// successful handshake. No jitter: pads retry independently of each other anyway, and tests
// stay deterministic.
class backoff_policy {
 public:
  explicit backoff_policy(std::chrono::milliseconds initial = std::chrono::milliseconds(200),
                          std::chrono::milliseconds max = std::chrono::milliseconds(5000))
      : initial_(initial), max_(max), next_(initial) {}
  std::chrono::milliseconds next() noexcept {
    auto d = next_;
    next_ = std::min(max_, next_ * 2);
    return d;
  }
  void reset() noexcept { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, next_;
};

struct tcp_client_options {
  std::vector<server_address> servers;  // tried in turn; at least one
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds handshake_timeout{10000};  // hello sent -> hello_ack received
  // Nothing at all from an accepted server for this long (eftd pings every
  // pad_health.ping_interval_ms): the connection is dropped and the next server tried.
  // 0 = never (a quiet server is waited for).
  std::chrono::milliseconds silence_timeout{0};
  backoff_policy backoff;
  bool once = false;               // stop after one read_card is answered and the next display shown
  bool handle_signals = true;      // SIGINT/SIGTERM end run() with 0
  std::function<void()> on_ready;  // after each accepted hello_ack
  // TLS 1.3 client context (CA, device certificate, key); null = plaintext frames.
  std::shared_ptr<const eftd::tls_context> tls;
};

class tcp_client {
 public:
  tcp_client(tcp_client_options options, pad_session& session);
  ~tcp_client();
  tcp_client(const tcp_client&) = delete;
  tcp_client& operator=(const tcp_client&) = delete;

  // Runs until a signal, stop(), or --once completion: returns 0. 1 on an internal failure.
  int run();
  // Thread-safe: ends run() soon with 0.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::padsim
