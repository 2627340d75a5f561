// Private: the purge's steps on the writer's connection (retention.hpp), run by writer.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/journal/retention.hpp"
#include "sqlite_db.hpp"

namespace eftd::journal::detail {

// Where a purge is, between its steps.
struct purge_state {
  enum class phase { orders, batches, vacuum, done };
  phase at = phase::orders;
  // Keyset cursor over orders_by_business_date (business_date, created_ms, rowid), descending.
  bool started = false;
  std::string cursor_date;
  std::int64_t cursor_created_ms = 0;
  std::int64_t cursor_rowid = 0;
  // Dry run only. Each step is rolled back, so what earlier steps "removed" is still there:
  // orders that refer to another order are removed again at the start of each step (so their
  // parents see the same journal as in a real purge), and the messages removed per batch are
  // counted to tell which batches a real purge would have emptied.
  std::vector<std::string> carried;
  std::map<std::tuple<std::string, std::string, std::int64_t>, std::int64_t> removed_per_batch;
  // Events of one order that name an operation of another (scanned once, then only the events
  // added since): events.op_id has no index, and a full scan per step would stall the writer.
  bool event_refs_loaded = false;
  std::int64_t events_seen = 0;
  std::vector<std::pair<std::string, std::string>> event_refs;  // (referred-to order, referring order)
  purge_report report;
};

// Runs the next step in a transaction of its own. The connection must not be in a
// transaction. Errors: journal.io_error (nothing of the step is kept).
status purge_step(connection& c, const purge_request& req, purge_state& st);

// journal.invalid_argument for a malformed date or chunk size.
status check_purge_request(const purge_request& req);

}  // namespace eftd::journal::detail
