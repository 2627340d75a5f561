#include "eftd/acq/framing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "eftd/core/secure.hpp"

namespace eftd::acq {

namespace {

std::size_t header_capacity(length_header h) {
  switch (h) {
    case length_header::binary2:
    case length_header::binary2_tpdu:
      return 0xffff;
    case length_header::ascii4:
    case length_header::bcd2:
      return 9999;
  }
  return 0;
}

}  // namespace

void tpdu_header::encode(bytes& out) const {
  out.push_back(id);
  out.push_back(static_cast<std::uint8_t>(destination >> 8));
  out.push_back(static_cast<std::uint8_t>(destination & 0xff));
  out.push_back(static_cast<std::uint8_t>(source >> 8));
  out.push_back(static_cast<std::uint8_t>(source & 0xff));
}

result<tpdu_header> tpdu_header::decode(byte_view in) {
  if (in.size() < size)
    return make_error("frame.bad_tpdu", fmt::format("TPDU needs {} bytes, have {}", size, in.size()));
  if (in[0] != transaction_id)
    return make_error("frame.bad_tpdu", fmt::format("TPDU ID is 0x{:02X}, expected 0x60", in[0]));
  tpdu_header t;
  t.id = in[0];
  t.destination = static_cast<std::uint16_t>((in[1] << 8) | in[2]);
  t.source = static_cast<std::uint16_t>((in[3] << 8) | in[4]);
  return t;
}

std::string tpdu_header::to_string() const {
  return fmt::format("{:02X} {:04X} {:04X}", id, destination, source);
}

result<frame_options> parse_framing(std::string_view name) {
  constexpr std::string_view tpdu_suffix = "+tpdu";
  frame_options opts;
  std::string_view header = name;
  if (header.size() > tpdu_suffix.size() && header.ends_with(tpdu_suffix)) {
    header.remove_suffix(tpdu_suffix.size());
    opts.tpdu = tpdu_header{};
  }
  auto h = parse_length_header(header);
  if (!h || *h == length_header::binary2_tpdu)
    return make_error("frame.bad_name",
                      "framing must be binary2, ascii4 or bcd2, optionally followed by +tpdu");
  opts.header = *h;
  return opts;
}

std::string framing_name(const frame_options& opts) {
  std::string out{to_string(opts.header)};
  if (opts.tpdu) out += "+tpdu";
  return out;
}

std::optional<length_header> parse_length_header(std::string_view name) {
  if (name == "binary2") return length_header::binary2;
  if (name == "ascii4") return length_header::ascii4;
  if (name == "bcd2") return length_header::bcd2;
  if (name == "binary2_tpdu") return length_header::binary2_tpdu;
  return std::nullopt;
}

std::string_view to_string(length_header h) {
  switch (h) {
    case length_header::binary2:
      return "binary2";
    case length_header::ascii4:
      return "ascii4";
    case length_header::bcd2:
      return "bcd2";
    case length_header::binary2_tpdu:
      return "binary2_tpdu";
  }
  return "?";
}

result<frame_codec> frame_codec::create(frame_options opts) {
  if (opts.header == length_header::binary2_tpdu)
    return make_error("frame.unsupported_header",
                      "binary2_tpdu is not a length header: use binary2 with a TPDU (binary2+tpdu)");
  return frame_codec{opts.header, std::min(opts.max_payload, header_capacity(opts.header)), opts.tpdu};
}

std::size_t frame_codec::header_size() const noexcept {
  switch (header_) {
    case length_header::binary2:
    case length_header::bcd2:
      return 2;
    case length_header::ascii4:
      return 4;
    case length_header::binary2_tpdu:
      return 2;
  }
  return 0;
}

result<bytes> frame_codec::encode(byte_view message) const {
  return encode_with(message, tpdu_ ? &*tpdu_ : nullptr);
}

result<bytes> frame_codec::encode(byte_view message, const tpdu_header& tpdu) const {
  if (!tpdu_) return make_error("frame.bad_tpdu", "this framing carries no TPDU");
  return encode_with(message, &tpdu);
}

result<bytes> frame_codec::encode_with(byte_view message, const tpdu_header* tpdu) const {
  // A keep-alive is the bare zero length: a TPDU in it would make it a (broken) message.
  if (message.empty()) tpdu = nullptr;
  const std::size_t n = message.size() + (tpdu ? tpdu_header::size : 0);
  if (n > max_payload_)
    return make_error("frame.too_large", fmt::format("payload of {} bytes exceeds {}", n, max_payload_));
  bytes out;
  out.reserve(header_size() + n);
  switch (header_) {
    case length_header::binary2:
    case length_header::binary2_tpdu:
      out.push_back(static_cast<std::uint8_t>(n >> 8));
      out.push_back(static_cast<std::uint8_t>(n & 0xff));
      break;
    case length_header::ascii4: {
      const auto text = fmt::format("{:04}", n);
      out.insert(out.end(), text.begin(), text.end());
      break;
    }
    case length_header::bcd2:
      out.push_back(static_cast<std::uint8_t>(((n / 1000) << 4) | ((n / 100) % 10)));
      out.push_back(static_cast<std::uint8_t>((((n / 10) % 10) << 4) | (n % 10)));
      break;
  }
  if (tpdu) tpdu->encode(out);
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

bytes frame_codec::keep_alive() const {
  auto frame = encode({});
  return std::move(frame).value();
}

result<std::size_t> frame_codec::decode_length(byte_view h) const {
  std::size_t n = 0;
  switch (header_) {
    case length_header::binary2:
    case length_header::binary2_tpdu:
      n = (std::size_t{h[0]} << 8) | h[1];
      break;
    case length_header::ascii4:
      for (std::size_t i = 0; i < 4; ++i) {
        if (h[i] < '0' || h[i] > '9')
          return make_error("frame.bad_header", "length header is not 4 ASCII digits");
        n = n * 10 + (h[i] - '0');
      }
      break;
    case length_header::bcd2:
      for (std::size_t i = 0; i < 2; ++i) {
        const unsigned hi = h[i] >> 4, lo = h[i] & 0x0f;
        if (hi > 9 || lo > 9) return make_error("frame.bad_header", "length header is not 4 BCD digits");
        n = n * 100 + hi * 10 + lo;
      }
      break;
  }
  if (n > max_payload_)
    return make_error("frame.too_large", fmt::format("frame of {} bytes exceeds {}", n, max_payload_));
  return n;
}

frame_reader::~frame_reader() {
  if (!buf_.empty()) secure_wipe(buf_.data(), buf_.size());
}

void frame_reader::feed(byte_view data) {
  if (failed_ || data.empty()) return;
  compact();
  if (buf_.capacity() < buf_.size() + data.size()) {
    // Grow by hand so the old block is wiped before it is freed.
    bytes bigger;
    bigger.reserve(std::max(buf_.size() + data.size(), 2 * buf_.capacity()));
    bigger.assign(buf_.begin(), buf_.end());
    if (!buf_.empty()) secure_wipe(buf_.data(), buf_.size());
    buf_.swap(bigger);
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

void frame_reader::compact() {
  if (start_ == 0) return;
  const std::size_t live = buf_.size() - start_;
  if (live != 0) std::memmove(buf_.data(), buf_.data() + start_, live);
  secure_wipe(buf_.data() + live, start_);
  buf_.resize(live);
  start_ = 0;
}

result<std::optional<bytes>> frame_reader::next() {
  if (failed_) return *failed_;
  const std::size_t hsize = codec_.header_size();
  for (;;) {
    if (buffered() < hsize) return std::optional<bytes>{};
    auto len = codec_.decode_length(byte_view{buf_}.subspan(start_, hsize));
    if (!len) {
      failed_ = len.err();
      return len.err();
    }
    if (*len == 0) {
      // Keep-alive: consumed and counted, never surfaced and never answered.
      start_ += hsize;
      ++keep_alives_;
      continue;
    }
    const bool has_tpdu = codec_.tpdu().has_value();
    if (has_tpdu && *len <= tpdu_header::size) {
      // Decided from the header alone: waiting for the body would not make it valid.
      failed_ = make_error("frame.bad_tpdu",
                           fmt::format("frame of {} bytes cannot hold a TPDU and a message", *len));
      return *failed_;
    }
    if (buffered() < hsize + *len) return std::optional<bytes>{};
    std::size_t skip = 0;
    if (has_tpdu) {
      auto t = tpdu_header::decode(byte_view{buf_}.subspan(start_ + hsize, tpdu_header::size));
      if (!t) {
        failed_ = t.err();
        return t.err();
      }
      last_tpdu_ = *t;
      skip = tpdu_header::size;
    }
    const auto first = buf_.begin() + static_cast<std::ptrdiff_t>(start_ + hsize + skip);
    bytes payload(first, first + static_cast<std::ptrdiff_t>(*len - skip));
    start_ += hsize + *len;
    if (start_ == buf_.size()) compact();
    return std::optional<bytes>{std::move(payload)};
  }
}

}  // namespace eftd::acq
