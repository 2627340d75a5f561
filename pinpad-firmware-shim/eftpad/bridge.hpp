// The till bridge (`eftpad bridge`, LINK.md section 10): terminates the link layer of a pad on
// a serial or USB port and relays the payload byte stream to eftd over TCP, without parsing it
// (TLS is end to end between pad and eftd: the bridge never sees clear data and never logs
// payload bytes).
//
// One TCP connection carries one pad session:
//   - the server connection ends -> the bridge RESETs the link (after what eftd sent last has
//     reached the pad), so the pad drops its session and starts a new one; the pad's bytes
//     wait in the bridge until it has reconnected (servers in turn, backoff as PROTOCOL.md §5);
//   - the pad RESETs the link (a new pad session) -> a server connection that already carried
//     the old session's bytes is closed and a fresh one opened;
//   - the pad's link goes down (no answer) or the port fails -> the server connection is closed
//     and the bridge waits for the pad again.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "eftd/pad/link/link_layer.hpp"
#include "eftd/padsim/tcp_client.hpp"

namespace eftd::eftpad {

struct bridge_options {
  std::string serial_path;   // a tty (termios), or
  std::string usb_selector;  // VID:PID[:SERIAL] (libusb bulk endpoints)
  std::uint32_t baud = 115200;
  std::vector<padsim::server_address> servers;  // tried in turn; at least one
  std::chrono::milliseconds connect_timeout{5000};
  padsim::backoff_policy backoff;
  // A server connection that lasted this long counts as accepted: the bridge cannot read the
  // hello_ack inside TLS, so a refusal (closed right after the pad's hello) is told apart by
  // its short life. After an accepted one the same server is retried first, after the shortest
  // wait; after a short one the next server is tried.
  std::chrono::milliseconds accepted_after{3000};
  // How long the bridge waits, after the server closed, for its last bytes to reach the pad
  // before it RESETs the link (a refusal's hello_ack should still be shown by the pad).
  std::chrono::milliseconds drain_timeout{2000};
  // A server that sends nothing for this long is left for the next one, and the pad's session
  // is reset (0: never). A paused or cut-off active keeps its TCP connection open and says
  // nothing; eftd pings every pad each [pad_health] ping_interval_ms, so set this above that.
  std::chrono::milliseconds server_silence{0};
  // Pad bytes held while there is no server connection; beyond it the pad's session is reset.
  std::size_t max_held_bytes = 64 * 1024;
  pad::link::link_config link;
  bool handle_signals = true;
  // Once, when the link to the pad first comes up (the argument is the port's path).
  std::function<void(const std::string&)> on_ready;
};

// Runs until SIGINT/SIGTERM: 0. 2 when the options are unusable (no server, --usb without USB
// support, a bad baud rate).
int run_bridge(bridge_options options);

}  // namespace eftd::eftpad
