// Result type for the transaction path: no exceptions, a typed error instead.
//
// error::code is a stable, dotted machine code ("tlv.length_overflow", "config.missing_key")
// that tests assert on and operators can grep for; error::message is human text.
// Neither ever carries card data: callers name fields, never their values.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace eftd {

struct error {
  std::string code;
  std::string message;

  friend bool operator==(const error&, const error&) = default;
};

inline error make_error(std::string code, std::string message) {
  return error{std::move(code), std::move(message)};
}

template <class T>
class [[nodiscard]] result {
 public:
  // Default-constructed results hold an error: Asio's co_spawn needs default-constructible
  // completion values; a result nobody filled in must never pass for a success.
  result() : v_(std::in_place_index<1>, error{"result.empty", "no value was produced"}) {}
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error err) : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const {
    assert(!has_value());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const error& err() const {
    assert(!ok_);
    return err_;
  }

 private:
  error err_;
  bool ok_ = true;
};

using status = result<void>;

}  // namespace eftd
