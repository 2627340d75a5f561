// Deadline arithmetic shared by the two port implementations.
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>

namespace eftd::pad::serial_detail {

using clock = std::chrono::steady_clock;

// Milliseconds until `deadline`, rounded up so a wait never ends just short of it; 0 once passed.
inline int ms_left(clock::time_point deadline) {
  const auto left = deadline - clock::now();
  if (left <= clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

}  // namespace eftd::pad::serial_detail
