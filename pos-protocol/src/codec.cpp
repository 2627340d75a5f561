// Table-driven NDJSON codec for the POS protocol. Both directions walk schema<M>::fields
// (schema.hpp), so every field is encoded and decoded under the same name and presence rule.
#include "eftd/pos/codec.hpp"

#include <array>
#include <cstdint>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

#include "schema.hpp"

namespace eftd::pos {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using detail::schema;

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class V>
struct is_string_map<std::map<std::string, V>> : std::true_type {};

eftd::error make(std::string_view code, std::string message) {
  return eftd::error{std::string(code), std::move(message)};
}

// ------------------------------------------------------------------------------ encode

template <class M>
ojson object_of(const M& m);

template <class T>
ojson to_value(const T& v) {
  if constexpr (std::is_same_v<T, std::string> || std::is_integral_v<T>) {
    return ojson(v);
  } else if constexpr (is_vector<T>::value) {
    ojson a = ojson::array();
    for (const auto& e : v) a.push_back(to_value(e));
    return a;
  } else if constexpr (is_string_map<T>::value) {
    ojson o = ojson::object();
    for (const auto& [k, x] : v) o[k] = to_value(x);
    return o;
  } else if constexpr (is_optional<T>::value) {
    return v ? to_value(*v) : ojson();
  } else {
    return object_of(v);
  }
}

template <class M>
const M& defaults() {
  static const M d{};
  return d;
}

// Appends m's fields to the object j, in schema order.
template <class M>
void put_fields(ojson& j, const M& m) {
  std::apply(
      [&](const auto&... fld) {
        auto put = [&](const auto& fd) {
          const auto& v = m.*(fd.member);
          if (fd.p == detail::opt && v == defaults<M>().*(fd.member)) return;
          j[std::string(fd.name)] = to_value(v);
        };
        (put(fld), ...);
      },
      schema<M>::fields);
}

template <class M>
ojson object_of(const M& m) {
  ojson j = ojson::object();
  put_fields(j, m);
  return j;
}

// ------------------------------------------------------------------------------ decode

using failure = std::optional<eftd::error>;

failure bad(const std::string& path, std::string_view expected) {
  return make(codes::bad_field, "field '" + path + "' must be " + std::string(expected));
}

template <class M>
failure read_object(const json& j, M& out, const std::string& prefix);

template <class T>
failure read_value(const json& j, T& out, const std::string& path) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return bad(path, "a string");
    out = j.get_ref<const std::string&>();
  } else if constexpr (std::is_integral_v<T>) {
    // Amounts are integers in minor units: 125.00 or "12500" is a client bug, not a
    // value to round. nlohmann keeps non-negative numbers as unsigned, so check both
    // representations against the target range.
    if (!j.is_number_integer()) return bad(path, "an integer");
    if (j.is_number_unsigned()) {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
        return bad(path, "an integer in range");
      }
      out = static_cast<T>(u);
    } else {
      const auto s = j.get<std::int64_t>();
      if (s < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          (s > 0 &&
           static_cast<std::uint64_t>(s) > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))) {
        return bad(path, "an integer in range");
      }
      out = static_cast<T>(s);
    }
  } else if constexpr (is_vector<T>::value) {
    if (!j.is_array()) return bad(path, "an array");
    out.clear();
    out.reserve(j.size());
    std::size_t i = 0;
    for (const auto& e : j) {
      typename T::value_type v{};
      if (auto f = read_value(e, v, path + "[" + std::to_string(i++) + "]")) return f;
      out.push_back(std::move(v));
    }
  } else if constexpr (is_string_map<T>::value) {
    if (!j.is_object()) return bad(path, "an object");
    out.clear();
    for (const auto& [k, e] : j.items()) {
      // Keys are peer-controlled: the path names the object, not the key.
      typename T::mapped_type v{};
      if (auto f = read_value(e, v, path + ".*")) return f;
      out.emplace(k, std::move(v));
    }
  } else if constexpr (is_optional<T>::value) {
    typename T::value_type v{};
    if (auto f = read_value(j, v, path)) return f;
    out = std::move(v);
  } else {
    if (!j.is_object()) return bad(path, "an object");
    return read_object(j, out, path + ".");
  }
  return std::nullopt;
}

template <class M>
failure read_object(const json& j, M& out, const std::string& prefix) {
  failure first;
  std::apply(
      [&](const auto&... fld) {
        auto get = [&](const auto& fd) {
          if (first) return;
          const std::string name(fd.name);
          const auto it = j.find(name);
          // null counts as absent for optional fields: clients in other languages often
          // serialise an unset optional as null.
          if (it == j.end() || (it->is_null() && fd.p == detail::opt)) {
            if (fd.p == detail::req) {
              first = make(codes::missing_field, "missing field '" + prefix + name + "'");
            }
            return;
          }
          first = read_value(*it, out.*(fd.member), prefix + name);
        };
        (get(fld), ...);
      },
      schema<M>::fields);
  return first;
}

template <class M>
eftd::result<message> decode_as(const json& j) {
  M m{};
  if (auto f = read_object(j, m, std::string())) return std::move(*f);
  return message(std::move(m));
}

using decoder_fn = eftd::result<message> (*)(const json&);
struct type_entry {
  std::string_view type;
  decoder_fn decode;
};

template <std::size_t... I>
constexpr auto make_type_table(std::index_sequence<I...>) {
  return std::array<type_entry, sizeof...(I)>{
      type_entry{schema<std::variant_alternative_t<I, message>>::type,
                 &decode_as<std::variant_alternative_t<I, message>>}...};
}

constexpr auto type_table = make_type_table(std::make_index_sequence<std::variant_size_v<message>>{});

eftd::result<message> decode_object(const json& j) {
  if (!j.is_object()) return make(codes::bad_json, "line is not a JSON object");
  const auto t = j.find("type");
  if (t == j.end()) return make(codes::missing_field, "missing field 'type'");
  if (!t->is_string()) return make(codes::bad_field, "field 'type' must be a string");
  const auto v = j.find("v");
  if (v == j.end()) return make(codes::missing_field, "missing field 'v'");
  if (!v->is_number_integer()) return make(codes::bad_field, "field 'v' must be an integer");
  if (!(v->is_number_unsigned() && v->get<std::uint64_t>() == static_cast<std::uint64_t>(protocol_version))) {
    return make(codes::unsupported_version, "protocol version 'v' not supported (this end speaks 1)");
  }
  // The type string is peer-controlled: it is not echoed into the error text.
  const auto& type = t->get_ref<const std::string&>();
  for (const auto& e : type_table) {
    if (e.type == type) return e.decode(j);
  }
  return make(codes::unknown_type, "unknown message type");
}

}  // namespace

std::string_view type_name(const message& m) {
  return std::visit([](const auto& x) { return schema<std::decay_t<decltype(x)>>::type; }, m);
}

bool is_request(const message& m) {
  // Requests are the alternatives before login_ok in the variant.
  constexpr std::size_t first_reply = [] {
    for (std::size_t i = 0; i < type_table.size(); ++i) {
      if (type_table[i].type == "login_ok") return i;
    }
    return type_table.size();
  }();
  return m.index() < first_reply;
}

const std::string& id_of(const message& m) {
  return std::visit([](const auto& x) -> const std::string& { return x.id; }, m);
}

eftd::result<message> decode(std::string_view line) {
  if (line.size() > max_line_bytes) {
    return make(codes::frame_too_large, "line longer than 65536 bytes");
  }
  try {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make(codes::bad_json, "line is not valid JSON");
    return decode_object(j);
  } catch (const std::exception&) {
    // Not expected with allow_exceptions=false and the checked accessors above; kept so
    // that no input can ever throw out of the codec.
    return make(codes::bad_json, "line could not be decoded");
  }
}

std::string encode(const message& m) { return encode(m, 0); }

std::string encode(const message& m, std::uint64_t epoch) {
  ojson j = ojson::object();
  j["type"] = std::string(type_name(m));
  j["v"] = protocol_version;
  if (epoch > 0) j["epoch"] = epoch;
  std::visit([&](const auto& x) { put_fields(j, x); }, m);
  std::string out = j.dump(-1, ' ', false, ojson::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

std::string peek_id(std::string_view line) {
  if (line.size() > max_line_bytes) return {};
  try {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) return {};
    const auto it = j.find("id");
    if (it == j.end() || !it->is_string()) return {};
    return it->get<std::string>();
  } catch (const std::exception&) {
    return {};
  }
}

std::uint64_t peek_epoch(std::string_view line) {
  if (line.size() > max_line_bytes) return 0;
  try {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) return 0;
    const auto it = j.find("epoch");
    if (it == j.end() || !it->is_number_unsigned()) return 0;
    return it->get<std::uint64_t>();
  } catch (const std::exception&) {
    return 0;
  }
}

// ------------------------------------------------------------------------------ line_reader

line_reader::line_reader(std::size_t max_line) : max_line_(max_line) {}

void line_reader::feed(std::string_view bytes) {
  if (failed_) return;
  // Drop consumed bytes before growing, so a long-lived connection does not keep every
  // line it ever received.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 4096)) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  buf_.append(bytes);
}

eftd::result<std::optional<std::string>> line_reader::next() {
  const auto too_large = [] {
    return make(codes::frame_too_large, "line longer than the limit without a newline");
  };
  while (!failed_) {
    const auto nl = buf_.find('\n', scan_);
    if (nl == std::string::npos) {
      scan_ = buf_.size();
      if (buf_.size() - pos_ > max_line_) break;
      return std::optional<std::string>{};
    }
    std::size_t len = nl - pos_;
    if (len > max_line_) break;
    const std::size_t start = pos_;
    pos_ = scan_ = nl + 1;
    if (len > 0 && buf_[start + len - 1] == '\r') --len;
    if (len == 0) continue;  // blank line: keep-alive, ignored
    return std::optional<std::string>{buf_.substr(start, len)};
  }
  if (!failed_) {
    failed_ = true;
    buf_.clear();
    buf_.shrink_to_fit();
    pos_ = scan_ = 0;
  }
  return too_large();
}

}  // namespace eftd::pos
