// The pure decision tables of the kernel (EMV Book 3 chapter 10, Book 4 chapter 6): TVR and
// TSI bits, CVM list parsing and conditions, processing-restriction checks, terminal risk
// management and terminal action analysis. No I/O, so each rule is tested with a table.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::emv {

// A bit of the TVR (95, 5 bytes) or TSI (9B, 2 bytes): byte index from 0 and mask.
struct bit {
  std::uint8_t byte = 0;
  std::uint8_t mask = 0;
};

using tvr_bytes = std::array<std::uint8_t, 5>;
using tsi_bytes = std::array<std::uint8_t, 2>;

inline void set_bit(tvr_bytes& v, bit b) {
  v[b.byte] |= b.mask;
}
inline bool has_bit(const tvr_bytes& v, bit b) {
  return (v[b.byte] & b.mask) != 0;
}
inline void set_bit(tsi_bytes& v, bit b) {
  v[b.byte] |= b.mask;
}
inline bool has_bit(const tsi_bytes& v, bit b) {
  return (v[b.byte] & b.mask) != 0;
}

// TVR bits (Book 3 Annex C5).
namespace tvr {
inline constexpr bit oda_not_performed{0, 0x80};
inline constexpr bit sda_failed{0, 0x40};
inline constexpr bit icc_data_missing{0, 0x20};
inline constexpr bit exception_file{0, 0x10};
inline constexpr bit dda_failed{0, 0x08};
inline constexpr bit cda_failed{0, 0x04};
inline constexpr bit sda_selected{0, 0x02};
inline constexpr bit different_versions{1, 0x80};
inline constexpr bit expired{1, 0x40};
inline constexpr bit not_yet_effective{1, 0x20};
inline constexpr bit service_not_allowed{1, 0x10};
inline constexpr bit new_card{1, 0x08};
inline constexpr bit cvm_not_successful{2, 0x80};
inline constexpr bit unrecognised_cvm{2, 0x40};
inline constexpr bit pin_try_limit_exceeded{2, 0x20};
inline constexpr bit pin_pad_not_working{2, 0x10};
inline constexpr bit pin_not_entered{2, 0x08};
inline constexpr bit online_pin_entered{2, 0x04};
inline constexpr bit floor_limit_exceeded{3, 0x80};
inline constexpr bit lcol_exceeded{3, 0x40};
inline constexpr bit ucol_exceeded{3, 0x20};
inline constexpr bit random_selection{3, 0x10};
inline constexpr bit merchant_forced_online{3, 0x08};
inline constexpr bit default_tdol_used{4, 0x80};
inline constexpr bit issuer_auth_failed{4, 0x40};
inline constexpr bit script_failed_before_final_ac{4, 0x20};
inline constexpr bit script_failed_after_final_ac{4, 0x10};
}  // namespace tvr

// TSI bits (Book 3 Annex C6).
namespace tsi {
inline constexpr bit oda_performed{0, 0x80};
inline constexpr bit cvm_performed{0, 0x40};
inline constexpr bit card_risk_management_performed{0, 0x20};
inline constexpr bit issuer_auth_performed{0, 0x10};
inline constexpr bit terminal_risk_management_performed{0, 0x08};
inline constexpr bit script_performed{0, 0x04};
}  // namespace tsi

// ---- dates ----------------------------------------------------------------------------
// YYMMDD -> YYYYMMDD as a number, years 00-49 in 20xx and 50-99 in 19xx (Book 4 6.7.3 says
// to window two-digit years this way). nullopt: not six BCD digits or an impossible month.
std::optional<std::uint32_t> date_number(std::string_view yymmdd);
std::optional<std::uint32_t> date_number(byte_view bcd3);

// ---- CVM list (8E) -------------------------------------------------------------------
struct cvm_rule {
  std::uint8_t code = 0;       // byte 1: method in bits 1-6, bit 7 "apply next if unsuccessful"
  std::uint8_t condition = 0;  // byte 2
  std::uint8_t method() const { return code & 0x3F; }
  bool apply_next() const { return (code & 0x40) != 0; }
};

struct cvm_list {
  std::uint32_t x = 0;  // amounts in the application currency (9F42), binary
  std::uint32_t y = 0;
  std::vector<cvm_rule> rules;
};

namespace cvm {
inline constexpr std::uint8_t fail = 0x00;
inline constexpr std::uint8_t offline_plain_pin = 0x01;
inline constexpr std::uint8_t online_pin = 0x02;
inline constexpr std::uint8_t offline_plain_pin_signature = 0x03;
inline constexpr std::uint8_t offline_enc_pin = 0x04;
inline constexpr std::uint8_t offline_enc_pin_signature = 0x05;
inline constexpr std::uint8_t signature = 0x1E;
inline constexpr std::uint8_t no_cvm = 0x1F;
inline constexpr std::uint8_t no_cvm_performed = 0x3F;  // 9F34 byte 1 when no rule applied
}  // namespace cvm

// Errors: "emv.cvm_list_short" (fewer than 8 bytes of X and Y), "emv.cvm_list_odd" (a rule cut
// in half), "emv.cvm_list_empty" (X and Y but no rule).
result<cvm_list> parse_cvm_list(byte_view list_8e);

// What the CVM conditions look at.
struct cvm_context {
  std::uint64_t amount = 0;          // 9F02, minor units of the transaction currency
  bool same_currency = false;        // 5F2A equals the application currency code 9F42
  bool unattended = false;           // terminal type x4..x6
  bool cash = false;                 // 9C 01 (or 17)
  bool manual_cash = false;          // attended cash
  bool cashback = false;             // 9C 09 or an other amount
  std::array<bool, 64> supported{};  // by method code (bits 1-6): terminal supports it
};

enum class condition_result { satisfied, not_satisfied, not_understood };
condition_result cvm_condition(const cvm_rule& rule, const cvm_list& list, const cvm_context& ctx);

// Method codes this kernel knows (Book 3 C3): 00-05, 1E, 1F.
bool cvm_recognised(std::uint8_t method);

// ---- processing restrictions (Book 3 10.4) --------------------------------------------
struct restriction_inputs {
  std::optional<byte_view> card_app_version;  // 9F08
  byte_view terminal_app_version;             // 9F09
  std::optional<byte_view> auc;               // 9F07 (2 bytes)
  std::optional<byte_view> issuer_country;    // 5F28 (2 bytes BCD)
  byte_view terminal_country;                 // 9F1A
  bool atm = false;
  std::uint8_t transaction_type = 0x00;  // 9C
  bool services = false;                 // purchase of services rather than goods
  bool cashback = false;
  std::optional<byte_view> effective;  // 5F25
  std::optional<byte_view> expiry;     // 5F24
  std::uint32_t today = 0;             // date_number of 9A
};
void processing_restrictions(const restriction_inputs& in, tvr_bytes& tvr);

// ---- terminal risk management (Book 3 10.6) -------------------------------------------
// Velocity checking: the card's LCOL 9F14 / UCOL 9F23 against its ATC 9F36 and last online ATC
// register 9F13 (nullopt: GET DATA did not give it). Sets LCOL/UCOL exceeded (both when
// either counter is missing or the ATC does not exceed 9F13) and new card (9F13 is zero).
void velocity_check(std::uint8_t lcol, std::uint8_t ucol, std::optional<std::uint16_t> atc,
                    std::optional<std::uint16_t> last_online_atc, tvr_bytes& tvr);

// Random transaction selection: true when this transaction goes online at random. `draw` is
// a random number 1..99 from the injected source.
bool random_selection(std::uint64_t amount, std::uint64_t floor_limit, std::uint64_t threshold,
                      unsigned target_percent, unsigned max_percent, unsigned draw);

// ---- terminal action analysis (Book 3 10.7) -------------------------------------------
enum class ac_type : std::uint8_t { aac = 0x00, tc = 0x40, arqc = 0x80 };

struct action_codes {
  bytes denial;  // 5 bytes each; empty: all zero
  bytes online;
  bytes def;
};

enum class online_capability { online_only, offline_with_online, offline_only };
online_capability capability_of(std::uint8_t terminal_type);

// iac_*: the card's 9F0E denial / 9F0F online / 9F0D default, nullopt when absent (an absent
// denial IAC counts as all zeros, absent online and default IACs as all ones).
struct issuer_action_codes {
  std::optional<bytes> denial;
  std::optional<bytes> online;
  std::optional<bytes> def;
};

ac_type terminal_action_analysis(const tvr_bytes& tvr, const action_codes& tac,
                                 const issuer_action_codes& iac, online_capability cap);
// After "unable to go online": the default action codes decide TC or AAC.
ac_type default_action_analysis(const tvr_bytes& tvr, const action_codes& tac,
                                const issuer_action_codes& iac);

}  // namespace eftd::emv
