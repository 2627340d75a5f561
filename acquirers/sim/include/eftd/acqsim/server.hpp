// The acquirer host simulator as a TCP server (Asio coroutines, one per connection; many
// connections at once). Bad input never stops it: a frame that does not decode is logged and
// not answered; a broken length header (the stream lost sync) closes that connection only.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "eftd/acq/framing.hpp"
#include "eftd/acqsim/host.hpp"

namespace eftd::acqsim {

struct server_options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free port, reported in the READY line
  std::string dialect = "iso87-ascii";
  acq::frame_options framing{};
  rules decisions{};
};

// Listens, prints `READY {"port":N}` to `out` (flushed), serves until SIGINT/SIGTERM, then
// prints `SUMMARY {...}` and returns 0. Start-up failures (unknown dialect, bind error) are
// logged and return 2.
int run_server(const server_options& opts, std::ostream& out);

}  // namespace eftd::acqsim
