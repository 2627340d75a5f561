#include "eftd/padsim/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace eftd::padsim {

using namespace eftd::pad;

pad_session::pad_session(pad_identity id, display_device& display, card_reader& reader)
    : id_(std::move(id)), display_(display), reader_(reader) {}

bytes pad_session::start() {
  frames_.reset();
  inbound_.reset();
  outbound_ = seq_counter{};
  accepted_ = false;
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
  session_output out;
  frames_.feed(data);
  for (;;) {
    auto next = frames_.next();
    if (!next) return next.err();
    if (!next->has_value()) break;
    if (auto st = on_frame(**next, out); !st) return st.err();
  }
  return out;
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

  const std::uint32_t ref = env->seq;
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, display>) {
          display_.show(m);
          reply(ref, ack{}, out);
          out.events.push_back(session_event::displayed);
        } else if constexpr (std::is_same_v<T, read_card>) {
          auto r = reader_.read(m);
          if (auto* card = std::get_if<presented_card>(&r)) {
            reply(ref, card_read{card->mode, std::move(card->track2), card->fallback}, out);
          } else {
            auto& f = std::get<reader_failure>(r);
            reply(ref, pad_error{static_cast<std::uint16_t>(f.code), std::move(f.text)}, out);
          }
          out.events.push_back(session_event::card_answered);
        } else if constexpr (std::is_same_v<T, cancel>) {
          reader_.cancel();
          reply(ref, ack{}, out);
          out.events.push_back(session_event::cancelled);
        } else if constexpr (std::is_same_v<T, ping>) {
          reply(ref, pong{}, out);
        } else {
          // hello_ack twice, or a pad -> server message sent to the pad.
          reply(ref,
                pad_error{static_cast<std::uint16_t>(pad_error_code::bad_request),
                          fmt::format("{} is not a command", type_name(type_of(m)))},
                out);
        }
      },
      env->body);
  return {};
}

}  // namespace eftd::padsim
