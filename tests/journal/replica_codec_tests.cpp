// Hot standby (issue 8): the byte form of a journal batch as shipped to a standby
// (replica_codec.hpp), and notification_created, the record that carries the notification rows
// the active's writer generated so that the standby stores identical ones.
#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "apply.hpp"  // private: detail::apply_records returns the generated rows
#include "eftd/core/bytes.hpp"
#include "eftd/core/crypto.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/journal/replica_codec.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"
#include "sqlite_db.hpp"

namespace {

using namespace journal_test;

// --- one sample of every record type ------------------------------------------------------
//
// `full`: every optional set; else every optional unset. Values differ field to field so a
// decoder that swapped two fields would be caught. A record type added to journal::record
// without a sample() here does not compile (every_record below).

template <class T>
std::optional<T> opt(bool full, T v) {
  if (!full) return std::nullopt;
  return v;
}

ej::stored_pan sample_pan() {
  ej::stored_pan p;
  // Not a real ciphertext: 12-byte nonce, a body and a 16-byte tag's worth of bytes.
  for (int i = 0; i < 44; ++i) p.ciphertext.push_back(static_cast<std::uint8_t>(0xA0 + i));
  p.masked = "411111******1111";
  p.search_hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
  return p;
}

ej::settlement_totals sample_totals(std::int64_t base) {
  return {base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 8};
}

ej::order_created sample(std::type_identity<ej::order_created>, bool) {
  auto o = order("ORD-1", "1001");
  o.amount_minor = std::numeric_limits<std::int64_t>::max();
  return o;
}

ej::order_updated sample(std::type_identity<ej::order_updated>, bool full) {
  ej::order_updated u;
  u.order_id = "ORD-1";
  u.expect_state = opt<std::string>(full, "created");
  u.state = opt<std::string>(full, "approved");
  u.result_code = opt<std::string>(full, "ok");
  u.reason_cashier = opt<std::string>(full, "Approved");
  u.reason_customer = opt<std::string>(full, "Thank you");
  u.approved_amount_minor = opt<std::int64_t>(full, -1);
  u.updated_ms = 1'700'000'000'001;
  return u;
}

ej::operation_created sample(std::type_identity<ej::operation_created>, bool full) {
  auto op = payment("OP-1", "ORD-1");
  op.parent_op_id = opt<std::string>(full, "OP-0");
  op.entry_mode = opt<std::string>(full, "chip");
  op.scheme = opt<std::string>(full, "visa");
  op.pan = opt(full, sample_pan());
  op.amount_minor = std::numeric_limits<std::int64_t>::min();
  return op;
}

ej::operation_updated sample(std::type_identity<ej::operation_updated>, bool full) {
  ej::operation_updated u;
  u.op_id = "OP-1";
  u.expect_state = opt<std::string>(full, "card_wait");
  u.state = opt<std::string>(full, "approved");
  u.entry_mode = opt<std::string>(full, "contactless");
  u.scheme = opt<std::string>(full, "mastercard");
  u.pan = opt(full, sample_pan());
  u.auth_code = opt<std::string>(full, "A1B2C3");
  u.response_code = opt<std::string>(full, "00");
  u.result_code = opt<std::string>(full, "approved");
  u.emv_data = opt<std::string>(full, R"({"aid":"A0000000031010"})");
  u.updated_ms = 1'700'000'000'002;
  return u;
}

ej::acquirer_message_written sample(std::type_identity<ej::acquirer_message_written>, bool full) {
  auto m = auth_message("MSG-1", "OP-1", 999'999);
  m.original_msg_id = opt<std::string>(full, "MSG-0");
  m.rrn = opt<std::string>(full, "123456789012");
  m.next_attempt_ms = opt<std::int64_t>(full, 1'700'000'000'003);
  if (full) {
    m.icc_data = {0x9F, 0x26, 0x08, 0x01, 0x02};
    m.card_ciphertext = {0x00, 0xFF, 0x10};
  }
  return m;
}

ej::acquirer_message_updated sample(std::type_identity<ej::acquirer_message_updated>, bool full) {
  ej::acquirer_message_updated u;
  u.msg_id = "MSG-1";
  u.expect_state = opt<std::string>(full, "sent");
  u.state = opt<std::string>(full, "answered");
  u.rrn = opt<std::string>(full, "123456789012");
  u.response_code = opt<std::string>(full, "05");
  u.auth_code = opt<std::string>(full, "XYZ123");
  u.attempts = opt<std::int64_t>(full, 3);
  u.next_attempt_ms = opt<std::int64_t>(full, 1'700'000'000'004);
  u.last_error = opt<std::string>(full, "timeout");
  u.updated_ms = 1'700'000'000'005;
  return u;
}

ej::event_appended sample(std::type_identity<ej::event_appended>, bool full) {
  auto e = event("ORD-1", "state", 1'700'000'000'006, ej::actor::operator_);
  e.op_id = opt<std::string>(full, "OP-1");
  e.reason = "why";
  e.detail = std::string("binary \0 and UTF-8 \xC5\x82", 22);
  return e;
}

ej::counter_set sample(std::type_identity<ej::counter_set>, bool) {
  return {"stan/acq1/TERM0001", 123'456};
}

ej::pad_health_set sample(std::type_identity<ej::pad_health_set>, bool full) {
  ej::pad_health_set p;
  p.pad_id = "PAD-1";
  p.state = "online";
  p.serial = "SN1";
  p.model = "M1";
  p.firmware = "1.2.3";
  p.peer = "10.0.0.2:4000";
  p.node = "node-a";
  p.connected_ms = opt<std::int64_t>(full, 1'700'000'000'007);
  p.last_seen_ms = opt<std::int64_t>(full, 1'700'000'000'008);
  p.rtt_ms = opt<std::int64_t>(full, 12);
  p.missed_pings = 2;
  p.dukpt = R"([{"ksn":"FFFF9876543210E00001","counter":1,"left":1000}])";
  p.updated_ms = 1'700'000'000'009;
  return p;
}

ej::settlement_batch_written sample(std::type_identity<ej::settlement_batch_written>, bool) {
  ej::settlement_batch_written b;
  b.batch_id = "B-1";
  b.acquirer = "acq1";
  b.terminal_id = "TERM0001";
  b.batch_no = 7;
  b.business_date = "2024-03-01";
  b.card_acceptor_id = "CAID0001";
  b.state = "closing";
  b.totals = sample_totals(100);
  b.in_doubt = 1;
  b.created_ms = 1'700'000'000'010;
  return b;
}

ej::settlement_batch_updated sample(std::type_identity<ej::settlement_batch_updated>, bool full) {
  ej::settlement_batch_updated u;
  u.batch_id = "B-1";
  u.expect_state = opt<std::string>(full, "closing");
  u.state = opt<std::string>(full, "uploading");
  u.response_code = opt<std::string>(full, "95");
  u.uploads_total = opt<std::int64_t>(full, 10);
  u.uploads_done = opt<std::int64_t>(full, 4);
  u.totals = opt(full, sample_totals(200));
  u.in_doubt = opt<std::int64_t>(full, 0);
  u.updated_ms = 1'700'000'000'011;
  return u;
}

ej::settlement_step_written sample(std::type_identity<ej::settlement_step_written>, bool full) {
  ej::settlement_step_written s;
  s.step_id = "S-1";
  s.batch_id = "B-1";
  s.seq = 1;
  s.kind = "upload";
  s.mti = "0320";
  s.processing_code = "000000";
  s.stan = std::numeric_limits<std::uint32_t>::max();
  s.at_ms = 1'700'000'000'012;
  s.subject_msg_id = opt<std::string>(full, "MSG-1");
  s.state = "sent";
  s.created_ms = 1'700'000'000'013;
  return s;
}

ej::settlement_step_updated sample(std::type_identity<ej::settlement_step_updated>, bool full) {
  ej::settlement_step_updated u;
  u.step_id = "S-1";
  u.expect_state = opt<std::string>(full, "sent");
  u.state = opt<std::string>(full, "answered");
  u.response_code = opt<std::string>(full, "00");
  u.updated_ms = 1'700'000'000'014;
  return u;
}

ej::audit_appended sample(std::type_identity<ej::audit_appended>, bool) {
  return {1'700'000'000'015, "alice", "eftctl", "settle", "acq1", "manual close", "ok"};
}

ej::batch_still_open sample(std::type_identity<ej::batch_still_open>, bool) {
  return {"acq1", "TERM0001", 7};
}

ej::case_resolved sample(std::type_identity<ej::case_resolved>, bool) {
  return {"batch", "B-1", 1'700'000'000'016, "bob", "checked with the acquirer"};
}

ej::notification_updated sample(std::type_identity<ej::notification_updated>, bool full) {
  ej::notification_updated u;
  u.notification_id = "N-1";
  u.expect_state = opt<std::string>(full, "pending");
  u.state = opt<std::string>(full, "delivered");
  u.attempts = opt<std::int64_t>(full, 2);
  u.next_attempt_ms = opt<std::int64_t>(full, 1'700'000'000'017);
  u.expires_ms = opt<std::int64_t>(full, 1'700'000'000'018);
  u.last_error = opt<std::string>(full, "HTTP 503");
  u.delivered_ms = opt<std::int64_t>(full, 1'700'000'000'019);
  u.updated_ms = 1'700'000'000'020;
  return u;
}

ej::notification_created sample(std::type_identity<ej::notification_created>, bool full) {
  ej::notification_created n;
  n.notification_id = "N-1";
  n.order_id = "ORD-1";
  n.event = "order.final";
  n.order_state = "approved";
  n.payload = R"({"event":"order.final","order_id":"ORD-1"})";
  n.created_ms = 1'700'000'000'021;
  n.state = full ? "delivered" : "pending";
  n.attempts = full ? 4 : 0;
  n.next_attempt_ms = 1'700'000'000'022;
  n.expires_ms = opt<std::int64_t>(full, 1'700'000'000'023);
  n.last_error = opt<std::string>(full, "HTTP 500");
  n.delivered_ms = opt<std::int64_t>(full, 1'700'000'000'024);
  n.updated_ms = 1'700'000'000'025;
  n.endpoint = full ? "backoffice" : "";
  return n;
}

ej::shared_file_set sample(std::type_identity<ej::shared_file_set>, bool full) {
  ej::shared_file_set f;
  f.name = full ? "keystore" : "registry";
  f.content = full ? eftd::bytes{0x45, 0x46, 0x54, 0x44, 0x00, 0xFF} : eftd::bytes{};
  f.sha256 = eftd::to_hex(eftd::sha256(f.content));
  f.origin = "node-a";
  f.set_ms = 1'700'000'000'026;
  return f;
}

template <std::size_t... I>
ej::batch every_record(bool full, std::index_sequence<I...>) {
  ej::batch b;
  (b.records.emplace_back(std::in_place_index<I>,
                          sample(std::type_identity<std::variant_alternative_t<I, ej::record>>{}, full)),
   ...);
  return b;
}

ej::batch every_record(bool full) {
  return every_record(full, std::make_index_sequence<std::variant_size_v<ej::record>>{});
}

// An encoding holding one record, for the corruption tests.
eftd::bytes encoded(ej::record r) {
  ej::batch b;
  b.records.push_back(std::move(r));
  return ej::encode_batch(b);
}

std::string code_of(const eftd::result<ej::batch>& r) {
  return r ? "ok" : r.err().code;
}

std::string message_of(const eftd::result<ej::batch>& r) {
  return r ? "" : r.err().message;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void put_u32(eftd::bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

// A counter and an event: small enough to write out byte by byte.
ej::batch golden_batch() {
  ej::batch b;
  b.records.emplace_back(ej::counter_set{"stan/a/t", -2});
  auto e = event("O1", "k", 1, ej::actor::pad);
  e.reason.clear();
  e.detail.clear();
  b.records.emplace_back(e);
  return b;
}

// Offsets in an encoding: "EJB1", count, then the first record's tag, length and body.
constexpr std::size_t count_at = 4;
constexpr std::size_t tag_at = 8;
constexpr std::size_t length_at = 9;
constexpr std::size_t body_at = 13;

}  // namespace

TEST_CASE("replica codec: every record type round-trips, optionals set and unset", "[journal][replica]") {
  for (const bool full : {true, false}) {
    CAPTURE(full);
    const auto b = every_record(full);
    REQUIRE(b.records.size() == std::variant_size_v<ej::record>);
    const auto bytes = ej::encode_batch(b);
    auto back = ej::decode_batch(bytes);
    INFO(message_of(back));
    REQUIRE(back);
    REQUIRE(back->records.size() == b.records.size());
    for (std::size_t i = 0; i < b.records.size(); ++i) {
      CAPTURE(i);
      CHECK(back->records[i].index() == b.records[i].index());
      // Record by record: each re-encodes to the very same bytes (the codec's static_assert
      // guarantees that the encoding covers every member).
      CHECK(encoded(back->records[i]) == encoded(b.records[i]));
    }
    CHECK(ej::encode_batch(*back) == bytes);
  }

  // Spot checks on the composite and signed fields, compared as values.
  const auto back = ej::decode_batch(ej::encode_batch(every_record(true)));
  REQUIRE(back);
  const auto& op = std::get<ej::operation_created>(back->records[2]);
  const bool same_pan = op.pan && *op.pan == sample_pan();  // not printed: card data by type
  CHECK(same_pan);
  CHECK(op.amount_minor == std::numeric_limits<std::int64_t>::min());
  const auto& u = std::get<ej::settlement_batch_updated>(back->records[10]);
  REQUIRE(u.totals);
  CHECK(*u.totals == sample_totals(200));
  CHECK(std::get<ej::settlement_step_written>(back->records[11]).stan ==
        std::numeric_limits<std::uint32_t>::max());
  CHECK(std::get<ej::event_appended>(back->records[6]).actor == ej::actor::operator_);
  CHECK(std::get<ej::event_appended>(back->records[6]).detail.size() == 22);
  const auto& n = std::get<ej::notification_created>(back->records[17]);
  CHECK(n.endpoint == "backoffice");
  CHECK(n.delivered_ms == std::optional<std::int64_t>(1'700'000'000'024));

  const auto unset = ej::decode_batch(ej::encode_batch(every_record(false)));
  REQUIRE(unset);
  CHECK_FALSE(std::get<ej::operation_created>(unset->records[2]).pan.has_value());
  CHECK_FALSE(std::get<ej::notification_created>(unset->records[17]).expires_ms.has_value());
  CHECK(std::get<ej::shared_file_set>(back->records[18]).content.size() == 6);
  CHECK(std::get<ej::shared_file_set>(unset->records[18]).content.empty());
}

TEST_CASE("replica codec: every actor value round-trips", "[journal][replica]") {
  for (auto a :
       {ej::actor::pos, ej::actor::pad, ej::actor::acquirer, ej::actor::operator_, ej::actor::server}) {
    auto e = event("O1", "k", 1, a);
    auto back = ej::decode_batch(encoded(e));
    REQUIRE(back);
    CHECK(std::get<ej::event_appended>(back->records[0]).actor == a);
  }
}

TEST_CASE("replica codec: golden bytes", "[journal][replica]") {
  const ej::batch b = golden_batch();
  const std::string expected =
      "454A4231"  // "EJB1"
      "00000002"  // two records
      // counter_set: tag 7, body 20 bytes: name (u32 length + 8 bytes), value (int64 -2)
      "07"
      "00000014"
      "00000008"
      "7374616E2F612F74"
      "FFFFFFFFFFFFFFFE"
      // event_appended: tag 6, body 29 bytes: order_id, op_id absent, at_ms, actor pad (1),
      // kind, empty reason, empty detail
      "06"
      "0000001D"
      "000000024F31"
      "00"
      "0000000000000001"
      "01"
      "000000016B"
      "00000000"
      "00000000";
  CHECK(eftd::to_hex(ej::encode_batch(b)) == expected);

  // The empty batch.
  CHECK(eftd::to_hex(ej::encode_batch(ej::batch{})) == "454A423100000000");
  auto empty = ej::decode_batch(*eftd::from_hex("454A423100000000"));
  REQUIRE(empty);
  CHECK(empty->records.empty());
}

TEST_CASE("replica codec: encoding is deterministic", "[journal][replica]") {
  const auto a = ej::encode_batch(every_record(true));
  const auto b = ej::encode_batch(every_record(true));
  CHECK(a == b);
  auto back = ej::decode_batch(a);
  REQUIRE(back);
  CHECK(ej::encode_batch(*back) == a);
}

TEST_CASE("replica codec: every truncation fails with bad_replica", "[journal][replica]") {
  for (const bool full : {true, false}) {
    const auto bytes = ej::encode_batch(every_record(full));
    std::size_t failed = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      auto r = ej::decode_batch(eftd::byte_view(bytes).first(n));
      if (code_of(r) == "journal.bad_replica") ++failed;
    }
    CHECK(failed == bytes.size());
    CHECK(ej::decode_batch(bytes));
  }
}

TEST_CASE("replica codec: corrupt framing is refused with a message that says why", "[journal][replica]") {
  const auto good = encoded(ej::counter_set{"n", 1});

  struct corruption {
    std::string name;
    eftd::bytes data;
    std::string message_part;
  };
  std::vector<corruption> cases;
  auto with = [&](std::string name, auto change, std::string part) {
    auto d = good;
    change(d);
    cases.push_back({std::move(name), std::move(d), std::move(part)});
  };
  with(
      "bad magic", [](eftd::bytes& d) { d[3] = '2'; }, "bad magic");
  with(
      "not a batch at all",
      [](eftd::bytes& d) {
        d.assign({'{', '}'});
      },
      "bad magic");
  with(
      "unknown tag", [](eftd::bytes& d) { d[tag_at] = 200; }, "record 0: unknown tag 200");
  with(
      "huge record count", [](eftd::bytes& d) { put_u32(d, count_at, 0xFFFFFFFF); }, "record count");
  with(
      "record count one too many", [](eftd::bytes& d) { put_u32(d, count_at, 2); },
      "record 1: header truncated");
  with(
      "huge record length", [](eftd::bytes& d) { put_u32(d, length_at, 0xFFFFFFFF); },
      "record 0 (counter_set): length past the end of the batch");
  with(
      "huge string length", [](eftd::bytes& d) { put_u32(d, body_at, 0xFFFFFFFF); },
      "record 0 (counter_set), field name: length larger than 16 MiB");
  with(
      "string past its record", [](eftd::bytes& d) { put_u32(d, body_at, 100); },
      "record 0 (counter_set), field name: length past the end of the record");
  with(
      "short body", [](eftd::bytes& d) { put_u32(d, length_at, 5); },
      "record 0 (counter_set), field value: truncated");
  with(
      "trailing bytes in the body",
      [](eftd::bytes& d) {
        put_u32(d, length_at, static_cast<std::uint32_t>(d.size() - body_at + 1));
        d.push_back(0);
      },
      "record 0 (counter_set): trailing bytes in the body");
  with(
      "trailing bytes after the last record", [](eftd::bytes& d) { d.push_back(0); },
      "trailing bytes after the last record");

  for (const auto& c : cases) {
    SECTION(c.name) {
      auto r = ej::decode_batch(c.data);
      CHECK(code_of(r) == "journal.bad_replica");
      CHECK_THAT(message_of(r), Catch::Contains(c.message_part));
    }
  }
}

TEST_CASE("replica codec: bad presence, actor and oversize inputs", "[journal][replica]") {
  SECTION("presence byte other than 0 or 1") {
    ej::order_updated u;
    u.order_id = "O1";
    auto d = encoded(u);
    d[body_at + 4 + 2] = 2;  // after order_id ("O1"): expect_state's presence byte
    auto r = ej::decode_batch(d);
    CHECK(code_of(r) == "journal.bad_replica");
    CHECK_THAT(message_of(r),
               Catch::Contains("record 0 (order_updated), field expect_state: bad presence byte"));
  }
  SECTION("unknown actor code") {
    auto d = encoded(event("O1", "k", 1));
    // order_id "O1" (6), op_id absent (1), at_ms (8): then the actor byte.
    d[body_at + 6 + 1 + 8] = 9;
    auto r = ej::decode_batch(d);
    CHECK(code_of(r) == "journal.bad_replica");
    CHECK_THAT(message_of(r), Catch::Contains("record 0 (event_appended), field actor: unknown actor code"));
  }
  SECTION("a stored_pan part names its sub-field") {
    auto op = payment("P1", "O1");
    op.pan = sample_pan();
    ej::batch b;
    b.records.emplace_back(op);
    auto d = ej::encode_batch(b);
    // Drop the end of the body but keep the framing honest: the pan's search hash is cut.
    const std::size_t cut = 30;
    put_u32(d, length_at, static_cast<std::uint32_t>(d.size() - body_at - cut));
    d.resize(d.size() - cut);
    auto r = ej::decode_batch(d);
    CHECK(code_of(r) == "journal.bad_replica");
    CHECK_THAT(message_of(r), Catch::Contains("field pan.search_hash: length past the end of the record"));
  }
  SECTION("input larger than 64 MiB") {
    eftd::bytes big(ej::max_replica_batch_size + 1, 0);
    auto r = ej::decode_batch(big);
    CHECK(code_of(r) == "journal.bad_replica");
    CHECK_THAT(message_of(r), Catch::Contains("larger than 64 MiB"));
  }
}

TEST_CASE("replica codec: errors never quote card data", "[journal][replica][security]") {
  auto op = sample(std::type_identity<ej::operation_updated>{}, true);
  ej::batch b;
  b.records.emplace_back(op);
  b.records.emplace_back(sample(std::type_identity<ej::operation_created>{}, true));
  const auto good = ej::encode_batch(b);
  const auto pan = sample_pan();
  const std::string cipher_hex = eftd::to_hex(pan.ciphertext);
  const std::string cipher_raw(pan.ciphertext.begin(), pan.ciphertext.end());

  std::size_t errors = 0, leaks = 0;
  auto inspect = [&](const eftd::bytes& d) {
    auto r = ej::decode_batch(d);
    if (r) return;
    ++errors;
    const auto& m = r.err().message;
    if (contains(m, pan.masked) || contains(m, "1111") || contains(m, cipher_hex) ||
        contains(m, cipher_raw.substr(0, 8)) || contains(m, pan.search_hash.substr(0, 16)))
      ++leaks;
  };
  // Every truncation, and every single byte replaced by a few other values: every kind of
  // error the decoder has, at every field of a record that holds a stored_pan.
  for (std::size_t n = 0; n < good.size(); ++n) inspect(eftd::bytes(good.begin(), good.begin() + n));
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (std::uint8_t v : {std::uint8_t{0x00}, std::uint8_t{0x02}, std::uint8_t{0x7F}, std::uint8_t{0xFF}}) {
      auto d = good;
      if (d[i] == v) continue;
      d[i] = v;
      inspect(d);
    }
  }
  CHECK(errors > good.size());
  CHECK(leaks == 0);
}

// --- notification_created applied to a journal --------------------------------------------

namespace {

// Every column of a notification row, NULL as nullopt, in a fixed order.
using row = std::vector<std::optional<std::string>>;

std::vector<row> notification_rows(const std::filesystem::path& db) {
  auto c = ej::detail::open_connection(db, ej::detail::open_mode::read_only, 5000, "");
  REQUIRE(c);
  ej::detail::stmt s(
      c->prepare("SELECT notification_id, order_id, event, order_state, payload, created_ms, state, attempts,"
                 " next_attempt_ms, expires_ms, last_error, delivered_ms, updated_ms, endpoint"
                 " FROM notifications ORDER BY notification_id"));
  std::vector<row> rows;
  while (s.step() == SQLITE_ROW) {
    row r;
    for (int i = 0; i < 14; ++i) r.push_back(s.opt_text(i));
    rows.push_back(std::move(r));
  }
  return rows;
}

row row_of(const ej::notification_created& n) {
  auto num = [](std::int64_t v) { return std::optional<std::string>(std::to_string(v)); };
  auto opt_num = [](std::optional<std::int64_t> v) {
    return v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt;
  };
  return {n.notification_id,
          n.order_id,
          n.event,
          n.order_state,
          n.payload,
          num(n.created_ms),
          n.state,
          num(n.attempts),
          num(n.next_attempt_ms),
          opt_num(n.expires_ms),
          n.last_error,
          opt_num(n.delivered_ms),
          num(n.updated_ms),
          n.endpoint};
}

// A journal at the latest schema, opened the way the writer opens its own (foreign keys on),
// for calling detail::apply_records directly.
ej::detail::connection open_journal(const std::filesystem::path& db) {
  auto c = ej::detail::open_connection(db, ej::detail::open_mode::read_write_create, 5000, "");
  REQUIRE(c);
  REQUIRE(c->exec("PRAGMA foreign_keys = ON") == SQLITE_OK);
  auto st = ej::detail::migrate(*c);
  INFO((st ? "" : st.err().message));
  REQUIRE(st);
  return std::move(*c);
}

ej::order_updated made_final(const std::string& order_id, std::int64_t at_ms) {
  ej::order_updated u;
  u.order_id = order_id;
  u.state = "approved";
  u.result_code = "approved";
  u.approved_amount_minor = 12500;
  u.updated_ms = at_ms;
  return u;
}

}  // namespace

TEST_CASE("notification_created inserts exactly the row it carries", "[journal][replica]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto n = sample(std::type_identity<ej::notification_created>{}, true);
  n.order_id = "O1";
  ej::batch b;
  b.records.emplace_back(order("O1", "1001"));
  b.records.emplace_back(n);
  REQUIRE(code_of(w->submit_sync(std::move(b))) == "ok");

  auto unset = sample(std::type_identity<ej::notification_created>{}, false);
  unset.notification_id = "N-2";
  unset.order_id = "O1";
  REQUIRE(code_of(w->submit_sync(ej::batch{{unset}})) == "ok");

  const auto rows = notification_rows(dir.db());
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == row_of(n));
  CHECK(rows[1] == row_of(unset));

  SECTION("the same id again is a duplicate") {
    CHECK(code_of(w->submit_sync(ej::batch{{n}})) == "journal.duplicate_id");
  }
  SECTION("an unknown order is an unknown reference") {
    auto orphan = n;
    orphan.notification_id = "N-3";
    orphan.order_id = "no-such-order";
    CHECK(code_of(w->submit_sync(ej::batch{{orphan}})) == "journal.unknown_reference");
  }
  SECTION("a card number in last_error is masked like in other free text") {
    auto leaky = n;
    leaky.notification_id = "N-4";
    leaky.last_error = "refused 4111111111111111 today";  // a public test card number
    REQUIRE(code_of(w->submit_sync(ej::batch{{leaky}})) == "ok");
    const auto again = notification_rows(dir.db());
    REQUIRE(again.size() == 3);
    const bool masked = again[2][10] == std::optional<std::string>("refused 411111******1111 today");
    CHECK(masked);  // not printed: a failure would show the clear number
  }
}

TEST_CASE("generated notification rows are returned and replay identically on a standby",
          "[journal][replica]") {
  temp_dir active_dir, standby_dir;
  ej::writer_options::notification_options notify;
  notify.enabled = true;
  notify.endpoints = {{"erp", {}, true}, {"crm", {"M001"}, false}, {"other", {"M999"}, false}};

  // The active: the order becomes final, the writer generates one row per endpoint taking M001.
  auto active = open_journal(active_dir.db());
  std::vector<ej::record> first{order("O1", "1001")};
  auto out = ej::detail::apply_records(active, first, &notify);
  REQUIRE(out.st);
  CHECK(out.generated.empty());
  CHECK_FALSE(out.notifications);
  std::vector<ej::record> second{made_final("O1", 1'700'000'000'500)};
  out = ej::detail::apply_records(active, second, &notify);
  REQUIRE(out.st);
  CHECK(out.notifications);
  REQUIRE(out.generated.size() == 2);
  active.close();

  const auto active_rows = notification_rows(active_dir.db());
  REQUIRE(active_rows.size() == 2);
  std::vector<row> generated_rows;
  for (const auto& g : out.generated) generated_rows.push_back(row_of(g));
  std::sort(generated_rows.begin(), generated_rows.end());
  CHECK(generated_rows == active_rows);

  // The standby: the same records plus the generated rows, through the codec, generation off.
  ej::batch shipped;
  shipped.records = second;
  for (const auto& g : out.generated) shipped.records.emplace_back(g);
  auto received = ej::decode_batch(ej::encode_batch(shipped));
  REQUIRE(received);
  auto standby = open_journal(standby_dir.db());
  auto s1 = ej::detail::apply_records(standby, first, nullptr);
  REQUIRE(s1.st);
  auto s2 = ej::detail::apply_records(standby, received->records, nullptr);
  INFO((s2.st ? "" : s2.st.err().code + ": " + s2.st.err().message));
  REQUIRE(s2.st);
  CHECK(s2.generated.empty());
  CHECK(s2.notifications);
  standby.close();
  CHECK(notification_rows(standby_dir.db()) == active_rows);
}

// Seed corpus of fuzz_replica_codec (tests/journal/corpus/fuzz_replica_codec): hidden, run by hand
// after a format change:  journal_replica_codec_tests "[.generate]"
TEST_CASE("write the replica codec seed corpus", "[.generate]") {
  const auto dir = std::filesystem::path(EFTD_JOURNAL_TEST_SOURCE_DIR) / "corpus/fuzz_replica_codec";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const eftd::bytes& data) {
    std::ofstream f(dir / name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    REQUIRE(f.good());
  };
  write("every_record_full", ej::encode_batch(every_record(true)));
  write("every_record_unset", ej::encode_batch(every_record(false)));
  write("golden_small", ej::encode_batch(golden_batch()));
}

// The seed corpus still decodes: a format change must come with a new corpus (and magic).
TEST_CASE("replica codec: the seed corpus decodes", "[journal][replica]") {
  const auto dir = std::filesystem::path(EFTD_JOURNAL_TEST_SOURCE_DIR) / "corpus/fuzz_replica_codec";
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(e.path(), std::ios::binary);
    const eftd::bytes data{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    auto r = ej::decode_batch(data);
    INFO(e.path().filename().string() << ": " << message_of(r));
    CHECK(r);
    if (r) CHECK(ej::encode_batch(*r) == data);
    ++files;
  }
  CHECK(files >= 3);
}

// --- shared_file_set: the files a hot-standby pair shares -------------------------------------

TEST_CASE("shared_file_set keeps the newest content per name and checks it", "[journal][replica]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  auto first = sample(std::type_identity<ej::shared_file_set>{}, true);
  REQUIRE(code_of(w->submit_sync(ej::batch{{first}})) == "ok");
  auto next = first;
  next.content = eftd::bytes{1, 2, 3};
  next.sha256 = eftd::to_hex(eftd::sha256(next.content));
  next.origin = "node-b";
  next.set_ms = first.set_ms + 1;
  REQUIRE(code_of(w->submit_sync(ej::batch{{next}})) == "ok");
  // Applying the same record again (a standby catching up twice) changes nothing.
  REQUIRE(code_of(w->submit_sync(ej::batch{{next}})) == "ok");

  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  auto got = r->shared_file("keystore");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->content == next.content);
  CHECK((*got)->origin == "node-b");
  CHECK((*got)->set_ms == next.set_ms);
  auto none = r->shared_file("registry");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());

  SECTION("a digest that does not match the content is refused") {
    auto bad = next;
    bad.content.push_back(0);
    CHECK(code_of(w->submit_sync(ej::batch{{bad}})) == "journal.invalid_record");
  }
  SECTION("an unknown name is refused") {
    auto bad = next;
    bad.name = "passwords";
    CHECK(code_of(w->submit_sync(ej::batch{{bad}})) == "journal.invalid_record");
  }
}
