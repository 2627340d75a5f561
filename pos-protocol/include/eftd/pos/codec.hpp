// POS protocol codec: one message <-> one NDJSON line. Sans-I/O, never throws.
//
// Wire rules (PROTOCOL.md): every line is one UTF-8 JSON object terminated by '\n', at most
// max_line_bytes bytes before the '\n'. Every message has "type" and "v". Unknown fields are
// ignored; an unknown "type" is pos.unknown_type; a missing required field is
// pos.missing_field and a field of the wrong JSON type is pos.bad_field, both with the field
// name in error::message (never its value).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eftd/core/result.hpp"
#include "eftd/pos/codes.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::pos {

// Longest line (without its '\n') a receiver accepts.
inline constexpr std::size_t max_line_bytes = 65536;

// Decodes one line (without the '\n'; a trailing '\r' or whitespace is tolerated).
// Errors: pos.bad_json, pos.unknown_type, pos.missing_field, pos.bad_field,
// pos.unsupported_version ("v" other than 1), pos.frame_too_large (line > max_line_bytes).
eftd::result<message> decode(std::string_view line);

// Encodes as one compact JSON object followed by '\n'. Keys: "type", "v", then the fields in
// the order of the message tables in PROTOCOL.md; optional fields at their default
// ("" / 0 / empty / absent) are omitted. The output is exactly what the golden tests pin.
// Invalid UTF-8 in a string field is replaced by U+FFFD rather than failing.
std::string encode(const message& m);

// The same with the server's fencing epoch (hot standby, server/HA.md) after "v": every answer
// of a node in a pair carries it, so a POS can tell an answer of a deposed node (a lower epoch
// than one it has already seen) and drop it. 0 = a single node: no "epoch" field.
std::string encode(const message& m, std::uint64_t epoch);

// The "epoch" of a line (0 when absent or not a non-negative integer).
std::uint64_t peek_epoch(std::string_view line);

// Best effort: the "id" of a line that failed to decode, so an error reply can echo it.
// "" when the line is not a JSON object or has no string "id".
std::string peek_id(std::string_view line);

// Splits a byte stream into lines. Feed whatever the socket delivered, then call next()
// until it yields nullopt. Empty lines are skipped (tolerated as keep-alives); a trailing
// '\r' is removed. Once a line exceeds max_line bytes (with or without its '\n' having
// arrived) next() returns pos.frame_too_large, from then on always: the receiver closes
// the connection, because it can no longer find the start of the next message reliably.
class line_reader {
 public:
  explicit line_reader(std::size_t max_line = max_line_bytes);

  void feed(std::string_view bytes);
  eftd::result<std::optional<std::string>> next();

  // Bytes received but not yet returned as a line.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }
  bool failed() const noexcept { return failed_; }

 private:
  std::size_t max_line_;
  std::string buf_;
  std::size_t pos_ = 0;   // start of the first unconsumed byte
  std::size_t scan_ = 0;  // where the search for '\n' resumes (bytes before it hold none)
  bool failed_ = false;
};

}  // namespace eftd::pos
