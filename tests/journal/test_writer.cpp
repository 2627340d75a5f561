// The group-commit writer: durability before acknowledgement, batch atomicity, group commit,
// error isolation between batches, and behaviour under I/O failure.
#include <catch2/catch.hpp>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "faulty_vfs.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace ej = eftd::journal;
using namespace journal_test;

using journal_test::code_of;
using journal_test::open_reader;
using journal_test::open_writer;
namespace {

bool order_exists(ej::reader& r, const std::string& order_no) {
  auto o = r.find_order("T01", order_no, "2024-03-01");
  REQUIRE(o);
  return o->has_value();
}

// Keeps the writer thread busy inside a done callback until release(), so that everything
// submitted meanwhile is queued and lands in ONE group: deterministic group composition.
class writer_gate {
 public:
  explicit writer_gate(ej::writer& w, const std::string& order_no)
      : release_(std::make_shared<std::promise<void>>()) {
    auto opened = std::make_shared<std::promise<bool>>();
    auto opened_f = opened->get_future();
    w.submit(batch_of({order("GATE" + order_no, order_no)}),
             [opened, released = release_->get_future().share()](eftd::status st) {
               opened->set_value(static_cast<bool>(st));
               released.wait_for(std::chrono::seconds(30));
             });
    REQUIRE(opened_f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    REQUIRE(opened_f.get());
  }
  ~writer_gate() { release(); }
  writer_gate(const writer_gate&) = delete;
  writer_gate& operator=(const writer_gate&) = delete;

  void release() {
    if (!released_) {
      released_ = true;
      release_->set_value();
    }
  }

 private:
  std::shared_ptr<std::promise<void>> release_;
  bool released_ = false;
};

}  // namespace

TEST_CASE("a committed batch is readable with all its records", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto op = payment("P1", "O1");
  op.entry_mode = "chip";
  op.scheme = "visa";
  auto ev = event("O1", "order_created", 1'700'000'000'000, ej::actor::pos);
  ev.op_id = std::nullopt;
  ev.detail = "sale 125.00 PLN";
  auto st = w->submit_sync(batch_of({order("O1", "4711"), op, auth_message("A1", "P1", 17), ev,
                                     ej::counter_set{"stan/acq1/TERM0001", 17}}));
  INFO(code_of(st));
  REQUIRE(st);

  auto r = open_reader(dir.db());
  auto v = r.order_detail("O1");
  REQUIRE(v);
  REQUIRE(v->has_value());
  const auto& view = **v;
  CHECK(view.order.order_no == "4711");
  CHECK(view.order.amount_minor == 12500);
  CHECK(view.order.currency == "PLN");
  CHECK(view.order.created_ms == 1'700'000'000'000);
  CHECK(view.order.updated_ms == 1'700'000'000'000);
  REQUIRE(view.operations.size() == 1);
  CHECK(view.operations[0].entry_mode == std::optional<std::string>("chip"));
  CHECK(view.operations[0].scheme == std::optional<std::string>("visa"));
  CHECK_FALSE(view.operations[0].pan_masked.has_value());
  REQUIRE(view.messages.size() == 1);
  CHECK(view.messages[0].stan == 17);
  CHECK(view.messages[0].mti == "0200");
  CHECK(view.messages[0].state == "intent");
  REQUIRE(view.events.size() == 1);
  CHECK(view.events[0].actor == ej::actor::pos);
  CHECK(view.events[0].detail == "sale 125.00 PLN");
  auto c = r.counter("stan/acq1/TERM0001");
  REQUIRE(c);
  CHECK(*c == 17);

  auto s = w->stats();
  CHECK(s.batches == 1);
  CHECK(s.records == 5);
  CHECK(s.commits == 1);
}

TEST_CASE("updates change only the given fields and honour expect_state", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  REQUIRE(w->submit_sync(batch_of({order("O1", "1"), payment("P1", "O1"), auth_message("A1", "P1", 1)})));

  ej::order_updated ou;
  ou.order_id = "O1";
  ou.expect_state = "created";
  ou.state = "approved";
  ou.result_code = "approved";
  ou.approved_amount_minor = 12500;
  ou.updated_ms = 1'700'000'009'000;
  ej::operation_updated pu;
  pu.op_id = "P1";
  pu.state = "approved";
  pu.auth_code = "A1B2C3";
  pu.response_code = "00";
  pu.updated_ms = 1'700'000'009'000;
  ej::acquirer_message_updated mu;
  mu.msg_id = "A1";
  mu.expect_state = "intent";
  mu.state = "answered";
  mu.response_code = "00";
  mu.rrn = "123456789012";
  mu.updated_ms = 1'700'000'009'000;
  REQUIRE(w->submit_sync(batch_of({ou, pu, mu})));

  auto r = open_reader(dir.db());
  auto v = r.order_detail("O1");
  REQUIRE(v);
  REQUIRE(v->has_value());
  CHECK((*v)->order.state == "approved");
  CHECK((*v)->order.approved_amount_minor == std::optional<std::int64_t>(12500));
  CHECK((*v)->order.reason_cashier == std::nullopt);  // not given, not touched
  CHECK((*v)->order.kind == "sale");
  CHECK((*v)->order.updated_ms == 1'700'000'009'000);
  CHECK((*v)->operations[0].auth_code == std::optional<std::string>("A1B2C3"));
  CHECK((*v)->operations[0].amount_minor == 12500);
  CHECK((*v)->messages[0].state == "answered");
  CHECK((*v)->messages[0].rrn == std::optional<std::string>("123456789012"));

  SECTION("a stale expect_state fails the whole batch") {
    ej::order_updated note;
    note.order_id = "O1";
    note.reason_cashier = "should not stick";
    note.updated_ms = 1;
    ej::order_updated stale = ou;  // still expects 'created'
    stale.state = "declined";
    auto st = w->submit_sync(batch_of({note, stale}));
    CHECK(code_of(st) == "journal.state_conflict");
    auto again = r.find_order("T01", "1", "2024-03-01");
    REQUIRE(again);
    CHECK((*again)->state == "approved");
    CHECK((*again)->reason_cashier == std::nullopt);  // the first record was rolled back too
  }
  SECTION("updating a row that does not exist") {
    ej::operation_updated ghost;
    ghost.op_id = "NOPE";
    ghost.state = "x";
    CHECK(code_of(w->submit_sync(batch_of({ghost}))) == "journal.not_found");
    ej::acquirer_message_updated ghost_msg;
    ghost_msg.msg_id = "NOPE";
    CHECK(code_of(w->submit_sync(batch_of({ghost_msg}))) == "journal.not_found");
  }
}

TEST_CASE("record errors have exact codes and leave nothing behind", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  REQUIRE(w->submit_sync(batch_of({order("O1", "1"), payment("P1", "O1"), auth_message("A1", "P1", 5)})));

  auto bad_date = order("O2", "2");
  bad_date.business_date = "2024/03/01";
  auto bad_currency = order("O3", "3");
  bad_currency.currency = "ZLOTY";
  auto negative = order("O4", "4");
  negative.amount_minor = -1;
  auto bad_kind = payment("P9", "O1");
  bad_kind.kind = "gift";
  auto orphan = payment("P8", "NO-SUCH-ORDER");
  auto orphan_event = event("NO-SUCH-ORDER", "x", 1);
  auto reuse_stan = auth_message("A2", "P1", 5);  // same acquirer key as A1
  auto reuse_msg_id = auth_message("A1", "P1", 6);
  auto bad_mti = auth_message("A3", "P1", 7);
  bad_mti.mti = "02X0";
  auto big_stan = auth_message("A4", "P1", 1'000'000);

  struct row {
    const char* name;
    ej::record rec;
    const char* code;
  };
  const std::vector<row> table{
      {"duplicate order id", order("O1", "99"), "journal.duplicate_order"},
      {"duplicate till/order/date", order("O5", "1"), "journal.duplicate_order"},
      {"bad business date", bad_date, "journal.invalid_record"},
      {"bad currency", bad_currency, "journal.invalid_record"},
      {"negative amount", negative, "journal.invalid_record"},
      {"unknown operation kind", bad_kind, "journal.invalid_record"},
      {"operation of unknown order", orphan, "journal.unknown_reference"},
      {"event of unknown order", orphan_event, "journal.unknown_reference"},
      {"duplicate operation id", payment("P1", "O1"), "journal.duplicate_id"},
      {"STAN reused in the same second", reuse_stan, "journal.duplicate_message"},
      {"duplicate message id", reuse_msg_id, "journal.duplicate_id"},
      {"non-numeric MTI", bad_mti, "journal.invalid_record"},
      {"STAN above 999999", big_stan, "journal.invalid_record"},
      {"empty counter name", ej::counter_set{"", 1}, "journal.invalid_record"},
  };
  for (const auto& t : table) {
    INFO(t.name);
    // A valid event in front proves the batch is all-or-nothing.
    auto st = w->submit_sync(batch_of({event("O1", "probe", 42), t.rec}));
    CHECK(code_of(st) == t.code);
  }
  auto r = open_reader(dir.db());
  auto v = r.order_detail("O1");
  REQUIRE(v);
  CHECK((*v)->events.empty());
  CHECK((*v)->operations.size() == 1);
  CHECK((*v)->messages.size() == 1);
  CHECK(w->stats().failed_batches == table.size());
}

TEST_CASE("group commit: 1000 batches from 8 threads need fewer commits", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db(), {.max_batch = 512});
  constexpr int threads = 8;
  constexpr int per_thread = 125;
  latch all_done(threads * per_thread);
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        w->submit(batch_of({order("O" + id, id), event("O" + id, "order_created", 1)}), [&](eftd::status st) {
          if (!st) failures.fetch_add(1);
          all_done.count_down();
        });
      }
    });
  }
  for (auto& th : pool) th.join();
  REQUIRE(all_done.wait());
  CHECK(failures.load() == 0);

  auto s = w->stats();
  CHECK(s.batches == threads * per_thread);
  CHECK(s.records == 2 * threads * per_thread);
  CHECK(s.commits < s.batches);
  CHECK(s.max_batches_per_commit > 1);
  CHECK(s.avg_batches_per_commit > 1.0);
  CHECK(s.max_batches_per_commit <= 256);  // 512 records / 2 per batch

  auto r = open_reader(dir.db());
  ej::order_filter f;
  f.limit = 10000;
  auto all = r.list_orders(f);
  REQUIRE(all);
  CHECK(all->size() == threads * per_thread);
}

TEST_CASE("a failing batch fails alone, the rest of its group commits", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  REQUIRE(w->submit_sync(batch_of({order("O1", "100")})));
  const auto commits_before = w->stats().commits;

  writer_gate gate(*w, "gate");
  std::vector<std::promise<eftd::status>> results(4);
  auto submit = [&](int i, ej::batch b) {
    w->submit(std::move(b), [&results, i](eftd::status st) { results[i].set_value(std::move(st)); });
  };
  submit(0, batch_of({order("O2", "101")}));
  submit(1, batch_of({order("O3", "100"), event("O3", "x", 1)}));  // duplicate till/order/date
  submit(2, batch_of({order("O4", "102")}));
  submit(3, batch_of({order("O5", "101")}));  // duplicate of batch 0, same group
  gate.release();

  std::vector<std::string> codes;
  for (auto& p : results) {
    auto f = p.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    codes.push_back(code_of(f.get()));
  }
  CHECK(codes == std::vector<std::string>{"ok", "journal.duplicate_order", "ok", "journal.duplicate_order"});
  // The gate's own commit plus exactly one for the four queued batches.
  CHECK(w->stats().commits == commits_before + 2);
  CHECK(w->stats().max_batches_per_commit >= 4);

  auto r = open_reader(dir.db());
  CHECK(order_exists(r, "101"));
  CHECK(order_exists(r, "102"));
  auto o1 = r.find_order("T01", "100", "2024-03-01");
  REQUIRE(o1);
  CHECK((*o1)->order_id == "O1");
  auto o3 = r.order_detail("O3");
  REQUIRE(o3);
  CHECK_FALSE(o3->has_value());
}

TEST_CASE("done runs only after commit: the row is visible from inside the callback", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  constexpr int n = 50;
  latch done(n);
  std::atomic<int> visible{0};
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i) {
    const std::string no = std::to_string(1000 + i);
    w->submit(batch_of({order("O" + no, no)}), [&, no, db = dir.db()](eftd::status st) {
      if (st) {
        ok.fetch_add(1);
        // A separate connection, as another thread of eftd would use.
        auto r = ej::reader::open(db);
        if (r) {
          auto o = r->find_order("T01", no, "2024-03-01");
          if (o && o->has_value()) visible.fetch_add(1);
        }
      }
      done.count_down();
    });
  }
  REQUIRE(done.wait());
  CHECK(ok.load() == n);
  CHECK(visible.load() == n);
}

TEST_CASE("close drains the queue, then refuses new work", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db(), {.max_batch = 4});
  constexpr int n = 200;
  std::atomic<int> ok{0};
  std::atomic<int> called{0};
  for (int i = 0; i < n; ++i) {
    const std::string no = std::to_string(i);
    w->submit(batch_of({order("O" + no, no)}), [&](eftd::status st) {
      if (st) ok.fetch_add(1);
      called.fetch_add(1);
    });
  }
  w->close();  // returns after every queued batch was applied and acknowledged
  CHECK(called.load() == n);
  CHECK(ok.load() == n);

  std::string late;
  w->submit(batch_of({order("LATE", "late")}), [&](eftd::status st) { late = code_of(st); });
  CHECK(late == "journal.closed");
  CHECK(code_of(w->submit_sync(batch_of({order("LATE", "late")}))) == "journal.closed");
  w->close();  // idempotent

  auto r = open_reader(dir.db());
  ej::order_filter f;
  f.limit = 1000;
  auto all = r.list_orders(f);
  REQUIRE(all);
  CHECK(all->size() == n);
  CHECK_FALSE(order_exists(r, "late"));
}

TEST_CASE("submit_sync from a done callback is refused instead of deadlocking", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  std::promise<std::string> inner;
  w->submit(batch_of({order("O1", "1")}),
            [&](eftd::status) { inner.set_value(code_of(w->submit_sync(batch_of({order("O2", "2")})))); });
  auto f = inner.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(f.get() == "journal.reentrant");
}

TEST_CASE("an I/O error at commit fails the whole group and acknowledges nothing",
          "[journal][writer][chaos]") {
  temp_dir dir;
  ej::writer_options opts;
  journal_test::faulty::reset();
  opts.vfs = journal_test::faulty::vfs_name();
  auto w = open_writer(dir.db(), opts);
  REQUIRE(w->submit_sync(batch_of({order("O1", "1")})));

  const bool fail_fsync = GENERATE(true, false);
  INFO((fail_fsync ? "fsync fails" : "write fails"));

  writer_gate gate(*w, "gate");
  std::vector<std::promise<eftd::status>> results(3);
  for (int i = 0; i < 3; ++i) {
    const std::string no = std::to_string(10 + i);
    w->submit(batch_of({order("O" + no, no)}),
              [&results, i](eftd::status st) { results[i].set_value(std::move(st)); });
  }
  if (fail_fsync)
    journal_test::faulty::fail_syncs(true);
  else
    journal_test::faulty::fail_writes(true);
  const auto failed_before = w->stats().failed_commits;
  gate.release();
  for (auto& p : results) {
    auto f = p.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    CHECK(code_of(f.get()) == "journal.io_error");
  }
  journal_test::faulty::fail_syncs(false);
  journal_test::faulty::fail_writes(false);
  CHECK(w->stats().failed_commits == failed_before + 1);

  auto r = open_reader(dir.db());
  CHECK(order_exists(r, "1"));
  for (const char* no : {"10", "11", "12"}) CHECK_FALSE(order_exists(r, no));

  // The disk is back: the writer carries on, and a retry of the lost batch succeeds.
  auto retry = w->submit_sync(batch_of({order("O10", "10")}));
  INFO(code_of(retry));
  CHECK(retry);
  CHECK(order_exists(r, "10"));
  w->close();
  auto r2 = open_reader(dir.db());
  CHECK(order_exists(r2, "10"));
  CHECK_FALSE(order_exists(r2, "11"));
}

TEST_CASE("an empty batch is acknowledged", "[journal][writer]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  CHECK(w->submit_sync(ej::batch{}));
  CHECK(w->stats().batches == 1);
}

TEST_CASE("only one writer may have a journal open", "[journal][writer]") {
  temp_dir dir;
  auto first = open_writer(dir.db());
  auto second = ej::writer::open(dir.db(), 64);
  REQUIRE_FALSE(second);
  CHECK(second.err().code == "journal.locked");
  // Readers are not writers: they open freely alongside.
  auto r = ej::reader::open(dir.db());
  CHECK(r);
  first->close();
  auto third = ej::writer::open(dir.db(), 64);
  INFO((third ? "" : third.err().code));
  CHECK(third);
}
