// The ICC (chip) behind the pad's card reader, and a simulator that answers from a card profile.
//
// The simulator answers short APDUs with ISO 7816-4 / EMV Book 1 and 3 coding:
//   SELECT (00 A4 04 P2): 1PAY.SYS.DDF01 (contact cards with pse = true: FCI with the SFI of
//     the directory; READ RECORD SFI 1 record n gives 70{61{4F,50,87}} for application n),
//     2PAY.SYS.DDF01 (contactless only: FCI with one BF0C/61{4F,50,87} per application),
//     an AID, full or partial (P2 00 first, P2 02 next occurrence): FCI 6F{84,A5{50,87,9F38}}
//     (a blocked application: the FCI and 6283). Nothing matches: 6A82.
//   GET PROCESSING OPTIONS (80 A8 00 00): data 83 L <PDOL data>; L must equal what the PDOL
//     asks for (else 6700; no 83 template: 6A80); no application selected, GPO already done
//     in this selection, a blocked application or the ATC at FFFF: 6985. Adds one to the ATC
//     and answers the profile's gpo_response (format 2 77{82,94} unless configured).
//   READ RECORD (00 B2 n (SFI<<3|4)): the record of the selected application or the PSE
//     directory; absent: 6A83; nothing selected: 6985.
//   GET DATA (80 CA): 9F36 ATC, 9F17 PIN try counter, 9F13 last online ATC; else 6A88.
//   GET CHALLENGE (00 84 00 00 00|08): 8 random bytes, valid for the next VERIFY only.
//   VERIFY (00 20 00 80: ISO 9564 format 2 block; 00 20 00 88: the block enciphered with the
//     ICC PIN public key, recovered by raw RSA and checked for header 7F, the last challenge
//     and a format 2 block): right PIN 9000 and the try counter back to the limit; wrong PIN
//     63Cx with x tries left (63C0 on the try that uses up the last one); PIN blocked: 6983.
//     A malformed block, or a wrong header or challenge after decipherment: 6A80 without
//     counting a try (no PIN was presented). P2 88 without an ICC PIN key: 6A81; without a
//     challenge: 6985.
//   GENERATE AC (80 AE P1 00): P1 bits 8-7 ask for an AAC (00), TC (40) or ARQC (80), bit 5
//     (10) for a CDA signature; other P1 bits, P1 C0 or P2 not 00: 6A86. Data: the CDOL1 data
//     (first) or CDOL2 data (second; 6700 for another length). 6985 without a GPO in this
//     selection, a card without an ICC MK (profile issuer_mk / icc_mk) or CDOL, a second GENERATE
//     AC after a TC or AAC, or a third. The card decides (card action analysis): the first
//     gives an AAC if asked or the profile says decline_always; an ARQC if asked; for a TC asked,
//     an ARQC when online_always or after offline_limit consecutive offline TCs, else a TC.
//     The second gives a TC only when a TC is asked and the ARC in CDOL2 (8A) is an approval
//     (00, 08, 10, 11) with issuer authentication passed (EXTERNAL AUTHENTICATE, or tag 91 in
//     CDOL2), or the ARC is Y3 (offline after failing to go online) and the card is not
//     online_always; else an AAC (also for an application blocked by a script). The AC is
//     eftd::emv::generate_ac for the profile's CVN over 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 (from
//     the DOL data by tag, zeros when the DOL does not ask), AIP, ATC, then the CVR (CVN 10, 16,
//     20) or the IAD (CVN 18). The CVR carries the cryptogram types, offline PIN, issuer
//     authentication and script results. Answer format 1 (80: CID ATC AC IAD) or 2 (77 {9F27
//     9F36 9F26 9F10}); with CDA asked on a CDA card and no AAC: 77 {9F27 9F36 9F4B 9F10}, the
//     SDAD (format 05) signing ICC dynamic number, CID, AC and the transaction data hash code
//     (SHA-1 of PDOL data, CDOL1 data, CDOL2 data on the second, response TLVs but 9F4B) with
//     the 9F37 as the hash tail. qvsdc (contactless): GPO itself answers
//     77 {82 94 9F36 9F27 9F26 9F10 [9F6C]} with an ARQC (AAC if decline_always) over the PDOL
//     data; 9F6C (CTQ) when the profile's application gives ctq. A qvsdc card with oda = dda
//     answers a TC instead when the TTQ in the PDOL data (9F66 byte 2 bit 8) does not ask for an
//     online cryptogram (and not online_always, under offline_limit), adding 9F69 (01 || 4
//     random bytes) and 9F4B: an SDAD (format 05) over 9F37 || 9F02 || 5F2A || 9F69 (fDDA).
//   INTERNAL AUTHENTICATE (00 88 00 00, DDOL data): DDA and CDA cards only (else 6D00); an SDAD
//     (format 05, an 8-byte ICC dynamic number) with the DDOL data as the hash tail, in 80 or
//     77 {9F4B} as genac_format says. No application selected: 6985.
//   EXTERNAL AUTHENTICATE (00 82 00 00, 8..16 bytes): after a first GENERATE AC that gave an
//     ARQC, once (else 6985): ARPC || ARC (method 1, CVN 10/16/20) or ARPC || CSU || proprietary
//     data (method 2, CVN 18) checked with eftd::emv; right 9000, wrong 6300.
//   Issuer scripts (CLA 84): APPLICATION BLOCK (1E), APPLICATION UNBLOCK (18), PIN UNBLOCK (24,
//     P2 00; a PIN change P2 01/02 answers 6A81: the cards hold no MK-SMC to decipher it). Data
//     ends with an 8-byte MAC over CLA INS P1 P2 Lc ATC ARQC data under the script session key
//     from the ICC MK-SMI (Visa CVNs: the Visa SM key from the ATC; M/Chip: the common session
//     key with R = ARQC). Without an ARQC in this selection or an MK-SMI: 6985; a wrong MAC: 6988.
//   Unknown INS: 6D00. CLA other than 00 (ISO) or 80 (EMV proprietary) as the INS needs:
//   6E00. Wrong P1/P2: 6A86. Short APDUs only; a command shorter than 4 bytes, an Lc that does
//   not match the length, an extended length, or a case the INS does not take: 6700.
//   t0_get_response (contact only): SELECT and GPO answer 61xx and GET RESPONSE (00 C0 00 00
//   Le) returns the data (Le larger than what is left: 6Cxx); a case-2 command (READ RECORD,
//   GET DATA, GET CHALLENGE) whose Le is not the exact length answers 6Cxx, as T=0 cards do.
//
// The card's counters (ATC, PIN tries) live as long as the simulator object: power cycles
// keep them, as on a real card; the profile file is never written.
// Not thread-safe: one reader drives one card.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/padsim/card_profile.hpp"

namespace eftd::padsim {

class icc {
 public:
  virtual ~icc() = default;
  // Cold reset. Post: the ATR; selection, challenge and pending GET RESPONSE data cleared.
  // Error "padsim.icc_mute": the chip does not answer (profile chip_fails, or no chip).
  virtual eftd::result<eftd::bytes> power_on() = 0;
  // One C-APDU. Post: the R-APDU including SW1 SW2 (card-level failures are status words).
  // Error "padsim.icc_not_powered" only when the card is not powered (or is mute).
  virtual eftd::result<eftd::bytes> transmit(eftd::byte_view capdu) = 0;
  virtual void power_off() = 0;
};

// Fills the buffer with unpredictable bytes (GET CHALLENGE); tests pass a fixed source.
using icc_random = std::function<void(std::span<std::uint8_t>)>;

// Pre: p.kind is "chip" or "contactless" (a profile without a chip, e.g. magstripe, gives a
// card whose power_on fails padsim.icc_mute). Randomness from OpenSSL's CSPRNG.
std::unique_ptr<icc> make_icc_sim(const card_profile& p);
std::unique_ptr<icc> make_icc_sim(const card_profile& p, icc_random random);

// Status words the simulator answers (SW1 << 8 | SW2).
namespace icc_sw {
inline constexpr std::uint16_t ok = 0x9000;
inline constexpr std::uint16_t authentication_failed = 0x6300;      // EXTERNAL AUTHENTICATE
inline constexpr std::uint16_t selected_file_invalidated = 0x6283;  // blocked application
inline constexpr std::uint16_t wrong_length = 0x6700;
inline constexpr std::uint16_t pin_blocked = 0x6983;  // authentication method blocked
inline constexpr std::uint16_t conditions_not_satisfied = 0x6985;
inline constexpr std::uint16_t sm_data_incorrect = 0x6988;  // issuer script MAC wrong
inline constexpr std::uint16_t wrong_data = 0x6A80;
inline constexpr std::uint16_t function_not_supported = 0x6A81;
inline constexpr std::uint16_t file_not_found = 0x6A82;
inline constexpr std::uint16_t record_not_found = 0x6A83;
inline constexpr std::uint16_t wrong_p1p2 = 0x6A86;
inline constexpr std::uint16_t data_not_found = 0x6A88;
inline constexpr std::uint16_t ins_not_supported = 0x6D00;
inline constexpr std::uint16_t cla_not_supported = 0x6E00;
}  // namespace icc_sw

}  // namespace eftd::padsim
