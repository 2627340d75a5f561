#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "eftd/core/crypto.hpp"
#include "eftd/core/tlv.hpp"
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
    if (a->cla != 0x00 && a->cla != 0x80) {
      pending_.clear();
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
        return a->cla == 0x80 ? sw_only(icc_sw::conditions_not_satisfied)
                              : sw_only(icc_sw::cla_not_supported);
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
      if (!key_) return sw_only(icc_sw::function_not_supported);
      const auto modulus = static_cast<std::size_t>(EVP_PKEY_get_size(key_.get()));
      if (a.data.size() != modulus) return sw_only(icc_sw::wrong_length);
      if (!challenge) return sw_only(icc_sw::conditions_not_satisfied);
      auto plain = rsa_recover(a.data);
      // EMV Book 2 7.1: 7F || PIN block (8) || ICC unpredictable number (8) || random pad.
      if (!plain || plain->size() != modulus || plain->view()[0] != 0x7F ||
          CRYPTO_memcmp(plain->view().data() + 9, challenge->data(), challenge_size) != 0 ||
          !decode_format2(plain->view().subspan(1, 8), pin))
        return sw_only(icc_sw::wrong_data);
    }

    if (pin.size() == chip_->pin.size() &&
        CRYPTO_memcmp(pin.view().data(), chip_->pin.view().data(), pin.size()) == 0) {
      chip_->pin_tries_left = chip_->pin_try_limit;
      return sw_only(icc_sw::ok);
    }
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
