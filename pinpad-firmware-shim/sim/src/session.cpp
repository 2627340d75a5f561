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
  if (std::holds_alternative<remove_card>(p.command)) {
    if (!reader_.card_present(now_)) return finish(ack{}, out);
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
          reply(ref,
                pad_status{id_.model, id_.serial, id_.firmware, capability_bits(id_.capabilities), id_.ksns,
                           id_.dukpt_counters, id_.languages},
                out);
        } else if constexpr (std::is_same_v<T, cancel>) {
          if (pending_) finish(pad_error{code_of(pad_error_code::cancelled), "cancelled"}, out);
          reader_.cancel();
          reply(ref, ack{}, out);
          out.events.push_back(session_event::cancelled);
        } else if constexpr (std::is_same_v<T, reset>) {
          if (pending_) finish(pad_error{code_of(pad_error_code::cancelled), "reset"}, out);
          reader_.cancel();
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
          auto r = reader_.read(m);
          if (auto* card = std::get_if<presented_card>(&r)) {
            reply(ref, card_read{card->mode, std::move(card->track2), card->fallback}, out);
          } else {
            auto& f = std::get<reader_failure>(r);
            reply(ref, pad_error{code_of(f.code), std::move(f.text)}, out);
          }
          out.events.push_back(session_event::card_answered);
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

}  // namespace eftd::padsim
