#include "eftd/core/tr31.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "eftd/core/mac.hpp"

namespace eftd::tr31 {

namespace {

constexpr std::string_view algorithms = "ADEHRST";
constexpr std::string_view modes_of_use = "BCDEGNSTVXY";
constexpr std::string_view exportabilities = "ENS";
constexpr std::size_t max_key_bytes = 0xFFFF / 8;  // the key length field counts bits in 16 bits
constexpr std::size_t max_optional_blocks = 99;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_upper_alnum(char c) {
  return is_digit(c) || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) {
  return is_upper_alnum(c) || (c >= 'a' && c <= 'z');
}
bool is_upper_hex(char c) {
  return is_digit(c) || (c >= 'A' && c <= 'F');
}
bool is_printable(char c) {
  return c >= 0x20 && c <= 0x7E;
}
bool contains(std::string_view set, char c) {
  return set.find(c) != std::string_view::npos;
}
bool all_upper_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), is_upper_hex);
}

error bad_header(const char* what) {
  return make_error("tr31.bad_header", what);
}
error bad_block(const char* what) {
  return make_error("tr31.bad_optional_block", what);
}

// Parses `n` upper-case hex digits as a number; nullopt on a non-hex character.
std::optional<std::size_t> hex_number(std::string_view s) {
  if (s.empty() || !all_upper_hex(s)) return std::nullopt;
  std::size_t v = 0;
  for (char c : s) v = v * 16 + static_cast<std::size_t>(is_digit(c) ? c - '0' : c - 'A' + 10);
  return v;
}

std::string hex_digits(std::size_t v, std::size_t width) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out(width, '0');
  for (std::size_t i = 0; i < width; ++i, v >>= 4) out[width - 1 - i] = digits[v & 0xF];
  return out;
}

bool supported_version(char v) {
  return v == 'A' || v == 'B' || v == 'C' || v == 'D';
}

// Cipher block size: the header and the payload are whole blocks of it.
std::size_t cipher_block(char version) {
  return version == 'D' ? aes_block_size : des_block_size;
}

std::size_t mac_size(char version) {
  switch (version) {
    case 'B':
      return 8;
    case 'D':
      return 16;
    default:
      return 4;  // A, C: truncated CBC-MAC
  }
}

status check_fixed_fields(const header& h) {
  if (!supported_version(h.version))
    return make_error("tr31.unsupported_version", "key block version is not A, B, C or D");
  if (h.key_usage.size() != 2 || !is_upper_alnum(h.key_usage[0]) || !is_upper_alnum(h.key_usage[1]))
    return bad_header("key usage must be two upper-case alphanumeric characters");
  if (!contains(algorithms, h.algorithm)) return bad_header("algorithm is not one of A D E H R S T");
  if (!contains(modes_of_use, h.mode_of_use))
    return bad_header("mode of use is not one of B C D E G N S T V X Y");
  if (h.key_version.size() != 2 || !is_alnum(h.key_version[0]) || !is_alnum(h.key_version[1]))
    return bad_header("key version must be two alphanumeric characters");
  if (!contains(exportabilities, h.exportability)) return bad_header("exportability is not E, N or S");
  if (h.key_context < '0' || h.key_context > '2') return bad_header("key context is not 0, 1 or 2");
  return {};
}

// Blocks whose content X9.143 defines as hex (key set IDs, initial key IDs, KCVs, BDK IDs).
// A KS block with other characters cannot name a DUKPT key, whatever the MAC says.
status check_block_contents(const header& h) {
  static constexpr std::array<std::string_view, 5> hex_blocks = {"KS", "IK", "KC", "KP", "BI"};
  for (const auto& b : h.optional_blocks) {
    if (std::find(hex_blocks.begin(), hex_blocks.end(), b.id) == hex_blocks.end()) continue;
    if (b.data.empty() || !all_upper_hex(b.data))
      return bad_block("optional block KS, IK, KC, KP or BI is not upper-case hexadecimal");
  }
  return {};
}

// ID + 2-hex-digit length, or ID + "00" + "02" + 4-hex-digit length when it does not fit.
result<std::string> encode_block(const optional_block& b) {
  std::string out = b.id;
  if (4 + b.data.size() <= 0xFF) {
    out += hex_digits(4 + b.data.size(), 2);
  } else {
    const std::size_t total = 10 + b.data.size();
    if (total > 0xFFFF) return make_error("tr31.too_long", "optional block too long");
    out += "0002" + hex_digits(total, 4);
  }
  out += b.data;
  return out;
}

std::optional<bytes> decode_upper_hex(std::string_view s) {
  if (!all_upper_hex(s)) return std::nullopt;
  return from_hex(s);
}

}  // namespace

result<parsed_header> parse_header(std::string_view text) {
  if (text.size() < fixed_header_size) return bad_header("key block header is shorter than 16 characters");
  parsed_header out;
  header& h = out.hdr;
  h.version = text[0];
  if (!supported_version(h.version))
    return make_error("tr31.unsupported_version", "key block version is not A, B, C or D");
  const std::string_view len = text.substr(1, 4);
  if (!std::all_of(len.begin(), len.end(), is_digit)) return bad_header("key block length is not 4 digits");
  for (char c : len) out.length_field = out.length_field * 10 + static_cast<std::size_t>(c - '0');
  h.key_usage = std::string(text.substr(5, 2));
  h.algorithm = text[7];
  h.mode_of_use = text[8];
  h.key_version = std::string(text.substr(9, 2));
  h.exportability = text[11];
  const std::string_view count_text = text.substr(12, 2);
  if (!is_digit(count_text[0]) || !is_digit(count_text[1]))
    return bad_header("number of optional blocks is not 2 digits");
  h.key_context = text[14];
  if (text[15] != '0') return bad_header("reserved header byte is not 0");
  if (auto st = check_fixed_fields(h); !st) return st.err();

  const std::size_t count =
      static_cast<std::size_t>(count_text[0] - '0') * 10 + static_cast<std::size_t>(count_text[1] - '0');
  std::size_t pos = fixed_header_size;
  for (std::size_t i = 0; i < count; ++i) {
    if (text.size() - pos < 2) return bad_block("optional block ID missing");
    const std::string_view id = text.substr(pos, 2);
    if (!is_alnum(id[0]) || !is_alnum(id[1])) return bad_block("optional block ID is not alphanumeric");
    if (text.size() - pos < 4) return bad_block("optional block length missing");
    auto length = hex_number(text.substr(pos + 2, 2));
    if (!length) return bad_block("optional block length is not 2 hex digits");
    std::size_t prefix = 4;
    if (*length == 0) {
      // Extended form: "00", a 2-hex-digit count of length bytes, then the length itself.
      if (text.size() - pos < 6) return bad_block("optional block length-of-length missing");
      auto lol = hex_number(text.substr(pos + 4, 2));
      if (!lol) return bad_block("optional block length-of-length is not 2 hex digits");
      if (*lol == 0 || *lol > 2) return bad_block("optional block length-of-length must be 1 or 2");
      prefix = 6 + 2 * *lol;
      if (text.size() - pos < prefix) return bad_block("optional block extended length missing");
      length = hex_number(text.substr(pos + 6, 2 * *lol));
      if (!length) return bad_block("optional block extended length is not hex");
    }
    if (*length < prefix) return bad_block("optional block length does not cover its ID and length");
    if (text.size() - pos < *length) return bad_block("optional block data is truncated");
    const std::string_view data = text.substr(pos + prefix, *length - prefix);
    if (!std::all_of(data.begin(), data.end(), is_printable))
      return bad_block("optional block data is not printable ASCII");
    if (id == "PB") {
      if (i + 1 != count) return bad_block("padding block PB is not the last optional block");
    } else {
      const bool dup = std::any_of(h.optional_blocks.begin(), h.optional_blocks.end(),
                                   [&](const optional_block& b) { return b.id == id; });
      if (dup) return bad_block("optional block ID appears twice");
      h.optional_blocks.push_back(optional_block{std::string(id), std::string(data)});
    }
    pos += *length;
  }
  out.consumed = pos;
  return out;
}

result<std::string> format_header(const header& h, std::size_t body_chars) {
  if (auto st = check_fixed_fields(h); !st) return st.err();
  std::string blocks;
  for (std::size_t i = 0; i < h.optional_blocks.size(); ++i) {
    const auto& b = h.optional_blocks[i];
    if (b.id.size() != 2 || !is_alnum(b.id[0]) || !is_alnum(b.id[1]))
      return bad_block("optional block ID is not two alphanumeric characters");
    if (b.id == "PB") return bad_block("PB is added by the formatter, not given");
    if (!std::all_of(b.data.begin(), b.data.end(), is_printable))
      return bad_block("optional block data is not printable ASCII");
    for (std::size_t j = 0; j < i; ++j)
      if (h.optional_blocks[j].id == b.id) return bad_block("optional block ID appears twice");
    auto enc = encode_block(b);
    if (!enc) return enc.err();
    blocks += *enc;
  }
  std::size_t count = h.optional_blocks.size();
  const std::size_t align = cipher_block(h.version);
  const std::size_t used = fixed_header_size + blocks.size();
  if (used % align != 0) {
    std::size_t gap = align - used % align;
    if (gap < 4) gap += align;  // PB needs at least its ID and length
    blocks += "PB" + hex_digits(gap, 2) + std::string(gap - 4, '0');
    ++count;
  }
  if (count > max_optional_blocks) return make_error("tr31.too_long", "more than 99 optional blocks");
  const std::size_t total = fixed_header_size + blocks.size() + body_chars;
  if (total > max_block_size) return make_error("tr31.too_long", "key block longer than 9999 characters");

  std::string out;
  out.reserve(fixed_header_size + blocks.size());
  out += h.version;
  out += std::to_string(10000 + total).substr(1);
  out += h.key_usage;
  out += h.algorithm;
  out += h.mode_of_use;
  out += h.key_version;
  out += h.exportability;
  out += std::to_string(100 + count).substr(1);
  out += h.key_context;
  out += '0';
  out += blocks;
  return out;
}

result<derived_keys> derive_keys(char version, byte_view kbpk) {
  derived_keys k;
  switch (version) {
    case 'A':
    case 'C': {
      if (kbpk.size() != 8 && kbpk.size() != 16 && kbpk.size() != 24)
        return make_error("tr31.bad_kbpk", "KBPK for versions A and C must be 8, 16 or 24 bytes");
      k.encryption = secure_bytes{kbpk};
      k.authentication = secure_bytes{kbpk};
      for (auto& b : k.encryption.mutable_view()) b ^= 0x45;
      for (auto& b : k.authentication.mutable_view()) b ^= 0x4D;
      return k;
    }
    case 'B':
    case 'D': {
      const bool aes = version == 'D';
      std::uint16_t alg = 0;
      std::uint16_t bits = 0;
      switch (kbpk.size()) {
        case 16:
          alg = aes ? 0x0002 : 0x0000;
          bits = 0x0080;
          break;
        case 24:
          alg = aes ? 0x0003 : 0x0001;
          bits = 0x00C0;
          break;
        case 32:
          if (aes) {
            alg = 0x0004;
            bits = 0x0100;
            break;
          }
          [[fallthrough]];
        default:
          return make_error("tr31.bad_kbpk", aes ? "KBPK for version D must be 16, 24 or 32 bytes"
                                                 : "KBPK for version B must be 16 or 24 bytes");
      }
      // X9.143 / TR-31:2018 key derivation: CMAC under the KBPK of
      // counter || key usage (0000 encryption, 0001 MAC) || 00 || algorithm || length in bits,
      // once per output block, concatenated and cut to the KBPK length.
      const std::size_t block = aes ? aes_block_size : des_block_size;
      for (std::uint16_t usage : {std::uint16_t{0}, std::uint16_t{1}}) {
        secure_bytes out(kbpk.size());
        std::array<std::uint8_t, 8> input = {0,
                                             static_cast<std::uint8_t>(usage >> 8),
                                             static_cast<std::uint8_t>(usage),
                                             0,
                                             static_cast<std::uint8_t>(alg >> 8),
                                             static_cast<std::uint8_t>(alg),
                                             static_cast<std::uint8_t>(bits >> 8),
                                             static_cast<std::uint8_t>(bits)};
        for (std::size_t done = 0, ctr = 1; done < kbpk.size(); ++ctr) {
          input[0] = static_cast<std::uint8_t>(ctr);
          auto part = aes ? aes_cmac(kbpk, input) : tdes_cmac(kbpk, input);
          if (!part) return part.err();
          const std::size_t n = std::min(block, kbpk.size() - done);
          std::copy(part->view().begin(), part->view().begin() + static_cast<std::ptrdiff_t>(n),
                    out.mutable_view().begin() + static_cast<std::ptrdiff_t>(done));
          done += n;
        }
        (usage == 0 ? k.encryption : k.authentication) = std::move(out);
      }
      return k;
    }
    default:
      return make_error("tr31.unsupported_version", "key block version is not A, B, C or D");
  }
}

result<std::string> wrap(byte_view kbpk, const header& h, byte_view key, random_source& rng,
                         const wrap_options& options) {
  if (h.version != 'B' && h.version != 'D')
    return make_error("tr31.unsupported_version", "key blocks are exported as version B or D only");
  if (key.empty() || key.size() > max_key_bytes)
    return make_error("tr31.bad_key_length", "key to wrap must be 1 to 8191 bytes");
  if (auto st = check_block_contents(h); !st) return st.err();
  auto keys = derive_keys(h.version, kbpk);
  if (!keys) return keys.err();

  std::size_t masked = key.size();
  if (options.masked_key_length) {
    masked = *options.masked_key_length;
  } else if (h.algorithm == 'T' || h.algorithm == 'D') {
    masked = 24;
  } else if (h.algorithm == 'A') {
    masked = 32;
  }
  const std::size_t block = cipher_block(h.version);
  const std::size_t padded_key = std::max(masked, key.size());
  const std::size_t payload_len = (2 + padded_key + block - 1) / block * block;
  const std::size_t body_chars = 2 * payload_len + 2 * mac_size(h.version);
  auto header_text = format_header(h, body_chars);
  if (!header_text) return header_text.err();

  // MAC input = header || clear payload; the payload sits at its end so one buffer serves both.
  const std::size_t hl = header_text->size();
  secure_bytes mac_input(hl + payload_len);
  auto mi = mac_input.mutable_view();
  std::copy(header_text->begin(), header_text->end(), mi.begin());
  const std::size_t bits = key.size() * 8;
  mi[hl] = static_cast<std::uint8_t>(bits >> 8);
  mi[hl + 1] = static_cast<std::uint8_t>(bits);
  std::copy(key.begin(), key.end(), mi.begin() + static_cast<std::ptrdiff_t>(hl + 2));
  rng.fill(mi.subspan(hl + 2 + key.size()));
  const byte_view payload = mac_input.view().subspan(hl);

  const bool aes = h.version == 'D';
  auto mac = aes ? aes_cmac(keys->authentication.view(), mac_input.view())
                 : tdes_cmac(keys->authentication.view(), mac_input.view());
  if (!mac) return mac.err();
  auto ct = aes ? aes_cbc(cipher_op::encrypt, keys->encryption.view(), mac->view(), payload)
                : tdes_cbc(cipher_op::encrypt, keys->encryption.view(), mac->view(), payload);
  if (!ct) return ct.err();
  return *header_text + to_hex(ct->view()) + to_hex(mac->view());
}

result<unwrapped_key> unwrap(byte_view kbpk, std::string_view block, const unwrap_options& options) {
  auto ph = parse_header(block);
  if (!ph) return ph.err();
  const char version = ph->hdr.version;
  if ((version == 'A' || version == 'C') && !options.allow_variant_binding)
    return make_error("tr31.unsupported_version", "variant key blocks (A, C) are not accepted here");
  if (ph->length_field != block.size())
    return make_error("tr31.bad_length", "key block length field does not match the block");
  if (auto st = check_block_contents(ph->hdr); !st) return st.err();
  const std::size_t cblock = cipher_block(version);
  if (block.size() % cblock != 0 || ph->consumed % cblock != 0)
    return make_error("tr31.bad_length", "key block or header is not a whole number of cipher blocks");
  auto keys = derive_keys(version, kbpk);
  if (!keys) return keys.err();

  const std::string_view rest = block.substr(ph->consumed);
  const std::size_t mac_hex = 2 * mac_size(version);
  if (rest.size() <= mac_hex) return make_error("tr31.bad_encoding", "key block has no encrypted payload");
  auto ct = decode_upper_hex(rest.substr(0, rest.size() - mac_hex));
  auto mac = decode_upper_hex(rest.substr(rest.size() - mac_hex));
  if (!ct || !mac) return make_error("tr31.bad_encoding", "key block payload or MAC is not upper-case hex");
  if (ct->size() % cblock != 0)
    return make_error("tr31.bad_encoding", "encrypted payload is not a whole number of cipher blocks");

  const byte_view header_bytes = as_bytes(block.substr(0, ph->consumed));
  secure_bytes payload;
  if (version == 'A' || version == 'C') {
    // Variant binding authenticates the ciphertext; decrypt only after the MAC verified.
    bytes mac_input(header_bytes.begin(), header_bytes.end());
    mac_input.insert(mac_input.end(), ct->begin(), ct->end());
    auto expected = iso9797_mac_alg1(keys->authentication.view(), mac_input, mac_padding::method1);
    if (!expected) return expected.err();
    expected->resize(mac->size());
    if (!mac_equal(*expected, *mac)) return make_error("tr31.mac_mismatch", "key block MAC does not verify");
    auto pt = tdes_cbc(cipher_op::decrypt, keys->encryption.view(), header_bytes.first(des_block_size), *ct);
    if (!pt) return pt.err();
    payload = std::move(*pt);
  } else {
    // Key derivation binding MACs the clear payload: decrypt (IV = MAC), then verify before
    // anything of the payload is interpreted.
    const bool aes = version == 'D';
    auto pt = aes ? aes_cbc(cipher_op::decrypt, keys->encryption.view(), *mac, *ct)
                  : tdes_cbc(cipher_op::decrypt, keys->encryption.view(), *mac, *ct);
    if (!pt) return pt.err();
    secure_bytes mac_input(header_bytes.size() + pt->size());
    std::copy(header_bytes.begin(), header_bytes.end(), mac_input.mutable_view().begin());
    std::copy(pt->view().begin(), pt->view().end(),
              mac_input.mutable_view().begin() + static_cast<std::ptrdiff_t>(header_bytes.size()));
    auto expected = aes ? aes_cmac(keys->authentication.view(), mac_input.view())
                        : tdes_cmac(keys->authentication.view(), mac_input.view());
    if (!expected) return expected.err();
    if (!mac_equal(expected->view(), *mac))
      return make_error("tr31.mac_mismatch", "key block MAC does not verify");
    payload = std::move(*pt);
  }

  const byte_view p = payload.view();
  const std::size_t bits = (static_cast<std::size_t>(p[0]) << 8) | p[1];
  if (bits == 0 || bits % 8 != 0)
    return make_error("tr31.bad_key_length", "key length field is zero or not whole bytes");
  if (bits / 8 > p.size() - 2)
    return make_error("tr31.bad_key_length", "key length field exceeds the payload");
  unwrapped_key out;
  out.hdr = std::move(ph->hdr);
  out.key = secure_bytes{p.subspan(2, bits / 8)};
  return out;
}

result<bytes> key_check_value(char algorithm, byte_view key) {
  switch (algorithm) {
    case 'A':
      return aes_cmac_kcv(key);
    case 'T':
    case 'D':
      return tdes_kcv(key);
    default:
      return bad_header("no key check value for this algorithm");
  }
}

}  // namespace eftd::tr31
