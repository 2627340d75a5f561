// eftd's public face: build a server from a configuration and run it until SIGINT/SIGTERM.
// Everything else in server/ is private to this library.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "eftd/core/config.hpp"

namespace eftd::server {

struct run_options {
  std::size_t threads = 2;  // io_context threads
  bool print_ready = true;  // print `READY {"pos":P,"pad":Q}` on stdout once listening
};

// Opens the journal, binds the listeners and serves until a termination signal.
// Returns a process exit code: 0 after a clean shutdown, 1 when start-up failed (the reason
// has been logged and printed to stderr: port in use, journal unusable, ...).
int run(const config::server_config& cfg, const run_options& options);

}  // namespace eftd::server
