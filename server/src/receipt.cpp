#include "receipt.hpp"

#include <fmt/format.h>

#include <ctime>

#include "eftd/core/money.hpp"
#include "emv_receipt.hpp"

namespace eftd::server {

namespace {

constexpr std::size_t width = 40;

std::string two_columns(std::string_view left, std::string_view right) {
  if (left.size() + right.size() + 1 > width) return fmt::format("{} {}", left, right);
  return fmt::format("{}{}{}", left, std::string(width - left.size() - right.size(), ' '), right);
}

std::string centered(std::string_view text) {
  if (text.size() >= width) return std::string(text);
  return std::string((width - text.size()) / 2, ' ') + std::string(text);
}

std::string outcome_line(const receipt_input& in) {
  if (in.outcome == "approved") return "APPROVED";
  if (in.outcome == "declined") return "DECLINED";
  if (in.outcome == "cancelled") return "CANCELLED";
  return "NOT COMPLETED";
}

std::vector<std::string> body(const receipt_input& in, bool merchant_copy) {
  std::vector<std::string> l;
  if (in.merchant) {
    std::string header =
        in.merchant->receipt_header.empty() ? in.merchant->name : in.merchant->receipt_header;
    std::size_t start = 0;
    while (start <= header.size()) {
      auto nl = header.find('\n', start);
      auto part = header.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!part.empty()) l.push_back(centered(part));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  if (in.store && !in.store->address.empty()) l.push_back(centered(in.store->address));
  l.push_back(std::string(width, '-'));
  std::time_t t = static_cast<std::time_t>(in.at_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  l.push_back(two_columns(fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday),
                          fmt::format("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)));
  if (in.merchant) l.push_back(two_columns("Merchant", in.merchant->acquirer_merchant_id));
  l.push_back(two_columns("Terminal", in.terminal_id));
  l.push_back(two_columns("Till", in.till_id));
  l.push_back(two_columns("Order", in.order_no));
  l.push_back(std::string(width, '-'));
  l.push_back(in.kind);
  if (!in.scheme.empty()) l.push_back(two_columns("Card", in.scheme));
  if (!in.masked_pan.empty()) l.push_back(two_columns("", in.masked_pan));
  if (!in.entry_mode.empty()) l.push_back(two_columns("Entry", in.entry_mode));
  auto m = eftd::money::of(in.amount_minor, in.currency);
  l.push_back(two_columns("AMOUNT", m ? m->format() : std::to_string(in.amount_minor)));
  l.push_back(std::string(width, '-'));
  l.push_back(centered(outcome_line(in)));
  if (!in.auth_code.empty()) l.push_back(two_columns("Auth code", in.auth_code));
  if (!in.stan.empty()) l.push_back(two_columns("STAN", in.stan));
  if (!in.rrn.empty()) l.push_back(two_columns("RRN", in.rrn));
  if (!in.response_code.empty() && in.outcome != "approved")
    l.push_back(two_columns("Response", in.response_code));
  if (in.outcome != "approved" && !in.reason_text.empty()) l.push_back(in.reason_text);
  const auto emv = emv_receipt_rows(in.emv_data);
  for (const auto& [label, value] : emv.rows) l.push_back(two_columns(label, value));
  if (merchant_copy && emv.signature_line && in.outcome == "approved") {
    // The cashier compares this signature with the card's (the POS was asked to confirm it).
    l.push_back("");
    l.push_back("Signature:");
    l.push_back("");
    l.push_back(std::string(width, '_'));
  }
  l.push_back(std::string(width, '-'));
  l.push_back(centered(merchant_copy ? "MERCHANT COPY" : "CUSTOMER COPY"));
  if (!merchant_copy && in.outcome == "approved") l.push_back(centered("Please keep this receipt"));
  return l;
}

}  // namespace

pos::receipt build_receipt(const receipt_input& in) {
  return pos::receipt{body(in, true), body(in, false)};
}

}  // namespace eftd::server
