#include "eftd/journal/writer.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "apply.hpp"
#include "retention_steps.hpp"
#include "sqlite_db.hpp"

namespace eftd::journal {

namespace {

using detail::connection;

status io_error(const std::string& what) {
  return make_error("journal.io_error", what);
}

// One writer per journal: a second eftd on the same file would hand out the same STANs and
// decide the same orders twice. flock is per open file description, so this also holds
// between two writers in one process; the kernel drops it if the process dies.
class writer_lock {
 public:
  static result<writer_lock> acquire(const std::filesystem::path& db) {
    const auto path = db.string() + "-writer.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return make_error("journal.open_failed", "cannot open the journal writer lock");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return make_error("journal.locked", "another writer has this journal open");
    }
    return writer_lock(fd);
  }
  writer_lock(writer_lock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  writer_lock& operator=(writer_lock&&) = delete;
  writer_lock(const writer_lock&) = delete;
  ~writer_lock() { release(); }
  void release() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  explicit writer_lock(int fd) : fd_(fd) {}
  int fd_;
};

// Blocks a caller until the writer thread hands over a value.
template <class T>
struct rendezvous {
  std::mutex m;
  std::condition_variable cv;
  std::optional<T> value;

  void put(T v) {
    {
      std::lock_guard lk(m);
      value.emplace(std::move(v));
    }
    cv.notify_one();
  }
  T take() {
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return value.has_value(); });
    return std::move(*value);
  }
};

class sqlite_writer final : public writer {
 public:
  sqlite_writer(connection c, writer_lock lock, const writer_options& options)
      : db_(std::move(c)),
        lock_(std::move(lock)),
        max_batch_(options.max_batch),
        notify_(options.notifications),
        on_notifications_(options.on_notifications) {
    thread_ = std::thread([this] { run(); });
  }

  ~sqlite_writer() override { close(); }

  void submit(batch b, done_fn done) override {
    {
      std::lock_guard lk(mu_);
      if (!stopping_) {
        queue_.push_back(entry{std::move(b), std::move(done), {}});
        cv_.notify_one();
        return;
      }
    }
    if (done) done(make_error("journal.closed", "journal writer is closed"));
  }

  status submit_sync(batch b) override {
    if (std::this_thread::get_id() == thread_id_) {
      return make_error("journal.reentrant", "submit_sync called from the writer thread");
    }
    auto r = std::make_shared<rendezvous<status>>();
    submit(std::move(b), [r](status st) { r->put(std::move(st)); });
    return r->take();
  }

  writer_stats stats() const override {
    std::lock_guard lk(stats_mu_);
    return stats_;
  }

  result<std::string> pragma(const std::string& name) override {
    if (std::this_thread::get_id() == thread_id_) return detail::query_pragma(db_, name);
    auto r = std::make_shared<rendezvous<result<std::string>>>();
    {
      std::lock_guard lk(mu_);
      if (stopping_) return make_error("journal.closed", "journal writer is closed");
      queue_.push_back(entry{{}, {}, [this, r, name] { r->put(detail::query_pragma(db_, name)); }});
      cv_.notify_one();
    }
    return r->take();
  }

  void purge(purge_request req, purge_done_fn done) override {
    if (auto st = detail::check_purge_request(req); !st) {
      if (done) done(st.err());
      return;
    }
    auto job = std::make_shared<purge_job>(purge_job{std::move(req), std::move(done), {}});
    if (!queue_purge_step(job) && job->done) job->done(make_error("journal.closed", "journal writer is closed"));
  }

  result<purge_report> purge_sync(purge_request req) override {
    if (std::this_thread::get_id() == thread_id_) {
      return make_error("journal.reentrant", "purge_sync called from the writer thread");
    }
    auto r = std::make_shared<rendezvous<result<purge_report>>>();
    purge(std::move(req), [r](result<purge_report> out) { r->put(std::move(out)); });
    return r->take();
  }

  void close() override {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
      cv_.notify_one();
    }
    // From a done callback the thread cannot join itself: it drains the queue and stops;
    // a later close() or the destructor, on another thread, joins it.
    if (std::this_thread::get_id() == thread_id_) return;
    // close() may race with itself from two threads: only one joins.
    std::lock_guard jl(join_mu_);
    if (thread_.joinable()) thread_.join();
    lock_.release();  // the database is closed by now
  }

 private:
  struct entry {
    batch b;
    done_fn done;
    std::function<void()> task;  // set for pragma queries and purge steps, which are not batches
  };

  struct purge_job {
    purge_request req;
    purge_done_fn done;
    detail::purge_state state;
  };

  // Each purge step goes to the back of the queue, so batches that arrived during a step
  // wait for one step at most. False once the writer is closing.
  bool queue_purge_step(const std::shared_ptr<purge_job>& job) {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    queue_.push_back(entry{{}, {}, [this, job] { purge_step(job); }});
    cv_.notify_one();
    return true;
  }

  void purge_step(const std::shared_ptr<purge_job>& job) {
    auto st = detail::purge_step(db_, job->req, job->state);
    std::optional<result<purge_report>> out;
    if (!st) {
      out.emplace(st.err());
    } else if (job->state.at == detail::purge_state::phase::done) {
      out.emplace(job->state.report);
    } else if (!queue_purge_step(job)) {
      out.emplace(make_error("journal.closed", "journal writer closed during the purge; run it again"));
    }
    if (out && job->done) {
      try {
        job->done(std::move(*out));
      } catch (...) {
        // Like a batch's done: a throwing callback must not take the journal down.
      }
    }
  }

  void run() {
    thread_id_ = std::this_thread::get_id();
    for (;;) {
      std::vector<entry> group;
      std::function<void()> task;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping and drained
        if (queue_.front().task) {
          task = std::move(queue_.front().task);
          queue_.pop_front();
        } else {
          std::size_t records = 0;
          while (!queue_.empty() && !queue_.front().task) {
            const std::size_t n = queue_.front().b.records.size();
            if (!group.empty() && records + n > max_batch_) break;
            records += n;
            group.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
        }
      }
      if (task) {
        task();
      } else {
        commit_group(group);
      }
    }
    db_.close();
  }

  bool step_ok(const char* sql) {
    auto* s = db_.prepare(sql);
    if (s == nullptr) return false;
    detail::stmt st(s);
    return st.step() == SQLITE_DONE;
  }

  bool in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

  void commit_group(std::vector<entry>& group) {
    std::vector<status> results(group.size());
    bool committed = false;
    bool notifications = false;  // a committed batch inserted or changed notification rows

    if (!step_ok("BEGIN IMMEDIATE")) {
      fail_all(results, "cannot begin journal transaction: " + db_.errmsg());
    } else {
      bool doomed = false;
      for (std::size_t i = 0; i < group.size() && !doomed; ++i) {
        if (!step_ok("SAVEPOINT batch")) {
          doomed = true;
          fail_all(results, "cannot open savepoint: " + db_.errmsg());
          break;
        }
        auto out = detail::apply_records(db_, group[i].b.records, &notify_);
        // Some storage errors make SQLite roll back the whole transaction by itself;
        // then no batch of this group can be trusted any more.
        if (out.io || !in_transaction()) {
          doomed = true;
          fail_all(results, "journal write failed: " + (out.st ? db_.errmsg() : out.st.err().message));
          break;
        }
        if (!out.st) {
          results[i] = std::move(out.st);
          if (!step_ok("ROLLBACK TO batch") || !step_ok("RELEASE batch")) {
            doomed = true;
            fail_all(results, "cannot roll back savepoint: " + db_.errmsg());
          }
        } else if (!step_ok("RELEASE batch")) {
          doomed = true;
          fail_all(results, "cannot release savepoint: " + db_.errmsg());
        } else if (out.notifications) {
          notifications = true;
        }
      }
      if (!doomed) {
        // The durability point: with synchronous=FULL this returns after the WAL fsync.
        if (step_ok("COMMIT")) {
          committed = true;
        } else {
          fail_all(results, "journal commit failed: " + db_.errmsg());
        }
      }
      if (!committed && in_transaction()) step_ok("ROLLBACK");
    }

    record_stats(group, results, committed);
    if (committed && notifications && on_notifications_) {
      try {
        on_notifications_();
      } catch (...) {
        // Like a done callback: a throwing hook must not take the journal down.
      }
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (!group[i].done) continue;
      try {
        group[i].done(std::move(results[i]));
      } catch (...) {
        // A throwing callback must not take the journal down; callers were told not to throw.
      }
    }
  }

  static void fail_all(std::vector<status>& results, const std::string& why) {
    for (auto& r : results) r = io_error(why);
  }

  void record_stats(const std::vector<entry>& group, const std::vector<status>& results, bool committed) {
    std::lock_guard lk(stats_mu_);
    std::uint64_t ok = 0;
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (results[i]) {
        ++ok;
        stats_.records += group[i].b.records.size();
      }
    }
    stats_.batches += ok;
    stats_.failed_batches += group.size() - ok;
    if (committed) {
      ++stats_.commits;
      batches_in_commits_ += group.size();
      stats_.max_batches_per_commit = std::max<std::uint64_t>(stats_.max_batches_per_commit, group.size());
      stats_.avg_batches_per_commit =
          static_cast<double>(batches_in_commits_) / static_cast<double>(stats_.commits);
    } else {
      ++stats_.failed_commits;
    }
  }

  connection db_;
  writer_lock lock_;
  const std::uint32_t max_batch_;
  const writer_options::notification_options notify_;
  const std::function<void()> on_notifications_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<entry> queue_;
  bool stopping_ = false;

  mutable std::mutex stats_mu_;
  writer_stats stats_;
  std::uint64_t batches_in_commits_ = 0;

  std::mutex join_mu_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
};

}  // namespace

result<std::unique_ptr<writer>> writer::open(const std::filesystem::path& db, std::uint32_t max_batch) {
  writer_options o;
  o.max_batch = max_batch;
  return open(db, o);
}

result<std::unique_ptr<writer>> writer::open(const std::filesystem::path& db, const writer_options& options) {
  if (options.max_batch == 0) {
    return make_error("journal.invalid_argument", "max_batch must be at least 1");
  }
  auto lock = writer_lock::acquire(db);
  if (!lock) return lock.err();
  auto c =
      detail::open_connection(db, detail::open_mode::read_write_create, options.busy_timeout_ms, options.vfs);
  if (!c) return c.err();
  auto& conn = *c;

  // WAL: readers never block the writer and see only committed data.
  // synchronous=FULL: in WAL mode, the WAL is fsynced at every COMMIT, so an acknowledged
  // batch survives a power cut (NORMAL would only protect against a process crash).
  auto mode = detail::query_pragma(conn, "journal_mode");
  if (!mode) return mode.err();
  if (*mode != "wal") {
    auto* s = conn.prepare("PRAGMA journal_mode = WAL");
    if (s == nullptr) return make_error("journal.open_failed", "journal_mode: " + conn.errmsg());
    detail::stmt st(s);
    if (st.step() != SQLITE_ROW || st.text(0) != "wal") {
      return make_error("journal.open_failed", "cannot switch the journal to WAL mode");
    }
  }
  if (conn.exec("PRAGMA synchronous = FULL") != SQLITE_OK ||
      conn.exec("PRAGMA foreign_keys = ON") != SQLITE_OK) {
    return make_error("journal.open_failed", "cannot set pragmas: " + conn.errmsg());
  }
  if (auto st = detail::migrate(conn); !st) return st.err();
  return std::unique_ptr<writer>(new sqlite_writer(std::move(conn), std::move(*lock), options));
}

}  // namespace eftd::journal
