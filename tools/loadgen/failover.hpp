// eft-loadgen with an active/standby pair (issue 8): the decisions a till makes when its
// server fails, apart from the Asio code so that tests can drive them. No I/O here.
//
// A till knows two servers (0: --pos-port/--pad-port, 1: --standby-pos-port/--standby-pad-port).
// After a failed connect or read, or error `not_active`, its POS goes to the other one, logs in
// and asks status_query for the order that was running (pos-protocol/PROTOCOL.md section 8);
// its pad does the same after a closed connection or a hello refused with "standby server...".
// Without a standby the till does the same on its one server, which may be restarting.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eftd::loadgen {

// An operation whose answer did not come: the transport failed (loadgen.disconnected,
// loadgen.timeout, a TLS or framing error). Its order's fate is open until a status_query says.
// Server refusals (busy, not_active, ...) are answers: nothing happened.
inline bool answer_lost(std::string_view code) {
  return code.rfind("loadgen.", 0) == 0 || code.rfind("pos.", 0) == 0 || code.rfind("tls.", 0) == 0;
}

// What the till does after `code` ended an operation or a login attempt on its current server.
enum class next_step : std::uint8_t {
  stay,          // an answer: nothing to do with servers
  other_server,  // connect/read failure or not_active: go to the other server
  same_server,   // no standby, connect/read failure: the server may be restarting (R1 chaos
                 // test): log in there again and ask for the order whose answer was lost
};
inline next_step after_failure(std::string_view code, bool have_standby) {
  if (!have_standby) return answer_lost(code) ? next_step::same_server : next_step::stay;
  if (code == "not_active" || answer_lost(code)) return next_step::other_server;
  return next_step::stay;
}

// A pad's hello refused by a standby (pinpad-firmware-shim/PROTOCOL.md section 5): reason
// "standby server, active is host:port". Other refusals (unknown pad, revoked) are final.
inline bool standby_refusal(std::string_view reason) {
  return reason.rfind("standby server", 0) == 0;
}

// order_status.state values that end the recovery of an order (PROTOCOL.md 5.2); `unknown`
// ends it too (the server never saw the order: the operation did not happen).
inline bool final_state(std::string_view state) {
  return state == "approved" || state == "declined" || state == "cancelled" || state == "failed" ||
         state == "reversed";
}

// History line type for the status answer that resolves an `unknown` operation: `ok` with the
// state as value for a final state; `fail` (value "unknown") when the server never saw it;
// nothing yet while `in_progress`.
inline std::optional<std::string> resolution_type(std::string_view state) {
  if (final_state(state)) return std::string("ok");
  if (state == "unknown") return std::string("fail");
  return std::nullopt;
}

// Switch time of one till: from the first failed connect/read on its old server to the first
// successful login on the other one. A login on the same server again (it came back) ends the
// episode without a switch.
class switch_clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  void failed(int server, time_point at) {
    if (!since_) {
      since_ = at;
      from_ = server;
    }
  }

  // The switch time when this login completes a switch.
  std::optional<std::chrono::microseconds> logged_in(int server, time_point at) {
    if (!since_) return std::nullopt;
    const auto since = *since_;
    since_.reset();
    if (server == from_) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::microseconds>(at - since);
  }

  bool switching() const { return since_.has_value(); }

 private:
  std::optional<time_point> since_;
  int from_ = -1;
};

// p in [0,1] of unsorted samples (nearest rank below), 0 for none.
inline std::uint32_t percentile_of(std::vector<std::uint32_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace eftd::loadgen
