#include "retention.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "engine.hpp"

namespace eftd::server {

namespace asio = boost::asio;

namespace {

// After the cut-over the batch close runs first; the purge then finds those batches final.
constexpr std::int64_t after_cutover_ms = 30 * 60 * 1000;
constexpr std::int64_t day_ms = 24 * 60 * 60 * 1000;

// Milliseconds from now to the next HH:MM local time, plus `delay_ms`.
std::int64_t until_local(std::int64_t now_ms, const std::string& hhmm, std::int64_t delay_ms) {
  const int hh = (hhmm[0] - '0') * 10 + (hhmm[1] - '0');
  const int mm = (hhmm[3] - '0') * 10 + (hhmm[4] - '0');
  const auto base = now_ms - delay_ms;
  std::time_t t = static_cast<std::time_t>(base / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = 0;
  tm.tm_isdst = -1;
  std::int64_t at = static_cast<std::int64_t>(std::mktime(&tm)) * 1000;
  if (at <= base) {
    tm.tm_mday += 1;
    tm.tm_isdst = -1;
    at = static_cast<std::int64_t>(std::mktime(&tm)) * 1000;
  }
  return at - base;
}

}  // namespace

asio::awaitable<result<journal::purge_report>> purge_journal(server_context& ctx,
                                                             journal::purge_request req) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(result<journal::purge_report>)>(
      [&ctx](auto handler, journal::purge_request r) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        // The writer calls back on its own thread; hop back to the caller's executor.
        ctx.journal->purge(std::move(r), [h, ex](result<journal::purge_report> out) {
          asio::post(ex, [h, out = std::move(out)]() mutable { (*h)(std::move(out)); });
        });
      },
      asio::use_awaitable, std::move(req));
}

std::string retention_cutoff(std::int64_t now_ms, std::uint32_t days) {
  return business_date_of(now_ms - static_cast<std::int64_t>(days) * day_ms);
}

struct retention_service::impl : std::enable_shared_from_this<impl> {
  explicit impl(server_context& c) : ctx(c), timer(c.io) {}

  server_context& ctx;
  asio::steady_timer timer;
  bool stopped = false;

  asio::awaitable<void> purge_once() {
    journal::purge_request req;
    req.before = retention_cutoff(ctx.clock.now_ms(), ctx.cfg().journal_cfg.retention_days);
    auto r = co_await purge_journal(ctx, req);
    journal::audit_appended a;
    a.at_ms = ctx.clock.now_ms();
    a.actor = "eftd";
    // The purge follows [journal] retention_days: the configuration is what asked for it.
    a.source = std::string(journal::audit_sources::config);
    a.action = "purge";
    a.subject = "journal";
    if (r) {
      a.detail = journal::to_string(*r);
      a.outcome = "ok";
      spdlog::info("journal retention: purged orders before {}: {}", req.before, a.detail);
    } else {
      a.detail = "before=" + req.before + ": " + r.err().message;
      a.outcome = r.err().code;
      spdlog::error("journal retention: purge before {} failed: {}", req.before, r.err().message);
    }
    a.detail = a.detail.substr(0, 4000);
    journal::batch b;
    b.records.emplace_back(std::move(a));
    auto st = co_await commit(ctx, std::move(b));
    if (!st) spdlog::error("journal retention: audit record not written: {}", st.err().message);
  }

  asio::awaitable<void> loop() {
    auto self = shared_from_this();
    const auto& cutover = ctx.cfg().settlement.cutover;
    bool first = true;
    while (!stopped) {
      std::int64_t wait = day_ms;
      if (!cutover.empty())
        wait = until_local(ctx.clock.now_ms(), cutover, after_cutover_ms);
      else if (first)
        wait = 0;
      first = false;
      timer.expires_after(std::chrono::milliseconds(wait));
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || stopped) co_return;
      co_await purge_once();
    }
  }
};

retention_service::retention_service(server_context& ctx) : impl_(std::make_shared<impl>(ctx)) {}
retention_service::~retention_service() = default;

void retention_service::start() {
  if (impl_->ctx.cfg().journal_cfg.retention_days == 0) return;
  spdlog::info("journal retention: orders older than {} days are purged daily",
               impl_->ctx.cfg().journal_cfg.retention_days);
  asio::co_spawn(impl_->ctx.io, impl_->loop(), [](std::exception_ptr e) {
    if (e) spdlog::error("journal retention task stopped by an exception");
  });
}

void retention_service::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

}  // namespace eftd::server
