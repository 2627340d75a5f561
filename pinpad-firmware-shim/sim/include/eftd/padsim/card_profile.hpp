// Card profiles: the virtual pad's cards, one TOML file each (pinpad-firmware-shim/cards/).
//
//   [card]
//   name       = "Visa approve"                        # required, shown in logs
//   kind       = "magstripe"                           # required: magstripe | chip | contactless
//   track2     = "4761739001010119=29122011143804489"  # PAN=YYMM SSS discretionary; required for
//                                                      # magstripe and for chip_fails, optional
//                                                      # otherwise (the stripe of the same card)
//   fallback   = false                                 # magstripe only: chip card read by stripe
//   chip_fails = false                                 # chip only: the chip is mute (power on
//                                                      # fails), the pad falls back to the stripe
//
// The track 2 is checked on load (digits, PAN length 12..19 and Luhn, '=', expiry month
// 01..12, 3-digit service code, at most 37 characters) so a pad never sends what it could
// not have read. An expiry in the past is allowed (expired.toml tests the server's check).
// The stripe of a chip or contactless card must carry a chip service code (2xx or 6xx) and
// the PAN of one of its applications.
// Unknown keys or tables are errors (a typo must not silently change a test card).
//
// Chip and contactless cards describe their ICC in [chip] (optional only with chip_fails):
//
//   [chip]
//   atr             = "3B6800000073C84013009000"  # optional; contactless default 3B80800101
//                                                 # (the PC/SC ATR of an ISO 14443-4 card)
//   pin             = "1234"     # the reference PIN for offline PIN (4..12 digits)
//   pin_try_limit   = 3          # 1..15 (the try counter travels in one nibble of 63Cx)
//   pin_tries_left  = 3          # 0..limit, default the limit; 0 = PIN blocked
//   atc             = 1          # application transaction counter; each GPO adds one
//   last_online_atc = 0          # GET DATA 9F13
//   icc_pin_key     = "keys/icc-pin-test.pem"  # optional RSA private key for enciphered PIN,
//                                              # relative to the profile's directory
//   pse             = true       # answers SELECT 1PAY.SYS.DDF01; default true for chip, false
//                                # for contactless (which always answers 2PAY.SYS.DDF01)
//   t0_get_response = false      # chip only: behave like a T=0 card (61xx after SELECT and
//                                # GPO, then GET RESPONSE; 6Cxx when a case-2 Le is not exact)
//
//   [[chip.application]]         # one or more, in the card's directory order
//   aid            = "A0000000031010"   # 5..16 bytes
//   label          = "VISA CREDIT"      # tag 50, 1..16 printable ASCII characters
//   priority       = 1                  # tag 87 (1..15), optional
//   confirm        = false              # sets bit 8 of 87: cardholder confirmation required
//   blocked        = false              # SELECT answers 6283, GPO 6985
//   pan            = "4761739001010119" # 12..19 digits, Luhn
//   expiry         = "291231"           # YYMMDD (tag 5F24); a past date is allowed
//   effective      = "200101"           # YYMMDD (5F25), optional
//   pan_sequence   = "01"               # 2 digits (5F34), default "00"
//   service_code   = "201"              # 3 digits (5F30, and 57), default "201"
//   issuer_country = "616"              # ISO 3166 numeric (5F28), default "616"
//   aip            = "1800"             # 2 bytes (82), default 1800 (CVM + risk management);
//                                       # contactless 1880 (byte 2 bit 8: EMV mode supported)
//   afl            = "08010100"         # 4n bytes (94), default 08010100 (SFI 1 record 1)
//   gpo_response   = "77..."            # instead of aip/afl: the raw GPO answer (77 or 80)
//   pdol           = "9F1A02"           # tag 9F38 in the FCI, optional
//   cvm_list       = "0000000000000000410342031E031F00"   # 8E, optional (default below)
//   ctq            = "0080"             # qvsdc only: 9F6C in the GPO answer (byte 1 b8 online
//                                       # PIN required, b7 signature; byte 2 b8 CDCVM performed)
//   [[chip.application.record]]         # zero or more
//   sfi = 1   number = 1   data = "70..."  # one record template 70, at most 254 bytes
//
// Without records, one record (SFI 1, number 1) is built from the fields:
//   70 { 57 track 2 equivalent (the card's track2 when its PAN matches, else
//           PAN 'D' YYMM service code '0000000000'), 5A PAN, 5F24, 5F25 (if given), 5F28,
//        5F30, 5F34, 9F07 AUC FF00 (valid everywhere), 9F08 application version 0002,
//        8C CDOL1 9F02 06 9F03 06 9F1A 02 95 05 5F2A 02 9A 03 9C 01 9F37 04,
//        8D CDOL2 8A 02 + CDOL1, 8E CVM list, 9F0D/9F0E/9F0F IACs B8483C9800/0010800000/
//        B8483C9800 }
//   The default CVM list (X = Y = 0): contact: [44 03 enciphered offline PIN when the card
//   has an icc_pin_key] 41 03 plaintext offline PIN, 42 03 online PIN, 1E 03 signature,
//   1F 00 no CVM; contactless: 42 03 online PIN, 1F 03 no CVM.
// Every record the AFL names must exist (a profile cannot promise what it does not hold).
//
// Cryptograms and offline data authentication (all optional; TEST keys only), in [chip]:
//   issuer_mk      = "0123...3210"  # issuer MK-AC (16 bytes hex): each application's ICC MK is
//                                   # derived from it with its PAN and PAN sequence number
//   icc_mk         = "154F...10C1"  # or the ICC MK-AC itself (every application); not both
//   issuer_mk_smi  / icc_mk_smi     # the same for the secure-messaging integrity key (script MACs)
//   mk_option      = "a"            # ICC MK derivation option a | b (b: PANs over 16 digits)
//   cvn            = "visa18"       # visa10 | visa18 | mc16 | mc20; default mc16 for a
//                                   # Mastercard RID (A000000004), else visa18
//   cvr            = "03000000"     # base card verification results (Visa 4 bytes with the
//                                   # length byte 03, Mastercard 6); the card sets its bits in it
//   genac_format   = 2              # GENERATE AC answer: 1 (tag 80) or 2 (77); CDA needs 2
//   online_always  = false          # never a TC at the first GENERATE AC: ARQC instead
//   decline_always = false          # AAC at the first GENERATE AC whatever is asked
//   offline_limit  = 3              # consecutive offline TCs before the card asks to go online
//   qvsdc          = false          # contactless only: GPO answers the cryptogram (qVSDC-like)
//   oda            = "none"         # none | sda | dda | cda
//   ca_key / issuer_key / icc_key   # PEM RSA private keys (relative to the profile): the CA signs
//                                   # the issuer certificate, the issuer the ICC certificate and
//                                   # SSAD; the ICC key signs DDA/CDA (icc_key: dda and cda only)
//   capk_index     = 0xE1           # tag 8F; the CA key is looked up by the AID's RID and this
//   cert_expiry    = "1230"         # MMYY of the issuer certificate (the ICC one: the card's expiry)
//   dac            = "DAC0"         # SDA data authentication code (2 bytes)
// With oda other than none, each application's records must be built from the fields (no
// [[record]], afl or gpo_response): SFI 1 record 1 (the fields above plus 9F4A 82) is the
// static data to authenticate with the AIP, and SFI 2 records 1 and 2 hold 8F, 90, 92, 9F32 and
// 93 (sda) or 9F46, 9F47, 9F48, 9F49 DDOL 9F3704 (dda, cda), minted at load (emv_cert_mint.hpp);
// AFL 0801010110010200; the AIP default gains the SDA (40), DDA (20) or CDA (01: with DDA) bit.
//
// Error codes: padsim.profile_io, padsim.profile_syntax, padsim.profile_missing_key,
// padsim.profile_unknown_key, padsim.profile_bad_value. Messages name the key and the
// rule ("chip.application[1].aid: ..."), never the track 2, PAN, PIN or other values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/pad/messages.hpp"
#include "eftd/padsim/emv_cert_mint.hpp"

namespace eftd::padsim {

struct chip_record {
  std::uint8_t sfi = 0;     // 1..30
  std::uint8_t number = 0;  // 1..255
  eftd::secure_bytes data;  // the whole record template 70 (it holds the PAN)
};

struct chip_application {
  eftd::bytes aid;
  std::string label;
  std::uint8_t priority = 0;  // tag 87 byte (with the confirmation bit); 0: no tag 87
  bool blocked = false;
  eftd::secure_bytes pan;    // ASCII digits
  eftd::bytes pdol;          // empty: no 9F38 in the FCI, GPO takes 83 00
  eftd::bytes ctq;           // qVSDC 9F6C for the GPO answer; empty: none
  eftd::bytes gpo_response;  // the complete GPO answer (template 77 or 80)
  eftd::bytes afl;           // as in gpo_response
  eftd::bytes aip;           // as in gpo_response
  std::vector<chip_record> records;
  eftd::bytes cdol1, cdol2;       // 8C and 8D of the records (empty: GENERATE AC answers 6985)
  eftd::secure_bytes icc_mk_ac;   // empty: no cryptograms (GENERATE AC answers 6985)
  eftd::secure_bytes icc_mk_smi;  // empty: issuer script commands answer 6985
};

enum class oda_kind { none, sda, dda, cda };

struct chip_data {
  eftd::bytes atr;
  eftd::secure_bytes pin;  // reference PIN, ASCII digits
  std::uint8_t pin_try_limit = 3;
  std::uint8_t pin_tries_left = 3;
  std::uint16_t atc = 1;
  std::uint16_t last_online_atc = 0;
  bool pse = true;
  bool t0_get_response = false;
  eftd::secure_bytes icc_pin_key_pem;  // empty: no enciphered PIN (VERIFY P2=88 gives 6A81)
  emv::cvn cvn = emv::cvn::visa18;
  eftd::bytes cvr;  // base CVR (4 bytes Visa, 6 Mastercard)
  int genac_format = 2;
  bool online_always = false;
  bool decline_always = false;
  std::uint8_t offline_limit = 3;
  bool qvsdc = false;
  oda_kind oda = oda_kind::none;
  rsa_private_key icc_key;  // dda and cda: signs the SDAD
  std::vector<chip_application> applications;
};

struct card_profile {
  std::string name;
  std::string kind;  // "magstripe" | "chip" | "contactless"
  pad::entry_mode mode = pad::entry_mode::magstripe;
  eftd::secure_bytes track2;  // ASCII; may be empty for chip and contactless cards
  eftd::secure_bytes pan;     // ASCII digits: from track2 (magstripe), else the first application
  bool fallback = false;
  bool chip_fails = false;        // chip card with a mute chip: power on fails
  std::optional<chip_data> chip;  // present for chip and contactless cards (unless chip_fails)
  std::string source;             // file name (or caller's label), for messages
};

// `source` labels error messages ("visa.toml: card.track2: ..."); `base_dir` resolves
// chip.icc_pin_key (empty: the current directory).
eftd::result<card_profile> parse_card_profile(std::string_view toml_text, std::string_view source,
                                              const std::filesystem::path& base_dir = {});
eftd::result<card_profile> load_card_profile(const std::filesystem::path& file);

// Total data length a DOL (PDOL, CDOL: tag + one length byte, repeated) asks for; nullopt if
// the DOL is malformed (a cut tag or length, a tag longer than 3 bytes).
std::optional<std::size_t> dol_data_length(eftd::byte_view dol);

// ok or padsim.profile_bad_value naming the broken rule (never the value).
eftd::status check_track2(std::string_view track2);
bool luhn_valid(std::string_view digits);

}  // namespace eftd::padsim
