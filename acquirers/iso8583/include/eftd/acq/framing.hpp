// Message framing on a byte stream, kept apart from the ISO 8583 codec: a frame is a length
// header followed by one packed message. Sans-I/O: the link and the simulator feed bytes in.
//
// Keep-alives: a frame whose length is zero carries no message. The reader consumes them
// silently (and counts them); nothing ever answers a keep-alive, and a writer sends one only
// between whole frames, never inside a message.
//
// Error codes:
//   frame.unsupported_header  a header kind that is designed but not implemented (TPDU)
//   frame.bad_header          a length header that is not valid digits (ASCII / BCD kinds)
//   frame.too_large           a length above the configured maximum payload
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
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
  binary2_tpdu,  // binary2, then a 5-byte TPDU (0x60, NII dest, NII src) counted in the length:
                 // designed for dial-up style hosts, not implemented yet
};

// "binary2", "ascii4", "bcd2", "binary2_tpdu" <-> enum.
std::optional<length_header> parse_length_header(std::string_view name);
std::string_view to_string(length_header h);

struct frame_options {
  length_header header = length_header::binary2;
  std::size_t max_payload = 8192;  // larger frames are "frame.too_large" (a DoS bound)
};

class frame_codec {
 public:
  // "frame.unsupported_header" for binary2_tpdu. max_payload is clamped to what the header
  // can express (65535 for binary2, 9999 for the decimal kinds).
  static result<frame_codec> create(frame_options opts);

  std::size_t header_size() const noexcept;
  std::size_t max_payload() const noexcept { return max_payload_; }
  length_header header() const noexcept { return header_; }

  // Header + payload. "frame.too_large" above max_payload(). An empty payload is a keep-alive.
  result<bytes> encode(byte_view payload) const;
  bytes keep_alive() const;
  // Pre: header.size() == header_size(). The payload length, or bad_header / too_large.
  result<std::size_t> decode_length(byte_view header) const;

 private:
  frame_codec(length_header h, std::size_t max) : header_(h), max_payload_(max) {}
  length_header header_;
  std::size_t max_payload_;
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
  // The next complete payload, or nullopt if more bytes are needed. Keep-alives are skipped.
  // An error means the stream lost synchronisation: the reader stays failed and keeps
  // returning that error; the caller should drop the connection.
  result<std::optional<bytes>> next();

  std::uint64_t keep_alives() const noexcept { return keep_alives_; }
  std::size_t buffered() const noexcept { return buf_.size() - start_; }

 private:
  void compact();

  frame_codec codec_;
  bytes buf_;
  std::size_t start_ = 0;
  std::uint64_t keep_alives_ = 0;
  std::optional<error> failed_;
};

}  // namespace eftd::acq
