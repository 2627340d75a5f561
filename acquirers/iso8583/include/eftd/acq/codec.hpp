// ISO 8583 pack/unpack driven by a dialect table (dialect.hpp). Sans-I/O: bytes in, bytes out.
//
// Every length read from the wire is bounds-checked before use. Errors name the field and
// the sizes involved, never a value ("field 35: length 40 exceeds 37").
//
// Error codes:
//   iso8583.truncated_mti         fewer bytes than the MTI needs
//   iso8583.bad_mti               MTI is not 4 decimal digits (pack and unpack; BCD nibbles > 9)
//   iso8583.truncated_bitmap      input ends inside the primary or secondary bitmap
//   iso8583.bad_bitmap            a hex bitmap holds a non-hex character
//   iso8583.unknown_field         a field (bit or message entry) not defined in the dialect
//   iso8583.bad_field_number      pack(): a field number outside 2..128
//   iso8583.truncated_field       input ends inside a field's length prefix or value
//   iso8583.bad_length_prefix     a length prefix is not decimal digits (ASCII or BCD nibbles)
//   iso8583.field_too_long        a length above the field's maximum (or fixed size)
//   iso8583.bad_length            pack(): a fixed field without padding has the wrong length
//   iso8583.bad_content           characters not allowed by the content type (n, an, ans, z, xn),
//                                 or a BCD pad nibble that is not 0
//   iso8583.trailing_bytes        unpack(): bytes left after the last field in the bitmap
//   iso8583.unsupported_encoding  the dialect uses an encoding not implemented (EBCDIC), or BCD
//                                 on content it cannot carry (an, ans, b)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "eftd/acq/dialect.hpp"
#include "eftd/acq/message.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acq {

// MTI, bitmap(s), then every present field in ascending order. The secondary bitmap is
// written only when a field 65..128 is present. Fixed fields shorter than their size are
// padded as the spec says; anything else that does not fit is an error.
result<bytes> pack(const dialect& d, const message& m);

// Exactly one message: bytes after the last field are "iso8583.trailing_bytes".
// A secondary bitmap that is present but empty is accepted.
result<message> unpack(const dialect& d, byte_view data);

struct unpack_info {
  std::size_t consumed = 0;  // bytes used by the message (success), or offset of the failure
  int failed_field = 0;      // the field being decoded when it failed; 0 for MTI/bitmap/trailing
  // On failure: the MTI and the fields decoded before the failing one, so a caller can
  // still match a broken response to its request. Empty on success.
  message partial;
};

// One message from the front of `data`; trailing bytes are not an error (info.consumed says
// where the message ended).
result<message> unpack_prefix(const dialect& d, byte_view data, unpack_info& info);

// Field-level building blocks (used by pack/unpack; exposed for golden tests of encodings).
// Appends the field's wire form (length prefix + value) to `out`.
status pack_field(const field_spec& spec, std::string_view value, bytes& out);
// Decodes the field at the front of `in` into `value`; returns the bytes consumed. On an
// error `value` is empty (its previous content wiped).
result<std::size_t> unpack_field(const field_spec& spec, byte_view in, std::string& value);

}  // namespace eftd::acq
