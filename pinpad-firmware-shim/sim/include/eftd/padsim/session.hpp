// The pad-side command executor for one connection, sans-I/O: bytes in, frames out.
// Every transport (TCP now; TLS, serial and USB link layers later) drives the same session.
//
// Rules it enforces (PROTOCOL.md): hello is the pad's first frame; until an accepted
// hello_ack answering it arrives, nothing else is executed; every command gets exactly one
// reply with ref = the command's seq; inbound seq must be strictly increasing (pad.replay).
// Unknown message type -> pad_error unsupported; a command whose body does not decode ->
// pad_error bad_request. Errors returned by on_bytes() mean "close this connection":
// framing errors, bad version, replay, refusal, protocol order violations.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/padsim/hardware.hpp"

namespace eftd::padsim {

struct pad_identity {
  std::string pad_id;
  std::string serial;
  std::string model = "eftpad-virtual";
  std::string firmware = "0.1.0";
  std::vector<std::string> capabilities{"display", "magstripe"};
  // Reported by get_status: key serial numbers and their DUKPT transaction counters (same
  // order), and the display languages.
  std::vector<eftd::bytes> ksns;
  std::vector<std::uint32_t> dukpt_counters;
  std::vector<std::string> languages{"en"};
};

// capability_bit mask for capability names ("display", "beep", "leds", "keypad", "magstripe",
// "chip", "contactless"); unknown names add nothing.
std::uint32_t capability_bits(const std::vector<std::string>& names);

enum class session_event : std::uint8_t {
  accepted,       // hello_ack accepted=true arrived
  displayed,      // a display command was shown and acked
  card_answered,  // a read_card got its reply (card_read or pad_error)
  cancelled,      // a cancel was acked
};

struct session_output {
  std::vector<eftd::bytes> send;  // complete frames, in order
  std::vector<session_event> events;
};

// Waiting commands (get_key, get_amount, confirm, menu, remove_card) do not answer at once:
// the session keeps one of them pending, polls the keypad / reader whenever the transport
// calls on_bytes() or on_tick(), and answers when the input arrives, when its timeout_ms
// passes (pad_error timeout), on the cancel key or a cancel / reset command (cancelled).
// While one waits, only ping, get_status, cancel and reset are executed; any other command
// is answered pad_error busy.
class pad_session {
 public:
  // How often the transport should poll (on_tick) while a command waits for input.
  static constexpr std::chrono::milliseconds poll_interval{10};

  // Without a keypad, get_key/get_amount/confirm/menu are answered pad_error unsupported.
  pad_session(pad_identity id, display_device& display, card_reader& reader);
  pad_session(pad_identity id, display_device& display, card_reader& reader, keypad& keys);

  // Starts a new connection: fresh counters and reader, returns the hello frame to send first.
  eftd::bytes start();

  // Bytes received: the replies to send and what happened. An error means close the
  // connection (replies to earlier frames of the same chunk are dropped with it) and log
  // error.code/message. Error codes:
  // the codec's pad.* framing/header codes, pad.replay, padsim.refused (message = server's
  // reason), padsim.bad_ref (hello_ack answers another seq), padsim.not_accepted (a command
  // before the handshake).
  eftd::result<session_output> on_bytes(eftd::byte_view data);
  eftd::result<session_output> on_bytes(eftd::byte_view data, pad_clock::time_point now);

  // Time passed: polls the keypad/reader for a waiting command and answers it if its input
  // arrived or its deadline passed.
  session_output on_tick(pad_clock::time_point now);

  // When on_tick() is due next (the earlier of the next poll and the waiting command's
  // deadline); nullopt when no command waits.
  std::optional<pad_clock::time_point> wake_at() const;
  bool waiting() const noexcept { return pending_.has_value(); }

  bool accepted() const noexcept { return accepted_; }
  const pad_identity& identity() const noexcept { return id_; }

 private:
  struct pending_command {
    pad::message command;
    std::uint32_t ref = 0;
    pad_clock::time_point deadline;
    std::string digits;  // get_amount: typed so far
  };

  eftd::status on_frame(eftd::byte_view frame, session_output& out);
  void reply(std::uint32_t ref, pad::message body, session_output& out);
  void execute(std::uint32_t ref, pad::message& m, session_output& out);
  void start_waiting(std::uint32_t ref, pad::message m, std::uint32_t timeout_ms, session_output& out);
  void advance(session_output& out);
  // Answers the waiting command and forgets it.
  void finish(pad::message body, session_output& out);
  void fail(std::uint32_t ref, pad::pad_error_code code, std::string text, session_output& out);
  void show_amount(const pad::get_amount& a, const std::string& digits);

  pad_identity id_;
  display_device& display_;
  card_reader& reader_;
  keypad* keypad_ = nullptr;
  std::optional<pending_command> pending_;
  pad_clock::time_point now_{};
  pad_clock::time_point last_poll_{};
  pad::frame_reader frames_;
  pad::replay_guard inbound_;
  pad::seq_counter outbound_;
  std::uint32_t hello_seq_ = 0;
  bool accepted_ = false;
};

}  // namespace eftd::padsim
