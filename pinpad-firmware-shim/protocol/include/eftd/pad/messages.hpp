// PIN pad channel messages (PROTOCOL.md is the normative byte-level description).
//
// One struct per message type; `message` is the closed set a v1 peer understands. New
// message types and new fields are added here and in the field table (codec.hpp,
// message_table()); old peers skip unknown tags and answer unknown types with
// pad_error{unsupported}, so the set can grow without a version bump.
//
// Card data: card_read::track2 is secure_bytes (wiped, never printable). describe() is the
// only text form of a message meant for logs and prints non-sensitive fields only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "eftd/core/secure.hpp"

namespace eftd::pad {

// The version byte of every frame header; a decoder rejects any other value ("pad.bad_version").
inline constexpr std::uint8_t protocol_version = 1;

enum class entry_mode : std::uint8_t { magstripe = 1, chip = 2, contactless = 3, fallback_magstripe = 4 };

// Bit mask values for read_card::interfaces.
enum class interface_mask : std::uint8_t { magstripe = 1, chip = 2, contactless = 4 };

// Message type byte (frame header offset 1). Ranges: 0x01-0x0F handshake, 0x10-0x7F server ->
// pad commands, 0x80-0xBF pad -> server replies, 0xC0-0xFF pad -> server unsolicited events.
enum class message_type : std::uint8_t {
  hello = 0x01,
  hello_ack = 0x02,
  display = 0x10,
  read_card = 0x11,
  cancel = 0x12,
  ping = 0x13,
  ack = 0x80,
  pad_error = 0x81,
  card_read = 0x82,
  pong = 0x83,
  event_key = 0xC0,
};

// pad_error::code values.
enum class pad_error_code : std::uint16_t {
  timeout = 1,
  cancelled = 2,
  no_card = 3,
  hardware = 4,
  unsupported = 5,
  busy = 6,
  bad_request = 7,
};

// ---- pad -> server -------------------------------------------------------------------------

// First frame on every connection (seq 1 by convention). `version` is the highest protocol
// version the pad speaks.
struct hello {
  std::uint8_t version = protocol_version;
  std::string pad_id, serial, model, firmware;
  std::vector<std::string> capabilities;  // e.g. "display", "magstripe"
  friend bool operator==(const hello&, const hello&) = default;
};

// Reply to read_card. track2 is ASCII track 2 without sentinels, "PAN=YYMMSSS...".
// NOTE: in clear over the link in the walking skeleton; the PIN pad issue puts the link under
// TLS 1.3 and this field under DUKPT.
struct card_read {
  entry_mode mode = entry_mode::magstripe;
  eftd::secure_bytes track2;
  bool fallback = false;
  friend bool operator==(const card_read&, const card_read&) = default;
};

// Reply to display, cancel and any command that has nothing to return.
struct ack {
  friend bool operator==(const ack&, const ack&) = default;
};

// Reply to any command that failed. code is a pad_error_code value (kept as a number so an
// unknown future code still decodes). text is for humans and never holds card data.
struct pad_error {
  std::uint16_t code = 0;
  std::string text;
  friend bool operator==(const pad_error&, const pad_error&) = default;
};

// Unsolicited key press (e.g. the cancel key), ref = 0.
struct event_key {
  std::uint8_t key = 0;
  friend bool operator==(const event_key&, const event_key&) = default;
};

// Reply to ping.
struct pong {
  friend bool operator==(const pong&, const pong&) = default;
};

// ---- server -> pad -------------------------------------------------------------------------

// Reply to hello. accepted=false: reason says why and the server closes the connection.
struct hello_ack {
  bool accepted = false;
  std::string server, reason;
  friend bool operator==(const hello_ack&, const hello_ack&) = default;
};

struct display {
  std::vector<std::string> lines;  // at most 8 lines of at most 64 bytes UTF-8
  std::string language = "en";
  friend bool operator==(const display&, const display&) = default;
};

struct read_card {
  std::int64_t amount = 0;      // minor units, shown to the customer
  std::string currency;         // ISO 4217 alpha, e.g. "PLN"
  std::uint8_t interfaces = 7;  // interface_mask bits
  std::uint32_t timeout_ms = 60000;
  std::vector<std::string> prompt;  // at most 4 lines
  friend bool operator==(const read_card&, const read_card&) = default;
};

struct cancel {
  friend bool operator==(const cancel&, const cancel&) = default;
};

struct ping {
  friend bool operator==(const ping&, const ping&) = default;
};

using message = std::variant<hello, hello_ack, display, read_card, card_read, cancel, ack, pad_error,
                             event_key, ping, pong>;

// seq: the sender's counter, starts at 1, strictly increasing per connection and direction.
// ref: for a reply, the seq of the request it answers; 0 otherwise.
struct envelope {
  std::uint32_t seq = 0, ref = 0;
  message body;
  friend bool operator==(const envelope&, const envelope&) = default;
};

message_type type_of(const message& m) noexcept;
// "hello", "read_card", ...; "unknown" for a byte that is no message_type.
std::string_view type_name(message_type t) noexcept;
// "timeout", "cancelled", ...; "unknown" otherwise.
std::string_view pad_error_name(std::uint16_t code) noexcept;
// True for types a pad sends in answer to a command (ack, pad_error, card_read, pong).
bool is_reply(message_type t) noexcept;

// One line for logs: type and non-sensitive fields only. card_read prints mode, fallback and
// the track 2 length, never its contents.
std::string describe(const message& m);
std::string describe(const envelope& e);  // "seq=3 ref=0 display lines=2 lang=en"

}  // namespace eftd::pad
