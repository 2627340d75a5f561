#include "key_module.hpp"

#include <fmt/format.h>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/mac.hpp"

namespace eftd::server {
namespace {

bool is_bdk(keystore::key_type t) {
  using keystore::key_type;
  return t == key_type::bdk_tdes || t == key_type::bdk_aes128 || t == key_type::bdk_aes256;
}

}  // namespace

result<std::unique_ptr<key_module>> key_module::open(const config::server_config& cfg) {
  auto m = std::make_unique<key_module>();
  m->cfg_ = cfg.keys;
  if (cfg.keys.store.empty()) return m;
  auto mk = keystore::file_master_key::load(cfg.keys.master_key_file, /*create=*/false);
  if (!mk) return make_error(mk.err().code, "keys.master_key_file: " + mk.err().message);
  auto store = keystore::key_store::load(cfg.keys.store, **mk);
  if (!store) return make_error(store.err().code, "keys.store: " + store.err().message);
  std::string problems;
  auto add = [&](std::string line) {
    if (!problems.empty()) problems += '\n';
    problems += line;
  };
  for (std::size_t i = 0; i < cfg.keys.dukpt.size(); ++i) {
    auto k = store->active(cfg.keys.dukpt[i].bdk);
    if (!k)
      add(fmt::format("keys.dukpt[{}].bdk: no active key '{}' in the key store", i, cfg.keys.dukpt[i].bdk));
    else if (!is_bdk((*k)->info.type))
      add(fmt::format("keys.dukpt[{}].bdk: '{}' is a {}, not a BDK", i, cfg.keys.dukpt[i].bdk,
                      keystore::to_string((*k)->info.type)));
  }
  for (std::size_t i = 0; i < cfg.acquirers.size(); ++i) {
    const auto& a = cfg.acquirers[i];
    if (a.zpk.empty()) continue;
    auto k = store->active(a.zpk, keystore::key_type::zpk_tdes);
    if (!k) add(fmt::format("acquirers[{}].zpk: no active ZPK-TDES '{}' in the key store", i, a.zpk));
  }
  for (std::size_t i = 0; i < cfg.acquirers.size(); ++i) {
    const auto& a = cfg.acquirers[i];
    if (a.mak.empty()) continue;
    auto k = store->active(a.mak, keystore::key_type::mak_tdes);
    if (!k)
      add(fmt::format("acquirers[{}].mak: no active MAK-TDES '{}' in the key store", i, a.mak));
    else if ((*k)->key.size() != 16)
      // Algorithm 3 is defined for K || K' (two single-DES keys): a triple-length key has no
      // standard retail-MAC meaning, so it is refused rather than truncated.
      add(
          fmt::format("acquirers[{}].mak: '{}' must be a double-length (16-byte) key for ISO 9797-1 "
                      "MAC algorithm 3",
                      i, a.mak));
  }
  if (!problems.empty()) return make_error("keys.config", problems);
  m->store_ = std::make_shared<const keystore::key_store>(std::move(*store));
  return m;
}

result<card_session> key_module::begin(byte_view ksn) const {
  if (!store_) return make_error("keys.unavailable", "no key store is configured (keys.store)");
  auto kind = p2pe::kind_of_ksn(ksn);
  if (!kind) return kind.err();
  const auto* bdk = cfg_.bdk_for(to_hex(ksn));
  if (!bdk) return make_error("keys.unknown_ksn", "no BDK is configured for this KSN's prefix (keys.dukpt)");
  std::vector<p2pe::host_keys> candidates;
  std::optional<error> first_error;
  // Active version first, then the retired ones (newest first).
  std::vector<keystore::key_info> versions;
  for (const auto& info : store_->list())
    if (info.name == bdk->bdk && info.state != keystore::key_state::destroyed) versions.push_back(info);
  std::sort(versions.begin(), versions.end(), [](const auto& a, const auto& b) {
    if ((a.state == keystore::key_state::active) != (b.state == keystore::key_state::active))
      return a.state == keystore::key_state::active;
    return a.version > b.version;
  });
  for (const auto& v : versions) {
    auto entry = store_->get(v.name, v.version);
    if (!entry) continue;
    auto keys = p2pe::host_keys::derive((*entry)->key.view(), ksn);
    if (!keys) {
      if (!first_error) first_error = keys.err();
      continue;
    }
    candidates.push_back(std::move(*keys));
  }
  if (candidates.empty()) {
    if (first_error) return *first_error;
    return make_error("keys.unknown_ksn", fmt::format("BDK '{}' has no usable version", bdk->bdk));
  }
  return card_session(*this, bytes(ksn.begin(), ksn.end()), std::move(candidates));
}

result<bytes> key_module::mac_sign(std::string_view mak_name, byte_view data) const {
  if (!store_) return make_error("keys.unavailable", "no key store is configured (keys.store)");
  auto mak = store_->active(mak_name, keystore::key_type::mak_tdes);
  if (!mak) return make_error("keys.no_mak", fmt::format("no active MAK-TDES '{}'", mak_name));
  if ((*mak)->key.size() != 16)
    return make_error("keys.mak_length", "ISO 9797-1 MAC algorithm 3 needs a double-length MAK");
  return iso9797_mac_alg3((*mak)->key.view(), data, mac_padding::method1);
}

result<secure_bytes> card_session::open(std::uint16_t item, byte_view sealed) {
  std::optional<error> first_error;
  for (std::size_t i = 0; i < candidates_.size(); ++i) {
    auto clear = candidates_[i].open(item, sealed);
    if (clear) {
      if (candidates_.size() > 1) {
        // This BDK version is the pad's: keep only it.
        auto keep = std::move(candidates_[i]);
        candidates_.clear();
        candidates_.push_back(std::move(keep));
      }
      return clear;
    }
    if (!first_error) first_error = clear.err();
  }
  return *first_error;
}

result<bytes> card_session::translate_pin(byte_view pad_block, byte_view pin_ksn, std::string_view pan,
                                          std::string_view zpk_name) const {
  if (!std::equal(pin_ksn.begin(), pin_ksn.end(), ksn_.begin(), ksn_.end()))
    return make_error("keys.ksn_mismatch", "the PIN block was not made in the card's DUKPT transaction");
  if (zpk_name.empty()) return make_error("keys.no_zpk", "the acquirer has no zone PIN key (acquirers.zpk)");
  auto zpk = module_->store_->active(zpk_name);
  if (!zpk) return make_error("keys.no_zpk", fmt::format("no active zone PIN key '{}'", zpk_name));
  if ((*zpk)->info.type != keystore::key_type::zpk_tdes)
    return make_error("keys.zpk_type", "ISO 9564 format 0 needs a TDES zone PIN key");
  auto p = candidates_.front().open_pin(pad_block, pan);
  if (!p) return p.err();
  // ISO 0 needs no random fill; the clear block lives in a wiped buffer until enciphered.
  auto clear = build_pin_block(pin_block_format::iso0, *p, pan, system_random());
  if (!clear) return clear.err();
  auto enc = tdes_ecb(cipher_op::encrypt, (*zpk)->key.view(), clear->view());
  if (!enc) return enc.err();
  return bytes(enc->view().begin(), enc->view().end());
}

}  // namespace eftd::server
