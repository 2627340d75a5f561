// The serial/USB link layer (LINK.md): carries an opaque byte stream between two stations over
// a line that may add noise, lose bytes or damage them, and delivers every payload in order and
// exactly once, or reports the link down.
//
// A pure state machine: no I/O, no clock, no randomness of its own. The caller
//   - writes `to_write` of every returned link_output to the line,
//   - feeds what it reads from the line to feed(),
//   - calls on_tick() when next_deadline() has passed (and after send(), to transmit),
//   - passes its clock as now_ms (any monotonic millisecond count) and a random nonce to start().
// Stop-and-wait (window 1): one DATA frame in flight at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/pad/link/frame.hpp"

namespace eftd::pad::link {

enum class link_state {
  idle,        // constructed, start() not yet called
  connecting,  // RESET sent, waiting for its ACK; DATA is neither sent nor accepted
  up,          // exchanging DATA
  down,        // retries exhausted: nothing more is sent or accepted until start()
};
std::string_view to_string(link_state s) noexcept;

struct link_config {
  // Wait for an ACK before retransmitting. Must exceed the time a full frame takes on the line
  // plus the peer's turnaround: 1024 random payload bytes make about 1045 line bytes (1.1 s at
  // 9600 baud, 91 ms at 115200); a payload of nothing but escaped bytes makes 2062.
  std::uint32_t retransmit_timeout_ms = 1000;
  // Retransmissions of one frame (after timeouts or NAKs) before the link is declared down.
  std::uint32_t max_retries = 8;
  // Payload bytes per DATA frame, 1..max_payload. Larger sends are split.
  std::size_t max_frame_payload = max_payload;
  // Bound on bytes accepted by send() and not yet acknowledged.
  std::size_t max_queued_bytes = 256 * 1024;
};

struct link_stats {
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;  // valid frames of any type
  std::uint64_t payloads_delivered = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t duplicates = 0;    // DATA seen again (re-ACKed, not delivered)
  std::uint64_t out_of_order = 0;  // DATA with an unexpected seq (dropped, not ACKed)
  std::uint64_t not_ready = 0;     // DATA received while connecting (dropped)
  std::uint64_t stale_acks = 0;    // ACKs that match nothing in flight
  std::uint64_t naks_sent = 0;
  std::uint64_t naks_received = 0;
  std::uint64_t peer_restarts = 0;
  std::uint64_t crc_errors = 0;     // from the framer
  std::uint64_t bytes_skipped = 0;  // from the framer: noise and remains of damaged frames
};

struct link_output {
  // Payloads of the peer's send() calls, split at most max_frame_payload, in order, once each.
  std::vector<bytes> delivered;
  // Bytes to write to the line, in order (whole frames).
  bytes to_write;
  // The peer restarted (new RESET nonce) while the link was up: data not yet acknowledged in
  // either direction belonged to the old session and was discarded. The upper layer must
  // restart its own session (for example the TLS handshake).
  bool peer_restarted = false;
};

class link_layer {
 public:
  // Out-of-range settings are clamped (retransmit_timeout_ms and max_frame_payload to at
  // least 1, max_frame_payload to at most max_payload).
  explicit link_layer(link_config cfg = {});

  // (Re)starts the link from any state: discards queued and unacknowledged data, resets the
  // sequence numbers and sends RESET. `nonce` must differ from the previous session's (use a
  // random number): the peer tells a restart from a retransmitted RESET by it.
  link_output start(std::uint32_t nonce, std::uint64_t now_ms);

  // Bytes read from the line. Ignored in idle and down.
  link_output feed(byte_view in, std::uint64_t now_ms);

  // Queues payload bytes for the peer (all or nothing). Transmission starts at the next
  // on_tick() or feed(). Errors: link.down (state down), link.queue_full (max_queued_bytes).
  // An empty payload is accepted and sends nothing.
  status send(byte_view payload);

  // The retransmission timer, and transmission of queued data.
  link_output on_tick(std::uint64_t now_ms);

  // When on_tick() must next be called: 0 means now (queued data can be sent); nullopt means
  // only after new input or a send().
  std::optional<std::uint64_t> next_deadline() const;

  link_state state() const noexcept { return state_; }
  // Why the link went down (link.retries_exhausted, link.connect_timeout); only in state down.
  const std::optional<error>& down_reason() const noexcept { return down_reason_; }
  // Bytes accepted by send() and not yet acknowledged by the peer.
  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  link_stats stats() const noexcept;
  const link_config& config() const noexcept { return cfg_; }

 private:
  struct in_flight {
    frame_type type = frame_type::data;
    std::uint8_t seq = 0;
    bytes payload;
    std::uint64_t sent_at = 0;
    std::uint32_t retries = 0;
  };

  void process_input(std::uint64_t now_ms, link_output& out);
  void handle_frame(frame& f, std::uint64_t now_ms, link_output& out);
  void handle_data(frame& f, link_output& out);
  void handle_ack(const frame& f);
  void handle_reset(const frame& f, link_output& out);
  void retransmit(std::uint64_t now_ms, link_output& out, bool after_timeout);
  void transmit(in_flight& f, std::uint64_t now_ms, link_output& out);
  void send_control(frame_type type, std::uint8_t seq, byte_view payload, link_output& out);
  void pump(std::uint64_t now_ms, link_output& out);
  void reset_sequences();
  void drop_tx_data();
  void go_down(error why);

  link_config cfg_;
  link_state state_ = link_state::idle;
  std::optional<error> down_reason_;
  frame_parser parser_;

  std::uint32_t my_nonce_ = 0;
  std::optional<std::uint32_t> peer_nonce_;

  // Sending side.
  std::optional<in_flight> in_flight_;
  std::deque<bytes> queue_;  // chunks of at most max_frame_payload
  std::size_t queued_bytes_ = 0;
  std::uint8_t tx_seq_ = 0;  // seq of the next new DATA frame

  // Receiving side.
  std::uint8_t rx_expected_ = 0;
  std::optional<std::uint8_t> rx_last_;  // seq of the last DATA delivered since the reset

  link_stats stats_;
};

}  // namespace eftd::pad::link
