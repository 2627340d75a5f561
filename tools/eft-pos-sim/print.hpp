// eft-pos-sim: how results, totals and prompts look on a cash register screen, and how typed
// amounts and answers become protocol values. Shared by the one-shot commands and the
// interactive mode. Included by main.cpp only.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "eftd/core/money.hpp"
#include "eftd/pos/messages.hpp"

namespace eft_pos_sim {

namespace pos = eftd::pos;

inline std::string amount_text(std::int64_t minor, const std::string& currency) {
  auto m = eftd::money::of(minor, currency);
  return m ? m->format() : std::to_string(minor) + " (minor units) " + currency;
}

// "125.00" in `currency` -> minor units; false with a message on stderr.
inline bool minor_units(const std::string& text, const std::string& currency, const char* what,
                        std::int64_t& out) {
  auto m = eftd::money::parse(text, currency);
  if (!m) {
    std::fprintf(stderr, "eft-pos-sim: bad %s '%s' for %s: %s\n", what, text.c_str(), currency.c_str(),
                 m.err().message.c_str());
    return false;
  }
  out = m->minor_units();
  return true;
}

inline std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

inline void row(FILE* out, const char* label, const std::string& value) {
  if (!value.empty()) std::fprintf(out, "%-15s%s\n", label, value.c_str());
}

inline void print_result(FILE* out, const pos::result& r) {
  std::fprintf(out, "== %s ==\n", upper(r.outcome).c_str());
  row(out, "order", r.order_no);
  row(out, "business date", r.business_date);
  if (!r.currency.empty()) {
    std::string amount = amount_text(r.amount, r.currency);
    if (r.approved_amount != 0 && r.approved_amount != r.amount) {
      amount += " (approved " + amount_text(r.approved_amount, r.currency) + ")";
    }
    if (r.amount != 0 || r.approved_amount != 0) row(out, "amount", amount);
  }
  if (r.balance) {
    row(out, "balance",
        r.currency.empty() ? std::to_string(*r.balance) + " (minor units)"
                           : amount_text(*r.balance, r.currency));
  }
  if (!r.why.code.empty()) {
    row(out, "reason", r.why.code);
    row(out, "cashier text", r.why.cashier_text);
    row(out, "customer text", r.why.customer_text);
  }
  row(out, "auth code", r.auth_code);
  row(out, "card", r.masked_pan);
  row(out, "scheme", r.scheme);
  row(out, "entry mode", r.entry_mode);
  row(out, "terminal", r.terminal_id);
  row(out, "stan", r.stan);
  row(out, "rrn", r.rrn);
  for (const auto& [k, v] : r.emv) row(out, ("emv " + k).c_str(), v);
  const auto print_copy = [out](const char* title, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    std::fprintf(out, "--- %s ---\n", title);
    for (const auto& l : lines) std::fprintf(out, "%s\n", l.c_str());
  };
  print_copy("merchant receipt", r.rcpt.merchant);
  print_copy("customer receipt", r.rcpt.customer);
}

inline void print_order_status(FILE* out, const pos::order_status& s) {
  std::fprintf(out, "== order %s: %s ==\n", s.order_no.c_str(), s.state.c_str());
  row(out, "business date", s.business_date);
  if (s.last_result) print_result(out, *s.last_result);
}

inline void print_totals(FILE* out, const pos::totals_report& t) {
  std::fprintf(out, "== TOTALS till %s, business date %s ==\n", t.till_id.c_str(), t.business_date.c_str());
  if (t.lines.empty()) std::fprintf(out, "(no transactions)\n");
  for (const auto& l : t.lines) {
    std::fprintf(out, "%-16s %-10s %5lld  %s\n", l.kind.c_str(), l.outcome.c_str(),
                 static_cast<long long>(l.count), amount_text(l.amount, l.currency).c_str());
  }
  for (const auto& [currency, amount] : t.net) {
    std::fprintf(out, "%-16s %-10s %5s  %s\n", "net", "", "", amount_text(amount, currency).c_str());
  }
}

// A prompt rendered generically from its data (never from its id): the question, the
// accepted values (numbered for a menu), the default and the time the server waits.
inline std::string render_prompt(const pos::prompt& p) {
  std::string s = p.text;
  if (p.kind == "menu" && !p.options.empty()) {
    s += " [";
    for (std::size_t i = 0; i < p.options.size(); ++i) {
      s += (i == 0 ? "" : ", ") + std::to_string(i + 1) + ") " + p.options[i];
    }
    s += "]";
  } else if (!p.options.empty()) {
    std::string o;
    for (const auto& x : p.options) o += (o.empty() ? "" : "/") + x;
    s += " (" + o + ")";
  } else if (p.kind == "yes_no") {
    s += " (yes/no)";
  } else if (p.kind == "numeric") {
    s += " (digits)";
  } else if (p.kind == "text") {
    s += " (text)";
  }
  if (!p.default_value.empty()) s += " [default: " + p.default_value + "]";
  if (p.timeout_ms != 0) s += " [" + std::to_string((p.timeout_ms + 999) / 1000) + " s]";
  return s;
}

inline std::string trim(const std::string& s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// What a typed line answers: empty = the default; for a menu the option's number works too;
// y/n for yes_no. Anything else goes to the server as typed (it validates).
inline std::string answer_value(const pos::prompt& p, const std::string& typed) {
  const std::string t = trim(typed);
  if (t.empty()) return p.default_value;
  if (p.kind == "menu") {
    for (const auto& o : p.options) {
      if (o == t) return t;
    }
    if (t.size() <= 3 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      const std::size_t n = std::stoul(t);
      if (n >= 1 && n <= p.options.size()) return p.options[n - 1];
    }
  }
  if (p.kind == "yes_no") {
    if (t == "y" || t == "Y") return "yes";
    if (t == "n" || t == "N") return "no";
  }
  return t;
}

}  // namespace eft_pos_sim
