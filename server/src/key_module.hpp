// The key-handling module: the only part of eftd that holds BDKs and zone PIN keys in clear,
// and (with the EMV kernel) the only one that sees card data in clear.
//
// At start-up it opens the key store ([keys] store + master_key_file) and checks that every
// configured BDK and ZPK is there, active and of a usable type, so a key problem stops eftd
// before it takes a sale. Per card, the engine opens a card_session for the KSN the pad used:
// the session derives that KSN's working keys once and then opens the pad's sealed values
// (track 2, chip responses) and turns the pad's PIN block into the acquirer's format 0 block
// under its ZPK. The clear PIN exists only inside translate_pin().
//
// BDK rotation: a KSN maps to a BDK name by prefix; the active version is tried first, then
// retired ones, so pads still on the previous key keep working until they are reloaded. The
// version that opens the first sealed value (item numbers and zero padding are checked) is
// kept for the rest of the card session.
//
// Error codes: "keys.unavailable" (no key store configured), "keys.unknown_ksn" (no BDK for
// this KSN's prefix), "keys.no_zpk" (the acquirer has no zone PIN key), "keys.zpk_type"
// (a ZPK that is not TDES: format 0 needs TDES), "keys.ksn_mismatch" (a PIN block under
// another KSN than the card's), "keys.config" (start-up), plus p2pe.*, pin.*, pin_block.*,
// keystore.*, "keys.no_mak" (no active MAK-TDES of that name), "keys.mak_length" (alg 3 needs a
// double-length key), crypto.*. No message carries key or card data.
//
// Message MACs: mac_sign() computes the ISO 9797-1 algorithm 3 MAC (padding method 1, full 8
// bytes) under an acquirer's MAK; the link layer uses it both to sign requests and to check
// responses, so the MAK never leaves this module.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/config.hpp"
#include "eftd/core/keystore.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/core/result.hpp"

namespace eftd::server {

class key_module;

class card_session {
 public:
  const bytes& ksn() const noexcept { return ksn_; }
  p2pe::dukpt_kind kind() const noexcept { return candidates_.front().kind(); }
  // Opens a sealed value of this KSN (item numbers strictly increasing).
  result<secure_bytes> open(std::uint16_t item, byte_view sealed);
  // The pad's DUKPT PIN block (same KSN as the card) re-enciphered as ISO 9564 format 0 under
  // the ZPK `zpk_name`, for field 52.
  result<bytes> translate_pin(byte_view pad_block, byte_view pin_ksn, std::string_view pan,
                              std::string_view zpk_name) const;

 private:
  friend class key_module;
  card_session(const key_module& m, bytes ksn, std::vector<p2pe::host_keys> c)
      : module_(&m), ksn_(std::move(ksn)), candidates_(std::move(c)) {}
  const key_module* module_;
  bytes ksn_;
  // Active BDK version first; narrowed to one once a sealed value opened.
  std::vector<p2pe::host_keys> candidates_;
};

class key_module {
 public:
  // No key store configured: a module that refuses every card session (keys.unavailable).
  key_module() = default;
  // Opens the store and checks every [[keys.dukpt]] BDK and acquirer ZPK ("keys.config",
  // one line per problem).
  static result<std::unique_ptr<key_module>> open(const config::server_config& cfg);

  bool enabled() const noexcept { return store_ != nullptr; }
  result<card_session> begin(byte_view ksn) const;
  // ISO 9797-1 MAC algorithm 3 (retail MAC), padding method 1, 8 bytes, under the active
  // MAK-TDES `mak_name`.
  result<bytes> mac_sign(std::string_view mak_name, byte_view data) const;

 private:
  friend class card_session;
  std::shared_ptr<const keystore::key_store> store_;
  config::keys_config cfg_;
};

}  // namespace eftd::server
