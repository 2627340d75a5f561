// "iso87-ascii": ISO 8583:1987 data elements, MTI and numeric/text fields in ASCII,
// binary bitmaps, binary b fields, ASCII decimal length prefixes (LL = 2 digits, LLL = 3).
//
// Sizes and attributes follow ISO 8583:1987 table "Data elements". Deviations, all common
// practice for ASCII hosts and documented in acquirers/DIALECTS.md:
//   - field 55 (ISO reserved) carries EMV chip data: LLL + raw bytes (b..999);
//   - fields 49-51 (currency codes, "a or n 3") are an 3, so both "985" and "PLN" pass;
//   - field 65 (tertiary bitmap, "b 1") is carried as one opaque byte, not interpreted;
//   - field 34 (ns..28) is treated as ans.
#include "dialect_tables.hpp"

namespace eftd::acq::detail {

namespace {

constexpr padding default_padding(content_type c) {
  switch (c) {
    case content_type::n:
      return padding::left_zero;
    case content_type::an:
    case content_type::ans:
      return padding::right_space;
    default:
      return padding::none;
  }
}

constexpr encoding default_encoding(content_type c) {
  return c == content_type::b ? encoding::binary : encoding::ascii;
}

constexpr field_spec fixed(int no, content_type c, int size, std::string_view name, bool card = false) {
  field_spec f;
  f.number = static_cast<std::uint8_t>(no);
  f.length = length_type::fixed;
  f.size = static_cast<std::uint16_t>(size);
  f.content = c;
  f.value_encoding = default_encoding(c);
  f.prefix_encoding = encoding::ascii;
  f.pad = default_padding(c);
  f.card_data = card;
  f.name = name;
  return f;
}

constexpr field_spec var(int no, length_type l, content_type c, int max, std::string_view name,
                         bool card = false) {
  field_spec f = fixed(no, c, max, name, card);
  f.length = l;
  f.pad = padding::none;
  return f;
}

constexpr field_spec ll(int no, content_type c, int max, std::string_view name, bool card = false) {
  return var(no, length_type::llvar, c, max, name, card);
}
constexpr field_spec lll(int no, content_type c, int max, std::string_view name, bool card = false) {
  return var(no, length_type::lllvar, c, max, name, card);
}

using ct = content_type;

dialect make_iso87_ascii() {
  dialect d;
  d.name = "iso87-ascii";
  d.title = "ISO 8583:1987, ASCII MTI and fields, binary bitmaps, ASCII LL/LLL prefixes";
  d.mti_encoding = encoding::ascii;
  d.bitmap = bitmap_encoding::binary;

  const field_spec table[] = {
      fixed(1, ct::b, 8, "Bitmap, secondary"),
      ll(2, ct::n, 19, "Primary account number (PAN)", true),
      fixed(3, ct::n, 6, "Processing code"),
      fixed(4, ct::n, 12, "Amount, transaction"),
      fixed(5, ct::n, 12, "Amount, settlement"),
      fixed(6, ct::n, 12, "Amount, cardholder billing"),
      fixed(7, ct::n, 10, "Transmission date & time (MMDDhhmmss)"),
      fixed(8, ct::n, 8, "Amount, cardholder billing fee"),
      fixed(9, ct::n, 8, "Conversion rate, settlement"),
      fixed(10, ct::n, 8, "Conversion rate, cardholder billing"),
      fixed(11, ct::n, 6, "System trace audit number (STAN)"),
      fixed(12, ct::n, 6, "Time, local transaction (hhmmss)"),
      fixed(13, ct::n, 4, "Date, local transaction (MMDD)"),
      fixed(14, ct::n, 4, "Date, expiration (YYMM)", true),
      fixed(15, ct::n, 4, "Date, settlement (MMDD)"),
      fixed(16, ct::n, 4, "Date, conversion (MMDD)"),
      fixed(17, ct::n, 4, "Date, capture (MMDD)"),
      fixed(18, ct::n, 4, "Merchant type"),
      fixed(19, ct::n, 3, "Acquiring institution country code"),
      fixed(20, ct::n, 3, "PAN extended, country code"),
      fixed(21, ct::n, 3, "Forwarding institution country code"),
      fixed(22, ct::n, 3, "Point of service entry mode"),
      fixed(23, ct::n, 3, "Card sequence number"),
      fixed(24, ct::n, 3, "Network international identifier (NII)"),
      fixed(25, ct::n, 2, "Point of service condition code"),
      fixed(26, ct::n, 2, "Point of service capture code"),
      fixed(27, ct::n, 1, "Authorizing identification response length"),
      fixed(28, ct::xn, 9, "Amount, transaction fee"),
      fixed(29, ct::xn, 9, "Amount, settlement fee"),
      fixed(30, ct::xn, 9, "Amount, transaction processing fee"),
      fixed(31, ct::xn, 9, "Amount, settlement processing fee"),
      ll(32, ct::n, 11, "Acquiring institution identification code"),
      ll(33, ct::n, 11, "Forwarding institution identification code"),
      ll(34, ct::ans, 28, "Primary account number, extended", true),
      ll(35, ct::z, 37, "Track 2 data", true),
      lll(36, ct::n, 104, "Track 3 data", true),
      fixed(37, ct::an, 12, "Retrieval reference number"),
      fixed(38, ct::an, 6, "Authorization identification response"),
      fixed(39, ct::an, 2, "Response code"),
      fixed(40, ct::an, 3, "Service restriction code"),
      fixed(41, ct::ans, 8, "Card acceptor terminal identification"),
      fixed(42, ct::ans, 15, "Card acceptor identification code"),
      fixed(43, ct::ans, 40, "Card acceptor name/location"),
      ll(44, ct::an, 25, "Additional response data"),
      ll(45, ct::an, 76, "Track 1 data", true),
      lll(46, ct::ans, 999, "Additional data - ISO"),
      lll(47, ct::ans, 999, "Additional data - national"),
      lll(48, ct::ans, 999, "Additional data - private"),
      fixed(49, ct::an, 3, "Currency code, transaction"),
      fixed(50, ct::an, 3, "Currency code, settlement"),
      fixed(51, ct::an, 3, "Currency code, cardholder billing"),
      fixed(52, ct::b, 8, "Personal identification number data (PIN block)", true),
      fixed(53, ct::n, 16, "Security related control information"),
      lll(54, ct::an, 120, "Additional amounts"),
      lll(55, ct::b, 999, "ICC data (EMV TLV; ISO reserved)", true),
      lll(56, ct::ans, 999, "Reserved ISO"),
      lll(57, ct::ans, 999, "Reserved national"),
      lll(58, ct::ans, 999, "Reserved national"),
      lll(59, ct::ans, 999, "Reserved national"),
      lll(60, ct::ans, 999, "Reserved national"),
      lll(61, ct::ans, 999, "Reserved private"),
      lll(62, ct::ans, 999, "Reserved private"),
      lll(63, ct::ans, 999, "Reserved private"),
      fixed(64, ct::b, 8, "Message authentication code (MAC)"),
      fixed(65, ct::b, 1, "Bitmap, tertiary (opaque byte)"),
      fixed(66, ct::n, 1, "Settlement code"),
      fixed(67, ct::n, 2, "Extended payment code"),
      fixed(68, ct::n, 3, "Receiving institution country code"),
      fixed(69, ct::n, 3, "Settlement institution country code"),
      fixed(70, ct::n, 3, "Network management information code"),
      fixed(71, ct::n, 4, "Message number"),
      fixed(72, ct::n, 4, "Message number, last"),
      fixed(73, ct::n, 6, "Date, action (YYMMDD)"),
      fixed(74, ct::n, 10, "Credits, number"),
      fixed(75, ct::n, 10, "Credits, reversal number"),
      fixed(76, ct::n, 10, "Debits, number"),
      fixed(77, ct::n, 10, "Debits, reversal number"),
      fixed(78, ct::n, 10, "Transfer, number"),
      fixed(79, ct::n, 10, "Transfer, reversal number"),
      fixed(80, ct::n, 10, "Inquiries, number"),
      fixed(81, ct::n, 10, "Authorizations, number"),
      fixed(82, ct::n, 12, "Credits, processing fee amount"),
      fixed(83, ct::n, 12, "Credits, transaction fee amount"),
      fixed(84, ct::n, 12, "Debits, processing fee amount"),
      fixed(85, ct::n, 12, "Debits, transaction fee amount"),
      fixed(86, ct::n, 16, "Credits, amount"),
      fixed(87, ct::n, 16, "Credits, reversal amount"),
      fixed(88, ct::n, 16, "Debits, amount"),
      fixed(89, ct::n, 16, "Debits, reversal amount"),
      fixed(90, ct::n, 42, "Original data elements"),
      fixed(91, ct::an, 1, "File update code"),
      fixed(92, ct::an, 2, "File security code"),
      fixed(93, ct::an, 5, "Response indicator"),
      fixed(94, ct::an, 7, "Service indicator"),
      fixed(95, ct::an, 42, "Replacement amounts"),
      fixed(96, ct::b, 8, "Message security code"),
      fixed(97, ct::xn, 17, "Amount, net settlement"),
      fixed(98, ct::ans, 25, "Payee"),
      ll(99, ct::n, 11, "Settlement institution identification code"),
      ll(100, ct::n, 11, "Receiving institution identification code"),
      ll(101, ct::ans, 17, "File name"),
      ll(102, ct::ans, 28, "Account identification 1", true),
      ll(103, ct::ans, 28, "Account identification 2", true),
      lll(104, ct::ans, 100, "Transaction description"),
      lll(105, ct::ans, 999, "Reserved ISO"),
      lll(106, ct::ans, 999, "Reserved ISO"),
      lll(107, ct::ans, 999, "Reserved ISO"),
      lll(108, ct::ans, 999, "Reserved ISO"),
      lll(109, ct::ans, 999, "Reserved ISO"),
      lll(110, ct::ans, 999, "Reserved ISO"),
      lll(111, ct::ans, 999, "Reserved ISO"),
      lll(112, ct::ans, 999, "Reserved national"),
      lll(113, ct::ans, 999, "Reserved national"),
      lll(114, ct::ans, 999, "Reserved national"),
      lll(115, ct::ans, 999, "Reserved national"),
      lll(116, ct::ans, 999, "Reserved national"),
      lll(117, ct::ans, 999, "Reserved national"),
      lll(118, ct::ans, 999, "Reserved national"),
      lll(119, ct::ans, 999, "Reserved national"),
      lll(120, ct::ans, 999, "Reserved private"),
      lll(121, ct::ans, 999, "Reserved private"),
      lll(122, ct::ans, 999, "Reserved private"),
      lll(123, ct::ans, 999, "Reserved private"),
      lll(124, ct::ans, 999, "Reserved private"),
      lll(125, ct::ans, 999, "Reserved private"),
      lll(126, ct::ans, 999, "Reserved private"),
      lll(127, ct::ans, 999, "Reserved private"),
      fixed(128, ct::b, 8, "Message authentication code (MAC)"),
  };
  for (const auto& f : table) d.fields[f.number] = f;
  return d;
}

}  // namespace

const dialect& iso87_ascii() {
  static const dialect d = make_iso87_ascii();
  return d;
}

}  // namespace eftd::acq::detail
