// A small journal for the report tests, written with the real journal writer:
//
//   order  date        till store kind        amount state     card (scheme/entry/PAN) acquirer  rc  operator
//   1001   2026-11-21  T01  S01   sale        10.00  approved  visa chip        A      acq1/TERM0001 00  7
//   1002   2026-11-21  T02  S02   sale        25.00  declined  mastercard cless B      acq1/TERM0002 51  9
//   1003   2026-11-21  T01  S01   refund       7.00  approved  visa chip        A      acq1/TERM0001 00  7
//   1004   2026-11-20  T01  S01   sale        40.00  approved  visa magstripe   A      acq2/TERM0009 00  -
//   1005   2026-11-21  T03  S01   sale         3.00  failed    (no card read)          -             -   -
//   1006   2026-11-21  T02  S02   completion  12.00  declined  -                       -             -   -
//
// Every request is in batch 1 of its terminal (schema v6 batch numbers).
// Hours (UTC, 2026-11-21): 1001 at 10:05, 1002 at 10:40, 1003 at 11:10, 1005 at 11:30, 1006 at
// 12:00; 1004 on 2026-11-20 at 15:00. Order 1002's cashier reason holds a comma and quotes
// (CSV quoting). Batches: acq1/TERM0001/2026-11-21 out_of_balance with the journal's own totals
// (1 debit 1000, 1 credit 700); acq2/TERM0009/2026-11-20 closed with zero totals (the journal
// says 1 debit 4000: totals differ). A 0400 reversing 1001's request is parked. Pads P1, P2.
//
// The PANs are public test card numbers; tests compare only masked forms and hashes.
#pragma once

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "../journal/journal_fixtures.hpp"
#include "eftd/core/card.hpp"
#include "eftd/journal/card_data.hpp"
#include "eftd/journal/writer.hpp"

namespace report_test {

namespace ej = eftd::journal;

inline constexpr std::int64_t hour10 = 1'795'255'200'000;  // 2026-11-21T10:00:00Z
inline constexpr std::int64_t minute = 60'000;
inline constexpr std::int64_t day20_15h = 1'795'186'800'000;  // 2026-11-20T15:00:00Z
inline constexpr std::string_view pan_a = "4539578763621486";
inline constexpr std::string_view pan_b = "5413330089010608";
inline constexpr std::string_view pan_unused = "4111111111111111";

// A fresh directory, removed at scope end (the journal tests' fixture).
using temp_dir = journal_test::temp_dir;

struct sale_spec {
  std::string n;  // order number; ids derive from it
  std::string date = "2026-11-21";
  std::string till = "T01";
  std::string store = "S01";
  std::string kind = "sale";
  std::int64_t amount = 1000;
  std::string state = "approved";
  std::int64_t created_ms = hour10;
  std::optional<std::string> result_code;
  std::optional<std::string> reason;
  std::optional<std::string> scheme;
  std::optional<std::string> entry_mode;
  std::optional<std::string_view> pan;
  std::optional<std::string> rc;  // response code: op and message
  std::optional<std::string> acquirer;
  std::string terminal = "TERM0001";
  std::optional<std::string> operator_id;
};

inline void check(const eftd::status& st) {
  INFO((st ? std::string() : st.err().code + ": " + st.err().message));
  REQUIRE(st);
}

inline void write_order(ej::writer& w, const ej::keys& keys, const sale_spec& s) {
  ej::batch b;
  ej::order_created o;
  o.order_id = "O" + s.n;
  o.merchant_id = "M001";
  o.store_id = s.store;
  o.till_id = s.till;
  o.order_no = s.n;
  o.business_date = s.date;
  o.kind = s.kind;
  o.amount_minor = s.amount;
  o.currency = "PLN";
  o.state = "in_progress";
  o.created_ms = s.created_ms;
  b.records.push_back(o);
  ej::event_appended e;
  e.order_id = o.order_id;
  e.at_ms = s.created_ms;
  e.actor = ej::actor::pos;
  e.kind = s.kind + "_requested";
  e.reason = "order " + s.n + ": " + s.kind + " requested by till " + s.till +
             (s.operator_id ? " operator " + *s.operator_id : std::string());
  b.records.push_back(e);
  ej::operation_created op;
  op.op_id = "P" + s.n;
  op.order_id = o.order_id;
  op.kind = s.kind == "refund" ? "refund" : s.kind == "completion" ? "completion" : "payment";
  op.state = "done";
  op.amount_minor = s.amount;
  op.currency = "PLN";
  op.entry_mode = s.entry_mode;
  op.scheme = s.scheme;
  if (s.pan) {
    auto p = eftd::pan::parse(*s.pan);
    REQUIRE(p);
    auto sealed = ej::seal_pan(keys, *p);
    REQUIRE(sealed);
    op.pan = *sealed;
  }
  op.created_ms = s.created_ms + 1;
  b.records.push_back(op);
  if (s.rc) {
    ej::operation_updated u;
    u.op_id = op.op_id;
    u.response_code = s.rc;
    if (*s.rc == "00") u.auth_code = "A" + s.n;
    u.updated_ms = s.created_ms + 3;
    b.records.push_back(u);
  }
  if (s.acquirer) {
    ej::acquirer_message_written m;
    m.msg_id = "M" + s.n;
    m.op_id = op.op_id;
    m.acquirer = *s.acquirer;
    m.terminal_id = s.terminal;
    m.mti = "0200";
    m.stan = static_cast<std::uint32_t>(std::stoi(s.n));
    m.local_datetime = "1121100000";
    m.amount_minor = s.amount;
    m.currency = "PLN";
    m.state = "sent";
    m.created_ms = s.created_ms + 2;
    b.records.push_back(m);
    ej::acquirer_message_updated mu;
    mu.msg_id = m.msg_id;
    mu.state = s.rc ? "answered" : "sent";  // no response code: still waiting for the answer
    mu.response_code = s.rc;
    mu.rrn = "RRN" + s.n;
    mu.updated_ms = s.created_ms + 3;
    b.records.push_back(mu);
  }
  ej::order_updated ou;
  ou.order_id = o.order_id;
  ou.state = s.state;
  ou.result_code = s.result_code.value_or(s.state == "approved" ? "approved" : "issuer.declined");
  ou.reason_cashier = s.reason;
  if (s.state == "approved") ou.approved_amount_minor = s.amount;
  ou.updated_ms = s.created_ms + 5;
  b.records.push_back(ou);
  check(w.submit_sync(std::move(b)));
}

inline ej::settlement_batch_written batch_row(std::string id, std::string acquirer, std::string terminal,
                                              std::string date, std::string state) {
  ej::settlement_batch_written b;
  b.batch_id = std::move(id);
  b.acquirer = std::move(acquirer);
  b.terminal_id = std::move(terminal);
  b.batch_no = 1;  // the first batch of each terminal: it takes the requests written before it
  b.business_date = std::move(date);
  b.card_acceptor_id = "MERCHANT0000001";
  b.state = std::move(state);
  b.created_ms = hour10 + 20 * 60 * minute;
  return b;
}

// Writes the journal described at the top into dir/journal.db (keys in dir/journal.keys).
inline void build_journal(const temp_dir& dir) {
  auto keys = ej::load_or_create_keys(dir.path() / "journal.keys");
  REQUIRE(keys);
  auto w = ej::writer::open(dir.path() / "journal.db", 64);
  INFO((w ? std::string() : w.err().code + ": " + w.err().message));
  REQUIRE(w);
  auto& wr = **w;

  sale_spec s1{.n = "1001",
               .created_ms = hour10 + 5 * minute,
               .scheme = "visa",
               .entry_mode = "chip",
               .pan = pan_a,
               .rc = "00",
               .acquirer = "acq1",
               .operator_id = "7"};
  write_order(wr, *keys, s1);
  sale_spec s2{.n = "1002",
               .till = "T02",
               .store = "S02",
               .amount = 2500,
               .state = "declined",
               .created_ms = hour10 + 40 * minute,
               .result_code = "issuer.insufficient_funds",
               .reason = "Order 1002: declined, \"insufficient\" funds",
               .scheme = "mastercard",
               .entry_mode = "contactless",
               .pan = pan_b,
               .rc = "51",
               .acquirer = "acq1",
               .terminal = "TERM0002",
               .operator_id = "9"};
  write_order(wr, *keys, s2);
  sale_spec s3{.n = "1003",
               .kind = "refund",
               .amount = 700,
               .created_ms = hour10 + 70 * minute,
               .scheme = "visa",
               .entry_mode = "chip",
               .pan = pan_a,
               .rc = "00",
               .acquirer = "acq1",
               .operator_id = "7"};
  write_order(wr, *keys, s3);
  sale_spec s4{.n = "1004",
               .date = "2026-11-20",
               .amount = 4000,
               .created_ms = day20_15h,
               .scheme = "visa",
               .entry_mode = "magstripe",
               .pan = pan_a,
               .rc = "00",
               .acquirer = "acq2",
               .terminal = "TERM0009"};
  write_order(wr, *keys, s4);
  sale_spec s5{.n = "1005",
               .till = "T03",
               .amount = 300,
               .state = "failed",
               .created_ms = hour10 + 90 * minute,
               .result_code = "pad.timeout"};
  write_order(wr, *keys, s5);
  sale_spec s6{.n = "1006",
               .till = "T02",
               .store = "S02",
               .kind = "completion",
               .amount = 1200,
               .state = "declined",
               .created_ms = hour10 + 120 * minute,
               .result_code = "acquirer.refused"};
  write_order(wr, *keys, s6);

  ej::batch b;
  auto b1 = batch_row("B1", "acq1", "TERM0001", "2026-11-21", "closing");
  b1.totals.debits = 1;
  b1.totals.debit_amount = 1000;
  b1.totals.credits = 1;
  b1.totals.credit_amount = 700;
  b.records.push_back(b1);
  ej::settlement_batch_updated u1;
  u1.batch_id = "B1";
  u1.state = "out_of_balance";
  u1.response_code = "95";
  u1.uploads_total = 2;
  u1.uploads_done = 2;
  u1.updated_ms = hour10 + 21 * 60 * minute;
  b.records.push_back(u1);
  b.records.push_back(batch_row("B2", "acq2", "TERM0009", "2026-11-20", "closed"));

  // A reversal of 1001's request the acquirer refused (format): parked for people.
  ej::acquirer_message_written rev;
  rev.msg_id = "R1001";
  rev.op_id = "P1001";
  rev.original_msg_id = "M1001";
  rev.acquirer = "acq1";
  rev.terminal_id = "TERM0001";
  rev.mti = "0400";
  rev.stan = 2001;
  rev.local_datetime = "1121100600";
  rev.amount_minor = 1000;
  rev.currency = "PLN";
  rev.state = "pending";
  rev.created_ms = hour10 + 6 * minute;
  b.records.push_back(rev);
  ej::acquirer_message_updated ru;
  ru.msg_id = "R1001";
  ru.state = "parked";
  ru.attempts = 1;
  ru.last_error = "response 30";
  ru.updated_ms = hour10 + 7 * minute;
  b.records.push_back(ru);
  ej::event_appended ev;
  ev.order_id = "O1001";
  ev.op_id = "P1001";
  ev.at_ms = hour10 + 7 * minute;
  ev.actor = ej::actor::acquirer;
  ev.kind = "reversal_parked";
  ev.reason = "reversal STAN 002001 to acq1 parked: the acquirer refused the reversal's format (response 30)";
  b.records.push_back(ev);

  ej::pad_health_set p1;
  p1.pad_id = "P1";
  p1.state = "online";
  p1.serial = "SN1";
  p1.last_seen_ms = hour10 + 100 * minute;
  p1.rtt_ms = 12;
  p1.updated_ms = hour10 + 100 * minute;
  b.records.push_back(p1);
  ej::pad_health_set p2 = p1;
  p2.pad_id = "P2";
  p2.state = "unreachable";
  p2.missed_pings = 3;
  b.records.push_back(p2);
  check(wr.submit_sync(std::move(b)));
  wr.close();
}

}  // namespace report_test
