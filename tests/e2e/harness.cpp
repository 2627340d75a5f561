#include "harness.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace eftd::test {

using namespace std::chrono_literals;

installation::installation(const std::string& tag, bool with_acquirer, std::vector<std::string> acquirer_args)
    : dir(make_temp_dir(tag)) {
  // Development keys (tools/dev-keys): the key store, the pads' DUKPT keys, the simulator's ZPK.
  {
    process keys(source_path("tools/dev-keys"), {dir + "/keys", bin_path("eftctl")}, dir + "/dev-keys.log");
    if (keys.wait_exit(60s).value_or(-1) != 0)
      throw std::runtime_error("tools/dev-keys failed; see " + dir + "/dev-keys.log");
  }
  if (with_acquirer) {
    std::vector<std::string> args{"--port", "0", "--zpk-file", dir + "/keys/zpk.hex"};
    // "{keys}" in an argument stands for the dev-keys directory (e.g. --mak-file {keys}/mak.hex).
    for (auto& a : acquirer_args) {
      std::string arg = a;
      if (auto at = arg.find("{keys}"); at != std::string::npos) arg.replace(at, 6, dir + "/keys");
      args.push_back(std::move(arg));
    }
    acquirer = std::make_unique<process>(bin_path("eft-acquirer-sim"), args, dir + "/acquirer.log");
    auto ready = acquirer->wait_ready();
    if (!ready) throw std::runtime_error("acquirer simulator did not start");
    acquirer_port = json_port(*ready, "port");
  } else {
    acquirer_port = 9;  // discard port: nothing listens there on loopback
  }
}

installation::~installation() {
  if (pad) pad->stop();
  if (eftd) eftd->stop();
  if (acquirer) acquirer->stop();
  // EFTD_KEEP_TEST_DIRS=1 keeps the installation (logs, journal) for a post-mortem.
  if (const char* keep = std::getenv("EFTD_KEEP_TEST_DIRS"); keep && *keep == '1') return;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void installation::start_eftd(std::vector<std::string> extra) {
  std::string config = source_path("etc/demo.toml");
  if (!extra_config.empty()) {
    // The demo configuration plus the test's tables, in the test's directory; the BIN table
    // keeps pointing at the source tree.
    std::ifstream in(config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string rel = "bin_table = \"bin-ranges.csv\"";
    if (auto at = text.find(rel); at != std::string::npos)
      text.replace(at, rel.size(), "bin_table = \"" + source_path("etc/bin-ranges.csv") + "\"");
    config = dir + "/eftd.toml";
    std::ofstream(config) << text << "\n" << extra_config << "\n";
  }
  std::vector<std::string> args{"-c", config, "--set", "listen.pos.port=0", "--set", "listen.pad.port=0",
                                "--set", "acquirers.sim.port=" + std::to_string(acquirer_port), "--set",
                                "journal.path=" + db(), "--set", "journal.key_file=" + dir + "/journal.key",
                                // Each installation its own admin socket (tests run in parallel).
                                "--set", "admin.socket=" + dir + "/admin.sock"};
  for (auto& k : key_sets()) args.push_back(k);
  for (auto& e : extra) args.push_back(e);
  std::string program = bin_path("eftd");
  if (!eftd_launcher.empty()) {
    args.insert(args.begin(), program);
    args.insert(args.begin(), eftd_launcher.begin() + 1, eftd_launcher.end());
    program = eftd_launcher.front();
  }
  eftd = std::make_unique<process>(program, args, dir + "/eftd.log");
  auto ready = eftd->wait_ready();
  if (!ready) throw std::runtime_error("eftd did not start; see " + dir + "/eftd.log");
  pos_port = json_port(*ready, "pos");
  pad_port = json_port(*ready, "pad");
  metrics_port = ready->find("\"metrics\"") != std::string::npos ? json_port(*ready, "metrics") : 0;
  backoffice_port = ready->find("\"backoffice\"") != std::string::npos ? json_port(*ready, "backoffice") : 0;
}

void installation::crash_eftd() {
  if (!eftd) return;
  eftd->signal(SIGKILL);
  eftd->wait_exit(10s);
  eftd.reset();
}

void installation::start_pad(const std::string& pad_id, const std::string& serial,
                             const std::string& card_file, std::vector<std::string> extra_args) {
  std::vector<std::string> args{
      "virtual",  "--server", "127.0.0.1:" + std::to_string(pad_port),
      "--pad-id", pad_id,     "--serial",
      serial,     "--card",   source_path("pinpad-firmware-shim/cards/" + card_file)};
  // "--no-dukpt" (harness only): start the pad without its DUKPT key, so it sends clear data.
  const bool no_keys = std::erase(extra_args, std::string("--no-dukpt")) > 0;
  if (!no_keys)
    for (auto& a : pad_key_args(pad_id)) args.push_back(a);
  for (auto& a : extra_args) args.push_back(a);
  pad = std::make_unique<process>(bin_path("eftpad"), args, dir + "/pad.log");
  if (!pad->wait_ready()) throw std::runtime_error("pad did not connect; see " + dir + "/pad.log");
}

std::vector<std::string> installation::key_sets() const {
  return {"--set", "keys.store=" + dir + "/keys/keys.store", "--set",
          "keys.master_key_file=" + dir + "/keys/keys.master"};
}

std::vector<std::string> installation::pad_key_args(const std::string& pad_id) const {
  const std::string file = dir + "/keys/pads/" + pad_id + ".dukpt.toml";
  if (!std::filesystem::exists(file)) return {};
  return {"--dukpt-key", file};
}

void installation::stop_pad() {
  if (pad) pad->stop();
  pad.reset();
}

void installation::stop_acquirer() {
  if (acquirer) acquirer->stop();
}

pos_run installation::pos(const std::string& till, std::vector<std::string> args) {
  std::vector<std::string> full{"--port", std::to_string(pos_port), "--till", till, "--json"};
  for (auto& a : args) full.push_back(a);
  process p(bin_path("eft-pos-sim"), full, dir + "/pos.log");
  pos_run r;
  while (auto line = p.read_line(90s)) {
    r.lines.push_back(*line);
    if (!line->empty() && line->front() == '{') {
      auto j = nlohmann::json::parse(*line, nullptr, false);
      if (!j.is_discarded()) r.result = j;
    }
  }
  r.exit_code = p.wait_exit(30s).value_or(-1);
  return r;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace eftd::test
