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
  get_pin = 0x1D,
  offline_pin = 0x1E,
  power_on = 0x20,
  apdu = 0x21,
  power_off = 0x22,
  apdu_script = 0x23,
  ack = 0x80,
  pad_error = 0x81,
  card_read = 0x82,
  pong = 0x83,
  pad_status = 0x84,
  key_pressed = 0x85,
  amount_entered = 0x86,
  confirmation = 0x87,
  menu_choice = 0x88,
  pin_entered = 0x89,
  offline_pin_result = 0x8A,
  atr = 0x8B,
  apdu_response = 0x8C,
  script_result = 0x8D,
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
  pin = 0x80,    // get_pin and offline_pin
  p2pe = 0x100,  // card data sealed under the pad's DUKPT key (core/p2pe.hpp)
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

// Reply to read_card. track2 is ASCII track 2 without sentinels, "PAN=YYMMSSS...", sent in
// the clear only by a pad without a DUKPT key (tests, development); a pad with a key sends
// sealed_track2 (item 1 of the transaction of `ksn`, core/p2pe.hpp) instead. A chip or
// contactless card is reported powered, with its ATR, and no track 2. Empty = absent.
struct card_read {
  entry_mode mode = entry_mode::magstripe;
  eftd::secure_bytes track2;
  bool fallback = false;
  eftd::bytes ksn;                   // 10 (TDES) or 12 (AES) bytes: the new DUKPT transaction
  eftd::secure_bytes sealed_track2;  // track 2 sealed as item 1
  eftd::bytes atr;                   // chip / contactless: the card is powered and waits for APDUs
  friend bool operator==(const card_read&, const card_read&) = default;
};

// Reply to get_pin: the PIN block under the DUKPT PIN key of `ksn` (TDES: ISO 9564 format 0,
// AES: format 4), bound to the PAN of the card at the reader. bypassed = true (enter with no
// digits, allowed by get_pin::bypass): no block and no KSN.
struct pin_entered {
  eftd::secure_bytes pin_block;  // 8 (format 0) or 16 (format 4) bytes; empty = absent
  eftd::bytes ksn;               // empty = absent
  bool bypassed = false;
  friend bool operator==(const pin_entered&, const pin_entered&) = default;
};

// Reply to offline_pin: the chip card's status word for the VERIFY the pad sent (9000 right
// PIN, 63Cx wrong with x tries left, 6983 blocked). bypassed: no VERIFY was sent, sw = 0.
struct offline_pin_result {
  std::uint16_t sw = 0;
  bool bypassed = false;
  friend bool operator==(const offline_pin_result&, const offline_pin_result&) = default;
};

// Reply to power_on: the card's answer to reset.
struct atr {
  eftd::bytes value;  // 2..33 bytes
  friend bool operator==(const atr&, const atr&) = default;
};

// Reply to apdu: the final R-APDU (after the pad's T=0 GET RESPONSE / Le handling), sealed
// under DUKPT as item `item` of the transaction of `ksn`, or in the clear (rapdu) only when
// the pad has no DUKPT key. Exactly one of rapdu / sealed is present.
struct apdu_response {
  eftd::secure_bytes rapdu;   // 2..258 bytes incl. SW1 SW2
  eftd::secure_bytes sealed;  // at most 288 bytes
  eftd::bytes ksn;
  std::optional<std::uint16_t> item;
  friend bool operator==(const apdu_response&, const apdu_response&) = default;
};

// Reply to apdu_script: one R-APDU per C-APDU executed, in order; sealed ones are the items
// first_item, first_item + 1, ... of the transaction of `ksn`. elapsed_ms: how long the card
// was in use (the contactless "tap time").
struct script_result {
  std::vector<eftd::secure_bytes> rapdus;  // clear (pad without a DUKPT key)
  std::vector<eftd::secure_bytes> sealed;  // sealed (pad with a key)
  eftd::bytes ksn;
  eftd::bytes atr;  // when the script powered a contactless card itself (interface 3)
  std::optional<std::uint16_t> first_item;
  std::uint32_t elapsed_ms = 0;
  friend bool operator==(const script_result&, const script_result&) = default;
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

// PIN entry on the pad's keypad, shown as '*'. The PIN never leaves the pad in the clear:
// the reply carries a PIN block under DUKPT bound to the PAN of the card at the reader.
struct get_pin {
  std::int64_t amount = 0;      // minor units, shown with the prompt
  std::string currency;         // ISO 4217 alpha
  std::uint8_t format = 4;      // 0: ISO 0 under TDES DUKPT; 4: ISO 4 under AES DUKPT
  std::uint8_t min_digits = 4;  // 4..12
  std::uint8_t max_digits = 12;
  bool bypass = false;  // enter with no digits answers pin_entered{bypassed = true}
  std::uint32_t timeout_ms = 30000;
  std::vector<std::string> prompt;  // at most 4 lines
  friend bool operator==(const get_pin&, const get_pin&) = default;
};

// Offline PIN: the pad reads the PIN and sends the EMV VERIFY to the powered chip card itself,
// plaintext (mode 1, ISO 9564 format 2 block) or enciphered (mode 2) with the card's ICC PIN
// public key (modulus, exponent) and the card's challenge that eftd fetched with GET CHALLENGE.
struct offline_pin {
  std::uint8_t mode = 1;  // 1 plaintext, 2 enciphered
  eftd::bytes modulus;    // mode 2: the ICC PIN encipherment public key, at most 256 bytes
  eftd::bytes exponent;   // mode 2: at most 4 bytes
  eftd::bytes challenge;  // mode 2: 8 bytes from GET CHALLENGE
  std::uint8_t min_digits = 4;
  std::uint8_t max_digits = 12;
  bool bypass = false;
  std::uint32_t timeout_ms = 30000;
  std::vector<std::string> prompt;
  std::optional<std::uint8_t> tries_left;  // the card's PIN try counter; shown when <= 2
  friend bool operator==(const offline_pin&, const offline_pin&) = default;
};

// Chip interfaces of power_on / apdu_script.
enum class card_interface : std::uint8_t { current = 0, chip = 2, contactless = 3 };

// Powers the card at the chip (2) or contactless (3) interface; answered with its ATR.
struct power_on {
  std::uint8_t interface = 2;
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const power_on&, const power_on&) = default;
};

// One C-APDU for the powered card (the central EMV kernel in eftd drives the card).
struct apdu {
  eftd::bytes capdu;  // 4..261 bytes
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const apdu&, const apdu&) = default;
};

struct power_off {
  std::uint32_t timeout_ms = 5000;
  friend bool operator==(const power_off&, const power_off&) = default;
};

// apdu_script::stop values.
enum class script_stop : std::uint8_t { run_all = 0, first_error = 1 };

// Several C-APDUs in one round trip (a contactless card stays in the field for about half a
// second). interface 3: wait for a contactless card, power it, run, power it off.
struct apdu_script {
  std::vector<eftd::bytes> capdus;  // 1..32, each 4..261 bytes
  std::uint8_t stop = 0;            // script_stop
  std::uint32_t timeout_ms = 5000;
  std::uint8_t interface = 0;  // card_interface: 0 the powered card, 3 wait for a tap
  friend bool operator==(const apdu_script&, const apdu_script&) = default;
};

using message = std::variant<hello, hello_ack, display, read_card, card_read, cancel, ack, pad_error,
                             event_key, ping, pong, get_status, beep, leds, get_key, get_amount, confirm,
                             menu, remove_card, reset, pad_status, key_pressed, amount_entered, confirmation,
                             menu_choice, get_pin, pin_entered, offline_pin, offline_pin_result, power_on,
                             atr, apdu, apdu_response, power_off, apdu_script, script_result>;

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
// the track 2 length, never its contents; secret fields (PIN blocks, R-APDUs, sealed values)
// only by their length.
std::string describe(const message& m);
std::string describe(const envelope& e);  // "seq=3 ref=0 display lines=2 lang=en"

}  // namespace eftd::pad
