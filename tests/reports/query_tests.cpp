// Report queries over a real journal (report_fixture.hpp): every transaction filter, paging and
// sorting, settlement totals, cases, pad/till status, statistics, and the read-only guard of
// reader::report_query. Label: reports.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "eftd/journal/reader.hpp"
#include "eftd/reports/reports.hpp"
#include "report_fixture.hpp"

using namespace eftd;
using namespace report_test;

namespace {

struct journal_fixture {
  temp_dir dir;
  journal::reader reader = open();

  journal::reader open() {
    build_journal(dir);
    auto r = journal::reader::open(dir.path() / "journal.db");
    INFO((r ? std::string() : r.err().code + ": " + r.err().message));
    REQUIRE(r);
    return std::move(*r);
  }

  // Order numbers of a search, in result order.
  std::vector<std::string> order_nos(const reports::transaction_filter& f) {
    auto page = reports::search_transactions(reader, f);
    INFO((page ? std::string() : page.err().code + ": " + page.err().message));
    REQUIRE(page);
    std::vector<std::string> out;
    for (const auto& t : page->rows) out.push_back(t.order.order_no);
    return out;
  }
};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

const std::vector<std::string> all_orders{"1001", "1002", "1003", "1004", "1005", "1006"};

}  // namespace

TEST_CASE_METHOD(journal_fixture,
                 "an empty transaction filter lists every order oldest first with its card side") {
  reports::transaction_filter f;
  auto page = reports::search_transactions(reader, f);
  REQUIRE(page);
  CHECK(page->total == 6);
  REQUIRE(page->rows.size() == 6);
  CHECK(order_nos(f) == std::vector<std::string>{"1004", "1001", "1002", "1003", "1005", "1006"});
  const auto& t = page->rows[1];  // 1001
  CHECK(t.scheme == "visa");
  CHECK(t.entry_mode == "chip");
  CHECK(t.pan_masked.value_or("").size() == 16);
  CHECK(t.pan_masked.value_or("").substr(12) == "1486");
  CHECK(t.response_code == "00");
  CHECK(t.auth_code == "A1001");
  CHECK(t.acquirer == "acq1");
  CHECK(t.terminal_id == "TERM0001");
  CHECK(t.rrn == "RRN1001");
  CHECK(t.operator_id == "7");
  CHECK_FALSE(page->rows[4].acquirer);  // 1005 never reached an acquirer
  CHECK_FALSE(page->rows[4].scheme);
}

TEST_CASE_METHOD(journal_fixture, "every transaction filter narrows the search and together they AND") {
  auto hash_a = reports::pan_search_hash(dir.path() / "journal.keys", pan_a);
  REQUIRE(hash_a);
  auto hash_unused = reports::pan_search_hash(dir.path() / "journal.keys", pan_unused);
  REQUIRE(hash_unused);
  std::string upper_hash = *hash_a;
  for (auto& c : upper_hash) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  struct probe {
    const char* name;
    std::function<void(reports::transaction_filter&)> set;
    std::vector<std::string> expect;
  };
  const std::vector<probe> probes{
      {"business date from",
       [](auto& f) { f.business_date_from = "2026-11-21"; },
       {"1001", "1002", "1003", "1005", "1006"}},
      {"business date to", [](auto& f) { f.business_date_to = "2026-11-20"; }, {"1004"}},
      {"created range",
       [](auto& f) {
         f.created_from_ms = hour10 + 30 * minute;
         f.created_to_ms = hour10 + 90 * minute;
       },
       {"1002", "1003", "1005"}},
      {"merchant", [](auto& f) { f.merchant_id = "M001"; }, all_orders},
      {"other merchant", [](auto& f) { f.merchant_id = "M999"; }, {}},
      {"store", [](auto& f) { f.store_id = "S02"; }, {"1002", "1006"}},
      {"till", [](auto& f) { f.till_id = "T01"; }, {"1001", "1003", "1004"}},
      {"tills of a pad",
       [](auto& f) {
         f.till_ids = {"T02", "T03"};
       },
       {"1002", "1005", "1006"}},
      {"operator", [](auto& f) { f.operator_id = "7"; }, {"1001", "1003"}},
      {"operator suffix is not a match", [](auto& f) { f.operator_id = "07"; }, {}},
      {"order number", [](auto& f) { f.order_no = "1003"; }, {"1003"}},
      {"masked PAN", [](auto& f) { f.pan_masked = "541333******0608"; }, {"1002"}},
      {"last 4", [](auto& f) { f.pan_last4 = "1486"; }, {"1001", "1003", "1004"}},
      {"full PAN through the keyed hash", [&](auto& f) { f.pan_hash = *hash_a; }, {"1001", "1003", "1004"}},
      {"hash in upper case", [&](auto& f) { f.pan_hash = upper_hash; }, {"1001", "1003", "1004"}},
      {"a PAN never used", [&](auto& f) { f.pan_hash = *hash_unused; }, {}},
      {"scheme", [](auto& f) { f.scheme = "mastercard"; }, {"1002"}},
      {"entry mode", [](auto& f) { f.entry_mode = "magstripe"; }, {"1004"}},
      {"amount range",
       [](auto& f) {
         f.amount_min = 700;
         f.amount_max = 1200;
       },
       {"1001", "1003", "1006"}},
      {"currency", [](auto& f) { f.currency = "PLN"; }, all_orders},
      {"other currency", [](auto& f) { f.currency = "EUR"; }, {}},
      {"kind", [](auto& f) { f.kind = "refund"; }, {"1003"}},
      {"state", [](auto& f) { f.state = "declined"; }, {"1002", "1006"}},
      {"result code", [](auto& f) { f.result_code = "pad.timeout"; }, {"1005"}},
      {"response code", [](auto& f) { f.response_code = "51"; }, {"1002"}},
      {"acquirer", [](auto& f) { f.acquirer = "acq2"; }, {"1004"}},
      {"terminal", [](auto& f) { f.terminal_id = "TERM0002"; }, {"1002"}},
      {"batch by number",
       [](auto& f) {
         f.batch = reports::batch_ref{"acq1", "TERM0001", 1, ""};
       },
       {"1001", "1003"}},
      {"the next batch number",
       [](auto& f) {
         f.batch = reports::batch_ref{"acq1", "TERM0001", 2, ""};
       },
       {}},
      {"batch by business date",
       [](auto& f) {
         f.batch = reports::batch_ref{"acq1", "TERM0001", std::nullopt, "2026-11-21"};
       },
       {"1001", "1003"}},
      {"batch of another day",
       [](auto& f) {
         f.batch = reports::batch_ref{"acq1", "TERM0001", std::nullopt, "2026-11-20"};
       },
       {}},
      {"AND of till, scheme and state",
       [](auto& f) {
         f.till_id = "T01";
         f.scheme = "visa";
         f.kind = "sale";
         f.business_date_from = "2026-11-21";
       },
       {"1001"}},
      {"a value that looks like SQL", [](auto& f) { f.order_no = "1' OR '1'='1"; }, {}},
  };
  for (const auto& p : probes) {
    INFO(p.name);
    reports::transaction_filter f;
    p.set(f);
    CHECK(sorted(order_nos(f)) == sorted(p.expect));
    auto page = reports::search_transactions(reader, f);
    REQUIRE(page);
    CHECK(page->total == static_cast<std::int64_t>(p.expect.size()));
  }
}

TEST_CASE_METHOD(journal_fixture, "bad filter values are refused before any query runs") {
  auto bad = [&](std::function<void(reports::transaction_filter&)> set) {
    reports::transaction_filter f;
    set(f);
    auto r = reports::search_transactions(reader, f);
    REQUIRE_FALSE(r);
    return r.err().code;
  };
  CHECK(bad([](auto& f) { f.business_date_from = "21.11.2026"; }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) { f.pan_last4 = "14a6"; }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) { f.pan_hash = "not-a-hash"; }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) { f.limit = 0; }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) {
          f.amount_min = 10;
          f.amount_max = 5;
        }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) { f.batch = reports::batch_ref{"", "T", 1, ""}; }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) { f.batch = reports::batch_ref{"A", "T", 0, ""}; }) == "reports.invalid_filter");
  CHECK(bad([](auto& f) {
          f.batch = reports::batch_ref{"A", "T", std::nullopt, ""};
        }) == "reports.invalid_filter");
  // Sorting: only the whitelisted names parse.
  CHECK(*reports::parse_sort("amount") == reports::sort_by::amount);
  CHECK_FALSE(reports::parse_sort("amount_minor; DROP TABLE orders"));
  CHECK_FALSE(reports::parse_sort("o.created_ms"));
}

TEST_CASE_METHOD(journal_fixture, "transactions page and sort by the whitelisted columns") {
  reports::transaction_filter f;
  f.sort = reports::sort_by::amount;
  f.descending = true;
  CHECK(order_nos(f) == std::vector<std::string>{"1004", "1002", "1006", "1001", "1003", "1005"});
  f.descending = false;
  CHECK(order_nos(f) == std::vector<std::string>{"1005", "1003", "1001", "1006", "1002", "1004"});
  f.sort = reports::sort_by::order_no;
  f.descending = true;
  f.limit = 2;
  f.offset = 1;
  auto page = reports::search_transactions(reader, f);
  REQUIRE(page);
  CHECK(page->total == 6);
  CHECK(order_nos(f) == std::vector<std::string>{"1005", "1004"});
  f.sort = reports::sort_by::created;
  f.descending = true;
  f.offset = 4;
  CHECK(order_nos(f) == std::vector<std::string>{"1001", "1004"});
  // Past the end: no rows, but the total still says how many match.
  f.offset = 50;
  page = reports::search_transactions(reader, f);
  REQUIRE(page);
  CHECK(page->rows.empty());
  CHECK(page->total == 6);
}

TEST_CASE_METHOD(journal_fixture,
                 "transactions render as quoted CSV and parseable JSON and a counted table") {
  reports::transaction_filter f;
  f.till_id = "T02";
  auto page = reports::search_transactions(reader, f);
  REQUIRE(page);
  const auto csv = reports::render_transactions(*page, reports::format::csv);
  CHECK(csv.rfind("created,business_date,merchant,store,till,order_no,kind,amount,currency,state,", 0) == 0);
  CHECK(csv.find(",1002,sale,25.00,PLN,declined,issuer.insufficient_funds,mastercard,contactless,") !=
        std::string::npos);
  CHECK(csv.find(",acq1,TERM0002,9,O1002\r\n") != std::string::npos);
  // Lines end in CRLF: header + 2 orders.
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  CHECK(std::count(csv.begin(), csv.end(), '\r') == 3);

  const auto json = nlohmann::json::parse(reports::render_transactions(*page, reports::format::json));
  CHECK(json["total"] == 2);
  REQUIRE(json["rows"].size() == 2);
  CHECK(json["rows"][0]["order_no"] == "1002");
  CHECK(json["rows"][0]["reason_cashier"] == "Order 1002: declined, \"insufficient\" funds");
  CHECK(json["rows"][0]["pan_masked"].get<std::string>().substr(12) == "0608");
  CHECK(json["rows"][1]["kind"] == "completion");

  const auto table = reports::render_transactions(*page, reports::format::table);
  CHECK(table.find("(1-2 of 2 transactions)") != std::string::npos);
}

TEST_CASE("a reason with a comma and quotes is quoted per RFC 4180 in the transaction CSV") {
  reports::transaction_page p;
  reports::transaction_row t;
  t.order.order_no = "1";
  t.order.currency = "PLN";
  t.order.result_code = "x,\"y\"";
  p.rows.push_back(t);
  p.total = 1;
  const auto csv = reports::render_transactions(p, reports::format::csv);
  CHECK(csv.find(",\"x,\"\"y\"\"\",") != std::string::npos);
}

TEST_CASE_METHOD(journal_fixture, "the PAN search hash needs the existing key file and never creates one") {
  const auto missing = dir.path() / "nope.keys";
  auto h = reports::pan_search_hash(missing, pan_a);
  REQUIRE_FALSE(h);
  CHECK(h.err().code == "reports.keys");
  CHECK_FALSE(std::filesystem::exists(missing));
  auto not_pan = reports::pan_search_hash(dir.path() / "journal.keys", "12ab");
  REQUIRE_FALSE(not_pan);
  // Same key, same PAN: same hash (this is how search by full PAN works).
  auto h1 = reports::pan_search_hash(dir.path() / "journal.keys", pan_a);
  auto h2 = reports::pan_search_hash(dir.path() / "journal.keys", pan_a);
  REQUIRE(h1);
  REQUIRE(h2);
  CHECK(*h1 == *h2);
  CHECK(h1->size() == 64);
}

TEST_CASE_METHOD(journal_fixture, "the settlement report shows each batch with the journal's own totals") {
  auto rows = reports::settlement_report(reader, {});
  REQUIRE(rows);
  REQUIRE(rows->size() == 3);
  const auto& b2 = (*rows)[0];  // 2026-11-20 acq2/TERM0009: closed with zero totals
  CHECK(b2.business_date == "2026-11-20");
  CHECK(b2.acquirer == "acq2");
  CHECK(b2.status == "closed");
  CHECK(b2.batch_no == 1);
  CHECK(b2.journal_totals.debits == 1);
  CHECK(b2.journal_totals.debit_amount == 4000);
  CHECK(b2.differs);
  CHECK(b2.net_difference == 4000);
  const auto& b1 = (*rows)[1];  // acq1/TERM0001: out of balance, same totals as the journal
  CHECK(b1.terminal_id == "TERM0001");
  CHECK(b1.status == "out_of_balance");
  REQUIRE(b1.batch);
  CHECK(b1.batch->response_code == "95");
  CHECK(b1.journal_totals.debits == 1);
  CHECK(b1.journal_totals.debit_amount == 1000);
  CHECK(b1.journal_totals.credits == 1);
  CHECK(b1.journal_totals.credit_amount == 700);
  CHECK(b1.journal_totals.net() == 300);
  CHECK_FALSE(b1.differs);
  const auto& t2 = (*rows)[2];  // acq1/TERM0002: only a declined request, never closed
  CHECK(t2.terminal_id == "TERM0002");
  CHECK(t2.status == "not_closed");
  CHECK_FALSE(t2.batch);
  CHECK(t2.declined == 1);
  CHECK(t2.journal_totals.debits == 0);

  reports::settlement_filter f;
  f.business_date_from = f.business_date_to = "2026-11-21";
  f.acquirer = "acq1";
  auto one_day = reports::settlement_report(reader, f);
  REQUIRE(one_day);
  CHECK(one_day->size() == 2);
  f.acquirer = "nobody";
  auto none = reports::settlement_report(reader, f);
  REQUIRE(none);
  CHECK(none->empty());

  const auto csv = reports::render_settlement(*rows, reports::format::csv);
  CHECK(
      csv.find(
          "2026-11-21,acq1,TERM0001,1,out_of_balance,95,1,1000,0,0,1,700,0,0,300,0,0,300,0,no,2/2,B1\r\n") !=
      std::string::npos);
  auto j = nlohmann::json::parse(reports::render_settlement(*rows, reports::format::json));
  REQUIRE(j.size() == 3);
  CHECK(j[0]["batch"]["totals"]["net"] == 0);
  CHECK(j[0]["journal_totals"]["net"] == 4000);
  CHECK(j[2].count("batch") == 0);
}

TEST_CASE_METHOD(journal_fixture,
                 "cases list an out-of-balance batch, a parked reversal and a refused completion") {
  reports::case_filter f;
  auto cases = reports::list_cases(reader, f);
  REQUIRE(cases);
  std::set<std::string> keys;
  for (const auto& c : *cases) keys.insert(c.key);
  CHECK(keys == std::set<std::string>{"batch_out_of_balance:B1", "batch_totals_differ:B2",
                                      "reversal_parked:R1001", "completion_refused:O1006"});
  for (const auto& c : *cases) {
    INFO(c.key);
    CHECK_FALSE(c.text.empty());
    CHECK(c.since_ms > 0);
    if (c.kind == "reversal_parked") {
      CHECK(c.subject_type == "order");
      CHECK(c.subject == "O1001");
      CHECK(c.text.find("response 30") != std::string::npos);
      CHECK(c.since_ms == hour10 + 7 * minute);
    }
    if (c.kind == "batch_out_of_balance") {
      CHECK(c.subject_type == "batch");
      CHECK(c.label == "acq1/TERM0001 batch 1 (2026-11-21)");
    }
  }
  // Oldest first, and the same keys on a second run.
  CHECK(std::is_sorted(cases->begin(), cases->end(),
                       [](const auto& a, const auto& b) { return a.since_ms < b.since_ms; }));
  auto again = reports::list_cases(reader, f);
  REQUIRE(again);
  REQUIRE(again->size() == cases->size());
  for (std::size_t i = 0; i < cases->size(); ++i) CHECK((*again)[i].key == (*cases)[i].key);

  f.kind = "reversal_parked";
  auto only = reports::list_cases(reader, f);
  REQUIRE(only);
  REQUIRE(only->size() == 1);
  CHECK(only->front().key == "reversal_parked:R1001");

  f.kind.reset();
  f.business_date_from = f.business_date_to = "2026-11-20";
  auto day20 = reports::list_cases(reader, f);
  REQUIRE(day20);
  REQUIRE(day20->size() == 1);
  CHECK(day20->front().key == "batch_totals_differ:B2");

  auto j = nlohmann::json::parse(reports::render_cases(*cases, reports::format::json));
  CHECK(j.size() == cases->size());
  const auto csv = reports::render_cases(*cases, reports::format::csv);
  CHECK(csv.rfind("since,kind,business_date,subject_type,label,text,key,status,resolved,resolved_by,note\r\n",
                  0) == 0);
}

TEST_CASE_METHOD(journal_fixture,
                 "a resolved case leaves the open list, shows who and why, and resolves once") {
  auto w = journal::writer::open(dir.path() / "journal.db", 16);
  REQUIRE(w);
  auto resolve = [&](const std::string& kind, const std::string& subject, const std::string& note) {
    journal::batch b;
    b.records.emplace_back(journal::case_resolved{kind, subject, hour10 + 600 * minute, "sue", note});
    b.records.emplace_back(journal::audit_appended{hour10 + 600 * minute, "sue", "web", "case_resolve",
                                                   kind + ":" + subject, note, "ok"});
    return (*w)->submit_sync(std::move(b));
  };
  REQUIRE(resolve("reversal_parked", "R1001", "reversed by the acquirer's help desk"));
  // Twice: refused as a state conflict, and nothing of that batch (its audit record) is kept.
  auto twice = resolve("reversal_parked", "R1001", "again");
  REQUIRE_FALSE(twice);
  CHECK(twice.err().code == "journal.state_conflict");
  CHECK(twice.err().message.find("already resolved") != std::string::npos);
  // An empty note is refused by the schema.
  auto empty = resolve("batch_out_of_balance", "B1", "");
  REQUIRE_FALSE(empty);
  CHECK(empty.err().code == "journal.invalid_record");
  (*w)->close();

  reports::case_filter f;  // default: open cases only
  auto open = reports::list_cases(reader, f);
  REQUIRE(open);
  std::set<std::string> keys;
  for (const auto& c : *open) keys.insert(c.key);
  CHECK(keys == std::set<std::string>{"batch_out_of_balance:B1", "batch_totals_differ:B2",
                                      "completion_refused:O1006"});

  f.status = reports::case_status::resolved;
  auto resolved = reports::list_cases(reader, f);
  REQUIRE(resolved);
  REQUIRE(resolved->size() == 1);
  const auto& c = resolved->front();
  CHECK(c.key == "reversal_parked:R1001");
  CHECK(c.subject_id() == "R1001");
  CHECK(c.resolved_ms == hour10 + 600 * minute);
  CHECK(c.resolved_by == "sue");
  CHECK(c.note == "reversed by the acquirer's help desk");

  f.status = reports::case_status::all;
  auto all = reports::list_cases(reader, f);
  REQUIRE(all);
  CHECK(all->size() == 4);

  auto j = nlohmann::json::parse(reports::render_cases(*resolved, reports::format::json));
  CHECK(j[0]["status"] == "resolved");
  CHECK(j[0]["resolved_by"] == "sue");
  CHECK(j[0]["note"] == "reversed by the acquirer's help desk");
  auto jo = nlohmann::json::parse(reports::render_cases(*open, reports::format::json));
  CHECK(jo[0]["status"] == "open");
  CHECK(jo[0]["resolved_ms"].is_null());

  CHECK(reports::parse_case_status("open").value() == reports::case_status::open);
  CHECK(reports::parse_case_status("all").value() == reports::case_status::all);
  CHECK(reports::parse_case_status("closed").err().code == "reports.invalid_filter");
}

TEST_CASE_METHOD(journal_fixture,
                 "a request without an outcome becomes a case only after the in-doubt delay") {
  reports::case_filter f;
  f.kind = "message_in_doubt";
  f.now_ms = hour10 + 24 * 60 * minute;
  auto none = reports::list_cases(reader, f);
  REQUIRE(none);
  CHECK(none->empty());  // every request of the fixture has an answer

  // A sale whose 0200 was sent at 13:00 and never answered.
  {
    auto w = journal::writer::open(dir.path() / "journal.db", 16);
    REQUIRE(w);
    auto keys = journal::load_or_create_keys(dir.path() / "journal.keys");
    REQUIRE(keys);
    sale_spec s{.n = "1007", .state = "in_progress", .created_ms = hour10 + 180 * minute, .acquirer = "acq1"};
    write_order(**w, *keys, s);
    (*w)->close();
  }
  f.now_ms = hour10 + 185 * minute;  // 5 minutes: not yet
  auto early = reports::list_cases(reader, f);
  REQUIRE(early);
  CHECK(early->empty());
  f.now_ms = hour10 + 200 * minute;  // 20 minutes: a case
  auto late = reports::list_cases(reader, f);
  REQUIRE(late);
  REQUIRE(late->size() == 1);
  CHECK(late->front().key == "message_in_doubt:M1007");
  CHECK(late->front().subject == "O1007");
  CHECK(late->front().since_ms == hour10 + 180 * minute + 2);
}

TEST_CASE_METHOD(journal_fixture, "till status counts the business date's orders per till") {
  auto tills = reports::till_status(reader, "2026-11-21");
  REQUIRE(tills);
  REQUIRE(tills->size() == 3);
  const auto& t1 = (*tills)[0];
  CHECK(t1.till_id == "T01");
  CHECK(t1.orders == 2);  // 1001, 1003 (1004 is the day before)
  CHECK(t1.approved == 2);
  CHECK(t1.approved_amount_minor == 300);  // sale 1000 - refund 700
  CHECK(t1.currency == "PLN");
  CHECK(t1.last_order_no == "1003");
  const auto& t2 = (*tills)[1];
  CHECK(t2.till_id == "T02");
  CHECK(t2.declined == 2);
  CHECK(t2.last_order_no == "1006");
  CHECK(t2.last_seen_ms == hour10 + 120 * minute + 5);
  CHECK((*tills)[2].failed == 1);
  auto other_day = reports::till_status(reader, "2026-11-20");
  REQUIRE(other_day);
  CHECK((*other_day)[0].orders == 1);
  CHECK((*other_day)[1].orders == 0);
  CHECK_FALSE(reports::till_status(reader, "yesterday"));
  auto j = nlohmann::json::parse(reports::render_tills(*tills, reports::format::json));
  CHECK(j[0]["approved_amount_minor"] == 300);
  CHECK(reports::render_tills(*tills, reports::format::table).find("3.00") != std::string::npos);
}

TEST_CASE_METHOD(journal_fixture, "pads render from the journal's pad health") {
  auto pads = reader.pad_health();
  REQUIRE(pads);
  REQUIRE(pads->size() == 2);
  const auto table = reports::render_pads(*pads, reports::format::table, hour10 + 101 * minute);
  CHECK(table.find("60 s ago") != std::string::npos);
  CHECK(table.find("unreachable") != std::string::npos);
  auto j = nlohmann::json::parse(reports::render_pads(*pads, reports::format::json, 0));
  CHECK(j[1]["missed_pings"] == 3);
  CHECK(j[0]["dukpt"].is_array());
  CHECK(reports::render_pads(*pads, reports::format::csv, 0).rfind("pad_id,state,last_seen,", 0) == 0);
}

TEST_CASE_METHOD(journal_fixture, "statistics count orders and the approval rate per hour and by scheme") {
  reports::stats_filter f;
  f.business_date_from = f.business_date_to = "2026-11-21";
  auto s = reports::transaction_stats(reader, f);
  REQUIRE(s);
  REQUIRE(s->hours.size() == 3);
  CHECK(s->hours[0].hour_start_ms == hour10);
  CHECK(s->hours[0].total == 2);  // 1001 approved, 1002 declined
  CHECK(s->hours[0].approved == 1);
  CHECK(s->hours[0].declined == 1);
  CHECK(s->hours[0].approval_rate == Approx(0.5));
  CHECK(s->hours[0].approved_amount_minor == 1000);
  CHECK(s->hours[1].hour_start_ms == hour10 + 60 * minute);
  CHECK(s->hours[1].total == 2);  // 1003 approved, 1005 failed
  CHECK(s->hours[1].other == 1);
  CHECK(s->hours[2].total == 1);
  CHECK(s->hours[2].approval_rate == Approx(0.0));
  // By scheme: visa 1001 + 1003, none 1005 + 1006, mastercard 1002.
  REQUIRE(s->schemes.size() == 3);
  CHECK(s->schemes[0].scheme == "none");
  CHECK(s->schemes[0].total == 2);
  CHECK(s->schemes[1].scheme == "visa");
  CHECK(s->schemes[1].approved == 2);
  CHECK(s->schemes[1].approved_amount_minor == 1700);
  CHECK(s->schemes[2].scheme == "mastercard");

  f.created_from_ms = hour10 + 60 * minute;
  auto later = reports::transaction_stats(reader, f);
  REQUIRE(later);
  CHECK(later->hours.size() == 2);

  auto j = nlohmann::json::parse(reports::render_stats(*s, reports::format::json));
  CHECK(j["hours"].size() == 3);
  CHECK(j["schemes"][1]["scheme"] == "visa");
  const auto csv = reports::render_stats(*s, reports::format::csv);
  CHECK(csv.find("hour,2026-11-21T10:00:00.000Z,,,2,1,1,0,50.0,1000\r\n") != std::string::npos);
  CHECK(csv.find("scheme,,visa,PLN,2,2,,,,1700\r\n") != std::string::npos);
}

TEST_CASE_METHOD(journal_fixture, "report queries are read-only and never yield the PAN ciphertext") {
  auto refused = [&](const std::string& sql) {
    auto r = reader.report_query(sql, {});
    REQUIRE_FALSE(r);
    return r.err().code;
  };
  CHECK(refused("SELECT pan_ciphertext FROM operations") == "journal.invalid_argument");
  CHECK(refused("DELETE FROM orders") == "journal.invalid_argument");
  CHECK(refused("SELECT 1; DELETE FROM orders") == "journal.invalid_argument");
  CHECK(refused("PRAGMA user_version") == "journal.invalid_argument");
  // A writing statement dressed as a SELECT is denied by the authorizer at prepare time.
  CHECK_FALSE(reader.report_query("WITH x AS (SELECT 1) INSERT INTO counters SELECT 'n', 1 FROM x", {}));
  // Columns renamed through a CTE (the name check cannot see it): the ciphertext, the 12th
  // column of operations, still reads as NULL, so hex() of it is empty.
  auto renamed = reader.report_query(
      "WITH t(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18) AS"
      " (SELECT * FROM operations) SELECT hex(a12), a10 IS NOT NULL FROM t WHERE a1 = ?1",
      {std::string("P1001")});
  INFO((renamed ? std::string() : renamed.err().code + ": " + renamed.err().message));
  REQUIRE(renamed);
  REQUIRE(renamed->size() == 1);
  CHECK(std::get<std::string>(renamed->front()[0]).empty());
  CHECK(std::get<std::int64_t>(renamed->front()[1]) == 1);  // the masked PAN is there
  auto star = reader.report_query("SELECT * FROM operations WHERE op_id = ?1", {std::string("P1001")});
  REQUIRE(star);
  REQUIRE(star->size() == 1);
  REQUIRE(star->front().size() == 18);
  CHECK(std::holds_alternative<std::monostate>(star->front()[11]));
  auto counted =
      reader.report_query("SELECT count(*) FROM orders WHERE state = ?1", {std::string("approved")});
  REQUIRE(counted);
  CHECK(std::get<std::int64_t>(counted->front()[0]) == 3);
}
