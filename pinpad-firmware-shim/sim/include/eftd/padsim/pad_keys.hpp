// The pad's DUKPT keys (P2PE, core/p2pe.hpp): at most one TDES and one AES initial key, each
// an eftd::p2pe::originator, loaded from TR-31 key blocks that `eftctl keys export-ipek` made.
//
// Key file (eftpad virtual --dukpt-key FILE, TOML):
//   kbpk  = "hex"             # the key-loading key; only a virtual pad keeps it in a file
//   block = "B0096B1TX00N0100KS18..."   # TR-31 block, key usage B1 (initial DUKPT key)
// The initial KSN comes from the block: TDES from the KS optional block (10 bytes, counter 0),
// AES from the IK block (8-byte initial key ID; KSN = ID || counter 00000000).
//
// Counter state (optional, --dukpt-state FILE): after every new transaction the pad writes
// the KSN it last used per kind (`tdes = "hex"`, `aes = "hex"`) to FILE.tmp and renames it
// over FILE, so a crash leaves the old or the new state, never half a file. At start-up a
// saved KSN continues the key whose initial KSN it extends; without a state file the counter
// starts from the block's KSN (every restart reuses counters: tests only).
//
// One transaction = one card: begin_transaction() moves every key to its next KSN; values
// sealed in it are numbered from item 1 (the track 2), then each R-APDU.
//
// Error codes: padsim.key_io, padsim.key_syntax, padsim.key_bad_value (names the key, never
// key material), padsim.key_duplicate (two keys of one kind), padsim.state_io,
// padsim.no_key (no key of the kind asked for), and tr31.* / p2pe.* / dukpt.* from core.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::padsim {

// One key of a key file: the unwrapped initial key and the KSN to start from (counter 0).
struct loaded_key {
  p2pe::dukpt_kind kind = p2pe::dukpt_kind::aes;
  eftd::secure_bytes initial_key;
  eftd::bytes initial_ksn;
};

// TR-31 block under a KBPK -> initial key and KSN. Only usage B1 with a KS (TDES) or IK (AES)
// optional block is accepted.
eftd::result<loaded_key> unwrap_dukpt_key(eftd::byte_view kbpk, std::string_view block);
eftd::result<loaded_key> parse_dukpt_key_file(std::string_view toml_text, std::string_view source);
eftd::result<loaded_key> load_dukpt_key_file(const std::filesystem::path& file);

struct sealed_value {
  eftd::bytes sealed;
  std::uint16_t item = 0;
};

class pad_keys {
 public:
  pad_keys() = default;

  // Adds a key, continuing from `ksn` (its counter = the last one used; the initial KSN for
  // a fresh key). padsim.key_duplicate when a key of that kind is there already.
  eftd::status add(p2pe::dukpt_kind kind, eftd::secure_bytes initial_key, eftd::bytes ksn);

  // Loads key files and, if given, the counter state (a missing state file is a fresh start).
  static eftd::result<pad_keys> load(const std::vector<std::filesystem::path>& key_files,
                                     std::optional<std::filesystem::path> state_file);

  bool empty() const noexcept { return keys_.empty(); }
  bool has(p2pe::dukpt_kind kind) const noexcept { return find(kind) != nullptr; }
  bool in_transaction() const noexcept { return in_transaction_; }

  // Next KSN on every key, item numbering restarts at 1; the state file is written first, so
  // a counter is never used twice across restarts.
  eftd::status begin_transaction();

  // Seals `data` as the next item under the data key of the sealing key (AES when loaded, else
  // TDES). Pre: in_transaction().
  eftd::result<sealed_value> seal(eftd::byte_view data);
  // The sealing key's current KSN.
  const eftd::bytes& sealing_ksn() const;
  // The next item seal() would use (1 after begin_transaction()).
  std::uint16_t next_item() const noexcept { return next_item_; }

  // PIN block of the current transaction of the key of `kind` (TDES ISO 0, AES ISO 4).
  eftd::result<eftd::bytes> pin_block(p2pe::dukpt_kind kind, const eftd::pin& p, std::string_view pan,
                                      eftd::random_source& rng) const;
  const eftd::bytes& ksn(p2pe::dukpt_kind kind) const;

  // For get_status: every key's current KSN and counter, TDES first.
  std::vector<eftd::bytes> ksns() const;
  std::vector<std::uint32_t> counters() const;

 private:
  const p2pe::originator* find(p2pe::dukpt_kind kind) const noexcept;
  p2pe::originator* find(p2pe::dukpt_kind kind) noexcept;
  eftd::status save_state() const;

  std::vector<p2pe::originator> keys_;  // sorted: TDES before AES
  std::optional<std::filesystem::path> state_file_;
  bool in_transaction_ = false;
  std::uint16_t next_item_ = 1;
};

// Raw RSA (no padding) with a public key given as big-endian modulus and exponent, through
// OpenSSL EVP: what the pad does for an enciphered offline PIN VERIFY. Pre: data has the
// modulus's length and, as a number, is below it. Error: padsim.rsa.
eftd::result<eftd::bytes> rsa_public_raw(eftd::byte_view modulus, eftd::byte_view exponent,
                                         eftd::byte_view data);

}  // namespace eftd::padsim
