// Card profiles (shipped files and broken ones), Luhn/track 2 rules, the virtual pad.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/virtual_pad.hpp"

using namespace eftd::padsim;
namespace pad = eftd::pad;

namespace {

std::filesystem::path cards_dir() {
  const char* src = std::getenv("EFTD_SOURCE");
  return std::filesystem::path(src ? src : ".") / "pinpad-firmware-shim" / "cards";
}

std::string track_of(const card_profile& p) {
  return {reinterpret_cast<const char*>(p.track2.view().data()), p.track2.size()};
}

}  // namespace

TEST_CASE("shipped card profiles load and match what the acquirer simulator expects", "[pad][profile]") {
  struct expect {
    const char* file;
    const char* pan_prefix;  // first 6 (BIN) only, so no full PAN ends up in a report
    const char* pan_suffix;  // last 4
    bool expired;
  };
  const expect files[] = {
      {"visa-approve.toml", "476173", "0119", false},
      {"mc-approve.toml", "541333", "0011", false},
      {"visa-decline.toml", "476173", "0002", false},  // the acquirer simulator declines "...0002" with 05
      {"expired.toml", "476173", "0119", true},
  };
  for (const auto& f : files) {
    INFO(f.file);
    auto p = load_card_profile(cards_dir() / f.file);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->name.empty());
    CHECK(p->kind == "magstripe");
    CHECK(p->mode == pad::entry_mode::magstripe);
    const auto t2 = track_of(*p);
    const auto sep = t2.find('=');
    REQUIRE(sep != std::string::npos);
    const auto pan = t2.substr(0, sep);
    CHECK(pan.rfind(f.pan_prefix, 0) == 0);
    CHECK(pan.substr(pan.size() - 4) == f.pan_suffix);
    CHECK(luhn_valid(pan));
    const int yy = std::stoi(t2.substr(sep + 1, 2));
    CHECK((yy < 20) == f.expired);  // every shipped card expires in 2029 or 2012
  }
}

TEST_CASE("every profile in the cards directory loads", "[pad][profile]") {
  // A new profile (or a key it names) that does not load would only fail when a tester picks
  // it; every file is loaded here, certificates minted included.
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(cards_dir())) {
    if (e.path().extension() != ".toml") continue;
    INFO(e.path().filename().string());
    auto p = load_card_profile(e.path());
    if (!p) FAIL(p.err().code << ": " << p.err().message);  // messages never hold card data
    ++n;
  }
  CHECK(n >= 19);
}

TEST_CASE("Luhn check", "[pad][profile]") {
  CHECK(luhn_valid("4761739001010119"));
  CHECK(luhn_valid("5413330089020011"));
  CHECK(luhn_valid("4761739001010002"));
  CHECK(luhn_valid("79927398713"));
  CHECK_FALSE(luhn_valid("4761739001010118"));
  CHECK_FALSE(luhn_valid("79927398710"));
  CHECK_FALSE(luhn_valid(""));
  CHECK_FALSE(luhn_valid("4761 7390"));
}

TEST_CASE("track 2 rules", "[pad][profile]") {
  CHECK(check_track2("4761739001010119=29122011143804489").has_value());
  CHECK(check_track2("4761739001010119=2912201").has_value());
  const char* bad[] = {
      "4761739001010119",                         // no separator
      "4761739001010118=29122011143804489",       // Luhn
      "47617390010=29122011143804489",            // PAN too short
      "47617390010101190000=2912201",             // PAN of 20 digits
      "4761739001010119=2913201",                 // month 13
      "4761739001010119=2900201",                 // month 00
      "4761739001010119=291220",                  // no full service code
      "4761739001010119=29122011143804489A",      // non-digit
      "4761739001010119=2912201114380448912345",  // 39 characters
      "4761739001010119D29122011143804489",       // binary-style separator
  };
  for (const char* t : bad) {
    auto st = check_track2(t);
    REQUIRE_FALSE(st.has_value());
    CHECK(st.err().code == "padsim.profile_bad_value");
    CHECK(st.err().message.find("4761") == std::string::npos);
  }
}

TEST_CASE("bad card profiles give a clear error without card data", "[pad][profile][errors]") {
  struct vec {
    const char* what;
    const char* text;
    const char* code;
    const char* names;  // what the message must mention
  };
  const vec vectors[] = {
      {"syntax", "[card\nname = \"x\"\ntrack2 = \"4761739001010119=2912201\"", "padsim.profile_syntax",
       "line"},
      {"unterminated string", "[card]\ntrack2 = \"4761739001010119=2912201\nkind=\"magstripe\"",
       "padsim.profile_syntax", "line"},
      {"no card table", "name = \"x\"", "padsim.profile_unknown_key", "name"},
      {"empty file", "", "padsim.profile_missing_key", "[card]"},
      {"missing name", "[card]\nkind = \"magstripe\"\ntrack2 = \"4761739001010119=2912201\"",
       "padsim.profile_missing_key", "card.name"},
      {"missing track2", "[card]\nname = \"x\"\nkind = \"magstripe\"", "padsim.profile_missing_key",
       "card.track2"},
      {"missing kind", "[card]\nname = \"x\"\ntrack2 = \"4761739001010119=2912201\"",
       "padsim.profile_missing_key", "card.kind"},
      {"chip card without chip data",
       "[card]\nname = \"x\"\nkind = \"chip\"\ntrack2 = \"4761739001010119=2912201\"",
       "padsim.profile_missing_key", "[chip]"},
      {"unknown kind", "[card]\nname = \"x\"\nkind = \"nfc\"\ntrack2 = \"4761739001010119=2912201\"",
       "padsim.profile_bad_value", "card.kind"},
      {"track2 a number", "[card]\nname = \"x\"\nkind = \"magstripe\"\ntrack2 = 4761739001010119",
       "padsim.profile_bad_value", "card.track2"},
      {"Luhn", "[card]\nname = \"x\"\nkind = \"magstripe\"\ntrack2 = \"4761739001010118=2912201\"",
       "padsim.profile_bad_value", "Luhn"},
      {"typo key", "[card]\nname = \"x\"\nkind = \"magstripe\"\ntrak2 = \"4761739001010119=2912201\"",
       "padsim.profile_unknown_key", "trak2"},
      {"extra table",
       "[card]\nname = \"x\"\nkind = \"magstripe\"\ntrack2 = \"4761739001010119=2912201\"\n[emv]\naid = "
       "\"A0\"",
       "padsim.profile_unknown_key", "emv"},
      {"fallback not bool",
       "[card]\nname = \"x\"\nkind = \"magstripe\"\ntrack2 = \"4761739001010119=2912201\"\nfallback = "
       "\"yes\"",
       "padsim.profile_bad_value", "card.fallback"},
      {"empty name", "[card]\nname = \"\"\nkind = \"magstripe\"\ntrack2 = \"4761739001010119=2912201\"",
       "padsim.profile_bad_value", "card.name"},
  };
  for (const auto& v : vectors) {
    INFO(v.what);
    auto p = parse_card_profile(v.text, "t.toml");
    REQUIRE_FALSE(p.has_value());
    CHECK(p.err().code == v.code);
    CHECK(p.err().message.find(v.names) != std::string::npos);
    CHECK(p.err().message.rfind("t.toml", 0) == 0);
    CHECK(p.err().message.find("4761") == std::string::npos);
    CHECK(p.err().message.find("2912") == std::string::npos);
  }
}

TEST_CASE("fallback profile and missing file", "[pad][profile]") {
  auto p = parse_card_profile(
      "[card]\nname = \"fb\"\nkind = \"magstripe\"\ntrack2 = \"4761739001010119=2912201\"\nfallback = true",
      "fb");
  REQUIRE(p.has_value());
  CHECK(p->fallback);
  CHECK(p->mode == pad::entry_mode::fallback_magstripe);

  auto missing = load_card_profile(cards_dir() / "does-not-exist.toml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.err().code == "padsim.profile_io");
}

TEST_CASE("virtual pad prints displays and cycles its cards", "[pad][virtual]") {
  auto a = load_card_profile(cards_dir() / "visa-approve.toml");
  auto b = load_card_profile(cards_dir() / "mc-approve.toml");
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  std::vector<std::string> printed;
  virtual_pad vp({*a, *b}, [&](const std::string& l) { printed.push_back(l); });

  vp.show(pad::display{{"Insert card", "125.00 PLN"}, "en"});
  vp.show(pad::display{{}, "en"});
  REQUIRE(printed.size() == 2);
  CHECK(printed[0] == "DISPLAY Insert card | 125.00 PLN");
  CHECK(printed[1] == "DISPLAY");

  pad::read_card req;
  for (const auto* want : {&*a, &*b, &*a}) {
    auto r = vp.read(req);
    REQUIRE(std::holds_alternative<presented_card>(r));
    CHECK((std::get<presented_card>(r).track2 == want->track2));
  }
  CHECK(vp.reads() == 3);

  req.interfaces = static_cast<std::uint8_t>(pad::interface_mask::chip);
  auto chip_only = vp.read(req);
  REQUIRE(std::holds_alternative<reader_failure>(chip_only));
  CHECK(std::get<reader_failure>(chip_only).code == pad::pad_error_code::timeout);
}

TEST_CASE("virtual pad without a card times out", "[pad][virtual]") {
  auto a = load_card_profile(cards_dir() / "visa-approve.toml");
  REQUIRE(a.has_value());
  virtual_pad no_card({*a}, nullptr, true);
  auto r = no_card.read(pad::read_card{});
  REQUIRE(std::holds_alternative<reader_failure>(r));
  CHECK(std::get<reader_failure>(r).code == pad::pad_error_code::timeout);

  virtual_pad empty({}, nullptr);
  CHECK(std::holds_alternative<reader_failure>(empty.read(pad::read_card{})));
}
