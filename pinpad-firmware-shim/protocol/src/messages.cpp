#include "eftd/pad/messages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <type_traits>

namespace eftd::pad {

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

// Peer-supplied text ends up in log lines: keep it on one line and short so a hostile
// pad id cannot forge log entries.
std::string printable(std::string_view s, std::size_t max = 64) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7F) ? '?' : c;
  }
  return out;
}

std::string join_printable(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += printable(v[i]);
  }
  return out;
}

std::string_view mode_name(entry_mode m) {
  switch (m) {
    case entry_mode::magstripe:
      return "magstripe";
    case entry_mode::chip:
      return "chip";
    case entry_mode::contactless:
      return "contactless";
    case entry_mode::fallback_magstripe:
      return "fallback_magstripe";
  }
  return "unknown";
}

// KSNs and ATRs are not secret (a KSN travels in the clear with every DUKPT value).
std::string hex_or_dash(const eftd::bytes& b) {
  return b.empty() ? std::string("-") : eftd::to_hex(b);
}

// CLA INS P1 P2 of a C-APDU.
std::string apdu_header(const eftd::bytes& c) {
  return eftd::to_hex(eftd::byte_view(c).first(std::min<std::size_t>(c.size(), 4)));
}

std::string opt_num(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string("-");
}

}  // namespace

message_type type_of(const message& m) noexcept {
  return std::visit(overloaded{
                        [](const hello&) { return message_type::hello; },
                        [](const hello_ack&) { return message_type::hello_ack; },
                        [](const display&) { return message_type::display; },
                        [](const read_card&) { return message_type::read_card; },
                        [](const card_read&) { return message_type::card_read; },
                        [](const cancel&) { return message_type::cancel; },
                        [](const ack&) { return message_type::ack; },
                        [](const pad_error&) { return message_type::pad_error; },
                        [](const event_key&) { return message_type::event_key; },
                        [](const ping&) { return message_type::ping; },
                        [](const pong&) { return message_type::pong; },
                        [](const get_status&) { return message_type::get_status; },
                        [](const beep&) { return message_type::beep; },
                        [](const leds&) { return message_type::leds; },
                        [](const get_key&) { return message_type::get_key; },
                        [](const get_amount&) { return message_type::get_amount; },
                        [](const confirm&) { return message_type::confirm; },
                        [](const menu&) { return message_type::menu; },
                        [](const remove_card&) { return message_type::remove_card; },
                        [](const reset&) { return message_type::reset; },
                        [](const pad_status&) { return message_type::pad_status; },
                        [](const key_pressed&) { return message_type::key_pressed; },
                        [](const amount_entered&) { return message_type::amount_entered; },
                        [](const confirmation&) { return message_type::confirmation; },
                        [](const menu_choice&) { return message_type::menu_choice; },
                        [](const get_pin&) { return message_type::get_pin; },
                        [](const pin_entered&) { return message_type::pin_entered; },
                        [](const offline_pin&) { return message_type::offline_pin; },
                        [](const offline_pin_result&) { return message_type::offline_pin_result; },
                        [](const power_on&) { return message_type::power_on; },
                        [](const atr&) { return message_type::atr; },
                        [](const apdu&) { return message_type::apdu; },
                        [](const apdu_response&) { return message_type::apdu_response; },
                        [](const power_off&) { return message_type::power_off; },
                        [](const apdu_script&) { return message_type::apdu_script; },
                        [](const script_result&) { return message_type::script_result; },
                    },
                    m);
}

std::string_view type_name(message_type t) noexcept {
  switch (t) {
    case message_type::hello:
      return "hello";
    case message_type::hello_ack:
      return "hello_ack";
    case message_type::display:
      return "display";
    case message_type::read_card:
      return "read_card";
    case message_type::cancel:
      return "cancel";
    case message_type::ping:
      return "ping";
    case message_type::ack:
      return "ack";
    case message_type::pad_error:
      return "pad_error";
    case message_type::card_read:
      return "card_read";
    case message_type::pong:
      return "pong";
    case message_type::event_key:
      return "event_key";
    case message_type::get_status:
      return "get_status";
    case message_type::beep:
      return "beep";
    case message_type::leds:
      return "leds";
    case message_type::get_key:
      return "get_key";
    case message_type::get_amount:
      return "get_amount";
    case message_type::confirm:
      return "confirm";
    case message_type::menu:
      return "menu";
    case message_type::remove_card:
      return "remove_card";
    case message_type::reset:
      return "reset";
    case message_type::pad_status:
      return "pad_status";
    case message_type::key_pressed:
      return "key_pressed";
    case message_type::amount_entered:
      return "amount_entered";
    case message_type::confirmation:
      return "confirmation";
    case message_type::menu_choice:
      return "menu_choice";
    case message_type::get_pin:
      return "get_pin";
    case message_type::pin_entered:
      return "pin_entered";
    case message_type::offline_pin:
      return "offline_pin";
    case message_type::offline_pin_result:
      return "offline_pin_result";
    case message_type::power_on:
      return "power_on";
    case message_type::atr:
      return "atr";
    case message_type::apdu:
      return "apdu";
    case message_type::apdu_response:
      return "apdu_response";
    case message_type::power_off:
      return "power_off";
    case message_type::apdu_script:
      return "apdu_script";
    case message_type::script_result:
      return "script_result";
  }
  return "unknown";
}

std::string_view pad_error_name(std::uint16_t code) noexcept {
  switch (static_cast<pad_error_code>(code)) {
    case pad_error_code::timeout:
      return "timeout";
    case pad_error_code::cancelled:
      return "cancelled";
    case pad_error_code::no_card:
      return "no_card";
    case pad_error_code::hardware:
      return "hardware";
    case pad_error_code::unsupported:
      return "unsupported";
    case pad_error_code::busy:
      return "busy";
    case pad_error_code::bad_request:
      return "bad_request";
  }
  return "unknown";
}

bool is_reply(message_type t) noexcept {
  const auto b = static_cast<std::uint8_t>(t);
  return b >= 0x80 && b <= 0xBF;
}

std::string describe(const message& m) {
  return std::visit(
      overloaded{
          [](const hello& h) {
            return fmt::format("hello version={} pad_id={} serial={} model={} firmware={} capabilities={}",
                               h.version, printable(h.pad_id), printable(h.serial), printable(h.model),
                               printable(h.firmware), join_printable(h.capabilities, ","));
          },
          [](const hello_ack& a) {
            return fmt::format("hello_ack accepted={} server={} reason={}", a.accepted, printable(a.server),
                               printable(a.reason, 128));
          },
          [](const display& d) {
            return fmt::format("display lines={} language={} text=\"{}\"", d.lines.size(),
                               printable(d.language), join_printable(d.lines, " | "));
          },
          [](const read_card& r) {
            return fmt::format(
                "read_card amount={} currency={} interfaces=0x{:02X} timeout_ms={} prompt_lines={}", r.amount,
                printable(r.currency), r.interfaces, r.timeout_ms, r.prompt.size());
          },
          // Card data boundary: only the length of track 2, never any of its characters.
          [](const card_read& c) {
            return fmt::format(
                "card_read mode={} fallback={} track2_len={} sealed_track2_len={} ksn={} atr={}",
                mode_name(c.mode), c.fallback, c.track2.size(), c.sealed_track2.size(), hex_or_dash(c.ksn),
                hex_or_dash(c.atr));
          },
          [](const get_pin& g) {
            return fmt::format(
                "get_pin amount={} currency={} format={} digits={}..{} bypass={} timeout_ms={} prompt=\"{}\"",
                g.amount, printable(g.currency), g.format, g.min_digits, g.max_digits, g.bypass, g.timeout_ms,
                join_printable(g.prompt, " | "));
          },
          // Secret fields by length only: a PIN block is card data even under DUKPT.
          [](const pin_entered& p) {
            return fmt::format("pin_entered pin_block_len={} ksn={} bypassed={}", p.pin_block.size(),
                               hex_or_dash(p.ksn), p.bypassed);
          },
          [](const offline_pin& o) {
            return fmt::format(
                "offline_pin mode={} modulus_len={} exponent_len={} challenge_len={} digits={}..{} bypass={} "
                "timeout_ms={} tries_left={}",
                o.mode, o.modulus.size(), o.exponent.size(), o.challenge.size(), o.min_digits, o.max_digits,
                o.bypass, o.timeout_ms, o.tries_left ? std::to_string(*o.tries_left) : std::string("-"));
          },
          [](const offline_pin_result& r) {
            return fmt::format("offline_pin_result sw={:04X} bypassed={}", r.sw, r.bypassed);
          },
          [](const power_on& p) {
            return fmt::format("power_on interface={} timeout_ms={}", p.interface, p.timeout_ms);
          },
          [](const atr& a) { return fmt::format("atr atr={}", hex_or_dash(a.value)); },
          // C-APDUs carry no card data from the pad (eftd's kernel builds them): the header only.
          [](const apdu& a) {
            return fmt::format("apdu header={} capdu_len={} timeout_ms={}", apdu_header(a.capdu),
                               a.capdu.size(), a.timeout_ms);
          },
          [](const apdu_response& r) {
            return fmt::format("apdu_response rapdu_len={} sealed_len={} ksn={} item={}", r.rapdu.size(),
                               r.sealed.size(), hex_or_dash(r.ksn), r.item ? std::to_string(*r.item) : "-");
          },
          [](const power_off& p) { return fmt::format("power_off timeout_ms={}", p.timeout_ms); },
          [](const apdu_script& a) {
            return fmt::format("apdu_script capdus={} stop={} interface={} timeout_ms={}", a.capdus.size(),
                               a.stop, a.interface, a.timeout_ms);
          },
          [](const script_result& r) {
            return fmt::format("script_result rapdus={} sealed={} ksn={} atr={} first_item={} elapsed_ms={}",
                               r.rapdus.size(), r.sealed.size(), hex_or_dash(r.ksn), hex_or_dash(r.atr),
                               r.first_item ? std::to_string(*r.first_item) : "-", r.elapsed_ms);
          },
          [](const cancel&) { return std::string("cancel"); },
          [](const ack&) { return std::string("ack"); },
          [](const pad_error& e) {
            return fmt::format("pad_error code={}({}) text={}", e.code, pad_error_name(e.code),
                               printable(e.text, 128));
          },
          [](const event_key& k) { return fmt::format("event_key key=0x{:02X}", k.key); },
          [](const ping& p) { return fmt::format("ping timestamp={}", opt_num(p.timestamp)); },
          [](const pong& p) { return fmt::format("pong timestamp={}", opt_num(p.timestamp)); },
          [](const get_status& g) { return fmt::format("get_status timeout_ms={}", g.timeout_ms); },
          [](const beep& b) {
            return fmt::format("beep count={} duration_ms={} timeout_ms={}", b.count, b.duration_ms,
                               b.timeout_ms);
          },
          [](const leds& l) {
            return fmt::format("leds which=0x{:X} state={} timeout_ms={}", l.which, static_cast<int>(l.state),
                               l.timeout_ms);
          },
          [](const get_key& k) {
            return fmt::format("get_key timeout_ms={} prompt=\"{}\"", k.timeout_ms,
                               join_printable(k.prompt, " | "));
          },
          [](const get_amount& a) {
            return fmt::format("get_amount currency={} exponent={} min={} max={} timeout_ms={}",
                               printable(a.currency), a.exponent, a.min_amount, a.max_amount, a.timeout_ms);
          },
          [](const confirm& c) {
            return fmt::format("confirm timeout_ms={} prompt=\"{}\"", c.timeout_ms,
                               join_printable(c.prompt, " | "));
          },
          [](const menu& m) {
            return fmt::format("menu title=\"{}\" items={} timeout_ms={}", printable(m.title), m.items.size(),
                               m.timeout_ms);
          },
          [](const remove_card& r) { return fmt::format("remove_card timeout_ms={}", r.timeout_ms); },
          [](const reset& r) { return fmt::format("reset timeout_ms={}", r.timeout_ms); },
          [](const pad_status& p) {
            std::string ksns;
            for (std::size_t i = 0; i < p.ksns.size(); ++i) {
              if (i) ksns += ',';
              ksns += eftd::to_hex(p.ksns[i]);
              if (i < p.dukpt_counters.size()) ksns += fmt::format("#{}", p.dukpt_counters[i]);
            }
            return fmt::format(
                "pad_status model={} serial={} firmware={} capabilities=0x{:X} ksns={} languages={}",
                printable(p.model), printable(p.serial), printable(p.firmware), p.capabilities, ksns,
                join_printable(p.languages, ","));
          },
          // Keys and amounts typed here are not card data (a PIN is never entered through get_key).
          [](const key_pressed& k) { return fmt::format("key_pressed key=0x{:02X}", k.key); },
          [](const amount_entered& a) {
            return fmt::format("amount_entered amount={} currency={}", a.amount, printable(a.currency));
          },
          [](const confirmation& c) { return fmt::format("confirmation yes={}", c.yes); },
          [](const menu_choice& m) { return fmt::format("menu_choice index={}", m.index); },
      },
      m);
}

std::string describe(const envelope& e) {
  return fmt::format("seq={} ref={} {}", e.seq, e.ref, describe(e.body));
}

}  // namespace eftd::pad
