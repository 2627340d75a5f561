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
inline constexpr std::uint8_t mode = 0x01, track2 = 0x02, fallback = 0x03, ksn = 0x04, sealed_track2 = 0x05,
                              atr = 0x06;
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
namespace get_pin {
inline constexpr std::uint8_t amount = 0x01, currency = 0x02, format = 0x03, min_digits = 0x04,
                              max_digits = 0x05, bypass = 0x06, timeout_ms = 0x07, prompt = 0x08;
}
namespace pin_entered {
inline constexpr std::uint8_t pin_block = 0x01, ksn = 0x02, bypassed = 0x03;
}
namespace offline_pin {
inline constexpr std::uint8_t mode = 0x01, modulus = 0x02, exponent = 0x03, challenge = 0x04,
                              min_digits = 0x05, max_digits = 0x06, bypass = 0x07, timeout_ms = 0x08,
                              prompt = 0x09, tries_left = 0x0A;
}
namespace offline_pin_result {
inline constexpr std::uint8_t sw = 0x01, bypassed = 0x02;
}
namespace power_on {
inline constexpr std::uint8_t interface = 0x01, timeout_ms = 0x02;
}
namespace atr {
inline constexpr std::uint8_t atr = 0x01;
}
namespace apdu {
inline constexpr std::uint8_t capdu = 0x01, timeout_ms = 0x02;
}
namespace apdu_response {
inline constexpr std::uint8_t rapdu = 0x01, sealed = 0x02, ksn = 0x03, item = 0x04;
}
namespace power_off {
inline constexpr std::uint8_t timeout_ms = 0x01;
}
namespace apdu_script {
inline constexpr std::uint8_t capdu = 0x01, stop = 0x02, timeout_ms = 0x03, interface = 0x04;
}
namespace script_result {
inline constexpr std::uint8_t rapdu = 0x01, sealed = 0x02, ksn = 0x03, atr = 0x04, first_item = 0x05,
                              elapsed_ms = 0x06;
}

}  // namespace eftd::pad::tags
