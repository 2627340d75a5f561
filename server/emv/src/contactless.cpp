#include "eftd/emv/contactless.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "apdu_util.hpp"
#include "eftd/core/config.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/core/tlv.hpp"

namespace eftd::emv {

namespace {

constexpr std::string_view ppse_name = "2PAY.SYS.DDF01";
// The pad's apdu_script carries at most 32 C-APDUs.
constexpr std::size_t max_script = 32;

enum : std::uint32_t {
  t_aid_card = 0x4F,
  t_track2 = 0x57,
  t_pan = 0x5A,
  t_fci = 0x6F,
  t_record = 0x70,
  t_fmt2 = 0x77,
  t_fmt1 = 0x80,
  t_aip = 0x82,
  t_df_name = 0x84,
  t_priority = 0x87,
  t_cdol1 = 0x8C,
  t_cvm_list = 0x8E,
  t_capk_index = 0x8F,
  t_issuer_cert = 0x90,
  t_issuer_rem = 0x92,
  t_afl = 0x94,
  t_tvr = 0x95,
  t_fci_prop = 0xA5,
  t_directory = 0xBF0C,
  t_dir_entry = 0x61,
  t_psn = 0x5F34,
  t_currency = 0x5F2A,
  t_amount = 0x9F02,
  t_iad = 0x9F10,
  t_issuer_exp = 0x9F32,
  t_ac = 0x9F26,
  t_cid = 0x9F27,
  t_cvm_results = 0x9F34,
  t_atc = 0x9F36,
  t_un = 0x9F37,
  t_pdol = 0x9F38,
  t_icc_cert = 0x9F46,
  t_icc_exp = 0x9F47,
  t_icc_rem = 0x9F48,
  t_sda_tags = 0x9F4A,
  t_sdad = 0x9F4B,
  t_icc_dn = 0x9F4C,
  t_ttq = 0x9F66,
  t_card_auth_data = 0x9F69,
  t_ctq = 0x9F6C,
  t_ffi = 0x9F6E,
};

using detail::bcd;
using detail::bcd_digits;
using detail::be;
using detail::data_of;
using detail::same;
using detail::starts_with;
using detail::sw_of;
// Case 4 (or 2 without data) with Le 00: contactless cards are T=1-like, no chaining.
bytes apdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, byte_view data) {
  bytes c{cla, ins, p1, p2};
  if (!data.empty()) {
    c.push_back(static_cast<std::uint8_t>(data.size()));
    c.insert(c.end(), data.begin(), data.end());
  }
  c.push_back(0x00);
  return c;
}
void wipe(bytes& b) {
  if (!b.empty()) secure_wipe(b.data(), b.size());
  b.clear();
}
void wipe_tlvs(std::vector<tlv>& list) {
  for (auto& t : list) {
    wipe(t.value);
    wipe_tlvs(t.children);
  }
}
// tlv_decode whose result is wiped when it goes (records carry the PAN and track 2).
struct decoded_tlvs {
  std::vector<tlv> list;
  bool ok = false;
  explicit decoded_tlvs(byte_view data) {
    auto d = tlv_decode(data);
    if (d) {
      list = std::move(d).value();
      ok = true;
    }
  }
  ~decoded_tlvs() { wipe_tlvs(list); }
  decoded_tlvs(const decoded_tlvs&) = delete;
  decoded_tlvs& operator=(const decoded_tlvs&) = delete;
};

// AFL (Book 3 10.2): 4-byte entries SFI<<3, first, last, records for ODA.
struct afl_entry {
  std::uint8_t sfi, first, last, oda;
};
std::optional<std::vector<afl_entry>> parse_afl(byte_view afl) {
  if (afl.size() % 4 != 0) return std::nullopt;
  std::vector<afl_entry> out;
  for (std::size_t i = 0; i < afl.size(); i += 4) {
    const afl_entry e{static_cast<std::uint8_t>(afl[i] >> 3), afl[i + 1], afl[i + 2], afl[i + 3]};
    if ((afl[i] & 0x07) != 0 || e.sfi < 1 || e.sfi > 30 || e.first < 1 || e.last < e.first ||
        e.oda > e.last - e.first + 1)
      return std::nullopt;
    out.push_back(e);
  }
  return out;
}

// Field 55 of a contactless authorization: the contact list plus the reader's TTQ, the card's
// CTQ and form factor indicator. Fixed so that track and name tags can never appear.
constexpr std::array<std::uint32_t, 3> clss_extra_tags{t_ttq, t_ctq, t_ffi};

}  // namespace

contactless_aid default_visa_contactless() {
  contactless_aid a;
  a.aid = *from_hex("A0000000031010");
  a.path = clss_path::qvsdc;
  a.pdol = *from_hex("9F66049F02069F03069F1A0295055F2A029A039C019F3704");
  a.records = {{1, 1}};
  return a;
}

contactless_aid default_mastercard_contactless() {
  contactless_aid a;
  a.aid = *from_hex("A0000000041010");
  a.path = clss_path::mchip;
  a.records = {{1, 1}, {2, 1}, {2, 2}};
  a.cdol1 = *from_hex("9F02069F03069F1A0295055F2A029A039C019F3704");
  return a;
}

result<contactless_config> contactless_config_from(const config::emv_contactless_config& c) {
  contactless_config out;
  out.transaction_limit = c.transaction_limit;
  out.cvm_required_limit = c.cvm_required_limit;
  out.floor_limit = c.floor_limit;
  out.ttq.online_pin = c.online_pin;
  out.ttq.signature = c.signature;
  out.ttq.cdcvm = c.cdcvm;
  if (c.aids.empty()) {
    out.aids = {default_visa_contactless(), default_mastercard_contactless()};
    return out;
  }
  const contactless_aid visa = default_visa_contactless(), mc = default_mastercard_contactless();
  for (std::size_t i = 0; i < c.aids.size(); ++i) {
    const auto& a = c.aids[i];
    auto bad = [&](std::string_view what) {
      return make_error("emv.clss_bad_config",
                        "emv.contactless.aid[" + std::to_string(i) + "]: " + std::string(what));
    };
    contactless_aid e;
    auto aid = from_hex(a.aid);
    if (!aid || aid->size() < 5 || aid->size() > 16) return bad("aid");
    e.aid = *aid;
    if (a.kernel != "qvsdc" && a.kernel != "mchip") return bad("kernel");
    e.path = a.kernel == "mchip" ? clss_path::mchip : clss_path::qvsdc;
    // Defaults: the well-known AID's, else the kernel's typical card.
    const contactless_aid& base = same(e.aid, visa.aid)        ? visa
                                  : same(e.aid, mc.aid)        ? mc
                                  : e.path == clss_path::mchip ? mc
                                                               : visa;
    e.pdol = base.pdol;
    e.records = base.records;
    e.cdol1 = base.cdol1;
    for (auto [text, dol] : {std::pair{&a.pdol, &e.pdol}, std::pair{&a.cdol1, &e.cdol1}}) {
      if (text->empty()) continue;
      auto v = from_hex(*text);
      if (!v || !parse_dol(*v)) return bad("DOL");
      *dol = *v;
    }
    if (!a.records.empty()) {
      e.records.clear();
      for (const auto& r : a.records) {
        const auto dot = r.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 >= r.size() || r.size() > 7 ||
            r.find_first_not_of("0123456789.") != std::string::npos ||
            r.find('.', dot + 1) != std::string::npos)
          return bad("records");
        unsigned sfi = 0, rec = 0;
        for (const char ch : r.substr(0, dot)) sfi = sfi * 10 + static_cast<unsigned>(ch - '0');
        for (const char ch : r.substr(dot + 1)) rec = rec * 10 + static_cast<unsigned>(ch - '0');
        if (sfi < 1 || sfi > 30 || rec < 1 || rec > 255) return bad("records");
        e.records.push_back({static_cast<std::uint8_t>(sfi), static_cast<std::uint8_t>(rec)});
      }
    }
    e.transaction_limit = a.transaction_limit;
    e.cvm_required_limit = a.cvm_required_limit;
    e.floor_limit = a.floor_limit;
    out.aids.push_back(std::move(e));
  }
  return out;
}

bytes build_ttq(const ttq_support& s, bool online_required, bool cvm_required) {
  std::uint8_t b1 = 0x20;  // qVSDC supported (the only contactless mode this reader runs)
  if (s.contact_chip) b1 |= 0x10;
  if (!s.online_capable) b1 |= 0x08;
  if (s.online_pin) b1 |= 0x04;
  if (s.signature) b1 |= 0x02;
  if (s.oda_for_online) b1 |= 0x01;
  std::uint8_t b2 = 0;
  if (online_required) b2 |= 0x80;
  if (cvm_required) b2 |= 0x40;
  std::uint8_t b3 = 0;
  if (s.issuer_update) b3 |= 0x80;
  if (s.cdcvm) b3 |= 0x40;
  return {b1, b2, b3, 0x00};
}

contactless_cache::contactless_cache(const contactless_config& cfg) : entries_(cfg.aids) {}

const contactless_aid* contactless_cache::find(byte_view configured_aid) const {
  for (const auto& e : entries_)
    if (same(e.aid, configured_aid)) return &e;
  return nullptr;
}
contactless_aid* contactless_cache::find_mutable(byte_view configured_aid) {
  for (auto& e : entries_)
    if (same(e.aid, configured_aid)) return &e;
  return nullptr;
}

std::string_view to_string(clss_outcome o) {
  switch (o) {
    case clss_outcome::approved:
      return "approved";
    case clss_outcome::declined:
      return "declined";
    case clss_outcome::online_request:
      return "online_request";
    case clss_outcome::try_again:
      return "try_again";
    case clss_outcome::try_another_interface:
      return "try_another_interface";
    case clss_outcome::end_application:
      return "end_application";
  }
  return "unknown";
}

std::string_view to_string(clss_cvm c) {
  switch (c) {
    case clss_cvm::none:
      return "none";
    case clss_cvm::online_pin:
      return "online_pin";
    case clss_cvm::signature:
      return "signature";
    case clss_cvm::cdcvm_done:
      return "cdcvm_done";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------

struct contactless_kernel::impl {
  // One planned AID: where its commands sit in the script and what they were built from.
  struct planned_app {
    contactless_aid expected;  // the cache entry as it was when planned
    std::size_t select = 0, gpo = 0;
    std::vector<std::size_t> reads;  // parallel to expected.records
    std::optional<std::size_t> genac;
    bytes pdol_data, cdol1_data;
    std::uint8_t genac_p1 = 0;
    std::uint64_t cvm_limit = 0;
    bool cvm_limited = false;
    std::uint64_t floor_limit = 0;
  };

  impl(const terminal_config& t, const contactless_config& c, contactless_cache& k, const capk_table* p,
       transaction x)
      : term(t), cfg(c), cache(k), capks(p), txn(std::move(x)) {}
  ~impl() { wipe(pan); }

  terminal_config term;
  contactless_config cfg;
  contactless_cache& cache;
  const capk_table* capks;
  transaction txn;
  tlv_store store;
  tvr_bytes tvr{};
  std::set<std::uint32_t> terminal_tags;
  std::set<std::uint32_t> card_tags;
  std::vector<bytes> script;
  std::vector<planned_app> apps;
  std::vector<bytes> excluded_by_limit;  // configured AIDs left out of the plan (over their limit)
  bool planned = false, evaluated = false;
  contactless_result res;
  bytes pan;  // ASCII digits (ODA checks the certificates' PAN)
  std::vector<oda_record> oda_records;

  std::string_view pan_view() const { return {reinterpret_cast<const char*>(pan.data()), pan.size()}; }

  void set_terminal(std::uint32_t tag, byte_view v) {
    store.set(tag, v);
    terminal_tags.insert(tag);
  }
  // False: the card sent the tag twice (Book 3 10.2 treats that as an error).
  bool set_card(std::uint32_t tag, byte_view v) {
    if (terminal_tags.count(tag)) return true;  // a card never overrides what the terminal says
    if (card_tags.count(tag)) return false;
    store.set(tag, v);
    card_tags.insert(tag);
    return true;
  }

  std::uint64_t limit_or(const std::optional<std::uint64_t>& own, const std::optional<std::uint64_t>& global,
                         bool& has) const {
    if (own) {
      has = true;
      return *own;
    }
    has = global.has_value();
    return global.value_or(0);
  }

  const contactless_result& finish(clss_outcome o, std::string reason) {
    res.outcome = o;
    res.reason_code = std::move(reason);
    return res;
  }

  void terminal_data(bool online_required, bool cvm_required) {
    const std::uint16_t currency = txn.currency != 0 ? txn.currency : term.currency_code;
    set_terminal(0x9F35, bytes{term.terminal_type});
    set_terminal(0x9F33, terminal_capabilities(term));
    set_terminal(0x9F40, term.additional_capabilities);
    set_terminal(0x9F1A, bcd(term.country_code, 2));
    set_terminal(t_currency, bcd(currency, 2));
    set_terminal(0x5F36, bytes{term.currency_exponent});
    set_terminal(0x9A, bcd_digits(txn.date));
    set_terminal(0x9F21, bcd_digits(txn.time.size() == 6 ? txn.time : "000000"));
    set_terminal(0x9C, bytes{txn.type});
    set_terminal(t_amount, bcd(txn.amount, 6));
    set_terminal(0x9F03, bcd(txn.other_amount, 6));
    set_terminal(0x81, be(std::min<std::uint64_t>(txn.amount, 0xFFFFFFFFu), 4));
    set_terminal(0x9F04, be(std::min<std::uint64_t>(txn.other_amount, 0xFFFFFFFFu), 4));
    std::array<std::uint8_t, 4> un{};
    if (txn.random)
      txn.random(un);
    else
      RAND_bytes(un.data(), static_cast<int>(un.size()));
    set_terminal(t_un, un);
    set_terminal(t_tvr, tvr);
    set_terminal(t_cvm_results, bytes{0x3F, 0x00, 0x00});
    set_terminal(0x9F1E, term.ifd_serial);
    set_terminal(0x9F39, bytes{0x07});  // POS entry mode: contactless chip
    set_terminal(t_ttq, build_ttq(cfg.ttq, online_required, cvm_required));
    if (!term.terminal_id.empty()) set_terminal(0x9F1C, term.terminal_id);
    if (!term.merchant_id.empty()) set_terminal(0x9F16, term.merchant_id);
    if (!term.merchant_category.empty()) set_terminal(0x9F15, term.merchant_category);
  }

  const std::vector<bytes>& make_plan() {
    planned = true;
    // Limits first: an AID over its contactless transaction limit is not tapped at all.
    std::vector<const contactless_aid*> usable;
    for (const auto& a : cfg.aids) {
      const contactless_aid* e = cache.find(a.aid);
      if (e == nullptr) continue;
      bool has = false;
      const std::uint64_t limit = limit_or(a.transaction_limit, cfg.transaction_limit, has);
      if (has && txn.amount >= limit) {
        excluded_by_limit.push_back(a.aid);
        continue;
      }
      usable.push_back(e);
    }
    if (usable.empty()) {
      if (!excluded_by_limit.empty())
        finish(clss_outcome::try_another_interface, "emv.clss_over_limit");
      else
        finish(clss_outcome::end_application, "emv.no_application");
      return script;
    }
    // The TTQ is one value for the whole tap: it asks for a CVM / an online cryptogram when
    // the first usable AID's limits say so (cards of other AIDs see the same TTQ).
    const contactless_aid& first = *usable.front();
    const contactless_aid* first_cfg = nullptr;
    for (const auto& a : cfg.aids)
      if (same(a.aid, first.aid)) first_cfg = &a;
    bool has_cvm = false;
    const std::uint64_t cvm_limit = limit_or(first_cfg->cvm_required_limit, cfg.cvm_required_limit, has_cvm);
    const std::uint64_t floor = first_cfg->floor_limit.value_or(cfg.floor_limit);
    const bool online_required = cfg.ttq.online_capable && (txn.amount > floor || txn.force_online);
    terminal_data(online_required, has_cvm && txn.amount >= cvm_limit);

    script.push_back(
        apdu(0x00, 0xA4, 0x04, 0x00,
             byte_view(reinterpret_cast<const std::uint8_t*>(ppse_name.data()), ppse_name.size())));
    for (const contactless_aid* e : usable) {
      const contactless_aid* c = nullptr;
      for (const auto& a : cfg.aids)
        if (same(a.aid, e->aid)) c = &a;
      planned_app p;
      p.expected = *e;
      bool has = false;
      p.cvm_limit = limit_or(c->cvm_required_limit, cfg.cvm_required_limit, has);
      p.cvm_limited = has;
      p.floor_limit = c->floor_limit.value_or(cfg.floor_limit);
      auto pdol_data = build_dol_data(e->pdol, store);
      auto cdol1_data = build_dol_data(e->cdol1, store);
      if (!pdol_data || !cdol1_data) continue;  // a broken configured DOL: this AID cannot be planned
      p.pdol_data = *pdol_data;
      p.cdol1_data = *cdol1_data;
      // GPO data (83 L [81] PDOL data) and GENERATE AC data must fit a short APDU.
      if (p.pdol_data.size() > 252 || p.cdol1_data.size() > 255) continue;
      const std::size_t needed = 2 + e->records.size() + (e->path == clss_path::mchip ? 1 : 0);
      if (script.size() + needed > max_script) break;
      p.select = script.size();
      script.push_back(apdu(0x00, 0xA4, 0x04, 0x00, e->aid));
      // GPO data: template 83 with the PDOL data (Book 3 6.5.8).
      bytes body{0x83};
      if (p.pdol_data.size() > 0x7F) body.push_back(0x81);
      body.push_back(static_cast<std::uint8_t>(p.pdol_data.size()));
      body.insert(body.end(), p.pdol_data.begin(), p.pdol_data.end());
      p.gpo = script.size();
      script.push_back(apdu(0x80, 0xA8, 0x00, 0x00, body));
      for (const auto& r : e->records) {
        p.reads.push_back(script.size());
        script.push_back(apdu(0x00, 0xB2, r.record, static_cast<std::uint8_t>((r.sfi << 3) | 4), {}));
      }
      if (e->path == clss_path::mchip) {
        // The decision is taken before the tap: ARQC above the floor limit (or forced online),
        // else TC; CDA asked whenever the terminal does CDA (a card without it ignores the bit).
        const bool online = cfg.ttq.online_capable && (txn.amount > p.floor_limit || txn.force_online);
        p.genac_p1 = static_cast<std::uint8_t>((online ? 0x80 : 0x40) | (term.oda.cda ? 0x10 : 0x00));
        p.genac = script.size();
        script.push_back(apdu(0x80, 0xAE, p.genac_p1, 0x00, p.cdol1_data));
      }
      apps.push_back(std::move(p));
    }
    if (apps.empty()) {
      script.clear();
      finish(clss_outcome::end_application, "emv.clss_bad_config");
    }
    return script;
  }

  // ---- evaluation ------------------------------------------------------------------------

  struct card_candidate {
    const planned_app* app;
    std::uint8_t priority;  // 87 bits 1-4, 0: none (last)
    std::size_t order;
  };

  const contactless_result& run_evaluate(std::span<const bytes> rapdus, std::uint32_t elapsed_ms) {
    evaluated = true;
    res.tap_ms = elapsed_ms;
    if (script.empty()) return res;
    // The pad stopped before the end: the card left the field (or the pad gave up).
    if (rapdus.size() < script.size()) return finish(clss_outcome::try_again, "emv.clss_card_removed");
    for (const auto& r : rapdus)
      if (r.size() < 2) return finish(clss_outcome::end_application, "emv.clss_bad_answer");

    // PPSE (Book B 3.3): 6F { 84, A5 { BF0C { 61 { 4F, 50, 87 } ... } } }.
    if (sw_of(rapdus[0]) != 0x9000) return finish(clss_outcome::end_application, "emv.clss_no_ppse");
    decoded_tlvs ppse(data_of(rapdus[0]));
    if (!ppse.ok || ppse.list.size() != 1 || ppse.list[0].tag != t_fci)
      return finish(clss_outcome::end_application, "emv.clss_bad_ppse");
    const tlv* dir = tlv_find(ppse.list, t_directory);
    if (dir == nullptr) return finish(clss_outcome::end_application, "emv.clss_bad_ppse");
    std::vector<card_candidate> candidates;
    bool over_limit_match = false;
    for (const auto& entry : dir->children) {
      if (entry.tag != t_dir_entry) continue;
      const tlv* aid = tlv_find(entry.children, t_aid_card, false);
      if (aid == nullptr) continue;
      const tlv* prio = tlv_find(entry.children, t_priority, false);
      const std::uint8_t p =
          prio && prio->value.size() == 1 ? static_cast<std::uint8_t>(prio->value[0] & 0x0F) : 0;
      for (const auto& app : apps)
        if (starts_with(aid->value, app.expected.aid)) {
          candidates.push_back({&app, p, candidates.size()});
          break;
        }
      for (const auto& x : excluded_by_limit)
        if (starts_with(aid->value, x)) over_limit_match = true;
    }
    if (candidates.empty()) {
      if (over_limit_match) return finish(clss_outcome::try_another_interface, "emv.clss_over_limit");
      return finish(clss_outcome::end_application, "emv.no_application");
    }
    std::stable_sort(
        candidates.begin(), candidates.end(), [](const card_candidate& a, const card_candidate& b) {
          const unsigned pa = a.priority == 0 ? 16 : a.priority, pb = b.priority == 0 ? 16 : b.priority;
          return pa < pb;
        });
    // Final selection: the best candidate whose SELECT succeeded (6283 blocked, 6A82 absent).
    const planned_app* chosen = nullptr;
    for (const auto& c : candidates)
      if (sw_of(rapdus[c.app->select]) == 0x9000) {
        chosen = c.app;
        break;
      }
    if (chosen == nullptr) return finish(clss_outcome::end_application, "emv.clss_select_failed");
    return evaluate_app(*chosen, rapdus);
  }

  void learn(const planned_app& app, auto&& change) {
    if (contactless_aid* e = cache.find_mutable(app.expected.aid)) {
      change(*e);
      cache.count_update();
    }
  }

  const contactless_result& evaluate_app(const planned_app& app, std::span<const bytes> rapdus) {
    // SELECT AID answer: 6F { 84 DF name, A5 { 50, 87, 9F38 PDOL ... } }.
    {
      decoded_tlvs fci(data_of(rapdus[app.select]));
      if (!fci.ok || fci.list.size() != 1 || fci.list[0].tag != t_fci)
        return finish(clss_outcome::end_application, "emv.clss_bad_fci");
      const tlv* df = tlv_find(fci.list[0].children, t_df_name, false);
      const tlv* prop = tlv_find(fci.list[0].children, t_fci_prop, false);
      if (df == nullptr || prop == nullptr || !starts_with(df->value, app.expected.aid))
        return finish(clss_outcome::end_application, "emv.clss_bad_fci");
      const tlv* pdol = tlv_find(prop->children, t_pdol, false);
      const bytes card_pdol = pdol ? pdol->value : bytes{};
      if (!same(card_pdol, app.expected.pdol)) {
        if (!parse_dol(card_pdol)) return finish(clss_outcome::end_application, "emv.bad_dol");
        learn(app, [&](contactless_aid& e) { e.pdol = card_pdol; });
        return finish(clss_outcome::try_again, "emv.clss_pdol_changed");
      }
      set_card(t_df_name, df->value);
      res.aid = df->value;
      if (pdol) set_card(t_pdol, pdol->value);
    }

    // GPO (Book 3 6.5.8): 80 { AIP AFL } or 77 { 82 94 ... } (qVSDC: the cryptogram too).
    const bytes& gpo = rapdus[app.gpo];
    const std::uint16_t gpo_sw = sw_of(gpo);
    if (gpo_sw == 0x6984 || gpo_sw == 0x6985 || gpo_sw == 0x6986)
      return finish(clss_outcome::try_another_interface, "emv.clss_gpo_refused");
    if (gpo_sw != 0x9000) return finish(clss_outcome::end_application, "emv.gpo_failed");
    {
      decoded_tlvs g(data_of(gpo));
      if (!g.ok || g.list.size() != 1) return finish(clss_outcome::end_application, "emv.bad_gpo");
      const tlv& top = g.list[0];
      if (top.tag == t_fmt1) {
        if (top.value.size() < 2) return finish(clss_outcome::end_application, "emv.bad_gpo");
        set_card(t_aip, byte_view(top.value).first(2));
        set_card(t_afl, byte_view(top.value).subspan(2));
      } else if (top.tag == t_fmt2) {
        for (const auto& child : top.children) {
          if (child.constructed()) return finish(clss_outcome::end_application, "emv.bad_gpo");
          if (!set_card(child.tag, child.value))
            return finish(clss_outcome::end_application, "emv.duplicate_data");
        }
      } else {
        return finish(clss_outcome::end_application, "emv.bad_gpo");
      }
    }
    const auto aip = store.get(t_aip);
    if (!aip || aip->size() != 2) return finish(clss_outcome::end_application, "emv.bad_gpo");
    const auto afl = parse_afl(store.get_or_empty(t_afl));
    if (!afl) return finish(clss_outcome::end_application, "emv.bad_afl");

    // The AFL against the planned READ RECORDs: a record the tap did not read means the cache
    // was wrong for this card; records read beyond the AFL only cost time, the cache drops them.
    std::vector<record_ref> wanted;
    for (const auto& e : *afl)
      for (unsigned r = e.first; r <= e.last; ++r) wanted.push_back({e.sfi, static_cast<std::uint8_t>(r)});
    const auto& planned = app.expected.records;
    const bool covered = std::all_of(wanted.begin(), wanted.end(), [&](const record_ref& w) {
      return std::find(planned.begin(), planned.end(), w) != planned.end();
    });
    if (!covered || wanted.size() != planned.size()) {
      if (wanted.size() + 4 > max_script) return finish(clss_outcome::end_application, "emv.bad_afl");
      learn(app, [&](contactless_aid& e) { e.records = wanted; });
      if (!covered) return finish(clss_outcome::try_again, "emv.clss_afl_changed");
    }

    // Records (Book 3 10.2): one 70 template each for SFI 1-10; ODA records kept.
    for (const auto& e : *afl) {
      for (unsigned r = e.first; r <= e.last; ++r) {
        const record_ref ref{e.sfi, static_cast<std::uint8_t>(r)};
        const auto at = std::find(planned.begin(), planned.end(), ref) - planned.begin();
        const bytes& rr = rapdus[app.reads[static_cast<std::size_t>(at)]];
        if (sw_of(rr) != 0x9000) return finish(clss_outcome::end_application, "emv.read_record_failed");
        const byte_view body = data_of(rr);
        decoded_tlvs rec(body);
        if (!rec.ok || rec.list.size() != 1 || rec.list[0].tag != t_record)
          return finish(clss_outcome::end_application, "emv.bad_record");
        if (r - e.first < e.oda) oda_records.push_back({e.sfi, bytes(body.begin(), body.end())});
        for (const auto& child : rec.list[0].children)
          if (!set_card(child.tag, child.value))
            return finish(clss_outcome::end_application, "emv.duplicate_data");
      }
    }
    if (!store.has(t_pan) && !store.has(t_track2))
      return finish(clss_outcome::end_application, "emv.icc_data_missing");
    if (!extract_pan()) return finish(clss_outcome::end_application, "emv.bad_pan");

    if (app.expected.path == clss_path::qvsdc) return evaluate_qvsdc(app);
    return evaluate_mchip(app, rapdus);
  }

  // The PAN digits from 5A, else from the track 2 equivalent up to the separator D.
  bool extract_pan() {
    const bool from_track = !store.has(t_pan);
    const byte_view p = store.get_or_empty(from_track ? t_track2 : t_pan);
    bytes digits;
    bool bad = false, ended = false;
    for (const auto b : p) {
      for (const std::uint8_t nib :
           {static_cast<std::uint8_t>(b >> 4), static_cast<std::uint8_t>(b & 0x0F)}) {
        if (ended) continue;
        if (nib == 0x0F || (from_track && nib == 0x0D))
          ended = true;
        else if (nib > 9)
          bad = true;
        else
          digits.push_back(static_cast<std::uint8_t>('0' + nib));
      }
    }
    const bool ok = !bad && digits.size() >= 12 && digits.size() <= 19;
    if (ok) pan = std::move(digits);
    wipe(digits);
    return ok;
  }

  // The card's CVM decision inputs, then the CVM for the outcome (Book C-3 / C-2 style).
  clss_cvm choose_cvm(const planned_app& app, bool card_says_cdcvm, bool card_wants_pin,
                      bool card_wants_signature, bool& unavailable) {
    unavailable = false;
    const bool required = app.cvm_limited && txn.amount >= app.cvm_limit;
    if (!required && !card_wants_pin && !card_wants_signature) return clss_cvm::none;
    if (card_says_cdcvm && cfg.ttq.cdcvm) return clss_cvm::cdcvm_done;
    if (card_wants_pin && cfg.ttq.online_pin && cfg.ttq.online_capable) return clss_cvm::online_pin;
    if (card_wants_signature && cfg.ttq.signature) return clss_cvm::signature;
    if (!required) return clss_cvm::none;
    if (!card_wants_pin && !card_wants_signature) {
      // The card left the choice to the reader: online PIN first, then signature.
      if (cfg.ttq.online_pin && cfg.ttq.online_capable) return clss_cvm::online_pin;
      if (cfg.ttq.signature) return clss_cvm::signature;
    }
    unavailable = true;
    return clss_cvm::none;
  }

  void record_cvm(clss_cvm c) {
    res.cvm = c;
    switch (c) {
      case clss_cvm::none:
        set_terminal(t_cvm_results, bytes{0x1F, 0x00, 0x02});  // no CVM required
        break;
      case clss_cvm::online_pin:
        set_terminal(t_cvm_results, bytes{0x02, 0x00, 0x00});  // result unknown until the host
        break;
      case clss_cvm::signature:
        set_terminal(t_cvm_results, bytes{0x1E, 0x00, 0x00});
        break;
      case clss_cvm::cdcvm_done:
        set_terminal(t_cvm_results, bytes{0x01, 0x00, 0x02});  // verified on the device
        break;
    }
  }

  // 95 stays the TVR the card received in its PDOL / CDOL1 data (built before the tap): the
  // issuer recomputes the ARQC over field 55, so what the evaluation found after the tap
  // (ODA not performed...) is only in tvr(), never in the cryptogram's inputs.
  const contactless_result& online(std::string reason) {
    std::vector<tlv> list;
    for (const auto tag : field55_tags())
      if (const auto v = store.get(tag)) list.push_back(tlv{tag, bytes(v->begin(), v->end()), {}});
    for (const auto tag : clss_extra_tags)
      if (const auto v = store.get(tag)) list.push_back(tlv{tag, bytes(v->begin(), v->end()), {}});
    res.field55 = tlv_encode(list);
    return finish(clss_outcome::online_request, std::move(reason));
  }

  std::optional<rsa_key> recover_icc(byte_view static_data) {
    if (capks == nullptr) return std::nullopt;
    const auto df = store.get_or_empty(t_df_name);
    const auto index = store.get(t_capk_index);
    if (df.size() < 5 || !index || index->size() != 1) return std::nullopt;
    const ca_public_key* capk = capks->find(df.first(5), (*index)[0]);
    if (capk == nullptr || capk_expired(*capk, txn.date)) return std::nullopt;
    auto issuer =
        recover_issuer_key(*capk, store.get_or_empty(t_issuer_cert), store.get_or_empty(t_issuer_rem),
                           store.get_or_empty(t_issuer_exp), pan_view(), txn.date);
    if (!issuer) return std::nullopt;
    auto icc = recover_icc_key(*issuer, store.get_or_empty(t_icc_cert), store.get_or_empty(t_icc_rem),
                               store.get_or_empty(t_icc_exp), static_data, pan_view(), txn.date);
    if (!icc) return std::nullopt;
    return std::move(icc).value();
  }

  std::optional<rsa_key> icc_key_for_oda() {
    auto static_data =
        oda_static_data(oda_records, store.get_or_empty(t_aip), store.get_or_empty(t_sda_tags));
    if (!static_data) return std::nullopt;
    return recover_icc(*static_data);
  }

  const contactless_result& evaluate_qvsdc(const planned_app& app) {
    const auto cid = store.get(t_cid);
    if (!store.has(t_ac) || !store.has(t_atc) || !cid || cid->size() != 1 ||
        store.get_or_empty(t_ac).size() != 8)
      return finish(clss_outcome::end_application, "emv.icc_data_missing");
    // CTQ (9F6C) byte 1: b8 online PIN required, b7 signature required; byte 2 b8 CDCVM done.
    const auto ctq = store.get_or_empty(t_ctq);
    const bool cdcvm = ctq.size() == 2 && (ctq[1] & 0x80) != 0;
    const bool pin = ctq.size() == 2 && (ctq[0] & 0x80) != 0;
    const bool sig = ctq.size() == 2 && (ctq[0] & 0x40) != 0;
    bool unavailable = false;
    const clss_cvm c = choose_cvm(app, cdcvm, pin, sig, unavailable);
    if (unavailable) return finish(clss_outcome::try_another_interface, "emv.clss_cvm_unavailable");
    record_cvm(c);
    switch ((*cid)[0] & 0xC0) {
      case 0x00:
        return finish(clss_outcome::declined, "emv.card_declined");
      case 0x80:
        set_bit(tvr, tvr::oda_not_performed);
        return online("");
      case 0x40:
        break;
      default:
        return finish(clss_outcome::end_application, "emv.bad_cid");
    }
    // TC: offline approval only at or below the floor limit, with fDDA (Visa: the SDAD signs
    // UN || amount || currency || card authentication related data 9F69).
    if (txn.amount > app.floor_limit || txn.force_online)
      return finish(clss_outcome::declined, "emv.clss_tc_above_floor");
    if ((store.get_or_empty(t_aip)[0] & 0x20) == 0 || !store.has(t_sdad) || !term.oda.dda) {
      set_bit(tvr, tvr::oda_not_performed);
      return finish(clss_outcome::declined, "emv.clss_no_fdda");
    }
    bool ok = false;
    if (auto icc = icc_key_for_oda()) {
      bytes tail;
      for (const auto tag : {t_un, t_amount, t_currency, t_card_auth_data}) {
        const auto v = store.get_or_empty(tag);
        tail.insert(tail.end(), v.begin(), v.end());
      }
      auto dn = verify_sdad(*icc, store.get_or_empty(t_sdad), tail);
      if (dn) {
        store.set(t_icc_dn, *dn);
        ok = true;
      }
    }
    if (!ok) {
      set_bit(tvr, tvr::dda_failed);
      return finish(clss_outcome::declined, "emv.fdda_failed");
    }
    return finish(clss_outcome::approved, "");
  }

  const contactless_result& evaluate_mchip(const planned_app& app, std::span<const bytes> rapdus) {
    const auto cdol1 = store.get(t_cdol1);
    if (!cdol1) return finish(clss_outcome::end_application, "emv.icc_data_missing");
    if (!same(*cdol1, app.expected.cdol1)) {
      if (!parse_dol(*cdol1)) return finish(clss_outcome::end_application, "emv.bad_dol");
      const bytes found(cdol1->begin(), cdol1->end());
      learn(app, [&](contactless_aid& e) { e.cdol1 = found; });
      return finish(clss_outcome::try_again, "emv.clss_cdol1_changed");
    }
    const bytes& r = rapdus[*app.genac];
    if (sw_of(r) != 0x9000) return finish(clss_outcome::end_application, "emv.generate_ac_failed");
    bytes sdad, signed_tlvs;
    {
      decoded_tlvs g(data_of(r));
      if (!g.ok || g.list.size() != 1) return finish(clss_outcome::end_application, "emv.generate_ac_failed");
      const tlv& top = g.list[0];
      if (top.tag == t_fmt1) {
        const auto& v = top.value;
        if (v.size() < 11 || v.size() > 43)
          return finish(clss_outcome::end_application, "emv.generate_ac_failed");
        set_card(t_cid, byte_view(v).first(1));
        set_card(t_atc, byte_view(v).subspan(1, 2));
        set_card(t_ac, byte_view(v).subspan(3, 8));
        if (v.size() > 11) set_card(t_iad, byte_view(v).subspan(11));
      } else if (top.tag == t_fmt2) {
        for (const auto& child : top.children) {
          if (child.constructed()) return finish(clss_outcome::end_application, "emv.generate_ac_failed");
          if (child.tag == t_sdad) {
            sdad = child.value;
            continue;
          }
          const bytes enc = tlv_encode(child);
          signed_tlvs.insert(signed_tlvs.end(), enc.begin(), enc.end());
          if (!set_card(child.tag, child.value))
            return finish(clss_outcome::end_application, "emv.duplicate_data");
        }
      } else {
        return finish(clss_outcome::end_application, "emv.generate_ac_failed");
      }
    }
    const auto cid = store.get(t_cid);
    if (!cid || cid->size() != 1 || !store.has(t_atc))
      return finish(clss_outcome::end_application, "emv.generate_ac_failed");
    const std::uint8_t type = (*cid)[0] & 0xC0;
    const std::uint8_t asked = app.genac_p1 & 0xC0;
    // The card may grant less than asked (AAC < ARQC < TC), never more.
    if (type == 0xC0 || (asked == 0x80 && type == 0x40))
      return finish(clss_outcome::end_application, "emv.generate_ac_failed");

    const bool cda = (app.genac_p1 & 0x10) != 0 && (store.get_or_empty(t_aip)[0] & 0x01) != 0;
    if (type != 0x00) {
      if (cda) {
        bool ok = false;
        if (!sdad.empty()) {
          if (auto icc = icc_key_for_oda()) {
            bytes tdhc_input = app.pdol_data;
            tdhc_input.insert(tdhc_input.end(), app.cdol1_data.begin(), app.cdol1_data.end());
            tdhc_input.insert(tdhc_input.end(), signed_tlvs.begin(), signed_tlvs.end());
            auto v = verify_cda(*icc, sdad, store.get_or_empty(t_un), tdhc_input, (*cid)[0]);
            if (v) {
              store.set(t_ac, v->ac);
              store.set(t_icc_dn, v->icc_dynamic_number);
              store.set(t_sdad, sdad);
              card_tags.insert(t_ac);
              ok = true;
            }
          }
        }
        if (!ok) {
          set_bit(tvr, tvr::cda_failed);
          return finish(clss_outcome::declined, "emv.cda_failed");
        }
      } else {
        set_bit(tvr, tvr::oda_not_performed);
      }
      if (store.get_or_empty(t_ac).size() != 8)
        return finish(clss_outcome::end_application, "emv.icc_data_missing");
    }

    // CVM: on-device verification when the card supports it (AIP byte 1 bit 2) and a CVM is
    // required; else the card's CVM list decides between online PIN and signature.
    bool list_pin = false, list_sig = false;
    const auto list = store.get_or_empty(t_cvm_list);
    for (std::size_t i = 8; i + 1 < list.size(); i += 2) {
      const std::uint8_t code = list[i] & 0x3F;
      if (code == 0x02) list_pin = true;
      if (code == 0x1E) list_sig = true;
    }
    const bool required = app.cvm_limited && txn.amount >= app.cvm_limit;
    const bool no_list = list.size() < 10;
    bool unavailable = false;
    clss_cvm c = clss_cvm::none;
    if (required) {
      if ((store.get_or_empty(t_aip)[0] & 0x02) != 0 && cfg.ttq.cdcvm)
        c = clss_cvm::cdcvm_done;
      else if ((no_list || list_pin) && cfg.ttq.online_pin && cfg.ttq.online_capable)
        c = clss_cvm::online_pin;
      else if ((no_list || list_sig) && cfg.ttq.signature)
        c = clss_cvm::signature;
      else
        unavailable = true;
    }
    if (unavailable) return finish(clss_outcome::try_another_interface, "emv.clss_cvm_unavailable");
    record_cvm(c);

    if (type == 0x00) return finish(clss_outcome::declined, "emv.card_declined");
    if (type == 0x80) return online("");
    if (txn.amount > app.floor_limit) return finish(clss_outcome::declined, "emv.clss_tc_above_floor");
    if (!cda) return finish(clss_outcome::declined, "emv.clss_no_cda");
    return finish(clss_outcome::approved, "");
  }
};

contactless_kernel::contactless_kernel(const terminal_config& term, const contactless_config& cfg,
                                       contactless_cache& cache, const capk_table* capks, transaction txn)
    : impl_(std::make_unique<impl>(term, cfg, cache, capks, std::move(txn))) {}
contactless_kernel::~contactless_kernel() = default;

const std::vector<bytes>& contactless_kernel::plan() {
  if (!impl_->planned) impl_->make_plan();
  return impl_->script;
}

const contactless_result& contactless_kernel::evaluate(std::span<const bytes> rapdus,
                                                       std::uint32_t elapsed_ms) {
  if (!impl_->planned) impl_->make_plan();
  if (impl_->evaluated) return impl_->res;
  return impl_->run_evaluate(rapdus, elapsed_ms);
}

void contactless_kernel::feed_online_result(const online_result& r) {
  if (impl_->res.outcome == clss_outcome::online_request) impl_->res.host_approved = r.approved;
}
void contactless_kernel::feed_online_failed() {
  if (impl_->res.outcome == clss_outcome::online_request) impl_->res.host_approved = false;
}

const contactless_result& contactless_kernel::result() const {
  return impl_->res;
}
const tlv_store& contactless_kernel::data() const {
  return impl_->store;
}
tvr_bytes contactless_kernel::tvr() const {
  return impl_->tvr;
}

}  // namespace eftd::emv
