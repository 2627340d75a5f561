// eftctl pads: the PIN pads as eftd last saw them (the journal's pad_health rows): state,
// round trip of the last ping, when it was last heard from, and each DUKPT key's transaction
// counter with a warning when few transactions are left before the key must be reloaded.
//
//   PAD  STATE   SERIAL   RTT  LAST SEEN             MISSED  DUKPT
//   P01  online  VP-0001  3ms  2026-11-22 19:04:05Z  0       AE5D00010000000100000007: 7 used, 601079... left
#include <fmt/format.h>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "eftd/journal/reader.hpp"

namespace eftctl {

namespace {

struct pads_args {
  std::string db;
  std::string format = "table";
  std::uint64_t warn_below = 10000;
};

std::string utc(std::optional<std::int64_t> ms) {
  if (!ms) return "-";
  const std::time_t t = static_cast<std::time_t>(*ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

int run_pads(const pads_args& a) {
  auto reader = eftd::journal::reader::open(a.db);
  if (!reader) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, reader.err().message, reader.err().code);
    return exit_io;
  }
  auto rows = reader->pad_health();
  if (!rows) {
    fmt::print(stderr, "eftctl: {}: {} ({})\n", a.db, rows.err().message, rows.err().code);
    return exit_io;
  }
  bool warned = false;
  nlohmann::json out = nlohmann::json::array();
  std::string table = fmt::format("{:<8} {:<12} {:<12} {:>6} {:<21} {:>6}  {}\n", "PAD", "STATE", "SERIAL",
                                  "RTT", "LAST SEEN", "MISSED", "DUKPT KEYS");
  for (const auto& r : *rows) {
    auto keys = nlohmann::json::parse(r.dukpt, nullptr, false);
    if (!keys.is_array()) keys = nlohmann::json::array();
    std::string dukpt;
    for (auto& k : keys) {
      const auto left = k.value("left", std::uint64_t{0});
      const bool low = left < a.warn_below;
      warned = warned || low;
      k["warning"] = low;
      dukpt += fmt::format("{}{}: counter {}, {} left{}", dukpt.empty() ? "" : "; ", k.value("ksn", ""),
                           k.value("counter", 0), left, low ? " WARNING: reload the key soon" : "");
    }
    table += fmt::format("{:<8} {:<12} {:<12} {:>6} {:<21} {:>6}  {}\n", r.pad_id, r.state, r.serial,
                         r.rtt_ms ? fmt::format("{}ms", *r.rtt_ms) : "-", utc(r.last_seen_ms), r.missed_pings,
                         dukpt.empty() ? "-" : dukpt);
    out.push_back({{"pad_id", r.pad_id},
                   {"state", r.state},
                   {"serial", r.serial},
                   {"model", r.model},
                   {"firmware", r.firmware},
                   {"peer", r.peer},
                   {"node", r.node},
                   {"connected_ms", r.connected_ms ? nlohmann::json(*r.connected_ms) : nlohmann::json()},
                   {"last_seen_ms", r.last_seen_ms ? nlohmann::json(*r.last_seen_ms) : nlohmann::json()},
                   {"rtt_ms", r.rtt_ms ? nlohmann::json(*r.rtt_ms) : nlohmann::json()},
                   {"missed_pings", r.missed_pings},
                   {"dukpt", keys},
                   {"updated_ms", r.updated_ms}});
  }
  if (a.format == "json")
    fmt::print("{}\n", out.dump());
  else
    fmt::print("{}", rows->empty() ? std::string("no pads have connected yet\n") : table);
  if (warned)
    fmt::print(stderr, "eftctl: WARNING: a pad's DUKPT key has fewer than {} transactions left\n",
               a.warn_below);
  return exit_ok;
}

}  // namespace

void add_pads_commands(CLI::App& app, runner& run) {
  auto args = std::make_shared<pads_args>();
  auto* pads =
      app.add_subcommand("pads", "PIN pads: health (state, ping round trip, last seen) and DUKPT counters");
  pads->add_option("--db", args->db, "journal database (journal.path in the config)")->required();
  pads->add_option("--format", args->format, "table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
  pads->add_option("--warn-below", args->warn_below,
                   "warn when a DUKPT key has fewer transactions left (default 10000, as "
                   "pad_health.dukpt_warn_remaining)");
  pads->callback([&run, args] { run = [args] { return run_pads(*args); }; });
}

}  // namespace eftctl
