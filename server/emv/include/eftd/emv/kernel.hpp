// eftd's EMV contact kernel (EMV Books 1-4) as a sans-I/O state machine.
//
// The kernel never touches a card, a pad or a host. The engine asks next() what is needed,
// performs it (an APDU through the pad, a cardholder prompt, an authorization) and feeds the
// answer back; then it asks again, until next() returns `finished`. Steps and answers:
//
//   send_apdu           -> feed_rapdu(R-APDU including SW1 SW2) or feed_transmit_failed()
//   send_apdus          -> feed_rapdus(the R-APDUs of the first n commands, in order, 1 <= n <=
//                          the number sent; the kernel sends the rest again) or
//                          feed_transmit_failed(). Only with terminal_config::batch_apdus, and
//                          only for commands that change nothing on the card (READ RECORD, GET
//                          DATA): every command runs whatever the SW of the one before.
//   choose_application  -> feed_choice(index into list) or feed_choice_cancelled()
//   need_online_pin     -> feed_pin_result(entered | bypassed | failed)
//   need_offline_pin    -> feed_rapdu(the VERIFY answer's SW1 SW2, the pad sends VERIFY) or
//                          feed_pin_result(bypassed | failed)
//   need_signature      -> acknowledge() (the POS will ask the cashier to check a signature)
//   go_online           -> feed_online_result(...) or feed_online_failed()
//   finished            -> nothing more; next() keeps returning it
//
// next() is idempotent: until an answer is fed it returns the same step. Feeding an answer
// the current step does not take ends the transaction ("emv.kernel_misuse").
//
// T=0 chaining (61xx -> GET RESPONSE, 6Cxx -> the command again with the right Le) is done
// here, so a pad that passes APDUs through unchanged works with T=0 and T=1 cards.
//
// Card data (PAN, track 2 equivalent, names) stays in the tlv_store's secure_bytes; reason
// codes are fixed strings. KERNEL.md lists what is covered, the step order and every TVR/TSI
// bit the kernel sets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/emv_oda.hpp"
#include "eftd/emv/rules.hpp"
#include "eftd/emv/tlv_store.hpp"

namespace eftd::emv {

// One application (AID) the terminal accepts, with its parameters.
struct application_config {
  bytes aid;                           // 5..16 bytes (9F06)
  bool partial_match = true;           // a card AID that starts with `aid` matches
  bytes app_version{0x00, 0x02};       // terminal's application version number (9F09)
  action_codes tac;                    // terminal action codes; empty = zeros
  std::uint64_t floor_limit = 0;       // minor units; 0: every transaction exceeds it
  std::uint64_t random_threshold = 0;  // random selection: threshold, target and max percent
  unsigned random_target_percent = 0;
  unsigned random_max_percent = 0;
  bool velocity_checking = true;  // uses the card's LCOL 9F14 / UCOL 9F23 when present
  bytes default_ddol;             // used when the card has no DDOL 9F49; empty: 9F37 04 (the UN)
};

struct cvm_support {
  bool offline_plain_pin = true;
  bool online_pin = true;
  bool signature = true;
  bool offline_enciphered_pin = true;
  bool no_cvm = true;
};

struct oda_support {
  bool sda = true;
  bool dda = true;
  bool cda = true;
};

struct terminal_config {
  std::uint8_t terminal_type = 0x22;       // 9F35: attended, offline with online capability, merchant
  std::uint8_t input_capabilities = 0xE0;  // 9F33 byte 1: manual key entry, magstripe, IC with contacts
  bool card_capture = false;               // 9F33 byte 3 bit 6
  cvm_support cvm;                         // 9F33 byte 2
  oda_support oda;                         // 9F33 byte 3
  bytes additional_capabilities{0x60, 0x00, 0xF0, 0xA0, 0x01};  // 9F40: cash, goods, services...
  std::uint16_t country_code = 0;                               // 9F1A, ISO 3166 numeric (e.g. 616)
  std::uint16_t currency_code = 0;     // default 5F2A when the transaction gives none
  std::uint8_t currency_exponent = 2;  // 5F36
  std::vector<application_config> applications;
  bool use_pse = true;                                       // try 1PAY.SYS.DDF01 before the list of AIDs
  bool cardholder_selection = true;                          // the pad can show a list / ask for confirmation
  bool pin_bypass = true;                                    // need_*_pin may be answered "bypassed"
  bool fallback_on_no_application = true;                    // no mutual application: fall back to the stripe
  std::vector<bytes> exception_file;                         // SHA-256 of the PAN digits (ASCII), never PANs
  bytes ifd_serial{'E', 'F', 'T', 'D', '0', '0', '0', '1'};  // 9F1E, 8 characters
  bytes terminal_id;                                         // 9F1C (8 characters), optional
  bytes merchant_id;                                         // 9F16 (15 characters), optional
  bytes merchant_category;                                   // 9F15 (2 bytes BCD), optional
  // 9F33 exactly as configured (3 bytes), sent instead of the value built from the flags; the
  // caller keeps the flags consistent with it (they decide what the kernel does).
  std::optional<bytes> capabilities_override;
  // The pad runs several C-APDUs in one round trip (pad protocol apdu_script): the records of
  // the AFL, and GET DATA of the ATC and last online ATC, each go out as one send_apdus.
  bool batch_apdus = false;
};

// 9F33: capabilities_override when set, else from the flags above.
bytes terminal_capabilities(const terminal_config& cfg);

struct transaction {
  std::uint64_t amount = 0;        // 9F02, minor units
  std::uint64_t other_amount = 0;  // 9F03 (cashback)
  std::uint16_t currency = 0;      // 5F2A ISO 4217 numeric; 0: the terminal's
  std::uint8_t type = 0x00;        // 9C: 00 goods/services, 01 cash, 09 cashback, 20 refund
  bool services = false;           // a purchase of services (AUC bits), not goods
  std::string date;                // 9A, "YYMMDD"
  std::string time;                // 9F21, "HHMMSS"
  bool force_online = false;       // merchant forced online (TVR byte 4 bit 4)
  // Floor limit check with the transaction log (Book 3 10.6.1): the amount of the last
  // approved transaction of the same card the engine's journal holds, 0 when none.
  std::uint64_t logged_amount_same_card = 0;
  // Randomness (unpredictable number 9F37, random selection); tests pass a fixed source.
  // Empty: OpenSSL's CSPRNG.
  std::function<void(std::span<std::uint8_t>)> random;
};

struct candidate {
  bytes aid;
  std::string label;                   // 9F12 preferred name when the terminal can show it, else 50
  std::uint8_t priority = 0;           // 87 bits 1-4 (0: none)
  bool confirmation_required = false;  // 87 bit 8
};

enum class outcome {
  approved_offline,
  declined_offline,
  approved_online,
  declined_online,
  declined_after_approval,  // the host approved, the card gave AAC: the caller must reverse
  fallback_to_magstripe,
  end_application,
};
std::string_view to_string(outcome o);

enum class pin_result { entered, bypassed, failed };

struct online_result {
  bool approved = false;
  bytes arc;               // 8A, 2 bytes ("00" = 3030); empty: derived from `approved`
  bytes issuer_auth_data;  // 91, empty when the host sent none
  bytes scripts;           // 71 and/or 72 templates as received in field 55
};

class contact_kernel {
 public:
  struct send_apdu {
    bytes capdu;
  };
  struct send_apdus {
    std::vector<bytes> capdus;  // 2 or more
  };
  struct choose_application {
    std::vector<candidate> list;  // by priority; one entry with confirmation_required: confirm it
  };
  struct need_online_pin {
    bool bypass_allowed = false;
  };
  struct need_offline_pin {
    bool enciphered = false;
    bytes icc_pin_key_modulus;  // enciphered only
    bytes icc_pin_key_exponent;
    bytes challenge;                         // enciphered only: the 8 bytes GET CHALLENGE gave
    std::optional<std::uint8_t> tries_left;  // 9F17 when the card told it
    bool bypass_allowed = false;
  };
  struct need_signature {};
  struct go_online {
    bytes field55;
  };
  struct finished {
    outcome o = outcome::end_application;
    std::string reason_code;  // e.g. "emv.card_declined"; never card data
  };
  using step = std::variant<send_apdu, send_apdus, choose_application, need_online_pin, need_offline_pin,
                            need_signature, go_online, finished>;

  // Pre: the card is powered (the engine did power_on and checked the ATR). `capks` may be
  // null (no ODA possible: the TVR says so). The kernel keeps references to neither.
  contact_kernel(const terminal_config& cfg, const capk_table* capks, transaction txn);
  ~contact_kernel();
  contact_kernel(const contact_kernel&) = delete;
  contact_kernel& operator=(const contact_kernel&) = delete;

  step next();

  void feed_rapdu(byte_view rapdu);
  void feed_rapdus(std::span<const byte_view> rapdus);
  void feed_transmit_failed();
  void feed_choice(std::size_t index);
  void feed_choice_cancelled();
  void feed_pin_result(pin_result r);
  void acknowledge();
  void feed_online_result(const online_result& r);
  void feed_online_failed();

  // Tags collected (card and terminal); 95 TVR, 9B TSI, 9F34 CVM results, 9F5B script results.
  const tlv_store& data() const;
  tvr_bytes tvr() const;
  tsi_bytes tsi() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Field 55 for the authorization: the tags the acquirer needs, never 57, 5A, 5F20 or other
// track/name data. Absent tags are left out.
bytes build_field55(const tlv_store& store);
// The tags build_field55 takes, in order.
std::span<const std::uint32_t> field55_tags();

}  // namespace eftd::emv
