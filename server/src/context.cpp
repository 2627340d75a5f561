#include "context.hpp"

#include <memory>

#include "pad_session.hpp"

namespace eftd::server {

namespace asio = boost::asio;

server_context::server_context(asio::io_context& io_context, const config::server_config& initial)
    : io(io_context) {
  install_config(initial);
}

void server_context::install_config(config::server_config next) {
  std::lock_guard lk(cfg_mu_);
  cfg_kept_.push_back(std::move(next));
  cfg_now_.store(&cfg_kept_.back(), std::memory_order_release);
}

std::shared_ptr<pad_session> server_context::pad_for(const std::string& pad_id) {
  std::lock_guard lk(pads_mu);
  auto it = pads.find(pad_id);
  if (it == pads.end()) return nullptr;
  auto p = it->second.lock();
  if (!p || !p->open()) return nullptr;
  return p;
}

std::optional<journal::order_view> server_context::find_order_view(const std::string& till_id,
                                                                   const std::string& order_no,
                                                                   const std::string& business_date) {
  constexpr std::int64_t idempotency_window_ms = 48LL * 3600 * 1000;
  std::lock_guard lk(reader_mu);
  std::optional<std::string> order_id;
  if (!business_date.empty()) {
    auto r = reader->find_order(till_id, order_no, business_date);
    if (r && *r) order_id = (*r)->order_id;
  } else {
    auto r = reader->find_orders_recent(till_id, order_no, clock.now_ms() - idempotency_window_ms);
    if (r && !r->empty()) order_id = r->front().order_id;
  }
  if (!order_id) return std::nullopt;
  auto d = reader->order_detail(*order_id);
  if (!d || !*d) return std::nullopt;
  return std::move(**d);
}

std::uint32_t server_context::next_stan(const std::string& acquirer, const std::string& terminal,
                                        std::string& counter_name) {
  counter_name = "stan/" + acquirer + "/" + terminal;
  std::lock_guard lk(stan_mu);
  auto it = stans.find(counter_name);
  if (it == stans.end()) {
    // First use since start: continue from the journaled value so a restart never reuses a
    // STAN within its wrap-around period.
    std::int64_t last = 0;
    {
      std::lock_guard rlk(reader_mu);
      auto v = reader->counter(counter_name);
      if (v) last = *v;
    }
    if (stan_skip > 0) last = (last + stan_skip) % 1000000;
    it = stans.emplace(counter_name, static_cast<std::uint32_t>(last)).first;
  }
  // STAN is 6 digits: 1..999999, then it wraps (uniqueness toward the acquirer comes from
  // terminal + STAN + transmission date-time, never the STAN alone).
  it->second = it->second >= 999999 ? 1 : it->second + 1;
  return it->second;
}

// Not a coroutine itself, and the initiation captures nothing that owns resources: GCC 12
// destroys non-trivial temporaries of a co_await expression twice, which once cost a strand's
// reference count here. The completion resumes on the awaiting coroutine's own executor.
asio::awaitable<status> commit(server_context& ctx, journal::batch b) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(status)>(
      [&ctx](auto handler, journal::batch batch) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        const auto started = std::chrono::steady_clock::now();
        // The writer calls back on its own thread; hop back to the flow's executor.
        ctx.journal->submit(std::move(batch), [h, ex, started, m = ctx.metrics](status st) {
          m->observe(stage::journal_commit, ms_since(started));
          asio::post(ex, [h, st = std::move(st)]() mutable { (*h)(std::move(st)); });
        });
      },
      asio::use_awaitable, std::move(b));
}

}  // namespace eftd::server
