// The files a hot-standby pair shares through the journal (server/HA.md, "Shared files"): the
// key store and the pad and till registry. They travel as journal records (shared_file_set),
// so they reach the standby with every guarantee the journal has: in order, acknowledged before
// the active goes on in sync mode, carried by snapshots.
//
// Key store ([keys] store): the sealed file as it is on disk (never a clear key).
//   - The active shares it when the file differs from the newest shared copy: when it takes
//     office and after each reload.
//   - Every other time a node opens its key store (start-up, right before a standby serves as
//     active), an HA node first puts the shared copy in place of its own file when they differ.
//     The copy must open under this node's master key with every configured key present; if
//     not, the node keeps its file and says why (log, `eftctl status`). The file it replaces is
//     kept as <store>.replaced-<ms>.
//   - `eftctl reload` opens the key store again when its file changed, so keys rotated with
//     `eftctl keys` take effect without a restart (on a single node too).
//
// Registry: the pads eftd accepts ([[pads]]: id, serial, revoked) and which tills it accepts
// with which pad ([[tills]]: id, pad), as canonical JSON.
//   - On an HA node the registry in force is the newest shared one laid over the node's own
//     file: the pads as shared; the file's tills that the shared registry names, with its pad;
//     everything else about a till (store, terminal id, limits) from the file.
//   - A node's file changes the pair's registry in two ways only: when the journal has no
//     shared registry yet, and through a reload on the active that finds the file's registry
//     changed since this process last read the file. So a failover to a node whose file is out
//     of date never re-admits a pad revoked on the other node, and the differences are listed.
//   - A single node (no [ha]) serves its file as it always did; nothing is shared.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"

namespace eftd::server {

struct server_context;

// The registry part of a configuration.
struct pad_registry {
  std::vector<config::pad> pads;                              // sorted by id
  std::vector<std::pair<std::string, std::string>> tills;  // (till id, pad id), sorted
  bool operator==(const pad_registry&) const = default;
};

pad_registry registry_of(const config::server_config& c);
std::string registry_json(const pad_registry& r);  // canonical: the same registry, the same bytes
// Errors: "ha.bad_registry" (not the JSON registry_json writes).
result<pad_registry> parse_registry(std::string_view json);
// `file` with `r` in force (see the file comment).
config::server_config with_registry(const config::server_config& file, const pad_registry& r);
// For people, one line per difference, e.g. "pad P02: revoked in the pair's registry, not in
// this node's file". Empty: the same.
std::vector<std::string> registry_differences(const pad_registry& file, const pad_registry& shared);

// SHA-256 (upper-case hex) of a key store file, "" when there is none or it cannot be read:
// which file a key module was opened from.
std::string key_store_sha256(const std::filesystem::path& store);

class shared_files {
 public:
  // file_cfg: the configuration as this node's file (and --set) gives it.
  shared_files(server_context& ctx, config::server_config file_cfg);

  // The configuration to put in force for `file_cfg` (see the file comment), which becomes
  // the file configuration this object knows. `reload`: an operator reloaded the file; if its
  // registry changed since it was last read, on the active that makes the file's registry the
  // pair's (shared by the next publish()). Notes for people go to `notes`.
  config::server_config in_force(config::server_config file_cfg, bool reload, std::vector<std::string>& notes);
  // The same for the file configuration last given (a standby about to serve: the newest
  // shared registry).
  config::server_config refresh(std::vector<std::string>& notes);
  // The file configuration last given (what a restarted run starts from).
  config::server_config file_config();

  // HA: puts the shared key store in place of this node's file when they differ (see the file
  // comment). Value: what was done, for the log ("" if nothing). Errors: "keys.shared_refused"
  // (the copy does not open here; the file is kept), "keystore.io".
  result<std::string> follow_keystore();

  // The key store file's digest when the module in force was opened from it ("" for none).
  void opened_keystore(std::string sha256_hex);
  // Opens the key store again if its file is not the one the module in force came from, and
  // installs the new module (server_context::install_key_store). Value: true if it did.
  // Errors: key_module::open's; the module in force is kept.
  result<bool> reopen_keystore_if_changed();

  // Active HA node: journals the key store in use and a registry taken from the file (none
  // shared yet, or adopted by a reload) where they differ from the newest shared copy.
  // Asynchronous; the outcome is logged. Does nothing on a standby or a single node.
  void publish();

  // For `eftctl status`: a JSON object (keystore and registry: shared digest, origin, whether
  // this node's in force matches, the differences from this node's file).
  std::string status_json();

 private:
  server_context& ctx_;
  std::mutex mu_;
  config::server_config file_cfg_;              // the file's configuration, as last read
  std::optional<pad_registry> adopted_;         // the file's registry, adopted by a reload: to share
  std::string keystore_in_use_;
  std::string keystore_problem_;  // the last follow_keystore refusal, for status
};

}  // namespace eftd::server
