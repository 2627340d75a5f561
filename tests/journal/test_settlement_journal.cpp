// Journal schema v5: settlement batches and their steps (records, constraints, reader queries).
#include <catch2/catch.hpp>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"

using namespace journal_test;

namespace {

ej::settlement_batch_written batch(std::string id, std::string date = "2024-03-01",
                                   std::string terminal = "TERM0001", std::int64_t no = 1) {
  ej::settlement_batch_written b;
  b.batch_id = std::move(id);
  b.acquirer = "acq1";
  b.terminal_id = std::move(terminal);
  b.batch_no = no;
  b.business_date = std::move(date);
  b.card_acceptor_id = "MERCHANT0000001";
  b.state = "closing";
  b.totals.debits = 2;
  b.totals.debit_amount = 3000;
  b.totals.debit_reversals = 1;
  b.totals.debit_reversal_amount = 1000;
  b.totals.credits = 1;
  b.totals.credit_amount = 500;
  b.in_doubt = 1;
  b.created_ms = 1'700'000'100'000;
  return b;
}

ej::settlement_step_written step(std::string id, std::string batch_id, std::int64_t seq, std::string kind,
                                 std::uint32_t stan) {
  ej::settlement_step_written s;
  s.step_id = std::move(id);
  s.batch_id = std::move(batch_id);
  s.seq = seq;
  s.kind = std::move(kind);
  s.mti = s.kind == "upload" ? "0320" : "0500";
  s.processing_code = s.kind == "close_after_upload" ? "960000" : s.kind == "close" ? "920000" : "000000";
  s.stan = stan;
  s.at_ms = 1'700'000'100'000 + seq;
  s.state = "sent";
  s.created_ms = s.at_ms;
  return s;
}

// Order + payment + a 0200 in `state` with `rc`, for business date `date`.
void sale(ej::writer& w, const std::string& n, const std::string& date, const std::string& state,
          std::optional<std::string> rc, std::int64_t created_ms) {
  ej::batch b;
  b.records.push_back(order("O" + n, "N" + n, created_ms, date));
  b.records.push_back(payment("P" + n, "O" + n, created_ms));
  auto m = auth_message("M" + n, "P" + n, static_cast<std::uint32_t>(std::stoi(n)), state, created_ms);
  b.records.push_back(m);
  if (rc) {
    ej::acquirer_message_updated u;
    u.msg_id = "M" + n;
    u.response_code = rc;
    u.updated_ms = created_ms;
    b.records.push_back(u);
  }
  REQUIRE(w.submit_sync(std::move(b)));
}

}  // namespace

TEST_CASE("settlement batches and steps are written and updated and read back under their constraints",
          "[journal][settlement]") {
  temp_dir dir;
  auto w = ej::writer::open(dir.db(), 16);
  REQUIRE(w);
  REQUIRE((*w)->submit_sync({{batch("B1"), step("S0", "B1", 0, "close", 41)}}));

  // One batch per key.
  auto dup = (*w)->submit_sync({{batch("B2")}});
  REQUIRE_FALSE(dup);
  CHECK(dup.err().code == "journal.duplicate_batch");
  // Unknown states and kinds are refused by the schema.
  auto bad = batch("B3", "2024-03-02", "TERM0001", 3);
  bad.state = "half_closed";
  CHECK((*w)->submit_sync({{bad}}).err().code == "journal.invalid_record");
  auto bad_step = step("S9", "B1", 9, "rollback", 49);
  CHECK((*w)->submit_sync({{bad_step}}).err().code == "journal.invalid_record");
  // Steps are unique per batch and sequence number.
  CHECK((*w)->submit_sync({{step("S1x", "B1", 0, "close", 42)}}).err().code == "journal.duplicate_id");

  // The answer and the batch's next state together; a stale expectation conflicts.
  ej::settlement_step_updated su;
  su.step_id = "S0";
  su.expect_state = "sent";
  su.state = "answered";
  su.response_code = "95";
  su.updated_ms = 1'700'000'100'500;
  ej::settlement_batch_updated bu;
  bu.batch_id = "B1";
  bu.expect_state = "closing";
  bu.state = "uploading";
  bu.response_code = "95";
  bu.uploads_total = 2;
  bu.updated_ms = 1'700'000'100'500;
  REQUIRE((*w)->submit_sync({{su, bu}}));
  auto again = (*w)->submit_sync({{bu}});
  REQUIRE_FALSE(again);
  CHECK(again.err().code == "journal.state_conflict");
  REQUIRE((*w)->submit_sync({{step("S1", "B1", 1, "upload", 43)}}));
  (*w)->close();

  auto rd = ej::reader::open(dir.db());
  REQUIRE(rd);
  auto b = rd->settlement_batch("acq1", "TERM0001", "2024-03-01");
  REQUIRE(b);
  REQUIRE(b->has_value());
  const auto& row = **b;
  CHECK(row.batch_id == "B1");
  CHECK(row.state == "uploading");
  CHECK(row.response_code == std::optional<std::string>{"95"});
  CHECK(row.uploads_total == 2);
  CHECK(row.uploads_done == 0);
  CHECK(row.totals == batch("B1").totals);
  CHECK(row.totals.net() == 3000 - 1000 - 500);
  CHECK(row.in_doubt == 1);
  CHECK(row.card_acceptor_id == "MERCHANT0000001");
  auto none = rd->settlement_batch("acq1", "TERM0002", "2024-03-01");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());

  auto steps = rd->settlement_steps("B1");
  REQUIRE(steps);
  REQUIRE(steps->size() == 2);
  CHECK((*steps)[0].state == "answered");
  CHECK((*steps)[0].response_code == std::optional<std::string>{"95"});
  CHECK((*steps)[0].stan == 41);
  CHECK((*steps)[0].processing_code == "920000");
  CHECK((*steps)[0].at_ms == 1'700'000'100'000);
  CHECK((*steps)[1].kind == "upload");
  CHECK((*steps)[1].state == "sent");
  auto all = rd->settlement_batches("2024-03-01");
  REQUIRE(all);
  CHECK(all->size() == 1);
}

TEST_CASE("settlement candidates and the keys a catch-up close must do", "[journal][settlement]") {
  temp_dir dir;
  auto w = ej::writer::open(dir.db(), 16);
  REQUIRE(w);
  sale(**w, "1", "2024-03-01", "answered", "00", 1'700'000'000'000);
  sale(**w, "2", "2024-03-01", "reversed", "00", 1'700'000'001'000);
  sale(**w, "3", "2024-03-02", "answered", "05", 1'700'000'002'000);
  sale(**w, "4", "2024-03-03", "answered", "00", 1'700'000'003'000);
  {
    // Order 2 was cancelled: its reversal (a 0400 naming it) was acknowledged.
    auto rev = auth_message("R2", "P2", 90, "acknowledged", 1'700'000'001'500);
    rev.mti = "0400";
    rev.original_msg_id = "M2";
    REQUIRE((*w)->submit_sync({{rev}}));
  }
  auto rd = ej::reader::open(dir.db());
  REQUIRE(rd);
  auto c = rd->settlement_candidates("2024-03-01", std::nullopt, std::nullopt);
  REQUIRE(c);
  REQUIRE(c->size() == 2);  // the 0400 is no candidate of its own
  CHECK((*c)[0].message.msg_id == "M1");
  CHECK_FALSE((*c)[0].reversal_acknowledged);
  CHECK((*c)[0].order_kind == "sale");
  CHECK((*c)[0].merchant_id == "M001");
  CHECK((*c)[1].message.msg_id == "M2");
  CHECK((*c)[1].reversal_acknowledged);
  auto other = rd->settlement_candidates("2024-03-01", std::string("acq2"), std::nullopt);
  REQUIRE(other);
  CHECK(other->empty());

  // Before 2024-03-03: every request is in the terminal's open batch 1, labelled with the
  // latest business date before the cut (a decline still makes a key).
  auto keys = rd->settlement_keys_to_close("2024-03-03");
  REQUIRE(keys);
  REQUIRE(keys->size() == 1);
  CHECK((*keys)[0] == ej::settlement_key{"acq1", "TERM0001", "2024-03-02", 0});

  // Once batch 1 is written (closed) and batch 2 is unfinished, the open batch is 3 and holds
  // nothing: only the unfinished batch is left to do.
  auto closed = batch("B1", "2024-03-01");
  closed.state = "closed";
  auto unfinished = batch("B4", "2024-03-03", "TERM0001", 2);
  unfinished.state = "uploading";
  REQUIRE((*w)->submit_sync({{closed, unfinished}}));
  keys = rd->settlement_keys_to_close("2024-03-03");
  REQUIRE(keys);
  REQUIRE(keys->size() == 1);
  CHECK((*keys)[0] == ej::settlement_key{"acq1", "TERM0001", "2024-03-03", 2});
}

TEST_CASE("messages are stamped with their terminal's open batch and a written batch closes its number",
          "[journal][settlement]") {
  temp_dir dir;
  auto w = ej::writer::open(dir.db(), 16);
  REQUIRE(w);
  sale(**w, "1", "2024-03-01", "answered", "00", 1'700'000'000'000);
  sale(**w, "2", "2024-03-01", "answered", "00", 1'700'000'001'000);
  auto rd = ej::reader::open(dir.db());
  REQUIRE(rd);
  CHECK(rd->open_batch_no("acq1", "TERM0001").value() == 1);
  auto open = rd->open_batch_keys(std::nullopt, "2024-03-01");
  REQUIRE(open);
  REQUIRE(open->size() == 1);
  CHECK((*open)[0] == ej::settlement_key{"acq1", "TERM0001", "2024-03-01", 0});

  // The guard passes while batch 1 is not written.
  REQUIRE((*w)->submit_sync({{ej::batch_still_open{"acq1", "TERM0001", 1}}}));
  auto b1 = batch("B1", "2024-03-01");
  b1.state = "open";
  REQUIRE((*w)->submit_sync({{b1}}));
  CHECK(rd->open_batch_no("acq1", "TERM0001").value() == 2);
  auto guard = (*w)->submit_sync({{ej::batch_still_open{"acq1", "TERM0001", 1}}});
  REQUIRE_FALSE(guard);
  CHECK(guard.err().code == "journal.state_conflict");
  // Another terminal's batch 1 is still open.
  CHECK((*w)->submit_sync({{ej::batch_still_open{"acq1", "TERM0002", 1}}}));

  // A sale after the batch row, the same business date: batch 2.
  sale(**w, "3", "2024-03-01", "answered", "00", 1'700'000'002'000);
  auto c1 = rd->batch_candidates("acq1", "TERM0001", 1);
  REQUIRE(c1);
  REQUIRE(c1->size() == 2);
  CHECK((*c1)[0].message.batch_no == std::optional<std::int64_t>{1});
  CHECK((*c1)[0].op_kind == "payment");
  auto c2 = rd->batch_candidates("acq1", "TERM0001", 2);
  REQUIRE(c2);
  REQUIRE(c2->size() == 1);
  CHECK((*c2)[0].message.msg_id == "M3");
  open = rd->open_batch_keys(std::string("acq1"), "2024-03-02");
  REQUIRE(open);
  REQUIRE(open->size() == 1);
  CHECK((*open)[0].business_date == "2024-03-02");
  CHECK(rd->open_batch_keys(std::string("acq2"), "2024-03-02")->empty());

  // Totals are fixed when the batch starts closing.
  ej::settlement_batch_updated bu;
  bu.batch_id = "B1";
  bu.expect_state = "open";
  bu.state = "closing";
  bu.totals = ej::settlement_totals{};
  bu.totals->debits = 2;
  bu.totals->debit_amount = 2000;
  bu.in_doubt = 0;
  bu.updated_ms = 1'700'000'003'000;
  REQUIRE((*w)->submit_sync({{bu}}));
  auto row = rd->settlement_batch_no("acq1", "TERM0001", 1);
  REQUIRE(row);
  REQUIRE(row->has_value());
  CHECK((*row)->state == "closing");
  CHECK((*row)->batch_no == 1);
  CHECK((*row)->totals.debits == 2);
  CHECK((*row)->totals.debit_amount == 2000);
  CHECK((*row)->in_doubt == 0);
  CHECK_FALSE(rd->settlement_batch_no("acq1", "TERM0001", 2)->has_value());
  // A second batch under the same label is allowed; the same number is not.
  auto b2 = batch("B2", "2024-03-01", "TERM0001", 2);
  REQUIRE((*w)->submit_sync({{b2}}));
  auto dup = batch("B2x", "2024-03-05", "TERM0001", 2);
  CHECK((*w)->submit_sync({{dup}}).err().code == "journal.duplicate_batch");
  CHECK(rd->settlement_batches("2024-03-01")->size() == 2);
}
