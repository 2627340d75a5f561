// TOML configuration: parsing and validation.
//
// The parser walks the document with a small "section" reader that remembers which keys it
// consumed, so that every key left over is reported as unknown: a typo such as "lisen" must
// stop the server at start-up instead of silently falling back to a default. Nothing stops at
// the first problem; every diagnostic is collected and all of them are returned at once.
#include "eftd/core/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "eftd/core/money.hpp"

namespace eftd::config {

namespace fs = std::filesystem;

namespace {

// ISO 8583 field 4 is n12: larger amounts cannot be sent to an acquirer at all.
constexpr std::int64_t max_amount_minor = 999'999'999'999;

constexpr std::string_view transaction_types[] = {"sale",        "refund", "preauth",        "completion",
                                                  "incremental", "cancel", "balance_inquiry"};
constexpr std::string_view prompt_kinds[] = {"yes_no", "menu", "numeric", "text"};
constexpr std::string_view prompt_stages[] = {"before_card", "after_card"};
constexpr std::string_view log_levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr std::string_view log_formats[] = {"text", "json"};

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ISO 8583 "ans" fields (terminal id, card acceptor id) take printable ASCII only.
bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// "HH:MM", 00:00..23:59 ([settlement] cutover).
bool valid_hh_mm(std::string_view s) {
  if (s.size() != 5 || s[2] != ':' || !all_digits(s.substr(0, 2)) || !all_digits(s.substr(3, 2)))
    return false;
  return (s[0] - '0') * 10 + (s[1] - '0') < 24 && (s[3] - '0') * 10 + (s[4] - '0') < 60;
}

// "binary2", "bcd2", "ascii4", each optionally followed by "+tpdu" (acq::parse_framing()).
bool valid_framing_name(std::string_view name) {
  if (name.ends_with("+tpdu")) name.remove_suffix(5);
  return name == "binary2" || name == "bcd2" || name == "ascii4";
}

std::string join_list(std::span<const std::string_view> items) {
  std::string out;
  for (auto it : items) {
    if (!out.empty()) out += ", ";
    out += it;
  }
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool one_of(std::string_view v, std::span<const std::string_view> items) {
  return std::find(items.begin(), items.end(), v) != items.end();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string join_path(std::string_view parent, std::string_view key) {
  std::string k = is_bare_key(key) ? std::string(key) : fmt::format("\"{}\"", key);
  if (parent.empty()) return k;
  return fmt::format("{}.{}", parent, k);
}

fs::path resolve(const fs::path& base, const fs::path& p) {
  if (p.empty() || p.is_absolute() || base.empty()) return p.lexically_normal();
  return (base / p).lexically_normal();
}

// Collected diagnostics, one operator-readable line each: "key.path: problem (line N)".
class diagnostics {
 public:
  void add(std::string_view path, const toml::node* where, std::string_view problem) {
    std::string line = path.empty() ? std::string(problem) : fmt::format("{}: {}", path, problem);
    if (where != nullptr && where->source().begin.line > 0)
      line += fmt::format(" (line {})", where->source().begin.line);
    lines_.push_back(std::move(line));
  }
  void add_at(std::string_view path, toml::source_position pos, std::string_view problem) {
    std::string line = fmt::format("{}: {}", path, problem);
    if (pos.line > 0) line += fmt::format(" (line {})", pos.line);
    lines_.push_back(std::move(line));
  }
  bool empty() const { return lines_.empty(); }
  std::string joined() const {
    std::string out;
    for (const auto& l : lines_) {
      if (!out.empty()) out += '\n';
      out += l;
    }
    return out;
  }

 private:
  std::vector<std::string> lines_;
};

// A TOML table being read: typed getters that report wrong types and bad values under the
// key's full path, and done() reports every key nobody asked for.
class section {
 public:
  section(const toml::table* t, std::string path, diagnostics& d)
      : table_(t), path_(std::move(path)), diag_(d) {}

  const std::string& path() const { return path_; }
  std::string key_path(std::string_view key) const { return join_path(path_, key); }
  const toml::node* where() const { return table_; }

  const toml::node* find(std::string_view key) {
    known_.emplace(key);
    if (table_ == nullptr) return nullptr;
    return table_->get(key);
  }

  // A problem with one element of an array value: "key[i]: what".
  void element_problem(std::string_view key, std::size_t i, std::string_view what) {
    const toml::node* n = table_ != nullptr ? table_->get(key) : nullptr;
    const toml::node* e = (n != nullptr && n->as_array() != nullptr) ? n->as_array()->get(i) : nullptr;
    diag_.add(fmt::format("{}[{}]", key_path(key), i), e != nullptr ? e : n, what);
  }

  void missing(std::string_view key) { diag_.add(key_path(key), table_, "missing required key"); }
  void problem(std::string_view key, const toml::node* n, std::string_view what) {
    diag_.add(key_path(key), n != nullptr ? n : table_, what);
  }
  void wrong_type(std::string_view key, const toml::node& n, std::string_view expected) {
    diag_.add(key_path(key), &n, fmt::format("expected {}, got {}", expected, type_name(n.type())));
  }

  // Returns true if the key was present with the right type (out is then set).
  bool string(std::string_view key, std::string& out, bool required = false) {
    const toml::node* n = find(key);
    if (n == nullptr) {
      if (required) missing(key);
      return false;
    }
    if (const auto* s = n->as_string()) {
      out = s->get();
      return true;
    }
    wrong_type(key, *n, "string");
    return false;
  }

  bool integer(std::string_view key, std::int64_t& out, bool required = false) {
    const toml::node* n = find(key);
    if (n == nullptr) {
      if (required) missing(key);
      return false;
    }
    if (const auto* i = n->as_integer()) {
      out = i->get();
      return true;
    }
    wrong_type(key, *n, "integer");
    return false;
  }

  bool boolean(std::string_view key, bool& out) {
    const toml::node* n = find(key);
    if (n == nullptr) return false;
    if (const auto* b = n->as_boolean()) {
      out = b->get();
      return true;
    }
    wrong_type(key, *n, "boolean");
    return false;
  }

  // Milliseconds where 0 means "off": 0..uint32 max.
  void u32(std::string_view key, std::uint32_t& out, std::string_view unit) {
    std::int64_t v = 0;
    if (!integer(key, v)) return;
    if (v < 0 || v > std::numeric_limits<std::uint32_t>::max()) {
      problem(key, find(key), fmt::format("must be 0 or a positive integer ({})", unit));
      return;
    }
    out = static_cast<std::uint32_t>(v);
  }

  // Milliseconds, counts: 1..uint32 max.
  void positive_u32(std::string_view key, std::uint32_t& out, std::string_view unit = {}) {
    std::int64_t v = 0;
    if (!integer(key, v)) return;
    if (v < 1 || v > std::numeric_limits<std::uint32_t>::max()) {
      problem(
          key, find(key),
          unit.empty() ? "must be a positive integer" : fmt::format("must be a positive integer ({})", unit));
      return;
    }
    out = static_cast<std::uint32_t>(v);
  }

  void port(std::string_view key, std::uint16_t& out, bool allow_zero, bool required = false) {
    std::int64_t v = 0;
    if (!integer(key, v, required)) return;
    if (v < 0 || v > 65535 || (v == 0 && !allow_zero)) {
      problem(key, find(key), allow_zero ? "must be 0..65535 (0 = any free port)" : "must be 1..65535");
      return;
    }
    out = static_cast<std::uint16_t>(v);
  }

  void path(std::string_view key, fs::path& out, const fs::path& base, bool allow_empty = false) {
    std::string s;
    if (!string(key, s)) return;
    if (s.empty() && !allow_empty) {
      problem(key, find(key), "must not be empty");
      return;
    }
    out = resolve(base, s);
  }

  // A non-empty array of strings.
  bool string_list(std::string_view key, std::vector<std::string>& out) {
    const toml::node* n = find(key);
    if (n == nullptr) return false;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      wrong_type(key, *n, "array of strings");
      return false;
    }
    bool ok = true;
    out.clear();
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      const std::string epath = fmt::format("{}[{}]", key_path(key), i);
      if (const auto* s = e.as_string()) {
        out.push_back(s->get());
      } else {
        diag_.add(epath, &e, fmt::format("expected string, got {}", type_name(e.type())));
        ok = false;
      }
    }
    if (ok && out.empty()) {
      problem(key, n, "must not be empty (leave the key out to inherit)");
      ok = false;
    }
    return ok;
  }

  // A sub-table: absent -> nullptr, no error. Wrong type -> error, nullptr.
  const toml::table* table(std::string_view key) {
    const toml::node* n = find(key);
    if (n == nullptr) return nullptr;
    if (const auto* t = n->as_table()) return t;
    wrong_type(key, *n, "table");
    return nullptr;
  }

  // An array of tables ([[name]]): returns each element that is a table, with its index.
  std::vector<std::pair<std::size_t, const toml::table*>> table_array(std::string_view key) {
    std::vector<std::pair<std::size_t, const toml::table*>> out;
    const toml::node* n = find(key);
    if (n == nullptr) return out;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      wrong_type(key, *n, fmt::format("array of tables ([[{}]])", key));
      return out;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      if (const auto* t = e.as_table()) {
        out.emplace_back(i, t);
      } else {
        diag_.add(fmt::format("{}[{}]", key_path(key), i), &e,
                  fmt::format("expected table, got {}", type_name(e.type())));
      }
    }
    return out;
  }

  void done() {
    if (table_ == nullptr) return;
    for (auto&& [k, v] : *table_) {
      if (known_.count(std::string(k.str())) != 0) continue;
      std::string msg = "unknown key";
      std::string_view best;
      std::size_t best_d = 3;
      for (const auto& cand : known_) {
        const std::size_t d = edit_distance(k.str(), cand);
        if (d < best_d) {
          best_d = d;
          best = cand;
        }
      }
      if (!best.empty()) msg += fmt::format(" (did you mean '{}'?)", best);
      diag_.add_at(key_path(k.str()), k.source().begin, msg);
    }
  }

 private:
  const toml::table* table_;
  std::string path_;
  diagnostics& diag_;
  std::set<std::string, std::less<>> known_;
};

void read_amount(section& s, std::string_view key, std::optional<std::int64_t>& out) {
  std::int64_t v = 0;
  if (!s.integer(key, v)) return;
  if (v < 0 || v > max_amount_minor) {
    s.problem(key, s.find(key), "must be 0..999999999999 (minor units; ISO 8583 amounts have 12 digits)");
    return;
  }
  out = v;
}

limits read_limits(section& parent, std::string_view key, diagnostics& diag) {
  limits out;
  const toml::table* t = parent.table(key);
  if (t == nullptr) return out;
  section s(t, parent.key_path(key), diag);
  read_amount(s, "min_amount", out.min_amount);
  read_amount(s, "max_amount", out.max_amount);
  if (out.min_amount && out.max_amount && *out.min_amount > *out.max_amount)
    s.problem("min_amount", s.find("min_amount"), "must not exceed max_amount");

  std::vector<std::string> types;
  if (s.string_list("allowed_types", types)) {
    bool ok = true;
    for (std::size_t i = 0; i < types.size(); ++i) {
      if (!one_of(types[i], transaction_types)) {
        s.element_problem("allowed_types", i,
                          fmt::format("unknown transaction type '{}' (expected one of {})", types[i],
                                      join_list(transaction_types)));
        ok = false;
      }
    }
    if (ok) out.allowed_types = std::move(types);
  }
  std::vector<std::string> schemes;
  if (s.string_list("allowed_schemes", schemes)) {
    bool ok = true;
    for (std::size_t i = 0; i < schemes.size(); ++i) {
      if (schemes[i].empty() || !is_bare_key(schemes[i])) {
        s.element_problem("allowed_schemes", i,
                          "must be a scheme name as in the BIN table (letters, digits, '-', '_')");
        ok = false;
      }
    }
    if (ok) out.allowed_schemes = std::move(schemes);
  }
  s.done();
  return out;
}

void read_listener(section& parent, std::string_view key, listener& out, diagnostics& diag,
                   const fs::path& base) {
  const toml::table* t = parent.table(key);
  if (t == nullptr) return;
  section s(t, parent.key_path(key), diag);
  if (s.string("address", out.address) && out.address.empty())
    s.problem("address", s.find("address"), "must not be empty");
  s.port("port", out.port, /*allow_zero=*/true);
  s.positive_u32("max_connections", out.max_connections);
  s.positive_u32("max_per_address", out.max_per_address);
  s.positive_u32("login_timeout_ms", out.login_timeout_ms, "milliseconds");
  s.positive_u32("frame_timeout_ms", out.frame_timeout_ms, "milliseconds");
  if (const toml::table* tt = s.table("tls")) {
    section ts(tt, s.key_path("tls"), diag);
    ts.path("cert_file", out.tls.cert_file, base);
    ts.path("key_file", out.tls.key_file, base);
    ts.path("client_ca_file", out.tls.client_ca_file, base);
    if (out.tls.cert_file.empty()) ts.missing("cert_file");
    if (out.tls.key_file.empty()) ts.missing("key_file");
    ts.done();
  }
  s.done();
}

bool loopback_address(std::string_view a) {
  return a == "localhost" || a == "::1" || a.starts_with("127.");
}

bool valid_node_name(std::string_view n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

// Each [[section]] id must be unique and non-empty; returns false for a rejected id.
bool check_id(section& s, std::string_view key, const std::string& id,
              std::map<std::string, std::size_t>& seen, std::string_view what, std::size_t index) {
  if (id.empty()) {
    s.problem(key, s.find(key), "must not be empty");
    return false;
  }
  auto [it, inserted] = seen.emplace(id, index);
  if (!inserted) {
    s.problem(key, s.find(key), fmt::format("duplicate {} '{}' (also at index {})", what, id, it->second));
    return false;
  }
  return true;
}

void read_prompts(section& root, server_config& cfg, diagnostics& diag) {
  std::map<std::string, std::size_t> ids;
  for (auto [i, t] : root.table_array("prompts")) {
    section s(t, fmt::format("prompts[{}]", i), diag);
    prompt_rule p;
    if (s.string("id", p.id, true)) {
      if (!is_bare_key(p.id))
        s.problem("id", s.find("id"), "must be letters, digits, '-', '_'");
      else
        check_id(s, "id", p.id, ids, "prompt id", i);
    }
    if (s.string("stage", p.stage) && !one_of(p.stage, prompt_stages))
      s.problem("stage", s.find("stage"),
                fmt::format("unknown stage '{}' (expected one of {})", p.stage, join_list(prompt_stages)));
    if (s.string_list("types", p.types))
      for (std::size_t k = 0; k < p.types.size(); ++k)
        if (!one_of(p.types[k], transaction_types))
          s.element_problem("types", k, fmt::format("unknown transaction type '{}'", p.types[k]));
    if (s.string("kind", p.kind) && !one_of(p.kind, prompt_kinds))
      s.problem("kind", s.find("kind"),
                fmt::format("unknown kind '{}' (expected one of {})", p.kind, join_list(prompt_kinds)));
    if (s.string("text", p.text, true) && p.text.empty())
      s.problem("text", s.find("text"), "must not be empty");
    s.string_list("options", p.options);
    s.string("default", p.default_value);
    s.positive_u32("timeout_ms", p.timeout_ms, "milliseconds");
    {
      std::optional<std::int64_t> v;
      read_amount(s, "min_amount", v);
      if (v) p.min_amount = *v;
    }
    s.string_list("cancel_on", p.cancel_on);
    if (p.kind == "menu" && p.options.empty())
      s.problem("options", s.find("options"), "a menu prompt needs options");
    if (p.kind == "menu" && !p.default_value.empty() &&
        std::find(p.options.begin(), p.options.end(), p.default_value) == p.options.end())
      s.problem("default", s.find("default"), "must be one of the options");
    if (p.kind == "yes_no" && !p.default_value.empty() && p.default_value != "yes" && p.default_value != "no")
      s.problem("default", s.find("default"), "must be \"yes\" or \"no\"");
    if (p.kind == "yes_no" && p.default_value.empty()) p.default_value = "no";
    s.done();
    cfg.prompts.push_back(std::move(p));
  }
}

// One acquirer link, "host:port" or "[v6-address]:port". Port 0 (the --set placeholder) only
// when allow_zero. Returns what is wrong, or nullopt.
std::optional<std::string> parse_acquirer_link(std::string_view text, acquirer_link& out, bool allow_zero) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "expected host:port";
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || std::any_of(host.begin(), host.end(), [](char c) { return c <= ' ' || c == '/'; }))
    return "expected host:port (the host is empty or has spaces)";
  std::int64_t v = 0;
  if (port.empty() || port.size() > 5 || !all_digits(port)) return "expected host:port (port: digits)";
  for (char c : port) v = v * 10 + (c - '0');
  if (v > 65535 || (v == 0 && !allow_zero)) return "port must be 1..65535";
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(v);
  return std::nullopt;
}

bool is_hex_bytes(const std::string& v, std::size_t min_bytes, std::size_t max_bytes) {
  return v.size() % 2 == 0 && v.size() >= 2 * min_bytes && v.size() <= 2 * max_bytes &&
         v.find_first_not_of("0123456789ABCDEFabcdef") == std::string::npos;
}

// A limit in minor units (>= 0) into an optional.
void contactless_limit(section& s, std::string_view key, std::optional<std::uint64_t>& out) {
  std::int64_t v = 0;
  if (!s.integer(key, v)) return;
  if (v < 0)
    s.problem(key, s.find(key), "must not be negative (minor units)");
  else
    out = static_cast<std::uint64_t>(v);
}

bool is_hex_digits(std::string_view v, std::size_t digits) {
  return v.size() == digits && v.find_first_not_of("0123456789ABCDEFabcdef") == std::string_view::npos;
}

// The EMV parameters [emv] shares with [merchants.emv] and [tills.emv]: each key is set in
// `out` only when present and valid (problems are reported under the section's path).
void read_emv_params(section& s, emv_overrides& out) {
  std::int64_t v = 0;
  if (s.integer("country_code", v)) {
    if (v < 1 || v > 999)
      s.problem("country_code", s.find("country_code"), "must be an ISO 3166 numeric code (1..999)");
    else
      out.country_code = static_cast<std::uint16_t>(v);
  }
  if (s.integer("terminal_type", v)) {
    if (v < 0x11 || v > 0x36)
      s.problem("terminal_type", s.find("terminal_type"),
                "must be an EMV terminal type (17..54, e.g. 34 = 0x22)");
    else
      out.terminal_type = static_cast<std::uint8_t>(v);
  }
  using hex_key = std::tuple<std::string_view, std::size_t, std::optional<std::string>*>;
  for (auto [key, digits, out_hex] : {hex_key{"terminal_capabilities", 6, &out.terminal_capabilities},
                                      hex_key{"additional_capabilities", 10, &out.additional_capabilities}}) {
    std::string hex;
    if (!s.string(key, hex)) continue;
    if (!is_hex_digits(hex, digits))
      s.problem(key, s.find(key), fmt::format("must be {} bytes in hex ({} hex digits)", digits / 2, digits));
    else
      *out_hex = to_upper(hex);
  }
  if (s.integer("floor_limit", v)) {
    if (v < 0)
      s.problem("floor_limit", s.find("floor_limit"), "must not be negative");
    else
      out.floor_limit = static_cast<std::uint64_t>(v);
  }
  std::vector<std::string> aids;
  if (s.string_list("applications", aids)) {
    bool ok = !aids.empty();
    for (std::size_t i = 0; i < aids.size(); ++i) {
      const auto& a = aids[i];
      const bool hex = a.size() >= 10 && a.size() <= 32 && a.size() % 2 == 0 &&
                       a.find_first_not_of("0123456789ABCDEFabcdef") == std::string::npos;
      if (!hex) {
        s.element_problem("applications", i, "an AID is 5 to 16 bytes in hex");
        ok = false;
      }
    }
    if (aids.empty()) s.problem("applications", s.find("applications"), "must list at least one AID");
    if (ok) out.applications = std::move(aids);
  }
  // Terminal action codes: 5 bytes (10 hex digits) each, matched against the TVR.
  for (auto [key, out_tac] :
       {std::pair<std::string_view, std::optional<std::string>*>{"tac_denial", &out.tac_denial},
        std::pair<std::string_view, std::optional<std::string>*>{"tac_online", &out.tac_online},
        std::pair<std::string_view, std::optional<std::string>*>{"tac_default", &out.tac_default}}) {
    std::string tac;
    if (!s.string(key, tac)) continue;
    if (!is_hex_digits(tac, 10))
      s.problem(key, s.find(key), "must be 5 bytes in hex (10 hex digits), as the TVR");
    else
      *out_tac = tac;
  }
  bool fallback = true;
  if (s.boolean("fallback", fallback)) out.fallback_allowed = fallback;
  if (s.integer("fallback_max_amount", v)) {
    if (v < 0)
      s.problem("fallback_max_amount", s.find("fallback_max_amount"), "must not be negative (minor units)");
    else
      out.fallback_max_amount = static_cast<std::uint64_t>(v);
  }
}

void apply_emv(emv_config& e, const emv_overrides& o) {
  if (o.country_code) e.country_code = *o.country_code;
  if (o.terminal_type) e.terminal_type = *o.terminal_type;
  if (o.terminal_capabilities) e.terminal_capabilities = *o.terminal_capabilities;
  if (o.additional_capabilities) e.additional_capabilities = *o.additional_capabilities;
  if (o.floor_limit) e.floor_limit = *o.floor_limit;
  if (o.tac_denial) e.tac_denial = *o.tac_denial;
  if (o.tac_online) e.tac_online = *o.tac_online;
  if (o.tac_default) e.tac_default = *o.tac_default;
  if (o.applications) e.applications = *o.applications;
  if (o.fallback_allowed) e.fallback_allowed = *o.fallback_allowed;
  if (o.fallback_max_amount) e.fallback_max_amount = *o.fallback_max_amount;
  // Contactless-wide limits; an [[emv.contactless.aid]]'s own limits still win for its AID.
  if (o.contactless.transaction_limit) e.contactless.transaction_limit = *o.contactless.transaction_limit;
  if (o.contactless.cvm_required_limit) e.contactless.cvm_required_limit = *o.contactless.cvm_required_limit;
  if (o.contactless.floor_limit) e.contactless.floor_limit = *o.contactless.floor_limit;
}

// [merchants.emv] / [tills.emv] (key "emv" of the parent section) and its [.contactless] table.
emv_overrides read_emv_override(section& parent, diagnostics& diag) {
  emv_overrides out;
  const toml::table* t = parent.table("emv");
  if (t == nullptr) return out;
  section s(t, parent.key_path("emv"), diag);
  read_emv_params(s, out);
  if (const auto* ct = s.table("contactless")) {
    section c(ct, s.key_path("contactless"), diag);
    contactless_limit(c, "transaction_limit", out.contactless.transaction_limit);
    contactless_limit(c, "cvm_required_limit", out.contactless.cvm_required_limit);
    contactless_limit(c, "floor_limit", out.contactless.floor_limit);
    c.done();
  }
  s.done();
  return out;
}

// [emv.contactless] and its [[emv.contactless.aid]] tables.
void parse_emv_contactless(const toml::table* t, emv_contactless_config& out, diagnostics& diag) {
  section s(t, "emv.contactless", diag);
  s.boolean("enabled", out.enabled);
  contactless_limit(s, "transaction_limit", out.transaction_limit);
  contactless_limit(s, "cvm_required_limit", out.cvm_required_limit);
  std::optional<std::uint64_t> floor;
  contactless_limit(s, "floor_limit", floor);
  if (floor) out.floor_limit = *floor;
  s.boolean("online_pin", out.online_pin);
  s.boolean("signature", out.signature);
  s.boolean("cdcvm", out.cdcvm);
  for (auto [i, at] : s.table_array("aid")) {
    section a(at, fmt::format("emv.contactless.aid[{}]", i), diag);
    emv_contactless_aid e;
    if (a.string("aid", e.aid, true) && !is_hex_bytes(e.aid, 5, 16))
      a.problem("aid", a.find("aid"), "an AID is 5 to 16 bytes in hex");
    if (a.string("kernel", e.kernel) && e.kernel != "qvsdc" && e.kernel != "mchip")
      a.problem("kernel", a.find("kernel"), "must be \"qvsdc\" or \"mchip\"");
    for (auto [key, dol] : {std::pair<std::string_view, std::string*>{"pdol", &e.pdol},
                            std::pair<std::string_view, std::string*>{"cdol1", &e.cdol1}})
      if (a.string(key, *dol) && !dol->empty() && !is_hex_bytes(*dol, 2, 252))
        a.problem(key, a.find(key), "must be a DOL in hex (tag and length pairs)");
    if (a.string_list("records", e.records)) {
      for (std::size_t k = 0; k < e.records.size(); ++k) {
        const auto& r = e.records[k];
        const auto dot = r.find('.');
        bool ok = dot != std::string::npos && dot > 0 && dot + 1 < r.size() &&
                  r.find_first_not_of("0123456789.") == std::string::npos &&
                  r.find('.', dot + 1) == std::string::npos && r.size() <= 7;
        if (ok) {
          const int sfi = std::stoi(r.substr(0, dot)), rec = std::stoi(r.substr(dot + 1));
          ok = sfi >= 1 && sfi <= 30 && rec >= 1 && rec <= 255;
        }
        if (!ok) a.element_problem("records", k, "must be \"SFI.record\" (SFI 1..30, record 1..255)");
      }
    }
    contactless_limit(a, "transaction_limit", e.transaction_limit);
    contactless_limit(a, "cvm_required_limit", e.cvm_required_limit);
    contactless_limit(a, "floor_limit", e.floor_limit);
    a.done();
    out.aids.push_back(std::move(e));
  }
  s.done();
}

server_config parse_document(const toml::table& doc, const fs::path& base, diagnostics& diag) {
  server_config cfg;
  section root(&doc, "", diag);

  if (const auto* t = root.table("server")) {
    section s(t, "server", diag);
    if (s.string("node_name", cfg.node_name) && !valid_node_name(cfg.node_name))
      s.problem("node_name", s.find("node_name"), "must be non-empty letters, digits, '.', '-', '_'");
    s.done();
  }

  if (const auto* t = root.table("listen")) {
    section s(t, "listen", diag);
    read_listener(s, "pos", cfg.pos, diag, base);
    read_listener(s, "pad", cfg.pad, diag, base);
    if (s.table("metrics") != nullptr) {
      cfg.metrics.emplace(listener{"127.0.0.1", 9300});
      read_listener(s, "metrics", *cfg.metrics, diag, base);
    }
    if (s.table("backoffice") != nullptr) {
      cfg.backoffice.emplace(listener{"127.0.0.1", 9400});
      read_listener(s, "backoffice", *cfg.backoffice, diag, base);
    }
    s.done();
  }
  if (cfg.metrics && (!loopback_address(cfg.metrics->address) || cfg.metrics->tls.enabled()))
    diag.add("listen.metrics.address", nullptr,
             "the metrics listener is plaintext HTTP: use a loopback address (no TLS settings)");
  // Tills authenticate with client certificates; plaintext is for development on loopback.
  if (!cfg.pos.tls.enabled() && !loopback_address(cfg.pos.address))
    diag.add("listen.pos", nullptr,
             fmt::format("plaintext POS connections are only allowed on loopback addresses, not '{}': "
                         "configure [listen.pos.tls]",
                         cfg.pos.address));
  if (cfg.pos.tls.enabled() && cfg.pos.tls.client_ca_file.empty())
    diag.add("listen.pos.tls.client_ca_file", nullptr,
             "required: each till authenticates with its own client certificate");

  // Pads authenticate with device certificates; plaintext is for development on loopback.
  if (!cfg.pad.tls.enabled() && !loopback_address(cfg.pad.address))
    diag.add("listen.pad", nullptr,
             fmt::format("plaintext pad connections are only allowed on loopback addresses, not '{}': "
                         "configure [listen.pad.tls]",
                         cfg.pad.address));
  if (cfg.pad.tls.enabled() && cfg.pad.tls.client_ca_file.empty())
    diag.add("listen.pad.tls.client_ca_file", nullptr,
             "required: each pad authenticates with its own device certificate");

  if (cfg.pos.port != 0 && cfg.pos.port == cfg.pad.port && cfg.pos.address == cfg.pad.address)
    diag.add("listen.pad.port", nullptr,
             fmt::format("same address and port as listen.pos ({}:{})", cfg.pos.address, cfg.pos.port));

  if (const auto* t = root.table("cards")) {
    section s(t, "cards", diag);
    s.path("bin_table", cfg.bin_table, base);
    s.done();
  }

  {
    // Paths that keep their defaults still resolve against the config file's directory.
    cfg.journal_cfg.path = resolve(base, cfg.journal_cfg.path);
    cfg.journal_cfg.key_file = resolve(base, cfg.journal_cfg.key_file);
  }
  if (const auto* t = root.table("journal")) {
    section s(t, "journal", diag);
    s.path("path", cfg.journal_cfg.path, base);
    s.path("key_file", cfg.journal_cfg.key_file, base);
    s.positive_u32("group_commit_max", cfg.journal_cfg.group_commit_max);
    s.u32("retention_days", cfg.journal_cfg.retention_days, "days, 0 = keep forever");
    s.done();
  }

  if (const auto* t = root.table("keys")) {
    section s(t, "keys", diag);
    s.path("store", cfg.keys.store, base, /*allow_empty=*/true);
    s.path("master_key_file", cfg.keys.master_key_file, base, /*allow_empty=*/true);
    s.boolean("require_p2pe", cfg.keys.require_p2pe);
    if (!cfg.keys.store.empty() && cfg.keys.master_key_file.empty()) s.missing("master_key_file");
    std::set<std::string> prefixes;
    for (auto [i, d] : s.table_array("dukpt")) {
      section ds(d, fmt::format("keys.dukpt[{}]", i), diag);
      dukpt_bdk b;
      if (ds.string("ksn_prefix", b.ksn_prefix, true)) {
        const bool hex = !b.ksn_prefix.empty() && b.ksn_prefix.size() <= 24 &&
                         std::all_of(b.ksn_prefix.begin(), b.ksn_prefix.end(), [](char c) {
                           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                         });
        if (!hex)
          ds.problem("ksn_prefix", ds.find("ksn_prefix"), "must be 1..24 hex digits");
        else if (!prefixes.insert(to_upper(b.ksn_prefix)).second)
          ds.problem("ksn_prefix", ds.find("ksn_prefix"), "duplicate prefix");
      }
      ds.string("bdk", b.bdk, true);
      ds.done();
      cfg.keys.dukpt.push_back(std::move(b));
    }
    if (!cfg.keys.dukpt.empty() && cfg.keys.store.empty())
      s.problem("dukpt", nullptr, "BDKs need a key store (keys.store)");
    s.done();
  }

  if (const auto* t = root.table("cvm")) {
    section s(t, "cvm", diag);
    static constexpr std::array<std::string_view, 3> pin_modes{"service_code", "always", "never"};
    if (s.string("magstripe_pin", cfg.cvm.magstripe_pin) && !one_of(cfg.cvm.magstripe_pin, pin_modes))
      s.problem(
          "magstripe_pin", s.find("magstripe_pin"),
          fmt::format("unknown mode '{}' (expected one of {})", cfg.cvm.magstripe_pin, join_list(pin_modes)));
    s.positive_u32("pin_timeout_ms", cfg.cvm.pin_timeout_ms, "milliseconds");
    s.positive_u32("signature_timeout_ms", cfg.cvm.signature_timeout_ms, "milliseconds");
    s.boolean("pin_bypass", cfg.cvm.pin_bypass);
    s.done();
  }

  if (const auto* t = root.table("emv")) {
    section s(t, "emv", diag);
    s.boolean("enabled", cfg.emv.enabled);
    s.path("capk_file", cfg.emv.capk_file, base);
    s.boolean("refuse_chip_swipes", cfg.emv.refuse_chip_swipes);
    s.boolean("batch_apdus", cfg.emv.batch_apdus);
    emv_overrides global;
    read_emv_params(s, global);
    apply_emv(cfg.emv, global);
    if (cfg.emv.enabled && cfg.emv.capk_file.empty()) s.missing("capk_file");
    if (const auto* ct = s.table("contactless")) parse_emv_contactless(ct, cfg.emv.contactless, diag);
    s.done();
  }

  if (const auto* t = root.table("pad_health")) {
    section s(t, "pad_health", diag);
    s.positive_u32("ping_interval_ms", cfg.pad_health.ping_interval_ms, "milliseconds");
    s.positive_u32("missed_pings_to_drop", cfg.pad_health.missed_pings_to_drop);
    s.positive_u32("write_interval_ms", cfg.pad_health.write_interval_ms, "milliseconds");
    s.u32("dukpt_warn_remaining", cfg.pad_health.dukpt_warn_remaining, "transactions");
    s.done();
  }

  if (const auto* t = root.table("settlement")) {
    section s(t, "settlement", diag);
    if (s.string("cutover", cfg.settlement.cutover) && !cfg.settlement.cutover.empty() &&
        !valid_hh_mm(cfg.settlement.cutover))
      s.problem("cutover", s.find("cutover"), "must be HH:MM (00:00..23:59, local time) or empty");
    s.boolean("close_on_start", cfg.settlement.close_on_start);
    s.done();
  }

  if (const auto* t = root.table("admin")) {
    section s(t, "admin", diag);
    // Relative to the working directory (not the config file): the socket belongs to the run.
    std::string sock;
    if (s.string("socket", sock)) cfg.admin.socket = sock;
    s.done();
  }

  if (const auto* t = root.table("ha")) {
    section s(t, "ha", diag);
    auto& ha = cfg.ha;
    ha.enabled = true;
    s.boolean("enabled", ha.enabled);
    s.string("node_id", ha.node_id, true);
    s.string("pos_address", ha.pos_address, true);
    s.string("pad_address", ha.pad_address, true);
    s.string("witness", ha.witness, true);
    if (s.string("mode", ha.mode) && ha.mode != "sync" && ha.mode != "async")
      s.problem("mode", s.find("mode"), "must be sync or async");
    s.positive_u32("lease_ms", ha.lease_ms, "milliseconds");
    s.positive_u32("promote_after_ms", ha.promote_after_ms, "milliseconds");
    s.positive_u32("heartbeat_ms", ha.heartbeat_ms, "milliseconds");
    s.positive_u32("sync_timeout_ms", ha.sync_timeout_ms, "milliseconds");
    s.u32("stan_gap", ha.stan_gap, "STANs");
    s.positive_u32("log_keep", ha.log_keep);
    // A promotion waits out every lease the old active may still hold.
    if (ha.promote_after_ms <= ha.lease_ms + ha.heartbeat_ms)
      s.problem("promote_after_ms", s.find("promote_after_ms"), "must exceed lease_ms + heartbeat_ms");
    read_listener(s, "replication", ha.replication, diag, base);
    if (const toml::table* pt = s.table("peer")) {
      section ps(pt, s.key_path("peer"), diag);
      ps.string("id", ha.peer.id, true);
      ps.string("replication", ha.peer.replication, true);
      ps.string("pos_address", ha.peer.pos_address, true);
      ps.string("pad_address", ha.peer.pad_address, true);
      ps.done();
    } else {
      s.missing("peer");
    }
    if (!ha.node_id.empty() && ha.node_id == ha.peer.id)
      s.problem("node_id", s.find("node_id"), "must differ from peer.id");
    s.done();
  }

  if (const auto* t = root.table("backoffice")) {
    section s(t, "backoffice", diag);
    s.positive_u32("session_idle_s", cfg.backoffice_web.session_idle_s, "seconds");
    s.positive_u32("lockout_after", cfg.backoffice_web.lockout_after);
    s.positive_u32("page_size", cfg.backoffice_web.page_size);
    if (cfg.backoffice_web.page_size > 1000) s.problem("page_size", s.find("page_size"), "must be 1..1000");
    s.done();
  }

  if (const auto* t = root.table("log")) {
    section s(t, "log", diag);
    if (s.string("level", cfg.log.level) && !one_of(cfg.log.level, log_levels))
      s.problem("level", s.find("level"),
                fmt::format("unknown level '{}' (expected one of {})", cfg.log.level, join_list(log_levels)));
    if (s.string("format", cfg.log.format) && !one_of(cfg.log.format, log_formats))
      s.problem("format", s.find("format"),
                fmt::format("unknown format '{}' (expected text or json)", cfg.log.format));
    s.path("file", cfg.log.file, base, /*allow_empty=*/true);
    s.done();
  }

  if (const auto* t = root.table("timeouts")) {
    section s(t, "timeouts", diag);
    s.positive_u32("card_read_ms", cfg.timeout.card_read_ms, "milliseconds");
    s.positive_u32("pad_command_ms", cfg.timeout.pad_command_ms, "milliseconds");
    s.positive_u32("pos_idle_ms", cfg.timeout.pos_idle_ms, "milliseconds");
    s.positive_u32("pos_heartbeat_ms", cfg.timeout.pos_heartbeat_ms, "milliseconds");
    s.done();
  }

  cfg.default_limits = read_limits(root, "limits", diag);

  std::map<std::string, std::size_t> merchant_ids;
  for (auto [i, t] : root.table_array("merchants")) {
    section s(t, fmt::format("merchants[{}]", i), diag);
    merchant m;
    if (s.string("id", m.id, true)) check_id(s, "id", m.id, merchant_ids, "merchant id", i);
    s.string("name", m.name);
    if (s.string("acquirer_merchant_id", m.acquirer_merchant_id, true)) {
      if (m.acquirer_merchant_id.empty() || m.acquirer_merchant_id.size() > 15 ||
          !printable_ascii(m.acquirer_merchant_id))
        s.problem("acquirer_merchant_id", s.find("acquirer_merchant_id"),
                  "must be 1..15 printable ASCII characters (ISO 8583 field 42)");
    }
    if (s.string("currency", m.currency) && find_currency(m.currency) == nullptr)
      s.problem("currency", s.find("currency"), fmt::format("unknown ISO 4217 code '{}'", m.currency));
    if (s.string("country", m.country) && (m.country.size() != 3 || !all_digits(m.country)))
      s.problem("country", s.find("country"), "must be a 3-digit ISO 3166 numeric code, e.g. \"616\"");
    s.string("receipt_header", m.receipt_header);
    m.limit = read_limits(s, "limits", diag);
    m.emv = read_emv_override(s, diag);
    s.done();
    cfg.merchants.push_back(std::move(m));
  }

  std::map<std::string, std::size_t> store_ids;
  for (auto [i, t] : root.table_array("stores")) {
    section s(t, fmt::format("stores[{}]", i), diag);
    store st;
    if (s.string("id", st.id, true)) check_id(s, "id", st.id, store_ids, "store id", i);
    if (s.string("merchant", st.merchant, true) && merchant_ids.count(st.merchant) == 0)
      s.problem("merchant", s.find("merchant"), fmt::format("unknown merchant '{}'", st.merchant));
    s.string("name", st.name);
    s.string("address", st.address);
    s.done();
    cfg.stores.push_back(std::move(st));
  }

  std::map<std::string, std::size_t> pad_ids;
  std::map<std::string, std::size_t> pad_serials;
  for (auto [i, t] : root.table_array("pads")) {
    section s(t, fmt::format("pads[{}]", i), diag);
    pad p;
    if (s.string("id", p.id, true)) check_id(s, "id", p.id, pad_ids, "pad id", i);
    if (s.string("serial", p.serial, true)) check_id(s, "serial", p.serial, pad_serials, "pad serial", i);
    s.boolean("revoked", p.revoked);
    s.done();
    cfg.pads.push_back(std::move(p));
  }

  std::map<std::string, std::size_t> till_ids;
  std::map<std::string, std::string> pad_owner;  // pad id -> till id
  std::map<std::pair<std::string, std::string>, std::string>
      terminal_owner;  // (merchant, terminal id) -> till id
  for (auto [i, t] : root.table_array("tills")) {
    section s(t, fmt::format("tills[{}]", i), diag);
    till tl;
    if (s.string("id", tl.id, true)) check_id(s, "id", tl.id, till_ids, "till id", i);
    std::string merchant_id;
    if (s.string("store", tl.store, true)) {
      auto it = std::find_if(cfg.stores.begin(), cfg.stores.end(),
                             [&](const store& st) { return st.id == tl.store; });
      if (it == cfg.stores.end())
        s.problem("store", s.find("store"), fmt::format("unknown store '{}'", tl.store));
      else
        merchant_id = it->merchant;
    }
    if (s.string("pad", tl.pad, true)) {
      if (pad_ids.count(tl.pad) == 0) {
        s.problem("pad", s.find("pad"), fmt::format("unknown pad '{}'", tl.pad));
      } else {
        auto [it, inserted] = pad_owner.emplace(tl.pad, tl.id);
        if (!inserted)
          s.problem("pad", s.find("pad"),
                    fmt::format("pad '{}' is already attached to till '{}'", tl.pad, it->second));
      }
    }
    if (s.string("terminal_id", tl.terminal_id, true)) {
      if (tl.terminal_id.size() != 8 || !printable_ascii(tl.terminal_id)) {
        s.problem("terminal_id", s.find("terminal_id"),
                  "must be exactly 8 printable ASCII characters (ISO 8583 field 41)");
      } else if (!merchant_id.empty()) {
        auto [it, inserted] = terminal_owner.emplace(std::make_pair(merchant_id, tl.terminal_id), tl.id);
        if (!inserted)
          s.problem("terminal_id", s.find("terminal_id"),
                    fmt::format("terminal id '{}' is already used by till '{}' of the same merchant",
                                tl.terminal_id, it->second));
      }
    }
    tl.limit = read_limits(s, "limits", diag);
    tl.emv = read_emv_override(s, diag);
    s.done();
    cfg.tills.push_back(std::move(tl));
  }

  std::map<std::string, std::size_t> acquirer_names;
  for (auto [i, t] : root.table_array("acquirers")) {
    section s(t, fmt::format("acquirers[{}]", i), diag);
    acquirer a;
    if (s.string("name", a.name, true)) {
      // The name is addressed on the command line as acquirers.<name>.port: no dots.
      if (!a.name.empty() && !is_bare_key(a.name))
        s.problem("name", s.find("name"), "must be letters, digits, '-', '_'");
      else
        check_id(s, "name", a.name, acquirer_names, "acquirer name", i);
    }
    // Several links: links = ["host:port", ...] instead of host/port (the first is the primary,
    // its port may be the 0 placeholder set with --set acquirers.<name>.port).
    std::vector<std::string> link_texts;
    if (s.find("links") != nullptr) {
      // string_list itself reports an empty list or an element that is not a string.
      const bool listed = s.string_list("links", link_texts);
      if (listed && (s.find("host") != nullptr || s.find("port") != nullptr)) {
        s.problem("links", s.find("links"), "use either links or host/port, not both");
      } else if (listed) {
        std::set<std::string> seen;
        for (std::size_t li = 0; li < link_texts.size(); ++li) {
          acquirer_link l;
          if (auto bad = parse_acquirer_link(link_texts[li], l, li == 0)) {
            s.element_problem("links", li, *bad);
          } else if (!seen.insert(link_texts[li]).second) {
            s.element_problem("links", li, fmt::format("duplicate link '{}'", link_texts[li]));
          } else if (li == 0) {
            a.host = l.host;
            a.port = l.port;
          } else {
            a.extra_links.push_back(std::move(l));
          }
        }
      }
    } else {
      if (s.string("host", a.host) && a.host.empty()) s.problem("host", s.find("host"), "must not be empty");
      std::int64_t v = 0;
      if (s.integer("port", v, true)) {
        if (v < 0 || v > 65535)
          s.problem("port", s.find("port"), "must be 1..65535 (0 only as a placeholder set with --set)");
        else
          a.port = static_cast<std::uint16_t>(v);
      }
    }
    if (const toml::table* tt = s.table("tls")) {
      section ts(tt, s.key_path("tls"), diag);
      ts.path("ca_file", a.tls.ca_file, base);
      ts.path("cert_file", a.tls.cert_file, base);
      ts.path("key_file", a.tls.key_file, base);
      if (ts.string("server_name", a.tls.server_name) && a.tls.server_name.empty())
        ts.problem("server_name", ts.find("server_name"), "must not be empty");
      if (a.tls.ca_file.empty() && ts.find("ca_file") == nullptr) ts.missing("ca_file");
      if (a.tls.cert_file.empty() != a.tls.key_file.empty())
        ts.problem(a.tls.cert_file.empty() ? "cert_file" : "key_file", nullptr,
                   "a client certificate needs both cert_file and key_file");
      ts.done();
    }
    if (s.string("dialect", a.dialect) && (a.dialect.empty() || !is_bare_key(a.dialect)))
      s.problem("dialect", s.find("dialect"), "must be a dialect name (letters, digits, '-', '_')");
    s.positive_u32("connect_timeout_ms", a.connect_timeout_ms, "milliseconds");
    s.positive_u32("response_timeout_ms", a.response_timeout_ms, "milliseconds");
    s.positive_u32("reversal_expiry_ms", a.reversal_expiry_ms, "milliseconds");
    if (s.string("acquiring_institution_id", a.acquiring_institution_id) &&
        (a.acquiring_institution_id.empty() || a.acquiring_institution_id.size() > 11 ||
         !all_digits(a.acquiring_institution_id)))
      s.problem("acquiring_institution_id", s.find("acquiring_institution_id"),
                "must be 1..11 digits (ISO 8583 field 32)");
    // Framing names are plain text, checked here; the acquirer library (which core must not
    // link) checks the dialect name at start-up.
    if (s.string("framing", a.framing) && !valid_framing_name(a.framing))
      s.problem("framing", s.find("framing"),
                fmt::format("unknown framing '{}' (expected binary2, bcd2 or ascii4, optionally followed "
                            "by +tpdu)",
                            a.framing));
    for (auto [key, out] :
         {std::pair{"tpdu_destination", &a.tpdu_destination}, std::pair{"tpdu_source", &a.tpdu_source}}) {
      const bool present = s.string(key, *out);
      if (present && (out->size() != 4 || !all_digits(*out))) {
        s.problem(key, s.find(key), "must be 4 digits (NII)");
      } else if (present && !a.tpdu()) {
        s.problem(key, s.find(key), "only with a +tpdu framing");
      } else if (!present && a.tpdu() && s.find(key) == nullptr) {
        s.problem(key, nullptr, fmt::format("required with framing '{}'", a.framing));
      }
    }
    if (s.string("zpk", a.zpk) && a.zpk.empty()) s.problem("zpk", s.find("zpk"), "must not be empty");
    if (s.string("mak", a.mak) && a.mak.empty()) s.problem("mak", s.find("mak"), "must not be empty");
    s.boolean("sign_on", a.sign_on);
    s.u32("echo_interval_ms", a.echo_interval_ms, "milliseconds, 0 = off");
    s.u32("reconnect_backoff_ms", a.reconnect_backoff_ms, "milliseconds, 0 = no wait");
    s.u32("reconnect_backoff_max_ms", a.reconnect_backoff_max_ms, "milliseconds");
    if (a.reconnect_backoff_max_ms < a.reconnect_backoff_ms)
      s.problem("reconnect_backoff_max_ms", s.find("reconnect_backoff_max_ms"),
                fmt::format("must be at least reconnect_backoff_ms ({})", a.reconnect_backoff_ms));
    s.done();
    cfg.acquirers.push_back(std::move(a));
  }

  read_prompts(root, cfg, diag);

  for (std::size_t i = 0; i < cfg.acquirers.size(); ++i)
    if (!cfg.acquirers[i].zpk.empty() && cfg.keys.store.empty())
      diag.add(fmt::format("acquirers[{}].zpk", i), nullptr, "a zone PIN key needs a key store (keys.store)");
  for (std::size_t i = 0; i < cfg.acquirers.size(); ++i)
    if (!cfg.acquirers[i].mak.empty() && cfg.keys.store.empty())
      diag.add(fmt::format("acquirers[{}].mak", i), nullptr,
               "a message authentication key needs a key store (keys.store)");

  // Two routes with the same criteria would make the choice depend on file order.
  std::map<std::string, std::size_t> route_keys;
  const auto route_tables = root.table_array("routes");
  if (!route_tables.empty() && cfg.acquirers.empty())
    diag.add("routes", doc.get("routes"),
             "at least one [[acquirers]] entry is required when routes are configured");
  const auto known_acquirer = [&](const std::string& name) {
    return cfg.acquirers.empty() || std::any_of(cfg.acquirers.begin(), cfg.acquirers.end(),
                                                [&](const acquirer& a) { return a.name == name; });
  };
  for (auto [i, t] : route_tables) {
    section s(t, fmt::format("routes[{}]", i), diag);
    route r;
    const bool has_prefix = s.find("bin_prefix") != nullptr;
    const bool has_scheme = s.find("scheme") != nullptr;
    bool criteria_ok = true;
    if (has_prefix && has_scheme) {
      s.problem("scheme", s.find("scheme"), "give either bin_prefix or scheme, not both");
      criteria_ok = false;
    } else if (!has_prefix && !has_scheme) {
      s.problem("bin_prefix", nullptr, "missing required key (or give scheme instead)");
      criteria_ok = false;
    }
    if (has_prefix) {
      if (!s.string("bin_prefix", r.bin_prefix)) {
        criteria_ok = false;  // wrong type, reported
      } else if (!all_digits(r.bin_prefix) || r.bin_prefix.size() > 19) {
        s.problem("bin_prefix", s.find("bin_prefix"), "must be 0..19 digits (\"\" = default route)");
        criteria_ok = false;
      }
    }
    if (has_scheme) {
      if (!s.string("scheme", r.scheme)) {
        criteria_ok = false;
      } else if (r.scheme.empty() || !is_bare_key(r.scheme)) {
        s.problem("scheme", s.find("scheme"),
                  "must be a scheme name as in the BIN table (letters, digits, '-', '_')");
        criteria_ok = false;
      }
    }
    if (s.string("merchant", r.merchant) && cfg.find_merchant(r.merchant) == nullptr)
      s.problem("merchant", s.find("merchant"), fmt::format("unknown merchant '{}'", r.merchant));
    if (criteria_ok) {
      const std::string what =
          has_scheme ? fmt::format("scheme '{}'", r.scheme) : fmt::format("prefix '{}'", r.bin_prefix);
      const std::string key = what + (r.merchant.empty() ? "" : " for merchant '" + r.merchant + "'");
      auto [it, inserted] = route_keys.emplace(key, i);
      if (!inserted) {
        const std::string_view field = has_scheme ? "scheme" : "bin_prefix";
        s.problem(field, s.find(field), fmt::format("duplicate {} (also routes[{}])", key, it->second));
      }
    }
    if (s.string("acquirer", r.acquirer, true) && !known_acquirer(r.acquirer))
      s.problem("acquirer", s.find("acquirer"), fmt::format("unknown acquirer '{}'", r.acquirer));
    if (s.string("fallback", r.fallback)) {
      if (!known_acquirer(r.fallback))
        s.problem("fallback", s.find("fallback"), fmt::format("unknown acquirer '{}'", r.fallback));
      else if (r.fallback == r.acquirer)
        s.problem("fallback", s.find("fallback"), "must name another acquirer than 'acquirer'");
    }
    s.done();
    cfg.routes.push_back(std::move(r));
  }

  {
    const auto notify_tables = root.table_array("notify");
    for (auto [i, t] : notify_tables) {
      section s(t, fmt::format("notify[{}]", i), diag);
      notify_endpoint n;
      // Several endpoints: each row of the outbox names its endpoint, so names must be told apart.
      if (s.string("name", n.name, notify_tables.size() > 1)) {
        const bool ok =
            !n.name.empty() && n.name.size() <= 64 && std::all_of(n.name.begin(), n.name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
            });
        if (!ok)
          s.problem("name", s.find("name"), "1 to 64 characters: letters, digits, '.', '_', '-'");
        else if (std::any_of(cfg.notify.begin(), cfg.notify.end(),
                             [&](const notify_endpoint& o) { return o.name == n.name; }))
          s.problem("name", s.find("name"), fmt::format("another [[notify]] is already named '{}'", n.name));
      }
      if (s.string_list("merchants", n.merchants)) {
        for (std::size_t m = 0; m < n.merchants.size(); ++m)
          if (cfg.find_merchant(n.merchants[m]) == nullptr)
            s.element_problem("merchants", m, fmt::format("unknown merchant '{}'", n.merchants[m]));
      }
      if (s.string("url", n.url, true)) {
        // scheme://host[:port][/path]; the host may be a bracketed IPv6 address.
        std::string_view u = n.url;
        bool ok = true;
        if (u.starts_with("https://")) {
          u.remove_prefix(8);
        } else if (u.starts_with("http://")) {
          n.tls = false;
          n.port = 80;
          u.remove_prefix(7);
        } else {
          ok = false;
        }
        const auto slash = u.find('/');
        std::string_view authority = u.substr(0, slash);
        if (slash != std::string_view::npos) n.target = std::string(u.substr(slash));
        std::string_view port_text;
        bool has_port = false;
        if (authority.starts_with("[")) {
          const auto close = authority.find(']');
          if (close == std::string_view::npos) {
            ok = false;
          } else {
            n.host = std::string(authority.substr(1, close - 1));
            const auto rest = authority.substr(close + 1);
            if (!rest.empty()) {
              has_port = rest.front() == ':';
              ok = ok && has_port;
              port_text = rest.substr(1);
            }
          }
        } else {
          const auto colon = authority.rfind(':');
          n.host = std::string(authority.substr(0, colon));
          has_port = colon != std::string_view::npos;
          if (has_port) port_text = authority.substr(colon + 1);
        }
        if (has_port) {
          const bool digits =
              !port_text.empty() && port_text.size() <= 5 &&
              std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
          const int port = digits ? std::stoi(std::string(port_text)) : 0;
          if (port < 1 || port > 65535)
            ok = false;
          else
            n.port = static_cast<std::uint16_t>(port);
        }
        if (n.host.empty() || n.target.find_first_of(" \t\r\n") != std::string::npos) ok = false;
        if (!ok)
          s.problem("url", s.find("url"), "must be https://host[:port]/path");
        else if (!n.tls && !loopback_address(n.host))
          s.problem("url", s.find("url"),
                    "notifications are signed but not encrypted over http: use https "
                    "(http only to loopback)");
      }
      s.path("secret_file", n.secret_file, base);
      if (n.secret_file.empty()) s.missing("secret_file");
      s.path("ca_file", n.ca_file, base);
      if (n.tls && n.ca_file.empty() && !n.host.empty()) s.missing("ca_file");
      s.positive_u32("timeout_ms", n.timeout_ms, "milliseconds");
      s.positive_u32("max_age_h", n.max_age_h, "hours");
      s.u32("max_age_s", n.max_age_s, "seconds; 0 = use max_age_h");
      s.positive_u32("retry_initial_ms", n.retry_initial_ms, "milliseconds");
      s.positive_u32("retry_max_ms", n.retry_max_ms, "milliseconds");
      if (n.retry_max_ms < n.retry_initial_ms)
        s.problem("retry_max_ms", s.find("retry_max_ms"), "must not be below retry_initial_ms");
      std::vector<std::string> events;
      if (s.string_list("events", events)) {
        bool ok = true;
        for (std::size_t e = 0; e < events.size(); ++e) {
          if (events[e] != "order.final") {
            s.element_problem("events", e,
                              fmt::format("unknown event '{}' (expected order.final)", events[e]));
            ok = false;
          }
        }
        if (ok) n.events = std::move(events);
      }
      s.done();
      cfg.notify.push_back(std::move(n));
    }
  }

  root.done();

  // Limits that are fine level by level can still contradict each other once inherited.
  for (std::size_t i = 0; i < cfg.tills.size(); ++i) {
    const till& tl = cfg.tills[i];
    if (cfg.merchant_of(tl) == nullptr) continue;  // already reported as an unknown store/merchant
    const limits eff = cfg.effective_limits(tl);
    if (eff.min_amount && eff.max_amount && *eff.min_amount > *eff.max_amount)
      diag.add(fmt::format("tills[{}].limits", i), nullptr,
               fmt::format("effective min_amount {} exceeds effective max_amount {} (after inheriting from "
                           "merchant and [limits])",
                           *eff.min_amount, *eff.max_amount));
  }

  return cfg;
}

result<server_config> parse_named(std::string_view text, const fs::path& base_dir,
                                  const std::string& source_name) {
  toml::table doc;
  try {
    doc = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& pos = e.source().begin;
    std::string prefix = source_name.empty() ? "" : source_name + ":";
    return make_error("config.syntax",
                      fmt::format("{}{}:{}: {}", prefix, pos.line, pos.column, e.description()));
  } catch (const std::exception& e) {
    return make_error("config.syntax",
                      fmt::format("{}: {}", source_name.empty() ? "config" : source_name, e.what()));
  }
  try {
    diagnostics diag;
    server_config cfg = parse_document(doc, base_dir, diag);
    if (!diag.empty()) return make_error("config.invalid", diag.joined());
    return cfg;
  } catch (const std::exception& e) {
    // Only allocation failure can get here; keep the never-throws promise anyway.
    return make_error("config.invalid", fmt::format("internal error while validating: {}", e.what()));
  }
}

// --- overrides -------------------------------------------------------------------------------

std::optional<std::int64_t> parse_int(std::string_view v) {
  std::int64_t out = 0;
  const auto* end = v.data() + v.size();
  auto [p, ec] = std::from_chars(v.data(), end, out);
  if (ec != std::errc{} || p != end || v.empty()) return std::nullopt;
  return out;
}

result<void> override_error(std::string_view key, std::string_view problem) {
  return make_error("config.override", fmt::format("--set {}: {}", key, problem));
}

result<void> set_port(std::string_view key, std::string_view value, std::uint16_t& out, bool allow_zero) {
  auto v = parse_int(value);
  if (!v || *v < (allow_zero ? 0 : 1) || *v > 65535)
    return override_error(key, allow_zero ? "expected an integer 0..65535" : "expected an integer 1..65535");
  out = static_cast<std::uint16_t>(*v);
  return {};
}

// Timeouts: 1 ms .. 10 minutes; a zero or absurd timeout is always a mistake.
result<void> set_timeout_ms(std::string_view key, std::string_view value, std::uint32_t& out) {
  auto v = parse_int(value);
  if (!v || *v < 1 || *v > 600000) return override_error(key, "expected milliseconds 1..600000");
  out = static_cast<std::uint32_t>(*v);
  return {};
}

// Link intervals where 0 means "off" / "no wait": 0 .. 1 hour.
result<void> set_interval_ms(std::string_view key, std::string_view value, std::uint32_t& out) {
  auto v = parse_int(value);
  if (!v || *v < 0 || *v > 3600000) return override_error(key, "expected milliseconds 0..3600000");
  out = static_cast<std::uint32_t>(*v);
  return {};
}

result<void> set_count(std::string_view key, std::string_view value, std::uint32_t& out) {
  auto v = parse_int(value);
  if (!v || *v < 1 || *v > 1000000) return override_error(key, "expected a count 1..1000000");
  out = static_cast<std::uint32_t>(*v);
  return {};
}

result<void> set_nonempty(std::string_view key, std::string_view value, std::string& out) {
  if (value.empty()) return override_error(key, "must not be empty");
  out = std::string(value);
  return {};
}

result<void> set_path(std::string_view key, std::string_view value, fs::path& out, bool allow_empty) {
  if (value.empty()) {
    if (!allow_empty) return override_error(key, "must not be empty");
    out.clear();
    return {};
  }
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(value), ec);
  if (ec) return override_error(key, fmt::format("cannot resolve path: {}", ec.message()));
  out = p.lexically_normal();
  return {};
}

}  // namespace

// --- lookups ---------------------------------------------------------------------------------

const till* server_config::find_till(std::string_view id) const {
  auto it = std::find_if(tills.begin(), tills.end(), [&](const till& t) { return t.id == id; });
  return it == tills.end() ? nullptr : &*it;
}

const store* server_config::find_store(std::string_view id) const {
  auto it = std::find_if(stores.begin(), stores.end(), [&](const store& s) { return s.id == id; });
  return it == stores.end() ? nullptr : &*it;
}

const merchant* server_config::find_merchant(std::string_view id) const {
  auto it = std::find_if(merchants.begin(), merchants.end(), [&](const merchant& m) { return m.id == id; });
  return it == merchants.end() ? nullptr : &*it;
}

const pad* server_config::find_pad(std::string_view id) const {
  auto it = std::find_if(pads.begin(), pads.end(), [&](const config::pad& p) { return p.id == id; });
  return it == pads.end() ? nullptr : &*it;
}

const acquirer* server_config::find_acquirer(std::string_view name) const {
  auto it =
      std::find_if(acquirers.begin(), acquirers.end(), [&](const acquirer& a) { return a.name == name; });
  return it == acquirers.end() ? nullptr : &*it;
}

const merchant* server_config::merchant_of(const till& t) const {
  const store* s = find_store(t.store);
  return s == nullptr ? nullptr : find_merchant(s->merchant);
}

emv_config server_config::emv_for(std::string_view merchant_id, std::string_view till_id) const {
  emv_config out = emv;
  const till* t = till_id.empty() ? nullptr : find_till(till_id);
  const merchant* m = merchant_id.empty() ? nullptr : find_merchant(merchant_id);
  if (m == nullptr && t != nullptr) m = merchant_of(*t);
  if (m != nullptr) apply_emv(out, m->emv);
  if (t != nullptr) apply_emv(out, t->emv);
  return out;
}

const dukpt_bdk* keys_config::bdk_for(std::string_view ksn_hex) const {
  const dukpt_bdk* best = nullptr;
  const std::string ksn = to_upper(ksn_hex);
  for (const auto& d : dukpt)
    if (ksn.starts_with(to_upper(d.ksn_prefix)) && (!best || d.ksn_prefix.size() > best->ksn_prefix.size()))
      best = &d;
  return best;
}

const route* server_config::route_for(std::string_view pan_digits) const {
  return route_for(pan_digits, {}, {});
}

const route* server_config::route_for(std::string_view pan_digits, std::string_view scheme,
                                      std::string_view merchant_id) const {
  // Specificity, compared in order: merchant route, BIN prefix over scheme over default,
  // prefix length.
  const auto rank = [](const route& r) {
    const int kind = !r.bin_prefix.empty() ? 2 : !r.scheme.empty() ? 1 : 0;
    return std::tuple{!r.merchant.empty(), kind, r.bin_prefix.size()};
  };
  const route* best = nullptr;
  for (const auto& r : routes) {
    if (!r.merchant.empty() && r.merchant != merchant_id) continue;
    if (!r.scheme.empty() ? r.scheme != scheme : !pan_digits.starts_with(r.bin_prefix)) continue;
    if (best == nullptr || rank(r) > rank(*best)) best = &r;
  }
  return best;
}

limits server_config::effective_limits(const till& t) const {
  const limits none;
  const merchant* m = merchant_of(t);
  const limits& ml = m != nullptr ? m->limit : none;
  limits out;
  out.min_amount = t.limit.min_amount ? t.limit.min_amount
                   : ml.min_amount    ? ml.min_amount
                                      : default_limits.min_amount;
  out.max_amount = t.limit.max_amount ? t.limit.max_amount
                   : ml.max_amount    ? ml.max_amount
                                      : default_limits.max_amount;
  out.allowed_types = t.limit.allowed_types ? t.limit.allowed_types
                      : ml.allowed_types    ? ml.allowed_types
                                            : default_limits.allowed_types;
  out.allowed_schemes = t.limit.allowed_schemes ? t.limit.allowed_schemes
                        : ml.allowed_schemes    ? ml.allowed_schemes
                                                : default_limits.allowed_schemes;
  return out;
}

// --- entry points ----------------------------------------------------------------------------

result<server_config> parse_config(std::string_view toml_text, const fs::path& base_dir) {
  return parse_named(toml_text, base_dir, "");
}

result<server_config> load_config(const fs::path& file) {
  try {
    std::error_code dir_ec;
    if (fs::is_directory(file, dir_ec))
      return make_error("config.io", fmt::format("{}: is a directory, not a config file", file.string()));
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return make_error("config.io", fmt::format("{}: cannot open: {}", file.string(),
                                                 std::generic_category().message(errno)));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error("config.io", fmt::format("{}: read error", file.string()));
    std::error_code ec;
    fs::path base = fs::absolute(file, ec).parent_path();
    if (ec) base = file.parent_path();
    return parse_named(ss.str(), base, file.string());
  } catch (const std::exception& e) {
    return make_error("config.io", fmt::format("{}: {}", file.string(), e.what()));
  }
}

result<void> apply_override(server_config& cfg, std::string_view key_eq_value) {
  const auto eq = key_eq_value.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return make_error("config.override", fmt::format("--set {}: expected key=value", key_eq_value));
  const std::string_view key = key_eq_value.substr(0, eq);
  const std::string_view value = key_eq_value.substr(eq + 1);

  if (key == "server.node_name") {
    if (!valid_node_name(value))
      return override_error(key, "must be non-empty letters, digits, '.', '-', '_'");
    cfg.node_name = std::string(value);
    return {};
  }
  if (key == "listen.pos.port") return set_port(key, value, cfg.pos.port, true);
  if (key == "listen.pad.port") return set_port(key, value, cfg.pad.port, true);
  if (key == "listen.pos.address") return set_nonempty(key, value, cfg.pos.address);
  if (key == "listen.metrics.port" || key == "listen.metrics.address") {
    if (!cfg.metrics) cfg.metrics.emplace(listener{"127.0.0.1", 9300});
    if (key == "listen.metrics.port") return set_port(key, value, cfg.metrics->port, true);
    if (!loopback_address(value)) return override_error(key, "must be a loopback address (plaintext HTTP)");
    return set_nonempty(key, value, cfg.metrics->address);
  }
  if (key == "listen.backoffice.port" || key == "listen.backoffice.address") {
    if (!cfg.backoffice) cfg.backoffice.emplace(listener{"127.0.0.1", 9400});
    if (key == "listen.backoffice.port") return set_port(key, value, cfg.backoffice->port, true);
    return set_nonempty(key, value, cfg.backoffice->address);
  }
  if (key == "backoffice.session_idle_s") return set_count(key, value, cfg.backoffice_web.session_idle_s);
  if (key == "backoffice.lockout_after") return set_count(key, value, cfg.backoffice_web.lockout_after);
  if (key == "listen.pad.address") return set_nonempty(key, value, cfg.pad.address);
  for (auto* l : {&cfg.pos, &cfg.pad}) {
    const std::string prefix = l == &cfg.pos ? "listen.pos." : "listen.pad.";
    if (key == prefix + "max_connections") return set_count(key, value, l->max_connections);
    if (key == prefix + "max_per_address") return set_count(key, value, l->max_per_address);
    if (key == prefix + "login_timeout_ms") return set_timeout_ms(key, value, l->login_timeout_ms);
    if (key == prefix + "frame_timeout_ms") return set_timeout_ms(key, value, l->frame_timeout_ms);
  }
  if (key == "journal.path") return set_path(key, value, cfg.journal_cfg.path, false);
  if (key == "journal.key_file") return set_path(key, value, cfg.journal_cfg.key_file, false);
  if (key == "journal.retention_days") {
    auto v = parse_int(value);
    if (!v || *v < 0 || *v > std::numeric_limits<std::uint32_t>::max())
      return override_error(key, "must be 0 (keep forever) or a number of days");
    cfg.journal_cfg.retention_days = static_cast<std::uint32_t>(*v);
    return {};
  }
  if (key == "keys.store") return set_path(key, value, cfg.keys.store, false);
  if (key == "keys.master_key_file") return set_path(key, value, cfg.keys.master_key_file, false);
  if (key == "pad_health.ping_interval_ms")
    return set_timeout_ms(key, value, cfg.pad_health.ping_interval_ms);
  if (key == "pad_health.write_interval_ms")
    return set_timeout_ms(key, value, cfg.pad_health.write_interval_ms);
  if (key == "settlement.cutover") {
    if (!value.empty() && !valid_hh_mm(value)) return override_error(key, "must be HH:MM or empty");
    cfg.settlement.cutover = std::string(value);
    return {};
  }
  if (key == "settlement.close_on_start") {
    if (value != "true" && value != "false") return override_error(key, "must be true or false");
    cfg.settlement.close_on_start = value == "true";
    return {};
  }
  if (key == "ha.replication.port") return set_port(key, value, cfg.ha.replication.port, true);
  if (key == "ha.peer.replication") return set_nonempty(key, value, cfg.ha.peer.replication);
  if (key == "ha.peer.pos_address") return set_nonempty(key, value, cfg.ha.peer.pos_address);
  if (key == "ha.peer.pad_address") return set_nonempty(key, value, cfg.ha.peer.pad_address);
  if (key == "ha.pos_address") return set_nonempty(key, value, cfg.ha.pos_address);
  if (key == "ha.pad_address") return set_nonempty(key, value, cfg.ha.pad_address);
  if (key == "ha.witness") return set_nonempty(key, value, cfg.ha.witness);
  if (key == "ha.mode") {
    if (value != "sync" && value != "async") return override_error(key, "must be sync or async");
    cfg.ha.mode = std::string(value);
    return {};
  }
  if (key == "admin.socket") {
    cfg.admin.socket = std::string(value);
    return {};
  }
  if (key == "emv.enabled") {
    if (value != "true" && value != "false") return override_error(key, "must be true or false");
    cfg.emv.enabled = value == "true";
    return {};
  }
  if (key == "emv.capk_file") return set_path(key, value, cfg.emv.capk_file, false);
  if (key == "emv.floor_limit") {
    auto v = parse_int(value);
    if (!v || *v < 0) return override_error(key, "must be an amount in minor units, 0 or more");
    cfg.emv.floor_limit = static_cast<std::uint64_t>(*v);
    return {};
  }
  if (key == "emv.contactless.enabled" || key == "emv.refuse_chip_swipes" || key == "emv.batch_apdus") {
    if (value != "true" && value != "false") return override_error(key, "must be true or false");
    (key == "emv.contactless.enabled" ? cfg.emv.contactless.enabled
     : key == "emv.batch_apdus"       ? cfg.emv.batch_apdus
                                      : cfg.emv.refuse_chip_swipes) = value == "true";
    return {};
  }
  if (key == "emv.fallback") {
    if (value != "true" && value != "false") return override_error(key, "must be true or false");
    cfg.emv.fallback_allowed = value == "true";
    return {};
  }
  if (key == "emv.fallback_max_amount") {
    auto v = parse_int(value);
    if (!v || *v < 0) return override_error(key, "must be an amount in minor units, 0 or more");
    cfg.emv.fallback_max_amount = static_cast<std::uint64_t>(*v);
    return {};
  }
  if (key == "emv.tac_denial" || key == "emv.tac_online" || key == "emv.tac_default") {
    if (value.size() != 10 || value.find_first_not_of("0123456789ABCDEFabcdef") != std::string_view::npos)
      return override_error(key, "must be 5 bytes in hex (10 hex digits), as the TVR");
    (key == "emv.tac_denial"   ? cfg.emv.tac_denial
     : key == "emv.tac_online" ? cfg.emv.tac_online
                               : cfg.emv.tac_default) = std::string(value);
    return {};
  }
  if (key == "keys.require_p2pe") {
    if (value != "true" && value != "false") return override_error(key, "must be true or false");
    cfg.keys.require_p2pe = value == "true";
    return {};
  }
  if (key == "cvm.magstripe_pin") {
    static constexpr std::array<std::string_view, 3> modes{"service_code", "always", "never"};
    if (!one_of(value, modes)) return override_error(key, "must be service_code, always or never");
    cfg.cvm.magstripe_pin = std::string(value);
    return {};
  }
  if (key == "log.file") return set_path(key, value, cfg.log.file, true);
  if (key == "log.level") {
    if (!one_of(value, log_levels))
      return override_error(key, fmt::format("expected one of {}", join_list(log_levels)));
    cfg.log.level = std::string(value);
    return {};
  }
  if (key == "log.format") {
    if (!one_of(value, log_formats)) return override_error(key, "expected text or json");
    cfg.log.format = std::string(value);
    return {};
  }
  constexpr std::string_view acq_prefix = "acquirers.";
  if (key.substr(0, acq_prefix.size()) == acq_prefix) {
    const std::string_view rest = key.substr(acq_prefix.size());
    const auto dot = rest.rfind('.');
    if (dot == std::string_view::npos)
      return override_error(key, "expected acquirers.<name>.host or acquirers.<name>.port");
    const std::string_view name = rest.substr(0, dot);
    const std::string_view field = rest.substr(dot + 1);
    auto it = std::find_if(cfg.acquirers.begin(), cfg.acquirers.end(),
                           [&](const acquirer& a) { return a.name == name; });
    if (it == cfg.acquirers.end()) return override_error(key, fmt::format("unknown acquirer '{}'", name));
    if (field == "host") return set_nonempty(key, value, it->host);
    if (field == "port") return set_port(key, value, it->port, false);
    if (field == "links") {
      // host:port,host:port: replaces every link of the acquirer, the first is the primary.
      std::vector<acquirer_link> parsed;
      std::size_t from = 0;
      for (;;) {
        const auto comma = value.find(',', from);
        const auto item = value.substr(from, comma == std::string_view::npos ? value.npos : comma - from);
        acquirer_link l;
        if (auto bad = parse_acquirer_link(item, l, false))
          return override_error(key, fmt::format("link {}: {}", parsed.size() + 1, *bad));
        parsed.push_back(std::move(l));
        if (comma == std::string_view::npos) break;
        from = comma + 1;
      }
      it->host = parsed.front().host;
      it->port = parsed.front().port;
      it->extra_links.assign(parsed.begin() + 1, parsed.end());
      return {};
    }
    if (field == "response_timeout_ms") return set_timeout_ms(key, value, it->response_timeout_ms);
    if (field == "connect_timeout_ms") return set_timeout_ms(key, value, it->connect_timeout_ms);
    if (field == "reversal_expiry_ms") return set_timeout_ms(key, value, it->reversal_expiry_ms);
    if (field == "sign_on") {
      if (value != "true" && value != "false") return override_error(key, "expected true or false");
      it->sign_on = value == "true";
      return {};
    }
    if (field == "echo_interval_ms") return set_interval_ms(key, value, it->echo_interval_ms);
    if (field == "reconnect_backoff_ms" || field == "reconnect_backoff_max_ms") {
      acquirer a = *it;
      auto& out = field == "reconnect_backoff_ms" ? a.reconnect_backoff_ms : a.reconnect_backoff_max_ms;
      if (auto st = set_interval_ms(key, value, out); !st) return st;
      if (a.reconnect_backoff_max_ms < a.reconnect_backoff_ms)
        return override_error(key, fmt::format("reconnect_backoff_max_ms ({}) must be at least "
                                               "reconnect_backoff_ms ({})",
                                               a.reconnect_backoff_max_ms, a.reconnect_backoff_ms));
      *it = std::move(a);
      return {};
    }
    return override_error(
        key,
        "only host, port, response_timeout_ms, connect_timeout_ms, reversal_expiry_ms, "
        "sign_on, echo_interval_ms, reconnect_backoff_ms, reconnect_backoff_max_ms and links can "
        "be overridden for an acquirer");
  }
  return override_error(
      key,
      "unsupported key (supported: server.node_name, listen.pos.address, listen.pos.port, "
      "listen.metrics.address, listen.metrics.port, listen.backoffice.address, "
      "listen.backoffice.port, backoffice.session_idle_s, backoffice.lockout_after, emv.enabled, "
      "emv.capk_file, emv.floor_limit, emv.tac_denial|tac_online|tac_default, emv.fallback, "
      "emv.fallback_max_amount, emv.refuse_chip_swipes, emv.batch_apdus, emv.contactless.enabled, "
      "listen.pad.address, listen.pad.port, listen.<pos|pad>.max_connections, "
      "listen.<pos|pad>.max_per_address, listen.<pos|pad>.login_timeout_ms, "
      "listen.<pos|pad>.frame_timeout_ms, acquirers.<name>.host, acquirers.<name>.port, "
      "acquirers.<name>.links, "
      "acquirers.<name>.response_timeout_ms, acquirers.<name>.connect_timeout_ms, "
      "acquirers.<name>.reversal_expiry_ms, acquirers.<name>.sign_on, "
      "acquirers.<name>.echo_interval_ms, acquirers.<name>.reconnect_backoff_ms, "
      "acquirers.<name>.reconnect_backoff_max_ms, "
      "journal.path, journal.key_file, journal.retention_days, keys.store, keys.master_key_file, "
      "keys.require_p2pe, cvm.magstripe_pin, pad_health.ping_interval_ms, "
      "pad_health.write_interval_ms, log.level, log.format, log.file)");
}

result<void> check_ready(const server_config& cfg) {
  std::string problems;
  for (std::size_t i = 0; i < cfg.acquirers.size(); ++i) {
    const auto& a = cfg.acquirers[i];
    if (a.port != 0) continue;
    if (!problems.empty()) problems += '\n';
    problems += fmt::format("acquirers[{}].port: placeholder 0 is still set (use --set acquirers.{}.port=N)",
                            i, a.name);
  }
  // Again after --set overrides: an address moved off loopback needs TLS there too.
  for (const auto& [l, what] : {std::pair{&cfg.pos, "pos"}, std::pair{&cfg.pad, "pad"}}) {
    if (l->tls.enabled() || loopback_address(l->address)) continue;
    if (!problems.empty()) problems += '\n';
    problems += fmt::format(
        "listen.{}: plaintext connections are only allowed on loopback addresses, not '{}': "
        "configure [listen.{}.tls]",
        what, l->address, what);
  }
  if (cfg.ha.enabled && !cfg.ha.replication.tls.enabled() && !loopback_address(cfg.ha.replication.address)) {
    if (!problems.empty()) problems += '\n';
    problems += fmt::format(
        "ha.replication: plaintext is only allowed on loopback addresses, not '{}': configure "
        "[ha.replication.tls] with a client_ca_file (mutual TLS between the nodes)",
        cfg.ha.replication.address);
  }
  if (!problems.empty()) return make_error("config.not_ready", problems);
  return {};
}

}  // namespace eftd::config
