// Settlement files: layouts as data, both codecs (golden bytes, round trips, refused files),
// export from a journal built here, matching, and the simulator's own file from its ledger.
// Only public test PANs appear, and only masked.
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "eftd/acqsim/host.hpp"
#include "eftd/acqsim/settlement_file.hpp"
#include "eftd/journal/writer.hpp"
#include "eftd/settlement/layout.hpp"
#include "eftd/settlement/reconcile.hpp"

namespace st = eftd::settlement;
namespace ej = eftd::journal;
namespace acq = eftd::acq;

namespace {

st::layout shipped(const char* name) {
  auto l = st::shipped_layout(name);
  INFO((l ? std::string{} : l.err().message));
  REQUIRE(l);
  return *l;
}

st::detail detail_of(std::string terminal, std::string rrn, std::string auth, std::int64_t amount,
                     st::entry_kind kind = st::entry_kind::debit) {
  st::detail d;
  d.terminal_id = std::move(terminal);
  d.merchant_id = "M001";
  d.rrn = std::move(rrn);
  d.auth_code = std::move(auth);
  d.stan = "000042";
  d.amount = amount;
  d.currency = "985";
  d.date = "20240301";
  d.time = "120000";
  d.pan_masked = "476173******0119";
  d.kind = kind;
  d.response_code = "00";
  return d;
}

st::file small_file() {
  st::file f;
  f.header.acquirer = "ACQ1";
  f.header.date = "20240301";
  f.details = {detail_of("TERM0001", "240301120000", "AB1234", 12500),
               detail_of("TERM0001", "240301120500", "000777", 3000, st::entry_kind::credit)};
  f.details[1].time = "120500";
  f.details[1].stan = "000043";
  f.trailer = st::totals_of(f.details);
  return f;
}

std::string pad(std::string s, std::size_t n) {
  s.resize(n, ' ');
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

class temp_dir {
 public:
  temp_dir() {
    auto pattern = (std::filesystem::temp_directory_path() / "eftd-settle-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST_CASE("settlement: the shipped layouts load and name their match keys", "[settlement]") {
  for (const char* name : {"fixed-width", "csv"}) {
    const auto l = shipped(name);
    CHECK(l.match_keys == std::vector<std::string>{"terminal_id", "rrn"});
    CHECK(l.match_confirm == std::vector<std::string>{"auth_code", "amount", "date"});
    CHECK(l.header.record_type == "H");
    CHECK(l.detail.record_type == "D");
    CHECK(l.trailer.record_type == "T");
  }
  CHECK(shipped("fixed-width").detail.width == 120);
}

TEST_CASE("settlement: fixed-width golden bytes", "[settlement]") {
  const auto bytes = st::encode(shipped("fixed-width"), small_file());
  REQUIRE(bytes);
  // Columns as in LAYOUTS.md: numbers zero-padded right-justified, text space-padded left-justified,
  // an absent number (batch) blank.
  const std::string header =
      pad("H"
          "ACQ1        "
          "               "
          "20240301"
          "      ",
          120);
  const std::string d1 =
      pad("D"
          "TERM0001"
          "M001           "
          "240301120000"
          "AB1234"
          "000042"
          "D"
          "000000012500"
          "985"
          "20240301"
          "120000"
          "476173******0119   "
          "00"
          "      ",
          120);
  const std::string d2 =
      pad("D"
          "TERM0001"
          "M001           "
          "240301120500"
          "000777"
          "000043"
          "C"
          "000000003000"
          "985"
          "20240301"
          "120500"
          "476173******0119   "
          "00"
          "      ",
          120);
  const std::string trailer =
      pad("T"
          "00000002"
          "000000000012500"
          "000000000003000"
          "D"
          "000000000009500",
          120);
  CHECK(*bytes == header + "\n" + d1 + "\n" + d2 + "\n" + trailer + "\n");
}

TEST_CASE("settlement: csv golden bytes", "[settlement]") {
  auto f = small_file();
  f.details.pop_back();
  f.details[0].merchant_id = "Shop, \"Main\"";  // the delimiter and a quote inside a value
  f.trailer = st::totals_of(f.details);
  const auto bytes = st::encode(shipped("csv"), f);
  REQUIRE(bytes);
  CHECK(*bytes ==
        "record_type,terminal_id,merchant_id,rrn,auth_code,stan,processing_code,amount,currency,date,time,"
        "pan_masked,response_code,batch\n"
        "H,ACQ1,,20240301,\n"
        "D,TERM0001,\"Shop, \"\"Main\"\"\",240301120000,AB1234,000042,000000,12500,985,20240301,120000,"
        "476173******0119,00,\n"
        "T,1,12500,0,12500,D\n");
}

TEST_CASE("settlement: both layouts round trip, with CRLF and without a final newline", "[settlement]") {
  for (const char* name : {"fixed-width", "csv"}) {
    INFO(name);
    const auto l = shipped(name);
    auto f = small_file();
    f.details[0].merchant_id = "Shop, \"Main\"";
    f.details[1].batch = "000007";
    f.details[1].pan_masked.clear();
    const auto bytes = st::encode(l, f);
    REQUIRE(bytes);
    auto back = st::decode(l, *bytes);
    INFO((back ? std::string{} : back.err().message));
    REQUIRE(back);
    CHECK(*back == f);

    auto crlf = st::decode(l, replace_all(*bytes, "\n", "\r\n"));
    REQUIRE(crlf);
    CHECK(*crlf == f);
    auto unterminated = st::decode(l, bytes->substr(0, bytes->size() - 1));
    REQUIRE(unterminated);
    CHECK(*unterminated == f);
  }
}

TEST_CASE("settlement: a negative net carries its sign", "[settlement]") {
  st::file f;
  f.header.date = "20240301";
  f.details = {detail_of("TERM0001", "R1", "A1", 100),
               detail_of("TERM0001", "R2", "A2", 700, st::entry_kind::credit)};
  f.trailer = st::totals_of(f.details);
  REQUIRE(f.trailer.net == -600);
  for (const char* name : {"fixed-width", "csv"}) {
    const auto l = shipped(name);
    const auto bytes = st::encode(l, f);
    REQUIRE(bytes);
    auto back = st::decode(l, *bytes);
    REQUIRE(back);
    CHECK(back->trailer.net == -600);
  }
}

TEST_CASE("settlement: a trailer that disagrees with the details is refused, naming the field",
          "[settlement]") {
  const auto l = shipped("csv");
  const auto bytes = st::encode(l, small_file());
  REQUIRE(bytes);
  struct wrong {
    std::string from, to, field;
  };
  for (const auto& w : {wrong{"T,2,", "T,3,", "count"}, wrong{"T,2,12500,", "T,2,12501,", "total_debits"},
                        wrong{",3000,9500,", ",3001,9500,", "total_credits"},
                        wrong{",9500,D", ",9501,D", "net"}, wrong{",9500,D", ",9500,C", "net"}}) {
    INFO(w.field);
    const auto changed = replace_all(*bytes, w.from, w.to);
    REQUIRE(changed != *bytes);
    auto r = st::decode(l, changed);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "settlement.trailer_mismatch");
    CHECK(r.err().message.find("trailer " + w.field) != std::string::npos);
  }
  // Fixed-width too: one detail removed, the trailer still says 2.
  const auto fl = shipped("fixed-width");
  auto fixed = st::encode(fl, small_file());
  REQUIRE(fixed);
  fixed->erase(121, 121);
  auto r = st::decode(fl, *fixed);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "settlement.trailer_mismatch");
  CHECK(r.err().message.find("count") != std::string::npos);
}

TEST_CASE("settlement: bad lines refuse the whole file and are listed by number", "[settlement]") {
  const auto l = shipped("fixed-width");
  auto bytes = st::encode(l, small_file());
  REQUIRE(bytes);
  std::string text = *bytes;
  // Line 2 (first detail): a date that is no date; then a short line and an unknown record
  // type after it, and an empty line.
  text.replace(121 + 64, 8, "20241399");
  text.insert(2 * 121, "D too short\n" + pad("X", 120) + "\n\n");
  auto r = st::decode(l, text);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == "settlement.bad_file");
  const auto& m = r.err().message;
  INFO(m);
  CHECK(m.find("4 bad line(s)") != std::string::npos);
  CHECK(m.find("line 2: field date: not a date YYYYMMDD") != std::string::npos);
  CHECK(m.find("line 3: 11 characters, records are 120") != std::string::npos);
  CHECK(m.find("line 4: unknown record type") != std::string::npos);
  CHECK(m.find("line 5: empty line") != std::string::npos);

  const auto c = shipped("csv");
  auto csv = st::encode(c, small_file());
  REQUIRE(csv);
  auto bad = st::decode(c, replace_all(*csv, ",AB1234,", ",AB\"1234,"));
  REQUIRE_FALSE(bad);
  CHECK(bad.err().message.find("line 3: column 5: a quote inside an unquoted value") != std::string::npos);
  auto no_header = st::decode(c, csv->substr(csv->find('\n') + 1));
  REQUIRE_FALSE(no_header);
  CHECK(no_header.err().message.find("line 1: not the header row") != std::string::npos);
  auto stan = st::decode(c, replace_all(*csv, ",000042,", ",42,"));
  REQUIRE_FALSE(stan);
  CHECK(stan.err().message.find("line 3: field stan: not 6 digits") != std::string::npos);
  // Fixed-width numbers are zero-padded, never space-padded (a fuzzer found " 8" round-tripping
  // to "000008").
  auto spaced = *bytes;
  spaced.replace(121 + 42, 6, "    42");
  auto sp = st::decode(l, spaced);
  REQUIRE_FALSE(sp);
  CHECK(sp.err().message.find("line 2: field stan: not digits") != std::string::npos);
  auto amount = st::decode(c, replace_all(*csv, ",12500,", ",125.00,"));
  REQUIRE_FALSE(amount);
  CHECK(amount.err().message.find("line 3: field amount: not an amount") != std::string::npos);
}

TEST_CASE("settlement: a clear PAN never gets into a file or an error text", "[settlement]") {
  auto f = small_file();
  f.details[0].pan_masked = "4761739001010119";  // public test PAN, unmasked
  for (const char* name : {"fixed-width", "csv"}) {
    auto r = st::encode(shipped(name), f);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "settlement.encode_failed");
    CHECK(r.err().message == "detail 1 field pan_masked: not a masked PAN");
  }
  const auto l = shipped("csv");
  auto good = st::encode(l, small_file());
  REQUIRE(good);
  auto r = st::decode(l, replace_all(*good, "476173******0119", "4761739001010119"));
  REQUIRE_FALSE(r);
  CHECK(r.err().message.find("field pan_masked: not a masked PAN") != std::string::npos);
  CHECK(r.err().message.find("4761739001010119") == std::string::npos);
  CHECK(st::is_masked_pan("476173******0119"));
  CHECK(st::is_masked_pan("40123****8909"));
  CHECK_FALSE(st::is_masked_pan("4761739******119"));
  CHECK_FALSE(st::is_masked_pan("4761739001010119"));
}

TEST_CASE("settlement: layout errors name the file, the line and the field", "[settlement]") {
  const std::string base = R"(name = "t"
format = "fixed"
record_length = 20
[header]
fields = [ { name = "record_type", type = "an", start = 1, length = 1, value = "H" } ]
[trailer]
fields = [ { name = "record_type", type = "an", start = 1, length = 1, value = "T" },
           { name = "count", type = "n", start = 2, length = 6 } ]
[detail]
fields = [
  { name = "record_type", type = "an", start = 1, length = 1, value = "D" },
  { name = "terminal_id", type = "an", start = 2, length = 8 },
  { name = "rrn", type = "an", start = 10, length = 11 },
)";
  auto ok = st::parse_layout(base +
                                 "  { name = \"auth_code\", type = \"an\", start = 2, length = 1 },\n]\n"
                                 "[match]\nkeys = [\"terminal_id\", \"rrn\"]\nconfirm = []\n",
                             "t.toml");
  REQUIRE_FALSE(ok);
  CHECK(ok.err().code == "settlement.layout_invalid");
  const auto& m = ok.err().message;
  INFO(m);
  CHECK(m.find("t.toml:13: [detail] field 'rrn': ends at column 20, past record_length 20") ==
        std::string::npos);
  CHECK(m.find("[detail] fields 'terminal_id' and 'auth_code' overlap") != std::string::npos);

  auto unknown =
      st::parse_layout(base + "  { name = \"pan\", type = \"an\", start = 19, length = 1 },\n]\n", "u.toml");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.err().message.find("u.toml:14: [detail] field 'pan': not a field name the code knows") !=
        std::string::npos);
  auto past =
      st::parse_layout(base + "  { name = \"stan\", type = \"n\", start = 18, length = 6 },\n]\n", "p.toml");
  REQUIRE_FALSE(past);
  CHECK(
      past.err().message.find("p.toml:14: [detail] field 'stan': ends at column 23, past record_length 20") !=
      std::string::npos);
  auto type =
      st::parse_layout(base + "  { name = \"date\", type = \"n\", start = 1, length = 8 },\n]\n", "d.toml");
  REQUIRE_FALSE(type);
  CHECK(type.err().message.find("[detail] field 'date': must have type date") != std::string::npos);
  auto syntax = st::parse_layout("name = \n", "s.toml");
  REQUIRE_FALSE(syntax);
  CHECK(syntax.err().message.rfind("s.toml:1:", 0) == 0);
  auto no_confirm = st::parse_layout(base + "]\n", "c.toml");
  REQUIRE_FALSE(no_confirm);
  CHECK(no_confirm.err().message.find("[match] 'auth_code' is not a field of [detail]") != std::string::npos);
  auto good = st::parse_layout(base + "]\n[match]\nconfirm = []\n", "g.toml");
  INFO((good ? std::string{} : good.err().message));
  CHECK(good);
}

TEST_CASE("settlement: matching reports changed amounts, missing and extra lines", "[settlement]") {
  const std::vector<st::detail> journal{detail_of("TERM0001", "R1", "A1", 100),
                                        detail_of("TERM0001", "R2", "A2", 200),
                                        detail_of("TERM0002", "R1", "A3", 300)};
  SECTION("identical: all matched") {
    const auto r = st::match(journal, journal);
    CHECK(r.all_matched());
    CHECK(r.matched.size() == 3);
  }
  SECTION("a changed amount") {
    auto file = journal;
    file[1].amount = 201;
    const auto r = st::match(file, journal);
    CHECK_FALSE(r.all_matched());
    REQUIRE(r.differences.size() == 1);
    CHECK(r.differences[0].fields == std::vector<std::string>{"amount"});
    CHECK(r.differences[0].in_journal.amount == 200);
    CHECK(r.matched.size() == 2);
    CHECK(r.only_in_file.empty());
    CHECK(r.only_in_journal.empty());
  }
  SECTION("a line missing from the file") {
    auto file = journal;
    file.erase(file.begin() + 2);
    const auto r = st::match(file, journal);
    REQUIRE(r.only_in_journal.size() == 1);
    CHECK(r.only_in_journal[0].terminal_id == "TERM0002");
    CHECK(r.matched.size() == 2);
  }
  SECTION("an extra line in the file") {
    auto file = journal;
    file.push_back(detail_of("TERM0003", "R9", "A9", 900));
    const auto r = st::match(file, journal);
    REQUIRE(r.only_in_file.size() == 1);
    CHECK(r.only_in_file[0].rrn == "R9");
    CHECK(r.matched.size() == 3);
  }
  SECTION("an RRN the journal does not know, confirmed by auth code, amount and date") {
    auto file = journal;
    file[0].rrn = "OTHER";
    const auto r = st::match(file, journal);
    REQUIRE(r.differences.size() == 1);
    CHECK(r.differences[0].fields == std::vector<std::string>{"rrn"});
    CHECK(r.only_in_file.empty());
    CHECK(r.only_in_journal.empty());
  }
  SECTION("another auth code on the same terminal and RRN") {
    auto file = journal;
    file[2].auth_code = "ZZZZZZ";
    const auto r = st::match(file, journal);
    REQUIRE(r.differences.size() == 1);
    CHECK(r.differences[0].fields == std::vector<std::string>{"auth_code"});
  }
}

TEST_CASE("settlement: a match report as JSON and as RFC 4180 CSV, the same rows", "[settlement]") {
  const std::vector<st::detail> journal{detail_of("TERM0001", "R1", "A1", 100),
                                        detail_of("TERM0001", "R2", "A2", 200),
                                        detail_of("TERM0002", "R3", "A3", 300)};
  auto file = journal;
  file[1].amount = 201;
  file.erase(file.begin() + 2);
  file.push_back(detail_of("TERM,\"9\"", "R9", "=A9", 900));  // quoting and a formula-like value
  const auto r = st::match(file, journal);

  const auto json = st::match_json(r, {"2024-03-01", "sim", std::string("csv")});
  CHECK(json ==
        R"({
  "acquirer": "sim",
  "all_matched": false,
  "date": "2024-03-01",
  "differences": [
    {
      "fields": [
        "amount"
      ],
      "file": {
        "amount": 201,
        "auth_code": "A2",
        "date": "20240301",
        "kind": "debit",
        "pan_masked": "476173******0119",
        "rrn": "R2",
        "stan": "000042",
        "terminal_id": "TERM0001",
        "time": "120000"
      },
      "journal": {
        "amount": 200,
        "auth_code": "A2",
        "date": "20240301",
        "kind": "debit",
        "pan_masked": "476173******0119",
        "rrn": "R2",
        "stan": "000042",
        "terminal_id": "TERM0001",
        "time": "120000"
      }
    }
  ],
  "layout": "csv",
  "matched": [
    {
      "amount": 100,
      "auth_code": "A1",
      "date": "20240301",
      "kind": "debit",
      "pan_masked": "476173******0119",
      "rrn": "R1",
      "stan": "000042",
      "terminal_id": "TERM0001",
      "time": "120000"
    }
  ],
  "only_in_file": [
    {
      "amount": 900,
      "auth_code": "=A9",
      "date": "20240301",
      "kind": "debit",
      "pan_masked": "476173******0119",
      "rrn": "R9",
      "stan": "000042",
      "terminal_id": "TERM,\"9\"",
      "time": "120000"
    }
  ],
  "only_in_journal": [
    {
      "amount": 300,
      "auth_code": "A3",
      "date": "20240301",
      "kind": "debit",
      "pan_masked": "476173******0119",
      "rrn": "R3",
      "stan": "000042",
      "terminal_id": "TERM0002",
      "time": "120000"
    }
  ]
}
)");
  // eftctl leaves the layout out.
  CHECK(st::match_json(r, {"2024-03-01", "sim", std::nullopt}).find("\"layout\"") == std::string::npos);

  const auto csv = st::match_csv(r, {"2024-03-01", "sim", std::nullopt});
  CHECK(csv ==
        "business_date,acquirer,result,terminal_id,rrn,auth_code,stan,amount_minor,kind,date,time,pan_masked,"
        "fields_differing\r\n"
        "2024-03-01,sim,difference (file),TERM0001,R2,A2,000042,201,debit,20240301,120000,476173******0119,"
        "amount\r\n"
        "2024-03-01,sim,difference (journal),TERM0001,R2,A2,000042,200,debit,20240301,120000,"
        "476173******0119,amount\r\n"
        "2024-03-01,sim,only in file,\"TERM,\"\"9\"\"\",R9,'=A9,000042,900,debit,20240301,120000,"
        "476173******0119,\r\n"
        "2024-03-01,sim,only in journal,TERM0002,R3,A3,000042,300,debit,20240301,120000,476173******0119,\r\n"
        "2024-03-01,sim,matched,TERM0001,R1,A1,000042,100,debit,20240301,120000,476173******0119,\r\n");
}

namespace {

// One approved, answered sale or refund as eftd's engine journals it.
void journal_tx(ej::batch& b, const std::string& id, const std::string& kind, const std::string& state,
                std::int64_t amount, std::int64_t created_ms, const std::string& terminal,
                const std::string& rrn, const std::string& auth, const std::string& acquirer = "acq1",
                std::string business_date = "2024-03-01",
                std::optional<std::int64_t> approved = std::nullopt) {
  ej::order_created o;
  o.order_id = "O" + id;
  o.merchant_id = "M001";
  o.store_id = "S01";
  o.till_id = "T01";
  o.order_no = id;
  o.business_date = std::move(business_date);
  o.kind = kind;
  o.amount_minor = amount;
  o.currency = "PLN";
  o.state = state;
  o.created_ms = created_ms;
  b.records.push_back(o);
  ej::order_updated ou;
  ou.order_id = o.order_id;
  ou.approved_amount_minor = approved.value_or(state == "approved" ? amount : 0);
  ou.updated_ms = created_ms + 500;
  b.records.push_back(ou);
  ej::operation_created op;
  op.op_id = "P" + id;
  op.order_id = o.order_id;
  op.kind = kind == "refund" ? "refund" : "payment";
  op.state = "done";
  op.amount_minor = amount;
  op.currency = "PLN";
  op.created_ms = created_ms + 10;
  b.records.push_back(op);
  ej::acquirer_message_written m;
  m.msg_id = "M" + id;
  m.op_id = op.op_id;
  m.acquirer = acquirer;
  m.terminal_id = terminal;
  m.mti = "0200";
  m.stan = static_cast<std::uint32_t>(std::stoul(id));
  m.local_datetime = "0301120000";
  m.rrn = rrn;
  m.amount_minor = amount;
  m.currency = "PLN";
  m.state = "sent";
  m.created_ms = created_ms + 20;
  b.records.push_back(m);
  ej::acquirer_message_updated mu;
  mu.msg_id = m.msg_id;
  mu.state = state == "declined" ? "answered" : state == "cancelled" ? "reversed" : "answered";
  mu.response_code = state == "declined" ? "05" : "00";
  if (state != "declined") mu.auth_code = auth;
  mu.updated_ms = created_ms + 400;
  b.records.push_back(mu);
}

}  // namespace

TEST_CASE("settlement: export from the journal, re-import and match: all matched", "[settlement][journal]") {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  temp_dir dir;
  const auto db = dir.path() / "journal.db";
  const std::int64_t t0 = 1'709'294'400'000;  // 2024-03-01 12:00:00 UTC
  {
    auto w = ej::writer::open(db, 64);
    REQUIRE(w);
    ej::batch b;
    journal_tx(b, "000003", "sale", "approved", 12500, t0 + 3000, "TERM0002", "RRN000000003", "AUTH03");
    journal_tx(b, "000001", "sale", "approved", 4000, t0 + 1000, "TERM0001", "RRN000000001", "AUTH01");
    journal_tx(b, "000002", "refund", "approved", 1500, t0 + 2000, "TERM0001", "RRN000000002", "AUTH02");
    journal_tx(b, "000004", "sale", "cancelled", 999, t0 + 4000, "TERM0001", "RRN000000004", "AUTH04");
    journal_tx(b, "000005", "sale", "declined", 5100, t0 + 5000, "TERM0001", "RRN000000005", "");
    journal_tx(b, "000006", "sale", "approved", 700, t0 + 6000, "TERM0001", "RRN000000006", "AUTH06", "acq2");
    journal_tx(b, "000007", "sale", "approved", 800, t0 + 7000, "TERM0001", "RRN000000007", "AUTH07", "acq1",
               "2024-03-02");
    journal_tx(b, "000008", "sale", "approved", 10000, t0 + 8000, "TERM0001", "RRN000000008", "AUTH08",
               "acq1", "2024-03-01", 5000);  // partial approval settles the approved part
    REQUIRE((*w)->submit_sync(std::move(b)));
  }
  auto f = st::export_file(db, "acq1", "2024-03-01");
  INFO((f ? std::string{} : f.err().message));
  REQUIRE(f);
  REQUIRE(f->details.size() == 4);
  // By terminal, then time.
  CHECK(f->details[0].rrn == "RRN000000001");
  CHECK(f->details[1].rrn == "RRN000000002");
  CHECK(f->details[1].kind == st::entry_kind::credit);
  CHECK(f->details[2].rrn == "RRN000000008");
  CHECK(f->details[2].amount == 5000);
  CHECK(f->details[3].terminal_id == "TERM0002");
  CHECK(f->details[0].date == "20240301");
  CHECK(f->details[0].time == "120001");
  CHECK(f->details[0].currency == "985");
  CHECK(f->details[0].stan == "000001");
  CHECK(f->details[0].auth_code == "AUTH01");
  CHECK(f->header.date == "20240301");
  CHECK(f->trailer == st::trailer{4, 4000 + 5000 + 12500, 1500, 4000 + 5000 + 12500 - 1500});

  for (const char* name : {"fixed-width", "csv"}) {
    INFO(name);
    const auto l = shipped(name);
    auto bytes = st::encode(l, *f);
    REQUIRE(bytes);
    auto back = st::decode(l, *bytes);
    REQUIRE(back);
    auto journal = st::journal_details(db, {std::string{"acq1"}, "2024-03-01"});
    REQUIRE(journal);
    const auto r = st::match(back->details, *journal, l.match_keys, l.match_confirm);
    CHECK(r.all_matched());
    CHECK(r.matched.size() == 4);
  }
  auto any = st::journal_details(db, {std::nullopt, "2024-03-01"});
  REQUIRE(any);
  CHECK(any->size() == 5);  // acq2's sale too
}

namespace {

acq::message request(std::string mti, std::string pcode, std::string amount, std::string stan,
                     std::string rrn) {
  acq::message m{std::move(mti)};
  m.set(2, "4761739001010119");
  m.set(3, std::move(pcode));
  m.set(4, std::move(amount));
  m.set(7, "0615103456");
  m.set(11, std::move(stan));
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(37, std::move(rrn));
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  return m;
}

}  // namespace

TEST_CASE("settlement: the sim's file from its ledger agrees with the ledger", "[settlement][sim]") {
  eftd::acqsim::host h;
  std::map<std::string, std::string> auth;  // RRN -> auth code answered
  for (auto [pcode, amount, stan, rrn] : std::vector<std::array<std::string, 4>>{
           {"000000", "000000012500", "000101", "RRN000000101"},
           {"000000", "000000004000", "000102", "RRN000000102"},
           {"200000", "000000001500", "000103", "RRN000000103"},
           {"000000", "000000005151", "000104", "RRN000000104"},     // declined 51
           {"000000", "000000000900", "000105", "RRN000000105"},     // reversed below
           {"310000", "000000000000", "000106", "RRN000000106"}}) {  // inquiry: does not settle
    auto o = h.handle(request("0200", pcode, amount, stan, rrn));
    REQUIRE(o.response);
    auth[rrn] = std::string{o.response->get_or(38, "")};
  }
  auto rev = request("0400", "000000", "000000000900", "000107", "RRN000000105");
  rev.set(90,
          "0200"
          "000105"
          "0615103456" +
              std::string(22, '0'));  // original MTI, STAN, date-time
  REQUIRE(h.handle(rev).response->get_or(39, "") == "00");

  const auto f = eftd::acqsim::settlement_of(h, "20240620", "SIM");
  REQUIRE(f.details.size() == 3);
  CHECK(f.details[0].rrn == "RRN000000101");
  CHECK(f.details[0].auth_code == auth["RRN000000101"]);
  CHECK(f.details[0].auth_code.size() == 6);
  CHECK(f.details[0].date == "20240615");
  CHECK(f.details[0].time == "123456");
  CHECK(f.details[0].stan == "000101");
  CHECK(f.details[0].currency == "985");
  CHECK(f.details[0].merchant_id == "MERCHANT0000001");
  CHECK(f.details[0].pan_masked == "476173******0119");
  CHECK(f.details[2].kind == st::entry_kind::credit);
  // The file's totals are the ledger's open batch.
  const auto& batch = h.terminals().at("TERM0001").open;
  CHECK(f.trailer.total_debits == batch.debit_amount - batch.debit_reversal_amount);
  CHECK(f.trailer.total_credits == batch.credit_amount - batch.credit_reversal_amount);
  CHECK(f.trailer.net == batch.net());
  CHECK(f.trailer.count == batch.debits - batch.debit_reversals + batch.credits - batch.credit_reversals);
  CHECK(f.trailer.total_debits == 16500);

  // Written in a shipped layout, it reads back as the same file.
  temp_dir dir;
  const auto path = dir.path() / "sim-settlement.txt";
  const std::int64_t june20 = 1'718'884'800'000;  // 2024-06-20 12:00 UTC
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  REQUIRE(eftd::acqsim::write_settlement_file(h, shipped("fixed-width"), path, june20, "SIM"));
  auto text = st::read_text_file(path);
  REQUIRE(text);
  auto back = st::decode(shipped("fixed-width"), *text);
  REQUIRE(back);
  CHECK(*back == f);
  // A MMDD after today belongs to last year.
  CHECK(eftd::acqsim::settlement_of(h, "20250101").details[0].date == "20240615");
}
