#include "eftd/padsim/card_profile.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "eftd/core/tlv.hpp"

namespace eftd::padsim {

namespace {

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

void wipe(std::string& s) {
  secure_wipe(s.data(), s.size());
}
void wipe(bytes& b) {
  if (!b.empty()) secure_wipe(b.data(), b.size());
}

std::string_view text_of(const secure_bytes& s) {
  return {reinterpret_cast<const char*>(s.view().data()), s.size()};
}

// Packs decimal digits (and 'D', the track 2 separator) into nibbles, two per byte.
// right_pad_f: compressed numeric (cn: PAN, track 2 equivalent) pads an odd tail with F;
// otherwise numeric (n: dates, codes) pads on the left with 0.
bytes nibbles(std::string_view digits, bool right_pad_f) {
  std::string s(digits);
  if (s.size() % 2 != 0) {
    if (right_pad_f)
      s.push_back('F');
    else
      s.insert(s.begin(), '0');
  }
  bytes out;
  out.reserve(s.size() / 2);
  auto val = [](char c) -> std::uint8_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    return static_cast<std::uint8_t>(c - 'A' + 10);
  };
  for (std::size_t i = 0; i < s.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>((val(s[i]) << 4) | val(s[i + 1])));
  wipe(s);
  return out;
}

bool valid_yymmdd(std::string_view d) {
  if (d.size() != 6 || !all_digits(d)) return false;
  const int yy = (d[0] - '0') * 10 + (d[1] - '0');
  const int mm = (d[2] - '0') * 10 + (d[3] - '0');
  const int dd = (d[4] - '0') * 10 + (d[5] - '0');
  if (mm < 1 || mm > 12 || dd < 1) return false;
  static constexpr int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mm == 2 && dd == 29) return yy % 4 == 0;  // EMV dates are 2000..2099 in practice
  return dd <= days[mm - 1];
}

// One TOML table read with its dotted path ("card", "chip.application[2]"), so every
// message names where the problem is, and never what the value was.
class section {
 public:
  section(std::string_view source, const toml::table& t, std::string path)
      : source_(source), t_(t), path_(std::move(path)) {}

  const toml::table& table() const { return t_; }
  const std::string& path() const { return path_; }
  bool has(std::string_view key) const { return t_.contains(key); }

  error bad(std::string_view key, std::string_view why) const {
    return make_error("padsim.profile_bad_value", fmt::format("{}: {}.{}: {}", source_, path_, key, why));
  }
  error missing(std::string_view key) const {
    return make_error("padsim.profile_missing_key",
                      fmt::format("{}: {}.{} is required", source_, path_, key));
  }

  status only(std::initializer_list<std::string_view> known) const {
    for (const auto& [k, v] : t_) {
      (void)v;
      if (std::find(known.begin(), known.end(), k.str()) == known.end())
        return make_error("padsim.profile_unknown_key",
                          fmt::format("{}: unknown key {}.{}", source_, path_, k.str()));
    }
    return {};
  }

  result<std::optional<std::string>> opt_string(std::string_view key) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return std::optional<std::string>{};
    const auto* s = n->as_string();
    if (s == nullptr) return bad(key, "must be a string");
    return std::optional<std::string>(s->get());
  }
  result<std::string> req_string(std::string_view key) const {
    auto s = opt_string(key);
    if (!s) return s.err();
    if (!s->has_value()) return missing(key);
    return std::move(**s);
  }
  result<std::optional<bool>> opt_bool(std::string_view key) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return std::optional<bool>{};
    const auto* b = n->as_boolean();
    if (b == nullptr) return bad(key, "must be true or false");
    return std::optional<bool>(b->get());
  }
  result<std::optional<std::int64_t>> opt_int(std::string_view key, std::int64_t lo, std::int64_t hi) const {
    const toml::node* n = t_.get(key);
    if (n == nullptr) return std::optional<std::int64_t>{};
    const auto* i = n->as_integer();
    if (i == nullptr) return bad(key, "must be an integer");
    if (i->get() < lo || i->get() > hi) return bad(key, fmt::format("must be {}..{}", lo, hi));
    return std::optional<std::int64_t>(i->get());
  }
  // Hex of min..max bytes (even digit count, no separators).
  result<std::optional<bytes>> opt_hex(std::string_view key, std::size_t min, std::size_t max) const {
    auto s = opt_string(key);
    if (!s) return s.err();
    if (!s->has_value()) return std::optional<bytes>{};
    auto b = from_hex(**s);
    wipe(**s);
    if (!b) return bad(key, "must be hex digits (an even number, no separators)");
    if (b->size() < min || b->size() > max) {
      wipe(*b);
      return bad(key, min == max ? fmt::format("must be {} bytes", min)
                                 : fmt::format("must be {}..{} bytes", min, max));
    }
    return std::optional<bytes>(std::move(*b));
  }
  // A digit string of min..max characters.
  result<std::optional<std::string>> opt_digits(std::string_view key, std::size_t min,
                                                std::size_t max) const {
    auto s = opt_string(key);
    if (!s) return s.err();
    if (!s->has_value()) return s;
    if ((*s)->size() < min || (*s)->size() > max || !all_digits(**s)) {
      wipe(**s);
      return bad(key, min == max ? fmt::format("must be {} digits", min)
                                 : fmt::format("must be {}..{} digits", min, max));
    }
    return s;
  }

 private:
  std::string_view source_;
  const toml::table& t_;
  std::string path_;
};

// The tables of an array of tables ("[[chip.application]]"); a plain value is an error.
result<std::vector<const toml::table*>> table_array(const section& s, std::string_view key) {
  std::vector<const toml::table*> out;
  const toml::node* n = s.table().get(key);
  if (n == nullptr) return out;
  const auto* arr = n->as_array();
  if (arr == nullptr) return s.bad(key, fmt::format("must be an array of tables ([[{}.{}]])", s.path(), key));
  for (const auto& e : *arr) {
    const auto* t = e.as_table();
    if (t == nullptr) return s.bad(key, fmt::format("must be an array of tables ([[{}.{}]])", s.path(), key));
    out.push_back(t);
  }
  return out;
}

// AFL entries (EMV Book 3 10.2): SFI<<3 | 000, first record >= 1, last >= first, and no more
// records for offline data authentication than the entry covers.
bool valid_afl(byte_view afl) {
  if (afl.empty() || afl.size() % 4 != 0) return false;
  for (std::size_t i = 0; i < afl.size(); i += 4) {
    const std::uint8_t sfi = afl[i] >> 3;
    if ((afl[i] & 0x07) != 0 || sfi < 1 || sfi > 30) return false;
    if (afl[i + 1] < 1 || afl[i + 2] < afl[i + 1]) return false;
    if (afl[i + 3] > afl[i + 2] - afl[i + 1] + 1) return false;
  }
  return true;
}

// The AFL inside a configured GPO answer: format 1 (80: AIP || AFL) or format 2 (77 {82, 94}).
std::optional<bytes> afl_of_gpo_response(byte_view gpo) {
  auto objs = tlv_decode(gpo);
  if (!objs || objs->size() != 1) return std::nullopt;
  const tlv& top = objs->front();
  if (top.tag == 0x80) {
    if (top.value.size() < 6 || (top.value.size() - 2) % 4 != 0) return std::nullopt;
    return bytes(top.value.begin() + 2, top.value.end());
  }
  if (top.tag == 0x77) {
    const tlv* aip = tlv_find(top.children, 0x82, false);
    const tlv* afl = tlv_find(top.children, 0x94, false);
    if (aip == nullptr || aip->value.size() != 2 || afl == nullptr) return std::nullopt;
    return afl->value;
  }
  return std::nullopt;
}

// The record that holds what a terminal reads from a card: see card_profile.hpp.
struct record_fields {
  std::string_view pan, expiry, effective, pan_sequence, service_code, issuer_country;
  std::string_view track2;  // the card's stripe, used for 57 when its PAN matches
  bytes cvm_list;
  bool sda_tag_list = false;  // 9F4A 82: the AIP is part of the static data (ODA cards)
};

secure_bytes build_record(const record_fields& f) {
  std::string t2eq;
  const auto sep = f.track2.find('=');
  if (sep != std::string_view::npos && f.track2.substr(0, sep) == f.pan) {
    t2eq = std::string(f.track2);
    t2eq[sep] = 'D';
  } else {
    t2eq = fmt::format("{}D{}{}0000000000", f.pan, f.expiry.substr(0, 4), f.service_code);
  }
  static const bytes cdol1 = *from_hex("9F02069F03069F1A0295055F2A029A039C019F3704");
  bytes cdol2 = *from_hex("8A02");
  cdol2.insert(cdol2.end(), cdol1.begin(), cdol1.end());

  tlv rec{0x70, {}, {}};
  auto add = [&](std::uint32_t tag, bytes v) { rec.children.push_back(tlv{tag, std::move(v), {}}); };
  add(0x57, nibbles(t2eq, true));
  add(0x5A, nibbles(f.pan, true));
  add(0x5F24, nibbles(f.expiry, false));
  if (!f.effective.empty()) add(0x5F25, nibbles(f.effective, false));
  add(0x5F28, nibbles(f.issuer_country, false));
  add(0x5F30, nibbles(f.service_code, false));
  add(0x5F34, nibbles(f.pan_sequence, false));
  add(0x9F07, {0xFF, 0x00});
  add(0x9F08, {0x00, 0x02});
  add(0x8C, cdol1);
  add(0x8D, cdol2);
  add(0x8E, f.cvm_list);
  add(0x9F0D, *from_hex("B8483C9800"));
  add(0x9F0E, *from_hex("0010800000"));
  add(0x9F0F, *from_hex("B8483C9800"));
  if (f.sda_tag_list) add(0x9F4A, {0x82});
  bytes enc = tlv_encode(rec);
  secure_bytes out(enc);
  wipe(enc);
  wipe(t2eq);
  for (auto& c : rec.children) wipe(c.value);
  return out;
}

struct key_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

result<secure_bytes> read_key_file(std::string_view source, std::string_view key, const std::string& rel,
                                   const std::filesystem::path& base_dir) {
  const std::filesystem::path file = base_dir / rel;
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return make_error("padsim.profile_io",
                      fmt::format("{}: chip.{}: cannot open {}", source, key, file.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  secure_bytes kept(as_bytes(pem));
  wipe(pem);
  return kept;
}

// Reads the ICC PIN encipherment private key and checks it is one a card could hold
// (RSA, 512..1984 bits: the enciphered PIN must fit one short VERIFY command).
result<secure_bytes> load_icc_pin_key(const section& chip, std::string_view source, const std::string& rel,
                                      const std::filesystem::path& base_dir) {
  auto read = read_key_file(source, "icc_pin_key", rel, base_dir);
  if (!read) return read.err();
  secure_bytes kept = std::move(*read);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(kept.view().data(), static_cast<int>(kept.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, key_deleter> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA)
    return chip.bad("icc_pin_key", "must name a PEM RSA private key");
  const int bits = EVP_PKEY_get_bits(key.get());
  if (bits < 512 || bits > 1984) return chip.bad("icc_pin_key", "RSA key must be 512..1984 bits");
  return kept;
}

// What [chip] says about cryptograms and ODA, read before the applications that use it.
struct crypto_setup {
  secure_bytes issuer_mk, icc_mk, issuer_mk_smi, icc_mk_smi;
  emv::mk_option mk_option = emv::mk_option::a;
  oda_kind oda = oda_kind::none;
  rsa_private_key ca, issuer;
  std::uint8_t capk_index = 0xE1;
  bytes cert_expiry{0x12, 0x30};
  bytes dac{0xDA, 0xC0};
};

// The value of a record template 70 (what SFI 1..10 records give the static data).
bytes record_value(byte_view rec) {
  auto objs = tlv_decode(rec);
  if (!objs || objs->empty()) return {};
  bytes v = std::move(objs->front().value);
  for (auto& c : objs->front().children) wipe(c.value);
  return v;
}

// The per-application key: the ICC MK itself, or derived from the issuer MK with the PAN and
// PAN sequence number. Empty when the profile gives neither.
result<secure_bytes> application_key(const section& a, const secure_bytes& issuer_mk,
                                     const secure_bytes& icc_mk, std::string_view key_name,
                                     emv::mk_option option, std::string_view pan, std::string_view psn) {
  if (!icc_mk.empty()) return icc_mk;
  if (issuer_mk.empty()) return secure_bytes{};
  auto k = emv::derive_icc_mk(issuer_mk.view(), pan, psn, option);
  if (!k) return a.bad(key_name, fmt::format("ICC master key derivation failed ({})", k.err().code));
  return std::move(*k);
}

// The certificate records (SFI 2 records 1 and 2) of an ODA card: see card_profile.hpp.
status add_oda_records(const section& a, const crypto_setup& cs, const rsa_private_key& icc_key,
                       chip_application& app, std::string_view pan, std::string_view expiry_yymmdd) {
  bytes static_data = record_value(app.records.front().data.view());
  static_data.insert(static_data.end(), app.aip.begin(), app.aip.end());
  const std::string issuer_digits = std::string(pan.substr(0, 6));
  bytes issuer_id = nibbles(issuer_digits, true);
  issuer_id.push_back(0xFF);
  const std::string mmyy = std::string(expiry_yymmdd.substr(2, 2)) + std::string(expiry_yymmdd.substr(0, 2));
  static const bytes serial{0x00, 0x00, 0x01};
  auto issuer_cert = mint_issuer_certificate(cs.ca, cs.issuer, issuer_id, cs.cert_expiry, serial);
  if (!issuer_cert)
    return a.bad("ca_key", fmt::format("cannot mint the issuer certificate ({})", issuer_cert.err().code));

  tlv keys{0x70, {}, {}};
  auto add = [](tlv& rec, std::uint32_t tag, bytes v) { rec.children.push_back(tlv{tag, std::move(v), {}}); };
  add(keys, 0x8F, {cs.capk_index});
  add(keys, 0x90, issuer_cert->certificate);
  if (!issuer_cert->remainder.empty()) add(keys, 0x92, issuer_cert->remainder);
  add(keys, 0x9F32, issuer_cert->exponent);

  tlv icc{0x70, {}, {}};
  if (cs.oda == oda_kind::sda) {
    auto ssad = mint_ssad(cs.issuer, cs.dac, static_data);
    if (!ssad) return a.bad("issuer_key", fmt::format("cannot sign the static data ({})", ssad.err().code));
    add(icc, 0x93, std::move(*ssad));
  } else {
    std::string pan_f(pan);
    pan_f.resize(20, 'F');
    const bytes pan10 = nibbles(pan_f, true);
    wipe(pan_f);
    auto icc_cert =
        mint_icc_certificate(cs.issuer, icc_key, pan10, nibbles(mmyy, false), serial, static_data);
    if (!icc_cert)
      return a.bad("icc_key", fmt::format("cannot mint the ICC certificate ({})", icc_cert.err().code));
    add(icc, 0x9F46, icc_cert->certificate);
    add(icc, 0x9F47, icc_cert->exponent);
    if (!icc_cert->remainder.empty()) add(icc, 0x9F48, icc_cert->remainder);
    add(icc, 0x9F49, {0x9F, 0x37, 0x04});
  }
  wipe(static_data);
  std::uint8_t number = 1;
  for (const tlv* rec : {&keys, &icc}) {
    chip_record r;
    r.sfi = 2;
    r.number = number++;
    r.data = secure_bytes(tlv_encode(*rec));
    if (r.data.size() > 254)
      return a.bad("oda", "certificate record longer than 254 bytes: use smaller keys");
    app.records.push_back(std::move(r));
  }
  return {};
}

result<chip_application> parse_application(const section& a, const chip_data& chip, bool contactless,
                                           std::string_view track2, std::string_view source,
                                           const crypto_setup& cs) {
  if (auto st = a.only({"aid", "label", "priority", "confirm", "blocked", "pan", "expiry", "effective",
                        "pan_sequence", "service_code", "issuer_country", "aip", "afl", "gpo_response",
                        "pdol", "cvm_list", "record", "ctq"});
      !st)
    return st.err();
  chip_application app;

  // qVSDC card transaction qualifiers (9F6C) the GPO answer carries.
  auto ctq = a.opt_hex("ctq", 2, 2);
  if (!ctq) return ctq.err();
  if (ctq->has_value()) {
    if (!contactless || !chip.qvsdc) return a.bad("ctq", "qVSDC contactless cards only (chip.qvsdc = true)");
    app.ctq = std::move(**ctq);
  }

  auto aid = a.opt_hex("aid", 5, 16);
  if (!aid) return aid.err();
  if (!aid->has_value()) return a.missing("aid");
  app.aid = std::move(**aid);

  auto label = a.req_string("label");
  if (!label) return label.err();
  if (label->empty() || label->size() > 16 ||
      !std::all_of(label->begin(), label->end(), [](char c) { return c >= 0x20 && c <= 0x7E; }))
    return a.bad("label", "must be 1..16 printable ASCII characters");
  app.label = std::move(*label);

  auto priority = a.opt_int("priority", 1, 15);
  if (!priority) return priority.err();
  auto confirm = a.opt_bool("confirm");
  if (!confirm) return confirm.err();
  if (priority->has_value()) app.priority = static_cast<std::uint8_t>(**priority);
  if (confirm->value_or(false)) {
    if (app.priority == 0) return a.bad("confirm", "needs a priority (both live in tag 87)");
    app.priority |= 0x80;
  }
  auto blocked = a.opt_bool("blocked");
  if (!blocked) return blocked.err();
  app.blocked = blocked->value_or(false);

  auto pan = a.opt_digits("pan", 12, 19);
  if (!pan) return pan.err();
  if (!pan->has_value()) return a.missing("pan");
  if (!luhn_valid(**pan)) {
    wipe(**pan);
    return a.bad("pan", "fails the Luhn check");
  }
  app.pan = secure_bytes(as_bytes(**pan));
  wipe(**pan);

  auto expiry = a.opt_string("expiry");
  if (!expiry) return expiry.err();
  if (!expiry->has_value()) return a.missing("expiry");
  if (!valid_yymmdd(**expiry)) return a.bad("expiry", "must be a date YYMMDD");
  auto effective = a.opt_string("effective");
  if (!effective) return effective.err();
  if (effective->has_value() && !valid_yymmdd(**effective))
    return a.bad("effective", "must be a date YYMMDD");
  auto pan_seq = a.opt_digits("pan_sequence", 2, 2);
  if (!pan_seq) return pan_seq.err();
  auto service_code = a.opt_digits("service_code", 3, 3);
  if (!service_code) return service_code.err();
  auto country = a.opt_digits("issuer_country", 3, 3);
  if (!country) return country.err();

  auto gpo = a.opt_hex("gpo_response", 6, 256);
  if (!gpo) return gpo.err();
  auto aip = a.opt_hex("aip", 2, 2);
  if (!aip) return aip.err();
  auto afl = a.opt_hex("afl", 4, 252);
  if (!afl) return afl.err();
  if (afl->has_value() && !valid_afl(**afl))
    return a.bad("afl", "entries must be SFI<<3 (1..30), first >= 1, last >= first, ODA count <= records");
  auto recs = table_array(a, "record");
  if (!recs) return recs.err();
  if (cs.oda != oda_kind::none && (gpo->has_value() || afl->has_value() || !recs->empty()))
    return a.bad(gpo->has_value()   ? "gpo_response"
                 : afl->has_value() ? "afl"
                                    : "record",
                 "an ODA card's records and AFL are built from the fields");
  if (gpo->has_value()) {
    if (aip->has_value() || afl->has_value())
      return a.bad("gpo_response", "give either gpo_response or aip/afl");
    auto inner = afl_of_gpo_response(**gpo);
    if (!inner || !valid_afl(*inner))
      return a.bad("gpo_response", "must be one template 80 (AIP, AFL) or 77 with 82 and a valid 94");
    app.gpo_response = std::move(**gpo);
    app.afl = std::move(*inner);
    auto top = tlv_decode(app.gpo_response);
    if (top->front().tag == 0x80)
      app.aip.assign(top->front().value.begin(), top->front().value.begin() + 2);
    else
      app.aip = tlv_find(top->front().children, 0x82, false)->value;
  } else {
    bytes aip_v = aip->value_or(contactless ? bytes{0x18, 0x80} : bytes{0x18, 0x00});
    if (!aip->has_value()) {
      if (cs.oda == oda_kind::sda) aip_v[0] |= 0x40;
      if (cs.oda == oda_kind::dda) aip_v[0] |= 0x20;
      if (cs.oda == oda_kind::cda) aip_v[0] |= 0x21;
    }
    app.aip = aip_v;
    const bytes plain_afl{0x08, 0x01, 0x01, 0x00};
    const bytes oda_afl{0x08, 0x01, 0x01, 0x01, 0x10, 0x01, 0x02, 0x00};
    app.afl = afl->value_or(cs.oda == oda_kind::none ? plain_afl : oda_afl);
    const tlv resp{0x77, {}, {tlv{0x82, aip_v, {}}, tlv{0x94, app.afl, {}}}};
    app.gpo_response = tlv_encode(resp);
    if (app.gpo_response.size() > 256) return a.bad("afl", "GPO answer longer than 256 bytes");
  }

  auto pdol = a.opt_hex("pdol", 2, 252);
  if (!pdol) return pdol.err();
  if (pdol->has_value()) {
    const auto n = dol_data_length(**pdol);
    if (!n || *n > 252)
      return a.bad("pdol", "must be a DOL (tag and length pairs) asking for at most 252 bytes");
    app.pdol = std::move(**pdol);
  }

  auto cvm = a.opt_hex("cvm_list", 10, 252);
  if (!cvm) return cvm.err();
  if (cvm->has_value() && (*cvm)->size() % 2 != 0)
    return a.bad("cvm_list", "must be amounts X and Y (8 bytes) and 2-byte rules");

  std::set<std::pair<int, int>> seen;
  for (std::size_t i = 0; i < recs->size(); ++i) {
    const section r(source, *(*recs)[i], fmt::format("{}.record[{}]", a.path(), i + 1));
    if (auto st = r.only({"sfi", "number", "data"}); !st) return st.err();
    auto sfi = r.opt_int("sfi", 1, 30);
    if (!sfi) return sfi.err();
    if (!sfi->has_value()) return r.missing("sfi");
    auto number = r.opt_int("number", 1, 255);
    if (!number) return number.err();
    if (!number->has_value()) return r.missing("number");
    auto data = r.opt_hex("data", 2, 254);
    if (!data) return data.err();
    if (!data->has_value()) return r.missing("data");
    auto objs = tlv_decode(**data);
    const bool one_70 = objs && objs->size() == 1 && objs->front().tag == 0x70 && (**data)[0] == 0x70;
    if (objs)
      for (auto& o : *objs) wipe(o.value);
    if (!one_70) {
      wipe(**data);
      return r.bad("data", "must be one BER-TLV record template 70");
    }
    if (!seen.emplace(static_cast<int>(**sfi), static_cast<int>(**number)).second)
      return r.bad("number", "this SFI and record number are given twice");
    chip_record rec;
    rec.sfi = static_cast<std::uint8_t>(**sfi);
    rec.number = static_cast<std::uint8_t>(**number);
    rec.data = secure_bytes(**data);
    wipe(**data);
    app.records.push_back(std::move(rec));
  }

  if (app.records.empty()) {
    record_fields f;
    std::string pan_s(text_of(app.pan));
    f.pan = pan_s;
    f.expiry = **expiry;
    f.effective = effective->has_value() ? std::string_view(**effective) : std::string_view{};
    const std::string seq = pan_seq->value_or("00");
    const std::string sc = service_code->value_or("201");
    const std::string cc = country->value_or("616");
    f.pan_sequence = seq;
    f.service_code = sc;
    f.issuer_country = cc;
    f.track2 = track2;
    f.sda_tag_list = cs.oda != oda_kind::none;
    if (cvm->has_value()) {
      f.cvm_list = **cvm;
    } else {
      f.cvm_list = bytes(8, 0x00);
      const bytes rules = contactless ? bytes{0x42, 0x03, 0x1F, 0x03}
                          : !chip.icc_pin_key_pem.empty()
                              ? bytes{0x44, 0x03, 0x41, 0x03, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x00}
                              : bytes{0x41, 0x03, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x00};
      f.cvm_list.insert(f.cvm_list.end(), rules.begin(), rules.end());
    }
    chip_record rec;
    rec.sfi = 1;
    rec.number = 1;
    rec.data = build_record(f);
    if (rec.data.size() > 254) return a.bad("record", "the built record is longer than 254 bytes");
    app.records.push_back(std::move(rec));
    if (cs.oda != oda_kind::none) {
      auto st = add_oda_records(a, cs, chip.icc_key, app, pan_s, **expiry);
      if (!st) {
        wipe(pan_s);
        return st.err();
      }
    }
    wipe(pan_s);
  } else if (cvm->has_value()) {
    return a.bad("cvm_list", "only used when the records are built from the fields (no [[record]])");
  }

  // CDOL1 and CDOL2 as the card keeps them (from whichever record holds them).
  for (const auto& r : app.records) {
    auto objs = tlv_decode(r.data.view());
    if (!objs || objs->empty()) continue;
    if (const tlv* c1 = tlv_find(objs->front().children, 0x8C, false)) app.cdol1 = c1->value;
    if (const tlv* c2 = tlv_find(objs->front().children, 0x8D, false)) app.cdol2 = c2->value;
    wipe(objs->front().value);  // the raw record: it holds the PAN
    for (auto& c : objs->front().children) wipe(c.value);
  }
  {
    std::string pan_s(text_of(app.pan));
    const std::string psn = pan_seq->value_or("00");
    auto ac = application_key(a, cs.issuer_mk, cs.icc_mk, "issuer_mk", cs.mk_option, pan_s, psn);
    auto smi = application_key(a, cs.issuer_mk_smi, cs.icc_mk_smi, "issuer_mk_smi", cs.mk_option, pan_s, psn);
    wipe(pan_s);
    if (!ac) return ac.err();
    if (!smi) return smi.err();
    app.icc_mk_ac = std::move(*ac);
    app.icc_mk_smi = std::move(*smi);
  }

  for (std::size_t i = 0; i < app.afl.size(); i += 4) {
    const std::uint8_t sfi = app.afl[i] >> 3;
    for (int n = app.afl[i + 1]; n <= app.afl[i + 2]; ++n) {
      const bool held = std::any_of(app.records.begin(), app.records.end(),
                                    [&](const chip_record& r) { return r.sfi == sfi && r.number == n; });
      if (!held)
        return a.bad(gpo->has_value() ? "gpo_response" : "afl",
                     fmt::format("names SFI {} record {}, which the profile does not hold", sfi, n));
    }
  }
  return app;
}

result<rsa_private_key> load_rsa_key(const section& c, std::string_view key, std::string_view source,
                                     const std::filesystem::path& base_dir) {
  auto rel = c.opt_string(key);
  if (!rel) return rel.err();
  if (!rel->has_value()) return c.missing(key);
  auto pem = read_key_file(source, key, **rel, base_dir);
  if (!pem) return pem.err();
  auto k = rsa_private_key::from_pem(pem->view());
  if (!k) return c.bad(key, "must name a PEM RSA private key");
  if (k->size() < 64 || k->size() > 248) return c.bad(key, "RSA key must be 512..1984 bits");
  return std::move(*k);
}

// [chip] cryptogram and ODA settings (card_profile.hpp); keys go to `cs`, the rest to `chip`.
status parse_crypto(const section& c, chip_data& chip, crypto_setup& cs, bool contactless,
                    const toml::table* first_app, std::string_view source,
                    const std::filesystem::path& base_dir) {
  struct key_pair {
    const char* issuer;
    const char* icc;
    secure_bytes* issuer_out;
    secure_bytes* icc_out;
  };
  for (const key_pair& kp : {key_pair{"issuer_mk", "icc_mk", &cs.issuer_mk, &cs.icc_mk},
                             key_pair{"issuer_mk_smi", "icc_mk_smi", &cs.issuer_mk_smi, &cs.icc_mk_smi}}) {
    auto issuer = c.opt_hex(kp.issuer, 16, 16);
    if (!issuer) return issuer.err();
    auto icc = c.opt_hex(kp.icc, 16, 16);
    if (!icc) return icc.err();
    if (issuer->has_value() && icc->has_value()) {
      wipe(**issuer);
      wipe(**icc);
      return c.bad(kp.icc, fmt::format("give either {} or {}", kp.issuer, kp.icc));
    }
    if (issuer->has_value()) {
      *kp.issuer_out = secure_bytes(**issuer);
      wipe(**issuer);
    }
    if (icc->has_value()) {
      *kp.icc_out = secure_bytes(**icc);
      wipe(**icc);
    }
  }

  auto option = c.opt_string("mk_option");
  if (!option) return option.err();
  if (option->has_value()) {
    if (**option == "a")
      cs.mk_option = emv::mk_option::a;
    else if (**option == "b")
      cs.mk_option = emv::mk_option::b;
    else
      return c.bad("mk_option", "must be \"a\" or \"b\"");
  }

  // Default CVN by the first application's RID: Mastercard M/Chip CVN 16, else Visa CVN 18.
  bool mastercard = false;
  if (const auto* aid = first_app->get_as<std::string>("aid")) {
    static const bytes mastercard_rid{0xA0, 0x00, 0x00, 0x00, 0x04};
    const auto b = from_hex(aid->get());
    mastercard = b && b->size() >= 5 && std::equal(mastercard_rid.begin(), mastercard_rid.end(), b->begin());
  }
  auto cvn = c.opt_string("cvn");
  if (!cvn) return cvn.err();
  const std::string cvn_s = cvn->value_or(mastercard ? "mc16" : "visa18");
  if (cvn_s == "visa10")
    chip.cvn = emv::cvn::visa10;
  else if (cvn_s == "visa18")
    chip.cvn = emv::cvn::visa18;
  else if (cvn_s == "mc16")
    chip.cvn = emv::cvn::mc16;
  else if (cvn_s == "mc20")
    chip.cvn = emv::cvn::mc20;
  else
    return c.bad("cvn", "must be visa10, visa18, mc16 or mc20");
  const bool visa = chip.cvn == emv::cvn::visa10 || chip.cvn == emv::cvn::visa18;
  auto cvr = c.opt_hex("cvr", visa ? 4 : 6, visa ? 4 : 6);
  if (!cvr) return cvr.err();
  chip.cvr = cvr->value_or(visa ? bytes{0x03, 0x00, 0x00, 0x00} : bytes(6, 0x00));
  if (visa && chip.cvr[0] != 0x03) return c.bad("cvr", "a Visa CVR starts with its length, 03");

  auto format = c.opt_int("genac_format", 1, 2);
  if (!format) return format.err();
  chip.genac_format = static_cast<int>(format->value_or(2));
  for (auto [key, out] :
       {std::pair{"online_always", &chip.online_always}, std::pair{"decline_always", &chip.decline_always},
        std::pair{"qvsdc", &chip.qvsdc}}) {
    auto b = c.opt_bool(key);
    if (!b) return b.err();
    *out = b->value_or(false);
  }
  if (chip.qvsdc && !contactless) return c.bad("qvsdc", "contactless cards only");
  auto limit = c.opt_int("offline_limit", 0, 255);
  if (!limit) return limit.err();
  chip.offline_limit = static_cast<std::uint8_t>(limit->value_or(3));

  auto oda = c.opt_string("oda");
  if (!oda) return oda.err();
  const std::string oda_s = oda->value_or("none");
  if (oda_s == "none")
    cs.oda = oda_kind::none;
  else if (oda_s == "sda")
    cs.oda = oda_kind::sda;
  else if (oda_s == "dda")
    cs.oda = oda_kind::dda;
  else if (oda_s == "cda")
    cs.oda = oda_kind::cda;
  else
    return c.bad("oda", "must be none, sda, dda or cda");
  chip.oda = cs.oda;
  if (cs.oda == oda_kind::cda && chip.genac_format != 2)
    return c.bad("genac_format", "CDA answers in format 2 (77)");

  auto index = c.opt_int("capk_index", 0, 255);
  if (!index) return index.err();
  cs.capk_index = static_cast<std::uint8_t>(index->value_or(0xE1));
  auto expiry = c.opt_digits("cert_expiry", 4, 4);
  if (!expiry) return expiry.err();
  if (expiry->has_value()) {
    const int mm = std::stoi((*expiry)->substr(0, 2));
    if (mm < 1 || mm > 12) return c.bad("cert_expiry", "must be MMYY");
    cs.cert_expiry = nibbles(**expiry, false);
  }
  auto dac = c.opt_hex("dac", 2, 2);
  if (!dac) return dac.err();
  if (dac->has_value()) cs.dac = **dac;

  if (cs.oda == oda_kind::none) {
    for (const char* k : {"ca_key", "issuer_key", "icc_key", "capk_index", "cert_expiry", "dac"})
      if (c.has(k)) return c.bad(k, "only with oda = sda, dda or cda");
    return {};
  }
  auto ca = load_rsa_key(c, "ca_key", source, base_dir);
  if (!ca) return ca.err();
  cs.ca = std::move(*ca);
  auto issuer = load_rsa_key(c, "issuer_key", source, base_dir);
  if (!issuer) return issuer.err();
  cs.issuer = std::move(*issuer);
  if (cs.oda == oda_kind::sda) {
    if (c.has("icc_key")) return c.bad("icc_key", "only with oda = dda or cda");
  } else {
    auto icc = load_rsa_key(c, "icc_key", source, base_dir);
    if (!icc) return icc.err();
    chip.icc_key = std::move(*icc);
  }
  if (cs.oda != oda_kind::sda && c.has("dac")) return c.bad("dac", "only with oda = sda");
  return {};
}

result<chip_data> parse_chip(const section& c, bool contactless, std::string_view track2,
                             std::string_view source, const std::filesystem::path& base_dir) {
  if (auto st = c.only({"atr",
                        "pin",
                        "pin_try_limit",
                        "pin_tries_left",
                        "atc",
                        "last_online_atc",
                        "icc_pin_key",
                        "pse",
                        "t0_get_response",
                        "application",
                        "issuer_mk",
                        "icc_mk",
                        "issuer_mk_smi",
                        "icc_mk_smi",
                        "mk_option",
                        "cvn",
                        "cvr",
                        "genac_format",
                        "online_always",
                        "decline_always",
                        "offline_limit",
                        "qvsdc",
                        "oda",
                        "ca_key",
                        "issuer_key",
                        "icc_key",
                        "capk_index",
                        "cert_expiry",
                        "dac"});
      !st)
    return st.err();
  chip_data chip;
  auto atr = c.opt_hex("atr", 2, 33);
  if (!atr) return atr.err();
  if (atr->has_value()) {
    if ((**atr)[0] != 0x3B && (**atr)[0] != 0x3F) return c.bad("atr", "must start with TS 3B or 3F");
    chip.atr = std::move(**atr);
  } else {
    chip.atr = contactless ? *from_hex("3B80800101") : *from_hex("3B6800000073C84013009000");
  }

  auto pin = c.opt_digits("pin", 4, 12);
  if (!pin) return pin.err();
  if (!pin->has_value()) return c.missing("pin");
  chip.pin = secure_bytes(as_bytes(**pin));
  wipe(**pin);

  auto limit = c.opt_int("pin_try_limit", 1, 15);
  if (!limit) return limit.err();
  chip.pin_try_limit = static_cast<std::uint8_t>(limit->value_or(3));
  auto left = c.opt_int("pin_tries_left", 0, 15);
  if (!left) return left.err();
  if (left->has_value() && **left > chip.pin_try_limit)
    return c.bad("pin_tries_left", "must not exceed pin_try_limit");
  chip.pin_tries_left = static_cast<std::uint8_t>(left->value_or(chip.pin_try_limit));
  auto atc = c.opt_int("atc", 0, 0xFFFF);
  if (!atc) return atc.err();
  chip.atc = static_cast<std::uint16_t>(atc->value_or(1));
  auto last_online = c.opt_int("last_online_atc", 0, 0xFFFF);
  if (!last_online) return last_online.err();
  chip.last_online_atc = static_cast<std::uint16_t>(last_online->value_or(0));

  auto pse = c.opt_bool("pse");
  if (!pse) return pse.err();
  chip.pse = pse->value_or(!contactless);
  auto t0 = c.opt_bool("t0_get_response");
  if (!t0) return t0.err();
  chip.t0_get_response = t0->value_or(false);
  if (chip.t0_get_response && contactless)
    return c.bad("t0_get_response", "contact cards only (contactless is T=1-like)");

  auto key = c.opt_string("icc_pin_key");
  if (!key) return key.err();
  if (key->has_value()) {
    auto pem = load_icc_pin_key(c, source, **key, base_dir);
    if (!pem) return pem.err();
    chip.icc_pin_key_pem = std::move(*pem);
  }

  auto apps = table_array(c, "application");
  if (!apps) return apps.err();
  if (apps->empty()) return c.missing("application");

  crypto_setup cs;
  if (auto st = parse_crypto(c, chip, cs, contactless, (*apps)[0], source, base_dir); !st) return st.err();

  for (std::size_t i = 0; i < apps->size(); ++i) {
    const section a(source, *(*apps)[i], fmt::format("chip.application[{}]", i + 1));
    auto app = parse_application(a, chip, contactless, track2, source, cs);
    if (!app) return app.err();
    for (const auto& other : chip.applications)
      if (other.aid == app->aid) return a.bad("aid", "given twice");
    chip.applications.push_back(std::move(*app));
  }
  return chip;
}

}  // namespace

std::optional<std::size_t> dol_data_length(byte_view dol) {
  std::size_t i = 0, total = 0;
  while (i < dol.size()) {
    const std::size_t start = i;
    if ((dol[i++] & 0x1F) == 0x1F) {
      for (;;) {
        if (i >= dol.size() || i - start >= 3) return std::nullopt;
        if ((dol[i++] & 0x80) == 0) break;
      }
    }
    if (i >= dol.size()) return std::nullopt;
    total += dol[i++];
  }
  return total;
}

bool luhn_valid(std::string_view digits) {
  if (digits.empty() || !all_digits(digits)) return false;
  int sum = 0;
  bool dbl = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

// ISO/IEC 7813 track 2 without sentinels: PAN(<=19) '=' YYMM SSS discretionary; 37 chars max.
status check_track2(std::string_view t2) {
  auto fail = [](std::string_view why) {
    return make_error("padsim.profile_bad_value", fmt::format("track2: {}", why));
  };
  if (t2.size() > 37) return fail("longer than 37 characters");
  const auto sep = t2.find('=');
  if (sep == std::string_view::npos) return fail("no '=' field separator");
  const auto pan = t2.substr(0, sep);
  const auto rest = t2.substr(sep + 1);
  if (pan.size() < 12 || pan.size() > 19 || !all_digits(pan)) return fail("PAN must be 12..19 digits");
  if (!luhn_valid(pan)) return fail("PAN fails the Luhn check");
  if (rest.size() < 7) return fail("expiry (YYMM) and service code (3 digits) required after '='");
  if (!all_digits(rest)) return fail("only digits allowed after '='");
  const int month = (rest[2] - '0') * 10 + (rest[3] - '0');
  if (month < 1 || month > 12) return fail("expiry month not 01..12");
  return {};
}

result<card_profile> parse_card_profile(std::string_view text, std::string_view source,
                                        const std::filesystem::path& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    // Location only: toml++'s description may quote the offending text, which can be the track.
    return make_error("padsim.profile_syntax",
                      fmt::format("{}: TOML syntax error at line {}, column {}", source,
                                  e.source().begin.line, e.source().begin.column));
  }
  for (const auto& [k, v] : root) {
    if (k.str() != "card" && k.str() != "chip")
      return make_error("padsim.profile_unknown_key",
                        fmt::format("{}: unknown table or key '{}'", source, k.str()));
    if (v.as_table() == nullptr)
      return make_error("padsim.profile_bad_value", fmt::format("{}: {} must be a table", source, k.str()));
  }
  const toml::table* card_t = root["card"].as_table();
  if (card_t == nullptr)
    return make_error("padsim.profile_missing_key", fmt::format("{}: [card] table missing", source));
  const section card(source, *card_t, "card");
  if (auto st = card.only({"name", "kind", "track2", "fallback", "chip_fails"}); !st) return st.err();

  card_profile p;
  p.source = std::string(source);
  auto name = card.req_string("name");
  if (!name) return name.err();
  p.name = std::move(*name);
  if (p.name.empty()) return card.bad("name", "must not be empty");

  auto kind = card.req_string("kind");
  if (!kind) return kind.err();
  p.kind = std::move(*kind);
  if (p.kind == "magstripe")
    p.mode = pad::entry_mode::magstripe;
  else if (p.kind == "chip")
    p.mode = pad::entry_mode::chip;
  else if (p.kind == "contactless")
    p.mode = pad::entry_mode::contactless;
  else
    return card.bad("kind", "must be \"magstripe\", \"chip\" or \"contactless\"");
  const bool magstripe = p.kind == "magstripe";

  auto chip_fails = card.opt_bool("chip_fails");
  if (!chip_fails) return chip_fails.err();
  p.chip_fails = chip_fails->value_or(false);
  if (p.chip_fails && p.kind != "chip") return card.bad("chip_fails", "only for kind \"chip\"");

  auto track2 = card.opt_string("track2");
  if (!track2) return track2.err();
  if (track2->has_value()) {
    std::string& t2 = **track2;
    auto st = check_track2(t2);
    p.track2 = secure_bytes(as_bytes(t2));
    // Service code digit 1 = 2 or 6: "chip card" (ISO/IEC 7813); a chip card's stripe says so,
    // which is what makes a terminal refuse a plain swipe and ask for the chip.
    const auto sep = t2.find('=');
    const bool chip_sc = st && (t2[sep + 5] == '2' || t2[sep + 5] == '6');
    if (st) p.pan = secure_bytes(as_bytes(std::string_view(t2).substr(0, sep)));
    wipe(t2);
    if (!st) return make_error(st.err().code, fmt::format("{}: card.{}", source, st.err().message));
    if (!magstripe && !chip_sc)
      return card.bad("track2", "a chip card's stripe needs service code 2xx or 6xx");
  } else if (magstripe || p.chip_fails) {
    return card.missing("track2");
  }

  auto fallback = card.opt_bool("fallback");
  if (!fallback) return fallback.err();
  if (fallback->has_value() && !magstripe) return card.bad("fallback", "only for kind \"magstripe\"");
  p.fallback = fallback->value_or(false);
  if (p.fallback) p.mode = pad::entry_mode::fallback_magstripe;

  if (const toml::table* chip_t = root["chip"].as_table()) {
    if (magstripe)
      return make_error("padsim.profile_bad_value",
                        fmt::format("{}: [chip] only for kind \"chip\" or \"contactless\"", source));
    const section chip_s(source, *chip_t, "chip");
    auto chip = parse_chip(chip_s, p.kind == "contactless", text_of(p.track2), source, base_dir);
    if (!chip) return chip.err();
    p.chip = std::move(*chip);
    if (!p.track2.empty()) {
      const bool matches = std::any_of(p.chip->applications.begin(), p.chip->applications.end(),
                                       [&](const chip_application& a) { return a.pan == p.pan; });
      if (!matches) return card.bad("track2", "PAN matches no chip.application pan");
    }
    p.pan = p.chip->applications.front().pan;
  } else if (!magstripe && !p.chip_fails) {
    return make_error("padsim.profile_missing_key", fmt::format("{}: [chip] table missing", source));
  }
  return p;
}

result<card_profile> load_card_profile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("padsim.profile_io", fmt::format("{}: cannot open", file.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto r = parse_card_profile(text, file.filename().string(), file.parent_path());
  secure_wipe(text.data(), text.size());
  return r;
}

}  // namespace eftd::padsim
