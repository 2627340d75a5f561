// Fuzz harness: the contactless kernel's evaluation of a tap whose every R-APDU comes from the
// input, so PPSE directories, FCIs, GPO answers (qVSDC cryptograms), AFLs, records, CDOL1 and
// GENERATE AC answers (CDA) all see arbitrary bytes. Input: one byte choosing the amount (under
// or over the CVM limit) and the AID order, then [length byte][R-APDU] per planned C-APDU; a
// short input is a card that left the field.
// Properties: no crash; an online request's field 55 decodes and never carries 57, 5A or 5F20;
// a second evaluation of the same kernel returns the first result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "eftd/core/tlv.hpp"
#include "eftd/emv/contactless.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace eftd::emv;
  if (size == 0) return 0;
  contactless_config cfg;
  cfg.aids = {default_visa_contactless(), default_mastercard_contactless()};
  if (data[0] & 0x01) std::swap(cfg.aids[0], cfg.aids[1]);
  cfg.transaction_limit = 100000;
  cfg.cvm_required_limit = 5000;
  cfg.floor_limit = (data[0] & 0x04) ? 10000 : 0;
  terminal_config term;
  term.country_code = 616;
  term.currency_code = 985;
  transaction txn;
  txn.amount = (data[0] & 0x02) ? 6000 : 1000;
  txn.date = "251122";
  txn.random = [](std::span<std::uint8_t> out) {
    for (auto& b : out) b = 0x11;
  };
  contactless_cache cache(cfg);
  contactless_kernel k(term, cfg, cache, nullptr, txn);
  const auto& script = k.plan();
  std::vector<eftd::bytes> rapdus;
  std::size_t i = 1;
  while (rapdus.size() < script.size() && i < size) {
    const std::size_t len = data[i++];
    const std::size_t take = len < size - i ? len : size - i;
    rapdus.emplace_back(data + i, data + i + take);
    i += take;
  }
  const contactless_result& r = k.evaluate(rapdus, 0);
  if (r.outcome == clss_outcome::online_request) {
    auto f55 = eftd::tlv_decode(r.field55);
    if (!f55) std::abort();
    for (const std::uint32_t never : {0x57u, 0x5Au, 0x5F20u})
      if (eftd::tlv_find(*f55, never)) std::abort();
  }
  const auto first = r.outcome;
  if (k.evaluate({}, 0).outcome != first) std::abort();
  return 0;
}
