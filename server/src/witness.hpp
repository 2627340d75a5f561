// The witness (`eftd witness`): the third, small process that decides which of two eftd nodes
// (one active, one hot standby) is active, so the two never both take sales.
//
// It holds a durable, monotonically increasing EPOCH and the id of the active node. The active
// renews a short LEASE; the standby may be PROMOTED (epoch + 1) only when the active stopped
// renewing for promote_after_ms, was deposed as unhealthy, on an operator's force, or by the
// active's own planned handover. A node fences itself with the epoch: whatever it writes carries
// the epoch the witness granted, and a node that learns of a higher epoch is no longer active.
//
// Layers (each testable alone): the wire types and their JSON codec (the node side reuses them),
// witness_core (pure: no I/O, time passed in as steady-clock milliseconds), the state file, and
// run_witness() (the Asio server, in witness.cpp; Asio stays out of this header).
//
// ---- Protocol: NDJSON over TCP (or mutual TLS). One request line -> one answer line. ----------
// A line is at most max_line_bytes bytes (without its '\n'); a longer one is answered with
// bad_request and the connection is closed. Once a line has started it must end within 10 s
// (frame timeout); a connection idle between lines is closed after 5 minutes. At most 256
// connections are open at once (more are closed at accept).
//
//   renew     {"op":"renew","node":"a","epoch":5,"standby_in_sync":true,"p99_ms":12.5,
//              "requests":100,"errors":2}
//             -> {"ok":true,"epoch":5,"active":"a","lease_ms":3000}
//             Granted when node == active, epoch == current and the active is not deposed.
//             p99_ms/requests/errors (optional, default 0) are what tills saw since the last
//             renew; standby_in_sync (required) is the active's view of replication.
//   watch     {"op":"watch","node":"b","epoch":5,"applied_seq":123}      (standby, ~lease_ms/3)
//             -> {"ok":true,"epoch":5,"active":"a","active_lease_age_ms":N,"deposed":false}
//             Always answered for a known node (so a node on an old epoch learns the new one);
//             counts as "standby seen" only from a non-active node on the current epoch.
//             applied_seq is optional.
//   promote   {"op":"promote","node":"b","epoch":5,"force":false}
//             -> {"ok":true,"epoch":6,"active":"b"}
//             Needs: node known, epoch == current, node != active, and unless force:
//             standby_in_sync and (deposed or no renew granted for promote_after_ms, counted
//             from the witness start or the epoch change when there was no renew yet).
//   handover  {"op":"handover","node":"a","epoch":5,"to":"b"}
//             -> {"ok":true,"epoch":6,"active":"b"}     (planned switch by the active; at once)
//   state     {"op":"state"}
//             -> {"ok":true,"epoch":5,"active":"a","nodes":["a","b"],"lease_ms":3000,
//                 "promote_after_ms":6000,"last_renew_age_ms":N|null,"standby_in_sync":true,
//                 "deposed":false,"deposed_reason":""}
// Refusals: {"ok":false,"code":C,"message":"...","epoch":current,"active":"a"}. Codes:
//   not_active      renew from a node that is not the active, or with another epoch;
//                   handover from a node that is not the active
//   active_alive    promote while the active's lease is fresh
//   standby_behind  promote while the active last reported the standby out of sync
//   unhealthy       renew from a deposed active (for the rest of its epoch)
//   unknown_node    a node (or handover "to") not in --nodes
//   stale_epoch     promote/handover with epoch != current
//   bad_request     unparsable JSON, a missing or mistyped field, an unknown op, a request that
//                   makes no sense (promote of the active itself); the connection stays open,
//                   except for an over-long line (closed)
//   forbidden       (TLS) the client certificate's CN is not the request's node (for state: not
//                   one of --nodes), nor "eftctl" for state / promote with force
//   storage         the new state could not be made durable; nothing changed
// Answers that change the durable state (promote, handover, a renew that flips
// standby_in_sync) are sent only after the state file is durable.
//
// ---- Durable state ------------------------------------------------------------------------------
// {"epoch":N,"active":"a","standby_in_sync":true}, written to FILE.tmp, fsync, rename, fsync of
// the directory. A missing file is created (epoch 1, the initial active); a corrupt one stops
// the witness (never a silent reset: a lower epoch would let two nodes be active).
//
// ---- Health (depose) ----------------------------------------------------------------------------
// The samples of the renews of the last lease_ms form a window: requests and errors are summed;
// the p99 is that of the latest sample that had requests (percentiles of different intervals
// cannot be merged). The window is unhealthy when
// p99 > max_p99_ms, or errors/requests > max_error_ratio with requests >= 20. Unhealthy at every
// renew for unhealthy_for_ms, with the standby seen (watch) within 2 * lease_ms and in sync, the
// active is deposed: its renewals are refused (unhealthy) and the standby's promote is granted at
// once. Without a healthy in-sync standby it is not deposed (one warning per unhealthy spell):
// deposing the only usable node would stop all sales.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"

namespace eftd::server {

inline constexpr std::size_t max_line_bytes = 4096;

enum class witness_op { renew, watch, promote, handover, state };

std::string_view to_string(witness_op op);

struct witness_request {
  witness_op op = witness_op::state;
  std::string node;         // all but state
  std::uint64_t epoch = 0;  // all but state
  // renew
  bool standby_in_sync = false;
  double p99_ms = 0;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  // watch
  std::uint64_t applied_seq = 0;
  // promote
  bool force = false;
  // handover
  std::string to;
};

struct witness_answer {
  bool ok = false;
  std::string code;     // refusals only
  std::string message;  // refusals only
  std::uint64_t epoch = 0;
  std::string active;
  std::optional<std::uint32_t> lease_ms;            // renew, state
  std::optional<std::int64_t> active_lease_age_ms;  // watch
  std::optional<bool> deposed;                      // watch, state
  // state answers (they carry nodes; last_renew_age_ms is then null when there was no renew)
  std::optional<std::vector<std::string>> nodes;
  std::optional<std::uint32_t> promote_after_ms;
  std::optional<std::int64_t> last_renew_age_ms;
  std::optional<bool> standby_in_sync;
  std::optional<std::string> deposed_reason;
};

// One JSON line without the '\n'. Encoding only writes the fields that belong to the op.
std::string encode(const witness_request& r);
std::string encode(const witness_answer& a);
// Strict: the fields an op needs must be present with the right JSON type (integers are
// non-negative integers, not floats or strings); unknown fields are ignored. Node ids are
// 1..64 characters of [A-Za-z0-9._-]. Errors: witness.bad_request (the message names the field).
result<witness_request> decode_request(std::string_view line);
result<witness_answer> decode_answer(std::string_view line);

// What the witness keeps on disk.
struct witness_durable {
  std::uint64_t epoch = 1;
  std::string active;
  bool standby_in_sync = true;
  friend bool operator==(const witness_durable&, const witness_durable&) = default;
};

struct witness_config {
  std::vector<std::string> nodes;
  std::uint32_t lease_ms = 3000;
  std::uint32_t promote_after_ms = 6000;
  double max_p99_ms = 2000;
  double max_error_ratio = 0.2;
  std::uint32_t unhealthy_for_ms = 10000;
};

// Checks the configuration (two or more distinct valid node ids, lease_ms > 0,
// promote_after_ms >= lease_ms so a standby never takes over within a granted lease).
status check(const witness_config& cfg);

struct witness_log_line {
  bool warn = false;  // else info
  std::string text;
};

// The decision logic. Copyable, so the server can roll a decision back when it cannot be
// made durable. Time: steady-clock milliseconds, never going backwards.
class witness_core {
 public:
  // start_ms: when the witness started (a lease never granted is counted from here).
  witness_core(witness_config cfg, witness_durable state, std::int64_t start_ms);

  struct outcome {
    witness_answer answer;
    bool state_changed = false;         // durable() changed: save before sending the answer
    std::vector<witness_log_line> log;  // grants, refusals, deposing: for the operator's log
  };
  outcome handle(const witness_request& req, std::int64_t now_ms);

  // An answer for a request refused before it reached the logic (bad JSON, TLS identity...).
  witness_answer refusal(std::string code, std::string message) const;

  const witness_durable& durable() const { return state_; }
  const witness_config& config() const { return cfg_; }
  bool deposed() const { return deposed_; }

 private:
  struct sample {
    std::int64_t at_ms;
    double p99_ms;
    std::uint64_t requests;
    std::uint64_t errors;
  };
  outcome renew(const witness_request& req, std::int64_t now);
  outcome watch(const witness_request& req, std::int64_t now);
  outcome promote(const witness_request& req, std::int64_t now);
  outcome handover(const witness_request& req, std::int64_t now);
  outcome state(std::int64_t now) const;
  void check_health(std::int64_t now, std::vector<witness_log_line>& log);
  void new_epoch(std::string active, std::int64_t now);
  std::int64_t lease_age(std::int64_t now) const;
  bool known(const std::string& node) const;
  outcome refuse(std::string code, std::string message, std::vector<witness_log_line> log = {}) const;

  witness_config cfg_;
  witness_durable state_;
  std::int64_t epoch_start_ms_;                // witness start, or the last epoch change
  std::optional<std::int64_t> last_grant_ms_;  // last renew granted in this epoch
  std::optional<std::int64_t> standby_seen_ms_;
  std::vector<sample> window_;
  std::optional<std::int64_t> unhealthy_since_ms_;
  std::string unhealthy_reason_;
  bool warned_no_standby_ = false;
  bool deposed_ = false;
  std::string deposed_reason_;
};

// State file. Errors: witness.state_corrupt (not the expected JSON; the message says what),
// witness.state_io (cannot read/write/fsync/rename; the message names the path and errno text).
result<witness_durable> load_witness_state(const std::filesystem::path& file);
status save_witness_state(const std::filesystem::path& file, const witness_durable& s);
// Loads the file, or creates it (epoch 1, initial_active) when it does not exist. A state whose
// active is not one of `nodes` is refused (witness.state_corrupt): the configuration changed
// under a running pair, and picking someone silently could make two actives.
result<witness_durable> open_witness_state(const std::filesystem::path& file, const witness_config& cfg,
                                           const std::string& initial_active);

struct witness_options {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 0;
  std::filesystem::path state_file;
  std::string initial_active;
  witness_config core;
  config::tls_files tls;    // all three files, or none (plaintext: loopback addresses only)
  bool print_ready = true;  // `READY {"witness":PORT}` on stdout once listening
};

// Runs until SIGINT/SIGTERM. Returns the process exit code (1: start-up failed; the reason is
// on stderr and in the log).
int run_witness(const witness_options& opts);

}  // namespace eftd::server
