// Key custody: the encrypted key store that holds BDKs, KBPKs and ZPKs, their versions and
// states, the dual-control component entry that creates them, and the TR-31 export of DUKPT
// initial keys and import of keys received in key blocks.
//
// At rest: one file, "EFTDKS01" || master key check value (8) || AES-256-GCM sealed payload
// (nonce || ciphertext || tag); the 16-byte prefix is the GCM AAD, so nothing in the file can
// change without the open failing. The master key sits behind key_protector: here a 0600 file
// of 64 hex digits (file_master_key, like the journal key); in production the same interface is
// implemented by an HSM that seals and opens the payload without ever releasing the master key.
//
// Key check values (shown to custodians, listed, and compared on import): TDES keys encrypt 8
// zero bytes under TDES-ECB and keep 3 bytes; AES keys use the CMAC form of X9.24-1:2017 and
// X9.143 (AES-CMAC over 16 zero bytes, leftmost 5 bytes) rather than "encrypt zeros", because
// that is what TR-31/X9.143 key blocks and current HSMs show for AES. Both come from
// tr31::key_check_value.
//
// Clear keys and components live only in secure_bytes; no function here logs, and no error
// text carries key material (names, types, versions and KCVs only).
//
// Error codes:
//   "keystore.io"                the store or master key file cannot be read or written
//   "keystore.not_found"         the store file does not exist (load)
//   "keystore.bad_format"        not a key store file, unknown format version, or a payload that
//                                does not decode
//   "keystore.wrong_master_key"  the master key is not the one the store was sealed with
//   "keystore.tampered"          right master key, but the file was modified (GCM tag fails)
//   "keystore.insecure_mode"     the master key file is readable by group or others
//   "keystore.bad_master_key"    the master key file is malformed
//   "keystore.bad_type"          unknown key type name
//   "keystore.bad_key"           key or component length wrong for the type
//   "keystore.bad_name"          empty name, or characters other than [A-Za-z0-9._-]
//   "keystore.no_such_key"       no key (or no such version, or wrong type) under that name
//   "keystore.exists"            a key with that name exists: rotate it instead
//   "keystore.no_components"     finish/rotate state does not allow it (no pending components,
//                                a pending entry already, fewer than 2 components, type differs)
//   "keystore.duplicate_component" a component equal to one already entered
//   "keystore.active_version"    retire asked for the active version (rotate first)
//   "keystore.kcv_mismatch"      import: the key's KCV differs from the expected one
//   "keystore.bad_kcv"           expected KCV not 6..10 hex digits
//   "keystore.bad_ksn"           export: KSN length wrong for the BDK's DUKPT variant
//   "keystore.bad_usage"         import: a key block whose usage/algorithm has no store type;
//                                export: key block version not allowed for the KBPK
//   "tr31.*", "dukpt.*"          from the TR-31 and DUKPT layers
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::keystore {

// New types go at the end: the store file keeps the enum value.
enum class key_type { bdk_tdes, bdk_aes128, bdk_aes256, kbpk_tdes, kbpk_aes, zpk_tdes, zpk_aes, mak_tdes };
enum class key_state {
  active,     // the version used for new work (export, new PIN translation)
  retired,    // superseded by a rotation; still usable by version to decrypt old traffic
  destroyed,  // retired for good: key material wiped, the record and KCV kept for audit
};

// "BDK-TDES", "BDK-AES128", "BDK-AES256", "KBPK-TDES", "KBPK-AES", "ZPK-TDES", "ZPK-AES".
std::string_view to_string(key_type t) noexcept;
// The names above, case-insensitive; "ZPK" means ZPK-TDES.
result<key_type> parse_key_type(std::string_view name);
std::string_view to_string(key_state s) noexcept;

// TR-31 algorithm letter: 'T' (TDES) or 'A' (AES).
char algorithm(key_type t) noexcept;
// Allowed clear key lengths: BDK-TDES 16; BDK-AES128 16; BDK-AES256 32; KBPK-TDES 16/24;
// KBPK-AES 16/24/32; ZPK-TDES 16/24; ZPK-AES 16/24/32; MAK-TDES 16/24.
bool valid_length(key_type t, std::size_t n) noexcept;
// KCV of a key of type t (see the file comment). Pre: valid_length(t, key.size()).
result<bytes> check_value(key_type t, byte_view key);

// Seals and opens the store payload under the master key. An HSM implements the same
// interface; file_master_key is the software implementation.
class key_protector {
 public:
  virtual ~key_protector() = default;
  // nonce || ciphertext || tag, AES-256-GCM (or the HSM's equivalent).
  virtual result<bytes> seal(byte_view plaintext, byte_view aad) = 0;
  // Post: plaintext, or "crypto.auth_failed".
  virtual result<secure_bytes> open(byte_view sealed, byte_view aad) = 0;
  // 8 bytes that identify the master key without revealing it (written into the store file
  // so that a wrong master key is told apart from a tampered file).
  virtual bytes check_value() const = 0;
};

class file_master_key final : public key_protector {
 public:
  // Reads the master key file (64 hex digits, optional newline, mode 0600 or stricter).
  // With create = true and no file, creates it (O_EXCL, 0600, fsynced) from the CSPRNG.
  static result<std::unique_ptr<file_master_key>> load(const std::filesystem::path& file, bool create);
  // For tests: a master key given directly (32 bytes).
  static result<std::unique_ptr<file_master_key>> from_key(byte_view key32);

  result<bytes> seal(byte_view plaintext, byte_view aad) override;
  result<secure_bytes> open(byte_view sealed, byte_view aad) override;
  bytes check_value() const override;

 private:
  explicit file_master_key(secure_bytes key) : key_(std::move(key)) {}
  secure_bytes key_;
};

struct key_info {
  std::string name;
  key_type type = key_type::bdk_tdes;
  std::uint32_t version = 0;  // 1, 2, ... per name
  key_state state = key_state::active;
  bytes kcv;                 // kept after destruction, for audit
  std::int64_t created = 0;  // Unix seconds
};

struct key_entry {
  key_info info;
  secure_bytes key;  // empty once destroyed
};

// Components entered so far for a key (or the next version of one).
struct pending_info {
  std::string name;
  key_type type = key_type::bdk_tdes;
  std::size_t components = 0;
  bool rotation = false;  // started by rotate(): finishing makes a new version
  std::int64_t started = 0;
};

struct component_added {
  std::size_t index = 0;  // 1-based count of components entered so far
  bytes kcv;              // the KCV of this component only
};

class key_store {
 public:
  key_store() = default;

  // Load: "keystore.not_found" when the file is absent.
  static result<key_store> load(const std::filesystem::path& file, key_protector& mk);
  // Atomic: temp file (0600) + fsync + rename + directory fsync; a crash leaves the old or new store.
  status save(const std::filesystem::path& file, key_protector& mk) const;

  std::vector<key_info> list() const;
  std::vector<pending_info> pending() const;

  // The active version of a key; with `type`, also requires that type ("keystore.no_such_key").
  result<const key_entry*> active(std::string_view name) const;
  result<const key_entry*> active(std::string_view name, key_type type) const;
  // Any usable (active or retired) version, for decrypting traffic under an older key.
  result<const key_entry*> get(std::string_view name, std::uint32_t version) const;

  // Dual control. A new name starts a pending key of `type`; a name with a pending rotation
  // takes the component if the type matches. A name with an active key and no rotation
  // pending is refused ("keystore.exists"). Returns the component's own KCV.
  result<component_added> add_component(std::string_view name, key_type type, byte_view component,
                                        std::int64_t now);
  // XORs the (>= 2) components into the key, wipes them, and makes it the active version
  // (version 1, or one more than the last); the previous active version becomes retired.
  result<key_info> finish_components(std::string_view name, std::int64_t now);
  // Starts a rotation of an existing key: components entered next make its next version.
  result<pending_info> start_rotation(std::string_view name, std::int64_t now);
  // Drops pending components without creating anything.
  status cancel_components(std::string_view name);
  // Adds a key received whole (an import) as the new active version; the previous active
  // version (same type required) becomes retired.
  result<key_info> add_key(std::string_view name, key_type type, byte_view key, std::int64_t now);
  // Retired version -> destroyed (key wiped). The active version is refused.
  result<key_info> retire(std::string_view name, std::uint32_t version);

 private:
  struct pending_entry {
    pending_info info;
    std::vector<secure_bytes> components;
  };
  std::vector<key_entry> entries_;
  std::vector<pending_entry> pending_;

  friend result<key_store> decode_store(byte_view payload);
  friend result<secure_bytes> encode_store(const key_store& s);
};

// Derives the DUKPT initial key of `ksn` from the active BDK `bdk_name` and wraps it under the
// active KBPK `kbpk_name` as a TR-31 block (usage B1, mode X, exportability N, with a KS block
// (TDES: initial KSN, counter cleared) or an IK block (AES: initial key ID)). TDES KSN: 10
// bytes; AES KSN: 12 bytes (its first 8 are the initial key ID). version: 'B' (TDES KBPK) or
// 'D' (AES KBPK); nullopt picks the one the KBPK allows. An AES key under a TDES KBPK is
// refused (it would be wrapped under a weaker key).
struct exported_key {
  std::string block;
  bytes kcv;  // of the initial key, so the pad's loader can confirm it
};
result<exported_key> export_initial_key(const key_store& s, std::string_view bdk_name, byte_view ksn,
                                        std::string_view kbpk_name, std::optional<char> version,
                                        random_source& rng);

// Unwraps `block` under the active KBPK `kbpk_name` (MAC checked by tr31::unwrap), maps its
// usage/algorithm to a store type (P0 -> ZPK, B0 -> BDK, K0/K1 -> KBPK, M3 -> MAK-TDES; `type`
// overrides),
// checks its KCV against `expected_kcv_hex` (a prefix of 3..5 bytes, case-insensitive) and only
// then stores it under `name` as a new active version.
result<key_info> import_key_block(key_store& s, std::string_view kbpk_name, std::string_view block,
                                  std::string_view name, std::string_view expected_kcv_hex,
                                  std::optional<key_type> type, std::int64_t now);

}  // namespace eftd::keystore
