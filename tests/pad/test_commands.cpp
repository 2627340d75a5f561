// The pad's command set driven through pad_session with a virtual pad and a script: status,
// display layout and languages, beep and LEDs, the waiting commands (key, amount, yes/no,
// menu, remove card) with their deadlines, cancel and reset, ping's timestamp echo. Time is
// passed in by hand, so deadlines are exact and nothing sleeps.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "eftd/pad/codec.hpp"
#include "eftd/padsim/pad_script.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/virtual_pad.hpp"
#include "pad_test_util.hpp"

using namespace eftd::padsim;
using namespace eftd::pad;
using namespace std::chrono_literals;
using pad_test::without_length;

namespace {

pad_script script_of(std::string_view toml) {
  auto s = parse_pad_script(toml, "test.toml");
  REQUIRE(s.has_value());
  return std::move(*s);
}

struct fixture {
  std::vector<std::string> printed;
  virtual_pad hw{{}, [this](const std::string& l) { printed.push_back(l); }};
  pad_identity id = [] {
    pad_identity i{"P01", "VP-0001"};
    i.capabilities = {"display", "magstripe", "keypad", "beep", "leds"};
    i.ksns = {*eftd::from_hex("FFFF9876543210E00001")};
    i.dukpt_counters = {1};
    i.languages = {"en", "pl"};
    return i;
  }();
  pad_session session{id, hw, hw, hw};
  std::uint32_t server_seq = 0;
  pad_clock::time_point t0 = pad_clock::now();

  explicit fixture(std::string_view script = "") {
    hw.load_script(script_of(script));
    auto h = decode_body(without_length(session.start()));
    REQUIRE(h.has_value());
    auto out = session.on_bytes(encode(envelope{++server_seq, h->seq, hello_ack{true, "eftd", ""}}), t0);
    REQUIRE(out.has_value());
    REQUIRE(session.accepted());
  }

  // Replies to one command sent at t0 + at.
  std::vector<envelope> send(message m, std::chrono::milliseconds at = 0ms) {
    auto out = session.on_bytes(encode(envelope{++server_seq, 0, std::move(m)}), t0 + at);
    REQUIRE(out.has_value());
    return decode_all(out->send);
  }

  std::vector<envelope> tick(std::chrono::milliseconds at) {
    return decode_all(session.on_tick(t0 + at).send);
  }

  static std::vector<envelope> decode_all(const std::vector<eftd::bytes>& frames) {
    std::vector<envelope> v;
    for (const auto& fr : frames) {
      auto d = decode_body(without_length(fr));
      REQUIRE(d.has_value());
      v.push_back(std::move(*d));
    }
    return v;
  }
};

std::uint16_t error_code(const envelope& e) {
  const auto* p = std::get_if<pad_error>(&e.body);
  REQUIRE(p != nullptr);
  return p->code;
}

constexpr auto code_timeout = static_cast<std::uint16_t>(pad_error_code::timeout);
constexpr auto code_cancelled = static_cast<std::uint16_t>(pad_error_code::cancelled);
constexpr auto code_unsupported = static_cast<std::uint16_t>(pad_error_code::unsupported);
constexpr auto code_busy = static_cast<std::uint16_t>(pad_error_code::busy);

}  // namespace

TEST_CASE("get_status reports identity, capability bits, KSNs and DUKPT counters", "[pad][commands]") {
  fixture f;
  auto r = f.send(get_status{1000});
  REQUIRE(r.size() == 1);
  CHECK(r[0].ref == f.server_seq);
  const auto& s = std::get<pad_status>(r[0].body);
  CHECK(s.serial == "VP-0001");
  CHECK(s.model == "eftpad-virtual");
  CHECK(s.capabilities == (1u | 2u | 4u | 8u | 16u));
  REQUIRE(s.ksns.size() == 1);
  CHECK(eftd::to_hex(s.ksns[0]) == "FFFF9876543210E00001");
  CHECK(s.dukpt_counters == std::vector<std::uint32_t>{1});
  CHECK(s.languages == std::vector<std::string>{"en", "pl"});
  CHECK(capability_bits({"chip", "contactless", "bogus"}) == (32u | 64u));
}

TEST_CASE("display layout, language selection, beep and LEDs", "[pad][commands]") {
  fixture f(R"([pad]
languages = ["en", "pl"])");
  display d{{"Suma", "12.50 PLN", "x"}, "pl", {alignment::center, alignment::right}};
  auto r = f.send(d);
  REQUIRE(r.size() == 1);
  CHECK(std::holds_alternative<ack>(r[0].body));
  CHECK((f.hw.screen() == d));
  CHECK(virtual_pad::render(d, 10) == std::vector<std::string>{"   Suma   ", " 12.50 PLN", "x         "});

  auto de = f.send(display{{"Bitte"}, "de"});
  CHECK(error_code(de.at(0)) == code_unsupported);
  CHECK((f.hw.screen() == d));  // not shown

  CHECK(std::holds_alternative<ack>(f.send(beep{3, 100, 1000}).at(0).body));
  CHECK(f.hw.beeps() == 3);
  CHECK(std::holds_alternative<ack>(f.send(leds{0x03, led_state::on, 1000}).at(0).body));
  CHECK(std::holds_alternative<ack>(f.send(leds{0x04, led_state::blink, 1000}).at(0).body));
  CHECK(std::holds_alternative<ack>(f.send(leds{0x01, led_state::off, 1000}).at(0).body));
  CHECK(f.hw.leds_on() == 0x02);
  CHECK(f.hw.leds_blinking() == 0x04);
  CHECK(f.printed.back() == "LEDS on=0x2 blink=0x4");
}

TEST_CASE("get_key answers the scripted key, after a scripted pause", "[pad][commands]") {
  fixture f(R"([input]
events = ["pause 300", "7"])");
  CHECK(f.send(get_key{1000, {"Press a key"}}).empty());
  CHECK(f.session.waiting());
  CHECK(f.printed.back() == "DISPLAY Press a key");
  REQUIRE(f.session.wake_at().has_value());
  CHECK(*f.session.wake_at() == f.t0 + pad_session::poll_interval);
  CHECK(f.tick(299ms).empty());
  auto r = f.tick(300ms);
  REQUIRE(r.size() == 1);
  CHECK(r[0].ref == f.server_seq);
  CHECK(std::get<key_pressed>(r[0].body).key == '7');
  CHECK_FALSE(f.session.waiting());
  CHECK_FALSE(f.session.wake_at().has_value());
}

TEST_CASE("a waiting command times out at its deadline, not before", "[pad][commands]") {
  fixture f(R"([input]
events = ["pause 5000", "1"])");
  CHECK(f.send(confirm{200, {"OK?"}}).empty());
  CHECK(*f.session.wake_at() <= f.t0 + 200ms);
  CHECK(f.tick(199ms).empty());
  auto r = f.tick(200ms);
  REQUIRE(r.size() == 1);
  CHECK(error_code(r[0]) == code_timeout);
  CHECK(r[0].ref == f.server_seq);
  CHECK_FALSE(f.session.waiting());

  SECTION("timeout 0 answers at once when no input is there") {
    auto z = f.send(get_key{0, {}}, 300ms);
    REQUIRE(z.size() == 1);
    CHECK(error_code(z[0]) == code_timeout);
  }
}

TEST_CASE("get_amount: digits, clear, range check, enter", "[pad][commands]") {
  // 5 0 0 0 0 0 0 enter = 50000.00 > max: beep, start again; 1 2 5 9 clear 0 enter = 12.50.
  fixture f(R"([input]
events = ["5", "0", "0", "0", "0", "0", "0", "enter", "1", "2", "5", "9", "clear", "0", "enter"])");
  auto r = f.send(get_amount{"PLN", 2, 100, 50000, 30000, {"Amount"}});
  REQUIRE(r.size() == 1);
  CHECK(std::get<amount_entered>(r[0].body) == amount_entered{1250, "PLN"});
  CHECK(f.hw.beeps() == 1);
  CHECK(f.printed.front() == "DISPLAY Amount | 0.00 PLN");
  CHECK(f.printed.back() == "DISPLAY Amount | 12.50 PLN");

  SECTION("exponent 0 and min > max") {
    fixture g(R"([input]
events = ["4", "2", "enter"])");
    auto a = g.send(get_amount{"JPY", 0, 0, 1000, 30000, {}});
    CHECK(std::get<amount_entered>(a.at(0).body).amount == 42);
    CHECK(g.printed.back() == "DISPLAY 42 JPY");
    auto bad = g.send(get_amount{"JPY", 0, 10, 5, 30000, {}});
    CHECK(error_code(bad.at(0)) == static_cast<std::uint16_t>(pad_error_code::bad_request));
  }
}

TEST_CASE("confirm: enter is yes, clear is no, cancel key is cancelled", "[pad][commands]") {
  fixture f(R"([input]
events = ["3", "enter", "clear", "cancel"])");
  CHECK(std::get<confirmation>(f.send(confirm{1000, {}}).at(0).body).yes);  // "3" is ignored
  CHECK_FALSE(std::get<confirmation>(f.send(confirm{1000, {}}).at(0).body).yes);
  CHECK(error_code(f.send(confirm{1000, {}}).at(0)) == code_cancelled);
}

TEST_CASE("menu: digit keys choose an item, out-of-range digits are ignored", "[pad][commands]") {
  fixture f(R"([input]
events = ["9", "0", "2"])");
  auto r = f.send(menu{"Account", {"Cheque", "Savings", "Credit"}, 5000});
  CHECK(f.printed.front() == "DISPLAY Account | 1 Cheque | 2 Savings | 3 Credit");
  CHECK(std::get<menu_choice>(r.at(0).body).index == 1);
}

TEST_CASE("remove_card waits until the card is removed", "[pad][commands]") {
  SECTION("no card in the reader: at once") {
    fixture f;
    CHECK(std::holds_alternative<ack>(f.send(remove_card{1000, {}}).at(0).body));
  }
  SECTION("card inserted, removed after a pause") {
    fixture f(R"([pad]
card_inserted = true
[input]
events = ["pause 100", "remove"])");
    CHECK(f.send(remove_card{1000, {"Remove card"}}).empty());
    CHECK(f.tick(50ms).empty());
    auto r = f.tick(100ms);
    REQUIRE(r.size() == 1);
    CHECK(std::holds_alternative<ack>(r[0].body));
    CHECK_FALSE(f.hw.card_present(f.t0 + 200ms));
  }
  SECTION("card never removed: timeout") {
    fixture f(R"([pad]
card_inserted = true)");
    CHECK(f.send(remove_card{500, {}}).empty());
    CHECK(error_code(f.tick(500ms).at(0)) == code_timeout);
  }
}

TEST_CASE("cancel and reset stop a waiting command, others are busy meanwhile", "[pad][commands]") {
  fixture f;  // no input: every waiting command would wait until its deadline
  CHECK(f.send(get_key{10000, {}}).empty());
  const auto waiting_seq = f.server_seq;

  auto busy = f.send(display{{"x"}, "en"}, 10ms);
  CHECK(error_code(busy.at(0)) == code_busy);
  auto pong_r = f.send(ping{42}, 20ms);
  CHECK(std::get<pong>(pong_r.at(0).body).timestamp == 42);
  CHECK(std::holds_alternative<pad_status>(f.send(get_status{100}, 30ms).at(0).body));
  CHECK(f.session.waiting());

  auto c = f.send(cancel{}, 40ms);
  REQUIRE(c.size() == 2);
  CHECK(c[0].ref == waiting_seq);
  CHECK(error_code(c[0]) == code_cancelled);
  CHECK(c[1].ref == f.server_seq);
  CHECK(std::holds_alternative<ack>(c[1].body));
  CHECK_FALSE(f.session.waiting());

  CHECK(f.send(menu{"", {"a"}, 10000}, 50ms).empty());
  auto busy_leds = f.send(leds{1, led_state::on, 100}, 55ms);
  CHECK(error_code(busy_leds.at(0)) == code_busy);
  auto r = f.send(reset{1000}, 60ms);
  REQUIRE(r.size() == 2);
  CHECK(error_code(r[0]) == code_cancelled);
  CHECK(std::holds_alternative<ack>(r[1].body));
  CHECK(f.hw.screen().lines.empty());
  CHECK(f.hw.leds_on() == 0);
  // Nothing left to answer: a late tick sends nothing.
  CHECK(f.tick(20000ms).empty());
}

TEST_CASE("ping echoes its timestamp, a ping without one gets a pong without one", "[pad][commands]") {
  fixture f;
  CHECK(std::get<pong>(f.send(ping{-5}).at(0).body).timestamp == -5);
  CHECK_FALSE(std::get<pong>(f.send(ping{}).at(0).body).timestamp.has_value());
}

TEST_CASE("a pad without keypad, buzzer or LEDs answers unsupported", "[pad][commands]") {
  struct bare_display : display_device {
    void show(const display&) override {}
  } screen;
  virtual_pad reader{{}, nullptr};
  pad_session s{pad_identity{"P01", "VP-0001"}, screen, reader};
  auto h = decode_body(without_length(s.start()));
  REQUIRE(h.has_value());
  REQUIRE(s.on_bytes(encode(envelope{1, h->seq, hello_ack{true, "", ""}})).has_value());
  std::uint32_t seq = 1;
  for (message m :
       {message{get_key{100, {}}}, message{get_amount{"PLN", 2, 0, 10, 100, {}}}, message{confirm{100, {}}},
        message{menu{"", {"a"}, 100}}, message{beep{1, 10, 100}}, message{leds{1, led_state::on, 100}}}) {
    auto out = s.on_bytes(encode(envelope{++seq, 0, m}));
    REQUIRE(out.has_value());
    auto d = fixture::decode_all(out->send);
    INFO(type_name(type_of(m)));
    CHECK(error_code(d.at(0)) == code_unsupported);
  }
}

TEST_CASE("pad script parsing and its errors", "[pad][commands][script]") {
  auto s = script_of(R"([pad]
languages = ["en"]
card_stays_in = true
[[pad.dukpt]]
ksn = "FFFF9876543210E00001"
counter = 7
[[pad.dukpt]]
ksn = "123456789012345678901234"
counter = 0
[input]
events = ["1", "enter", "clear", "cancel", "remove", "pause 25"])");
  CHECK(s.card_stays_in);
  CHECK(s.ksns.size() == 2);
  CHECK(s.dukpt_counters == std::vector<std::uint32_t>{7, 0});
  REQUIRE(s.events.size() == 6);
  CHECK(s.events[0] == script_event{script_event::kind::key, '1', {}});
  CHECK(s.events[3].key == keys::cancel);
  CHECK(s.events[4].what == script_event::kind::remove);
  CHECK(s.events[5].pause == 25ms);

  auto err = [](std::string_view toml) {
    auto r = parse_pad_script(toml, "t.toml");
    REQUIRE_FALSE(r.has_value());
    return r.err().code;
  };
  CHECK(err("[pad]\nlanguage = [\"en\"]") == "padsim.script_unknown_key");
  CHECK(err("[other]") == "padsim.script_unknown_key");
  CHECK(err("[input]\nevents = [\"x\"]") == "padsim.script_bad_value");
  CHECK(err("[input]\nevents = [\"pause -1\"]") == "padsim.script_bad_value");
  CHECK(err("[[pad.dukpt]]\nksn = \"ABCD\"\ncounter = 1") == "padsim.script_bad_value");
  CHECK(err("[[pad.dukpt]]\nksn = \"FFFF9876543210E00001\"") == "padsim.script_bad_value");
  CHECK(err("[pad") == "padsim.script_syntax");
  CHECK(load_pad_script("/nonexistent/x.toml").err().code == "padsim.script_io");
}

TEST_CASE("a card left in by read_card must be removed before remove_card is acked", "[pad][commands]") {
  card_profile p;
  p.name = "t";
  p.kind = "magstripe";
  p.track2 = pad_test::secret("4761739001010119=29122011143804489");
  virtual_pad hw{{p}, nullptr};
  auto s = script_of("[pad]\ncard_stays_in = true\n[input]\nevents = [\"pause 100\", \"remove\"]");
  hw.load_script(s);
  const auto t = pad_clock::now();
  CHECK_FALSE(hw.card_present(t));
  REQUIRE(std::holds_alternative<presented_card>(hw.read(read_card{1, "PLN", 7, 1000, {}})));
  CHECK(hw.card_present(t));
  CHECK(hw.card_present(t + 99ms));
  CHECK_FALSE(hw.card_present(t + 100ms));  // the scripted remove
  CHECK(hw.pending_input() == 0);
}

TEST_CASE("the shipped example script loads and drives a sale's prompts", "[pad][commands][script]") {
  const char* src = std::getenv("EFTD_SOURCE");
  auto s = load_pad_script(std::filesystem::path(src ? src : ".") /
                           "pinpad-firmware-shim/cards/scripts/example.toml");
  REQUIRE(s.has_value());
  CHECK(s->ksns.size() == 2);
  fixture f;
  f.hw.load_script(*s);
  CHECK(std::get<amount_entered>(f.send(get_amount{"PLN", 2, 0, 10000, 1000, {}}).at(0).body).amount == 250);
  CHECK(std::get<confirmation>(f.send(confirm{1000, {}}).at(0).body).yes);
  CHECK(std::get<menu_choice>(f.send(menu{"", {"a", "b"}, 1000}).at(0).body).index == 0);
  CHECK(std::holds_alternative<ack>(f.send(remove_card{1000, {}}).at(0).body));  // no card in
  CHECK(f.hw.pending_input() == 2);  // the pause and the remove are still there
}
