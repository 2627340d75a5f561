// Fuzz harness: field 55 of a chip request is untrusted input to the simulator's issuer side.
// Any bytes must give an answer (checked or not) without crashing; a check that passes must
// yield an answer field 55 that decodes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eftd/acqsim/issuer.hpp"
#include "eftd/core/tlv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace sim = eftd::acqsim;
  static const auto keys = sim::issuer_keys::parse(
      "[[issuer]]\npan_prefix = \"4\"\nmk_ac = \"0123456789ABCDEFFEDCBA9876543210\"\n"
      "mk_smi = \"FEDCBA98765432100123456789ABCDEF\"\n"
      "[[issuer]]\naid = \"A000000004\"\nmk_ac = \"0123456789ABCDEFFEDCBA9876543210\"\n",
      "fuzz.toml");
  if (!keys) std::abort();
  const std::string_view field55(reinterpret_cast<const char*>(data), size);
  static constexpr sim::issuer_script scripts[] = {sim::issuer_script::pin_unblock,
                                                   sim::issuer_script::app_block};
  for (std::string_view pan : {std::string_view("4761739001010119"), std::string_view("5413330089020011")}) {
    const auto c = sim::check_arqc(*keys, pan, "001", field55);
    if (!c.ok) continue;
    auto answer = sim::issuer_response_field55(c, "00", scripts);
    if (!answer || !eftd::tlv_decode(eftd::as_bytes(*answer))) std::abort();
  }
  return 0;
}
