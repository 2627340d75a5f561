#include "eftd/padsim/tui.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <thread>
#include <utility>

#include "eftd/padsim/tcp_client.hpp"

namespace eftd::padsim {

namespace {

constexpr std::size_t display_width = 20;
constexpr std::size_t display_rows = 4;
constexpr std::size_t max_log_lines = 50;
constexpr std::size_t max_queued_keys = 32;

bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Width in code points: pad texts are mostly Latin; a font renderer is not this class's job.
std::size_t text_width(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return !is_continuation(static_cast<unsigned char>(c)); }));
}

// The first `n` code points of s.
std::string cut(std::string_view s, std::size_t n) {
  std::size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if (!is_continuation(static_cast<unsigned char>(s[i]))) {
      if (points == n) break;
      ++points;
    }
  }
  return std::string(s.substr(0, i));
}

// Rows go to a terminal: a control byte in a server's text or a log line must not move the
// cursor or switch the terminal's modes.
std::string printable(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  return out;
}

std::string led_cell(std::uint8_t on, std::uint8_t blink, int n) {
  const std::uint8_t bit = static_cast<std::uint8_t>(1u << (n - 1));
  return fmt::format("{} [{}]", n, (blink & bit) != 0 ? '~' : (on & bit) != 0 ? '*' : ' ');
}

bool enabled(const pad::read_card& r, pad::interface_mask m) {
  return (r.interfaces & static_cast<std::uint8_t>(m)) != 0;
}

std::string interfaces_text(std::uint8_t mask) {
  std::string s;
  auto add = [&](pad::interface_mask m, const char* verb) {
    if ((mask & static_cast<std::uint8_t>(m)) == 0) return;
    if (!s.empty()) s += ", ";
    s += verb;
  };
  add(pad::interface_mask::magstripe, "swipe");
  add(pad::interface_mask::chip, "insert");
  add(pad::interface_mask::contactless, "tap");
  return s.empty() ? "nothing" : s;
}

}  // namespace

// ---- key decoding ---------------------------------------------------------------------------------

std::vector<tui_key> key_decoder::feed(std::string_view bytes) {
  std::vector<tui_key> keys;
  std::string in = partial_;
  in.append(bytes);
  partial_.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == 0x1B) {
      if (i + 1 == in.size()) {
        partial_ = "\x1b";  // Esc, or the start of a sequence still on its way
        break;
      }
      const char next = in[i + 1];
      if (next == '[') {
        // CSI: parameters and intermediates (0x20-0x3F) up to a final byte 0x40-0x7E.
        std::size_t j = i + 2;
        while (j < in.size() && static_cast<unsigned char>(in[j]) >= 0x20 &&
               static_cast<unsigned char>(in[j]) < 0x40)
          ++j;
        if (j == in.size()) {
          partial_ = in.substr(i);
          break;
        }
        i = j;  // the whole sequence is swallowed: arrows and F-keys mean nothing here
        continue;
      }
      if (next == 'O') {
        if (i + 2 == in.size()) {
          partial_ = in.substr(i);
          break;
        }
        i += 2;
        continue;
      }
      keys.push_back({tui_key::kind::escape, 0});  // ESC followed by an ordinary key: two keys
      continue;
    }
    if (c == '\r' || c == '\n') {
      // Some terminals send CR LF for Enter: one key, not two.
      if (c == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
      keys.push_back({tui_key::kind::enter, 0});
    } else if (c == 0x7F || c == 0x08) {
      keys.push_back({tui_key::kind::backspace, 0});
    } else if (c == 0x03) {
      keys.push_back({tui_key::kind::interrupt, 0});
    } else if (c >= 0x20 && c < 0x7F) {
      keys.push_back({tui_key::kind::character, static_cast<char>(c)});
    }
    // Other control bytes and UTF-8 text are not keys of this pad.
  }
  return keys;
}

std::vector<tui_key> key_decoder::flush() {
  std::vector<tui_key> keys;
  if (partial_ == "\x1b") keys.push_back({tui_key::kind::escape, 0});
  partial_.clear();  // a cut sequence is dropped
  return keys;
}

// ---- the pad ------------------------------------------------------------------------------------

terminal_pad::terminal_pad(std::vector<card_profile> cards, std::string title) : title_(std::move(title)) {
  for (auto& c : cards) cards_.push_back({std::move(c), nullptr});
}

void terminal_pad::notify() {
  std::function<void()> f;
  {
    std::lock_guard lock(mu_);
    f = on_change_;
  }
  if (f) f();
}

void terminal_pad::changed_locked() {
  ++version_;
}

void terminal_pad::message_locked(std::string text) {
  message_ = std::move(text);
  changed_locked();
}

void terminal_pad::set_on_change(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(notify);
}

std::uint64_t terminal_pad::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

bool terminal_pad::reading() const {
  std::lock_guard lock(mu_);
  return request_.has_value();
}

void terminal_pad::show(const pad::display& screen) {
  {
    std::lock_guard lock(mu_);
    screen_ = screen;
    changed_locked();
  }
  notify();
}

bool terminal_pad::beep(std::uint8_t count, std::uint16_t duration_ms) {
  {
    std::lock_guard lock(mu_);
    message_locked(fmt::format("BEEP x{} ({} ms)", count, duration_ms));
  }
  notify();
  return true;
}

bool terminal_pad::set_leds(std::uint8_t which, pad::led_state state) {
  {
    std::lock_guard lock(mu_);
    which &= 0x0F;
    leds_on_ = state == pad::led_state::on ? (leds_on_ | which) : (leds_on_ & ~which);
    leds_blink_ = state == pad::led_state::blink ? (leds_blink_ | which) : (leds_blink_ & ~which);
    changed_locked();
  }
  notify();
  return true;
}

std::optional<std::uint8_t> terminal_pad::poll_key(pad_clock::time_point now) {
  std::lock_guard lock(mu_);
  // A gap in polling means a new command started waiting: keys left from the last one are
  // not meant for it.
  if (last_poll_ && now - *last_poll_ > input_window) keys_.clear();
  last_poll_ = now;
  if (keys_.empty()) return std::nullopt;
  const auto k = keys_.front();
  keys_.pop_front();
  return k;
}

bool terminal_pad::card_present(pad_clock::time_point now) {
  (void)now;
  std::lock_guard lock(mu_);
  return inserted_.has_value();
}

void terminal_pad::cancel() {
  // The session calls this from its own thread, so no read() of ours is blocked now; a typed
  // card choice is forgotten with the command it was meant for.
  std::lock_guard lock(mu_);
  prefix_.reset();
}

std::shared_ptr<icc> terminal_pad::chip_of_locked(std::size_t index) {
  auto& c = cards_[index];
  // One simulator per card for the pad's lifetime: ATC and PIN tries survive between reads.
  if (!c.chip) c.chip = make_icc_sim(c.profile);
  return c.chip;
}

std::optional<presented_card> terminal_pad::try_present_locked(action what, std::size_t index) {
  const auto& p = cards_[index].profile;
  const auto n = index + 1;
  const auto& r = *request_;
  presented_card out;
  out.pan = p.pan;
  switch (what) {
    case action::swipe:
      if (!enabled(r, pad::interface_mask::magstripe)) {
        message_locked("The magstripe reader is not enabled for this read");
        return std::nullopt;
      }
      if (p.kind == "contactless" || p.track2.empty()) {
        message_locked(fmt::format("Card {} has no stripe: tap it (t{})", n, n));
        return std::nullopt;
      }
      if (p.kind == "chip") {
        // A chip card is read by its chip; the stripe only counts as fallback when the chip
        // is known to be mute (the profile says so).
        if (!p.chip_fails) {
          message_locked(fmt::format("Card {} has a chip: insert it (i{})", n, n));
          return std::nullopt;
        }
        out.mode = pad::entry_mode::fallback_magstripe;
        out.fallback = true;
      } else {
        out.mode = p.mode == pad::entry_mode::fallback_magstripe ? p.mode : pad::entry_mode::magstripe;
        out.fallback = p.fallback;
      }
      out.track2 = p.track2;
      return out;
    case action::insert:
      if (!enabled(r, pad::interface_mask::chip)) {
        message_locked("The chip reader is not enabled for this read; the card stays in the slot");
        return std::nullopt;
      }
      out.mode = pad::entry_mode::chip;
      out.chip = chip_of_locked(index);
      out.track2 = p.track2;  // the stripe of the same card, for a fallback after a mute chip
      return out;
    case action::tap:
      if (!enabled(r, pad::interface_mask::contactless)) {
        message_locked("The contactless reader is not enabled for this read");
        return std::nullopt;
      }
      if (p.kind != "contactless") {
        message_locked(fmt::format("Card {} is not contactless", n));
        return std::nullopt;
      }
      out.mode = pad::entry_mode::contactless;
      out.chip = chip_of_locked(index);
      return out;
  }
  return std::nullopt;
}

void terminal_pad::card_action_locked(action what, std::size_t index) {
  const auto n = index + 1;
  if (index >= cards_.size()) return message_locked(fmt::format("There is no card {} on the table", n));
  const auto& p = cards_[index].profile;
  const bool read_open = request_.has_value() && !presented_ && !read_failure_;
  if (what == action::insert) {
    if (inserted_) {
      return message_locked(*inserted_ == index
                                ? fmt::format("Card {} is already in the slot", n)
                                : fmt::format("Card {} is in the slot: r removes it", *inserted_ + 1));
    }
    if (p.kind == "magstripe")
      return message_locked(fmt::format("Card {} has no chip: swipe it (s{})", n, n));
    if (p.kind == "contactless")
      return message_locked(fmt::format("Card {} is contactless only: tap it (t{})", n, n));
    inserted_ = index;  // it sits in the slot until r, read or not
    if (!read_open) return message_locked(fmt::format("Card {} inserted", n));
  } else if (!read_open) {
    return message_locked(fmt::format("No card is asked for: the {} of card {} is ignored",
                                      what == action::swipe ? "swipe" : "tap", n));
  }
  auto card = try_present_locked(what, index);
  if (!card) return;
  presented_ = std::move(*card);
  message_locked(fmt::format("Card {} {}", n,
                             what == action::swipe    ? "swiped"
                             : what == action::insert ? "inserted"
                                                      : "tapped"));
  cv_.notify_all();
}

void terminal_pad::begin_read(const pad::read_card& request) {
  std::unique_lock lock(mu_);
  presented_.reset();
  read_failure_.reset();
  if (shut_down_) {
    read_failure_ = reader_failure{pad::pad_error_code::cancelled, "pad shutting down"};
    return;
  }
  request_ = request;
  read_deadline_ = pad_clock::now() + std::chrono::milliseconds(request.timeout_ms);
  if (!request.prompt.empty()) {
    pad::display screen;
    screen.lines = request.prompt;
    if (request.amount != 0 && screen.lines.size() < display_rows) {
      const auto abs = request.amount < 0 ? -(request.amount + 1) + 1 : request.amount;
      screen.lines.push_back(fmt::format("{}{}.{:02} {}", request.amount < 0 ? "-" : "", abs / 100, abs % 100,
                                         request.currency));
    }
    screen_ = std::move(screen);
  }
  message_locked(fmt::format("Card requested: {}", interfaces_text(request.interfaces)));
  // A chip card left in the slot is read at once, as a real reader would.
  if (inserted_ && enabled(request, pad::interface_mask::chip)) {
    if (auto card = try_present_locked(action::insert, *inserted_)) presented_ = std::move(*card);
  }
  lock.unlock();
  notify();
}

std::optional<card_reader::read_result> terminal_pad::poll_read(pad_clock::time_point now) {
  std::unique_lock lock(mu_);
  std::optional<read_result> result;
  if (presented_) {
    result = std::move(*presented_);
  } else if (read_failure_) {
    result = *read_failure_;
    if (request_) message_locked("Card read cancelled");
  } else if (shut_down_) {
    result = reader_failure{pad::pad_error_code::cancelled, "pad shutting down"};
  } else if (request_ && now >= read_deadline_) {
    result = reader_failure{pad::pad_error_code::timeout, "no card presented"};
    message_locked("No card presented in time");
  }
  if (!result) return std::nullopt;
  request_.reset();
  presented_.reset();
  read_failure_.reset();
  changed_locked();
  lock.unlock();
  notify();
  return result;
}

std::variant<presented_card, reader_failure> terminal_pad::read(const pad::read_card& request) {
  // The blocking form (the apdu_script tap): begin, then wait for the person or the deadline.
  begin_read(request);
  {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, read_deadline_, [&] { return presented_ || read_failure_ || shut_down_; });
  }
  if (auto r = poll_read(pad_clock::now())) return std::move(*r);
  return reader_failure{pad::pad_error_code::timeout, "no card presented"};
}

bool terminal_pad::on_key(const tui_key& key, pad_clock::time_point now) {
  bool keep_running = true;
  {
    std::lock_guard lock(mu_);
    auto pad_key = [&](std::uint8_t k) {
      if (!last_poll_ || now - *last_poll_ > input_window) {
        // Never name the key: it may be a PIN digit typed too early.
        message_locked("No input expected now: key ignored");
        return;
      }
      if (keys_.size() < max_queued_keys) keys_.push_back(k);
      if (!message_.empty()) message_locked({});
    };
    if (key.what == tui_key::kind::interrupt) {
      keep_running = false;
    } else if (prefix_) {
      const char verb = *prefix_;
      prefix_.reset();
      if (key.what == tui_key::kind::character && key.ch >= '1' && key.ch <= '9') {
        const auto what = verb == 's' ? action::swipe : verb == 'i' ? action::insert : action::tap;
        card_action_locked(what, static_cast<std::size_t>(key.ch - '1'));
      } else {
        message_locked("Card choice abandoned");
      }
    } else {
      switch (key.what) {
        case tui_key::kind::enter:
          pad_key(pad::keys::enter);
          break;
        case tui_key::kind::backspace:
          pad_key(pad::keys::clear);
          break;
        case tui_key::kind::escape:
          if (request_ && !presented_ && !read_failure_) {
            read_failure_ = reader_failure{pad::pad_error_code::cancelled, "cancel key"};
            cv_.notify_all();
          } else {
            pad_key(pad::keys::cancel);
          }
          break;
        case tui_key::kind::character: {
          const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(key.ch)));
          if (c >= '0' && c <= '9') {
            pad_key(static_cast<std::uint8_t>(c));
          } else if (c == 's' || c == 'i' || c == 't') {
            if (cards_.empty()) {
              message_locked("No cards on the table (eftpad tui --card FILE)");
            } else {
              prefix_ = c;
              message_locked(fmt::format("{} which card? 1-{}",
                                         c == 's'   ? "Swipe"
                                         : c == 'i' ? "Insert"
                                                    : "Tap",
                                         std::min<std::size_t>(cards_.size(), 9)));
            }
          } else if (c == 'r') {
            if (inserted_) {
              message_locked(fmt::format("Card {} removed", *inserted_ + 1));
              inserted_.reset();
            } else {
              message_locked("No card in the slot");
            }
          } else if (c == 'q') {
            keep_running = false;
          } else {
            message_locked("Unknown key (see the Keys line)");
          }
          break;
        }
        case tui_key::kind::interrupt:
          break;
      }
    }
    changed_locked();
  }
  notify();
  return keep_running;
}

void terminal_pad::set_connection(std::string state) {
  {
    std::lock_guard lock(mu_);
    connection_ = std::move(state);
    changed_locked();
  }
  notify();
}

void terminal_pad::add_log(std::string line) {
  {
    std::lock_guard lock(mu_);
    log_.push_back(std::move(line));
    while (log_.size() > max_log_lines) log_.pop_front();
    changed_locked();
  }
  notify();
}

void terminal_pad::shutdown() {
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    changed_locked();
  }
  cv_.notify_all();
  notify();
}

std::vector<std::string> terminal_pad::frame_display(const pad::display& screen, std::size_t width) {
  std::vector<std::string> rows;
  const std::size_t count = std::max(display_rows, screen.lines.size());
  for (std::size_t i = 0; i < count; ++i) {
    std::string text = i < screen.lines.size() ? cut(screen.lines[i], width) : std::string();
    const auto a = i < screen.align.size() ? screen.align[i] : pad::alignment::left;
    const std::size_t room = width - text_width(text);
    const std::size_t left = a == pad::alignment::right ? room : a == pad::alignment::center ? room / 2 : 0;
    rows.push_back("|" + std::string(left, ' ') + text + std::string(room - left, ' ') + "|");
  }
  return rows;
}

std::vector<std::string> terminal_pad::render(std::size_t width, std::size_t height,
                                              pad_clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> rows;
  rows.push_back("eftpad tui - " + title_);
  rows.push_back("Status: " + connection_);
  rows.push_back({});
  const std::string border = "+" + std::string(display_width, '-') + "+";
  const std::string leds = "LEDs  " + led_cell(leds_on_, leds_blink_, 1) + "  " +
                           led_cell(leds_on_, leds_blink_, 2) + "  " + led_cell(leds_on_, leds_blink_, 3) +
                           "  " + led_cell(leds_on_, leds_blink_, 4);
  rows.push_back("  " + border + "    " + leds);
  for (auto& line : frame_display(screen_, display_width)) rows.push_back("  " + line);
  rows.push_back("  " + border + "    ([*] on  [~] blinking)");
  rows.push_back({});
  std::string reader = "Reader: ";
  if (request_) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(read_deadline_ - now).count();
    reader += fmt::format("waiting for a card ({}), {} s left", interfaces_text(request_->interfaces),
                          std::max<long long>(left, 0));
  } else {
    reader += "idle";
  }
  if (inserted_) reader += fmt::format(" | card {} in the chip slot", *inserted_ + 1);
  rows.push_back(reader);
  rows.push_back("Cards on the table:");
  if (cards_.empty()) rows.push_back("  (none: eftpad tui --card FILE)");
  for (std::size_t i = 0; i < cards_.size() && i < 9; ++i) {
    const auto& p = cards_[i].profile;
    std::string kind = p.kind;
    if (p.chip_fails) kind += " (mute chip)";
    if (p.fallback) kind += " (fallback)";
    rows.push_back(fmt::format("  {}  {:<18} {}", i + 1, kind, p.name));
  }
  rows.push_back({});
  rows.push_back("Message: " + message_);
  // The help fits 80 columns.
  rows.push_back("Keys:  0-9 digits  Enter=OK  Backspace=clear  Esc=cancel");
  rows.push_back("       s<N> swipe  i<N> insert  t<N> tap card N  r remove card  q quit");
  rows.push_back("Log:");
  // The newest log lines that fit.
  const std::size_t used = rows.size();
  const std::size_t room = height > used ? height - used : 0;
  const std::size_t first = log_.size() > room ? log_.size() - room : 0;
  for (std::size_t i = first; i < log_.size(); ++i) rows.push_back("  " + log_[i]);
  if (rows.size() > height) rows.resize(height);
  while (rows.size() < height) rows.emplace_back();
  for (auto& r : rows) r = cut(printable(r), width);
  return rows;
}

// ---- the terminal ---------------------------------------------------------------------------------

namespace {

// Written by the signal handler (async-signal-safe: one write()).
std::atomic<int> signal_pipe_write{-1};

void on_signal(int sig) {
  const int fd = signal_pipe_write.load();
  if (fd < 0) return;
  const char c = sig == SIGWINCH ? 'W' : 'Q';
  const int saved = errno;
  (void)!::write(fd, &c, 1);
  errno = saved;
}

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const auto n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      return;  // the terminal is gone: nothing to draw on
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

void drain(int fd, std::string* into = nullptr) {
  char buf[64];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    if (into) into->append(buf, static_cast<std::size_t>(n));
  }
}

// Log lines for the screen's log pane; they also tell the status line how the connection goes
// (tcp_client reports its state only through the log).
class screen_log_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit screen_log_sink(terminal_pad& pad) : pad_(pad) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string line(formatted.data(), formatted.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    const std::string_view text(msg.payload.data(), msg.payload.size());
    auto after = [&](std::string_view prefix) -> std::optional<std::string> {
      if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
      return std::string(text.substr(prefix.size()));
    };
    if (auto s = after("pad: accepted by "))
      pad_.set_connection("connected to " + *s);
    else if (auto s2 = after("pad: connected to "))
      pad_.set_connection("TCP up to " + *s2 + ", hello sent");
    else if (auto s3 = after("pad: reconnecting in "))
      pad_.set_connection("disconnected, reconnecting in " + *s3);
    else if (auto s4 = after("pad: refused by "))
      pad_.set_connection("refused by " + *s4);
    pad_.add_log(std::move(line));
  }
  void flush_() override {}

 private:
  terminal_pad& pad_;
};

struct terminal_size {
  std::size_t width = 80, height = 24;
};

terminal_size size_of(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) return {ws.ws_col, ws.ws_row};
  return {};
}

}  // namespace

int run_terminal_ui(terminal_pad& pad, tcp_client& client, const terminal_ui_options& options) {
  const int in = options.in_fd, out = options.out_fd;
  termios saved{};
  if (::tcgetattr(in, &saved) != 0) {
    spdlog::error("tui: standard input is not a terminal (eftpad tui needs one; use eftpad virtual)");
    return 1;
  }

  // Logs: the screen's log pane, plus the log file; never the terminal the screen is on.
  auto previous_logger = spdlog::default_logger();
  std::vector<spdlog::sink_ptr> sinks;
  auto screen_sink = std::make_shared<screen_log_sink>(pad);
  screen_sink->set_pattern("%H:%M:%S %l %v");
  sinks.push_back(screen_sink);
  if (!options.log_file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.log_file, false));
    } catch (const std::exception& e) {
      spdlog::error("tui: cannot open the log file: {}", e.what());
      return 2;
    }
    sinks.back()->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  if (::isatty(2) == 0) {
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    sinks.back()->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  auto logger = std::make_shared<spdlog::logger>("eftpad-tui", sinks.begin(), sinks.end());
  logger->set_level(previous_logger ? previous_logger->level() : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);  // a test or a person tails the file while it runs
  spdlog::set_default_logger(logger);

  int sig_pipe[2], wake_pipe[2];
  if (::pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return 1;
  if (::pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(sig_pipe[0]);
    ::close(sig_pipe[1]);
    return 1;
  }
  signal_pipe_write = sig_pipe[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  constexpr int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
  struct sigaction old_actions[4];
  for (std::size_t i = 0; i < 4; ++i) ::sigaction(handled[i], &sa, &old_actions[i]);

  // Raw mode: keys arrive one by one, unechoed; Ctrl-C arrives as a key (ISIG off) and quits
  // through the same path as q.
  termios raw = saved;
  ::cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  ::tcsetattr(in, TCSAFLUSH, &raw);
  // Alternate screen, cursor hidden; undone on every way out below.
  write_all(out, "\x1b[?1049h\x1b[?25l\x1b[2J");

  struct restore_terminal {
    int in, out;
    const termios& saved;
    ~restore_terminal() {
      write_all(out, "\x1b[?25h\x1b[?1049l");
      ::tcsetattr(in, TCSAFLUSH, &saved);
    }
  } restore{in, out, saved};

  pad.set_on_change([fd = wake_pipe[1]] {
    const char c = 'c';
    (void)!::write(fd, &c, 1);  // a full pipe already holds a wake-up
  });

  std::atomic<bool> client_done{false};
  int client_rc = 0;
  bool quit = false;
  {
    std::thread network([&] {
      client_rc = client.run();
      client_done = true;
      const char c = 'd';
      (void)!::write(wake_pipe[1], &c, 1);
    });
    // However this function is left, the network thread ends before the terminal is restored.
    struct stop_network {
      terminal_pad& pad;
      tcp_client& client;
      std::thread& thread;
      ~stop_network() {
        // A read blocked on the person ends (cancelled), then the client stops.
        pad.shutdown();
        client.stop();
        if (thread.joinable()) thread.join();
      }
    } stopper{pad, client, network};

    key_decoder decoder;
    std::uint64_t drawn = ~std::uint64_t{0};
    auto size = size_of(out);
    bool force_draw = true;
    auto last_draw = pad_clock::now();
    while (!quit && !client_done) {
      const auto now = pad_clock::now();
      // While a card is awaited the countdown moves once a second.
      const bool tick = pad.reading() && now - last_draw >= std::chrono::seconds(1);
      if (force_draw || tick || pad.version() != drawn) {
        drawn = pad.version();
        force_draw = false;
        last_draw = now;
        const auto rows = pad.render(size.width, size.height, now);
        std::string frame;
        for (std::size_t r = 0; r < rows.size(); ++r)
          frame += fmt::format("\x1b[{};1H{}\x1b[K", r + 1, rows[r]);
        write_all(out, frame);
      }
      pollfd fds[3] = {{in, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
      // A lone ESC is the Esc key once nothing follows it within this delay (sequences from the
      // terminal arrive in one burst).
      const int timeout = decoder.pending() ? 50 : pad.reading() ? 250 : -1;
      const int n = ::poll(fds, 3, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      std::vector<tui_key> keys;
      if (n == 0 && decoder.pending()) keys = decoder.flush();
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[256];
        const auto got = ::read(in, buf, sizeof buf);
        if (got <= 0 && !(got < 0 && (errno == EINTR || errno == EAGAIN))) {
          quit = true;  // the terminal went away
        } else if (got > 0) {
          auto more = decoder.feed(std::string_view(buf, static_cast<std::size_t>(got)));
          keys.insert(keys.end(), more.begin(), more.end());
        }
      }
      for (const auto& k : keys)
        if (!pad.on_key(k, pad_clock::now())) quit = true;
      if ((fds[1].revents & POLLIN) != 0) {
        std::string sigs;
        drain(sig_pipe[0], &sigs);
        if (sigs.find('Q') != std::string::npos) quit = true;
        if (sigs.find('W') != std::string::npos) {
          size = size_of(out);
          write_all(out, "\x1b[2J");
          force_draw = true;
        }
      }
      if ((fds[2].revents & POLLIN) != 0) drain(wake_pipe[0]);
    }
  }  // stopper: the network thread has ended
  pad.set_on_change({});
  for (std::size_t i = 0; i < 4; ++i) ::sigaction(handled[i], &old_actions[i], nullptr);
  signal_pipe_write = -1;
  for (int fd : {sig_pipe[0], sig_pipe[1], wake_pipe[0], wake_pipe[1]}) ::close(fd);
  spdlog::set_default_logger(previous_logger);
  // A quit asked for at the terminal is a normal end; the client ending on its own says why.
  return client_done && !quit ? client_rc : 0;
}

}  // namespace eftd::padsim
