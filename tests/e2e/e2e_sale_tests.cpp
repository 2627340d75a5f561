// The walking skeleton end to end, through real processes on free ports:
// eft-pos-sim -> eftd -> eftpad (virtual pad) and eft-acquirer-sim, with a real SQLite journal.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>

#include "e2e_util.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

TEST_CASE("an approved sale runs end to end with a receipt that shows only the masked PAN") {
  installation inst("e2e-approve");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("A");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "125.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  const auto& res = r.result;
  REQUIRE(res.value("type", "") == "result");
  CHECK(res.value("outcome", "") == "approved");
  CHECK(res.value("order_no", "") == order);
  CHECK(res.value("amount", 0) == 12500);
  CHECK(res.value("approved_amount", 0) == 12500);
  CHECK(res.value("masked_pan", "") == "476173******0119");
  CHECK(res.value("scheme", "") == "visa");
  CHECK(res.value("entry_mode", "") == "magstripe");
  CHECK(res.value("auth_code", "").size() == 6);
  CHECK(res.value("terminal_id", "") == "TERM0001");
  auto receipt = res["receipt"].dump();
  CHECK(contains(receipt, "476173******0119"));
  CHECK(contains(receipt, "125.00 PLN"));
  CHECK(contains(receipt, "MERCHANT COPY"));
  CHECK(contains(receipt, "CUSTOMER COPY"));
  CHECK_FALSE(contains(receipt, test_pan));
  // The POS saw status lines while the sale ran (eft-pos-sim --json prints them on stderr).
  CHECK(contains(eftd::test::slurp(inst.dir + "/pos.log"), "Insert, swipe or tap the card"));
  // The pad showed the approval with the order number.
  auto shown = inst.pad->wait_for_prefix("DISPLAY Approved - order " + order, 10s);
  CHECK(shown.has_value());
}

TEST_CASE("a declined sale is motivated for cashier, customer and journal, quoting the order number") {
  installation inst("e2e-decline");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("D");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "20.51", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  const auto& res = r.result;
  CHECK(res.value("outcome", "") == "declined");
  // Optional fields at their default are left off the wire: no approved amount.
  CHECK(res.value("approved_amount", 0) == 0);
  REQUIRE(res.contains("reason"));
  CHECK(res["reason"].value("code", "") == "issuer.insufficient_funds");
  CHECK(contains(res["reason"].value("cashier_text", ""), order));
  CHECK(contains(res["reason"].value("customer_text", ""), order));
  CHECK(inst.pad->wait_for_prefix("DISPLAY Insufficient funds - order " + order, 10s).has_value());
  inst.eftd->stop();
  auto view = journal_view(inst, order);
  CHECK(view.order.state == "declined");
  CHECK(view.order.result_code.value_or("") == "issuer.insufficient_funds");
  bool journaled_reason = false;
  for (const auto& e : view.events)
    if (e.kind == "declined" && contains(e.reason, order) && contains(e.reason, "insufficient funds"))
      journaled_reason = true;
  CHECK(journaled_reason);
  // Back office: eftctl shows the whole log of this one order, as JSON for other systems.
  eftd::test::process show(
      eftd::test::bin_path("eftctl"),
      {"journal", "show", "--db", inst.db(), "--till", "T01", "--order", order, "--format", "json"},
      inst.dir + "/eftctl.log");
  std::string text;
  while (auto line = show.read_line(20s)) text += *line + "\n";
  CHECK(show.wait_exit(20s).value_or(-1) == 0);
  auto j = nlohmann::json::parse(text, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j.value("order_no", "") == order);
  CHECK(j.value("state", "") == "declined");
  REQUIRE(j["events"].is_array());
  CHECK(j["events"].size() >= 4);  // requested, card read, authorizing, declined
  CHECK(j["messages"][0].value("response_code", "") == "51");
  CHECK_FALSE(contains(text, test_pan));
}

TEST_CASE("a repeated sale with the same order number returns the stored result and is authorized once") {
  installation inst("e2e-idem");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("I");
  auto first = inst.pos("T01", {"sale", "--order", order, "--amount", "7.00", "--currency", "PLN"});
  auto second = inst.pos("T01", {"sale", "--order", order, "--amount", "7.00", "--currency", "PLN"});
  REQUIRE(first.result.value("outcome", "") == "approved");
  CHECK(second.result.value("outcome", "") == "approved");
  CHECK(second.result.value("auth_code", "") == first.result.value("auth_code", "x"));
  CHECK(second.result.value("stan", "") == first.result.value("stan", "x"));
  inst.eftd->stop();
  CHECK(journal_view(inst, order).messages.size() == 1);
}

TEST_CASE("status query tells the truth about approved and unknown orders") {
  installation inst("e2e-status");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("S");
  auto sale = inst.pos("T01", {"sale", "--order", order, "--amount", "3.00", "--currency", "PLN"});
  REQUIRE(sale.result.value("outcome", "") == "approved");
  auto st = inst.pos("T01", {"status", "--order", order});
  REQUIRE(st.exit_code == 0);
  CHECK(st.result.value("type", "") == "order_status");
  CHECK(st.result.value("state", "") == "approved");
  REQUIRE(st.result.contains("last_result"));
  CHECK(st.result["last_result"].value("auth_code", "") == sale.result.value("auth_code", "x"));
  auto unknown = inst.pos("T01", {"status", "--order", order + "999"});
  CHECK(unknown.result.value("state", "") == "unknown");
}

TEST_CASE("a sale on a till whose pad is not connected fails cleanly with pad.unavailable") {
  installation inst("e2e-nopad");
  inst.start_eftd();
  auto order = order_no("P");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "5.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result["reason"].value("code", "") == "pad.unavailable");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
}

TEST_CASE("an unreachable acquirer fails the sale cleanly and nothing is left in doubt") {
  installation inst("e2e-noacq", false);
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("U");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "5.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result["reason"].value("code", "") == "acquirer.unreachable");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  inst.eftd->stop();
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto doubt = rd->in_doubt_messages();
  REQUIRE(doubt);
  CHECK(doubt->empty());
}

TEST_CASE("amount limits decline before the pad is engaged") {
  installation inst("e2e-limit");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("L");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "20000.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(r.result["reason"].value("code", "") == "limit.amount_above_maximum");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  CHECK_FALSE(any_line_contains(inst.pad->output(), "Swipe card"));
}

TEST_CASE("an expired card is declined right after the card read, before the acquirer") {
  installation inst("e2e-expired");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "expired.toml");
  auto order = order_no("E");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "9.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "declined");
  CHECK(r.result["reason"].value("code", "") == "card.expired");
  inst.eftd->stop();
  CHECK(journal_view(inst, order).messages.empty());
}

TEST_CASE("the clear PAN never reaches the journal files or the server log", "[security]") {
  installation inst("e2e-leak");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  for (auto amount : {"1.00", "2.51"}) {
    auto r = inst.pos("T01", {"sale", "--order", order_no("K"), "--amount", amount, "--currency", "PLN"});
    REQUIRE(r.exit_code == 0);
    CHECK_FALSE(any_line_contains(r.lines, test_pan));
  }
  inst.eftd->stop();
  for (auto f : {inst.db(), inst.db() + "-wal", inst.dir + "/eftd.log"}) {
    auto bytes = eftd::test::slurp(f);
    INFO(f);
    CHECK_FALSE(contains(bytes, test_pan));
  }
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  eftd::journal::order_filter f;
  auto rows = rd->list_orders(f);
  REQUIRE(rows);
  CHECK(rows->size() == 2);
}

TEST_CASE("a second eftd on a port in use exits with a clear message") {
  installation inst("e2e-port");
  inst.start_eftd();
  eftd::test::process second(
      eftd::test::bin_path("eftd"),
      {"-c", eftd::test::source_path("etc/demo.toml"), "--set",
       "listen.pos.port=" + std::to_string(inst.pos_port), "--set", "listen.pad.port=0", "--set",
       "acquirers.sim.port=" + std::to_string(inst.acquirer_port), "--set",
       "journal.path=" + inst.dir + "/second.db", "--set", "journal.key_file=" + inst.dir + "/second.key",
       "--set", "keys.store=" + inst.dir + "/keys/keys.store", "--set",
       "keys.master_key_file=" + inst.dir + "/keys/keys.master"},
      inst.dir + "/second.log");
  auto st = second.wait_exit(20s);
  REQUIRE(st.has_value());
  CHECK(*st == 1);
  auto log = eftd::test::slurp(inst.dir + "/second.log");
  CHECK(contains(log, "cannot listen for pos"));
}

TEST_CASE("a config error stops eftd at start-up with the key named") {
  installation inst("e2e-config", false);
  auto bad = inst.dir + "/bad.toml";
  {
    std::ofstream out(bad);
    out << eftd::test::slurp(eftd::test::source_path("etc/demo.toml"));
    out << "\n[[tills]]\nid = \"T09\"\nstore = \"S01\"\npad = \"P99\"\nterminal_id = \"TERM0009\"\n";
  }
  eftd::test::process p(eftd::test::bin_path("eftd"), {"-c", bad}, inst.dir + "/eftd-bad.log");
  auto st = p.wait_exit(20s);
  REQUIRE(st.has_value());
  CHECK(*st == 1);
  auto log = eftd::test::slurp(inst.dir + "/eftd-bad.log");
  CHECK(contains(log, "tills["));
  CHECK(contains(log, "P99"));
}

TEST_CASE("malformed POS input gets a clear error and the connection stays usable", "[security]") {
  installation inst("e2e-badpos");
  inst.start_eftd();
  raw_client c(inst.pos_port);
  c.send("this is not json\n");
  auto e = c.next();
  REQUIRE(e.has_value());
  CHECK(e->value("type", "") == "error");
  CHECK(e->value("code", "") == "pos.bad_json");
  c.send(R"({"type":"sale","v":1,"id":"s1","order_no":"1","amount":100,"currency":"PLN"})"
         "\n");
  auto e2 = c.next();
  REQUIRE(e2.has_value());
  CHECK(e2->value("code", "") == "not_logged_in");
  c.send(R"({"type":"login","v":1,"id":"l1","till_id":"T01","version":1})"
         "\n");
  auto ok = c.next();
  REQUIRE(ok.has_value());
  CHECK(ok->value("type", "") == "login_ok");
  c.send(R"({"type":"teleport","v":1,"id":"r1","order_no":"2","amount":100,"currency":"PLN"})"
         "\n");
  auto ns = c.next();
  REQUIRE(ns.has_value());
  CHECK(ns->value("code", "") == "pos.unknown_type");
  c.send(R"({"type":"preauth","v":1,"id":"r2","order_no":"2","amount":-5,"currency":"PLN"})"
         "\n");
  auto neg = c.next();
  REQUIRE(neg.has_value());
  CHECK(neg->value("code", "") == "invalid_amount");
}

TEST_CASE("a POS that disconnects mid-sale leaves a final state that a status query returns") {
  installation inst("e2e-posdrop");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("X");
  {
    raw_client c(inst.pos_port);
    c.send(R"({"type":"login","v":1,"id":"l1","till_id":"T01","version":1})"
           "\n");
    REQUIRE(c.next().has_value());
    c.send(R"({"type":"sale","v":1,"id":"s1","order_no":")" + order +
           R"(","amount":400,"currency":"PLN"})"
           "\n");
    auto first = c.next();  // a status line: the sale has started
    REQUIRE(first.has_value());
  }  // the POS vanishes
  // The pad shows the final text when the flow finishes on its own.
  REQUIRE(inst.pad->wait_for_prefix("DISPLAY Approved - order " + order, 20s).has_value());
  auto st = inst.pos("T01", {"status", "--order", order});
  CHECK(st.result.value("state", "") == "approved");
}

TEST_CASE("a pad that disconnects while the customer should present a card fails the sale cleanly") {
  installation inst("e2e-paddrop");
  inst.start_eftd();
  scripted_pad pad(inst.pad_port, "P01", "VP-0001");
  auto order = order_no("Q");
  raw_client pos(inst.pos_port);
  start_sale_held_at_card(pos, pad, order, 700);
  // The pad was asked for a card, and vanishes instead of answering.
  pad.close();
  std::optional<nlohmann::json> msg;
  while ((msg = pos.next(20s)) && msg->value("type", "") != "result") {
  }
  REQUIRE(msg.has_value());
  CHECK(msg->value("outcome", "") == "failed");
  CHECK((*msg)["reason"].value("code", "") == "pad.disconnected");
  CHECK(contains((*msg)["reason"].value("cashier_text", ""), order));
  // The till is free again: the next sale is answered (pad unavailable, not "busy").
  pos.send(R"({"type":"sale","v":1,"id":"s2","order_no":")" + order +
           R"(b","amount":700,"currency":"PLN"})"
           "\n");
  while ((msg = pos.next(20s)) && msg->value("type", "") != "result") {
  }
  REQUIRE(msg.has_value());
  CHECK((*msg)["reason"].value("code", "") == "pad.unavailable");
}

TEST_CASE("an unknown pad is refused at hello and cannot serve a till", "[security]") {
  installation inst("e2e-unknownpad");
  inst.start_eftd();
  raw_client c(inst.pad_port);
  eftd::pad::hello h;
  h.pad_id = "P01";
  h.serial = "STOLEN-1";
  c.send_bytes(eftd::pad::encode(eftd::pad::envelope{1, 0, h}));
  eftd::pad::frame_reader frames;
  std::optional<eftd::pad::envelope> reply;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!reply && std::chrono::steady_clock::now() < deadline) {
    auto chunk = c.read_some(2s);
    if (chunk.empty()) break;
    frames.feed(eftd::byte_view(reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size()));
    auto f = frames.next();
    REQUIRE(f);
    if (f->has_value()) {
      auto env = eftd::pad::decode_body(**f);
      REQUIRE(env);
      reply = std::move(*env);
    }
  }
  REQUIRE(reply.has_value());
  auto* ack = std::get_if<eftd::pad::hello_ack>(&reply->body);
  REQUIRE(ack != nullptr);
  CHECK_FALSE(ack->accepted);
  CHECK(contains(ack->reason, "serial"));
  auto r = inst.pos("T01", {"sale", "--order", order_no("Z"), "--amount", "1.00", "--currency", "PLN"});
  CHECK(r.result["reason"].value("code", "") == "pad.unavailable");
}

TEST_CASE("an acquirer that never answers: the POS hears 'not approved' and the sale is reversed") {
  // The simulator decides but never answers amounts ending in 99 (a lost reply).
  installation inst("e2e-timeout", true, {"--no-reply-amount-suffix", "99"});
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=500"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  auto order = order_no("T");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "10.99", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result.value("approved_amount", 0) == 0);
  CHECK(r.result["reason"].value("code", "") == "acquirer.timeout");
  CHECK(contains(r.result["reason"].value("cashier_text", ""), order));
  // The reversal goes out on its own; the order ends reversed. Poll the POS-visible status
  // with a deadline (each poll is a full status query).
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = inst.pos("T01", {"status", "--order", order});
    state = st.result.value("state", "");
    if (state == "reversed") break;
  }
  CHECK(state == "reversed");
  inst.eftd->stop();
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto doubt = rd->in_doubt_messages();
  REQUIRE(doubt);
  CHECK(doubt->empty());
  // The simulator's ledger agrees: nothing approved stands (its summary counts reversals).
  inst.acquirer->stop();
  bool summarized = false;
  for (const auto& l : inst.acquirer->output())
    if (contains(l, "SUMMARY")) summarized = contains(l, "\"reversed\":1");
  CHECK(summarized);
}

TEST_CASE("after a crash mid-sale, the restarted server tells the truth about the interrupted order",
          "[chaos]") {
  installation inst("e2e-crash");
  inst.start_eftd();
  auto order = order_no("C");
  {
    scripted_pad pad(inst.pad_port, "P01", "VP-0001");
    raw_client pos(inst.pos_port);
    start_sale_held_at_card(pos, pad, order, 900);
    inst.crash_eftd();  // while the customer holds the card: nothing was sent to the acquirer
  }
  inst.start_eftd();
  auto st = inst.pos("T01", {"status", "--order", order});
  CHECK(st.result.value("state", "") == "failed");
  REQUIRE(st.result.contains("last_result"));
  CHECK(st.result["last_result"]["reason"].value("code", "") == "server.restarted");
  CHECK(contains(st.result["last_result"]["reason"].value("cashier_text", ""), order));
}

TEST_CASE("a POS that logs in again takes its idle till over from a stale connection") {
  installation inst("e2e-relogin");
  inst.start_eftd();
  raw_client stale(inst.pos_port);
  stale.send(R"({"type":"login","v":1,"id":"a","till_id":"T01","version":1})"
             "\n");
  REQUIRE(stale.next().value_or(nlohmann::json{}).value("type", "") == "login_ok");
  raw_client fresh(inst.pos_port);
  fresh.send(R"({"type":"login","v":1,"id":"b","till_id":"T01","version":1})"
             "\n");
  auto ok = fresh.next();
  REQUIRE(ok.has_value());
  CHECK(ok->value("type", "") == "login_ok");
  // The stale connection is closed by the server: reading gives EOF, not a message.
  CHECK_FALSE(stale.next(5s).has_value());
  fresh.send(R"({"type":"heartbeat","v":1,"id":"h"})"
             "\n");
  auto hb = fresh.next();
  REQUIRE(hb.has_value());
  CHECK(hb->value("type", "") == "heartbeat_ack");
}

TEST_CASE(
    "one transaction per till: a second order on a busy till gets 'busy', the same order 'in_progress'") {
  installation inst("e2e-busy");
  inst.start_eftd();
  scripted_pad pad(inst.pad_port, "P01", "VP-0001");
  auto order = order_no("B");
  raw_client pos(inst.pos_port);
  start_sale_held_at_card(pos, pad, order, 500);
  // The first sale now waits for the customer.
  auto next_non_status = [&] {
    std::optional<nlohmann::json> m;
    while ((m = pos.next()) && m->value("type", "") == "status") {
    }
    return m;
  };
  pos.send(R"({"type":"sale","v":1,"id":"s2","order_no":")" + order +
           R"(x","amount":500,"currency":"PLN"})"
           "\n");
  auto busy = next_non_status();
  REQUIRE(busy.has_value());
  CHECK(busy->value("code", "") == "busy");
  CHECK(busy->value("id", "") == "s2");
  pos.send(R"({"type":"sale","v":1,"id":"s3","order_no":")" + order +
           R"(","amount":500,"currency":"PLN"})"
           "\n");
  auto again = next_non_status();
  REQUIRE(again.has_value());
  CHECK(again->value("code", "") == "in_progress");
  CHECK(again->value("order_no", "") == order);
}

TEST_CASE("two tills sell at the same time, each through its own pad, with distinct STANs") {
  installation inst("e2e-twotills");
  inst.start_eftd({"--set", "log.format=json"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  eftd::test::process pad2(
      eftd::test::bin_path("eftpad"),
      {"virtual", "--server", "127.0.0.1:" + std::to_string(inst.pad_port), "--pad-id", "P02", "--serial",
       "VP-0002", "--card", eftd::test::source_path("pinpad-firmware-shim/cards/mc-approve.toml"),
       "--dukpt-key", inst.dir + "/keys/pads/P02.dukpt.toml"},
      inst.dir + "/pad2.log");
  REQUIRE(pad2.wait_ready().has_value());
  auto o1 = order_no("M");
  auto o2 = order_no("N");
  std::vector<std::string> a1{"--port",     std::to_string(inst.pos_port),
                              "--till",     "T01",
                              "--json",     "sale",
                              "--order",    o1,
                              "--amount",   "11.00",
                              "--currency", "PLN"};
  std::vector<std::string> a2{"--port",     std::to_string(inst.pos_port),
                              "--till",     "T02",
                              "--json",     "sale",
                              "--order",    o2,
                              "--amount",   "12.00",
                              "--currency", "PLN"};
  eftd::test::process p1(eftd::test::bin_path("eft-pos-sim"), a1, inst.dir + "/pos1.log");
  eftd::test::process p2(eftd::test::bin_path("eft-pos-sim"), a2, inst.dir + "/pos2.log");
  // The final message is the last JSON line each simulator prints before it exits.
  auto final_message = [](eftd::test::process& p) {
    nlohmann::json last;
    while (auto l = p.read_line(60s))
      if (!l->empty() && l->front() == '{') last = nlohmann::json::parse(*l, nullptr, false);
    return last;
  };
  auto j1 = final_message(p1);
  auto j2 = final_message(p2);
  CHECK(j1.value("outcome", "") == "approved");
  CHECK(j2.value("outcome", "") == "approved");
  CHECK(j1.value("scheme", "") == "visa");
  CHECK(j2.value("scheme", "") == "mastercard");
  CHECK(j1.value("terminal_id", "") != j2.value("terminal_id", ""));
  // Each till's own terminal id; STANs may coincide across terminals, never within one.
  CHECK(j1.value("stan", "").size() == 6);
  CHECK(j2.value("stan", "").size() == 6);
  // The server's JSON-lines log: every line parses, and none carries a PAN.
  inst.eftd->stop();
  std::istringstream log(eftd::test::slurp(inst.dir + "/eftd.log"));
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    if (line.empty()) continue;
    ++lines;
    auto j = nlohmann::json::parse(line, nullptr, false);
    INFO(line.substr(0, 80));
    CHECK_FALSE(j.is_discarded());
    CHECK_FALSE(contains(line, test_pan));
    CHECK_FALSE(contains(line, "5413330089020011"));
  }
  CHECK(lines >= 5);
}
