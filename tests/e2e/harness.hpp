// A whole eftd installation for one test: acquirer simulator, eftd with a fresh journal,
// and virtual pads, each a real process on a free port. Processes stop with the harness.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process.hpp"

namespace eftd::test {

struct pos_run {
  int exit_code = -1;
  std::vector<std::string> lines;
  nlohmann::json result;  // the last JSON object printed (the final message)
};

class installation {
 public:
  // tag names the temp dir; start_pad: connect pad P01 with the given card profile.
  explicit installation(const std::string& tag, bool with_acquirer = true,
                        std::vector<std::string> acquirer_args = {});
  ~installation();

  void start_eftd(std::vector<std::string> extra_args = {});
  // TOML appended to etc/demo.toml for the next start_eftd (e.g. [[prompts]] tables).
  std::string extra_config;
  // A program that runs eftd (its arguments, then eftd's path and arguments follow), e.g.
  // {"/usr/bin/prlimit", "--nofile=96:96"}; empty: eftd itself.
  std::vector<std::string> eftd_launcher;
  // kill -9: no shutdown, no flush beyond what the journal already made durable.
  void crash_eftd();
  // extra_args go to `eftpad virtual` (e.g. --tls-ca/--tls-cert/--tls-key). The pad gets its
  // DUKPT key from tools/dev-keys (pad_key_args) unless extra_args holds "--no-dukpt".
  void start_pad(const std::string& pad_id, const std::string& serial, const std::string& card_file,
                 std::vector<std::string> extra_args = {});
  // `--dukpt-key FILE` for a pad that tools/dev-keys made a key for (P01 AES, P02 TDES, P03
  // AES); empty for other pad ids.
  std::vector<std::string> pad_key_args(const std::string& pad_id) const;
  // eftd's `--set keys.store=... --set keys.master_key_file=...` for this installation's keys.
  std::vector<std::string> key_sets() const;
  void stop_pad();
  void stop_acquirer();

  // Runs eft-pos-sim with --json and the given subcommand arguments, to completion.
  pos_run pos(const std::string& till, std::vector<std::string> args);

  std::string dir;
  int acquirer_port = 0;
  int pos_port = 0;
  int pad_port = 0;
  int metrics_port = 0;  // 0: eftd runs without [listen.metrics]
  int backoffice_port = 0;  // 0: eftd runs without [listen.backoffice]
  std::unique_ptr<process> acquirer;
  std::unique_ptr<process> eftd;
  std::unique_ptr<process> pad;

  std::string db() const { return dir + "/eftd.db"; }
};

// All bytes of a file (for leak scans of the journal files).
std::string slurp(const std::string& path);

}  // namespace eftd::test
