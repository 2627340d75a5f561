// Configuration reload at run time (`eftctl reload` through the admin socket, or SIGHUP).
//
// The file eftd started with is read again, the same --set overrides are applied on top (the
// command line wins), check_ready runs, and config::reload_changes compares the result with the
// configuration in force. Either the new configuration is installed in one step
// (server_context::install_config) or nothing changes and the reason is returned.
//
// After an install:
//   - log.level is applied to the process logger;
//   - a till that is no longer configured has its POS connection ended: the POS gets an
//     "unknown_till" error and is disconnected (a transaction it runs goes on to its final
//     state in the journal); its next login is refused;
//   - a pad that is no longer configured, or whose entry changed (revoked, another serial), is
//     disconnected at once; it reconnects by itself and its hello is checked against the new
//     entry (refused when removed or revoked).
// Everything else takes effect at its next use (the next transaction, the next ping); the POS
// idle timeout ([timeouts] pos_idle_ms) applies to connections made after the reload.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "context.hpp"
#include "eftd/core/result.hpp"

namespace eftd::server {

class config_reloader {
 public:
  config_reloader(server_context& ctx, std::filesystem::path file, std::vector<std::string> overrides);

  // Loads, checks and installs. Value: what changed (config::reload_changes; empty: nothing).
  // Errors: the loader's (config.io, config.syntax, config.invalid), config.override,
  // config.not_ready, config.needs_restart, config.no_file (eftd was given no file). One
  // reload at a time: the admin socket and SIGHUP may ask together.
  result<std::vector<std::string>> reload();

  const std::filesystem::path& file() const { return file_; }

 private:
  void end_removed_sessions(const config::server_config& before, const config::server_config& after);

  server_context& ctx_;
  std::filesystem::path file_;
  std::vector<std::string> overrides_;
  std::mutex mu_;
};

// For replies and log lines: "tills: added T09; limits", or "no change".
std::string describe_changes(const std::vector<std::string>& changed);

// SIGHUP: reload, log the outcome, and audit it (a "requested" record first, then the
// outcome) with actor "SIGHUP" and source "config" (the audit schema has no signal source).
boost::asio::awaitable<void> reload_on_signal(server_context& ctx, config_reloader& reloader);

}  // namespace eftd::server
