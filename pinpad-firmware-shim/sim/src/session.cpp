#include "eftd/padsim/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>

namespace eftd::padsim {

using namespace eftd::pad;

namespace {

struct capability_name {
  std::string_view name;
  capability_bit bit;
};
constexpr capability_name capability_names[] = {
    {"display", capability_bit::display},
    {"beep", capability_bit::beep},
    {"leds", capability_bit::leds},
    {"keypad", capability_bit::keypad},
    {"magstripe", capability_bit::magstripe},
    {"chip", capability_bit::chip},
    {"contactless", capability_bit::contactless},
    {"pin", capability_bit::pin},
    {"p2pe", capability_bit::p2pe},
};

std::uint16_t code_of(pad_error_code c) {
  return static_cast<std::uint16_t>(c);
}

// "1250" with exponent 2 -> "12.50"; the display shows what the customer typed so far.
std::string format_amount(const std::string& digits, std::uint8_t exponent) {
  std::string d = digits;
  if (d.size() < static_cast<std::size_t>(exponent) + 1) d.insert(0, exponent + 1 - d.size(), '0');
  if (exponent == 0) return d;
  return d.substr(0, d.size() - exponent) + "." + d.substr(d.size() - exponent);
}

// 18 digits always fit in an i64 (19 may not), so typing cannot overflow the amount.
constexpr std::size_t max_amount_digits = 18;

std::uint16_t sw_of(byte_view rapdu) {
  return static_cast<std::uint16_t>((rapdu[rapdu.size() - 2] << 8) | rapdu[rapdu.size() - 1]);
}

// A command answered by the chip with 61xx / 6Cxx is re-issued a few times at most: a card
// that keeps asking must not hold the pad in a loop.
constexpr int max_t0_rounds = 8;

// The frame budget of a script_result (codec.hpp: the encoder drops what does not fit). An
// R-APDU is at most 258 bytes, sealed at most 272 (AES blocks); the tail fields (ksn, atr,
// first_item, elapsed_ms) take at most 63 bytes with their headers.
constexpr std::size_t result_budget = max_frame_length - header_size - 63;
constexpr std::size_t worst_item = 3 + 272;

// The C-APDU with its Le set to `le` (6Cxx: the card wants exactly xx bytes). Case 1 gains an
// Le; case 2 and 4 replace theirs; case 3 gains one.
bytes with_le(byte_view capdu, std::uint8_t le) {
  bytes c(capdu.begin(), capdu.end());
  if (c.size() == 4) {
    c.push_back(le);
  } else if (c.size() == 5) {
    c[4] = le;
  } else {
    const std::size_t lc = c[4];
    if (c.size() == 5 + lc)
      c.push_back(le);
    else
      c.back() = le;
  }
  return c;
}

}  // namespace

std::uint32_t capability_bits(const std::vector<std::string>& names) {
  std::uint32_t bits = 0;
  for (const auto& n : names)
    for (const auto& c : capability_names)
      if (c.name == n) bits |= static_cast<std::uint32_t>(c.bit);
  return bits;
}

pad_session::pad_session(pad_identity id, display_device& display, card_reader& reader)
    : id_(std::move(id)), display_(display), reader_(reader) {}

pad_session::pad_session(pad_identity id, display_device& display, card_reader& reader, keypad& keys)
    : id_(std::move(id)), display_(display), reader_(reader), keypad_(&keys) {}

bytes pad_session::start() {
  frames_.reset();
  inbound_.reset();
  outbound_ = seq_counter{};
  accepted_ = false;
  pending_.reset();
  reader_.cancel();
  drop_card();
  hello h;
  h.pad_id = id_.pad_id;
  h.serial = id_.serial;
  h.model = id_.model;
  h.firmware = id_.firmware;
  h.capabilities = id_.capabilities;
  hello_seq_ = outbound_.next();
  return encode(envelope{hello_seq_, 0, std::move(h)});
}

result<session_output> pad_session::on_bytes(byte_view data) {
  return on_bytes(data, pad_clock::now());
}

result<session_output> pad_session::on_bytes(byte_view data, pad_clock::time_point now) {
  session_output out;
  now_ = now;
  frames_.feed(data);
  for (;;) {
    auto next = frames_.next();
    if (!next) return next.err();
    if (!next->has_value()) break;
    if (auto st = on_frame(**next, out); !st) return st.err();
  }
  return out;
}

session_output pad_session::on_tick(pad_clock::time_point now) {
  session_output out;
  now_ = now;
  advance(out);
  return out;
}

std::optional<pad_clock::time_point> pad_session::wake_at() const {
  if (!pending_) return std::nullopt;
  return std::min(pending_->deadline, last_poll_ + poll_interval);
}

void pad_session::fail(std::uint32_t ref, pad_error_code code, std::string text, session_output& out) {
  reply(ref, pad_error{code_of(code), std::move(text)}, out);
}

void pad_session::finish(message body, session_output& out) {
  const auto ref = pending_->ref;
  pending_.reset();
  reply(ref, std::move(body), out);
}

void pad_session::show_amount(const get_amount& a, const std::string& digits) {
  display screen;
  screen.lines = a.prompt;
  screen.lines.push_back(format_amount(digits, a.exponent) + " " + a.currency);
  display_.show(screen);
}

void pad_session::start_waiting(std::uint32_t ref, message m, std::uint32_t timeout_ms, session_output& out) {
  pending_ = pending_command{std::move(m), ref, now_ + std::chrono::milliseconds(timeout_ms), {}};
  advance(out);
}

void pad_session::advance(session_output& out) {
  if (!pending_) return;
  last_poll_ = now_;
  auto& p = *pending_;
  if (std::holds_alternative<read_card>(p.command)) {
    // Keys belong to the reader's own prompt here (the TUI's cancel key); none are taken.
    if (auto r = reader_.poll_read(now_)) {
      const auto ref = p.ref;
      pending_.reset();
      complete_read_card(ref, std::move(*r), out);
      out.events.push_back(session_event::card_answered);
      return;
    }
    if (now_ >= p.deadline) {
      reader_.cancel();
      finish(pad_error{code_of(pad_error_code::timeout), "timeout"}, out);
      out.events.push_back(session_event::card_answered);
    }
    return;
  }
  if (std::holds_alternative<remove_card>(p.command)) {
    if (!reader_.card_present(now_)) {
      drop_card();
      return finish(ack{}, out);
    }
  } else {
    while (pending_ && keypad_ != nullptr) {
      const auto key = keypad_->poll_key(now_);
      if (!key) break;
      if (*key == keys::cancel)
        return finish(pad_error{code_of(pad_error_code::cancelled), "cancel key"}, out);
      const std::uint8_t k = *key;
      // The answer, if this key completes the command; finish() runs after the visit because
      // it destroys the command being visited.
      std::optional<message> answer = std::visit(
          [&](auto& cmd) -> std::optional<message> {
            using T = std::decay_t<decltype(cmd)>;
            if constexpr (std::is_same_v<T, get_key>) {
              return key_pressed{k};
            } else if constexpr (std::is_same_v<T, confirm>) {
              if (k == keys::enter) return confirmation{true};
              if (k == keys::clear) return confirmation{false};
            } else if constexpr (std::is_same_v<T, menu>) {
              if (k >= '1' && static_cast<std::size_t>(k - '1') < cmd.items.size())
                return menu_choice{static_cast<std::uint8_t>(k - '1')};
            } else if constexpr (std::is_same_v<T, get_pin> || std::is_same_v<T, offline_pin>) {
              if (k >= '0' && k <= '9') {
                // Digits beyond max_digits are ignored, as on a real pad's PIN entry.
                if (p.pin_length < cmd.max_digits) p.pin.mutable_view()[p.pin_length++] = k;
                show_pin_entry(p);
              } else if (k == keys::clear) {
                if (p.pin_length > 0) p.pin.mutable_view()[--p.pin_length] = 0;
                show_pin_entry(p);
              } else if (k == keys::enter) {
                if (p.pin_length == 0 && cmd.bypass) {
                  if constexpr (std::is_same_v<T, get_pin>)
                    return pin_entered{{}, {}, true};
                  else
                    return offline_pin_result{0, true};
                }
                if (p.pin_length >= cmd.min_digits) return pin_answer(p);
                display_.beep(1, 200);  // too short (or bypass not allowed): keep waiting
              }
            } else if constexpr (std::is_same_v<T, get_amount>) {
              if (k >= '0' && k <= '9') {
                if (p.digits.size() < max_amount_digits && !(p.digits.empty() && k == '0'))
                  p.digits += static_cast<char>(k);
                show_amount(cmd, p.digits);
              } else if (k == keys::clear) {
                if (!p.digits.empty()) p.digits.pop_back();
                show_amount(cmd, p.digits);
              } else if (k == keys::enter) {
                std::int64_t amount = 0;  // at most 18 digits: cannot overflow
                for (char c : p.digits) amount = amount * 10 + (c - '0');
                if (amount >= cmd.min_amount && amount <= cmd.max_amount)
                  return amount_entered{amount, cmd.currency};
                // Out of range: tell the customer and let them correct it before the deadline.
                display_.beep(1, 200);
                p.digits.clear();
                show_amount(cmd, p.digits);
              }
            }
            return std::nullopt;
          },
          p.command);
      if (answer) return finish(std::move(*answer), out);
    }
  }
  if (pending_ && now_ >= pending_->deadline)
    finish(pad_error{code_of(pad_error_code::timeout), "timeout"}, out);
}

void pad_session::reply(std::uint32_t ref, message body, session_output& out) {
  envelope e{outbound_.next(), ref, std::move(body)};
  spdlog::debug("pad tx {}", describe(e));
  out.send.push_back(encode(e));
}

status pad_session::on_frame(byte_view frame, session_output& out) {
  auto h = decode_header(frame);
  if (!h) return h.err();
  // The replay rule comes before anything is executed: a replayed display or read_card must
  // not act twice, and an attacker must not be able to probe with old frames.
  if (auto st = inbound_.accept(h->seq); !st) return st;

  const message_spec* spec = find_spec(h->type);
  if (spec == nullptr) {
    spdlog::warn("pad: unsupported message type 0x{:02X} (seq {})", h->type, h->seq);
    reply(h->seq,
          pad_error{static_cast<std::uint16_t>(pad_error_code::unsupported),
                    fmt::format("message type 0x{:02X} not supported", h->type)},
          out);
    return {};
  }
  auto env = decode_body(frame);
  if (!env) {
    // The header was sound, so the stream is still in sync: refuse this command only.
    spdlog::warn("pad: {} (seq {}) rejected: {} {}", spec->name, h->seq, env.err().code, env.err().message);
    if (!accepted_) return env.err();
    reply(h->seq, pad_error{static_cast<std::uint16_t>(pad_error_code::bad_request), env.err().code}, out);
    return {};
  }
  spdlog::debug("pad rx {}", describe(*env));

  if (!accepted_) {
    const auto* ack = std::get_if<hello_ack>(&env->body);
    if (ack == nullptr)
      return make_error("padsim.not_accepted", fmt::format("{} before hello_ack", spec->name));
    if (env->ref != hello_seq_)
      return make_error("padsim.bad_ref",
                        fmt::format("hello_ack ref {} does not answer hello seq {}", env->ref, hello_seq_));
    if (!ack->accepted)
      return make_error("padsim.refused", ack->reason.empty() ? "no reason given" : ack->reason);
    accepted_ = true;
    out.events.push_back(session_event::accepted);
    return {};
  }

  execute(env->seq, env->body, out);
  return {};
}

void pad_session::execute(std::uint32_t ref, message& body, session_output& out) {
  const bool busy = pending_.has_value();
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ping>) {
          reply(ref, pong{m.timestamp}, out);
        } else if constexpr (std::is_same_v<T, get_status>) {
          // A pad with keys reports their real KSNs and counters; the identity's are a script's.
          const bool real = keys_ != nullptr && !keys_->empty();
          reply(ref,
                pad_status{id_.model, id_.serial, id_.firmware, capability_bits(id_.capabilities),
                           real ? keys_->ksns() : id_.ksns, real ? keys_->counters() : id_.dukpt_counters,
                           id_.languages},
                out);
        } else if constexpr (std::is_same_v<T, cancel>) {
          if (pending_) finish(pad_error{code_of(pad_error_code::cancelled), "cancelled"}, out);
          reader_.cancel();
          reply(ref, ack{}, out);
          out.events.push_back(session_event::cancelled);
        } else if constexpr (std::is_same_v<T, reset>) {
          if (pending_) finish(pad_error{code_of(pad_error_code::cancelled), "reset"}, out);
          reader_.cancel();
          drop_card();
          display_.show(display{});
          display_.set_leds(0x0F, led_state::off);
          reply(ref, ack{}, out);
        } else if (busy && !is_reply(type_of(body)) && type_of(body) != message_type::hello_ack) {
          fail(ref, pad_error_code::busy, fmt::format("{} while a command waits", type_name(type_of(body))),
               out);
        } else if constexpr (std::is_same_v<T, display>) {
          if (!display_.has_language(m.language))
            return fail(ref, pad_error_code::unsupported, "language not available", out);
          display_.show(m);
          reply(ref, ack{}, out);
          out.events.push_back(session_event::displayed);
        } else if constexpr (std::is_same_v<T, read_card>) {
          on_read_card(ref, m, out);
        } else if constexpr (std::is_same_v<T, get_pin> || std::is_same_v<T, offline_pin>) {
          if (keypad_ == nullptr) return fail(ref, pad_error_code::unsupported, "no keypad", out);
          if (auto st = validate(envelope{1, 0, m}); !st)
            return fail(ref, pad_error_code::bad_request, st.err().message, out);
          if constexpr (std::is_same_v<T, get_pin>) {
            const auto kind = m.format == 0 ? p2pe::dukpt_kind::tdes : p2pe::dukpt_kind::aes;
            if (keys_ == nullptr || !keys_->has(kind))
              return fail(
                  ref, pad_error_code::unsupported,
                  fmt::format("no {} DUKPT key for PIN format {}", m.format == 0 ? "TDES" : "AES", m.format),
                  out);
            if (!card_ || card_->pan.empty()) return fail(ref, pad_error_code::no_card, "no card", out);
          } else {
            if (!card_ || !card_->powered)
              return fail(ref, pad_error_code::no_card, "no chip card powered", out);
            // A short VERIFY carries at most 255 data bytes.
            if (m.mode == 2 && m.modulus.size() > 255)
              return fail(ref, pad_error_code::bad_request, "offline_pin.modulus: longer than 255 bytes",
                          out);
          }
          const auto timeout = m.timeout_ms;
          pending_ = pending_command{std::move(m), ref, now_ + std::chrono::milliseconds(timeout), {}};
          show_pin_entry(*pending_);
          advance(out);
        } else if constexpr (std::is_same_v<T, power_on>) {
          const auto want = m.interface == 3 ? entry_mode::contactless : entry_mode::chip;
          if (!card_ || !card_->chip || card_->mode != want)
            return fail(ref, pad_error_code::no_card, "no card at that interface", out);
          auto a = card_->chip->power_on();
          if (!a) {
            spdlog::warn("pad: power on failed: {}", a.err().code);
            card_->powered = false;
            return fail(ref, pad_error_code::hardware, "chip error", out);
          }
          card_->powered = true;
          reply(ref, pad::atr{std::move(*a)}, out);
        } else if constexpr (std::is_same_v<T, apdu>) {
          if (!card_ || !card_->powered)
            return fail(ref, pad_error_code::no_card, "no chip card powered", out);
          auto r = exchange(m.capdu);
          if (!r) {
            spdlog::warn("pad: APDU exchange failed: {}", r.err().code);
            return fail(ref, pad_error_code::hardware, "chip error", out);
          }
          apdu_response resp;
          if (keys_ != nullptr && !keys_->empty()) {
            if (!keys_->in_transaction()) {
              if (auto st = begin_card_transaction(); !st)
                return fail(ref, pad_error_code::hardware, "DUKPT", out);
            }
            auto sealed = keys_->seal(r->view());
            if (!sealed) {
              spdlog::error("pad: sealing failed: {}", sealed.err().code);
              return fail(ref, pad_error_code::hardware, "DUKPT", out);
            }
            resp.sealed = secure_bytes(sealed->sealed);
            resp.ksn = keys_->sealing_ksn();
            resp.item = sealed->item;
          } else {
            resp.rapdu = std::move(*r);
          }
          reply(ref, std::move(resp), out);
        } else if constexpr (std::is_same_v<T, power_off>) {
          if (card_ && card_->chip && card_->powered) card_->chip->power_off();
          if (card_) card_->powered = false;
          reply(ref, ack{}, out);
        } else if constexpr (std::is_same_v<T, apdu_script>) {
          if (auto st = validate(envelope{1, 0, m}); !st)
            return fail(ref, pad_error_code::bad_request, st.err().message, out);
          on_apdu_script(ref, m, out);
        } else if constexpr (std::is_same_v<T, beep>) {
          if (!display_.beep(m.count, m.duration_ms))
            return fail(ref, pad_error_code::unsupported, "no buzzer", out);
          reply(ref, ack{}, out);
        } else if constexpr (std::is_same_v<T, leds>) {
          if (!display_.set_leds(m.which, m.state))
            return fail(ref, pad_error_code::unsupported, "no LEDs", out);
          reply(ref, ack{}, out);
        } else if constexpr (std::is_same_v<T, get_key> || std::is_same_v<T, confirm> ||
                             std::is_same_v<T, get_amount> || std::is_same_v<T, menu>) {
          if (keypad_ == nullptr) return fail(ref, pad_error_code::unsupported, "no keypad", out);
          if constexpr (std::is_same_v<T, get_amount>) {
            if (m.min_amount < 0 || m.min_amount > m.max_amount)
              return fail(ref, pad_error_code::bad_request, "get_amount: need 0 <= min_amount <= max_amount",
                          out);
            show_amount(m, {});
          } else if constexpr (std::is_same_v<T, menu>) {
            display screen;
            if (!m.title.empty()) screen.lines.push_back(m.title);
            for (std::size_t i = 0; i < m.items.size(); ++i)
              screen.lines.push_back(fmt::format("{} {}", i + 1, m.items[i]));
            display_.show(screen);
          } else {
            if (!m.prompt.empty()) display_.show(display{m.prompt});
          }
          const auto timeout = m.timeout_ms;
          start_waiting(ref, std::move(m), timeout, out);
        } else if constexpr (std::is_same_v<T, remove_card>) {
          if (!m.prompt.empty()) display_.show(display{m.prompt});
          const auto timeout = m.timeout_ms;
          start_waiting(ref, std::move(m), timeout, out);
        } else {
          // hello_ack twice, or a pad -> server message sent to the pad.
          fail(ref, pad_error_code::bad_request, fmt::format("{} is not a command", type_name(type_of(m))),
               out);
        }
      },
      body);
}

// ---- PIN entry ---------------------------------------------------------------------------------

void pad_session::show_pin_entry(const pending_command& p) {
  display screen;
  std::visit(
      [&](const auto& cmd) {
        using T = std::decay_t<decltype(cmd)>;
        if constexpr (std::is_same_v<T, get_pin> || std::is_same_v<T, offline_pin>) {
          screen.lines = cmd.prompt;
          if (screen.lines.empty()) screen.lines.push_back("Enter PIN");
          if constexpr (std::is_same_v<T, get_pin>) {
            // The amount as minor units with two decimals: the pad has no currency exponent table.
            // Unsigned negation: INT64_MIN has no positive i64 counterpart.
            const std::uint64_t abs = cmd.amount < 0
                                          ? std::uint64_t{0} - static_cast<std::uint64_t>(cmd.amount)
                                          : static_cast<std::uint64_t>(cmd.amount);
            screen.lines.push_back(
                fmt::format("{}{}.{:02} {}", cmd.amount < 0 ? "-" : "", abs / 100, abs % 100, cmd.currency));
          } else if (cmd.tries_left && *cmd.tries_left <= 2) {
            screen.lines.push_back(fmt::format("{} tries left", *cmd.tries_left));
          }
          // The digits never reach the display, only how many were typed.
          screen.lines.push_back(std::string(p.pin_length, '*'));
        }
      },
      p.command);
  display_.show(screen);
}

message pad_session::pin_answer(pending_command& p) {
  const std::string_view digits(reinterpret_cast<const char*>(p.pin.view().data()), p.pin_length);
  auto entered = pin::parse(digits);
  if (!entered) return pad_error{code_of(pad_error_code::hardware), "PIN entry"};
  if (const auto* g = std::get_if<get_pin>(&p.command)) {
    const auto kind = g->format == 0 ? p2pe::dukpt_kind::tdes : p2pe::dukpt_kind::aes;
    if (keys_ == nullptr || !card_ || card_->pan.empty())
      return pad_error{code_of(pad_error_code::no_card), "card removed"};
    if (!keys_->in_transaction()) {
      if (auto st = begin_card_transaction(); !st)
        return pad_error{code_of(pad_error_code::hardware), "DUKPT"};
    }
    const std::string_view pan(reinterpret_cast<const char*>(card_->pan.view().data()), card_->pan.size());
    auto block = keys_->pin_block(kind, *entered, pan, *rng_);
    if (!block) {
      spdlog::error("pad: PIN block failed: {}", block.err().code);
      return pad_error{code_of(pad_error_code::hardware), "PIN block"};
    }
    return pin_entered{secure_bytes(*block), keys_->ksn(kind), false};
  }
  const auto& o = std::get<offline_pin>(p.command);
  if (!card_ || !card_->powered) return pad_error{code_of(pad_error_code::no_card), "no chip card powered"};
  // ISO 9564 format 2: the clear block EMV offline PIN uses (no PAN).
  auto block = build_pin_block(pin_block_format::iso2, *entered, {}, *rng_);
  if (!block) return pad_error{code_of(pad_error_code::hardware), "PIN block"};
  secure_bytes verify;
  if (o.mode == 1) {
    // VERIFY, plaintext PIN (P2 = 80): Lc 8, the format 2 block.
    bytes c{0x00, 0x20, 0x00, 0x80, 0x08};
    c.insert(c.end(), block->view().begin(), block->view().end());
    verify = secure_bytes(c);
    secure_wipe(c.data(), c.size());
  } else {
    // VERIFY, enciphered PIN (P2 = 88), EMV Book 2 7.2: RSA over 7F || block || challenge ||
    // random padding to the modulus length.
    const std::size_t n = o.modulus.size();
    if (n < 1 + 8 + 8)
      return pad_error{code_of(pad_error_code::bad_request), "offline_pin.modulus too short"};
    secure_bytes data(n);
    auto d = data.mutable_view();
    d[0] = 0x7F;
    std::copy(block->view().begin(), block->view().end(), d.begin() + 1);
    std::copy(o.challenge.begin(), o.challenge.end(), d.begin() + 9);
    rng_->fill(d.subspan(17));
    auto enc = rsa_public_raw(o.modulus, o.exponent, data.view());
    if (!enc) {
      spdlog::warn("pad: PIN encipherment failed: {}", enc.err().code);
      return pad_error{code_of(pad_error_code::hardware), "PIN encipherment"};
    }
    bytes c{0x00, 0x20, 0x00, 0x88, static_cast<std::uint8_t>(n)};
    c.insert(c.end(), enc->begin(), enc->end());
    verify = secure_bytes(c);
  }
  auto r = exchange(verify.view());
  if (!r) {
    spdlog::warn("pad: VERIFY failed: {}", r.err().code);
    return pad_error{code_of(pad_error_code::hardware), "chip error"};
  }
  return offline_pin_result{sw_of(r->view()), false};
}

// ---- cards and chips ------------------------------------------------------------------------------

void pad_session::drop_card() {
  if (card_ && card_->chip && card_->powered) card_->chip->power_off();
  card_.reset();
}

status pad_session::begin_card_transaction() {
  if (keys_ == nullptr || keys_->empty()) return {};
  auto st = keys_->begin_transaction();
  if (!st) spdlog::error("pad: DUKPT transaction not started: {} {}", st.err().code, st.err().message);
  return st;
}

void pad_session::on_read_card(std::uint32_t ref, const pad::read_card& m, session_output& out) {
  drop_card();
  reader_.begin_read(m);
  if (auto r = reader_.poll_read(now_)) {
    complete_read_card(ref, std::move(*r), out);
    out.events.push_back(session_event::card_answered);
    return;
  }
  // A person is choosing a card: read_card waits like the other waiting commands, and the
  // session goes on answering ping, get_status, cancel and reset meanwhile.
  pending_ = pending_command{m, ref, now_ + std::chrono::milliseconds(m.timeout_ms), {}};
  last_poll_ = now_;
}

void pad_session::complete_read_card(std::uint32_t ref, card_reader::read_result r, session_output& out) {
  if (auto* f = std::get_if<reader_failure>(&r))
    return reply(ref, pad_error{code_of(f->code), std::move(f->text)}, out);
  auto& card = std::get<presented_card>(r);
  card_read answer;
  answer.mode = card.mode;
  answer.fallback = card.fallback;
  card_ = card_state{card.mode, std::move(card.pan), card.chip, false};
  if (card.chip && (card.mode == entry_mode::chip || card.mode == entry_mode::contactless)) {
    auto a = card.chip->power_on();
    if (a) {
      answer.atr = std::move(*a);
      card_->powered = true;
    } else if (card.mode == entry_mode::chip && !card.track2.empty()) {
      // Fallback: the chip does not answer, so the customer swipes the same card and the
      // server learns that this was a fallback (its own rules decide whether to accept it).
      spdlog::info("pad: chip mute ({}), asking for a swipe", a.err().code);
      display_.show(display{{"Chip error", "Swipe card"}});
      answer.mode = entry_mode::fallback_magstripe;
      answer.fallback = true;
      card_->mode = entry_mode::fallback_magstripe;
      card_->chip.reset();
    } else {
      spdlog::warn("pad: chip mute ({})", a.err().code);
      card_.reset();
      return reply(ref, pad_error{code_of(pad_error_code::hardware), "chip error"}, out);
    }
  }
  const bool stripe = answer.atr.empty();
  if (keys_ != nullptr && !keys_->empty()) {
    // One card, one DUKPT transaction: a fresh KSN, items from 1.
    if (auto st = begin_card_transaction(); !st) {
      card_.reset();
      return reply(ref, pad_error{code_of(pad_error_code::hardware), "DUKPT"}, out);
    }
    answer.ksn = keys_->sealing_ksn();
    if (stripe && !card.track2.empty()) {
      auto sealed = keys_->seal(card.track2.view());
      if (!sealed) {
        spdlog::error("pad: sealing failed: {}", sealed.err().code);
        card_.reset();
        return reply(ref, pad_error{code_of(pad_error_code::hardware), "DUKPT"}, out);
      }
      answer.sealed_track2 = secure_bytes(sealed->sealed);
    }
  } else if (stripe) {
    answer.track2 = std::move(card.track2);
  }
  reply(ref, std::move(answer), out);
}

result<secure_bytes> pad_session::exchange(byte_view capdu) {
  bytes command(capdu.begin(), capdu.end());
  bytes data;  // R-APDU data collected over GET RESPONSE rounds
  auto wipe = [](bytes& b) { secure_wipe(b.data(), b.size()); };
  for (int round = 0; round < max_t0_rounds; ++round) {
    auto r = card_->chip->transmit(command);
    wipe(command);
    if (!r) {
      wipe(data);
      return r.err();
    }
    if (r->size() < 2) {
      wipe(*r);
      wipe(data);
      return make_error("padsim.bad_rapdu", "R-APDU shorter than its status word");
    }
    const std::uint8_t sw1 = (*r)[r->size() - 2], sw2 = (*r)[r->size() - 1];
    if (sw1 == 0x61) {
      // T=0 case 4: sw2 bytes wait; fetch them with GET RESPONSE (they may come in parts).
      data.insert(data.end(), r->begin(), r->end() - 2);
      command = {0x00, 0xC0, 0x00, 0x00, sw2};
    } else if (sw1 == 0x6C) {
      // Wrong Le: the card wants exactly sw2 bytes; the same command again with that Le.
      command = with_le(capdu, sw2);
    } else {
      data.insert(data.end(), r->begin(), r->end());
      wipe(*r);
      secure_bytes out(data);
      wipe(data);
      return out;
    }
    wipe(*r);
  }
  wipe(data);
  return make_error("padsim.t0_rounds", "the card kept asking for GET RESPONSE / a new Le");
}

void pad_session::on_apdu_script(std::uint32_t ref, const pad::apdu_script& m, session_output& out) {
  script_result result;
  const bool tap = m.interface == static_cast<std::uint8_t>(card_interface::contactless);
  if (tap) {
    // A whole tap in one round trip: wait for the card, power it, run, power it off.
    drop_card();
    pad::read_card wait{0, "", static_cast<std::uint8_t>(interface_mask::contactless), m.timeout_ms, {}};
    auto r = reader_.read(wait);
    if (auto* f = std::get_if<reader_failure>(&r))
      return reply(ref, pad_error{code_of(f->code), std::move(f->text)}, out);
    auto& card = std::get<presented_card>(r);
    if (!card.chip || card.mode != entry_mode::contactless)
      return fail(ref, pad_error_code::no_card, "no contactless card", out);
    card_ = card_state{card.mode, std::move(card.pan), card.chip, false};
  } else if (!card_ || !card_->powered) {
    return fail(ref, pad_error_code::no_card, "no chip card powered", out);
  }
  const auto started = clock_();
  if (tap) {
    auto a = card_->chip->power_on();
    if (!a) {
      spdlog::warn("pad: contactless card mute ({})", a.err().code);
      card_->powered = false;
      return fail(ref, pad_error_code::hardware, "chip error", out);
    }
    card_->powered = true;
    result.atr = std::move(*a);
    if (auto st = begin_card_transaction(); !st) return fail(ref, pad_error_code::hardware, "DUKPT", out);
  }
  const bool sealing = keys_ != nullptr && !keys_->empty();
  if (sealing && !keys_->in_transaction()) {
    if (auto st = begin_card_transaction(); !st) return fail(ref, pad_error_code::hardware, "DUKPT", out);
  }
  std::size_t used = 0;
  for (const auto& capdu : m.capdus) {
    // Stop before an APDU whose answer might not fit in the reply frame: the server sees
    // fewer answers than commands, as with the stop rule, and nothing is lost on the way.
    if (used + worst_item > result_budget) break;
    auto r = exchange(capdu);
    if (!r) {
      spdlog::warn("pad: script APDU failed: {}", r.err().code);
      if (tap) drop_card();
      return fail(ref, pad_error_code::hardware, "chip error", out);
    }
    const bool ok = sw_of(r->view()) == 0x9000;
    if (sealing) {
      auto sealed = keys_->seal(r->view());
      if (!sealed) {
        spdlog::error("pad: sealing failed: {}", sealed.err().code);
        return fail(ref, pad_error_code::hardware, "DUKPT", out);
      }
      if (!result.first_item) result.first_item = sealed->item;
      used += 3 + sealed->sealed.size();
      result.sealed.emplace_back(sealed->sealed);
    } else {
      used += 3 + r->size();
      result.rapdus.push_back(std::move(*r));
    }
    if (!ok && m.stop == static_cast<std::uint8_t>(script_stop::first_error)) break;
  }
  if (tap && card_->chip) {
    card_->chip->power_off();
    card_->powered = false;  // the card left the field; its PAN stays for an online PIN
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_() - started).count();
  result.elapsed_ms = static_cast<std::uint32_t>(std::clamp<std::int64_t>(elapsed, 0, 0xFFFFFFFF));
  if (sealing) result.ksn = keys_->sealing_ksn();
  reply(ref, std::move(result), out);
}

}  // namespace eftd::padsim
