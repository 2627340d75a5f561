// Anomaly tests for the journal (RELIABILITY.md R2, R6): writes that fail, a disk that fills up,
// and a power loss that takes every write not yet fsynced. The promise under test: a batch is
// acknowledged ok only when it is durable, a failing disk makes new batches fail cleanly (and
// the writer works again once the disk does), and after a power loss every acknowledged batch
// is there and the database passes integrity_check.
#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "faulty_vfs.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace ej = eftd::journal;
namespace faulty = journal_test::faulty;
using journal_test::batch_of;
using journal_test::order;
using journal_test::temp_dir;

using journal_test::code_of;
using journal_test::open_reader;
namespace {

std::unique_ptr<ej::writer> open_writer(const std::filesystem::path& db, const std::string& vfs) {
  ej::writer_options opts;
  opts.max_batch = 16;
  opts.vfs = vfs;
  auto w = ej::writer::open(db, opts);
  INFO((w ? "" : w.err().code + ": " + w.err().message));
  REQUIRE(w);
  return std::move(*w);
}

// An order with a fat event, so that a few hundred of them fill WAL pages and checkpoints run.
ej::batch sale(int i) {
  const std::string no = std::to_string(i);
  auto e = journal_test::event("O" + no, "created", 1'700'000'000'000 + i);
  e.detail = std::string(1500, static_cast<char>('a' + i % 26));
  return batch_of({order("O" + no, no), e});
}

bool has_order(ej::reader& r, int i) {
  auto o = r.find_order("T01", std::to_string(i), "2024-03-01");
  REQUIRE(o);
  return o->has_value();
}

// Submits batches [from, to) and waits for every acknowledgement. code per batch number.
std::map<int, std::string> submit_all(ej::writer& w, int from, int to) {
  std::vector<std::promise<eftd::status>> done(static_cast<std::size_t>(to - from));
  for (int i = from; i < to; ++i) {
    auto& p = done[static_cast<std::size_t>(i - from)];
    w.submit(sale(i), [&p](eftd::status st) { p.set_value(std::move(st)); });
  }
  std::map<int, std::string> out;
  for (int i = from; i < to; ++i) {
    auto f = done[static_cast<std::size_t>(i - from)].get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    out[i] = code_of(f.get());
  }
  return out;
}

void require_integrity(ej::reader& r) {
  auto ic = r.pragma("integrity_check");
  REQUIRE(ic);
  CHECK(*ic == "ok");
}

}  // namespace

TEST_CASE(
    "write errors: new batches fail with journal.io_error, nothing of them is stored, the writer "
    "recovers",
    "[journal][chaos]") {
  faulty::reset();
  temp_dir dir;
  auto w = open_writer(dir.db(), faulty::vfs_name());
  auto before = submit_all(*w, 0, 20);
  for (const auto& [i, code] : before) REQUIRE(code == "ok");

  faulty::fail_writes(true);
  auto during = submit_all(*w, 100, 120);
  for (const auto& [i, code] : during) CHECK(code == "journal.io_error");
  CHECK(w->stats().failed_commits >= 1);

  faulty::fail_writes(false);
  auto after = submit_all(*w, 200, 220);
  for (const auto& [i, code] : after) CHECK(code == "ok");
  w->close();

  auto r = open_reader(dir.db());
  for (int i = 0; i < 20; ++i) CHECK(has_order(r, i));
  for (int i = 100; i < 120; ++i) CHECK_FALSE(has_order(r, i));
  for (int i = 200; i < 220; ++i) CHECK(has_order(r, i));
  require_integrity(r);
}

TEST_CASE(
    "disk full: batches fail once the space is gone, every acknowledged one is kept, and the "
    "writer carries on when space returns",
    "[journal][chaos]") {
  faulty::reset();
  temp_dir dir;
  auto w = open_writer(dir.db(), faulty::vfs_name());
  REQUIRE(submit_all(*w, 0, 5).at(0) == "ok");

  // Room for a few dozen more sales (each ~2 WAL pages), then SQLITE_FULL.
  const std::int64_t budget = GENERATE(as<std::int64_t>{}, 0, 4096, 100'000);
  INFO("budget " << budget);
  faulty::disk_full_after(budget);
  auto during = submit_all(*w, 100, 400);
  int ok = 0;
  int full = 0;
  for (const auto& [i, code] : during) {
    if (code == "ok")
      ++ok;
    else if (code == "journal.io_error")
      ++full;
    else
      FAIL("unexpected code " << code);
  }
  CHECK(full > 0);
  if (budget == 0) CHECK(ok == 0);
  if (budget == 100'000) CHECK(ok > 0);

  faulty::disk_full_after(-1);  // space returns
  auto after = submit_all(*w, 500, 510);
  for (const auto& [i, code] : after) CHECK(code == "ok");
  w->close();

  auto r = open_reader(dir.db());
  for (const auto& [i, code] : during) {
    INFO("sale " << i << " was acknowledged " << code);
    CHECK(has_order(r, i) == (code == "ok"));
  }
  for (int i = 500; i < 510; ++i) CHECK(has_order(r, i));
  require_integrity(r);
}

TEST_CASE("fsync errors: nothing is acknowledged ok until fsync works again", "[journal][chaos]") {
  faulty::reset();
  temp_dir dir;
  auto w = open_writer(dir.db(), faulty::vfs_name());
  REQUIRE(submit_all(*w, 0, 3).at(0) == "ok");
  faulty::fail_syncs(true);
  for (const auto& [i, code] : submit_all(*w, 100, 110)) CHECK(code == "journal.io_error");
  faulty::fail_syncs(false);
  for (const auto& [i, code] : submit_all(*w, 200, 210)) CHECK(code == "ok");
  w->close();
  auto r = open_reader(dir.db());
  for (int i = 200; i < 210; ++i) CHECK(has_order(r, i));
  require_integrity(r);
}

TEST_CASE("power loss: every acknowledged batch survives and the journal passes integrity_check",
          "[journal][chaos]") {
  faulty::reset();
  temp_dir dir;
  // Where the power goes: after this many acknowledgements, from inside the writer thread, so
  // that the group being committed at that moment and everything queued behind it are cut.
  const int cut_after = GENERATE(1, 17, 250, 700);
  const auto mode = GENERATE(faulty::loss_mode::drop_unsynced, faulty::loss_mode::tear_last_unsynced);
  INFO("cut after " << cut_after << " acks, mode "
                    << (mode == faulty::loss_mode::drop_unsynced ? "drop" : "tear"));

  std::map<int, std::string> acked;
  {
    auto w = open_writer(dir.db(), faulty::vfs_name());
    std::mutex mu;
    int oks = 0;
    constexpr int total = 900;
    std::vector<std::promise<void>> done(total);
    // Four submitters, like tills, so groups hold several batches.
    std::vector<std::thread> tills;
    for (int t = 0; t < 4; ++t) {
      tills.emplace_back([&, t] {
        for (int i = t; i < total; i += 4) {
          w->submit(sale(i), [&, i](eftd::status st) {
            {
              std::lock_guard lk(mu);
              acked[i] = code_of(st);
              if (st && ++oks == cut_after) faulty::power_cut();
            }
            done[static_cast<std::size_t>(i)].set_value();
          });
        }
      });
    }
    for (auto& t : tills) t.join();
    for (auto& p : done)
      REQUIRE(p.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    w->close();  // its final checkpoint fails: the machine is "dead"
  }
  REQUIRE(faulty::power_restore(mode) >= 2);  // at least the database and its WAL

  // Restart: a writer on the plain VFS (like eftd after the power comes back), then a reader.
  {
    auto w = open_writer(dir.db(), "");
    CHECK(w->submit_sync(sale(5000)));
  }
  auto r = open_reader(dir.db());
  require_integrity(r);
  int ok_count = 0;
  for (const auto& [i, code] : acked) {
    if (code != "ok") continue;
    ++ok_count;
    INFO("sale " << i << " was acknowledged ok");
    CHECK(has_order(r, i));
  }
  CHECK(ok_count >= cut_after);
  // Every batch after the cut failed: the power loss is real, not a no-op.
  CHECK(ok_count < 900);
  CHECK(has_order(r, 5000));
}
