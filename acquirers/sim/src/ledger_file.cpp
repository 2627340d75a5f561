#include "eftd/acqsim/ledger_file.hpp"

#include <fmt/format.h>

#include "eftd/settlement/layout.hpp"

namespace eftd::acqsim {

namespace {

// Ledger texts come from request fields the sim already accepted (digits, letters, spaces),
// but a JSON line must stay one valid line whatever a test sends.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7F) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool approved(std::string_view code) {
  return code == "00" || code == "10";
}

}  // namespace

std::string ledger_lines(const host& h) {
  std::string out;
  for (const auto& [key, e] : h.ledger()) {
    // Key: terminal | STAN | transmission date-time (see host::ledger()).
    const auto bar1 = key.find('|');
    const auto bar2 = bar1 == std::string::npos ? std::string::npos : key.find('|', bar1 + 1);
    const std::string terminal = key.substr(0, bar1);
    const std::string stan = bar2 == std::string::npos ? "" : key.substr(bar1 + 1, bar2 - bar1 - 1);
    const std::string when = bar2 == std::string::npos ? "" : key.substr(bar2 + 1);
    out += fmt::format(
        "{{\"key\":{},\"terminal\":{},\"stan\":{},\"transmission\":{},\"local_datetime\":{},\"mti\":{},"
        "\"amount\":{},\"currency\":{},\"response_code\":{},\"approved\":{},\"answered\":{},\"reversed\":{},"
        "\"credit\":{},\"settles\":{},\"merchant_id\":{},\"rrn\":{},\"auth_code\":{}}}\n",
        json_string(key), json_string(terminal), json_string(stan), json_string(when),
        json_string(e.local_date + e.local_time), json_string(e.mti), e.amount, json_string(e.currency),
        json_string(e.response_code), approved(e.response_code), e.answered, e.reversed, e.credit, e.settles,
        json_string(e.merchant_id), json_string(e.rrn), json_string(e.auth_code));
  }
  return out;
}

status write_ledger_file(const host& h, const std::filesystem::path& out) {
  return settlement::write_text_file(out, ledger_lines(h));
}

}  // namespace eftd::acqsim
