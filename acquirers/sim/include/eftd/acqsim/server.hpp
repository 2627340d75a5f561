// The acquirer host simulator as a TCP server (Asio coroutines, one per connection; many
// connections at once). Bad input never stops it: a frame that does not decode is logged and
// not answered; a broken length header (the stream lost sync) closes that connection only.
#pragma once

#include <cstdint>
#include <functional>
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
  // TLS (PEM files): with tls_cert_file set every connection must complete a TLS handshake
  // (TLS 1.2+) before its first frame; with tls_client_ca_file the client must also present a
  // certificate issued by that CA. A failed handshake closes that connection only.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Called once after serving stops (SIGINT/SIGTERM), before the SUMMARY line: e.g. writes
  // the settlement file from the ledger.
  std::function<void(const host&)> at_shutdown;
};

// Listens, prints `READY {"port":N}` to `out` (flushed), serves until SIGINT/SIGTERM, then
// prints `SUMMARY {...}` and returns 0. Start-up failures (unknown dialect, bind error, a TLS
// file that cannot be loaded) are logged and return 2.
int run_server(const server_options& opts, std::ostream& out);

}  // namespace eftd::acqsim
