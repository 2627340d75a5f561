#include "pos_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "connection.hpp"
#include "eftd/core/money.hpp"
#include "engine.hpp"

namespace eftd::server {

namespace asio = boost::asio;

pos_session::pos_session(tcp::socket socket, server_context& ctx)
    : socket_(std::move(socket)), ctx_(ctx), out_(socket_), peer_(peer_name(socket_)) {}

pos_session::~pos_session() = default;

void pos_session::start() {
  start_connection(shared_from_this(), socket_.get_executor(), "pos", peer_, out_.run(), run());
}

void pos_session::send(pos::message m) {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this(), m = std::move(m)]() mutable {
    if (self->closed_) return;
    self->out_.push(pos::encode(m));
  });
}

void pos_session::close() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    self->out_.close();
    boost::system::error_code ec;
    self->socket_.shutdown(tcp::socket::shutdown_both, ec);
    self->socket_.close(ec);
    if (!self->till_id_.empty()) {
      std::lock_guard lk(self->ctx_.tills_mu);
      auto it = self->ctx_.pos_by_till.find(self->till_id_);
      if (it != self->ctx_.pos_by_till.end() && it->second.lock() == self) self->ctx_.pos_by_till.erase(it);
    }
    spdlog::info("pos {}{}: disconnected{}", self->peer_,
                 self->till_id_.empty() ? "" : " (till " + self->till_id_ + ")",
                 self->running_ ? "; its transaction runs on to a final state" : "");
  });
}

void pos_session::send_error(std::string id, std::string_view code, std::string message,
                             std::string order_no) {
  pos::error e;
  e.id = std::move(id);
  e.code = std::string(code);
  e.message = std::move(message);
  e.order_no = std::move(order_no);
  send(std::move(e));
}

asio::awaitable<void> pos_session::run() {
  using namespace asio::experimental::awaitable_operators;
  std::array<char, 8192> buf;
  for (;;) {
    // Drain complete lines first.
    for (;;) {
      auto line = lines_.next();
      if (!line) {
        // Oversize frame: tell the POS why, then close (the stream cannot be resynchronised
        // reliably inside an over-long line).
        spdlog::warn("pos {}: {}; closing", peer_, line.err().message);
        send_error("", pos::codes::frame_too_large, line.err().message);
        asio::steady_timer t(socket_.get_executor());
        t.expires_after(std::chrono::milliseconds(100));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return;
      }
      if (!line->has_value()) break;
      const std::string& text = **line;
      if (text.empty()) continue;
      auto msg = pos::decode(text);
      if (!msg) {
        spdlog::info("pos {}: bad message: {} {}", peer_, msg.err().code, msg.err().message);
        send_error(pos::peek_id(text), msg.err().code, msg.err().message);
        continue;
      }
      handle(std::move(*msg));
      if (closed_) co_return;
    }
    asio::steady_timer idle(socket_.get_executor());
    // While a transaction runs the POS may stay silent (the cashier waits for the customer);
    // the idle limit only applies to a connection with nothing in progress.
    idle.expires_after(running_ ? std::chrono::hours(1)
                                : std::chrono::milliseconds(ctx_.cfg.timeout.pos_idle_ms));
    auto r = co_await (socket_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
                       idle.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) {
      if (running_) continue;
      spdlog::info("pos {}: idle for {} ms, closing", peer_, ctx_.cfg.timeout.pos_idle_ms);
      co_return;
    }
    auto [ec, n] = std::get<0>(r);
    if (ec) co_return;
    lines_.feed(std::string_view(buf.data(), n));
  }
}

void pos_session::handle(pos::message m) {
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, pos::login>) {
          on_login(msg);
        } else if constexpr (std::is_same_v<T, pos::heartbeat>) {
          send(pos::heartbeat_ack{msg.id});
        } else if constexpr (std::is_same_v<T, pos::logout>) {
          if (running_) {
            send_error(msg.id, pos::codes::busy, "a transaction is still running on this till");
            return;
          }
          send(pos::logout_ok{msg.id});
          close();
        } else if constexpr (std::is_same_v<T, pos::sale> || std::is_same_v<T, pos::status_query>) {
          if (till_id_.empty()) {
            send_error(msg.id, pos::codes::not_logged_in, "log in with a till id first");
            return;
          }
          if constexpr (std::is_same_v<T, pos::sale>)
            on_sale(msg);
          else
            on_status_query(msg);
        } else if constexpr (std::is_same_v<T, pos::refund> || std::is_same_v<T, pos::preauth> ||
                             std::is_same_v<T, pos::completion> || std::is_same_v<T, pos::incremental> ||
                             std::is_same_v<T, pos::cancel> || std::is_same_v<T, pos::balance_inquiry> ||
                             std::is_same_v<T, pos::abort_tx> || std::is_same_v<T, pos::answer>) {
          send_error(msg.id, pos::codes::not_supported,
                     std::string(pos::type_name(pos::message{msg})) +
                         " is not supported by this server version yet");
        } else {
          // A server-to-POS message sent by a POS.
          send_error(msg.id, pos::codes::unexpected, "this message type is sent by the server, not by a POS");
        }
      },
      m);
}

void pos_session::on_login(const pos::login& m) {
  if (!till_id_.empty()) {
    send_error(m.id, pos::codes::already_logged_in,
               "this connection is already logged in as till " + till_id_);
    return;
  }
  if (m.version < 1) {
    send_error(m.id, pos::codes::unsupported_version, "protocol version 1 or later required");
    return;
  }
  if (!ctx_.cfg.find_till(m.till_id)) {
    spdlog::warn("pos {}: login refused for unknown till '{}'", peer_, m.till_id);
    send_error(m.id, pos::codes::unknown_till, "till '" + m.till_id + "' is not configured on this server");
    return;
  }
  std::shared_ptr<pos_session> replaced;
  {
    std::lock_guard lk(ctx_.tills_mu);
    auto& slot = ctx_.pos_by_till[m.till_id];
    if (auto old = slot.lock(); old && old.get() != this) {
      if (old->has_running_transaction()) {
        send_error(m.id, pos::codes::till_in_use,
                   "till " + m.till_id + " is logged in on another connection with a transaction running");
        return;
      }
      replaced = std::move(old);
    }
    slot = weak_from_this();
  }
  if (replaced) {
    // A POS that reconnects (half-open TCP after a network blip) takes its till back. Closed
    // outside the lock: close() may run inline and takes the same lock.
    spdlog::info("pos {}: till {} logs in again; the previous connection is closed", peer_, m.till_id);
    replaced->close();
  }
  till_id_ = m.till_id;
  operator_id_ = m.operator_id;
  spdlog::info("pos {}: till {} logged in (operator '{}', client '{}')", peer_, till_id_, operator_id_,
               m.client);
  pos::login_ok ok;
  ok.id = m.id;
  ok.server = ctx_.cfg.node_name;
  ok.business_date = business_date_of(ctx_.clock.now_ms());
  ok.version = pos::protocol_version;
  ok.capabilities = {"sale", "status_query", "heartbeat"};
  send(std::move(ok));
}

void pos_session::on_sale(const pos::sale& m) {
  if (m.order_no.empty() || m.order_no.size() > 32) {
    send_error(m.id, pos::codes::bad_field, "order_no must be 1..32 characters");
    return;
  }
  if (m.amount <= 0 || m.cashback < 0 || m.tip < 0 || m.cashback + m.tip > m.amount) {
    send_error(m.id, pos::codes::invalid_amount,
               "amount must be positive (minor units) and cover cashback and tip", m.order_no);
    return;
  }
  if (!eftd::find_currency(m.currency)) {
    send_error(m.id, pos::codes::invalid_currency, "unknown ISO 4217 currency '" + m.currency + "'",
               m.order_no);
    return;
  }
  {
    std::lock_guard lk(ctx_.tills_mu);
    auto it = ctx_.busy_tills.find(till_id_);
    if (it != ctx_.busy_tills.end()) {
      if (it->second == m.order_no) {
        // The same order re-sent while it runs (a POS retry): never a second payment. The POS
        // polls status_query for the outcome (PROTOCOL.md, recovery).
        send_error(m.id, pos::codes::in_progress,
                   "order " + m.order_no + " is in progress on till " + till_id_, m.order_no);
      } else {
        send_error(m.id, pos::codes::busy, "till " + till_id_ + " is running order " + it->second,
                   m.order_no);
      }
      return;
    }
    ctx_.busy_tills[till_id_] = m.order_no;
  }
  running_ = true;
  auto self = shared_from_this();
  sale_request req{m.id, till_id_, operator_id_, m};
  asio::co_spawn(
      socket_.get_executor(),
      [self, req = std::move(req)]() mutable -> asio::awaitable<void> {
        // A named sink, not a temporary inside the co_await (GCC 12 coroutine temporaries bug).
        std::function<void(pos::message)> sink = [self](pos::message msg) { self->send(std::move(msg)); };
        auto res = co_await run_sale(self->ctx_, req, sink);
        self->send(std::move(res));
      },
      [self, till = till_id_](std::exception_ptr e) {
        if (e) spdlog::error("till {}: transaction flow ended by an exception", till);
        {
          std::lock_guard lk(self->ctx_.tills_mu);
          self->ctx_.busy_tills.erase(till);
        }
        asio::dispatch(self->socket_.get_executor(), [self] { self->running_ = false; });
      });
}

void pos_session::on_status_query(const pos::status_query& m) {
  pos::order_status st;
  st.id = m.id;
  st.order_no = m.order_no;
  st.state = "unknown";
  auto view = ctx_.find_order_view(till_id_, m.order_no, m.business_date);
  if (view) {
    st.business_date = view->order.business_date;
    st.state = status_word(view->order.state);
    if (st.state != "in_progress") st.last_result = result_from_journal(ctx_, *view);
  } else {
    std::lock_guard lk(ctx_.tills_mu);
    auto it = ctx_.busy_tills.find(till_id_);
    if (it != ctx_.busy_tills.end() && it->second == m.order_no) st.state = "in_progress";
  }
  send(std::move(st));
}

asio::awaitable<void> pos_listener(asio::ip::tcp::acceptor& acceptor, server_context& ctx) {
  return accept_loop<pos_session>(acceptor, ctx, "pos");
}

}  // namespace eftd::server
