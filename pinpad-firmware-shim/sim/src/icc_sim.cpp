#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "eftd/core/crypto.hpp"
#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/mac.hpp"
#include "eftd/core/tlv.hpp"
#include "eftd/padsim/emv_cert_mint.hpp"
#include "eftd/padsim/icc.hpp"

namespace eftd::padsim {

namespace {

constexpr std::string_view pse_name = "1PAY.SYS.DDF01";
constexpr std::string_view ppse_name = "2PAY.SYS.DDF01";
constexpr std::uint8_t pse_directory_sfi = 1;
constexpr std::size_t challenge_size = 8;

// A short C-APDU split by ISO 7816-3 case: header, optional Lc/data, optional Le.
struct apdu {
  std::uint8_t cla = 0, ins = 0, p1 = 0, p2 = 0;
  byte_view data;
  bool has_le = false;
  std::size_t le = 0;  // 1..256 (Le byte 00 means 256)
};

// nullopt: the length bytes do not describe the command (6700). Extended lengths (Lc byte
// 00 followed by more bytes) are not supported by these cards.
std::optional<apdu> parse_apdu(byte_view c) {
  if (c.size() < 4) return std::nullopt;
  apdu a;
  a.cla = c[0];
  a.ins = c[1];
  a.p1 = c[2];
  a.p2 = c[3];
  if (c.size() == 4) return a;  // case 1
  if (c.size() == 5) {          // case 2
    a.has_le = true;
    a.le = c[4] == 0 ? 256 : c[4];
    return a;
  }
  const std::size_t lc = c[4];
  if (lc == 0) return std::nullopt;
  if (c.size() == 5 + lc) {  // case 3
    a.data = c.subspan(5, lc);
    return a;
  }
  if (c.size() == 6 + lc) {  // case 4
    a.data = c.subspan(5, lc);
    a.has_le = true;
    a.le = c[5 + lc] == 0 ? 256 : c[5 + lc];
    return a;
  }
  return std::nullopt;
}

bytes with_sw(bytes data, std::uint16_t sw) {
  data.push_back(static_cast<std::uint8_t>(sw >> 8));
  data.push_back(static_cast<std::uint8_t>(sw));
  return data;
}
bytes sw_only(std::uint16_t sw) {
  return with_sw({}, sw);
}

// ISO 9564 format 2: 0x2N, N PIN digits (4..12), F fill; 8 bytes. The PIN goes to `pin`.
bool decode_format2(byte_view block, secure_bytes& pin) {
  if (block.size() != 8 || (block[0] >> 4) != 0x2) return false;
  const std::size_t n = block[0] & 0x0F;
  if (n < 4 || n > 12) return false;
  secure_bytes out(n);
  for (std::size_t i = 0; i < 14; ++i) {
    const std::uint8_t b = block[1 + i / 2];
    const std::uint8_t nib = (i % 2 == 0) ? (b >> 4) : (b & 0x0F);
    if (i < n) {
      if (nib > 9) return false;
      out.mutable_view()[i] = static_cast<std::uint8_t>('0' + nib);
    } else if (nib != 0xF) {
      return false;
    }
  }
  pin = std::move(out);
  return true;
}

struct pkey_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct pkey_ctx_deleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

pkey_ptr read_private_key(const secure_bytes& pem) {
  if (pem.empty()) return nullptr;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.view().data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return nullptr;
  return pkey_ptr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

tlv prim(std::uint32_t tag, bytes v) {
  return tlv{tag, std::move(v), {}};
}
bytes ascii(std::string_view s) {
  return bytes(s.begin(), s.end());
}

// The values a DOL asked for, by tag (the card knows its own DOLs, so it reads the terminal's
// data the way it asked for it). Pre: data has the DOL's total length.
std::map<std::uint32_t, bytes> dol_values(byte_view dol, byte_view data) {
  std::map<std::uint32_t, bytes> out;
  std::size_t i = 0, off = 0;
  while (i < dol.size()) {
    std::uint32_t tag = dol[i];
    if ((dol[i++] & 0x1F) == 0x1F) {
      while (i < dol.size()) {
        tag = (tag << 8) | dol[i];
        if ((dol[i++] & 0x80) == 0) break;
      }
    }
    if (i >= dol.size()) break;
    const std::size_t len = dol[i++];
    if (off + len > data.size()) break;
    out[tag] = bytes(data.begin() + static_cast<std::ptrdiff_t>(off),
                     data.begin() + static_cast<std::ptrdiff_t>(off + len));
    off += len;
  }
  return out;
}

// Cryptogram information data (9F27) for each kind of cryptogram.
constexpr std::uint8_t cid_aac = 0x00;
constexpr std::uint8_t cid_tc = 0x40;
constexpr std::uint8_t cid_arqc = 0x80;
constexpr std::size_t icc_dynamic_number_size = 8;

bool is_visa(emv::cvn v) {
  return v == emv::cvn::visa10 || v == emv::cvn::visa18;
}

// Authorisation response codes (8A, two characters) that mean the issuer approved.
bool arc_approved(byte_view arc) {
  if (arc.size() != 2) return false;
  const std::string_view a(reinterpret_cast<const char*>(arc.data()), 2);
  return a == "00" || a == "08" || a == "10" || a == "11";
}

// True when the data object list names `tag` (one-byte length per entry, tags up to 2 bytes).
bool dol_has(const bytes& dol, std::uint32_t tag) {
  std::size_t i = 0;
  while (i < dol.size()) {
    std::uint32_t t = dol[i++];
    if ((t & 0x1F) == 0x1F && i < dol.size()) t = (t << 8) | dol[i++];
    if (i >= dol.size()) return false;
    ++i;  // length
    if (t == tag) return true;
  }
  return false;
}

class icc_sim final : public icc {
 public:
  icc_sim(const card_profile& p, icc_random random) : random_(std::move(random)) {
    if (p.chip && !p.chip_fails) {
      chip_ = *p.chip;
      contactless_ = p.kind == "contactless";
      key_ = read_private_key(chip_->icc_pin_key_pem);
    }
  }

  result<bytes> power_on() override {
    if (!chip_) return make_error("padsim.icc_mute", "the chip does not answer reset");
    powered_ = true;
    reset_selection();
    pending_.clear();
    challenge_.reset();
    return chip_->atr;
  }

  void power_off() override {
    powered_ = false;
    reset_selection();
    pending_.clear();
    challenge_.reset();
  }

  result<bytes> transmit(byte_view capdu) override {
    if (!powered_ || !chip_) return make_error("padsim.icc_not_powered", "no powered card in the reader");
    auto a = parse_apdu(capdu);
    if (!a) {
      pending_.clear();
      return sw_only(icc_sw::wrong_length);
    }
    if (a->cla != 0x00 && a->cla != 0x80 && a->cla != 0x84) {
      pending_.clear();
      return sw_only(icc_sw::cla_not_supported);
    }
    if (a->cla == 0x84) {  // secure messaging: issuer script commands only
      pending_.clear();
      if (a->ins == 0x24 || a->ins == 0x1E || a->ins == 0x18) return script_command(*a);
      return sw_only(icc_sw::cla_not_supported);
    }
    if (a->ins == 0xC0 && a->cla == 0x00 && chip_->t0_get_response) return get_response(*a);
    // Any other command ends a T=0 response chain.
    pending_.clear();
    switch (a->ins) {
      case 0xA4:
        return t0_case4(a->cla == 0x00 ? select(*a) : sw_only(icc_sw::cla_not_supported));
      case 0xA8:
        return t0_case4(a->cla == 0x80 ? gpo(*a) : sw_only(icc_sw::cla_not_supported));
      case 0xB2:
        return t0_case2(*a, a->cla == 0x00 ? read_record(*a) : sw_only(icc_sw::cla_not_supported));
      case 0xCA:
        return t0_case2(*a, a->cla == 0x80 ? get_data(*a) : sw_only(icc_sw::cla_not_supported));
      case 0x84:
        return t0_case2(*a, a->cla == 0x00 ? get_challenge(*a) : sw_only(icc_sw::cla_not_supported));
      case 0x20:
        return a->cla == 0x00 ? verify(*a) : sw_only(icc_sw::cla_not_supported);
      case 0xC0:  // GET RESPONSE with CLA 80, or on a card that does not chain (T=1)
        return chip_->t0_get_response ? sw_only(icc_sw::cla_not_supported)
                                      : sw_only(icc_sw::ins_not_supported);
      case 0xAE:
        return t0_case4(a->cla == 0x80 ? generate_ac(*a) : sw_only(icc_sw::cla_not_supported));
      case 0x88:
        return t0_case4(a->cla == 0x00 ? internal_authenticate(*a) : sw_only(icc_sw::cla_not_supported));
      case 0x82:
        return a->cla == 0x00 ? external_authenticate(*a) : sw_only(icc_sw::cla_not_supported);
      default:
        return sw_only(icc_sw::ins_not_supported);
    }
  }

 private:
  enum class selection { none, pse, ppse, application };

  void reset_selection() {
    selected_ = selection::none;
    app_ = 0;
    gpo_done_ = false;
    genac_count_ = 0;
    first_cid_ = cid_aac;
    arqc_.clear();
    pdol_data_.clear();
    cdol1_data_.clear();
    issuer_auth_ = issuer_auth::none;
    pin_performed_ = pin_failed_ = false;
    scripts_run_ = 0;
    script_failed_ = false;
    cvr_ = chip_ ? chip_->cvr : bytes{};
  }

  // T=0 (EMV Book 1 9.3.1): a case-4 command's data comes back through GET RESPONSE.
  bytes t0_case4(bytes r) {
    if (!chip_->t0_get_response || r.size() <= 2 || r[r.size() - 2] != 0x90) return r;
    pending_.assign(r.begin(), r.end() - 2);
    return sw_only(static_cast<std::uint16_t>(0x6100 | (pending_.size() >= 256 ? 0 : pending_.size())));
  }

  // T=0 case 2: P3 is the exact length the card will send; any other value gets 6Cxx so the
  // terminal repeats the command with the right Le.
  bytes t0_case2(const apdu& a, bytes r) {
    if (!chip_->t0_get_response || r.size() <= 2 || r[r.size() - 2] != 0x90) return r;
    const std::size_t len = r.size() - 2;
    if (a.le != len) return sw_only(static_cast<std::uint16_t>(0x6C00 | (len & 0xFF)));
    return r;
  }

  bytes get_response(const apdu& a) {
    if (a.p1 != 0 || a.p2 != 0) return sw_only(icc_sw::wrong_p1p2);
    if (!a.data.empty() || !a.has_le) return sw_only(icc_sw::wrong_length);
    if (pending_.empty()) return sw_only(icc_sw::conditions_not_satisfied);
    if (a.le > pending_.size()) return sw_only(static_cast<std::uint16_t>(0x6C00 | (pending_.size() & 0xFF)));
    bytes out(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(a.le));
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(a.le));
    if (pending_.empty()) return with_sw(std::move(out), icc_sw::ok);
    return with_sw(std::move(out),
                   static_cast<std::uint16_t>(0x6100 | (pending_.size() >= 256 ? 0 : pending_.size())));
  }

  tlv directory_entry(const chip_application& app) const {
    tlv e{0x61, {}, {prim(0x4F, app.aid), prim(0x50, ascii(app.label))}};
    if (app.priority != 0) e.children.push_back(prim(0x87, {app.priority}));
    return e;
  }

  bytes select(const apdu& a) {
    if (a.p1 != 0x04 || (a.p2 != 0x00 && a.p2 != 0x02)) return sw_only(icc_sw::wrong_p1p2);
    if (a.data.empty()) return sw_only(icc_sw::wrong_length);
    const std::string_view name(reinterpret_cast<const char*>(a.data.data()), a.data.size());

    if (name == pse_name || name == ppse_name) {
      const bool ppse = name == ppse_name;
      if (a.p2 != 0x00 || (ppse ? !contactless_ : !chip_->pse)) return sw_only(icc_sw::file_not_found);
      tlv prop{0xA5, {}, {}};
      if (ppse) {
        tlv dir{0xBF0C, {}, {}};
        for (const auto& app : chip_->applications) dir.children.push_back(directory_entry(app));
        prop.children.push_back(std::move(dir));
      } else {
        prop.children.push_back(prim(0x88, {pse_directory_sfi}));
      }
      reset_selection();
      selected_ = ppse ? selection::ppse : selection::pse;
      return with_sw(tlv_encode(tlv{0x6F, {}, {prim(0x84, ascii(name)), std::move(prop)}}), icc_sw::ok);
    }

    // Partial selection (EMV Book 1 12.3.3): the data may be the first bytes of an AID;
    // P2 02 asks for the next application after the current one with that prefix.
    const auto& apps = chip_->applications;
    auto matches = [&](const chip_application& app) {
      return app.aid.size() >= a.data.size() && std::equal(a.data.begin(), a.data.end(), app.aid.begin());
    };
    std::size_t from = 0;
    if (a.p2 == 0x02 && selected_ == selection::application && matches(apps[app_])) from = app_ + 1;
    for (std::size_t i = from; i < apps.size(); ++i) {
      if (!matches(apps[i])) continue;
      const chip_application& app = apps[i];
      reset_selection();
      selected_ = selection::application;
      app_ = i;
      tlv prop{0xA5, {}, {prim(0x50, ascii(app.label))}};
      if (app.priority != 0) prop.children.push_back(prim(0x87, {app.priority}));
      if (!app.pdol.empty()) prop.children.push_back(prim(0x9F38, app.pdol));
      const tlv fci{0x6F, {}, {prim(0x84, app.aid), std::move(prop)}};
      return with_sw(tlv_encode(fci), app.blocked ? icc_sw::selected_file_invalidated : icc_sw::ok);
    }
    return sw_only(icc_sw::file_not_found);
  }

  bytes gpo(const apdu& a) {
    if (a.p1 != 0 || a.p2 != 0) return sw_only(icc_sw::wrong_p1p2);
    if (a.data.empty()) return sw_only(icc_sw::wrong_length);
    if (selected_ != selection::application || gpo_done_) return sw_only(icc_sw::conditions_not_satisfied);
    const chip_application& app = chip_->applications[app_];
    if (app.blocked) return sw_only(icc_sw::conditions_not_satisfied);
    // Command data template 83 with a one- or two-byte length (81 xx) before the PDOL data.
    if (a.data[0] != 0x83 || a.data.size() < 2) return sw_only(icc_sw::wrong_data);
    std::size_t len = a.data[1], off = 2;
    if (len == 0x81) {
      if (a.data.size() < 3) return sw_only(icc_sw::wrong_data);
      len = a.data[2];
      off = 3;
    } else if (len > 0x7F) {
      return sw_only(icc_sw::wrong_data);
    }
    if (off + len != a.data.size()) return sw_only(icc_sw::wrong_length);
    const std::size_t want = app.pdol.empty() ? 0 : dol_data_length(app.pdol).value_or(0);
    if (len != want) return sw_only(icc_sw::wrong_length);
    if (chip_->atc == 0xFFFF) return sw_only(icc_sw::conditions_not_satisfied);
    ++chip_->atc;
    gpo_done_ = true;
    pdol_data_.assign(a.data.begin() + static_cast<std::ptrdiff_t>(off), a.data.end());
    if (chip_->qvsdc && !app.icc_mk_ac.empty()) return qvsdc_gpo(app);
    return with_sw(app.gpo_response, icc_sw::ok);
  }

  bytes read_record(const apdu& a) {
    if (a.p1 == 0 || (a.p2 & 0x07) != 0x04) return sw_only(icc_sw::wrong_p1p2);
    if (!a.data.empty()) return sw_only(icc_sw::wrong_length);
    const std::uint8_t sfi = a.p2 >> 3;
    if (selected_ == selection::pse) {
      if (sfi != pse_directory_sfi || a.p1 > chip_->applications.size())
        return sw_only(icc_sw::record_not_found);
      const tlv rec{0x70, {}, {directory_entry(chip_->applications[a.p1 - 1])}};
      return with_sw(tlv_encode(rec), icc_sw::ok);
    }
    if (selected_ != selection::application) return sw_only(icc_sw::conditions_not_satisfied);
    for (const auto& r : chip_->applications[app_].records)
      if (r.sfi == sfi && r.number == a.p1)
        return with_sw(bytes(r.data.view().begin(), r.data.view().end()), icc_sw::ok);
    return sw_only(icc_sw::record_not_found);
  }

  bytes get_data(const apdu& a) {
    if (!a.data.empty()) return sw_only(icc_sw::wrong_length);
    const std::uint32_t tag = (static_cast<std::uint32_t>(a.p1) << 8) | a.p2;
    bytes v;
    switch (tag) {
      case 0x9F36:
        v = {static_cast<std::uint8_t>(chip_->atc >> 8), static_cast<std::uint8_t>(chip_->atc)};
        break;
      case 0x9F13:
        v = {static_cast<std::uint8_t>(chip_->last_online_atc >> 8),
             static_cast<std::uint8_t>(chip_->last_online_atc)};
        break;
      case 0x9F17:
        v = {chip_->pin_tries_left};
        break;
      default:
        return sw_only(icc_sw::data_not_found);
    }
    return with_sw(tlv_encode(prim(tag, std::move(v))), icc_sw::ok);
  }

  bytes get_challenge(const apdu& a) {
    if (a.p1 != 0 || a.p2 != 0) return sw_only(icc_sw::wrong_p1p2);
    if (!a.data.empty() || !a.has_le || (a.le != 256 && a.le != challenge_size))
      return sw_only(icc_sw::wrong_length);
    std::array<std::uint8_t, challenge_size> c{};
    random_(c);
    challenge_ = c;
    return with_sw(bytes(c.begin(), c.end()), icc_sw::ok);
  }

  bytes verify(const apdu& a) {
    if (a.p1 != 0 || (a.p2 != 0x80 && a.p2 != 0x88)) return sw_only(icc_sw::wrong_p1p2);
    if (a.has_le) return sw_only(icc_sw::wrong_length);
    // A challenge answers one VERIFY only (EMV Book 3 6.5.12): take it whatever happens next.
    const auto challenge = std::exchange(challenge_, std::nullopt);
    if (chip_->pin_tries_left == 0) return sw_only(icc_sw::pin_blocked);

    secure_bytes pin;
    if (a.p2 == 0x80) {
      if (a.data.size() != 8) return sw_only(icc_sw::wrong_length);
      if (!decode_format2(a.data, pin)) return sw_only(icc_sw::wrong_data);
    } else {
      // Without an ICC PIN encipherment certificate (9F2D) a terminal enciphers under the ICC
      // public key of ODA (EMV Book 2 7.1), so a card with one deciphers with its ICC key.
      const bool with_icc_key = !chip_->icc_key.empty();
      if (!with_icc_key && !key_) return sw_only(icc_sw::function_not_supported);
      const auto modulus =
          with_icc_key ? chip_->icc_key.size() : static_cast<std::size_t>(EVP_PKEY_get_size(key_.get()));
      if (a.data.size() != modulus) return sw_only(icc_sw::wrong_length);
      if (!challenge) return sw_only(icc_sw::conditions_not_satisfied);
      std::optional<secure_bytes> plain;
      if (with_icc_key) {
        if (auto r = chip_->icc_key.sign_raw(a.data)) {
          plain = secure_bytes(*r);
          secure_wipe(r->data(), r->size());
        }
      } else {
        plain = rsa_recover(a.data);
      }
      // EMV Book 2 7.1: 7F || PIN block (8) || ICC unpredictable number (8) || random pad.
      if (!plain || plain->size() != modulus || plain->view()[0] != 0x7F ||
          CRYPTO_memcmp(plain->view().data() + 9, challenge->data(), challenge_size) != 0 ||
          !decode_format2(plain->view().subspan(1, 8), pin))
        return sw_only(icc_sw::wrong_data);
    }

    pin_performed_ = true;
    if (pin.size() == chip_->pin.size() &&
        CRYPTO_memcmp(pin.view().data(), chip_->pin.view().data(), pin.size()) == 0) {
      chip_->pin_tries_left = chip_->pin_try_limit;
      pin_failed_ = false;
      return sw_only(icc_sw::ok);
    }
    pin_failed_ = true;
    --chip_->pin_tries_left;
    return sw_only(static_cast<std::uint16_t>(0x63C0 | chip_->pin_tries_left));
  }

  // Raw RSA with the private key (no padding: the EMV block format is the padding).
  std::optional<secure_bytes> rsa_recover(byte_view in) const {
    std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_deleter> ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) <= 0)
      return std::nullopt;
    secure_bytes out(static_cast<std::size_t>(EVP_PKEY_get_size(key_.get())));
    std::size_t n = out.size();
    // Fails for an input not below the modulus: a wrong-key block, answered 6A80.
    if (EVP_PKEY_decrypt(ctx.get(), out.mutable_view().data(), &n, in.data(), in.size()) <= 0)
      return std::nullopt;
    if (n != out.size()) return std::nullopt;
    return out;
  }

  // The CVR as the card reports it now: the profile's base with this transaction's bits.
  // Visa (byte 2) and M/Chip (byte 1) both keep the cryptogram types in bits 8-7 (second GENERATE
  // AC: 00 AAC, 01 TC, 10 not requested) and 6-5 (first: 00 AAC, 01 TC, 10 ARQC).
  bytes current_cvr(std::uint8_t first_cid, std::optional<std::uint8_t> second_cid) const {
    bytes cvr = cvr_;
    const bool visa = is_visa(chip_->cvn);
    std::uint8_t& ac_bits = cvr[visa ? 1 : 0];
    ac_bits &= 0x0F;
    ac_bits |= first_cid == cid_arqc ? 0x20 : first_cid == cid_tc ? 0x10 : 0x00;
    ac_bits |= !second_cid ? 0x80 : *second_cid == cid_tc ? 0x40 : 0x00;
    const bool auth_failed = issuer_auth_ == issuer_auth::failed;
    const std::uint8_t scripts = static_cast<std::uint8_t>(std::min(scripts_run_, 15) << 4);
    if (visa) {
      if (auth_failed) cvr[1] |= 0x08;
      if (pin_performed_) cvr[1] |= 0x04;
      if (pin_performed_ && pin_failed_) cvr[1] |= 0x02;
      cvr[3] = static_cast<std::uint8_t>(cvr[3] | scripts | (script_failed_ ? 0x08 : 0));
    } else {
      if (issuer_auth_ != issuer_auth::none) cvr[0] |= 0x02;  // issuer authentication performed
      if (pin_performed_) cvr[1] |= 0x80;
      if (pin_performed_ && !pin_failed_) cvr[1] |= 0x20;
      if (auth_failed) cvr[2] |= 0x40;
      cvr[3] = static_cast<std::uint8_t>(cvr[3] | scripts);
    }
    return cvr;
  }

  // Issuer application data (9F10) in the scheme's layout for the CVN.
  bytes make_iad(const bytes& cvr) const {
    const auto n = emv::spec(chip_->cvn).number;
    if (is_visa(chip_->cvn)) {  // length 06, derivation key index, CVN, CVR (4 with its length byte)
      bytes iad{0x06, 0x01, n};
      iad.insert(iad.end(), cvr.begin(), cvr.end());
      return iad;
    }
    // M/Chip: key derivation index, CVN, CVR (6), DAC / ICC dynamic number (2), counters (8).
    bytes iad{0x01, n};
    iad.insert(iad.end(), cvr.begin(), cvr.end());
    iad.resize(iad.size() + 2 + 7, 0x00);
    iad.push_back(0xFF);
    return iad;
  }

  // What the cryptogram covers: the fixed CDOL fields the schemes MAC (zeros for any the DOL did
  // not ask for), the AIP and the ATC; then the CVR or IAD the CVN appends.
  emv::ac_inputs ac_inputs_for(const chip_application& app, const std::map<std::uint32_t, bytes>& v,
                               const bytes& cvr, const bytes& iad) const {
    emv::ac_inputs in;
    in.atc = chip_->atc;
    static constexpr std::pair<std::uint32_t, std::size_t> fields[] = {
        {0x9F02, 6}, {0x9F03, 6}, {0x9F1A, 2}, {0x95, 5}, {0x5F2A, 2}, {0x9A, 3}, {0x9C, 1}, {0x9F37, 4}};
    for (const auto& [tag, len] : fields) {
      auto it = v.find(tag);
      bytes field = it != v.end() ? it->second : bytes{};
      field.resize(len, 0x00);
      in.data.insert(in.data.end(), field.begin(), field.end());
      if (tag == 0x9F37) in.un = field;
    }
    in.data.insert(in.data.end(), app.aip.begin(), app.aip.end());
    in.data.push_back(static_cast<std::uint8_t>(chip_->atc >> 8));
    in.data.push_back(static_cast<std::uint8_t>(chip_->atc));
    in.iad_or_cvr = chip_->cvn == emv::cvn::visa18 ? iad : cvr;
    return in;
  }

  std::uint8_t first_decision(std::uint8_t requested) const {
    if (requested == cid_aac || chip_->decline_always) return cid_aac;
    if (requested == cid_arqc) return cid_arqc;
    // TC asked: the card's own risk management may still want the issuer.
    if (chip_->online_always || offline_count_ >= chip_->offline_limit) return cid_arqc;
    return cid_tc;
  }

  std::uint8_t second_decision(std::uint8_t requested, const std::map<std::uint32_t, bytes>& v) const {
    if (requested != cid_tc || chip_->applications[app_].blocked) return cid_aac;
    auto arc = v.find(0x8A);
    if (arc == v.end()) return cid_aac;
    const std::string_view code(reinterpret_cast<const char*>(arc->second.data()), arc->second.size());
    // Y3: the terminal could not go online and asks for an offline approval.
    if (code == "Y3") return chip_->online_always ? cid_aac : cid_tc;
    // Issuer authentication is required of a card whose AIP says it supports it (byte 1 bit 3)
    // or whose CDOL2 asks for the issuer authentication data (91); a terminal sends no EXTERNAL
    // AUTHENTICATE to a card that claims neither, and such a card approves without it.
    const auto& app = chip_->applications[app_];
    const bool ia_supported = (!app.aip.empty() && (app.aip[0] & 0x04) != 0) || dol_has(app.cdol2, 0x91);
    const bool authenticated =
        issuer_auth_ == issuer_auth::ok || (!ia_supported && issuer_auth_ == issuer_auth::none);
    return arc_approved(arc->second) && authenticated ? cid_tc : cid_aac;
  }

  // EMV Book 3 6.5.5: P1 bits 8-7 the cryptogram asked for, bit 5 a CDA signature.
  bytes generate_ac(const apdu& a) {
    const std::uint8_t requested = a.p1 & 0xC0;
    if (a.p2 != 0 || requested == 0xC0 || (a.p1 & 0x2F) != 0) return sw_only(icc_sw::wrong_p1p2);
    if (selected_ != selection::application || !gpo_done_) return sw_only(icc_sw::conditions_not_satisfied);
    const chip_application& app = chip_->applications[app_];
    if (app.icc_mk_ac.empty() || app.cdol1.empty()) return sw_only(icc_sw::conditions_not_satisfied);
    // A second GENERATE AC only answers a first one that asked to go online.
    if (genac_count_ >= 2 || (genac_count_ == 1 && first_cid_ != cid_arqc))
      return sw_only(icc_sw::conditions_not_satisfied);
    const bool second = genac_count_ == 1;
    const bytes& dol = second ? app.cdol2 : app.cdol1;
    if (dol.empty()) return sw_only(icc_sw::conditions_not_satisfied);
    if (a.data.size() != dol_data_length(dol).value_or(0) || a.data.empty())
      return sw_only(icc_sw::wrong_length);
    const auto v = dol_values(dol, a.data);

    // Issuer authentication data in CDOL2 (tag 91) instead of EXTERNAL AUTHENTICATE.
    if (second && issuer_auth_ == issuer_auth::none) {
      auto ia = v.find(0x91);
      if (ia != v.end() && std::any_of(ia->second.begin(), ia->second.end(), [](auto b) { return b != 0; }))
        issuer_auth_ = check_issuer_auth(app, ia->second) ? issuer_auth::ok : issuer_auth::failed;
    }
    const std::uint8_t cid = second ? second_decision(requested, v) : first_decision(requested);
    const bytes cvr = second ? current_cvr(first_cid_, cid) : current_cvr(cid, std::nullopt);
    const bytes iad = make_iad(cvr);
    const emv::ac_inputs in = ac_inputs_for(app, v, cvr, iad);
    auto ac = emv::generate_ac(chip_->cvn, app.icc_mk_ac.view(), in);
    if (!ac) return sw_only(icc_sw::conditions_not_satisfied);

    if (second) {
      genac_count_ = 2;
      if (cid == cid_tc && issuer_auth_ == issuer_auth::ok) {
        offline_count_ = 0;
        chip_->last_online_atc = chip_->atc;
      }
    } else {
      genac_count_ = 1;
      first_cid_ = cid;
      cdol1_data_.assign(a.data.begin(), a.data.end());
      if (cid == cid_arqc) {
        arqc_ = *ac;
        arqc_inputs_ = in;
      }
      if (cid == cid_tc) ++offline_count_;
    }

    const bytes atc{static_cast<std::uint8_t>(chip_->atc >> 8), static_cast<std::uint8_t>(chip_->atc)};
    const bool cda = (a.p1 & 0x10) != 0 && chip_->oda == oda_kind::cda && cid != cid_aac;
    if (chip_->genac_format == 1 && !cda) {
      bytes v80{cid};
      v80.insert(v80.end(), atc.begin(), atc.end());
      v80.insert(v80.end(), ac->begin(), ac->end());
      v80.insert(v80.end(), iad.begin(), iad.end());
      return with_sw(tlv_encode(prim(0x80, std::move(v80))), icc_sw::ok);
    }
    if (!cda) {
      const tlv r{0x77, {}, {prim(0x9F27, {cid}), prim(0x9F36, atc), prim(0x9F26, *ac), prim(0x9F10, iad)}};
      return with_sw(tlv_encode(r), icc_sw::ok);
    }
    // CDA (EMV Book 2 6.6): the AC travels inside the signature, with a hash of the transaction
    // data: PDOL data, CDOL1 data, CDOL2 data (second GENERATE AC), the response TLVs but 9F4B.
    const std::vector<tlv> shown{prim(0x9F27, {cid}), prim(0x9F36, atc), prim(0x9F10, iad)};
    bytes hashed = pdol_data_;
    hashed.insert(hashed.end(), cdol1_data_.begin(), cdol1_data_.end());
    if (second) hashed.insert(hashed.end(), a.data.begin(), a.data.end());
    const bytes shown_tlvs = tlv_encode(shown);
    hashed.insert(hashed.end(), shown_tlvs.begin(), shown_tlvs.end());
    bytes dyn = icc_dynamic_number();
    dyn.push_back(cid);
    dyn.insert(dyn.end(), ac->begin(), ac->end());
    const bytes tdhc = sha1(hashed);
    dyn.insert(dyn.end(), tdhc.begin(), tdhc.end());
    auto sdad = sign_sdad(chip_->icc_key, dyn, in.un);
    if (!sdad) return sw_only(icc_sw::conditions_not_satisfied);
    const tlv r{0x77, {}, {shown[0], shown[1], prim(0x9F4B, std::move(*sdad)), shown[2]}};
    return with_sw(tlv_encode(r), icc_sw::ok);
  }

  // Length || ICC dynamic number, fresh for each signature.
  bytes icc_dynamic_number() {
    std::array<std::uint8_t, icc_dynamic_number_size> n{};
    random_(n);
    bytes out{static_cast<std::uint8_t>(n.size())};
    out.insert(out.end(), n.begin(), n.end());
    return out;
  }

  // qVSDC-like tap: the GPO answer carries the cryptogram (ARQC, or AAC for a declining card)
  // computed over the PDOL data; the kernel needs no GENERATE AC.
  bytes qvsdc_gpo(const chip_application& app) {
    const auto v = dol_values(app.pdol, pdol_data_);
    // A DDA card approves offline (TC with an fDDA signature) when the reader's TTQ (9F66 byte 2
    // bit 8) does not ask for an online cryptogram and its own offline counter allows it.
    const auto ttq = v.find(0x9F66);
    const bool offline_ok = chip_->oda == oda_kind::dda && ttq != v.end() && ttq->second.size() >= 2 &&
                            (ttq->second[1] & 0x80) == 0 && !chip_->online_always &&
                            offline_count_ < chip_->offline_limit;
    const std::uint8_t cid = chip_->decline_always ? cid_aac : offline_ok ? cid_tc : cid_arqc;
    const bytes cvr = current_cvr(cid, std::nullopt);
    const bytes iad = make_iad(cvr);
    const emv::ac_inputs in = ac_inputs_for(app, v, cvr, iad);
    auto ac = emv::generate_ac(chip_->cvn, app.icc_mk_ac.view(), in);
    if (!ac) return sw_only(icc_sw::conditions_not_satisfied);
    genac_count_ = 1;
    first_cid_ = cid;
    if (cid == cid_arqc) {
      arqc_ = *ac;
      arqc_inputs_ = in;
    }
    const bytes atc{static_cast<std::uint8_t>(chip_->atc >> 8), static_cast<std::uint8_t>(chip_->atc)};
    tlv r{0x77,
          {},
          {prim(0x82, app.aip), prim(0x94, app.afl), prim(0x9F36, atc), prim(0x9F27, {cid}),
           prim(0x9F26, *ac), prim(0x9F10, iad)}};
    if (!app.ctq.empty()) r.children.push_back(prim(0x9F6C, app.ctq));
    if (cid == cid_tc) {
      ++offline_count_;
      // fDDA (Visa): the SDAD signs the terminal's UN, amount and currency with the card
      // authentication related data 9F69 (version 01 and a card unpredictable number).
      std::array<std::uint8_t, 4> card_un{};
      random_(card_un);
      bytes cad{0x01};
      cad.insert(cad.end(), card_un.begin(), card_un.end());
      bytes tail;
      for (const std::uint32_t tag : {0x9F37u, 0x9F02u, 0x5F2Au}) {
        auto it = v.find(tag);
        if (it != v.end()) tail.insert(tail.end(), it->second.begin(), it->second.end());
      }
      tail.insert(tail.end(), cad.begin(), cad.end());
      auto sdad = sign_sdad(chip_->icc_key, icc_dynamic_number(), tail);
      if (!sdad) return sw_only(icc_sw::conditions_not_satisfied);
      r.children.push_back(prim(0x9F69, std::move(cad)));
      r.children.push_back(prim(0x9F4B, std::move(*sdad)));
    }
    return with_sw(tlv_encode(r), icc_sw::ok);
  }

  // DDA (EMV Book 2 6.5): SDAD over the ICC dynamic number and the terminal's DDOL data.
  bytes internal_authenticate(const apdu& a) {
    if (chip_->oda != oda_kind::dda && chip_->oda != oda_kind::cda) return sw_only(icc_sw::ins_not_supported);
    if (a.p1 != 0 || a.p2 != 0) return sw_only(icc_sw::wrong_p1p2);
    if (a.data.empty()) return sw_only(icc_sw::wrong_length);
    if (selected_ != selection::application) return sw_only(icc_sw::conditions_not_satisfied);
    auto sdad = sign_sdad(chip_->icc_key, icc_dynamic_number(), a.data);
    if (!sdad) return sw_only(icc_sw::conditions_not_satisfied);
    if (chip_->genac_format == 1) return with_sw(tlv_encode(prim(0x80, std::move(*sdad))), icc_sw::ok);
    return with_sw(tlv_encode(tlv{0x77, {}, {prim(0x9F4B, std::move(*sdad))}}), icc_sw::ok);
  }

  // The issuer authentication data (91) against this transaction's ARQC: ARPC || ARC (method 1,
  // 10 bytes) or ARPC || CSU || proprietary data (method 2, 8..16 bytes).
  bool check_issuer_auth(const chip_application& app, byte_view data) const {
    if (arqc_.empty()) return false;
    const auto& sp = emv::spec(chip_->cvn);
    if (sp.arpc != emv::arpc_kind::method2_sk) {
      if (data.size() != 10) return false;
      auto want =
          emv::generate_arpc(chip_->cvn, app.icc_mk_ac.view(), arqc_inputs_, arqc_, data.subspan(8, 2));
      return want && mac_equal(*want, data.first(8));
    }
    if (data.size() < 8 || data.size() > 16) return false;
    auto sk = emv::ac_session_key(chip_->cvn, app.icc_mk_ac.view(), arqc_inputs_);
    if (!sk) return false;
    auto want = emv::arpc_method2(sk->view(), arqc_, data.subspan(4, 4), data.subspan(8));
    return want && mac_equal(*want, data.first(4));
  }

  // EXTERNAL AUTHENTICATE (EMV Book 3 6.5.4): once, after an ARQC, before the second GENERATE AC.
  bytes external_authenticate(const apdu& a) {
    if (a.p1 != 0 || a.p2 != 0) return sw_only(icc_sw::wrong_p1p2);
    if (a.has_le || a.data.size() < 8 || a.data.size() > 16) return sw_only(icc_sw::wrong_length);
    if (selected_ != selection::application || genac_count_ != 1 || first_cid_ != cid_arqc ||
        issuer_auth_ != issuer_auth::none)
      return sw_only(icc_sw::conditions_not_satisfied);
    const chip_application& app = chip_->applications[app_];
    if (check_issuer_auth(app, a.data)) {
      issuer_auth_ = issuer_auth::ok;
      return sw_only(icc_sw::ok);
    }
    issuer_auth_ = issuer_auth::failed;
    return sw_only(icc_sw::authentication_failed);
  }

  // Issuer script commands (CLA 84, secure messaging for integrity): APPLICATION BLOCK (1E),
  // APPLICATION UNBLOCK (18), PIN CHANGE/UNBLOCK (24, P2 00: unblock only). The last 8 data
  // bytes are the MAC over CLA INS P1 P2 Lc || ATC || ARQC || command data, under the scheme's
  // script session key from the ICC MK-SMI (Visa: the SM key from the ATC; M/Chip: the common
  // session key with R = ARQC).
  bytes script_command(const apdu& a) {
    if (a.has_le) return sw_only(icc_sw::wrong_length);
    if (a.data.size() < 8) return sw_only(icc_sw::wrong_length);
    if (selected_ != selection::application || arqc_.empty())
      return sw_only(icc_sw::conditions_not_satisfied);
    chip_application& app = chip_->applications[app_];
    if (app.icc_mk_smi.empty()) return sw_only(icc_sw::conditions_not_satisfied);
    if (a.ins == 0x24 ? (a.p1 != 0 || a.p2 > 2) : (a.p1 != 0 || a.p2 != 0))
      return sw_only(icc_sw::wrong_p1p2);
    ++scripts_run_;
    const byte_view body = a.data.first(a.data.size() - 8);
    bytes mac_input{a.cla,
                    a.ins,
                    a.p1,
                    a.p2,
                    static_cast<std::uint8_t>(a.data.size()),
                    static_cast<std::uint8_t>(chip_->atc >> 8),
                    static_cast<std::uint8_t>(chip_->atc)};
    mac_input.insert(mac_input.end(), arqc_.begin(), arqc_.end());
    mac_input.insert(mac_input.end(), body.begin(), body.end());
    auto sk = is_visa(chip_->cvn) ? emv::visa_sm_session_key(app.icc_mk_smi.view(), chip_->atc)
                                  : emv::common_session_key(app.icc_mk_smi.view(), arqc_);
    if (!sk) return sw_only(icc_sw::conditions_not_satisfied);
    auto mac = emv::script_mac(sk->view(), mac_input);
    if (!mac || !mac_equal(*mac, a.data.last(8))) {
      script_failed_ = true;
      return sw_only(icc_sw::sm_data_incorrect);
    }
    switch (a.ins) {
      case 0x1E:
        app.blocked = true;
        break;
      case 0x18:
        app.blocked = false;
        break;
      default:  // 24
        // A new PIN travels enciphered under the MK-SMC, which these cards do not hold.
        if (a.p2 != 0 || !body.empty()) {
          script_failed_ = true;
          return sw_only(icc_sw::function_not_supported);
        }
        chip_->pin_tries_left = chip_->pin_try_limit;
        break;
    }
    return sw_only(icc_sw::ok);
  }

  icc_random random_;
  std::optional<chip_data> chip_;  // empty: no chip, or a mute one
  bool contactless_ = false;
  pkey_ptr key_;
  bool powered_ = false;
  selection selected_ = selection::none;
  std::size_t app_ = 0;
  bool gpo_done_ = false;
  std::optional<std::array<std::uint8_t, challenge_size>> challenge_;
  bytes pending_;  // T=0: data waiting for GET RESPONSE
  // One transaction (cleared by a new selection or power cycle):
  enum class issuer_auth { none, ok, failed };
  int genac_count_ = 0;
  std::uint8_t first_cid_ = cid_aac;
  bytes arqc_;                  // the first GENERATE AC's ARQC (ARPC and script MACs use it)
  emv::ac_inputs arqc_inputs_;  // and what it was computed over
  bytes pdol_data_, cdol1_data_;
  issuer_auth issuer_auth_ = issuer_auth::none;
  bool pin_performed_ = false, pin_failed_ = false;
  int scripts_run_ = 0;
  bool script_failed_ = false;
  bytes cvr_;
  // The card's life: consecutive offline transactions since the last online one.
  int offline_count_ = 0;
};

}  // namespace

std::unique_ptr<icc> make_icc_sim(const card_profile& p, icc_random random) {
  return std::make_unique<icc_sim>(p, std::move(random));
}

std::unique_ptr<icc> make_icc_sim(const card_profile& p) {
  return make_icc_sim(p, [](std::span<std::uint8_t> out) {
    const secure_bytes r = random_bytes(out.size());
    std::copy(r.view().begin(), r.view().end(), out.begin());
  });
}

}  // namespace eftd::padsim
