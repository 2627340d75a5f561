// The chaos checkers (tests/support/chaos_check.hpp) on small fabricated runs: a journal made
// with the real journal writer, a history and a ledger file written by hand. A clean run
// passes every checker; each broken run is reported by the checker it breaks, naming the order.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "chaos_check.hpp"
#include "eftd/journal/writer.hpp"

namespace chaos = eftd::test::chaos;
namespace ej = eftd::journal;

namespace {

bool mentions(const chaos::violations& v, const std::string& text) {
  for (const auto& s : v)
    if (s.find(text) != std::string::npos) return true;
  return false;
}

std::string joined(const chaos::violations& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// A run: journal, history and ledger in a temp dir.
class run {
 public:
  run() {
    auto pattern = (std::filesystem::temp_directory_path() / "eftd-chaos-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
    auto w = ej::writer::open(db(), 64);
    REQUIRE(w);
    writer_ = std::move(*w);
  }
  ~run() {
    if (writer_) writer_->close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string db() const { return (dir_ / "journal.db").string(); }
  std::string history() const { return (dir_ / "history.jsonl").string(); }
  std::string ledger() const { return (dir_ / "ledger.jsonl").string(); }

  // A sale order with its payment and one 0200 (state, response code; "" = none).
  void sale(const std::string& till, const std::string& order_no, const std::string& order_state, int stan,
            const std::string& msg_state, const std::string& response, std::int64_t amount = 1000) {
    const std::string order_id = "O-" + order_no, op_id = "P-" + order_no, msg_id = "M-" + order_no;
    ej::batch b;
    b.records.push_back(ej::order_created{order_id, "M001", "S01", till, order_no, "2026-11-23", "sale",
                                          amount, "PLN", order_state, 1});
    ej::operation_created op;
    op.op_id = op_id;
    op.order_id = order_id;
    op.kind = "payment";
    op.state = order_state;
    op.amount_minor = amount;
    op.currency = "PLN";
    op.created_ms = 1;
    b.records.push_back(op);
    ej::acquirer_message_written m;
    m.msg_id = msg_id;
    m.op_id = op_id;
    m.acquirer = "sim";
    m.terminal_id = "LT000001";
    m.mti = "0200";
    m.stan = static_cast<std::uint32_t>(stan);
    m.local_datetime = "1123150000";
    m.amount_minor = amount;
    m.currency = "PLN";
    m.state = "intent";
    m.created_ms = 1;
    b.records.push_back(m);
    ej::acquirer_message_updated u;
    u.msg_id = msg_id;
    u.state = msg_state;
    if (!response.empty()) u.response_code = response;
    u.updated_ms = 2;
    b.records.push_back(u);
    REQUIRE(writer_->submit_sync(std::move(b)));
  }

  // An acknowledged 0400 reversing the sale's 0200.
  void reversal(const std::string& order_no, int stan) {
    ej::batch b;
    ej::acquirer_message_written m;
    m.msg_id = "R-" + order_no;
    m.op_id = "P-" + order_no;
    m.original_msg_id = "M-" + order_no;
    m.acquirer = "sim";
    m.terminal_id = "LT000001";
    m.mti = "0400";
    m.stan = static_cast<std::uint32_t>(stan);
    m.local_datetime = "1123150001";
    m.currency = "PLN";
    m.state = "acknowledged";
    m.created_ms = 3;
    b.records.push_back(m);
    REQUIRE(writer_->submit_sync(std::move(b)));
  }

  void history_line(const std::string& till, const std::string& order, const std::string& type,
                    const std::string& value, const std::string& op = "sale") {
    std::ofstream(history(), std::ios::app)
        << R"({"t_ms":1,"till":")" << till << R"(","op":")" << op << R"(","order":")" << order
        << R"(","type":")" << type << R"(","value":")" << value << "\"}\n";
  }

  void ledger_line(int stan, const std::string& code, bool reversed, std::int64_t amount = 1000) {
    const bool ok = code == "00";
    char stan6[8];
    std::snprintf(stan6, sizeof stan6, "%06d", stan);
    std::ofstream(ledger(), std::ios::app)
        << R"({"key":"LT000001|)" << stan6 << R"(|1123150000","terminal":"LT000001","stan":")" << stan6
        << R"(","transmission":"1123150000","local_datetime":"1123150000","mti":"0200","amount":)" << amount
        << R"(,"currency":"985","response_code":")" << code << R"(","approved":)" << (ok ? "true" : "false")
        << R"(,"answered":true,"reversed":)" << (reversed ? "true" : "false")
        << R"(,"credit":false,"settles":)" << (ok ? "true" : "false")
        << R"(,"merchant_id":"DEMO00000000001","rrn":"1","auth_code":"A"})"
        << "\n";
  }

  // Journal and files as a clean run leaves them: an approval, a decline, a reversed in-doubt.
  void clean_run() {
    sale("L00001", "G-1", "approved", 1, "answered", "00");
    history_line("L00001", "G-1", "invoke", "");
    history_line("L00001", "G-1", "ok", "approved");
    ledger_line(1, "00", false);
    sale("L00002", "G-2", "declined", 2, "answered", "05");
    history_line("L00002", "G-2", "invoke", "");
    history_line("L00002", "G-2", "ok", "declined");
    ledger_line(2, "05", false);
    // eftd died with the 0200 sent; after restart it reversed it; the till asked.
    sale("L00003", "G-3", "reversed", 3, "reversed", "");
    reversal("G-3", 4);
    history_line("L00003", "G-3", "invoke", "");
    history_line("L00003", "G-3", "unknown", "loadgen.disconnected");
    std::ofstream(history(), std::ios::app)
        << R"({"t_ms":2,"till":"L00003","op":"sale","order":"G-3","type":"ok","value":"reversed","via":"status"})"
        << "\n";
    ledger_line(3, "00", true);
  }

  void close() {
    writer_->close();
    writer_.reset();
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<ej::writer> writer_;
};

}  // namespace

TEST_CASE("chaos checkers pass a clean run", "[chaos]") {
  run r;
  r.clean_run();
  r.close();
  const auto v = chaos::check_all(r.history(), r.db(), r.ledger());
  INFO(joined(v));
  CHECK(v.empty());
}

TEST_CASE("chaos checker 1 reports an approval the POS saw that the journal lost or changed", "[chaos]") {
  run r;
  r.clean_run();
  r.history_line("L00004", "G-4", "ok", "approved");  // no such order
  r.sale("L00005", "G-5", "failed", 5, "failed", "");
  r.history_line("L00005", "G-5", "ok", "approved");  // the journal says failed
  r.close();
  const auto v = chaos::check_pos_approvals(r.history(), r.db());
  INFO(joined(v));
  CHECK(v.size() == 2);
  CHECK(mentions(v, "till L00004 order G-4: the POS saw approved, the journal has no such order"));
  CHECK(mentions(v, "till L00005 order G-5: the POS saw approved, the journal says failed"));
}

TEST_CASE("chaos checker 1 accepts a cancelled approval the till asked to cancel", "[chaos]") {
  run r;
  r.sale("L00001", "G-1", "cancelled", 1, "reversed", "00");
  r.history_line("L00001", "G-1", "ok", "approved");
  r.history_line("L00001", "G-1", "invoke", "", "cancel");
  r.history_line("L00001", "G-1", "ok", "cancelled", "cancel");
  r.close();
  CHECK(chaos::check_pos_approvals(r.history(), r.db()).empty());
}

TEST_CASE("chaos checker 2 reports a double authorization and money taken with no record", "[chaos]") {
  run r;
  r.clean_run();
  r.ledger_line(7, "00", false);  // approved at the acquirer, no journal message has STAN 7
  r.close();
  auto v = chaos::check_no_double_authorization(r.db(), r.ledger());
  INFO(joined(v));
  CHECK(v.size() == 1);
  CHECK(mentions(
      v, "terminal LT000001 STAN 000007 at 1123150000 approved and not reversed, but no journal order"));
  CHECK(mentions(chaos::check_all(r.history(), r.db(), r.ledger()), "checker 2: "));

  run twice;
  twice.sale("L00001", "G-1", "approved", 1, "answered", "00");
  twice.ledger_line(1, "00", false);
  twice.ledger_line(1, "00", false);  // the same terminal, STAN and date-time authorized again
  twice.close();
  v = chaos::check_no_double_authorization(twice.db(), twice.ledger());
  INFO(joined(v));
  CHECK(mentions(v, "STAN 000001 at 1123150000 authorized twice"));
  CHECK(mentions(v, "till L00001 order G-1: more than one approved, unreversed authorization"));
}

TEST_CASE("chaos checker 3 reports in-doubt requests left open or approved and never reversed", "[chaos]") {
  run r;
  r.clean_run();
  r.sale("L00006", "G-6", "in_progress", 6, "sent", "");  // never resolved
  r.sale("L00007", "G-7", "failed", 7, "timeout", "");
  r.sale("L00008", "G-8", "failed", 8, "failed", "");  // eftd gave up, the acquirer approved
  r.ledger_line(8, "00", false);
  r.close();
  const auto v = chaos::check_in_doubt_resolved(r.db(), r.ledger());
  INFO(joined(v));
  CHECK(v.size() == 3);
  CHECK(mentions(v,
                 "till L00006 order G-6 (terminal LT000001 STAN 6, 0200): still in doubt after the queue "
                 "drained (state sent)"));
  CHECK(mentions(v, "till L00007 order G-7 (terminal LT000001 STAN 7, 0200): still in doubt"));
  CHECK(mentions(v,
                 "till L00008 order G-8 (terminal LT000001 STAN 8, 0200): approved at the acquirer, no "
                 "approval recorded"));
}

TEST_CASE("chaos checker 4 reports per-terminal totals that differ from the ledger", "[chaos]") {
  run r;
  r.clean_run();
  // The journal took a reversal the acquirer never saw: the ledger still settles the sale.
  r.sale("L00009", "G-9", "reversed", 9, "answered", "00", 2500);
  r.reversal("G-9", 10);
  r.ledger_line(9, "00", false, 2500);
  r.close();
  const auto v = chaos::check_ledger_totals(r.db(), r.ledger());
  INFO(joined(v));
  REQUIRE(v.size() == 1);
  CHECK(v.front() == "terminal LT000001: journal approved - reversed = 1000, acquirer ledger settles 3500");
}

TEST_CASE("chaos checker 5 reports a damaged journal", "[chaos]") {
  run r;
  r.clean_run();
  r.close();
  CHECK(chaos::check_integrity(r.db()).empty());
  // Overwrite the middle of the database file (every page but the header): no longer a
  // well-formed b-tree.
  {
    std::fstream f(r.db(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    const std::string junk(8192, '\x5A');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const auto v = chaos::check_integrity(r.db());
  INFO(joined(v));
  CHECK_FALSE(v.empty());
  CHECK(mentions(v, "journal " + r.db()));
}

TEST_CASE("chaos checkers report unreadable inputs instead of passing", "[chaos]") {
  run r;
  r.clean_run();
  r.close();
  CHECK(mentions(chaos::check_pos_approvals(r.history() + ".missing", r.db()), "cannot be read"));
  CHECK(mentions(chaos::check_ledger_totals(r.db(), r.ledger() + ".missing"), "cannot be read"));
  std::ofstream(r.history(), std::ios::app) << "{\"t_ms\":3,\"till\":\"L0\n";
  CHECK(mentions(chaos::check_pos_approvals(r.history(), r.db()), "is not a JSON object"));
}
