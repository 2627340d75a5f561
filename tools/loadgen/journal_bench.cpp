// eft-journal-bench: how fast this machine makes SQLite commits durable, next to eftd's journal.
//
//  1. raw: one connection, WAL, synchronous=FULL; each transaction inserts one row and
//     COMMITs (one WAL fsync): the commits per second the disk allows one writer.
//  2. eftd: the journal writer (eftd::journal::writer, group commit on its own thread) fed by
//     submitters that each resubmit a one-record batch as soon as the last is acknowledged
//     durable, as eftd's transaction coroutines do: with one in flight (every record its own
//     commit, the like-for-like figure) and with `--outstanding` in flight (group commit).
// Ratios printed: eftd's commits/s with one in flight over the raw commits/s (issue 9 asks for
// >= 0.5), and the durable records/s under group commit over the raw rate.
//
// Not a test: figures depend on the machine. The last stdout line is one JSON object.
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "eftd/journal/records.hpp"
#include "eftd/journal/writer.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double raw_commits_per_s(const std::filesystem::path& db, double seconds) {
  sqlite3* c = nullptr;
  if (sqlite3_open(db.c_str(), &c) != SQLITE_OK) return -1;
  auto exec = [&](const char* sql) { return sqlite3_exec(c, sql, nullptr, nullptr, nullptr) == SQLITE_OK; };
  if (!exec("PRAGMA journal_mode = WAL") || !exec("PRAGMA synchronous = FULL") ||
      !exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at INTEGER, payload TEXT)")) {
    sqlite3_close(c);
    return -1;
  }
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(c, "INSERT INTO t (at, payload) VALUES (?, 'order 4711 approved 000123')", -1, &ins,
                     nullptr);
  std::uint64_t n = 0;
  const auto t0 = clock_type::now();
  double el = 0;
  while ((el = std::chrono::duration<double>(clock_type::now() - t0).count()) < seconds) {
    exec("BEGIN");
    sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(n));
    sqlite3_step(ins);
    sqlite3_reset(ins);
    if (!exec("COMMIT")) break;
    ++n;
  }
  sqlite3_finalize(ins);
  sqlite3_close(c);
  return static_cast<double>(n) / el;
}

struct eftd_rate {
  double commits_per_s = 0, records_per_s = 0, avg_batches_per_commit = 0;
  std::uint64_t failed = 0;
};

eftd_rate eftd_journal_rate(const std::filesystem::path& db, double seconds, int outstanding) {
  eftd_rate out;
  auto w = eftd::journal::writer::open(db, 512);
  if (!w) {
    std::cerr << "eft-journal-bench: " << w.err().message << "\n";
    out.commits_per_s = -1;
    return out;
  }
  auto& writer = **w;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stop{false};
  std::atomic<int> live{0};
  std::atomic<std::uint64_t> failed{0};
  std::function<void()> submit_one = [&] {
    eftd::journal::audit_appended a;
    a.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    a.actor = "bench";
    a.source = std::string(eftd::journal::audit_sources::eftctl);
    a.action = "bench";
    a.subject = "journal";
    a.outcome = "ok";
    writer.append_audit(std::move(a), [&](eftd::status st) {
      if (!st) failed.fetch_add(1);
      if (!stop.load()) {
        submit_one();  // from the writer thread: submit only queues
        return;
      }
      if (live.fetch_sub(1) == 1) {
        std::lock_guard lock(mu);
        cv.notify_all();
      }
    });
  };
  const auto before = writer.stats();
  const auto t0 = clock_type::now();
  live = outstanding;
  for (int i = 0; i < outstanding; ++i) submit_one();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const auto after = writer.stats();
  const double el = std::chrono::duration<double>(clock_type::now() - t0).count();
  stop = true;
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return live.load() == 0; });
  }
  writer.close();
  out.commits_per_s = static_cast<double>(after.commits - before.commits) / el;
  out.records_per_s = static_cast<double>(after.records - before.records) / el;
  out.avg_batches_per_commit = after.avg_batches_per_commit;
  out.failed = failed.load();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eft-journal-bench: raw SQLite WAL commit rate vs eftd's journal writer"};
  std::string dir = "/tmp";
  double seconds = 5;
  int outstanding = 64;
  app.add_option("--dir", dir, "Directory for the databases (the disk under test)")->capture_default_str();
  app.add_option("--seconds", seconds, "Seconds per measurement")->capture_default_str();
  app.add_option("--outstanding", outstanding, "eftd under load: batches in flight at once")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::filesystem::path raw_db = std::filesystem::path(dir) / "journal-bench-raw.db";
  const std::filesystem::path eftd_db = std::filesystem::path(dir) / "journal-bench-eftd.db";
  auto remove_dbs = [&] {
    for (const auto& p : {raw_db, eftd_db})
      for (const char* suffix : {"", "-wal", "-shm", "-writer.lock"})
        std::filesystem::remove(p.string() + suffix);
  };
  remove_dbs();
  const double raw = raw_commits_per_s(raw_db, seconds);
  // One batch in flight: every record its own commit, like the raw loop (the writer's cost
  // per commit: thread hand-off, savepoint, schema checks). Many in flight: group commit.
  const auto single = eftd_journal_rate(eftd_db, seconds, 1);
  remove_dbs();
  const auto grouped = eftd_journal_rate(eftd_db, seconds, outstanding);
  remove_dbs();
  const double ratio = raw > 0 ? single.commits_per_s / raw : 0;
  const double ratio_grouped = raw > 0 ? grouped.records_per_s / raw : 0;
  std::printf("raw SQLite WAL insert+commit (fsync), one row each: %.0f commits/s\n", raw);
  std::printf("eftd journal writer, 1 batch in flight:   %.0f commits/s (%.0f records/s)\n",
              single.commits_per_s, single.records_per_s);
  std::printf(
      "eftd journal writer, %d batches in flight: %.0f commits/s, %.0f records/s (%.1f batches per commit)\n",
      outstanding, grouped.commits_per_s, grouped.records_per_s, grouped.avg_batches_per_commit);
  std::printf("ratio eftd/raw: commits %.2f (one at a time), durable records %.2f (group commit)\n", ratio,
              ratio_grouped);
  nlohmann::json j{{"bench", "journal"},
                   {"raw_commits_per_s", std::round(raw)},
                   {"eftd_commits_per_s", std::round(single.commits_per_s)},
                   {"eftd_grouped_records_per_s", std::round(grouped.records_per_s)},
                   {"eftd_grouped_commits_per_s", std::round(grouped.commits_per_s)},
                   {"ratio_commits", std::round(ratio * 100) / 100},
                   {"ratio_grouped_records", std::round(ratio_grouped * 100) / 100},
                   {"failed", single.failed + grouped.failed}};
  std::cout << j.dump() << std::endl;
  return raw > 0 && single.commits_per_s > 0 && grouped.commits_per_s > 0 &&
                 single.failed + grouped.failed == 0
             ? 0
             : 1;
}
