// Link-layer frames (LINK.md sections 1-3): encoding, and the receive-side framer that finds
// frames in a byte stream that may carry line noise, lost bytes and damaged bytes.
//
//   STX | seq | type | length (2, BE) | payload | CRC-16/CCITT-FALSE over seq..payload (2, BE) | ETX
//
// Between STX and ETX the bytes STX, ETX and DLE are escaped (DLE, byte XOR 0x20), so an STX on
// the line always starts a frame: noise can never hold back or swallow the real frame after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::pad::link {

inline constexpr std::uint8_t stx = 0x02;
inline constexpr std::uint8_t etx = 0x03;
inline constexpr std::uint8_t dle = 0x10;  // escape: the next byte is the original XOR 0x20
inline constexpr std::uint8_t escape_xor = 0x20;
// Largest payload of one frame; larger sends are split by the link layer.
inline constexpr std::size_t max_payload = 1024;
// seq, type, length (2) before the payload; CRC (2) after it: the escaped part of a frame.
inline constexpr std::size_t header_size = 4;
inline constexpr std::size_t crc_size = 2;
inline constexpr std::size_t max_content = header_size + max_payload + crc_size;
// Bytes on the line: at least STX + content + ETX; at most every content byte escaped.
inline constexpr std::size_t min_frame_size = 2 + header_size + crc_size;
inline constexpr std::size_t max_frame_size = 2 + 2 * max_content;
// RESET carries the sender's 4-byte session nonce; the ACK of a RESET echoes it and adds the
// responder's own nonce (8 bytes).
inline constexpr std::size_t nonce_size = 4;
inline constexpr std::size_t reset_ack_size = 2 * nonce_size;

// ASCII letters, so frames are readable in a hex dump of the line.
enum class frame_type : std::uint8_t {
  data = 0x44,   // 'D': payload 1..1024 bytes of the upper layer's byte stream
  ack = 0x41,    // 'A': empty (acknowledges DATA `seq`) or 8 bytes (acknowledges a RESET)
  nak = 0x4E,    // 'N': empty; the receiver saw a damaged frame
  reset = 0x52,  // 'R': 4-byte nonce; (re)starts the link's sequence numbering
};

std::string_view to_string(frame_type t) noexcept;
// True when `b` is one of the four frame types.
bool is_frame_type(std::uint8_t b) noexcept;
// Whether a payload of `len` bytes is legal for type `t` (DATA 1..1024, ACK 0 or 8, NAK 0, RESET 4).
bool payload_length_valid(frame_type t, std::size_t len) noexcept;

struct frame {
  frame_type type = frame_type::data;
  std::uint8_t seq = 0;
  bytes payload;

  friend bool operator==(const frame&, const frame&) = default;
};

// Appends the encoded frame to `out`. Fails with link.bad_frame (and appends nothing) when the
// payload length is not legal for the type.
status append_frame(bytes& out, frame_type type, std::uint8_t seq, byte_view payload);
result<bytes> encode_frame(const frame& f);

struct framer_stats {
  std::uint64_t frames = 0;         // valid frames returned
  std::uint64_t crc_errors = 0;     // damaged frames: STX..ETX with a known type but a bad CRC,
                                    // length or escape
  std::uint64_t bytes_skipped = 0;  // line bytes that were not part of a valid frame
};

enum class parse_status {
  need_more,  // no complete frame buffered; feed more bytes
  frame,      // `out` holds the next valid frame
  bad_crc,    // a damaged frame was dropped (the link layer answers it with a NAK)
};

// Receive-side framer, incremental: each line byte is examined once. Memory is bounded: after
// next() returned need_more only the open candidate (at most max_content bytes) is kept.
class frame_parser {
 public:
  void feed(byte_view in);
  // Extracts the next frame. Call until it returns need_more.
  parse_status next(frame& out);
  // True while a frame has started (STX seen) and not yet ended.
  bool in_frame() const noexcept { return in_frame_; }
  void clear() noexcept;
  // Bytes held: unread input plus the open candidate.
  std::size_t buffered() const noexcept { return buf_.size() - pos_ + cand_.size(); }
  const framer_stats& stats() const noexcept { return stats_; }

 private:
  void open_candidate() noexcept;
  void abandon_candidate() noexcept;
  parse_status finish_candidate(frame& out);

  bytes buf_;                 // input not yet examined
  std::size_t pos_ = 0;       // next byte of buf_ to examine
  bool in_frame_ = false;     // STX seen, ETX not yet
  bool escape_ = false;       // previous byte was DLE
  bool bad_escape_ = false;   // DLE followed by a byte that is not an escaped STX/ETX/DLE
  bytes cand_;                // unescaped content of the open candidate
  std::size_t cand_raw_ = 0;  // line bytes of the open candidate, STX included
  framer_stats stats_;
};

}  // namespace eftd::pad::link
