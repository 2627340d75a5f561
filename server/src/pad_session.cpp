#include "pad_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "connection.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
// A pad that connects but never says hello would otherwise hold a socket forever.
constexpr auto hello_timeout = 10s;
// Between transactions a pad is silent; the connection stays open until the peer closes it.
constexpr auto idle_read = std::chrono::hours(24);
}  // namespace

pad_session::pad_session(tcp::socket socket, server_context& ctx)
    : socket_(std::move(socket)), ctx_(ctx), out_(socket_), peer_(peer_name(socket_)) {}

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
    boost::system::error_code ec;
    self->socket_.shutdown(tcp::socket::shutdown_both, ec);
    self->socket_.close(ec);
    self->fail_all_pending();
    if (!self->pad_id_.empty()) {
      std::lock_guard lk(self->ctx_.pads_mu);
      auto it = self->ctx_.pads.find(self->pad_id_);
      if (it != self->ctx_.pads.end() && it->second.lock() == self) self->ctx_.pads.erase(it);
      spdlog::info("pad {} ({}) disconnected", self->pad_id_, self->peer_);
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

void pad_session::send(const pad::message& m, std::uint32_t ref, std::uint32_t& seq_out) {
  seq_out = next_seq_++;
  pad::envelope env{seq_out, ref, m};
  auto frame = pad::encode(env);
  out_.push(std::string(frame.begin(), frame.end()));
}

asio::awaitable<result<pad::envelope>> pad_session::read_frame(std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  for (;;) {
    auto next = frames_.next();
    if (!next) co_return next.err();
    if (next->has_value()) {
      auto env = pad::decode_body(**next);
      if (!env) co_return env.err();
      if (auto ok = replay_.accept(env->seq); !ok) co_return ok.err();
      co_return std::move(*env);
    }
    std::array<std::uint8_t, 4096> buf;
    asio::steady_timer deadline(socket_.get_executor());
    deadline.expires_after(timeout);
    auto r = co_await (socket_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
                       deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return make_error("pad.timeout", "no frame from the pad in time");
    auto [ec, n] = std::get<0>(r);
    if (ec) co_return make_error("pad.disconnected", "pad connection closed: " + ec.message());
    frames_.feed(byte_view(buf.data(), n));
  }
}

asio::awaitable<void> pad_session::run() {
  // Handshake: the first frame must be hello.
  auto first = co_await read_frame(hello_timeout);
  if (!first) {
    spdlog::warn("pad {}: refused before hello: {} ({})", peer_, first.err().code, first.err().message);
    co_return;
  }
  auto* hello = std::get_if<pad::hello>(&first->body);
  std::uint32_t seq = 0;
  if (!hello) {
    spdlog::warn("pad {}: refused: first frame is {} instead of hello", peer_, pad::describe(first->body));
    send(pad::hello_ack{false, ctx_.cfg.node_name, "hello expected first"}, first->seq, seq);
    co_return;
  }
  const auto* known = ctx_.cfg.find_pad(hello->pad_id);
  std::string refusal;
  if (!known) {
    refusal = "unknown pad";
  } else if (!known->serial.empty() && known->serial != hello->serial) {
    refusal = "serial number does not match the registered pad";
  }
  if (!refusal.empty()) {
    // The pad id and serial are identifiers, not card data: log them so ops can act.
    spdlog::warn("pad {}: refused pad id '{}' serial '{}': {}", peer_, hello->pad_id, hello->serial, refusal);
    send(pad::hello_ack{false, ctx_.cfg.node_name, refusal}, first->seq, seq);
    // Give the writer a chance to deliver the refusal before the socket closes.
    asio::steady_timer t(socket_.get_executor());
    t.expires_after(200ms);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
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
  send(pad::hello_ack{true, ctx_.cfg.node_name, ""}, first->seq, seq);
  spdlog::info("pad {} connected from {} (model '{}', firmware '{}')", pad_id_, peer_, hello->model,
               hello->firmware);

  for (;;) {
    auto env = co_await read_frame(idle_read);
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

asio::awaitable<result<pad::message>> pad_session::command_on_strand(pad::message m,
                                                                     std::chrono::milliseconds timeout) {
  if (closed_) co_return make_error("pad.disconnected", "PIN pad not connected");
  auto p = std::make_shared<pending>(socket_.get_executor());
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
        const std::chrono::milliseconds deadline(self->ctx_.cfg.timeout.pad_command_ms);
        auto r = co_await self->command_on_strand(std::move(msg), deadline);
        if (!r) spdlog::warn("pad {}: display failed: {}", self->pad_id_, r.err().code);
      },
      [](std::exception_ptr) {});
}

asio::awaitable<void> pad_listener(asio::ip::tcp::acceptor& acceptor, server_context& ctx) {
  return accept_loop<pad_session>(acceptor, ctx, "pad");
}

}  // namespace eftd::server
