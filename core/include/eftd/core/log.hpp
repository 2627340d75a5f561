// Process-wide logging on spdlog: one default logger per process, configured from [log].
//
// Formats:
//   text  2024-05-01T12:00:00.123Z info [eftd] message
//   json  {"ts":"2024-05-01T12:00:00.123Z","level":"info","proc":"eftd","msg":"message"}  (one per line)
// Timestamps are UTC. Control characters in messages are escaped in both formats, so text a
// peer sent can never forge a second log line. Card data cannot reach a log line in the clear:
// the card types format themselves masked, and nothing else holds card data.
// Every line is flushed at once: after a crash, the last lines explain it.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"

namespace eftd {

// Builds the logger and makes it spdlog's default: code logs with spdlog::info(...) or
// eftd::logger()->info(...). Call once at start-up, before other threads log.
// Errors ("log.level", "log.format", "log.file" codes: unknown level/format, log file cannot
// be opened) leave the previous default logger in place.
status try_init_logging(const config::logging& cfg, std::string_view process_name);

// As try_init_logging, but never fails: on error it logs to stderr in the requested format
// (or text) and writes the reason as the first error line. For mains.
void init_logging(const config::logging& cfg, std::string_view process_name);

// A [log] level name (trace, debug, info, warn/warning, error, critical, off). Error "log.level".
result<spdlog::level::level_enum> parse_log_level(std::string_view name);

// The process logger (spdlog's default logger).
std::shared_ptr<spdlog::logger> logger();

}  // namespace eftd
