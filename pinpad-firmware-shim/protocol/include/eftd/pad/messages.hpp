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

#include "eftd/core/bytes.hpp"
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
  get_status = 0x14,
  beep = 0x15,
  leds = 0x16,
  get_key = 0x17,
  get_amount = 0x18,
  confirm = 0x19,
  menu = 0x1A,
  remove_card = 0x1B,
  reset = 0x1C,
  ack = 0x80,
  pad_error = 0x81,
  card_read = 0x82,
  pong = 0x83,
  pad_status = 0x84,
  key_pressed = 0x85,
  amount_entered = 0x86,
  confirmation = 0x87,
  menu_choice = 0x88,
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

// pad_status::capabilities bits: what the pad's hardware can do.
enum class capability_bit : std::uint32_t {
  display = 1,
  beep = 2,
  leds = 4,
  keypad = 8,
  magstripe = 16,
  chip = 32,
  contactless = 64,
};

// Key codes of key_pressed / event_key: digits are ASCII '0'..'9'.
namespace keys {
inline constexpr std::uint8_t clear = 0x08, enter = 0x0D, cancel = 0x1B;
}

// display::align values, one per line (absent: left).
enum class alignment : std::uint8_t { left = 0, center = 1, right = 2 };

// leds::state values. leds::which is a bit mask of LEDs 1..4 (bit 0 = LED 1).
enum class led_state : std::uint8_t { off = 0, on = 1, blink = 2 };

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

// Reply to ping: echoes ping::timestamp (absent when the ping had none).
struct pong {
  std::optional<std::int64_t> timestamp;
  friend bool operator==(const pong&, const pong&) = default;
};

// Reply to get_status. KSNs are not secret (they travel in the clear in every DUKPT message);
// dukpt_counters[i] is the transaction counter of ksns[i].
struct pad_status {
  std::string model, serial, firmware;
  std::uint32_t capabilities = 0;  // capability_bit values
  std::vector<eftd::bytes> ksns;   // 10 (TDES) or 12 (AES) bytes each, at most 8
  std::vector<std::uint32_t> dukpt_counters;
  std::vector<std::string> languages;  // display languages the pad has, e.g. "en", "pl"
  friend bool operator==(const pad_status&, const pad_status&) = default;
};

// Reply to get_key: the key pressed (digits '0'..'9', keys::enter, keys::clear, ...).
struct key_pressed {
  std::uint8_t key = 0;
  friend bool operator==(const key_pressed&, const key_pressed&) = default;
};

// Reply to get_amount: the amount the customer confirmed with enter, in minor units.
struct amount_entered {
  std::int64_t amount = 0;
  std::string currency;
  friend bool operator==(const amount_entered&, const amount_entered&) = default;
};

// Reply to confirm (a timeout is pad_error timeout, the cancel key pad_error cancelled).
struct confirmation {
  bool yes = false;
  friend bool operator==(const confirmation&, const confirmation&) = default;
};

// Reply to menu: index into menu::items (key '1' selects index 0).
struct menu_choice {
  std::uint8_t index = 0;
  friend bool operator==(const menu_choice&, const menu_choice&) = default;
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
  std::vector<alignment> align;  // per line; lines without an entry are left-aligned
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

// timestamp: any value of the server's clock; the pad echoes it in pong so the server
// measures the round trip without keeping per-ping state.
struct ping {
  std::optional<std::int64_t> timestamp;
  friend bool operator==(const ping&, const ping&) = default;
};

// Every command below carries timeout_ms, its deadline on the pad: a waiting command answers
// pad_error timeout when it passes; instant ones (get_status, beep, leds, reset) finish at once.
struct get_status {
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const get_status&, const get_status&) = default;
};

struct beep {
  std::uint8_t count = 1;           // 1..10
  std::uint16_t duration_ms = 100;  // each beep, 1..5000
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const beep&, const beep&) = default;
};

struct leds {
  std::uint8_t which = 1;  // bit mask of LEDs 1..4, 1..15
  led_state state = led_state::on;
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const leds&, const leds&) = default;
};

// Waits for one key.
struct get_key {
  std::uint32_t timeout_ms = 30000;
  std::vector<std::string> prompt;  // at most 4 lines
  friend bool operator==(const get_key&, const get_key&) = default;
};

// Digits typed by the customer, shown with `exponent` minor-unit digits, confirmed with enter;
// clear deletes a digit. An amount outside min..max is not accepted (the pad beeps and waits on).
struct get_amount {
  std::string currency;       // ISO 4217 alpha
  std::uint8_t exponent = 2;  // 0..4 minor-unit digits
  std::int64_t min_amount = 0;
  std::int64_t max_amount = 0;
  std::uint32_t timeout_ms = 60000;
  std::vector<std::string> prompt;
  friend bool operator==(const get_amount&, const get_amount&) = default;
};

// Yes = enter, no = clear.
struct confirm {
  std::uint32_t timeout_ms = 30000;
  std::vector<std::string> prompt;
  friend bool operator==(const confirm&, const confirm&) = default;
};

// Items 1..9, chosen with the digit keys.
struct menu {
  std::string title;
  std::vector<std::string> items;
  std::uint32_t timeout_ms = 30000;
  friend bool operator==(const menu&, const menu&) = default;
};

// Acked once no card is in the reader (at once if none is).
struct remove_card {
  std::uint32_t timeout_ms = 30000;
  std::vector<std::string> prompt;
  friend bool operator==(const remove_card&, const remove_card&) = default;
};

// Abandons any waiting command (answered cancelled), blanks the display, turns LEDs off.
struct reset {
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const reset&, const reset&) = default;
};

using message =
    std::variant<hello, hello_ack, display, read_card, card_read, cancel, ack, pad_error, event_key, ping,
                 pong, get_status, beep, leds, get_key, get_amount, confirm, menu, remove_card, reset,
                 pad_status, key_pressed, amount_entered, confirmation, menu_choice>;

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
// True for types a pad sends in answer to a command (0x80..0xBF).
bool is_reply(message_type t) noexcept;

// One line for logs: type and non-sensitive fields only. card_read prints mode, fallback and
// the track 2 length, never its contents.
std::string describe(const message& m);
std::string describe(const envelope& e);  // "seq=3 ref=0 display lines=2 lang=en"

}  // namespace eftd::pad
