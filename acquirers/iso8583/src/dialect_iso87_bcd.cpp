// "iso87-bcd": the ISO 8583:1987 data elements as carried on many terminal-to-host links
// (dial-up heritage, usually behind a TPDU, see framing.hpp). Same fields, sizes and content
// classes as iso87-ascii; only the wire encodings differ:
//   - MTI: 2 BCD bytes ("0200" -> 02 00);
//   - bitmaps: 8 binary bytes each (as in iso87-ascii);
//   - n fields: packed BCD, odd digit counts left-padded with a zero nibble (n 3 "051" -> 00 51);
//   - z (track 2, field 35): BCD with the separator as nibble D ('=' packs to D too);
//   - xn (28-31, 97): the 'C'/'D' sign as one ASCII byte, then the digits in BCD;
//   - an/ans fields: ASCII; b fields (52, 55, 64, ...): raw bytes;
//   - LLVAR/LLLVAR prefixes: BCD, LL one byte, LLL two bytes. They count digits for n/z,
//     characters for an/ans and bytes for b (field 55: LLL BCD counting bytes + raw TLV).
//
// The table is derived from iso87-ascii so the field definitions (sizes, names, card-data
// flags, padding) have one source; the rules below are the whole difference, and
// tests/iso8583/test_dialect.cpp checks every row.
#include "dialect_tables.hpp"

namespace eftd::acq::detail {

namespace {

struct encoding_rule {
  content_type content;
  encoding value;
};

// Value encoding by content class.
constexpr encoding_rule value_rules[] = {
    {content_type::n, encoding::bcd},     {content_type::z, encoding::bcd},
    {content_type::xn, encoding::bcd},    {content_type::an, encoding::ascii},
    {content_type::ans, encoding::ascii}, {content_type::b, encoding::binary},
};

// Length prefixes of every LLVAR/LLLVAR field.
constexpr encoding prefix_rule = encoding::bcd;

dialect make_iso87_bcd() {
  dialect d = iso87_ascii();
  d.name = "iso87-bcd";
  d.title = "ISO 8583:1987, BCD MTI, numerics and length prefixes, ASCII text, binary bitmaps";
  d.mti_encoding = encoding::bcd;
  d.bitmap = bitmap_encoding::binary;
  for (auto& f : d.fields) {
    if (!f.defined()) continue;
    for (const auto& r : value_rules)
      if (r.content == f.content) f.value_encoding = r.value;
    if (f.length != length_type::fixed) f.prefix_encoding = prefix_rule;
  }
  return d;
}

}  // namespace

const dialect& iso87_bcd() {
  static const dialect d = make_iso87_bcd();
  return d;
}

}  // namespace eftd::acq::detail
