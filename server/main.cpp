// eftd: the central EFT authorization server. A thin main over eftd_server.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/config.hpp"
#include "eftd/core/log.hpp"
#include "eftd/server/server.hpp"
#include "src/witness.hpp"

namespace {

// `eftd witness ...`: the failover witness (server/src/witness.hpp), its own small CLI so the
// normal `eftd -c config` command line stays as it is.
int witness_main(int argc, char** argv) {
  CLI::App app{"eftd witness: decides which eftd node is active (epochs, leases, promotion)"};
  std::string listen = "127.0.0.1:0";
  std::string state_file;
  std::vector<std::string> nodes;
  std::string initial_active;
  std::string cert, key, ca;
  std::string log_level = "info";
  eftd::server::witness_config core;
  app.add_option("--listen", listen, "ADDRESS:PORT to listen on ([::1]:0 for IPv6; port 0 = any)");
  app.add_option("--state", state_file, "the durable state file (epoch, active)")->required();
  app.add_option("--nodes", nodes, "node ids, e.g. a,b")->required()->delimiter(',');
  app.add_option("--initial-active", initial_active, "the active node when the state file is created")
      ->required();
  app.add_option("--promote-after-ms", core.promote_after_ms,
                 "no renew for this long: the standby may take over");
  app.add_option("--lease-ms", core.lease_ms, "lease granted per renew");
  app.add_option("--max-p99-ms", core.max_p99_ms, "tills' p99 above this is unhealthy");
  app.add_option("--max-error-ratio", core.max_error_ratio, "errors/requests above this is unhealthy");
  app.add_option("--unhealthy-for-ms", core.unhealthy_for_ms,
                 "unhealthy this long (with a standby): deposed");
  app.add_option("--tls-cert", cert, "server certificate (PEM); with --tls-key and --tls-ca: mutual TLS");
  app.add_option("--tls-key", key, "server private key (PEM)");
  app.add_option("--tls-ca", ca, "CA of the client certificates (PEM)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  CLI11_PARSE(app, argc, argv);

  eftd::server::witness_options opts;
  // The port is after the last ':'; an IPv6 address comes in brackets.
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "eftd witness: --listen must be ADDRESS:PORT\n");
    return 1;
  }
  opts.listen_address = listen.substr(0, colon);
  if (opts.listen_address.size() >= 2 && opts.listen_address.front() == '[' &&
      opts.listen_address.back() == ']')
    opts.listen_address = opts.listen_address.substr(1, opts.listen_address.size() - 2);
  try {
    const auto port = std::stoul(listen.substr(colon + 1));
    if (port > 65535) throw std::out_of_range("port");
    opts.listen_port = static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    std::fprintf(stderr, "eftd witness: --listen: bad port in '%s'\n", listen.c_str());
    return 1;
  }
  opts.state_file = state_file;
  opts.initial_active = initial_active;
  opts.core = core;
  opts.core.nodes = nodes;
  opts.tls.cert_file = cert;
  opts.tls.key_file = key;
  opts.tls.client_ca_file = ca;
  eftd::config::logging log;
  log.level = log_level;
  eftd::init_logging(log, "eftd-witness");
  return eftd::server::run_witness(opts);
}

}  // namespace

namespace {

// Every till holds two connections (its POS and its pad): thousands of tills need more
// descriptors than the usual soft limit of 1024, so the soft limit goes up to the hard one
// (systemd: LimitNOFILE in etc/systemd/eftd.service). The server logs what it allows.
void raise_open_file_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);  // refused: the limit stays as it was
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "witness") return witness_main(argc - 1, argv + 1);
  CLI::App app{"eftd: central EFT authorization server for thin PIN pads"};
  std::string config_file;
  std::vector<std::string> overrides;
  std::size_t threads = 2;
  app.add_option("-c,--config", config_file, "configuration file (TOML)")->required();
  app.add_option("--set", overrides, "override a config key, e.g. --set listen.pos.port=0 (repeatable)");
  app.add_option("--threads", threads, "I/O threads")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  auto cfg = eftd::config::load_config(config_file);
  if (!cfg) {
    std::fprintf(stderr, "eftd: %s: %s\n", config_file.c_str(), cfg.err().message.c_str());
    return 1;
  }
  for (const auto& o : overrides) {
    if (auto st = eftd::config::apply_override(*cfg, o); !st) {
      std::fprintf(stderr, "eftd: --set %s: %s\n", o.c_str(), st.err().message.c_str());
      return 1;
    }
  }
  if (auto ready = eftd::config::check_ready(*cfg); !ready) {
    std::fprintf(stderr, "eftd: %s\n", ready.err().message.c_str());
    return 1;
  }
  eftd::init_logging(cfg->log, "eftd");
  raise_open_file_limit();
  eftd::server::run_options opts;
  opts.threads = threads;
  opts.config_file = config_file;
  opts.overrides = overrides;
  return eftd::server::run(*cfg, opts);
}
