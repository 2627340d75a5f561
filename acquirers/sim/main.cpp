// eft-acquirer-sim: an ISO 8583 acquirer host for tests and demos. Never linked into eftd.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eftd/acq/dialect.hpp"
#include "eftd/acq/framing.hpp"
#include "eftd/acqsim/ledger_file.hpp"
#include "eftd/acqsim/server.hpp"
#include "eftd/acqsim/settlement_file.hpp"
#include "eftd/core/log.hpp"
#include "eftd/core/pin_block.hpp"

namespace {

constexpr const char* decision_help = R"(Decisions for 0100/0200/0220, first match wins:
  1. amount ends in a --disconnect-amount-suffix   -> the connection is closed, no answer
  2. amount ends in a --no-reply-amount-suffix     -> decided by 3-8 but never answered
                                                    (a lost reply: the ledger keeps the decision)
  3. field 4, 7, 11, 41 or the PAN (2 or 35) missing -> 30 format error
  4. terminal + STAN + date-time seen before       -> 94 duplicate transmission
                                                    (a repeat 0101/0201/0221 gets the original decision)
  4c. with --issuer-keys: field 55 holds an ARQC (9F26, 9F27=80) of a card the keys cover and
     the recomputed ARQC differs                  -> 05 (logged "arqc mismatch", no field 55);
     a verified ARQC: the answer carries field 55 with 91 (ARPC for the final code) and, on
     approval, the --issuer-script scripts (71/72)
  5. PAN ends in a --decline-pan-suffix            (default 0002=05 do not honour, 0004=54 expired)
  6. amount (minor units) above --amount-limit     -> 61 exceeds amount limit (default 1000000)
  7. amount ends in a --decline-amount-suffix      (default 51=51 insufficient funds)
  8. otherwise                                      -> 00 approved, field 38 auth code
  Processing code (field 3) 20xxxx is a refund (a credit in the ledger); 31xxxx a balance
  inquiry, answered with --balance in field 54.
Faults (0100/0200/0220 by amount suffix, decided as above; the first matching rule wins;
repeats 0101/0201/0221 are answered plainly):
  --drip-amount-suffix SUFFIX=MS          the answer is written one byte every MS milliseconds
  --duplicate-amount-suffix SUFFIX        the answer is sent twice
  --wrong-stan-amount-suffix SUFFIX       the answer carries another STAN (field 11 + 1)
  --reset-amount-suffix SUFFIX            half the answer frame is written, then the connection
                                          is reset (RST); the ledger keeps the decision
  --after-reversal-amount-suffix SUFFIX   the answer is held until a reversal of the transaction
                                          arrives, then sent just before the reversal's answer
  --bad-mac-amount-suffix SUFFIX          (with --mak-file) the answer's MAC is corrupted
  plus --delay-amount-suffix, --no-reply-amount-suffix and --disconnect-amount-suffix.
With --mak-file every request except 08xx must carry a valid ISO 9797-1 alg 3 MAC in field 64
(128 with a secondary bitmap); a missing or wrong MAC is answered 39=63 (security violation),
decided before every rule above. Every answer except 0810 carries a MAC.
Reversals 0400/0420 always answer 00 (idempotent) and mark the original reversed once; the
same reversal again (0401/0421 repeat: same 41, 11, 7) is answered again and reverses nothing.
End of day: the sim keeps a ledger per terminal (41): approved 0200/0220 debits (processing
code 00) and credits (20), and their reversals. A 0500 whose fields 74-77, 86-89, 97 equal
the terminal's open batch answers 0510 with 39=00, 66=1 and closes the batch; otherwise
39=95, 66=2 (out of balance): upload the batch with 0320 (answered 0330 00; transactions
the sim never saw join its ledger), then the next 0500 is accepted and closes the batch.
A 0501 (or resent 0500) gets the first answer again and closes nothing.
0800 answers 0810 with 00. Prints READY {"port":N} when listening and a SUMMARY line
(counts, and the ledger totals under "ledger") on SIGINT/SIGTERM. Logs go to stderr.)";

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "SUFFIX=N" rules (delay, partial, drip): an amount suffix of 1..12 digits and a number of
// 1..max_value_digits digits; nullopt when the text is not that.
std::optional<std::pair<std::string, std::uint32_t>> suffix_number(const std::string& rule,
                                                                   std::size_t max_value_digits) {
  const auto eq = rule.find('=');
  if (eq == std::string::npos) return std::nullopt;
  std::string suffix = rule.substr(0, eq);
  const std::string value = rule.substr(eq + 1);
  if (!all_digits(suffix) || suffix.size() > 12 || !all_digits(value) || value.size() > max_value_digits)
    return std::nullopt;
  return std::pair{std::move(suffix), static_cast<std::uint32_t>(std::stoul(value))};
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
  app.add_option("--framing", framing, "Length header: binary2, ascii4 or bcd2, optionally +tpdu (bcd2+tpdu)")
      ->capture_default_str();
  app.add_option("--max-frame", max_frame, "Largest accepted message in bytes")->capture_default_str();
  app.add_option("--decline-amount-suffix", amount_rules,
                 "SUFFIX=CODE: decline amounts ending in SUFFIX with CODE (repeatable; replaces the default)")
      ->capture_default_str();
  app.add_option("--decline-pan-suffix", pan_rules,
                 "SUFFIX=CODE: decline PANs ending in SUFFIX with CODE (repeatable; replaces the defaults)")
      ->capture_default_str();
  app.add_option("--amount-limit", opts.decisions.amount_limit, "Amounts above this (minor units) get 61")
      ->capture_default_str();
  std::string zpk_file;
  app.add_option("--zpk-file", zpk_file,
                 "File holding the zone PIN key (32 or 48 hex digits) shared with eftd: online PINs (field "
                 "52, ISO 0) are checked against --pin");
  std::string mak_file;
  std::string issuer_keys_file;
  std::vector<std::string> issuer_scripts;
  app.add_option("--mak-file", mak_file,
                 "File holding the message authentication key (32 hex digits, ISO 9797-1 alg 3) shared "
                 "with eftd: requests (except 08xx) must carry a valid MAC in field 64/128 (else 63) and "
                 "answers are MACed");
  app.add_option("--issuer-keys", issuer_keys_file,
                 "TOML file of issuer master keys (see acquirers/sim/issuer-keys-test.toml): the ARQC in "
                 "field 55 is checked (a mismatch gets 05) and answers carry the ARPC in field 55 tag 91");
  app.add_option("--issuer-script", issuer_scripts,
                 "With --issuer-keys: issuer script sent with approvals (repeatable): pin-unblock, "
                 "app-unblock (template 72) or app-block (71)");
  app.add_option("--bad-mac-amount-suffix", opts.decisions.bad_mac_amount_suffixes,
                 "With --mak-file: answers to amounts ending in these digits carry a corrupted MAC "
                 "(repeatable)");
  app.add_option("--pin", opts.decisions.pin, "Every card's PIN for online PIN checks")
      ->capture_default_str();
  app.add_option("--balance", opts.decisions.balance,
                 "Available balance (minor units) answered to balance inquiries in field 54")
      ->capture_default_str();
  app.add_option("--no-reply-amount-suffix", opts.decisions.no_reply_amount_suffixes,
                 "Never answer amounts ending in these digits (repeatable; for timeout tests)");
  app.add_option("--disconnect-amount-suffix", opts.decisions.disconnect_amount_suffixes,
                 "Close the connection on amounts ending in these digits (repeatable)");
  std::vector<std::string> delay_rules, partial_rules;
  app.add_option(
      "--partial-amount-suffix", partial_rules,
      "SUFFIX=PERCENT: approve only PERCENT of amounts ending in SUFFIX (response 10, repeatable)");
  app.add_option("--delay-amount-suffix", delay_rules,
                 "SUFFIX=MS: answer amounts ending in SUFFIX only after MS milliseconds (repeatable)");
  std::vector<std::string> drip_rules, duplicate_suffixes, wrong_stan_suffixes, reset_suffixes,
      after_reversal_suffixes;
  app.add_option("--drip-amount-suffix", drip_rules,
                 "SUFFIX=MS: write the answer to amounts ending in SUFFIX one byte every MS ms (repeatable)");
  app.add_option("--duplicate-amount-suffix", duplicate_suffixes,
                 "Send the answer to amounts ending in these digits twice (repeatable)");
  app.add_option("--wrong-stan-amount-suffix", wrong_stan_suffixes,
                 "Answer amounts ending in these digits with another STAN in field 11 (repeatable)");
  app.add_option("--reset-amount-suffix", reset_suffixes,
                 "Write half the answer to amounts ending in these digits, then reset the connection "
                 "(repeatable)");
  app.add_option("--after-reversal-amount-suffix", after_reversal_suffixes,
                 "Hold the answer to amounts ending in these digits until their reversal arrives, then "
                 "send it before the reversal's answer (repeatable)");
  std::string settlement_file, settlement_layout = "fixed-width";
  app.add_option("--settlement-file", settlement_file,
                 "On shutdown, write the ledger's settling transactions (approved, not reversed) as a "
                 "settlement file here");
  app.add_option("--settlement-layout", settlement_layout,
                 "Layout of --settlement-file: a layout TOML file, or the shipped fixed-width or csv")
      ->capture_default_str();
  std::string ledger_file;
  app.add_option("--ledger-file", ledger_file,
                 "On shutdown, write the whole ledger (every request decided, approved or not, reversed "
                 "or not) as JSON lines here, for the chaos tests' checkers; no card data");
  auto* tls_cert = app.add_option("--tls-cert", opts.tls_cert_file,
                                  "PEM certificate chain: listen with TLS (1.2+) only, never plaintext");
  auto* tls_key = app.add_option("--tls-key", opts.tls_key_file, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", opts.tls_client_ca_file,
                 "PEM CA(s): require a client certificate issued by them (with --tls-cert)")
      ->needs(tls_cert);
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  eftd::config::logging log_cfg;
  log_cfg.level = log_level;
  eftd::init_logging(log_cfg, "eft-acquirer-sim");

  auto frame_opts = eftd::acq::parse_framing(framing);
  if (!frame_opts) {
    std::cerr << "--framing: " << frame_opts.err().message << "\n";
    return 2;
  }
  // With +tpdu the simulator answers each request with its TPDU, addresses swapped.
  opts.framing = *frame_opts;
  opts.framing.max_payload = max_frame;

  if (!zpk_file.empty()) {
    std::ifstream in(zpk_file);
    std::string hex;
    in >> hex;
    auto key = eftd::from_hex(hex);
    if (!in.good() && !in.eof()) key = std::nullopt;
    if (!key || (key->size() != 16 && key->size() != 24)) {
      std::cerr << "--zpk-file: expected 32 or 48 hex digits (a TDES zone PIN key)\n";
      return 2;
    }
    opts.decisions.zpk = std::move(*key);
  }
  if (!mak_file.empty()) {
    std::ifstream in(mak_file);
    std::string hex;
    in >> hex;
    auto key = eftd::from_hex(hex);
    if (!in.good() && !in.eof()) key = std::nullopt;
    // Algorithm 3 is defined for a double-length key K || K' only.
    if (!key || key->size() != 16) {
      std::cerr << "--mak-file: expected 32 hex digits (a double-length TDES MAC key)\n";
      return 2;
    }
    opts.decisions.mak = std::move(*key);
  }
  if (!issuer_keys_file.empty()) {
    auto keys = eftd::acqsim::issuer_keys::load(issuer_keys_file);
    if (!keys) {
      std::cerr << "--issuer-keys: " << keys.err().message << "\n";
      return 2;
    }
    opts.decisions.issuer = std::move(*keys);
  }
  for (const auto& name : issuer_scripts) {
    auto script = eftd::acqsim::parse_issuer_script(name);
    if (!script || issuer_keys_file.empty()) {
      std::cerr << "--issuer-script: expected pin-unblock, app-unblock or app-block, with --issuer-keys\n";
      return 2;
    }
    opts.decisions.issuer_scripts.push_back(*script);
  }
  if (!eftd::pin::parse(opts.decisions.pin)) {
    std::cerr << "--pin: expected 4 to 12 digits\n";
    return 2;
  }

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
  for (const auto& r : delay_rules) {
    auto rule = suffix_number(r, 6);
    if (!rule) {
      std::cerr << "--delay-amount-suffix: expected SUFFIX=MS (digits), e.g. 77=2000\n";
      return 2;
    }
    opts.decisions.delay_amount_suffixes.push_back({rule->first, rule->second});
  }
  for (const auto& r : partial_rules) {
    auto rule = suffix_number(r, 2);
    if (!rule || rule->second == 0) {
      std::cerr << "--partial-amount-suffix: expected SUFFIX=PERCENT (1..99), e.g. 33=50\n";
      return 2;
    }
    opts.decisions.partial_amount_suffixes.push_back({rule->first, rule->second});
  }
  for (const auto& r : drip_rules) {
    auto rule = suffix_number(r, 5);
    if (!rule) {
      std::cerr << "--drip-amount-suffix: expected SUFFIX=MS (digits), e.g. 71=20\n";
      return 2;
    }
    opts.decisions.faults.push_back({rule->first, eftd::acqsim::fault::drip, rule->second});
  }
  using eftd::acqsim::fault;
  const std::pair<const std::vector<std::string>*, fault> plain_faults[] = {
      {&duplicate_suffixes, fault::duplicate},
      {&wrong_stan_suffixes, fault::wrong_stan},
      {&reset_suffixes, fault::reset},
      {&after_reversal_suffixes, fault::after_reversal},
  };
  for (const auto& [list, kind] : plain_faults)
    for (const auto& s : *list) opts.decisions.faults.push_back({s, kind, 0});
  std::vector<const std::vector<std::string>*> suffix_lists{&opts.decisions.no_reply_amount_suffixes,
                                                            &opts.decisions.disconnect_amount_suffixes};
  for (const auto& [list, kind] : plain_faults) suffix_lists.push_back(list);
  for (const auto* list : suffix_lists) {
    for (const auto& s : *list) {
      if (!all_digits(s)) {
        std::cerr << "amount suffix '" << s << "' must be digits\n";
        return 2;
      }
    }
  }
  if (!settlement_file.empty()) {
    // Loaded now, so a bad layout stops start-up instead of losing the file at shutdown.
    auto layout = eftd::settlement::load_layout_or_shipped(settlement_layout);
    if (!layout) {
      std::cerr << "--settlement-layout: " << layout.err().message << "\n";
      return 2;
    }
    opts.at_shutdown = [layout = std::move(*layout), settlement_file](const eftd::acqsim::host& h) {
      const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      if (auto st = eftd::acqsim::write_settlement_file(h, layout, settlement_file, now_ms); !st)
        spdlog::error("settlement file not written: {}", st.err().message);
      else
        spdlog::info("settlement file written to {}", settlement_file);
    };
  }
  if (!ledger_file.empty()) {
    // After the settlement file (if any): both describe the same final ledger.
    opts.at_shutdown = [then = std::move(opts.at_shutdown), ledger_file](const eftd::acqsim::host& h) {
      if (then) then(h);
      if (auto st = eftd::acqsim::write_ledger_file(h, ledger_file); !st)
        spdlog::error("ledger file not written: {}", st.err().message);
      else
        spdlog::info("ledger file written to {}", ledger_file);
    };
  }
  return eftd::acqsim::run_server(opts, std::cout);
}
