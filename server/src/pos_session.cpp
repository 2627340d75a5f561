#include "pos_session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "connection.hpp"
#include "eftd/core/money.hpp"
#include "engine.hpp"
#include "ha.hpp"
#include "tx_control.hpp"

namespace eftd::server {

namespace asio = boost::asio;

pos_session::pos_session(tcp::socket socket, server_context& ctx)
    : socket_(std::move(socket)), ex_(socket_.get_executor()), ctx_(ctx), peer_(peer_name(socket_)) {}

pos_session::~pos_session() = default;

void pos_session::start() {
  opened_ = std::chrono::steady_clock::now();
  asio::co_spawn(ex_, open(), [self = shared_from_this()](std::exception_ptr e) {
    if (e) spdlog::error("pos {}: connection set-up ended by an exception", self->peer_);
  });
}

asio::awaitable<void> pos_session::open() {
  if (ctx_.pos_tls) {
    // The handshake shares the login deadline: a peer that stalls it is a slowloris.
    const std::chrono::milliseconds deadline(ctx_.cfg().pos.login_timeout_ms);
    auto peer = co_await tls_accept(socket_, ctx_.pos_tls, deadline);
    if (!peer) {
      spdlog::warn("pos {}: refused: {}", peer_, peer.err().message);
      closed_ = true;
      co_return;
    }
    stream_ = std::move(peer->stream);
    cert_till_ = std::move(peer->client_cn);
    tls_ = true;
  } else {
    stream_ = make_tcp_stream(std::move(socket_));
  }
  out_.emplace(*stream_);
  start_connection(shared_from_this(), ex_, "pos", peer_, out_->run(), run());
}

void pos_session::send(pos::message m) {
  asio::dispatch(ex_, [self = shared_from_this(), m = std::move(m)]() mutable {
    if (self->closed_ || !self->out_) return;
    // Fencing (server/HA.md): a node that lost its role or lease answers nothing more, not even
    // a result it already has; the till reconnects to the active and asks for the status.
    if (self->ctx_.ha && self->ctx_.ha->role() != ha_role::starting && self->ctx_.ha->role() != ha_role::standby &&
        !self->ctx_.ha->serving()) {
      spdlog::warn("pos {}: answer withheld: this node is not serving (role {})", self->peer_,
                   to_string(self->ctx_.ha->role()));
      self->close();
      return;
    }
    self->out_->push(pos::encode(m, self->ctx_.ha ? self->ctx_.ha->epoch() : 0));
  });
}

void pos_session::close() {
  asio::dispatch(ex_, [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    if (self->tx_) self->tx_->pos_gone();
    if (self->out_) self->out_->close();
    if (self->stream_) self->stream_->close();
    self->read_deadline_.stop();
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
  using clock = std::chrono::steady_clock;
  std::array<char, 8192> buf;
  const std::chrono::milliseconds login_limit(ctx_.cfg().pos.login_timeout_ms);
  const std::chrono::milliseconds frame_limit(ctx_.cfg().pos.frame_timeout_ms);
  const std::chrono::milliseconds idle_limit(ctx_.cfg().timeout.pos_idle_ms);
  // Ends the connection with a last error line (given a moment to leave) and a log line.
  auto hang_up = [&](std::string_view code, std::string text) -> asio::awaitable<void> {
    spdlog::info("pos {}: {}; closing", peer_, text);
    send_error("", code, std::move(text));
    asio::steady_timer t(ex_);
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  };
  for (;;) {
    // Drain complete lines first.
    bool consumed = false;
    for (;;) {
      auto line = lines_.next();
      if (!line) {
        // Oversize frame: tell the POS why, then close (the stream cannot be resynchronised
        // reliably inside an over-long line).
        co_await hang_up(pos::codes::frame_too_large, line.err().message);
        co_return;
      }
      if (!line->has_value()) break;
      consumed = true;
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
    const auto now = clock::now();
    if (consumed) partial_since_ = now;  // what is left (if anything) started with this read
    // Deadlines: a login soon after connecting; a started line finished soon (slowloris);
    // otherwise the idle limit, which does not apply while a transaction runs (the cashier
    // may wait minutes for the customer).
    auto deadline = till_id_.empty() ? opened_ + login_limit
                    : running_       ? now + std::chrono::hours(1)
                                     : now + idle_limit;
    if (lines_.buffered() > 0) deadline = std::min(deadline, partial_since_ + frame_limit);
    read_deadline_.arm(deadline, weak_from_this());
    auto [ec, n] = co_await stream_->read_some(asio::buffer(buf), read_deadline_.slot());
    if (read_deadline_.disarm() && ec) {
      const auto t = clock::now();
      if (lines_.buffered() > 0 && t >= partial_since_ + frame_limit) {
        co_await hang_up(pos::codes::frame_timeout,
                         fmt::format("a message was not completed within {} ms", frame_limit.count()));
        co_return;
      }
      if (till_id_.empty() && t >= opened_ + login_limit) {
        co_await hang_up(pos::codes::login_timeout,
                         fmt::format("no login within {} ms of connecting", login_limit.count()));
        co_return;
      }
      if (running_ || t < deadline) continue;
      spdlog::info("pos {}: idle for {} ms, closing", peer_, idle_limit.count());
      co_return;
    }
    if (ec) co_return;
    if (lines_.buffered() == 0) partial_since_ = clock::now();
    lines_.feed(std::string_view(buf.data(), n));
  }
}

void pos_session::handle(pos::message m) {
  if (ctx_.ha && !ctx_.ha->serving()) {
    // A standby (or a node still deciding its role) takes no requests: it names the active.
    pos::error e;
    e.id = std::visit([](const auto& msg) -> std::string {
      if constexpr (requires { msg.id; })
        return msg.id;
      else
        return {};
    }, m);
    e.code = std::string(pos::codes::not_active);
    e.active_server = ctx_.ha->active_pos_address();
    e.message = fmt::format("this server is {}; the active server is {}", to_string(ctx_.ha->role()), e.active_server);
    if (out_ && !closed_) out_->push(pos::encode(pos::message(std::move(e)), ctx_.ha->epoch()));
    asio::dispatch(ex_, [self = shared_from_this()] {
      if (self->out_ && !self->closed_)
        self->out_->finish([self] { self->close(); });
      else
        self->close();
    });
    return;
  }
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
          // logout_ok must reach the POS before the connection closes.
          asio::dispatch(ex_, [self = shared_from_this()] {
            if (self->out_ && !self->closed_)
              self->out_->finish([self] { self->close(); });
            else
              self->close();
          });
        } else if constexpr (std::is_same_v<T, pos::sale> || std::is_same_v<T, pos::refund> ||
                             std::is_same_v<T, pos::preauth> || std::is_same_v<T, pos::completion> ||
                             std::is_same_v<T, pos::incremental> || std::is_same_v<T, pos::balance_inquiry> ||
                             std::is_same_v<T, pos::cancel> || std::is_same_v<T, pos::abort_tx> ||
                             std::is_same_v<T, pos::answer> || std::is_same_v<T, pos::totals> ||
                             std::is_same_v<T, pos::status_query>) {
          if (till_id_.empty()) {
            send_error(msg.id, pos::codes::not_logged_in, "log in with a till id first");
            return;
          }
          if constexpr (std::is_same_v<T, pos::sale>)
            on_sale(msg);
          else if constexpr (std::is_same_v<T, pos::refund>)
            on_refund(msg);
          else if constexpr (std::is_same_v<T, pos::preauth>)
            on_preauth(msg);
          else if constexpr (std::is_same_v<T, pos::completion> || std::is_same_v<T, pos::incremental>)
            on_follow_up(to_follow_up(msg));
          else if constexpr (std::is_same_v<T, pos::balance_inquiry>)
            on_balance_inquiry(msg);
          else if constexpr (std::is_same_v<T, pos::cancel>)
            on_cancel(msg);
          else if constexpr (std::is_same_v<T, pos::abort_tx>)
            on_abort(msg);
          else if constexpr (std::is_same_v<T, pos::answer>)
            on_answer(msg);
          else if constexpr (std::is_same_v<T, pos::totals>)
            on_totals(msg);
          else
            on_status_query(msg);
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
  if (!ctx_.cfg().find_till(m.till_id)) {
    spdlog::warn("pos {}: login refused for unknown till '{}'", peer_, m.till_id);
    send_error(m.id, pos::codes::unknown_till, "till '" + m.till_id + "' is not configured on this server");
    return;
  }
  // With TLS, a till is who its certificate says: another till's certificate cannot log in.
  if (tls_ && cert_till_ != m.till_id) {
    spdlog::warn("pos {}: login as till '{}' refused: the client certificate names '{}'", peer_, m.till_id,
                 cert_till_);
    send_error(m.id, pos::codes::till_not_authorized,
               "the client certificate of this connection does not name till '" + m.till_id + "'");
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
  prompts_ = std::find(m.capabilities.begin(), m.capabilities.end(), "prompt") != m.capabilities.end();
  spdlog::info("pos {}: till {} logged in (operator '{}', client '{}')", peer_, till_id_, operator_id_,
               m.client);
  pos::login_ok ok;
  ok.id = m.id;
  ok.server = ctx_.cfg().node_name;
  ok.business_date = business_date_of(ctx_.clock.now_ms());
  ok.version = pos::protocol_version;
  ok.capabilities = {"sale",        "refund", "preauth",         "completion",
                     "incremental", "cancel", "balance_inquiry", "status_query",
                     "abort",       "answer", "totals",          "heartbeat"};
  send(std::move(ok));
}

namespace {

bool valid_date(const std::string& d) {
  return d.size() == 10 && d[4] == '-' && d[7] == '-' &&
         std::all_of(d.begin(), d.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
}

bool valid_order_no(const std::string& o) {
  return !o.empty() && o.size() <= 32 &&
         std::none_of(o.begin(), o.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

}  // namespace

void pos_session::on_sale(const pos::sale& m) {
  if (m.amount <= 0 || m.cashback < 0 || m.tip < 0 || m.cashback + m.tip > m.amount) {
    send_error(m.id, pos::codes::invalid_amount,
               "amount must be positive (minor units) and cover cashback and tip", m.order_no);
    return;
  }
  start_transaction(to_tx_request(m));
}

void pos_session::on_refund(const pos::refund& m) {
  if (m.amount <= 0) {
    send_error(m.id, pos::codes::invalid_amount, "amount must be positive (minor units)", m.order_no);
    return;
  }
  if (!m.original_order_no.empty() && !valid_order_no(m.original_order_no)) {
    send_error(m.id, pos::codes::bad_field, "original_order_no must be 1..32 printable characters",
               m.order_no);
    return;
  }
  start_transaction(to_tx_request(m));
}

void pos_session::on_preauth(const pos::preauth& m) {
  if (m.amount <= 0) {
    send_error(m.id, pos::codes::invalid_amount, "amount must be positive (minor units)", m.order_no);
    return;
  }
  start_transaction(to_tx_request(m));
}

// A completion or incremental: no card, no pad; it runs on the till like a cancel.
void pos_session::on_follow_up(follow_up_request req) {
  if (!valid_order_no(req.order_no)) {
    send_error(req.request_id, pos::codes::bad_field, "order_no must be 1..32 printable characters");
    return;
  }
  if (!valid_order_no(req.preauth_order_no)) {
    send_error(req.request_id, pos::codes::bad_field, "preauth_order_no must be 1..32 printable characters",
               req.order_no);
    return;
  }
  if (req.amount <= 0) {
    send_error(req.request_id, pos::codes::invalid_amount, "amount must be positive (minor units)",
               req.order_no);
    return;
  }
  if (!eftd::find_currency(req.currency)) {
    send_error(req.request_id, pos::codes::invalid_currency,
               "unknown ISO 4217 currency '" + req.currency + "'", req.order_no);
    return;
  }
  if (auto prior = ctx_.find_order_view(till_id_, req.order_no, "")) {
    const auto& o = prior->order;
    if (o.kind != req.kind || o.amount_minor != req.amount || o.currency != req.currency) {
      send_error(
          req.request_id, pos::codes::duplicate_order,
          "order " + req.order_no + " already exists on this till with another type, amount or currency",
          req.order_no);
      return;
    }
  }
  if (!claim_till(req.request_id, req.order_no)) return;
  running_ = true;
  running_order_.clear();  // nothing to abort: no card, no prompt
  req.till_id = till_id_;
  req.operator_id = operator_id_;
  auto self = shared_from_this();
  asio::co_spawn(
      ex_,
      [self, till = till_id_, req = std::move(req)]() mutable -> asio::awaitable<void> {
        const auto started = std::chrono::steady_clock::now();
        const std::string kind = req.kind;
        auto res = co_await run_follow_up(self->ctx_, std::move(req));
        self->count(kind, res.outcome, started);
        self->release_till(till);
        self->send(std::move(res));
      },
      [self, till = till_id_](std::exception_ptr e) {
        if (!e) return;
        spdlog::error("till {}: follow-up flow ended by an exception", till);
        asio::dispatch(self->ex_, [self, till] { self->release_till(till); });
      });
}

// The transaction is over and the till free for its next request, on this connection or
// another. Called before the final answer is sent: a POS may reconnect, or start its next sale,
// the moment it has the answer. On the strand.
void pos_session::release_till(const std::string& till) {
  {
    std::lock_guard lk(ctx_.tills_mu);
    ctx_.busy_tills.erase(till);
  }
  running_ = false;
  running_order_.clear();
  tx_.reset();
}

void pos_session::count(std::string_view kind, std::string_view outcome,
                        std::chrono::steady_clock::time_point started) {
  ctx_.metrics->transaction(kind, outcome);
  ctx_.metrics->observe_total(ms_since(started));
}

void pos_session::on_balance_inquiry(const pos::balance_inquiry& m) {
  start_transaction(to_tx_request(m));
}

// Claims the till for one order; false (and the POS told why) when it runs another one.
bool pos_session::claim_till(const std::string& request_id, const std::string& order_no) {
  std::lock_guard lk(ctx_.tills_mu);
  auto it = ctx_.busy_tills.find(till_id_);
  if (it != ctx_.busy_tills.end()) {
    if (it->second == order_no) {
      // The same order re-sent while it runs (a POS retry): never a second payment. The POS
      // polls status_query for the outcome (PROTOCOL.md, recovery).
      send_error(request_id, pos::codes::in_progress,
                 "order " + order_no + " is in progress on till " + till_id_, order_no);
    } else {
      send_error(request_id, pos::codes::busy, "till " + till_id_ + " is running order " + it->second,
                 order_no);
    }
    return false;
  }
  ctx_.busy_tills[till_id_] = order_no;
  return true;
}

void pos_session::start_transaction(tx_request req) {
  if (!valid_order_no(req.order_no)) {
    send_error(req.request_id, pos::codes::bad_field, "order_no must be 1..32 printable characters");
    return;
  }
  if (req.kind != "balance_inquiry" && !eftd::find_currency(req.currency)) {
    send_error(req.request_id, pos::codes::invalid_currency,
               "unknown ISO 4217 currency '" + req.currency + "'", req.order_no);
    return;
  }
  if (!req.business_date.empty() && !valid_date(req.business_date)) {
    send_error(req.request_id, pos::codes::bad_field, "business_date must be YYYY-MM-DD", req.order_no);
    return;
  }
  // The same order number with other data is a POS bug, never a second payment.
  if (auto prior = ctx_.find_order_view(till_id_, req.order_no, req.business_date)) {
    const auto& o = prior->order;
    if (o.kind != req.kind || o.amount_minor != req.amount ||
        (req.kind != "balance_inquiry" && o.currency != req.currency)) {
      send_error(
          req.request_id, pos::codes::duplicate_order,
          "order " + req.order_no + " already exists on this till with another type, amount or currency",
          req.order_no);
      return;
    }
  }
  if (!claim_till(req.request_id, req.order_no)) return;
  running_ = true;
  running_order_ = req.order_no;
  tx_ = std::make_shared<tx_control>(ex_, prompts_);
  req.till_id = till_id_;
  req.operator_id = operator_id_;
  req.control = tx_;
  auto self = shared_from_this();
  asio::co_spawn(
      ex_,
      [self, till = till_id_, req = std::move(req)]() mutable -> asio::awaitable<void> {
        // A named sink, not a temporary inside the co_await (GCC 12 coroutine temporaries bug).
        std::function<void(pos::message)> sink = [self](pos::message msg) { self->send(std::move(msg)); };
        const auto started = std::chrono::steady_clock::now();
        const std::string kind = req.kind;
        auto res = co_await run_card_transaction(self->ctx_, std::move(req), sink);
        self->count(kind, res.outcome, started);
        self->release_till(till);
        self->send(std::move(res));
      },
      [self, till = till_id_](std::exception_ptr e) {
        if (!e) return;
        spdlog::error("till {}: transaction flow ended by an exception", till);
        asio::dispatch(self->ex_, [self, till] { self->release_till(till); });
      });
}

void pos_session::on_cancel(const pos::cancel& m) {
  if (!valid_order_no(m.order_no)) {
    send_error(m.id, pos::codes::bad_field, "order_no must be 1..32 printable characters");
    return;
  }
  if (!m.business_date.empty() && !valid_date(m.business_date)) {
    send_error(m.id, pos::codes::bad_field, "business_date must be YYYY-MM-DD", m.order_no);
    return;
  }
  // "Cancel order X" while X runs on this till is an abort: the result of X says how it ended.
  if (running_ && running_order_ == m.order_no && tx_) {
    on_abort(pos::abort_tx{m.id, m.order_no});
    return;
  }
  if (!claim_till(m.id, m.order_no)) return;
  running_ = true;
  running_order_.clear();  // an abort cannot stop a reversal
  auto self = shared_from_this();
  asio::co_spawn(
      ex_,
      [self, m, held = till_id_]() mutable -> asio::awaitable<void> {
        std::string id = m.id;
        std::string till = held;
        const auto started = std::chrono::steady_clock::now();
        auto res = co_await run_cancel(self->ctx_, std::move(id), std::move(till), std::move(m));
        self->count("cancel", res.outcome, started);
        self->release_till(held);
        self->send(std::move(res));
      },
      [self, till = till_id_](std::exception_ptr e) {
        if (!e) return;
        spdlog::error("till {}: cancel flow ended by an exception", till);
        asio::dispatch(self->ex_, [self, till] { self->release_till(till); });
      });
}

void pos_session::on_abort(const pos::abort_tx& m) {
  if (!running_ || !tx_ || running_order_ != m.order_no) {
    send_error(m.id, pos::codes::unknown_order,
               "no transaction for order " + m.order_no + " is running on this till", m.order_no);
    return;
  }
  spdlog::info("till {}: order {} aborted by the cashier", till_id_, m.order_no);
  tx_->request_abort();
  pos::status ack;
  ack.id = m.id;
  ack.order_no = m.order_no;
  ack.stage = "aborting";
  ack.text = "Aborting; the result follows";
  send(std::move(ack));
}

void pos_session::on_answer(const pos::answer& m) {
  if (!tx_) {
    send_error(m.id, pos::codes::unknown_prompt, "no transaction is waiting for an answer");
    return;
  }
  if (auto st = tx_->answer(m.prompt_id, m.value); !st) send_error(m.id, st.err().code, st.err().message);
}

void pos_session::on_totals(const pos::totals& m) {
  if (!m.business_date.empty() && !valid_date(m.business_date)) {
    send_error(m.id, pos::codes::bad_field, "business_date must be YYYY-MM-DD");
    return;
  }
  auto rep = till_totals(ctx_, till_id_,
                         m.business_date.empty() ? business_date_of(ctx_.clock.now_ms()) : m.business_date);
  rep.id = m.id;
  send(std::move(rep));
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
  auto limits = std::make_shared<connection_limits>(ctx.cfg().pos.max_connections, ctx.cfg().pos.max_per_address);
  // A refused POS hears why (one line, best effort on a fresh socket: it fits any buffer).
  std::function<void(asio::ip::tcp::socket&)> refuse =
      [tls = static_cast<bool>(ctx.pos_tls), &ctx](asio::ip::tcp::socket& s) {
        if (tls) return;  // no TLS session to say it in
        pos::error e;
        e.code = std::string(pos::codes::too_many_connections);
        e.message = "connection limit reached; try again later";
        auto line = pos::encode(e, ctx.ha ? ctx.ha->epoch() : 0);
        boost::system::error_code ec;
        s.non_blocking(true, ec);
        s.write_some(asio::buffer(line), ec);
      };
  return accept_loop<pos_session>(acceptor, ctx, "pos", std::move(limits), std::move(refuse));
}

}  // namespace eftd::server
