// spdlog set-up: text or JSON-lines formatter, stderr or file sink.
#include "eftd/core/log.hpp"

#include <fmt/format.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <exception>
#include <string>

namespace eftd {

namespace {

// ISO 8601 UTC with milliseconds: sortable and unambiguous across servers in different zones.
void append_timestamp(spdlog::log_clock::time_point tp, spdlog::memory_buf_t& dest) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(tp);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp - secs).count();
  const std::time_t t = spdlog::log_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(dest), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// JSON string escaping (RFC 8259). Also used for text lines: a message is one line, always.
// Bytes >= 0x80 pass through; a JSON reader that insists on UTF-8 sees what the code logged.
void append_escaped(std::string_view s, spdlog::memory_buf_t& dest) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(dest), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          dest.push_back(ch);
        }
    }
  }
}

// Text escaping: like JSON, except quotes stay as they are (they are common in messages).
void append_text_escaped(std::string_view s, spdlog::memory_buf_t& dest) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      dest.append(std::string_view("\\\\"));
    } else if (c == '\n') {
      dest.append(std::string_view("\\n"));
    } else if (c == '\r') {
      dest.append(std::string_view("\\r"));
    } else if (c == '\t') {
      dest.append(std::string_view("\\t"));
    } else if (c < 0x20 || c == 0x7f) {
      fmt::format_to(std::back_inserter(dest), "\\x{:02x}", static_cast<unsigned>(c));
    } else {
      dest.push_back(ch);
    }
  }
}

std::string_view payload(const spdlog::details::log_msg& msg) {
  return {msg.payload.data(), msg.payload.size()};
}

// The same names as log.level in the config ("warn", not spdlog's "warning").
std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

class text_formatter final : public spdlog::formatter {
 public:
  explicit text_formatter(std::string proc) : proc_(std::move(proc)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append_timestamp(msg.time, dest);
    dest.push_back(' ');
    dest.append(level_name(msg.level));
    dest.append(std::string_view(" ["));
    append_text_escaped(proc_, dest);
    dest.append(std::string_view("] "));
    append_text_escaped(payload(msg), dest);
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<text_formatter>(proc_);
  }

 private:
  std::string proc_;
};

class json_formatter final : public spdlog::formatter {
 public:
  explicit json_formatter(std::string proc) : proc_(std::move(proc)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    dest.append(std::string_view("{\"ts\":\""));
    append_timestamp(msg.time, dest);
    dest.append(std::string_view("\",\"level\":\""));
    dest.append(level_name(msg.level));
    dest.append(std::string_view("\",\"proc\":\""));
    append_escaped(proc_, dest);
    dest.append(std::string_view("\",\"msg\":\""));
    append_escaped(payload(msg), dest);
    dest.append(std::string_view("\"}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>(proc_);
  }

 private:
  std::string proc_;
};

std::unique_ptr<spdlog::formatter> make_formatter(std::string_view format, std::string_view proc) {
  if (format == "json") return std::make_unique<json_formatter>(std::string(proc));
  return std::make_unique<text_formatter>(std::string(proc));
}

void install(spdlog::sink_ptr sink, std::unique_ptr<spdlog::formatter> fmt, spdlog::level::level_enum level,
             std::string_view proc) {
  sink->set_formatter(std::move(fmt));
  auto lg = std::make_shared<spdlog::logger>(std::string(proc), std::move(sink));
  lg->set_level(level);
  lg->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(lg));
}

}  // namespace

result<spdlog::level::level_enum> parse_log_level(std::string_view s) {
  using spdlog::level::level_enum;
  if (s == "trace") return level_enum::trace;
  if (s == "debug") return level_enum::debug;
  if (s == "info") return level_enum::info;
  if (s == "warn" || s == "warning") return level_enum::warn;
  if (s == "error") return level_enum::err;
  if (s == "critical") return level_enum::critical;
  if (s == "off") return level_enum::off;
  return make_error("log.level", fmt::format("log.level: unknown level '{}'", s));
}

status try_init_logging(const config::logging& cfg, std::string_view process_name) {
  auto level = parse_log_level(cfg.level);
  if (!level) return level.err();
  if (cfg.format != "text" && cfg.format != "json")
    return make_error("log.format",
                      fmt::format("log.format: unknown format '{}' (expected text or json)", cfg.format));
  spdlog::sink_ptr sink;
  if (cfg.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.file.string(), /*truncate=*/false);
    } catch (const std::exception& e) {
      return make_error("log.file", fmt::format("log.file: {}", e.what()));
    }
  }
  install(std::move(sink), make_formatter(cfg.format, process_name), *level, process_name);
  return {};
}

void init_logging(const config::logging& cfg, std::string_view process_name) {
  auto st = try_init_logging(cfg, process_name);
  if (st) return;
  auto level = parse_log_level(cfg.level);
  install(std::make_shared<spdlog::sinks::stderr_sink_mt>(), make_formatter(cfg.format, process_name),
          level ? *level : spdlog::level::info, process_name);
  spdlog::error("logging set-up failed, logging to stderr instead: {}", st.err().message);
}

std::shared_ptr<spdlog::logger> logger() {
  return spdlog::default_logger();
}

}  // namespace eftd
