// An ISO 8583 message: an MTI plus raw field values keyed by field number.
//
// Values are kept exactly as they travel (text fields as their characters, b fields as raw
// bytes in the string), independent of any dialect. Fields 2, 35, 52 and 55 carry card
// data, so every value is wiped when it is replaced, erased, or the message is destroyed.
// A message is a value type: copy it to hand it to another strand, never share one.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace eftd::acq {

struct dialect;

class message {
 public:
  message() = default;
  explicit message(std::string mti) : mti_(std::move(mti)) {}
  message(const message& o) = default;
  message(message&& o) noexcept = default;
  message& operator=(const message& o);
  message& operator=(message&& o) noexcept;
  ~message();

  const std::string& mti() const noexcept { return mti_; }
  void set_mti(std::string mti) { mti_ = std::move(mti); }

  // Field numbers are 2..128 (field 1, the secondary bitmap, is the codec's business);
  // pack() rejects anything else with "iso8583.bad_field_number".
  void set(int field, std::string value);
  std::optional<std::string_view> get(int field) const;
  // The value, or `fallback` when the field is absent.
  std::string_view get_or(int field, std::string_view fallback) const;
  bool has(int field) const { return fields_.count(field) != 0; }
  void erase(int field);
  void clear();

  const std::map<int, std::string>& fields() const noexcept { return fields_; }

  // One log line: "0200 3=000000 4=000000012500 ... 2=<card data, 16 chars> 52=<card data, 8 bytes>".
  // Card-data fields (2, 14, 34, 35, 36, 45, 52, 55, 102, 103) show only their length;
  // other binary fields are shown as hex, non-printable text bytes as '.'.
  std::string describe() const;
  // As describe(), also masking every field the dialect flags as card data.
  std::string describe(const dialect& d) const;

  friend bool operator==(const message& a, const message& b) {
    return a.mti_ == b.mti_ && a.fields_ == b.fields_;
  }

 private:
  void wipe() noexcept;

  std::string mti_;
  std::map<int, std::string> fields_;
};

// True for the fields describe() always masks, whatever the dialect says.
bool is_card_data_field(int field) noexcept;

}  // namespace eftd::acq
