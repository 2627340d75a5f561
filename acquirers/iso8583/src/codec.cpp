#include "eftd/acq/codec.hpp"

#include <fmt/format.h>

#include <array>

namespace eftd::acq {

namespace {

constexpr std::size_t mti_size = 4;
constexpr std::size_t bitmap_bytes = 8;

bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool all_digits(std::string_view v) {
  for (unsigned char c : v)
    if (!is_digit(c)) return false;
  return true;
}

bool valid_content(content_type c, std::string_view v) {
  switch (c) {
    case content_type::n:
      return all_digits(v);
    case content_type::an:
      for (unsigned char ch : v)
        if (!is_digit(ch) && !is_alpha(ch) && ch != ' ') return false;
      return true;
    case content_type::ans:
      for (unsigned char ch : v)
        if (ch < 0x20 || ch > 0x7e) return false;
      return true;
    case content_type::b:
      return true;
    case content_type::z:
      // Track 2 as characters: PAN digits, the field separator ('=' on ASCII tracks, 'D' when
      // the track came from chip tag 57), then expiry, service code and discretionary digits.
      for (unsigned char ch : v)
        if (!is_digit(ch) && ch != '=' && ch != 'D') return false;
      return true;
    case content_type::xn:
      return !v.empty() && (v[0] == 'C' || v[0] == 'D') && all_digits(v.substr(1));
  }
  return false;
}

std::string_view content_label(content_type c) {
  switch (c) {
    case content_type::n:
      return "numeric (n)";
    case content_type::an:
      return "alphanumeric (an)";
    case content_type::ans:
      return "printable (ans)";
    case content_type::b:
      return "binary (b)";
    case content_type::z:
      return "track 2 (z)";
    case content_type::xn:
      return "signed amount (xn)";
  }
  return "?";
}

bool implemented(encoding e) {
  return e == encoding::ascii || e == encoding::binary;
}

std::string_view encoding_label(encoding e) {
  switch (e) {
    case encoding::ascii:
      return "ASCII";
    case encoding::binary:
      return "binary";
    case encoding::bcd:
      return "BCD";
    case encoding::ebcdic:
      return "EBCDIC";
  }
  return "?";
}

// Digits in the length prefix: LL = up to 99, LLL = up to 999.
std::size_t prefix_digits(length_type l) {
  return l == length_type::llvar ? 2 : 3;
}

// Bytes the prefix takes on the wire for the implemented encodings. A binary LL prefix is
// one byte (0..255 >= 99), a binary LLL prefix two bytes, big-endian.
std::size_t prefix_wire_size(const field_spec& f) {
  const std::size_t digits = prefix_digits(f.length);
  return f.prefix_encoding == encoding::binary ? digits - 1 : digits;
}

// Bytes a value of `units` characters/bytes takes on the wire (ASCII and binary: 1:1).
// BCD will be (units + 1) / 2 here.
std::size_t value_wire_size(const field_spec&, std::size_t units) {
  return units;
}

error field_error(const field_spec& f, std::string code, std::string_view what) {
  return make_error(std::move(code), fmt::format("field {}: {}", f.number, what));
}

status check_encodings(const field_spec& f) {
  if (!implemented(f.value_encoding))
    return field_error(f, "iso8583.unsupported_encoding",
                       fmt::format("{} value encoding is not implemented", encoding_label(f.value_encoding)));
  if (f.length != length_type::fixed && !implemented(f.prefix_encoding))
    return field_error(f, "iso8583.unsupported_encoding",
                       fmt::format("{} length prefix is not implemented", encoding_label(f.prefix_encoding)));
  return {};
}

void encode_prefix(const field_spec& f, std::size_t units, bytes& out) {
  const std::size_t digits = prefix_digits(f.length);
  if (f.prefix_encoding == encoding::binary) {
    if (digits == 3) out.push_back(static_cast<std::uint8_t>(units >> 8));
    out.push_back(static_cast<std::uint8_t>(units & 0xff));
    return;
  }
  const auto text = fmt::format("{:0{}}", units, digits);
  out.insert(out.end(), text.begin(), text.end());
}

struct bitmap {
  std::array<std::uint8_t, 2 * bitmap_bytes> bits{};
  bool test(int field) const {
    const int i = field - 1;
    return (bits[static_cast<std::size_t>(i / 8)] & (0x80 >> (i % 8))) != 0;
  }
  void set(int field) {
    const int i = field - 1;
    bits[static_cast<std::size_t>(i / 8)] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
  }
};

void encode_bitmap(const dialect& d, const std::uint8_t* bits, bytes& out) {
  if (d.bitmap == bitmap_encoding::binary) {
    out.insert(out.end(), bits, bits + bitmap_bytes);
  } else {
    const auto hex = to_hex(byte_view{bits, bitmap_bytes});
    out.insert(out.end(), hex.begin(), hex.end());
  }
}

std::size_t bitmap_wire_size(const dialect& d) {
  return d.bitmap == bitmap_encoding::binary ? bitmap_bytes : 2 * bitmap_bytes;
}

// Decodes one 64-bit bitmap at data[pos] into bits[0..8).
status decode_bitmap(const dialect& d, byte_view data, std::size_t pos, std::uint8_t* bits,
                     std::string_view which) {
  const std::size_t need = bitmap_wire_size(d);
  const std::size_t have = data.size() - pos;
  if (have < need)
    return make_error("iso8583.truncated_bitmap",
                      fmt::format("{} bitmap: need {} bytes, have {}", which, need, have));
  if (d.bitmap == bitmap_encoding::binary) {
    for (std::size_t i = 0; i < bitmap_bytes; ++i) bits[i] = data[pos + i];
    return {};
  }
  const std::string_view hex{reinterpret_cast<const char*>(data.data() + pos), need};
  auto raw = from_hex(hex);
  if (!raw) return make_error("iso8583.bad_bitmap", fmt::format("{} bitmap: not 16 hex digits", which));
  for (std::size_t i = 0; i < bitmap_bytes; ++i) bits[i] = (*raw)[i];
  return {};
}

}  // namespace

status pack_field(const field_spec& f, std::string_view value, bytes& out) {
  if (auto st = check_encodings(f); !st) return st;
  if (!valid_content(f.content, value))
    return field_error(f, "iso8583.bad_content", fmt::format("value is not {}", content_label(f.content)));
  if (value.size() > f.size)
    return field_error(f, "iso8583.field_too_long",
                       fmt::format("length {} exceeds {}", value.size(), f.size));

  if (f.length == length_type::fixed) {
    const std::size_t fill = f.size - value.size();
    if (fill != 0 && f.pad == padding::none)
      return field_error(f, "iso8583.bad_length",
                         fmt::format("length {}, expected {}", value.size(), f.size));
    if (f.pad == padding::left_zero) out.insert(out.end(), fill, '0');
    out.insert(out.end(), value.begin(), value.end());
    if (f.pad == padding::right_space) out.insert(out.end(), fill, ' ');
    return {};
  }
  encode_prefix(f, value.size(), out);
  out.insert(out.end(), value.begin(), value.end());
  return {};
}

result<std::size_t> unpack_field(const field_spec& f, byte_view in, std::string& value) {
  if (auto st = check_encodings(f); !st) return st.err();
  std::size_t pos = 0;
  std::size_t units = f.size;
  if (f.length != length_type::fixed) {
    const std::size_t psize = prefix_wire_size(f);
    if (in.size() < psize)
      return field_error(f, "iso8583.truncated_field",
                         fmt::format("length prefix needs {} bytes, have {}", psize, in.size()));
    units = 0;
    if (f.prefix_encoding == encoding::binary) {
      for (std::size_t i = 0; i < psize; ++i) units = (units << 8) | in[i];
    } else {
      for (std::size_t i = 0; i < psize; ++i) {
        if (!is_digit(in[i]))
          return field_error(f, "iso8583.bad_length_prefix",
                             fmt::format("length prefix is not {} ASCII digits", psize));
        units = units * 10 + (in[i] - '0');
      }
    }
    if (units > f.size)
      return field_error(f, "iso8583.field_too_long", fmt::format("length {} exceeds {}", units, f.size));
    pos = psize;
  }
  const std::size_t wire = value_wire_size(f, units);
  const std::size_t have = in.size() - pos;
  if (have < wire)
    return field_error(f, "iso8583.truncated_field", fmt::format("need {} bytes, have {}", wire, have));
  value.assign(reinterpret_cast<const char*>(in.data() + pos), wire);
  if (!valid_content(f.content, value)) {
    value.clear();
    return field_error(f, "iso8583.bad_content", fmt::format("value is not {}", content_label(f.content)));
  }
  return pos + wire;
}

result<bytes> pack(const dialect& d, const message& m) {
  if (d.mti_encoding != encoding::ascii)
    return make_error("iso8583.unsupported_encoding",
                      fmt::format("MTI: {} encoding is not implemented", encoding_label(d.mti_encoding)));
  if (m.mti().size() != mti_size || !all_digits(m.mti()))
    return make_error("iso8583.bad_mti", "MTI is not 4 decimal digits");

  bitmap bm;
  bool secondary = false;
  for (const auto& [no, value] : m.fields()) {
    if (no < 2 || no > max_field)
      return make_error("iso8583.bad_field_number", fmt::format("field {}: outside 2..128", no));
    if (!d.field(no))
      return make_error("iso8583.unknown_field",
                        fmt::format("field {}: not defined in dialect {}", no, d.name));
    bm.set(no);
    if (no > 64) secondary = true;
  }
  if (secondary) bm.set(1);

  bytes out;
  out.reserve(256);
  out.insert(out.end(), m.mti().begin(), m.mti().end());
  encode_bitmap(d, bm.bits.data(), out);
  if (secondary) encode_bitmap(d, bm.bits.data() + bitmap_bytes, out);
  for (const auto& [no, value] : m.fields()) {
    if (auto st = pack_field(*d.field(no), value, out); !st) return st.err();
  }
  return out;
}

result<message> unpack_prefix(const dialect& d, byte_view data, unpack_info& info) {
  info = unpack_info{};
  auto fail = [&](error e, std::size_t at, int field) -> result<message> {
    info.consumed = at;
    info.failed_field = field;
    return e;
  };
  if (d.mti_encoding != encoding::ascii)
    return fail(make_error("iso8583.unsupported_encoding", "MTI: encoding is not implemented"), 0, 0);
  if (data.size() < mti_size)
    return fail(make_error("iso8583.truncated_mti",
                           fmt::format("MTI: need {} bytes, have {}", mti_size, data.size())),
                0, 0);
  const std::string_view mti{reinterpret_cast<const char*>(data.data()), mti_size};
  if (!all_digits(mti)) return fail(make_error("iso8583.bad_mti", "MTI is not 4 decimal digits"), 0, 0);
  info.partial.set_mti(std::string{mti});
  std::size_t pos = mti_size;

  bitmap bm;
  if (auto st = decode_bitmap(d, data, pos, bm.bits.data(), "primary"); !st) return fail(st.err(), pos, 0);
  pos += bitmap_wire_size(d);
  int last = 64;
  if (bm.test(1)) {
    // An all-zero secondary bitmap is legal (some hosts always send one): fields 65..128
    // are simply absent.
    if (auto st = decode_bitmap(d, data, pos, bm.bits.data() + bitmap_bytes, "secondary"); !st)
      return fail(st.err(), pos, 0);
    pos += bitmap_wire_size(d);
    last = 128;
  }

  for (int no = 2; no <= last; ++no) {
    if (!bm.test(no)) continue;
    const field_spec* spec = d.field(no);
    if (!spec)
      return fail(
          make_error("iso8583.unknown_field",
                     fmt::format("field {}: set in the bitmap but not defined in dialect {}", no, d.name)),
          pos, no);
    std::string value;
    auto used = unpack_field(*spec, data.subspan(pos), value);
    if (!used) return fail(used.err(), pos, no);
    pos += *used;
    info.partial.set(no, std::move(value));
  }
  info.consumed = pos;
  message out = std::move(info.partial);
  info.partial = message{};
  return out;
}

result<message> unpack(const dialect& d, byte_view data) {
  unpack_info info;
  auto m = unpack_prefix(d, data, info);
  if (!m) return m;
  if (info.consumed != data.size())
    return make_error("iso8583.trailing_bytes",
                      fmt::format("{} bytes after the last field", data.size() - info.consumed));
  return m;
}

}  // namespace eftd::acq
