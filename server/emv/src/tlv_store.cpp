#include "eftd/emv/tlv_store.hpp"

#include <algorithm>

namespace eftd::emv {

std::optional<byte_view> tlv_store::get(std::uint32_t tag) const {
  const auto it = values_.find(tag);
  if (it == values_.end()) return std::nullopt;
  return it->second.view();
}

byte_view tlv_store::get_or_empty(std::uint32_t tag) const {
  const auto it = values_.find(tag);
  if (it == values_.end()) return {};
  return it->second.view();
}

void tlv_store::set(std::uint32_t tag, byte_view value) {
  values_.insert_or_assign(tag, secure_bytes(value));
}

std::vector<std::uint32_t> tlv_store::tags() const {
  std::vector<std::uint32_t> out;
  out.reserve(values_.size());
  for (const auto& [tag, value] : values_) out.push_back(tag);
  return out;
}

data_format format_of(std::uint32_t tag) {
  // Numeric (n) elements of Book 3 Annex A that a DOL may ask for; compressed numeric (cn)
  // is the PAN. Everything else (b, an, ans) pads and cuts on the right.
  switch (tag) {
    case 0x9F02:
    case 0x9F03:
    case 0x9F1A:
    case 0x5F2A:
    case 0x5F36:
    case 0x9A:
    case 0x9F21:
    case 0x9C:
    case 0x9F41:
    case 0x5F28:
    case 0x9F15:
    case 0x9F42:
    case 0x9F44:
    case 0x5F24:
    case 0x5F25:
    case 0x5F34:
    case 0x9F11:
    case 0x9F3C:
    case 0x9F3D:
    case 0x9F01:
    case 0x5F30:
    case 0x9F35:
    case 0x9F39:
    case 0x9F57:
      return data_format::numeric;
    case 0x5A:
      return data_format::compressed_numeric;
    default:
      return data_format::binary;
  }
}

namespace {

bool constructed_tag(std::uint32_t tag) {
  std::uint32_t first = tag;
  while (first > 0xFF) first >>= 8;
  return (first & 0x20) != 0;
}

}  // namespace

result<std::vector<dol_entry>> parse_dol(byte_view dol) {
  std::vector<dol_entry> out;
  std::size_t i = 0;
  while (i < dol.size()) {
    const std::size_t start = i;
    std::uint32_t tag = dol[i++];
    if ((tag & 0x1F) == 0x1F) {
      for (;;) {
        if (i >= dol.size()) return make_error("emv.bad_dol", "a DOL tag is cut off");
        if (i - start >= 3) return make_error("emv.bad_dol", "a DOL tag is longer than 3 bytes");
        const std::uint8_t b = dol[i++];
        tag = (tag << 8) | b;
        if ((b & 0x80) == 0) break;
      }
    }
    if (i >= dol.size()) return make_error("emv.bad_dol", "a DOL length is missing");
    const std::uint8_t len = dol[i++];
    if (len & 0x80) return make_error("emv.bad_dol", "a DOL length is not a single byte");
    out.push_back({tag, len});
  }
  return out;
}

bytes build_dol_data(const std::vector<dol_entry>& dol, const tlv_store& store) {
  bytes out;
  for (const auto& e : dol) {
    const auto value = store.get(e.tag);
    if (!value || constructed_tag(e.tag)) {
      out.insert(out.end(), e.length, 0x00);
      continue;
    }
    const byte_view v = *value;
    const auto fmt = format_of(e.tag);
    if (v.size() >= e.length) {
      if (fmt == data_format::numeric)
        out.insert(out.end(), v.end() - static_cast<std::ptrdiff_t>(e.length), v.end());
      else
        out.insert(out.end(), v.begin(), v.begin() + static_cast<std::ptrdiff_t>(e.length));
      continue;
    }
    const std::size_t pad = e.length - v.size();
    switch (fmt) {
      case data_format::numeric:
        out.insert(out.end(), pad, 0x00);
        out.insert(out.end(), v.begin(), v.end());
        break;
      case data_format::compressed_numeric:
        out.insert(out.end(), v.begin(), v.end());
        out.insert(out.end(), pad, 0xFF);
        break;
      case data_format::binary:
        out.insert(out.end(), v.begin(), v.end());
        out.insert(out.end(), pad, 0x00);
        break;
    }
  }
  return out;
}

result<bytes> build_dol_data(byte_view dol, const tlv_store& store) {
  auto entries = parse_dol(dol);
  if (!entries) return entries.err();
  return build_dol_data(*entries, store);
}

}  // namespace eftd::emv
