#include "eftd/padsim/card_profile.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <fstream>
#include <sstream>

namespace eftd::padsim {

namespace {

error bad(std::string_view source, std::string_view key, std::string_view why) {
  return make_error("padsim.profile_bad_value", fmt::format("{}: card.{}: {}", source, key, why));
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

bool luhn_valid(std::string_view digits) {
  if (digits.empty() || !all_digits(digits)) return false;
  int sum = 0;
  bool dbl = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

// ISO/IEC 7813 track 2 without sentinels: PAN(<=19) '=' YYMM SSS discretionary; 37 chars max.
status check_track2(std::string_view t2) {
  auto fail = [](std::string_view why) {
    return make_error("padsim.profile_bad_value", fmt::format("track2: {}", why));
  };
  if (t2.size() > 37) return fail("longer than 37 characters");
  const auto sep = t2.find('=');
  if (sep == std::string_view::npos) return fail("no '=' field separator");
  const auto pan = t2.substr(0, sep);
  const auto rest = t2.substr(sep + 1);
  if (pan.size() < 12 || pan.size() > 19 || !all_digits(pan)) return fail("PAN must be 12..19 digits");
  if (!luhn_valid(pan)) return fail("PAN fails the Luhn check");
  if (rest.size() < 7) return fail("expiry (YYMM) and service code (3 digits) required after '='");
  if (!all_digits(rest)) return fail("only digits allowed after '='");
  const int month = (rest[2] - '0') * 10 + (rest[3] - '0');
  if (month < 1 || month > 12) return fail("expiry month not 01..12");
  return {};
}

result<card_profile> parse_card_profile(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    // Location only: toml++'s description may quote the offending text, which can be the track.
    return make_error("padsim.profile_syntax",
                      fmt::format("{}: TOML syntax error at line {}, column {}", source,
                                  e.source().begin.line, e.source().begin.column));
  }
  for (const auto& [k, v] : root) {
    if (k.str() != "card")
      return make_error("padsim.profile_unknown_key",
                        fmt::format("{}: unknown table or key '{}'", source, k.str()));
    (void)v;
  }
  const toml::table* card = root["card"].as_table();
  if (card == nullptr)
    return make_error("padsim.profile_missing_key", fmt::format("{}: [card] table missing", source));
  static constexpr std::string_view known[] = {"name", "kind", "track2", "fallback"};
  for (const auto& [k, v] : *card) {
    bool ok = false;
    for (auto n : known) ok = ok || k.str() == n;
    if (!ok)
      return make_error("padsim.profile_unknown_key",
                        fmt::format("{}: unknown key card.{}", source, k.str()));
    (void)v;
  }
  auto required_string = [&](std::string_view key) -> result<std::string> {
    const auto node = (*card)[key];
    if (!node)
      return make_error("padsim.profile_missing_key", fmt::format("{}: card.{} is required", source, key));
    const auto* s = node.as_string();
    if (s == nullptr) return bad(source, key, "must be a string");
    return std::string(s->get());
  };

  card_profile p;
  p.source = std::string(source);
  auto name = required_string("name");
  if (!name) return name.err();
  p.name = std::move(*name);
  if (p.name.empty()) return bad(source, "name", "must not be empty");

  auto kind = required_string("kind");
  if (!kind) return kind.err();
  p.kind = std::move(*kind);
  if (p.kind != "magstripe") return bad(source, "kind", "only \"magstripe\" is supported for now");
  p.mode = pad::entry_mode::magstripe;

  auto track2 = required_string("track2");
  if (!track2) return track2.err();
  // Wipe the std::string copy once it is in secure_bytes.
  auto st = check_track2(*track2);
  p.track2 = secure_bytes(as_bytes(*track2));
  secure_wipe(track2->data(), track2->size());
  if (!st) return make_error(st.err().code, fmt::format("{}: card.{}", source, st.err().message));

  if (const auto node = (*card)["fallback"]) {
    const auto* b = node.as_boolean();
    if (b == nullptr) return bad(source, "fallback", "must be true or false");
    p.fallback = b->get();
    if (p.fallback) p.mode = pad::entry_mode::fallback_magstripe;
  }
  return p;
}

result<card_profile> load_card_profile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("padsim.profile_io", fmt::format("{}: cannot open", file.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto r = parse_card_profile(text, file.filename().string());
  secure_wipe(text.data(), text.size());
  return r;
}

}  // namespace eftd::padsim
