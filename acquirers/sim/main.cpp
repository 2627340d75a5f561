// eft-acquirer-sim: an ISO 8583 acquirer host for tests and demos. Never linked into eftd.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "eftd/acq/dialect.hpp"
#include "eftd/acqsim/server.hpp"
#include "eftd/core/log.hpp"

namespace {

constexpr const char* decision_help = R"(Decisions for 0100/0200/0220, first match wins:
  1. amount ends in a --disconnect-amount-suffix   -> the connection is closed, no answer
  2. amount ends in a --no-reply-amount-suffix     -> decided by 3-8 but never answered
                                                    (a lost reply: the ledger keeps the decision)
  3. field 4, 7, 11, 41 or the PAN (2 or 35) missing -> 30 format error
  4. terminal + STAN + date-time seen before       -> 94 duplicate transmission
                                                    (a repeat 0101/0201/0221 gets the original decision)
  5. PAN ends in a --decline-pan-suffix            (default 0002=05 do not honour, 0004=54 expired)
  6. amount (minor units) above --amount-limit     -> 61 exceeds amount limit (default 1000000)
  7. amount ends in a --decline-amount-suffix      (default 51=51 insufficient funds)
  8. otherwise                                      -> 00 approved, field 38 auth code
Reversals 0400/0420 always answer 00 (idempotent) and mark the original reversed.
0800 answers 0810 with 00. Prints READY {"port":N} when listening and a SUMMARY line
on SIGINT/SIGTERM. Logs go to stderr.)";

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eft-acquirer-sim: ISO 8583 acquirer host simulator"};
  app.footer(decision_help);

  eftd::acqsim::server_options opts;
  std::string framing = "binary2";
  std::size_t max_frame = opts.framing.max_payload;
  std::vector<std::string> amount_rules{"51=51"};
  std::vector<std::string> pan_rules{"0002=05", "0004=54"};
  std::string log_level = "info";

  app.add_option("--address", opts.address, "Address to listen on")->capture_default_str();
  app.add_option("--port", opts.port, "TCP port; 0 picks a free port")->capture_default_str();
  std::string dialects;
  for (auto n : eftd::acq::dialect_names()) dialects += (dialects.empty() ? "" : ", ") + std::string(n);
  app.add_option("--dialect", opts.dialect, "ISO 8583 dialect (" + dialects + ")")->capture_default_str();
  app.add_option("--framing", framing, "Length header: binary2, ascii4 or bcd2")->capture_default_str();
  app.add_option("--max-frame", max_frame, "Largest accepted message in bytes")->capture_default_str();
  app.add_option("--decline-amount-suffix", amount_rules,
                 "SUFFIX=CODE: decline amounts ending in SUFFIX with CODE (repeatable; replaces the default)")
      ->capture_default_str();
  app.add_option("--decline-pan-suffix", pan_rules,
                 "SUFFIX=CODE: decline PANs ending in SUFFIX with CODE (repeatable; replaces the defaults)")
      ->capture_default_str();
  app.add_option("--amount-limit", opts.decisions.amount_limit, "Amounts above this (minor units) get 61")
      ->capture_default_str();
  app.add_option("--no-reply-amount-suffix", opts.decisions.no_reply_amount_suffixes,
                 "Never answer amounts ending in these digits (repeatable; for timeout tests)");
  app.add_option("--disconnect-amount-suffix", opts.decisions.disconnect_amount_suffixes,
                 "Close the connection on amounts ending in these digits (repeatable)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  eftd::config::logging log_cfg;
  log_cfg.level = log_level;
  eftd::init_logging(log_cfg, "eft-acquirer-sim");

  auto header = eftd::acq::parse_length_header(framing);
  if (!header) {
    std::cerr << "--framing: unknown header '" << framing << "'\n";
    return 2;
  }
  opts.framing = {*header, max_frame};

  opts.decisions.amount_suffix.clear();
  for (const auto& r : amount_rules) {
    auto rule = eftd::acqsim::parse_suffix_rule(r);
    if (!rule) {
      std::cerr << "--decline-amount-suffix: " << rule.err().message << "\n";
      return 2;
    }
    opts.decisions.amount_suffix.push_back(*rule);
  }
  opts.decisions.pan_suffix.clear();
  for (const auto& r : pan_rules) {
    auto rule = eftd::acqsim::parse_suffix_rule(r);
    if (!rule) {
      std::cerr << "--decline-pan-suffix: " << rule.err().message << "\n";
      return 2;
    }
    opts.decisions.pan_suffix.push_back(*rule);
  }
  for (const auto* list :
       {&opts.decisions.no_reply_amount_suffixes, &opts.decisions.disconnect_amount_suffixes}) {
    for (const auto& s : *list) {
      if (!all_digits(s)) {
        std::cerr << "amount suffix '" << s << "' must be digits\n";
        return 2;
      }
    }
  }
  return eftd::acqsim::run_server(opts, std::cout);
}
