// What a configuration reload changes, and whether eftd can apply it without a restart.
//
// The split follows what the server reads through ctx.cfg() at each use (reloadable) and what
// it builds once at start-up: bound sockets, the journal writer, the key store, the CA keys,
// the BIN table, acquirer links, notifiers, timers and the log sinks (restart only).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eftd/core/config.hpp"

namespace eftd::config {

namespace {

// "tills: added T09, removed T02, changed T01" for a list of tables keyed by id.
template <class T>
void describe_list(std::string_view name, const std::vector<T>& now, const std::vector<T>& next,
                   std::vector<std::string>& out) {
  if (now == next) return;
  auto find = [](const std::vector<T>& v, const std::string& id) -> const T* {
    for (const auto& x : v)
      if (x.id == id) return &x;
    return nullptr;
  };
  std::vector<std::string> added, removed, changed;
  for (const auto& x : next) {
    const T* old = find(now, x.id);
    if (old == nullptr)
      added.push_back(x.id);
    else if (!(*old == x))
      changed.push_back(x.id);
  }
  for (const auto& x : now)
    if (find(next, x.id) == nullptr) removed.push_back(x.id);
  std::vector<std::string> parts;
  if (!added.empty()) parts.push_back(fmt::format("added {}", fmt::join(added, " ")));
  if (!removed.empty()) parts.push_back(fmt::format("removed {}", fmt::join(removed, " ")));
  if (!changed.empty()) parts.push_back(fmt::format("changed {}", fmt::join(changed, " ")));
  // Only the order differs: still a change (the first match wins in some look-ups).
  if (parts.empty()) parts.push_back("reordered");
  out.push_back(fmt::format("{}: {}", name, fmt::join(parts, ", ")));
}

void listener_changes(std::string_view name, const listener& a, const listener& b, std::vector<std::string>& out) {
  auto key = [&](std::string_view k) { return fmt::format("listen.{}.{}", name, k); };
  if (a.address != b.address) out.push_back(key("address"));
  if (a.port != b.port) out.push_back(key("port"));
  if (!(a.tls == b.tls)) out.push_back(key("tls"));
  if (a.max_connections != b.max_connections) out.push_back(key("max_connections"));
  if (a.max_per_address != b.max_per_address) out.push_back(key("max_per_address"));
  if (a.login_timeout_ms != b.login_timeout_ms) out.push_back(key("login_timeout_ms"));
  if (a.frame_timeout_ms != b.frame_timeout_ms) out.push_back(key("frame_timeout_ms"));
}

void optional_listener_changes(std::string_view name, const std::optional<listener>& a,
                               const std::optional<listener>& b, std::vector<std::string>& out) {
  if (a.has_value() != b.has_value())
    out.push_back(fmt::format("listen.{}", name));
  else if (a)
    listener_changes(name, *a, *b, out);
}

// Keys eftd reads only at start-up that differ between the two configurations.
std::vector<std::string> restart_only_changes(const server_config& a, const server_config& b) {
  std::vector<std::string> keys;
  if (a.node_name != b.node_name) keys.emplace_back("server.node_name");
  listener_changes("pos", a.pos, b.pos, keys);
  listener_changes("pad", a.pad, b.pad, keys);
  optional_listener_changes("metrics", a.metrics, b.metrics, keys);
  optional_listener_changes("backoffice", a.backoffice, b.backoffice, keys);
  if (a.journal_cfg.path != b.journal_cfg.path) keys.emplace_back("journal.path");
  if (a.journal_cfg.key_file != b.journal_cfg.key_file) keys.emplace_back("journal.key_file");
  if (a.journal_cfg.group_commit_max != b.journal_cfg.group_commit_max) keys.emplace_back("journal.group_commit_max");
  if (a.journal_cfg.retention_days != b.journal_cfg.retention_days) keys.emplace_back("journal.retention_days");
  if (a.log.format != b.log.format) keys.emplace_back("log.format");
  if (a.log.file != b.log.file) keys.emplace_back("log.file");
  const std::pair<const char*, bool> sections[] = {
      {"cards.bin_table", a.bin_table == b.bin_table},
      {"keys", a.keys == b.keys},
      {"emv", a.emv == b.emv},
      {"acquirers", a.acquirers == b.acquirers},
      {"notify", a.notify == b.notify},
      {"settlement", a.settlement == b.settlement},
      {"admin", a.admin == b.admin},
      {"ha", a.ha == b.ha},
      {"backoffice", a.backoffice_web == b.backoffice_web},
  };
  for (const auto& [name, same] : sections)
    if (!same) keys.emplace_back(name);
  return keys;
}

}  // namespace

result<std::vector<std::string>> reload_changes(const server_config& now, const server_config& next) {
  auto restart = restart_only_changes(now, next);
  // Whatever the reloadable sections do, the rest must be equal: `rest` is `next` with the
  // reloadable parts taken from `now`. This also catches a key added to server_config later
  // and not sorted into either list above.
  server_config rest = next;
  rest.merchants = now.merchants;
  rest.stores = now.stores;
  rest.tills = now.tills;
  rest.pads = now.pads;
  rest.default_limits = now.default_limits;
  rest.prompts = now.prompts;
  rest.cvm = now.cvm;
  rest.routes = now.routes;
  rest.timeout = now.timeout;
  rest.pad_health = now.pad_health;
  rest.log.level = now.log.level;
  if (restart.empty() && !(rest == now)) restart.emplace_back("a setting read only at start-up");
  if (!restart.empty()) {
    std::string msg;
    for (const auto& k : restart) {
      if (!msg.empty()) msg += '\n';
      msg += k + " changed: needs a restart";
    }
    return make_error("config.needs_restart", msg);
  }

  std::vector<std::string> changed;
  describe_list("merchants", now.merchants, next.merchants, changed);
  describe_list("stores", now.stores, next.stores, changed);
  describe_list("tills", now.tills, next.tills, changed);
  describe_list("pads", now.pads, next.pads, changed);
  const std::pair<const char*, bool> sections[] = {
      {"limits", now.default_limits == next.default_limits},
      {"prompts", now.prompts == next.prompts},
      {"cvm", now.cvm == next.cvm},
      {"routes", now.routes == next.routes},
      {"timeouts", now.timeout == next.timeout},
      {"pad_health", now.pad_health == next.pad_health},
      {"log.level", now.log.level == next.log.level},
  };
  for (const auto& [name, same] : sections)
    if (!same) changed.emplace_back(name);
  return changed;
}

}  // namespace eftd::config
