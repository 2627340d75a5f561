#include "eftd/acqsim/host.hpp"

#include <fmt/format.h>

#include <charconv>

#include "eftd/acq/matching.hpp"

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

std::string ledger_key(std::string_view terminal, std::string_view stan, std::string_view when) {
  return fmt::format("{}|{}|{}", terminal, stan, when);
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

acq::message host::response_to(const acq::message& req) {
  acq::message resp{acq::response_mti_for(req.mti()).value_or("")};
  for (int f : {3, 4, 7, 11, 12, 13, 37, 41, 42, 49})
    if (auto v = req.get(f)) resp.set(f, std::string{*v});
  ++sequence_;
  if (!resp.has(37)) resp.set(37, fmt::format("{:012}", sequence_));
  return resp;
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
    case '4':
      return reverse(req);
    case '8':
      if (mti[2] == '0') return network(req);
      break;
    default:
      break;
  }
  ++totals_.ignored;
  return {action::ignore, std::nullopt, fmt::format("MTI {} is not supported by the simulator", mti)};
}

outcome host::authorize(const acq::message& req) {
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
  const auto terminal = req.get(41), stan = req.get(11), when = req.get(7);

  std::string code = "00";
  std::string note = "approved";
  std::optional<std::string> key;
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
      if (original.response_code == "00") resp.set(38, fmt::format("{:06}", sequence_ % 1'000'000));
      return {action::reply, std::move(resp), "repeat: the original decision"};
    }
    code = "94";
    note = "duplicate transmission (same terminal, STAN and date-time)";
    key.reset();  // the original entry stays as it was
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

  if (code == "00") {
    ++totals_.approved;
    totals_.approved_amount += *amount;
  } else {
    ++totals_.declined;
  }
  if (key) ledger_[*key] = ledger_entry{req.mti(), *amount, code, !silent, false};
  if (silent) {
    ++totals_.unanswered;
    return {action::no_reply, std::nullopt, fmt::format("no-reply rule; decided {} ({})", code, note)};
  }
  acq::message resp = response_to(req);
  resp.set(39, code);
  if (code == "00") resp.set(38, fmt::format("{:06}", sequence_ % 1'000'000));
  return {action::reply, std::move(resp), std::move(note)};
}

outcome host::reverse(const acq::message& req) {
  ++totals_.reversals;
  acq::message resp = response_to(req);
  const auto terminal = req.get(41);
  std::optional<std::string_view> stan = req.get(11), when = req.get(7);
  if (auto orig = req.get(90); orig && orig->size() == 42) {
    // Field 90: original MTI (4), STAN (6), transmission date-time (10), acquirer id (11),
    // forwarding id (11).
    stan = orig->substr(4, 6);
    when = orig->substr(10, 10);
  }
  if (!terminal || !stan || !when) {
    resp.set(39, "30");
    return {action::reply, std::move(resp), "format error: reversal without 41 and 11/7 or 90"};
  }
  std::string note = "reversal of an unknown transaction accepted";
  auto it = ledger_.find(ledger_key(*terminal, *stan, *when));
  if (it != ledger_.end() && !it->second.reversed) {
    it->second.reversed = true;
    ++totals_.reversed;
    if (it->second.response_code == "00") totals_.approved_amount -= it->second.amount;
    note = "reversed";
  } else if (it != ledger_.end()) {
    note = "already reversed";
  }
  resp.set(39, "00");
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
      "\"approved_amount\":{}}}",
      t.requests, t.approved, t.declined, t.reversals, t.reversed, t.unanswered, t.disconnects, t.network,
      t.malformed, t.ignored, t.approved_amount);
}

}  // namespace eftd::acqsim
