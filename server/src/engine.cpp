#include "engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <tuple>

#include "acquirer_gateway.hpp"
#include "chip_flow.hpp"
#include "contactless_flow.hpp"
#include "eftd/core/card.hpp"
#include "eftd/core/money.hpp"
#include "eftd/core/p2pe.hpp"
#include "eftd/journal/card_data.hpp"
#include "eftd/pad/messages.hpp"
#include "emv_receipt.hpp"
#include "key_module.hpp"
#include "pad_session.hpp"
#include "reasons.hpp"
#include "receipt.hpp"
#include "saf.hpp"
#include "tx_control.hpp"

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
  std::string kind = "SALE";  // receipt title
  std::optional<std::int64_t> balance;
  std::string order_no, business_date, till_id, terminal_id, currency;
  std::int64_t amount = 0, approved_amount = 0, at_ms = 0;
  std::string masked_pan, scheme, entry_mode, auth_code, stan, rrn, response_code;
  std::string emv_data;  // chip/contactless receipt data (emv_receipt.hpp), JSON
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
  r.balance = s.balance;
  // A plain approval needs no reason. Others say how they were approved: an approved cancel
  // (reversed: cancel.done, or refunded after settlement: cancel.refunded), or a sale the card
  // approved offline (approved.offline).
  if (s.why.outcome != "approved" || s.why.why.code != "approved") r.why = s.why.why;
  receipt_input in;
  in.merchant = nullptr;
  if (const auto* t = ctx.cfg().find_till(s.till_id)) {
    if (const auto* st = ctx.cfg().find_store(t->store)) {
      in.store = st;
      in.merchant = ctx.cfg().find_merchant(st->merchant);
    }
  }
  in.till_id = s.till_id;
  in.terminal_id = s.terminal_id;
  in.order_no = s.order_no;
  in.kind = s.kind;
  in.at_ms = s.at_ms;
  in.amount_minor = s.approved_amount > 0 ? s.approved_amount : s.amount;
  in.currency = s.currency;
  in.masked_pan = s.masked_pan;
  in.scheme = s.scheme;
  in.entry_mode = s.entry_mode;
  in.auth_code = s.auth_code;
  in.stan = s.stan;
  in.rrn = s.rrn;
  in.emv_data = s.emv_data;
  r.emv = emv_result_fields(s.emv_data, s.response_code);
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
// ISO/IEC 7813 service code, third digit: 0, 3 and 5 mean "PIN required" (3: ATM only, still
// a PIN); 6 and 7 "prompt for PIN if a PIN pad is present" (ours always is).
// The reason for a pad command that ended without its reply, for the card read ("card") or PIN
// entry ("pin"): the customer's timeout or cancel, the cashier's abort, or the pad itself.
std::string pad_stop_reason(std::string_view code, bool aborted, std::string_view what) {
  if (code == "pad.aborted") return "pos.aborted";
  if (code == "pad.error.timeout") return std::string(what) + ".timeout";
  if (code == "pad.error.cancelled") return aborted ? "pos.aborted" : std::string(what) + ".cancelled";
  if (code == "pad.timeout" || code == "pad.disconnected") return std::string(code);
  return what == "card" ? "card.unreadable" : "pin.unavailable";
}
// How an order ends that such a stop ended: cancelled when a person stopped it (the customer's
// timeout or cancel on the pad, the cashier's abort), else failed (the pad gone or silent, an
// unreadable card); journaled as the POS's doing for an abort, else the pad's.
std::string_view stop_state(std::string_view reason) {
  const bool by_person = reason == "pos.aborted" || reason == "card.timeout" || reason == "card.cancelled" ||
                         reason == "pin.timeout" || reason == "pin.cancelled";
  return by_person ? order_state::cancelled : order_state::failed;
}
journal::actor stop_actor(std::string_view reason) {
  return reason == "pos.aborted" ? journal::actor::pos : journal::actor::pad;
}

bool pin_mandatory(const std::string& service_code) {
  return service_code.size() == 3 &&
         (service_code[2] == '0' || service_code[2] == '3' || service_code[2] == '5');
}
bool pin_required(const config::cvm_config& cvm, const std::string& service_code) {
  if (cvm.magstripe_pin == "always") return true;
  if (cvm.magstripe_pin == "never") return false;
  return pin_mandatory(service_code) ||
         (service_code.size() == 3 && (service_code[2] == '6' || service_code[2] == '7'));
}

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

// The records that end an order: its final state and reasons, its operation's state and the
// acquirer's codes, and the event saying why (what the POS is told next).
void add_final_records(journal::batch& b, const std::string& order_id, const std::string& op_id,
                       const tx_summary& s, std::string_view state, std::int64_t at, journal::actor who,
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
  if (!s.emv_data.empty()) opu.emv_data = s.emv_data;
  opu.updated_ms = at;
  b.records.push_back(opu);
  b.records.push_back(event(order_id, op_id, at, who, std::string(state), s.why.journal));
}

// Sends the POS a status line and keeps repeating it as a heartbeat while the flow waits,
// so the POS can tell "still working" from "connection lost" (PROTOCOL.md, timeouts).
class status_beacon {
 public:
  status_beacon(asio::any_io_executor ex, std::function<void(pos::message)> to_pos, std::string request_id,
                std::string order_no, std::chrono::milliseconds every)
      : state_(std::make_shared<state>(std::move(to_pos), std::move(request_id), std::move(order_no))),
        timer_(ex),
        every_(every) {
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
    state(std::function<void(pos::message)> f, std::string id, std::string o)
        : to_pos(std::move(f)), request_id(std::move(id)), order_no(std::move(o)) {}
    std::function<void(pos::message)> to_pos;
    std::string request_id, order_no, stage, text;
    bool stopped = false;
    void emit() {
      pos::status s;
      s.id = request_id;
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
}  // namespace

namespace {

bool cancel_reason(std::string_view code) {
  return code.starts_with("pos.") || code.starts_with("cancel.");
}

std::string receipt_kind_of(std::string_view order_kind) {
  if (order_kind == "refund") return "REFUND";
  if (order_kind == "balance_inquiry") return "BALANCE";
  if (order_kind == journal::order_kinds::preauth) return "PRE-AUTH";
  if (order_kind == journal::order_kinds::incremental) return "INCREMENTAL";
  if (order_kind == journal::order_kinds::completion) return "COMPLETION";
  return "SALE";
}

// What the POS was (or would have been) told about a journaled order.
tx_summary summary_from_journal(const server_context& ctx, const journal::order_view& v) {
  tx_summary s;
  s.kind = receipt_kind_of(v.order.kind);
  s.order_no = v.order.order_no;
  s.business_date = v.order.business_date;
  s.till_id = v.order.till_id;
  s.currency = v.order.currency;
  s.amount = v.order.amount_minor;
  s.approved_amount = v.order.approved_amount_minor.value_or(0);
  s.at_ms = v.order.created_ms;
  if (const auto* t = ctx.cfg().find_till(v.order.till_id)) s.terminal_id = t->terminal_id;
  for (const auto& op : v.operations) {
    if (op.kind != journal::operation_kinds::payment && op.kind != journal::operation_kinds::refund &&
        op.kind != journal::operation_kinds::completion)
      continue;
    s.masked_pan = op.pan_masked.value_or("");
    s.scheme = op.scheme.value_or("");
    s.entry_mode = op.entry_mode.value_or("");
    s.auth_code = op.auth_code.value_or("");
    s.response_code = op.response_code.value_or("");
    s.emv_data = op.emv_data.value_or("");
  }
  for (const auto& m : v.messages) {
    if (m.mti != "0200" && m.mti != "0100" && m.mti != "0220") continue;
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
  s.why.outcome = status_word(v.order.state);
  // A reversed order was either cancelled on purpose (cashier abort or cancel) or failed
  // (timeout, then reversed): in neither case did money move.
  if (v.order.state == order_state::reversed) s.why.outcome = cancel_reason(code) ? "cancelled" : "failed";
  if (v.order.state == order_state::in_progress) s.why.outcome = "failed";
  return s;
}

}  // namespace

pos::result result_from_journal(const server_context& ctx, const journal::order_view& v) {
  return make_result(ctx, summary_from_journal(ctx, v), "");
}

tx_request to_tx_request(const pos::sale& m) {
  tx_request r;
  r.request_id = m.id;
  r.kind = "sale";
  r.order_no = m.order_no;
  r.currency = m.currency;
  r.amount = m.amount;
  r.cashback = m.cashback;
  r.tip = m.tip;
  r.business_date = m.business_date;
  return r;
}

tx_request to_tx_request(const pos::refund& m) {
  tx_request r;
  r.request_id = m.id;
  r.kind = "refund";
  r.order_no = m.order_no;
  r.currency = m.currency;
  r.amount = m.amount;
  r.business_date = m.business_date;
  r.original_order_no = m.original_order_no;
  r.original_business_date = m.original_business_date;
  return r;
}

tx_request to_tx_request(const pos::preauth& m) {
  tx_request r;
  r.request_id = m.id;
  r.kind = "preauth";
  r.order_no = m.order_no;
  r.currency = m.currency;
  r.amount = m.amount;
  return r;
}

follow_up_request to_follow_up(const pos::completion& m) {
  return {m.id, "", "", "completion", m.order_no, m.preauth_order_no, m.currency, m.amount};
}

follow_up_request to_follow_up(const pos::incremental& m) {
  return {m.id, "", "", "incremental", m.order_no, m.preauth_order_no, m.currency, m.amount};
}

tx_request to_tx_request(const pos::balance_inquiry& m) {
  tx_request r;
  r.request_id = m.id;
  r.kind = "balance_inquiry";
  r.order_no = m.order_no;
  return r;
}

namespace {

// How each kind of card transaction differs: what it is called in the journal and on the
// receipt, and how it goes to the acquirer (ISO 8583:1987 MTI and processing code, field 3).
struct kind_traits {
  std::string_view order_kind;
  std::string_view operation_kind;
  std::string_view receipt_kind;
  std::string_view mti;
  std::string_view processing_code;
  bool moves_money;
};

kind_traits traits_of(std::string_view kind) {
  if (kind == "refund") return {"refund", journal::operation_kinds::refund, "REFUND", "0200", "200000", true};
  if (kind == "balance_inquiry")
    return {"balance_inquiry", journal::operation_kinds::payment, "BALANCE", "0100", "310000", false};
  // A pre-authorisation holds funds (0100) until its completion advice settles them; a
  // timeout or cancel reverses it like a sale, to release the hold.
  if (kind == "preauth")
    return {"preauth", journal::operation_kinds::payment, "PRE-AUTH", "0100", "000000", true};
  return {journal::order_kinds::sale, journal::operation_kinds::payment, "SALE", "0200", "000000", true};
}

// The payment a refund refers to: on the same till first, else anywhere in the merchant.
std::optional<journal::order_view> find_original(server_context& ctx, const config::merchant& merchant,
                                                 const tx_request& req) {
  if (auto v = ctx.find_order_view(req.till_id, req.original_order_no, req.original_business_date);
      v && v->order.kind == journal::order_kinds::sale)
    return v;
  std::lock_guard lk(ctx.reader_mu);
  journal::order_filter f;
  f.merchant_id = merchant.id;
  f.order_no = req.original_order_no;
  f.kind = std::string(journal::order_kinds::sale);
  if (!req.original_business_date.empty()) {
    f.business_date_from = req.original_business_date;
    f.business_date_to = req.original_business_date;
  }
  f.newest_first = true;
  f.limit = 1;
  auto rows = ctx.reader->list_orders(f);
  if (!rows || rows->empty()) return std::nullopt;
  auto d = ctx.reader->order_detail(rows->front().order_id);
  if (!d || !*d) return std::nullopt;
  return std::move(**d);
}

}  // namespace

asio::awaitable<pos::result> run_card_transaction(server_context& ctx, tx_request req,
                                                  std::function<void(pos::message)> to_pos) {
  const auto now0 = ctx.clock.now_ms();
  const auto kt = traits_of(req.kind);
  const config::till* till = ctx.cfg().find_till(req.till_id);
  const config::store* store = till ? ctx.cfg().find_store(till->store) : nullptr;
  const config::merchant* merchant = store ? ctx.cfg().find_merchant(store->merchant) : nullptr;
  if (req.currency.empty() && merchant) req.currency = merchant->currency;
  auto aborted = [&] { return req.control && req.control->aborted(); };

  tx_summary s;
  s.kind = std::string(kt.receipt_kind);
  s.order_no = req.order_no;
  s.till_id = req.till_id;
  s.terminal_id = till ? till->terminal_id : "";
  s.currency = req.currency;
  s.amount = req.amount;
  s.at_ms = now0;
  s.business_date = business_date_of(now0);

  auto finish_without_journal = [&](std::string_view code, std::string detail = {}) {
    s.why = motivate(code, s.order_no, detail);
    return make_result(ctx, s, req.request_id);
  };
  if (!till || !store || !merchant)
    co_return finish_without_journal("server.internal", "till configuration incomplete");

  // Idempotency: the same order on the same till (within 48 hours, or on the business date
  // the POS quotes) is the same order. A final one is answered from the journal and never
  // reaches the acquirer twice.
  {
    auto prior = ctx.find_order_view(req.till_id, req.order_no, req.business_date);
    if (prior) {
      spdlog::info("till {}: order {} repeated; answering from the journal (state {})", req.till_id,
                   req.order_no, prior->order.state);
      auto r = result_from_journal(ctx, *prior);
      r.id = req.request_id;
      co_return r;
    }
  }

  const std::string order_id = journal::new_id();
  const std::string op_id = journal::new_id();
  auto money_text = [&] {
    auto m = eftd::money::of(req.amount, req.currency);
    return m ? m->format() : std::to_string(req.amount) + " " + req.currency;
  }();

  // System restrictions that need no card: checked before the pad is engaged.
  const auto lim = ctx.cfg().effective_limits(*till);
  std::string limit_code, limit_detail;
  if (!contains(lim.allowed_types, req.kind)) {
    limit_code = "limit.type_not_allowed";
    limit_detail = req.kind;
  } else if (kt.moves_money && lim.max_amount && req.amount > *lim.max_amount) {
    limit_code = "limit.amount_above_maximum";
    auto m = eftd::money::of(*lim.max_amount, req.currency);
    limit_detail = "maximum " + (m ? m->format() : std::to_string(*lim.max_amount));
  } else if (kt.moves_money && lim.min_amount && req.amount < *lim.min_amount) {
    limit_code = "limit.amount_below_minimum";
    auto m = eftd::money::of(*lim.min_amount, req.currency);
    limit_detail = "minimum " + (m ? m->format() : std::to_string(*lim.min_amount));
  }

  // A refund that names its payment: the payment must exist, be approved, and have enough
  // left to refund. Two refunds of one payment are checked one at a time.
  std::optional<std::string> parent_op_id;
  std::string refund_lock;
  struct unlock_refund {
    server_context& ctx;
    std::string& key;
    void release() {
      if (key.empty()) return;
      std::lock_guard lk(ctx.tills_mu);
      ctx.refunds_in_check.erase(key);
      key.clear();
    }
    ~unlock_refund() { release(); }
  } refund_unlock{ctx, refund_lock};
  if (limit_code.empty() && req.kind == "refund" && !req.original_order_no.empty()) {
    auto original = find_original(ctx, *merchant, req);
    if (!original) {
      limit_code = "refund.original_unknown";
      limit_detail = req.original_order_no;
    } else if (original->order.state != order_state::approved) {
      limit_code = "refund.original_not_approved";
      limit_detail = req.original_order_no;
    } else if (original->order.currency != req.currency) {
      limit_code = "refund.currency_mismatch";
      limit_detail = original->order.currency;
    } else {
      for (const auto& op : original->operations)
        if (op.kind == journal::operation_kinds::payment) parent_op_id = op.op_id;
      bool locked = false;
      if (parent_op_id) {
        std::lock_guard lk(ctx.tills_mu);
        locked = ctx.refunds_in_check.insert(*parent_op_id).second;
      }
      if (!parent_op_id) {
        limit_code = "refund.original_not_approved";
        limit_detail = req.original_order_no;
      } else if (!locked) {
        limit_code = "refund.original_busy";
        limit_detail = req.original_order_no;
      } else {
        refund_lock = *parent_op_id;
        result<std::int64_t> done = std::int64_t{0};
        {
          std::lock_guard lk(ctx.reader_mu);
          done = ctx.reader->refunded_amount(*parent_op_id);
        }
        const auto paid = original->order.approved_amount_minor.value_or(0);
        if (!done) {
          limit_code = "journal.unavailable";
        } else if (*done + req.amount > paid) {
          limit_code = "refund.exceeds_original";
          auto left = eftd::money::of(std::max<std::int64_t>(0, paid - *done), req.currency);
          limit_detail = "left to refund " + (left ? left->format() : std::to_string(paid - *done));
        }
      }
    }
  }

  journal::order_created oc;
  oc.order_id = order_id;
  oc.merchant_id = merchant->id;
  oc.store_id = store->id;
  oc.till_id = till->id;
  oc.order_no = req.order_no;
  oc.business_date = s.business_date;
  oc.kind = std::string(kt.order_kind);
  oc.amount_minor = req.amount;
  oc.currency = req.currency;
  oc.created_ms = now0;

  auto final_batch = [&](journal::batch& b, std::string_view state, std::int64_t at, journal::actor who,
                         std::string_view op_state) {
    add_final_records(b, order_id, op_id, s, state, at, who, op_state);
  };

  // The order, its operation and the request event, in the given starting state.
  auto opening_batch = [&](std::string_view state, std::string_view op_state) {
    journal::batch b;
    oc.state = std::string(state);
    b.records.push_back(oc);
    journal::operation_created opc;
    opc.op_id = op_id;
    opc.order_id = order_id;
    opc.parent_op_id = parent_op_id;
    opc.kind = std::string(kt.operation_kind);
    opc.state = std::string(op_state);
    opc.amount_minor = req.amount;
    opc.currency = req.currency;
    opc.created_ms = now0;
    b.records.push_back(opc);
    std::string what = kt.moves_money ? fmt::format("{} {}", req.kind, money_text) : req.kind;
    if (!req.original_order_no.empty()) what += " of order " + req.original_order_no;
    b.records.push_back(event(order_id, op_id, now0, journal::actor::pos, req.kind + "_requested",
                              fmt::format("order {}: {} requested by till {}{}", req.order_no, what, till->id,
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
    auto st = co_await commit(ctx, std::move(b));
    refund_unlock.release();  // the in-progress refund now counts in refunded_amount
    if (!st) {
      spdlog::error("order {}: journal refused the order: {}", req.order_no, st.err().message);
      co_return finish_without_journal(
          st.err().code == "journal.duplicate_order" ? "server.internal" : "journal.unavailable",
          st.err().code == "journal.duplicate_order" ? "duplicate order" : "");
    }
  }

  // Progress that no rule requires durable at once (the card read, the PIN entered, the
  // cashier's answers) rides with the next batch that is: the acquirer intent or the final
  // state (ARCHITECTURE.md: the intent before the acquirer, the answer before the POS). A crash
  // in between loses only these notes of an order that start-up recovery concludes anyway, and
  // a sale costs two group-commit round trips fewer.
  journal::batch deferred;
  auto take_deferred = [&](journal::batch& b) {
    if (deferred.records.empty()) return;
    b.records.insert(b.records.begin(), std::make_move_iterator(deferred.records.begin()),
                     std::make_move_iterator(deferred.records.end()));
    deferred.records.clear();
  };

  // Ends the order in a final state, journaled before the POS hears it.
  auto conclude = [&](std::string_view code, std::string_view state, journal::actor who,
                      std::string detail = {}) -> asio::awaitable<pos::result> {
    s.why = motivate(code, s.order_no, detail);
    const auto at = ctx.clock.now_ms();
    journal::batch b;
    final_batch(b, state, at, who, state);
    take_deferred(b);
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      spdlog::error("order {}: final state not journaled: {}", s.order_no, st.err().message);
      s.why = motivate("journal.unavailable", s.order_no);
    }
    co_return make_result(ctx, s, req.request_id);
  };
  auto note = [&](std::string kind, std::string text) {
    deferred.records.push_back(
        event(order_id, op_id, ctx.clock.now_ms(), journal::actor::pos, std::move(kind), std::move(text)));
  };

  // The executor is fetched in a statement of its own: GCC 12 destroys temporaries that live
  // across a co_await inside a larger expression twice (here: a strand reference count).
  auto flow_executor = co_await asio::this_coro::executor;
  status_beacon beacon(flow_executor, to_pos, req.request_id, req.order_no,
                       std::chrono::milliseconds(ctx.cfg().timeout.pos_heartbeat_ms));

  // Configured questions for the cashier (prompts are data). A nullopt answer means the
  // cashier aborted; an answer listed in cancel_on ends the transaction.
  auto ask_configured = [&](std::string_view stage) -> asio::awaitable<std::optional<std::string>> {
    for (const auto& rule : ctx.cfg().prompts) {
      if (rule.stage != stage) continue;
      if (!rule.types.empty() &&
          std::find(rule.types.begin(), rule.types.end(), req.kind) == rule.types.end())
        continue;
      if (req.amount < rule.min_amount) continue;
      pos::prompt p;
      p.id = req.request_id;
      p.prompt_id = rule.id;
      p.order_no = req.order_no;
      p.kind = rule.kind;
      p.text = rule.text;
      p.options = rule.kind == "yes_no" ? std::vector<std::string>{"yes", "no"} : rule.options;
      p.timeout_ms = rule.timeout_ms;
      p.default_value = rule.default_value;
      beacon.say("question", rule.text);
      std::optional<std::string> value;
      if (req.control) {
        value = co_await req.control->ask(p, to_pos);
      } else {
        value = rule.default_value;
      }
      if (!value) co_return std::nullopt;
      note("prompt_answered", fmt::format("order {}: '{}' answered '{}'", req.order_no, rule.id, *value));
      if (std::find(rule.cancel_on.begin(), rule.cancel_on.end(), *value) != rule.cancel_on.end())
        co_return "cancel:" + rule.id;
    }
    co_return std::string();
  };
  auto prompt_outcome =
      [&](const std::optional<std::string>& v) -> std::optional<std::pair<std::string, std::string>> {
    if (!v) return std::make_pair(std::string("pos.aborted"), std::string());
    if (v->starts_with("cancel:")) return std::make_pair(std::string("pos.prompt_cancelled"), v->substr(7));
    return std::nullopt;
  };

  {
    auto v = co_await ask_configured("before_card");
    if (auto stop = prompt_outcome(v))
      co_return co_await conclude(stop->first, order_state::cancelled, journal::actor::pos, stop->second);
  }
  if (aborted()) co_return co_await conclude("pos.aborted", order_state::cancelled, journal::actor::pos);

  // 2. The pad reads the card.
  // This till's EMV parameters: [emv], then its merchant's and its own overrides.
  const auto emv_eff = ctx.cfg().emv_for(merchant->id, till->id);
  auto pad = ctx.pad_for(till->pad);
  if (!pad) co_return co_await conclude("pad.unavailable", order_state::failed, journal::actor::server);
  beacon.say("card", "Insert, swipe or tap the card on the PIN pad");
  pad::read_card rc;
  rc.amount = req.amount;
  rc.currency = req.currency;
  rc.interfaces = static_cast<std::uint8_t>(pad::interface_mask::magstripe);
  // With the central kernel on, a chip card is inserted and read through the pad's APDUs, and
  // with [emv.contactless] a card may also be tapped (its kernel runs the tap as one script).
  const bool clss_on = ctx.cfg().emv.enabled && ctx.cfg().emv.contactless.enabled;
  if (ctx.cfg().emv.enabled) rc.interfaces |= static_cast<std::uint8_t>(pad::interface_mask::chip);
  if (clss_on) rc.interfaces |= static_cast<std::uint8_t>(pad::interface_mask::contactless);
  rc.timeout_ms = ctx.cfg().timeout.card_read_ms;
  rc.prompt = {kt.moves_money ? money_text : "Balance inquiry", clss_on ? "Insert, tap or swipe card"
                                                                : ctx.cfg().emv.enabled ? "Insert or swipe card"
                                                                                      : "Swipe card"};
  if (req.control) req.control->set_pad(pad);
  const auto read_started = std::chrono::steady_clock::now();
  auto read = co_await pad->command(rc, std::chrono::milliseconds(ctx.cfg().timeout.card_read_ms + 5000));
  ctx.metrics->observe(stage::card_read, ms_since(read_started));
  if (req.control) req.control->set_pad(nullptr);
  if (!read) {
    const std::string reason = pad_stop_reason(read.err().code, aborted(), "card");
    const auto state = stop_state(reason);
    const auto who = stop_actor(reason);
    auto r = co_await conclude(reason, state, who);
    if (pad->open()) pad->show({s.why.why.customer_text});
    co_return r;
  }
  auto* card_msg = std::get_if<pad::card_read>(&*read);
  if (!card_msg)
    co_return co_await conclude("card.unreadable", order_state::failed, journal::actor::pad,
                                "unexpected reply");
  // P2PE: the pad seals the track under its DUKPT key; only the key-handling module opens it.
  // A pad that sends the track in clear is refused unless keys.require_p2pe is off (development).
  std::optional<card_session> dukpt;
  secure_bytes track_clear;
  // A chip card: the pad powered it (ATR) and keeps it for the kernel's APDUs, which come back
  // sealed under the card's DUKPT transaction.
  std::unique_ptr<chip_flow> chip;
  // A contactless card: the pad powered it at the tap (ATR); the contactless kernel plans the
  // whole read as one APDU script, run while the card is still in the field.
  std::unique_ptr<contactless_flow> clss;
  // How the card was read in the end: a chip card whose chip failed is swiped in the same sale
  // (technical fallback), and then its entry mode is "fallback" (field 22 80x).
  pad::entry_mode mode = card_msg->mode;
  // The technical fallback rule of this till ([emv] fallback, fallback_max_amount).
  auto fallback_permitted = [&] {
    return emv_eff.fallback_allowed &&
           (!emv_eff.fallback_max_amount ||
            static_cast<std::uint64_t>(req.amount) <= *emv_eff.fallback_max_amount);
  };
  // A swiped card's track: sealed by the pad under DUKPT and opened by the key-handling module,
  // or in clear from a development pad (keys.require_p2pe = false). A final result when it
  // cannot be used.
  auto open_stripe = [&](const pad::card_read& m) -> asio::awaitable<std::optional<pos::result>> {
    std::string_view code;
    std::string detail;
    if (!m.ksn.empty() && !m.sealed_track2.empty()) {
      const auto keys = ctx.key_store();
      auto session = keys ? keys->begin(m.ksn)
                          : result<card_session>(make_error("keys.unavailable", "no key store"));
      result<secure_bytes> opened =
          session ? session->open(1, m.sealed_track2.view()) : result<secure_bytes>(session.err());
      if (opened) {
        dukpt.emplace(std::move(*session));
        track_clear = std::move(*opened);
        co_return std::nullopt;
      }
      spdlog::warn("order {}: pad {} card data (KSN {}) not opened: {}: {}", req.order_no, till->pad,
                   to_hex(m.ksn), opened.err().code, opened.err().message);
      code = "card.key_error";
      detail = opened.err().code;
    } else if (!m.track2.empty() && !ctx.cfg().keys.require_p2pe) {
      track_clear = m.track2;
      co_return std::nullopt;
    } else {
      const bool clear = !m.track2.empty();
      if (clear)
        spdlog::warn("order {}: pad {} sent card data in clear; refused (keys.require_p2pe)", req.order_no,
                     till->pad);
      code = clear ? "card.unprotected" : "card.unreadable";
      if (!clear) detail = "no card data";
    }
    auto r = co_await conclude(code, order_state::failed, journal::actor::pad, detail);
    pad->show({s.why.why.customer_text});
    co_return r;
  };
  const bool tapped = card_msg->mode == pad::entry_mode::contactless && clss_on;
  if ((card_msg->mode == pad::entry_mode::chip || tapped) && !card_msg->atr.empty() && ctx.cfg().emv.enabled) {
    if (!card_msg->ksn.empty()) {
      const auto keys = ctx.key_store();
      auto session = keys ? keys->begin(card_msg->ksn)
                          : result<card_session>(make_error("keys.unavailable", "no key store"));
      if (!session) {
        spdlog::warn("order {}: pad {} chip card (KSN {}): {}: {}", req.order_no, till->pad,
                     to_hex(card_msg->ksn), session.err().code, session.err().message);
        auto r =
            co_await conclude("card.key_error", order_state::failed, journal::actor::pad, session.err().code);
        pad->show({s.why.why.customer_text});
        co_return r;
      }
      dukpt.emplace(std::move(*session));
    } else if (ctx.cfg().keys.require_p2pe) {
      auto r = co_await conclude("card.unprotected", order_state::failed, journal::actor::pad);
      pad->show({s.why.why.customer_text});
      co_return r;
    }
    emv::transaction txn;
    txn.amount = static_cast<std::uint64_t>(req.amount);
    txn.other_amount = static_cast<std::uint64_t>(req.cashback);
    // Only a purchase may be approved offline: refunds, pre-authorisations and inquiries go online.
    txn.force_online = req.kind != "sale";
    txn.currency = eftd::find_currency(req.currency) ? eftd::find_currency(req.currency)->numeric : 0;
    txn.type = req.kind == "refund"            ? 0x20
               : req.kind == "balance_inquiry" ? 0x31
               : req.cashback > 0              ? 0x09
                                               : 0x00;
    {
      std::time_t t = static_cast<std::time_t>(ctx.clock.now_ms() / 1000);
      std::tm tm{};
      localtime_r(&t, &tm);
      txn.date = fmt::format("{:02}{:02}{:02}", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday);
      txn.time = fmt::format("{:02}{:02}{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    if (tapped) {
      emv::contactless_cache* cache = nullptr;
      {
        std::lock_guard lk(ctx.contactless_mu);
        auto& slot = ctx.contactless_caches[till->pad];
        if (!slot) slot = std::make_unique<emv::contactless_cache>(contactless_kernel_config(emv_eff));
        cache = slot.get();
      }
      clss = std::make_unique<contactless_flow>(ctx, pad, *cache, emv_eff, till->terminal_id,
                                                merchant->acquirer_merchant_id, std::move(txn));
      beacon.say("card", "Reading the contactless card");
      const std::chrono::milliseconds wait(ctx.cfg().timeout.card_read_ms);
      emv::contactless_result res = co_await clss->tap(wait, true);
      // Try again: the card answered what the plan did not expect (the cache now knows it), or
      // left the field too early. Two more taps at most.
      for (int again = 0; res.outcome == emv::clss_outcome::try_again && again < 2; ++again) {
        spdlog::info("order {}: contactless tap again ({})", req.order_no, res.reason_code);
        pad->show({"Please present", "the card again"});
        beacon.say("card", "The customer taps the card again");
        auto next = co_await clss->tap(wait, false);
        res = std::move(next);
      }
      // The tap time (how long the card was in use) is in the summary: logged and journaled.
      spdlog::info("order {}: {}", req.order_no, clss->summary());
      note("card_tapped", fmt::format("order {}: {}", req.order_no, clss->summary()));
      s.emv_data = clss->receipt_data();
      std::string_view stop;
      std::string_view state = order_state::failed;
      switch (res.outcome) {
        case emv::clss_outcome::approved:
        case emv::clss_outcome::online_request:
          break;
        case emv::clss_outcome::declined:
          stop = "card.declined_by_card";
          state = order_state::declined;
          break;
        case emv::clss_outcome::try_another_interface:
          stop = "card.try_another_interface";
          break;
        case emv::clss_outcome::try_again:
        case emv::clss_outcome::end_application:
          stop = "card.unreadable";
          break;
      }
      if (!stop.empty()) {
        std::string detail = res.reason_code.empty() ? std::string() : res.reason_code;
        spdlog::info("order {}: contactless {} ({})", req.order_no, stop, clss->summary());
        auto r = co_await conclude(stop, state, journal::actor::pad, detail);
        if (pad->open()) pad->show({s.why.why.customer_text});
        co_return r;
      }
      auto t2 = clss->track2();
      if (!t2) {
        auto r =
            co_await conclude("card.unreadable", order_state::failed, journal::actor::pad, t2.err().code);
        pad->show({s.why.why.customer_text});
        co_return r;
      }
      track_clear = t2->encode_ascii();
    } else {
      chip = std::make_unique<chip_flow>(ctx, pad, dukpt ? &*dukpt : nullptr, emv_eff, till->terminal_id,
                                         merchant->acquirer_merchant_id, std::move(txn));
      beacon.say("card", "Reading the chip card");
      co_await chip->run_to_card();
      // Before the card was known: no mutual application, a blocked or mute chip, bad data.
      // A technical failure (the chip does not answer properly, or has no application this
      // terminal accepts) falls back to the stripe of the same card, in the same sale, when
      // this till's rule allows it; a blocked card or bad card data does not.
      const bool technical =
          chip->finished() &&
          (chip->outcome() == emv::outcome::fallback_to_magstripe ||
           (chip->outcome() == emv::outcome::end_application && chip->reason() == "emv.card_error"));
      if (chip->finished() && !(technical && fallback_permitted())) {
        std::string detail =
            " (" + chip->reason() + (technical ? "; fallback to the stripe not allowed)" : ")");
        spdlog::info("order {}: chip ended before verification: {} {}", req.order_no,
                     emv::to_string(chip->outcome()), chip->reason());
        co_await chip->power_off();
        const std::string_view code = technical ? "card.chip_error" : "card.unreadable";
        auto r = co_await conclude(code, order_state::failed, journal::actor::pad, detail);
        pad->show({s.why.why.customer_text});
        co_return r;
      }
      if (technical) {
        const std::string chip_reason = chip->reason();
        spdlog::info("order {}: chip error ({}); falling back to the stripe", req.order_no, chip_reason);
        co_await chip->power_off();
        chip.reset();
        dukpt.reset();
        note("chip_fallback", fmt::format("order {}: chip error ({}); the customer swipes the card",
                                          req.order_no, chip_reason));
        pad::read_card swipe = rc;
        swipe.interfaces = static_cast<std::uint8_t>(pad::interface_mask::magstripe);
        swipe.prompt = {"Chip error", "Swipe card"};
        beacon.say("card", "Chip error: the customer swipes the card");
        if (req.control) req.control->set_pad(pad);
        auto again =
            co_await pad->command(swipe, std::chrono::milliseconds(ctx.cfg().timeout.card_read_ms + 5000));
        if (req.control) req.control->set_pad(nullptr);
        const auto* swiped = again ? std::get_if<pad::card_read>(&*again) : nullptr;
        if (!swiped || !swiped->atr.empty()) {
          std::string reason =
              again ? std::string("card.unreadable") : pad_stop_reason(again.err().code, aborted(), "card");
          const auto state = stop_state(reason);
          const auto who = stop_actor(reason);
          auto r = co_await conclude(reason, state, who);
          if (pad->open()) pad->show({s.why.why.customer_text});
          co_return r;
        }
        if (auto stop = co_await open_stripe(*swiped)) co_return std::move(*stop);
        mode = pad::entry_mode::fallback_magstripe;
      } else {
        auto t2 = chip->track2();
        if (!t2) {
          co_await chip->power_off();
          auto r =
              co_await conclude("card.unreadable", order_state::failed, journal::actor::pad, t2.err().code);
          pad->show({s.why.why.customer_text});
          co_return r;
        }
        track_clear = t2->encode_ascii();
      }
    }
  } else {
    if (mode == pad::entry_mode::fallback_magstripe && ctx.cfg().emv.enabled && !fallback_permitted()) {
      // The pad found the chip mute and had the card swiped; this till's rule refuses that.
      auto r = co_await conclude("card.chip_error", order_state::failed, journal::actor::pad,
                                 " (fallback to the stripe is not allowed here)");
      pad->show({s.why.why.customer_text});
      co_return r;
    }
    if (auto stop = co_await open_stripe(*card_msg)) co_return std::move(*stop);
  }
  auto card = eftd::track2::parse(
      std::string_view(reinterpret_cast<const char*>(track_clear.view().data()), track_clear.size()));
  if (!card) {
    auto r = co_await conclude("card.unreadable", order_state::failed, journal::actor::pad, card.err().code);
    pad->show({s.why.why.customer_text});
    co_return r;
  }
  const auto& pan = card->account();
  s.masked_pan = pan.masked();
  s.entry_mode = entry_mode_name(mode);
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
    take_deferred(b);
    deferred = std::move(b);
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
  } else if (mode == pad::entry_mode::magstripe && ctx.cfg().emv.enabled && ctx.cfg().emv.refuse_chip_swipes &&
             card->service_code().size() == 3 &&
             (card->service_code()[0] == '2' || card->service_code()[0] == '6')) {
    // The service code says the card has a chip, and the chip was not tried (a fallback after a
    // chip error is entry mode "fallback", not "magstripe").
    card_decline = "card.use_chip";
  }
  // The most specific route: this merchant's before a general one, BIN prefix before scheme.
  const config::route* route = ctx.cfg().route_for(pan.bin(8), s.scheme, merchant->id);
  if (card_decline.empty() && !route) card_decline = "route.none";
  if (!card_decline.empty()) {
    auto r = co_await conclude(card_decline, order_state::declined, journal::actor::server, card_detail);
    pad->show({s.why.why.customer_text});
    co_return r;
  }

  {
    auto v = co_await ask_configured("after_card");
    if (auto stop = prompt_outcome(v)) {
      auto r = co_await conclude(stop->first, order_state::cancelled, journal::actor::pos, stop->second);
      pad->show({s.why.why.customer_text});
      co_return r;
    }
  }
  if (aborted()) {
    auto r = co_await conclude("pos.aborted", order_state::cancelled, journal::actor::pos);
    pad->show({s.why.why.customer_text});
    co_return r;
  }

  // 3b. Cardholder verification for a swiped card: online PIN on the pad when the service code
  // (or the configuration) asks for it. The pad's DUKPT PIN block is translated inside the key
  // module to ISO 0 under the acquirer's ZPK; eftd never holds the PIN outside that call.
  secure_bytes pad_pin_block;
  bytes pin_ksn;
  // get_pin on the pad (the cashier can abort it), timed for the metrics. Pre: dukpt is open.
  auto ask_pin = [&](bool bypass) -> asio::awaitable<result<pad::message>> {
    pad::get_pin gp;
    gp.amount = req.amount;
    gp.currency = req.currency;
    gp.format = dukpt->kind() == p2pe::dukpt_kind::tdes ? 0 : 4;
    gp.bypass = bypass;
    gp.timeout_ms = ctx.cfg().cvm.pin_timeout_ms;
    gp.prompt = {kt.moves_money ? money_text : "Balance inquiry", "Enter PIN"};
    beacon.say("pin", "The customer enters the PIN on the PIN pad");
    if (req.control) req.control->set_pad(pad);
    const auto started = std::chrono::steady_clock::now();
    auto entered = co_await pad->command(gp, std::chrono::milliseconds(ctx.cfg().cvm.pin_timeout_ms + 5000));
    ctx.metrics->observe(stage::pin, ms_since(started));
    if (req.control) req.control->set_pad(nullptr);
    co_return entered;
  };
  // 3d. The card approved offline (chip: TC at the first GENERATE AC, under the floor limit with
  // the terminal's and the issuer's action codes allowing it; contactless: a TC under the
  // contactless floor limit). Only a purchase is taken offline (every other kind is forced
  // online); the sale stands once its advice is durable in the store-and-forward queue, which
  // delivers it to the acquirer with the card (the PAN sealed in the operation, expiry and
  // sequence number sealed in the message). The card is already powered off.
  auto take_offline = [&](const bytes& field55, const std::string& card_sequence,
                          const std::string& summary) -> asio::awaitable<pos::result> {
    spdlog::info("order {}: approved offline by the card ({})", req.order_no, summary);
    const auto at = ctx.clock.now_ms();
    acquirer_request areq;
    areq.acquirer = route->acquirer;
    areq.terminal_id = till->terminal_id;
    areq.at_ms = at;
    std::string stan_counter;
    areq.stan = ctx.next_stan(areq.acquirer, areq.terminal_id, stan_counter);
    areq.rrn = make_rrn(at, areq.stan);
    auto card_details = journal::seal_advice_card(ctx.keys, {card->expiry_yymm(), card_sequence});
    std::string failure;
    if (!card_details) failure = card_details.err().code;
    if (failure.empty()) {
      s.stan = fmt::format("{:06}", areq.stan);
      s.rrn = areq.rrn;
      s.auth_code = "Y1";
      s.response_code = "Y1";
      s.approved_amount = req.amount;
      s.why = motivate("approved.offline", s.order_no);
      journal::batch b;
      b.records.push_back(journal::counter_set{stan_counter, areq.stan});
      journal::acquirer_message_written mw;
      mw.msg_id = journal::new_id();
      mw.op_id = op_id;
      mw.acquirer = areq.acquirer;
      mw.terminal_id = areq.terminal_id;
      mw.mti = "0220";
      mw.stan = areq.stan;
      mw.local_datetime = local_datetime_of(at);
      mw.rrn = areq.rrn;
      mw.amount_minor = req.amount;
      mw.currency = req.currency;
      mw.state = std::string(journal::message_states::pending);
      mw.created_ms = at;
      mw.next_attempt_ms = at;
      mw.icc_data = field55;
      mw.card_ciphertext = std::move(*card_details);
      b.records.push_back(std::move(mw));
      final_batch(b, order_state::approved, at, journal::actor::pad, "advice_pending");
      b.records.push_back(event(order_id, op_id, at, journal::actor::pad, "approved_offline",
                                fmt::format("order {}: approved offline by the card ({}); 0220 advice to {} "
                                            "STAN {} queued",
                                            req.order_no, summary, areq.acquirer, s.stan)));
      take_deferred(b);
      if (auto st = co_await commit(ctx, std::move(b)); !st) failure = st.err().code;
    }
    if (!failure.empty()) {
      // Nothing durable owes the acquirer this sale, so it is not taken (the TC is never sent).
      spdlog::error("order {}: offline approval not journaled: {}", req.order_no, failure);
      s.approved_amount = 0;
      s.auth_code.clear();
      s.response_code.clear();
      auto r = co_await conclude("journal.unavailable", order_state::failed, journal::actor::server);
      if (pad->open()) pad->show({s.why.why.customer_text});
      co_return r;
    }
    notify_reversals(ctx, areq.acquirer);
    if (pad->open()) pad->show({s.why.why.customer_text});
    co_return make_result(ctx, s, req.request_id);
  };
  if (chip) {
    // 3c. A chip card verifies the cardholder by its own CVM list (offline PIN on the pad,
    // online PIN, signature, no CVM) and decides at GENERATE AC whether to go online.
    std::string pin_stop;  // a PIN entry that ended the transaction (cancel, timeout, pad gone)
    chip_flow::online_pin_fn pin_fn = [&](bool bypass_allowed) -> asio::awaitable<emv::pin_result> {
      if (!dukpt) {
        pin_stop = "pin.unavailable";
        co_return emv::pin_result::failed;
      }
      const bool bypass = bypass_allowed && ctx.cfg().cvm.pin_bypass;
      auto entered = co_await ask_pin(bypass);
      if (!entered) {
        pin_stop = pad_stop_reason(entered.err().code, aborted(), "pin");
        co_return emv::pin_result::failed;
      }
      auto* pe = std::get_if<pad::pin_entered>(&*entered);
      if (!pe || (!pe->bypassed && (pe->pin_block.empty() || pe->ksn.empty()))) {
        pin_stop = "pin.unavailable";
        co_return emv::pin_result::failed;
      }
      if (pe->bypassed) co_return bypass ? emv::pin_result::bypassed : emv::pin_result::failed;
      pad_pin_block = pe->pin_block;
      pin_ksn = pe->ksn;
      co_return emv::pin_result::entered;
    };
    co_await chip->resume(pin_fn);
    // 3d. The card approved offline (TC at the first GENERATE AC): see take_offline.
    if (pin_stop.empty() && chip->finished() && chip->outcome() == emv::outcome::approved_offline &&
        req.kind == "sale" && sealed) {
      const bytes field55 = chip->offline_field55();
      const std::string sequence = chip->pan_sequence();
      const std::string summary = chip->summary();
      s.emv_data = chip->receipt_data();
      co_await chip->power_off();
      co_return co_await take_offline(field55, sequence, summary);
    }
    if (!pin_stop.empty() || (chip->finished() && chip->outcome() != emv::outcome::approved_online)) {
      std::string code = pin_stop;
      std::string detail;
      std::string_view state = order_state::failed;
      if (code.empty()) {
        detail = " (" + chip->reason() + ")";
        switch (chip->outcome()) {
          case emv::outcome::declined_offline:
            code = "card.declined_by_card";
            state = order_state::declined;
            break;
          case emv::outcome::approved_offline:
            // Only a purchase whose PAN could be sealed for its advice is taken offline.
            code = "card.offline_not_supported";
            break;
          case emv::outcome::fallback_to_magstripe:
            code = "card.chip_error";
            break;
          default:
            code = "card.unreadable";
        }
      } else {
        state = stop_state(code);
      }
      spdlog::info("order {}: chip card: {} ({})", req.order_no, code, chip->summary());
      s.emv_data = chip->receipt_data();
      co_await chip->power_off();
      const auto who = stop_actor(code);
      auto r = co_await conclude(code, state, who, detail);
      if (pad->open()) pad->show({s.why.why.customer_text});
      co_return r;
    }
    std::string chip_text = fmt::format("order {}: chip {}{}", req.order_no, chip->summary(),
                                        chip->signature_required() ? "; signature required" : "");
    note("chip_read", chip_text);
  } else if (clss && clss->result().outcome == emv::clss_outcome::approved) {
    // A contactless TC (with CDCVM or no CVM): offline, like a chip's.
    if (req.kind == "sale" && sealed) {
      const bytes field55 = clss->offline_field55();
      const std::string sequence = clss->pan_sequence();
      const std::string summary = clss->summary();
      co_return co_await take_offline(field55, sequence, summary);
    }
    auto r = co_await conclude("card.offline_not_supported", order_state::failed, journal::actor::pad);
    pad->show({s.why.why.customer_text});
    co_return r;
  } else if (clss ? clss->result().cvm == emv::clss_cvm::online_pin
                  : pin_required(ctx.cfg().cvm, card->service_code())) {
    // A swiped card whose service code (or the configuration) asks for online PIN, or a tap
    // whose kernel asked for it (over the CVM-required limit).
    if (!dukpt) {
      auto r = co_await conclude("pin.unavailable", order_state::failed, journal::actor::server,
                                 " (the card was not read under DUKPT)");
      pad->show({s.why.why.customer_text});
      co_return r;
    }
    const bool bypass = !clss && ctx.cfg().cvm.pin_bypass && ctx.cfg().cvm.magstripe_pin != "always" &&
                        !pin_mandatory(card->service_code());
    auto entered = co_await ask_pin(bypass);
    if (!entered) {
      const auto& code = entered.err().code;
      const std::string reason = pad_stop_reason(code, aborted(), "pin");
      // Named locals: GCC 12 destroys temporaries inside a co_await expression twice.
      const auto state = stop_state(reason);
      const auto who = stop_actor(reason);
      std::string detail;
      if (reason == "pin.unavailable") detail = " (" + code + ")";
      auto r = co_await conclude(reason, state, who, detail);
      if (pad->open()) pad->show({s.why.why.customer_text});
      co_return r;
    }
    auto* pe = std::get_if<pad::pin_entered>(&*entered);
    if (!pe || (!pe->bypassed && (pe->pin_block.empty() || pe->ksn.empty()))) {
      auto r = co_await conclude("pin.unavailable", order_state::failed, journal::actor::pad,
                                 " (unexpected reply)");
      pad->show({s.why.why.customer_text});
      co_return r;
    }
    if (pe->bypassed) {
      if (!bypass) {
        auto r = co_await conclude("pin.required", order_state::declined, journal::actor::pad);
        pad->show({s.why.why.customer_text});
        co_return r;
      }
      std::string text = fmt::format("order {}: the customer bypassed PIN entry", req.order_no);
      note("pin_bypassed", std::move(text));
    } else {
      pad_pin_block = pe->pin_block;
      pin_ksn = pe->ksn;
      std::string text =
          fmt::format("order {}: online PIN entered on the pad (KSN {})", req.order_no, to_hex(pin_ksn));
      note("pin_entered", std::move(text));
    }
    if (aborted()) {
      auto r = co_await conclude("pos.aborted", order_state::cancelled, journal::actor::pos);
      pad->show({s.why.why.customer_text});
      co_return r;
    }
  }
  // The PIN block for one acquirer: its ZPK, format 0. Empty when no PIN was entered.
  auto zone_pin_block = [&](const std::string& acquirer) -> result<bytes> {
    if (pad_pin_block.empty()) return bytes{};
    const auto* acq = ctx.cfg().find_acquirer(acquirer);
    return dukpt->translate_pin(pad_pin_block.view(), pin_ksn, pan.reveal(), acq ? acq->zpk : "");
  };

  // 4. Write-ahead: the request's intent (with its STAN) is durable before it is sent.
  acquirer_request areq;
  areq.acquirer = route->acquirer;
  areq.terminal_id = till->terminal_id;
  areq.card_acceptor_id = merchant->acquirer_merchant_id;
  areq.mti = std::string(kt.mti);
  areq.processing_code = std::string(kt.processing_code);
  if (req.kind == "preauth") areq.pos_condition_code = "06";
  areq.pos_entry_mode = pos_entry_mode_code(mode);
  areq.at_ms = ctx.clock.now_ms();
  std::string stan_counter;
  areq.stan = ctx.next_stan(areq.acquirer, areq.terminal_id, stan_counter);
  areq.rrn = make_rrn(areq.at_ms, areq.stan);
  areq.amount_minor = req.amount;
  areq.currency_numeric = eftd::find_currency(req.currency)->numeric;
  if (chip) {
    areq.icc_data = chip->field55();
    areq.card_sequence = chip->pan_sequence();
  } else if (clss) {
    areq.icc_data = clss->result().field55;
    areq.card_sequence = clss->pan_sequence();
  }
  if (auto zb = zone_pin_block(areq.acquirer); !zb) {
    spdlog::warn("order {}: PIN not translated for {}: {}: {}", req.order_no, areq.acquirer, zb.err().code,
                 zb.err().message);
    std::string detail = " (" + zb.err().code + ")";
    auto r = co_await conclude("pin.unavailable", order_state::failed, journal::actor::server, detail);
    pad->show({s.why.why.customer_text});
    co_return r;
  } else {
    areq.pin_block = std::move(*zb);
  }
  if (!areq.pin_block.empty()) areq.pos_entry_mode.back() = '1';  // PIN entered: terminal accepts PINs
  s.stan = fmt::format("{:06}", areq.stan);
  s.rrn = areq.rrn;
  std::string msg_id = journal::new_id();
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
    mw.currency = req.currency;
    mw.state = std::string(journal::message_states::sent);
    mw.created_ms = areq.at_ms;
    b.records.push_back(mw);
    journal::operation_updated opu;
    opu.op_id = op_id;
    opu.state = "authorizing";
    opu.updated_ms = areq.at_ms;
    b.records.push_back(opu);
    b.records.push_back(event(order_id, op_id, areq.at_ms, journal::actor::server, "authorizing",
                              fmt::format("{} ({}) to {} STAN {} RRN {}", areq.mti, areq.processing_code,
                                          areq.acquirer, s.stan, s.rrn)));
    take_deferred(b);
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      auto r = co_await conclude("journal.unavailable", order_state::failed, journal::actor::server);
      pad->show({s.why.why.customer_text});
      co_return r;
    }
  }
  beacon.say("authorizing", "Authorizing with " + areq.acquirer);
  pad->show({"Please wait", "Authorizing"});

  // 5. The acquirer decides. An abort cannot stop a request already sent; it is honoured
  // when the answer comes (an approval is then reversed).
  auto ans = co_await send_financial(ctx, areq, *card);
  // The fallback needs the PIN under its own ZPK; without one it cannot take the sale.
  result<bytes> fallback_pin =
      route->fallback.empty() ? result<bytes>(bytes{}) : zone_pin_block(route->fallback);
  if (!ans && (ans.err().code == "acq.connect_failed" || ans.err().code == "acq.unknown_acquirer") &&
      !route->fallback.empty() && ctx.links.contains(route->fallback) && fallback_pin) {
    // The primary was never reached (connect failed, its reconnect backoff runs, or it has no
    // link), so it cannot have approved anything: the sale may go to the route's fallback.
    // Only then: once a request was sent (timeout, disconnect, bad answer) the first may
    // have been approved, and a second acquirer could charge the card twice. The fallback gets
    // its own write-ahead (its STAN, a new message) and the primary's message is closed.
    acquirer_request fb = areq;
    fb.acquirer = route->fallback;
    fb.pin_block = std::move(*fallback_pin);
    fb.at_ms = ctx.clock.now_ms();
    fb.stan = ctx.next_stan(fb.acquirer, fb.terminal_id, stan_counter);
    fb.rrn = make_rrn(fb.at_ms, fb.stan);
    const std::string fb_stan = fmt::format("{:06}", fb.stan);
    const std::string fb_msg_id = journal::new_id();
    journal::batch b;
    journal::acquirer_message_updated failed;
    failed.msg_id = msg_id;
    failed.state = std::string(journal::message_states::failed);
    failed.updated_ms = fb.at_ms;
    b.records.push_back(failed);
    b.records.push_back(journal::counter_set{stan_counter, fb.stan});
    journal::acquirer_message_written mw;
    mw.msg_id = fb_msg_id;
    mw.op_id = op_id;
    mw.acquirer = fb.acquirer;
    mw.terminal_id = fb.terminal_id;
    mw.mti = fb.mti;
    mw.stan = fb.stan;
    mw.local_datetime = local_datetime_of(fb.at_ms);
    mw.rrn = fb.rrn;
    mw.amount_minor = fb.amount_minor;
    mw.currency = req.currency;
    mw.state = std::string(journal::message_states::sent);
    mw.created_ms = fb.at_ms;
    b.records.push_back(mw);
    b.records.push_back(
        event(order_id, op_id, fb.at_ms, journal::actor::server, "routed_to_fallback",
              fmt::format("routed to fallback {}: {} unreachable ({}); {} STAN {} RRN {}", fb.acquirer,
                          areq.acquirer, ans.err().code, fb.mti, fb_stan, fb.rrn)));
    take_deferred(b);
    if (auto st = co_await commit(ctx, std::move(b)); st) {
      spdlog::warn("order {}: acquirer {} unreachable, routed to fallback {}", s.order_no, areq.acquirer,
                   fb.acquirer);
      areq = std::move(fb);
      msg_id = fb_msg_id;
      s.stan = fb_stan;
      s.rrn = areq.rrn;
      auto again = co_await send_financial(ctx, areq, *card);
      ans = std::move(again);
    } else {
      // Nothing durable says the fallback was tried: it is not sent, the sale fails as unreachable.
      spdlog::error("order {}: fallback not journaled: {}", s.order_no, st.err().message);
    }
  }
  // The card hears the issuer's answer (issuer authentication, scripts, second GENERATE AC).
  // Without an answer the card is only closed: the sale fails and is reversed either way.
  bool card_refused = false;
  if (chip) {
    std::optional<acquirer_answer> for_card;
    if (ans) for_card = *ans;
    co_await chip->complete(for_card);
    card_refused = ans && response_code_approves(ans->response_code) && chip->finished() &&
                   chip->outcome() == emv::outcome::declined_after_approval;
    if (chip->finished())
      spdlog::info("order {}: chip {} ({})", req.order_no, emv::to_string(chip->outcome()), chip->summary());
    s.emv_data = chip->receipt_data();
    co_await chip->power_off();
  } else if (clss) {
    // A contactless card left the field at the tap: the answer is only recorded.
    std::optional<acquirer_answer> answer;
    if (ans) answer = *ans;
    clss->complete(answer);
    s.emv_data = clss->receipt_data();
  }
  const auto at = ctx.clock.now_ms();
  if (!ans) {
    // No answer (or an unreadable one): the outcome at the acquirer is unknown, so the money
    // may have moved. The POS is told "not approved", and a reversal is owed until acknowledged
    // (an inquiry moves no money: nothing to reverse).
    const bool never_sent =
        ans.err().code == "acq.connect_failed" || ans.err().code == "acq.unknown_acquirer";
    const bool owes_reversal = !never_sent && kt.moves_money;
    std::string code = never_sent                             ? "acquirer.unreachable"
                       : ans.err().code == "acq.decode_error" ? "acquirer.bad_response"
                                                              : "acquirer.timeout";
    s.why = motivate(code, s.order_no, never_sent ? areq.acquirer : "");
    journal::batch b;
    journal::acquirer_message_updated mu;
    mu.msg_id = msg_id;
    mu.state = std::string(owes_reversal ? journal::message_states::reversal_pending
                                         : journal::message_states::failed);
    mu.updated_ms = at;
    b.records.push_back(mu);
    final_batch(b, order_state::failed, at, journal::actor::acquirer,
                owes_reversal ? "reversal_pending" : "failed");
    if (owes_reversal) queue_reversal(ctx, b, areq, msg_id, op_id, req.currency, at, at);
    take_deferred(b);
    auto st = co_await commit(ctx, std::move(b));
    if (!st) s.why = motivate("journal.unavailable", s.order_no);
    // Without a durable queue entry the request stays 'sent' in the journal: start-up recovery
    // queues its reversal then.
    if (owes_reversal && st) notify_reversals(ctx, areq.acquirer);
    spdlog::warn("order {}: {} ({})", s.order_no, ans.err().code, ans.err().message);
    pad->show({s.why.why.customer_text});
    co_return make_result(ctx, s, req.request_id);
  }

  s.response_code = ans->response_code;
  s.auth_code = ans->auth_code;
  if (!ans->rrn.empty()) s.rrn = ans->rrn;
  const bool ok = response_code_approves(ans->response_code);
  // Partial approval (response 10): the issuer approved less than asked (field 4 of the
  // answer). The cashier must accept it; until then nothing is final, and a refusal (or a POS
  // that cannot be asked) reverses it.
  std::int64_t approved = req.amount;
  bool partial_refused = false;
  if (ok && kt.moves_money && ans->response_code == "10" && ans->amount && *ans->amount < req.amount) {
    approved = std::max<std::int64_t>(0, *ans->amount);
    {
      journal::batch b;
      journal::acquirer_message_updated mu;
      mu.msg_id = msg_id;
      mu.state = std::string(journal::message_states::answered);
      mu.response_code = ans->response_code;
      if (!ans->auth_code.empty()) mu.auth_code = ans->auth_code;
      mu.updated_ms = at;
      b.records.push_back(mu);
      b.records.push_back(
          event(order_id, op_id, at, journal::actor::acquirer, "partial_approval",
                fmt::format("partially approved: {} of {} {}", approved, req.amount, req.currency)));
      take_deferred(b);
      if (auto st = co_await commit(ctx, std::move(b)); !st)
        spdlog::error("order {}: partial approval not journaled: {}", s.order_no, st.err().message);
    }
    auto part = eftd::money::of(approved, req.currency);
    pos::prompt p;
    p.id = req.request_id;
    p.prompt_id = "partial_approval";
    p.order_no = req.order_no;
    p.kind = "yes_no";
    p.text = fmt::format("Only {} of {} approved. Accept the partial payment?",
                         part ? part->format() : std::to_string(approved), money_text);
    p.options = {"yes", "no"};
    p.timeout_ms = 60000;
    p.default_value = "no";
    beacon.say("question", p.text);
    std::optional<std::string> v = p.default_value;
    if (req.control) v = co_await req.control->ask(p, to_pos);
    if (v)
      note("prompt_answered", fmt::format("order {}: 'partial_approval' answered '{}'", req.order_no, *v));
    partial_refused = !v || *v != "yes";
  }
  // Signature: the card's CVM chose it (chip CVM list, or a tap over the CVM-required limit
  // whose kernel asked for it). The cashier compares the signature on the merchant copy with
  // the card's and confirms on the POS. "no", no answer or an abort reverses the approval: no
  // money is taken on a signature nobody checked.
  bool signature_refused = false;
  const bool wants_signature =
      (chip && chip->signature_required()) || (clss && clss->result().cvm == emv::clss_cvm::signature);
  if (ok && kt.moves_money && wants_signature && !partial_refused && !card_refused && !aborted()) {
    pos::prompt p;
    p.id = req.request_id;
    p.prompt_id = "signature";
    p.order_no = req.order_no;
    p.kind = "yes_no";
    p.text = "Check the customer's signature on the receipt against the card. Does it match?";
    p.options = {"yes", "no"};
    p.timeout_ms = ctx.cfg().cvm.signature_timeout_ms;
    p.default_value = "no";
    beacon.say("question", p.text);
    std::optional<std::string> v = p.default_value;
    if (req.control) v = co_await req.control->ask(p, to_pos);
    signature_refused = !v || *v != "yes";
    note("signature_checked", fmt::format("order {}: the cashier {} the customer's signature", req.order_no,
                                          !v                  ? "did not answer about"
                                          : signature_refused ? "refused"
                                                              : "accepted"));
  }
  const bool abort_after_approval =
      ok && kt.moves_money && (aborted() || partial_refused || card_refused || signature_refused);
  s.approved_amount = ok && kt.moves_money && !abort_after_approval ? approved : 0;
  if (ok && !kt.moves_money) s.balance = ans->balance;
  if (abort_after_approval && card_refused)
    s.why = motivate("card.declined_after_approval", s.order_no);
  else if (abort_after_approval && signature_refused && !aborted())
    s.why = motivate("cvm.signature_refused", s.order_no);
  else if (abort_after_approval && partial_refused && !aborted())
    s.why = motivate("pos.partial_declined", s.order_no);
  else if (abort_after_approval)
    s.why = motivate("pos.aborted", s.order_no, "approved by the acquirer after the abort; reversed");
  else
    s.why = motivate(ok ? "approved" : reason_for_response_code(ans->response_code), s.order_no,
                     ok ? "" : "response " + ans->response_code);
  {
    journal::batch b;
    journal::acquirer_message_updated mu;
    mu.msg_id = msg_id;
    mu.state = std::string(abort_after_approval ? journal::message_states::reversal_pending
                                                : journal::message_states::answered);
    mu.response_code = ans->response_code;
    if (!ans->auth_code.empty()) mu.auth_code = ans->auth_code;
    mu.updated_ms = at;
    b.records.push_back(mu);
    if (abort_after_approval) {
      const bool declined = card_refused || (signature_refused && !aborted());
      final_batch(b, declined ? order_state::declined : order_state::cancelled, at,
                  card_refused ? journal::actor::pad : journal::actor::pos, "reversal_pending");
      queue_reversal(ctx, b, areq, msg_id, op_id, req.currency, at, at);
    } else
      final_batch(b, ok ? order_state::approved : order_state::declined, at, journal::actor::acquirer,
                  ok ? "approved" : "declined");
    take_deferred(b);
    if (auto st = co_await commit(ctx, std::move(b)); !st) {
      // Never tell the POS "approved" without a durable record: reverse instead.
      spdlog::error("order {}: answer not journaled ({}); reversing", s.order_no, st.err().message);
      s.approved_amount = 0;
      s.why = motivate("journal.unavailable", s.order_no);
      if (ok && kt.moves_money) {
        // Queue the reversal in a batch of its own (the journal may be back); if that fails
        // too, the request is still 'sent' in the journal and start-up recovery reverses it.
        journal::batch rb;
        journal::acquirer_message_updated rmu;
        rmu.msg_id = msg_id;
        rmu.state = std::string(journal::message_states::reversal_pending);
        rmu.updated_ms = at;
        rb.records.push_back(rmu);
        queue_reversal(ctx, rb, areq, msg_id, op_id, req.currency, at, at);
        if (auto rst = co_await commit(ctx, std::move(rb)); rst) notify_reversals(ctx, areq.acquirer);
      }
      pad->show({s.why.why.customer_text});
      co_return make_result(ctx, s, req.request_id);
    }
  }
  if (abort_after_approval) notify_reversals(ctx, areq.acquirer);
  spdlog::info("order {}: {} {} ({}), {} {}", s.order_no, req.kind, s.why.outcome, s.why.why.code, s.scheme,
               s.masked_pan);
  pad->show({s.why.why.customer_text});
  co_return make_result(ctx, s, req.request_id);
}

asio::awaitable<pos::result> run_cancel(server_context& ctx, std::string request_id, std::string till_id,
                                        pos::cancel req) {
  auto answer = [&](const tx_summary& base, std::string_view outcome_code, std::string detail = {}) {
    tx_summary s = base;
    s.kind = "CANCEL";
    s.why = motivate(outcome_code, req.order_no, detail);
    if (s.why.outcome == "approved") s.approved_amount = 0;  // a cancel takes no money
    return make_result(ctx, s, request_id);
  };
  auto view = ctx.find_order_view(till_id, req.order_no, req.business_date);
  if (!view) {
    tx_summary s;
    s.order_no = req.order_no;
    s.till_id = till_id;
    s.business_date = req.business_date.empty() ? business_date_of(ctx.clock.now_ms()) : req.business_date;
    s.at_ms = ctx.clock.now_ms();
    co_return answer(s, "cancel.unknown_order");
  }
  const auto base = summary_from_journal(ctx, *view);
  const auto& o = view->order;
  const std::string code = o.result_code.value_or("");
  // Repeating a cancel that went through answers the same, and reverses or refunds nothing twice.
  if ((o.state == order_state::reversed || o.state == order_state::cancelled) &&
      (code == "cancel.done" || code == "cancel.refunded"))
    co_return answer(base, code);
  if (o.state == order_state::in_progress) co_return answer(base, "cancel.in_progress");
  if (o.state != order_state::approved || o.kind == "balance_inquiry")
    co_return answer(base, "cancel.nothing_to_cancel", std::string(status_word(o.state)));

  // The approved request to reverse.
  const journal::acquirer_message_row* msg = nullptr;
  std::string pay_op_kind;
  for (const auto& m : view->messages)
    if ((m.mti == "0200" || m.mti == "0100" || m.mti == "0220") &&
        m.state == journal::message_states::answered)
      msg = &m;
  // A completion, or a sale the card approved offline, whose advice is still in the queue: the
  // acquirer does not know it yet, so there is nothing to reverse until it does.
  const bool advice_in_queue = std::any_of(view->messages.begin(), view->messages.end(), [](const auto& m) {
    return m.mti == "0220" && m.state == journal::message_states::pending;
  });
  if (!msg && (o.kind == journal::order_kinds::completion || advice_in_queue))
    co_return answer(base, "cancel.not_possible",
                     "the advice is still being delivered to the acquirer; try again in a few minutes");
  if (o.kind == journal::order_kinds::preauth && msg) {
    // Completed: the money is charged by the completion, which is what must be cancelled.
    result<std::int64_t> completed = std::int64_t{0};
    {
      std::lock_guard lk(ctx.reader_mu);
      completed = ctx.reader->follow_up_amount(msg->op_id, journal::order_kinds::completion);
    }
    if (!completed) co_return answer(base, "journal.unavailable");
    if (*completed > 0)
      co_return answer(base, "cancel.not_possible", "it has been completed; cancel the completion instead");
  }
  for (const auto& op : view->operations)
    if (msg && op.op_id == msg->op_id) pay_op_kind = op.kind;
  if (!msg || !ctx.cfg().find_acquirer(msg->acquirer))
    co_return answer(base, "cancel.not_possible", "no acquirer request to reverse");
  // A pre-authorisation's approved incrementals hold funds of their own: the cancel reverses
  // them with it, so the whole hold is released.
  std::vector<journal::reader::follow_up_row> incrementals;
  if (o.kind == journal::order_kinds::preauth) {
    result<std::vector<journal::reader::follow_up_row>> inc = std::vector<journal::reader::follow_up_row>{};
    {
      std::lock_guard lk(ctx.reader_mu);
      inc = ctx.reader->approved_follow_ups(msg->op_id, journal::order_kinds::incremental);
    }
    if (!inc) co_return answer(base, "journal.unavailable");
    incrementals = std::move(*inc);
  }

  // Reversal before settlement, refund after. A financial request (x2xx) whose batch has been
  // written (its close started) is in the acquirer's settlement and can no longer be
  // reversed: the money goes back to the card as a refund advice (0220, processing code 20,
  // naming the sale in field 90), owed through the store-and-forward queue like a completion.
  // The journal re-checks the batch in the cancel's own commit (batch_still_open), so a close
  // starting meanwhile turns the reversal into a refund instead of racing it.
  const bool financial = msg->mti.size() == 4 && msg->mti[1] == '2' && msg->batch_no.has_value();
  auto batch_written = [&]() -> result<bool> {
    if (!financial) return false;
    std::lock_guard lk(ctx.reader_mu);
    auto b = ctx.reader->settlement_batch_no(msg->acquirer, msg->terminal_id, *msg->batch_no);
    if (!b) return b.err();
    return b->has_value();
  };
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto settled = batch_written();
    if (!settled) co_return answer(base, "journal.unavailable");
    const auto now = ctx.clock.now_ms();
    const std::string cancel_op = journal::new_id();
    std::string queued_id;
    const auto outcome_code = *settled ? "cancel.refunded" : "cancel.done";
    auto done = motivate(outcome_code, req.order_no);
    journal::batch b;
    journal::order_updated ou;
    ou.order_id = o.order_id;
    ou.expect_state = std::string(order_state::approved);
    ou.state = std::string(order_state::cancelled);
    ou.result_code = done.why.code;
    ou.reason_cashier = done.why.cashier_text;
    ou.reason_customer = done.why.customer_text;
    ou.updated_ms = now;
    b.records.push_back(ou);
    journal::operation_created opc;
    opc.op_id = cancel_op;
    opc.order_id = o.order_id;
    opc.parent_op_id = msg->op_id;
    opc.currency = o.currency;
    opc.created_ms = now;
    const auto amount = o.approved_amount_minor.value_or(o.amount_minor);
    opc.amount_minor = amount;
    if (!*settled) {
      // Write-ahead: the cancel and the owed reversal are durable before anything is sent. The
      // expected state makes two concurrent cancels of one order reverse it once.
      opc.kind = std::string(journal::operation_kinds::cancel);
      opc.state = "reversing";
      b.records.push_back(opc);
      if (financial)
        b.records.push_back(journal::batch_still_open{msg->acquirer, msg->terminal_id, *msg->batch_no});
      journal::acquirer_message_updated mu;
      mu.msg_id = msg->msg_id;
      mu.expect_state = std::string(journal::message_states::answered);
      mu.state = std::string(journal::message_states::reversal_pending);
      mu.updated_ms = now;
      b.records.push_back(mu);
      b.records.push_back(
          event(o.order_id, cancel_op, now, journal::actor::pos, "cancel_requested",
                fmt::format("order {}: cancel requested by till {}; reversing STAN {:06} on {}", req.order_no,
                            till_id, msg->stan, msg->acquirer)));
      queued_id = queue_reversal(ctx, b, request_from_message(ctx, *msg, pay_op_kind), msg->msg_id, cancel_op,
                                 o.currency, now, now);
      for (const auto& inc : incrementals) {
        journal::order_updated iu = ou;
        iu.order_id = inc.order_id;
        b.records.push_back(iu);
        journal::acquirer_message_updated imu = mu;
        imu.msg_id = inc.message.msg_id;
        b.records.push_back(imu);
        b.records.push_back(
            event(inc.order_id, inc.message.op_id, now, journal::actor::pos, "cancel_requested",
                  fmt::format("incremental {}: reversed with its pre-authorisation {} (STAN {:06})",
                              inc.order_no, req.order_no, inc.message.stan)));
        queue_reversal(ctx, b, request_from_message(ctx, inc.message, journal::operation_kinds::payment),
                       inc.message.msg_id, inc.message.op_id, o.currency, now, now);
      }
    } else {
      opc.kind = std::string(journal::operation_kinds::refund);
      opc.state = "advice_pending";
      for (const auto& op : view->operations)
        if (op.op_id == msg->op_id) {
          opc.entry_mode = op.entry_mode;
          opc.scheme = op.scheme;
        }
      {
        std::lock_guard lk(ctx.reader_mu);
        if (auto p = ctx.reader->operation_pan(msg->op_id); p && *p) opc.pan = **p;
      }
      b.records.push_back(opc);
      std::string stan_counter;
      journal::acquirer_message_written w;
      w.msg_id = journal::new_id();
      w.op_id = cancel_op;
      w.original_msg_id = msg->msg_id;
      w.acquirer = msg->acquirer;
      w.terminal_id = msg->terminal_id;
      w.mti = "0220";
      w.stan = ctx.next_stan(msg->acquirer, msg->terminal_id, stan_counter);
      w.local_datetime = local_datetime_of(now);
      w.rrn = make_rrn(now, w.stan);
      w.amount_minor = amount;
      w.currency = o.currency;
      w.state = std::string(journal::message_states::pending);
      w.next_attempt_ms = now;
      w.created_ms = now;
      b.records.push_back(journal::counter_set{stan_counter, w.stan});
      b.records.push_back(w);
      b.records.push_back(event(
          o.order_id, cancel_op, now, journal::actor::pos, "cancel_requested",
          fmt::format(
              "order {}: cancel requested by till {}; STAN {:06} is in settled batch {} on {}, so it is "
              "refunded: 0220 refund advice STAN {:06} queued",
              req.order_no, till_id, msg->stan, *msg->batch_no, msg->acquirer, w.stan)));
      queued_id = w.msg_id;
    }
    auto st = co_await commit(ctx, std::move(b));
    if (!st && st.err().code == "journal.state_conflict") {
      // A second cancel changed the order meanwhile (answer from the journal), or a close
      // started between the check and the commit (try again: it becomes a refund).
      auto again = ctx.find_order_view(till_id, req.order_no, o.business_date);
      if (again && again->order.state == order_state::approved && attempt == 0) continue;
      const auto again_code = again ? again->order.result_code.value_or("") : "";
      if (again_code == "cancel.done" || again_code == "cancel.refunded")
        co_return answer(summary_from_journal(ctx, *again), again_code);
      co_return answer(base, "cancel.nothing_to_cancel");
    }
    if (!st) co_return answer(base, "journal.unavailable");
    if (!incrementals.empty()) notify_reversals(ctx, msg->acquirer);
    // The reversal or refund is durable in the acquirer's store-and-forward queue, which repeats
    // it until acknowledged (across restarts): the cancel stands from here on. Its first attempt
    // is awaited, so that usually it is already acknowledged when the POS hears "approved".
    const auto* acq_cfg = ctx.cfg().find_acquirer(msg->acquirer);
    const std::chrono::milliseconds wait(acq_cfg ? acq_cfg->response_timeout_ms + 5000 : 35000);
    co_await send_reversal_now(ctx, msg->acquirer, queued_id, wait);
    if (*settled)
      spdlog::info("order {}: cancelled after settlement; refund advice queued on {}", req.order_no,
                   msg->acquirer);
    co_return answer(base, outcome_code);
  }
  co_return answer(base, "cancel.nothing_to_cancel");
}

namespace {

// The pre-authorisation a follow-up names: on the same till first, else anywhere in the
// merchant (a hotel completes at another desk, days later), newest first.
std::optional<journal::order_view> find_preauth(server_context& ctx, const config::merchant& merchant,
                                                const follow_up_request& req) {
  if (auto v = ctx.find_order_view(req.till_id, req.preauth_order_no, "");
      v && v->order.kind == journal::order_kinds::preauth)
    return v;
  std::lock_guard lk(ctx.reader_mu);
  journal::order_filter f;
  f.merchant_id = merchant.id;
  f.order_no = req.preauth_order_no;
  f.kind = std::string(journal::order_kinds::preauth);
  f.newest_first = true;
  f.limit = 1;
  auto rows = ctx.reader->list_orders(f);
  if (!rows || rows->empty()) return std::nullopt;
  auto d = ctx.reader->order_detail(rows->front().order_id);
  if (!d || !*d) return std::nullopt;
  return std::move(**d);
}

}  // namespace

asio::awaitable<pos::result> run_follow_up(server_context& ctx, follow_up_request req) {
  const auto now0 = ctx.clock.now_ms();
  const bool completion = req.kind == journal::order_kinds::completion;
  const config::till* till = ctx.cfg().find_till(req.till_id);
  const config::store* store = till ? ctx.cfg().find_store(till->store) : nullptr;
  const config::merchant* merchant = store ? ctx.cfg().find_merchant(store->merchant) : nullptr;
  if (req.currency.empty() && merchant) req.currency = merchant->currency;

  tx_summary s;
  s.kind = receipt_kind_of(req.kind);
  s.order_no = req.order_no;
  s.till_id = req.till_id;
  s.terminal_id = till ? till->terminal_id : "";
  s.currency = req.currency;
  s.amount = req.amount;
  s.at_ms = now0;
  s.business_date = business_date_of(now0);
  auto finish_without_journal = [&](std::string_view code, std::string detail = {}) {
    s.why = motivate(code, s.order_no, detail);
    return make_result(ctx, s, req.request_id);
  };
  if (!till || !store || !merchant)
    co_return finish_without_journal("server.internal", "till configuration incomplete");
  if (auto prior = ctx.find_order_view(req.till_id, req.order_no, "")) {
    auto r = result_from_journal(ctx, *prior);
    r.id = req.request_id;
    co_return r;
  }

  // What the follow-up builds on: an approved pre-authorisation, its 0100 and what it may
  // still take. Two follow-ups of one pre-authorisation are checked one at a time.
  std::string code, detail;
  const auto preauth = find_preauth(ctx, *merchant, req);
  const journal::operation_row* pre_op = nullptr;
  const journal::acquirer_message_row* pre_msg = nullptr;
  if (preauth) {
    for (const auto& op : preauth->operations)
      if (op.kind == journal::operation_kinds::payment) pre_op = &op;
    for (const auto& m : preauth->messages)
      if (m.mti == "0100" && m.state == journal::message_states::answered && pre_op &&
          m.op_id == pre_op->op_id)
        pre_msg = &m;
    s.masked_pan = pre_op ? pre_op->pan_masked.value_or("") : "";
    s.scheme = pre_op ? pre_op->scheme.value_or("") : "";
  }
  std::string lock_key;
  struct unlock {
    server_context& ctx;
    std::string& key;
    ~unlock() {
      if (key.empty()) return;
      std::lock_guard lk(ctx.tills_mu);
      ctx.refunds_in_check.erase(key);
    }
  } unlocker{ctx, lock_key};
  const auto lim = ctx.cfg().effective_limits(*till);
  if (!contains(lim.allowed_types, req.kind)) {
    code = "limit.type_not_allowed";
    detail = req.kind;
  } else if (!preauth) {
    code = "preauth.unknown";
    detail = req.preauth_order_no;
  } else if (preauth->order.state != order_state::approved || !pre_op || !pre_msg) {
    code = "preauth.not_approved";
    detail = req.preauth_order_no;
  } else if (preauth->order.currency != req.currency) {
    code = "preauth.currency_mismatch";
    detail = req.preauth_order_no;
  } else {
    bool locked = false;
    {
      std::lock_guard lk(ctx.tills_mu);
      locked = ctx.refunds_in_check.insert(pre_op->op_id).second;
    }
    if (!locked) {
      code = "preauth.busy";
      detail = req.preauth_order_no;
    } else {
      lock_key = pre_op->op_id;
      result<std::int64_t> completed = std::int64_t{0}, incremented = std::int64_t{0};
      {
        std::lock_guard lk(ctx.reader_mu);
        completed = ctx.reader->follow_up_amount(pre_op->op_id, journal::order_kinds::completion);
        incremented = ctx.reader->follow_up_amount(pre_op->op_id, journal::order_kinds::incremental);
      }
      const auto authorised =
          preauth->order.approved_amount_minor.value_or(0) + (incremented ? *incremented : 0);
      if (!completed || !incremented) {
        code = "journal.unavailable";
      } else if (*completed > 0) {
        code = "preauth.already_completed";
        detail = req.preauth_order_no;
      } else if (completion && req.amount > authorised) {
        code = "completion.exceeds_authorised";
        auto m = eftd::money::of(authorised, req.currency);
        detail = "authorised " + (m ? m->format() : std::to_string(authorised));
      }
    }
  }

  const std::string order_id = journal::new_id();
  const std::string op_id = journal::new_id();
  const auto money = eftd::money::of(req.amount, req.currency);
  const std::string money_text = money ? money->format() : std::to_string(req.amount) + " " + req.currency;
  journal::batch opening;
  {
    journal::order_created oc;
    oc.order_id = order_id;
    oc.merchant_id = merchant->id;
    oc.store_id = store->id;
    oc.till_id = till->id;
    oc.order_no = req.order_no;
    oc.business_date = s.business_date;
    oc.kind = req.kind;
    oc.amount_minor = req.amount;
    oc.currency = req.currency;
    oc.state = std::string(order_state::in_progress);
    oc.created_ms = now0;
    opening.records.push_back(oc);
    journal::operation_created opc;
    opc.op_id = op_id;
    opc.order_id = order_id;
    if (pre_op) opc.parent_op_id = pre_op->op_id;
    opc.kind =
        std::string(completion ? journal::operation_kinds::completion : journal::operation_kinds::payment);
    opc.state = "requested";
    opc.amount_minor = req.amount;
    opc.currency = req.currency;
    if (pre_op) {
      opc.entry_mode = pre_op->entry_mode;
      opc.scheme = pre_op->scheme;
      std::lock_guard lk(ctx.reader_mu);
      if (auto p = ctx.reader->operation_pan(pre_op->op_id); p && *p) opc.pan = **p;
    }
    opc.created_ms = now0;
    opening.records.push_back(opc);
    opening.records.push_back(
        event(order_id, op_id, now0, journal::actor::pos, req.kind + "_requested",
              fmt::format("order {}: {} {} of pre-authorisation {} requested by till {}{}", req.order_no,
                          req.kind, money_text, req.preauth_order_no, till->id,
                          req.operator_id.empty() ? "" : " operator " + req.operator_id)));
  }
  auto final_records = [&](journal::batch& b, std::string_view state, std::int64_t at, journal::actor who,
                           std::string_view op_state) {
    add_final_records(b, order_id, op_id, s, state, at, who, op_state);
  };

  if (!code.empty()) {
    s.why = motivate(code, s.order_no, detail);
    final_records(opening, order_state::declined, now0, journal::actor::server, "declined");
    if (auto st = co_await commit(ctx, std::move(opening)); !st)
      co_return finish_without_journal("journal.unavailable");
    spdlog::info("order {}: {} declined ({})", s.order_no, req.kind, code);
    co_return make_result(ctx, s, req.request_id);
  }

  // The request to the acquirer names the pre-authorisation's 0100 (field 90, auth code 38).
  acquirer_request areq;
  areq.acquirer = pre_msg->acquirer;
  areq.terminal_id = pre_msg->terminal_id;
  areq.card_acceptor_id = merchant->acquirer_merchant_id;
  areq.mti = completion ? "0220" : "0100";
  areq.processing_code = "000000";
  areq.pos_entry_mode = "010";  // no card present: the data is the pre-authorisation's
  areq.at_ms = ctx.clock.now_ms();
  std::string stan_counter;
  areq.stan = ctx.next_stan(areq.acquirer, areq.terminal_id, stan_counter);
  areq.rrn =
      completion ? pre_msg->rrn.value_or(make_rrn(areq.at_ms, areq.stan)) : make_rrn(areq.at_ms, areq.stan);
  areq.amount_minor = req.amount;
  areq.currency_numeric = eftd::find_currency(req.currency)->numeric;
  areq.original = acquirer_request::original_ref{pre_msg->mti, pre_msg->stan, pre_msg->created_ms,
                                                 pre_msg->auth_code.value_or("")};
  s.stan = fmt::format("{:06}", areq.stan);
  s.rrn = areq.rrn;
  const std::string msg_id = journal::new_id();
  opening.records.push_back(journal::counter_set{stan_counter, areq.stan});
  journal::acquirer_message_written mw;
  mw.msg_id = msg_id;
  mw.op_id = op_id;
  mw.original_msg_id = pre_msg->msg_id;
  mw.acquirer = areq.acquirer;
  mw.terminal_id = areq.terminal_id;
  mw.mti = areq.mti;
  mw.stan = areq.stan;
  mw.local_datetime = local_datetime_of(areq.at_ms);
  mw.rrn = areq.rrn;
  mw.amount_minor = areq.amount_minor;
  mw.currency = req.currency;
  mw.created_ms = areq.at_ms;

  if (completion) {
    // A completion is an advice: it is owed to the acquirer, not asked of it. It stands once
    // it is durable in the store-and-forward queue, which delivers it (0220, then 0221
    // repeats) until acknowledged, across restarts.
    mw.state = std::string(journal::message_states::pending);
    mw.next_attempt_ms = areq.at_ms;
    opening.records.push_back(mw);
    s.auth_code = pre_msg->auth_code.value_or("");
    s.approved_amount = req.amount;
    s.why = motivate("approved", s.order_no);
    final_records(opening, order_state::approved, areq.at_ms, journal::actor::server, "advice_pending");
    opening.records.push_back(
        event(order_id, op_id, areq.at_ms, journal::actor::server, "advice_queued",
              fmt::format("0220 completion advice to {} STAN {} queued", areq.acquirer, s.stan)));
    if (auto st = co_await commit(ctx, std::move(opening)); !st)
      co_return finish_without_journal("journal.unavailable");
    // Usually the advice is acknowledged before the cashier hears "approved"; a slow acquirer
    // delays only this first attempt, never the outcome.
    const auto* acq_cfg = ctx.cfg().find_acquirer(areq.acquirer);
    const std::chrono::milliseconds wait(acq_cfg ? acq_cfg->response_timeout_ms + 1000 : 31000);
    co_await send_reversal_now(ctx, areq.acquirer, msg_id, wait);
    spdlog::info("order {}: completion of {} approved, advice queued", s.order_no, req.preauth_order_no);
    co_return make_result(ctx, s, req.request_id);
  }

  // Incremental: online, write-ahead like a sale.
  mw.state = std::string(journal::message_states::sent);
  opening.records.push_back(mw);
  if (auto st = co_await commit(ctx, std::move(opening)); !st)
    co_return finish_without_journal("journal.unavailable");
  auto ans = co_await send_follow_up(ctx, areq);
  const auto at = ctx.clock.now_ms();
  journal::batch b;
  journal::acquirer_message_updated mu;
  mu.msg_id = msg_id;
  mu.updated_ms = at;
  if (!ans) {
    const bool never_sent =
        ans.err().code == "acq.connect_failed" || ans.err().code == "acq.unknown_acquirer";
    s.why = motivate(never_sent                             ? "acquirer.unreachable"
                     : ans.err().code == "acq.decode_error" ? "acquirer.bad_response"
                                                            : "acquirer.timeout",
                     s.order_no, never_sent ? areq.acquirer : "");
    mu.state =
        std::string(never_sent ? journal::message_states::failed : journal::message_states::reversal_pending);
    b.records.push_back(mu);
    final_records(b, order_state::failed, at, journal::actor::acquirer,
                  never_sent ? "failed" : "reversal_pending");
    if (!never_sent) queue_reversal(ctx, b, areq, msg_id, op_id, req.currency, at, at);
    auto st = co_await commit(ctx, std::move(b));
    if (!st) s.why = motivate("journal.unavailable", s.order_no);
    if (!never_sent && st) notify_reversals(ctx, areq.acquirer);
    co_return make_result(ctx, s, req.request_id);
  }
  const bool ok = response_code_approves(ans->response_code);
  s.response_code = ans->response_code;
  s.auth_code = ans->auth_code;
  s.approved_amount = ok ? (ans->amount && *ans->amount < req.amount ? *ans->amount : req.amount) : 0;
  s.why = motivate(ok ? "approved" : reason_for_response_code(ans->response_code), s.order_no,
                   ok ? "" : "response " + ans->response_code);
  mu.state = std::string(journal::message_states::answered);
  mu.response_code = ans->response_code;
  if (!ans->auth_code.empty()) mu.auth_code = ans->auth_code;
  b.records.push_back(mu);
  final_records(b, ok ? order_state::approved : order_state::declined, at, journal::actor::acquirer,
                ok ? "approved" : "declined");
  if (auto st = co_await commit(ctx, std::move(b)); !st) {
    // Never "approved" without a durable record: the increment is reversed instead.
    s.approved_amount = 0;
    s.why = motivate("journal.unavailable", s.order_no);
    if (ok) {
      journal::batch rb;
      journal::acquirer_message_updated rmu;
      rmu.msg_id = msg_id;
      rmu.state = std::string(journal::message_states::reversal_pending);
      rmu.updated_ms = at;
      rb.records.push_back(rmu);
      queue_reversal(ctx, rb, areq, msg_id, op_id, req.currency, at, at);
      if (auto rst = co_await commit(ctx, std::move(rb)); rst) notify_reversals(ctx, areq.acquirer);
    }
  }
  spdlog::info("order {}: incremental on {} {} ({})", s.order_no, req.preauth_order_no, s.why.outcome,
               s.why.why.code);
  co_return make_result(ctx, s, req.request_id);
}

pos::totals_report till_totals(server_context& ctx, const std::string& till_id,
                               const std::string& business_date) {
  pos::totals_report rep;
  rep.till_id = till_id;
  rep.business_date = business_date;
  struct sums {
    std::int64_t count = 0, amount = 0;
  };
  std::map<std::tuple<std::string, std::string, std::string>, sums> by_key;
  std::lock_guard lk(ctx.reader_mu);
  journal::order_filter f;
  f.till_id = till_id;
  f.business_date_from = business_date;
  f.business_date_to = business_date;
  f.limit = 10000;
  for (f.offset = 0;; f.offset += f.limit) {
    auto rows = ctx.reader->list_orders(f);
    if (!rows) {
      spdlog::error("totals for till {}: {}", till_id, rows.err().message);
      break;
    }
    for (const auto& o : *rows) {
      std::string outcome = status_word(o.state);
      const bool approved = o.state == order_state::approved;
      auto& x = by_key[{o.kind, outcome, o.currency}];
      ++x.count;
      const auto amt = approved ? o.approved_amount_minor.value_or(0) : o.amount_minor;
      x.amount += amt;
      // Pre-authorisations and incrementals hold funds; their completion is what is charged.
      if (approved && (o.kind == journal::order_kinds::sale || o.kind == journal::order_kinds::completion))
        rep.net[o.currency] += amt;
      if (approved && o.kind == journal::order_kinds::refund) rep.net[o.currency] -= amt;
    }
    if (rows->size() < f.limit) break;
  }
  for (const auto& [k, v] : by_key)
    rep.lines.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), v.count, v.amount});
  return rep;
}

namespace {

bool in_doubt(std::string_view state) {
  return state == journal::message_states::intent || state == journal::message_states::sent ||
         state == journal::message_states::timeout || state == journal::message_states::reversal_pending;
}

// Submits every batch at once, so that group commit takes them together (with synchronous
// replication one round trip to the standby for many, not one each), and waits until each is
// durable. One status per batch, in order.
std::vector<status> submit_all(server_context& ctx, std::vector<journal::batch> batches) {
  struct waiting {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = 0;
    std::vector<status> results;
  };
  auto w = std::make_shared<waiting>();
  w->left = batches.size();
  w->results.resize(batches.size());
  for (std::size_t i = 0; i < batches.size(); ++i)
    ctx.journal->submit(std::move(batches[i]), [w, i](status st) {
      std::lock_guard lk(w->mu);
      w->results[i] = std::move(st);
      if (--w->left == 0) w->cv.notify_all();
    });
  std::unique_lock lk(w->mu);
  w->cv.wait(lk, [&] { return w->left == 0; });
  return std::move(w->results);
}

// Orders the previous run left in progress with nothing sent to an acquirer: no money can have
// moved, so they end as failed, and a status query says so instead of "in progress" forever.
void conclude_interrupted_orders(server_context& ctx, const std::vector<journal::order_view>& stuck) {
  std::vector<journal::batch> batches;
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
    batches.push_back(std::move(b));
  }
  const auto results = submit_all(ctx, std::move(batches));
  for (std::size_t i = 0; i < stuck.size(); ++i) {
    const auto& v = stuck[i];
    if (!results[i])
      spdlog::error("recovery: order {} not concluded: {}", v.order.order_no, results[i].err().message);
    else
      spdlog::warn("recovery: order {} on till {} was interrupted before reaching an acquirer; marked failed",
                   v.order.order_no, v.order.till_id);
  }
}

}  // namespace

recovery_plan plan_recovery(server_context& ctx) {
  recovery_plan plan;
  std::lock_guard lk(ctx.reader_mu);
  auto r = ctx.reader->in_doubt_messages();
  if (!r) {
    spdlog::error("recovery: cannot list in-doubt messages: {}", r.err().message);
  } else {
    for (auto& m : *r)
      if (m.mti == "0200" || m.mti == "0100") plan.in_doubt.push_back(std::move(m));
  }
  journal::order_filter f;
  f.state = std::string(order_state::in_progress);
  f.limit = 10000;
  auto rows = ctx.reader->list_orders(f);
  if (!rows) {
    spdlog::error("recovery: cannot list interrupted orders: {}", rows.err().message);
    return plan;
  }
  for (const auto& row : *rows) {
    auto d = ctx.reader->order_detail(row.order_id);
    if (!d || !*d) continue;
    bool owes_reversal = false;
    for (const auto& m : (*d)->messages) owes_reversal = owes_reversal || in_doubt(m.state);
    if (!owes_reversal) plan.interrupted.push_back(std::move(**d));
  }
  return plan;
}

void start_recovery(server_context& ctx) {
  start_recovery(ctx, plan_recovery(ctx));
}

void start_recovery(server_context& ctx, recovery_plan plan) {
  start_reversal_queues(ctx);
  std::vector<journal::batch> batches;
  std::vector<const journal::acquirer_message_row*> reversed;  // the message of each reversal batch
  for (const auto& m : plan.in_doubt) {
    if (!ctx.cfg().find_acquirer(m.acquirer)) {
      spdlog::error("recovery: message {} names unknown acquirer '{}'; left pending", m.msg_id, m.acquirer);
      continue;
    }
    std::string order_id, order_no, op_kind;
    bool queued = false;
    {
      std::lock_guard lk(ctx.reader_mu);
      auto op = ctx.reader->operation(m.op_id);
      if (op && *op) {
        order_id = (*op)->order_id;
        op_kind = (*op)->kind;
      }
      if (!order_id.empty()) {
        auto d = ctx.reader->order_detail(order_id);
        if (d && *d) order_no = (*d)->order.order_no;
      }
      auto revs = ctx.reader->reversals_of(m.msg_id);
      queued = revs && !revs->empty();
    }
    if (order_id.empty()) {
      spdlog::error("recovery: message {} has no readable operation; left pending", m.msg_id);
      continue;
    }
    const auto now = ctx.clock.now_ms();
    journal::batch b;
    if (m.amount_minor == 0) {
      // A balance inquiry moves no money: nothing to reverse, the order just failed.
      journal::acquirer_message_updated mu;
      mu.msg_id = m.msg_id;
      mu.state = std::string(journal::message_states::failed);
      mu.updated_ms = now;
      b.records.push_back(mu);
      batches.push_back(std::move(b));
      reversed.push_back(nullptr);
      continue;
    }
    if (queued) continue;  // its reversal is in the queue already (or was concluded there)
    auto a = request_from_message(ctx, m, op_kind);
    spdlog::warn("recovery: STAN {} on {} has no recorded answer; queueing its reversal", m.stan,
                 m.terminal_id);
    if (m.state == journal::message_states::intent || m.state == journal::message_states::sent) {
      // The POS was never told anything: the order gets its reason now.
      auto why = motivate("server.restarted", order_no);
      journal::order_updated ou;
      ou.order_id = order_id;
      ou.state = std::string(order_state::failed);
      ou.result_code = why.why.code;
      ou.reason_cashier = why.why.cashier_text;
      ou.reason_customer = why.why.customer_text;
      ou.approved_amount_minor = 0;
      ou.updated_ms = now;
      b.records.push_back(ou);
      b.records.push_back(event(order_id, m.op_id, now, journal::actor::server, "failed", why.journal));
    }
    journal::acquirer_message_updated mu;
    mu.msg_id = m.msg_id;
    mu.state = std::string(journal::message_states::reversal_pending);
    mu.updated_ms = now;
    b.records.push_back(mu);
    queue_reversal(ctx, b, a, m.msg_id, m.op_id, m.currency, now, now);
    batches.push_back(std::move(b));
    reversed.push_back(&m);
  }
  const auto results = submit_all(ctx, std::move(batches));
  std::set<std::string> acquirers;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) {
      spdlog::error("recovery: in-doubt request not concluded: {}", results[i].err().message);
      continue;
    }
    if (reversed[i] != nullptr) acquirers.insert(reversed[i]->acquirer);
  }
  for (const auto& acquirer : acquirers) notify_reversals(ctx, acquirer);
  conclude_interrupted_orders(ctx, plan.interrupted);
}

}  // namespace eftd::server
