// Helpers on request messages shared by the sync and the async client. Private.
#pragma once

#include <string>
#include <type_traits>
#include <variant>

#include "eftd/pos/messages.hpp"

namespace eftd::pos::detail {

template <class T>
constexpr bool is_transaction_v =
    std::is_same_v<T, sale> || std::is_same_v<T, refund> || std::is_same_v<T, preauth> ||
    std::is_same_v<T, completion> || std::is_same_v<T, incremental> || std::is_same_v<T, cancel> ||
    std::is_same_v<T, balance_inquiry>;

// Requests that end with a result (after any number of status/prompt messages).
inline bool is_transaction(const message& m) {
  return std::visit([](const auto& r) { return is_transaction_v<std::decay_t<decltype(r)>>; }, m);
}

// The order a message concerns; "" for messages without one.
inline std::string order_of(const message& m) {
  return std::visit(
      [](const auto& r) -> std::string {
        if constexpr (requires { r.order_no; })
          return r.order_no;
        else
          return {};
      },
      m);
}

// Gives a request without an id the next fresh one; returns the id it carries.
template <class Fresh>
std::string ensure_id(message& m, Fresh&& fresh) {
  std::visit(
      [&](auto& r) {
        if (r.id.empty()) r.id = fresh();
      },
      m);
  return id_of(m);
}

}  // namespace eftd::pos::detail
