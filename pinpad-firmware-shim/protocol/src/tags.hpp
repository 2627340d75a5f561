// Tag numbers per message type. Tags are local to a message type; message_table() in
// codec.cpp is the single description of them (kind, limits, required/repeated).
#pragma once

#include <cstdint>

namespace eftd::pad::tags {

namespace hello {
inline constexpr std::uint8_t version = 0x01, pad_id = 0x02, serial = 0x03, model = 0x04, firmware = 0x05,
                              capability = 0x06;
}
namespace hello_ack {
inline constexpr std::uint8_t accepted = 0x01, server = 0x02, reason = 0x03;
}
namespace display {
inline constexpr std::uint8_t line = 0x01, language = 0x02;
}
namespace read_card {
inline constexpr std::uint8_t amount = 0x01, currency = 0x02, interfaces = 0x03, timeout_ms = 0x04,
                              prompt = 0x05;
}
namespace pad_error {
inline constexpr std::uint8_t code = 0x01, text = 0x02;
}
namespace card_read {
inline constexpr std::uint8_t mode = 0x01, track2 = 0x02, fallback = 0x03;
}
namespace event_key {
inline constexpr std::uint8_t key = 0x01;
}

}  // namespace eftd::pad::tags
