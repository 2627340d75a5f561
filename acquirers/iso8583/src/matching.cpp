#include "eftd/acq/matching.hpp"

#include <fmt/format.h>

#include <array>

namespace eftd::acq {

namespace {

constexpr std::array<int, 3> terminal_key{41, 11, 7};
constexpr std::array<int, 2> link_key{11, 7};

bool four_digits(std::string_view mti) {
  if (mti.size() != 4) return false;
  for (char c : mti)
    if (c < '0' || c > '9') return false;
  return true;
}

result<std::string> key_for(std::string_view response_mti, const message& m) {
  std::string key{response_mti};
  for (int f : match_fields(response_mti)) {
    auto v = m.get(f);
    if (!v)
      return make_error("acq.match_field_missing",
                        fmt::format("{} has no field {} (needed to match request and response)", m.mti(), f));
    key += '|';
    key += *v;
  }
  return key;
}

}  // namespace

bool expects_response(std::string_view mti) {
  return four_digits(mti) && (mti[2] == '0' || mti[2] == '2');
}

bool is_response_mti(std::string_view mti) {
  return four_digits(mti) && (mti[2] == '1' || mti[2] == '3');
}

std::optional<std::string> response_mti_for(std::string_view request_mti) {
  if (!expects_response(request_mti)) return std::nullopt;
  std::string r{request_mti};
  r[2] = static_cast<char>(r[2] + 1);
  // Origin digit: 0 acquirer, 1 acquirer repeat, 2 issuer, 3 issuer repeat. A repeat is
  // answered like the original (0201 -> 0210), so the repeat bit is cleared.
  const int origin = r[3] - '0';
  r[3] = static_cast<char>('0' + (origin & ~1));
  return r;
}

std::span<const int> match_fields(std::string_view mti) {
  if (mti.size() >= 2 && mti[1] == '8') return link_key;
  return terminal_key;
}

result<std::string> request_match_key(const message& request) {
  auto resp = response_mti_for(request.mti());
  if (!resp) return make_error("acq.not_a_request", "MTI does not expect a response");
  return key_for(*resp, request);
}

result<std::string> response_match_key(const message& response) {
  if (!is_response_mti(response.mti())) return make_error("acq.not_a_response", "MTI is not a response");
  return key_for(response.mti(), response);
}

}  // namespace eftd::acq
