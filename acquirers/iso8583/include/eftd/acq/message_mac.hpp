// The message MAC rule shared by the acquirer link (eftd's side) and the acquirer simulator.
//
// Which messages: every message except 08xx network management (sign-on and echo tests must
// work before and without keys, and are answered by either end).
// Where: field 64, or field 128 when the message has a secondary bitmap (any field 65..127).
// Over what: the message packed with the MAC field set to 8 zero bytes, without those 8 bytes
// at the end. The MAC field is the highest-numbered field, so it is always the last on the
// wire, and the bitmap bit for it is part of what is authenticated. The length header and a
// TPDU are framing and are not covered.
// How: the caller's mac_function (eftd: the key module's ISO 9797-1 algorithm 3, padding
// method 1, full 8 bytes), so this file never sees a key.
//
// Error codes: "acq.bad_mac" (missing, wrong length or wrong MAC: the message is not
// trusted), "acq.encode_error" (the message does not pack), or the mac_function's own error.
// No error text carries a MAC value or message data.
#pragma once

#include <functional>

#include "eftd/acq/dialect.hpp"
#include "eftd/acq/message.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acq {

inline constexpr std::size_t message_mac_size = 8;

// data -> 8-byte MAC.
using mac_function = std::function<result<bytes>(byte_view)>;

// False for 08xx.
bool mac_applies(const message& m) noexcept;
// 128 when a field 65..127 is present, else 64.
int mac_field(const message& m) noexcept;

// The bytes the MAC covers (see above). `m` may or may not carry a MAC already.
result<bytes> mac_input(const dialect& d, const message& m);

// Sets the MAC field of `m` (does nothing for 08xx).
status add_mac(const dialect& d, message& m, const mac_function& mac);

// Checks the MAC of a received message: `m` is `wire` (the payload inside the frame) unpacked.
// The MAC is computed over the bytes as received, not a re-encoding, so an encoding the codec
// accepts but would not produce itself cannot change what was authenticated. Success for
// 08xx; acq.bad_mac when the MAC field is absent, not the last field, or wrong.
status verify_mac(const message& m, byte_view wire, const mac_function& mac);

}  // namespace eftd::acq
