// The journal writer: one dedicated thread applies batches with group commit.
//
// The journal is the source of truth, so an acknowledgement means "durable": a `done`
// callback runs only after the COMMIT that contains its batch has returned (SQLite in WAL mode
// with synchronous=FULL, i.e. the WAL is fsynced). Batches queued while a commit is in progress
// are applied together in the next transaction, one SAVEPOINT each, so a batch that fails
// (for example "journal.duplicate_order") fails alone and the rest of its group still commits.
//
// Error codes a batch can fail with:
//   journal.duplicate_order     an order with that id or (till_id, order_no, business_date)
//   journal.duplicate_id        an operation, message or event key that already exists
//   journal.duplicate_message   (acquirer, terminal_id, stan, local_datetime, mti) already used
//   journal.duplicate_batch     a settlement batch for (acquirer, terminal_id, business_date)
//   journal.not_found           an update names a row that does not exist
//   journal.state_conflict      an update's expect_state does not match the current state
//   journal.unknown_reference   a record refers to an order/operation/message that does not exist
//   journal.invalid_record      a field violates the schema (bad date, currency, mti, a masked
//                               PAN that still holds a full PAN, ...)
//   journal.io_error            the group could not be committed; nothing of it is durable
//   journal.closed              submitted after close()
//
// The interface is the backend boundary: SQLite now, another store (PostgreSQL) later.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/journal/records.hpp"
#include "eftd/journal/replication.hpp"
#include "eftd/journal/retention.hpp"

namespace eftd::journal {

struct writer_stats {
  std::uint64_t commits = 0;         // successful group commits
  std::uint64_t failed_commits = 0;  // groups lost to an I/O error
  std::uint64_t batches = 0;         // batches acknowledged ok
  std::uint64_t failed_batches = 0;  // batches acknowledged with an error
  std::uint64_t records = 0;         // records in acknowledged-ok batches
  std::uint64_t max_batches_per_commit = 0;
  double avg_batches_per_commit = 0;  // over successful commits
};

// A committed entry and the done callback of the batch that made it (see replication_options).
struct repl_commit {
  repl_entry entry;
  std::function<void(status)> done;
};

struct writer_options {
  // A group takes queued batches until it would exceed this many records. A single batch
  // larger than this is still applied whole (batches are never split). Must be >= 1.
  std::uint32_t max_batch = 256;
  // SQLite busy timeout for the writer connection.
  std::uint32_t busy_timeout_ms = 5000;
  // Name of a registered SQLite VFS; empty = the default. Tests register a VFS that fails
  // writes or fsyncs on demand to show that nothing is acknowledged after an I/O error.
  std::string vfs;
  // Outcome notifications (schema v10, server/NOTIFY.md). Enabled: at the end of every batch
  // holding an order_updated whose state is one of final_states, the writer inserts a 'pending'
  // notification row for the order in the same transaction, unless the order's latest
  // notification already announces that state. The order states belong to the engine, so
  // the engine's final states are listed here.
  //
  // One row per endpoint whose merchants list takes the order's merchant (schema v14), each
  // with its own id; the "latest notification" is that endpoint's. No endpoints listed: one
  // endpoint named "" for every merchant. legacy_rows: the endpoint that owns rows written
  // before v14 (endpoint ''), the first configured one.
  struct notify_endpoint {
    std::string name;                    // notifications.endpoint, at most 64 characters
    std::vector<std::string> merchants;  // empty: every merchant
    bool legacy_rows = false;
  };
  struct notification_options {
    bool enabled = false;
    std::vector<std::string> final_states{"approved", "declined", "failed", "cancelled", "reversed"};
    std::vector<notify_endpoint> endpoints;
  };
  notification_options notifications;
  // Called on the writer thread after a COMMIT that inserted or changed notifications (wakes
  // the delivery worker). Must be quick and must not throw.
  std::function<void()> on_notifications;

  // Hot standby. Enabled: every batch committed through submit() also gets a repl_log row
  // (seq, epoch(), payload) in the same transaction. Disabled: the log is not written, and a
  // log left from an earlier run is dropped at open (its history ends: a standby re-seeds).
  struct replication_options {
    bool enabled = false;
    // The fencing epoch stamped on each entry (called on the writer thread).
    std::function<std::uint64_t()> epoch;
    // Called before each batch (replica: true for apply_replica's): an error fails that batch
    // alone with it. A standby admits only replicas, an active only its own batches.
    std::function<status(bool replica)> admit;
    // Called right before each COMMIT: an error fails the whole group with that error and
    // nothing of it is durable. A node that lost its lease or saw a higher epoch must not
    // commit (journal.fenced), even if it was paused between admitting a batch and here.
    std::function<status()> fence;
    // Called on the writer thread after a COMMIT with the group's new entries, in order, each
    // with the done callback of its batch: the hook then owns those callbacks and calls each
    // exactly once (synchronous replication: after the standby acknowledged the entry). Not
    // set: done runs at once as usual. Must be quick and must not throw.
    std::function<void(std::vector<repl_commit>)> on_commit;
  };
  replication_options replication;
};

class writer {
 public:
  using done_fn = std::function<void(status)>;

  // Opens (creating if needed) the journal at `db`, sets WAL + synchronous=FULL + foreign
  // keys, applies pending migrations and starts the writer thread.
  // Only one writer may have a journal open (a flock on "<db>-writer.lock", released by
  // close() or when the process dies).
  // Errors: journal.open_failed, journal.locked (another writer has it), journal.schema_too_new,
  //         journal.migration_failed, journal.invalid_argument (max_batch == 0).
  static result<std::unique_ptr<writer>> open(const std::filesystem::path& db, std::uint32_t max_batch);
  static result<std::unique_ptr<writer>> open(const std::filesystem::path& db, const writer_options& options);

  virtual ~writer() = default;
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  // Thread-safe. `done` is called exactly once: from the writer thread after the batch's
  // group committed (or failed), or at once on the caller's thread with journal.closed after
  // close(). `done` must be quick and must not throw; re-post to your own executor.
  virtual void submit(batch b, done_fn done) = 0;

  // Blocks until the batch is durable or failed. Not from inside a done callback
  // (that would wait on its own thread): returns journal.reentrant there.
  virtual status submit_sync(batch b) = 0;

  // Appends one audit record (records.hpp) in a batch of its own: durable like every other
  // write when `done` runs with ok. Same errors as submit (journal.invalid_record for a field
  // the audit_log CHECKs refuse: empty actor/action/outcome, unknown source, detail > 4096).
  void append_audit(audit_appended a, done_fn done) {
    batch b;
    b.records.emplace_back(std::move(a));
    submit(std::move(b), std::move(done));
  }

  // Retention (retention.hpp): removes the finished orders of business dates before
  // req.before in bounded steps, each one transaction on the writer thread queued behind the
  // batches already waiting. `done` runs once, on the writer thread (quick, no throw), with the
  // counts or journal.invalid_argument, journal.io_error, journal.closed (the writer closed
  // first). Steps committed before an error stay committed; running the purge again continues.
  using purge_done_fn = std::function<void(result<purge_report>)>;
  virtual void purge(purge_request req, purge_done_fn done) = 0;
  // Blocks until the purge ends. Not from a done callback: journal.reentrant there.
  virtual result<purge_report> purge_sync(purge_request req) = 0;

  virtual writer_stats stats() const = 0;

  // Standby: applies an entry the active committed, in the active's order: the records (the
  // notification rows as shipped, none generated here) and the repl_log row, in one batch of a
  // group commit. `done` as for submit. Errors, besides those of submit:
  //   journal.repl_gap          e.seq is not last_seq + 1 (nothing applied)
  //   journal.repl_stale_epoch  e.epoch is lower than the last entry's epoch
  //   journal.bad_replica       the payload does not decode
  //   journal.fenced            (and any other error of replication.fence)
  // A replica that fails to apply (duplicate, conflict) means the two journals differ: the
  // standby must re-seed from a snapshot.
  virtual void apply_replica(repl_entry e, done_fn done) = 0;

  // The replication log's position as committed so far (thread-safe).
  virtual repl_position replication_position() const = 0;

  // Deletes log entries with seq < below (never the newest entry, which carries the position),
  // on the writer thread between groups. Entries a standby still needs must be kept: the
  // caller passes what the standby acknowledged.
  virtual void trim_replication_log(std::uint64_t below) = 0;

  // A PRAGMA value as seen by the writer's own connection (synchronous and foreign_keys are
  // per connection), e.g. pragma("synchronous") -> "2" (FULL). Runs on the writer thread
  // between groups. name: letters and '_' only, else journal.invalid_argument.
  virtual result<std::string> pragma(const std::string& name) = 0;

  // Applies everything already queued, acknowledges it, stops the thread and closes the
  // database. Idempotent. The destructor calls it. From inside a done callback it only stops
  // accepting work (the thread cannot join itself); never destroy the writer from a callback.
  virtual void close() = 0;

 protected:
  writer() = default;
};

}  // namespace eftd::journal
