#include "eftd/core/card.hpp"

#include <algorithm>

#include "eftd/core/crypto.hpp"

namespace eftd {

namespace {

constexpr std::size_t pan_min = 12;
constexpr std::size_t pan_max = 19;
// ISO/IEC 7813: track 2 holds at most 40 characters including start sentinel, end sentinel
// and LRC, which leaves 37 for PAN, separator, expiry, service code and discretionary data.
constexpr std::size_t track2_max_chars = 37;
// Tag 57 is "b ..19" in EMV Book 3 Annex A: 37 digits plus 'D' = 38 nibbles.
constexpr std::size_t tag57_max_bytes = 19;

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view as_chars(byte_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool dbl = false;
  // From the right: every second digit is doubled, and 2*d > 9 contributes 2*d - 9.
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (*it < '0' || *it > '9') return false;
    int d = *it - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

result<pan> pan::parse(std::string_view digits) {
  if (digits.size() < pan_min || digits.size() > pan_max)
    return make_error("pan.bad_length", "PAN must have 12 to 19 digits");
  if (!all_digits(digits)) return make_error("pan.not_numeric", "PAN must contain only digits");
  return pan{secure_bytes{as_bytes(digits)}};
}

std::string_view pan::reveal() const noexcept {
  return as_chars(digits_.view());
}

std::string pan::masked() const {
  const std::string_view d = reveal();
  const std::size_t n = d.size();
  // n >= 12, so n - 8 >= 4: shown head + tail never exceeds n - 4.
  const std::size_t head = std::min<std::size_t>(6, n - 8);
  std::string out(d.substr(0, head));
  out.append(n - head - 4, '*');
  out.append(d.substr(n - 4));
  return out;
}

std::string pan::bin(std::size_t n) const {
  return std::string(reveal().substr(0, std::min<std::size_t>(n, 8)));
}

std::string pan::last4() const {
  return std::string(reveal().substr(length() - 4));
}

std::string pan_search_hash(const pan& p, byte_view hmac_key) {
  std::string h = to_hex(hmac_sha256(hmac_key, as_bytes(p.reveal())));
  std::transform(h.begin(), h.end(), h.begin(),
                 [](char c) { return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c; });
  return h;
}

result<track2> track2::parse_body(std::string_view body) {
  if (body.empty()) return make_error("track2.empty", "track 2 is empty");
  if (body.size() > track2_max_chars) return make_error("track2.too_long", "track 2 exceeds 37 characters");
  const auto sep = body.find_first_of("=D");
  if (sep == std::string_view::npos)
    return make_error("track2.no_separator", "track 2 has no field separator");
  auto p = pan::parse(body.substr(0, sep));
  if (!p) return make_error("track2.bad_pan", "track 2 PAN: " + p.err().message);
  const std::string_view rest = body.substr(sep + 1);
  if (!all_digits(rest)) return make_error("track2.bad_char", "track 2 has a non-digit after the separator");
  if (rest.size() < 7) return make_error("track2.short", "track 2 lacks expiry date or service code");
  return track2{std::move(p).value(), std::string(rest.substr(0, 4)), std::string(rest.substr(4, 3)),
                secure_bytes{as_bytes(rest.substr(7))}};
}

result<track2> track2::parse(std::string_view ascii) {
  std::string_view s = ascii;
  if (!s.empty() && s.front() == ';') s.remove_prefix(1);
  if (!s.empty() && s.back() == '?') s.remove_suffix(1);
  return parse_body(s);
}

result<track2> track2::parse_tag57(byte_view bcd) {
  if (bcd.empty()) return make_error("track2.empty", "tag 57 is empty");
  if (bcd.size() > tag57_max_bytes) return make_error("track2.too_long", "tag 57 exceeds 19 bytes");
  secure_bytes text(bcd.size() * 2);
  auto out = text.mutable_view();
  std::size_t n = 0;
  const std::size_t nibbles = bcd.size() * 2;
  for (std::size_t i = 0; i < nibbles; ++i) {
    const std::uint8_t nib = (i % 2 == 0) ? (bcd[i / 2] >> 4) : (bcd[i / 2] & 0x0F);
    if (nib <= 9) {
      out[n++] = static_cast<std::uint8_t>('0' + nib);
    } else if (nib == 0xD) {
      out[n++] = 'D';
    } else if (nib == 0xF) {
      // Only the very last nibble may be padding, and only when the digits are odd in number.
      if (i != nibbles - 1) return make_error("track2.bad_padding", "tag 57 has an F nibble before the end");
    } else {
      return make_error("track2.bad_char", "tag 57 has a nibble that is neither digit, D nor F");
    }
  }
  return parse_body(as_chars(text.view().first(n)));
}

std::string_view track2::reveal_discretionary() const noexcept {
  return as_chars(discretionary_.view());
}

secure_bytes track2::encode_ascii() const {
  const std::string_view p = pan_.reveal();
  const std::string_view d = reveal_discretionary();
  secure_bytes out(p.size() + 1 + expiry_.size() + service_.size() + d.size());
  auto o = out.mutable_view();
  std::size_t i = 0;
  const auto put = [&](std::string_view s) {
    for (char c : s) o[i++] = static_cast<std::uint8_t>(c);
  };
  put(p);
  put("=");
  put(expiry_);
  put(service_);
  put(d);
  return out;
}

secure_bytes track2::encode_tag57() const {
  secure_bytes text = encode_ascii();
  const auto t = text.view();
  secure_bytes out((t.size() + 1) / 2);
  auto o = out.mutable_view();
  for (std::size_t i = 0; i < t.size(); ++i) {
    const std::uint8_t nib = t[i] == '=' ? 0xD : static_cast<std::uint8_t>(t[i] - '0');
    o[i / 2] |= (i % 2 == 0) ? static_cast<std::uint8_t>(nib << 4) : nib;
  }
  if (t.size() % 2 != 0) o.back() |= 0x0F;
  return out;
}

}  // namespace eftd
