// The acquirer host simulator's decision logic, without any I/O: a request message in, a
// response message (or a deliberate silence, or a fault for the server to act out) out, plus an
// in-memory ledger with per-terminal batch totals for end of day.
//
// Answers: 0100->0110, 0200->0210, 0220->0230 (advice), 0320->0330 (batch upload), 0400->0410,
// 0420->0430 (reversal advice), 0500->0510 (reconciliation), 0800->0810; a repeat (0101, 0201,
// 0401, 0421, 0501, ...) gets its original's response MTI.
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
//   4b. field 52 present and a ZPK configured: the PIN block deciphered under the ZPK and
//      checked against the PAN -> "55" incorrect PIN (also for a block that does not decode);
//      without a ZPK the PIN is not checked
//   4c. issuer keys configured (issuer.hpp) and field 55 holding an ARQC of a card they cover:
//      9F26 recomputed -> "05" on a mismatch (logged "arqc mismatch", no field 55 in the
//      answer); a verified ARQC makes the answer carry field 55 with 91 (the ARPC for the
//      final response code) and, on approval, the configured issuer scripts (71 / 72)
//   5. PAN suffix rules (default 0002 -> "05" do not honour, 0004 -> "54" expired card)
//   6. amount above `amount_limit` (minor units)                              -> "61"
//   7. amount suffix rules on the last two digits (default 51 -> "51" insufficient funds)
//   8. otherwise "00" approved.
// Faults (`fault_rules`, by amount suffix) then change how a first answer to 0100/0200/0220
// travels; the decision and the ledger are as above. Repeats are answered plainly.
//
// Reversals (0400/0420) answer "00" whether or not the original is known (a reversal must be
// idempotent); the original is found by 41 + field 90's original STAN and date-time, or by
// 41 + 11 + 7 of the reversal when 90 is absent. A reversal seen before (same 41 + 11 + 7: a
// repeat 0401/0421 or a resend) is answered again and reverses nothing; neither does a second
// reversal of an original already reversed.
//
// Ledger for end of day, per terminal (41) and batch: financial transactions (MTI class 2,
// processing code 00 debit / 20 credit; 31 inquiries and 01xx authorizations do not settle)
// approved with 00 or 10, and reversals of them. A 0500 whose fields 74-77, 86-89 and 97 equal
// the open batch closes it (39 00, 66 1). Otherwise 39 95, 66 2: the terminal uploads its
// transactions with 0320 (each answered 0330 00; one the host never saw is added to its ledger)
// and the next 0500 is accepted (39 00, 66 1) and closes the batch at the host's figures. A
// 0500/0501 seen before (same 41 + 11 + 7) gets its first answer again and closes nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/acq/message.hpp"
#include "eftd/acqsim/issuer.hpp"
#include "eftd/core/bytes.hpp"
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

// How an answer travels (the server acts these out; the host only decides).
enum class fault : std::uint8_t {
  none,
  drip,            // the frame is written one byte every `drip_ms`
  duplicate,       // the frame is written twice
  wrong_stan,      // field 11 of the answer is altered (the host has already done it)
  reset,           // part of the frame is written, then the connection is reset (RST)
  after_reversal,  // held until a reversal of this transaction arrives, then sent before its answer
};

std::string_view to_string(fault f) noexcept;

struct fault_rule {
  std::string suffix;  // digits the amount (field 4) must end with
  fault kind = fault::none;
  std::uint32_t drip_ms = 0;  // fault::drip only
  friend bool operator==(const fault_rule&, const fault_rule&) = default;
};

struct rules {
  std::vector<suffix_rule> amount_suffix{{"51", "51"}};
  std::vector<suffix_rule> pan_suffix{{"0002", "05"}, {"0004", "54"}};
  std::int64_t amount_limit = 1'000'000;  // minor units (10 000.00); above -> "61"
  std::vector<std::string> no_reply_amount_suffixes;
  std::vector<std::string> disconnect_amount_suffixes;
  // Answer amounts ending in `suffix` only after `delay_ms` (a slow issuer).
  struct delay_rule {
    std::string suffix;
    std::uint32_t delay_ms = 0;
  };
  std::vector<delay_rule> delay_amount_suffixes;
  // Approve only `percent` of amounts ending in `suffix` (response 10, field 4 = the part).
  struct partial_rule {
    std::string suffix;
    std::uint32_t percent = 50;
  };
  std::vector<partial_rule> partial_amount_suffixes;
  std::int64_t balance = 100'000;  // available balance answered to balance inquiries (field 54)
  // Online PIN (field 52, ISO 9564 format 0 under the zone PIN key shared with the terminal):
  // the simulator deciphers it and compares it with `pin` (every card's PIN). Empty zpk: PINs
  // are not checked.
  eftd::bytes zpk;
  std::string pin = "1234";
  // Chip cards: issuer master keys for the ARQC check and the ARPC (none: no check, no 55).
  std::optional<issuer_keys> issuer;
  std::vector<issuer_script> issuer_scripts;  // sent with approvals of verified ARQCs
  std::vector<fault_rule> faults;             // first match by suffix wins
  // Message MAC (acq/message_mac.hpp, ISO 9797-1 alg 3 under this double-length MAK): every
  // request except 08xx must carry a valid MAC (else 39 = 63, not approved) and every answer
  // is MACed. Empty: no MAC either way. The server does the MAC work; the host only answers 63.
  eftd::bytes mak;
  // Answers to amounts ending in one of these carry a corrupted MAC (with a MAK only).
  std::vector<std::string> bad_mac_amount_suffixes;
};

enum class action { reply, no_reply, disconnect, ignore };

struct outcome {
  action what = action::ignore;
  std::optional<acq::message> response;  // set when what == reply
  std::string note;                      // why, for the log (never card data)
  std::uint32_t delay_ms = 0;            // wait this long before replying
  fault how = fault::none;               // how the reply travels
  std::uint32_t drip_ms = 0;             // fault::drip: milliseconds between bytes
  // The ledger key (41|11|7) of the transaction an authorization decided, or that a reversal
  // names (set even when the original is unknown): the server pairs held answers with it.
  std::string transaction_key;
};

// One terminal's settlement figures: what fields 74-77, 86-89 and 97 of a 0500 carry.
struct batch_totals {
  std::uint64_t credits = 0;                // 74
  std::uint64_t credit_reversals = 0;       // 75
  std::uint64_t debits = 0;                 // 76
  std::uint64_t debit_reversals = 0;        // 77
  std::int64_t credit_amount = 0;           // 86
  std::int64_t credit_reversal_amount = 0;  // 87
  std::int64_t debit_amount = 0;            // 88
  std::int64_t debit_reversal_amount = 0;   // 89
  // 97: debits - debit reversals - credits + credit reversals ('D' prefix when positive: the
  // acquirer owes the merchant).
  std::int64_t net() const noexcept {
    return debit_amount - debit_reversal_amount - credit_amount + credit_reversal_amount;
  }
  batch_totals& operator+=(const batch_totals& o) noexcept;
  friend bool operator==(const batch_totals&, const batch_totals&) = default;
};

// The fields of a 0500 for `t` (74-77, 86-89, 97 as iso87 text).
void set_reconciliation_fields(acq::message& m, const batch_totals& t);
// The totals a 0500 carries; "sim.bad_totals" naming the first missing or non-numeric field.
result<batch_totals> reconciliation_fields(const acq::message& m);

struct terminal_ledger {
  batch_totals open;  // the batch not yet closed
  std::uint64_t batches_closed = 0;
  bool out_of_balance = false;  // the last 0500 was answered 95; uploads are expected
  std::uint64_t uploads = 0;    // 0320s since that 95
};

struct ledger_entry {
  std::string mti;            // the request MTI
  std::int64_t amount = 0;    // minor units
  std::string response_code;  // "00" approved
  bool answered = true;       // false for no-reply approvals
  bool reversed = false;
  bool credit = false;    // a refund (processing code 20): money back to the card
  bool settles = false;   // counted in the terminal's batch (see the ledger rules above)
  bool uploaded = false;  // named by a 0320 batch upload
  // What the sim's settlement file needs (never card data beyond the masked PAN):
  std::string rrn;          // field 37 as answered (the request's, else generated)
  std::string auth_code;    // field 38 as answered; "" when none was given
  std::string merchant_id;  // field 42
  std::string currency;     // field 49, ISO 4217 numeric
  std::string local_date;   // MMDD: field 13, else from field 7
  std::string local_time;   // hhmmss: field 12, else from field 7
  std::string pan_masked;   // first 6 / last 4 at most
  // A pre-authorisation (0100 approved): what incremental authorisations added, and whether
  // a completion advice has settled it.
  std::int64_t incremented = 0;
  bool completed = false;
  std::string parent_key;  // an incremental, completion or refund advice: the ledger key it names
  // A settled purchase: what refund advices (0220 processing code 20 + 90) gave back so far.
  std::int64_t refunded = 0;
};

struct totals {
  std::uint64_t requests = 0;
  std::uint64_t approved = 0;
  std::uint64_t declined = 0;
  std::uint64_t reversals = 0;
  std::uint64_t reversed = 0;          // reversals that found their original
  std::uint64_t unanswered = 0;        // no-reply rule
  std::uint64_t disconnects = 0;       // disconnect rule
  std::uint64_t network = 0;           // 08xx
  std::uint64_t malformed = 0;         // frames that did not decode (reported by the server)
  std::uint64_t ignored = 0;           // MTIs the host does not answer
  std::int64_t approved_amount = 0;    // minor units, net of reversals (debits: purchases)
  std::int64_t refund_amount = 0;      // minor units, net of reversals (credits: refunds)
  std::uint64_t inquiries = 0;         // balance inquiries answered (processing code 31)
  std::uint64_t reversal_repeats = 0;  // reversals seen before, answered again
  std::uint64_t faults = 0;            // answers sent through a fault rule
  std::uint64_t reconciliations = 0;   // 0500 answered (repeats excluded)
  std::uint64_t out_of_balance = 0;    // 0500 answered 95
  std::uint64_t batches_closed = 0;
  std::uint64_t uploads = 0;        // 0320 answered (repeats excluded)
  std::uint64_t uploads_added = 0;  // 0320 naming a transaction the host had not seen
  std::uint64_t incrementals = 0;   // 0100 with field 90: more on an authorisation (approved or not)
  std::uint64_t advices = 0;        // 0120/0220 with field 90 answered (repeats excluded)
  batch_totals ledger;              // every terminal, every batch (closed or open)
};

class host {
 public:
  explicit host(rules r = {}) : rules_(std::move(r)) {}

  outcome handle(const acq::message& request);
  // The answer to a request whose MAC is missing or wrong: 39 = 63 (security violation),
  // nothing approved, nothing in the ledger. `why` is for the log (no MAC values).
  outcome security_violation(const acq::message& request, std::string_view why);
  void note_malformed() { ++totals_.malformed; }

  const totals& counts() const noexcept { return totals_; }
  // Key: terminal id | STAN | transmission date-time.
  const std::map<std::string, ledger_entry>& ledger() const noexcept { return ledger_; }
  // Per terminal id. The open batch of a terminal never seen is all zeros.
  const std::map<std::string, terminal_ledger>& terminals() const noexcept { return terminals_; }
  // `SUMMARY {"requests":N,...}`: one line for stdout at shutdown.
  std::string summary_line() const;

 private:
  outcome authorize(const acq::message& req);
  // An 0100 or advice (0120/0220) naming an earlier authorisation in field 90: an incremental
  // authorisation, or the completion of a pre-authorisation.
  outcome follow_up(const acq::message& req);
  std::string check_pin(const acq::message& req, std::string_view pan) const;
  std::optional<arqc_check> chip_check(const acq::message& req, std::string_view pan) const;
  outcome reverse(const acq::message& req);
  outcome network(const acq::message& req);
  outcome reconcile(const acq::message& req);
  outcome upload(const acq::message& req);
  acq::message response_to(const acq::message& req);
  void apply_fault(std::string_view amount, outcome& o);
  // Adds an approved financial transaction (or its reversal) to its terminal's open batch.
  void settle(std::string_view terminal, const ledger_entry& e, bool reversal);

  rules rules_;
  totals totals_;
  std::map<std::string, ledger_entry> ledger_;
  std::map<std::string, terminal_ledger> terminals_;
  // Answers already given to reversals / reconciliations / uploads, by the request's own
  // 41|11|7: a repeat gets the same answer and changes nothing.
  std::map<std::string, acq::message> answered_;
  std::uint64_t sequence_ = 0;  // drives RRN and auth code generation (deterministic)
};

}  // namespace eftd::acqsim
