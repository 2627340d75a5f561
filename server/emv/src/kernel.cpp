#include "eftd/emv/kernel.hpp"

#include <algorithm>
#include <array>
#include <coroutine>
#include <exception>
#include <set>
#include <utility>

#include "apdu_util.hpp"
#include "eftd/core/crypto.hpp"
#include "eftd/core/tlv.hpp"
#include "task.hpp"

namespace eftd::emv {

namespace {

constexpr std::string_view pse_name = "1PAY.SYS.DDF01";

// Tags of Book 3 Annex A this kernel uses, by name, so the flow reads as the spec does.
enum : std::uint32_t {
  t_aid_card = 0x4F,
  t_label = 0x50,
  t_track2 = 0x57,
  t_pan = 0x5A,
  t_template_fci = 0x6F,
  t_record = 0x70,
  t_script1 = 0x71,
  t_script2 = 0x72,
  t_gpo_fmt2 = 0x77,
  t_gpo_fmt1 = 0x80,
  t_amount_bin = 0x81,
  t_aip = 0x82,
  t_df_name = 0x84,
  t_script_cmd = 0x86,
  t_priority = 0x87,
  t_sfi = 0x88,
  t_arc = 0x8A,
  t_cdol1 = 0x8C,
  t_cdol2 = 0x8D,
  t_cvm_list = 0x8E,
  t_capk_index = 0x8F,
  t_issuer_cert = 0x90,
  t_issuer_auth = 0x91,
  t_issuer_rem = 0x92,
  t_ssad = 0x93,
  t_afl = 0x94,
  t_tvr = 0x95,
  t_date = 0x9A,
  t_tsi = 0x9B,
  t_txn_type = 0x9C,
  t_fci_prop = 0xA5,
  t_expiry = 0x5F24,
  t_effective = 0x5F25,
  t_issuer_country = 0x5F28,
  t_currency = 0x5F2A,
  t_currency_exp = 0x5F36,
  t_amount = 0x9F02,
  t_other_amount = 0x9F03,
  t_other_amount_bin = 0x9F04,
  t_aid_terminal = 0x9F06,
  t_auc = 0x9F07,
  t_card_version = 0x9F08,
  t_terminal_version = 0x9F09,
  t_iad = 0x9F10,
  t_preferred_name = 0x9F12,
  t_last_online_atc = 0x9F13,
  t_lcol = 0x9F14,
  t_mcc = 0x9F15,
  t_merchant_id = 0x9F16,
  t_pin_tries = 0x9F17,
  t_script_id = 0x9F18,
  t_terminal_country = 0x9F1A,
  t_terminal_id = 0x9F1C,
  t_ifd_serial = 0x9F1E,
  t_time = 0x9F21,
  t_ucol = 0x9F23,
  t_ac = 0x9F26,
  t_cid = 0x9F27,
  t_pin_cert = 0x9F2D,
  t_pin_exp = 0x9F2E,
  t_pin_rem = 0x9F2F,
  t_issuer_exp = 0x9F32,
  t_capabilities = 0x9F33,
  t_cvm_results = 0x9F34,
  t_terminal_type = 0x9F35,
  t_atc = 0x9F36,
  t_un = 0x9F37,
  t_pdol = 0x9F38,
  t_pos_entry = 0x9F39,
  t_additional_caps = 0x9F40,
  t_app_currency = 0x9F42,
  t_dac = 0x9F45,
  t_icc_cert = 0x9F46,
  t_icc_exp = 0x9F47,
  t_icc_rem = 0x9F48,
  t_ddol = 0x9F49,
  t_sda_tags = 0x9F4A,
  t_sdad = 0x9F4B,
  t_icc_dn = 0x9F4C,
  t_script_results = 0x9F5B,
};

using detail::bcd;
using detail::bcd_digits;
using detail::be;
using detail::data_of;
using detail::same;
using detail::starts_with;
using detail::sw_of;

bytes apdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, byte_view data, bool le) {
  bytes c{cla, ins, p1, p2};
  if (!data.empty()) {
    c.push_back(static_cast<std::uint8_t>(data.size()));
    c.insert(c.end(), data.begin(), data.end());
  }
  if (le) c.push_back(0x00);
  return c;
}

// The command again with Le = `le` (6Cxx: the card says how many bytes it has).
bytes with_le(bytes cmd, std::uint8_t le) {
  if (cmd.size() == 4) {
    cmd.push_back(le);
  } else if (cmd.size() == 5) {
    cmd[4] = le;
  } else {
    const std::size_t lc = cmd[4];
    if (cmd.size() == 5 + lc)
      cmd.push_back(le);
    else
      cmd.back() = le;
  }
  return cmd;
}

// Records hold the PAN and track 2 equivalent data: decoded copies are wiped when dropped.
void wipe_tlvs(std::vector<tlv>& list) {
  for (auto& t : list) {
    if (!t.value.empty()) secure_wipe(t.value.data(), t.value.size());
    wipe_tlvs(t.children);
  }
}

struct tlv_wiper {
  result<std::vector<tlv>>& r;
  ~tlv_wiper() {
    if (r.has_value()) wipe_tlvs(r.value());
  }
};

std::uint16_t u16(byte_view v) {
  return v.size() == 2 ? static_cast<std::uint16_t>((v[0] << 8) | v[1]) : 0;
}

}  // namespace

std::string_view to_string(outcome o) {
  switch (o) {
    case outcome::approved_offline:
      return "approved_offline";
    case outcome::declined_offline:
      return "declined_offline";
    case outcome::approved_online:
      return "approved_online";
    case outcome::declined_online:
      return "declined_online";
    case outcome::declined_after_approval:
      return "declined_after_approval";
    case outcome::fallback_to_magstripe:
      return "fallback_to_magstripe";
    case outcome::end_application:
      return "end_application";
  }
  return "unknown";
}

bytes terminal_capabilities(const terminal_config& cfg) {
  if (cfg.capabilities_override && cfg.capabilities_override->size() == 3) return *cfg.capabilities_override;
  std::uint8_t b2 = 0, b3 = 0;
  if (cfg.cvm.offline_plain_pin) b2 |= 0x80;
  if (cfg.cvm.online_pin) b2 |= 0x40;
  if (cfg.cvm.signature) b2 |= 0x20;
  if (cfg.cvm.offline_enciphered_pin) b2 |= 0x10;
  if (cfg.cvm.no_cvm) b2 |= 0x08;
  if (cfg.oda.sda) b3 |= 0x80;
  if (cfg.oda.dda) b3 |= 0x40;
  if (cfg.card_capture) b3 |= 0x20;
  if (cfg.oda.cda) b3 |= 0x08;
  return {cfg.input_capabilities, b2, b3};
}

namespace {
constexpr std::array<std::uint32_t, 22> field55_list{
    0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A,   0x9C,   0x9F02, 0x9F03, 0x5F2A,
    0x82,   0x9F1A, 0x9F33, 0x9F34, 0x9F35, 0x84, 0x9F09, 0x9F1E, 0x5F34, 0x9F41, 0x9F53};
}  // namespace

std::span<const std::uint32_t> field55_tags() {
  return field55_list;
}

bytes build_field55(const tlv_store& store) {
  std::vector<tlv> list;
  for (const auto tag : field55_list) {
    const auto v = store.get(tag);
    if (!v) continue;
    list.push_back(tlv{tag, bytes(v->begin(), v->end()), {}});
  }
  return tlv_encode(list);
}

// ---------------------------------------------------------------------------------------

struct contact_kernel::impl {
  enum class answer_kind {
    none,
    rapdu,
    rapdus,
    transmit_failed,
    choice,
    choice_cancelled,
    pin,
    ack,
    online,
    online_failed
  };
  enum class oda_method { none, sda, dda, cda };
  // Results of a CVM attempt.
  enum class cvm_outcome { success, success_unknown, failed };

  impl(const terminal_config& c, const capk_table* k, transaction t) : cfg(c), capks(k), txn(std::move(t)) {}
  ~impl() {
    main.reset();  // the coroutine frames first: they may refer to the members below
    for (auto& r : oda_records)
      if (!r.record.empty()) secure_wipe(r.record.data(), r.record.size());
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  terminal_config cfg;
  const capk_table* capks = nullptr;
  transaction txn;
  tlv_store store;
  tvr_bytes tvr{};
  tsi_bytes tsi{};

  std::optional<step> pending;
  std::coroutine_handle<> resume_point;
  std::optional<detail::task<bool>> main;
  bool done = false;

  answer_kind answer = answer_kind::none;
  bytes answer_rapdu;
  std::vector<bytes> answer_rapdus;
  std::size_t answer_choice = 0;
  pin_result answer_pin = pin_result::failed;
  online_result answer_online;

  std::set<std::uint32_t> terminal_tags;
  std::set<std::uint32_t> card_tags;
  std::vector<candidate> candidates;
  const application_config* app = nullptr;
  bytes pdol_data;
  bytes cdol1_data;
  std::vector<oda_record> oda_records;
  oda_method oda = oda_method::none;
  bool oda_failed = false;
  std::optional<rsa_key> issuer_key;
  std::optional<rsa_key> icc_key;
  secure_bytes pan;  // ASCII digits
  std::uint32_t today = 0;
  bool pin_bypassed = false;
  bool unable_online = false;
  bytes script_results;

  // ---- plumbing -----------------------------------------------------------------------

  detail::answer_awaiter wait() { return detail::answer_awaiter{&resume_point}; }

  void finish(outcome o, std::string reason) {
    sync();
    pending = finished{o, std::move(reason)};
    done = true;
  }

  void sync() {
    store.set(t_tvr, tvr);
    store.set(t_tsi, tsi);
  }

  void set_terminal(std::uint32_t tag, byte_view v) {
    store.set(tag, v);
    terminal_tags.insert(tag);
  }

  void set_card(std::uint32_t tag, byte_view v) {
    if (terminal_tags.count(tag)) return;  // a card never overrides what the terminal says
    store.set(tag, v);
    card_tags.insert(tag);
  }

  void forget_card_data() {
    for (const auto t : card_tags) store.erase(t);
    card_tags.clear();
  }

  std::string_view pan_view() const { return {reinterpret_cast<const char*>(pan.view().data()), pan.size()}; }

  void random(std::span<std::uint8_t> out) {
    if (txn.random) {
      txn.random(out);
    } else {
      const auto r = random_bytes(out.size());
      std::copy(r.view().begin(), r.view().end(), out.begin());
    }
  }

  // One command to the card with T=0 chaining handled: the full answer (data + SW) or, when
  // the card or the pad failed, an empty buffer with the transaction finished.
  detail::task<bytes> exchange(bytes cmd) {
    bytes data;
    for (int round = 0; round < 16; ++round) {
      pending = send_apdu{cmd};
      co_await wait();
      if (answer != answer_kind::rapdu) {
        finish(outcome::end_application,
               answer == answer_kind::transmit_failed ? "emv.card_error" : "emv.kernel_misuse");
        co_return bytes{};
      }
      bytes r = std::move(answer_rapdu);
      if (r.size() < 2) {
        finish(outcome::end_application, "emv.card_error");
        co_return bytes{};
      }
      const std::uint8_t sw1 = r[r.size() - 2], sw2 = r[r.size() - 1];
      if (sw1 == 0x61) {  // more data waiting: GET RESPONSE for it
        data.insert(data.end(), r.begin(), r.end() - 2);
        cmd = bytes{0x00, 0xC0, 0x00, 0x00, sw2};
        continue;
      }
      if (sw1 == 0x6C) {  // wrong Le: the card names the right one
        cmd = with_le(std::move(cmd), sw2);
        continue;
      }
      data.insert(data.end(), r.begin(), r.end());
      co_return data;
    }
    finish(outcome::end_application, "emv.card_error");
    co_return bytes{};
  }

  // ---- the transaction ----------------------------------------------------------------

  void init_terminal_data() {
    const std::uint16_t currency = txn.currency ? txn.currency : cfg.currency_code;
    set_terminal(t_terminal_type, bytes{cfg.terminal_type});
    set_terminal(t_capabilities, terminal_capabilities(cfg));
    set_terminal(t_additional_caps, cfg.additional_capabilities);
    set_terminal(t_terminal_country, bcd(cfg.country_code, 2));
    set_terminal(t_currency, bcd(currency, 2));
    set_terminal(t_currency_exp, bytes{cfg.currency_exponent});
    set_terminal(t_date, bcd_digits(txn.date));
    set_terminal(t_time, bcd_digits(txn.time.size() == 6 ? txn.time : "000000"));
    set_terminal(t_txn_type, bytes{txn.type});
    set_terminal(t_amount, bcd(txn.amount, 6));
    set_terminal(t_other_amount, bcd(txn.other_amount, 6));
    set_terminal(t_amount_bin, be(std::min<std::uint64_t>(txn.amount, 0xFFFFFFFFu), 4));
    set_terminal(t_other_amount_bin, be(std::min<std::uint64_t>(txn.other_amount, 0xFFFFFFFFu), 4));
    bytes un(4);
    random(un);
    set_terminal(t_un, un);
    set_terminal(t_cvm_results, bytes{cvm::no_cvm_performed, 0x00, 0x00});
    set_terminal(t_ifd_serial, cfg.ifd_serial);
    set_terminal(t_pos_entry, bytes{0x05});
    if (!cfg.terminal_id.empty()) set_terminal(t_terminal_id, cfg.terminal_id);
    if (!cfg.merchant_id.empty()) set_terminal(t_merchant_id, cfg.merchant_id);
    if (!cfg.merchant_category.empty()) set_terminal(t_mcc, cfg.merchant_category);
    terminal_tags.insert(
        {t_tvr, t_tsi, t_arc, t_issuer_auth, t_aid_terminal, t_terminal_version, t_script_results});
    sync();
  }

  const application_config* find_app(byte_view aid) const {
    for (const auto& a : cfg.applications)
      if (same(a.aid, aid)) return &a;
    for (const auto& a : cfg.applications)
      if (a.partial_match && aid.size() > a.aid.size() && starts_with(aid, a.aid)) return &a;
    return nullptr;
  }

  void add_candidate(const std::vector<tlv>& entry, byte_view aid) {
    if (std::any_of(candidates.begin(), candidates.end(),
                    [&](const candidate& c) { return same(c.aid, aid); }))
      return;
    candidate c;
    c.aid.assign(aid.begin(), aid.end());
    const tlv* label = tlv_find(entry, t_label, false);
    const tlv* name = tlv_find(entry, t_preferred_name, false);
    const tlv* prio = tlv_find(entry, t_priority, false);
    if (name && !name->value.empty())
      c.label.assign(name->value.begin(), name->value.end());
    else if (label)
      c.label.assign(label->value.begin(), label->value.end());
    // Labels go to a display: keep them printable.
    for (auto& ch : c.label)
      if (ch < 0x20 || ch > 0x7E) ch = '?';
    if (prio && prio->value.size() == 1) {
      c.priority = prio->value[0] & 0x0F;
      c.confirmation_required = (prio->value[0] & 0x80) != 0;
    }
    candidates.push_back(std::move(c));
  }

  // The FCI's 84 and A5 children, or nullopt when it is not an FCI template.
  static std::optional<std::vector<tlv>> parse_fci(byte_view data) {
    auto decoded = tlv_decode(data);
    if (!decoded || decoded->empty() || (*decoded)[0].tag != t_template_fci) return std::nullopt;
    return (*decoded)[0].children;
  }

  // Commands that change nothing on the card, in as few round trips as the engine allows
  // (terminal_config::batch_apdus): one answer per command, in order, each with its SW; empty
  // with the transaction finished when the card or the pad failed. Without batching, or for one
  // command, they go one by one through exchange(). An answer still asking for T=0 chaining
  // (61xx, 6Cxx: a pad that runs scripts must have done it) is fetched again on its own.
  // stop_sw: once an answer has this SW, the commands after it are not sent again (the answer
  // list ends there).
  detail::task<std::vector<bytes>> exchange_many(std::vector<bytes> cmds,
                                                 std::optional<std::uint16_t> stop_sw = std::nullopt) {
    std::vector<bytes> out;
    std::size_t next = 0;
    while (next < cmds.size()) {
      if (stop_sw && !out.empty() && sw_of(out.back()) == *stop_sw) break;
      if (!cfg.batch_apdus || cmds.size() - next == 1) {
        auto t = exchange(cmds[next]);
        bytes r = co_await t;
        if (done) co_return std::vector<bytes>{};
        out.push_back(std::move(r));
        ++next;
        continue;
      }
      pending = send_apdus{std::vector<bytes>(cmds.begin() + static_cast<std::ptrdiff_t>(next), cmds.end())};
      co_await wait();
      if (answer != answer_kind::rapdus) {
        finish(outcome::end_application,
               answer == answer_kind::transmit_failed ? "emv.card_error" : "emv.kernel_misuse");
        co_return std::vector<bytes>{};
      }
      std::vector<bytes> got = std::move(answer_rapdus);
      answer_rapdus.clear();
      if (got.empty() || got.size() > cmds.size() - next) {
        finish(outcome::end_application, "emv.kernel_misuse");
        co_return std::vector<bytes>{};
      }
      for (auto& r : got) {
        if (r.size() < 2) {
          finish(outcome::end_application, "emv.card_error");
          co_return std::vector<bytes>{};
        }
        const std::uint8_t sw1 = r[r.size() - 2];
        if (sw1 == 0x61 || sw1 == 0x6C) {
          secure_wipe(r.data(), r.size());
          auto t = exchange(cmds[next]);
          bytes again = co_await t;
          if (done) co_return std::vector<bytes>{};
          out.push_back(std::move(again));
          ++next;
          break;  // the rest of this round's answers are dropped and asked for again
        }
        out.push_back(std::move(r));
        ++next;
      }
      for (auto& r : got)
        if (!r.empty()) secure_wipe(r.data(), r.size());
    }
    co_return out;
  }

  // PSE: the directory records list the card's applications (Book 1 12.3.2).
  detail::task<bool> pse_candidates() {
    bytes cmd = apdu(0x00, 0xA4, 0x04, 0x00, as_bytes(pse_name), true);
    auto t = exchange(std::move(cmd));
    bytes r = co_await t;
    if (done) co_return false;
    const auto sw = sw_of(r);
    if (sw == 0x6A81) {  // card blocked or SELECT not supported: the session ends
      finish(outcome::end_application, "emv.card_blocked");
      co_return false;
    }
    if (sw != 0x9000) co_return true;
    const auto fci = parse_fci(data_of(r));
    if (!fci) co_return true;
    const tlv* sfi = tlv_find(*fci, t_sfi, true);
    if (!sfi || sfi->value.size() != 1 || sfi->value[0] < 1 || sfi->value[0] > 30) co_return true;

    // The directory's records up to the first 6A83. With batch_apdus, four at a time (a
    // directory rarely has more; reading past its end changes nothing on the card).
    const unsigned per_round = cfg.batch_apdus ? 4 : 1;
    for (unsigned rec = 1; rec <= 255; rec += per_round) {
      std::vector<bytes> reads;
      for (unsigned r = rec; r < rec + per_round && r <= 255; ++r)
        reads.push_back(apdu(0x00, 0xB2, static_cast<std::uint8_t>(r),
                             static_cast<std::uint8_t>((sfi->value[0] << 3) | 4), {}, true));
      auto rt = exchange_many(std::move(reads), 0x6A83);
      const std::vector<bytes> answers = co_await rt;
      if (done) co_return false;
      for (const auto& rec_answer : answers) {
        const auto rsw = sw_of(rec_answer);
        if (rsw == 0x6A83) co_return true;
        auto decoded = tlv_decode(data_of(rec_answer));
        if (rsw != 0x9000 || !decoded || decoded->size() != 1 || (*decoded)[0].tag != t_record) {
          // A broken directory: forget it and use the list of AIDs (Book 1 12.3.2).
          candidates.clear();
          co_return true;
        }
        for (const auto& entry : (*decoded)[0].children) {
          if (entry.tag != 0x61) continue;
          const tlv* aid = tlv_find(entry.children, t_aid_card, false);
          if (!aid) continue;  // a DDF entry (9D) or a broken one: this kernel reads one level
          if (aid->value.size() < 5 || aid->value.size() > 16) continue;
          if (find_app(aid->value)) add_candidate(entry.children, aid->value);
        }
      }
    }
    co_return true;
  }

  // List of AIDs: SELECT each terminal AID, and SELECT next for partial matches (Book 1 12.3.3).
  detail::task<bool> list_candidates() {
    for (const auto& a : cfg.applications) {
      for (int occurrence = 0; occurrence < 16; ++occurrence) {
        bytes cmd = apdu(0x00, 0xA4, 0x04, occurrence == 0 ? 0x00 : 0x02, a.aid, true);
        auto t = exchange(std::move(cmd));
        bytes r = co_await t;
        if (done) co_return false;
        const auto sw = sw_of(r);
        if (sw != 0x9000 && sw != 0x6283) break;
        const bool blocked = sw == 0x6283;
        const auto fci = parse_fci(data_of(r));
        if (!fci) break;
        const tlv* df = tlv_find(*fci, t_df_name, false);
        if (!df) break;
        const tlv* prop = tlv_find(*fci, t_fci_prop, false);
        const std::vector<tlv> none;
        const auto& info = prop ? prop->children : none;
        if (same(df->value, a.aid)) {
          if (!blocked) add_candidate(info, df->value);
          if (!a.partial_match) break;
        } else if (a.partial_match && starts_with(df->value, a.aid)) {
          if (!blocked) add_candidate(info, df->value);
        } else {
          break;
        }
      }
    }
    co_return true;
  }

  detail::task<bool> build_candidates() {
    candidates.clear();
    if (cfg.use_pse) {
      auto t = pse_candidates();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    if (candidates.empty()) {
      auto t = list_candidates();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    // Priority 1 first; no priority after every prioritised application, in card order.
    std::stable_sort(candidates.begin(), candidates.end(), [](const candidate& x, const candidate& y) {
      const unsigned px = x.priority == 0 ? 16 : x.priority, py = y.priority == 0 ? 16 : y.priority;
      return px < py;
    });
    if (!cfg.cardholder_selection)
      std::erase_if(candidates, [](const candidate& c) { return c.confirmation_required; });
    co_return true;
  }

  void no_application() {
    finish(cfg.fallback_on_no_application ? outcome::fallback_to_magstripe : outcome::end_application,
           "emv.no_application");
  }

  // Choice (when needed) and final SELECT; removes candidates whose SELECT fails. Post: true
  // with the application selected and its FCI stored, or false with the transaction finished.
  detail::task<bool> choose_and_select() {
    for (;;) {
      if (candidates.empty()) {
        no_application();
        co_return false;
      }
      std::size_t idx = 0;
      if (cfg.cardholder_selection && (candidates.size() > 1 || candidates[0].confirmation_required)) {
        pending = choose_application{candidates};
        co_await wait();
        if (answer == answer_kind::choice_cancelled) {
          finish(outcome::end_application, "emv.cancelled");
          co_return false;
        }
        if (answer != answer_kind::choice || answer_choice >= candidates.size()) {
          finish(outcome::end_application, "emv.kernel_misuse");
          co_return false;
        }
        idx = answer_choice;
      }
      forget_card_data();
      bytes cmd = apdu(0x00, 0xA4, 0x04, 0x00, candidates[idx].aid, true);
      auto t = exchange(std::move(cmd));
      bytes r = co_await t;
      if (done) co_return false;
      const auto fci = sw_of(r) == 0x9000 ? parse_fci(data_of(r)) : std::nullopt;
      const tlv* df = fci ? tlv_find(*fci, t_df_name, false) : nullptr;
      const tlv* prop = fci ? tlv_find(*fci, t_fci_prop, false) : nullptr;
      if (!df || !prop || !same(df->value, candidates[idx].aid) || !find_app(df->value)) {
        candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(idx));
        continue;
      }
      app = find_app(df->value);
      set_card(t_df_name, df->value);
      for (const auto& child : prop->children) set_card(child.tag, child.value);
      set_terminal(t_aid_terminal, app->aid);
      set_terminal(t_terminal_version, app->app_version);
      candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(idx));
      co_return true;
    }
  }

  static bool valid_afl(byte_view afl) {
    if (afl.empty() || afl.size() % 4 != 0) return false;
    for (std::size_t i = 0; i < afl.size(); i += 4) {
      const std::uint8_t sfi = afl[i] >> 3;
      if ((afl[i] & 0x07) != 0 || sfi < 1 || sfi > 30) return false;
      if (afl[i + 1] == 0 || afl[i + 2] < afl[i + 1]) return false;
      if (afl[i + 3] > afl[i + 2] - afl[i + 1] + 1) return false;
    }
    return true;
  }

  // GET PROCESSING OPTIONS. 0: done; 1: conditions not satisfied, choose another application;
  // 2: the transaction finished.
  detail::task<int> initiate() {
    auto pdol = store.get(t_pdol);
    pdol_data.clear();
    if (pdol) {
      auto built = build_dol_data(*pdol, store);
      if (!built) {
        finish(outcome::end_application, "emv.bad_pdol");
        co_return 2;
      }
      pdol_data = std::move(built).value();
    }
    bytes body{0x83};
    body.push_back(static_cast<std::uint8_t>(pdol_data.size()));
    body.insert(body.end(), pdol_data.begin(), pdol_data.end());
    bytes cmd = apdu(0x80, 0xA8, 0x00, 0x00, body, true);
    auto t = exchange(std::move(cmd));
    bytes r = co_await t;
    if (done) co_return 2;
    const auto sw = sw_of(r);
    if (sw == 0x6985) co_return 1;
    if (sw != 0x9000) {
      finish(outcome::end_application, "emv.gpo_failed");
      co_return 2;
    }
    auto decoded = tlv_decode(data_of(r));
    bytes aip, afl;
    if (decoded && decoded->size() == 1 && (*decoded)[0].tag == t_gpo_fmt1 &&
        (*decoded)[0].value.size() >= 2) {
      const auto& v = (*decoded)[0].value;
      aip.assign(v.begin(), v.begin() + 2);
      afl.assign(v.begin() + 2, v.end());
    } else if (decoded && decoded->size() == 1 && (*decoded)[0].tag == t_gpo_fmt2) {
      for (const auto& child : (*decoded)[0].children) {
        if (card_tags.count(child.tag)) {
          finish(outcome::end_application, "emv.duplicate_data");
          co_return 2;
        }
        set_card(child.tag, child.value);
      }
      if (auto v = store.get(t_aip)) aip.assign(v->begin(), v->end());
      if (auto v = store.get(t_afl)) afl.assign(v->begin(), v->end());
    }
    if (aip.size() != 2 || !valid_afl(afl)) {
      finish(outcome::end_application, "emv.bad_gpo_response");
      co_return 2;
    }
    set_card(t_aip, aip);
    set_card(t_afl, afl);
    co_return 0;
  }

  // One record read: its data kept (and for ODA when the AFL says so). False: the
  // transaction is finished. Wipes the answer.
  bool take_record(std::uint8_t sfi, bool for_oda, bytes& r) {
    struct wiper {
      bytes& b;
      ~wiper() {
        if (!b.empty()) secure_wipe(b.data(), b.size());
      }
    } wipe_r{r};
    if (sw_of(r) != 0x9000) {
      finish(outcome::end_application, "emv.read_record_failed");
      return false;
    }
    const byte_view data = data_of(r);
    auto decoded = tlv_decode(data);
    const tlv_wiper wipe_decoded{decoded};
    const bool is_70 = decoded && decoded->size() == 1 && (*decoded)[0].tag == t_record;
    if (sfi <= 10 && !is_70) {
      finish(outcome::end_application, "emv.bad_record");
      return false;
    }
    if (for_oda) {
      if (is_70)
        oda_records.push_back(oda_record{sfi, bytes(data.begin(), data.end())});
      else
        oda_failed = true;  // SFI 11-30 records for ODA must be 70 templates too
    }
    if (is_70) {
      for (const auto& child : (*decoded)[0].children) {
        if (card_tags.count(child.tag)) {
          finish(outcome::end_application, "emv.duplicate_data");
          return false;
        }
        set_card(child.tag, child.value);
      }
    }
    return true;
  }

  detail::task<bool> read_records() {
    const bytes afl(store.get_or_empty(t_afl).begin(), store.get_or_empty(t_afl).end());
    struct wanted {
      std::uint8_t sfi;
      bool for_oda;
    };
    std::vector<wanted> list;
    std::vector<bytes> cmds;
    for (std::size_t i = 0; i < afl.size(); i += 4) {
      const std::uint8_t sfi = afl[i] >> 3;
      const std::uint8_t first = afl[i + 1], last = afl[i + 2], oda_count = afl[i + 3];
      for (unsigned rec = first; rec <= last; ++rec) {
        list.push_back({sfi, rec - first < oda_count});
        cmds.push_back(apdu(0x00, 0xB2, static_cast<std::uint8_t>(rec),
                            static_cast<std::uint8_t>((sfi << 3) | 4), {}, true));
      }
    }
    if (cfg.batch_apdus) {
      // Every record the AFL names in as few round trips as the pad allows (READ RECORD changes
      // nothing on the card), then each answer in AFL order.
      auto all = exchange_many(std::move(cmds));
      std::vector<bytes> answers = co_await all;
      if (done) co_return false;
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (!take_record(list[i].sfi, list[i].for_oda, answers[i])) {
          for (auto& a : answers)
            if (!a.empty()) secure_wipe(a.data(), a.size());
          co_return false;
        }
      }
    } else {
      // One at a time: the first record that fails ends the reading.
      for (std::size_t i = 0; i < list.size(); ++i) {
        auto t = exchange(std::move(cmds[i]));
        bytes r = co_await t;
        if (done) co_return false;
        if (!take_record(list[i].sfi, list[i].for_oda, r)) co_return false;
      }
    }
    for (const auto tag : {t_expiry, t_pan, t_cdol1, t_cdol2}) {
      if (!store.has(tag)) {
        finish(outcome::end_application, "emv.icc_data_missing");
        co_return false;
      }
    }
    // The PAN as digits (cn: trailing F padding) for ODA and the exception file.
    const byte_view p = store.get_or_empty(t_pan);
    secure_bytes digits(p.size() * 2);
    std::size_t n = 0;
    bool bad = false, ended = false;
    for (const auto b : p) {
      for (const std::uint8_t nib :
           {static_cast<std::uint8_t>(b >> 4), static_cast<std::uint8_t>(b & 0x0F)}) {
        if (nib == 0x0F)
          ended = true;
        else if (nib > 9 || ended)
          bad = true;
        else
          digits.mutable_view()[n++] = static_cast<std::uint8_t>('0' + nib);
      }
    }
    if (bad || n < 12 || n > 19) {
      finish(outcome::end_application, "emv.bad_pan");
      co_return false;
    }
    pan = secure_bytes(digits.view().first(n));
    co_return true;
  }

  // ---- offline data authentication (Book 3 10.3, Book 2) ------------------------------

  std::uint8_t aip1() const {
    const auto v = store.get_or_empty(t_aip);
    return v.empty() ? 0 : v[0];
  }

  bool recover_issuer() {
    if (issuer_key) return true;
    if (!capks) return false;
    const auto aid = store.get_or_empty(t_df_name);
    const auto index = store.get(t_capk_index);
    if (aid.size() < 5 || !index || index->size() != 1) return false;
    const ca_public_key* capk = capks->find(aid.first(5), (*index)[0]);
    if (!capk) return false;
    auto key = recover_issuer_key(*capk, store.get_or_empty(t_issuer_cert), store.get_or_empty(t_issuer_rem),
                                  store.get_or_empty(t_issuer_exp), pan_view(), txn.date);
    if (!key) return false;
    issuer_key = std::move(key).value();
    return true;
  }

  bool recover_icc(byte_view static_data) {
    if (!recover_issuer()) return false;
    auto key = recover_icc_key(*issuer_key, store.get_or_empty(t_icc_cert), store.get_or_empty(t_icc_rem),
                               store.get_or_empty(t_icc_exp), static_data, pan_view(), txn.date);
    if (!key) return false;
    icc_key = std::move(key).value();
    return true;
  }

  bool has_all(std::initializer_list<std::uint32_t> tags) const {
    return std::all_of(tags.begin(), tags.end(), [&](std::uint32_t t) { return store.has(t); });
  }

  detail::task<bool> offline_data_authentication() {
    const std::uint8_t a = aip1();
    if ((a & 0x01) && cfg.oda.cda)
      oda = oda_method::cda;
    else if ((a & 0x20) && cfg.oda.dda)
      oda = oda_method::dda;
    else if ((a & 0x40) && cfg.oda.sda)
      oda = oda_method::sda;
    if (oda == oda_method::none) {
      set_bit(tvr, tvr::oda_not_performed);
      co_return true;
    }
    set_bit(tsi, tsi::oda_performed);
    const bit failed_bit = oda == oda_method::cda   ? tvr::cda_failed
                           : oda == oda_method::dda ? tvr::dda_failed
                                                    : tvr::sda_failed;
    if (oda == oda_method::sda) set_bit(tvr, tvr::sda_selected);

    const bool data_present =
        oda == oda_method::sda ? has_all({t_capk_index, t_issuer_cert, t_issuer_exp, t_ssad})
                               : has_all({t_capk_index, t_issuer_cert, t_issuer_exp, t_icc_cert, t_icc_exp});
    if (!data_present) {
      set_bit(tvr, tvr::icc_data_missing);
      set_bit(tvr, failed_bit);
      oda_failed = true;
      co_return true;
    }
    auto static_data =
        oda_static_data(oda_records, store.get_or_empty(t_aip), store.get_or_empty(t_sda_tags));
    if (oda_failed || !static_data) {
      set_bit(tvr, failed_bit);
      oda_failed = true;
      co_return true;
    }

    if (oda == oda_method::sda) {
      bool ok = recover_issuer();
      if (ok) {
        auto dac = verify_ssad(*issuer_key, store.get_or_empty(t_ssad), *static_data);
        ok = dac.has_value();
        if (ok) set_card(t_dac, *dac);
      }
      if (!ok) {
        set_bit(tvr, failed_bit);
        oda_failed = true;
      }
      co_return true;
    }

    if (!recover_icc(*static_data)) {
      set_bit(tvr, failed_bit);
      oda_failed = true;
      co_return true;
    }
    if (oda == oda_method::cda) co_return true;  // the signature comes with GENERATE AC

    // DDA: INTERNAL AUTHENTICATE with the DDOL data (the card's DDOL, else the default).
    const auto card_ddol = store.get(t_ddol);
    static constexpr std::uint8_t un_only[] = {0x9F, 0x37, 0x04};
    const byte_view ddol = card_ddol                    ? *card_ddol
                           : !app->default_ddol.empty() ? byte_view(app->default_ddol)
                                                        : byte_view(un_only);
    auto entries = parse_dol(ddol);
    const bool has_un = entries && std::any_of(entries->begin(), entries->end(),
                                               [](const dol_entry& e) { return e.tag == t_un; });
    if (!has_un) {
      set_bit(tvr, failed_bit);
      oda_failed = true;
      co_return true;
    }
    const bytes ddol_data = build_dol_data(*entries, store);
    bytes cmd = apdu(0x00, 0x88, 0x00, 0x00, ddol_data, true);
    auto t = exchange(std::move(cmd));
    bytes r = co_await t;
    if (done) co_return false;
    bytes sdad;
    if (sw_of(r) == 0x9000) {
      auto decoded = tlv_decode(data_of(r));
      if (decoded && decoded->size() == 1 && (*decoded)[0].tag == t_gpo_fmt1) {
        sdad = (*decoded)[0].value;
      } else if (decoded && decoded->size() == 1 && (*decoded)[0].tag == t_gpo_fmt2) {
        if (const tlv* s = tlv_find((*decoded)[0].children, t_sdad, false)) sdad = s->value;
      }
    }
    auto dn = sdad.empty() ? result<bytes>(make_error("emv.oda_missing", "no SDAD"))
                           : verify_sdad(*icc_key, sdad, ddol_data);
    if (!dn) {
      set_bit(tvr, failed_bit);
      oda_failed = true;
    } else {
      set_card(t_sdad, sdad);
      set_card(t_icc_dn, *dn);
    }
    co_return true;
  }

  // ---- processing restrictions --------------------------------------------------------

  void restrictions() {
    restriction_inputs in;
    in.card_app_version = store.get(t_card_version);
    in.terminal_app_version = store.get_or_empty(t_terminal_version);
    in.auc = store.get(t_auc);
    in.issuer_country = store.get(t_issuer_country);
    in.terminal_country = store.get_or_empty(t_terminal_country);
    const std::uint8_t tt = cfg.terminal_type & 0x0F;
    in.atm = (tt >= 4 && tt <= 6) && !cfg.additional_capabilities.empty() &&
             (cfg.additional_capabilities[0] & 0x80);
    in.transaction_type = txn.type;
    in.services = txn.services;
    in.cashback = txn.other_amount > 0;
    in.effective = store.get(t_effective);
    in.expiry = store.get(t_expiry);
    in.today = today;
    processing_restrictions(in, tvr);
  }

  // ---- cardholder verification (Book 3 10.5) ------------------------------------------

  cvm_context cvm_ctx() const {
    cvm_context c;
    c.amount = txn.amount;
    const auto app_currency = store.get(t_app_currency);
    c.same_currency = app_currency && same(*app_currency, store.get_or_empty(t_currency));
    const std::uint8_t tt = cfg.terminal_type & 0x0F;
    c.unattended = tt >= 4 && tt <= 6;
    c.cash = txn.type == 0x01 || txn.type == 0x17;
    c.manual_cash = c.cash && !c.unattended;
    c.cashback = txn.type == 0x09 || txn.other_amount > 0;
    c.supported[cvm::fail] = true;
    c.supported[cvm::offline_plain_pin] = cfg.cvm.offline_plain_pin;
    c.supported[cvm::online_pin] =
        cfg.cvm.online_pin && capability_of(cfg.terminal_type) != online_capability::offline_only;
    c.supported[cvm::offline_plain_pin_signature] = cfg.cvm.offline_plain_pin && cfg.cvm.signature;
    c.supported[cvm::offline_enc_pin] = cfg.cvm.offline_enciphered_pin;
    c.supported[cvm::offline_enc_pin_signature] = cfg.cvm.offline_enciphered_pin && cfg.cvm.signature;
    c.supported[cvm::signature] = cfg.cvm.signature;
    c.supported[cvm::no_cvm] = cfg.cvm.no_cvm;
    return c;
  }

  // The ICC PIN encipherment key: its own certificate (9F2D) if the card has one, else the
  // ICC key of DDA/CDA (Book 2 7.1).
  std::optional<rsa_key> pin_key() {
    if (store.has(t_pin_cert) && recover_issuer()) {
      auto k = recover_icc_key(*issuer_key, store.get_or_empty(t_pin_cert), store.get_or_empty(t_pin_rem),
                               store.get_or_empty(t_pin_exp), {}, pan_view(), txn.date);
      if (k) return std::move(k).value();
      return std::nullopt;
    }
    if (icc_key) return icc_key;
    if (store.has(t_icc_cert) && !oda_records.empty()) {
      auto static_data =
          oda_static_data(oda_records, store.get_or_empty(t_aip), store.get_or_empty(t_sda_tags));
      if (static_data && recover_icc(*static_data)) return icc_key;
    }
    return std::nullopt;
  }

  detail::task<cvm_outcome> offline_pin(bool enciphered) {
    if (pin_bypassed) {
      set_bit(tvr, tvr::pin_not_entered);
      co_return cvm_outcome::failed;
    }
    std::optional<rsa_key> key;
    if (enciphered) {
      key = pin_key();
      if (!key) {
        set_bit(tvr, tvr::icc_data_missing);
        co_return cvm_outcome::failed;
      }
    }
    std::optional<std::uint8_t> tries;
    {
      bytes cmd{0x80, 0xCA, 0x9F, 0x17, 0x00};
      auto t = exchange(std::move(cmd));
      bytes r = co_await t;
      if (done) co_return cvm_outcome::failed;
      if (sw_of(r) == 0x9000) {
        auto decoded = tlv_decode(data_of(r));
        if (decoded && decoded->size() == 1 && (*decoded)[0].tag == t_pin_tries &&
            (*decoded)[0].value.size() == 1)
          tries = (*decoded)[0].value[0];
      }
    }
    if (tries && *tries == 0) {
      set_bit(tvr, tvr::pin_try_limit_exceeded);
      co_return cvm_outcome::failed;
    }
    for (int attempt = 0; attempt < 16; ++attempt) {
      need_offline_pin ask;
      ask.enciphered = enciphered;
      ask.tries_left = tries;
      ask.bypass_allowed = cfg.pin_bypass;
      if (enciphered) {
        bytes cmd{0x00, 0x84, 0x00, 0x00, 0x00};
        auto t = exchange(std::move(cmd));
        bytes r = co_await t;
        if (done) co_return cvm_outcome::failed;
        if (sw_of(r) != 0x9000 || data_of(r).size() != 8) co_return cvm_outcome::failed;
        ask.challenge.assign(data_of(r).begin(), data_of(r).end());
        ask.icc_pin_key_modulus = key->modulus;
        ask.icc_pin_key_exponent = key->exponent;
      }
      pending = std::move(ask);
      co_await wait();
      if (answer == answer_kind::pin) {
        if (answer_pin == pin_result::bypassed && cfg.pin_bypass) {
          pin_bypassed = true;
          set_bit(tvr, tvr::pin_not_entered);
        } else {
          set_bit(tvr, tvr::pin_pad_not_working);
        }
        co_return cvm_outcome::failed;
      }
      if (answer != answer_kind::rapdu) {
        finish(outcome::end_application, "emv.kernel_misuse");
        co_return cvm_outcome::failed;
      }
      const auto sw = sw_of(answer_rapdu);
      if (sw == 0x9000) co_return cvm_outcome::success;
      if ((sw & 0xFFF0) == 0x63C0) {
        tries = static_cast<std::uint8_t>(sw & 0x0F);
        if (*tries == 0) {
          set_bit(tvr, tvr::pin_try_limit_exceeded);
          co_return cvm_outcome::failed;
        }
        continue;
      }
      if (sw == 0x6983 || sw == 0x6984) {
        set_bit(tvr, tvr::pin_try_limit_exceeded);
        co_return cvm_outcome::failed;
      }
      co_return cvm_outcome::failed;
    }
    co_return cvm_outcome::failed;
  }

  detail::task<cvm_outcome> online_pin() {
    if (pin_bypassed) {
      set_bit(tvr, tvr::pin_not_entered);
      co_return cvm_outcome::failed;
    }
    pending = need_online_pin{cfg.pin_bypass};
    co_await wait();
    if (answer != answer_kind::pin) {
      finish(outcome::end_application, "emv.kernel_misuse");
      co_return cvm_outcome::failed;
    }
    if (answer_pin == pin_result::entered) {
      set_bit(tvr, tvr::online_pin_entered);
      co_return cvm_outcome::success_unknown;
    }
    if (answer_pin == pin_result::bypassed && cfg.pin_bypass) {
      pin_bypassed = true;
      set_bit(tvr, tvr::pin_not_entered);
    } else {
      set_bit(tvr, tvr::pin_pad_not_working);
    }
    co_return cvm_outcome::failed;
  }

  detail::task<bool> signature() {
    pending = need_signature{};
    co_await wait();
    if (answer != answer_kind::ack) {
      finish(outcome::end_application, "emv.kernel_misuse");
      co_return false;
    }
    co_return true;
  }

  detail::task<cvm_outcome> perform_cvm(std::uint8_t method) {
    switch (method) {
      case cvm::fail:
        co_return cvm_outcome::failed;
      case cvm::no_cvm:
        co_return cvm_outcome::success;
      case cvm::signature: {
        auto t = signature();
        const bool ok = co_await t;
        co_return ok ? cvm_outcome::success_unknown : cvm_outcome::failed;
      }
      case cvm::online_pin: {
        auto t = online_pin();
        const auto r = co_await t;
        co_return r;
      }
      default: {
        const bool enc = method == cvm::offline_enc_pin || method == cvm::offline_enc_pin_signature;
        auto t = offline_pin(enc);
        const auto r = co_await t;
        if (r == cvm_outcome::failed || done) co_return r;
        if (method == cvm::offline_plain_pin_signature || method == cvm::offline_enc_pin_signature) {
          auto s = signature();
          const bool ok = co_await s;
          co_return ok ? cvm_outcome::success_unknown : cvm_outcome::failed;
        }
        co_return r;
      }
    }
  }

  detail::task<bool> cardholder_verification() {
    if ((aip1() & 0x10) == 0) co_return true;  // the card does not support CVM
    auto list = parse_cvm_list(store.get_or_empty(t_cvm_list));
    if (!list) {
      // No usable CVM list (Book 3 10.5): ICC data missing, verification not performed.
      set_bit(tvr, tvr::icc_data_missing);
      set_terminal(t_cvm_results, bytes{cvm::no_cvm_performed, 0x00, 0x00});
      co_return true;
    }
    set_bit(tsi, tsi::cvm_performed);
    const cvm_context ctx = cvm_ctx();
    std::optional<cvm_rule> last_applied;
    for (const auto& rule : list->rules) {
      const auto cond = cvm_condition(rule, *list, ctx);
      if (cond != condition_result::satisfied) continue;
      last_applied = rule;
      const std::uint8_t m = rule.method();
      bool failed = false;
      if (!cvm_recognised(m)) {
        set_bit(tvr, tvr::unrecognised_cvm);
        failed = true;
      } else if (!ctx.supported[m]) {
        failed = true;
      } else {
        auto t = perform_cvm(m);
        const auto r = co_await t;
        if (done) co_return false;
        if (r != cvm_outcome::failed) {
          const std::uint8_t res = r == cvm_outcome::success ? 0x02 : 0x00;
          set_terminal(t_cvm_results, bytes{rule.code, rule.condition, res});
          co_return true;
        }
        failed = true;
      }
      if (failed && !rule.apply_next()) break;
    }
    set_bit(tvr, tvr::cvm_not_successful);
    if (last_applied)
      set_terminal(t_cvm_results, bytes{last_applied->code, last_applied->condition, 0x01});
    else
      set_terminal(t_cvm_results, bytes{cvm::no_cvm_performed, 0x00, 0x01});
    co_return true;
  }

  // ---- terminal risk management (Book 3 10.6) -----------------------------------------

  static bytes get_data(std::uint32_t tag) {
    return bytes{0x80, 0xCA, static_cast<std::uint8_t>(tag >> 8), static_cast<std::uint8_t>(tag), 0x00};
  }

  // A GET DATA answer for a 2-byte tag: its value, kept as card data, or nothing.
  std::optional<std::uint16_t> data_u16(std::uint32_t tag, const bytes& r) {
    if (sw_of(r) != 0x9000) return std::nullopt;
    auto decoded = tlv_decode(data_of(r));
    if (!decoded || decoded->size() != 1 || (*decoded)[0].tag != tag || (*decoded)[0].value.size() != 2)
      return std::nullopt;
    set_card(tag, (*decoded)[0].value);
    return u16((*decoded)[0].value);
  }

  detail::task<bool> terminal_risk_management() {
    if (txn.force_online) set_bit(tvr, tvr::merchant_forced_online);
    if ((aip1() & 0x08) == 0) co_return true;
    set_bit(tsi, tsi::terminal_risk_management_performed);

    if (!cfg.exception_file.empty()) {
      const bytes h = sha256(pan.view());
      if (std::any_of(cfg.exception_file.begin(), cfg.exception_file.end(),
                      [&](const bytes& e) { return e == h; }))
        set_bit(tvr, tvr::exception_file);
    }
    if (txn.amount + txn.logged_amount_same_card >= app->floor_limit) set_bit(tvr, tvr::floor_limit_exceeded);
    if (capability_of(cfg.terminal_type) != online_capability::offline_only) {
      std::array<std::uint8_t, 1> b{};
      random(b);
      const unsigned draw = 1 + b[0] % 99;
      if (random_selection(txn.amount, app->floor_limit, app->random_threshold, app->random_target_percent,
                           app->random_max_percent, draw))
        set_bit(tvr, tvr::random_selection);
    }
    const auto lcol = store.get(t_lcol), ucol = store.get(t_ucol);
    if (app->velocity_checking && lcol && ucol && lcol->size() == 1 && ucol->size() == 1) {
      const std::uint8_t l = (*lcol)[0], u = (*ucol)[0];
      auto t = exchange_many({get_data(t_atc), get_data(t_last_online_atc)});
      const std::vector<bytes> r = co_await t;
      if (done) co_return false;
      const auto atc = data_u16(t_atc, r[0]);
      const auto loatc = data_u16(t_last_online_atc, r[1]);
      velocity_check(l, u, atc, loatc, tvr);
    }
    co_return true;
  }

  // ---- action analysis and GENERATE AC ------------------------------------------------

  issuer_action_codes iacs() const {
    issuer_action_codes i;
    if (auto v = store.get(0x9F0E)) i.denial = bytes(v->begin(), v->end());
    if (auto v = store.get(0x9F0F)) i.online = bytes(v->begin(), v->end());
    if (auto v = store.get(0x9F0D)) i.def = bytes(v->begin(), v->end());
    return i;
  }

  struct ac_response {
    bool ok = false;
    std::uint8_t cid = 0;
    ac_type type = ac_type::aac;
  };

  // Sends GENERATE AC; stores 9F27/9F36/9F26/9F10 (and 9F4B, 9F4C); checks CDA when asked.
  // `cda_failed_out` is set when a requested CDA does not verify.
  detail::task<ac_response> generate_ac(ac_type requested, bool cda, std::uint32_t dol_tag,
                                        bool& cda_failed_out) {
    ac_response out;
    sync();
    auto dol_data = build_dol_data(store.get_or_empty(dol_tag), store);
    if (!dol_data) {
      finish(outcome::end_application, "emv.bad_cdol");
      co_return out;
    }
    const auto p1 = static_cast<std::uint8_t>(static_cast<std::uint8_t>(requested) | (cda ? 0x10 : 0x00));
    if (dol_tag == t_cdol1) cdol1_data = *dol_data;
    bytes cmd = apdu(0x80, 0xAE, p1, 0x00, *dol_data, true);
    auto t = exchange(std::move(cmd));
    bytes r = co_await t;
    if (done) co_return out;
    if (sw_of(r) != 0x9000) co_return out;
    auto decoded = tlv_decode(data_of(r));
    if (!decoded || decoded->size() != 1) co_return out;
    const tlv& top = (*decoded)[0];
    // This answer replaces the previous GENERATE AC's data (the final AC is what clears).
    for (const auto tag : {t_cid, t_ac, t_iad}) store.erase(tag);
    bytes sdad;
    bytes signed_tlvs;  // the response TLVs without 9F4B, for the CDA hash
    if (top.tag == t_gpo_fmt1) {
      const auto& v = top.value;
      if (v.size() < 11 || v.size() > 43) co_return out;
      store.set(t_cid, byte_view(v).first(1));
      store.set(t_atc, byte_view(v).subspan(1, 2));
      store.set(t_ac, byte_view(v).subspan(3, 8));
      if (v.size() > 11) store.set(t_iad, byte_view(v).subspan(11));
    } else if (top.tag == t_gpo_fmt2) {
      for (const auto& child : top.children) {
        if (child.tag == t_sdad) {
          sdad = child.value;
          continue;
        }
        const bytes enc = tlv_encode(child);
        signed_tlvs.insert(signed_tlvs.end(), enc.begin(), enc.end());
        store.set(child.tag, child.value);
      }
      if (!store.has(t_cid) || !store.has(t_atc)) co_return out;
    } else {
      co_return out;
    }
    const auto cid_v = store.get_or_empty(t_cid);
    if (cid_v.size() != 1) co_return out;
    out.cid = cid_v[0];
    switch (out.cid & 0xC0) {
      case 0x00:
        out.type = ac_type::aac;
        break;
      case 0x40:
        out.type = ac_type::tc;
        break;
      case 0x80:
        out.type = ac_type::arqc;
        break;
      default:
        co_return out;  // AAR / RFU: not supported
    }
    // The card may answer lower than asked (AAC < ARQC < TC in what it grants), never higher.
    if (requested == ac_type::aac && out.type != ac_type::aac) co_return out;
    if (requested == ac_type::arqc && out.type == ac_type::tc) co_return out;
    if (cda && out.type != ac_type::aac) {
      bool ok = !sdad.empty() && icc_key.has_value();
      if (ok) {
        // Book 2 6.6: PDOL data || CDOL1 data [|| CDOL2 data] || response TLVs but 9F4B.
        bytes tdhc_input = pdol_data;
        if (dol_tag == t_cdol2) tdhc_input.insert(tdhc_input.end(), cdol1_data.begin(), cdol1_data.end());
        tdhc_input.insert(tdhc_input.end(), dol_data->begin(), dol_data->end());
        tdhc_input.insert(tdhc_input.end(), signed_tlvs.begin(), signed_tlvs.end());
        auto v = verify_cda(*icc_key, sdad, store.get_or_empty(t_un), tdhc_input, out.cid);
        ok = v.has_value();
        if (ok) {
          store.set(t_ac, v->ac);
          store.set(t_icc_dn, v->icc_dynamic_number);
          store.set(t_sdad, sdad);
        }
      }
      if (!ok) {
        set_bit(tvr, tvr::cda_failed);
        cda_failed_out = true;
      }
    } else if (!store.has(t_ac)) {
      co_return out;
    }
    out.ok = true;
    co_return out;
  }

  static bytes arc_of(std::string_view two) {
    return bytes{static_cast<std::uint8_t>(two[0]), static_cast<std::uint8_t>(two[1])};
  }

  // Issuer scripts of one kind (71 before, 72 after the final GENERATE AC; Book 3 10.10).
  detail::task<bool> run_scripts(const std::vector<tlv>& scripts, std::uint32_t kind) {
    for (const auto& s : scripts) {
      if (s.tag != kind) continue;
      set_bit(tsi, tsi::script_performed);
      bytes id(4, 0);
      if (const tlv* sid = tlv_find(s.children, t_script_id, false); sid && sid->value.size() == 4)
        id = sid->value;
      std::uint8_t result_byte = 0x20;  // "successful", sequence 0
      unsigned seq = 0;
      for (const auto& cmd_tlv : s.children) {
        if (cmd_tlv.tag != t_script_cmd) continue;
        ++seq;
        bool ok = cmd_tlv.value.size() >= 4;
        if (ok) {
          bytes cmd = cmd_tlv.value;
          auto t = exchange(std::move(cmd));
          bytes r = co_await t;
          if (done) co_return false;
          const std::uint8_t sw1 = static_cast<std::uint8_t>(sw_of(r) >> 8);
          ok = sw1 == 0x90 || sw1 == 0x62 || sw1 == 0x63;
        }
        if (!ok) {
          result_byte = static_cast<std::uint8_t>(0x10 | std::min(seq, 0x0Eu));
          set_bit(tvr,
                  kind == t_script1 ? tvr::script_failed_before_final_ac : tvr::script_failed_after_final_ac);
          break;
        }
      }
      script_results.push_back(result_byte);
      script_results.insert(script_results.end(), id.begin(), id.end());
      set_terminal(t_script_results, script_results);
    }
    co_return true;
  }

  detail::task<bool> online_and_completion(ac_type& final_type, bool& host_approved) {
    sync();
    pending = go_online{build_field55(store)};
    co_await wait();
    const action_codes& tac = app->tac;
    if (answer == answer_kind::online_failed) {
      // Unable to go online: the default action codes decide (Book 3 10.7, Book 4 6.3.7).
      const ac_type want = default_action_analysis(tvr, tac, iacs());
      unable_online = true;
      set_terminal(t_arc, arc_of(want == ac_type::tc ? "Y3" : "Z3"));
      bool cda_failed = false;
      const bool cda = oda == oda_method::cda && !oda_failed && want == ac_type::tc;
      auto t = generate_ac(want, cda, t_cdol2, cda_failed);
      const auto r = co_await t;
      if (done) co_return false;
      host_approved = false;
      final_type = r.ok && !cda_failed ? r.type : ac_type::aac;
      co_return true;
    }
    if (answer != answer_kind::online) {
      finish(outcome::end_application, "emv.kernel_misuse");
      co_return false;
    }
    const online_result host = answer_online;
    host_approved = host.approved;
    if (host.arc.size() == 2)
      set_terminal(t_arc, host.arc);
    else
      set_terminal(t_arc, arc_of(host.approved ? "00" : "05"));
    if (!host.issuer_auth_data.empty()) set_terminal(t_issuer_auth, host.issuer_auth_data);

    std::vector<tlv> scripts;
    if (!host.scripts.empty()) {
      auto decoded = tlv_decode(host.scripts);
      if (decoded)
        scripts = std::move(decoded).value();
      else
        set_bit(tvr, tvr::script_failed_before_final_ac);
    }

    if (!host.issuer_auth_data.empty() && (aip1() & 0x04)) {
      set_bit(tsi, tsi::issuer_auth_performed);
      bytes cmd = apdu(0x00, 0x82, 0x00, 0x00, host.issuer_auth_data, false);
      auto t = exchange(std::move(cmd));
      bytes r = co_await t;
      if (done) co_return false;
      if (sw_of(r) != 0x9000) set_bit(tvr, tvr::issuer_auth_failed);
    } else if (!host.issuer_auth_data.empty()) {
      set_bit(tsi, tsi::issuer_auth_performed);  // the card checks 91 in the CDOL2 data
    }

    {
      auto t = run_scripts(scripts, t_script1);
      const bool ok = co_await t;
      if (!ok) co_return false;
    }

    const ac_type want = host.approved ? ac_type::tc : ac_type::aac;
    bool cda_failed = false;
    const bool cda = oda == oda_method::cda && !oda_failed && want == ac_type::tc;
    auto g = generate_ac(want, cda, t_cdol2, cda_failed);
    const auto r = co_await g;
    if (done) co_return false;
    final_type = r.ok && !cda_failed ? r.type : ac_type::aac;

    {
      auto t = run_scripts(scripts, t_script2);
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    co_return true;
  }

  detail::task<bool> run() {
    init_terminal_data();
    const auto d = date_number(txn.date);
    if (!d) {
      finish(outcome::end_application, "emv.bad_transaction_date");
      co_return false;
    }
    today = *d;

    {
      auto t = build_candidates();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    for (;;) {
      auto s = choose_and_select();
      const bool selected = co_await s;
      if (!selected) co_return false;
      auto g = initiate();
      const int r = co_await g;
      if (r == 2) co_return false;
      if (r == 0) break;
      // 6985: this application cannot do the transaction; choose among the others.
    }
    {
      auto t = read_records();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    {
      auto t = offline_data_authentication();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    restrictions();
    {
      auto t = cardholder_verification();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    {
      auto t = terminal_risk_management();
      const bool ok = co_await t;
      if (!ok) co_return false;
    }

    const ac_type want = terminal_action_analysis(tvr, app->tac, iacs(), capability_of(cfg.terminal_type));
    const bool cda = oda == oda_method::cda && !oda_failed && want != ac_type::aac;
    bool cda_failed = false;
    auto g1 = generate_ac(want, cda, t_cdol1, cda_failed);
    const auto first = co_await g1;
    if (done) co_return false;
    set_bit(tsi, tsi::card_risk_management_performed);
    if (!first.ok) {
      finish(outcome::end_application, "emv.generate_ac_failed");
      co_return false;
    }
    if (cda_failed) {
      if (first.type == ac_type::arqc) {
        // An ARQC whose signature fails is not sent online: close it with an AAC.
        set_terminal(t_arc, arc_of("Z1"));
        bool ignored = false;
        auto g2 = generate_ac(ac_type::aac, false, t_cdol2, ignored);
        const auto second = co_await g2;
        if (done) co_return false;
        (void)second;
      }
      finish(outcome::declined_offline, "emv.cda_failed");
      co_return true;
    }
    if (first.type == ac_type::tc) {
      finish(outcome::approved_offline, "emv.approved_offline");
      co_return true;
    }
    if (first.type == ac_type::aac) {
      finish(outcome::declined_offline, want == ac_type::aac ? "emv.terminal_declined" : "emv.card_declined");
      co_return true;
    }

    ac_type final_type = ac_type::aac;
    bool host_approved = false;
    {
      auto t = online_and_completion(final_type, host_approved);
      const bool ok = co_await t;
      if (!ok) co_return false;
    }
    if (unable_online) {
      if (final_type == ac_type::tc)
        finish(outcome::approved_offline, "emv.unable_online_approved");
      else
        finish(outcome::declined_offline, "emv.unable_online_declined");
      co_return true;
    }
    if (final_type == ac_type::tc && host_approved)
      finish(outcome::approved_online, "emv.approved_online");
    else if (host_approved)
      finish(outcome::declined_after_approval, "emv.card_declined_after_approval");
    else
      finish(outcome::declined_online, "emv.host_declined");
    co_return true;
  }
};

// ---------------------------------------------------------------------------------------

contact_kernel::contact_kernel(const terminal_config& cfg, const capk_table* capks, transaction txn)
    : impl_(std::make_unique<impl>(cfg, capks, std::move(txn))) {
  impl_->main.emplace(impl_->run());
  impl_->resume_point = impl_->main->handle();
}

contact_kernel::~contact_kernel() = default;

contact_kernel::step contact_kernel::next() {
  auto& k = *impl_;
  if (!k.pending && !k.done) {
    k.resume_point.resume();
    if (!k.pending)
      k.finish(outcome::end_application, "emv.kernel_misuse");  // cannot happen: run() always finishes
  }
  return *k.pending;
}

namespace {
template <class T>
bool holds(const std::optional<contact_kernel::step>& s) {
  return s && std::holds_alternative<T>(*s);
}
}  // namespace

#define EFTD_EMV_FEED(cond, kind_value, store_stmt)            \
  do {                                                         \
    auto& k = *impl_;                                          \
    if (k.done) return;                                        \
    if (!(cond)) {                                             \
      k.finish(outcome::end_application, "emv.kernel_misuse"); \
      return;                                                  \
    }                                                          \
    k.answer = impl::answer_kind::kind_value;                  \
    store_stmt;                                                \
    k.pending.reset();                                         \
  } while (0)

void contact_kernel::feed_rapdu(byte_view rapdu) {
  EFTD_EMV_FEED(holds<send_apdu>(k.pending) || holds<need_offline_pin>(k.pending), rapdu,
                k.answer_rapdu.assign(rapdu.begin(), rapdu.end()));
}
void contact_kernel::feed_rapdus(std::span<const byte_view> rapdus) {
  EFTD_EMV_FEED(holds<send_apdus>(k.pending), rapdus, {
    k.answer_rapdus.clear();
    for (const auto r : rapdus) k.answer_rapdus.emplace_back(r.begin(), r.end());
  });
}
void contact_kernel::feed_transmit_failed() {
  EFTD_EMV_FEED(
      holds<send_apdu>(k.pending) || holds<send_apdus>(k.pending) || holds<need_offline_pin>(k.pending),
      transmit_failed, (void)0);
}
void contact_kernel::feed_choice(std::size_t index) {
  EFTD_EMV_FEED(holds<choose_application>(k.pending), choice, k.answer_choice = index);
}
void contact_kernel::feed_choice_cancelled() {
  EFTD_EMV_FEED(holds<choose_application>(k.pending), choice_cancelled, (void)0);
}
void contact_kernel::feed_pin_result(pin_result r) {
  EFTD_EMV_FEED(holds<need_online_pin>(k.pending) || holds<need_offline_pin>(k.pending), pin,
                k.answer_pin = r);
}
void contact_kernel::acknowledge() {
  EFTD_EMV_FEED(holds<need_signature>(k.pending), ack, (void)0);
}
void contact_kernel::feed_online_result(const online_result& r) {
  EFTD_EMV_FEED(holds<go_online>(k.pending), online, k.answer_online = r);
}
void contact_kernel::feed_online_failed() {
  EFTD_EMV_FEED(holds<go_online>(k.pending), online_failed, (void)0);
}

#undef EFTD_EMV_FEED

const tlv_store& contact_kernel::data() const {
  return impl_->store;
}
tvr_bytes contact_kernel::tvr() const {
  return impl_->tvr;
}
tsi_bytes contact_kernel::tsi() const {
  return impl_->tsi;
}

}  // namespace eftd::emv
