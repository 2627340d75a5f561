#include "eftd/core/pin_block.hpp"

#include <algorithm>
#include <array>

namespace eftd {

namespace {

constexpr std::size_t pin_min = 4;
constexpr std::size_t pin_max = 12;
constexpr std::size_t tdes_block_nibbles = 16;
constexpr std::size_t iso4_block = 16;

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint8_t nibble_at(byte_view b, std::size_t i) {
  const std::uint8_t v = b[i / 2];
  return i % 2 == 0 ? static_cast<std::uint8_t>(v >> 4) : static_cast<std::uint8_t>(v & 0x0F);
}

void set_nibble(std::span<std::uint8_t> b, std::size_t i, std::uint8_t v) {
  if (i % 2 == 0)
    b[i / 2] = static_cast<std::uint8_t>((b[i / 2] & 0x0F) | (v << 4));
  else
    b[i / 2] = static_cast<std::uint8_t>((b[i / 2] & 0xF0) | (v & 0x0F));
}

error bad_pan(const char* what) {
  return make_error("pin_block.bad_pan", what);
}

// Formats 0 and 3: 0000 followed by the 12 rightmost PAN digits excluding the check digit.
result<secure_bytes> iso0_pan_field(std::string_view pan) {
  if (pan.size() < 13 || pan.size() > 19)
    return bad_pan("PAN must have 13 to 19 digits for PIN block formats 0 and 3");
  if (!all_digits(pan)) return bad_pan("PAN must contain only digits");
  secure_bytes field(8);
  const std::string_view digits = pan.substr(pan.size() - 13, 12);
  for (std::size_t i = 0; i < 12; ++i)
    set_nibble(field.mutable_view(), 4 + i, static_cast<std::uint8_t>(digits[i] - '0'));
  return field;
}

// Nibbles 0..(2+N) of every format: control, length, PIN digits.
void put_pin(std::span<std::uint8_t> block, std::uint8_t control, const pin& p) {
  set_nibble(block, 0, control);
  set_nibble(block, 1, static_cast<std::uint8_t>(p.length()));
  const std::string_view d = p.reveal();
  for (std::size_t i = 0; i < d.size(); ++i) set_nibble(block, 2 + i, static_cast<std::uint8_t>(d[i] - '0'));
}

// Reads control, length and digits from the first 16 nibbles; the fill rule is the caller's.
result<pin> take_pin(byte_view block, std::uint8_t control, std::size_t& pin_len) {
  if (nibble_at(block, 0) != control)
    return make_error("pin_block.bad_control", "PIN block control field does not match the format");
  pin_len = nibble_at(block, 1);
  if (pin_len < pin_min || pin_len > pin_max)
    return make_error("pin_block.bad_pin_length", "PIN length in the PIN block is not 4 to 12");
  secure_bytes digits(pin_len);
  for (std::size_t i = 0; i < pin_len; ++i) {
    const std::uint8_t n = nibble_at(block, 2 + i);
    if (n > 9) return make_error("pin_block.bad_pin_digit", "PIN block holds a non-decimal PIN digit");
    digits.mutable_view()[i] = static_cast<std::uint8_t>('0' + n);
  }
  const std::string_view text{reinterpret_cast<const char*>(digits.view().data()), digits.size()};
  return pin::parse(text);
}

bool fill_ok(byte_view block, std::size_t from, std::uint8_t lo, std::uint8_t hi) {
  for (std::size_t i = from; i < tdes_block_nibbles; ++i) {
    const std::uint8_t n = nibble_at(block, i);
    if (n < lo || n > hi) return false;
  }
  return true;
}

}  // namespace

result<pin> pin::parse(std::string_view digits) {
  if (digits.size() < pin_min || digits.size() > pin_max)
    return make_error("pin.bad_length", "PIN must have 4 to 12 digits");
  if (!all_digits(digits)) return make_error("pin.not_numeric", "PIN must contain only digits");
  return pin{secure_bytes{as_bytes(digits)}};
}

std::string_view pin::reveal() const noexcept {
  return {reinterpret_cast<const char*>(digits_.view().data()), digits_.size()};
}

result<secure_bytes> build_pin_block(pin_block_format format, const pin& p, std::string_view pan,
                                     random_source& rng) {
  const std::size_t fill_from = 2 + p.length();
  switch (format) {
    case pin_block_format::iso0:
    case pin_block_format::iso3: {
      auto pan_field = iso0_pan_field(pan);
      if (!pan_field) return pan_field.err();
      secure_bytes block(8);
      put_pin(block.mutable_view(), static_cast<std::uint8_t>(format), p);
      if (format == pin_block_format::iso0) {
        for (std::size_t i = fill_from; i < tdes_block_nibbles; ++i) set_nibble(block.mutable_view(), i, 0xF);
      } else {
        // Fill digits A..F. The modulo bias (256 % 6) does not matter: the fill only has to
        // make equal PINs give different blocks, not to be uniform.
        std::array<std::uint8_t, tdes_block_nibbles> r{};
        rng.fill(r);
        for (std::size_t i = fill_from; i < tdes_block_nibbles; ++i)
          set_nibble(block.mutable_view(), i, static_cast<std::uint8_t>(0xA + r[i] % 6));
        secure_wipe(r.data(), r.size());
      }
      xor_into(block.mutable_view(), pan_field->view());
      return block;
    }
    case pin_block_format::iso2: {
      secure_bytes block(8);
      put_pin(block.mutable_view(), 2, p);
      for (std::size_t i = fill_from; i < tdes_block_nibbles; ++i) set_nibble(block.mutable_view(), i, 0xF);
      return block;
    }
    case pin_block_format::iso1: {
      secure_bytes block(8);
      put_pin(block.mutable_view(), 1, p);
      std::array<std::uint8_t, tdes_block_nibbles> r{};
      rng.fill(r);
      for (std::size_t i = fill_from; i < tdes_block_nibbles; ++i)
        set_nibble(block.mutable_view(), i, static_cast<std::uint8_t>(r[i] & 0x0F));
      secure_wipe(r.data(), r.size());
      return block;
    }
    case pin_block_format::iso4: {
      secure_bytes field(iso4_block);
      put_pin(field.mutable_view(), 4, p);
      for (std::size_t i = fill_from; i < tdes_block_nibbles; ++i) set_nibble(field.mutable_view(), i, 0xA);
      rng.fill(field.mutable_view().subspan(8));
      return field;
    }
  }
  return make_error("pin_block.bad_control", "unsupported PIN block format");
}

result<pin> decode_pin_block(pin_block_format format, byte_view clear_block, std::string_view pan) {
  const std::size_t want = format == pin_block_format::iso4 ? iso4_block : 8;
  if (clear_block.size() != want)
    return make_error("pin_block.bad_length", format == pin_block_format::iso4
                                                  ? "format 4 PIN field must be 16 bytes"
                                                  : "PIN block must be 8 bytes");
  secure_bytes block{clear_block};
  if (format == pin_block_format::iso0 || format == pin_block_format::iso3) {
    auto pan_field = iso0_pan_field(pan);
    if (!pan_field) return pan_field.err();
    xor_into(block.mutable_view(), pan_field->view());
  }
  std::size_t len = 0;
  auto p = take_pin(block.view(), static_cast<std::uint8_t>(format), len);
  if (!p) return p.err();
  bool ok = true;
  switch (format) {
    case pin_block_format::iso0:
    case pin_block_format::iso2:
      ok = fill_ok(block.view(), 2 + len, 0xF, 0xF);
      break;
    case pin_block_format::iso1:
      break;  // any fill
    case pin_block_format::iso3:
      ok = fill_ok(block.view(), 2 + len, 0xA, 0xF);
      break;
    case pin_block_format::iso4:
      ok = fill_ok(block.view(), 2 + len, 0xA, 0xA);
      break;
  }
  if (!ok) return make_error("pin_block.bad_fill", "PIN block fill digits are not valid for the format");
  return p;
}

result<bytes> iso4_pan_field(std::string_view pan) {
  if (pan.empty() || pan.size() > 19) return bad_pan("PAN must have 1 to 19 digits for PIN block format 4");
  if (!all_digits(pan)) return bad_pan("PAN must contain only digits");
  bytes field(iso4_block, 0);
  // M = number of PAN digits beyond 12; shorter PANs are right-aligned in 12 digits.
  const std::size_t m = pan.size() > 12 ? pan.size() - 12 : 0;
  set_nibble(field, 0, static_cast<std::uint8_t>(m));
  const std::size_t lead = pan.size() < 12 ? 12 - pan.size() : 0;
  for (std::size_t i = 0; i < pan.size(); ++i)
    set_nibble(field, 1 + lead + i, static_cast<std::uint8_t>(pan[i] - '0'));
  return field;
}

result<bytes> encipher_iso4_field(byte_view key, byte_view pin_field, std::string_view pan) {
  if (pin_field.size() != iso4_block)
    return make_error("pin_block.bad_length", "format 4 PIN field must be 16 bytes");
  auto pan_field = iso4_pan_field(pan);
  if (!pan_field) return pan_field.err();
  auto a = aes_ecb(cipher_op::encrypt, key, pin_field);
  if (!a) return a.err();
  xor_into(a->mutable_view(), *pan_field);
  auto c = aes_ecb(cipher_op::encrypt, key, a->view());
  if (!c) return c.err();
  return bytes(c->view().begin(), c->view().end());
}

result<secure_bytes> decipher_iso4_field(byte_view key, byte_view block, std::string_view pan) {
  if (block.size() != iso4_block)
    return make_error("pin_block.bad_length", "format 4 PIN block must be 16 bytes");
  auto pan_field = iso4_pan_field(pan);
  if (!pan_field) return pan_field.err();
  auto b = aes_ecb(cipher_op::decrypt, key, block);
  if (!b) return b.err();
  xor_into(b->mutable_view(), *pan_field);
  return aes_ecb(cipher_op::decrypt, key, b->view());
}

result<bytes> encipher_iso4(byte_view key, const pin& p, std::string_view pan, random_source& rng) {
  auto field = build_pin_block(pin_block_format::iso4, p, pan, rng);
  if (!field) return field.err();
  return encipher_iso4_field(key, field->view(), pan);
}

result<pin> decipher_iso4(byte_view key, byte_view block, std::string_view pan) {
  auto field = decipher_iso4_field(key, block, pan);
  if (!field) return field.err();
  return decode_pin_block(pin_block_format::iso4, field->view(), pan);
}

}  // namespace eftd
