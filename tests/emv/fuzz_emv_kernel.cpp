// Fuzz harness: the kernel against a card whose every answer comes from the input, so
// selection, GPO, record parsing and storage, ODA data, CVM lists, GENERATE AC and issuer
// script parsing all see arbitrary bytes. Input: a sequence of [length byte][answer]; the
// engine's own steps are answered the same way every time (first application, PIN entered,
// signature acknowledged, host approves with the next chunk as issuer scripts).
// Properties: no crash or hang (the kernel finishes within a bounded number of steps) and
// field 55 never carries track 2, PAN or cardholder name. Each input runs twice: one APDU per
// step, then with batch_apdus (a script's answers: as many chunks as there are commands, fewer
// when the input runs out, as a pad that stopped early).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>
#include <vector>

#include "eftd/core/tlv.hpp"
#include "eftd/emv/kernel.hpp"

namespace {

struct reader {
  const std::uint8_t* p;
  std::size_t n;
  bool next(eftd::bytes& out) {
    if (n == 0) return false;
    const std::size_t len = p[0];
    ++p;
    --n;
    const std::size_t take = len < n ? len : n;
    out.assign(p, p + take);
    p += take;
    n -= take;
    return true;
  }
};

eftd::emv::terminal_config config(bool batch) {
  eftd::emv::terminal_config cfg;
  cfg.batch_apdus = batch;
  cfg.country_code = 616;
  cfg.currency_code = 985;
  cfg.use_pse = true;
  eftd::emv::application_config a;
  a.aid = {0xA0, 0x00, 0x00, 0x00, 0x03};
  cfg.applications.push_back(a);
  return cfg;
}

void run(const std::uint8_t* data, std::size_t size, const eftd::emv::terminal_config& cfg) {
  using namespace eftd::emv;
  transaction txn;
  txn.amount = 1000;
  txn.date = "251122";
  txn.random = [](std::span<std::uint8_t> out) {
    for (auto& b : out) b = 0x11;
  };
  contact_kernel k(cfg, nullptr, txn);
  reader in{data, size};
  eftd::bytes chunk;
  for (int steps = 0; steps < 4000; ++steps) {
    auto s = k.next();
    if (std::holds_alternative<contact_kernel::finished>(s)) return;
    if (auto* batch = std::get_if<contact_kernel::send_apdus>(&s)) {
      std::vector<eftd::bytes> answers;
      while (answers.size() < batch->capdus.size() && in.next(chunk)) answers.push_back(chunk);
      if (answers.empty()) {
        k.feed_transmit_failed();
      } else {
        std::vector<eftd::byte_view> views(answers.begin(), answers.end());
        k.feed_rapdus(views);
      }
    } else if (std::holds_alternative<contact_kernel::send_apdu>(s) ||
               std::holds_alternative<contact_kernel::need_offline_pin>(s)) {
      if (in.next(chunk))
        k.feed_rapdu(chunk);
      else
        k.feed_transmit_failed();
    } else if (std::holds_alternative<contact_kernel::choose_application>(s)) {
      k.feed_choice(0);
    } else if (std::holds_alternative<contact_kernel::need_online_pin>(s)) {
      k.feed_pin_result(pin_result::entered);
    } else if (std::holds_alternative<contact_kernel::need_signature>(s)) {
      k.acknowledge();
    } else if (auto* o = std::get_if<contact_kernel::go_online>(&s)) {
      auto f55 = eftd::tlv_decode(o->field55);
      if (!f55) std::abort();
      for (const std::uint32_t never : {0x57u, 0x5Au, 0x5F20u})
        if (eftd::tlv_find(*f55, never)) std::abort();
      online_result r;
      r.approved = true;
      if (in.next(chunk)) r.scripts = chunk;
      k.feed_online_result(r);
    }
  }
  std::abort();  // the kernel must finish: every loop in it is bounded
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto one_by_one = config(false);
  static const auto batched = config(true);
  run(data, size, one_by_one);
  run(data, size, batched);
  return 0;
}
