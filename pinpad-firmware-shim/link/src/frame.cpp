#include "eftd/pad/link/frame.hpp"

#include "eftd/pad/link/crc16.hpp"

namespace eftd::pad::link {

std::string_view to_string(frame_type t) noexcept {
  switch (t) {
    case frame_type::data:
      return "DATA";
    case frame_type::ack:
      return "ACK";
    case frame_type::nak:
      return "NAK";
    case frame_type::reset:
      return "RESET";
  }
  return "?";
}

bool is_frame_type(std::uint8_t b) noexcept {
  switch (static_cast<frame_type>(b)) {
    case frame_type::data:
    case frame_type::ack:
    case frame_type::nak:
    case frame_type::reset:
      return true;
  }
  return false;
}

bool payload_length_valid(frame_type t, std::size_t len) noexcept {
  // Tight per-type lengths make noise that happens to sit between STX and ETX fail even before
  // the CRC is checked.
  switch (t) {
    case frame_type::data:
      return len >= 1 && len <= max_payload;
    case frame_type::ack:
      return len == 0 || len == reset_ack_size;
    case frame_type::nak:
      return len == 0;
    case frame_type::reset:
      return len == nonce_size;
  }
  return false;
}

namespace {

bool needs_escape(std::uint8_t b) noexcept {
  return b == stx || b == etx || b == dle;
}

void put_escaped(bytes& out, std::uint8_t b) {
  if (needs_escape(b)) {
    out.push_back(dle);
    out.push_back(static_cast<std::uint8_t>(b ^ escape_xor));
  } else {
    out.push_back(b);
  }
}

}  // namespace

status append_frame(bytes& out, frame_type type, std::uint8_t seq, byte_view payload) {
  if (!is_frame_type(static_cast<std::uint8_t>(type)) || !payload_length_valid(type, payload.size()))
    return make_error("link.bad_frame", "payload of " + std::to_string(payload.size()) +
                                            " bytes is not allowed in a " + std::string(to_string(type)) +
                                            " frame");
  const std::uint8_t header[header_size] = {seq, static_cast<std::uint8_t>(type),
                                            static_cast<std::uint8_t>(payload.size() >> 8),
                                            static_cast<std::uint8_t>(payload.size() & 0xFF)};
  const std::uint16_t crc = crc16_ccitt_false(payload, crc16_ccitt_false(header));
  out.reserve(out.size() + min_frame_size + payload.size() + payload.size() / 64);
  out.push_back(stx);
  for (std::uint8_t b : header) put_escaped(out, b);
  for (std::uint8_t b : payload) put_escaped(out, b);
  put_escaped(out, static_cast<std::uint8_t>(crc >> 8));
  put_escaped(out, static_cast<std::uint8_t>(crc & 0xFF));
  out.push_back(etx);
  return {};
}

result<bytes> encode_frame(const frame& f) {
  bytes out;
  if (auto st = append_frame(out, f.type, f.seq, f.payload); !st) return st.err();
  return out;
}

void frame_parser::feed(byte_view in) {
  buf_.insert(buf_.end(), in.begin(), in.end());
}

void frame_parser::clear() noexcept {
  buf_.clear();
  pos_ = 0;
  in_frame_ = false;
  escape_ = false;
  bad_escape_ = false;
  cand_.clear();
  cand_raw_ = 0;
}

void frame_parser::open_candidate() noexcept {
  in_frame_ = true;
  escape_ = false;
  bad_escape_ = false;
  cand_.clear();
  cand_raw_ = 1;
}

void frame_parser::abandon_candidate() noexcept {
  stats_.bytes_skipped += cand_raw_;
  in_frame_ = false;
  escape_ = false;
  bad_escape_ = false;
  cand_.clear();
  cand_raw_ = 0;
}

parse_status frame_parser::finish_candidate(frame& out) {
  // Called at the ETX that closes the candidate (the ETX is counted in cand_raw_).
  const bool plausible = cand_.size() >= 2 && is_frame_type(cand_[1]);
  bool ok = !bad_escape_ && cand_.size() >= header_size + crc_size && plausible;
  std::size_t len = 0;
  if (ok) {
    len = (static_cast<std::size_t>(cand_[2]) << 8) | cand_[3];
    ok = len == cand_.size() - header_size - crc_size &&
         payload_length_valid(static_cast<frame_type>(cand_[1]), len);
  }
  if (ok) {
    const std::size_t body = header_size + len;
    const auto got = static_cast<std::uint16_t>((cand_[body] << 8) | cand_[body + 1]);
    ok = got == crc16_ccitt_false(byte_view(cand_.data(), body));
  }
  if (ok) {
    out.type = static_cast<frame_type>(cand_[1]);
    out.seq = cand_[0];
    out.payload.assign(cand_.begin() + header_size,
                       cand_.begin() + static_cast<std::ptrdiff_t>(header_size + len));
    ++stats_.frames;
    in_frame_ = false;
    cand_.clear();
    cand_raw_ = 0;
    return parse_status::frame;
  }
  abandon_candidate();
  // Delimited and with a known type: most likely a real frame hit by noise (a damaged byte,
  // one inserted or lost). Without a known type it is noise that happened to hold STX..ETX.
  if (!plausible) return parse_status::need_more;
  ++stats_.crc_errors;
  return parse_status::bad_crc;
}

parse_status frame_parser::next(frame& out) {
  while (pos_ < buf_.size()) {
    const std::uint8_t b = buf_[pos_++];
    if (!in_frame_) {
      // Hunt: everything outside STX..ETX is noise.
      if (b == stx)
        open_candidate();
      else
        ++stats_.bytes_skipped;
      continue;
    }
    if (b == stx) {
      // A frame never contains a bare STX: the candidate was cut short (lost bytes) or was
      // started by noise. Either way the real frame starts here.
      abandon_candidate();
      open_candidate();
      continue;
    }
    ++cand_raw_;
    if (b == etx) {
      if (escape_) bad_escape_ = true;
      const parse_status st = finish_candidate(out);
      if (st != parse_status::need_more) return st;
      continue;
    }
    std::uint8_t v = b;
    if (escape_) {
      escape_ = false;
      v = static_cast<std::uint8_t>(b ^ escape_xor);
      if (!needs_escape(v)) bad_escape_ = true;
    } else if (b == dle) {
      escape_ = true;
      continue;
    }
    if (cand_.size() == max_content) {
      // Longer than any frame: noise, or a frame whose ETX was lost. Hunt for the next STX.
      abandon_candidate();
      continue;
    }
    cand_.push_back(v);
  }
  buf_.clear();
  pos_ = 0;
  return parse_status::need_more;
}

}  // namespace eftd::pad::link
