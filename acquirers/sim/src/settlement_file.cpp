#include "eftd/acqsim/settlement_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <tuple>

namespace eftd::acqsim {

settlement::file settlement_of(const host& h, const std::string& today, const std::string& acquirer) {
  settlement::file f;
  f.header.acquirer = acquirer;
  f.header.date = today;
  for (const auto& [key, e] : h.ledger()) {
    if (!e.settles || e.reversed) continue;
    // Key: terminal | STAN | transmission date-time (see host::ledger()).
    const auto bar1 = key.find('|');
    const auto bar2 = key.find('|', bar1 + 1);
    settlement::detail d;
    d.terminal_id = key.substr(0, bar1);
    d.stan = key.substr(bar1 + 1, bar2 - bar1 - 1);
    d.merchant_id = e.merchant_id;
    d.rrn = e.rrn;
    d.auth_code = e.auth_code;
    d.amount = e.amount;
    d.currency = e.currency;
    // ISO 8583 local dates carry no year: the sim's own calendar supplies it.
    std::string year = today.substr(0, 4);
    if (e.local_date.size() == 4 && e.local_date > today.substr(4, 4))
      year = fmt::format("{:04}", std::stoi(year) - 1);
    d.date = e.local_date.size() == 4 ? year + e.local_date : today;
    d.time = e.local_time.size() == 6 ? e.local_time : "000000";
    d.pan_masked = settlement::is_masked_pan(e.pan_masked) ? e.pan_masked : "";
    d.kind = e.credit ? settlement::entry_kind::credit : settlement::entry_kind::debit;
    d.response_code = e.response_code;
    f.details.push_back(std::move(d));
  }
  std::stable_sort(f.details.begin(), f.details.end(), [](const auto& a, const auto& b) {
    return std::tie(a.terminal_id, a.date, a.time, a.stan) < std::tie(b.terminal_id, b.date, b.time, b.stan);
  });
  f.trailer = settlement::totals_of(f.details);
  return f;
}

status write_settlement_file(const host& h, const settlement::layout& layout,
                             const std::filesystem::path& out, std::int64_t now_ms,
                             const std::string& acquirer) {
  const std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  const auto today = fmt::format("{:04}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  auto bytes = settlement::encode(layout, settlement_of(h, today, acquirer));
  if (!bytes) return bytes.err();
  return settlement::write_text_file(out, *bytes);
}

}  // namespace eftd::acqsim
