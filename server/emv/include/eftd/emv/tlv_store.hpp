// The kernel's data: every data object the card sent or the terminal set, by tag, and the
// data object lists (PDOL, CDOL1/2, DDOL, TDOL) built from it.
//
// Values live in secure_bytes because records carry the PAN, track 2 equivalent data and the
// cardholder name (5A, 57, 5F20, 9F1F, 56); they are wiped when overwritten or destroyed and
// there is no printer for a store.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::emv {

class tlv_store {
 public:
  bool has(std::uint32_t tag) const { return values_.count(tag) != 0; }
  // The value, valid until the tag is set again or erased; nullopt when absent.
  std::optional<byte_view> get(std::uint32_t tag) const;
  // Empty when absent: for callers that treat "absent" and "empty" alike.
  byte_view get_or_empty(std::uint32_t tag) const;
  void set(std::uint32_t tag, byte_view value);
  void erase(std::uint32_t tag) { values_.erase(tag); }
  std::vector<std::uint32_t> tags() const;

 private:
  std::map<std::uint32_t, secure_bytes> values_;
};

// How a data element is padded or cut to the length a DOL asks for (EMV Book 3 5.4).
enum class data_format { binary, numeric, compressed_numeric };
data_format format_of(std::uint32_t tag);

struct dol_entry {
  std::uint32_t tag = 0;
  std::size_t length = 0;
};

// Errors: "emv.bad_dol" (a cut tag or length, a tag longer than 3 bytes, a length byte in
// long form: DOL lengths are one byte).
result<std::vector<dol_entry>> parse_dol(byte_view dol);

// The concatenated values the DOL asks for (Book 3 5.4): a known value longer than asked is
// cut (numeric: leftmost digits dropped; others: rightmost bytes dropped), a shorter one is
// padded (numeric: leading 00; compressed numeric: trailing FF; others: trailing 00); an
// unknown tag or a constructed tag gives zeros of the asked length.
bytes build_dol_data(const std::vector<dol_entry>& dol, const tlv_store& store);
result<bytes> build_dol_data(byte_view dol, const tlv_store& store);

}  // namespace eftd::emv
