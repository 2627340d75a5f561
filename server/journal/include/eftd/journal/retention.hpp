// Retention: purging finished orders of old business dates from the journal.
//
// Retention
// ---------
// A purge removes whole orders (the order, its operations, acquirer messages, events and
// delivered/expired notifications) whose business_date is before `before`, and only when
// nothing about them is still owed to anyone:
//   - the order is in a final state (approved, declined, failed, cancelled, reversed);
//   - no message of the order is still in doubt or queued (intent, sent, timeout,
//     reversal_pending, pending) and no notification of it is pending;
//   - no message is parked or expired (a case for people) unless staff resolved that case
//     (case_resolutions), and no message is in a state the purge does not know;
//   - every financial request that settles or may settle (an x2xx of a sale, refund or
//     completion not declined, see settlement_rules.hpp batch_content_of) belongs to a
//     settlement batch in a final state (closed, out_of_balance, refused), and every batch step
//     naming a message of the order belongs to a final batch that is itself before `before`;
//   - no operation or message of another order that stays refers to it (a completion names
//     its preauth; such a parent goes with, or after, the orders that refer to it).
// Orders that fail a rule are kept and counted under the first rule they fail.
// Settlement batches then go (with their steps) when final, before `before`, empty of messages,
// and not the highest-numbered batch of their terminal: the open batch number is one above
// the highest batch written, so removing that one would renumber the open batch under the
// messages already stamped with it.
// The audit log, counters, pad health and users are never purged.
//
// The purge runs on the journal writer's own thread (writer::purge), one bounded transaction
// per step (at most `chunk_orders` orders), each re-queued behind the batches that arrived
// meanwhile, so sales are delayed by one step at most. Orders are taken newest first so the
// orders that refer to a parent are gone before the parent's turn. A dry run performs every
// step and rolls each back: it reports what a real purge would remove, removing nothing.
// The purge's own steps run with foreign keys off (the referring columns have no index, so
// SQLite's checks would scan whole tables per deleted row); the rules above keep every
// reference instead. After a real purge, PRAGMA incremental_vacuum runs only if the journal uses
// auto_vacuum=INCREMENTAL; otherwise SQLite reuses the freed pages.
#pragma once

#include <cstdint>
#include <string>

namespace eftd::journal {

struct purge_request {
  std::string before;  // 'YYYY-MM-DD': orders and batches of earlier business dates are due
  bool dry_run = false;
  std::uint32_t chunk_orders = 500;  // orders examined per transaction, >= 1
};

struct purge_report {
  std::string before;
  bool dry_run = false;
  // Removed (or, for a dry run, that would be removed).
  std::int64_t orders = 0;
  std::int64_t operations = 0;
  std::int64_t messages = 0;
  std::int64_t events = 0;
  std::int64_t notifications = 0;
  std::int64_t batches = 0;
  std::int64_t steps = 0;
  // Orders before the cutoff that were kept, by the first rule they fail.
  std::int64_t kept_not_final = 0;   // the order is not in a final state
  std::int64_t kept_in_queue = 0;    // a message in doubt or queued, or a notification pending
  std::int64_t kept_open_case = 0;   // a parked/expired message nobody resolved
  std::int64_t kept_open_batch = 0;  // settles in a batch that is open, closing or not yet due
  std::int64_t kept_linked = 0;      // another order that stays refers to it
  std::int64_t transactions = 0;     // steps run

  std::int64_t kept_unsettled() const noexcept {
    return kept_not_final + kept_in_queue + kept_open_case + kept_open_batch + kept_linked;
  }
};

// "orders=3 operations=4 ... kept_open_batch=1": for logs and the audit log.
std::string to_string(const purge_report& r);

}  // namespace eftd::journal
