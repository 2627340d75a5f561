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
inline constexpr std::uint8_t line = 0x01, language = 0x02, align = 0x03;
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

namespace ping {
inline constexpr std::uint8_t timestamp = 0x01;
}
namespace pong {
inline constexpr std::uint8_t timestamp = 0x01;
}
namespace get_status {
inline constexpr std::uint8_t timeout_ms = 0x01;
}
namespace beep {
inline constexpr std::uint8_t count = 0x01, duration_ms = 0x02, timeout_ms = 0x03;
}
namespace leds {
inline constexpr std::uint8_t which = 0x01, state = 0x02, timeout_ms = 0x03;
}
namespace get_key {
inline constexpr std::uint8_t timeout_ms = 0x01, prompt = 0x02;
}
namespace get_amount {
inline constexpr std::uint8_t currency = 0x01, exponent = 0x02, min_amount = 0x03, max_amount = 0x04,
                              timeout_ms = 0x05, prompt = 0x06;
}
namespace confirm {
inline constexpr std::uint8_t timeout_ms = 0x01, prompt = 0x02;
}
namespace menu {
inline constexpr std::uint8_t title = 0x01, item = 0x02, timeout_ms = 0x03;
}
namespace remove_card {
inline constexpr std::uint8_t timeout_ms = 0x01, prompt = 0x02;
}
namespace reset {
inline constexpr std::uint8_t timeout_ms = 0x01;
}
namespace pad_status {
inline constexpr std::uint8_t model = 0x01, serial = 0x02, firmware = 0x03, capabilities = 0x04, ksn = 0x05,
                              dukpt_counter = 0x06, language = 0x07;
}
namespace key_pressed {
inline constexpr std::uint8_t key = 0x01;
}
namespace amount_entered {
inline constexpr std::uint8_t amount = 0x01, currency = 0x02;
}
namespace confirmation {
inline constexpr std::uint8_t yes = 0x01;
}
namespace menu_choice {
inline constexpr std::uint8_t index = 0x01;
}

}  // namespace eftd::pad::tags
