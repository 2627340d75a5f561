// Serial transport of the pad: the pad channel (PROTOCOL.md frames, optionally inside TLS 1.3)
// carried by the link layer (LINK.md) over a tty, towards a till bridge (`eftpad bridge`) that
// relays the bytes to eftd. Also the building blocks the bridge shares with it:
//   - serial_link: a serial port, a reader thread and the link layer, driven by one poll() loop;
//   - stop_signals: SIGINT/SIGTERM as a file descriptor that loop can wait on.
//
// Threads: one reader thread per port (blocking reads with a timeout), everything else on the
// caller's thread. No Asio: the port hides its file descriptor, so a thread hands its bytes to
// the loop through an eventfd.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/tls_channel.hpp"
#include "eftd/pad/link/link_layer.hpp"
#include "eftd/pad/serial_port.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/tcp_client.hpp"

namespace eftd::padsim {

using link_clock = std::chrono::steady_clock;

// SIGINT and SIGTERM, seen as a readable file descriptor (the handler writes to an eventfd).
// One instance at a time per process; the previous handlers come back on destruction.
class stop_signals {
 public:
  stop_signals();
  ~stop_signals();
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;
  int fd() const noexcept { return fd_; }
  // A signal arrived (the fd stays readable from then on).
  bool requested() const noexcept;

 private:
  int fd_ = -1;
};

// A wake-up file descriptor another thread (or stop()) can make readable.
class wake_fd {
 public:
  wake_fd();
  ~wake_fd();
  wake_fd(const wake_fd&) = delete;
  wake_fd& operator=(const wake_fd&) = delete;
  int fd() const noexcept { return fd_; }
  void notify() noexcept;  // thread-safe and async-signal-safe
  void clear() noexcept;

 private:
  int fd_ = -1;
};

// What a round of serial_link work produced, in the order the caller must act on it:
// delivered payloads first (they belong to the session that was running), then the flags.
struct link_events {
  std::vector<bytes> delivered;
  bool came_up = false;               // connecting -> up (our RESET was acknowledged)
  bool peer_restarted = false;        // the peer started a new link session while we were up
  bool went_down = false;             // retries exhausted: see down_reason()
  std::optional<error> port_failure;  // the port failed (serial.hangup, ...): reopen it
};

// The link layer on a serial port. The reader thread only reads; the link state machine and
// all writes run on the thread that calls the methods (the owner's poll() loop): wait until
// fd() is readable or next_deadline() passes, then call pump().
class serial_link {
 public:
  serial_link(std::unique_ptr<pad::serial_port> port, pad::link::link_config cfg = {});
  ~serial_link();  // stops the reader thread, closes the port
  serial_link(const serial_link&) = delete;
  serial_link& operator=(const serial_link&) = delete;

  // Readable while input or a port failure waits for pump().
  int fd() const noexcept { return input_wake_.fd(); }
  // (Re)starts the link session with a fresh random nonce: the peer sees a RESET.
  void start();
  // Feeds what the reader thread has read, runs the timers and transmits queued data.
  link_events pump();
  // Queues payload for the peer (transmitted at the next pump()). Errors: link.down,
  // link.queue_full.
  status send(byte_view payload);
  // When pump() is due without input; nullopt: only on input.
  std::optional<link_clock::time_point> next_deadline() const;

  pad::link::link_state state() const noexcept { return link_.state(); }
  const std::optional<error>& down_reason() const noexcept { return link_.down_reason(); }
  std::size_t queued_bytes() const noexcept { return link_.queued_bytes(); }
  pad::link::link_stats stats() const noexcept { return link_.stats(); }
  const std::string& path() const noexcept { return path_; }

 private:
  void reader_loop();
  void apply(pad::link::link_output& out, link_events& ev);
  static std::uint64_t now_ms();

  std::unique_ptr<pad::serial_port> port_;
  std::string path_;
  pad::link::link_layer link_;
  wake_fd input_wake_;
  std::atomic<bool> stopping_{false};
  struct shared_input;
  std::unique_ptr<shared_input> input_;
  std::optional<error> port_failure_;  // sticky once reported
  std::thread reader_;
};

struct serial_client_options {
  std::string port_path;  // any tty (termios), ptys included
  std::uint32_t baud = 115200;
  pad::link::link_config link;
  std::chrono::milliseconds handshake_timeout{10000};  // session start -> hello_ack received
  backoff_policy backoff;
  bool once = false;               // stop after one read_card is answered and the next display shown
  bool handle_signals = true;      // SIGINT/SIGTERM end run() with 0
  std::function<void()> on_ready;  // after each accepted hello_ack
  // TLS 1.3 client context; null = plaintext frames. The pad cannot know which eftd the bridge
  // reaches, so the name its certificate must carry is configured (tls_server_name).
  std::shared_ptr<const eftd::tls_context> tls;
  std::string tls_server_name;
};

// Runs a pad_session over the link layer on a tty (LINK.md section 10):
//   - link up -> a new session (TLS ClientHello, hello);
//   - the bridge RESETs the link (its server connection ended) -> the session is dropped and a
//     new one starts at once (the bridge holds its bytes until it has reconnected);
//   - a session failure (refusal, TLS or protocol error, no hello_ack within the handshake
//     deadline) or the link going down -> backoff, then a new link session (RESET), which tells
//     the bridge to drop its server connection;
//   - the port failing (hangup) -> backoff, reopen.
class serial_client {
 public:
  serial_client(serial_client_options options, pad_session& session);
  ~serial_client();
  serial_client(const serial_client&) = delete;
  serial_client& operator=(const serial_client&) = delete;

  // Runs until a signal, stop(), or --once completion: returns 0. 2 when the options are unusable.
  int run();
  // Thread-safe: ends run() soon with 0.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::padsim
