// eftd's contactless EMV kernel (qVSDC-like and M/Chip-like paths) as a sans-I/O object.
//
// A contactless card stays in the field for about half a second and the pad runs a fixed list
// of C-APDUs in one round trip (`apdu_script`, interface 3). So the kernel works in two halves:
//
//   plan()      -> the C-APDUs of the whole tap, built before the card is seen: SELECT PPSE,
//                  then per terminal AID (priority order) SELECT AID, GET PROCESSING OPTIONS
//                  with the PDOL data, READ RECORDs and, for M/Chip-like cards, GENERATE AC
//                  with the CDOL1 data (CDA asked). An empty plan means "no tap": result()
//                  already holds the outcome (e.g. try_another_interface over the limit).
//   evaluate()  -> the R-APDUs of the tap, one per C-APDU in order. Every answer is checked
//                  against the plan; what the plan had to guess (the card's PDOL, AFL and CDOL1)
//                  comes from a contactless_cache that evaluate() corrects when the card
//                  answered differently, and the outcome is then try_again ("present card
//                  again": the next plan matches that card).
//
// After an online_request the engine sends field 55 and reports the host's answer with
// feed_online_result(); there is no second GENERATE AC on contactless and issuer scripts /
// issuer authentication data are not sent to the card (it has left the field).
//
// Card data (track 2 equivalent 57, PAN 5A, names) stays in data()'s secure_bytes; reason
// codes are fixed strings. KERNEL.md ("Contactless") describes checks, limits and outcomes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/emv_oda.hpp"
#include "eftd/emv/kernel.hpp"
#include "eftd/emv/rules.hpp"
#include "eftd/emv/tlv_store.hpp"

namespace eftd::config {
struct emv_contactless_config;
}

namespace eftd::emv {

enum class clss_path { qvsdc, mchip };

struct record_ref {
  std::uint8_t sfi = 0;     // 1..30
  std::uint8_t record = 0;  // 1..255
  friend bool operator==(const record_ref&, const record_ref&) = default;
};

// One contactless AID the terminal accepts: the path and what its cards are expected to ask
// for (the seed of the cache), plus optional limits that replace the global ones.
struct contactless_aid {
  bytes aid;  // 5..16 bytes; a card AID that starts with it matches
  clss_path path = clss_path::qvsdc;
  bytes pdol;                       // expected 9F38 of the SELECT answer; empty: none
  std::vector<record_ref> records;  // READ RECORDs to run in the tap
  bytes cdol1;                      // expected 8C (M/Chip-like only)
  std::optional<std::uint64_t> transaction_limit;
  std::optional<std::uint64_t> cvm_required_limit;
  std::optional<std::uint64_t> floor_limit;
};

// Typical cards (and the simulator profiles): Visa qVSDC with the TTQ PDOL and one record;
// Mastercard M/Chip without PDOL, the CDA records (SFI 1 record 1, SFI 2 records 1-2) and the
// common CDOL1.
contactless_aid default_visa_contactless();
contactless_aid default_mastercard_contactless();

// Reader capabilities announced in the TTQ (9F66).
struct ttq_support {
  bool online_capable = true;  // false: offline-only reader (TTQ byte 1 bit 4)
  bool online_pin = true;
  bool signature = true;
  bool cdcvm = true;            // consumer device CVM (byte 3 bit 7)
  bool contact_chip = true;     // EMV contact chip supported (byte 1 bit 5)
  bool oda_for_online = false;  // byte 1 bit 1
  bool issuer_update = false;   // byte 3 bit 8: never set by this kernel (not supported)
};

struct contactless_config {
  std::vector<contactless_aid> aids;  // terminal priority order
  // Minor units. amount >= transaction_limit: try another interface (no tap). amount >=
  // cvm_required_limit: a CVM is needed. amount > floor_limit: online cryptogram required.
  std::optional<std::uint64_t> transaction_limit;
  std::optional<std::uint64_t> cvm_required_limit;
  std::uint64_t floor_limit = 0;
  ttq_support ttq;
};

// The kernel's configuration from [emv.contactless] (core config). No AID tables: the two
// defaults. Empty pdol / records / cdol1 of an AID: the default of its AID (Visa, Mastercard)
// or kernel. Error "emv.clss_bad_config" naming the AID index (never card data).
result<contactless_config> contactless_config_from(const config::emv_contactless_config& c);

// TTQ (9F66, 4 bytes) for a transaction: the capabilities plus "online cryptogram required"
// (amount above the floor limit or online-only) and "CVM required".
bytes build_ttq(const ttq_support& s, bool online_required, bool cvm_required);

// What the terminal expects each AID's cards to ask for, learned from taps. One cache per
// terminal (it outlives transactions); not thread-safe (one pad runs one transaction).
class contactless_cache {
 public:
  explicit contactless_cache(const contactless_config& cfg);
  // The entry of a configured AID (exact bytes of contactless_aid::aid); nullptr if none.
  const contactless_aid* find(byte_view configured_aid) const;
  contactless_aid* find_mutable(byte_view configured_aid);
  std::size_t updates() const noexcept { return updates_; }
  void count_update() noexcept { ++updates_; }

 private:
  std::vector<contactless_aid> entries_;
  std::size_t updates_ = 0;
};

enum class clss_outcome {
  approved,               // offline: TC (qVSDC with fDDA, or M/Chip with CDA)
  declined,               // AAC, or the terminal refuses the card's answer (CDA/fDDA failed)
  online_request,         // ARQC: send field55
  try_again,              // present the card again (the cache was corrected, or it left early)
  try_another_interface,  // insert / swipe the card
  end_application,        // malformed answers, blocked, no supported AID, card error
};
std::string_view to_string(clss_outcome o);

enum class clss_cvm { none, online_pin, signature, cdcvm_done };
std::string_view to_string(clss_cvm c);

struct contactless_result {
  clss_outcome outcome = clss_outcome::end_application;
  std::string reason_code;  // e.g. "emv.clss_pdol_changed"; never card data
  clss_cvm cvm = clss_cvm::none;
  bytes field55;                      // online_request only; never 57, 5A, 5F20
  bytes aid;                          // the application used (84), when one was
  std::uint32_t tap_ms = 0;           // script_result elapsed_ms, for the receipt
  std::optional<bool> host_approved;  // after feed_online_result
};

class contactless_kernel {
 public:
  // `cache` must outlive the kernel; `capks` may be null (CDA / fDDA then fail). The terminal
  // data (9F1A, 5F2A, 9F35, 9F33, 9F1E...) comes from `term` as in the contact kernel; its
  // applications list is not used.
  contactless_kernel(const terminal_config& term, const contactless_config& cfg, contactless_cache& cache,
                     const capk_table* capks, transaction txn);
  ~contactless_kernel();
  contactless_kernel(const contactless_kernel&) = delete;
  contactless_kernel& operator=(const contactless_kernel&) = delete;

  // The C-APDUs of the tap (at most 32, case 4 with Le 00). Empty: no tap, see result().
  // Calling it again returns the same plan.
  const std::vector<bytes>& plan();

  // Pre: plan() was called. `rapdus`: the R-APDUs (data + SW1 SW2) in order, one per C-APDU
  // the pad ran; fewer than planned means the card left the field (try_again). The kernel
  // copies what it keeps; evaluating twice returns the first result.
  const contactless_result& evaluate(std::span<const bytes> rapdus, std::uint32_t elapsed_ms);

  // After online_request: the host's answer is recorded (no card step follows).
  void feed_online_result(const online_result& r);
  void feed_online_failed();

  const contactless_result& result() const;
  // Tags collected: 57, 5A, 5F34, 9F26, 9F27, 9F36, 9F10, 82, 94, 9F66, 9F6C, 95, 9F34...
  // 95 (here and in field 55) is the TVR the card's cryptogram covers, built before the tap;
  // tvr() adds what the evaluation found afterwards (ODA not performed, CDA / fDDA failed).
  const tlv_store& data() const;
  tvr_bytes tvr() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::emv
