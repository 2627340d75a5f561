// PIN pad channel codec: framing, header, TLV body (sans-I/O; PROTOCOL.md has the bytes).
//
//   frame  = length(2, BE, counts the bytes after it, 1..4096) | header(10) | body
//   header = version(1) = 0x01 | type(1) | seq(4, BE) | ref(4, BE)
//   body   = field*, field = tag(1) | len(2, BE) | value(len)
//
// The codec knows nothing about transports: the same bytes go over TCP today and, later,
// inside TLS records and a serial/USB link layer. Field layouts are data (message_table()).
//
// Error codes (error::code): pad.bad_length, pad.frame_too_large, pad.bad_version,
// pad.unknown_type, pad.truncated, pad.missing_field, pad.duplicate_field, pad.bad_field,
// pad.replay. Error messages name a field, never its value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/pad/messages.hpp"

namespace eftd::pad {

inline constexpr std::size_t length_prefix_size = 2;
inline constexpr std::size_t header_size = 10;         // version, type, seq, ref
inline constexpr std::size_t max_frame_length = 4096;  // value of the length prefix, at most

// ---- field layouts as data -----------------------------------------------------------------

enum class field_kind : std::uint8_t {
  u8,       // 1 byte
  u16,      // 2 bytes BE
  u32,      // 4 bytes BE
  i64,      // 8 bytes BE two's complement
  boolean,  // 1 byte, 0x00 or 0x01
  text,     // UTF-8 bytes (no NUL), length 0..max_len
  secret,   // opaque bytes holding card data, 1..max_len; never logged
  blob,     // opaque bytes that are not secret (a KSN), 1..max_len
};

struct field_spec {
  std::uint8_t tag;
  std::string_view name;
  field_kind kind;
  bool required;
  bool repeated;           // may occur up to max_count times, order kept
  std::uint16_t max_len;   // text/secret: maximum value length in bytes
  std::uint8_t max_count;  // repeated fields: maximum occurrences
  // Integer fields: inclusive value range (enum-valued fields); 0/0 = any value of the kind.
  // secret/bytes fields: min_value is the shortest allowed length (0: 1 byte), max_value is 0.
  std::uint32_t min_value;
  std::uint32_t max_value;
  // secret/bytes fields: the length must be min_value + k * len_step (0: any length). A PIN
  // block is 8 or 16 bytes (8, step 8), a KSN 10 or 12 (10, step 2), a sealed value whole
  // cipher blocks (8, step 8).
  std::uint16_t len_step = 0;
};

enum class direction : std::uint8_t { pad_to_server, server_to_pad };

struct message_spec {
  message_type type;
  std::string_view name;
  direction dir;
  std::span<const field_spec> fields;
};

// Every message type with its fields, in message_type order.
std::span<const message_spec> message_table() noexcept;
const message_spec* find_spec(message_type t) noexcept;
const message_spec* find_spec(std::uint8_t type_byte) noexcept;
std::string_view kind_name(field_kind k) noexcept;

// ---- encoding / decoding -------------------------------------------------------------------

// Full frame including the 2-byte length. Never fails and never exceeds max_frame_length:
// text is made to fit its field (cut at a UTF-8 boundary to max_len, invalid UTF-8 and
// control characters replaced by '?') and repeated items beyond max_count are dropped. The
// two messages whose table limits allow more than a frame holds (apdu_script.capdu,
// script_result.rapdu/sealed: 32 items of up to 261/288 bytes) drop the repeated items that
// no longer fit; validate() reports such a message (frame_bounded()).
// Values the decoder would still refuse (an enum out of range, an empty track2) are sent
// as they are; validate() reports those and anything encode() would have to alter.
eftd::bytes encode(const envelope& e);

// ok, or pad.bad_field naming the first field that decode_body() would refuse or that
// encode() would have to alter, or a rule between fields that the decoder leaves to the
// receiver (get_pin.format 0 or 4, min_digits <= max_digits, offline_pin mode 2 needs
// modulus, exponent and challenge, apdu_script.interface 0 or 3, card_read carries track2,
// sealed_track2 or atr).
eftd::status validate(const envelope& e);

// True when the message's table limits can exceed one frame (apdu_script, script_result), so
// the encoder and validate() check the real size.
bool frame_bounded(message_type t) noexcept;

// Decode what follows the length prefix (header + body), as returned by frame_reader::next().
eftd::result<envelope> decode_body(eftd::byte_view frame_without_length);

// Read only the header: lets a caller answer an unknown type with pad_error{unsupported}
// and ref = that frame's seq. pad.truncated / pad.bad_version as decode_body.
struct header {
  std::uint8_t version = 0;
  std::uint8_t type = 0;
  std::uint32_t seq = 0, ref = 0;
};
eftd::result<header> decode_header(eftd::byte_view frame_without_length);

// Splits a byte stream into frames. After any error the stream is out of sync: the caller
// must close the connection (the reader stays in the error state until reset()).
class frame_reader {
 public:
  explicit frame_reader(std::size_t max_length = max_frame_length) : max_length_(max_length) {}

  // Appends received bytes. Cheap; nothing is parsed until next().
  void feed(eftd::byte_view data);

  // A complete frame without its length prefix, nullopt if more bytes are needed, or an
  // error: pad.bad_length (length prefix 0 or shorter than a header), pad.frame_too_large.
  eftd::result<std::optional<eftd::bytes>> next();

  std::size_t buffered() const noexcept { return buf_.size() - pos_; }
  void reset() noexcept;

 private:
  eftd::bytes buf_;
  std::size_t pos_ = 0;
  std::size_t max_length_;
  std::optional<eftd::error> failed_;
};

// Replay rule: seq must be strictly greater than every seq accepted before on this
// connection and direction (so 0 is never accepted). Else pad.replay.
class replay_guard {
 public:
  eftd::status accept(std::uint32_t seq);
  std::uint32_t last() const noexcept { return last_; }
  void reset() noexcept { last_ = 0; }

 private:
  std::uint32_t last_ = 0;
};

// Convenience: the sender's side of the seq rule.
class seq_counter {
 public:
  std::uint32_t next() noexcept { return ++last_; }
  std::uint32_t last() const noexcept { return last_; }

 private:
  std::uint32_t last_ = 0;
};

}  // namespace eftd::pad
