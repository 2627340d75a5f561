#include "engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "acquirer_gateway.hpp"
#include "eftd/core/card.hpp"
#include "eftd/core/money.hpp"
#include "eftd/journal/card_data.hpp"
#include "eftd/pad/messages.hpp"
#include "pad_session.hpp"
#include "reasons.hpp"
#include "receipt.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Order states (journal column orders.state). Final: approved, declined, failed, cancelled,
// reversed. in_progress covers everything before the answer is recorded.
namespace order_state {
constexpr std::string_view in_progress = "in_progress";
constexpr std::string_view approved = "approved";
constexpr std::string_view declined = "declined";
constexpr std::string_view failed = "failed";
constexpr std::string_view cancelled = "cancelled";
constexpr std::string_view reversed = "reversed";
}  // namespace order_state

std::string business_date_of(std::int64_t now_ms) {
  std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

std::string status_word(std::string_view s) {
  if (s == order_state::approved || s == order_state::declined || s == order_state::failed ||
      s == order_state::cancelled || s == order_state::reversed)
    return std::string(s);
  return "in_progress";
}

namespace {

// Everything a final result is made of. Filled live by the flow or from journal rows, so a
// repeated request or a status query returns exactly what the POS was (or would have been) told.
struct tx_summary {
  std::string order_no, business_date, till_id, terminal_id, currency;
  std::int64_t amount = 0, approved_amount = 0, at_ms = 0;
  std::string masked_pan, scheme, entry_mode, auth_code, stan, rrn, response_code;
  motivated why;
};

pos::result make_result(const server_context& ctx, const tx_summary& s, const std::string& request_id) {
  pos::result r;
  r.id = request_id;
  r.order_no = s.order_no;
  r.business_date = s.business_date;
  r.outcome = s.why.outcome;
  r.currency = s.currency;
  r.amount = s.amount;
  r.approved_amount = s.approved_amount;
  r.auth_code = s.auth_code;
  r.masked_pan = s.masked_pan;
  r.scheme = s.scheme;
  r.entry_mode = s.entry_mode;
  r.terminal_id = s.terminal_id;
  r.stan = s.stan;
  r.rrn = s.rrn;
  if (s.why.outcome != "approved") r.why = s.why.why;
  receipt_input in;
  in.merchant = nullptr;
  if (const auto* t = ctx.cfg.find_till(s.till_id)) {
    if (const auto* st = ctx.cfg.find_store(t->store)) {
      in.store = st;
      in.merchant = ctx.cfg.find_merchant(st->merchant);
    }
  }
  in.till_id = s.till_id;
  in.terminal_id = s.terminal_id;
  in.order_no = s.order_no;
  in.kind = "SALE";
  in.at_ms = s.at_ms;
  in.amount_minor = s.approved_amount > 0 ? s.approved_amount : s.amount;
  in.currency = s.currency;
  in.masked_pan = s.masked_pan;
  in.scheme = s.scheme;
  in.entry_mode = s.entry_mode;
  in.auth_code = s.auth_code;
  in.stan = s.stan;
  in.rrn = s.rrn;
  in.response_code = s.response_code;
  in.outcome = s.why.outcome;
  in.reason_text = s.why.why.customer_text;
  r.rcpt = build_receipt(in);
  return r;
}

std::string entry_mode_name(pad::entry_mode m) {
  switch (m) {
    case pad::entry_mode::magstripe:
      return "magstripe";
    case pad::entry_mode::chip:
      return "chip";
    case pad::entry_mode::contactless:
      return "contactless";
    case pad::entry_mode::fallback_magstripe:
      return "fallback";
  }
  return "unknown";
}

// ISO 8583 field 22 (1987): PAN entry mode (2 digits) + PIN entry capability (1 digit).
std::string pos_entry_mode_code(pad::entry_mode m) {
  switch (m) {
    case pad::entry_mode::magstripe:
      return "902";
    case pad::entry_mode::chip:
      return "051";
    case pad::entry_mode::contactless:
      return "071";
    case pad::entry_mode::fallback_magstripe:
      return "802";
  }
  return "000";
}

bool expired(const std::string& yymm, std::int64_t now_ms) {
  if (yymm.size() != 4) return true;
  std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  int yy = (yymm[0] - '0') * 10 + (yymm[1] - '0');
  int mm = (yymm[2] - '0') * 10 + (yymm[3] - '0');
  int year = 2000 + yy;
  int now_year = tm.tm_year + 1900;
  int now_month = tm.tm_mon + 1;
  // A card is valid through the last day of its expiry month.
  return year < now_year || (year == now_year && mm < now_month);
}

bool contains(const std::optional<std::vector<std::string>>& list, std::string_view v) {
  if (!list) return true;
  return std::find(list->begin(), list->end(), v) != list->end();
}

journal::event_appended event(const std::string& order_id, const std::string& op_id, std::int64_t at,
                              journal::actor who, std::string kind, std::string reason,
                              std::string detail = {}) {
  journal::event_appended e;
  e.order_id = order_id;
  if (!op_id.empty()) e.op_id = op_id;
  e.at_ms = at;
  e.actor = who;
  e.kind = std::move(kind);
  e.reason = std::move(reason);
  e.detail = std::move(detail);
  return e;
}

// Sends the POS a status line and keeps repeating it as a heartbeat while the flow waits,
// so the POS can tell "still working" from "connection lost" (PROTOCOL.md, timeouts).
class status_beacon {
 public:
  status_beacon(asio::any_io_executor ex, std::function<void(pos::message)> to_pos, std::string order_no,
                std::chrono::milliseconds every)
      : state_(std::make_shared<state>(std::move(to_pos), std::move(order_no))), timer_(ex), every_(every) {
    arm();
  }
  ~status_beacon() {
    state_->stopped = true;
    timer_.cancel();
  }
  void say(std::string stage, std::string text) {
    state_->stage = std::move(stage);
    state_->text = std::move(text);
    state_->emit();
  }

 private:
  struct state {
    state(std::function<void(pos::message)> f, std::string o)
        : to_pos(std::move(f)), order_no(std::move(o)) {}
    std::function<void(pos::message)> to_pos;
    std::string order_no, stage, text;
    bool stopped = false;
    void emit() {
      pos::status s;
      s.order_no = order_no;
      s.stage = stage;
      s.text = text;
      to_pos(std::move(s));
    }
  };
  void arm() {
    timer_.expires_after(every_);
    timer_.async_wait([st = state_, this](boost::system::error_code ec) {
      if (ec || st->stopped) return;
      if (!st->text.empty()) st->emit();
      arm();
    });
  }
  std::shared_ptr<state> state_;
  asio::steady_timer timer_;
  std::chrono::milliseconds every_;
};

// Reverses one acquirer request until the acquirer acknowledges it, journaling the outcome.
// A reversal is owed money-wise, so it is retried with capped backoff; it survives restarts
// because the message stays in state reversal_pending until acknowledged (start_recovery).
// `conclusion`, when set, is the order's final reason recorded with the reversal (start-up
// recovery: the POS was never told anything, so the order gets its reason now).
asio::awaitable<void> reverse_until_acknowledged(server_context& ctx, acquirer_request original,
                                                 std::string msg_id, std::string order_id, std::string op_id,
                                                 std::optional<motivated> conclusion) {
  auto delay = 1s;
  for (int attempt = 1; attempt <= 12; ++attempt) {
    std::string counter;
    auto stan = ctx.next_stan(original.acquirer, original.terminal_id, counter);
    auto ans = co_await send_reversal(ctx, original, stan);
    auto now = ctx.clock.now_ms();
    if (ans) {
      journal::batch b;
      b.records.push_back(journal::counter_set{counter, stan});
      journal::acquirer_message_updated mu;
      mu.msg_id = msg_id;
      mu.state = std::string(journal::message_states::reversed);
      mu.updated_ms = now;
      b.records.push_back(mu);
      journal::order_updated ou;
      ou.order_id = order_id;
      ou.state = std::string(order_state::reversed);
      if (conclusion) {
        ou.result_code = conclusion->why.code;
        ou.reason_cashier = conclusion->why.cashier_text;
        ou.reason_customer = conclusion->why.customer_text;
      }
      ou.updated_ms = now;
      b.records.push_back(ou);
      b.records.push_back(event(
          order_id, op_id, now, journal::actor::acquirer, "reversed",
          fmt::format("reversal acknowledged by {} (response {})", original.acquirer, ans->response_code)));
      if (auto st = co_await commit(ctx, std::move(b)); !st)
        spdlog::error("reversal of {} acknowledged but not journaled: {}", msg_id, st.err().message);
      spdlog::info("reversal of STAN {} on {} acknowledged", original.stan, original.terminal_id);
      co_return;
    }
    spdlog::warn("reversal of STAN {} on {} failed (attempt {}): {}", original.stan, original.terminal_id,
                 attempt, ans.err().code);
    auto ex = co_await asio::this_coro::executor;  // own statement: see run_sale
    asio::steady_timer t(ex);
    t.expires_after(delay);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    delay = std::min<std::chrono::seconds>(delay * 2, 60s);
  }
  // Still pending in the journal: the next start-up (or the store-and-forward queue of the
  // acquirer issue) picks it up again.
  spdlog::error("reversal of {} still not acknowledged; it stays pending in the journal", msg_id);
}

void spawn_reversal(server_context& ctx, acquirer_request original, std::string msg_id, std::string order_id,
                    std::string op_id, std::optional<motivated> conclusion = std::nullopt) {
  asio::co_spawn(asio::make_strand(ctx.io),
                 reverse_until_acknowledged(ctx, std::move(original), std::move(msg_id), std::move(order_id),
                                            std::move(op_id), std::move(conclusion)),
                 [](std::exception_ptr e) {
                   if (e) spdlog::error("reversal task ended by an exception");
                 });
}

}  // namespace

pos::result result_from_journal(const server_context& ctx, const journal::order_view& v) {
  tx_summary s;
  s.order_no = v.order.order_no;
  s.business_date = v.order.business_date;
  s.till_id = v.order.till_id;
  s.currency = v.order.currency;
  s.amount = v.order.amount_minor;
  s.approved_amount = v.order.approved_amount_minor.value_or(0);
  s.at_ms = v.order.created_ms;
  if (const auto* t = ctx.cfg.find_till(v.order.till_id)) s.terminal_id = t->terminal_id;
  for (const auto& op : v.operations) {
    if (op.kind != journal::operation_kinds::payment) continue;
    s.masked_pan = op.pan_masked.value_or("");
    s.scheme = op.scheme.value_or("");
    s.entry_mode = op.entry_mode.value_or("");
    s.auth_code = op.auth_code.value_or("");
    s.response_code = op.response_code.value_or("");
  }
  for (const auto& m : v.messages) {
    if (m.mti != "0200") continue;
    s.stan = fmt::format("{:06}", m.stan);
    s.rrn = m.rrn.value_or("");
    s.terminal_id = m.terminal_id;
  }
  auto code =
      v.order.result_code.value_or(v.order.state == order_state::approved ? "approved" : "server.internal");
  s.why = motivate(code, s.order_no);
  // The stored texts are what the POS was told; prefer them over today's wording.
  if (v.order.reason_cashier) s.why.why.cashier_text = *v.order.reason_cashier;
  if (v.order.reason_customer) s.why.why.customer_text = *v.order.reason_customer;
  s.why.outcome = v.order.state == order_state::reversed ? "failed" : status_word(v.order.state);
  if (v.order.state == order_state::in_progress) s.why.outcome = "failed";
  return make_result(ctx, s, "");
}

asio::awaitable<pos::result> run_sale(server_context& ctx, sale_request req,
                                      std::function<void(pos::message)> to_pos) {
  const auto& sale = req.sale;
  const auto now0 = ctx.clock.now_ms();
  const config::till* till = ctx.cfg.find_till(req.till_id);
  const config::store* store = till ? ctx.cfg.find_store(till->store) : nullptr;
  const config::merchant* merchant = store ? ctx.cfg.find_merchant(store->merchant) : nullptr;

  tx_summary s;
  s.order_no = sale.order_no;
  s.till_id = req.till_id;
  s.terminal_id = till ? till->terminal_id : "";
  s.currency = sale.currency;
  s.amount = sale.amount;
  s.at_ms = now0;
  s.business_date = business_date_of(now0);

  auto finish_without_journal = [&](std::string_view code, std::string detail = {}) {
    s.why = motivate(code, s.order_no, detail);
    return make_result(ctx, s, req.request_id);
  };
  if (!till || !store || !merchant)
    co_return finish_without_journal("server.internal", "till configuration incomplete");

  // Idempotency: the same order on the same till within 48 hours is the same order. A final
  // one is answered from the journal and never reaches the acquirer twice.
  {
    auto prior = ctx.find_order_view(req.till_id, sale.order_no, "");
    if (prior) {
      spdlog::info("till {}: order {} repeated; answering from the journal (state {})", req.till_id,
                   sale.order_no, prior->order.state);
      auto r = result_from_journal(ctx, *prior);
      r.id = req.request_id;
      co_return r;
    }
  }

  const std::string order_id = journal::new_id();
  const std::string op_id = journal::new_id();
  auto money_text = [&] {
    auto m = eftd::money::of(sale.amount, sale.currency);
    return m ? m->format() : std::to_string(sale.amount) + " " + sale.currency;
  }();

  // System restrictions that need no card: checked before the pad is engaged.
  const auto lim = ctx.cfg.effective_limits(*till);
  std::string limit_code, limit_detail;
  if (!contains(lim.allowed_types, "sale")) {
    limit_code = "limit.type_not_allowed";
    limit_detail = "sale";
  } else if (lim.max_amount && sale.amount > *lim.max_amount) {
    limit_code = "limit.amount_above_maximum";
    auto m = eftd::money::of(*lim.max_amount, sale.currency);
    limit_detail = "maximum " + (m ? m->format() : std::to_string(*lim.max_amount));
  } else if (lim.min_amount && sale.amount < *lim.min_amount) {
    limit_code = "limit.amount_below_minimum";
    auto m = eftd::money::of(*lim.min_amount, sale.currency);
    limit_detail = "minimum " + (m ? m->format() : std::to_string(*lim.min_amount));
  }

  journal::order_created oc;
  oc.order_id = order_id;
  oc.merchant_id = merchant->id;
  oc.store_id = store->id;
  oc.till_id = till->id;
  oc.order_no = sale.order_no;
  oc.business_date = s.business_date;
  oc.kind = std::string(journal::order_kinds::sale);
  oc.amount_minor = sale.amount;
  oc.currency = sale.currency;
  oc.created_ms = now0;

  auto final_batch = [&](journal::batch& b, std::string_view state, std::int64_t at, journal::actor who,
                         std::string_view op_state) {
    journal::order_updated ou;
    ou.order_id = order_id;
    ou.state = std::string(state);
    ou.result_code = s.why.why.code;
    ou.reason_cashier = s.why.why.cashier_text;
    ou.reason_customer = s.why.why.customer_text;
    ou.approved_amount_minor = s.approved_amount;
    ou.updated_ms = at;
    b.records.push_back(ou);
    journal::operation_updated opu;
    opu.op_id = op_id;
    opu.state = std::string(op_state);
    opu.result_code = s.why.why.code;
    if (!s.auth_code.empty()) opu.auth_code = s.auth_code;
    if (!s.response_code.empty()) opu.response_code = s.response_code;
    opu.updated_ms = at;
    b.records.push_back(opu);
    b.records.push_back(event(order_id, op_id, at, who, std::string(state), s.why.journal));
  };

  // The order, its payment operation and the request event, in the given starting state.
  auto opening_batch = [&](std::string_view state, std::string_view op_state) {
    journal::batch b;
    oc.state = std::string(state);
    b.records.push_back(oc);
    journal::operation_created opc;
    opc.op_id = op_id;
    opc.order_id = order_id;
    opc.kind = std::string(journal::operation_kinds::payment);
    opc.state = std::string(op_state);
    opc.amount_minor = sale.amount;
    opc.currency = sale.currency;
    opc.created_ms = now0;
    b.records.push_back(opc);
    b.records.push_back(
        event(order_id, op_id, now0, journal::actor::pos, "sale_requested",
              fmt::format("order {}: sale {} requested by till {}{}", sale.order_no, money_text, till->id,
                          req.operator_id.empty() ? "" : " operator " + req.operator_id)));
    return b;
  };

  if (!limit_code.empty()) {
    s.why = motivate(limit_code, s.order_no, limit_detail);
    journal::batch b = opening_batch(order_state::declined, "declined");
    final_batch(b, order_state::declined, now0, journal::actor::server, "declined");
    if (auto st = co_await commit(ctx, std::move(b)); !st)
      co_return finish_without_journal("journal.unavailable");
    co_return make_result(ctx, s, req.request_id);
  }

  // 1. The order is durable before anything else happens.
  {
    journal::batch b = opening_batch(order_state::in_progress, "card_wait");
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      spdlog::error("order {}: journal refused the order: {}", sale.order_no, st.err().message);
      co_return finish_without_journal(
          st.err().code == "journal.duplicate_order" ? "server.internal" : "journal.unavailable",
          st.err().code == "journal.duplicate_order" ? "duplicate order" : "");
    }
  }

  // Ends the order in a final state, journaled before the POS hears it.
  auto conclude = [&](std::string_view code, std::string_view state, journal::actor who,
                      std::string detail = {}) -> asio::awaitable<pos::result> {
    s.why = motivate(code, s.order_no, detail);
    const auto at = ctx.clock.now_ms();
    journal::batch b;
    final_batch(b, state, at, who, state);
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      spdlog::error("order {}: final state not journaled: {}", s.order_no, st.err().message);
      s.why = motivate("journal.unavailable", s.order_no);
    }
    co_return make_result(ctx, s, req.request_id);
  };

  // The executor is fetched in a statement of its own: GCC 12 destroys temporaries that live
  // across a co_await inside a larger expression twice (here: a strand reference count).
  auto flow_executor = co_await asio::this_coro::executor;
  status_beacon beacon(flow_executor, to_pos, sale.order_no,
                       std::chrono::milliseconds(ctx.cfg.timeout.pos_heartbeat_ms));

  // 2. The pad reads the card.
  auto pad = ctx.pad_for(till->pad);
  if (!pad) co_return co_await conclude("pad.unavailable", order_state::failed, journal::actor::server);
  beacon.say("card", "Insert, swipe or tap the card on the PIN pad");
  pad::read_card rc;
  rc.amount = sale.amount;
  rc.currency = sale.currency;
  rc.interfaces = static_cast<std::uint8_t>(pad::interface_mask::magstripe);
  rc.timeout_ms = ctx.cfg.timeout.card_read_ms;
  rc.prompt = {money_text, "Swipe card"};
  auto read = co_await pad->command(rc, std::chrono::milliseconds(ctx.cfg.timeout.card_read_ms + 5000));
  if (!read) {
    const auto& code = read.err().code;
    std::string reason = code == "pad.error.timeout"     ? "card.timeout"
                         : code == "pad.error.cancelled" ? "card.cancelled"
                         : code == "pad.timeout"         ? "pad.timeout"
                         : code == "pad.disconnected"    ? "pad.disconnected"
                                                         : "card.unreadable";
    auto state =
        reason == "card.timeout" || reason == "card.cancelled" ? order_state::cancelled : order_state::failed;
    auto r = co_await conclude(reason, state, journal::actor::pad);
    if (pad->open()) pad->show({s.why.why.customer_text});
    co_return r;
  }
  auto* card_msg = std::get_if<pad::card_read>(&*read);
  if (!card_msg)
    co_return co_await conclude("card.unreadable", order_state::failed, journal::actor::pad,
                                "unexpected reply");
  auto card = eftd::track2::parse(std::string_view(
      reinterpret_cast<const char*>(card_msg->track2.view().data()), card_msg->track2.size()));
  if (!card) {
    auto r = co_await conclude("card.unreadable", order_state::failed, journal::actor::pad, card.err().code);
    pad->show({s.why.why.customer_text});
    co_return r;
  }
  const auto& pan = card->account();
  s.masked_pan = pan.masked();
  s.entry_mode = entry_mode_name(card_msg->mode);
  auto scheme = ctx.bins ? ctx.bins->lookup(pan) : std::nullopt;
  s.scheme = scheme ? scheme->scheme : "";

  // Attach the card to the operation (PAN sealed; never track data).
  auto sealed = journal::seal_pan(ctx.keys, pan);
  {
    const auto at = ctx.clock.now_ms();
    journal::batch b;
    journal::operation_updated opu;
    opu.op_id = op_id;
    opu.state = "card_read";
    opu.entry_mode = s.entry_mode;
    if (!s.scheme.empty()) opu.scheme = s.scheme;
    if (sealed) opu.pan = *sealed;
    opu.updated_ms = at;
    b.records.push_back(opu);
    b.records.push_back(event(order_id, op_id, at, journal::actor::pad, "card_read",
                              fmt::format("{} card {} read by {}", s.scheme.empty() ? "unknown" : s.scheme,
                                          s.masked_pan, s.entry_mode)));
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      auto r = co_await conclude("journal.unavailable", order_state::failed, journal::actor::server);
      pad->show({s.why.why.customer_text});
      co_return r;
    }
  }

  // 3. Card-based restrictions: right after the read, before PIN or any acquirer message.
  std::string_view card_decline;
  std::string card_detail;
  if (!scheme) {
    card_decline = "card.unknown_scheme";
  } else if (!contains(lim.allowed_schemes, scheme->scheme)) {
    card_decline = "card.scheme_not_accepted";
    card_detail = scheme->label;
  } else if (expired(card->expiry_yymm(), ctx.clock.now_ms())) {
    card_decline = "card.expired";
  }
  const config::route* route = ctx.cfg.route_for(pan.bin(8));
  if (card_decline.empty() && !route) card_decline = "route.none";
  if (!card_decline.empty()) {
    auto r = co_await conclude(card_decline, order_state::declined, journal::actor::server, card_detail);
    pad->show({s.why.why.customer_text});
    co_return r;
  }

  // 4. Write-ahead: the request's intent (with its STAN) is durable before it is sent.
  acquirer_request areq;
  areq.acquirer = route->acquirer;
  areq.terminal_id = till->terminal_id;
  areq.card_acceptor_id = merchant->acquirer_merchant_id;
  areq.pos_entry_mode = pos_entry_mode_code(card_msg->mode);
  areq.at_ms = ctx.clock.now_ms();
  std::string stan_counter;
  areq.stan = ctx.next_stan(areq.acquirer, areq.terminal_id, stan_counter);
  areq.rrn = make_rrn(areq.at_ms, areq.stan);
  areq.amount_minor = sale.amount;
  areq.currency_numeric = eftd::find_currency(sale.currency)->numeric;
  s.stan = fmt::format("{:06}", areq.stan);
  s.rrn = areq.rrn;
  const std::string msg_id = journal::new_id();
  {
    journal::batch b;
    b.records.push_back(journal::counter_set{stan_counter, areq.stan});
    journal::acquirer_message_written mw;
    mw.msg_id = msg_id;
    mw.op_id = op_id;
    mw.acquirer = areq.acquirer;
    mw.terminal_id = areq.terminal_id;
    mw.mti = areq.mti;
    mw.stan = areq.stan;
    mw.local_datetime = local_datetime_of(areq.at_ms);
    mw.rrn = areq.rrn;
    mw.amount_minor = areq.amount_minor;
    mw.currency = sale.currency;
    mw.state = std::string(journal::message_states::sent);
    mw.created_ms = areq.at_ms;
    b.records.push_back(mw);
    journal::operation_updated opu;
    opu.op_id = op_id;
    opu.state = "authorizing";
    opu.updated_ms = areq.at_ms;
    b.records.push_back(opu);
    b.records.push_back(event(order_id, op_id, areq.at_ms, journal::actor::server, "authorizing",
                              fmt::format("0200 to {} STAN {} RRN {}", areq.acquirer, s.stan, s.rrn)));
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      auto r = co_await conclude("journal.unavailable", order_state::failed, journal::actor::server);
      pad->show({s.why.why.customer_text});
      co_return r;
    }
  }
  beacon.say("authorizing", "Authorizing with " + areq.acquirer);
  pad->show({"Please wait", "Authorizing"});

  // 5. The acquirer decides.
  auto ans = co_await send_financial(ctx, areq, *card);
  const auto at = ctx.clock.now_ms();
  if (!ans) {
    // No answer (or an unreadable one): the outcome at the acquirer is unknown, so the money
    // may have moved. The POS is told "not approved", and a reversal is owed until acknowledged.
    const bool never_sent =
        ans.err().code == "acq.connect_failed" || ans.err().code == "acq.unknown_acquirer";
    std::string code = never_sent                             ? "acquirer.unreachable"
                       : ans.err().code == "acq.decode_error" ? "acquirer.bad_response"
                                                              : "acquirer.timeout";
    s.why = motivate(code, s.order_no, never_sent ? areq.acquirer : "");
    journal::batch b;
    journal::acquirer_message_updated mu;
    mu.msg_id = msg_id;
    mu.state =
        std::string(never_sent ? journal::message_states::failed : journal::message_states::reversal_pending);
    mu.updated_ms = at;
    b.records.push_back(mu);
    final_batch(b, order_state::failed, at, journal::actor::acquirer,
                never_sent ? "failed" : "reversal_pending");
    auto st = co_await commit(ctx, std::move(b));
    if (!st) s.why = motivate("journal.unavailable", s.order_no);
    if (!never_sent) spawn_reversal(ctx, areq, msg_id, order_id, op_id);
    spdlog::warn("order {}: {} ({})", s.order_no, ans.err().code, ans.err().message);
    pad->show({s.why.why.customer_text});
    co_return make_result(ctx, s, req.request_id);
  }

  s.response_code = ans->response_code;
  s.auth_code = ans->auth_code;
  if (!ans->rrn.empty()) s.rrn = ans->rrn;
  const bool ok = response_code_approves(ans->response_code);
  s.approved_amount = ok ? sale.amount : 0;
  s.why = motivate(ok ? "approved" : reason_for_response_code(ans->response_code), s.order_no,
                   ok ? "" : "response " + ans->response_code);
  {
    journal::batch b;
    journal::acquirer_message_updated mu;
    mu.msg_id = msg_id;
    mu.state = std::string(journal::message_states::answered);
    mu.response_code = ans->response_code;
    if (!ans->auth_code.empty()) mu.auth_code = ans->auth_code;
    mu.updated_ms = at;
    b.records.push_back(mu);
    final_batch(b, ok ? order_state::approved : order_state::declined, at, journal::actor::acquirer,
                ok ? "approved" : "declined");
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      // Never tell the POS "approved" without a durable record: reverse instead.
      spdlog::error("order {}: answer not journaled ({}); reversing", s.order_no, st.err().message);
      s.approved_amount = 0;
      s.why = motivate("journal.unavailable", s.order_no);
      if (ok) spawn_reversal(ctx, areq, msg_id, order_id, op_id);
      pad->show({s.why.why.customer_text});
      co_return make_result(ctx, s, req.request_id);
    }
  }
  spdlog::info("order {}: {} ({}), {} {}", s.order_no, s.why.outcome, s.why.why.code, s.scheme, s.masked_pan);
  pad->show({s.why.why.customer_text});
  co_return make_result(ctx, s, req.request_id);
}

namespace {

bool in_doubt(std::string_view state) {
  return state == journal::message_states::intent || state == journal::message_states::sent ||
         state == journal::message_states::timeout || state == journal::message_states::reversal_pending;
}

// Orders the previous run left in progress with nothing sent to an acquirer: no money can have
// moved, so they end as failed, and a status query says so instead of "in progress" forever.
void conclude_interrupted_orders(server_context& ctx) {
  std::vector<journal::order_view> stuck;
  {
    std::lock_guard lk(ctx.reader_mu);
    journal::order_filter f;
    f.state = std::string(order_state::in_progress);
    f.limit = 10000;
    auto rows = ctx.reader->list_orders(f);
    if (!rows) {
      spdlog::error("recovery: cannot list interrupted orders: {}", rows.err().message);
      return;
    }
    for (const auto& row : *rows) {
      auto d = ctx.reader->order_detail(row.order_id);
      if (!d || !*d) continue;
      bool owes_reversal = false;
      for (const auto& m : (*d)->messages) owes_reversal = owes_reversal || in_doubt(m.state);
      if (!owes_reversal) stuck.push_back(std::move(**d));
    }
  }
  for (const auto& v : stuck) {
    const auto now = ctx.clock.now_ms();
    auto why = motivate("server.restarted", v.order.order_no);
    journal::batch b;
    journal::order_updated ou;
    ou.order_id = v.order.order_id;
    ou.expect_state = std::string(order_state::in_progress);
    ou.state = std::string(order_state::failed);
    ou.result_code = why.why.code;
    ou.reason_cashier = why.why.cashier_text;
    ou.reason_customer = why.why.customer_text;
    ou.approved_amount_minor = 0;
    ou.updated_ms = now;
    b.records.push_back(ou);
    for (const auto& op : v.operations) {
      journal::operation_updated opu;
      opu.op_id = op.op_id;
      opu.state = "failed";
      opu.result_code = why.why.code;
      opu.updated_ms = now;
      b.records.push_back(opu);
    }
    b.records.push_back(event(v.order.order_id, "", now, journal::actor::server, "failed", why.journal));
    if (auto st = ctx.journal->submit_sync(std::move(b)); !st)
      spdlog::error("recovery: order {} not concluded: {}", v.order.order_no, st.err().message);
    else
      spdlog::warn("recovery: order {} on till {} was interrupted before reaching an acquirer; marked failed",
                   v.order.order_no, v.order.till_id);
  }
}

}  // namespace

void start_recovery(server_context& ctx) {
  std::vector<journal::acquirer_message_row> rows;
  {
    std::lock_guard lk(ctx.reader_mu);
    auto r = ctx.reader->in_doubt_messages();
    if (!r) {
      spdlog::error("recovery: cannot list in-doubt messages: {}", r.err().message);
      return;
    }
    rows = std::move(*r);
  }
  for (const auto& m : rows) {
    if (m.mti != "0200" && m.mti != "0100") continue;
    if (!ctx.cfg.find_acquirer(m.acquirer)) {
      spdlog::error("recovery: message {} names unknown acquirer '{}'; left pending", m.msg_id, m.acquirer);
      continue;
    }
    acquirer_request a;
    a.acquirer = m.acquirer;
    a.terminal_id = m.terminal_id;
    a.mti = m.mti;
    a.stan = m.stan;
    a.at_ms = m.created_ms;
    a.rrn = m.rrn.value_or("");
    a.amount_minor = m.amount_minor;
    const auto* c = eftd::find_currency(m.currency);
    a.currency_numeric = c ? c->numeric : 0;
    if (const auto* till = [&]() -> const config::till* {
          for (const auto& t : ctx.cfg.tills)
            if (t.terminal_id == m.terminal_id) return &t;
          return nullptr;
        }()) {
      if (const auto* st = ctx.cfg.find_store(till->store))
        if (const auto* mer = ctx.cfg.find_merchant(st->merchant))
          a.card_acceptor_id = mer->acquirer_merchant_id;
    }
    std::string order_id, order_no;
    {
      std::lock_guard lk(ctx.reader_mu);
      auto op = ctx.reader->operation(m.op_id);
      if (op && *op) order_id = (*op)->order_id;
      if (!order_id.empty()) {
        auto d = ctx.reader->order_detail(order_id);
        if (d && *d) order_no = (*d)->order.order_no;
      }
    }
    if (order_id.empty()) {
      spdlog::error("recovery: message {} has no readable operation; left pending", m.msg_id);
      continue;
    }
    spdlog::warn("recovery: STAN {} on {} has no recorded answer; reversing", m.stan, m.terminal_id);
    std::optional<motivated> conclusion;
    if (m.state == journal::message_states::intent || m.state == journal::message_states::sent)
      conclusion = motivate("server.restarted", order_no);
    spawn_reversal(ctx, a, m.msg_id, order_id, m.op_id, std::move(conclusion));
  }
  conclude_interrupted_orders(ctx);
}

}  // namespace eftd::server
