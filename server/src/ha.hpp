// Hot standby (server/HA.md): this node's role in an active/standby pair, the fencing epoch,
// the lease that lets it send and answer, and the journal hooks that replicate every batch.
//
// Sessions and flows ask three questions, all cheap and thread-safe:
//   serving()    may this node take requests from tills at all (active, lease current)?
//   may_answer() may it send this answer to a till now (no HA, or serving)?
//   may_send()   may it send to an acquirer now (same rule, as a status with the reason)?
// A node without [ha] has no ha_node (server_context::ha is null): every answer is yes.
//
// No Asio here: the loops (witness client, replication link) live in ha.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"
#include "eftd/journal/writer.hpp"

namespace eftd::server {

struct server_context;

enum class ha_role : int { starting, standby, active, fenced };
std::string_view to_string(ha_role r) noexcept;

// What run() does for the HA node at the edges of a role.
struct ha_hooks {
  // Right before the node starts serving as active (on the HA strand; journal reads only): what
  // the old active left in doubt is taken stock of here, so that the first transactions of this
  // term are never mistaken for it.
  std::function<void()> before_serving;
  // Start the services only an active node runs: in-doubt recovery, reversal queues,
  // notifiers, settlement, retention, the back office. Called once, on the io threads.
  std::function<void()> become_active;
  // End this run: close every listener and session, close the journal, and start again
  // (as standby: after a fence, or to install a snapshot). The reason is logged.
  std::function<void(std::string reason)> restart;
};

class ha_node {
 public:
  virtual ~ha_node() = default;

  virtual ha_role role() const noexcept = 0;
  virtual std::uint64_t epoch() const noexcept = 0;
  virtual bool serving() const noexcept = 0;
  virtual status may_send() const = 0;
  // host:port where tills reach the active node (this one or the peer), for refusals.
  virtual std::string active_pos_address() const = 0;
  virtual std::string active_pad_address() const = 0;

  // The journal hooks (installed before the writer opens; they refer to this node).
  virtual journal::writer_options::replication_options journal_hooks() = 0;

  // Starts the loops once the journal and reader are open. The node decides its role with
  // the witness, then runs as active or standby.
  virtual void start(ha_hooks hooks) = 0;
  virtual void stop() = 0;

  // For `eftctl status` and /metrics: role, epoch, lease, replication position and lag.
  virtual std::string status_json() const = 0;
  virtual std::uint64_t replication_lag_entries() const noexcept = 0;
  // Age of the oldest commit still waiting for the standby's acknowledgement (sync mode; 0 when
  // none waits, and always 0 in async mode or on a standby).
  virtual double replication_lag_seconds() = 0;

  // Operator actions (admin socket). promote: this standby asks the witness to make it
  // active (force = an emergency: skips the lease and in-sync checks; the old active is
  // fenced by the epoch). switchover: this active hands over to the standby once the standby
  // has everything; then it restarts as standby. Both complete with the outcome as text.
  virtual void promote(bool force, std::function<void(status, std::string)> done) = 0;
  virtual void switchover(std::function<void(status, std::string)> done) = 0;
};

// A node for cfg.ha (enabled). Errors: ha.config (a bad address or TLS file).
result<std::shared_ptr<ha_node>> make_ha_node(server_context& ctx);

// Before the journal opens: if a snapshot from the active was fully received
// ("<journal>.seed"), the current journal is kept aside as "<journal>.diverged-<ms>" and the
// snapshot takes its place. Returns what was done, for the log ("" if nothing).
result<std::string> install_seed(const std::filesystem::path& journal_path);

}  // namespace eftd::server
