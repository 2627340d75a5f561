#include "metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "context.hpp"
#include "eftd/pad/messages.hpp"
#include "ha.hpp"

namespace eftd::server {

namespace {

constexpr std::string_view stage_names[] = {"total", "card_read", "pin", "acquirer", "journal_commit"};
constexpr std::string_view conn_names[] = {"pos", "pad", "metrics"};

// Label values come from eftd's own vocabulary, but are escaped anyway (\, ", newline).
std::string escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void latency_histogram::observe_ms(double ms) noexcept {
  if (ms < 0) ms = 0;
  std::size_t i = 0;
  while (i < bounds_ms.size() && ms > bounds_ms[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(ms * 1000.0), std::memory_order_relaxed);
}

void latency_histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_ms.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bounds_ms[i] / 1000.0, cumulative);
  }
  cumulative += counts_[bounds_ms.size()].load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum_us_.load(std::memory_order_relaxed) / 1e6);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, count_.load(std::memory_order_relaxed));
}

void metrics::transaction(std::string_view kind, std::string_view outcome) {
  {
    std::lock_guard lk(mu_);
    ++tx_[{std::string(kind), std::string(outcome)}];
  }
  std::lock_guard hl(health_mu_);
  ++health_requests_;
  if (outcome == "failed") ++health_errors_;
}

void metrics::observe_total(double ms) {
  observe(stage::total, ms);
  std::lock_guard hl(health_mu_);
  // Enough for a p99 over one renewal interval; beyond it the newest are dropped.
  if (health_ms_.size() < 65536) health_ms_.push_back(static_cast<float>(ms));
}

metrics::health_sample metrics::take_health() {
  std::vector<float> v;
  health_sample h;
  {
    std::lock_guard hl(health_mu_);
    v.swap(health_ms_);
    h.requests = std::exchange(health_requests_, 0);
    h.errors = std::exchange(health_errors_, 0);
  }
  if (!v.empty()) {
    const auto k = std::min(v.size() - 1, static_cast<std::size_t>(static_cast<double>(v.size()) * 0.99));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    h.p99_ms = v[k];
  }
  return h;
}

std::string metrics::render(server_context& ctx) const {
  std::string out;
  out += "# HELP eftd_transactions_total POS requests answered with a final result, by kind and outcome.\n";
  out += "# TYPE eftd_transactions_total counter\n";
  {
    std::lock_guard lk(mu_);
    for (const auto& [key, n] : tx_)
      out += fmt::format("eftd_transactions_total{{kind=\"{}\",outcome=\"{}\"}} {}\n", escape(key.first),
                         escape(key.second), n);
  }
  out += "# HELP eftd_stage_duration_seconds Time spent per stage of a transaction.\n";
  out += "# TYPE eftd_stage_duration_seconds histogram\n";
  for (std::size_t i = 0; i < stages_.size(); ++i)
    stages_[i].render(out, "eftd_stage_duration_seconds", fmt::format("stage=\"{}\"", stage_names[i]));
  out += "# HELP eftd_open_connections Connections open now, by kind.\n";
  out += "# TYPE eftd_open_connections gauge\n";
  for (std::size_t i = 0; i < open_.size(); ++i)
    out += fmt::format("eftd_open_connections{{kind=\"{}\"}} {}\n", conn_names[i], open_[i].load());

  out += "# HELP eftd_pad_commands_total Commands sent to PIN pads (each a round trip), by command.\n";
  out += "# TYPE eftd_pad_commands_total counter\n";
  for (std::size_t i = 0; i < pad_commands_.size(); ++i) {
    const auto n = pad_commands_[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    out += fmt::format("eftd_pad_commands_total{{command=\"{}\"}} {}\n",
                       pad::type_name(static_cast<pad::message_type>(i)), n);
  }

  out += "# HELP eftd_saf_queue_depth Reversals and advices waiting in the store-and-forward queue.\n";
  out += "# TYPE eftd_saf_queue_depth gauge\n";
  for (const auto& a : ctx.cfg().acquirers) {
    std::size_t depth = 0;
    {
      std::lock_guard lk(ctx.reader_mu);
      if (auto rows = ctx.reader->queued_messages(a.name)) depth = rows->size();
    }
    out += fmt::format("eftd_saf_queue_depth{{acquirer=\"{}\"}} {}\n", escape(a.name), depth);
  }
  if (ctx.journal) {
    const auto st = ctx.journal->stats();
    out += "# HELP eftd_journal_commits_total Group commits made durable by the journal writer.\n";
    out += "# TYPE eftd_journal_commits_total counter\n";
    out += fmt::format("eftd_journal_commits_total {}\n", st.commits);
    out += "# HELP eftd_journal_failed_commits_total Group commits lost to an I/O error.\n";
    out += "# TYPE eftd_journal_failed_commits_total counter\n";
    out += fmt::format("eftd_journal_failed_commits_total {}\n", st.failed_commits);
    out += "# HELP eftd_journal_batches_total Batches acknowledged durable (a commit groups several).\n";
    out += "# TYPE eftd_journal_batches_total counter\n";
    out += fmt::format("eftd_journal_batches_total {}\n", st.batches);
    out += "# HELP eftd_journal_records_total Records in batches acknowledged durable.\n";
    out += "# TYPE eftd_journal_records_total counter\n";
    out += fmt::format("eftd_journal_records_total {}\n", st.records);
    out += "# HELP eftd_journal_batches_per_commit Mean and largest number of batches per group commit.\n";
    out += "# TYPE eftd_journal_batches_per_commit gauge\n";
    out += fmt::format("eftd_journal_batches_per_commit{{stat=\"mean\"}} {}\n", st.avg_batches_per_commit);
    out += fmt::format("eftd_journal_batches_per_commit{{stat=\"max\"}} {}\n", st.max_batches_per_commit);
  }
  // Hot standby (server/HA.md): on a single node replication is off and nothing lags.
  const bool active_pair = ctx.ha && ctx.ha->role() == ha_role::active;
  out += "# HELP eftd_replication_enabled 1 when this node is the active of a pair and streams its journal.\n";
  out += "# TYPE eftd_replication_enabled gauge\n";
  out += fmt::format("eftd_replication_enabled {}\n", active_pair ? 1 : 0);
  out += "# HELP eftd_replication_lag_entries Journal entries committed here that the standby has not acknowledged.\n";
  out += "# TYPE eftd_replication_lag_entries gauge\n";
  out += fmt::format("eftd_replication_lag_entries {}\n", ctx.ha ? ctx.ha->replication_lag_entries() : 0);
  out += "# HELP eftd_replication_lag_seconds Age of the oldest commit waiting for the standby (sync mode).\n";
  out += "# TYPE eftd_replication_lag_seconds gauge\n";
  out += fmt::format("eftd_replication_lag_seconds {}\n", ctx.ha ? ctx.ha->replication_lag_seconds() : 0.0);
  if (ctx.ha) {
    out += "# HELP eftd_ha_epoch The fencing epoch this node knows.\n";
    out += "# TYPE eftd_ha_epoch gauge\n";
    out += fmt::format("eftd_ha_epoch {}\n", ctx.ha->epoch());
    out += "# HELP eftd_ha_active 1 while this node serves as the active, 0 otherwise.\n";
    out += "# TYPE eftd_ha_active gauge\n";
    out += fmt::format("eftd_ha_active {}\n", active_pair && ctx.ha->serving() ? 1 : 0);
  }
  return out;
}

}  // namespace eftd::server
