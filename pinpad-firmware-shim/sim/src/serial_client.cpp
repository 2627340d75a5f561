#include "eftd/padsim/serial_client.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>

namespace eftd::padsim {

namespace link = eftd::pad::link;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// stop_signals, wake_fd

namespace {

std::atomic<int> g_signal_fd{-1};
std::atomic<bool> g_signalled{false};
struct sigaction g_old_int {};
struct sigaction g_old_term {};

extern "C" void on_stop_signal(int) {
  g_signalled.store(true);
  const int fd = g_signal_fd.load();
  if (fd >= 0) {
    const std::uint64_t one = 1;
    // Async-signal-safe; a full counter is impossible here and a failure changes nothing.
    [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
  }
}

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error("eventfd failed");  // start-up only: no fds left
  return fd;
}

// Milliseconds for poll() until `deadline` (rounded up so the wait never ends early), -1 for none.
int poll_timeout(std::optional<link_clock::time_point> deadline) {
  if (!deadline) return -1;
  const auto left = *deadline - link_clock::now();
  if (left <= link_clock::duration::zero()) return 0;
  return static_cast<int>(
      std::min<long long>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), INT_MAX));
}

std::optional<link_clock::time_point> earliest(std::optional<link_clock::time_point> a,
                                               std::optional<link_clock::time_point> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

}  // namespace

stop_signals::stop_signals() : fd_(make_eventfd()) {
  g_signalled.store(false);
  g_signal_fd.store(fd_);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

stop_signals::~stop_signals() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
  g_signal_fd.store(-1);
  ::close(fd_);
}

bool stop_signals::requested() const noexcept {
  return g_signalled.load();
}

wake_fd::wake_fd() : fd_(make_eventfd()) {}
wake_fd::~wake_fd() {
  ::close(fd_);
}
void wake_fd::notify() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
}
void wake_fd::clear() noexcept {
  std::uint64_t v = 0;
  [[maybe_unused]] const auto n = ::read(fd_, &v, sizeof v);
}

// ---------------------------------------------------------------------------------------------
// serial_link

struct serial_link::shared_input {
  std::mutex m;
  bytes data;
  std::optional<error> failure;
};

namespace {

// How long the reader blocks before it looks at the stop flag: bounds the time a shutdown
// waits for the thread, and is long enough that an idle line costs nothing measurable.
constexpr auto reader_slice = 200ms;
// A stop-and-wait link writes at most a frame or two at a time (about 2 KiB): even at 9600 baud
// that is 2 s. Longer means the line does not drain at all; the link layer retransmits.
constexpr auto write_timeout = 3s;

std::uint32_t fresh_nonce(std::uint32_t previous) {
  static std::random_device rd;
  std::uint32_t n = previous;
  while (n == previous) n = rd();
  return n;
}

}  // namespace

serial_link::serial_link(std::unique_ptr<pad::serial_port> port, link::link_config cfg)
    : port_(std::move(port)),
      path_(port_->path()),
      link_(cfg),
      input_(std::make_unique<shared_input>()),
      reader_([this] { reader_loop(); }) {}

serial_link::~serial_link() {
  stopping_ = true;
  if (reader_.joinable()) reader_.join();
  port_->close();
}

std::uint64_t serial_link::now_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(link_clock::now().time_since_epoch()).count());
}

void serial_link::reader_loop() {
  std::array<std::uint8_t, 4096> buf{};
  while (!stopping_) {
    auto r = port_->read(buf, reader_slice);
    if (!r) {
      {
        std::lock_guard lock(input_->m);
        input_->failure = r.err();
      }
      input_wake_.notify();
      return;
    }
    if (*r == 0) continue;
    {
      std::lock_guard lock(input_->m);
      input_->data.insert(input_->data.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*r));
    }
    input_wake_.notify();
  }
}

void serial_link::apply(link::link_output& out, link_events& ev) {
  for (auto& d : out.delivered) ev.delivered.push_back(std::move(d));
  ev.peer_restarted = ev.peer_restarted || out.peer_restarted;
  if (out.to_write.empty() || port_failure_) return;
  auto st = port_->write(out.to_write, write_timeout);
  if (st) return;
  if (st.err().code == "serial.write_timeout") {
    // The line is congested: what did not go out is retransmitted by the link layer.
    spdlog::debug("link {}: {}", path_, st.err().message);
    return;
  }
  port_failure_ = st.err();
}

void serial_link::start() {
  static thread_local std::uint32_t last_nonce = 0;
  last_nonce = fresh_nonce(last_nonce);
  auto out = link_.start(last_nonce, now_ms());
  link_events ignored;
  apply(out, ignored);
}

link_events serial_link::pump() {
  link_events ev;
  input_wake_.clear();
  bytes in;
  std::optional<error> failure;
  {
    std::lock_guard lock(input_->m);
    in.swap(input_->data);
    failure.swap(input_->failure);
  }
  const auto before = link_.state();
  const auto now = now_ms();
  if (!in.empty()) {
    auto out = link_.feed(in, now);
    apply(out, ev);
  }
  auto out = link_.on_tick(now);
  apply(out, ev);
  const auto after = link_.state();
  ev.came_up = before == link::link_state::connecting && after == link::link_state::up;
  ev.went_down = before != link::link_state::down && after == link::link_state::down;
  if (failure && !port_failure_) port_failure_ = std::move(failure);
  ev.port_failure = port_failure_;
  return ev;
}

status serial_link::send(byte_view payload) {
  return link_.send(payload);
}

std::optional<link_clock::time_point> serial_link::next_deadline() const {
  const auto d = link_.next_deadline();
  if (!d) return std::nullopt;
  return link_clock::time_point(std::chrono::milliseconds(*d));
}

// ---------------------------------------------------------------------------------------------
// serial_client

namespace {

enum class session_result { ok, failed, done };

}  // namespace

struct serial_client::impl {
  serial_client_options opt;
  pad_session& session;
  wake_fd stop_wake;
  std::atomic<bool> stop_requested{false};
  std::optional<stop_signals> signals;

  enum class phase { link_wait, session, backoff };
  enum class line_end { stopped, done, port_failed };

  phase state = phase::link_wait;
  std::optional<tls_channel> tls;
  bool was_accepted = false;  // the current session got an accepted hello_ack
  session_progress progress;  // of the current session (card answered, for --once)
  link_clock::time_point handshake_deadline{};
  link_clock::time_point backoff_end{};

  impl(serial_client_options o, pad_session& s) : opt(std::move(o)), session(s) {}

  bool stopping() const { return stop_requested || (signals && signals->requested()); }

  // Waits for `fd` (or -1 for none) to become readable, the deadline, or a stop. True on stop.
  bool wait(int fd, std::optional<link_clock::time_point> deadline) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    fds[n++] = pollfd{stop_wake.fd(), POLLIN, 0};
    if (signals) fds[n++] = pollfd{signals->fd(), POLLIN, 0};
    if (fd >= 0) fds[n++] = pollfd{fd, POLLIN, 0};
    const int rc = ::poll(fds.data(), n, poll_timeout(deadline));
    if (rc < 0 && errno != EINTR) spdlog::warn("pad: poll failed: {}", std::strerror(errno));
    return stopping();
  }

  bool sleep_for(std::chrono::milliseconds d) {
    const auto until = link_clock::now() + d;
    while (link_clock::now() < until)
      if (wait(-1, until)) return true;
    return stopping();
  }

  // Frames go to the link as they are, or as TLS records when the session has a channel.
  status send_frames(serial_link& line, const std::vector<bytes>& frames) {
    if (!tls) {
      for (const auto& f : frames)
        if (auto st = line.send(f); !st) return st;
      return {};
    }
    for (const auto& f : frames)
      if (auto st = tls->write(f); !st) return st;
    return line.send(tls->take_output());
  }

  // Link up, or the bridge reset the link: a fresh TLS channel and hello.
  bool begin_session(serial_link& line) {
    tls.reset();
    was_accepted = false;
    progress = {};
    std::vector<bytes> hello;
    hello.push_back(session.start());
    if (opt.tls) {
      auto ch = tls_channel::client(opt.tls, opt.tls_server_name);
      if (!ch) {
        spdlog::error("pad: TLS cannot start: {} ({})", ch.err().message, ch.err().code);
        return false;
      }
      tls.emplace(std::move(*ch));
    }
    // Under TLS the hello waits in the channel until the handshake is done.
    if (auto st = send_frames(line, hello); !st) {
      spdlog::warn("pad: link {}: cannot send: {} ({})", line.path(), st.err().message, st.err().code);
      return false;
    }
    handshake_deadline = link_clock::now() + opt.handshake_timeout;
    state = phase::session;
    spdlog::info("pad: link up on {}, session started", line.path());
    return true;
  }

  // Drops the session and waits before the next link session (the bridge sees our RESET and
  // drops its server connection, so the next session gets a fresh one).
  void to_backoff() {
    if (state == phase::backoff) return;  // one failure, one step of the backoff
    tls.reset();
    if (was_accepted) opt.backoff.reset();  // it worked until now: retry after the shortest wait
    was_accepted = false;
    const auto d = opt.backoff.next();
    spdlog::info("pad: new link session in {} ms", d.count());
    backoff_end = link_clock::now() + d;
    state = phase::backoff;
  }

  session_result on_payload(serial_link& line, const bytes& payload) {
    byte_view received = payload;
    bytes plain;
    status tls_status;
    if (tls) {
      tls_status = tls->feed(payload);
      // Handshake messages, or the alert telling the server why we give up.
      if (auto st = line.send(tls->take_output()); !st) return session_result::failed;
      plain = tls->read();
      received = plain;
    }
    // Frames decrypted before a TLS failure are still executed (a refusal's hello_ack).
    auto out = session.on_bytes(received);
    if (out && !tls_status) {
      const auto& e = tls_status.err();
      if (e.code == "tls.closed")
        spdlog::warn("pad: session over {} ended: TLS session closed by server", line.path());
      else if (e.code == "tls.handshake")
        spdlog::error("pad: TLS handshake over {} failed: {}", line.path(), e.message);
      else
        spdlog::error("pad: TLS error over {}: {} ({})", line.path(), e.message, e.code);
      return session_result::failed;
    }
    if (!out) {
      const auto& e = out.err();
      if (e.code == "padsim.refused")
        spdlog::error("pad: refused by the server over {}: {}", line.path(), e.message);
      else
        spdlog::error("pad: protocol error over {}: {} ({})", line.path(), e.code, e.message);
      return session_result::failed;
    }
    if (auto st = send_frames(line, out->send); !st) {
      spdlog::warn("pad: link {}: cannot send: {} ({})", line.path(), st.err().message, st.err().code);
      return session_result::failed;
    }
    const bool done = progress.on_events(out->events, opt.once, [&] {
      was_accepted = true;
      spdlog::info("pad: accepted over {}", line.path());
      if (opt.on_ready) opt.on_ready();
    });
    return done ? session_result::done : session_result::ok;
  }

  line_end run_line(serial_link& line) {
    line.start();
    state = phase::link_wait;
    for (;;) {
      std::optional<link_clock::time_point> deadline = line.next_deadline();
      if (state == phase::session) {
        if (!session.accepted()) deadline = earliest(deadline, handshake_deadline);
        deadline = earliest(deadline, session.wake_at());
      }
      if (state == phase::backoff) deadline = earliest(deadline, backoff_end);
      if (wait(line.fd(), deadline)) return line_end::stopped;

      auto ev = line.pump();
      // Payloads first: they belong to the session that ran before any restart in this round.
      for (const auto& d : ev.delivered) {
        if (state != phase::session) continue;  // left over from a session already given up
        const auto r = on_payload(line, d);
        if (r == session_result::done) return line_end::done;
        if (r == session_result::failed) to_backoff();
      }
      if (ev.port_failure) {
        spdlog::warn("pad: {} ({})", ev.port_failure->message, ev.port_failure->code);
        if (was_accepted) opt.backoff.reset();
        tls.reset();
        return line_end::port_failed;
      }
      if (ev.went_down) {
        const auto& why = line.down_reason();
        spdlog::warn("pad: link on {} down: {}", line.path(), why ? why->message : std::string("?"));
        to_backoff();
      }
      if (ev.peer_restarted && state == phase::session) {
        // The bridge's server connection ended: this session is gone with it. The bridge holds
        // the new session's bytes until it has reconnected, so start at once.
        spdlog::info("pad: the bridge restarted the link session; starting a new session");
        if (was_accepted) opt.backoff.reset();
        if (!begin_session(line)) to_backoff();
      }
      if (ev.came_up && state == phase::link_wait && !begin_session(line)) to_backoff();

      const auto now = link_clock::now();
      if (state == phase::session && !session.accepted() && now >= handshake_deadline) {
        spdlog::warn("pad: no hello_ack over {} within {} ms", line.path(), opt.handshake_timeout.count());
        to_backoff();
      }
      if (state == phase::session) {
        if (const auto wake = session.wake_at(); wake && now >= *wake) {
          auto ticked = session.on_tick(now);
          if (auto st = send_frames(line, ticked.send); !st)
            to_backoff();
          else if (progress.on_events(ticked.events, opt.once, [] {}))  // a card read answered late
            return line_end::done;
        }
      }
      if (state == phase::backoff && now >= backoff_end) {
        line.start();
        state = phase::link_wait;
      }
    }
  }

  int run() {
    if (opt.handle_signals) signals.emplace();
    for (;;) {
      if (stopping()) return 0;
      auto port = pad::open_termios_port(opt.port_path, pad::serial_settings{opt.baud});
      if (!port) {
        if (port.err().code == "serial.bad_baud") {
          spdlog::error("pad: {} ({})", port.err().message, port.err().code);
          return 2;
        }
        const auto d = opt.backoff.next();
        spdlog::warn("pad: {} ({}); retrying in {} ms", port.err().message, port.err().code, d.count());
        if (sleep_for(d)) return 0;
        continue;
      }
      spdlog::info("pad: serial port {} open at {} baud", opt.port_path, opt.baud);
      line_end end;
      {
        serial_link line(std::move(*port), opt.link);
        end = run_line(line);
      }
      if (end != line_end::port_failed) return 0;
      const auto d = opt.backoff.next();
      spdlog::info("pad: reopening {} in {} ms", opt.port_path, d.count());
      if (sleep_for(d)) return 0;
    }
  }
};

serial_client::serial_client(serial_client_options options, pad_session& session)
    : impl_(std::make_unique<impl>(std::move(options), session)) {}

serial_client::~serial_client() = default;

int serial_client::run() {
  if (impl_->opt.port_path.empty()) {
    spdlog::error("pad: no serial port configured");
    return 2;
  }
  return impl_->run();
}

void serial_client::stop() {
  impl_->stop_requested = true;
  impl_->stop_wake.notify();
}

}  // namespace eftd::padsim
