// Card data as types: a PAN and a track 2 are never plain strings. Both are held in
// secure_bytes (wiped on destruction), format as masked text, and give out the clear digits
// only through reveal*(), a name meant to make reviewers stop and look.
//
// Error codes: "pan.bad_length" (not 12..19 digits), "pan.not_numeric",
// "track2.too_long", "track2.no_separator", "track2.bad_pan", "track2.bad_char",
// "track2.short" (expiry/service code missing), "track2.bad_padding", "track2.empty".
// Messages name the field, never its value. Nothing here checks Luhn: test and
// tokenised PANs fail it legitimately; call luhn_ok() where a rule needs it.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd {

// ISO/IEC 7812-1 Luhn check. False for empty input or any non-digit.
bool luhn_valid(std::string_view digits);

class pan {
 public:
  // Pre: none. Post: 12..19 ASCII digits copied into a wiped-on-destruction buffer.
  static result<pan> parse(std::string_view digits);

  std::size_t length() const noexcept { return digits_.size(); }
  bool luhn_ok() const { return luhn_valid(reveal()); }
  // PCI DSS display rule, at most first 6 and last 4, and never fewer than 4 masked:
  // last 4 always shown; first min(6, length - 8) shown. 16 digits: 411111******1111;
  // 13 digits: 40123****8909; 12 digits: 1234****9012.
  std::string masked() const;
  // First min(n, 8) digits, for scheme detection and routing only.
  std::string bin(std::size_t n = 8) const;
  std::string last4() const;
  // The clear digits. Valid while *this lives. Never log or format the result.
  std::string_view reveal() const noexcept;

  friend bool operator==(const pan& a, const pan& b) { return a.digits_ == b.digits_; }

 private:
  explicit pan(secure_bytes d) : digits_(std::move(d)) {}
  secure_bytes digits_;
};

// Keyed search hash: lowercase hex HMAC-SHA256(hmac_key, digits). Lets the journal find
// "all transactions of this card" without storing the PAN in the clear or an unkeyed hash
// (which a 10^9-candidate brute force would invert).
std::string pan_search_hash(const pan& p, byte_view hmac_key);

// ISO/IEC 7813 track 2 (or its EMV tag 57 equivalent):
// PAN (12..19) | separator | YYMM | service code (3) | discretionary digits.
// Expiry and service code are required (4 and 3 digits); their values are not judged here
// (an expired or odd card is a business decision, not a parse error).
class track2 {
 public:
  // ASCII form, ";4000340000000506=2512111123400001230?" with optional ';' and '?'
  // sentinels and '=' or 'D' as separator. At most 37 characters between sentinels.
  static result<track2> parse(std::string_view ascii);
  // EMV tag 57 value: packed BCD, 'D' separator nibble, one trailing 'F' pad nibble if the
  // digit count is odd. At most 19 bytes.
  static result<track2> parse_tag57(byte_view bcd);

  const pan& account() const noexcept { return pan_; }
  std::string expiry_yymm() const { return expiry_; }
  std::string service_code() const { return service_; }
  // Discretionary data (may hold PVV, CVV, iCVV): clear access only, never log.
  std::string_view reveal_discretionary() const noexcept;

  // "PAN=YYMMSSSdiscretionary" without sentinels (ISO 8583 field 35 content).
  secure_bytes encode_ascii() const;
  // Tag 57 packed BCD, 'D' separator, 'F' padded.
  secure_bytes encode_tag57() const;

  friend bool operator==(const track2& a, const track2& b) {
    return a.pan_ == b.pan_ && a.expiry_ == b.expiry_ && a.service_ == b.service_ &&
           a.discretionary_ == b.discretionary_;
  }

 private:
  track2(pan p, std::string expiry, std::string service, secure_bytes disc)
      : pan_(std::move(p)),
        expiry_(std::move(expiry)),
        service_(std::move(service)),
        discretionary_(std::move(disc)) {}
  static result<track2> parse_body(std::string_view body);

  pan pan_;
  std::string expiry_;
  std::string service_;
  secure_bytes discretionary_;
};

}  // namespace eftd

// fmt::format("{}", pan) -> masked PAN. There is deliberately no operator<<.
template <>
struct fmt::formatter<eftd::pan> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const eftd::pan& p, FormatContext& ctx) const {
    const std::string s = p.masked();
    return fmt::formatter<std::string_view>::format(std::string_view{s}, ctx);
  }
};

// fmt::format("{}", t2) -> "track2[411111******1111]": the masked PAN, nothing else.
template <>
struct fmt::formatter<eftd::track2> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const eftd::track2& t, FormatContext& ctx) const {
    const std::string s = "track2[" + t.account().masked() + "]";
    return fmt::formatter<std::string_view>::format(std::string_view{s}, ctx);
  }
};
