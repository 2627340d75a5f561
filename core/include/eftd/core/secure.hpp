// Buffers for secrets (clear keys, PIN blocks, clear track data): wiped on destruction
// with OPENSSL_cleanse, never printable. Read through .view() only, on purpose.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "eftd/core/bytes.hpp"

namespace eftd {

void secure_wipe(void* p, std::size_t n) noexcept;

class secure_bytes {
 public:
  secure_bytes() = default;
  explicit secure_bytes(byte_view data) : data_(data.begin(), data.end()) {}
  explicit secure_bytes(std::size_t n) : data_(n, 0) {}
  secure_bytes(const secure_bytes&) = default;
  secure_bytes& operator=(const secure_bytes& o) {
    if (this != &o) {
      wipe();
      data_ = o.data_;
    }
    return *this;
  }
  secure_bytes(secure_bytes&& o) noexcept : data_(std::move(o.data_)) { o.data_.clear(); }
  secure_bytes& operator=(secure_bytes&& o) noexcept {
    if (this != &o) {
      wipe();
      data_ = std::move(o.data_);
      o.data_.clear();
    }
    return *this;
  }
  ~secure_bytes() { wipe(); }

  byte_view view() const noexcept { return data_; }
  std::span<std::uint8_t> mutable_view() noexcept { return data_; }
  std::size_t size() const noexcept { return data_.size(); }
  bool empty() const noexcept { return data_.empty(); }

  friend bool operator==(const secure_bytes& a, const secure_bytes& b) { return a.data_ == b.data_; }

 private:
  void wipe() noexcept {
    if (!data_.empty()) secure_wipe(data_.data(), data_.size());
  }
  std::vector<std::uint8_t> data_;
};

}  // namespace eftd
