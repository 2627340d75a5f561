#include "eftd/acq/message.hpp"

#include <fmt/format.h>

#include "eftd/acq/dialect.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::acq {

namespace {

void wipe_string(std::string& s) noexcept {
  if (!s.empty()) secure_wipe(s.data(), s.size());
}

bool printable(std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

std::string render(const std::map<int, std::string>& fields, const std::string& mti, const dialect* d) {
  std::string out = mti.empty() ? std::string("<no MTI>") : mti;
  if (!printable(out)) out = "<bad MTI>";
  for (const auto& [no, value] : fields) {
    const field_spec* spec = d ? d->field(no) : nullptr;
    const bool binary = spec ? spec->content == content_type::b : !printable(value);
    if (is_card_data_field(no) || (spec && spec->card_data)) {
      out += fmt::format(" {}=<card data, {} {}>", no, value.size(), binary ? "bytes" : "chars");
    } else if (binary) {
      out += fmt::format(" {}=hex:{}", no, to_hex(as_bytes(value)));
    } else {
      std::string shown = value;
      for (auto& c : shown)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '.';
      out += fmt::format(" {}={}", no, shown);
    }
  }
  return out;
}

}  // namespace

bool is_card_data_field(int field) noexcept {
  switch (field) {
    case 2:    // PAN
    case 14:   // expiry date
    case 34:   // PAN extended
    case 35:   // track 2
    case 36:   // track 3
    case 45:   // track 1
    case 52:   // PIN block
    case 55:   // chip data (holds track 2 equivalent and PAN in tags 57/5A)
    case 102:  // account identification 1
    case 103:  // account identification 2
      return true;
    default:
      return false;
  }
}

message& message::operator=(const message& o) {
  if (this != &o) {
    wipe();
    mti_ = o.mti_;
    fields_ = o.fields_;
  }
  return *this;
}

message& message::operator=(message&& o) noexcept {
  if (this != &o) {
    wipe();
    mti_ = std::move(o.mti_);
    fields_ = std::move(o.fields_);
    o.fields_.clear();
  }
  return *this;
}

message::~message() {
  wipe();
}

void message::wipe() noexcept {
  for (auto& [no, value] : fields_) wipe_string(value);
  fields_.clear();
}

void message::set(int field, std::string value) {
  auto it = fields_.find(field);
  if (it == fields_.end()) {
    fields_.emplace(field, std::move(value));
  } else {
    wipe_string(it->second);
    it->second = std::move(value);
  }
}

std::optional<std::string_view> message::get(int field) const {
  auto it = fields_.find(field);
  if (it == fields_.end()) return std::nullopt;
  return std::string_view{it->second};
}

std::string_view message::get_or(int field, std::string_view fallback) const {
  auto it = fields_.find(field);
  return it == fields_.end() ? fallback : std::string_view{it->second};
}

void message::erase(int field) {
  auto it = fields_.find(field);
  if (it == fields_.end()) return;
  wipe_string(it->second);
  fields_.erase(it);
}

void message::clear() {
  wipe();
  mti_.clear();
}

std::string message::describe() const {
  return render(fields_, mti_, nullptr);
}

std::string message::describe(const dialect& d) const {
  return render(fields_, mti_, &d);
}

}  // namespace eftd::acq
