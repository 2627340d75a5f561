#include "eftd/padsim/pad_script.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "eftd/pad/messages.hpp"

namespace eftd::padsim {

namespace {

error bad(std::string_view source, std::string_view key, std::string_view why) {
  return make_error("padsim.script_bad_value", fmt::format("{}: {}: {}", source, key, why));
}

status only_keys(const toml::table& t, std::initializer_list<std::string_view> known, std::string_view source,
                 std::string_view where) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto n : known) ok = ok || k.str() == n;
    if (!ok)
      return make_error("padsim.script_unknown_key",
                        fmt::format("{}: unknown key {}{}", source, where, k.str()));
    (void)v;
  }
  return {};
}

result<std::vector<std::string>> strings(const toml::node& n, std::string_view source, std::string_view key) {
  const auto* arr = n.as_array();
  if (arr == nullptr) return bad(source, key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *arr) {
    const auto* s = e.as_string();
    if (s == nullptr) return bad(source, key, "must be an array of strings");
    out.push_back(s->get());
  }
  return out;
}

result<bool> boolean(const toml::node& n, std::string_view source, std::string_view key) {
  const auto* b = n.as_boolean();
  if (b == nullptr) return bad(source, key, "must be true or false");
  return b->get();
}

}  // namespace

result<script_event> parse_script_event(std::string_view token) {
  auto fail = [&] {
    return make_error("padsim.script_bad_value",
                      fmt::format("input event '{}' is not 0..9, enter, clear, cancel, remove or pause <ms>",
                                  token.substr(0, 32)));
  };
  if (token.size() == 1 && token[0] >= '0' && token[0] <= '9')
    return script_event{script_event::kind::key, static_cast<std::uint8_t>(token[0]), {}};
  if (token == "enter") return script_event{script_event::kind::key, pad::keys::enter, {}};
  if (token == "clear") return script_event{script_event::kind::key, pad::keys::clear, {}};
  if (token == "cancel") return script_event{script_event::kind::key, pad::keys::cancel, {}};
  if (token == "remove") return script_event{script_event::kind::remove, 0, {}};
  if (token.starts_with("pause ")) {
    const auto num = token.substr(6);
    std::uint32_t ms = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), ms);
    if (ec != std::errc{} || p != num.data() + num.size() || num.empty() || ms > 600000) return fail();
    return script_event{script_event::kind::pause, 0, std::chrono::milliseconds(ms)};
  }
  return fail();
}

result<pad_script> parse_pad_script(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error("padsim.script_syntax",
                      fmt::format("{}: TOML syntax error at line {}, column {}", source,
                                  e.source().begin.line, e.source().begin.column));
  }
  if (auto st = only_keys(root, {"pad", "input"}, source, ""); !st) return st.err();
  pad_script s;
  if (const auto* padt = root["pad"].as_table()) {
    if (auto st = only_keys(*padt, {"languages", "card_inserted", "card_stays_in", "dukpt"}, source, "pad.");
        !st)
      return st.err();
    if (const auto n = (*padt)["languages"]) {
      auto v = strings(*n.node(), source, "pad.languages");
      if (!v) return v.err();
      s.languages = std::move(*v);
    }
    if (const auto n = (*padt)["card_inserted"]) {
      auto v = boolean(*n.node(), source, "pad.card_inserted");
      if (!v) return v.err();
      s.card_inserted = *v;
    }
    if (const auto n = (*padt)["card_stays_in"]) {
      auto v = boolean(*n.node(), source, "pad.card_stays_in");
      if (!v) return v.err();
      s.card_stays_in = *v;
    }
    if (const auto n = (*padt)["dukpt"]) {
      const auto* arr = n.as_array();
      if (arr == nullptr) return bad(source, "pad.dukpt", "must be an array of tables ([[pad.dukpt]])");
      for (const auto& e : *arr) {
        const auto* t = e.as_table();
        if (t == nullptr) return bad(source, "pad.dukpt", "must be an array of tables ([[pad.dukpt]])");
        if (auto st = only_keys(*t, {"ksn", "counter"}, source, "pad.dukpt."); !st) return st.err();
        const auto* ksn = (*t)["ksn"].as_string();
        if (ksn == nullptr) return bad(source, "pad.dukpt.ksn", "required hex string");
        auto b = eftd::from_hex(ksn->get());
        if (!b || (b->size() != 10 && b->size() != 12))
          return bad(source, "pad.dukpt.ksn", "must be 10 (TDES) or 12 (AES) bytes of hex");
        const auto* counter = (*t)["counter"].as_integer();
        if (counter == nullptr || counter->get() < 0 || counter->get() > 0xFFFFFFFF)
          return bad(source, "pad.dukpt.counter", "required integer 0..4294967295");
        s.ksns.push_back(std::move(*b));
        s.dukpt_counters.push_back(static_cast<std::uint32_t>(counter->get()));
      }
      if (s.ksns.size() > 8) return bad(source, "pad.dukpt", "at most 8 keys");
    }
  } else if (root.contains("pad")) {
    return bad(source, "pad", "must be a table");
  }
  if (const auto* in = root["input"].as_table()) {
    if (auto st = only_keys(*in, {"events"}, source, "input."); !st) return st.err();
    if (const auto n = (*in)["events"]) {
      auto v = strings(*n.node(), source, "input.events");
      if (!v) return v.err();
      for (const auto& tok : *v) {
        auto ev = parse_script_event(tok);
        if (!ev) return make_error(ev.err().code, fmt::format("{}: {}", source, ev.err().message));
        s.events.push_back(*ev);
      }
    }
  } else if (root.contains("input")) {
    return bad(source, "input", "must be a table");
  }
  return s;
}

result<pad_script> load_pad_script(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("padsim.script_io", fmt::format("{}: cannot open", file.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_pad_script(ss.str(), file.filename().string());
}

}  // namespace eftd::padsim
