#include "settlement.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <set>

#include "acquirer_gateway.hpp"
#include "eftd/acq/message.hpp"
#include "eftd/acq/reconciliation.hpp"
#include "eftd/core/money.hpp"
#include "eftd/journal/settlement_rules.hpp"
#include "engine.hpp"

namespace eftd::server {

namespace asio = boost::asio;

namespace {

namespace bs = journal::batch_states;

using journal::is_credit;
using journal::settled_amount;

bool settling_kind(std::string_view k) {
  return journal::settling_order_kind(k);
}

bool is_final(std::string_view state) {
  return journal::is_final_batch_state(state);
}

std::string entry_mode_code(const std::optional<std::string>& mode) {
  if (!mode) return "000";
  if (*mode == "chip") return "051";
  if (*mode == "contactless") return "071";
  if (*mode == "magstripe") return "902";
  if (*mode == "fallback_magstripe") return "802";
  return "000";
}

std::tm local_tm(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

// The test hook of settlement.hpp: dies like kill -9 would, with nothing flushed.
void crash_point(const std::string& armed, std::string_view here) {
  if (!armed.empty() && armed == here) {
    spdlog::critical("EFTD_CRASH_AT={}: exiting (test hook)", here);
    spdlog::default_logger()->flush();
    ::_exit(137);
  }
}

}  // namespace

struct settlement_service::impl : std::enable_shared_from_this<impl> {
  explicit impl(server_context& c) : ctx(c), lock(c.io.get_executor(), 1), cutover_timer(c.io) {
    if (const char* v = std::getenv("EFTD_CRASH_AT")) crash_at = v;
  }

  server_context& ctx;
  // One close at a time: a message in the channel is the held lock.
  asio::experimental::concurrent_channel<void(boost::system::error_code)> lock;
  asio::steady_timer cutover_timer;
  std::string crash_at;
  bool stopped = false;

  struct lock_guard {
    impl* self;
    ~lock_guard() {
      self->lock.try_receive([](boost::system::error_code) {});
    }
  };

  // --- journal reads (the shared reader, serialised) -----------------------------------------

  result<std::optional<journal::settlement_batch_row>> batch_of(const journal::settlement_key& k) {
    std::lock_guard g(ctx.reader_mu);
    return ctx.reader->settlement_batch_no(k.acquirer, k.terminal_id, k.batch_no);
  }
  result<std::vector<journal::settlement_step_row>> steps_of(const std::string& batch_id) {
    std::lock_guard g(ctx.reader_mu);
    return ctx.reader->settlement_steps(batch_id);
  }
  result<std::vector<journal::settlement_candidate>> candidates_of(const journal::settlement_key& k) {
    std::lock_guard g(ctx.reader_mu);
    return ctx.reader->batch_candidates(k.acquirer, k.terminal_id, k.batch_no);
  }
  result<std::int64_t> open_number(const journal::settlement_key& k) {
    std::lock_guard g(ctx.reader_mu);
    return ctx.reader->open_batch_no(k.acquirer, k.terminal_id);
  }

  // --- messages ------------------------------------------------------------------------------

  acq::message header(const std::string& mti, const journal::settlement_step_row& st,
                      const journal::settlement_batch_row& b) {
    acq::message m(mti);
    const auto lt = local_tm(st.at_ms);
    m.set(3, st.processing_code);
    m.set(7, transmission_datetime_of(st.at_ms));
    m.set(11, fmt::format("{:06}", st.stan));
    m.set(12, fmt::format("{:02}{:02}{:02}", lt.tm_hour, lt.tm_min, lt.tm_sec));
    m.set(13, fmt::format("{:02}{:02}", lt.tm_mon + 1, lt.tm_mday));
    if (const auto* a = ctx.cfg().find_acquirer(b.acquirer)) m.set(32, a->acquiring_institution_id);
    m.set(41, b.terminal_id);
    m.set(42, b.card_acceptor_id);
    return m;
  }

  // 0500: the batch's totals as fields 74-77, 86-89 and 97 (DIALECTS.md).
  acq::message reconciliation(const journal::settlement_step_row& st,
                              const journal::settlement_batch_row& b) {
    auto m = header(st.mti, st, b);
    m.set(15, b.business_date.substr(5, 2) + b.business_date.substr(8, 2));
    std::uint16_t currency = 0;
    for (const auto& merchant : ctx.cfg().merchants)
      if (merchant.acquirer_merchant_id == b.card_acceptor_id)
        if (const auto* c = eftd::find_currency(merchant.currency)) currency = c->numeric;
    m.set(50, fmt::format("{:03}", currency));
    acq::set_reconciliation_fields(m, b.totals);
    return m;
  }

  // 0320: one settling transaction, named by its own data elements in field 90.
  acq::message upload(const journal::settlement_step_row& st, const journal::settlement_batch_row& b,
                      const journal::settlement_candidate& c) {
    auto m = header(st.mti, st, b);
    const auto& msg = c.message;
    m.set(4, fmt::format("{:012}", settled_amount(c)));
    // The transaction's own local date and time (local_datetime is MMDDhhmmss).
    if (msg.local_datetime.size() == 10) {
      m.set(12, msg.local_datetime.substr(4, 6));
      m.set(13, msg.local_datetime.substr(0, 4));
    }
    m.set(22, entry_mode_code(c.entry_mode));
    m.set(25, "00");
    if (msg.rrn) m.set(37, *msg.rrn);
    if (msg.auth_code && !msg.auth_code->empty())
      m.set(38, fmt::format("{:<6}", msg.auth_code->substr(0, 6)));
    m.set(39, msg.response_code.value_or("00"));
    const auto* cur = eftd::find_currency(msg.currency);
    m.set(49, fmt::format("{:03}", cur ? cur->numeric : 0));
    m.set(90, original_data_elements_of(ctx, msg.acquirer, msg.mti, msg.stan, msg.created_ms));
    return m;
  }

  // --- steps ---------------------------------------------------------------------------------

  journal::settlement_step_written new_step(const journal::settlement_batch_row& b, std::int64_t seq,
                                            std::string kind, std::string mti, std::string pc,
                                            std::optional<std::string> subject, journal::batch& jb) {
    journal::settlement_step_written w;
    w.step_id = journal::new_id();
    w.batch_id = b.batch_id;
    w.seq = seq;
    w.kind = std::move(kind);
    w.mti = std::move(mti);
    w.processing_code = std::move(pc);
    w.at_ms = ctx.clock.now_ms();
    std::string counter;
    w.stan = ctx.next_stan(b.acquirer, b.terminal_id, counter);
    w.subject_msg_id = std::move(subject);
    w.state = "sent";
    w.created_ms = w.at_ms;
    // The STAN counter travels with the intent, so a restart never reuses it.
    jb.records.push_back(journal::counter_set{counter, w.stan});
    jb.records.push_back(w);
    return w;
  }

  static journal::settlement_step_row row_of(const journal::settlement_step_written& w) {
    journal::settlement_step_row r;
    r.step_id = w.step_id;
    r.batch_id = w.batch_id;
    r.seq = w.seq;
    r.kind = w.kind;
    r.mti = w.mti;
    r.processing_code = w.processing_code;
    r.stan = w.stan;
    r.at_ms = w.at_ms;
    r.subject_msg_id = w.subject_msg_id;
    r.state = w.state;
    r.created_ms = w.created_ms;
    r.updated_ms = w.created_ms;
    return r;
  }

  batch_result result_of(const journal::settlement_batch_row& b) {
    batch_result r;
    r.acquirer = b.acquirer;
    r.terminal_id = b.terminal_id;
    r.business_date = b.business_date;
    r.batch_no = b.batch_no;
    r.state = b.state;
    r.totals = b.totals;
    r.in_doubt = b.in_doubt;
    r.response_code = b.response_code.value_or("");
    r.uploads = b.uploads_done;
    return r;
  }

  batch_result failed(const journal::settlement_key& k, const std::string& state, error e) {
    spdlog::error("settlement {}/{}/{}: {} ({})", k.acquirer, k.terminal_id, k.business_date, e.message,
                  e.code);
    batch_result r;
    r.acquirer = k.acquirer;
    r.terminal_id = k.terminal_id;
    r.business_date = k.business_date;
    r.batch_no = k.batch_no;
    r.state = state;
    r.problem = std::move(e);
    return r;
  }

  // Writes the row of a terminal's open batch `no` (state open, no totals yet). From its
  // commit on, new messages of the terminal are stamped no + 1, so the batch's content is
  // final except for answers still to come. Totals are fixed when it starts closing.
  asio::awaitable<status> open_batch(const journal::settlement_key& k, std::int64_t no) {
    journal::batch jb;
    journal::settlement_batch_written w;
    w.batch_id = journal::new_id();
    w.acquirer = k.acquirer;
    w.terminal_id = k.terminal_id;
    w.batch_no = no;
    w.business_date = k.business_date;
    for (const auto& t : ctx.cfg().tills)
      if (t.terminal_id == k.terminal_id)
        if (const auto* m = ctx.cfg().merchant_of(t); m && w.card_acceptor_id.empty())
          w.card_acceptor_id = m->acquirer_merchant_id;
    w.state = std::string(bs::open);
    w.created_ms = ctx.clock.now_ms();
    jb.records.push_back(w);
    co_return co_await commit(ctx, std::move(jb));
  }

  // Sends a journaled step (first time or again, identically) and journals its answer with
  // the batch's next state. Returns the answer's response code.
  asio::awaitable<result<std::string>> run_step(const journal::settlement_batch_row& b,
                                                const journal::settlement_step_row& st,
                                                const std::vector<journal::settlement_candidate>& cands,
                                                std::int64_t uploads_total) {
    acq::message m("0000");
    if (st.kind == "upload") {
      const journal::settlement_candidate* subject = nullptr;
      for (const auto& c : cands)
        if (st.subject_msg_id && c.message.msg_id == *st.subject_msg_id) subject = &c;
      if (subject == nullptr)
        co_return make_error("settlement.upload_subject",
                             "the uploaded transaction is no longer in the batch");
      m = upload(st, b, *subject);
    } else {
      m = reconciliation(st, b);
      if (st.kind == "close") crash_point(crash_at, "before_close_send");
      if (st.kind == "close_after_upload") crash_point(crash_at, "before_final_close");
    }
    auto ans = co_await send_message(ctx, b.acquirer, std::move(m));
    if (!ans) co_return ans.err();
    if (st.kind == "close") crash_point(crash_at, "after_close_send");
    if (st.kind == "upload" && st.seq == 1) crash_point(crash_at, "after_upload_1");
    if (st.kind == "close_after_upload") crash_point(crash_at, "after_final_close");

    const auto now = ctx.clock.now_ms();
    const std::string code = ans->response_code;
    journal::batch jb;
    journal::settlement_step_updated su;
    su.step_id = st.step_id;
    su.expect_state = "sent";
    su.state = "answered";
    su.response_code = code;
    su.updated_ms = now;
    jb.records.push_back(su);
    journal::settlement_batch_updated bu;
    bu.batch_id = b.batch_id;
    bu.expect_state = b.state;
    bu.updated_ms = now;
    if (st.kind == "upload") {
      bu.uploads_done = b.uploads_done + 1;
    } else {
      bu.response_code = code;
      if (code == "00")
        bu.state = std::string(bs::closed);
      else if (code == "95" && st.kind == "close") {
        bu.state = std::string(bs::uploading);
        bu.uploads_total = uploads_total;
      } else if (code == "95")
        bu.state = std::string(bs::out_of_balance);
      else
        bu.state = std::string(bs::refused);
    }
    jb.records.push_back(bu);
    if (auto stc = co_await commit(ctx, std::move(jb)); !stc) co_return stc.err();
    co_return code;
  }

  // One key, from wherever its journal says it stands, to a final state (or a problem). A
  // terminal's open batch (batch_no 0) is written first; nullopt when it has nothing to settle
  // (another close took it meanwhile).
  asio::awaitable<std::optional<batch_result>> close_one(journal::settlement_key k) {
    bool acted = false;
    if (k.batch_no == 0) {
      auto no = open_number(k);
      if (!no) co_return failed(k, "open", no.err());
      k.batch_no = *no;
      auto cands = candidates_of(k);
      if (!cands) co_return failed(k, "open", cands.err());
      const bool any = std::any_of(cands->begin(), cands->end(),
                                   [](const auto& c) { return settling_kind(c.order_kind); });
      if (!any) co_return std::nullopt;
      if (auto st = co_await open_batch(k, k.batch_no); !st) co_return failed(k, "open", st.err());
      acted = true;
    }
    for (int guard = 0; guard < 100000; ++guard) {
      auto b = batch_of(k);
      if (!b) co_return failed(k, "open", b.err());
      if (!*b)
        co_return failed(k, "open",
                         make_error("settlement.missing_batch", "the batch is not in the journal"));
      const auto& batch = **b;
      if (is_final(batch.state)) {
        auto r = result_of(batch);
        r.already_final = !acted;
        if (acted && batch.state != bs::closed)
          spdlog::error(
              "settlement {}/{}/{}: batch {} ({}, response {}): totals differ from the acquirer's; a case "
              "for people",
              k.acquirer, k.terminal_id, k.business_date, batch.state, batch.batch_id,
              batch.response_code.value_or("-"));
        else if (acted)
          spdlog::info("settlement {}/{}/{}: closed ({} debits, {} credits, net {}, {} uploaded)", k.acquirer,
                       k.terminal_id, k.business_date, batch.totals.debits, batch.totals.credits,
                       batch.totals.net(), batch.uploads_done);
        co_return r;
      }
      auto steps = steps_of(batch.batch_id);
      if (!steps) co_return failed(k, batch.state, steps.err());
      k.business_date = batch.business_date;
      auto cands = candidates_of(k);
      if (!cands) co_return failed(k, batch.state, cands.err());
      const auto content = batch_content_of(*cands);
      acted = true;

      if (!steps->empty() && steps->back().state == "sent") {
        // Written and maybe sent: (re)send it exactly as written.
        auto code = co_await run_step(batch, steps->back(), *cands,
                                      static_cast<std::int64_t>(content.settling.size()));
        if (!code) co_return failed(k, batch.state, code.err());
        continue;
      }
      // The last step is answered: the state says what comes next.
      journal::batch jb;
      std::optional<journal::settlement_step_written> next;
      const auto seq = static_cast<std::int64_t>(steps->size());
      if (batch.state == bs::uploading) {
        std::set<std::string> uploaded;
        for (const auto& s : *steps)
          if (s.kind == "upload" && s.subject_msg_id) uploaded.insert(*s.subject_msg_id);
        for (const auto* c : content.settling) {
          if (uploaded.contains(c->message.msg_id)) continue;
          next = new_step(batch, seq, "upload", "0320", is_credit(*c) ? "200000" : "000000",
                          c->message.msg_id, jb);
          break;
        }
        if (!next) {
          next = new_step(batch, seq, "close_after_upload", "0500", "960000", std::nullopt, jb);
          journal::settlement_batch_updated bu;
          bu.batch_id = batch.batch_id;
          bu.expect_state = batch.state;
          bu.state = std::string(bs::closing_after_upload);
          bu.updated_ms = next->created_ms;
          jb.records.push_back(bu);
        }
      } else {
        // closing / closing_after_upload without a pending step (or 'open'): a close step.
        const bool after_upload = batch.state == bs::closing_after_upload;
        next = new_step(batch, seq, after_upload ? "close_after_upload" : "close", "0500",
                        after_upload ? "960000" : "920000", std::nullopt, jb);
        if (batch.state == bs::open) {
          // The totals are fixed here, with the first 0500 written ahead.
          journal::settlement_batch_updated bu;
          bu.batch_id = batch.batch_id;
          bu.expect_state = batch.state;
          bu.state = std::string(bs::closing);
          bu.totals = content.totals;
          bu.in_doubt = content.in_doubt;
          bu.updated_ms = next->created_ms;
          jb.records.push_back(bu);
          if (content.in_doubt > 0)
            spdlog::warn("settlement {}/{} batch {}: {} request(s) still in doubt are left out of the batch",
                         k.acquirer, k.terminal_id, k.batch_no, content.in_doubt);
        }
      }
      if (auto st = co_await commit(ctx, std::move(jb)); !st) co_return failed(k, batch.state, st.err());
    }
    co_return failed(k, "open", make_error("settlement.loop", "the close did not converge"));
  }

  asio::awaitable<std::vector<batch_result>> run_keys(std::vector<journal::settlement_key> keys) {
    boost::system::error_code ec;
    co_await lock.async_send(ec, asio::use_awaitable);
    lock_guard g{this};
    std::vector<batch_result> out;
    for (auto& k : keys) {
      auto r = co_await close_one(k);
      if (r) out.push_back(std::move(*r));
    }
    co_return out;
  }

  // A close of `date`: each terminal's open batch with something to settle, labelled `date`,
  // and the batches already written under that label (final ones are reported as they
  // stand; unfinished ones are resumed).
  result<std::vector<journal::settlement_key>> keys_of_date(const std::string& date,
                                                            const std::optional<std::string>& acquirer) {
    std::set<journal::settlement_key> keys;
    std::lock_guard g(ctx.reader_mu);
    auto batches = ctx.reader->settlement_batches(date);
    if (!batches) return batches.err();
    for (const auto& b : *batches)
      if (!acquirer || b.acquirer == *acquirer) keys.insert({b.acquirer, b.terminal_id, date, b.batch_no});
    auto open = ctx.reader->open_batch_keys(acquirer, date);
    if (!open) return open.err();
    keys.insert(open->begin(), open->end());
    return std::vector<journal::settlement_key>(keys.begin(), keys.end());
  }

  // Milliseconds from now to the next HH:MM local.
  std::int64_t until_cutover(std::int64_t now_ms) const {
    const auto& c = ctx.cfg().settlement.cutover;
    const int hh = (c[0] - '0') * 10 + (c[1] - '0');
    const int mm = (c[3] - '0') * 10 + (c[4] - '0');
    auto tm = local_tm(now_ms);
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    std::int64_t at = static_cast<std::int64_t>(std::mktime(&tm)) * 1000;
    if (at <= now_ms) {
      tm.tm_mday += 1;
      tm.tm_isdst = -1;
      at = static_cast<std::int64_t>(std::mktime(&tm)) * 1000;
    }
    return at - now_ms;
  }

  asio::awaitable<void> cutover_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      const auto wait = until_cutover(ctx.clock.now_ms());
      cutover_timer.expires_after(std::chrono::milliseconds(wait));
      boost::system::error_code ec;
      co_await cutover_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || stopped) co_return;
      const auto today = business_date_of(ctx.clock.now_ms());
      spdlog::info("settlement cut-over {}: closing the batches of business dates before {}",
                   ctx.cfg().settlement.cutover, today);
      auto results = co_await self->catch_up(today);
      (void)results;
    }
  }

  asio::awaitable<void> startup() {
    auto self = shared_from_this();
    const auto today = business_date_of(ctx.clock.now_ms());
    auto results = co_await self->catch_up(today);
    for (const auto& r : results)
      spdlog::info("settlement at start-up: {}/{}/{} {}{}", r.acquirer, r.terminal_id, r.business_date,
                   r.state, r.problem ? " (" + r.problem->message + ")" : std::string{});
  }

  asio::awaitable<std::vector<batch_result>> catch_up(std::string before_date) {
    result<std::vector<journal::settlement_key>> keys = std::vector<journal::settlement_key>{};
    {
      std::lock_guard g(ctx.reader_mu);
      keys = ctx.reader->settlement_keys_to_close(before_date);
    }
    if (!keys) {
      spdlog::error("settlement catch-up: {}", keys.err().message);
      co_return std::vector<batch_result>{};
    }
    co_return co_await run_keys(std::move(*keys));
  }
};

settlement_service::settlement_service(server_context& ctx) : impl_(std::make_shared<impl>(ctx)) {}
settlement_service::~settlement_service() = default;

asio::awaitable<std::vector<batch_result>> settlement_service::settle(std::string business_date,
                                                                      std::optional<std::string> acquirer) {
  auto self = impl_;
  auto keys = self->keys_of_date(business_date, acquirer);
  if (!keys) {
    batch_result r;
    r.business_date = business_date;
    r.acquirer = acquirer.value_or("");
    r.state = "open";
    r.problem = keys.err();
    co_return std::vector<batch_result>{std::move(r)};
  }
  co_return co_await self->run_keys(std::move(*keys));
}

asio::awaitable<std::vector<batch_result>> settlement_service::close_before(std::string before_date) {
  auto self = impl_;
  co_return co_await self->catch_up(std::move(before_date));
}

void settlement_service::start() {
  auto self = impl_;
  auto on_end = [](std::exception_ptr e) {
    if (e) spdlog::error("settlement task stopped by an exception");
  };
  if (self->ctx.cfg().settlement.close_on_start) {
    asio::co_spawn(self->ctx.io, self->startup(), on_end);
  }
  if (!self->ctx.cfg().settlement.cutover.empty()) asio::co_spawn(self->ctx.io, self->cutover_loop(), on_end);
}

void settlement_service::stop() {
  impl_->stopped = true;
  impl_->cutover_timer.cancel();
}

}  // namespace eftd::server
