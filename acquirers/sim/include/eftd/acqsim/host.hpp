// The acquirer host simulator's decision logic, without any I/O: a request message in, a
// response message (or a deliberate silence) out, plus an in-memory ledger.
//
// Answers: 0100->0110, 0200->0210, 0220->0230 (advice), 0400->0410, 0420->0430 (reversal
// advice), 0800->0810; a repeat (0101, 0201, 0401, 0421) gets its original's response MTI.
// Responses echo 3 4 7 11 12 13 37 41 42 49 (and 70 for 08xx) when present, generate 37
// (RRN) when absent, add 38 (6-character auth code) on approvals and always 39. Card data
// (2, 14, 35, 52, 55) is never echoed.
//
// Decision order for 0100/0200/0220 (first match wins):
//   1. amount suffix in `disconnect_amount_suffixes` -> close the connection, no answer
//   2. amount suffix in `no_reply_amount_suffixes`  -> decided by 3-8 below, but never answered
//      (a "lost" answer: the ledger keeps the decision, so a later reversal finds it)
//   3. required field missing (4, 7, 11, 41, and PAN from 2 or 35)           -> "30" format error
//   4. same terminal + STAN + transmission date-time already in the ledger    -> "94" duplicate,
//      except a repeat (0101, 0201, 0221: origin digit odd), which gets the original decision
//   5. PAN suffix rules (default 0002 -> "05" do not honour, 0004 -> "54" expired card)
//   6. amount above `amount_limit` (minor units)                              -> "61"
//   7. amount suffix rules on the last two digits (default 51 -> "51" insufficient funds)
//   8. otherwise "00" approved.
// Reversals (0400/0420) answer "00" whether or not the original is known (a reversal must be
// idempotent); the original is found by 41 + field 90's original STAN and date-time, or by
// 41 + 11 + 7 of the reversal when 90 is absent. 0800 answers "00".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/acq/message.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acqsim {

struct suffix_rule {
  std::string suffix;         // digits the amount / PAN must end with
  std::string response_code;  // field 39 to answer
  friend bool operator==(const suffix_rule&, const suffix_rule&) = default;
};

// "51=51" -> {suffix "51", code "51"}. "sim.bad_rule" unless SUFFIX is 1..19 digits and CODE
// two alphanumeric characters.
result<suffix_rule> parse_suffix_rule(std::string_view text);

struct rules {
  std::vector<suffix_rule> amount_suffix{{"51", "51"}};
  std::vector<suffix_rule> pan_suffix{{"0002", "05"}, {"0004", "54"}};
  std::int64_t amount_limit = 1'000'000;  // minor units (10 000.00); above -> "61"
  std::vector<std::string> no_reply_amount_suffixes;
  std::vector<std::string> disconnect_amount_suffixes;
};

enum class action { reply, no_reply, disconnect, ignore };

struct outcome {
  action what = action::ignore;
  std::optional<acq::message> response;  // set when what == reply
  std::string note;                      // why, for the log (never card data)
};

struct ledger_entry {
  std::string mti;            // the request MTI
  std::int64_t amount = 0;    // minor units
  std::string response_code;  // "00" approved
  bool answered = true;       // false for no-reply approvals
  bool reversed = false;
};

struct totals {
  std::uint64_t requests = 0;
  std::uint64_t approved = 0;
  std::uint64_t declined = 0;
  std::uint64_t reversals = 0;
  std::uint64_t reversed = 0;        // reversals that found their original
  std::uint64_t unanswered = 0;      // no-reply rule
  std::uint64_t disconnects = 0;     // disconnect rule
  std::uint64_t network = 0;         // 08xx
  std::uint64_t malformed = 0;       // frames that did not decode (reported by the server)
  std::uint64_t ignored = 0;         // MTIs the host does not answer
  std::int64_t approved_amount = 0;  // minor units, net of reversals
};

class host {
 public:
  explicit host(rules r = {}) : rules_(std::move(r)) {}

  outcome handle(const acq::message& request);
  void note_malformed() { ++totals_.malformed; }

  const totals& counts() const noexcept { return totals_; }
  // Key: terminal id | STAN | transmission date-time.
  const std::map<std::string, ledger_entry>& ledger() const noexcept { return ledger_; }
  // `SUMMARY {"requests":N,...}`: one line for stdout at shutdown.
  std::string summary_line() const;

 private:
  outcome authorize(const acq::message& req);
  outcome reverse(const acq::message& req);
  outcome network(const acq::message& req);
  acq::message response_to(const acq::message& req);

  rules rules_;
  totals totals_;
  std::map<std::string, ledger_entry> ledger_;
  std::uint64_t sequence_ = 0;  // drives RRN and auth code generation (deterministic)
};

}  // namespace eftd::acqsim
