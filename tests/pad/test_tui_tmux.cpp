// `eftpad tui`, the interactive pad: the key decoder and terminal_pad in-process, then the real
// process in a tmux pane (a real terminal) driven with send-keys and read with capture-pane,
// against a small server played by the test. Every wait polls with a deadline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/core/tr31.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/tui.hpp"
#include "process.hpp"

using namespace eftd::pad;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using eftd::padsim::key_decoder;
using eftd::padsim::terminal_pad;
using eftd::padsim::tui_key;

namespace {

constexpr auto deadline = 10s;

std::string card_file(const char* name) {
  return eftd::test::source_path("pinpad-firmware-shim/cards/") + name;
}

eftd::padsim::card_profile load_card(const char* name) {
  auto p = eftd::padsim::load_card_profile(card_file(name));
  REQUIRE(p.has_value());
  return std::move(*p);
}

tui_key ch(char c) {
  return {tui_key::kind::character, c};
}

// ---- the eftd side of the pad connection --------------------------------------------------------

class test_server {
 public:
  test_server() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 4) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~test_server() {
    if (conn_fd_ >= 0) ::close(conn_fd_);
    ::close(listen_fd_);
  }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  int port() const { return port_; }

  bool accept() {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(deadline).count())) <= 0) return false;
    conn_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    return conn_fd_ >= 0;
  }

  std::optional<envelope> read(std::chrono::milliseconds timeout = deadline) {
    const auto until = clock_type::now() + timeout;
    for (;;) {
      auto f = reader_.next();
      REQUIRE(f.has_value());
      if (f->has_value()) {
        auto d = decode_body(**f);
        REQUIRE(d.has_value());
        REQUIRE(guard_.accept(d->seq).has_value());
        return std::move(*d);
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{conn_fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      std::uint8_t buf[4096];
      const ssize_t r = ::recv(conn_fd_, buf, sizeof buf, 0);
      if (r <= 0) return std::nullopt;
      reader_.feed(eftd::byte_view(buf, static_cast<std::size_t>(r)));
    }
  }

  std::uint32_t send(message m) {
    const auto seq = out_seq_.next();
    const auto frame = encode(envelope{seq, 0, std::move(m)});
    REQUIRE(::send(conn_fd_, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size()));
    return seq;
  }

  // The reply to the command sent as `seq`.
  message reply_to(std::uint32_t seq, std::chrono::milliseconds timeout = deadline) {
    auto r = read(timeout);
    REQUIRE(r.has_value());
    CHECK(r->ref == seq);
    return std::move(r->body);
  }

  void handshake() {
    auto h = read();
    REQUIRE(h.has_value());
    REQUIRE(std::holds_alternative<hello>(h->body));
    const auto seq = out_seq_.next();
    const auto frame = encode(envelope{seq, h->seq, hello_ack{true, "test-server", ""}});
    REQUIRE(::send(conn_fd_, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size()));
  }

 private:
  int listen_fd_ = -1, conn_fd_ = -1, port_ = 0;
  frame_reader reader_;
  replay_guard guard_;
  seq_counter out_seq_;
};

// ---- tmux -------------------------------------------------------------------------------------------

std::string find_tmux() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const auto candidate = std::filesystem::path(dir) / "tmux";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

// One tmux server of our own (its own socket, no user configuration) with one session; the
// whole server is killed when this goes, on every path out of a test.
class tmux_session {
 public:
  tmux_session(const std::string& command, int width, int height) {
    tmux_ = find_tmux();
    // tools/lib.sh installs tmux: a missing tmux is a broken test machine, not a skip.
    REQUIRE_FALSE(tmux_.empty());
    static std::atomic<int> counter{0};
    socket_ = "eftd-tui-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    started_ = run({"new-session", "-d", "-s", "tui", "-x", std::to_string(width), "-y",
                    std::to_string(height), command})
                   .has_value();
    REQUIRE(started_);
  }
  ~tmux_session() {
    if (started_) run({"kill-server"});
  }
  tmux_session(const tmux_session&) = delete;
  tmux_session& operator=(const tmux_session&) = delete;

  // tmux key names: "s", "1", "Enter", "Escape", "BSpace".
  void keys(const std::vector<std::string>& names) {
    std::vector<std::string> args{"send-keys", "-t", "tui"};
    args.insert(args.end(), names.begin(), names.end());
    REQUIRE(run(args).has_value());
  }

  std::string capture() {
    auto out = run({"capture-pane", "-p", "-t", "tui"});
    REQUIRE(out.has_value());
    return *out;
  }

  std::string query(const std::string& format) {
    auto out = run({"display-message", "-p", "-t", "tui", format});
    REQUIRE(out.has_value());
    while (!out->empty() && out->back() == '\n') out->pop_back();
    return *out;
  }

  // Polls the pane until `pred` holds; the last capture is kept for messages.
  bool wait(const std::function<bool(const std::string&)>& pred,
            std::chrono::milliseconds timeout = deadline) {
    const auto until = clock_type::now() + timeout;
    for (;;) {
      last_ = capture();
      if (pred(last_)) return true;
      if (clock_type::now() >= until) return false;
      ::poll(nullptr, 0, 25);  // the polling interval between two captures
    }
  }
  bool wait_text(const std::string& text, std::chrono::milliseconds timeout = deadline) {
    return wait([&](const std::string& s) { return s.find(text) != std::string::npos; }, timeout);
  }
  const std::string& last() const { return last_; }

 private:
  // Runs one tmux command; its stdout, or nullopt when it failed or hung.
  std::optional<std::string> run(std::vector<std::string> args) {
    args.insert(args.begin(), {"-L", socket_, "-f", "/dev/null"});
    eftd::test::process p(tmux_, args);
    std::string out;
    const auto until = clock_type::now() + deadline;
    while (auto line =
               p.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now())))
      out += *line + "\n";
    if (p.wait_exit(5s) != 0) return std::nullopt;
    return out;
  }

  std::string tmux_, socket_, last_;
  bool started_ = false;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits for `text` on the screen; on failure the last screen is in the message (screens never
// show card data or PIN digits).
#define SCREEN_SHOWS(macro, tmux, text)                                                     \
  do {                                                                                      \
    const bool shown_ = (tmux).wait_text(text);                                             \
    if (!shown_) UNSCOPED_INFO("waited for: " << (text) << "\nscreen:\n" << (tmux).last()); \
    macro(shown_);                                                                          \
  } while (0)

struct temp_dir {
  std::string path = eftd::test::make_temp_dir("pad-tui");
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

// ---- in-process -----------------------------------------------------------------------------------

TEST_CASE("tui key decoder: keys, a lone Esc after a pause, escape sequences swallowed", "[pad][tui]") {
  key_decoder d;
  CHECK(d.feed("12\r") == std::vector<tui_key>{ch('1'), ch('2'), {tui_key::kind::enter, 0}});
  CHECK(d.feed("\r\n\x7f\x08\x03") == std::vector<tui_key>{{tui_key::kind::enter, 0},
                                                           {tui_key::kind::backspace, 0},
                                                           {tui_key::kind::backspace, 0},
                                                           {tui_key::kind::interrupt, 0}});
  // ESC alone may start a sequence: pending until the UI says nothing followed it.
  CHECK(d.feed("\x1b").empty());
  CHECK(d.pending());
  CHECK(d.flush() == std::vector<tui_key>{{tui_key::kind::escape, 0}});
  CHECK_FALSE(d.pending());
  // Arrow, F1 (SS3), F5 cut in two reads: nothing; the key after them still counts.
  CHECK(d.feed("\x1b[A\x1bOP\x1b[1").empty());
  CHECK(d.feed("5~s") == std::vector<tui_key>{ch('s')});
  // ESC then an ordinary key in one burst: both keys.
  CHECK(d.feed("\x1bq") == std::vector<tui_key>{{tui_key::kind::escape, 0}, ch('q')});
}

TEST_CASE("tui display frame: 20 columns, alignment, UTF-8 counted by code point", "[pad][tui]") {
  display s;
  s.lines = {"Insert card", "125.00 PLN", "Włóż kartę", "This line is longer than twenty"};
  s.align = {alignment::left, alignment::center, alignment::right};
  const auto rows = terminal_pad::frame_display(s);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == "|Insert card         |");
  CHECK(rows[1] == "|     125.00 PLN     |");
  CHECK(rows[2] == "|          Włóż kartę|");
  CHECK(rows[3] == "|This line is longer |");
  CHECK(terminal_pad::frame_display(display{}).size() == 4);
}

TEST_CASE("terminal_pad: read_card waits for a card the request allows, Esc cancels, timeout", "[pad][tui]") {
  terminal_pad pad({load_card("visa-approve.toml"), load_card("visa-chip-approve.toml"),
                    load_card("mc-contactless-approve.toml")},
                   "test");
  const auto now = clock_type::now;
  auto read_async = [&](read_card r) {
    return std::async(std::launch::async, [&pad, r] { return pad.read(r); });
  };
  auto wait_reading = [&] {
    const auto until = now() + deadline;
    while (!pad.reading() && now() < until) std::this_thread::yield();
    REQUIRE(pad.reading());
  };

  SECTION("swipe of the stripe card") {
    auto f = read_async(read_card{100, "PLN", 7, 30000, {}});
    wait_reading();
    pad.on_key(ch('s'), now());
    pad.on_key(ch('1'), now());
    REQUIRE(f.wait_for(deadline) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(std::holds_alternative<eftd::padsim::presented_card>(r));
    const auto& c = std::get<eftd::padsim::presented_card>(r);
    CHECK(c.mode == entry_mode::magstripe);
    CHECK_FALSE(c.track2.empty());
    CHECK_FALSE(c.fallback);
  }
  SECTION("a chip card is not read by its stripe; inserted it is, and stays in until r") {
    auto f = read_async(read_card{100, "PLN", 7, 30000, {}});
    wait_reading();
    pad.on_key(ch('s'), now());
    pad.on_key(ch('2'), now());
    pad.on_key(ch('t'), now());
    pad.on_key(ch('2'), now());
    CHECK(f.wait_for(0ms) == std::future_status::timeout);
    CHECK(pad.reading());
    pad.on_key(ch('i'), now());
    pad.on_key(ch('2'), now());
    REQUIRE(f.wait_for(deadline) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(std::holds_alternative<eftd::padsim::presented_card>(r));
    const auto& c = std::get<eftd::padsim::presented_card>(r);
    CHECK(c.mode == entry_mode::chip);
    REQUIRE(c.chip != nullptr);
    CHECK(c.chip->power_on().has_value());
    CHECK(pad.card_present(now()));
    pad.on_key(ch('r'), now());
    CHECK_FALSE(pad.card_present(now()));
  }
  SECTION("tap of the contactless card; not accepted when the request disables contactless") {
    auto f = read_async(read_card{100, "PLN", 3, 30000, {}});
    wait_reading();
    pad.on_key(ch('t'), now());
    pad.on_key(ch('3'), now());
    CHECK(f.wait_for(0ms) == std::future_status::timeout);
    pad.on_key({tui_key::kind::escape, 0}, now());
    REQUIRE(f.wait_for(deadline) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(std::holds_alternative<eftd::padsim::reader_failure>(r));
    CHECK(std::get<eftd::padsim::reader_failure>(r).code == pad_error_code::cancelled);

    auto g = read_async(read_card{100, "PLN", 4, 30000, {}});
    wait_reading();
    pad.on_key(ch('t'), now());
    pad.on_key(ch('3'), now());
    REQUIRE(g.wait_for(deadline) == std::future_status::ready);
    auto r2 = g.get();
    REQUIRE(std::holds_alternative<eftd::padsim::presented_card>(r2));
    CHECK(std::get<eftd::padsim::presented_card>(r2).mode == entry_mode::contactless);
  }
  SECTION("no card within timeout_ms: timeout; after shutdown: cancelled at once") {
    auto r = pad.read(read_card{100, "PLN", 7, 30, {}});
    REQUIRE(std::holds_alternative<eftd::padsim::reader_failure>(r));
    CHECK(std::get<eftd::padsim::reader_failure>(r).code == pad_error_code::timeout);
    pad.shutdown();
    auto r2 = pad.read(read_card{100, "PLN", 7, 30000, {}});
    REQUIRE(std::holds_alternative<eftd::padsim::reader_failure>(r2));
    CHECK(std::get<eftd::padsim::reader_failure>(r2).code == pad_error_code::cancelled);
  }
}

TEST_CASE("terminal_pad: keypad keys only while the session polls, q quits", "[pad][tui]") {
  terminal_pad pad({}, "test");
  const auto t0 = clock_type::now();
  // No command waits: a digit typed now is dropped, never kept for the next PIN entry.
  CHECK(pad.on_key(ch('5'), t0));
  CHECK_FALSE(pad.poll_key(t0 + 10ms).has_value());
  // While polled, keys queue in order.
  CHECK(pad.on_key(ch('7'), t0 + 15ms));
  CHECK(pad.on_key({tui_key::kind::enter, 0}, t0 + 16ms));
  CHECK(pad.poll_key(t0 + 20ms) == std::optional<std::uint8_t>('7'));
  CHECK(pad.poll_key(t0 + 30ms) == std::optional<std::uint8_t>(keys::enter));
  // The screen shows neither digit.
  for (const auto& row : pad.render(100, 40, t0)) {
    CHECK(row.find('5') == std::string::npos);
    CHECK(row.find('7') == std::string::npos);
  }
  CHECK_FALSE(pad.on_key(ch('q'), t0));
  CHECK_FALSE(pad.on_key({tui_key::kind::interrupt, 0}, t0));
}

// ---- the real process in tmux ----------------------------------------------------------------------

TEST_CASE(
    "eftpad tui in tmux: display, swipe, insert, tap, PIN as stars, Esc cancels, q restores the terminal",
    "[pad][tui][process]") {
  temp_dir dir;
  // AES DUKPT test key (test-vectors.md §2: BDK FEDCBA98..., initial key ID 1234567890123456)
  // as eftctl exports it, so get_pin has a key and card data leaves the pad sealed.
  const auto bdk = *eftd::from_hex("FEDCBA9876543210F1F1F1F1F1F1F1F1");
  const auto ik = *eftd::from_hex("1273671EA26AC29AFA4D1084127652A1");
  const auto kbpk = *eftd::from_hex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6");
  eftd::tr31::header h;
  h.version = 'D';
  h.key_usage = "B1";
  h.algorithm = 'A';
  h.mode_of_use = 'X';
  h.optional_blocks.push_back({"IK", "1234567890123456"});
  auto block = eftd::tr31::wrap(kbpk, h, ik, eftd::system_random());
  REQUIRE(block.has_value());
  const auto key_file = dir.path + "/aes.toml";
  std::ofstream(key_file) << "kbpk = \"" << eftd::to_hex(kbpk) << "\"\nblock = \"" << *block << "\"\n";
  const auto log_file = dir.path + "/eftpad.log";

  test_server srv;
  // The pane runs a script: the pad, then whether the terminal modes came back and the exit
  // code, then stays open so the test can read them.
  const auto script = dir.path + "/run.sh";
  {
    std::ofstream s(script);
    s << "saved=$(stty -g)\n"
      << "'" << eftd::test::bin_path("eftpad") << "' tui --server 127.0.0.1:" << srv.port()
      << " --pad-id P01 --serial VP-0001 --backoff-initial-ms 20 --backoff-max-ms 200"
      << " --card '" << card_file("visa-approve.toml") << "' --card '" << card_file("visa-chip-approve.toml")
      << "' --card '" << card_file("mc-contactless-approve.toml") << "' --dukpt-key '" << key_file
      << "' --log-file '" << log_file << "'\n"
      << "rc=$?\n"
      << "if [ \"$(stty -g)\" = \"$saved\" ]; then echo TTY-RESTORED; else echo TTY-CHANGED; fi\n"
      << "echo EXIT-CODE=$rc\n"
      << "exec sleep 600\n";
  }
  tmux_session tmux("sh '" + script + "'", 100, 40);

  REQUIRE(srv.accept());
  srv.handshake();
  const std::string server = "127.0.0.1:" + std::to_string(srv.port());
  SCREEN_SHOWS(REQUIRE, tmux, "Status: connected to " + server);
  CHECK(tmux.last().find("1  magstripe") != std::string::npos);
  CHECK(tmux.last().find("2  chip") != std::string::npos);
  CHECK(tmux.last().find("3  contactless") != std::string::npos);

  // display: the lines appear in the framed 20-column display, aligned as asked.
  display d{{"Insert card", "125.00 PLN"}, "en"};
  d.align = {alignment::left, alignment::center};
  const auto ds = srv.send(d);
  CHECK(std::holds_alternative<ack>(srv.reply_to(ds)));
  SCREEN_SHOWS(CHECK, tmux, "|Insert card         |");
  CHECK(tmux.last().find("|     125.00 PLN     |") != std::string::npos);

  auto open = [&](const eftd::bytes& ksn, std::uint16_t item, const eftd::secure_bytes& sealed) {
    auto keys = eftd::p2pe::host_keys::derive(bdk, ksn);
    REQUIRE(keys.has_value());
    auto clear = keys->open(item, sealed.view());
    REQUIRE(clear.has_value());
    return std::string(reinterpret_cast<const char*>(clear->view().data()), clear->size());
  };

  // read_card: waits for the person; "s1" swipes card 1 and answers with its (sealed) stripe.
  const auto rc1 = srv.send(read_card{12500, "PLN", 7, 30000, {"Present card"}});
  SCREEN_SHOWS(REQUIRE, tmux, "Reader: waiting for a card (swipe, insert, tap)");
  CHECK(tmux.last().find("|Present card        |") != std::string::npos);
  tmux.keys({"s", "1"});
  auto r1 = srv.reply_to(rc1);
  REQUIRE(std::holds_alternative<card_read>(r1));
  const auto c1 = std::get<card_read>(r1);
  CHECK(c1.mode == entry_mode::magstripe);
  const bool clear_track2 = !c1.track2.empty();
  CHECK_FALSE(clear_track2);  // with a DUKPT key the stripe never leaves in the clear
  CHECK(c1.ksn.size() == 12);
  CHECK_FALSE(c1.sealed_track2.empty());
  const auto track = open(c1.ksn, 1, c1.sealed_track2);
  const bool track_is_card_1 = track == "4761739001010119=29122011143804489";  // bool: never printed
  CHECK(track_is_card_1);

  // get_pin: each digit shows as '*', Backspace deletes one, the digits never reach the screen.
  const auto before = tmux.capture();
  std::string pin;
  for (const char* candidate : {"9876", "5827", "3141", "7294"}) {
    if (before.find(candidate) == std::string::npos && server.find(candidate) == std::string::npos) {
      pin = candidate;
      break;
    }
  }
  REQUIRE_FALSE(pin.empty());
  const auto gp = srv.send(get_pin{12500, "PLN", 4, 4, 12, false, 30000, {}});
  SCREEN_SHOWS(REQUIRE, tmux, "|Enter PIN           |");
  std::vector<std::string> digit_keys;
  for (char c : pin) digit_keys.emplace_back(1, c);
  digit_keys.emplace_back("1");
  tmux.keys(digit_keys);
  SCREEN_SHOWS(CHECK, tmux, "|*****               |");
  bool pin_on_screen = tmux.last().find(pin) != std::string::npos;
  CHECK_FALSE(pin_on_screen);
  tmux.keys({"BSpace"});
  SCREEN_SHOWS(CHECK, tmux, "|****                |");
  pin_on_screen = tmux.last().find(pin) != std::string::npos;
  CHECK_FALSE(pin_on_screen);
  tmux.keys({"Enter"});
  auto r2 = srv.reply_to(gp);
  REQUIRE(std::holds_alternative<pin_entered>(r2));
  const auto& p = std::get<pin_entered>(r2);
  CHECK_FALSE(p.bypassed);
  CHECK(p.ksn == c1.ksn);
  auto pin_keys = eftd::p2pe::host_keys::derive(bdk, p.ksn);
  REQUIRE(pin_keys.has_value());
  auto clear_pin = pin_keys->open_pin(p.pin_block.view(), "4761739001010119");
  REQUIRE(clear_pin.has_value());
  const bool pin_matches = clear_pin->reveal() == pin;
  CHECK(pin_matches);

  // Esc while a PIN is asked (the card is still at the reader): the red key reaches the keypad,
  // the session answers cancelled.
  const auto gp2 = srv.send(get_pin{12500, "PLN", 4, 4, 12, false, 30000, {"PIN again"}});
  SCREEN_SHOWS(REQUIRE, tmux, "|PIN again           |");
  tmux.keys({"Escape"});
  auto r3b = srv.reply_to(gp2);
  REQUIRE(std::holds_alternative<pad_error>(r3b));
  CHECK(std::get<pad_error>(r3b).code == static_cast<std::uint16_t>(pad_error_code::cancelled));

  // Esc while a card is awaited: pad_error cancelled.
  const auto rc2 = srv.send(read_card{12500, "PLN", 7, 30000, {"Present card"}});
  SCREEN_SHOWS(REQUIRE, tmux, "Reader: waiting for a card");
  tmux.keys({"Escape"});
  auto r3 = srv.reply_to(rc2);
  REQUIRE(std::holds_alternative<pad_error>(r3));
  CHECK(std::get<pad_error>(r3).code == static_cast<std::uint16_t>(pad_error_code::cancelled));
  SCREEN_SHOWS(CHECK, tmux, "Reader: idle");

  // The chip card inserted (i2): powered, ATR; it stays in the slot until r answers remove_card.
  const auto rc3 = srv.send(read_card{12500, "PLN", 7, 30000, {"Present card"}});
  SCREEN_SHOWS(REQUIRE, tmux, "Reader: waiting for a card");
  tmux.keys({"i", "2"});
  auto r4 = srv.reply_to(rc3);
  REQUIRE(std::holds_alternative<card_read>(r4));
  CHECK(std::get<card_read>(r4).mode == entry_mode::chip);
  CHECK_FALSE(std::get<card_read>(r4).atr.empty());
  SCREEN_SHOWS(CHECK, tmux, "card 2 in the chip slot");
  const auto rm = srv.send(remove_card{30000, {"Remove card"}});
  SCREEN_SHOWS(REQUIRE, tmux, "|Remove card         |");
  tmux.keys({"r"});
  CHECK(std::holds_alternative<ack>(srv.reply_to(rm)));

  // The contactless card tapped (t3) on a contactless-only read.
  const auto rc4 = srv.send(read_card{12500, "PLN", 4, 30000, {"Tap card"}});
  SCREEN_SHOWS(REQUIRE, tmux, "Reader: waiting for a card (tap)");
  tmux.keys({"t", "3"});
  auto r5 = srv.reply_to(rc4);
  REQUIRE(std::holds_alternative<card_read>(r5));
  CHECK(std::get<card_read>(r5).mode == entry_mode::contactless);

  // q: the pad exits 0 and the terminal is as it was (modes, main screen, cursor shown).
  tmux.keys({"q"});
  SCREEN_SHOWS(REQUIRE, tmux, "EXIT-CODE=");
  CHECK(tmux.last().find("TTY-RESTORED") != std::string::npos);
  CHECK(tmux.last().find("EXIT-CODE=0") != std::string::npos);
  CHECK(tmux.query("#{alternate_on} #{cursor_flag}") == "0 1");

  // The log has READY and never the PIN or the card number.
  const auto log = slurp(log_file);
  CHECK(log.find("READY {\"pad_id\":\"P01\"}") != std::string::npos);
  const bool pin_in_log = log.find(pin) != std::string::npos;
  const bool pan_in_log = log.find("4761739001010119") != std::string::npos;
  CHECK_FALSE(pin_in_log);
  CHECK_FALSE(pan_in_log);
}

TEST_CASE("eftpad tui in tmux: SIGTERM restores the terminal and exits 0", "[pad][tui][process]") {
  temp_dir dir;
  test_server srv;
  const auto script = dir.path + "/run.sh";
  const auto pid_file = dir.path + "/pid";
  {
    std::ofstream s(script);
    s << "saved=$(stty -g)\n"
      << "'" << eftd::test::bin_path("eftpad") << "' tui --server 127.0.0.1:" << srv.port()
      << " --pad-id P02 --serial VP-0002 </dev/tty &\n"
      << "echo $! > '" << pid_file << "'\n"
      << "wait $!\nrc=$?\n"
      << "if [ \"$(stty -g)\" = \"$saved\" ]; then echo TTY-RESTORED; else echo TTY-CHANGED; fi\n"
      << "echo EXIT-CODE=$rc\n"
      << "exec sleep 600\n";
  }
  tmux_session tmux("sh '" + script + "'", 100, 40);
  REQUIRE(srv.accept());
  srv.handshake();
  SCREEN_SHOWS(REQUIRE, tmux, "Status: connected to");
  const int pid = std::stoi(slurp(pid_file));
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, SIGTERM) == 0);
  SCREEN_SHOWS(REQUIRE, tmux, "EXIT-CODE=");
  CHECK(tmux.last().find("TTY-RESTORED") != std::string::npos);
  CHECK(tmux.last().find("EXIT-CODE=0") != std::string::npos);
  CHECK(tmux.query("#{alternate_on} #{cursor_flag}") == "0 1");
}

TEST_CASE("eftpad tui without a terminal: exit 1 with a clear message", "[pad][tui][process]") {
  temp_dir dir;
  const auto err = dir.path + "/stderr.log";
  // process gives the child /dev/null as standard input.
  eftd::test::process pad(eftd::test::bin_path("eftpad"),
                          {"tui", "--server", "127.0.0.1:9", "--pad-id", "P03", "--serial", "VP-0003"}, err);
  CHECK(pad.wait_exit(deadline) == 1);
  CHECK(slurp(err).find("standard input is not a terminal") != std::string::npos);
}
