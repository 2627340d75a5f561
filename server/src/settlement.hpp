// End of day: the batch close state machine (RELIABILITY.md "Settlement is effectively-once").
//
// A batch is what settles for one (acquirer, terminal id) between two closes, as the acquirer
// keeps it: every acquirer message is stamped with its terminal's open batch number (journal
// schema v6), and writing a batch row moves new messages to the next number, so a sale made
// after a close (the same day too) settles with the next batch. A batch is labelled with a
// business date (field 15 of its 0500); a close "of a date" closes each terminal's open batch
// under that label. Its content: the financial requests (MTI x2xx) of sale, completion and
// refund orders, and the refunds that cancelled settled sales, by the same rules as the
// acquirer simulator's ledger:
//   - answered 00 or 10: a debit (sale, completion) or a credit (refund) at the approved amount;
//   - with an acknowledged reversal (a cancel, or a timeout reversal): also a debit/credit
//     reversal at the same amount. A request whose answer never came but whose reversal was
//     acknowledged counts both ways too (net zero): the acquirer may have approved it, and
//     then it has the same pair in its ledger. If it had declined it, the 0500 is out of
//     balance and the batch upload below settles it;
//   - declined, never sent, or still in doubt (no answer, reversal not yet acknowledged):
//     nothing (in doubt ones are counted in `in_doubt`, so people can see them).
//
// Close, every step journaled before its message is sent (with the STAN and transmission time
// it will use) and its answer journaled before the next step:
//   open (batch row written: its number is closed to new messages)
//   -> closing (totals fixed, 0500 920000) -> 00: closed
//                         -> 95: uploading: one 0320 per settling transaction
//                                -> closing_after_upload (0500 960000) -> 00: closed
//                                                                      -> 95: out_of_balance
//   any other answer: refused. out_of_balance and refused are cases for people (logged, and
//   named in the admin reply).
// After a crash, a step written but not answered is resent identically (same STAN, same field
// 7: the acquirer answers a repeat with its first answer), so a batch never closes twice.
// Settling a batch in a final state sends nothing and returns what is stored. The totals are
// fixed when the close starts.
//
// Test hook (R11, tests only): the environment variable EFTD_CRASH_AT=<step> makes eftd
// _exit(137) at that point: before_close_send (close step journaled, not sent),
// after_close_send (its answer received, not journaled), after_upload_1 (the first 0320's
// answer received, not journaled), before_final_close (0500 960000 journaled, not sent),
// after_final_close (its answer received, not journaled).
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "context.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/journal/settlement_rules.hpp"

namespace eftd::server {

// What one batch came to.
struct batch_result {
  std::string acquirer;
  std::string terminal_id;
  std::string business_date;
  std::int64_t batch_no = 0;  // the terminal's batch number (0: the close could not start)
  std::string state;          // journal::batch_states, or "open" when the close could not start
  journal::settlement_totals totals;
  std::int64_t in_doubt = 0;
  std::string response_code;     // the last 0510's field 39
  std::int64_t uploads = 0;      // 0320s answered
  bool already_final = false;    // nothing was sent: the stored result of an earlier close
  std::optional<error> problem;  // the close stopped (link down, journal): run settle again
};

// The content of a batch by the rules above (eftd/journal/settlement_rules.hpp, shared with
// the back-office reports).
using journal::batch_content;
using journal::batch_content_of;

class settlement_service {
 public:
  explicit settlement_service(server_context& ctx);
  ~settlement_service();

  // Closes each terminal's open batch that holds something to settle (every acquirer, or only
  // `acquirer`) under the label `business_date`, and reports (or resumes) the batches already
  // written under that label; run again with nothing new, it sends nothing. One close runs at
  // a time (callers wait).
  boost::asio::awaitable<std::vector<batch_result>> settle(std::string business_date,
                                                           std::optional<std::string> acquirer);
  // Catch-up (start-up, cut-over): every unfinished batch, and each open batch holding
  // requests of business dates before `before_date`.
  boost::asio::awaitable<std::vector<batch_result>> close_before(std::string before_date);

  // Starts the daily cut-over timer when [settlement] cutover is set, and the start-up
  // catch-up when close_on_start is. Call once, after the links exist.
  void start();
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace eftd::server
