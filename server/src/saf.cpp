#include "saf.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "eftd/core/money.hpp"
#include "eftd/journal/card_data.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Answers after which a reversal is worth repeating: the acquirer (or the issuer behind it)
// could not process it now. Format errors park it; any other answer acknowledges it ("25",
// original not found, included: there is nothing left to reverse).
bool retryable(std::string_view rc) {
  return rc == "91" || rc == "96" || rc == "68" || rc == "06";
}
bool is_advice(const journal::acquirer_message_row& m) {
  return m.mti.size() == 4 && m.mti[2] == '2';
}
bool format_refused(std::string_view rc) {
  return rc == "30";
}

// 1 s, 2 s, 4 s ... capped at 60 s: a dead acquirer is not hammered, a live one recovers fast.
std::int64_t backoff_ms(std::int64_t attempts) {
  const std::int64_t shift = std::min<std::int64_t>(attempts, 6);
  return std::min<std::int64_t>(1000LL << shift, 60'000);
}

journal::event_appended event_of(const std::string& order_id, const std::string& op_id, std::int64_t at,
                                 journal::actor who, std::string kind, std::string reason) {
  journal::event_appended e;
  e.order_id = order_id;
  if (!op_id.empty()) e.op_id = op_id;
  e.at_ms = at;
  e.actor = who;
  e.kind = std::move(kind);
  e.reason = std::move(reason);
  return e;
}

}  // namespace

class reversal_queue : public std::enable_shared_from_this<reversal_queue> {
 public:
  reversal_queue(server_context& ctx, std::string acquirer)
      : ctx_(ctx), acquirer_(std::move(acquirer)), ex_(asio::make_strand(ctx.io)), timer_(ex_) {}

  void start() {
    asio::co_spawn(ex_, run(), [self = shared_from_this()](std::exception_ptr e) {
      if (e) spdlog::error("reversal queue {}: stopped by an exception", self->acquirer_);
    });
  }
  void notify() {
    asio::dispatch(ex_, [self = shared_from_this()] {
      self->dirty_ = true;
      self->timer_.cancel();
    });
  }
  asio::any_io_executor executor() const { return ex_; }

  // On the queue's strand: registers the waiter before waking the loop, so the attempt cannot
  // slip past unseen.
  asio::awaitable<void> attempt_and_wait(std::string msg_id, std::chrono::milliseconds deadline) {
    auto w = std::make_shared<asio::steady_timer>(ex_);
    w->expires_after(deadline);
    waiters_.emplace(msg_id, w);
    dirty_ = true;
    timer_.cancel();
    co_await w->async_wait(asio::as_tuple(asio::use_awaitable));
    auto [lo, hi] = waiters_.equal_range(msg_id);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == w) {
        waiters_.erase(it);
        break;
      }
    }
  }

  void stop() {
    asio::dispatch(ex_, [self = shared_from_this()] {
      self->stopped_ = true;
      self->timer_.cancel();
    });
  }

 private:
  asio::awaitable<void> run() {
    while (!stopped_) {
      dirty_ = false;
      std::vector<journal::acquirer_message_row> rows;
      {
        std::lock_guard lk(ctx_.reader_mu);
        auto r = ctx_.reader->queued_messages(acquirer_);
        if (r)
          rows = std::move(*r);
        else
          spdlog::error("reversal queue {}: cannot read the queue: {}", acquirer_, r.err().message);
      }
      const auto now = ctx_.clock.now_ms();
      std::int64_t next = now + 60'000;
      bool sent = false;
      bool journal_trouble = false;
      for (const auto& row : rows) {
        if (stopped_) co_return;
        const auto due = row.next_attempt_ms.value_or(row.created_ms);
        if (due > ctx_.clock.now_ms()) {
          next = std::min(next, due);
          continue;
        }
        if (!co_await attempt(row)) journal_trouble = true;
        sent = true;
        auto [lo, hi] = waiters_.equal_range(row.msg_id);
        for (auto it = lo; it != hi; ++it) it->second->cancel();
      }
      // A journal that cannot record attempts would make the same reversal due again at once:
      // pause instead of hammering the acquirer.
      if (journal_trouble)
        next = now + 1000;
      else if (sent || dirty_)
        continue;  // what was sent may be due again soon; new work may wait
      timer_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, next - now)));
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  // One send of a queued reversal and its journaling; false when the journal refused the record.
  asio::awaitable<bool> attempt(const journal::acquirer_message_row& rev) {
    if (rev.mti.size() == 4 && rev.mti[2] == '2') co_return co_await attempt_advice(rev);
    const auto now = ctx_.clock.now_ms();
    std::optional<journal::acquirer_message_row> original;
    std::optional<journal::operation_row> op;
    {
      std::lock_guard lk(ctx_.reader_mu);
      if (rev.original_msg_id) {
        auto m = ctx_.reader->message(*rev.original_msg_id);
        if (m && *m) original = std::move(**m);
      }
      if (original) {
        auto o = ctx_.reader->operation(original->op_id);
        if (o && *o) op = std::move(**o);
      }
    }
    if (!original || !op) {
      co_return co_await conclude(rev, std::nullopt, "", journal::message_states::parked,
                                  "the original request of this reversal is not in the journal");
    }
    if (now - rev.created_ms > static_cast<std::int64_t>(expiry_ms())) {
      co_return co_await conclude(
          rev, original, op->order_id, journal::message_states::expired,
          fmt::format("not acknowledged after {} attempts within the expiry", rev.attempts));
    }
    auto areq = request_from_message(ctx_, *original, op->kind);
    const std::string mti = rev.attempts == 0 ? "0400" : "0401";
    auto ans = co_await send_reversal(ctx_, areq, rev.stan, mti, rev.created_ms);
    if (ans && !retryable(ans->response_code)) {
      if (format_refused(ans->response_code))
        co_return co_await conclude(rev, original, op->order_id, journal::message_states::parked,
                                    "the acquirer refused the reversal's format (response 30)");
      co_return co_await acknowledge(rev, *original, op->order_id, ans->response_code);
    }
    if (!ans && (ans.err().code == "acq.encode_error" || ans.err().code == "acq.bad_request")) {
      co_return co_await conclude(rev, original, op->order_id, journal::message_states::parked,
                                  ans.err().message);
    }
    // Not acknowledged: try again later.
    const std::string why = ans ? "response " + ans->response_code : ans.err().code;
    journal::batch b;
    journal::acquirer_message_updated mu;
    mu.msg_id = rev.msg_id;
    mu.attempts = rev.attempts + 1;
    mu.next_attempt_ms = ctx_.clock.now_ms() + backoff_ms(rev.attempts);
    mu.last_error = why;
    mu.updated_ms = ctx_.clock.now_ms();
    b.records.push_back(mu);
    auto st = co_await commit(ctx_, std::move(b));
    if (!st) spdlog::error("reversal queue {}: attempt not journaled: {}", acquirer_, st.err().message);
    spdlog::warn("reversal {} (STAN {:06}) on {}: attempt {} failed ({}); next in {} ms", mti, rev.stan,
                 rev.terminal_id, rev.attempts + 1, why, backoff_ms(rev.attempts));
    co_return static_cast<bool>(st);
  }

  // One send of a queued advice (0120/0220: a completion owed to the acquirer, naming its
  // original authorisation in field 90; or an offline approval, carrying the card). Repeats are
  // 0121/0221 with the STAN and time of the first. Acknowledged (00): the message becomes 'answered', like
  // any answered request, so cancels and settlement see it. Refused for good (any other code but a retryable
  // one): parked for people, since the customer was told "approved" and the acquirer will not settle it.
  asio::awaitable<bool> attempt_advice(const journal::acquirer_message_row& adv) {
    const auto now = ctx_.clock.now_ms();
    std::optional<journal::acquirer_message_row> original;
    std::optional<journal::operation_row> op;
    {
      std::lock_guard lk(ctx_.reader_mu);
      if (adv.original_msg_id) {
        auto m = ctx_.reader->message(*adv.original_msg_id);
        if (m && *m) original = std::move(**m);
      }
      auto o = ctx_.reader->operation(adv.op_id);
      if (o && *o) op = std::move(**o);
    }
    const std::string order_id = op ? op->order_id : "";
    // Without an original it is the advice of an offline approval, which carries the card.
    const bool offline = !adv.original_msg_id;
    if ((!offline && !original) || !op)
      co_return co_await conclude(adv, original, order_id, journal::message_states::parked,
                                  "the authorisation this advice completes is not in the journal");
    if (now - adv.created_ms > static_cast<std::int64_t>(expiry_ms()))
      co_return co_await conclude(
          adv, original, order_id, journal::message_states::expired,
          fmt::format("advice not acknowledged after {} attempts within the expiry", adv.attempts));
    auto areq = request_from_message(ctx_, adv, op->kind);
    areq.mti = adv.mti.substr(0, 3) + (adv.attempts == 0 ? "0" : "1");
    result<acquirer_answer> ans = make_error("acq.bad_request", "advice not sent");
    if (offline) {
      auto card = offline_card(adv, *op, areq);
      if (!card)
        co_return co_await conclude(
            adv, original, order_id, journal::message_states::parked,
            "the card data of this offline approval cannot be opened (" + card.err().code + ")");
      auto sent = co_await send_offline_advice(ctx_, areq, card->first, card->second);
      ans = std::move(sent);
    } else {
      areq.pos_entry_mode = "010";
      areq.original = acquirer_request::original_ref{original->mti, original->stan, original->created_ms,
                                                     original->auth_code.value_or("")};
      auto sent = co_await send_follow_up(ctx_, areq);
      ans = std::move(sent);
    }
    if (ans && ans->response_code == "00") {
      journal::batch b;
      journal::acquirer_message_updated r;
      r.msg_id = adv.msg_id;
      r.state = std::string(journal::message_states::answered);
      r.response_code = ans->response_code;
      if (offline) r.auth_code = "Y1";  // the card's approval, for settlement and receipts
      r.attempts = adv.attempts + 1;
      r.updated_ms = now;
      b.records.push_back(r);
      journal::operation_updated opu;
      opu.op_id = adv.op_id;
      opu.expect_state = "advice_pending";
      opu.state = "approved";
      opu.updated_ms = now;
      b.records.push_back(opu);
      b.records.push_back(event_of(order_id, adv.op_id, now, journal::actor::acquirer, "advice_acknowledged",
                                   fmt::format("{} STAN {:06} acknowledged by {} after {} attempt(s)",
                                               areq.mti, adv.stan, acquirer_, adv.attempts + 1)));
      auto st = co_await commit(ctx_, std::move(b));
      if (!st && st.err().code == "journal.state_conflict") {
        // The operation moved on meanwhile (a cancel): record the acknowledgement alone.
        journal::batch only;
        only.records.push_back(r);
        st = co_await commit(ctx_, std::move(only));
      }
      if (!st)
        spdlog::error("advice queue {}: acknowledgement not journaled: {}", acquirer_, st.err().message);
      co_return static_cast<bool>(st);
    }
    if (ans && !retryable(ans->response_code))
      co_return co_await conclude(
          adv, original, order_id, journal::message_states::parked,
          fmt::format("the acquirer refused the advice (response {})", ans->response_code));
    if (!ans && (ans.err().code == "acq.encode_error" || ans.err().code == "acq.bad_request"))
      co_return co_await conclude(adv, original, order_id, journal::message_states::parked,
                                  ans.err().message);
    const std::string why = ans ? "response " + ans->response_code : ans.err().code;
    journal::batch b;
    journal::acquirer_message_updated mu;
    mu.msg_id = adv.msg_id;
    mu.attempts = adv.attempts + 1;
    mu.next_attempt_ms = ctx_.clock.now_ms() + backoff_ms(adv.attempts);
    mu.last_error = why;
    mu.updated_ms = ctx_.clock.now_ms();
    b.records.push_back(mu);
    auto st = co_await commit(ctx_, std::move(b));
    if (!st) spdlog::error("advice queue {}: attempt not journaled: {}", acquirer_, st.err().message);
    spdlog::warn("advice {} (STAN {:06}) on {}: attempt {} failed ({}); next in {} ms", areq.mti, adv.stan,
                 adv.terminal_id, adv.attempts + 1, why, backoff_ms(adv.attempts));
    co_return static_cast<bool>(st);
  }

  // The card of an offline approval's advice: the operation's sealed PAN and the message's
  // sealed expiry and sequence number, opened with the journal keys; field 55 and the entry
  // mode go into `areq`. Errors name the failing part, never a value.
  result<std::pair<eftd::pan, std::string>> offline_card(const journal::acquirer_message_row& adv,
                                                         const journal::operation_row& op,
                                                         acquirer_request& areq) {
    result<std::optional<journal::stored_pan>> stored = std::optional<journal::stored_pan>{};
    result<journal::reader::advice_payload> payload = journal::reader::advice_payload{};
    {
      std::lock_guard lk(ctx_.reader_mu);
      stored = ctx_.reader->operation_pan(adv.op_id);
      payload = ctx_.reader->message_advice_payload(adv.msg_id);
    }
    if (!stored) return stored.err();
    if (!payload) return payload.err();
    if (!*stored || payload->card_ciphertext.empty())
      return make_error("saf.no_card_data", "the offline approval has no sealed card data");
    auto card_pan = journal::open_pan(ctx_.keys, **stored);
    if (!card_pan) return card_pan.err();
    auto card = journal::open_advice_card(ctx_.keys, payload->card_ciphertext);
    if (!card) return card.err();
    areq.icc_data = std::move(payload->icc_data);
    areq.card_sequence = card->card_sequence;
    areq.pos_entry_mode = op.entry_mode.value_or("") == "contactless" ? "071" : "051";
    return std::pair<eftd::pan, std::string>{std::move(*card_pan), card->expiry_yymm};
  }

  asio::awaitable<bool> acknowledge(const journal::acquirer_message_row& rev,
                                    const journal::acquirer_message_row& original,
                                    const std::string& order_id, const std::string& rc) {
    const auto now = ctx_.clock.now_ms();
    journal::batch b;
    journal::acquirer_message_updated r;
    r.msg_id = rev.msg_id;
    r.state = std::string(journal::message_states::acknowledged);
    r.response_code = rc;
    r.attempts = rev.attempts + 1;
    r.updated_ms = now;
    b.records.push_back(r);
    journal::acquirer_message_updated o;
    o.msg_id = original.msg_id;
    o.state = std::string(journal::message_states::reversed);
    o.updated_ms = now;
    b.records.push_back(o);
    journal::order_updated ou;
    ou.order_id = order_id;
    ou.state = "reversed";
    ou.approved_amount_minor = 0;
    ou.updated_ms = now;
    b.records.push_back(ou);
    if (rev.op_id != original.op_id) {  // a cancel's own operation is done
      journal::operation_updated opu;
      opu.op_id = rev.op_id;
      opu.state = "done";
      opu.updated_ms = now;
      b.records.push_back(opu);
    }
    b.records.push_back(event_of(order_id, rev.op_id, now, journal::actor::acquirer, "reversed",
                                 fmt::format("reversal STAN {:06} acknowledged by {} (response {}) after {} "
                                             "attempt(s)",
                                             rev.stan, acquirer_, rc, rev.attempts + 1)));
    auto st = co_await commit(ctx_, std::move(b));
    if (!st) {
      spdlog::error("reversal queue {}: acknowledgement not journaled: {}", acquirer_, st.err().message);
      co_return false;
    }
    spdlog::info("reversal STAN {:06} on {} acknowledged ({})", rev.stan, rev.terminal_id, rc);
    co_return true;
  }

  // Ends a reversal as parked or expired: out of the queue, kept and explained for people.
  asio::awaitable<bool> conclude(const journal::acquirer_message_row& rev,
                                 const std::optional<journal::acquirer_message_row>& original,
                                 const std::string& order_id, std::string_view state, std::string why) {
    const auto now = ctx_.clock.now_ms();
    journal::batch b;
    journal::acquirer_message_updated r;
    r.msg_id = rev.msg_id;
    r.state = std::string(state);
    r.last_error = why;
    r.updated_ms = now;
    b.records.push_back(r);
    if (!order_id.empty())
      b.records.push_back(
          event_of(order_id, rev.op_id, now, journal::actor::server,
                   std::string(is_advice(rev) ? "advice_" : "reversal_") + std::string(state),
                   fmt::format("{} STAN {:06} to {} {}: {}; needs manual handling",
                               is_advice(rev) ? "advice" : "reversal", rev.stan, acquirer_, state, why)));
    auto st = co_await commit(ctx_, std::move(b));
    if (!st) spdlog::error("reversal queue {}: {} not journaled: {}", acquirer_, state, st.err().message);
    spdlog::error("{} STAN {:06} on {} {}: {} (original {}); needs manual handling",
                  is_advice(rev) ? "advice" : "reversal", rev.stan, rev.terminal_id, state, why,
                  original ? original->msg_id : std::string("missing"));
    co_return static_cast<bool>(st);
  }

  std::uint32_t expiry_ms() const {
    const auto* a = ctx_.cfg().find_acquirer(acquirer_);
    return a ? a->reversal_expiry_ms : 86'400'000u;
  }

  server_context& ctx_;
  std::string acquirer_;
  asio::any_io_executor ex_;
  asio::steady_timer timer_;
  bool dirty_ = false;
  bool stopped_ = false;
  std::multimap<std::string, std::shared_ptr<asio::steady_timer>> waiters_;
};

acquirer_request request_from_message(const server_context& ctx, const journal::acquirer_message_row& m,
                                      std::string_view op_kind) {
  acquirer_request a;
  a.acquirer = m.acquirer;
  a.terminal_id = m.terminal_id;
  a.mti = m.mti;
  a.processing_code = op_kind == journal::operation_kinds::refund ? "200000" : "000000";
  a.stan = m.stan;
  a.at_ms = m.created_ms;
  a.rrn = m.rrn.value_or("");
  a.amount_minor = m.amount_minor;
  const auto* c = eftd::find_currency(m.currency);
  a.currency_numeric = c ? c->numeric : 0;
  for (const auto& t : ctx.cfg().tills) {
    if (t.terminal_id != m.terminal_id) continue;
    if (const auto* mer = ctx.cfg().merchant_of(t)) a.card_acceptor_id = mer->acquirer_merchant_id;
    break;
  }
  return a;
}

std::string queue_reversal(server_context& ctx, journal::batch& b, const acquirer_request& original,
                           const std::string& original_msg_id, const std::string& op_id,
                           const std::string& currency, std::int64_t now_ms, std::int64_t first_attempt_ms) {
  std::string counter;
  const auto stan = ctx.next_stan(original.acquirer, original.terminal_id, counter);
  b.records.push_back(journal::counter_set{counter, stan});
  journal::acquirer_message_written w;
  w.msg_id = journal::new_id();
  w.op_id = op_id;
  w.original_msg_id = original_msg_id;
  w.acquirer = original.acquirer;
  w.terminal_id = original.terminal_id;
  w.mti = "0400";
  w.stan = stan;
  w.local_datetime = local_datetime_of(now_ms);
  if (!original.rrn.empty()) w.rrn = original.rrn;
  w.amount_minor = original.amount_minor;
  w.currency = currency;
  w.state = std::string(journal::message_states::pending);
  w.created_ms = now_ms;
  w.next_attempt_ms = first_attempt_ms;
  b.records.push_back(w);
  return w.msg_id;
}

void notify_reversals(server_context& ctx, const std::string& acquirer) {
  auto it = ctx.reversal_queues.find(acquirer);
  if (it != ctx.reversal_queues.end()) it->second->notify();
}

asio::awaitable<void> send_reversal_now(server_context& ctx, const std::string& acquirer,
                                        const std::string& msg_id, std::chrono::milliseconds deadline) {
  auto it = ctx.reversal_queues.find(acquirer);
  if (it == ctx.reversal_queues.end()) co_return;
  auto q = it->second;
  asio::any_io_executor ex = q->executor();  // named: see run_card_transaction (GCC 12)
  co_await asio::co_spawn(ex, q->attempt_and_wait(msg_id, deadline), asio::use_awaitable);
}

void start_reversal_queues(server_context& ctx) {
  for (const auto& a : ctx.cfg().acquirers) {
    auto q = std::make_shared<reversal_queue>(ctx, a.name);
    ctx.reversal_queues[a.name] = q;
    q->start();
  }
}

void stop_reversal_queues(server_context& ctx) {
  for (auto& [name, q] : ctx.reversal_queues) q->stop();
}

}  // namespace eftd::server
