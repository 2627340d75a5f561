#include "shared_files.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <utility>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "durable_file.hpp"
#include "eftd/core/crypto.hpp"
#include "eftd/journal/backup.hpp"
#include "eftd/journal/records.hpp"
#include "ha.hpp"
#include "key_module.hpp"

namespace eftd::server {

using json = nlohmann::json;

namespace {

constexpr std::string_view keystore_name = "keystore";
constexpr std::string_view registry_name = "registry";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string short_digest(const std::string& hex) {
  return hex.substr(0, 16);
}

}  // namespace

// --- the registry ------------------------------------------------------------------------

pad_registry registry_of(const config::server_config& c) {
  pad_registry r;
  r.pads = c.pads;
  std::sort(r.pads.begin(), r.pads.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& t : c.tills) r.tills.emplace_back(t.id, t.pad);
  std::sort(r.tills.begin(), r.tills.end());
  return r;
}

std::string registry_json(const pad_registry& r) {
  json pads = json::array();
  for (const auto& p : r.pads) pads.push_back({{"id", p.id}, {"serial", p.serial}, {"revoked", p.revoked}});
  json tills = json::array();
  for (const auto& [id, pad] : r.tills) tills.push_back({{"id", id}, {"pad", pad}});
  // nlohmann's object keys are sorted: one registry, one text.
  return json{{"version", 1}, {"pads", std::move(pads)}, {"tills", std::move(tills)}}.dump();
}

result<pad_registry> parse_registry(std::string_view text) {
  auto bad = [](std::string why) { return make_error("ha.bad_registry", "shared registry: " + why); };
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("version", 0) != 1) return bad("not a version 1 registry");
  const auto pads = j.find("pads");
  const auto tills = j.find("tills");
  if (pads == j.end() || !pads->is_array() || tills == j.end() || !tills->is_array())
    return bad("\"pads\" and \"tills\" must be arrays");
  pad_registry r;
  for (const auto& p : *pads) {
    if (!p.is_object() || !p.contains("id") || !p["id"].is_string() || !p.contains("serial") ||
        !p["serial"].is_string() || !p.contains("revoked") || !p["revoked"].is_boolean())
      return bad("a pad needs a string id and serial and a boolean revoked");
    config::pad pad;
    pad.id = p["id"].get<std::string>();
    pad.serial = p["serial"].get<std::string>();
    pad.revoked = p["revoked"].get<bool>();
    r.pads.push_back(std::move(pad));
  }
  for (const auto& t : *tills) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_string() || !t.contains("pad") || !t["pad"].is_string())
      return bad("a till needs a string id and pad");
    r.tills.emplace_back(t["id"].get<std::string>(), t["pad"].get<std::string>());
  }
  // Every till's pad is a pad of the registry: what the configuration loader checks too.
  for (const auto& [id, pad] : r.tills)
    if (std::none_of(r.pads.begin(), r.pads.end(), [&](const auto& p) { return p.id == pad; }))
      return bad("till '" + id + "' names pad '" + pad + "', which it does not list");
  return r;
}

config::server_config with_registry(const config::server_config& file, const pad_registry& r) {
  config::server_config out = file;
  out.pads = r.pads;
  std::map<std::string, std::string> pad_of(r.tills.begin(), r.tills.end());
  out.tills.clear();
  for (const auto& t : file.tills) {
    auto it = pad_of.find(t.id);
    if (it == pad_of.end()) continue;
    auto kept = t;
    kept.pad = it->second;
    out.tills.push_back(std::move(kept));
  }
  return out;
}

std::vector<std::string> registry_differences(const pad_registry& file, const pad_registry& shared) {
  std::vector<std::string> out;
  std::map<std::string, const config::pad*> mine, pair;
  for (const auto& p : file.pads) mine[p.id] = &p;
  for (const auto& p : shared.pads) pair[p.id] = &p;
  for (const auto& [id, p] : pair) {
    auto it = mine.find(id);
    if (it == mine.end()) {
      out.push_back(fmt::format("pad {}: in the pair's registry{}, not in this node's file", id,
                                p->revoked ? " (revoked)" : ""));
      continue;
    }
    if (p->revoked != it->second->revoked)
      out.push_back(fmt::format("pad {}: {} in the pair's registry, {} in this node's file", id,
                                p->revoked ? "revoked" : "accepted", it->second->revoked ? "revoked" : "accepted"));
    if (p->serial != it->second->serial)
      out.push_back(fmt::format("pad {}: another serial in the pair's registry than in this node's file", id));
  }
  for (const auto& [id, p] : mine)
    if (!pair.contains(id)) out.push_back(fmt::format("pad {}: in this node's file only: not accepted", id));
  std::map<std::string, std::string> mine_t(file.tills.begin(), file.tills.end());
  std::map<std::string, std::string> pair_t(shared.tills.begin(), shared.tills.end());
  for (const auto& [id, pad] : pair_t) {
    auto it = mine_t.find(id);
    if (it == mine_t.end())
      out.push_back(fmt::format("till {}: in the pair's registry, not in this node's file: not served here", id));
    else if (it->second != pad)
      out.push_back(fmt::format("till {}: pad {} in the pair's registry, {} in this node's file", id, pad, it->second));
  }
  for (const auto& [id, pad] : mine_t)
    if (!pair_t.contains(id)) out.push_back(fmt::format("till {}: in this node's file only: not accepted", id));
  return out;
}

// --- shared_files --------------------------------------------------------------------------

std::string key_store_sha256(const std::filesystem::path& store) {
  std::error_code ec;
  if (store.empty() || !std::filesystem::exists(store, ec)) return {};
  auto d = journal::sha256_file(store);
  return d ? d->sha256_hex : std::string();
}

namespace {

// A shared file's content as text (the registry's JSON, the key store written out).
std::string_view text_of(const bytes& content) {
  return {reinterpret_cast<const char*>(content.data()), content.size()};
}

// The newest shared copy of `name`, read through the context's reader.
std::optional<journal::shared_file_set> newest(server_context& ctx, std::string_view name) {
  if (!ctx.reader) return std::nullopt;
  std::lock_guard lk(ctx.reader_mu);
  auto r = ctx.reader->shared_file(std::string(name));
  if (!r) {
    spdlog::error("ha: shared {}: journal read failed: {}", name, r.err().message);
    return std::nullopt;
  }
  return *r;
}

result<bytes> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error("keystore.io", "cannot read " + p.string());
  bytes out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error("keystore.io", "cannot read " + p.string());
  return out;
}

journal::shared_file_set shared_record(std::string_view name, bytes content, const std::string& origin) {
  journal::shared_file_set f;
  f.name = std::string(name);
  f.sha256 = to_hex(sha256(content));
  f.content = std::move(content);
  f.origin = origin;
  f.set_ms = wall_ms();
  return f;
}

}  // namespace

shared_files::shared_files(server_context& ctx, config::server_config file_cfg)
    : ctx_(ctx), file_cfg_(std::move(file_cfg)) {}

config::server_config shared_files::file_config() {
  std::lock_guard lk(mu_);
  return file_cfg_;
}

config::server_config shared_files::refresh(std::vector<std::string>& notes) {
  return in_force(file_config(), /*reload=*/false, notes);
}

config::server_config shared_files::in_force(config::server_config file_cfg, bool reload,
                                             std::vector<std::string>& notes) {
  std::lock_guard lk(mu_);
  const auto from_file = registry_of(file_cfg);
  const bool file_changed = from_file != registry_of(file_cfg_);
  file_cfg_ = file_cfg;
  if (!ctx_.ha) return file_cfg;
  const auto shared = newest(ctx_, registry_name);
  if (!shared) return file_cfg;  // the active shares its file's registry when it takes office
  const bool active = ctx_.ha->role() == ha_role::active;
  if (reload && file_changed && active) {
    notes.push_back("the file's pads and tills become the pair's registry");
    adopted_ = from_file;
    return file_cfg;
  }
  auto reg = parse_registry(text_of(shared->content));
  if (!reg) {
    spdlog::error("ha: {}; this node's file stays in force", reg.err().message);
    return file_cfg;
  }
  const auto diffs = registry_differences(from_file, *reg);
  if (!diffs.empty()) {
    notes.push_back(fmt::format("the pair's registry (from node {}) is in force, not this node's file", shared->origin));
    notes.insert(notes.end(), diffs.begin(), diffs.end());
    if (reload && file_changed && !active)
      notes.push_back("registry changes take effect through a reload on the active node");
  }
  return with_registry(file_cfg, *reg);
}

result<std::string> shared_files::follow_keystore() {
  const auto& keys = ctx_.cfg().keys;
  if (!ctx_.ha || keys.store.empty()) return std::string();
  const auto shared = newest(ctx_, keystore_name);
  if (!shared) return std::string();
  if (key_store_sha256(keys.store) == shared->sha256) {
    std::lock_guard lk(mu_);
    keystore_problem_.clear();
    return std::string();
  }
  auto incoming = keys.store;
  incoming += ".incoming";
  auto refuse = [&](error e) {
    std::error_code ec;
    std::filesystem::remove(incoming, ec);
    std::lock_guard lk(mu_);
    keystore_problem_ = e.message;
    return e;
  };
  if (auto st = write_synced(incoming, text_of(shared->content), "keystore.io"); !st) return refuse(st.err());
  // The copy must serve this node as it is: this master key, every configured key present.
  auto probe = ctx_.cfg();
  probe.keys.store = incoming;
  if (auto m = key_module::open(probe); !m)
    return refuse(make_error("keys.shared_refused",
                             fmt::format("the shared key store from node {} does not open here, this node keeps its "
                                         "own: {}",
                                         shared->origin, m.err().message)));
  std::string kept;
  std::error_code ec;
  if (std::filesystem::exists(keys.store, ec)) {
    auto aside = keys.store;
    aside += fmt::format(".replaced-{}", wall_ms());
    std::filesystem::create_hard_link(keys.store, aside, ec);
    if (ec) return refuse(make_error("keystore.io", "cannot keep " + keys.store.string() + ": " + ec.message()));
    kept = fmt::format("; the previous one is kept as {}", aside.string());
  }
  if (auto st = rename_synced(incoming, keys.store, "keystore.io"); !st) return refuse(st.err());
  {
    std::lock_guard lk(mu_);
    keystore_problem_.clear();
  }
  return fmt::format("key store {} replaced by the pair's (SHA-256 {}..., from node {}){}", keys.store.string(),
                     short_digest(shared->sha256), shared->origin, kept);
}

void shared_files::opened_keystore(std::string sha256_hex) {
  std::lock_guard lk(mu_);
  keystore_in_use_ = std::move(sha256_hex);
}

result<bool> shared_files::reopen_keystore_if_changed() {
  const auto& cfg = ctx_.cfg();
  if (cfg.keys.store.empty()) return false;
  const auto now = key_store_sha256(cfg.keys.store);
  {
    std::lock_guard lk(mu_);
    if (now == keystore_in_use_) return false;
  }
  auto m = key_module::open(cfg);
  if (!m) return m.err();
  ctx_.install_key_store(std::move(*m));
  opened_keystore(now);
  spdlog::info("key store {} opened again: its file changed (SHA-256 {}...)", cfg.keys.store.string(),
               short_digest(now));
  return true;
}

void shared_files::publish() {
  if (!ctx_.ha || ctx_.ha->role() != ha_role::active) return;
  const auto& cfg = ctx_.cfg();
  journal::batch b;
  std::vector<std::string> what;
  if (!cfg.keys.store.empty()) {
    std::string in_use;
    {
      std::lock_guard lk(mu_);
      in_use = keystore_in_use_;
    }
    const auto shared = newest(ctx_, keystore_name);
    // The key store this node uses, not a file someone is editing: shared once it is in force.
    if (!in_use.empty() && (!shared || shared->sha256 != in_use)) {
      auto content = read_all(cfg.keys.store);
      if (!content) {
        spdlog::error("ha: the key store is not shared: {}", content.err().message);
      } else if (auto rec = shared_record(keystore_name, std::move(*content), cfg.ha.node_id); rec.sha256 != in_use) {
        spdlog::warn("ha: the key store file changed since it was opened: shared after the next reload");
      } else {
        b.records.emplace_back(std::move(rec));
        what.push_back("key store");
      }
    }
  }
  {
    std::optional<pad_registry> to_share;
    {
      std::lock_guard lk(mu_);
      to_share = std::exchange(adopted_, std::nullopt);
    }
    const auto shared = newest(ctx_, registry_name);
    // Nothing shared yet: this node's registry, which is then its file's.
    if (!shared && !to_share) to_share = registry_of(cfg);
    if (to_share) {
      const auto text = registry_json(*to_share);
      const bytes content(text.begin(), text.end());
      if (!shared || shared->content != content) {
        b.records.emplace_back(shared_record(registry_name, content, cfg.ha.node_id));
        what.push_back("pad and till registry");
      }
    }
  }
  if (b.records.empty()) return;
  const auto list = fmt::format("{}", fmt::join(what, " and "));
  ctx_.journal->submit(std::move(b), [list](status st) {
    if (st)
      spdlog::info("ha: {} shared with the standby", list);
    else
      spdlog::error("ha: {} not shared: {}", list, st.err().message);
  });
}

std::string shared_files::status_json() {
  json j = json::object();
  const auto& cfg = ctx_.cfg();
  std::string in_use, problem;
  pad_registry from_file;
  {
    std::lock_guard lk(mu_);
    in_use = keystore_in_use_;
    problem = keystore_problem_;
    from_file = registry_of(file_cfg_);
  }
  if (!cfg.keys.store.empty()) {
    json k{{"in_use", short_digest(in_use)}};
    if (ctx_.ha) {
      const auto shared = newest(ctx_, keystore_name);
      k["shared"] = shared ? short_digest(shared->sha256) : std::string();
      k["shared_from"] = shared ? shared->origin : std::string();
      k["same"] = shared && shared->sha256 == in_use;
    }
    if (!problem.empty()) k["problem"] = problem;
    j["keystore"] = std::move(k);
  }
  if (ctx_.ha) {
    const auto shared = newest(ctx_, registry_name);
    json r{{"shared_from", shared ? shared->origin : std::string()},
           {"shared", shared ? short_digest(shared->sha256) : std::string()}};
    json diffs = json::array();
    if (shared) {
      auto reg = parse_registry(text_of(shared->content));
      if (reg)
        for (auto& d : registry_differences(from_file, *reg)) diffs.push_back(std::move(d));
    }
    r["file_differences"] = std::move(diffs);
    j["registry"] = std::move(r);
  }
  return j.dump();
}

}  // namespace eftd::server
