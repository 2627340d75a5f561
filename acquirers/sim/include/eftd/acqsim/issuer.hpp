// The simulator as the card issuer: it holds issuer master keys, checks the ARQC of a chip
// transaction (ISO 8583 field 55) and answers issuer authentication data (tag 91: the ARPC) and,
// on request, issuer scripts (templates 71 / 72). All cryptography is eftd::emv's
// (core/emv_crypto.hpp), the same code the ICC simulator computes its cryptograms with.
//
// --issuer-keys FILE (TOML; test keys only):
//   [[issuer]]
//   pan_prefix = "476173"        # the card's PAN starts with these digits, or
//   aid        = "A000000003"    # the AID (field 55 tag 84, else 4F) starts with these bytes
//   mk_ac      = "0123...3210"   # issuer master key for application cryptograms (16 bytes hex)
//   mk_smi     = "FEDC...CDEF"   # optional: secure-messaging integrity key (script MACs)
//   derivation = "a"             # ICC MK derivation option a | b (default a)
//   cvn        = "visa18"        # optional: visa10 | visa18 | mc16 | mc20; else from 9F10
// The first entry that matches wins (a PAN prefix is tried before any AID entry).
// Unknown keys are errors; messages name the entry and key, never a key value.
//
// ARQC check: field 55 with 9F26 and 9F27 = ARQC (80). The AC is recomputed over 9F02 9F03 9F1A
// 95 5F2A 9A 9C 9F37 82 9F36 and the CVR (CVN 10: IAD bytes 4-7, M/Chip: IAD bytes 3-8) or the
// whole IAD (CVN 18), under the ICC MK derived from the PAN and the PAN sequence number (field
// 23, else 5F34 in field 55, else 00).
//
// Error codes: "sim.issuer_keys_io", "sim.issuer_keys_syntax", "sim.issuer_keys_invalid".
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acqsim {

struct issuer_key {
  std::string pan_prefix;  // digits, or empty
  eftd::bytes aid;         // AID prefix, or empty
  eftd::secure_bytes mk_ac;
  eftd::secure_bytes mk_smi;  // empty: no issuer scripts for these cards
  emv::mk_option derivation = emv::mk_option::a;
  std::optional<emv::cvn> cvn;  // nullopt: from 9F10
};

class issuer_keys {
 public:
  static eftd::result<issuer_keys> parse(std::string_view toml_text, std::string_view source);
  static eftd::result<issuer_keys> load(const std::filesystem::path& file);

  // The entry for a card: PAN prefixes first, then AID prefixes; nullptr when none matches.
  const issuer_key* find(std::string_view pan, byte_view aid) const;
  std::size_t size() const noexcept { return keys_.size(); }
  void add(issuer_key k) { keys_.push_back(std::move(k)); }

 private:
  std::vector<issuer_key> keys_;
};

// Issuer scripts the simulator sends with an approval (--issuer-script).
enum class issuer_script {
  pin_unblock,  // 72 { 86 PIN UNBLOCK 84 24 00 00 }     after the second GENERATE AC
  app_unblock,  // 72 { 86 APPLICATION UNBLOCK 84 18 }  after the second GENERATE AC
  app_block,    // 71 { 86 APPLICATION BLOCK 84 1E }    before the second GENERATE AC
};
std::optional<issuer_script> parse_issuer_script(std::string_view name);

// The outcome of an ARQC check, with what the answer needs.
struct arqc_check {
  bool applies = false;  // field 55 holds an ARQC and a key entry matches the card
  bool ok = false;       // the ARQC is the one the issuer computes
  std::string why;       // for the log: what was checked or missing (never card data)
  emv::cvn cvn = emv::cvn::visa18;
  eftd::secure_bytes icc_mk_ac, icc_mk_smi;
  emv::ac_inputs inputs;
  eftd::bytes arqc;
};

// pan: digits; psn: field 23 (3 digits, the last two used) or empty; field55: raw TLVs.
arqc_check check_arqc(const issuer_keys& keys, std::string_view pan, std::string_view psn,
                      std::string_view field55);

// Field 55 of the answer: 91 issuer authentication data (ARPC || ARC for method 1, ARPC || CSU
// for method 2; the ARC is the response code in ASCII, the CSU says "approved" in byte 2 bit 8
// when the code is 00) and the scripts. Pre: check.ok.
eftd::result<std::string> issuer_response_field55(const arqc_check& check, std::string_view response_code,
                                                  std::span<const issuer_script> scripts);

}  // namespace eftd::acqsim
