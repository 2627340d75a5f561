#include "eftd/acq/message_mac.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "eftd/acq/codec.hpp"
#include "eftd/core/mac.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acq {

bool mac_applies(const message& m) noexcept {
  return !m.mti().starts_with("08");
}

int mac_field(const message& m) noexcept {
  const auto& f = m.fields();
  for (auto it = f.lower_bound(65); it != f.end(); ++it)
    if (it->first >= 65 && it->first <= 127) return 128;
  return 64;
}

result<bytes> mac_input(const dialect& d, const message& m) {
  message copy = m;
  const int field = mac_field(copy);
  // The other MAC field would end up after (64) or before (128) the real one: drop it.
  copy.erase(field == 64 ? 128 : 64);
  copy.set(field, std::string(message_mac_size, '\0'));
  auto packed = pack(d, copy);
  if (!packed)
    return make_error("acq.encode_error", fmt::format("{}: {}", packed.err().code, packed.err().message));
  // The zero MAC field is the last field on the wire (fixed 8 bytes, no length prefix).
  packed->resize(packed->size() - message_mac_size);
  return packed;
}

status add_mac(const dialect& d, message& m, const mac_function& mac) {
  if (!mac_applies(m)) return {};
  auto input = mac_input(d, m);
  if (!input) return input.err();
  auto value = mac(*input);
  secure_wipe(input->data(), input->size());
  if (!value) return value.err();
  if (value->size() != message_mac_size)
    return make_error("acq.bad_mac", "the MAC function did not return 8 bytes");
  const int field = mac_field(m);
  m.erase(field == 64 ? 128 : 64);
  m.set(field, std::string(value->begin(), value->end()));
  return {};
}

status verify_mac(const message& m, byte_view wire, const mac_function& mac) {
  if (!mac_applies(m)) return {};
  const int field = mac_field(m);
  auto got = m.get(field);
  if (!got) return make_error("acq.bad_mac", fmt::format("field {} (MAC) is missing", field));
  if (got->size() != message_mac_size || m.fields().rbegin()->first != field ||
      wire.size() < message_mac_size)
    return make_error("acq.bad_mac", fmt::format("field {} (MAC) is malformed", field));
  const byte_view received = wire.last(message_mac_size);
  // Post of unpack: field `field` is the last one, so the wire ends with its 8 bytes.
  if (!std::equal(received.begin(), received.end(), got->begin(), got->end(),
                  [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); }))
    return make_error("acq.bad_mac", fmt::format("field {} (MAC) is not the last bytes", field));
  auto expected = mac(wire.first(wire.size() - message_mac_size));
  if (!expected) return expected.err();
  if (!mac_equal(*expected, received))
    return make_error("acq.bad_mac", fmt::format("field {} (MAC) does not verify", field));
  return {};
}

}  // namespace eftd::acq
