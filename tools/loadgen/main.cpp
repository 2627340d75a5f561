// eft-loadgen: simulated tills against a running eftd (see loadgen.hpp and tools/bench).
//
//   eft-loadgen --print-config N [--store S01]     [[pads]]/[[tills]] tables for eftd's config
//   eft-loadgen --pos-port P --pad-port Q --keys DIR --tills N
//               (--rate R | --concurrency C) (--duration S | --count N)
//               [--mix chip=80,magstripe=10,decline=10] [--server-pid PID] [--sim-pid PID]
//               [--standby-pos-port P2 --standby-pad-port Q2]   (hot standby on the same --host)
//
// Progress on stderr once a second; the summary on stdout, its last line one JSON object.
// Exit status: 0 when every transaction completed as expected, 1 on errors, 2 on bad usage or
// set-up failure.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "failover.hpp"
#include "loadgen.hpp"

#ifndef EFTD_SOURCE_DIR
#define EFTD_SOURCE_DIR "."
#endif

namespace {

// utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15), nullopt if gone.
std::optional<double> cpu_seconds(long pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// VmRSS of a process in MiB.
std::optional<double> rss_mb(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return std::nullopt;
}

double ms(std::uint32_t us) {
  return static_cast<double>(us) / 1000.0;
}

std::uint32_t pct(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1))];
}

nlohmann::json per_tx(std::optional<double> before, std::optional<double> after, std::uint64_t tx) {
  if (!before || !after || tx == 0) return nullptr;
  return (*after - *before) / static_cast<double>(tx);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace eftd::loadgen;
  CLI::App app{"eft-loadgen: simulated tills (POS + LAN PIN pad) against eftd"};
  options opt;
  std::string mix = "chip=80,magstripe=10,decline=5,cancel=5";
  double duration_s = 0;
  long tx_timeout_ms = 30000;
  long server_pid = 0, sim_pid = 0;
  std::size_t print_config = 0;
  std::string store = "S01";
  std::string keys_dir, cards_dir = std::string(EFTD_SOURCE_DIR) + "/pinpad-firmware-shim/cards", pad_tls,
                        pos_tls, history;
  bool quiet = false, no_spread = false;
  app.add_option("--print-config", print_config, "Print [[pads]]/[[tills]] tables for N tills and exit");
  app.add_option("--store", store, "Store id of the printed tills")->capture_default_str();
  app.add_option("--host", opt.host, "eftd address")->capture_default_str();
  app.add_option("--pos-port", opt.pos_port, "eftd POS port");
  app.add_option("--pad-port", opt.pad_port, "eftd pad port");
  app.add_option("--standby-pos-port", opt.standby_pos_port,
                 "Hot standby's POS port (same --host): tills switch to it when their server fails");
  app.add_option("--standby-pad-port", opt.standby_pad_port,
                 "Hot standby's pad port (with --standby-pos-port)");
  app.add_option("--tills", opt.tills, "Simulated tills (each a POS connection and a pad)")
      ->capture_default_str();
  app.add_option("--rate", opt.rate, "Open loop: sales started per second");
  app.add_option("--concurrency", opt.concurrency, "Closed loop: tills busy at once (default: all)");
  app.add_option("--duration", duration_s, "Seconds of load");
  app.add_option("--count", opt.count, "Transactions to run");
  app.add_option("--mix", mix, "Traffic mix: chip, magstripe, decline, cancel, contactless weights")
      ->capture_default_str();
  app.add_option("--amount", opt.amount, "Amount of each sale, minor units")->capture_default_str();
  app.add_option("--currency", opt.currency)->capture_default_str();
  app.add_option("--tx-timeout-ms", tx_timeout_ms, "A transaction without result after this is an error")
      ->capture_default_str();
  app.add_option("--keys", keys_dir, "tools/dev-keys directory of eftd's key store (the pads' BDK)");
  app.add_option("--cards", cards_dir, "Card profile directory")->capture_default_str();
  app.add_option("--pad-tls", pad_tls, "tools/pad-certs directory: pads connect over TLS 1.3");
  app.add_option("--history", history, "Write every POS operation (invoke/ok/fail/unknown) as JSON lines");
  app.add_option("--pos-tls", pos_tls, "tools/pos-certs directory: POS connections over TLS");
  app.add_option("--per-address", opt.per_address, "Tills per source address 127.0.x.y")
      ->capture_default_str();
  app.add_flag("--no-spread", no_spread, "Connect from the default source address");
  app.add_option("--server-pid", server_pid, "eftd's pid: its RSS and CPU per transaction");
  app.add_option("--sim-pid", sim_pid, "Acquirer simulator's pid: its CPU per transaction");
  app.add_option("--seed", opt.seed, "Seed of the mix")->capture_default_str();
  app.add_flag("--quiet", quiet, "No progress lines");
  CLI11_PARSE(app, argc, argv);

  if (print_config > 0) {
    std::cout << config_tables(print_config, store);
    return 0;
  }
  spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("%^%l%$ %v");
  auto parsed = parse_mix(mix);
  if (!parsed) {
    std::cerr << "eft-loadgen: " << parsed.err().message << "\n";
    return 2;
  }
  if (opt.pos_port == 0 || opt.pad_port == 0 || keys_dir.empty()) {
    std::cerr << "eft-loadgen: --pos-port, --pad-port and --keys are required\n";
    return 2;
  }
  if ((opt.standby_pos_port == 0) != (opt.standby_pad_port == 0)) {
    std::cerr << "eft-loadgen: --standby-pos-port and --standby-pad-port go together\n";
    return 2;
  }
  if (opt.rate > 0 && opt.concurrency > 0) {
    std::cerr << "eft-loadgen: --rate and --concurrency exclude each other\n";
    return 2;
  }
  if (duration_s <= 0 && opt.count == 0) {
    std::cerr << "eft-loadgen: give --duration or --count\n";
    return 2;
  }
  opt.mix = std::move(*parsed);
  opt.duration = std::chrono::milliseconds(static_cast<long long>(duration_s * 1000));
  opt.tx_timeout = std::chrono::milliseconds(tx_timeout_ms);
  opt.keys_dir = keys_dir;
  opt.cards_dir = cards_dir;
  opt.pad_tls_dir = pad_tls;
  opt.pos_tls_dir = pos_tls;
  opt.history_file = history;
  opt.progress = !quiet;
  opt.spread_addresses = !no_spread;

  // CPU figures cover the whole run (connecting included) divided by the transactions: the
  // set-up is small next to a benchmark run and these are what a capacity plan needs.
  const auto cpu_self0 = cpu_seconds(0);
  const auto cpu_eftd0 = server_pid ? cpu_seconds(server_pid) : std::nullopt;
  const auto cpu_sim0 = sim_pid ? cpu_seconds(sim_pid) : std::nullopt;
  auto result = run(opt);
  if (!result) {
    std::cerr << "eft-loadgen: " << result.err().message << " (" << result.err().code << ")\n";
    return 2;
  }
  const auto cpu_self1 = cpu_seconds(0);
  const auto cpu_eftd1 = server_pid ? cpu_seconds(server_pid) : std::nullopt;
  const auto cpu_sim1 = sim_pid ? cpu_seconds(sim_pid) : std::nullopt;
  auto& s = *result;
  std::sort(s.latencies_us.begin(), s.latencies_us.end());
  const double tps = s.seconds > 0 ? static_cast<double>(s.tx) / s.seconds : 0;

  std::cout << "eft-loadgen summary\n";
  std::cout << "  tills        " << s.tills_ready << " connected of " << s.tills << "\n";
  std::cout << "  load         "
            << (opt.rate > 0 ? "open loop " + fmt::format("{:g}", opt.rate) + "/s"
                             : "closed loop, concurrency " +
                                   std::to_string(opt.concurrency ? opt.concurrency : s.tills_ready))
            << ", mix " << mix << "\n";
  std::printf("  time         %.2f s\n", s.seconds);
  std::printf("  sales        %llu (%.1f/s): %llu approved, %llu declined, %llu errors\n",
              static_cast<unsigned long long>(s.tx), tps, static_cast<unsigned long long>(s.approved),
              static_cast<unsigned long long>(s.declined), static_cast<unsigned long long>(s.errors));
  std::printf("  latency ms   p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", ms(pct(s.latencies_us, 0.50)),
              ms(pct(s.latencies_us, 0.95)), ms(pct(s.latencies_us, 0.99)),
              ms(s.latencies_us.empty() ? 0 : s.latencies_us.back()));
  if (s.cancels)
    std::printf("  cancels      %llu (%llu failed)\n", static_cast<unsigned long long>(s.cancels),
                static_cast<unsigned long long>(s.cancel_errors));
  if (s.unsupported)
    std::printf("  unsupported  %llu contactless taps (eftd does not enable the contactless reader)\n",
                static_cast<unsigned long long>(s.unsupported));
  if (s.dropped)
    std::printf("  dropped      %llu starts (every till busy)\n", static_cast<unsigned long long>(s.dropped));
  const auto switch_p50 = ms(eftd::loadgen::percentile_of(s.switch_us, 0.50));
  const auto switch_max =
      ms(s.switch_us.empty() ? 0 : *std::max_element(s.switch_us.begin(), s.switch_us.end()));
  if (opt.standby_pos_port != 0) {
    std::printf(
        "  switches     %llu (ms p50 %.1f  max %.1f), %llu answers recovered by status, %llu unresolved, "
        "%llu not_active re-sent\n",
        static_cast<unsigned long long>(s.switches), switch_p50, switch_max,
        static_cast<unsigned long long>(s.recovered), static_cast<unsigned long long>(s.unresolved),
        static_cast<unsigned long long>(s.not_active));
  }
  for (const auto& [code, n] : s.error_codes)
    std::printf("  error        %-40s %llu\n", code.c_str(), static_cast<unsigned long long>(n));

  nlohmann::json j;
  j["tx"] = s.tx;
  j["tps"] = std::round(tps * 10) / 10;
  j["p50_ms"] = ms(pct(s.latencies_us, 0.50));
  j["p95_ms"] = ms(pct(s.latencies_us, 0.95));
  j["p99_ms"] = ms(pct(s.latencies_us, 0.99));
  j["max_ms"] = ms(s.latencies_us.empty() ? 0 : s.latencies_us.back());
  j["errors"] = s.errors + s.cancel_errors;
  j["approved"] = s.approved;
  j["declined"] = s.declined;
  j["cancels"] = s.cancels;
  j["unsupported"] = s.unsupported;
  j["dropped"] = s.dropped;
  j["tills"] = s.tills_ready;
  j["switches"] = s.switches;
  j["switch_ms_p50"] = switch_p50;
  j["switch_ms_max"] = switch_max;
  j["recovered"] = s.recovered;
  j["unresolved"] = s.unresolved;
  j["seconds"] = std::round(s.seconds * 100) / 100;
  j["mode"] = opt.rate > 0 ? "open" : "closed";
  j["mix"] = mix;
  const auto rss = server_pid ? rss_mb(server_pid) : std::nullopt;
  j["server_rss_mb"] = rss ? nlohmann::json(std::round(*rss * 10) / 10) : nlohmann::json(nullptr);
  j["cpu_s_per_tx_eftd"] = per_tx(cpu_eftd0, cpu_eftd1, s.tx);
  j["cpu_s_per_tx_loadgen"] = per_tx(cpu_self0, cpu_self1, s.tx);
  j["cpu_s_per_tx_sim"] = per_tx(cpu_sim0, cpu_sim1, s.tx);
  std::cout << j.dump() << std::endl;
  const bool ok = s.tills_ready == s.tills && s.errors == 0 && s.cancel_errors == 0;
  return ok ? 0 : 1;
}
