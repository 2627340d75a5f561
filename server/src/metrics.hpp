// eftd's own measurements, exposed in the Prometheus text format (GET /metrics on
// [listen.metrics]). Counters and histograms are lock-free on the hot path (atomics); the
// few labelled counters (transactions by kind and outcome) take a short mutex. Rendering reads
// the journal writer's statistics and the store-and-forward queue depth at scrape time.
//
// Stages timed (histogram eftd_stage_duration_seconds{stage=...}):
//   total           a POS request from arrival to its final result
//   card_read       read_card sent to the pad until the card is read (includes the customer)
//   pin             get_pin until the PIN block arrives (includes the customer)
//   acquirer        one request/response exchange with an acquirer
//   journal_commit  a batch submitted to the journal until it is durable
// Speed is shown by these figures and the load generator, never asserted by tests.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace eftd::server {

struct server_context;

class latency_histogram {
 public:
  // Upper bounds in milliseconds; a last +Inf bucket is implied.
  static constexpr std::array<double, 14> bounds_ms{1,   2,   5,    10,   20,   50,    100,
                                                    200, 500, 1000, 2000, 5000, 10000, 30000};
  void observe_ms(double ms) noexcept;
  // Appends the _bucket/_sum/_count lines of `name` with the label set `labels` ("stage=\"x\"").
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, bounds_ms.size() + 1> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

enum class stage { total, card_read, pin, acquirer, journal_commit };

// Milliseconds from `start` until now, for metrics::observe.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}
enum class conn_kind { pos, pad, metrics };

class metrics {
 public:
  void transaction(std::string_view kind, std::string_view outcome);
  void observe(stage s, double ms) noexcept { stages_[static_cast<std::size_t>(s)].observe_ms(ms); }
  void connection_opened(conn_kind k) noexcept { ++open_[static_cast<std::size_t>(k)]; }
  void connection_closed(conn_kind k) noexcept { --open_[static_cast<std::size_t>(k)]; }
  // A command sent to a PIN pad, by its message type byte (PROTOCOL.md): how many round trips
  // a sale costs, and which kinds dominate.
  void pad_command(std::uint8_t type) noexcept {
    pad_commands_[type].fetch_add(1, std::memory_order_relaxed);
  }

  // Health as tills experience it (server/HA.md): final results and the technical failures
  // among them, and the p99 of their end-to-end time, since the previous call. The HA node
  // reports it to the witness with each lease renewal.
  struct health_sample {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    double p99_ms = 0;
  };
  health_sample take_health();
  void observe_total(double ms);

  // The whole exposition, with what only the context knows (queue depth, writer statistics).
  std::string render(server_context& ctx) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> tx_;
  std::array<latency_histogram, 5> stages_;
  std::array<std::atomic<std::int64_t>, 3> open_{};
  std::array<std::atomic<std::uint64_t>, 256> pad_commands_{};
  std::mutex health_mu_;
  std::vector<float> health_ms_;  // this interval's end-to-end times (bounded)
  std::uint64_t health_requests_ = 0;
  std::uint64_t health_errors_ = 0;
};

// Counts a connection of `kind` as open for the guard's lifetime (a member of each session).
// It shares ownership of the metrics: a session can outlive the server context at shutdown
// (the io_context destroys pending handlers, and the sessions they hold, after it).
class connection_gauge {
 public:
  connection_gauge(std::shared_ptr<metrics> m, conn_kind k) noexcept : m_(std::move(m)), k_(k) {
    if (m_) m_->connection_opened(k_);
  }
  ~connection_gauge() {
    if (m_) m_->connection_closed(k_);
  }
  connection_gauge(const connection_gauge&) = delete;
  connection_gauge& operator=(const connection_gauge&) = delete;

 private:
  std::shared_ptr<metrics> m_;
  conn_kind k_;
};

}  // namespace eftd::server
