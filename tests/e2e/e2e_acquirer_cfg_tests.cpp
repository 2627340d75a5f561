// Acquirer configuration end to end: the link options of [[acquirers]] (dialect, framing with a
// TPDU, sign-on) reach the wire, and a route's fallback acquirer takes a sale only when the
// primary was never reached, never after a request was sent to it.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "acquirer_gateway.hpp"
#include "e2e_util.hpp"
#include "eftd/acq/codec.hpp"
#include "eftd/acq/dialect.hpp"
#include "eftd/acq/framing.hpp"
#include "eftd/core/config.hpp"
#include "free_port.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

// A second simulator next to the installation's own, on a free port.
struct extra_sim {
  explicit extra_sim(const installation& inst, const std::string& name, std::vector<std::string> args = {}) {
    std::vector<std::string> full{"--port", "0"};
    full.insert(full.end(), args.begin(), args.end());
    proc.emplace(bin_path("eft-acquirer-sim"), full, inst.dir + "/" + name + ".log");
    auto ready = proc->wait_ready();
    REQUIRE(ready.has_value());
    port = json_port(*ready, "port");
  }
  std::optional<process> proc;
  int port = 0;
};

std::vector<eftd::journal::acquirer_message_row> messages_with_mti(const eftd::journal::order_view& v,
                                                                   const std::string& mti) {
  std::vector<eftd::journal::acquirer_message_row> out;
  for (const auto& m : v.messages)
    if (m.mti == mti) out.push_back(m);
  return out;
}

const eftd::journal::event_row* find_event(const eftd::journal::order_view& v, const std::string& kind) {
  for (const auto& e : v.events)
    if (e.kind == kind) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("a sale is approved over iso87-bcd with bcd2+tpdu framing, routed by scheme", "[acquirer][e2e]") {
  installation inst("e2e-acqcfg-bcd", true, {"--dialect", "iso87-bcd", "--framing", "bcd2+tpdu"});
  // The demo's own acquirer 'sim' (iso87-ascii) keeps the default route; visa cards go to 'bcd'.
  inst.extra_config = "[[acquirers]]\nname = \"bcd\"\nport = " + std::to_string(inst.acquirer_port) +
                      "\ndialect = \"iso87-bcd\"\nframing = \"bcd2+tpdu\"\ntpdu_destination = \"0001\"\n"
                      "tpdu_source = \"0002\"\n\n[[routes]]\nscheme = \"visa\"\nacquirer = \"bcd\"\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("BCD");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "12.50", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("auth_code", "").size() == 6);
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*inst.acquirer);
  INFO(summary);
  CHECK(summary_number(summary, "approved") == 1);
  CHECK(summary_number(summary, "malformed") == 0);
  const auto v = journal_view(inst, order);
  const auto sales = messages_with_mti(v, "0200");
  REQUIRE(sales.size() == 1);
  CHECK(sales.front().acquirer == "bcd");
  CHECK(sales.front().response_code == std::optional<std::string>{"00"});
}

TEST_CASE("sign_on = true signs on with 0800 before the first sale", "[acquirer][e2e]") {
  installation inst("e2e-acqcfg-signon");
  inst.extra_config = "[[acquirers]]\nname = \"signon\"\nport = " + std::to_string(inst.acquirer_port) +
                      "\nsign_on = true\n\n[[routes]]\nbin_prefix = \"4761\"\nacquirer = \"signon\"\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("SO");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "13.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*inst.acquirer);
  INFO(summary);
  CHECK(summary_number(summary, "network") >= 1);
  CHECK(summary_number(summary, "approved") == 1);
}

TEST_CASE("an unreachable primary acquirer: the sale goes to the route's fallback, journaled",
          "[acquirer][e2e]") {
  // The installation's simulator is the fallback ('sim'); the primary's port has no listener.
  installation inst("e2e-acqcfg-fallback");
  inst.extra_config = "[[acquirers]]\nname = \"down\"\nport = " + std::to_string(free_port()) +
                      "\nconnect_timeout_ms = 2000\nreconnect_backoff_ms = 60000\n"
                      "reconnect_backoff_max_ms = 60000\n\n"
                      "[[routes]]\nbin_prefix = \"4761\"\nacquirer = \"down\"\nfallback = \"sim\"\n";
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  // The first sale finds the connection refused; the second finds the primary in its backoff.
  const auto first = order_no("FB");
  const auto second = order_no("FB");
  for (const auto& order : {first, second}) {
    auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "14.00", "--currency", "PLN"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.result.value("outcome", "") == "approved");
  }
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*inst.acquirer);
  INFO(summary);
  CHECK(summary_number(summary, "approved") == 2);
  for (const auto& order : {first, second}) {
    INFO(order);
    const auto v = journal_view(inst, order);
    const auto* ev = find_event(v, "routed_to_fallback");
    REQUIRE(ev != nullptr);
    CHECK(contains(ev->reason, "routed to fallback sim"));
    CHECK(contains(ev->reason, "down unreachable"));
    const auto sales = messages_with_mti(v, "0200");
    REQUIRE(sales.size() == 2);
    CHECK(sales[0].acquirer == "down");
    CHECK(sales[0].state == "failed");
    CHECK(sales[1].acquirer == "sim");
    CHECK(sales[1].response_code == std::optional<std::string>{"00"});
    CHECK(messages_with_mti(v, "0400").empty());
  }
}

TEST_CASE("a sale that timed out at the primary is never sent to the fallback: it is reversed",
          "[acquirer][e2e]") {
  // The primary ('sim') never answers amounts ending in 77; the fallback must see nothing.
  installation inst("e2e-acqcfg-nofallback", true, {"--no-reply-amount-suffix", "77"});
  extra_sim backup(inst, "backup");
  inst.extra_config = "[[acquirers]]\nname = \"backup\"\nport = " + std::to_string(backup.port) +
                      "\n\n[[routes]]\nbin_prefix = \"4761\"\nacquirer = \"sim\"\nfallback = \"backup\"\n";
  inst.start_eftd({"--set", "acquirers.sim.response_timeout_ms=500"});
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("NF");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "10.77", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "failed");
  CHECK(r.result["reason"].value("code", "") == "acquirer.timeout");
  inst.stop_pad();
  inst.eftd->stop();
  const auto summary = stop_and_summary(*backup.proc);
  INFO(summary);
  CHECK(summary_number(summary, "requests") == 0);
  CHECK(summary_number(summary, "reversals") == 0);
  const auto v = journal_view(inst, order);
  CHECK(find_event(v, "routed_to_fallback") == nullptr);
  const auto sales = messages_with_mti(v, "0200");
  REQUIRE(sales.size() == 1);
  CHECK(sales.front().acquirer == "sim");
  const auto reversals = messages_with_mti(v, "0400");
  REQUIRE(reversals.size() == 1);
  CHECK(reversals.front().acquirer == "sim");
}

TEST_CASE("start-up check: an unknown dialect or framing names the acquirer's key", "[acquirer]") {
  eftd::config::server_config cfg;
  cfg.acquirers.resize(3);
  cfg.acquirers[0].name = "ok";
  cfg.acquirers[0].dialect = "iso87-bcd";
  cfg.acquirers[0].framing = "bcd2+tpdu";
  cfg.acquirers[1].name = "typo";
  cfg.acquirers[1].dialect = "iso87-bdc";
  cfg.acquirers[2].name = "frame";
  cfg.acquirers[2].framing = "binary3";
  auto st = eftd::server::check_acquirers(cfg);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.err().code == "config.invalid");
  INFO(st.err().message);
  CHECK(contains(st.err().message, "acquirers[1].dialect: unknown dialect 'iso87-bdc' (known: "));
  CHECK(contains(st.err().message, "iso87-ascii"));
  CHECK(contains(st.err().message, "acquirers[2].framing: "));
  CHECK_FALSE(contains(st.err().message, "acquirers[0]"));
  cfg.acquirers.resize(1);
  CHECK(eftd::server::check_acquirers(cfg).has_value());
}

TEST_CASE("the simulator answers a TPDU request with the TPDU's addresses swapped", "[acquirer]") {
  installation inst("e2e-acqcfg-tpdu", true, {"--dialect", "iso87-bcd", "--framing", "bcd2+tpdu"});
  const auto* d = eftd::acq::find_dialect("iso87-bcd");
  REQUIRE(d != nullptr);
  auto opts = eftd::acq::parse_framing("bcd2+tpdu");
  REQUIRE(opts.has_value());
  opts->tpdu->destination = 0x0001;  // the host's NII
  opts->tpdu->source = 0x0123;       // ours
  auto codec = eftd::acq::frame_codec::create(*opts);
  REQUIRE(codec.has_value());
  eftd::acq::message echo("0800");
  echo.set(7, "0615123510");
  echo.set(11, "000042");
  echo.set(70, "301");
  auto packed = eftd::acq::pack(*d, echo);
  REQUIRE(packed.has_value());
  auto framed = codec->encode(*packed);
  REQUIRE(framed.has_value());
  raw_client c(inst.acquirer_port);
  c.send_bytes(*framed);
  eftd::acq::frame_reader reader(*codec);
  std::optional<eftd::bytes> answer;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!answer && std::chrono::steady_clock::now() < deadline) {
    const auto chunk = c.read_some(2s);
    if (chunk.empty()) break;
    reader.feed(eftd::as_bytes(chunk));
    auto next = reader.next();
    REQUIRE(next.has_value());
    answer = std::move(*next);
  }
  REQUIRE(answer.has_value());
  REQUIRE(reader.last_tpdu().has_value());
  CHECK(reader.last_tpdu()->to_string() == eftd::acq::tpdu_header{0x60, 0x0123, 0x0001}.to_string());
  auto resp = eftd::acq::unpack(*d, *answer);
  REQUIRE(resp.has_value());
  CHECK(resp->mti() == "0810");
  CHECK(resp->get_or(39, "") == "00");
}

namespace {

// Runs eftctl with `args` to completion; returns its exit code and what it printed.
std::pair<int, std::string> eftctl_run(installation& inst, const std::string& tag,
                                       std::vector<std::string> args) {
  const std::string log = inst.dir + "/eftctl-" + tag + ".log";
  process p(bin_path("eftctl"), std::move(args), log);
  const int rc = p.wait_exit(30s).value_or(-1);
  return {rc, slurp(log)};
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("the per-link message trace is switched on and off at run time, card data masked", "[acquirer]") {
  installation inst("e2e-trace");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const std::string socket = inst.dir + "/admin.sock";
  auto on = eftctl_run(inst, "on", {"iso8583", "trace", "--socket", socket, "--acquirer", "sim", "on"});
  CHECK(on.first == 0);
  REQUIRE(inst.pos("T01", {"sale", "--order", order_no("TR"), "--amount", "3.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");
  auto off = eftctl_run(inst, "off", {"iso8583", "trace", "--socket", socket, "--acquirer", "sim", "off"});
  CHECK(off.first == 0);
  const auto traced = count_of(slurp(inst.dir + "/eftd.log"), "trace ->");
  CHECK(traced >= 1);
  REQUIRE(inst.pos("T01", {"sale", "--order", order_no("TS"), "--amount", "4.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");
  const auto log = slurp(inst.dir + "/eftd.log");
  CHECK(count_of(log, "trace ->") == traced);  // nothing more once it is off
  CHECK(contains(log, "<card data"));
  CHECK_FALSE(contains(log, test_pan));
  auto bad = eftctl_run(inst, "bad", {"iso8583", "trace", "--socket", socket, "--acquirer", "nope", "on"});
  CHECK(bad.first == 1);
  CHECK(contains(bad.second, "no link for acquirer 'nope'"));
}
