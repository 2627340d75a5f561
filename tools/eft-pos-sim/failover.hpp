// eft-pos-sim: which configured server to talk to (issue 8, hot standby). Pure functions, no
// I/O, so the tests can drive them directly. Included by main.cpp and interactive.hpp.
//
// Rules (pos-protocol/PROTOCOL.md sections 1 and 8): connect to the first server that accepts
// the login. After a connection failure or error `not_active`, go to the server the standby
// named as active when it is one of the configured ones, otherwise to the next configured one;
// at most one round over the list per attempt, so a pair of standbys cannot send the POS in
// circles.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/pos/codes.hpp"

namespace eft_pos_sim {

struct endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string text() const {
    return host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                               : host + ":" + std::to_string(port);
  }
  friend bool operator==(const endpoint&, const endpoint&) = default;
};

// "host:port" or "[v6]:port"; nullopt when the port is missing, not a number or 0.
inline std::optional<endpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
    return std::nullopt;
  return endpoint{std::string(host), static_cast<std::uint16_t>(value)};
}

// Index of the configured server `active` names ("host:port" as the standby sends it), if any.
inline std::optional<std::size_t> configured_index(const std::vector<endpoint>& servers,
                                                   std::string_view active) {
  const auto e = parse_endpoint(active);
  if (!e) return std::nullopt;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (servers[i] == *e) return i;
  }
  return std::nullopt;
}

// The synchronous client library hands over a server error as code and message only, so the
// `active_server` field of `not_active` is not visible to the simulator; a standby that also
// names the active server in its message text ("standby server, active is 10.0.0.2:9100", as
// it does for pads) is still followed. The first configured "host:port" found in the text.
inline std::optional<std::size_t> configured_in_text(const std::vector<endpoint>& servers,
                                                     std::string_view text) {
  std::optional<std::size_t> best;
  std::size_t best_at = std::string_view::npos;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const std::string needle = servers[i].text();
    for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) {
      // Whole token only: "1.2.3.4:91" must not match inside "1.2.3.4:9100".
      const std::size_t after = at + needle.size();
      const bool digit_after = after < text.size() && text[after] >= '0' && text[after] <= '9';
      const bool glued_before =
          at > 0 &&
          ((text[at - 1] >= '0' && text[at - 1] <= '9') || text[at - 1] == '.' ||
           (text[at - 1] >= 'a' && text[at - 1] <= 'z') || (text[at - 1] >= 'A' && text[at - 1] <= 'Z'));
      if (!digit_after && !glued_before && at < best_at) {
        best = i;
        best_at = at;
        break;
      }
    }
  }
  return best;
}

// One attempt at reaching the active server: a round over the configured list that starts at
// `first` and tries each server at most once.
class server_round {
 public:
  server_round(std::size_t count, std::size_t first) : tried_(count, false), current_(first % count) {}

  std::size_t current() const { return current_; }

  // The server after `current()` failed (connection refused/lost, or not_active naming
  // `active`, an index into the list when the named server is configured). nullopt when the
  // round is over: every server has been tried once.
  std::optional<std::size_t> next(std::optional<std::size_t> active = std::nullopt) {
    tried_[current_] = true;
    if (active && *active < tried_.size() && !tried_[*active]) {
      current_ = *active;
      return current_;
    }
    for (std::size_t step = 1; step < tried_.size(); ++step) {
      const std::size_t i = (current_ + step) % tried_.size();
      if (!tried_[i]) {
        current_ = i;
        return current_;
      }
    }
    return std::nullopt;
  }

 private:
  std::vector<bool> tried_;
  std::size_t current_;
};

// Final states of status_query's order_status (PROTOCOL.md 5.2): the recovery loop stops on
// these. `in_progress` means ask again later; `unknown` means the server never saw the order.
// Failures after which another server may answer: the connection failed or went silent, the
// server is a standby (not_active), or it answered with an older fencing epoch than one already
// seen (pos.stale_epoch: a deposed node).
inline bool other_server_may_answer(std::string_view code) {
  namespace codes = eftd::pos::codes;
  return code == codes::disconnected || code == codes::timeout || code == codes::not_active ||
         code == codes::stale_epoch;
}

inline bool final_state(std::string_view state) {
  return state == "approved" || state == "declined" || state == "cancelled" || state == "failed" ||
         state == "reversed";
}

}  // namespace eft_pos_sim
