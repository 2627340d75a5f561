#include "reload.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include "eftd/core/log.hpp"
#include "eftd/journal/records.hpp"
#include "eftd/pos/codes.hpp"
#include "eftd/pos/messages.hpp"
#include "pad_session.hpp"
#include "pos_session.hpp"
#include "shared_files.hpp"

namespace eftd::server {

namespace asio = boost::asio;

namespace {

// A multi-line reason (one problem per line) on one log line.
std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n') c = ';';
  return s;
}

// The loader's problems, each line naming the file (syntax and I/O errors already do), as
// `eftctl config check` prints them.
std::string with_file(const std::string& file, const std::string& message) {
  std::string out;
  std::string_view rest = message;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    if (!out.empty()) out += '\n';
    if (!line.starts_with(file)) out += file + ": ";
    out += line;
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

// How long a POS is given to read its last error line before the connection closes.
constexpr auto last_word = std::chrono::milliseconds(200);

}  // namespace

std::string describe_changes(const std::vector<std::string>& changed) {
  return changed.empty() ? std::string("no change") : fmt::format("{}", fmt::join(changed, "; "));
}

config_reloader::config_reloader(server_context& ctx, std::filesystem::path file, std::vector<std::string> overrides)
    : ctx_(ctx), file_(std::move(file)), overrides_(std::move(overrides)) {}

result<std::vector<std::string>> config_reloader::reload() {
  std::lock_guard lk(mu_);
  auto refused = [this](error e) {
    spdlog::warn("config reload from {} refused, the configuration in force is kept: {} ({})", file_.string(),
                 one_line(e.message), e.code);
    return e;
  };
  if (file_.empty()) return refused(make_error("config.no_file", "eftd was started without a configuration file"));
  auto next = config::load_config(file_);
  if (!next) return refused(make_error(next.err().code, with_file(file_.string(), next.err().message)));
  for (const auto& o : overrides_)
    if (auto st = config::apply_override(*next, o); !st)
      return refused(make_error(st.err().code, "--set " + o + ": " + st.err().message));
  if (auto ready = config::check_ready(*next); !ready) return refused(ready.err());
  const config::server_config& before = ctx_.cfg();
  // An HA node lays the pair's registry over its file (shared_files.hpp); notes say how.
  std::vector<std::string> notes;
  auto wanted = ctx_.shared ? ctx_.shared->in_force(std::move(*next), /*reload=*/true, notes) : std::move(*next);
  auto changed = config::reload_changes(before, wanted);
  if (!changed) return refused(changed.err());
  const bool config_changed = !changed->empty();
  // The key store file, rotated with `eftctl keys`: opened again now (the [keys] settings
  // themselves need a restart, which reload_changes has checked).
  if (ctx_.shared) {
    auto reopened = ctx_.shared->reopen_keystore_if_changed();
    if (!reopened) return refused(make_error(reopened.err().code, "key store: " + reopened.err().message));
    if (*reopened) changed->push_back("key store");
  }
  for (const auto& n : notes) spdlog::warn("config reload: registry: {}", n);
  if (changed->empty()) {
    spdlog::info("config reload from {}: no change", file_.string());
  } else {
    const std::string level = wanted.log.level;
    if (config_changed) ctx_.install_config(std::move(wanted));
    if (auto l = parse_log_level(level)) spdlog::set_level(*l);
    spdlog::info("config reload from {}: applied: {}", file_.string(), describe_changes(*changed));
    if (config_changed) end_removed_sessions(before, ctx_.cfg());
  }
  if (ctx_.shared) ctx_.shared->publish();
  for (auto& n : notes) changed->push_back("note: " + std::move(n));
  return changed;
}

void config_reloader::end_removed_sessions(const config::server_config& before, const config::server_config& after) {
  std::vector<std::shared_ptr<pos_session>> tills;
  {
    std::lock_guard lk(ctx_.tills_mu);
    for (const auto& t : before.tills) {
      if (after.find_till(t.id) != nullptr) continue;
      auto it = ctx_.pos_by_till.find(t.id);
      if (it == ctx_.pos_by_till.end()) continue;
      if (auto s = it->second.lock()) tills.push_back(std::move(s));
    }
  }
  for (auto& s : tills) {
    spdlog::info("till {} removed by a config reload: its POS connection is closed", s->till_id());
    pos::error e;
    e.code = std::string(pos::codes::unknown_till);
    e.message = "till '" + s->till_id() + "' is no longer configured on this server";
    s->send(std::move(e));
    auto t = std::make_shared<asio::steady_timer>(ctx_.io, last_word);
    t->async_wait([t, s](boost::system::error_code) { s->close(); });
  }
  // A pad whose entry went away or changed (revoked, another serial) says hello again.
  std::vector<std::shared_ptr<pad_session>> pads;
  for (const auto& p : before.pads) {
    const auto* now = after.find_pad(p.id);
    if (now != nullptr && *now == p) continue;
    if (auto s = ctx_.pad_for(p.id)) pads.push_back(std::move(s));
  }
  for (auto& s : pads) {
    spdlog::info("pad {} removed or changed by a config reload: disconnected", s->pad_id());
    s->close();
  }
}

asio::awaitable<void> reload_on_signal(server_context& ctx, config_reloader& reloader) {
  auto audit = [&ctx, &reloader](std::string outcome, std::string detail) {
    journal::audit_appended a;
    a.at_ms = ctx.clock.now_ms();
    a.actor = "SIGHUP";
    a.source = std::string(journal::audit_sources::config);
    a.action = "reload";
    a.subject = reloader.file().string().substr(0, 200);
    a.detail = detail.size() > 4000 ? detail.substr(0, 4000) + "..." : std::move(detail);
    a.outcome = std::move(outcome);
    journal::batch b;
    b.records.emplace_back(std::move(a));
    return b;
  };
  spdlog::info("signal SIGHUP: reloading the configuration");
  auto requested = audit("requested", {});
  if (auto st = co_await commit(ctx, std::move(requested)); !st)
    spdlog::error("config reload: audit record not written: {}", st.err().message);
  auto r = reloader.reload();
  auto outcome = r ? audit("ok", describe_changes(*r)) : audit(r.err().code, r.err().message);
  if (auto st = co_await commit(ctx, std::move(outcome)); !st)
    spdlog::error("config reload: audit record not written: {}", st.err().message);
}

}  // namespace eftd::server
