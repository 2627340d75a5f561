// GET /metrics end to end: eftd counts what the POS was told, times the stages of a real sale,
// shows open connections and the store-and-forward depth, and answers bad HTTP clearly.
#include <catch2/catch.hpp>
#include <regex>

#include "e2e_util.hpp"

using namespace eftd::test;

TEST_CASE("metrics count approved and declined sales and time their stages", "[e2e]") {
  installation inst("e2e-metrics");
  inst.start_eftd({"--set", "listen.metrics.port=0"});
  REQUIRE(inst.metrics_port > 0);
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto before = get_metrics(inst.metrics_port);
  CHECK(before.starts_with("HTTP/1.1 200"));
  CHECK(before.find("text/plain; version=0.0.4") != std::string::npos);
  CHECK(sample(before, "eftd_transactions_total{kind=\"sale\",outcome=\"approved\"}") == -1);

  REQUIRE(inst.pos("T01", {"sale", "--order", order_no("M"), "--amount", "12.00", "--currency", "PLN"})
              .result.value("outcome", "") == "approved");
  // The simulator declines amounts ending in 51 (insufficient funds).
  REQUIRE(inst.pos("T01", {"sale", "--order", order_no("N"), "--amount", "12.51", "--currency", "PLN"})
              .result.value("outcome", "") == "declined");

  const auto text = get_metrics(inst.metrics_port);
  CHECK(sample(text, "eftd_transactions_total{kind=\"sale\",outcome=\"approved\"}") == 1);
  CHECK(sample(text, "eftd_transactions_total{kind=\"sale\",outcome=\"declined\"}") == 1);
  CHECK(sample(text, "eftd_stage_duration_seconds_count{stage=\"total\"}") == 2);
  CHECK(sample(text, "eftd_stage_duration_seconds_count{stage=\"card_read\"}") == 2);
  CHECK(sample(text, "eftd_stage_duration_seconds_count{stage=\"acquirer\"}") >= 2);
  CHECK(sample(text, "eftd_stage_duration_seconds_bucket{stage=\"acquirer\",le=\"+Inf\"}") >= 2);
  CHECK(sample(text, "eftd_stage_duration_seconds_count{stage=\"journal_commit\"}") > 0);
  CHECK(sample(text, "eftd_journal_commits_total") > 0);
  CHECK(sample(text, "eftd_open_connections{kind=\"pad\"}") == 1);
  // Each sale asked the pad for a card at least once and showed it something.
  CHECK(sample(text, "eftd_pad_commands_total{command=\"read_card\"}") >= 2);
  CHECK(sample(text, "eftd_pad_commands_total{command=\"display\"}") >= 2);
  CHECK(sample(text, "eftd_open_connections{kind=\"metrics\"}") == 1);  // this scrape
  CHECK(sample(text, "eftd_saf_queue_depth{acquirer=\"sim\"}") == 0);
  CHECK(sample(text, "eftd_replication_lag_seconds") == 0);
  // Every sample line is "name{labels} value" or "name value"; comments are HELP/TYPE.
  const auto body = text.substr(text.find("\r\n\r\n") + 4);
  std::regex line_re(R"(^(# (HELP|TYPE) .+|[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+)$)");
  std::size_t start = 0, lines = 0;
  while (start < body.size()) {
    auto nl = body.find('\n', start);
    if (nl == std::string::npos) nl = body.size();
    const auto line = body.substr(start, nl - start);
    if (!line.empty()) {
      ++lines;
      CHECK(std::regex_match(line, line_re));
    }
    start = nl + 1;
  }
  CHECK(lines > 20);
  CHECK(text.find(test_pan) == std::string::npos);
}

TEST_CASE("the metrics listener answers other paths, methods and garbage clearly", "[e2e][security]") {
  installation inst("e2e-metrics-bad", false);
  inst.start_eftd({"--set", "listen.metrics.port=0"});
  REQUIRE(inst.metrics_port > 0);
  CHECK(http_exchange(inst.metrics_port, "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
  auto post = http_exchange(inst.metrics_port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.starts_with("HTTP/1.1 405"));
  CHECK(post.find("Allow: GET, HEAD") != std::string::npos);
  CHECK(http_exchange(inst.metrics_port, "\x01\x02 not http at all\r\n\r\n").starts_with("HTTP/1.1 400"));
  // A client that says nothing is dropped (5 s), and eftd keeps serving.
  {
    raw_client silent(inst.metrics_port);
    CHECK(silent.read_some(8s).empty());
    CHECK(silent.at_eof());
  }
  CHECK(get_metrics(inst.metrics_port).starts_with("HTTP/1.1 200"));
}

TEST_CASE("a metrics listener on a non-loopback address is refused at start-up", "[e2e]") {
  installation inst("e2e-metrics-addr", false);
  CHECK_THROWS(inst.start_eftd({"--set", "listen.metrics.address=0.0.0.0"}));
}
