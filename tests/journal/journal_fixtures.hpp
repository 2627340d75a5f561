// Shared fixtures for the journal tests: a temp dir per test and record builders.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "eftd/journal/records.hpp"

namespace journal_test {

namespace ej = eftd::journal;

// A fresh directory under the system temp dir, removed with everything in it at scope end.
class temp_dir {
 public:
  temp_dir() {
    auto pattern = (std::filesystem::temp_directory_path() / "eftd-journal-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path db() const { return path_ / "journal.db"; }

 private:
  std::filesystem::path path_;
};

// Counts down to zero; wait() gives up at a deadline instead of hanging the test run.
class latch {
 public:
  explicit latch(std::size_t n) : n_(n) {}
  void count_down() {
    std::lock_guard lk(m_);
    if (n_ > 0) --n_;
    cv_.notify_all();
  }
  bool wait(std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock lk(m_);
    return cv_.wait_for(lk, limit, [&] { return n_ == 0; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::size_t n_;
};

inline ej::order_created order(std::string order_id, std::string order_no,
                               std::int64_t created_ms = 1'700'000'000'000,
                               std::string business_date = "2024-03-01", std::string till_id = "T01") {
  ej::order_created o;
  o.order_id = std::move(order_id);
  o.merchant_id = "M001";
  o.store_id = "S01";
  o.till_id = std::move(till_id);
  o.order_no = std::move(order_no);
  o.business_date = std::move(business_date);
  o.kind = "sale";
  o.amount_minor = 12500;
  o.currency = "PLN";
  o.state = "created";
  o.created_ms = created_ms;
  return o;
}

inline ej::operation_created payment(std::string op_id, std::string order_id,
                                     std::int64_t created_ms = 1'700'000'000'100) {
  ej::operation_created op;
  op.op_id = std::move(op_id);
  op.order_id = std::move(order_id);
  op.kind = "payment";
  op.state = "card_wait";
  op.amount_minor = 12500;
  op.currency = "PLN";
  op.created_ms = created_ms;
  return op;
}

inline ej::acquirer_message_written auth_message(std::string msg_id, std::string op_id, std::uint32_t stan,
                                                 std::string state = "intent",
                                                 std::int64_t created_ms = 1'700'000'000'200) {
  ej::acquirer_message_written m;
  m.msg_id = std::move(msg_id);
  m.op_id = std::move(op_id);
  m.acquirer = "acq1";
  m.terminal_id = "TERM0001";
  m.mti = "0200";
  m.stan = stan;
  m.local_datetime = "0301120000";
  m.amount_minor = 12500;
  m.currency = "PLN";
  m.state = std::move(state);
  m.created_ms = created_ms;
  return m;
}

inline ej::event_appended event(std::string order_id, std::string kind, std::int64_t at_ms,
                                ej::actor who = ej::actor::server) {
  ej::event_appended e;
  e.order_id = std::move(order_id);
  e.at_ms = at_ms;
  e.actor = who;
  e.kind = std::move(kind);
  e.reason = "test";
  return e;
}

inline ej::batch batch_of(std::vector<ej::record> records) {
  return ej::batch{std::move(records)};
}

}  // namespace journal_test
