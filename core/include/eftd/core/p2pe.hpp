// Card data under DUKPT between the PIN pad and eftd's key-handling module (P2PE).
//
// One DUKPT transaction = one card session on the pad: read_card starts it (the pad moves to
// its next KSN), and everything the pad sends about that card — the track 2, every chip
// R-APDU, the PIN block — is protected under keys of that one KSN:
//
//   sealed data  = encrypt(data key, item(2, BE) || length(2, BE) || data || zero padding)
//                  TDES DUKPT: the data-request variant key (X9.24-1), TDES-CBC, zero IV
//                  AES DUKPT:  the X9.24-3 "data encryption" working key (AES-128, or the
//                              initial key's length), AES-CBC, zero IV
//   PIN block    = TDES DUKPT: ISO 9564 format 0 under the PIN variant key (TDES-ECB)
//                  AES DUKPT:  ISO 9564 format 4 under the X9.24-3 PIN working key
//
// `item` numbers the sealed values of one KSN from 1 upwards (card_read is 1, then each APDU
// response ...). It makes every first plaintext block distinct, so CBC under one key with a
// zero IV never shows two equal values as equal, and the host refuses an item number it has
// seen before (a replayed or reordered value). The length field makes the zero padding
// unambiguous (R-APDUs may end in zero bytes).
//
// originator is the pad's side (the virtual pad, the load generator); host_keys is eftd's
// side, built from the BDK inside the key-handling module. Keys and clear data are
// secure_bytes; errors never carry key or card data. Error codes:
//   "p2pe.exhausted"     the pad's counter has no valid successor (the key must be reloaded)
//   "p2pe.no_transaction" seal/pin before begin_transaction
//   "p2pe.bad_sealed"    ciphertext length not whole blocks, or a length field past the data
//   "p2pe.bad_item"      item number 0, or not above the last one opened with these keys
//   "p2pe.bad_kind"      a PIN format that this DUKPT kind does not use
//   "dukpt.*", "pin.*", "pin_block.*", "crypto.*" from the layers below
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/pin_block.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::p2pe {

enum class dukpt_kind : std::uint8_t { tdes = 1, aes = 2 };

// KSN length of a kind: TDES 10, AES 12. A KSN of another length is neither.
std::size_t ksn_size(dukpt_kind k) noexcept;
result<dukpt_kind> kind_of_ksn(byte_view ksn);
// Transaction counter of a KSN (validated per kind).
result<std::uint32_t> counter_of(byte_view ksn);
// Counters left before the pad's key is exhausted: TDES counters have at most 10 one-bits in
// 21 bits (1,048,575 transactions in all), AES at most 16 in 32. Counts the valid counters
// above `counter`.
std::uint64_t counters_left(dukpt_kind k, std::uint32_t counter) noexcept;
// Smallest valid counter above `counter`, or nullopt when none is left.
std::optional<std::uint32_t> next_counter(dukpt_kind k, std::uint32_t counter) noexcept;

// The PIN block format a kind uses: TDES -> ISO 0, AES -> ISO 4.
pin_block_format pin_format(dukpt_kind k) noexcept;

// Pad side: holds the initial key and the current KSN.
class originator {
 public:
  // initial_key: TDES 16 bytes (the IPEK); AES 16/24/32 bytes. ksn: the KSN to continue from
  // (its counter is the last one used; 0 for a freshly loaded key).
  static result<originator> create(dukpt_kind kind, secure_bytes initial_key, bytes ksn);

  // Moves to the next valid counter and derives that transaction's keys. Returns the new KSN.
  result<bytes> begin_transaction();
  dukpt_kind kind() const noexcept { return kind_; }
  const bytes& ksn() const noexcept { return ksn_; }
  std::uint32_t counter() const noexcept { return counter_; }

  // Seals `data` as item `item` (1, 2, ...) of the current transaction.
  result<bytes> seal(std::uint16_t item, byte_view data) const;
  // The PIN block of the current transaction for `pan` (digits): TDES format 0, AES format 4.
  result<bytes> pin_block(const pin& p, std::string_view pan, random_source& rng) const;

 private:
  originator() = default;
  dukpt_kind kind_ = dukpt_kind::aes;
  secure_bytes initial_key_;
  bytes ksn_;
  std::uint32_t counter_ = 0;
  secure_bytes data_key_, pin_key_;
};

// Host side: the working keys of one KSN, derived from the BDK.
class host_keys {
 public:
  // TDES: bdk 16 bytes, ksn 10. AES: bdk 16/24/32 bytes, ksn 12 (initial key of the BDK's
  // length; working keys AES-128).
  static result<host_keys> derive(byte_view bdk, byte_view ksn);

  dukpt_kind kind() const noexcept { return kind_; }
  const bytes& ksn() const noexcept { return ksn_; }
  // Opens a sealed value; `item` must be above every item opened before with these keys.
  result<secure_bytes> open(std::uint16_t item, byte_view sealed);
  // The clear PIN of a DUKPT PIN block for `pan` (TDES: ISO 0; AES: ISO 4).
  result<pin> open_pin(byte_view block, std::string_view pan) const;

 private:
  host_keys() = default;
  dukpt_kind kind_ = dukpt_kind::aes;
  bytes ksn_;
  secure_bytes data_key_, pin_key_;
  std::uint16_t last_item_ = 0;
};

}  // namespace eftd::p2pe
