#include "pad_session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>

#include "connection.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/core/secure.hpp"
#include "ha.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
// Between transactions a pad is silent; the connection stays open until the peer closes it.
constexpr auto idle_read = std::chrono::hours(24);
// How long a refusal (hello_ack, TLS alert) may take to reach the pad before the socket closes.
constexpr auto last_word_limit = 1s;

// Certificate names and pad identifiers go into log lines: no control characters that could
// forge a line.
std::string printable(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}
}  // namespace

pad_session::pad_session(tcp::socket socket, server_context& ctx)
    : socket_(std::move(socket)), ctx_(ctx), out_(socket_), peer_(peer_name(socket_)) {
  if (ctx_.pad_tls) {
    auto ch = tls_channel::server(ctx_.pad_tls);
    if (ch)
      tls_.emplace(std::move(*ch));
    else
      setup_error_ = ch.err();
  }
}

pad_session::~pad_session() = default;

void pad_session::start() {
  start_connection(shared_from_this(), socket_.get_executor(), "pad", peer_, out_.run(), run());
}

void pad_session::close() {
  // May be called from any thread; the state lives on the strand.
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    self->out_.close();
    self->read_deadline_.stop();
    boost::system::error_code ec;
    self->socket_.shutdown(tcp::socket::shutdown_both, ec);
    self->socket_.close(ec);
    self->fail_all_pending();
    if (self->ping_timer_) self->ping_timer_->cancel();
    if (!self->pad_id_.empty()) {
      bool current = false;
      {
        std::lock_guard lk(self->ctx_.pads_mu);
        auto it = self->ctx_.pads.find(self->pad_id_);
        current = it != self->ctx_.pads.end() && it->second.lock() == self;
        if (current) self->ctx_.pads.erase(it);
      }
      spdlog::info("pad {} ({}) disconnected", self->pad_id_, self->peer_);
      // A session replaced by the pad's new connection leaves the row to the new one.
      if (current) self->write_health("offline");
    }
  });
}

void pad_session::fail_all_pending() {
  for (auto& [seq, p] : pending_) {
    p->disconnected = true;
    p->timer.cancel();
  }
  pending_.clear();
}

void pad_session::transmit(byte_view frame) {
  if (!tls_) {
    out_.push(std::string(frame.begin(), frame.end()));
    return;
  }
  if (auto st = tls_->write(frame); !st) {
    spdlog::warn("pad {}: cannot send: {} ({})", peer_, st.err().code, st.err().message);
    close();
    return;
  }
  auto records = tls_->take_output();
  if (!records.empty()) out_.push(std::string(records.begin(), records.end()));
}

void pad_session::send(const pad::message& m, std::uint32_t ref, std::uint32_t& seq_out) {
  seq_out = next_seq_++;
  pad::envelope env{seq_out, ref, m};
  transmit(pad::encode(env));
}

asio::awaitable<void> pad_session::drain_output(std::chrono::milliseconds limit) {
  if (out_.closed()) co_return;
  // Waits until the writer has sent everything queued (it then cancels the timer), at most
  // `limit`: a pad that does not read must not hold the connection.
  auto done = std::make_shared<asio::steady_timer>(socket_.get_executor());
  done->expires_after(limit);
  out_.finish([done] { done->cancel(); });
  co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<status> pad_session::receive(time_point deadline) {
  read_deadline_.arm(deadline, weak_from_this());
  auto [ec, n] = co_await socket_.async_read_some(
      asio::buffer(read_buf_),
      asio::bind_cancellation_slot(read_deadline_.slot(), asio::as_tuple(asio::use_awaitable)));
  const bool expired = read_deadline_.disarm();
  if (ec && expired) co_return make_error("pad.timeout", "no frame from the pad in time");
  if (ec) co_return make_error("pad.disconnected", "pad connection closed: " + ec.message());
  const byte_view chunk(read_buf_.data(), n);
  if (!tls_) {
    frames_.feed(chunk);
    // Frames may hold a clear R-APDU (keys.require_p2pe off): the buffer keeps no copy.
    secure_wipe(read_buf_.data(), n);
    co_return status{};
  }
  auto st = tls_->feed(chunk);
  // Handshake messages, and on failure the alert that tells the pad why.
  auto records = tls_->take_output();
  if (!records.empty()) out_.push(std::string(records.begin(), records.end()));
  // Plaintext decrypted before a failure is still handed on; it carries card data, so the
  // copy is wiped once the frame reader has its own.
  auto plain = tls_->read();
  frames_.feed(plain);
  if (!plain.empty()) secure_wipe(plain.data(), plain.size());
  if (!st) {
    if (st.err().code == "tls.closed") co_return make_error("pad.disconnected", "pad closed the TLS session");
    co_return st.err();
  }
  co_return status{};
}

asio::awaitable<status> pad_session::tls_handshake(time_point deadline) {
  while (!tls_->handshake_done()) {
    auto st = co_await receive(deadline);
    if (!st) {
      if (st.err().code == "pad.timeout")
        co_return make_error("tls.timeout",
                             fmt::format("no TLS handshake within {} ms (listen.pad.login_timeout_ms)",
                                         ctx_.cfg().pad.login_timeout_ms));
      co_return st;
    }
  }
  co_return status{};
}

asio::awaitable<result<pad::envelope>> pad_session::read_frame(time_point deadline) {
  for (;;) {
    auto next = frames_.next();
    if (!next) co_return next.err();
    if (next->has_value()) {
      auto env = pad::decode_body(**next);
      if (!env) co_return env.err();
      if (auto ok = replay_.accept(env->seq); !ok) co_return ok.err();
      co_return std::move(*env);
    }
    // Frames that arrived before the stream ended are acted upon first.
    if (receive_error_) co_return *receive_error_;
    if (auto st = co_await receive(deadline); !st) receive_error_ = st.err();
  }
}

asio::awaitable<void> pad_session::run() {
  // TLS handshake (when configured) and hello share one deadline: a peer that connects and
  // then stalls at either step holds its connection slot no longer than this.
  const auto login_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.cfg().pad.login_timeout_ms);
  if (setup_error_) {
    spdlog::error("pad {}: refused: {} ({})", peer_, setup_error_->message, setup_error_->code);
    co_return;
  }
  if (tls_) {
    auto hs = co_await tls_handshake(login_deadline);
    if (!hs) {
      spdlog::warn("pad {}: TLS handshake refused: {} ({})", peer_, hs.err().message, hs.err().code);
      co_await drain_output(last_word_limit);  // the alert
      co_return;
    }
    spdlog::debug("pad {}: TLS 1.3 established, device certificate CN '{}'", peer_,
                  printable(tls_->peer_cn()));
  }

  // Handshake: the first frame must be hello.
  auto first = co_await read_frame(login_deadline);
  if (!first) {
    spdlog::warn("pad {}: refused before hello: {} ({})", peer_, first.err().code, first.err().message);
    co_return;
  }
  auto* hello = std::get_if<pad::hello>(&first->body);
  std::uint32_t seq = 0;
  if (!hello) {
    spdlog::warn("pad {}: refused: first frame is {} instead of hello", peer_, pad::describe(first->body));
    send(pad::hello_ack{false, ctx_.cfg().node_name, "hello expected first"}, first->seq, seq);
    co_await drain_output(last_word_limit);
    co_return;
  }
  if (ctx_.ha && !ctx_.ha->serving()) {
    // PROTOCOL.md section 5: the pad tries its next server.
    const std::string refusal = "standby server, active is " + ctx_.ha->active_pad_address();
    spdlog::info("pad {}: refused: {}", peer_, refusal);
    send(pad::hello_ack{false, ctx_.cfg().node_name, refusal}, first->seq, seq);
    co_await drain_output(last_word_limit);
    co_return;
  }
  const auto* known = ctx_.cfg().find_pad(hello->pad_id);
  std::string refusal;
  if (!known) {
    refusal = "unknown pad";
  } else if (!known->serial.empty() && known->serial != hello->serial) {
    refusal = "serial number does not match the registered pad";
  } else if (tls_ && tls_->peer_cn() != hello->serial) {
    // A valid certificate of another pad: the serial claimed in hello is not this device's.
    refusal = "device certificate does not match the serial number";
  } else if (known->revoked) {
    refusal = "pad revoked";
  }
  if (!refusal.empty()) {
    // The pad id, serial and certificate CN are identifiers, not card data: log them so ops can act.
    const std::string cn =
        tls_ ? fmt::format(" certificate CN '{}'", printable(tls_->peer_cn())) : std::string();
    spdlog::warn("pad {}: refused pad id '{}' serial '{}'{}: {}", peer_, printable(hello->pad_id),
                 printable(hello->serial), cn, refusal);
    send(pad::hello_ack{false, ctx_.cfg().node_name, refusal}, first->seq, seq);
    co_await drain_output(last_word_limit);
    co_return;
  }
  pad_id_ = hello->pad_id;
  std::shared_ptr<pad_session> replaced;
  {
    std::lock_guard lk(ctx_.pads_mu);
    if (auto old = ctx_.pads[pad_id_].lock(); old && old.get() != this) replaced = std::move(old);
    ctx_.pads[pad_id_] = weak_from_this();
  }
  if (replaced) {
    // A pad that reconnects (power cycle, cable) replaces its stale session. Closed outside
    // the lock: close() may run inline and takes the same lock.
    spdlog::info("pad {}: new connection from {} replaces the previous one", pad_id_, peer_);
    replaced->close();
  }
  send(pad::hello_ack{true, ctx_.cfg().node_name, ""}, first->seq, seq);
  serial_ = hello->serial;
  model_ = hello->model;
  firmware_ = hello->firmware;
  connected_ms_ = ctx_.clock.now_ms();
  last_seen_ms_ = connected_ms_;
  asio::co_spawn(socket_.get_executor(), shared_from_this()->monitor(), asio::detached);
  spdlog::info("pad {} connected from {} (model '{}', firmware '{}'{})", pad_id_, peer_, hello->model,
               hello->firmware, tls_ ? ", TLS 1.3" : "");

  for (;;) {
    auto env = co_await read_frame(std::chrono::steady_clock::now() + idle_read);
    if (!env) {
      if (env.err().code != "pad.disconnected")
        spdlog::warn("pad {}: closing after protocol error {}: {}", pad_id_, env.err().code,
                     env.err().message);
      co_return;
    }
    if (env->ref != 0) {
      auto it = pending_.find(env->ref);
      if (it == pending_.end()) {
        spdlog::warn("pad {}: late or unmatched reply ({}), dropped", pad_id_, pad::describe(*env));
        continue;
      }
      it->second->reply = std::move(env->body);
      it->second->timer.cancel();
      pending_.erase(it);
      continue;
    }
    if (std::holds_alternative<pad::event_key>(env->body)) {
      spdlog::debug("pad {}: key event", pad_id_);
      continue;
    }
    spdlog::warn("pad {}: unexpected unsolicited {}, ignored", pad_id_, pad::describe(env->body));
  }
}

void pad_session::write_health(std::string_view state) {
  if (!ctx_.journal) return;
  health_state_ = std::string(state);
  health_written_ms_ = ctx_.clock.now_ms();
  journal::pad_health_set h;
  h.pad_id = pad_id_;
  h.state = health_state_;
  h.serial = serial_;
  h.model = model_;
  h.firmware = firmware_;
  h.peer = peer_;
  h.node = ctx_.cfg().node_name;
  h.connected_ms = connected_ms_;
  h.last_seen_ms = last_seen_ms_;
  h.rtt_ms = rtt_ms_;
  h.missed_pings = missed_pings_;
  h.dukpt = dukpt_json_;
  h.updated_ms = health_written_ms_;
  journal::batch b;
  b.records.push_back(std::move(h));
  // Health is advisory: it never holds up a transaction, and a failed write is only logged.
  ctx_.journal->submit(std::move(b), [id = pad_id_](status st) {
    if (!st && st.err().code != "journal.closed")
      spdlog::warn("pad {}: health not journaled: {}", id, st.err().code);
  });
}

asio::awaitable<void> pad_session::refresh_status() {
  pad::message ask = pad::get_status{static_cast<std::uint32_t>(ctx_.cfg().timeout.pad_command_ms)};
  auto r =
      co_await command_on_strand(std::move(ask), std::chrono::milliseconds(ctx_.cfg().timeout.pad_command_ms));
  if (!r) co_return;
  auto* st = std::get_if<pad::pad_status>(&*r);
  if (!st) co_return;
  std::string json = "[";
  for (std::size_t i = 0; i < st->ksns.size(); ++i) {
    const auto& ksn = st->ksns[i];
    auto kind = p2pe::kind_of_ksn(ksn);
    const std::uint32_t counter = i < st->dukpt_counters.size() ? st->dukpt_counters[i] : 0;
    const std::uint64_t left = kind ? p2pe::counters_left(*kind, counter) : 0;
    if (kind && left < ctx_.cfg().pad_health.dukpt_warn_remaining)
      spdlog::warn("pad {}: DUKPT key {} has {} transactions left: reload the pad's key", pad_id_,
                   to_hex(ksn), left);
    json += fmt::format("{}{{\"ksn\":\"{}\",\"counter\":{},\"left\":{}}}", i ? "," : "", to_hex(ksn), counter,
                        left);
  }
  json += "]";
  dukpt_json_ = std::move(json);
}

asio::awaitable<void> pad_session::monitor() {
  auto self = shared_from_this();
  ping_timer_.emplace(socket_.get_executor());
  co_await refresh_status();
  if (closed_) co_return;
  write_health("online");
  while (!closed_) {
    // Read each round: a config reload may change the interval.
    ping_timer_->expires_after(std::chrono::milliseconds(ctx_.cfg().pad_health.ping_interval_ms));
    co_await ping_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (closed_) break;
    pad::message ping = pad::ping{ctx_.clock.now_ms()};
    auto r = co_await command_on_strand(std::move(ping),
                                        std::chrono::milliseconds(ctx_.cfg().timeout.pad_command_ms));
    if (closed_) break;
    if (!r && r.err().code == "pad.aborted") continue;  // the cashier's abort cut it short
    std::string state = "online";
    if (auto* pong = r ? std::get_if<pad::pong>(&*r) : nullptr) {
      const auto now = ctx_.clock.now_ms();
      if (pong->timestamp) rtt_ms_ = std::max<std::int64_t>(0, now - *pong->timestamp);
      last_seen_ms_ = now;
      missed_pings_ = 0;
    } else {
      ++missed_pings_;
      state = "unreachable";
      spdlog::warn("pad {}: missed ping {} of {} ({})", pad_id_, missed_pings_,
                   ctx_.cfg().pad_health.missed_pings_to_drop, r ? "unexpected reply" : r.err().code);
      if (missed_pings_ >= static_cast<std::int64_t>(ctx_.cfg().pad_health.missed_pings_to_drop)) {
        spdlog::warn("pad {}: unreachable, disconnecting it (it reconnects by itself)", pad_id_);
        write_health("unreachable");
        close();
        break;
      }
    }
    const bool due = ctx_.clock.now_ms() - health_written_ms_ >= ctx_.cfg().pad_health.write_interval_ms;
    if (due && state == "online") co_await refresh_status();
    if (closed_) break;
    if (state != health_state_ || due) write_health(state);
  }
}

asio::awaitable<result<pad::message>> pad_session::command_on_strand(pad::message m,
                                                                     std::chrono::milliseconds timeout) {
  if (closed_) co_return make_error("pad.disconnected", "PIN pad not connected");
  auto p = std::make_shared<pending>(socket_.get_executor());
  ctx_.metrics->pad_command(static_cast<std::uint8_t>(pad::type_of(m)));
  std::uint32_t seq = 0;
  send(m, 0, seq);
  pending_[seq] = p;
  p->timer.expires_after(timeout);
  co_await p->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (p->reply) {
    if (auto* e = std::get_if<pad::pad_error>(&*p->reply))
      co_return make_error("pad.error." + std::string(pad::pad_error_name(e->code)),
                           "PIN pad reported " + std::string(pad::pad_error_name(e->code)));
    co_return std::move(*p->reply);
  }
  pending_.erase(seq);
  if (p->aborted) co_return make_error("pad.aborted", "PIN pad command aborted by the cashier");
  if (p->disconnected || closed_) co_return make_error("pad.disconnected", "PIN pad disconnected");
  co_return make_error("pad.timeout", "PIN pad did not answer in time");
}

asio::awaitable<result<pad::message>> pad_session::command(pad::message m,
                                                           std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  // A named executor, not a temporary inside the co_await (GCC 12 double-destroys those).
  asio::any_io_executor strand = socket_.get_executor();
  try {
    co_return co_await asio::co_spawn(strand, self->command_on_strand(std::move(m), timeout),
                                      asio::use_awaitable);
  } catch (const std::exception& e) {
    co_return make_error("pad.disconnected", std::string("PIN pad command failed: ") + e.what());
  }
}

void pad_session::show(std::vector<std::string> lines) {
  auto self = shared_from_this();
  asio::co_spawn(
      socket_.get_executor(),
      [self, lines = std::move(lines)]() mutable -> asio::awaitable<void> {
        // Built outside the co_await: GCC 12 destroys a braced temporary inside a co_await
        // expression twice.
        pad::message msg = pad::display{std::move(lines), "en"};
        const std::chrono::milliseconds deadline(self->ctx_.cfg().timeout.pad_command_ms);
        auto r = co_await self->command_on_strand(std::move(msg), deadline);
        if (!r) spdlog::warn("pad {}: display failed: {}", self->pad_id_, r.err().code);
      },
      [](std::exception_ptr) {});
}

void pad_session::abort_pending() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    for (auto& [seq, p] : self->pending_) {
      p->aborted = true;
      p->timer.cancel();
    }
    self->pending_.clear();
    std::uint32_t seq = 0;
    self->send(pad::cancel{}, 0, seq);
  });
}

asio::awaitable<void> pad_listener(asio::ip::tcp::acceptor& acceptor, server_context& ctx) {
  auto limits = std::make_shared<connection_limits>(ctx.cfg().pad.max_connections, ctx.cfg().pad.max_per_address);
  return accept_loop<pad_session>(acceptor, ctx, "pad", std::move(limits));
}

}  // namespace eftd::server
