// eftd: the central EFT authorization server. A thin main over eftd_server.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "eftd/core/config.hpp"
#include "eftd/core/log.hpp"
#include "eftd/server/server.hpp"

int main(int argc, char** argv) {
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
  eftd::server::run_options opts;
  opts.threads = threads;
  return eftd::server::run(*cfg, opts);
}
