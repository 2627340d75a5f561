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

#include <cstdint>
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
};

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

class pad_session {
 public:
  pad_session(pad_identity id, display_device& display, card_reader& reader);

  // Starts a new connection: fresh counters and reader, returns the hello frame to send first.
  eftd::bytes start();

  // Bytes received: the replies to send and what happened. An error means close the
  // connection (replies to earlier frames of the same chunk are dropped with it) and log
  // error.code/message. Error codes:
  // the codec's pad.* framing/header codes, pad.replay, padsim.refused (message = server's
  // reason), padsim.bad_ref (hello_ack answers another seq), padsim.not_accepted (a command
  // before the handshake).
  eftd::result<session_output> on_bytes(eftd::byte_view data);

  bool accepted() const noexcept { return accepted_; }
  const pad_identity& identity() const noexcept { return id_; }

 private:
  eftd::status on_frame(eftd::byte_view frame, session_output& out);
  void reply(std::uint32_t ref, pad::message body, session_output& out);

  pad_identity id_;
  display_device& display_;
  card_reader& reader_;
  pad::frame_reader frames_;
  pad::replay_guard inbound_;
  pad::seq_counter outbound_;
  std::uint32_t hello_seq_ = 0;
  bool accepted_ = false;
};

}  // namespace eftd::padsim
