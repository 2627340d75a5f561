#include "eftd/journal/records.hpp"

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
  // 128 random bits: collisions are not a practical concern, and ids reveal no order or time.
  auto r = random_bytes(16);
  return to_hex(r.view());
}

}  // namespace eftd::journal
