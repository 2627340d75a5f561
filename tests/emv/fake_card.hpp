// A programmable chip card for kernel tests: applications with FCI, records and GPO answers
// as data, GENERATE AC answered by a rule the test can replace. Every command is logged.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eftd/core/tlv.hpp"
#include "harness.hpp"

namespace eftd::emv::test {

// Tag, length and value as given (constructed values too: tlv_encode would re-encode them
// from children).
inline bytes tlvb(std::uint32_t tag, const bytes& value) {
  bytes out;
  if (tag > 0xFFFF) out.push_back(static_cast<std::uint8_t>(tag >> 16));
  if (tag > 0xFF) out.push_back(static_cast<std::uint8_t>(tag >> 8));
  out.push_back(static_cast<std::uint8_t>(tag));
  if (value.size() > 0xFF) {
    out.push_back(0x82);
    out.push_back(static_cast<std::uint8_t>(value.size() >> 8));
  } else if (value.size() > 0x7F) {
    out.push_back(0x81);
  }
  out.push_back(static_cast<std::uint8_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
  return out;
}
inline bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
inline bytes with_sw(bytes data, std::uint16_t sw) {
  data.push_back(static_cast<std::uint8_t>(sw >> 8));
  data.push_back(static_cast<std::uint8_t>(sw));
  return data;
}
inline bytes sw_only(std::uint16_t sw) {
  return with_sw({}, sw);
}

struct fake_app {
  bytes aid;
  std::string label = "TEST APP";
  std::optional<std::uint8_t> priority;  // tag 87
  std::uint16_t select_sw = 0x9000;      // 6283: blocked
  bytes pdol;                            // 9F38 in the FCI when not empty
  std::uint16_t gpo_sw = 0x9000;
  bytes aip = hx("1C00");  // CVM, TRM, issuer authentication
  bytes afl = hx("08010100");
  std::map<std::pair<int, int>, bytes> records;  // (sfi, record) -> whole record (70 ...)
};

// The standard record of a test card: the given fields, in one 70 template.
struct record_fields {
  bytes pan = hx("4761739001010119");  // a public test PAN
  bytes expiry = hx("291231");
  std::optional<bytes> effective = hx("200101");
  bytes cdol1 = hx("9F02069F03069F1A0295055F2A029A039C019F3704");
  bytes cdol2 = hx("8A029F02069F03069F1A0295055F2A029A039C019F3704");
  std::optional<bytes> cvm_list = hx("000000000000000042031E031F00");
  std::optional<bytes> auc = hx("FF00");
  std::optional<bytes> app_version = hx("0002");
  std::optional<bytes> issuer_country = hx("0616");
  std::optional<bytes> app_currency = hx("0985");
  std::optional<bytes> iac_default = hx("0000000000");
  std::optional<bytes> iac_denial = hx("0000000000");
  std::optional<bytes> iac_online = hx("0000000000");
  bytes extra;  // more TLVs, appended as is
};

inline bytes make_record(const record_fields& f) {
  bytes body = cat({tlvb(0x5A, f.pan), tlvb(0x5F24, f.expiry), tlvb(0x8C, f.cdol1), tlvb(0x8D, f.cdol2)});
  auto add = [&](std::uint32_t tag, const std::optional<bytes>& v) {
    if (v) body = cat({body, tlvb(tag, *v)});
  };
  add(0x5F25, f.effective);
  add(0x8E, f.cvm_list);
  add(0x9F07, f.auc);
  add(0x9F08, f.app_version);
  add(0x5F28, f.issuer_country);
  add(0x9F42, f.app_currency);
  add(0x9F0D, f.iac_default);
  add(0x9F0E, f.iac_denial);
  add(0x9F0F, f.iac_online);
  body = cat({body, f.extra});
  return tlvb(0x70, body);
}

class fake_card {
 public:
  std::vector<fake_app> apps;
  bool pse = false;
  std::uint16_t pse_sw = 0x9000;            // when pse: 6A81 blocks the card
  std::map<std::uint16_t, bytes> get_data;  // tag -> full answer (TLV + SW)
  std::uint16_t external_auth_sw = 0x9000;
  std::uint16_t other_sw = 0x9000;  // issuer script commands and anything unknown
  // GENERATE AC: (P1, data) -> full answer. Default: the card grants what is asked
  // (format 1, ATC 0001, AC 1122334455667788, IAD 06010A03A00000).
  std::function<bytes(std::uint8_t, const bytes&, int)> genac = [](std::uint8_t p1, const bytes&, int) {
    const std::uint8_t cid = p1 & 0xC0;
    return with_sw(tlvb(0x80, cat({bytes{cid}, hx("0001"), hx("1122334455667788"), hx("06010A03A00000")})),
                   0x9000);
  };

  std::vector<bytes> log;
  std::vector<std::uint8_t> genac_p1;
  int genac_count = 0;

  bytes transmit(const bytes& c) {
    log.push_back(c);
    if (c.size() < 4) return sw_only(0x6700);
    const std::uint8_t ins = c[1], p1 = c[2], p2 = c[3];
    const bytes data = c.size() > 5 ? bytes(c.begin() + 5, c.begin() + 5 + c[4]) : bytes{};
    switch (ins) {
      case 0xA4:
        return select(data, p2);
      case 0xB2:
        return read_record(p1, p2 >> 3);
      case 0xA8:
        return selected_ ? gpo() : sw_only(0x6985);
      case 0xCA: {
        const auto tag = static_cast<std::uint16_t>((p1 << 8) | p2);
        auto it = get_data.find(tag);
        return it == get_data.end() ? sw_only(0x6A88) : it->second;
      }
      case 0xAE:
        genac_p1.push_back(p1);
        return genac(p1, data, genac_count++);
      case 0x82:
        return sw_only(external_auth_sw);
      default:
        return sw_only(other_sw);
    }
  }

 private:
  bytes select(const bytes& name, std::uint8_t p2) {
    if (pse && name == bytes{'1', 'P', 'A', 'Y', '.', 'S', 'Y', 'S', '.', 'D', 'D', 'F', '0', '1'}) {
      if (pse_sw != 0x9000) return sw_only(pse_sw);
      in_pse_ = true;
      selected_ = nullptr;
      return with_sw(tlvb(0x6F, cat({tlvb(0x84, name), tlvb(0xA5, tlvb(0x88, {0x01}))})), 0x9000);
    }
    in_pse_ = false;
    // P2 00: first match; P2 02: the next match after the previous one (partial names).
    std::size_t start = 0;
    if (p2 == 0x02 && last_name_ == name) start = last_index_ + 1;
    for (std::size_t i = start; i < apps.size(); ++i) {
      const auto& a = apps[i];
      if (a.aid.size() < name.size() || !std::equal(name.begin(), name.end(), a.aid.begin())) continue;
      last_name_ = name;
      last_index_ = i;
      bytes prop = tlvb(0x50, bytes(a.label.begin(), a.label.end()));
      if (a.priority) prop = cat({prop, tlvb(0x87, {*a.priority})});
      if (!a.pdol.empty()) prop = cat({prop, tlvb(0x9F38, a.pdol)});
      selected_ = a.select_sw == 0x9000 ? &a : nullptr;
      return with_sw(tlvb(0x6F, cat({tlvb(0x84, a.aid), tlvb(0xA5, prop)})), a.select_sw);
    }
    selected_ = nullptr;
    return sw_only(0x6A82);
  }

  bytes read_record(std::uint8_t rec, int sfi) {
    if (in_pse_ && sfi == 1) {
      if (rec < 1 || rec > apps.size()) return sw_only(0x6A83);
      const auto& a = apps[rec - 1];
      bytes entry = cat({tlvb(0x4F, a.aid), tlvb(0x50, bytes(a.label.begin(), a.label.end()))});
      if (a.priority) entry = cat({entry, tlvb(0x87, {*a.priority})});
      return with_sw(tlvb(0x70, tlvb(0x61, entry)), 0x9000);
    }
    if (!selected_) return sw_only(0x6985);
    auto it = selected_->records.find({sfi, rec});
    return it == selected_->records.end() ? sw_only(0x6A83) : with_sw(it->second, 0x9000);
  }

  bytes gpo() {
    if (selected_->gpo_sw != 0x9000) return sw_only(selected_->gpo_sw);
    return with_sw(tlvb(0x80, cat({selected_->aip, selected_->afl})), 0x9000);
  }

  const fake_app* selected_ = nullptr;
  bool in_pse_ = false;
  bytes last_name_;
  std::size_t last_index_ = 0;
};

inline terminal_config test_terminal() {
  terminal_config cfg;
  cfg.terminal_type = 0x22;
  cfg.country_code = 616;
  cfg.currency_code = 985;
  cfg.use_pse = false;
  application_config visa;
  visa.aid = hx("A0000000031010");
  visa.floor_limit = 100000;
  application_config mc;
  mc.aid = hx("A0000000041010");
  mc.floor_limit = 100000;
  cfg.applications = {visa, mc};
  return cfg;
}

inline transaction test_transaction(std::uint64_t amount = 1000) {
  transaction t;
  t.amount = amount;
  t.currency = 985;
  t.date = "251122";
  t.time = "101500";
  t.random = [](std::span<std::uint8_t> out) {
    for (auto& b : out) b = 0x42;  // draw 1 + 0x42 % 99 = 67: never selected at low targets
  };
  return t;
}

inline fake_app visa_app(record_fields f = {}) {
  fake_app a;
  a.aid = hx("A0000000031010");
  a.label = "VISA CREDIT";
  a.records[{1, 1}] = make_record(f);
  return a;
}

}  // namespace eftd::emv::test
