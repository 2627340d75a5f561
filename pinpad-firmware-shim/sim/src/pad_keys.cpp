#include "eftd/padsim/pad_keys.hpp"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "eftd/core/tr31.hpp"

namespace eftd::padsim {

namespace {

using p2pe::dukpt_kind;

error bad(std::string_view source, std::string_view key, std::string_view why) {
  return make_error("padsim.key_bad_value", fmt::format("{}: {}: {}", source, key, why));
}

std::string_view kind_name(dukpt_kind k) {
  return k == dukpt_kind::tdes ? "tdes" : "aes";
}

std::string read_all(std::ifstream& in) {
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The KSN without its counter: what identifies one initial key's KSN series.
bytes initial_part(dukpt_kind k, byte_view ksn) {
  bytes b(ksn.begin(), ksn.end());
  if (k == dukpt_kind::tdes) {
    b[7] &= 0xE0;
    b[8] = 0;
    b[9] = 0;
  } else {
    std::fill(b.begin() + 8, b.end(), std::uint8_t{0});
  }
  return b;
}

}  // namespace

result<loaded_key> unwrap_dukpt_key(byte_view kbpk, std::string_view block) {
  auto k = tr31::unwrap(kbpk, block);
  if (!k) return k.err();
  const auto& h = k->hdr;
  if (h.key_usage != "B1")
    return make_error("padsim.key_bad_value", "key block usage is not B1 (initial DUKPT key)");
  loaded_key out;
  auto opt = [&](std::string_view id) -> const tr31::optional_block* {
    for (const auto& b : h.optional_blocks)
      if (b.id == id) return &b;
    return nullptr;
  };
  if (h.algorithm == 'T') {
    out.kind = dukpt_kind::tdes;
    const auto* ks = opt("KS");
    auto ksn = ks ? from_hex(ks->data) : std::nullopt;
    if (!ksn || ksn->size() != 10)
      return make_error("padsim.key_bad_value", "TDES key block needs a KS block with a 10-byte KSN");
    out.initial_ksn = initial_part(dukpt_kind::tdes, *ksn);
  } else if (h.algorithm == 'A') {
    out.kind = dukpt_kind::aes;
    const auto* ik = opt("IK");
    auto id = ik ? from_hex(ik->data) : std::nullopt;
    if (!id || id->size() != 8)
      return make_error("padsim.key_bad_value",
                        "AES key block needs an IK block with an 8-byte initial key ID");
    out.initial_ksn = *id;
    out.initial_ksn.resize(12, 0);  // counter 0: the next transaction is the first
  } else {
    return make_error("padsim.key_bad_value", "key block algorithm is neither T (TDES) nor A (AES)");
  }
  out.initial_key = std::move(k->key);
  return out;
}

result<loaded_key> parse_dukpt_key_file(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error("padsim.key_syntax", fmt::format("{}: TOML syntax error at line {}, column {}", source,
                                                       e.source().begin.line, e.source().begin.column));
  }
  for (const auto& [k, v] : root) {
    (void)v;
    if (k.str() != "kbpk" && k.str() != "block")
      return make_error("padsim.key_bad_value", fmt::format("{}: unknown key {}", source, k.str()));
  }
  const auto* kbpk_hex = root["kbpk"].as_string();
  if (kbpk_hex == nullptr) return bad(source, "kbpk", "required hex string");
  auto kbpk_bytes = from_hex(kbpk_hex->get());
  if (!kbpk_bytes || kbpk_bytes->empty()) return bad(source, "kbpk", "not hex");
  secure_bytes kbpk(*kbpk_bytes);
  secure_wipe(kbpk_bytes->data(), kbpk_bytes->size());
  const auto* block = root["block"].as_string();
  if (block == nullptr) return bad(source, "block", "required TR-31 key block string");
  auto k = unwrap_dukpt_key(kbpk.view(), block->get());
  if (!k) return make_error(k.err().code, fmt::format("{}: {}", source, k.err().message));
  return k;
}

result<loaded_key> load_dukpt_key_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("padsim.key_io", fmt::format("{}: cannot open", file.string()));
  auto text = read_all(in);
  auto k = parse_dukpt_key_file(text, file.filename().string());
  secure_wipe(text.data(), text.size());
  return k;
}

status pad_keys::add(dukpt_kind kind, secure_bytes initial_key, bytes ksn) {
  if (has(kind))
    return make_error("padsim.key_duplicate", fmt::format("a second {} DUKPT key", kind_name(kind)));
  auto o = p2pe::originator::create(kind, std::move(initial_key), std::move(ksn));
  if (!o) return o.err();
  keys_.push_back(std::move(*o));
  std::sort(keys_.begin(), keys_.end(), [](const auto& a, const auto& b) { return a.kind() < b.kind(); });
  return {};
}

result<pad_keys> pad_keys::load(const std::vector<std::filesystem::path>& key_files,
                                std::optional<std::filesystem::path> state_file) {
  // Saved KSNs per kind: where each key's counter continues.
  std::optional<bytes> saved[3];
  if (state_file) {
    std::ifstream in(*state_file, std::ios::binary);
    if (in) {
      const auto source = state_file->filename().string();
      toml::table root;
      try {
        root = toml::parse(read_all(in), source);
      } catch (const toml::parse_error& e) {
        return make_error("padsim.state_io",
                          fmt::format("{}: TOML syntax error at line {}", source, e.source().begin.line));
      }
      for (auto kind : {dukpt_kind::tdes, dukpt_kind::aes}) {
        const auto* s = root[kind_name(kind)].as_string();
        if (s == nullptr) continue;
        auto ksn = from_hex(s->get());
        if (!ksn || ksn->size() != p2pe::ksn_size(kind))
          return make_error("padsim.state_io", fmt::format("{}: {} is not a {}-byte KSN", source,
                                                           kind_name(kind), p2pe::ksn_size(kind)));
        saved[static_cast<int>(kind)] = std::move(*ksn);
      }
    }
  }
  pad_keys keys;
  keys.state_file_ = std::move(state_file);
  for (const auto& f : key_files) {
    auto k = load_dukpt_key_file(f);
    if (!k) return k.err();
    bytes start = k->initial_ksn;
    // Continue from the saved counter only if it belongs to this key's KSN series; a reloaded
    // key (new initial KSN) starts afresh.
    if (const auto& s = saved[static_cast<int>(k->kind)]; s && initial_part(k->kind, *s) == k->initial_ksn)
      start = *s;
    if (auto st = keys.add(k->kind, std::move(k->initial_key), std::move(start)); !st) return st.err();
  }
  return keys;
}

const p2pe::originator* pad_keys::find(dukpt_kind kind) const noexcept {
  for (const auto& k : keys_)
    if (k.kind() == kind) return &k;
  return nullptr;
}

p2pe::originator* pad_keys::find(dukpt_kind kind) noexcept {
  for (auto& k : keys_)
    if (k.kind() == kind) return &k;
  return nullptr;
}

status pad_keys::save_state() const {
  if (!state_file_) return {};
  std::string text = "# eftpad DUKPT counter state: the last KSN used per key (written before use)\n";
  for (const auto& k : keys_) text += fmt::format("{} = \"{}\"\n", kind_name(k.kind()), to_hex(k.ksn()));
  auto tmp = *state_file_;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return make_error("padsim.state_io", fmt::format("{}: cannot write", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, *state_file_, ec);
  if (ec) return make_error("padsim.state_io", fmt::format("{}: {}", state_file_->string(), ec.message()));
  return {};
}

status pad_keys::begin_transaction() {
  // Advance a copy first and persist it: the state on disk is never behind a KSN in use.
  auto next = keys_;
  for (auto& k : next)
    if (auto ksn = k.begin_transaction(); !ksn) return ksn.err();
  std::swap(keys_, next);
  if (auto st = save_state(); !st) {
    std::swap(keys_, next);
    return st;
  }
  in_transaction_ = !keys_.empty();
  next_item_ = 1;
  return {};
}

const bytes& pad_keys::sealing_ksn() const {
  static const bytes none;
  return keys_.empty() ? none : keys_.back().ksn();
}

result<sealed_value> pad_keys::seal(byte_view data) {
  if (keys_.empty()) return make_error("padsim.no_key", "no DUKPT key loaded");
  if (!in_transaction_) return make_error("p2pe.no_transaction", "seal before begin_transaction");
  // AES sorts last: the sealing key when both kinds are loaded.
  auto s = keys_.back().seal(next_item_, data);
  if (!s) return s.err();
  return sealed_value{std::move(*s), next_item_++};
}

result<bytes> pad_keys::pin_block(dukpt_kind kind, const pin& p, std::string_view pan,
                                  random_source& rng) const {
  const auto* k = find(kind);
  if (k == nullptr)
    return make_error("padsim.no_key", fmt::format("no {} DUKPT key loaded", kind_name(kind)));
  if (!in_transaction_) return make_error("p2pe.no_transaction", "PIN block before begin_transaction");
  return k->pin_block(p, pan, rng);
}

const bytes& pad_keys::ksn(dukpt_kind kind) const {
  static const bytes none;
  const auto* k = find(kind);
  return k ? k->ksn() : none;
}

std::vector<bytes> pad_keys::ksns() const {
  std::vector<bytes> v;
  for (const auto& k : keys_) v.push_back(k.ksn());
  return v;
}

std::vector<std::uint32_t> pad_keys::counters() const {
  std::vector<std::uint32_t> v;
  for (const auto& k : keys_) v.push_back(k.counter());
  return v;
}

// ---- raw RSA for the enciphered offline PIN ---------------------------------------------------

namespace {
struct pkey_ctx_free {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct bn_free {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct bld_free {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct params_free {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
}  // namespace

result<bytes> rsa_public_raw(byte_view modulus, byte_view exponent, byte_view data) {
  auto fail = [](std::string_view why) { return make_error("padsim.rsa", std::string(why)); };
  if (modulus.empty() || exponent.empty() || data.size() != modulus.size())
    return fail("data length differs from the modulus length");
  std::unique_ptr<BIGNUM, bn_free> n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  std::unique_ptr<BIGNUM, bn_free> e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, bld_free> bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
    return fail("cannot build the RSA public key");
  std::unique_ptr<OSSL_PARAM, params_free> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> kctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw_key = nullptr;
  if (!params || !kctx || EVP_PKEY_fromdata_init(kctx.get()) <= 0 ||
      EVP_PKEY_fromdata(kctx.get(), &raw_key, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
    return fail("the modulus and exponent are no RSA public key");
  std::unique_ptr<EVP_PKEY, pkey_free> key(raw_key);
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  // EMV enciphered PIN: the card decrypts the whole modulus-sized block, so no padding here.
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) <= 0)
    return fail("cannot set up raw RSA");
  std::size_t out_len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &out_len, data.data(), data.size()) <= 0)
    return fail("raw RSA failed");
  bytes out(out_len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, data.data(), data.size()) <= 0)
    return fail("raw RSA failed (data not below the modulus?)");
  out.resize(out_len);
  return out;
}

}  // namespace eftd::padsim
