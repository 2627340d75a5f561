#include "eftd/acq/masking.hpp"

#include <fmt/format.h>

#include "eftd/core/bytes.hpp"
#include "eftd/core/card.hpp"
#include "eftd/core/tlv.hpp"

namespace eftd::acq {

namespace {

bool all_digits(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string hidden(std::size_t n, bool binary) {
  return fmt::format("<hidden, {} {}>", n, binary ? "bytes" : "chars");
}

std::string printable(std::string_view v) {
  std::string out{v};
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '.';
  return out;
}

// Track 2 as characters: the masked PAN, the separator, then nothing readable (expiry,
// service code and discretionary data are card data too).
std::string mask_track2(std::string_view v) {
  auto t = track2::parse(v);
  if (!t) return hidden(v.size(), false);
  const std::size_t sep = v.find_first_of("=D");
  if (sep == std::string_view::npos) return hidden(v.size(), false);
  std::string out = t->account().masked();
  // Sentinels (';' '?') are accepted by the parser; keep the layout of what was received.
  const std::size_t lead = v.front() == ';' ? 1 : 0;
  out.insert(0, lead, ';');
  out += v[sep];
  out.append(v.size() - sep - 1, '*');
  return out;
}

std::string tag_text(std::uint32_t tag) {
  const int bytes = tag > 0xffff ? 3 : tag > 0xff ? 2 : 1;
  return fmt::format("{:0{}X}", tag, 2 * bytes);
}

void describe_tlv(const std::vector<tlv>& list, int depth, std::vector<std::string>& out) {
  const std::string indent(static_cast<std::size_t>(2 * depth), ' ');
  for (const auto& t : list) {
    if (t.constructed()) {
      out.push_back(fmt::format("{}{} ({}):", indent, tag_text(t.tag), t.value.size()));
      describe_tlv(t.children, depth + 1, out);
    } else if (is_sensitive_emv_tag(t.tag)) {
      out.push_back(fmt::format("{}{} ({}): <hidden>", indent, tag_text(t.tag), t.value.size()));
    } else {
      out.push_back(fmt::format("{}{} ({}): {}", indent, tag_text(t.tag), t.value.size(), to_hex(t.value)));
    }
  }
}

void mask_icc(std::string_view v, masked_field& f) {
  auto list = tlv_decode(as_bytes(v));
  if (!list) {
    // Without a structure we cannot tell card data from the rest: hide all of it.
    f.value = fmt::format("<hidden, {} bytes, not valid BER-TLV: {}>", v.size(), list.err().code);
    return;
  }
  f.value = fmt::format("{} bytes BER-TLV", v.size());
  describe_tlv(*list, 0, f.details);
}

std::string_view mti_class(char c) {
  switch (c) {
    case '1':
      return "authorization";
    case '2':
      return "financial";
    case '3':
      return "file action";
    case '4':
      return "reversal";
    case '5':
      return "reconciliation";
    case '6':
      return "administrative";
    case '7':
      return "fee collection";
    case '8':
      return "network management";
    default:
      return "reserved";
  }
}

std::string_view mti_function(char c) {
  switch (c) {
    case '0':
      return "request";
    case '1':
      return "response";
    case '2':
      return "advice";
    case '3':
      return "advice response";
    case '4':
      return "notification";
    default:
      return "reserved function";
  }
}

}  // namespace

std::string mask_pan(std::string_view digits) {
  if (!all_digits(digits)) return hidden(digits.size(), false);
  auto p = pan::parse(digits);
  if (!p) return std::string(digits.size(), '*');  // fewer than 12 or more than 19 digits
  return p->masked();
}

bool is_sensitive_emv_tag(std::uint32_t tag) noexcept {
  switch (tag) {
    case 0x5A:    // application PAN
    case 0x56:    // track 1 equivalent data
    case 0x57:    // track 2 equivalent data
    case 0x5F20:  // cardholder name
    case 0x5F24:  // application expiration date
    case 0x99:    // transaction PIN data
    case 0x9F0B:  // cardholder name extended
    case 0x9F1F:  // track 1 discretionary data
    case 0x9F20:  // track 2 discretionary data
    case 0x9F6B:  // track 2 data (contactless)
      return true;
    default:
      return false;
  }
}

std::string describe_mti(std::string_view mti) {
  if (!all_digits(mti) || mti.size() != 4) return "<bad MTI>";
  std::string out = fmt::format("{} {} {}", mti, mti_class(mti[1]), mti_function(mti[2]));
  if (mti[3] == '1' || mti[3] == '3') out += ", repeat";
  return out;
}

std::vector<masked_field> masked_fields(const dialect& d, const message& m) {
  std::vector<masked_field> out;
  out.reserve(m.fields().size());
  for (const auto& [no, value] : m.fields()) {
    masked_field f;
    f.number = no;
    const field_spec* spec = d.field(no);
    if (spec) {
      f.name = spec->name;
      f.format = format_field(*spec);
    }
    const bool binary = spec ? spec->content == content_type::b : false;
    switch (no) {
      case 2:
      case 34:
        f.value = mask_pan(value);
        break;
      case 35:
        f.value = mask_track2(value);
        break;
      case 14:
        f.value = std::string(value.size(), '*');
        break;
      case 52:
        f.value = fmt::format("<PIN block hidden, {} bytes>", value.size());
        break;
      case 55:
        mask_icc(value, f);
        break;
      default:
        if (is_card_data_field(no) || (spec && spec->card_data))
          f.value = hidden(value.size(), binary);
        else if (binary)
          f.value = to_hex(as_bytes(value));
        else
          f.value = printable(value);
        break;
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace eftd::acq
