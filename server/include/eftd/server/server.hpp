// eftd's public face: build a server from a configuration and run it until SIGINT/SIGTERM.
// Everything else in server/ is private to this library.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "eftd/core/config.hpp"

namespace eftd::server {

struct run_options {
  std::size_t threads = 2;  // io_context threads
  bool print_ready = true;  // print `READY {"pos":P,"pad":Q}` on stdout once listening
  // Where the configuration came from, for `eftctl reload` and SIGHUP: the same file is read
  // again and the same --set overrides applied on top (the command line wins). An empty path:
  // reloads are refused.
  std::filesystem::path config_file;
  std::vector<std::string> overrides;
};

// Opens the journal, binds the listeners and serves until a termination signal. SIGHUP (like
// `eftctl reload`) reloads options.config_file at run time (server/src/reload.hpp).
// Returns a process exit code: 0 after a clean shutdown, 1 when start-up failed (the reason
// has been logged and printed to stderr: port in use, journal unusable, ...).
int run(const config::server_config& cfg, const run_options& options);

}  // namespace eftd::server
