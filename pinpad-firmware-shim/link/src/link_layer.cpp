#include "eftd/pad/link/link_layer.hpp"

#include <algorithm>
#include <array>
#include <string>

namespace eftd::pad::link {
namespace {

std::array<std::uint8_t, nonce_size> be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

std::uint32_t read_be32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

link_config clamp(link_config c) {
  c.retransmit_timeout_ms = std::max<std::uint32_t>(c.retransmit_timeout_ms, 1);
  c.max_frame_payload = std::clamp<std::size_t>(c.max_frame_payload, 1, max_payload);
  return c;
}

}  // namespace

std::string_view to_string(link_state s) noexcept {
  switch (s) {
    case link_state::idle:
      return "idle";
    case link_state::connecting:
      return "connecting";
    case link_state::up:
      return "up";
    case link_state::down:
      return "down";
  }
  return "?";
}

link_layer::link_layer(link_config cfg) : cfg_(clamp(cfg)) {}

link_stats link_layer::stats() const noexcept {
  link_stats s = stats_;
  s.crc_errors = parser_.stats().crc_errors;
  s.bytes_skipped = parser_.stats().bytes_skipped;
  return s;
}

void link_layer::reset_sequences() {
  tx_seq_ = 0;
  rx_expected_ = 0;
  rx_last_.reset();
}

void link_layer::drop_tx_data() {
  if (in_flight_ && in_flight_->type == frame_type::data) in_flight_.reset();
  queue_.clear();
  queued_bytes_ = 0;
}

link_output link_layer::start(std::uint32_t nonce, std::uint64_t now_ms) {
  link_output out;
  drop_tx_data();
  in_flight_.reset();
  parser_.clear();
  reset_sequences();
  down_reason_.reset();
  my_nonce_ = nonce;
  peer_nonce_.reset();
  state_ = link_state::connecting;
  const auto n = be32(nonce);
  in_flight_ = in_flight{frame_type::reset, 0, bytes(n.begin(), n.end()), now_ms, 0};
  transmit(*in_flight_, now_ms, out);
  return out;
}

status link_layer::send(byte_view payload) {
  if (state_ == link_state::down)
    return make_error("link.down", down_reason_ ? "link is down: " + down_reason_->message : "link is down");
  if (payload.size() > cfg_.max_queued_bytes - std::min(queued_bytes_, cfg_.max_queued_bytes))
    return make_error("link.queue_full", "send of " + std::to_string(payload.size()) + " bytes exceeds the " +
                                             std::to_string(cfg_.max_queued_bytes) + "-byte send queue (" +
                                             std::to_string(queued_bytes_) + " bytes waiting)");
  for (std::size_t off = 0; off < payload.size(); off += cfg_.max_frame_payload) {
    const std::size_t n = std::min(cfg_.max_frame_payload, payload.size() - off);
    queue_.emplace_back(payload.begin() + static_cast<std::ptrdiff_t>(off),
                        payload.begin() + static_cast<std::ptrdiff_t>(off + n));
  }
  queued_bytes_ += payload.size();
  return {};
}

void link_layer::send_control(frame_type type, std::uint8_t seq, byte_view payload, link_output& out) {
  // Control frames are built here with legal lengths only; a failure would be a bug in this file.
  if (append_frame(out.to_write, type, seq, payload)) ++stats_.frames_sent;
}

void link_layer::transmit(in_flight& f, std::uint64_t now_ms, link_output& out) {
  if (append_frame(out.to_write, f.type, f.seq, f.payload)) ++stats_.frames_sent;
  f.sent_at = now_ms;
}

void link_layer::pump(std::uint64_t now_ms, link_output& out) {
  if (state_ != link_state::up || in_flight_ || queue_.empty()) return;
  in_flight_ = in_flight{frame_type::data, tx_seq_++, std::move(queue_.front()), now_ms, 0};
  queue_.pop_front();
  transmit(*in_flight_, now_ms, out);
}

void link_layer::go_down(error why) {
  state_ = link_state::down;
  down_reason_ = std::move(why);
  in_flight_.reset();
  queue_.clear();
  queued_bytes_ = 0;
  parser_.clear();
}

void link_layer::retransmit(std::uint64_t now_ms, link_output& out, bool after_timeout) {
  if (!in_flight_) return;
  if (in_flight_->retries >= cfg_.max_retries) {
    const bool connecting = in_flight_->type == frame_type::reset;
    const std::string what = connecting ? "no answer to RESET" : "DATA frame not acknowledged";
    const std::size_t lost = queued_bytes_;
    go_down(make_error(connecting ? "link.connect_timeout" : "link.retries_exhausted",
                       what + " after " + std::to_string(cfg_.max_retries) + " retransmissions (" +
                           (after_timeout ? "last one timed out" : "last one rejected by NAK") + "); " +
                           std::to_string(lost) + " bytes were not delivered"));
    return;
  }
  ++in_flight_->retries;
  ++stats_.retransmissions;
  transmit(*in_flight_, now_ms, out);
}

link_output link_layer::feed(byte_view in, std::uint64_t now_ms) {
  link_output out;
  if (state_ == link_state::idle || state_ == link_state::down) return out;
  parser_.feed(in);
  process_input(now_ms, out);
  pump(now_ms, out);
  return out;
}

void link_layer::process_input(std::uint64_t now_ms, link_output& out) {
  // One NAK per batch of input: a burst of noise must not turn into a burst of
  // retransmissions that eats the peer's retry budget.
  bool nak_sent = false;
  frame f;
  for (;;) {
    if (state_ == link_state::down) return;
    const parse_status st = parser_.next(f);
    if (st == parse_status::need_more) return;
    if (st == parse_status::bad_crc) {
      if (!nak_sent) {
        send_control(frame_type::nak, rx_expected_, {}, out);
        ++stats_.naks_sent;
        nak_sent = true;
      }
      continue;
    }
    ++stats_.frames_received;
    handle_frame(f, now_ms, out);
  }
}

void link_layer::handle_frame(frame& f, std::uint64_t now_ms, link_output& out) {
  switch (f.type) {
    case frame_type::data:
      handle_data(f, out);
      return;
    case frame_type::ack:
      handle_ack(f);
      return;
    case frame_type::nak:
      ++stats_.naks_received;
      // The peer saw a damaged frame; it may have been our frame in flight, so resend it now
      // instead of waiting for the timeout. A NAK for something else costs one duplicate.
      retransmit(now_ms, out, false);
      return;
    case frame_type::reset:
      handle_reset(f, out);
      return;
  }
}

void link_layer::handle_data(frame& f, link_output& out) {
  if (state_ != link_state::up) {
    // Until our RESET is acknowledged the peer may not have reset its numbering for us.
    ++stats_.not_ready;
    return;
  }
  if (rx_last_ && f.seq == *rx_last_) {
    // Our ACK was lost and the peer sent the frame again.
    ++stats_.duplicates;
    send_control(frame_type::ack, f.seq, {}, out);
    return;
  }
  if (f.seq != rx_expected_) {
    // With one frame in flight nothing but the expected seq or a repeat of the last one can
    // arrive from a peer in step with us. No ACK: the peer retries and, if it stays out of
    // step, declares the link down.
    ++stats_.out_of_order;
    return;
  }
  send_control(frame_type::ack, f.seq, {}, out);
  rx_last_ = f.seq;
  ++rx_expected_;
  ++stats_.payloads_delivered;
  out.delivered.push_back(std::move(f.payload));
}

void link_layer::handle_ack(const frame& f) {
  if (f.payload.size() == reset_ack_size) {
    const std::uint32_t echoed = read_be32(f.payload.data());
    if (state_ == link_state::connecting && in_flight_ && in_flight_->type == frame_type::reset &&
        echoed == my_nonce_) {
      in_flight_.reset();
      peer_nonce_ = read_be32(f.payload.data() + nonce_size);
      state_ = link_state::up;
      return;
    }
    ++stats_.stale_acks;
    return;
  }
  if (state_ == link_state::up && in_flight_ && in_flight_->type == frame_type::data &&
      in_flight_->seq == f.seq) {
    queued_bytes_ -= std::min(queued_bytes_, in_flight_->payload.size());
    in_flight_.reset();
    return;
  }
  // A second ACK for a frame that was retransmitted needlessly, or one from a past session.
  ++stats_.stale_acks;
}

void link_layer::handle_reset(const frame& f, link_output& out) {
  const std::uint32_t nonce = read_be32(f.payload.data());
  bytes ack_payload;
  const auto a = be32(nonce);
  const auto b = be32(my_nonce_);
  ack_payload.insert(ack_payload.end(), a.begin(), a.end());
  ack_payload.insert(ack_payload.end(), b.begin(), b.end());
  send_control(frame_type::ack, 0, ack_payload, out);

  // The same nonce again: our ACK was lost and the peer repeats its RESET. Nothing restarts.
  if (peer_nonce_ && *peer_nonce_ == nonce) return;
  peer_nonce_ = nonce;
  if (state_ == link_state::up) {
    // A new nonce while up: the peer restarted. Its receiver expects seq 0 from us and knows
    // nothing of the old session, whose unacknowledged data would be garbage to it.
    ++stats_.peer_restarts;
    out.peer_restarted = true;
    drop_tx_data();
    reset_sequences();
  }
  // Connecting: we have neither sent nor accepted DATA in this session, so there is nothing
  // to renumber or drop.
}

link_output link_layer::on_tick(std::uint64_t now_ms) {
  link_output out;
  if (state_ == link_state::idle || state_ == link_state::down) return out;
  if (in_flight_ && now_ms - in_flight_->sent_at >= cfg_.retransmit_timeout_ms) retransmit(now_ms, out, true);
  pump(now_ms, out);
  return out;
}

std::optional<std::uint64_t> link_layer::next_deadline() const {
  if (state_ == link_state::idle || state_ == link_state::down) return std::nullopt;
  if (state_ == link_state::up && !in_flight_ && !queue_.empty()) return 0;
  if (in_flight_) return in_flight_->sent_at + cfg_.retransmit_timeout_ms;
  // An open candidate frame needs no timer: with escaping, the next frame's STX ends it.
  return std::nullopt;
}

}  // namespace eftd::pad::link
