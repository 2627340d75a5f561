// Journal retention through eftd (issue 7): the admin socket's purge and eftctl journal purge
// remove a settled sale whole, keep a sale its batch has not settled, and leave an audit record;
// with [journal] retention_days eftd purges by itself at start-up (no cut-over configured).
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;
using nlohmann::json;

namespace {

std::string admin_path(const installation& inst) {
  return inst.dir + "/admin.sock";
}

json admin(const installation& inst, const json& request) {
  auto j = admin_request(admin_path(inst), request, 60s);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

std::string local_date(std::time_t t) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

std::string tomorrow() {
  return local_date(std::time(nullptr) + 24 * 60 * 60);
}

std::size_t orders_with_no(const installation& inst, const std::string& order_no) {
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto rows = rd->find_orders_recent("T01", order_no, 0);
  REQUIRE(rows);
  return rows->size();
}

std::vector<eftd::journal::audit_row> purge_audit(const installation& inst) {
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  eftd::journal::audit_filter f;
  f.action = "purge";
  auto rows = rd->audit_log(f);
  REQUIRE(rows);
  return *rows;
}

}  // namespace

TEST_CASE("retention: a settled sale is purged, an unsettled one stays, and the purge is audited",
          "[retention][settlement]") {
  installation inst("e2e-retention", true);
  inst.start_eftd({"--set", "admin.socket=" + admin_path(inst)});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");

  const auto settled = order_no("RS"), open = order_no("RO");
  REQUIRE(inst.pos("T01", {"sale", "--order", settled, "--amount", "10.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");
  auto close = admin(inst, {{"cmd", "settle"}});
  REQUIRE(close.value("ok", false));
  REQUIRE(close["batches"].size() == 1);
  REQUIRE(close["batches"][0].value("state", "") == "closed");
  // After the close: this sale is in the terminal's next, open batch.
  REQUIRE(inst.pos("T01", {"sale", "--order", open, "--amount", "20.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");

  // A dry run through eftctl counts and removes nothing.
  process ctl(
      bin_path("eftctl"),
      {"journal", "purge", "--socket", admin_path(inst), "--before", tomorrow(), "--dry-run", "--json"},
      inst.dir + "/eftctl.log");
  std::string out;
  while (auto line = ctl.read_line(30s)) out += *line + "\n";
  CHECK(ctl.wait_exit(10s) == std::optional<int>{0});
  auto dry = json::parse(out, nullptr, false);
  REQUIRE_FALSE(dry.is_discarded());
  CHECK(dry.value("ok", false));
  CHECK(dry.value("dry_run", false));
  CHECK(dry.value("orders", -1) == 1);
  CHECK(dry["kept"].value("open_batch", -1) == 1);
  CHECK(orders_with_no(inst, settled) == 1);

  auto purge = admin(inst, {{"cmd", "purge"}, {"before", tomorrow()}, {"dry_run", false}});
  REQUIRE(purge.value("ok", false));
  CHECK(purge.value("orders", -1) == 1);
  CHECK(purge.value("messages", -1) >= 1);
  CHECK(purge.value("events", -1) >= 1);
  CHECK(purge.value("kept_unsettled", -1) == 1);
  CHECK(purge["kept"].value("open_batch", -1) == 1);
  // The closed batch is the terminal's highest: it stays so the open batch keeps its number.
  CHECK(purge.value("batches", -1) == 0);
  CHECK(orders_with_no(inst, settled) == 0);
  CHECK(orders_with_no(inst, open) == 1);

  // The open sale still settles after the purge, in the next batch.
  auto next = admin(inst, {{"cmd", "settle"}});
  REQUIRE(next.value("ok", false));
  // The reply lists batch 1 too (closed before, under the same label).
  json second;
  for (const auto& b : next["batches"])
    if (b.value("batch_no", 0) == 2) second = b;
  REQUIRE(second.is_object());
  CHECK(second.value("state", "") == "closed");
  CHECK(second.value("debit_amount", 0) == 2000);
  CHECK_FALSE(second.value("already_closed", true));

  // Bad requests are refused and audited too.
  auto bad = admin(inst, {{"cmd", "purge"}, {"before", "tomorrow"}});
  CHECK_FALSE(bad.value("ok", true));
  CHECK(bad["error"].value("code", "") == "admin.bad_request");

  inst.eftd->stop();
  auto audit = purge_audit(inst);
  REQUIRE(audit.size() == 3);
  CHECK(audit[0].source == "admin-socket");
  CHECK(audit[0].outcome == "ok");
  CHECK(audit[0].detail.find("\"dry_run\":true") != std::string::npos);
  CHECK(audit[1].outcome == "ok");
  CHECK(audit[1].detail.find("\"dry_run\":false") != std::string::npos);
  CHECK(audit[2].outcome == "admin.bad_request");
}

TEST_CASE("retention: with retention_days eftd purges at start-up and audits it as eftd", "[retention]") {
  installation inst("e2e-retention-daily", true);
  inst.start_eftd({"--set", "journal.retention_days=30"});
  // The start-up purge runs in the background: wait for its audit record, within a deadline.
  std::vector<eftd::journal::audit_row> audit;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (audit.empty() && std::chrono::steady_clock::now() < deadline) audit = purge_audit(inst);
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].actor == "eftd");
  CHECK(audit[0].outcome == "ok");
  CHECK(audit[0].detail.find("before=" + local_date(std::time(nullptr) - 30 * 24 * 60 * 60)) !=
        std::string::npos);
  CHECK(audit[0].detail.find("orders=0") != std::string::npos);
}
