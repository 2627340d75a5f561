#include "eftd/acq/codec.hpp"

#include <fmt/format.h>

#include <array>

#include "eftd/core/secure.hpp"

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
  return e == encoding::ascii || e == encoding::binary || e == encoding::bcd;
}

bool bcd_content(content_type c) {
  return c == content_type::n || c == content_type::z || c == content_type::xn;
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

// Bytes the prefix takes on the wire. A binary LL prefix is one byte (0..255 >= 99), a binary
// LLL prefix two bytes, big-endian. BCD: LL one byte, LLL two bytes (a leading zero nibble).
std::size_t prefix_wire_size(const field_spec& f) {
  const std::size_t digits = prefix_digits(f.length);
  switch (f.prefix_encoding) {
    case encoding::binary:
      return digits - 1;
    case encoding::bcd:
      return (digits + 1) / 2;
    default:
      return digits;
  }
}

// Bytes a value of `units` characters/bytes takes on the wire. ASCII and binary: 1:1. BCD:
// two digits per byte rounded up; xn keeps its sign as one ASCII byte in front.
std::size_t value_wire_size(const field_spec& f, std::size_t units) {
  if (f.value_encoding != encoding::bcd) return units;
  if (f.content == content_type::xn) return units == 0 ? 0 : 1 + units / 2;  // 1 + ceil((units-1)/2)
  return (units + 1) / 2;
}

error field_error(const field_spec& f, std::string code, std::string_view what) {
  return make_error(std::move(code), fmt::format("field {}: {}", f.number, what));
}

status check_encodings(const field_spec& f) {
  if (!implemented(f.value_encoding))
    return field_error(f, "iso8583.unsupported_encoding",
                       fmt::format("{} value encoding is not implemented", encoding_label(f.value_encoding)));
  if (f.value_encoding == encoding::bcd && !bcd_content(f.content))
    return field_error(f, "iso8583.unsupported_encoding",
                       fmt::format("BCD cannot carry {} content", content_label(f.content)));
  if (f.length != length_type::fixed && !implemented(f.prefix_encoding))
    return field_error(f, "iso8583.unsupported_encoding",
                       fmt::format("{} length prefix is not implemented", encoding_label(f.prefix_encoding)));
  return {};
}

// Appends `zeros` zero digits then `digits` as packed BCD. An odd total gets a zero nibble
// in front so the value ends on a byte boundary (the last digit is always the low nibble).
// Track-2 separators ('=' or 'D') become nibble 0xD. Pre: content already validated.
void put_bcd(std::size_t zeros, std::string_view digits, bytes& out) {
  bool have_high = (zeros + digits.size()) % 2 != 0;  // the pad nibble is the first high half
  std::uint8_t high = 0;
  auto put = [&](std::uint8_t nibble) {
    if (have_high) {
      out.push_back(static_cast<std::uint8_t>((high << 4) | nibble));
      have_high = false;
    } else {
      high = nibble;
      have_high = true;
    }
  };
  for (std::size_t i = 0; i < zeros; ++i) put(0);
  for (char c : digits) put(c == '=' || c == 'D' ? 0xD : static_cast<std::uint8_t>(c - '0'));
}

void encode_prefix(const field_spec& f, std::size_t units, bytes& out) {
  const std::size_t digits = prefix_digits(f.length);
  if (f.prefix_encoding == encoding::binary) {
    if (digits == 3) out.push_back(static_cast<std::uint8_t>(units >> 8));
    out.push_back(static_cast<std::uint8_t>(units & 0xff));
    return;
  }
  const auto text = fmt::format("{:0{}}", units, digits);
  if (f.prefix_encoding == encoding::bcd) {
    put_bcd(0, text, out);
    return;
  }
  out.insert(out.end(), text.begin(), text.end());
}

// Reads the length prefix at the front of `in` (pre: in.size() >= prefix_wire_size(f)).
result<std::size_t> decode_prefix(const field_spec& f, byte_view in) {
  const std::size_t psize = prefix_wire_size(f);
  std::size_t units = 0;
  switch (f.prefix_encoding) {
    case encoding::binary:
      for (std::size_t i = 0; i < psize; ++i) units = (units << 8) | in[i];
      return units;
    case encoding::bcd:
      for (std::size_t i = 0; i < psize; ++i) {
        const unsigned hi = in[i] >> 4, lo = in[i] & 0x0f;
        if (hi > 9 || lo > 9)
          return field_error(f, "iso8583.bad_length_prefix",
                             fmt::format("length prefix is not {} BCD byte{}", psize, psize == 1 ? "" : "s"));
        units = units * 100 + hi * 10 + lo;
      }
      return units;
    default:
      for (std::size_t i = 0; i < psize; ++i) {
        if (!is_digit(in[i]))
          return field_error(f, "iso8583.bad_length_prefix",
                             fmt::format("length prefix is not {} ASCII digits", psize));
        units = units * 10 + (in[i] - '0');
      }
      return units;
  }
}

// Appends the value's wire form: `zeros` leading '0' and `spaces` trailing ' ' of padding
// around `v`. Pre: content validated, padding consistent with the content class.
void encode_value(const field_spec& f, std::size_t zeros, std::string_view v, std::size_t spaces,
                  bytes& out) {
  if (f.value_encoding != encoding::bcd) {
    out.insert(out.end(), zeros, '0');
    out.insert(out.end(), v.begin(), v.end());
    out.insert(out.end(), spaces, ' ');
    return;
  }
  if (f.content == content_type::xn) {
    out.push_back(static_cast<std::uint8_t>(v.front()));  // the sign travels as ASCII
    v.remove_prefix(1);
  }
  put_bcd(zeros, v, out);
}

// Decodes `units` characters from their wire bytes `in` (exactly value_wire_size bytes).
status decode_value(const field_spec& f, byte_view in, std::size_t units, std::string& value) {
  if (f.value_encoding != encoding::bcd) {
    value.assign(reinterpret_cast<const char*>(in.data()), in.size());
    return {};
  }
  value.clear();
  value.reserve(units);
  std::size_t digits = units;
  if (f.content == content_type::xn) {
    if (units == 0) return {};
    value.push_back(static_cast<char>(in[0]));
    in = in.subspan(1);
    digits = units - 1;
  }
  // An odd digit count leaves one pad nibble in front; it must be zero so that packing the
  // decoded value gives back the same bytes.
  const std::size_t skip = 2 * in.size() - digits;
  for (std::size_t i = 0; i < 2 * in.size(); ++i) {
    const unsigned nibble = i % 2 == 0 ? in[i / 2] >> 4 : in[i / 2] & 0x0f;
    if (i < skip) {
      if (nibble != 0) return field_error(f, "iso8583.bad_content", "BCD pad nibble is not 0");
      continue;
    }
    if (nibble <= 9)
      value.push_back(static_cast<char>('0' + nibble));
    else if (nibble == 0xD && f.content == content_type::z)
      value.push_back('D');
    else
      return field_error(f, "iso8583.bad_content", fmt::format("value is not {}", content_label(f.content)));
  }
  return {};
}

std::size_t mti_wire_size(const dialect& d) {
  return d.mti_encoding == encoding::bcd ? mti_size / 2 : mti_size;
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
    encode_value(f, f.pad == padding::left_zero ? fill : 0, value, f.pad == padding::right_space ? fill : 0,
                 out);
    return {};
  }
  encode_prefix(f, value.size(), out);
  encode_value(f, 0, value, 0, out);
  return {};
}

result<std::size_t> unpack_field(const field_spec& f, byte_view in, std::string& value) {
  // Whatever the caller's buffer held goes, so an error never leaves a stale value in it.
  if (!value.empty()) secure_wipe(value.data(), value.size());
  value.clear();
  if (auto st = check_encodings(f); !st) return st.err();
  std::size_t pos = 0;
  std::size_t units = f.size;
  if (f.length != length_type::fixed) {
    const std::size_t psize = prefix_wire_size(f);
    if (in.size() < psize)
      return field_error(f, "iso8583.truncated_field",
                         fmt::format("length prefix needs {} bytes, have {}", psize, in.size()));
    auto prefix = decode_prefix(f, in);
    if (!prefix) return prefix.err();
    units = *prefix;
    if (units > f.size)
      return field_error(f, "iso8583.field_too_long", fmt::format("length {} exceeds {}", units, f.size));
    pos = psize;
  }
  const std::size_t wire = value_wire_size(f, units);
  const std::size_t have = in.size() - pos;
  if (have < wire)
    return field_error(f, "iso8583.truncated_field", fmt::format("need {} bytes, have {}", wire, have));
  status decoded = decode_value(f, in.subspan(pos, wire), units, value);
  if (decoded && !valid_content(f.content, value))
    decoded = field_error(f, "iso8583.bad_content", fmt::format("value is not {}", content_label(f.content)));
  if (!decoded) {
    // A rejected value may still be card data: do not leave it in the caller's buffer.
    if (!value.empty()) secure_wipe(value.data(), value.size());
    value.clear();
    return decoded.err();
  }
  return pos + wire;
}

result<bytes> pack(const dialect& d, const message& m) {
  if (d.mti_encoding != encoding::ascii && d.mti_encoding != encoding::bcd)
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
  if (d.mti_encoding == encoding::bcd)
    put_bcd(0, m.mti(), out);
  else
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
  if (d.mti_encoding != encoding::ascii && d.mti_encoding != encoding::bcd)
    return fail(make_error("iso8583.unsupported_encoding", "MTI: encoding is not implemented"), 0, 0);
  const std::size_t mti_wire = mti_wire_size(d);
  if (data.size() < mti_wire)
    return fail(make_error("iso8583.truncated_mti",
                           fmt::format("MTI: need {} bytes, have {}", mti_wire, data.size())),
                0, 0);
  std::string mti;
  if (d.mti_encoding == encoding::bcd) {
    for (std::size_t i = 0; i < mti_wire; ++i) {
      mti.push_back(static_cast<char>('0' + (data[i] >> 4)));
      mti.push_back(static_cast<char>('0' + (data[i] & 0x0f)));
    }
  } else {
    mti.assign(reinterpret_cast<const char*>(data.data()), mti_wire);
  }
  // A BCD nibble above 9 turns into a character past '9' above, so one check covers both.
  if (!all_digits(mti)) return fail(make_error("iso8583.bad_mti", "MTI is not 4 decimal digits"), 0, 0);
  info.partial.set_mti(std::move(mti));
  std::size_t pos = mti_wire;

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
