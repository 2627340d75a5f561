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
#include "eftd/journal/replica_codec.hpp"
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
  sqlite_writer(connection c, writer_lock lock, const writer_options& options, repl_position pos)
      : db_(std::move(c)),
        lock_(std::move(lock)),
        max_batch_(options.max_batch),
        notify_(options.notifications),
        on_notifications_(options.on_notifications),
        repl_(options.replication),
        pos_(std::move(pos)) {
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

  void apply_replica(repl_entry e, done_fn done) override {
    {
      std::lock_guard lk(mu_);
      if (!stopping_) {
        entry en{{}, std::move(done), {}};
        en.replica.emplace(std::move(e));
        queue_.push_back(std::move(en));
        cv_.notify_one();
        return;
      }
    }
    if (done) done(make_error("journal.closed", "journal writer is closed"));
  }

  repl_position replication_position() const override {
    std::lock_guard lk(pos_mu_);
    return pos_;
  }

  void trim_replication_log(std::uint64_t below) override {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    queue_.push_back(entry{{}, {}, [this, below] {
                             std::uint64_t keep_from = below;
                             {
                               std::lock_guard plk(pos_mu_);
                               keep_from = std::min(keep_from, pos_.last_seq);
                             }
                             auto* s = db_.prepare("DELETE FROM repl_log WHERE seq < ?1");
                             if (s == nullptr) return;
                             detail::stmt st(s);
                             st.bind(1, static_cast<std::int64_t>(keep_from));
                             st.step();
                           }});
    cv_.notify_one();
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
    std::optional<repl_entry> replica;  // set for apply_replica (b is empty then)
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

  // One batch of a group, inside its savepoint: a replica (standby) or a local batch, with
  // its replication log row when replication is on. `seq`/`epoch`: the log's position before
  // this batch. `made`: the entry written, if any.
  detail::apply_outcome apply_one(entry& e, std::uint64_t seq, std::uint64_t epoch, std::optional<repl_entry>& made) {
    detail::apply_outcome out;
    const bool replica = e.replica.has_value();
    if (repl_.admit) {
      if (auto st = repl_.admit(replica); !st) {
        out.st = st.err();
        return out;
      }
    }
    if (replica) {
      auto& r = *e.replica;
      if (r.seq != seq + 1) {
        out.st = make_error("journal.repl_gap", "replica entry " + std::to_string(r.seq) + " does not follow entry " +
                                                    std::to_string(seq));
        return out;
      }
      if (r.epoch < epoch) {
        out.st = make_error("journal.repl_stale_epoch", "replica entry " + std::to_string(r.seq) + " has epoch " +
                                                            std::to_string(r.epoch) + ", below " +
                                                            std::to_string(epoch));
        return out;
      }
      auto b = decode_batch(r.payload);
      if (!b) {
        out.st = b.err();
        return out;
      }
      out = detail::apply_records(db_, b->records, nullptr);
      if (!out.st || out.io) return out;
      if (auto io = log_entry(r); io) return *io;
      made.emplace(repl_entry{r.seq, r.epoch, {}});
      return out;
    }
    out = detail::apply_records(db_, e.b.records, &notify_);
    if (!out.st || out.io || !repl_.enabled) return out;
    // The payload is what the standby applies: the batch and the notification rows generated
    // for it here (their ids are random, so the standby must not make its own).
    batch shipped;
    shipped.records = std::move(e.b.records);
    for (auto& n : out.generated) shipped.records.emplace_back(std::move(n));
    out.generated.clear();
    repl_entry r{seq + 1, repl_.epoch ? repl_.epoch() : 0, encode_batch(shipped)};
    e.b.records = std::move(shipped.records);
    if (auto io = log_entry(r); io) return *io;
    made.emplace(std::move(r));
    return out;
  }

  // Inserts the repl_log row; an outcome only on failure.
  std::optional<detail::apply_outcome> log_entry(const repl_entry& r) {
    auto* s = db_.prepare("INSERT INTO repl_log(seq, epoch, payload) VALUES(?1, ?2, ?3)");
    detail::apply_outcome out;
    if (s == nullptr) {
      out.io = true;
      out.st = io_error("cannot prepare the replication log insert: " + db_.errmsg());
      return out;
    }
    detail::stmt st(s);
    st.bind(1, static_cast<std::int64_t>(r.seq));
    st.bind(2, static_cast<std::int64_t>(r.epoch));
    st.bind_blob(3, r.payload);
    const int rc = st.step();
    if (rc == SQLITE_DONE) return std::nullopt;
    out.io = detail::is_io_failure(rc);
    out.st = make_error(out.io ? "journal.io_error" : "journal.write_failed",
                        "replication log insert: " + db_.errmsg());
    return out;
  }

  void commit_group(std::vector<entry>& group) {
    std::vector<status> results(group.size());
    bool committed = false;
    bool notifications = false;  // a committed batch inserted or changed notification rows
    std::vector<std::optional<repl_entry>> entries(group.size());
    std::uint64_t seq = 0, epoch = 0;
    {
      std::lock_guard plk(pos_mu_);
      seq = pos_.last_seq;
      epoch = pos_.last_epoch;
    }

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
        auto out = apply_one(group[i], seq, epoch, entries[i]);
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
        } else {
          if (out.notifications) notifications = true;
          if (entries[i]) {
            seq = entries[i]->seq;
            epoch = entries[i]->epoch;
          }
        }
      }
      if (!doomed && repl_.fence) {
        // Checked last, right before the durability point: a node paused after admitting its
        // batches and resumed after losing its role must not make them durable.
        if (auto st = repl_.fence(); !st) {
          doomed = true;
          for (auto& r : results) r = st.err();
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
    std::vector<repl_commit> shipped;
    if (committed) {
      {
        std::lock_guard plk(pos_mu_);
        pos_.last_seq = seq;
        pos_.last_epoch = epoch;
      }
      if (repl_.on_commit) {
        for (std::size_t i = 0; i < group.size(); ++i) {
          if (!results[i] || !entries[i] || group[i].replica) continue;
          shipped.push_back(repl_commit{std::move(*entries[i]), std::move(group[i].done)});
          group[i].done = nullptr;
        }
      }
    }
    if (committed && notifications && on_notifications_) {
      try {
        on_notifications_();
      } catch (...) {
        // Like a done callback: a throwing hook must not take the journal down.
      }
    }
    if (!shipped.empty()) {
      try {
        repl_.on_commit(std::move(shipped));
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
  const writer_options::replication_options repl_;
  mutable std::mutex pos_mu_;
  repl_position pos_;  // as committed

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

// The replication log's position at open. Replication off: a log left from an earlier run
// is dropped with its history (the batches written from now on are not in it, so a standby
// must not catch up from it later). On: a journal without a history starts one.
result<repl_position> load_replication(connection& c, bool enabled) {
  auto fail = [&](const char* what) {
    return make_error("journal.open_failed", std::string(what) + ": " + c.errmsg());
  };
  repl_position pos;
  {
    auto* s = c.prepare("SELECT value FROM repl_meta WHERE key = 'history'");
    if (s == nullptr) return fail("replication history");
    detail::stmt st(s);
    if (st.step() == SQLITE_ROW) pos.history = st.text(0);
  }
  {
    auto* s = c.prepare("SELECT seq, epoch FROM repl_log ORDER BY seq DESC LIMIT 1");
    if (s == nullptr) return fail("replication log");
    detail::stmt st(s);
    if (st.step() == SQLITE_ROW) {
      pos.last_seq = static_cast<std::uint64_t>(st.int64(0));
      pos.last_epoch = static_cast<std::uint64_t>(st.int64(1));
    }
  }
  if (!enabled) {
    if (!pos.history.empty() || pos.last_seq != 0) {
      if (c.exec("DELETE FROM repl_log; DELETE FROM repl_meta WHERE key = 'history'") != SQLITE_OK)
        return fail("dropping the replication log");
    }
    return repl_position{};
  }
  if (pos.history.empty()) {
    pos.history = new_id();
    auto* s = c.prepare("INSERT INTO repl_meta(key, value) VALUES('history', ?1)");
    if (s == nullptr) return fail("replication history");
    detail::stmt st(s);
    st.bind(1, pos.history);
    if (st.step() != SQLITE_DONE) return fail("replication history");
  }
  return pos;
}

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
  auto pos = load_replication(conn, options.replication.enabled);
  if (!pos) return pos.err();
  return std::unique_ptr<writer>(new sqlite_writer(std::move(conn), std::move(*lock), options, std::move(*pos)));
}

}  // namespace eftd::journal
