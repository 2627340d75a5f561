// The byte form of a journal batch as shipped to a hot standby.
//
// The active node encodes every committed batch; the standby decodes it and applies the very
// same records to its own journal. Versioned by its magic and self-delimiting:
//
//   batch   = "EJB1"  u32 count  record{count}        nothing may follow the last record
//   record  = u8 tag  u32 length  body[length]        the body must be consumed exactly
//
// All integers are big-endian. A body holds the record's fields in declaration order
// (records.hpp):
//   std::string, bytes        u32 length + the bytes (at most 16 MiB)
//   std::int64_t              8 bytes, two's complement
//   std::uint32_t             4 bytes
//   bool                      u8, 0 or 1
//   actor                     u8: pos 0, pad 1, acquirer 2, operator 3, server 4
//   std::optional<T>          u8 presence (0 absent, 1 present) then T when present
//   stored_pan                ciphertext (bytes), masked (string), search_hash (string)
//   settlement_totals         8 x int64 in declaration order
// A whole encoded batch is at most 64 MiB.
//
// Tags are fixed constants (replica_tag below), not the variant index, so a record type added
// to `record` later gets a new tag and old tags keep their meaning. A format change that old
// decoders cannot read gets a new magic.
//
// Decoding is strict and total: any input either decodes or fails with journal.bad_replica.
// The message names the record index, its type and field and what was wrong, never a field's
// value (a stored_pan's ciphertext and masked form are card data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <variant>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/journal/records.hpp"

namespace eftd::journal {

inline constexpr std::size_t max_replica_batch_size = 64u << 20;
inline constexpr std::size_t max_replica_string_size = 16u << 20;

// The wire tag of each record type. Never reuse or renumber one; a new record type takes the
// next free number.
template <class T>
struct replica_tag;  // no value: a record type without a tag does not compile (see below)

// clang-format off
template <> struct replica_tag<order_created>            { static constexpr std::uint8_t value = 0; };
template <> struct replica_tag<order_updated>            { static constexpr std::uint8_t value = 1; };
template <> struct replica_tag<operation_created>        { static constexpr std::uint8_t value = 2; };
template <> struct replica_tag<operation_updated>        { static constexpr std::uint8_t value = 3; };
template <> struct replica_tag<acquirer_message_written> { static constexpr std::uint8_t value = 4; };
template <> struct replica_tag<acquirer_message_updated> { static constexpr std::uint8_t value = 5; };
template <> struct replica_tag<event_appended>           { static constexpr std::uint8_t value = 6; };
template <> struct replica_tag<counter_set>              { static constexpr std::uint8_t value = 7; };
template <> struct replica_tag<pad_health_set>           { static constexpr std::uint8_t value = 8; };
template <> struct replica_tag<settlement_batch_written> { static constexpr std::uint8_t value = 9; };
template <> struct replica_tag<settlement_batch_updated> { static constexpr std::uint8_t value = 10; };
template <> struct replica_tag<settlement_step_written>  { static constexpr std::uint8_t value = 11; };
template <> struct replica_tag<settlement_step_updated>  { static constexpr std::uint8_t value = 12; };
template <> struct replica_tag<audit_appended>           { static constexpr std::uint8_t value = 13; };
template <> struct replica_tag<batch_still_open>         { static constexpr std::uint8_t value = 14; };
template <> struct replica_tag<case_resolved>            { static constexpr std::uint8_t value = 15; };
template <> struct replica_tag<notification_updated>     { static constexpr std::uint8_t value = 16; };
template <> struct replica_tag<notification_created>     { static constexpr std::uint8_t value = 17; };
template <> struct replica_tag<shared_file_set>          { static constexpr std::uint8_t value = 18; };
// clang-format on

namespace detail {
template <class V, std::size_t... I>
constexpr bool replica_tags_unique(std::index_sequence<I...>) {
  constexpr std::uint8_t tags[] = {replica_tag<std::variant_alternative_t<I, V>>::value...};
  for (std::size_t a = 0; a < sizeof...(I); ++a)
    for (std::size_t b = a + 1; b < sizeof...(I); ++b)
      if (tags[a] == tags[b]) return false;
  return true;
}
}  // namespace detail

// Fails to compile when an alternative of `record` has no replica_tag; fails when two share one.
static_assert(detail::replica_tags_unique<record>(std::make_index_sequence<std::variant_size_v<record>>{}),
              "every journal::record alternative needs its own replica_tag");

// Precondition: the batch respects the limits above (the encoder does not check them; a batch
// beyond them is refused by decode_batch, so the sender should check the encoded size).
bytes encode_batch(const batch& b);

// Strict inverse of encode_batch. Errors: journal.bad_replica.
result<batch> decode_batch(byte_view data);

}  // namespace eftd::journal
