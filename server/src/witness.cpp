#include "witness.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "accept_pacing.hpp"
#include "byte_stream.hpp"
#include "durable_file.hpp"

namespace eftd::server {

using json = nlohmann::json;

// ---- codec ------------------------------------------------------------------------------------

namespace {

constexpr struct {
  witness_op op;
  std::string_view name;
} op_names[] = {{witness_op::renew, "renew"},
                {witness_op::watch, "watch"},
                {witness_op::promote, "promote"},
                {witness_op::handover, "handover"},
                {witness_op::state, "state"}};

error bad(std::string message) {
  return make_error("witness.bad_request", std::move(message));
}

bool valid_node_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Field readers: nullopt-free; an absent optional field leaves `out` untouched.
status get_string(const json& j, const char* key, std::string& out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) return required ? status(bad(fmt::format("missing field \"{}\"", key))) : status();
  if (!it->is_string()) return bad(fmt::format("field \"{}\" must be a string", key));
  out = it->get<std::string>();
  return {};
}

status get_node(const json& j, const char* key, std::string& out, bool required) {
  if (auto st = get_string(j, key, out, required); !st) return st;
  if (j.contains(key) && !valid_node_id(out))
    return bad(fmt::format("field \"{}\" must be 1..64 characters of A-Z a-z 0-9 . _ -", key));
  return {};
}

template <class U>
status get_uint(const json& j, const char* key, U& out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) return required ? status(bad(fmt::format("missing field \"{}\"", key))) : status();
  if (!it->is_number_unsigned()) return bad(fmt::format("field \"{}\" must be a non-negative integer", key));
  const auto v = it->get<std::uint64_t>();
  if (v > std::numeric_limits<U>::max()) return bad(fmt::format("field \"{}\" is too large", key));
  out = static_cast<U>(v);
  return {};
}

status get_int(const json& j, const char* key, std::int64_t& out) {
  auto it = j.find(key);
  if (it == j.end()) return bad(fmt::format("missing field \"{}\"", key));
  if (!it->is_number_integer()) return bad(fmt::format("field \"{}\" must be an integer", key));
  out = it->get<std::int64_t>();
  return {};
}

status get_bool(const json& j, const char* key, bool& out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) return required ? status(bad(fmt::format("missing field \"{}\"", key))) : status();
  if (!it->is_boolean()) return bad(fmt::format("field \"{}\" must be true or false", key));
  out = it->get<bool>();
  return {};
}

status get_ms(const json& j, const char* key, double& out) {
  auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_number()) return bad(fmt::format("field \"{}\" must be a number", key));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < 0) return bad(fmt::format("field \"{}\" must be a non-negative number", key));
  out = v;
  return {};
}

result<json> parse_object(std::string_view line) {
  auto j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object()) return bad("not a JSON object");
  return j;
}

std::string dump(const json& j) {
  // Node ids are checked ASCII, but a message might quote something else: never throw here.
  return j.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
}

}  // namespace

std::string_view to_string(witness_op op) {
  for (const auto& n : op_names)
    if (n.op == op) return n.name;
  return "?";
}

std::string encode(const witness_request& r) {
  json j{{"op", std::string(to_string(r.op))}};
  if (r.op != witness_op::state) {
    j["node"] = r.node;
    j["epoch"] = r.epoch;
  }
  switch (r.op) {
    case witness_op::renew:
      j["standby_in_sync"] = r.standby_in_sync;
      j["p99_ms"] = r.p99_ms;
      j["requests"] = r.requests;
      j["errors"] = r.errors;
      break;
    case witness_op::watch:
      j["applied_seq"] = r.applied_seq;
      break;
    case witness_op::promote:
      j["force"] = r.force;
      break;
    case witness_op::handover:
      j["to"] = r.to;
      break;
    case witness_op::state:
      break;
  }
  return dump(j);
}

result<witness_request> decode_request(std::string_view line) {
  auto parsed = parse_object(line);
  if (!parsed) return parsed.err();
  const json& j = *parsed;
  witness_request r;
  std::string op;
  if (auto st = get_string(j, "op", op, true); !st) return st.err();
  auto it =
      std::find_if(std::begin(op_names), std::end(op_names), [&](const auto& n) { return n.name == op; });
  // The op's text is not quoted back: it is the peer's, and may be anything.
  if (it == std::end(op_names)) return bad("unknown op (known: renew, watch, promote, handover, state)");
  r.op = it->op;
  if (r.op == witness_op::state) return r;
  status st = get_node(j, "node", r.node, true);
  if (st) st = get_uint(j, "epoch", r.epoch, true);
  switch (r.op) {
    case witness_op::renew:
      if (st) st = get_bool(j, "standby_in_sync", r.standby_in_sync, true);
      if (st) st = get_ms(j, "p99_ms", r.p99_ms);
      if (st) st = get_uint(j, "requests", r.requests, false);
      if (st) st = get_uint(j, "errors", r.errors, false);
      break;
    case witness_op::watch:
      if (st) st = get_uint(j, "applied_seq", r.applied_seq, false);
      break;
    case witness_op::promote:
      if (st) st = get_bool(j, "force", r.force, false);
      break;
    case witness_op::handover:
      if (st) st = get_node(j, "to", r.to, true);
      break;
    case witness_op::state:
      break;
  }
  if (!st) return st.err();
  return r;
}

std::string encode(const witness_answer& a) {
  json j{{"ok", a.ok}};
  if (!a.ok) {
    j["code"] = a.code;
    j["message"] = a.message;
  }
  j["epoch"] = a.epoch;
  j["active"] = a.active;
  if (a.nodes) j["nodes"] = *a.nodes;
  if (a.lease_ms) j["lease_ms"] = *a.lease_ms;
  if (a.promote_after_ms) j["promote_after_ms"] = *a.promote_after_ms;
  if (a.active_lease_age_ms) j["active_lease_age_ms"] = *a.active_lease_age_ms;
  if (a.nodes) j["last_renew_age_ms"] = a.last_renew_age_ms ? json(*a.last_renew_age_ms) : json(nullptr);
  if (a.standby_in_sync) j["standby_in_sync"] = *a.standby_in_sync;
  if (a.deposed) j["deposed"] = *a.deposed;
  if (a.deposed_reason) j["deposed_reason"] = *a.deposed_reason;
  return dump(j);
}

result<witness_answer> decode_answer(std::string_view line) {
  auto parsed = parse_object(line);
  if (!parsed) return parsed.err();
  const json& j = *parsed;
  witness_answer a;
  status st = get_bool(j, "ok", a.ok, true);
  if (st) st = get_uint(j, "epoch", a.epoch, true);
  if (st) st = get_string(j, "active", a.active, true);
  if (st && !a.ok) st = get_string(j, "code", a.code, true);
  if (st && !a.ok) st = get_string(j, "message", a.message, false);
  auto opt_uint32 = [&](const char* key, std::optional<std::uint32_t>& out) {
    if (!st || !j.contains(key)) return;
    std::uint32_t v = 0;
    st = get_uint(j, key, v, true);
    if (st) out = v;
  };
  auto opt_int = [&](const char* key, std::optional<std::int64_t>& out) {
    if (!st || !j.contains(key) || j.at(key).is_null()) return;
    std::int64_t v = 0;
    st = get_int(j, key, v);
    if (st) out = v;
  };
  auto opt_bool = [&](const char* key, std::optional<bool>& out) {
    if (!st || !j.contains(key)) return;
    bool v = false;
    st = get_bool(j, key, v, true);
    if (st) out = v;
  };
  opt_uint32("lease_ms", a.lease_ms);
  opt_uint32("promote_after_ms", a.promote_after_ms);
  opt_int("active_lease_age_ms", a.active_lease_age_ms);
  opt_int("last_renew_age_ms", a.last_renew_age_ms);
  opt_bool("deposed", a.deposed);
  opt_bool("standby_in_sync", a.standby_in_sync);
  if (st && j.contains("deposed_reason")) {
    std::string v;
    st = get_string(j, "deposed_reason", v, true);
    if (st) a.deposed_reason = v;
  }
  if (st && j.contains("nodes")) {
    const auto& n = j.at("nodes");
    if (!n.is_array()) {
      st = bad("field \"nodes\" must be an array of strings");
    } else {
      std::vector<std::string> nodes;
      for (const auto& x : n) {
        if (!x.is_string()) {
          st = bad("field \"nodes\" must be an array of strings");
          break;
        }
        nodes.push_back(x.get<std::string>());
      }
      if (st) a.nodes = std::move(nodes);
    }
  }
  if (!st) return st.err();
  return a;
}

// ---- core -------------------------------------------------------------------------------------

status check(const witness_config& cfg) {
  if (cfg.nodes.size() < 2) return make_error("witness.config", "--nodes needs at least two node ids");
  for (std::size_t i = 0; i < cfg.nodes.size(); ++i) {
    if (!valid_node_id(cfg.nodes[i]))
      return make_error("witness.config", "node ids are 1..64 characters of A-Z a-z 0-9 . _ -");
    for (std::size_t k = 0; k < i; ++k)
      if (cfg.nodes[k] == cfg.nodes[i])
        return make_error("witness.config", "node id '" + cfg.nodes[i] + "' is listed twice");
  }
  if (cfg.lease_ms == 0) return make_error("witness.config", "--lease-ms must be > 0");
  // A promote inside a lease that was granted would let the old active sell while the new one
  // starts: the lease must run out before the standby may take over.
  if (cfg.promote_after_ms < cfg.lease_ms)
    return make_error("witness.config", "--promote-after-ms must be >= --lease-ms");
  if (!(cfg.max_p99_ms > 0)) return make_error("witness.config", "--max-p99-ms must be > 0");
  if (!(cfg.max_error_ratio > 0 && cfg.max_error_ratio <= 1))
    return make_error("witness.config", "--max-error-ratio must be in (0, 1]");
  return {};
}

witness_core::witness_core(witness_config cfg, witness_durable state, std::int64_t start_ms)
    : cfg_(std::move(cfg)), state_(std::move(state)), epoch_start_ms_(start_ms) {}

bool witness_core::known(const std::string& node) const {
  return std::find(cfg_.nodes.begin(), cfg_.nodes.end(), node) != cfg_.nodes.end();
}

std::int64_t witness_core::lease_age(std::int64_t now) const {
  return now - last_grant_ms_.value_or(epoch_start_ms_);
}

witness_answer witness_core::refusal(std::string code, std::string message) const {
  witness_answer a;
  a.ok = false;
  a.code = std::move(code);
  a.message = std::move(message);
  a.epoch = state_.epoch;
  a.active = state_.active;
  return a;
}

witness_core::outcome witness_core::refuse(std::string code, std::string message,
                                           std::vector<witness_log_line> log) const {
  outcome o;
  o.answer = refusal(std::move(code), std::move(message));
  o.log = std::move(log);
  return o;
}

void witness_core::new_epoch(std::string active, std::int64_t now) {
  state_.epoch += 1;
  state_.active = std::move(active);
  // The new standby (the old active) has not been reported in sync by the new active yet.
  state_.standby_in_sync = false;
  epoch_start_ms_ = now;
  last_grant_ms_.reset();
  standby_seen_ms_.reset();
  window_.clear();
  unhealthy_since_ms_.reset();
  unhealthy_reason_.clear();
  warned_no_standby_ = false;
  deposed_ = false;
  deposed_reason_.clear();
}

witness_core::outcome witness_core::handle(const witness_request& req, std::int64_t now_ms) {
  if (req.op != witness_op::state && !known(req.node))
    return refuse("unknown_node", "node '" + req.node + "' is not one of --nodes");
  switch (req.op) {
    case witness_op::renew:
      return renew(req, now_ms);
    case witness_op::watch:
      return watch(req, now_ms);
    case witness_op::promote:
      return promote(req, now_ms);
    case witness_op::handover:
      return handover(req, now_ms);
    case witness_op::state:
      return state(now_ms);
  }
  return refuse("bad_request", "unknown op");
}

witness_core::outcome witness_core::renew(const witness_request& req, std::int64_t now) {
  if (req.node != state_.active || req.epoch != state_.epoch)
    return refuse("not_active", fmt::format("node '{}' epoch {} is not the active (active '{}' epoch {})",
                                            req.node, req.epoch, state_.active, state_.epoch));
  outcome o;
  if (state_.standby_in_sync != req.standby_in_sync) {
    state_.standby_in_sync = req.standby_in_sync;
    o.state_changed = true;
    o.log.push_back(
        {!req.standby_in_sync, fmt::format("epoch {}: active '{}' reports the standby {}", state_.epoch,
                                           state_.active, req.standby_in_sync ? "in sync" : "out of sync")});
  }
  if (!deposed_) {
    window_.push_back({now, req.p99_ms, req.requests, req.errors});
    check_health(now, o.log);
  }
  if (deposed_) {
    o.answer = refusal("unhealthy", "the active was deposed: " + deposed_reason_);
    return o;
  }
  last_grant_ms_ = now;
  o.answer.ok = true;
  o.answer.epoch = state_.epoch;
  o.answer.active = state_.active;
  o.answer.lease_ms = cfg_.lease_ms;
  return o;
}

void witness_core::check_health(std::int64_t now, std::vector<witness_log_line>& log) {
  // The window is the samples of the last lease_ms: a few renewals, enough for an error ratio
  // over a useful number of requests, short enough to follow the active's state.
  std::erase_if(window_, [&](const sample& s) { return now - s.at_ms > std::int64_t{cfg_.lease_ms}; });
  std::uint64_t requests = 0, errors = 0;
  // Percentiles of different intervals cannot be merged: the p99 judged is that of the latest
  // interval that had requests (an idle interval says nothing about latency).
  double p99 = 0;
  for (const auto& s : window_) {
    requests += s.requests;
    errors += s.errors;
    if (s.requests > 0) p99 = s.p99_ms;
  }
  std::string reason;
  if (p99 > cfg_.max_p99_ms) {
    reason = fmt::format("p99 {:.1f} ms > {:.1f} ms", p99, cfg_.max_p99_ms);
  } else if (requests >= 20 &&
             static_cast<double>(errors) / static_cast<double>(requests) > cfg_.max_error_ratio) {
    reason = fmt::format("{} errors in {} requests > ratio {:.3f}", errors, requests, cfg_.max_error_ratio);
  }
  if (reason.empty()) {
    if (unhealthy_since_ms_)
      log.push_back({false, fmt::format("epoch {}: active '{}' healthy again", state_.epoch, state_.active)});
    unhealthy_since_ms_.reset();
    warned_no_standby_ = false;
    return;
  }
  if (!unhealthy_since_ms_) {
    unhealthy_since_ms_ = now;
    log.push_back(
        {true, fmt::format("epoch {}: active '{}' unhealthy: {}", state_.epoch, state_.active, reason)});
  }
  unhealthy_reason_ = reason;
  const auto unhealthy_ms = now - *unhealthy_since_ms_;
  if (unhealthy_ms < std::int64_t{cfg_.unhealthy_for_ms}) return;
  const bool standby_watching =
      standby_seen_ms_ && now - *standby_seen_ms_ <= 2 * std::int64_t{cfg_.lease_ms};
  if (!standby_watching || !state_.standby_in_sync) {
    if (!warned_no_standby_) {
      warned_no_standby_ = true;
      log.push_back({true, fmt::format("epoch {}: active '{}' unhealthy for {} ms ({}) but not deposed: the "
                                       "standby is {}; deposing the only usable node would stop all sales",
                                       state_.epoch, state_.active, unhealthy_ms, reason,
                                       standby_watching ? "out of sync" : "not watching")});
    }
    return;
  }
  deposed_ = true;
  deposed_reason_ = fmt::format("{} for {} ms", reason, unhealthy_ms);
  log.push_back({true, fmt::format("epoch {}: active '{}' DEPOSED: {}; the standby may be promoted now",
                                   state_.epoch, state_.active, deposed_reason_)});
}

witness_core::outcome witness_core::watch(const witness_request& req, std::int64_t now) {
  if (req.node != state_.active && req.epoch == state_.epoch) standby_seen_ms_ = now;
  outcome o;
  o.answer.ok = true;
  o.answer.epoch = state_.epoch;
  o.answer.active = state_.active;
  o.answer.active_lease_age_ms = lease_age(now);
  o.answer.deposed = deposed_;
  return o;
}

witness_core::outcome witness_core::promote(const witness_request& req, std::int64_t now) {
  const auto what =
      fmt::format("promote of '{}'{} at epoch {}", req.node, req.force ? " (force)" : "", req.epoch);
  auto refused = [&](std::string code, std::string why) {
    std::vector<witness_log_line> log{{true, fmt::format("{} refused ({}): {}", what, code, why)}};
    return refuse(std::move(code), std::move(why), std::move(log));
  };
  if (req.epoch != state_.epoch)
    return refused("stale_epoch", fmt::format("the current epoch is {}", state_.epoch));
  if (req.node == state_.active) return refused("bad_request", "the node is already the active");
  if (!req.force) {
    const auto age = lease_age(now);
    if (!deposed_ && age < std::int64_t{cfg_.promote_after_ms})
      return refused("active_alive", fmt::format("the active '{}' renewed {} ms ago (promote after {} ms)",
                                                 state_.active, age, cfg_.promote_after_ms));
    if (!state_.standby_in_sync)
      return refused("standby_behind",
                     fmt::format("the active '{}' last reported the standby out of sync", state_.active));
  }
  const auto old_active = state_.active;
  const auto why = req.force  ? std::string("operator force")
                   : deposed_ ? "the active was deposed (" + deposed_reason_ + ")"
                              : fmt::format("no renew for {} ms", lease_age(now));
  new_epoch(req.node, now);
  outcome o;
  o.state_changed = true;
  o.log.push_back({req.force, fmt::format("{} GRANTED: epoch {} -> {}, active '{}' -> '{}' ({})", what,
                                          req.epoch, state_.epoch, old_active, state_.active, why)});
  o.answer.ok = true;
  o.answer.epoch = state_.epoch;
  o.answer.active = state_.active;
  return o;
}

witness_core::outcome witness_core::handover(const witness_request& req, std::int64_t now) {
  const auto what = fmt::format("handover from '{}' to '{}' at epoch {}", req.node, req.to, req.epoch);
  auto refused = [&](std::string code, std::string why) {
    std::vector<witness_log_line> log{{true, fmt::format("{} refused ({}): {}", what, code, why)}};
    return refuse(std::move(code), std::move(why), std::move(log));
  };
  if (req.epoch != state_.epoch)
    return refused("stale_epoch", fmt::format("the current epoch is {}", state_.epoch));
  if (req.node != state_.active)
    return refused("not_active", fmt::format("'{}' is not the active ('{}' is)", req.node, state_.active));
  if (!known(req.to)) return refused("unknown_node", "\"to\" is not one of --nodes");
  if (req.to == req.node) return refused("bad_request", "\"to\" is the active itself");
  new_epoch(req.to, now);
  outcome o;
  o.state_changed = true;
  o.log.push_back({false, fmt::format("{} GRANTED: epoch {} -> {}, active '{}'", what, req.epoch,
                                      state_.epoch, state_.active)});
  o.answer.ok = true;
  o.answer.epoch = state_.epoch;
  o.answer.active = state_.active;
  return o;
}

witness_core::outcome witness_core::state(std::int64_t now) const {
  outcome o;
  auto& a = o.answer;
  a.ok = true;
  a.epoch = state_.epoch;
  a.active = state_.active;
  a.nodes = cfg_.nodes;
  a.lease_ms = cfg_.lease_ms;
  a.promote_after_ms = cfg_.promote_after_ms;
  if (last_grant_ms_) a.last_renew_age_ms = now - *last_grant_ms_;
  a.standby_in_sync = state_.standby_in_sync;
  a.deposed = deposed_;
  a.deposed_reason = deposed_reason_;
  return o;
}

// ---- state file -------------------------------------------------------------------------------

namespace {

error io_error(const std::string& what, const std::filesystem::path& p, int err) {
  return make_error("witness.state_io", fmt::format("{} '{}': {}", what, p.string(), std::strerror(err)));
}


}  // namespace

result<witness_durable> load_witness_state(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return io_error("cannot read the state file", file, errno);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error("cannot read the state file", file, errno);
  const std::string text = ss.str();
  auto corrupt = [&](const std::string& why) {
    return make_error("witness.state_corrupt",
                      fmt::format("state file '{}' is corrupt ({}); refusing to start: fix or restore it by "
                                  "hand, never delete it (a reset epoch could make two actives)",
                                  file.string(), why));
  };
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not a JSON object");
  witness_durable s;
  auto e = j.find("epoch");
  if (e == j.end() || !e->is_number_unsigned() || e->get<std::uint64_t>() == 0)
    return corrupt("\"epoch\" must be an integer >= 1");
  s.epoch = e->get<std::uint64_t>();
  auto a = j.find("active");
  if (a == j.end() || !a->is_string() || !valid_node_id(a->get<std::string>()))
    return corrupt("\"active\" must be a node id");
  s.active = a->get<std::string>();
  auto in_sync = j.find("standby_in_sync");
  if (in_sync == j.end() || !in_sync->is_boolean())
    return corrupt("\"standby_in_sync\" must be true or false");
  s.standby_in_sync = in_sync->get<bool>();
  return s;
}

status save_witness_state(const std::filesystem::path& file, const witness_durable& s) {
  const json j{{"epoch", s.epoch}, {"active", s.active}, {"standby_in_sync", s.standby_in_sync}};
  auto tmp = file;
  tmp += ".tmp";
  if (auto st = write_synced(tmp, j.dump() + "\n", "witness.state_io"); !st) return st;
  if (auto st = rename_synced(tmp, file, "witness.state_io"); !st) {
    ::unlink(tmp.c_str());
    return st;
  }
  return {};
}

result<witness_durable> open_witness_state(const std::filesystem::path& file, const witness_config& cfg,
                                           const std::string& initial_active) {
  std::error_code ec;
  const auto file_status = std::filesystem::symlink_status(file, ec);
  const bool exists = file_status.type() != std::filesystem::file_type::not_found;
  if (exists && ec)
    return make_error("witness.state_io", "cannot stat '" + file.string() + "': " + ec.message());
  if (!exists) {
    if (std::find(cfg.nodes.begin(), cfg.nodes.end(), initial_active) == cfg.nodes.end())
      return make_error("witness.config", "--initial-active must be one of --nodes");
    witness_durable s{1, initial_active, true};
    if (auto st = save_witness_state(file, s); !st) return st.err();
    return s;
  }
  auto s = load_witness_state(file);
  if (!s) return s;
  if (std::find(cfg.nodes.begin(), cfg.nodes.end(), s->active) == cfg.nodes.end())
    return make_error(
        "witness.state_corrupt",
        fmt::format("state file '{}' names active '{}', which is not one of --nodes; refusing to "
                    "start",
                    file.string(), s->active));
  return s;
}

// ---- server -----------------------------------------------------------------------------------

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A started line must be complete within this (a client that sends half a line and vanishes).
constexpr auto frame_timeout = std::chrono::seconds(10);
// Nodes keep their connection; a silent one is closed after this.
constexpr auto idle_timeout = std::chrono::minutes(5);
constexpr auto tls_handshake_timeout = std::chrono::seconds(10);
constexpr int max_connections = 256;

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class witness_server {
 public:
  witness_server(asio::io_context& io, const witness_options& opts, witness_core core,
                 std::shared_ptr<asio::ssl::context> tls)
      : io_(io), opts_(opts), core_(std::move(core)), tls_(std::move(tls)) {}

  asio::awaitable<void> accept_loop(tcp::acceptor& acc) {
    accept_failures failures("witness");
    for (;;) {
      auto [ec, sock] = co_await acc.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      if (ec) {
        if (failures.failed(ec)) {
          asio::steady_timer pause(acc.get_executor(), accept_pause);
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        continue;
      }
      failures.accepted();
      if (connections_ >= max_connections) {
        // Two nodes and an operator need a handful; a flood must not take the fds the
        // nodes' reconnections need.
        spdlog::warn("witness: {} connections open; refusing another", connections_);
        boost::system::error_code ignore;
        sock.close(ignore);
        continue;
      }
      ++connections_;
      auto conn = std::make_shared<tcp::socket>(std::move(sock));
      asio::co_spawn(io_, session(conn), [this](std::exception_ptr e) {
        --connections_;
        if (e) spdlog::error("witness: a connection ended by an exception");
      });
    }
  }

 private:
  // Reads what arrives within `limit`; a timeout is reported as timed_out.
  static asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_with_deadline(
      byte_stream& s, asio::mutable_buffer b, std::chrono::steady_clock::duration limit) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(s.get_executor());
    timer.expires_after(limit);
    auto r = co_await (s.read_some(b) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1)
      co_return std::tuple{boost::system::error_code(asio::error::timed_out), std::size_t{0}};
    co_return std::get<0>(r);
  }

  // Over-long line: answered, then the connection is closed (what follows cannot be framed).
  asio::awaitable<void> refuse_long_line(byte_stream& s, const std::string& who) {
    std::string out =
        encode(core_.refusal("bad_request", fmt::format("line longer than {} bytes", max_line_bytes)));
    out += '\n';
    co_await s.write_all(asio::buffer(out));
    spdlog::warn("witness: {} sent an over-long line; closed", who);
  }

  asio::awaitable<void> session(std::shared_ptr<tcp::socket> conn) {
    boost::system::error_code ec;
    const auto peer = conn->remote_endpoint(ec);
    const std::string who =
        ec ? std::string("?") : fmt::format("{}:{}", peer.address().to_string(), peer.port());
    std::unique_ptr<byte_stream> stream;
    std::string cn;
    if (tls_) {
      auto accepted = co_await tls_accept(*conn, tls_, tls_handshake_timeout);
      if (!accepted) {
        spdlog::warn("witness: {} refused: {}", who, accepted.err().message);
        co_return;
      }
      stream = std::move(accepted->stream);
      cn = accepted->client_cn;
    } else {
      stream = make_tcp_stream(std::move(*conn));
    }
    std::string buf;
    char chunk[1024];
    // Set while a line has started and not ended: it must end by then.
    std::optional<std::chrono::steady_clock::time_point> frame_deadline;
    for (;;) {
      const auto nl = buf.find('\n');
      if (nl == std::string::npos) {
        if (buf.size() > max_line_bytes) {
          co_await refuse_long_line(*stream, who);
          break;
        }
        const auto now = std::chrono::steady_clock::now();
        if (!buf.empty() && !frame_deadline) frame_deadline = now + frame_timeout;
        const std::chrono::steady_clock::duration left =
            frame_deadline ? *frame_deadline - now : std::chrono::steady_clock::duration(idle_timeout);
        if (left <= std::chrono::steady_clock::duration::zero()) {
          spdlog::info("witness: {} left a line unfinished; closed", who);
          break;
        }
        auto [rec, n] = co_await read_with_deadline(*stream, asio::buffer(chunk), left);
        if (rec) {
          if (rec == asio::error::timed_out) spdlog::info("witness: {} timed out; closed", who);
          break;
        }
        buf.append(chunk, n);
        continue;
      }
      if (nl > max_line_bytes) {
        co_await refuse_long_line(*stream, who);
        break;
      }
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      // Bytes after the newline already began the next line.
      frame_deadline.reset();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      std::string out = answer(line, cn, who) + "\n";
      auto wec = co_await stream->write_all(asio::buffer(out));
      if (wec) break;
    }
    stream->close();
  }

  // One request line -> one answer line. Runs on the only I/O thread: no other request sees the
  // core between the decision and the save.
  std::string answer(std::string_view line, const std::string& cn, const std::string& who) {
    auto req = decode_request(line);
    if (!req) return encode(core_.refusal("bad_request", req.err().message));
    if (tls_) {
      // state is read-only: any node of the pair may ask (a node decides its role from it).
      const bool known_cn =
          std::find(opts_.core.nodes.begin(), opts_.core.nodes.end(), cn) != opts_.core.nodes.end();
      const bool operator_ok =
          cn == "eftctl" && (req->op == witness_op::state || (req->op == witness_op::promote && req->force));
      const bool node_ok = req->op == witness_op::state ? known_cn : cn == req->node;
      if (!operator_ok && !node_ok) {
        spdlog::warn("witness: {} (certificate CN '{}') may not send {} for node '{}'", who, cn,
                     to_string(req->op), req->node);
        return encode(core_.refusal("forbidden", "the client certificate does not name this node"));
      }
    }
    const witness_core before = core_;
    auto out = core_.handle(*req, steady_ms());
    if (out.state_changed) {
      if (auto st = save_witness_state(opts_.state_file, core_.durable()); !st) {
        core_ = before;
        spdlog::error("witness: {} NOT applied, the state could not be saved: {}", to_string(req->op),
                      st.err().message);
        return encode(
            core_.refusal("storage", "the witness could not make its state durable; nothing changed"));
      }
    }
    for (const auto& l : out.log) {
      if (l.warn)
        spdlog::warn("witness: {}", l.text);
      else
        spdlog::info("witness: {}", l.text);
    }
    return encode(out.answer);
  }

  asio::io_context& io_;
  const witness_options& opts_;
  witness_core core_;
  std::shared_ptr<asio::ssl::context> tls_;
  int connections_ = 0;  // only touched on the one I/O thread
};

}  // namespace

int run_witness(const witness_options& opts) {
  auto fail = [](const std::string& message) {
    spdlog::critical("witness start-up failed: {}", message);
    std::fprintf(stderr, "eftd witness: %s\n", message.c_str());
    return 1;
  };
  if (auto st = check(opts.core); !st) return fail(st.err().message);
  if (opts.state_file.empty()) return fail("--state is required");
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(opts.listen_address, ec);
  if (ec) return fail(fmt::format("--listen address '{}': {}", opts.listen_address, ec.message()));
  const bool tls_any =
      !opts.tls.cert_file.empty() || !opts.tls.key_file.empty() || !opts.tls.client_ca_file.empty();
  const bool tls_all =
      !opts.tls.cert_file.empty() && !opts.tls.key_file.empty() && !opts.tls.client_ca_file.empty();
  if (tls_any && !tls_all) return fail("--tls-cert, --tls-key and --tls-ca go together");
  // The epoch decides who may sell: on a network, only nodes with a certificate may ask.
  if (!tls_all && !addr.is_loopback())
    return fail(fmt::format("plaintext is allowed on loopback addresses only ({} needs --tls-*)",
                            opts.listen_address));
  std::shared_ptr<asio::ssl::context> tls;
  if (tls_all) {
    auto ctx = make_server_tls(opts.tls);
    if (!ctx) return fail(ctx.err().message);
    tls = std::move(*ctx);
  }
  auto state = open_witness_state(opts.state_file, opts.core, opts.initial_active);
  if (!state) return fail(state.err().message);

  asio::io_context io(1);
  tcp::acceptor acc(io);
  const tcp::endpoint ep(addr, opts.listen_port);
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return fail(
        fmt::format("cannot listen on {}:{}: {}", opts.listen_address, opts.listen_port, ec.message()));

  witness_server server(io, opts, witness_core(opts.core, *state, steady_ms()), tls);
  asio::co_spawn(io, server.accept_loop(acc), [](std::exception_ptr e) {
    if (e) spdlog::error("witness: listener stopped by an exception");
  });
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code sec, int sig) {
    if (sec) return;
    spdlog::info("witness: signal {}: shutting down", sig);
    boost::system::error_code ignore;
    acc.close(ignore);
    io.stop();
  });
  const auto port = acc.local_endpoint().port();
  spdlog::info(
      "witness listening on {}:{}{}: epoch {}, active '{}', standby {}, lease {} ms, promote after {} ms",
      opts.listen_address, port, tls ? " (mutual TLS)" : " (plaintext)", state->epoch, state->active,
      state->standby_in_sync ? "in sync" : "out of sync", opts.core.lease_ms, opts.core.promote_after_ms);
  if (opts.print_ready) std::cout << fmt::format("READY {{\"witness\":{}}}", port) << std::endl;
  io.run();
  spdlog::info("witness stopped");
  return 0;
}

}  // namespace eftd::server
