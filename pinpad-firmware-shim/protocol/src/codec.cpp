#include "eftd/pad/codec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "tags.hpp"

namespace eftd::pad {

// ---- the field table -------------------------------------------------------------------------
namespace {

namespace t = tags;
using fk = field_kind;

// Limits keep every message far below max_frame_length (the largest, hello, is < 800 bytes),
// so encode() can never produce an oversize frame.
constexpr std::uint16_t id_len = 32;
constexpr std::uint16_t line_len = 64;
constexpr std::uint16_t text_len = 128;
// ASCII track 2 without sentinels and LRC is at most 37 characters (ISO/IEC 7813).
constexpr std::uint16_t track2_len = 37;
// A KSN: 10 bytes for TDES DUKPT (X9.24-1), 12 for AES DUKPT (X9.24-3).
constexpr std::uint16_t ksn_len = 12;
// ISO/IEC 7816-3: an ATR is TS plus at most 32 bytes; TS and T0 at least.
constexpr std::uint16_t atr_len = 33;
// A short C-APDU: header 4 + Lc 1 + 255 data + Le 1; R-APDU: 256 data + SW1 SW2.
constexpr std::uint16_t capdu_len = 261;
constexpr std::uint16_t rapdu_len = 258;
// Sealed values (core/p2pe.hpp): item(2) + length(2) + data, zero-padded to the cipher block
// (8 TDES, 16 AES): a 258-byte R-APDU becomes 272 bytes; 288 leaves room for one more block.
constexpr std::uint16_t sealed_len = 288;
// Sealed track 2: 4 + 37 bytes padded to 48; 64 bytes is the next whole AES block and more.
constexpr std::uint16_t sealed_track2_len = 64;
constexpr std::uint8_t max_script_apdus = 32;

// clang-format off
//         tag                              name            kind         required repeated max_len max_count min max
constexpr std::array hello_fields{
    field_spec{t::hello::version,    "version",      fk::u8,      true,  false, 0,        0,  1, 255},
    field_spec{t::hello::pad_id,     "pad_id",       fk::text,    true,  false, id_len,   0,  0, 0},
    field_spec{t::hello::serial,     "serial",       fk::text,    true,  false, id_len,   0,  0, 0},
    field_spec{t::hello::model,      "model",        fk::text,    false, false, id_len,   0,  0, 0},
    field_spec{t::hello::firmware,   "firmware",     fk::text,    false, false, id_len,   0,  0, 0},
    field_spec{t::hello::capability, "capability",   fk::text,    false, true,  id_len,   16, 0, 0},
};
constexpr std::array hello_ack_fields{
    field_spec{t::hello_ack::accepted, "accepted",   fk::boolean, true,  false, 0,        0,  0, 0},
    field_spec{t::hello_ack::server,   "server",     fk::text,    false, false, line_len, 0,  0, 0},
    field_spec{t::hello_ack::reason,   "reason",     fk::text,    false, false, text_len, 0,  0, 0},
};
constexpr std::array display_fields{
    field_spec{t::display::line,     "line",         fk::text,    false, true,  line_len, 8,  0, 0},
    field_spec{t::display::language, "language",     fk::text,    false, false, 8,        0,  0, 0},
    field_spec{t::display::align,    "align",        fk::u8,      false, true,  0,        8,  0, 2},
};
constexpr std::array read_card_fields{
    field_spec{t::read_card::amount,     "amount",     fk::i64,   true,  false, 0,        0,  0, 0},
    field_spec{t::read_card::currency,   "currency",   fk::text,  true,  false, 3,        0,  0, 0},
    field_spec{t::read_card::interfaces, "interfaces", fk::u8,    true,  false, 0,        0,  1, 7},
    field_spec{t::read_card::timeout_ms, "timeout_ms", fk::u32,   true,  false, 0,        0,  0, 0},
    field_spec{t::read_card::prompt,     "prompt",     fk::text,  false, true,  line_len, 4,  0, 0},
};
constexpr std::array pad_error_fields{
    field_spec{t::pad_error::code,   "code",         fk::u16,     true,  false, 0,        0,  0, 0},
    field_spec{t::pad_error::text,   "text",         fk::text,    false, false, text_len, 0,  0, 0},
};
constexpr std::array card_read_fields{
    field_spec{t::card_read::mode,     "mode",       fk::u8,      true,  false, 0,          0, 1, 4},
    field_spec{t::card_read::track2,   "track2",     fk::secret,  false, false, track2_len, 0, 0, 0},
    field_spec{t::card_read::fallback, "fallback",   fk::boolean, false, false, 0,          0, 0, 0},
    field_spec{t::card_read::ksn,      "ksn",        fk::blob,    false, false, ksn_len,    0, 10, 0, 2},
    field_spec{t::card_read::sealed_track2, "sealed_track2", fk::secret, false, false, sealed_track2_len, 0, 8, 0, 8},
    field_spec{t::card_read::atr,      "atr",        fk::blob,    false, false, atr_len,    0, 2, 0},
};
constexpr std::array ping_fields{
    field_spec{t::ping::timestamp,   "timestamp",    fk::i64,     false, false, 0,        0,  0, 0},
};
constexpr std::array pong_fields{
    field_spec{t::pong::timestamp,   "timestamp",    fk::i64,     false, false, 0,        0,  0, 0},
};
constexpr std::array get_status_fields{
    field_spec{t::get_status::timeout_ms, "timeout_ms", fk::u32,  true,  false, 0,        0,  0, 0},
};
constexpr std::array beep_fields{
    field_spec{t::beep::count,       "count",        fk::u8,      true,  false, 0,        0,  1, 10},
    field_spec{t::beep::duration_ms, "duration_ms",  fk::u16,     true,  false, 0,        0,  1, 5000},
    field_spec{t::beep::timeout_ms,  "timeout_ms",   fk::u32,     true,  false, 0,        0,  0, 0},
};
constexpr std::array leds_fields{
    field_spec{t::leds::which,       "which",        fk::u8,      true,  false, 0,        0,  1, 15},
    field_spec{t::leds::state,       "state",        fk::u8,      true,  false, 0,        0,  0, 2},
    field_spec{t::leds::timeout_ms,  "timeout_ms",   fk::u32,     true,  false, 0,        0,  0, 0},
};
constexpr std::array get_key_fields{
    field_spec{t::get_key::timeout_ms, "timeout_ms", fk::u32,     true,  false, 0,        0,  0, 0},
    field_spec{t::get_key::prompt,   "prompt",       fk::text,    false, true,  line_len, 4,  0, 0},
};
constexpr std::array get_amount_fields{
    field_spec{t::get_amount::currency,   "currency",   fk::text, true,  false, 3,        0,  0, 0},
    field_spec{t::get_amount::exponent,   "exponent",   fk::u8,   true,  false, 0,        0,  0, 4},
    field_spec{t::get_amount::min_amount, "min_amount", fk::i64,  false, false, 0,        0,  0, 0},
    field_spec{t::get_amount::max_amount, "max_amount", fk::i64,  true,  false, 0,        0,  0, 0},
    field_spec{t::get_amount::timeout_ms, "timeout_ms", fk::u32,  true,  false, 0,        0,  0, 0},
    field_spec{t::get_amount::prompt,     "prompt",     fk::text, false, true,  line_len, 4,  0, 0},
};
constexpr std::array confirm_fields{
    field_spec{t::confirm::timeout_ms, "timeout_ms", fk::u32,     true,  false, 0,        0,  0, 0},
    field_spec{t::confirm::prompt,   "prompt",       fk::text,    false, true,  line_len, 4,  0, 0},
};
constexpr std::array menu_fields{
    field_spec{t::menu::title,       "title",        fk::text,    false, false, line_len, 0,  0, 0},
    field_spec{t::menu::item,        "item",         fk::text,    true,  true,  line_len, 9,  0, 0},
    field_spec{t::menu::timeout_ms,  "timeout_ms",   fk::u32,     true,  false, 0,        0,  0, 0},
};
constexpr std::array remove_card_fields{
    field_spec{t::remove_card::timeout_ms, "timeout_ms", fk::u32, true,  false, 0,        0,  0, 0},
    field_spec{t::remove_card::prompt, "prompt",     fk::text,    false, true,  line_len, 4,  0, 0},
};
constexpr std::array reset_fields{
    field_spec{t::reset::timeout_ms, "timeout_ms",   fk::u32,     true,  false, 0,        0,  0, 0},
};
constexpr std::array pad_status_fields{
    field_spec{t::pad_status::model,         "model",         fk::text, false, false, id_len,  0, 0, 0},
    field_spec{t::pad_status::serial,        "serial",        fk::text, true,  false, id_len,  0, 0, 0},
    field_spec{t::pad_status::firmware,      "firmware",      fk::text, false, false, id_len,  0, 0, 0},
    field_spec{t::pad_status::capabilities,  "capabilities",  fk::u32,  true,  false, 0,       0, 0, 0},
    field_spec{t::pad_status::ksn,           "ksn",           fk::blob, false, true,  ksn_len, 8, 0, 0},
    field_spec{t::pad_status::dukpt_counter, "dukpt_counter", fk::u32,  false, true,  0,       8, 0, 0},
    field_spec{t::pad_status::language,      "language",      fk::text, false, true,  8,       8, 0, 0},
};
constexpr std::array key_pressed_fields{
    field_spec{t::key_pressed::key,  "key",          fk::u8,      true,  false, 0,        0,  0, 0},
};
constexpr std::array amount_entered_fields{
    field_spec{t::amount_entered::amount,   "amount",   fk::i64,  true,  false, 0,        0,  0, 0},
    field_spec{t::amount_entered::currency, "currency", fk::text, true,  false, 3,        0,  0, 0},
};
constexpr std::array confirmation_fields{
    field_spec{t::confirmation::yes, "yes",          fk::boolean, true,  false, 0,        0,  0, 0},
};
constexpr std::array menu_choice_fields{
    field_spec{t::menu_choice::index, "index",       fk::u8,      true,  false, 0,        0,  0, 8},
};
constexpr std::array get_pin_fields{
    field_spec{t::get_pin::amount,     "amount",     fk::i64,     true,  false, 0,        0,  0, 0},
    field_spec{t::get_pin::currency,   "currency",   fk::text,    true,  false, 3,        0,  0, 0},
    field_spec{t::get_pin::format,     "format",     fk::u8,      true,  false, 0,        0,  0, 4},
    field_spec{t::get_pin::min_digits, "min_digits", fk::u8,      false, false, 0,        0,  4, 12},
    field_spec{t::get_pin::max_digits, "max_digits", fk::u8,      false, false, 0,        0,  4, 12},
    field_spec{t::get_pin::bypass,     "bypass",     fk::boolean, false, false, 0,        0,  0, 0},
    field_spec{t::get_pin::timeout_ms, "timeout_ms", fk::u32,     true,  false, 0,        0,  0, 0},
    field_spec{t::get_pin::prompt,     "prompt",     fk::text,    false, true,  line_len, 4,  0, 0},
};
constexpr std::array pin_entered_fields{
    field_spec{t::pin_entered::pin_block, "pin_block", fk::secret, false, false, 16,      0,  8, 0, 8},
    field_spec{t::pin_entered::ksn,      "ksn",      fk::blob,    false, false, ksn_len,  0,  10, 0, 2},
    field_spec{t::pin_entered::bypassed, "bypassed", fk::boolean, false, false, 0,        0,  0, 0},
};
constexpr std::array offline_pin_fields{
    field_spec{t::offline_pin::mode,       "mode",       fk::u8,      true,  false, 0,        0,  1, 2},
    field_spec{t::offline_pin::modulus,    "modulus",    fk::blob,    false, false, 256,      0,  0, 0},
    field_spec{t::offline_pin::exponent,   "exponent",   fk::blob,    false, false, 4,        0,  0, 0},
    field_spec{t::offline_pin::challenge,  "challenge",  fk::blob,    false, false, 8,        0,  8, 0},
    field_spec{t::offline_pin::min_digits, "min_digits", fk::u8,      false, false, 0,        0,  4, 12},
    field_spec{t::offline_pin::max_digits, "max_digits", fk::u8,      false, false, 0,        0,  4, 12},
    field_spec{t::offline_pin::bypass,     "bypass",     fk::boolean, false, false, 0,        0,  0, 0},
    field_spec{t::offline_pin::timeout_ms, "timeout_ms", fk::u32,     true,  false, 0,        0,  0, 0},
    field_spec{t::offline_pin::prompt,     "prompt",     fk::text,    false, true,  line_len, 4,  0, 0},
    field_spec{t::offline_pin::tries_left, "tries_left", fk::u8,      false, false, 0,        0,  0, 0},
};
constexpr std::array offline_pin_result_fields{
    field_spec{t::offline_pin_result::sw,       "sw",       fk::u16,     true,  false, 0,   0,  0, 0},
    field_spec{t::offline_pin_result::bypassed, "bypassed", fk::boolean, false, false, 0,   0,  0, 0},
};
constexpr std::array power_on_fields{
    field_spec{t::power_on::interface,  "interface",  fk::u8,      true,  false, 0,        0,  2, 3},
    field_spec{t::power_on::timeout_ms, "timeout_ms", fk::u32,     true,  false, 0,        0,  0, 0},
};
constexpr std::array atr_fields{
    field_spec{t::atr::atr,            "atr",        fk::blob,    true,  false, atr_len,  0,  2, 0},
};
constexpr std::array apdu_fields{
    field_spec{t::apdu::capdu,         "capdu",      fk::blob,    true,  false, capdu_len, 0, 4, 0},
    field_spec{t::apdu::timeout_ms,    "timeout_ms", fk::u32,     true,  false, 0,        0,  0, 0},
};
constexpr std::array apdu_response_fields{
    field_spec{t::apdu_response::rapdu,  "rapdu",    fk::secret,  false, false, rapdu_len,  0, 2, 0},
    field_spec{t::apdu_response::sealed, "sealed",   fk::secret,  false, false, sealed_len, 0, 8, 0, 8},
    field_spec{t::apdu_response::ksn,    "ksn",      fk::blob,    false, false, ksn_len,    0, 10, 0, 2},
    field_spec{t::apdu_response::item,   "item",     fk::u16,     false, false, 0,          0, 0, 0},
};
constexpr std::array power_off_fields{
    field_spec{t::power_off::timeout_ms, "timeout_ms", fk::u32,   true,  false, 0,        0,  0, 0},
};
constexpr std::array apdu_script_fields{
    field_spec{t::apdu_script::capdu,      "capdu",      fk::blob, true,  true,  capdu_len, max_script_apdus, 4, 0},
    field_spec{t::apdu_script::stop,       "stop",       fk::u8,   true,  false, 0,         0, 0, 1},
    field_spec{t::apdu_script::timeout_ms, "timeout_ms", fk::u32,  true,  false, 0,         0, 0, 0},
    field_spec{t::apdu_script::interface,  "interface",  fk::u8,   false, false, 0,         0, 0, 3},
};
constexpr std::array script_result_fields{
    field_spec{t::script_result::rapdu,      "rapdu",      fk::secret, false, true,  rapdu_len,  max_script_apdus, 2, 0},
    field_spec{t::script_result::sealed,     "sealed",     fk::secret, false, true,  sealed_len, max_script_apdus, 8, 0, 8},
    field_spec{t::script_result::ksn,        "ksn",        fk::blob,   false, false, ksn_len,    0, 10, 0, 2},
    field_spec{t::script_result::atr,        "atr",        fk::blob,   false, false, atr_len,    0, 2, 0},
    field_spec{t::script_result::first_item, "first_item", fk::u16,    false, false, 0,          0, 0, 0},
    field_spec{t::script_result::elapsed_ms, "elapsed_ms", fk::u32,    false, false, 0,          0, 0, 0},
};
constexpr std::array event_key_fields{
    field_spec{t::event_key::key,    "key",          fk::u8,      true,  false, 0,        0,  0, 0},
};

using dir = direction;
const std::array table{
    message_spec{message_type::hello,     "hello",     dir::pad_to_server, hello_fields},
    message_spec{message_type::hello_ack, "hello_ack", dir::server_to_pad, hello_ack_fields},
    message_spec{message_type::display,   "display",   dir::server_to_pad, display_fields},
    message_spec{message_type::read_card, "read_card", dir::server_to_pad, read_card_fields},
    message_spec{message_type::cancel,    "cancel",    dir::server_to_pad, {}},
    message_spec{message_type::ping,      "ping",      dir::server_to_pad, ping_fields},
    message_spec{message_type::get_status, "get_status", dir::server_to_pad, get_status_fields},
    message_spec{message_type::beep,      "beep",      dir::server_to_pad, beep_fields},
    message_spec{message_type::leds,      "leds",      dir::server_to_pad, leds_fields},
    message_spec{message_type::get_key,   "get_key",   dir::server_to_pad, get_key_fields},
    message_spec{message_type::get_amount, "get_amount", dir::server_to_pad, get_amount_fields},
    message_spec{message_type::confirm,   "confirm",   dir::server_to_pad, confirm_fields},
    message_spec{message_type::menu,      "menu",      dir::server_to_pad, menu_fields},
    message_spec{message_type::remove_card, "remove_card", dir::server_to_pad, remove_card_fields},
    message_spec{message_type::reset,     "reset",     dir::server_to_pad, reset_fields},
    message_spec{message_type::get_pin,   "get_pin",   dir::server_to_pad, get_pin_fields},
    message_spec{message_type::offline_pin, "offline_pin", dir::server_to_pad, offline_pin_fields},
    message_spec{message_type::power_on,  "power_on",  dir::server_to_pad, power_on_fields},
    message_spec{message_type::apdu,      "apdu",      dir::server_to_pad, apdu_fields},
    message_spec{message_type::power_off, "power_off", dir::server_to_pad, power_off_fields},
    message_spec{message_type::apdu_script, "apdu_script", dir::server_to_pad, apdu_script_fields},
    message_spec{message_type::ack,       "ack",       dir::pad_to_server, {}},
    message_spec{message_type::pad_error, "pad_error", dir::pad_to_server, pad_error_fields},
    message_spec{message_type::card_read, "card_read", dir::pad_to_server, card_read_fields},
    message_spec{message_type::pong,      "pong",      dir::pad_to_server, pong_fields},
    message_spec{message_type::pad_status, "pad_status", dir::pad_to_server, pad_status_fields},
    message_spec{message_type::key_pressed, "key_pressed", dir::pad_to_server, key_pressed_fields},
    message_spec{message_type::amount_entered, "amount_entered", dir::pad_to_server, amount_entered_fields},
    message_spec{message_type::confirmation, "confirmation", dir::pad_to_server, confirmation_fields},
    message_spec{message_type::menu_choice, "menu_choice", dir::pad_to_server, menu_choice_fields},
    message_spec{message_type::pin_entered, "pin_entered", dir::pad_to_server, pin_entered_fields},
    message_spec{message_type::offline_pin_result, "offline_pin_result", dir::pad_to_server, offline_pin_result_fields},
    message_spec{message_type::atr,       "atr",       dir::pad_to_server, atr_fields},
    message_spec{message_type::apdu_response, "apdu_response", dir::pad_to_server, apdu_response_fields},
    message_spec{message_type::script_result, "script_result", dir::pad_to_server, script_result_fields},
    message_spec{message_type::event_key, "event_key", dir::pad_to_server, event_key_fields},
};
// clang-format on

const field_spec* find_field(const message_spec& spec, std::uint8_t tag) {
  for (const auto& f : spec.fields)
    if (f.tag == tag) return &f;
  return nullptr;
}

const field_spec& field_of(message_type type, std::uint8_t tag) {
  // Only called with (type, tag) pairs from tags.hpp; the table covers all of them.
  return *find_field(*find_spec(type), tag);
}

}  // namespace

std::span<const message_spec> message_table() noexcept {
  return table;
}

const message_spec* find_spec(message_type type) noexcept {
  return find_spec(static_cast<std::uint8_t>(type));
}

const message_spec* find_spec(std::uint8_t type_byte) noexcept {
  for (const auto& s : table)
    if (static_cast<std::uint8_t>(s.type) == type_byte) return &s;
  return nullptr;
}

std::string_view kind_name(field_kind k) noexcept {
  switch (k) {
    case field_kind::u8:
      return "u8";
    case field_kind::u16:
      return "u16";
    case field_kind::u32:
      return "u32";
    case field_kind::i64:
      return "i64";
    case field_kind::boolean:
      return "bool";
    case field_kind::text:
      return "text";
    case field_kind::secret:
      return "secret";
    case field_kind::blob:
      return "bytes";
  }
  return "unknown";
}

// ---- text rules ------------------------------------------------------------------------------
namespace {

// The length rule of a secret/bytes field: "" when n is allowed, else why not (no value
// is quoted: only the allowed lengths).
std::string length_rule(const field_spec& f, std::size_t n) {
  const std::size_t min = f.min_value == 0 ? 1 : f.min_value;
  if (n >= min && n <= f.max_len && (f.len_step == 0 || (n - min) % f.len_step == 0)) return {};
  if (f.len_step != 0) return fmt::format("length not {}..{} in steps of {}", min, f.max_len, f.len_step);
  return fmt::format("length not {}..{}", min, f.max_len);
}

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if invalid. Rejects
// overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
std::size_t utf8_seq_len(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7F;
}

// Text fields end up on a display and in log lines: valid UTF-8, no control characters.
bool text_ok(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_seq_len(s, i);
    if (n == 0 || (n == 1 && is_control(static_cast<unsigned char>(s[i])))) return false;
    i += n;
  }
  return true;
}

std::string fit_text(std::string_view s, std::size_t max_len) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_seq_len(s, i);
    std::string_view piece = (n == 0 || (n == 1 && is_control(static_cast<unsigned char>(s[i]))))
                                 ? std::string_view("?")
                                 : s.substr(i, n);
    if (out.size() + piece.size() > max_len) break;
    out += piece;
    i += n == 0 ? 1 : n;
  }
  return out;
}

// ---- writer ----------------------------------------------------------------------------------

class writer {
 public:
  explicit writer(message_type type) : type_(type) {}
  bytes& out() { return out_; }

  void u8(std::uint8_t tag, std::uint8_t v) { field(tag, {&v, 1}); }
  void u16(std::uint8_t tag, std::uint16_t v) {
    std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    field(tag, b);
  }
  void u32(std::uint8_t tag, std::uint32_t v) {
    std::uint8_t b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
    field(tag, b);
  }
  void i64(std::uint8_t tag, std::int64_t v) {
    auto u = static_cast<std::uint64_t>(v);  // two's complement by C++20 definition
    std::uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(u >> (56 - 8 * i));
    field(tag, b);
  }
  void boolean(std::uint8_t tag, bool v) { u8(tag, v ? 1 : 0); }
  void text(std::uint8_t tag, std::string_view s) {
    auto fitted = fit_text(s, field_of(type_, tag).max_len);
    field(tag, as_bytes(fitted));
  }
  void texts(std::uint8_t tag, const std::vector<std::string>& v) {
    const auto& f = field_of(type_, tag);
    for (std::size_t i = 0; i < v.size() && i < f.max_count; ++i) text(tag, v[i]);
  }
  void opt_i64(std::uint8_t tag, const std::optional<std::int64_t>& v) {
    if (v) i64(tag, *v);
  }
  void u8s(std::uint8_t tag, std::span<const std::uint8_t> v) {
    const auto& f = field_of(type_, tag);
    for (std::size_t i = 0; i < v.size() && i < f.max_count; ++i) u8(tag, v[i]);
  }
  void u32s(std::uint8_t tag, const std::vector<std::uint32_t>& v) {
    const auto& f = field_of(type_, tag);
    for (std::size_t i = 0; i < v.size() && i < f.max_count; ++i) u32(tag, v[i]);
  }
  void blobs(std::uint8_t tag, const std::vector<bytes>& v) {
    const auto& f = field_of(type_, tag);
    for (std::size_t i = 0; i < v.size() && i < f.max_count; ++i) secret(tag, v[i]);
  }
  void secret(std::uint8_t tag, byte_view v) {
    field(tag, v.first(std::min<std::size_t>(v.size(), field_of(type_, tag).max_len)));
  }
  // Optional bytes/secret fields: empty means absent.
  void opt_blob(std::uint8_t tag, byte_view v) {
    if (!v.empty()) secret(tag, v);
  }
  void opt_u8(std::uint8_t tag, const std::optional<std::uint8_t>& v) {
    if (v) u8(tag, *v);
  }
  void opt_u16(std::uint8_t tag, const std::optional<std::uint16_t>& v) {
    if (v) u16(tag, *v);
  }
  // Repeated values of a frame-bounded message: up to max_count, and only while the frame
  // keeps `reserve` bytes for the fields written after them.
  template <class T>
  void bounded(std::uint8_t tag, const std::vector<T>& v, std::size_t reserve) {
    const auto& f = field_of(type_, tag);
    for (std::size_t i = 0; i < v.size() && i < f.max_count; ++i) {
      byte_view item = view_of(v[i]);
      item = item.first(std::min<std::size_t>(item.size(), f.max_len));
      if (out_.size() + 3 + item.size() + reserve > max_frame_length - header_size) break;
      field(tag, item);
    }
  }

 private:
  void field(std::uint8_t tag, byte_view v) {
    out_.push_back(tag);
    out_.push_back(static_cast<std::uint8_t>(v.size() >> 8));
    out_.push_back(static_cast<std::uint8_t>(v.size()));
    out_.insert(out_.end(), v.begin(), v.end());
  }
  static byte_view view_of(const bytes& b) { return b; }
  static byte_view view_of(const secure_bytes& b) { return b.view(); }
  message_type type_;
  bytes out_;
};

// Bytes the fields after the repeated ones of a frame-bounded message take, as encode()
// writes them: apdu_script stop + timeout_ms + interface; script_result ksn + atr +
// first_item + elapsed_ms (the optional ones only when present).
constexpr std::size_t script_tail = (3 + 1) + (3 + 4) + (3 + 1);
std::size_t result_tail(const script_result& r) {
  auto opt = [](const bytes& b, std::size_t max_len) {
    return b.empty() ? 0 : 3 + std::min(b.size(), max_len);
  };
  return opt(r.ksn, ksn_len) + opt(r.atr, atr_len) + (r.first_item ? 3 + 2 : 0) + (3 + 4);
}

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

void write_body(writer& w, const message& m) {
  std::visit(overloaded{
                 [&](const hello& h) {
                   w.u8(t::hello::version, h.version);
                   w.text(t::hello::pad_id, h.pad_id);
                   w.text(t::hello::serial, h.serial);
                   w.text(t::hello::model, h.model);
                   w.text(t::hello::firmware, h.firmware);
                   w.texts(t::hello::capability, h.capabilities);
                 },
                 [&](const hello_ack& a) {
                   w.boolean(t::hello_ack::accepted, a.accepted);
                   w.text(t::hello_ack::server, a.server);
                   w.text(t::hello_ack::reason, a.reason);
                 },
                 [&](const display& d) {
                   w.texts(t::display::line, d.lines);
                   w.text(t::display::language, d.language);
                   std::vector<std::uint8_t> align;
                   for (auto a : d.align) align.push_back(static_cast<std::uint8_t>(a));
                   w.u8s(t::display::align, align);
                 },
                 [&](const read_card& r) {
                   w.i64(t::read_card::amount, r.amount);
                   w.text(t::read_card::currency, r.currency);
                   w.u8(t::read_card::interfaces, r.interfaces);
                   w.u32(t::read_card::timeout_ms, r.timeout_ms);
                   w.texts(t::read_card::prompt, r.prompt);
                 },
                 [&](const card_read& c) {
                   w.u8(t::card_read::mode, static_cast<std::uint8_t>(c.mode));
                   w.opt_blob(t::card_read::track2, c.track2.view());
                   w.boolean(t::card_read::fallback, c.fallback);
                   w.opt_blob(t::card_read::ksn, c.ksn);
                   w.opt_blob(t::card_read::sealed_track2, c.sealed_track2.view());
                   w.opt_blob(t::card_read::atr, c.atr);
                 },
                 [&](const get_pin& g) {
                   w.i64(t::get_pin::amount, g.amount);
                   w.text(t::get_pin::currency, g.currency);
                   w.u8(t::get_pin::format, g.format);
                   w.u8(t::get_pin::min_digits, g.min_digits);
                   w.u8(t::get_pin::max_digits, g.max_digits);
                   w.boolean(t::get_pin::bypass, g.bypass);
                   w.u32(t::get_pin::timeout_ms, g.timeout_ms);
                   w.texts(t::get_pin::prompt, g.prompt);
                 },
                 [&](const pin_entered& p) {
                   w.opt_blob(t::pin_entered::pin_block, p.pin_block.view());
                   w.opt_blob(t::pin_entered::ksn, p.ksn);
                   w.boolean(t::pin_entered::bypassed, p.bypassed);
                 },
                 [&](const offline_pin& o) {
                   w.u8(t::offline_pin::mode, o.mode);
                   w.opt_blob(t::offline_pin::modulus, o.modulus);
                   w.opt_blob(t::offline_pin::exponent, o.exponent);
                   w.opt_blob(t::offline_pin::challenge, o.challenge);
                   w.u8(t::offline_pin::min_digits, o.min_digits);
                   w.u8(t::offline_pin::max_digits, o.max_digits);
                   w.boolean(t::offline_pin::bypass, o.bypass);
                   w.u32(t::offline_pin::timeout_ms, o.timeout_ms);
                   w.texts(t::offline_pin::prompt, o.prompt);
                   w.opt_u8(t::offline_pin::tries_left, o.tries_left);
                 },
                 [&](const offline_pin_result& r) {
                   w.u16(t::offline_pin_result::sw, r.sw);
                   w.boolean(t::offline_pin_result::bypassed, r.bypassed);
                 },
                 [&](const power_on& p) {
                   w.u8(t::power_on::interface, p.interface);
                   w.u32(t::power_on::timeout_ms, p.timeout_ms);
                 },
                 [&](const atr& a) { w.secret(t::atr::atr, a.value); },
                 [&](const apdu& a) {
                   w.secret(t::apdu::capdu, a.capdu);
                   w.u32(t::apdu::timeout_ms, a.timeout_ms);
                 },
                 [&](const apdu_response& r) {
                   w.opt_blob(t::apdu_response::rapdu, r.rapdu.view());
                   w.opt_blob(t::apdu_response::sealed, r.sealed.view());
                   w.opt_blob(t::apdu_response::ksn, r.ksn);
                   w.opt_u16(t::apdu_response::item, r.item);
                 },
                 [&](const power_off& p) { w.u32(t::power_off::timeout_ms, p.timeout_ms); },
                 [&](const apdu_script& a) {
                   w.bounded(t::apdu_script::capdu, a.capdus, script_tail);
                   w.u8(t::apdu_script::stop, a.stop);
                   w.u32(t::apdu_script::timeout_ms, a.timeout_ms);
                   w.u8(t::apdu_script::interface, a.interface);
                 },
                 [&](const script_result& r) {
                   w.bounded(t::script_result::rapdu, r.rapdus, result_tail(r));
                   w.bounded(t::script_result::sealed, r.sealed, result_tail(r));
                   w.opt_blob(t::script_result::ksn, r.ksn);
                   w.opt_blob(t::script_result::atr, r.atr);
                   w.opt_u16(t::script_result::first_item, r.first_item);
                   w.u32(t::script_result::elapsed_ms, r.elapsed_ms);
                 },
                 [&](const pad_error& e) {
                   w.u16(t::pad_error::code, e.code);
                   w.text(t::pad_error::text, e.text);
                 },
                 [&](const event_key& k) { w.u8(t::event_key::key, k.key); },
                 [&](const ping& p) { w.opt_i64(t::ping::timestamp, p.timestamp); },
                 [&](const pong& p) { w.opt_i64(t::pong::timestamp, p.timestamp); },
                 [&](const get_status& g) { w.u32(t::get_status::timeout_ms, g.timeout_ms); },
                 [&](const beep& b) {
                   w.u8(t::beep::count, b.count);
                   w.u16(t::beep::duration_ms, b.duration_ms);
                   w.u32(t::beep::timeout_ms, b.timeout_ms);
                 },
                 [&](const leds& l) {
                   w.u8(t::leds::which, l.which);
                   w.u8(t::leds::state, static_cast<std::uint8_t>(l.state));
                   w.u32(t::leds::timeout_ms, l.timeout_ms);
                 },
                 [&](const get_key& k) {
                   w.u32(t::get_key::timeout_ms, k.timeout_ms);
                   w.texts(t::get_key::prompt, k.prompt);
                 },
                 [&](const get_amount& a) {
                   w.text(t::get_amount::currency, a.currency);
                   w.u8(t::get_amount::exponent, a.exponent);
                   w.i64(t::get_amount::min_amount, a.min_amount);
                   w.i64(t::get_amount::max_amount, a.max_amount);
                   w.u32(t::get_amount::timeout_ms, a.timeout_ms);
                   w.texts(t::get_amount::prompt, a.prompt);
                 },
                 [&](const confirm& c) {
                   w.u32(t::confirm::timeout_ms, c.timeout_ms);
                   w.texts(t::confirm::prompt, c.prompt);
                 },
                 [&](const menu& m) {
                   w.text(t::menu::title, m.title);
                   w.texts(t::menu::item, m.items);
                   w.u32(t::menu::timeout_ms, m.timeout_ms);
                 },
                 [&](const remove_card& r) {
                   w.u32(t::remove_card::timeout_ms, r.timeout_ms);
                   w.texts(t::remove_card::prompt, r.prompt);
                 },
                 [&](const reset& r) { w.u32(t::reset::timeout_ms, r.timeout_ms); },
                 [&](const pad_status& p) {
                   w.text(t::pad_status::model, p.model);
                   w.text(t::pad_status::serial, p.serial);
                   w.text(t::pad_status::firmware, p.firmware);
                   w.u32(t::pad_status::capabilities, p.capabilities);
                   w.blobs(t::pad_status::ksn, p.ksns);
                   w.u32s(t::pad_status::dukpt_counter, p.dukpt_counters);
                   w.texts(t::pad_status::language, p.languages);
                 },
                 [&](const key_pressed& k) { w.u8(t::key_pressed::key, k.key); },
                 [&](const amount_entered& a) {
                   w.i64(t::amount_entered::amount, a.amount);
                   w.text(t::amount_entered::currency, a.currency);
                 },
                 [&](const confirmation& c) { w.boolean(t::confirmation::yes, c.yes); },
                 [&](const menu_choice& m) { w.u8(t::menu_choice::index, m.index); },
                 [](const cancel&) {},
                 [](const ack&) {},
             },
             m);
}

void put_u32(bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (24 - 8 * i)));
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

bytes encode(const envelope& e) {
  const auto type = type_of(e.body);
  writer w(type);
  write_body(w, e.body);
  const bytes& body = w.out();
  const std::size_t length = header_size + body.size();  // <= max_frame_length by the table limits
  bytes out;
  out.reserve(length_prefix_size + length);
  out.push_back(static_cast<std::uint8_t>(length >> 8));
  out.push_back(static_cast<std::uint8_t>(length));
  out.push_back(protocol_version);
  out.push_back(static_cast<std::uint8_t>(type));
  put_u32(out, e.seq);
  put_u32(out, e.ref);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// ---- validate (the decoder's rules applied to a struct) ---------------------------------------
namespace {

error bad_field(const message_spec& spec, std::string_view field, std::string_view why) {
  return make_error("pad.bad_field", fmt::format("{}.{}: {}", spec.name, field, why));
}

// Header + body length of a frame-bounded message if nothing were dropped.
std::size_t encoded_length_unbounded(const message& m) {
  auto items = [](const auto& v, std::size_t max_len) {
    std::size_t n = 0;
    for (const auto& x : v) n += 3 + std::min<std::size_t>(x.size(), max_len);
    return n;
  };
  if (const auto* a = std::get_if<apdu_script>(&m))
    return header_size + items(a->capdus, capdu_len) + script_tail;
  if (const auto* r = std::get_if<script_result>(&m))
    return header_size + items(r->rapdus, rapdu_len) + items(r->sealed, sealed_len) + result_tail(*r);
  return header_size;
}

}  // namespace

status validate(const envelope& e) {
  const auto type = type_of(e.body);
  const auto& spec = *find_spec(type);
  std::optional<error> first;
  auto check_text = [&](std::uint8_t tag, std::string_view s) {
    if (first) return;
    const auto& f = field_of(type, tag);
    if (s.size() > f.max_len)
      first = bad_field(spec, f.name, fmt::format("longer than {} bytes", f.max_len));
    else if (!text_ok(s))
      first = bad_field(spec, f.name, "not UTF-8 text without control characters");
  };
  auto check_texts = [&](std::uint8_t tag, const std::vector<std::string>& v) {
    const auto& f = field_of(type, tag);
    if (!first && v.size() > f.max_count)
      first = bad_field(spec, f.name, fmt::format("more than {} items", f.max_count));
    for (const auto& s : v) check_text(tag, s);
  };
  // Optional bytes/secret fields are absent when empty.
  auto check_blob = [&](std::uint8_t tag, byte_view v, bool required) {
    if (first || (v.empty() && !required)) return;
    const auto& f = field_of(type, tag);
    if (auto why = length_rule(f, v.size()); !why.empty()) first = bad_field(spec, f.name, why);
  };
  auto check_range = [&](std::uint8_t tag, std::uint32_t v) {
    const auto& f = field_of(type, tag);
    if (!first && (f.min_value || f.max_value) && (v < f.min_value || v > f.max_value))
      first = bad_field(spec, f.name, fmt::format("out of range {}..{}", f.min_value, f.max_value));
  };
  std::visit(overloaded{
                 [&](const hello& h) {
                   check_range(t::hello::version, h.version);
                   check_text(t::hello::pad_id, h.pad_id);
                   check_text(t::hello::serial, h.serial);
                   check_text(t::hello::model, h.model);
                   check_text(t::hello::firmware, h.firmware);
                   check_texts(t::hello::capability, h.capabilities);
                 },
                 [&](const hello_ack& a) {
                   check_text(t::hello_ack::server, a.server);
                   check_text(t::hello_ack::reason, a.reason);
                 },
                 [&](const display& d) {
                   check_texts(t::display::line, d.lines);
                   check_text(t::display::language, d.language);
                   const auto& f = field_of(type, t::display::align);
                   if (!first && d.align.size() > f.max_count)
                     first = bad_field(spec, f.name, fmt::format("more than {} items", f.max_count));
                   for (auto a : d.align) check_range(t::display::align, static_cast<std::uint8_t>(a));
                 },
                 [&](const read_card& r) {
                   check_text(t::read_card::currency, r.currency);
                   check_range(t::read_card::interfaces, r.interfaces);
                   check_texts(t::read_card::prompt, r.prompt);
                 },
                 [&](const card_read& c) {
                   check_range(t::card_read::mode, static_cast<std::uint8_t>(c.mode));
                   check_blob(t::card_read::track2, c.track2.view(), false);
                   check_blob(t::card_read::ksn, c.ksn, false);
                   check_blob(t::card_read::sealed_track2, c.sealed_track2.view(), false);
                   check_blob(t::card_read::atr, c.atr, false);
                   // A card read hands over something: the track (clear or sealed) or a powered chip.
                   if (!first && c.track2.empty() && c.sealed_track2.empty() && c.atr.empty())
                     first = bad_field(spec, "track2", "track2, sealed_track2 or atr required");
                 },
                 [&](const get_pin& g) {
                   check_text(t::get_pin::currency, g.currency);
                   if (!first && g.format != 0 && g.format != 4)
                     first = bad_field(spec, "format", "not 0 (ISO 0, TDES DUKPT) or 4 (ISO 4, AES DUKPT)");
                   check_range(t::get_pin::min_digits, g.min_digits);
                   check_range(t::get_pin::max_digits, g.max_digits);
                   if (!first && g.min_digits > g.max_digits)
                     first = bad_field(spec, "min_digits", "above max_digits");
                   check_texts(t::get_pin::prompt, g.prompt);
                 },
                 [&](const pin_entered& p) {
                   check_blob(t::pin_entered::pin_block, p.pin_block.view(), false);
                   check_blob(t::pin_entered::ksn, p.ksn, false);
                   if (!first && !p.bypassed && (p.pin_block.empty() || p.ksn.empty()))
                     first = bad_field(spec, "pin_block", "pin_block and ksn required unless bypassed");
                   if (!first && p.bypassed && !(p.pin_block.empty() && p.ksn.empty()))
                     first = bad_field(spec, "pin_block", "no pin_block or ksn when bypassed");
                 },
                 [&](const offline_pin& o) {
                   check_range(t::offline_pin::mode, o.mode);
                   check_blob(t::offline_pin::modulus, o.modulus, o.mode == 2);
                   check_blob(t::offline_pin::exponent, o.exponent, o.mode == 2);
                   check_blob(t::offline_pin::challenge, o.challenge, o.mode == 2);
                   check_range(t::offline_pin::min_digits, o.min_digits);
                   check_range(t::offline_pin::max_digits, o.max_digits);
                   if (!first && o.min_digits > o.max_digits)
                     first = bad_field(spec, "min_digits", "above max_digits");
                   check_texts(t::offline_pin::prompt, o.prompt);
                 },
                 [&](const power_on& p) { check_range(t::power_on::interface, p.interface); },
                 [&](const atr& a) { check_blob(t::atr::atr, a.value, true); },
                 [&](const apdu& a) { check_blob(t::apdu::capdu, a.capdu, true); },
                 [&](const apdu_response& r) {
                   check_blob(t::apdu_response::rapdu, r.rapdu.view(), false);
                   check_blob(t::apdu_response::sealed, r.sealed.view(), false);
                   check_blob(t::apdu_response::ksn, r.ksn, false);
                   if (!first && r.rapdu.empty() == r.sealed.empty())
                     first = bad_field(spec, "rapdu", "exactly one of rapdu and sealed required");
                 },
                 [&](const apdu_script& a) {
                   const auto& f = field_of(type, t::apdu_script::capdu);
                   if (!first && (a.capdus.empty() || a.capdus.size() > f.max_count))
                     first = bad_field(spec, f.name, fmt::format("not 1..{} items", f.max_count));
                   for (const auto& c : a.capdus) check_blob(t::apdu_script::capdu, c, true);
                   check_range(t::apdu_script::stop, a.stop);
                   if (!first && a.interface != 0 && a.interface != 3)
                     first = bad_field(spec, "interface", "not 0 (the powered card) or 3 (contactless tap)");
                 },
                 [&](const script_result& r) {
                   for (auto tag : {t::script_result::rapdu, t::script_result::sealed}) {
                     const auto& f = field_of(type, tag);
                     const auto& v = tag == t::script_result::rapdu ? r.rapdus : r.sealed;
                     if (!first && v.size() > f.max_count)
                       first = bad_field(spec, f.name, fmt::format("more than {} items", f.max_count));
                     for (const auto& x : v) check_blob(tag, x.view(), true);
                   }
                   if (!first && !r.rapdus.empty() && !r.sealed.empty())
                     first = bad_field(spec, "rapdu", "rapdu and sealed together");
                   check_blob(t::script_result::ksn, r.ksn, false);
                   check_blob(t::script_result::atr, r.atr, false);
                 },
                 [&](const pad_error& er) { check_text(t::pad_error::text, er.text); },
                 [&](const beep& b) {
                   check_range(t::beep::count, b.count);
                   check_range(t::beep::duration_ms, b.duration_ms);
                 },
                 [&](const leds& l) {
                   check_range(t::leds::which, l.which);
                   check_range(t::leds::state, static_cast<std::uint8_t>(l.state));
                 },
                 [&](const get_key& k) { check_texts(t::get_key::prompt, k.prompt); },
                 [&](const get_amount& a) {
                   check_text(t::get_amount::currency, a.currency);
                   check_range(t::get_amount::exponent, a.exponent);
                   check_texts(t::get_amount::prompt, a.prompt);
                 },
                 [&](const confirm& c) { check_texts(t::confirm::prompt, c.prompt); },
                 [&](const menu& m) {
                   check_text(t::menu::title, m.title);
                   check_texts(t::menu::item, m.items);
                   if (!first && m.items.empty())
                     first = bad_field(spec, "item", "at least one item required");
                 },
                 [&](const remove_card& r) { check_texts(t::remove_card::prompt, r.prompt); },
                 [&](const pad_status& p) {
                   check_text(t::pad_status::model, p.model);
                   check_text(t::pad_status::serial, p.serial);
                   check_text(t::pad_status::firmware, p.firmware);
                   check_texts(t::pad_status::language, p.languages);
                   if (!first && p.ksns.size() > 8) first = bad_field(spec, "ksn", "more than 8 items");
                   for (const auto& k : p.ksns)
                     if (!first && (k.empty() || k.size() > ksn_len))
                       first = bad_field(spec, "ksn", fmt::format("length not 1..{}", ksn_len));
                   if (!first && p.dukpt_counters.size() > 8)
                     first = bad_field(spec, "dukpt_counter", "more than 8 items");
                 },
                 [&](const amount_entered& a) { check_text(t::amount_entered::currency, a.currency); },
                 [&](const menu_choice& m) { check_range(t::menu_choice::index, m.index); },
                 [](const auto&) {},
             },
             e.body);
  if (!first && frame_bounded(type)) {
    // Only these two can outgrow a frame within their table limits; the encoder would drop
    // repeated items, so refuse the message instead.
    const std::size_t length = encoded_length_unbounded(e.body);
    if (length > max_frame_length)
      first = bad_field(spec, type == message_type::apdu_script ? "capdu" : "rapdu",
                        fmt::format("the frame would be {} bytes, above {}", length, max_frame_length));
  }
  if (first) return *first;
  return {};
}

bool frame_bounded(message_type t) noexcept {
  return t == message_type::apdu_script || t == message_type::script_result;
}

// ---- decoder ---------------------------------------------------------------------------------
namespace {

// The body after the generic pass: every known field checked against its spec, unknown tags
// dropped. Values are views into the frame.
class fields {
 public:
  explicit fields(const message_spec& spec) : spec_(spec) {}

  status parse(byte_view body) {
    std::size_t pos = 0;
    while (pos < body.size()) {
      // tag(1) + len(2) must be present before the value can be located.
      if (body.size() - pos < 3)
        return make_error("pad.truncated",
                          fmt::format("{}: field header cut after {} bytes of body", spec_.name, pos));
      const std::uint8_t tag = body[pos];
      const std::size_t len = (std::size_t{body[pos + 1]} << 8) | body[pos + 2];
      pos += 3;
      if (body.size() - pos < len)
        return make_error("pad.truncated", fmt::format("{}: field tag 0x{:02X} says {} bytes, {} left",
                                                       spec_.name, tag, len, body.size() - pos));
      const byte_view value = body.subspan(pos, len);
      pos += len;
      const field_spec* f = find_field(spec_, tag);
      if (f == nullptr) continue;  // forward compatibility: a newer peer's field
      if (++count_[tag] > 1 && !f->repeated)
        return make_error("pad.duplicate_field", fmt::format("{}.{} occurs twice", spec_.name, f->name));
      if (f->repeated && count_[tag] > f->max_count)
        return bad_field(spec_, f->name, fmt::format("more than {} items", f->max_count));
      if (auto st = check(*f, value); !st) return st;
      items_.emplace_back(tag, value);
    }
    for (const auto& f : spec_.fields)
      if (f.required && count_[f.tag] == 0)
        return make_error("pad.missing_field", fmt::format("{}.{} is required", spec_.name, f.name));
    return {};
  }

  bool has(std::uint8_t tag) const { return count_[tag] != 0; }

  byte_view one(std::uint8_t tag) const {
    for (const auto& [t, v] : items_)
      if (t == tag) return v;
    return {};
  }

  std::uint64_t num(std::uint8_t tag) const {
    std::uint64_t v = 0;
    for (auto b : one(tag)) v = (v << 8) | b;
    return v;
  }

  std::string str(std::uint8_t tag) const {
    auto v = one(tag);
    return {reinterpret_cast<const char*>(v.data()), v.size()};
  }

  std::vector<std::uint64_t> nums(std::uint8_t tag) const {
    std::vector<std::uint64_t> out;
    for (const auto& [t, v] : items_)
      if (t == tag) {
        std::uint64_t n = 0;
        for (auto b : v) n = (n << 8) | b;
        out.push_back(n);
      }
    return out;
  }

  std::vector<bytes> blobs(std::uint8_t tag) const {
    std::vector<bytes> out;
    for (const auto& [t, v] : items_)
      if (t == tag) out.emplace_back(v.begin(), v.end());
    return out;
  }

  bytes bytes_of(std::uint8_t tag) const {
    auto v = one(tag);
    return {v.begin(), v.end()};
  }

  std::optional<std::int64_t> opt_i64(std::uint8_t tag) const {
    if (!has(tag)) return std::nullopt;
    return static_cast<std::int64_t>(num(tag));
  }

  std::vector<std::string> strs(std::uint8_t tag) const {
    std::vector<std::string> out;
    for (const auto& [t, v] : items_)
      if (t == tag) out.emplace_back(reinterpret_cast<const char*>(v.data()), v.size());
    return out;
  }

 private:
  status check(const field_spec& f, byte_view v) const {
    std::size_t want = 0;
    switch (f.kind) {
      case field_kind::u8:
      case field_kind::boolean:
        want = 1;
        break;
      case field_kind::u16:
        want = 2;
        break;
      case field_kind::u32:
        want = 4;
        break;
      case field_kind::i64:
        want = 8;
        break;
      case field_kind::text:
        if (v.size() > f.max_len)
          return bad_field(spec_, f.name, fmt::format("longer than {} bytes", f.max_len));
        if (!text_ok({reinterpret_cast<const char*>(v.data()), v.size()}))
          return bad_field(spec_, f.name, "not UTF-8 text without control characters");
        return {};
      case field_kind::blob:
      case field_kind::secret:
        // Length only: a secret's content is card data and is not inspected (or quoted) here.
        if (auto why = length_rule(f, v.size()); !why.empty()) return bad_field(spec_, f.name, why);
        return {};
    }
    if (v.size() != want)
      return bad_field(spec_, f.name,
                       fmt::format("{} needs {} bytes, got {}", kind_name(f.kind), want, v.size()));
    if (f.kind == field_kind::boolean && v[0] > 1) return bad_field(spec_, f.name, "boolean not 0 or 1");
    if (f.min_value || f.max_value) {
      std::uint64_t n = 0;
      for (auto b : v) n = (n << 8) | b;
      if (n < f.min_value || n > f.max_value)
        return bad_field(spec_, f.name, fmt::format("out of range {}..{}", f.min_value, f.max_value));
    }
    return {};
  }

  const message_spec& spec_;
  std::array<std::uint8_t, 256> count_{};  // stops at max_count + 1 (<= 33): parse() fails there
  std::vector<std::pair<std::uint8_t, byte_view>> items_;
};

std::uint32_t u32_of(const fields& f, std::uint8_t tag) {
  return static_cast<std::uint32_t>(f.num(tag));
}

std::uint8_t u8_of(const fields& f, std::uint8_t tag) {
  return static_cast<std::uint8_t>(f.num(tag));
}

message build(message_type type, const fields& f) {
  switch (type) {
    case message_type::hello: {
      hello h;
      h.version = static_cast<std::uint8_t>(f.num(t::hello::version));
      h.pad_id = f.str(t::hello::pad_id);
      h.serial = f.str(t::hello::serial);
      h.model = f.str(t::hello::model);
      h.firmware = f.str(t::hello::firmware);
      h.capabilities = f.strs(t::hello::capability);
      return h;
    }
    case message_type::hello_ack: {
      hello_ack a;
      a.accepted = f.num(t::hello_ack::accepted) != 0;
      a.server = f.str(t::hello_ack::server);
      a.reason = f.str(t::hello_ack::reason);
      return a;
    }
    case message_type::display: {
      display d;
      d.lines = f.strs(t::display::line);
      if (f.has(t::display::language)) d.language = f.str(t::display::language);
      for (auto a : f.nums(t::display::align)) d.align.push_back(static_cast<alignment>(a));
      return d;
    }
    case message_type::read_card: {
      read_card r;
      r.amount = static_cast<std::int64_t>(f.num(t::read_card::amount));
      r.currency = f.str(t::read_card::currency);
      r.interfaces = static_cast<std::uint8_t>(f.num(t::read_card::interfaces));
      r.timeout_ms = static_cast<std::uint32_t>(f.num(t::read_card::timeout_ms));
      r.prompt = f.strs(t::read_card::prompt);
      return r;
    }
    case message_type::card_read: {
      card_read c;
      c.mode = static_cast<entry_mode>(f.num(t::card_read::mode));
      c.track2 = secure_bytes(f.one(t::card_read::track2));
      c.fallback = f.num(t::card_read::fallback) != 0;
      c.ksn = f.bytes_of(t::card_read::ksn);
      c.sealed_track2 = secure_bytes(f.one(t::card_read::sealed_track2));
      c.atr = f.bytes_of(t::card_read::atr);
      return c;
    }
    case message_type::get_pin: {
      get_pin g;
      g.amount = static_cast<std::int64_t>(f.num(t::get_pin::amount));
      g.currency = f.str(t::get_pin::currency);
      g.format = u8_of(f, t::get_pin::format);
      if (f.has(t::get_pin::min_digits)) g.min_digits = u8_of(f, t::get_pin::min_digits);
      if (f.has(t::get_pin::max_digits)) g.max_digits = u8_of(f, t::get_pin::max_digits);
      g.bypass = f.num(t::get_pin::bypass) != 0;
      g.timeout_ms = u32_of(f, t::get_pin::timeout_ms);
      g.prompt = f.strs(t::get_pin::prompt);
      return g;
    }
    case message_type::pin_entered: {
      pin_entered p;
      p.pin_block = secure_bytes(f.one(t::pin_entered::pin_block));
      p.ksn = f.bytes_of(t::pin_entered::ksn);
      p.bypassed = f.num(t::pin_entered::bypassed) != 0;
      return p;
    }
    case message_type::offline_pin: {
      offline_pin o;
      o.mode = u8_of(f, t::offline_pin::mode);
      o.modulus = f.bytes_of(t::offline_pin::modulus);
      o.exponent = f.bytes_of(t::offline_pin::exponent);
      o.challenge = f.bytes_of(t::offline_pin::challenge);
      if (f.has(t::offline_pin::min_digits)) o.min_digits = u8_of(f, t::offline_pin::min_digits);
      if (f.has(t::offline_pin::max_digits)) o.max_digits = u8_of(f, t::offline_pin::max_digits);
      o.bypass = f.num(t::offline_pin::bypass) != 0;
      o.timeout_ms = u32_of(f, t::offline_pin::timeout_ms);
      o.prompt = f.strs(t::offline_pin::prompt);
      if (f.has(t::offline_pin::tries_left)) o.tries_left = u8_of(f, t::offline_pin::tries_left);
      return o;
    }
    case message_type::offline_pin_result:
      return offline_pin_result{static_cast<std::uint16_t>(f.num(t::offline_pin_result::sw)),
                                f.num(t::offline_pin_result::bypassed) != 0};
    case message_type::power_on:
      return power_on{u8_of(f, t::power_on::interface), u32_of(f, t::power_on::timeout_ms)};
    case message_type::atr:
      return atr{f.bytes_of(t::atr::atr)};
    case message_type::apdu:
      return apdu{f.bytes_of(t::apdu::capdu), u32_of(f, t::apdu::timeout_ms)};
    case message_type::apdu_response: {
      apdu_response r;
      r.rapdu = secure_bytes(f.one(t::apdu_response::rapdu));
      r.sealed = secure_bytes(f.one(t::apdu_response::sealed));
      r.ksn = f.bytes_of(t::apdu_response::ksn);
      if (f.has(t::apdu_response::item)) r.item = static_cast<std::uint16_t>(f.num(t::apdu_response::item));
      return r;
    }
    case message_type::power_off:
      return power_off{u32_of(f, t::power_off::timeout_ms)};
    case message_type::apdu_script: {
      apdu_script a;
      a.capdus = f.blobs(t::apdu_script::capdu);
      a.stop = u8_of(f, t::apdu_script::stop);
      a.timeout_ms = u32_of(f, t::apdu_script::timeout_ms);
      a.interface = u8_of(f, t::apdu_script::interface);
      return a;
    }
    case message_type::script_result: {
      script_result r;
      for (auto& b : f.blobs(t::script_result::rapdu)) r.rapdus.emplace_back(b);
      for (auto& b : f.blobs(t::script_result::sealed)) r.sealed.emplace_back(b);
      r.ksn = f.bytes_of(t::script_result::ksn);
      r.atr = f.bytes_of(t::script_result::atr);
      if (f.has(t::script_result::first_item))
        r.first_item = static_cast<std::uint16_t>(f.num(t::script_result::first_item));
      r.elapsed_ms = u32_of(f, t::script_result::elapsed_ms);
      return r;
    }
    case message_type::pad_error: {
      pad_error e;
      e.code = static_cast<std::uint16_t>(f.num(t::pad_error::code));
      e.text = f.str(t::pad_error::text);
      return e;
    }
    case message_type::event_key:
      return event_key{static_cast<std::uint8_t>(f.num(t::event_key::key))};
    case message_type::cancel:
      return cancel{};
    case message_type::ping:
      return ping{f.opt_i64(t::ping::timestamp)};
    case message_type::ack:
      return ack{};
    case message_type::pong:
      return pong{f.opt_i64(t::pong::timestamp)};
    case message_type::get_status:
      return get_status{u32_of(f, t::get_status::timeout_ms)};
    case message_type::beep:
      return beep{static_cast<std::uint8_t>(f.num(t::beep::count)),
                  static_cast<std::uint16_t>(f.num(t::beep::duration_ms)), u32_of(f, t::beep::timeout_ms)};
    case message_type::leds:
      return leds{static_cast<std::uint8_t>(f.num(t::leds::which)),
                  static_cast<led_state>(f.num(t::leds::state)), u32_of(f, t::leds::timeout_ms)};
    case message_type::get_key:
      return get_key{u32_of(f, t::get_key::timeout_ms), f.strs(t::get_key::prompt)};
    case message_type::get_amount: {
      get_amount a;
      a.currency = f.str(t::get_amount::currency);
      a.exponent = static_cast<std::uint8_t>(f.num(t::get_amount::exponent));
      a.min_amount = static_cast<std::int64_t>(f.num(t::get_amount::min_amount));
      a.max_amount = static_cast<std::int64_t>(f.num(t::get_amount::max_amount));
      a.timeout_ms = u32_of(f, t::get_amount::timeout_ms);
      a.prompt = f.strs(t::get_amount::prompt);
      return a;
    }
    case message_type::confirm:
      return confirm{u32_of(f, t::confirm::timeout_ms), f.strs(t::confirm::prompt)};
    case message_type::menu:
      return menu{f.str(t::menu::title), f.strs(t::menu::item), u32_of(f, t::menu::timeout_ms)};
    case message_type::remove_card:
      return remove_card{u32_of(f, t::remove_card::timeout_ms), f.strs(t::remove_card::prompt)};
    case message_type::reset:
      return reset{u32_of(f, t::reset::timeout_ms)};
    case message_type::pad_status: {
      pad_status p;
      p.model = f.str(t::pad_status::model);
      p.serial = f.str(t::pad_status::serial);
      p.firmware = f.str(t::pad_status::firmware);
      p.capabilities = u32_of(f, t::pad_status::capabilities);
      p.ksns = f.blobs(t::pad_status::ksn);
      for (auto n : f.nums(t::pad_status::dukpt_counter))
        p.dukpt_counters.push_back(static_cast<std::uint32_t>(n));
      p.languages = f.strs(t::pad_status::language);
      return p;
    }
    case message_type::key_pressed:
      return key_pressed{static_cast<std::uint8_t>(f.num(t::key_pressed::key))};
    case message_type::amount_entered:
      return amount_entered{static_cast<std::int64_t>(f.num(t::amount_entered::amount)),
                            f.str(t::amount_entered::currency)};
    case message_type::confirmation:
      return confirmation{f.num(t::confirmation::yes) != 0};
    case message_type::menu_choice:
      return menu_choice{static_cast<std::uint8_t>(f.num(t::menu_choice::index))};
  }
  return ack{};  // unreachable: type was found in the table
}

}  // namespace

result<header> decode_header(byte_view frame) {
  if (frame.size() < header_size)
    return make_error("pad.truncated", fmt::format("frame of {} bytes is shorter than the {}-byte header",
                                                   frame.size(), header_size));
  if (frame[0] != protocol_version)
    return make_error("pad.bad_version", fmt::format("version byte 0x{:02X}, this side speaks 0x{:02X}",
                                                     frame[0], protocol_version));
  return header{frame[0], frame[1], get_u32(frame.data() + 2), get_u32(frame.data() + 6)};
}

result<envelope> decode_body(byte_view frame) {
  auto h = decode_header(frame);
  if (!h) return h.err();
  const message_spec* spec = find_spec(h->type);
  if (spec == nullptr) return make_error("pad.unknown_type", fmt::format("message type 0x{:02X}", h->type));
  fields f(*spec);
  if (auto st = f.parse(frame.subspan(header_size)); !st) return st.err();
  envelope e{h->seq, h->ref, build(spec->type, f)};
  // The rules between fields (get_pin.format 0 or 4, offline_pin mode 2's key, ...): the
  // decoder accepts exactly what validate() accepts, so a decoded message re-encodes as is.
  if (auto st = validate(e); !st) return st.err();
  return e;
}

// ---- frame_reader ----------------------------------------------------------------------------

void frame_reader::feed(byte_view data) {
  // Compact lazily: consumed bytes are dropped once they are the bigger part of the buffer,
  // so a long-lived connection does not grow the buffer without bound.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

result<std::optional<bytes>> frame_reader::next() {
  if (failed_) return *failed_;
  const std::size_t avail = buf_.size() - pos_;
  if (avail < length_prefix_size) return std::optional<bytes>{};
  const std::size_t length = (std::size_t{buf_[pos_]} << 8) | buf_[pos_ + 1];
  // Decided on the prefix alone, before waiting for the rest: a peer announcing an
  // impossible length gets an error now, not a connection that waits forever.
  if (length == 0 || length < header_size) {
    failed_ = make_error("pad.bad_length",
                         fmt::format("length prefix {} is below the {}-byte header", length, header_size));
    return *failed_;
  }
  if (length > max_length_) {
    failed_ =
        make_error("pad.frame_too_large", fmt::format("length prefix {} exceeds {}", length, max_length_));
    return *failed_;
  }
  if (avail < length_prefix_size + length) return std::optional<bytes>{};
  auto first = buf_.begin() + static_cast<std::ptrdiff_t>(pos_ + length_prefix_size);
  bytes frame(first, first + static_cast<std::ptrdiff_t>(length));
  pos_ += length_prefix_size + length;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<bytes>{std::move(frame)};
}

void frame_reader::reset() noexcept {
  buf_.clear();
  pos_ = 0;
  failed_.reset();
}

// ---- replay_guard ----------------------------------------------------------------------------

status replay_guard::accept(std::uint32_t seq) {
  if (seq <= last_)
    return make_error("pad.replay", fmt::format("seq {} not above last accepted {}", seq, last_));
  last_ = seq;
  return {};
}

}  // namespace eftd::pad
