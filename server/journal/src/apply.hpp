// Private: applying records to a SQLite connection inside the writer's transaction.
#pragma once

#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/journal/records.hpp"
#include "eftd/journal/writer.hpp"
#include "sqlite_db.hpp"

namespace eftd::journal::detail {

// The outcome of applying one batch's records: ok, a data error that fails only this batch,
// or a storage failure (io == true) that dooms the whole group.
struct apply_outcome {
  status st;
  bool io = false;
  bool notifications = false;  // the records inserted or changed notification rows
  // The notification rows the writer generated for this batch (`notify` enabled), exactly as
  // inserted, so that the active node can ship them to a standby (which applies them as
  // records with generation disabled). Empty when the batch failed.
  std::vector<notification_created> generated{};
};

// Free text (event reason/detail, order reasons) is for people and must never hold a PAN.
// As a last line of defence any run of 13..19 digits that passes the Luhn check is masked
// (first 6 and last 4 kept) before it is stored.
std::string scrub_card_numbers(std::string_view text);

// Applies the records in order; stops at the first failure. The caller wraps the call in a
// SAVEPOINT and rolls it back on failure.
// `notify`: null or disabled = no notification rows are inserted (writer.hpp).
apply_outcome apply_records(connection& c, const std::vector<record>& records,
                            const writer_options::notification_options* notify = nullptr);

}  // namespace eftd::journal::detail
