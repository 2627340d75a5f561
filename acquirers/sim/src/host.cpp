#include "eftd/acqsim/host.hpp"

#include <fmt/format.h>

#include <charconv>

#include "eftd/acq/matching.hpp"
#include "eftd/acq/reconciliation.hpp"
#include "eftd/core/block_cipher.hpp"
#include "eftd/core/card.hpp"
#include "eftd/core/pin_block.hpp"

namespace eftd::acqsim {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::optional<std::int64_t> parse_amount(std::string_view s) {
  if (s.empty() || s.size() > 18 || !all_digits(s)) return std::nullopt;
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// PAN from field 2, else the digits of track 2 (field 35) before the separator.
std::string_view pan_of(const acq::message& m) {
  if (auto p = m.get(2)) return *p;
  if (auto t = m.get(35)) return t->substr(0, t->find_first_of("=D"));
  return {};
}

// The settlement-file facts of a request (everything but the answer's 37/38).
void describe(ledger_entry& e, const acq::message& m) {
  e.rrn = std::string{m.get_or(37, "")};
  e.merchant_id = std::string{m.get_or(42, "")};
  e.currency = std::string{m.get_or(49, "")};
  const auto when = m.get_or(7, "");  // MMDDhhmmss
  e.local_date = std::string{m.get_or(13, when.substr(0, std::min<std::size_t>(4, when.size())))};
  e.local_time = std::string{m.get_or(12, when.size() >= 10 ? when.substr(4, 6) : std::string_view{})};
  if (auto p = eftd::pan::parse(pan_of(m))) e.pan_masked = p->masked();
}

}  // namespace

// "" when there is no PIN, no zone PIN key to check it with, or the PIN is right; "55" when it
// is wrong or the block does not decode.
std::string host::check_pin(const acq::message& req, std::string_view pan) const {
  auto block = req.get(52);
  if (!block || rules_.zpk.empty()) return {};
  auto clear = eftd::tdes_ecb(eftd::cipher_op::decrypt, rules_.zpk, eftd::as_bytes(*block));
  if (!clear) return "55";
  auto p = eftd::decode_pin_block(eftd::pin_block_format::iso0, clear->view(), pan);
  if (!p) return "55";
  auto want = eftd::pin::parse(rules_.pin);
  return want && *p == *want ? "" : "55";
}

namespace {

std::string ledger_key(std::string_view terminal, std::string_view stan, std::string_view when) {
  return fmt::format("{}|{}|{}", terminal, stan, when);
}

bool approved(std::string_view code) {
  return code == "00" || code == "10";
}

// The request's own key (41|11|7), when all three are present.
std::optional<std::string> own_key(const acq::message& m) {
  const auto terminal = m.get(41), stan = m.get(11), when = m.get(7);
  if (!terminal || !stan || !when) return std::nullopt;
  return ledger_key(*terminal, *stan, *when);
}

// Field 90: original MTI (4), STAN (6), transmission date-time (10), acquirer id (11),
// forwarding id (11).
struct original_data {
  std::string_view mti, stan, when;
};
std::optional<original_data> original_of(const acq::message& m) {
  auto orig = m.get(90);
  if (!orig || orig->size() != 42) return std::nullopt;
  return original_data{orig->substr(0, 4), orig->substr(4, 6), orig->substr(10, 10)};
}

}  // namespace

result<suffix_rule> parse_suffix_rule(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos)
    return make_error("sim.bad_rule", fmt::format("rule '{}': expected SUFFIX=CODE", text));
  const auto suffix = text.substr(0, eq);
  const auto code = text.substr(eq + 1);
  if (suffix.empty() || suffix.size() > 19 || !all_digits(suffix))
    return make_error("sim.bad_rule", fmt::format("rule '{}': SUFFIX must be 1 to 19 digits", text));
  const auto alnum = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); };
  if (code.size() != 2 || !alnum(code[0]) || !alnum(code[1]))
    return make_error("sim.bad_rule", fmt::format("rule '{}': CODE must be 2 characters (0-9, A-Z)", text));
  return suffix_rule{std::string{suffix}, std::string{code}};
}

std::string_view to_string(fault f) noexcept {
  switch (f) {
    case fault::none:
      return "none";
    case fault::drip:
      return "drip";
    case fault::duplicate:
      return "duplicate";
    case fault::wrong_stan:
      return "wrong-stan";
    case fault::reset:
      return "reset";
    case fault::after_reversal:
      return "after-reversal";
  }
  return "?";
}

batch_totals& batch_totals::operator+=(const batch_totals& o) noexcept {
  credits += o.credits;
  credit_reversals += o.credit_reversals;
  debits += o.debits;
  debit_reversals += o.debit_reversals;
  credit_amount += o.credit_amount;
  credit_reversal_amount += o.credit_reversal_amount;
  debit_amount += o.debit_amount;
  debit_reversal_amount += o.debit_reversal_amount;
  return *this;
}

void set_reconciliation_fields(acq::message& m, const batch_totals& t) {
  acq::set_reconciliation_fields(m, t);
}

result<batch_totals> reconciliation_fields(const acq::message& m) {
  batch_totals t;
  const auto number = [&](int field, auto& out) -> status {
    const auto v = parse_amount(m.get_or(field, ""));
    if (!v) return make_error("sim.bad_totals", fmt::format("field {} missing or not numeric", field));
    out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    return status{};
  };
  for (auto st :
       {number(74, t.credits), number(75, t.credit_reversals), number(76, t.debits),
        number(77, t.debit_reversals), number(86, t.credit_amount), number(87, t.credit_reversal_amount),
        number(88, t.debit_amount), number(89, t.debit_reversal_amount)})
    if (!st) return st.err();
  // 97 must agree with the rest: a sign and the net in minor units. Zero may carry either sign.
  const auto net = m.get_or(97, "");
  const auto digits = parse_amount(net.empty() ? net : net.substr(1));
  if (net.empty() || (net[0] != 'C' && net[0] != 'D') || !digits)
    return make_error("sim.bad_totals", "field 97 missing or not a sign and digits");
  const std::int64_t value = net[0] == 'D' ? *digits : -*digits;
  if (value != t.net()) return make_error("sim.bad_totals", "field 97 is not the net of fields 86-89");
  return t;
}

acq::message host::response_to(const acq::message& req) {
  acq::message resp{acq::response_mti_for(req.mti()).value_or("")};
  for (int f : {3, 4, 7, 11, 12, 13, 37, 41, 42, 49})
    if (auto v = req.get(f)) resp.set(f, std::string{*v});
  ++sequence_;
  if (!resp.has(37)) resp.set(37, fmt::format("{:012}", sequence_));
  return resp;
}

outcome host::security_violation(const acq::message& req, std::string_view why) {
  ++totals_.requests;
  if (!acq::expects_response(req.mti())) {
    ++totals_.ignored;
    return {action::ignore, std::nullopt, fmt::format("MTI {} without a valid MAC ignored", req.mti())};
  }
  ++totals_.declined;
  outcome o;
  o.what = action::reply;
  acq::message resp = response_to(req);
  resp.set(39, "63");
  o.response = std::move(resp);
  o.note = fmt::format("63 security violation ({})", why);
  return o;
}

outcome host::handle(const acq::message& req) {
  ++totals_.requests;
  const std::string& mti = req.mti();
  if (!acq::expects_response(mti)) {
    ++totals_.ignored;
    return {action::ignore, std::nullopt, fmt::format("MTI {} is not a request this host answers", mti)};
  }
  switch (mti[1]) {
    case '1':
    case '2':
      return authorize(req);
    case '3':
      if (mti[2] == '2') return upload(req);
      break;
    case '4':
      return reverse(req);
    case '5':
      if (mti[2] == '0') return reconcile(req);
      break;
    case '8':
      if (mti[2] == '0') return network(req);
      break;
    default:
      break;
  }
  ++totals_.ignored;
  return {action::ignore, std::nullopt, fmt::format("MTI {} is not supported by the simulator", mti)};
}

// The ARQC check of a chip request (field 55), when issuer keys are configured.
std::optional<arqc_check> host::chip_check(const acq::message& req, std::string_view pan) const {
  auto f55 = req.get(55);
  if (!rules_.issuer || !f55 || req.mti()[1] == '4') return std::nullopt;
  return check_arqc(*rules_.issuer, pan, req.get_or(23, ""), *f55);
}

outcome host::authorize(const acq::message& req) {
  if (req.has(90) && req.mti()[1] <= '2') return follow_up(req);
  const auto amount_text = req.get_or(4, "");
  for (const auto& s : rules_.disconnect_amount_suffixes) {
    if (!amount_text.empty() && ends_with(amount_text, s)) {
      ++totals_.disconnects;
      return {action::disconnect, std::nullopt, fmt::format("amount ends in {}: disconnect rule", s)};
    }
  }
  bool silent = false;
  for (const auto& s : rules_.no_reply_amount_suffixes)
    if (!amount_text.empty() && ends_with(amount_text, s)) silent = true;

  const auto amount = parse_amount(amount_text);
  const auto pan = pan_of(req);
  // Field 3 positions 1-2: the transaction type (00 purchase, 20 refund, 31 balance inquiry).
  const auto pcode = req.get_or(3, "000000");
  const bool credit = pcode.substr(0, 2) == "20";
  const bool inquiry = pcode.substr(0, 2) == "31";
  const auto terminal = req.get(41), stan = req.get(11), when = req.get(7);

  // An advice without field 90: the card approved offline (39 = Y1/Y3) and the terminal tells
  // the issuer afterwards. It cannot be declined, only acknowledged; it settles like a purchase.
  const bool offline_advice = req.mti()[1] == '2' && req.mti()[2] == '2';
  std::string code = "00";
  std::string note = "approved";
  std::optional<std::string> key;
  std::optional<arqc_check> chip;
  if (!amount || !terminal || !stan || !when || pan.empty()) {
    code = "30";
    note = "format error: one of fields 4, 7, 11, 41 or the PAN (2/35) is missing";
  } else if (key = ledger_key(*terminal, *stan, *when); ledger_.count(*key)) {
    auto& original = ledger_[*key];
    const bool repeat = (req.mti()[3] - '0') % 2 == 1;  // 0201, 0221, ...: "did you get this?"
    if (repeat && !silent) {
      // A repeat asks again for the answer that was lost: the original decision, not a new one.
      original.answered = true;
      acq::message resp = response_to(req);
      resp.set(39, original.response_code);
      if (original.response_code == "00") {
        // The first answer may have been lost: its auth code stands once it was given.
        if (original.auth_code.empty()) original.auth_code = fmt::format("{:06}", sequence_ % 1'000'000);
        resp.set(38, original.auth_code);
      }
      if (original.rrn.empty()) original.rrn = std::string{resp.get_or(37, "")};
      return {action::reply, std::move(resp), "repeat: the original decision"};
    }
    code = "94";
    note = "duplicate transmission (same terminal, STAN and date-time)";
    key.reset();  // the original entry stays as it was
  } else if (offline_advice) {
    const auto decision = req.get_or(39, "");
    if (decision != "Y1" && decision != "Y3") {
      code = "30";
      note = "format error: an offline advice carries the terminal's decision Y1 or Y3 in field 39";
    } else {
      note = "offline advice acknowledged";
      chip = chip_check(req, pan);
      if (chip && chip->applies) note += chip->ok ? "; TC verified" : "; TC does not verify: " + chip->why;
      chip.reset();  // no issuer data for an advice
    }
  } else if (auto pin_code = check_pin(req, pan); !pin_code.empty()) {
    code = pin_code;
    note = "incorrect PIN";
  } else if (chip = chip_check(req, pan); chip && chip->applies && !chip->ok) {
    code = "05";
    note = chip->why;  // "arqc mismatch..." (no card data)
  } else {
    bool decided = false;
    for (const auto& r : rules_.pan_suffix) {
      if (ends_with(pan, r.suffix)) {
        code = r.response_code;
        note = fmt::format("PAN suffix rule {}", r.suffix);
        decided = true;
        break;
      }
    }
    if (!decided && *amount > rules_.amount_limit) {
      code = "61";
      note = fmt::format("amount above the limit of {}", rules_.amount_limit);
      decided = true;
    }
    for (const auto& r : rules_.amount_suffix) {
      if (decided) break;
      if (ends_with(amount_text, r.suffix)) {
        code = r.response_code;
        note = fmt::format("amount suffix rule {}", r.suffix);
        decided = true;
      }
    }
  }

  // Partial approval: decided like an approval, for part of the amount.
  std::optional<std::int64_t> partial;
  if (code == "00" && !inquiry && !credit) {
    for (const auto& r : rules_.partial_amount_suffixes) {
      if (ends_with(amount_text, r.suffix)) {
        partial = *amount * r.percent / 100;
        code = "10";
        note = fmt::format("partial approval rule {}: {}%", r.suffix, r.percent);
      }
    }
  }
  if (code == "10" && partial) {
    ++totals_.approved;
    totals_.approved_amount += *partial;
  } else if (code == "00" && inquiry) {
    ++totals_.inquiries;
  } else if (code == "00") {
    ++totals_.approved;
    (credit ? totals_.refund_amount : totals_.approved_amount) += *amount;
  } else {
    ++totals_.declined;
  }
  if (key) {
    // Only financial messages settle: a 0100 authorization is settled by its 0220 completion.
    const bool settles = req.mti()[1] == '2' && !inquiry && approved(code);
    auto& entry = ledger_[*key] = ledger_entry{
        req.mti(), inquiry ? 0 : partial.value_or(*amount), code, !silent, false, credit, settles, false};
    describe(entry, req);
    if (settles) settle(*terminal, entry, false);
  }
  if (silent) {
    ++totals_.unanswered;
    return {action::no_reply, std::nullopt, fmt::format("no-reply rule; decided {} ({})", code, note)};
  }
  acq::message resp = response_to(req);
  resp.set(39, code);
  if (offline_advice) {
    if (code == "00") resp.set(38, std::string(req.get_or(38, "Y1")));  // the card's approval stands
  } else if (code == "00" || code == "10") {
    resp.set(38, fmt::format("{:06}", sequence_ % 1'000'000));
  }
  if (partial) resp.set(4, fmt::format("{:012}", *partial));
  if (chip && chip->ok) {
    auto f55 = issuer_response_field55(*chip, code, rules_.issuer_scripts);
    if (f55) {
      resp.set(55, std::move(*f55));
      note += "; arqc verified, ARPC in 91";
    } else {
      note += fmt::format("; no ARPC ({})", f55.err().code);
    }
  }
  if (key) {
    auto& entry = ledger_[*key];
    entry.rrn = std::string{resp.get_or(37, "")};
    entry.auth_code = std::string{resp.get_or(38, "")};
  }
  if (code == "00" && inquiry) {
    // Field 54: account type 00, amount type 02 (available balance), currency of field 49,
    // sign, 12-digit amount.
    const auto cur = req.get_or(49, "000");
    resp.set(54, fmt::format("0002{:0>3}{}{:012}", cur, rules_.balance < 0 ? 'D' : 'C',
                             rules_.balance < 0 ? -rules_.balance : rules_.balance));
  }
  std::uint32_t delay = 0;
  for (const auto& d : rules_.delay_amount_suffixes)
    if (!amount_text.empty() && ends_with(amount_text, d.suffix)) delay = d.delay_ms;
  outcome o{action::reply, std::move(resp), std::move(note), delay};
  if (key) o.transaction_key = *key;
  apply_fault(amount_text, o);
  return o;
}

// Pre-authorisation flows refer to the 0100 that opened them by its data elements (field 90),
// not by the card: eftd does not send card data again for them (DIALECTS.md).
//   0100 + 90  incremental authorisation: approved by the usual amount rules, it raises what the
//              pre-authorisation may complete for. Settles nothing.
//   0220 + 90  completion advice: settles its own amount (at most what was authorised, once).
//   0120 + 90  authorisation advice: acknowledged, settles nothing.
//   0220 + 90 with processing code 20: refund advice of an approved purchase (0200 or a
//              completion) that was cancelled after settlement: a credit of its own amount
//              (at most what is left unrefunded), settled in the open batch.
// Advices are acknowledged with 00; a completion the host cannot accept gets 13 (amount above
// what was authorised), 12 (already completed, or the original is no pre-authorisation) or 25
// (original unknown): eftd parks such an advice for people.
outcome host::follow_up(const acq::message& req) {
  const auto amount_text = req.get_or(4, "");
  const auto amount = parse_amount(amount_text);
  const auto self = own_key(req);
  const auto orig = original_of(req);
  const bool advice = req.mti()[2] == '2';
  const bool refund_advice = advice && req.mti()[1] == '2' && req.get_or(3, "").substr(0, 2) == "20";
  acq::message resp = response_to(req);
  if (!self || !orig || !amount) {
    ++totals_.declined;
    resp.set(39, "30");
    return {action::reply, std::move(resp), "format error: follow-up without 4, 7, 11, 41 or a 42-digit 90"};
  }
  if (auto it = ledger_.find(*self); it != ledger_.end()) {
    const bool repeat = (req.mti()[3] - '0') % 2 == 1;
    if (repeat) {
      resp.set(39, it->second.response_code);
      if (!it->second.auth_code.empty()) resp.set(38, it->second.auth_code);
      return {action::reply, std::move(resp), "repeat: the original decision"};
    }
    ++totals_.declined;
    resp.set(39, "94");
    return {action::reply, std::move(resp), "duplicate transmission (same terminal, STAN and date-time)"};
  }
  const std::string terminal{*req.get(41)};
  const auto orig_key = ledger_key(terminal, orig->stan, orig->when);
  auto it = ledger_.find(orig_key);
  std::string code = "00", note;
  if (it == ledger_.end() || it->second.reversed) {
    code = "25";
    note = "original authorisation unknown or reversed";
  } else if (refund_advice) {
    if (it->second.mti.size() != 4 || it->second.mti[1] != '2' || it->second.credit ||
        !approved(it->second.response_code) || !it->second.settles) {
      code = "12";
      note = "the original is no approved purchase";
    } else if (it->second.refunded + *amount > it->second.amount) {
      code = "13";
      note = fmt::format("refund of {} above the {} left to refund", *amount,
                         it->second.amount - it->second.refunded);
    } else {
      note = "refund advice of a settled purchase";
    }
  } else if (it->second.mti.substr(0, 2) != "01" || !approved(it->second.response_code)) {
    code = "12";
    note = "the original is no approved authorisation";
  } else if (req.mti()[1] == '2' && advice) {
    const auto authorised = it->second.amount + it->second.incremented;
    if (it->second.completed) {
      code = "12";
      note = "pre-authorisation already completed";
    } else if (*amount > authorised) {
      code = "13";
      note = fmt::format("completion of {} above the {} authorised", *amount, authorised);
    } else {
      note = "completion advice";
    }
  } else if (!advice) {
    for (const auto& r : rules_.amount_suffix)
      if (ends_with(amount_text, r.suffix)) {
        code = r.response_code;
        note = fmt::format("amount suffix rule {}", r.suffix);
      }
    if (code == "00" && it->second.amount + it->second.incremented + *amount > rules_.amount_limit) {
      code = "61";
      note = fmt::format("authorised total above the limit of {}", rules_.amount_limit);
    }
    if (code == "00") note = "incremental authorisation";
  } else {
    note = "authorisation advice";
  }
  (advice ? totals_.advices : totals_.incrementals) += 1;
  if (approved(code)) {
    ++totals_.approved;
    if (!advice) {
      it->second.incremented += *amount;
      totals_.approved_amount += *amount;
    }
  } else {
    ++totals_.declined;
  }
  const bool settles = advice && req.mti()[1] == '2' && code == "00";
  auto& entry = ledger_[*self] =
      ledger_entry{req.mti(), *amount, code, true, false, refund_advice, settles, false};
  describe(entry, req);
  if (it != ledger_.end()) {
    entry.pan_masked = it->second.pan_masked;
    entry.parent_key = orig_key;
  }
  resp.set(39, code);
  if (approved(code) && !advice) resp.set(38, fmt::format("{:06}", sequence_ % 1'000'000));
  if (approved(code) && advice) {
    if (auto ac = req.get(38)) resp.set(38, std::string{*ac});
  }
  entry.rrn = std::string{resp.get_or(37, "")};
  entry.auth_code = std::string{resp.get_or(38, "")};
  if (settles) {
    if (refund_advice) {
      it->second.refunded += *amount;
      totals_.refund_amount += *amount;
    } else {
      it->second.completed = true;
    }
    settle(terminal, entry, false);
  }
  outcome o{action::reply, std::move(resp), std::move(note)};
  o.transaction_key = *self;
  for (const auto& d : rules_.delay_amount_suffixes)
    if (ends_with(amount_text, d.suffix)) o.delay_ms = d.delay_ms;
  return o;
}

void host::apply_fault(std::string_view amount, outcome& o) {
  if (amount.empty()) return;
  for (const auto& f : rules_.faults) {
    if (!ends_with(amount, f.suffix)) continue;
    // Without a ledger key (a format error) nothing could release a held answer.
    if (f.kind == fault::after_reversal && o.transaction_key.empty()) return;
    o.how = f.kind;
    o.drip_ms = f.drip_ms;
    if (f.kind == fault::wrong_stan) {
      // Any other STAN: the answer no longer matches the request's key.
      const auto stan = parse_amount(o.response->get_or(11, "0")).value_or(0);
      o.response->set(11, fmt::format("{:06}", (stan + 1) % 1'000'000));
    }
    if (f.kind == fault::reset || f.kind == fault::after_reversal) {
      // The answer may never arrive: the ledger must say so until it does.
      if (auto it = ledger_.find(o.transaction_key); it != ledger_.end()) it->second.answered = false;
    }
    ++totals_.faults;
    o.note += fmt::format("; fault {} (amount suffix {})", to_string(f.kind), f.suffix);
    return;
  }
}

void host::settle(std::string_view terminal, const ledger_entry& e, bool reversal) {
  batch_totals d;
  if (e.credit) {
    (reversal ? d.credit_reversals : d.credits) = 1;
    (reversal ? d.credit_reversal_amount : d.credit_amount) = e.amount;
  } else {
    (reversal ? d.debit_reversals : d.debits) = 1;
    (reversal ? d.debit_reversal_amount : d.debit_amount) = e.amount;
  }
  terminals_[std::string{terminal}].open += d;
  totals_.ledger += d;
}

outcome host::reverse(const acq::message& req) {
  const auto self = own_key(req);
  if (self) {
    if (auto seen = answered_.find(*self); seen != answered_.end()) {
      // The same reversal again (a 0401/0421 repeat, or a resend): the first answer, nothing
      // reversed twice.
      ++totals_.reversal_repeats;
      acq::message resp = seen->second;
      resp.set_mti(acq::response_mti_for(req.mti()).value_or(""));
      outcome o{action::reply, std::move(resp), "reversal seen before: answered again"};
      if (auto orig = original_of(req)) o.transaction_key = ledger_key(*req.get(41), orig->stan, orig->when);
      return o;
    }
  }
  ++totals_.reversals;
  acq::message resp = response_to(req);
  const auto terminal = req.get(41);
  std::optional<std::string_view> stan = req.get(11), when = req.get(7);
  if (auto orig = original_of(req)) {
    stan = orig->stan;
    when = orig->when;
  }
  if (!terminal || !stan || !when) {
    resp.set(39, "30");
    return {action::reply, std::move(resp), "format error: reversal without 41 and 11/7 or 90"};
  }
  const auto key = ledger_key(*terminal, *stan, *when);
  std::string note = "reversal of an unknown transaction accepted";
  auto it = ledger_.find(key);
  if (it != ledger_.end() && !it->second.reversed) {
    it->second.reversed = true;
    ++totals_.reversed;
    if (approved(it->second.response_code))
      (it->second.credit ? totals_.refund_amount : totals_.approved_amount) -= it->second.amount;
    if (it->second.settles) settle(*terminal, it->second, true);
    // Reversing an incremental or a completion gives its pre-authorisation back what it took.
    if (auto parent = ledger_.find(it->second.parent_key);
        !it->second.parent_key.empty() && parent != ledger_.end() && approved(it->second.response_code)) {
      if (it->second.settles && it->second.credit)
        parent->second.refunded -= it->second.amount;
      else if (it->second.settles)
        parent->second.completed = false;
      else if (it->second.mti.substr(0, 2) == "01" && it->second.mti[2] == '0')
        parent->second.incremented -= it->second.amount;
    }
    note = "reversed";
  } else if (it != ledger_.end()) {
    note = "already reversed";
  }
  resp.set(39, "00");
  if (self) answered_[*self] = resp;
  outcome o{action::reply, std::move(resp), std::move(note)};
  o.transaction_key = key;
  return o;
}

outcome host::upload(const acq::message& req) {
  const auto self = own_key(req);
  if (self) {
    if (auto seen = answered_.find(*self); seen != answered_.end()) {
      acq::message resp = seen->second;
      resp.set_mti(acq::response_mti_for(req.mti()).value_or(""));
      return {action::reply, std::move(resp), "batch upload seen before: answered again"};
    }
  }
  acq::message resp = response_to(req);
  const auto orig = original_of(req);
  const auto amount = parse_amount(req.get_or(4, ""));
  if (!self || !orig || !amount) {
    resp.set(39, "30");
    return {action::reply, std::move(resp), "format error: 0320 without 4, 7, 11, 41 or a 42-digit 90"};
  }
  ++totals_.uploads;
  const std::string terminal{*req.get(41)};
  auto& t = terminals_[terminal];
  ++t.uploads;
  const auto key = ledger_key(terminal, orig->stan, orig->when);
  std::string note = "batch upload: transaction known";
  if (auto it = ledger_.find(key); it != ledger_.end()) {
    it->second.uploaded = true;
  } else {
    // A transaction the host never saw (offline approval, lost request): the terminal's record
    // is what settles, so it joins the ledger.
    const auto pcode = req.get_or(3, "000000");
    const auto code = std::string{req.get_or(39, "00")};
    const bool offline_approved = code == "Y1" || code == "Y3";
    ledger_entry e{std::string{orig->mti},
                   *amount,
                   code,
                   true,
                   false,
                   pcode.substr(0, 2) == "20",
                   orig->mti.size() == 4 && orig->mti[1] == '2' && (approved(code) || offline_approved),
                   true};
    describe(e, req);
    e.auth_code = std::string{req.get_or(38, "")};
    if (e.settles) settle(terminal, e, false);
    ledger_.emplace(key, std::move(e));
    ++totals_.uploads_added;
    note = "batch upload: transaction added to the ledger";
  }
  resp.set(39, "00");
  answered_[*self] = resp;
  return {action::reply, std::move(resp), std::move(note)};
}

outcome host::reconcile(const acq::message& req) {
  const auto self = own_key(req);
  if (self) {
    if (auto seen = answered_.find(*self); seen != answered_.end()) {
      // A 0501 after a lost 0510, or a resend: the first answer; the batch closes only once.
      acq::message resp = seen->second;
      resp.set_mti(acq::response_mti_for(req.mti()).value_or(""));
      return {action::reply, std::move(resp), "reconciliation seen before: answered again"};
    }
  }
  acq::message resp{acq::response_mti_for(req.mti()).value_or("")};
  for (int f : {3, 7, 11, 15, 41, 42})
    if (auto v = req.get(f)) resp.set(f, std::string{*v});
  const auto theirs = reconciliation_fields(req);
  if (!self || !theirs) {
    resp.set(39, "30");
    return {action::reply, std::move(resp),
            fmt::format("format error: {}", self ? theirs.err().message : "0500 without 7, 11 or 41")};
  }
  ++totals_.reconciliations;
  auto& t = terminals_[std::string{*req.get(41)}];
  std::string note;
  if (*theirs == t.open || (t.out_of_balance && t.uploads > 0)) {
    // After a batch upload the host settles at its own figures, which now include every
    // transaction the terminal uploaded.
    note = *theirs == t.open ? "in balance: batch closed"
                             : "closed after batch upload at the host's figures (terminal's differ)";
    t.open = {};
    t.out_of_balance = false;
    t.uploads = 0;
    ++t.batches_closed;
    ++totals_.batches_closed;
    resp.set(39, "00");
    resp.set(66, "1");
  } else {
    t.out_of_balance = true;
    t.uploads = 0;
    ++totals_.out_of_balance;
    note = fmt::format("out of balance: host has {} debits, {} credits, net {}", t.open.debits,
                       t.open.credits, t.open.net());
    resp.set(39, "95");
    resp.set(66, "2");
  }
  answered_[*self] = resp;
  return {action::reply, std::move(resp), std::move(note)};
}

outcome host::network(const acq::message& req) {
  ++totals_.network;
  acq::message resp{acq::response_mti_for(req.mti()).value_or("")};
  for (int f : {7, 11, 41, 70})
    if (auto v = req.get(f)) resp.set(f, std::string{*v});
  resp.set(39, "00");
  return {action::reply, std::move(resp), "network management"};
}

std::string host::summary_line() const {
  const auto& t = totals_;
  return fmt::format(
      "SUMMARY {{\"requests\":{},\"approved\":{},\"declined\":{},\"reversals\":{},\"reversed\":{},"
      "\"unanswered\":{},\"disconnects\":{},\"network\":{},\"malformed\":{},\"ignored\":{},"
      "\"approved_amount\":{},\"refund_amount\":{},\"inquiries\":{},\"reversal_repeats\":{},"
      "\"faults\":{},\"reconciliations\":{},\"out_of_balance\":{},\"batches_closed\":{},"
      "\"uploads\":{},\"uploads_added\":{},\"incrementals\":{},\"advices\":{},\"ledger\":{{\"debits\":{},"
      "\"debit_amount\":{},"
      "\"debit_reversals\":{},\"debit_reversal_amount\":{},\"credits\":{},\"credit_amount\":{},"
      "\"credit_reversals\":{},\"credit_reversal_amount\":{},\"net_amount\":{}}}}}",
      t.requests, t.approved, t.declined, t.reversals, t.reversed, t.unanswered, t.disconnects, t.network,
      t.malformed, t.ignored, t.approved_amount, t.refund_amount, t.inquiries, t.reversal_repeats, t.faults,
      t.reconciliations, t.out_of_balance, t.batches_closed, t.uploads, t.uploads_added, t.incrementals,
      t.advices, t.ledger.debits, t.ledger.debit_amount, t.ledger.debit_reversals,
      t.ledger.debit_reversal_amount, t.ledger.credits, t.ledger.credit_amount, t.ledger.credit_reversals,
      t.ledger.credit_reversal_amount, t.ledger.net());
}

}  // namespace eftd::acqsim
