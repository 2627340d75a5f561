// Message framing on a byte stream, kept apart from the ISO 8583 codec: a frame is a length
// header, optionally a TPDU, then one packed message. Sans-I/O: the link and the simulator
// feed bytes in.
//
// Keep-alives: a frame whose length is zero carries no message (and no TPDU). The reader
// consumes them silently (and counts them); nothing ever answers a keep-alive, and a writer
// sends one only between whole frames, never inside a message. Every length header kind
// defines this keep-alive: 00 00 (binary2, bcd2) or "0000" (ascii4).
//
// TPDU (transport protocol data unit, terminal-to-host links): 5 bytes in front of the
// message, ID 0x60, destination NII (2 bytes), source NII (2 bytes). A response carries the
// request's TPDU with the two addresses swapped. It is combined with any length header
// (frame_options::tpdu) and counted in the length. The reader checks the ID and strips the
// TPDU; last_tpdu() tells what it carried, so a host can answer with reply().
//
// Error codes:
//   frame.unsupported_header  binary2_tpdu: not a header kind of its own, see below
//   frame.bad_header          a length header that is not valid digits (ASCII / BCD kinds)
//   frame.too_large           a length above the configured maximum payload
//   frame.bad_tpdu            a TPDU frame shorter than 6 bytes (TPDU + at least one byte of
//                             message) or whose first byte is not 0x60
//   frame.bad_name            parse_framing(): not a framing name
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acq {

// The length header in front of each message. In every kind the length counts the payload
// only, never the header itself.
enum class length_header : std::uint8_t {
  binary2,       // 2 bytes, unsigned big-endian (0..65535)
  ascii4,        // 4 ASCII decimal digits (0..9999)
  bcd2,          // 2 bytes packed BCD, 4 digits (0..9999)
  binary2_tpdu,  // reserved name from the first design. A TPDU now combines with any header
                 // (frame_options::tpdu, "binary2+tpdu"); create() rejects this value with
                 // frame.unsupported_header so old configurations fail loudly.
};

// "binary2", "ascii4", "bcd2", "binary2_tpdu" <-> enum.
std::optional<length_header> parse_length_header(std::string_view name);
std::string_view to_string(length_header h);

struct tpdu_header {
  static constexpr std::size_t size = 5;
  static constexpr std::uint8_t transaction_id = 0x60;

  std::uint8_t id = transaction_id;
  std::uint16_t destination = 0;  // NII of the receiver, the 2 bytes as sent (often BCD: 0x0001)
  std::uint16_t source = 0;       // NII of the sender

  // The TPDU of the answer: same ID, addresses swapped.
  tpdu_header reply() const noexcept { return {id, source, destination}; }
  void encode(bytes& out) const;
  // The 5 bytes at the front of `in`; frame.bad_tpdu if fewer or the ID is not 0x60.
  static result<tpdu_header> decode(byte_view in);
  // "60 0001 0000" style text (no card data in a TPDU).
  std::string to_string() const;

  friend bool operator==(const tpdu_header&, const tpdu_header&) = default;
};

struct frame_options {
  length_header header = length_header::binary2;
  // Larger frames are "frame.too_large" (a DoS bound). Counts what the length header counts:
  // the message plus the TPDU when there is one.
  std::size_t max_payload = 8192;
  // Set: every message travels as TPDU + message. encode() writes this TPDU (a terminal: the
  // host's NII as destination, its own as source); a host answers with encode(payload, tpdu)
  // using the request's last_tpdu().reply().
  std::optional<tpdu_header> tpdu;
};

// Framing names as operators write them: "binary2", "ascii4", "bcd2", each optionally
// followed by "+tpdu" ("bcd2+tpdu"; the TPDU addresses are 0000/0000, set them in
// frame_options::tpdu). max_payload stays at its default. frame.bad_name otherwise.
result<frame_options> parse_framing(std::string_view name);
// The name parse_framing() accepts for these options.
std::string framing_name(const frame_options& opts);

class frame_codec {
 public:
  // "frame.unsupported_header" for binary2_tpdu. max_payload is clamped to what the header
  // can express (65535 for binary2, 9999 for the decimal kinds).
  static result<frame_codec> create(frame_options opts);

  // The length header only (2 or 4 bytes); the TPDU is not part of it.
  std::size_t header_size() const noexcept;
  std::size_t max_payload() const noexcept { return max_payload_; }
  length_header header() const noexcept { return header_; }
  const std::optional<tpdu_header>& tpdu() const noexcept { return tpdu_; }

  // Header [+ TPDU] + message. "frame.too_large" when the length would exceed max_payload().
  // An empty message is a keep-alive (header only, never a TPDU).
  result<bytes> encode(byte_view message) const;
  // With an explicit TPDU (a host answering with the request's, swapped). Pre: tpdu() is set.
  result<bytes> encode(byte_view message, const tpdu_header& tpdu) const;
  bytes keep_alive() const;
  // Pre: header.size() == header_size(). The length in the header (TPDU included), or
  // bad_header / too_large.
  result<std::size_t> decode_length(byte_view header) const;

 private:
  frame_codec(length_header h, std::size_t max, std::optional<tpdu_header> t)
      : header_(h), max_payload_(max), tpdu_(t) {}
  result<bytes> encode_with(byte_view message, const tpdu_header* tpdu) const;

  length_header header_;
  std::size_t max_payload_;
  std::optional<tpdu_header> tpdu_;
};

// Reassembles frames from arbitrary chunks. The internal buffer is wiped as it is consumed
// and on destruction (frames carry card data).
class frame_reader {
 public:
  explicit frame_reader(frame_codec codec) : codec_(codec) {}
  frame_reader(const frame_reader&) = delete;
  frame_reader& operator=(const frame_reader&) = delete;
  ~frame_reader();

  void feed(byte_view data);
  // The next complete message (TPDU stripped), or nullopt if more bytes are needed.
  // Keep-alives are skipped. An error means the stream lost synchronisation or the peer
  // speaks another protocol: the reader stays failed and keeps returning that error; the
  // caller should drop the connection.
  result<std::optional<bytes>> next();

  // The TPDU of the message next() returned last; nullopt without TPDU framing.
  const std::optional<tpdu_header>& last_tpdu() const noexcept { return last_tpdu_; }
  std::uint64_t keep_alives() const noexcept { return keep_alives_; }
  std::size_t buffered() const noexcept { return buf_.size() - start_; }

 private:
  void compact();

  frame_codec codec_;
  bytes buf_;
  std::size_t start_ = 0;
  std::uint64_t keep_alives_ = 0;
  std::optional<tpdu_header> last_tpdu_;
  std::optional<error> failed_;
};

}  // namespace eftd::acq
