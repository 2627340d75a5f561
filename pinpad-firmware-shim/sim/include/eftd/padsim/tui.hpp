// The interactive pad (`eftpad tui`): a person at a terminal reads the pad's display, types on
// its keypad and swipes, inserts or taps one of the test cards "on the table".
//
// terminal_pad is the device (display, keypad, card reader) shared by two threads: the
// network thread runs tcp_client + pad_session and calls the device interfaces; the terminal
// thread feeds it keys (on_key) and draws it (render). Everything is guarded by one mutex.
//
// Keys (PROTOCOL.md "Terminal UI"): 0-9 keypad digits, Enter = green (enter), Backspace =
// yellow (clear), Esc = red (cancel); s<N> swipe card N, i<N> insert card N, t<N> tap card N
// (N = 1..9), r remove the inserted card, q quit.
//
// Card reads: pad_session asks the reader synchronously, so read() blocks the network thread
// until the person presents a card the request accepts, presses Esc (pad_error cancelled),
// the read's timeout_ms passes (pad_error timeout) or the UI shuts down (cancelled). While it
// blocks, the session answers nothing else (pings queue up until the card is read).
//
// The clear PIN never reaches this class: the session shows '*' per digit, and digit keys are
// never echoed anywhere but into the keypad queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/hardware.hpp"
#include "eftd/padsim/icc.hpp"

namespace eftd::padsim {

class tcp_client;

// One key typed at the terminal, decoded from raw-mode bytes.
struct tui_key {
  enum class kind : std::uint8_t { character, enter, backspace, escape, interrupt };
  kind what = kind::character;
  char ch = 0;  // kind::character: the printable ASCII character
  friend bool operator==(const tui_key&, const tui_key&) = default;
};

// Splits raw terminal bytes into keys. Escape sequences (arrows, function keys: ESC [ ... or
// ESC O x) are swallowed. A lone ESC at the end of the input may start a sequence whose rest
// is still on its way: it stays pending until more bytes arrive or flush() says none came.
class key_decoder {
 public:
  std::vector<tui_key> feed(std::string_view bytes);
  // No byte followed a pending ESC within the escape delay: it was the Esc key.
  std::vector<tui_key> flush();
  bool pending() const noexcept { return !partial_.empty(); }

 private:
  std::string partial_;  // an escape sequence not complete yet
};

class terminal_pad final : public display_device, public keypad, public card_reader {
 public:
  // `cards`: the cards on the table, numbered 1.. in this order (at most 9 can be chosen).
  // `title`: the first screen line (pad id and serial).
  terminal_pad(std::vector<card_profile> cards, std::string title);

  // ---- device side (network thread) ----
  void show(const pad::display& screen) override;
  bool beep(std::uint8_t count, std::uint16_t duration_ms) override;
  bool set_leds(std::uint8_t which, pad::led_state state) override;
  std::optional<std::uint8_t> poll_key(pad_clock::time_point now) override;
  std::variant<presented_card, reader_failure> read(const pad::read_card& request) override;
  // Non-blocking: the session polls while the person chooses a card, and keeps answering pings.
  void begin_read(const pad::read_card& request) override;
  std::optional<read_result> poll_read(pad_clock::time_point now) override;
  void cancel() override;
  bool card_present(pad_clock::time_point now) override;

  // ---- terminal side ----
  // One key from the person; false when the person asked to quit (q or Ctrl-C).
  bool on_key(const tui_key& key, pad_clock::time_point now);
  // Status line text, e.g. "connected to 127.0.0.1:9200".
  void set_connection(std::string state);
  // A log line for the log pane (logs never carry card data or PINs).
  void add_log(std::string line);
  // Ends a blocked read (answered cancelled); later reads fail at once. Idempotent.
  void shutdown();
  // Called after every visible change, from whichever thread made it, without the lock held.
  void set_on_change(std::function<void()> notify);
  // Bumped on every visible change: the terminal redraws when it moved.
  std::uint64_t version() const;
  // True while read() waits for a card (the screen shows a countdown).
  bool reading() const;

  // The whole screen, `height` rows of at most `width` columns (plain text, no escapes).
  std::vector<std::string> render(std::size_t width, std::size_t height, pad_clock::time_point now) const;
  // The pad display's lines framed as `|line|`, each `width` columns (lines cut and placed by
  // their alignment; widths counted in UTF-8 code points).
  static std::vector<std::string> frame_display(const pad::display& screen, std::size_t width = 20);

  // How long keypad input stays wanted after the session last polled the keypad: a key typed
  // while no command waits is dropped, not kept for the next command (a real pad's keypad is
  // dead outside PIN/amount entry). Much longer than the session's 10 ms poll so a busy
  // machine never loses a typed key.
  static constexpr std::chrono::milliseconds input_window{2000};

 private:
  struct table_card {
    card_profile profile;
    std::shared_ptr<icc> chip;  // made on first use; lives as long as the pad (card counters)
  };
  enum class action : std::uint8_t { swipe, insert, tap };

  // Requires mu_. Sets the message line and bumps the version.
  void changed_locked();
  void message_locked(std::string text);
  void card_action_locked(action what, std::size_t index);
  std::shared_ptr<icc> chip_of_locked(std::size_t index);
  // The card `index` presented by `what` if the waiting read accepts it; else a message why not.
  std::optional<presented_card> try_present_locked(action what, std::size_t index);
  void notify();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<table_card> cards_;
  std::string title_;
  std::function<void()> on_change_;
  std::uint64_t version_ = 0;

  pad::display screen_;
  std::uint8_t leds_on_ = 0, leds_blink_ = 0;
  std::string connection_ = "starting";
  std::string message_;
  std::deque<std::string> log_;

  std::deque<std::uint8_t> keys_;
  std::optional<pad_clock::time_point> last_poll_;
  std::optional<char> prefix_;  // 's', 'i' or 't' typed, waiting for the card number

  std::optional<std::size_t> inserted_;  // index of the card in the chip slot

  // The read in progress.
  std::optional<pad::read_card> request_;
  pad_clock::time_point read_deadline_{};
  std::optional<presented_card> presented_;
  std::optional<reader_failure> read_failure_;
  bool shut_down_ = false;
};

struct terminal_ui_options {
  int in_fd = 0;   // the terminal: raw mode while the UI runs, restored on every exit path
  int out_fd = 1;  // the screen (alternate buffer, redrawn whole on each change)
  // Logs go to the screen's log pane, to this file when set, and to stderr only when stderr
  // is not the terminal the screen is on.
  std::string log_file;
};

// Runs the UI until q, Ctrl-C, SIGINT/SIGTERM/SIGHUP or the client's end: the client on a
// second thread, the terminal on this one. Returns the client's exit code (0 on a normal
// quit), 1 when the terminal cannot be put in raw mode.
int run_terminal_ui(terminal_pad& pad, tcp_client& client, const terminal_ui_options& options = {});

}  // namespace eftd::padsim
