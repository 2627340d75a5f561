#include "eftd/journal/records.hpp"

#include <chrono>
#include <cstdint>

#include "eftd/core/crypto.hpp"

namespace eftd::journal {

std::string_view to_string(actor a) noexcept {
  switch (a) {
    case actor::pos:
      return "pos";
    case actor::pad:
      return "pad";
    case actor::acquirer:
      return "acquirer";
    case actor::operator_:
      return "operator";
    case actor::server:
      return "server";
  }
  return "server";
}

std::optional<actor> parse_actor(std::string_view s) noexcept {
  for (auto a : {actor::pos, actor::pad, actor::acquirer, actor::operator_, actor::server}) {
    if (to_string(a) == s) return a;
  }
  return std::nullopt;
}

std::string new_id() {
  // The milliseconds since 1970 (48 bits), then 80 random bits. Ids made in the same
  // millisecond stay unpredictable and collide with a chance of 2^-80, and ids made later
  // sort after earlier ones: a day's orders, operations and messages are appended at the right
  // edge of their primary keys and of every index that starts with an id, instead of dirtying
  // a page anywhere in the tree with each insert (a group commit then writes a few pages per
  // index, not one per row).
  const auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
  const auto r = random_bytes(10);
  bytes id(6);
  for (std::size_t i = 0; i < 6; ++i) id[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  id.insert(id.end(), r.view().begin(), r.view().end());
  return to_hex(id);
}

}  // namespace eftd::journal
