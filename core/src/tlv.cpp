#include "eftd/core/tlv.hpp"

#include <string>

namespace eftd {

namespace {

std::size_t tag_size(std::uint32_t tag) {
  if (tag > 0xFFFF) return 3;
  if (tag > 0xFF) return 2;
  return 1;
}

std::string tag_name(std::uint32_t tag) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string s;
  for (std::size_t i = tag_size(tag); i-- > 0;) {
    const auto b = static_cast<std::uint8_t>(tag >> (8 * i));
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 0xF]);
  }
  return s;
}

// Prefixes an error from inside a constructed object with its tag, so "in 70/57: ..."
// points a reader at the object without quoting any value bytes.
error nested(std::uint32_t tag, const error& e) {
  return make_error(e.code, "in " + tag_name(tag) + ": " + e.message);
}

result<std::vector<tlv>> decode_level(byte_view data, int depth) {
  std::vector<tlv> out;
  std::size_t i = 0;
  const std::size_t n = data.size();
  while (i < n) {
    if (data[i] == 0x00 || data[i] == 0xFF) {  // inter-object padding (EMV Book 3 B1)
      ++i;
      continue;
    }
    const std::size_t start = i;
    std::uint32_t tag = data[i++];
    if ((tag & 0x1F) == 0x1F) {
      for (;;) {
        if (i >= n)
          return make_error("tlv.truncated_tag", "tag at offset " + std::to_string(start) + " is cut off");
        if (i - start >= 3)
          return make_error("tlv.tag_too_long",
                            "tag at offset " + std::to_string(start) + " exceeds 3 bytes");
        const std::uint8_t b = data[i++];
        tag = (tag << 8) | b;
        if ((b & 0x80) == 0) break;
      }
    }

    if (i >= n) return make_error("tlv.truncated_length", "length of tag " + tag_name(tag) + " is missing");
    std::size_t len = data[i++];
    if (len == 0x80)
      return make_error("tlv.indefinite_length", "tag " + tag_name(tag) + " uses the indefinite length form");
    if (len > 0x80) {
      const std::size_t count = len & 0x7F;
      if (count > 3)
        return make_error("tlv.bad_length_form",
                          "tag " + tag_name(tag) + " has a length of more than 3 bytes");
      if (n - i < count)
        return make_error("tlv.truncated_length", "length of tag " + tag_name(tag) + " is cut off");
      len = 0;
      for (std::size_t k = 0; k < count; ++k) len = (len << 8) | data[i++];
    }
    if (len > n - i)
      return make_error("tlv.length_overflow", "tag " + tag_name(tag) + " claims " + std::to_string(len) +
                                                   " bytes, " + std::to_string(n - i) + " remain");

    tlv t;
    t.tag = tag;
    const byte_view value = data.subspan(i, len);
    t.value.assign(value.begin(), value.end());
    i += len;
    if (t.constructed()) {
      if (depth + 1 >= tlv_max_depth)
        return make_error("tlv.too_deep",
                          "tag " + tag_name(tag) + " nests deeper than " + std::to_string(tlv_max_depth));
      auto kids = decode_level(value, depth + 1);
      if (!kids) return nested(tag, kids.err());
      t.children = std::move(kids).value();
    }
    out.push_back(std::move(t));
  }
  return out;
}

void put_length(bytes& out, std::size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<std::uint8_t>(len));
  } else if (len <= 0xFF) {
    out.push_back(0x81);
    out.push_back(static_cast<std::uint8_t>(len));
  } else if (len <= 0xFFFF) {
    out.push_back(0x82);
    out.push_back(static_cast<std::uint8_t>(len >> 8));
    out.push_back(static_cast<std::uint8_t>(len));
  } else {
    out.push_back(0x83);
    out.push_back(static_cast<std::uint8_t>(len >> 16));
    out.push_back(static_cast<std::uint8_t>(len >> 8));
    out.push_back(static_cast<std::uint8_t>(len));
  }
}

void encode_into(bytes& out, const tlv& t) {
  for (std::size_t k = tag_size(t.tag); k-- > 0;) out.push_back(static_cast<std::uint8_t>(t.tag >> (8 * k)));
  if (t.constructed()) {
    bytes inner;
    for (const auto& c : t.children) encode_into(inner, c);
    put_length(out, inner.size());
    out.insert(out.end(), inner.begin(), inner.end());
  } else {
    put_length(out, t.value.size());
    out.insert(out.end(), t.value.begin(), t.value.end());
  }
}

}  // namespace

bool tlv::constructed() const noexcept {
  const auto first = static_cast<std::uint8_t>(tag >> (8 * (tag_size(tag) - 1)));
  return (first & 0x20) != 0;
}

bool operator==(const tlv& a, const tlv& b) noexcept {
  if (a.tag != b.tag) return false;
  return a.constructed() ? a.children == b.children : a.value == b.value;
}

result<std::vector<tlv>> tlv_decode(byte_view data) {
  return decode_level(data, 0);
}

bytes tlv_encode(const tlv& t) {
  bytes out;
  encode_into(out, t);
  return out;
}

bytes tlv_encode(const std::vector<tlv>& list) {
  bytes out;
  for (const auto& t : list) encode_into(out, t);
  return out;
}

const tlv* tlv_find(const std::vector<tlv>& list, std::uint32_t tag, bool recursive) {
  for (const auto& t : list) {
    if (t.tag == tag) return &t;
    if (recursive && !t.children.empty())
      if (const tlv* hit = tlv_find(t.children, tag, true)) return hit;
  }
  return nullptr;
}

}  // namespace eftd
