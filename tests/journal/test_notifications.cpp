// Outcome notifications (schema v10): the writer's outbox rows, written in the transaction
// that makes an order final, and the delivery-state record.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "eftd/core/card.hpp"
#include "eftd/journal/card_data.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace {

using namespace journal_test;
using json = nlohmann::json;

ej::writer_options notifying() {
  ej::writer_options o;
  o.notifications.enabled = true;
  return o;
}

ej::order_updated final_update(const std::string& order_id, std::string state, std::int64_t at_ms) {
  ej::order_updated u;
  u.order_id = order_id;
  u.state = std::move(state);
  u.result_code = "approved";
  u.reason_cashier = "Approved";
  u.approved_amount_minor = 12500;
  u.updated_ms = at_ms;
  return u;
}

// A public test card number (not a real card).
constexpr std::string_view test_pan = "4111111111111111";

ej::batch opened_with_card(const ej::keys& k) {
  ej::batch b;
  b.records.emplace_back(order("O1", "1001"));
  auto op = payment("P1", "O1");
  auto p = eftd::pan::parse(test_pan);
  REQUIRE(p);
  auto sealed = ej::seal_pan(k, *p);
  REQUIRE(sealed);
  op.pan = *sealed;
  b.records.emplace_back(op);
  return b;
}

std::size_t count_rows(ej::reader& r, const std::string& order_id) {
  ej::notification_filter f;
  f.order_id = order_id;
  auto rows = r.list_notifications(f);
  REQUIRE(rows);
  return rows->size();
}

}  // namespace

TEST_CASE("a final order state writes exactly one pending notification", "[journal][notify]") {
  temp_dir dir;
  auto k = ej::load_or_create_keys(dir.path() / "journal.keys");
  REQUIRE(k);
  int hooks = 0;
  auto opts = notifying();
  opts.on_notifications = [&] { ++hooks; };
  auto w = open_writer(dir.db(), opts);
  REQUIRE(code_of(w->submit_sync(opened_with_card(*k))) == "ok");

  // A state change that is not final: nothing to announce.
  ej::order_updated progress;
  progress.order_id = "O1";
  progress.state = "in_progress";
  progress.updated_ms = 1'700'000'000'300;
  REQUIRE(code_of(w->submit_sync(ej::batch{{progress}})) == "ok");
  auto r = open_reader(dir.db());
  CHECK(count_rows(r, "O1") == 0);
  CHECK(hooks == 0);

  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O1", "approved", 1'700'000'000'400)}})) == "ok");
  CHECK(hooks == 1);
  auto pending = r.pending_notifications(10);
  REQUIRE(pending);
  REQUIRE(pending->size() == 1);
  const auto& n = pending->front();
  CHECK(n.order_id == "O1");
  CHECK(n.state == "pending");
  CHECK(n.order_state == "approved");
  CHECK(n.attempts == 0);
  CHECK(n.created_ms == 1'700'000'000'400);
  CHECK(n.next_attempt_ms == 1'700'000'000'400);

  const auto payload = json::parse(n.payload);
  CHECK(payload.at("notification_id") == n.notification_id);
  CHECK(payload.at("event") == "order.final");
  CHECK(payload.at("order_id") == "O1");
  CHECK(payload.at("order_no") == "1001");
  CHECK(payload.at("merchant") == "M001");
  CHECK(payload.at("store") == "S01");
  CHECK(payload.at("till") == "T01");
  CHECK(payload.at("kind") == "sale");
  CHECK(payload.at("state") == "approved");
  CHECK(payload.at("result_code") == "approved");
  CHECK(payload.at("amount_minor") == 12500);
  CHECK(payload.at("approved_amount_minor") == 12500);
  CHECK(payload.at("currency") == "PLN");
  CHECK(payload.at("reason_cashier") == "Approved");
  CHECK(payload.at("business_date") == "2024-03-01");
  CHECK(payload.at("at_ms") == 1'700'000'000'400);
  // The masked PAN at most: never the full number (not printed: compare presence only).
  const bool has_full_pan = n.payload.find(test_pan) != std::string::npos;
  CHECK_FALSE(has_full_pan);
  CHECK(payload.at("pan_masked").get<std::string>().find("******") != std::string::npos);

  // Repeating the same final state announces nothing new.
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O1", "approved", 1'700'000'000'500)}})) == "ok");
  CHECK(count_rows(r, "O1") == 1);

  // A later change to another final state (a cancel) announces again.
  auto cancel = final_update("O1", "cancelled", 1'700'000'000'600);
  cancel.expect_state = "approved";
  cancel.result_code = "cancel.done";
  REQUIRE(code_of(w->submit_sync(ej::batch{{cancel}})) == "ok");
  CHECK(count_rows(r, "O1") == 2);
  auto latest = r.list_notifications({});
  REQUIRE(latest);
  REQUIRE(latest->size() == 2);
  CHECK(latest->front().order_state == "cancelled");
  CHECK(hooks == 2);
}

TEST_CASE("an order created and ended in one batch is announced once", "[journal][notify]") {
  temp_dir dir;
  auto w = open_writer(dir.db(), notifying());
  ej::batch b;
  auto o = order("O2", "1002");
  o.state = "declined";
  b.records.emplace_back(o);
  auto u = final_update("O2", "declined", 1'700'000'000'100);
  u.result_code = "limits.amount";
  b.records.emplace_back(u);
  b.records.emplace_back(u);
  REQUIRE(code_of(w->submit_sync(std::move(b))) == "ok");
  auto r = open_reader(dir.db());
  CHECK(count_rows(r, "O2") == 1);
}

TEST_CASE("the notification is part of the order's transaction", "[journal][notify]") {
  temp_dir dir;
  auto w = open_writer(dir.db(), notifying());
  REQUIRE(code_of(w->submit_sync(ej::batch{{order("O3", "1003")}})) == "ok");
  // The final update succeeds, a later record of the batch fails: neither is kept.
  ej::batch b;
  b.records.emplace_back(final_update("O3", "approved", 1'700'000'000'100));
  ej::operation_updated missing;
  missing.op_id = "no-such-op";
  missing.state = "done";
  b.records.emplace_back(missing);
  CHECK(code_of(w->submit_sync(std::move(b))) == "journal.not_found");
  auto r = open_reader(dir.db());
  CHECK(count_rows(r, "O3") == 0);
  auto counts = r.notification_counts();
  REQUIRE(counts);
  CHECK(counts->empty());
}

TEST_CASE("notifications disabled: no outbox rows", "[journal][notify]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  REQUIRE(code_of(w->submit_sync(ej::batch{{order("O4", "1004")}})) == "ok");
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O4", "approved", 1'700'000'000'100)}})) == "ok");
  auto r = open_reader(dir.db());
  CHECK(count_rows(r, "O4") == 0);
}

TEST_CASE("notification_updated moves a notification through its delivery states", "[journal][notify]") {
  temp_dir dir;
  auto w = open_writer(dir.db(), notifying());
  REQUIRE(code_of(w->submit_sync(ej::batch{{order("O5", "1005")}})) == "ok");
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O5", "failed", 1'700'000'000'100)}})) == "ok");
  auto r = open_reader(dir.db());
  auto pending = r.pending_notifications(10);
  REQUIRE(pending);
  REQUIRE(pending->size() == 1);
  const auto id = pending->front().notification_id;

  ej::notification_updated retry;
  retry.notification_id = id;
  retry.expect_state = "pending";
  retry.attempts = 1;
  retry.next_attempt_ms = 1'700'000'010'100;
  retry.last_error = "HTTP 503";
  retry.updated_ms = 1'700'000'000'200;
  REQUIRE(code_of(w->submit_sync(ej::batch{{retry}})) == "ok");

  ej::notification_updated delivered;
  delivered.notification_id = id;
  delivered.expect_state = "pending";
  delivered.state = "delivered";
  delivered.attempts = 2;
  delivered.delivered_ms = 1'700'000'010'200;
  delivered.updated_ms = 1'700'000'010'200;
  REQUIRE(code_of(w->submit_sync(ej::batch{{delivered}})) == "ok");
  // A second delivery report meets the new state.
  CHECK(code_of(w->submit_sync(ej::batch{{delivered}})) == "journal.state_conflict");
  ej::notification_updated bad_state = delivered;
  bad_state.expect_state.reset();
  bad_state.state = "lost";
  CHECK(code_of(w->submit_sync(ej::batch{{bad_state}})) == "journal.invalid_record");
  ej::notification_updated unknown = delivered;
  unknown.notification_id = "nope";
  CHECK(code_of(w->submit_sync(ej::batch{{unknown}})) == "journal.not_found");

  auto row = r.notification(id);
  REQUIRE(row);
  REQUIRE(row->has_value());
  CHECK((*row)->state == "delivered");
  CHECK((*row)->attempts == 2);
  CHECK((*row)->last_error == std::optional<std::string>("HTTP 503"));
  CHECK((*row)->delivered_ms == std::optional<std::int64_t>(1'700'000'010'200));
  auto pend = r.pending_notifications(10);
  REQUIRE(pend);
  CHECK(pend->empty());
  auto counts = r.notification_counts();
  REQUIRE(counts);
  REQUIRE(counts->size() == 1);
  CHECK(counts->front() == std::make_pair(std::string("delivered"), std::int64_t{1}));
}

TEST_CASE("one outbox row per endpoint that takes the order's merchant, each endpoint its own queue",
          "[journal][notify]") {
  temp_dir dir;
  auto opts = notifying();
  opts.notifications.endpoints = {{"all", {}, true}, {"erp", {"M001"}, false}, {"other", {"M002"}, false}};
  auto w = open_writer(dir.db(), opts);
  auto o1 = order("O1", "1001");
  auto o2 = order("O2", "1002");
  o2.merchant_id = "M002";
  REQUIRE(code_of(w->submit_sync(ej::batch{{o1, o2}})) == "ok");
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O1", "approved", 1'700'000'000'100)}})) == "ok");
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O2", "approved", 1'700'000'000'200)}})) == "ok");
  // The same state again: announced once per endpoint, not again.
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O1", "approved", 1'700'000'000'300)}})) == "ok");

  auto r = open_reader(dir.db());
  CHECK(count_rows(r, "O1") == 2);  // all, erp
  CHECK(count_rows(r, "O2") == 2);  // all, other
  auto pending_of = [&](const std::string& endpoint) {
    auto rows = r.pending_notifications(endpoint, false, 100);
    REQUIRE(rows);
    std::vector<std::string> orders;
    for (const auto& n : *rows) {
      CHECK(n.endpoint == endpoint);
      CHECK(json::parse(n.payload).at("notification_id") == n.notification_id);
      orders.push_back(n.order_id);
    }
    return orders;
  };
  CHECK(pending_of("all") == std::vector<std::string>{"O1", "O2"});
  CHECK(pending_of("erp") == std::vector<std::string>{"O1"});
  CHECK(pending_of("other") == std::vector<std::string>{"O2"});
  CHECK(pending_of("nobody").empty());
  auto all = r.list_notifications({});
  REQUIRE(all);
  std::set<std::string> ids;
  for (const auto& n : *all) ids.insert(n.notification_id);
  CHECK(ids.size() == 4);

  // Delivered on one endpoint, still pending on the other.
  ej::notification_updated u;
  u.notification_id = r.pending_notifications("erp", false, 1)->at(0).notification_id;
  u.expect_state = "pending";
  u.state = "delivered";
  u.updated_ms = 1'700'000'000'400;
  REQUIRE(code_of(w->submit_sync(ej::batch{{u}})) == "ok");
  CHECK(pending_of("erp").empty());
  CHECK(pending_of("all") == std::vector<std::string>{"O1", "O2"});
  ej::notification_filter f;
  f.endpoint = "erp";
  auto erp_rows = r.list_notifications(f);
  REQUIRE(erp_rows);
  REQUIRE(erp_rows->size() == 1);
  CHECK(erp_rows->at(0).state == "delivered");
}

TEST_CASE("rows without an endpoint (before schema v14) belong to the first endpoint", "[journal][notify]") {
  temp_dir dir;
  {
    // No endpoints listed: one unnamed endpoint for every merchant, as before v14.
    auto w = open_writer(dir.db(), notifying());
    REQUIRE(code_of(w->submit_sync(ej::batch{{order("O1", "1001")}})) == "ok");
    REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O1", "approved", 1'700'000'000'100)}})) == "ok");
  }
  auto opts = notifying();
  opts.notifications.endpoints = {{"erp", {}, true}, {"crm", {}, false}};
  auto w = open_writer(dir.db(), opts);
  auto r = open_reader(dir.db());
  auto first = r.pending_notifications("erp", true, 10);
  REQUIRE(first);
  REQUIRE(first->size() == 1);
  CHECK(first->at(0).endpoint.empty());
  CHECK(r.pending_notifications("crm", false, 10)->empty());
  // The same state again is not announced again to the first endpoint (its old row counts).
  REQUIRE(code_of(w->submit_sync(ej::batch{{final_update("O1", "approved", 1'700'000'000'200)}})) == "ok");
  CHECK(r.pending_notifications("erp", true, 10)->size() == 1);
  CHECK(r.pending_notifications("crm", false, 10)->size() == 1);
}
