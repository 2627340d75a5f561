// The failover witness (server/src/witness.hpp): the pure decision core with injected time
// (leases, promotion, handover, deposing), the wire codec, the durable state file, and the real
// `eftd witness` process over TCP (framing limits, kill -9 and restart keeping the epoch).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "witness.hpp"

using namespace eftd;
using namespace eftd::server;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

witness_config test_config() {
  witness_config c;
  c.nodes = {"a", "b"};
  c.lease_ms = 3000;
  c.promote_after_ms = 6000;
  c.max_p99_ms = 2000;
  c.max_error_ratio = 0.2;
  c.unhealthy_for_ms = 10000;
  return c;
}

constexpr std::int64_t t0 = 1'000'000;  // an arbitrary steady-clock origin

witness_core make_core(witness_durable s = {1, "a", true}) {
  return witness_core(test_config(), std::move(s), t0);
}

witness_request renew(std::string node, std::uint64_t epoch, bool in_sync = true, double p99 = 10,
                      std::uint64_t requests = 100, std::uint64_t errors = 0) {
  witness_request r;
  r.op = witness_op::renew;
  r.node = std::move(node);
  r.epoch = epoch;
  r.standby_in_sync = in_sync;
  r.p99_ms = p99;
  r.requests = requests;
  r.errors = errors;
  return r;
}

witness_request watch(std::string node, std::uint64_t epoch) {
  witness_request r;
  r.op = witness_op::watch;
  r.node = std::move(node);
  r.epoch = epoch;
  r.applied_seq = 7;
  return r;
}

witness_request promote(std::string node, std::uint64_t epoch, bool force = false) {
  witness_request r;
  r.op = witness_op::promote;
  r.node = std::move(node);
  r.epoch = epoch;
  r.force = force;
  return r;
}

witness_request handover(std::string node, std::uint64_t epoch, std::string to) {
  witness_request r;
  r.op = witness_op::handover;
  r.node = std::move(node);
  r.epoch = epoch;
  r.to = std::move(to);
  return r;
}

witness_request state_request() {
  witness_request r;
  r.op = witness_op::state;
  return r;
}

// The refusal code, or "ok".
std::string code_of(const witness_core::outcome& o) {
  return o.answer.ok ? "ok" : o.answer.code;
}

}  // namespace

// ---- core: leases ------------------------------------------------------------------------------

TEST_CASE("witness core: the active renews its lease, others are refused") {
  auto core = make_core();
  auto ok = core.handle(renew("a", 1), t0 + 100);
  CHECK(code_of(ok) == "ok");
  CHECK(ok.answer.epoch == 1);
  CHECK(ok.answer.active == "a");
  CHECK(ok.answer.lease_ms == std::optional<std::uint32_t>{3000});
  CHECK_FALSE(ok.state_changed);

  auto standby = core.handle(renew("b", 1), t0 + 200);
  CHECK(code_of(standby) == "not_active");
  CHECK(standby.answer.epoch == 1);
  CHECK(standby.answer.active == "a");
  CHECK(code_of(core.handle(renew("a", 2), t0 + 300)) == "not_active");
  CHECK(code_of(core.handle(renew("a", 0), t0 + 300)) == "not_active");
  CHECK(code_of(core.handle(renew("c", 1), t0 + 300)) == "unknown_node");
}

TEST_CASE("witness core: a renew that flips standby_in_sync changes the durable state") {
  auto core = make_core();
  auto out = core.handle(renew("a", 1, /*in_sync=*/false), t0);
  CHECK(code_of(out) == "ok");
  CHECK(out.state_changed);
  CHECK(core.durable() == witness_durable{1, "a", false});
  CHECK_FALSE(core.handle(renew("a", 1, false), t0 + 1000).state_changed);
  CHECK(core.handle(renew("a", 1, true), t0 + 2000).state_changed);
  CHECK(core.durable().standby_in_sync);
}

// ---- core: promotion ---------------------------------------------------------------------------

TEST_CASE("witness core: promote is refused while the lease is fresh, granted after promote_after_ms") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(renew("a", 1), t0 + 1000)) == "ok");
  // Last grant at t0+1000: promote possible from t0+7000 on.
  auto early = core.handle(promote("b", 1), t0 + 6999);
  CHECK(code_of(early) == "active_alive");
  CHECK_FALSE(early.state_changed);
  CHECK(core.durable().epoch == 1);
  REQUIRE(early.log.size() == 1);
  CHECK(early.log[0].warn);

  auto granted = core.handle(promote("b", 1), t0 + 7000);
  CHECK(code_of(granted) == "ok");
  CHECK(granted.state_changed);
  CHECK(granted.answer.epoch == 2);
  CHECK(granted.answer.active == "b");
  CHECK(core.durable().epoch == 2);
  CHECK(core.durable().active == "b");
  REQUIRE_FALSE(granted.log.empty());
  CHECK(granted.log[0].text.find("epoch 1 -> 2") != std::string::npos);

  // The old active is fenced: its renewals on epoch 1 are refused with the new epoch.
  auto fenced = core.handle(renew("a", 1), t0 + 7001);
  CHECK(code_of(fenced) == "not_active");
  CHECK(fenced.answer.epoch == 2);
  CHECK(fenced.answer.active == "b");
  CHECK(code_of(core.handle(renew("b", 2), t0 + 7002)) == "ok");
}

TEST_CASE("witness core: without any renew, promote_after_ms counts from the witness start") {
  auto core = make_core();
  CHECK(code_of(core.handle(promote("b", 1), t0 + 5999)) == "active_alive");
  CHECK(code_of(core.handle(promote("b", 1), t0 + 6000)) == "ok");
}

TEST_CASE("witness core: after a promotion the new active gets promote_after_ms to start renewing") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(promote("b", 1), t0 + 6000)) == "ok");
  // The new standby (a) is not known to be in sync until b reports it.
  CHECK_FALSE(core.durable().standby_in_sync);
  REQUIRE(code_of(core.handle(renew("b", 2, true), t0 + 6500)) == "ok");
  CHECK(code_of(core.handle(promote("a", 2), t0 + 12499)) == "active_alive");
  CHECK(code_of(core.handle(promote("a", 2), t0 + 12500)) == "ok");
  CHECK(core.durable() == witness_durable{3, "a", false});
}

TEST_CASE("witness core: promote is refused while the standby is behind") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(renew("a", 1, /*in_sync=*/false), t0)) == "ok");
  auto out = core.handle(promote("b", 1), t0 + 60000);
  CHECK(code_of(out) == "standby_behind");
  CHECK_FALSE(out.state_changed);
  CHECK(core.durable().epoch == 1);
  // Fresh lease beats an out-of-sync standby in the report: the first reason is the lease.
  REQUIRE(code_of(core.handle(renew("a", 1, false), t0 + 60001)) == "ok");
  CHECK(code_of(core.handle(promote("b", 1), t0 + 60002)) == "active_alive");
}

TEST_CASE("witness core: force skips the lease and sync conditions, not the epoch or node checks") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(renew("a", 1, /*in_sync=*/false), t0)) == "ok");
  CHECK(code_of(core.handle(promote("b", 0, true), t0 + 1)) == "stale_epoch");
  CHECK(code_of(core.handle(promote("a", 1, true), t0 + 1)) == "bad_request");
  CHECK(code_of(core.handle(promote("z", 1, true), t0 + 1)) == "unknown_node");
  auto out = core.handle(promote("b", 1, true), t0 + 1);
  CHECK(code_of(out) == "ok");
  CHECK(out.answer.epoch == 2);
  CHECK(out.answer.active == "b");
  REQUIRE_FALSE(out.log.empty());
  CHECK(out.log[0].text.find("force") != std::string::npos);
}

TEST_CASE("witness core: stale epochs and unknown nodes are refused with the current state") {
  auto core = make_core({7, "a", true});
  auto stale = core.handle(promote("b", 6), t0 + 100000);
  CHECK(code_of(stale) == "stale_epoch");
  CHECK(stale.answer.epoch == 7);
  CHECK(stale.answer.active == "a");
  CHECK(code_of(core.handle(promote("b", 8), t0 + 100000)) == "stale_epoch");
  CHECK(code_of(core.handle(handover("a", 6, "b"), t0)) == "stale_epoch");
  CHECK(code_of(core.handle(watch("c", 7), t0)) == "unknown_node");
  CHECK(code_of(core.handle(promote("c", 7, true), t0)) == "unknown_node");
  CHECK(code_of(core.handle(handover("c", 7, "a"), t0)) == "unknown_node");
  CHECK(core.durable().epoch == 7);
}

TEST_CASE("witness core: a promote answered but lost is retried and learns it won") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(promote("b", 1), t0 + 6000)) == "ok");
  auto retry = core.handle(promote("b", 1), t0 + 6001);
  CHECK(code_of(retry) == "stale_epoch");
  CHECK(retry.answer.epoch == 2);
  CHECK(retry.answer.active == "b");
}

TEST_CASE("witness core: the epoch never decreases over any sequence") {
  auto core = make_core();
  std::uint64_t last = core.durable().epoch;
  std::int64_t now = t0;
  const std::vector<witness_request> script = {
      renew("a", 1),         promote("b", 1),       promote("b", 1, true), renew("b", 2),
      handover("b", 2, "a"), renew("a", 3),         promote("b", 2, true), promote("b", 3, true),
      handover("a", 4, "b"), promote("a", 4, true), renew("b", 5),         handover("b", 5, "a")};
  for (const auto& r : script) {
    now += 1000;
    core.handle(r, now);
    CHECK(core.durable().epoch >= last);
    last = core.durable().epoch;
  }
  CHECK(last == 5);
}

// ---- core: handover and watch ------------------------------------------------------------------

TEST_CASE("witness core: planned handover from the active is granted at once") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(renew("a", 1), t0)) == "ok");
  CHECK(code_of(core.handle(handover("b", 1, "a"), t0 + 1)) == "not_active");
  CHECK(code_of(core.handle(handover("a", 1, "a"), t0 + 1)) == "bad_request");
  CHECK(code_of(core.handle(handover("a", 1, "zz"), t0 + 1)) == "unknown_node");
  auto out = core.handle(handover("a", 1, "b"), t0 + 2);
  CHECK(code_of(out) == "ok");
  CHECK(out.state_changed);
  CHECK(out.answer.epoch == 2);
  CHECK(out.answer.active == "b");
  CHECK(code_of(core.handle(renew("a", 1), t0 + 3)) == "not_active");
}

TEST_CASE("witness core: watch answers the lease age and the current epoch") {
  auto core = make_core();
  REQUIRE(code_of(core.handle(renew("a", 1), t0 + 1000)) == "ok");
  auto w = core.handle(watch("b", 1), t0 + 2500);
  CHECK(code_of(w) == "ok");
  CHECK(w.answer.active_lease_age_ms == std::optional<std::int64_t>{1500});
  CHECK(w.answer.deposed == std::optional<bool>{false});
  CHECK_FALSE(w.state_changed);
  // A node on an old epoch still gets an answer: that is how it learns the new one.
  auto old = core.handle(watch("b", 0), t0 + 2600);
  CHECK(code_of(old) == "ok");
  CHECK(old.answer.epoch == 1);
}

TEST_CASE("witness core: state reports the whole picture") {
  auto core = make_core({4, "b", true});
  auto s0 = core.handle(state_request(), t0);
  CHECK(code_of(s0) == "ok");
  CHECK(s0.answer.epoch == 4);
  CHECK(s0.answer.active == "b");
  CHECK(s0.answer.nodes == std::optional<std::vector<std::string>>{{"a", "b"}});
  CHECK_FALSE(s0.answer.last_renew_age_ms.has_value());
  CHECK(encode(s0.answer).find("\"last_renew_age_ms\":null") != std::string::npos);
  REQUIRE(code_of(core.handle(renew("b", 4), t0 + 10)) == "ok");
  auto s1 = core.handle(state_request(), t0 + 110);
  CHECK(s1.answer.last_renew_age_ms == std::optional<std::int64_t>{100});
  CHECK(s1.answer.promote_after_ms == std::optional<std::uint32_t>{6000});
  CHECK(s1.answer.lease_ms == std::optional<std::uint32_t>{3000});
  CHECK(s1.answer.standby_in_sync == std::optional<bool>{true});
  CHECK(s1.answer.deposed == std::optional<bool>{false});
}

// ---- core: health ------------------------------------------------------------------------------

namespace {

// Renews every second from `from` to `to` with the given health; the standby watches every
// second too when `standby_watches`. Returns the last renew's outcome.
witness_core::outcome run_health(witness_core& core, std::int64_t from, std::int64_t to, double p99,
                                 std::uint64_t requests, std::uint64_t errors, bool standby_watches,
                                 bool in_sync = true) {
  witness_core::outcome last;
  for (std::int64_t now = from; now <= to; now += 1000) {
    if (standby_watches) core.handle(watch("b", core.durable().epoch), now);
    last = core.handle(renew("a", 1, in_sync, p99, requests, errors), now);
    if (!last.answer.ok) break;
  }
  return last;
}

}  // namespace

TEST_CASE("witness core: a slow active is deposed after unhealthy_for_ms when a standby watches") {
  auto core = make_core();
  // Unhealthy from t0 on: still renewed up to t0+9000 ...
  auto before = run_health(core, t0, t0 + 9000, 2500, 50, 0, true);
  CHECK(code_of(before) == "ok");
  CHECK_FALSE(core.deposed());
  CHECK(code_of(core.handle(promote("b", 1), t0 + 9500)) == "active_alive");
  // ... and deposed at t0+10000.
  core.handle(watch("b", 1), t0 + 10000);
  auto deposed = core.handle(renew("a", 1, true, 2500, 50, 0), t0 + 10000);
  CHECK(code_of(deposed) == "unhealthy");
  CHECK(core.deposed());
  bool logged = false;
  for (const auto& l : deposed.log)
    logged = logged || (l.warn && l.text.find("DEPOSED") != std::string::npos);
  CHECK(logged);
  // Refused for the rest of the epoch, even when healthy again.
  CHECK(code_of(core.handle(renew("a", 1, true, 5, 50, 0), t0 + 10500)) == "unhealthy");
  auto w = core.handle(watch("b", 1), t0 + 10600);
  CHECK(w.answer.deposed == std::optional<bool>{true});
  auto s = core.handle(state_request(), t0 + 10600);
  CHECK(s.answer.deposed == std::optional<bool>{true});
  REQUIRE(s.answer.deposed_reason.has_value());
  CHECK(s.answer.deposed_reason->find("p99") != std::string::npos);
  // The standby is promoted at once, though the last grant is only 1.6 s old.
  auto p = core.handle(promote("b", 1), t0 + 10600);
  CHECK(code_of(p) == "ok");
  CHECK(p.answer.epoch == 2);
  CHECK_FALSE(core.deposed());
}

TEST_CASE("witness core: an active failing too many requests is deposed") {
  auto core = make_core();
  // 30 % errors, 50 requests per second: over the 0.2 ratio.
  auto out = run_health(core, t0, t0 + 10000, 5, 50, 15, true);
  CHECK(code_of(out) == "unhealthy");
  CHECK(core.deposed());
  auto s = core.handle(state_request(), t0 + 10001);
  REQUIRE(s.answer.deposed_reason.has_value());
  CHECK(s.answer.deposed_reason->find("errors") != std::string::npos);
}

TEST_CASE("witness core: the error ratio needs 20 requests in the window") {
  auto core = make_core();
  // 3 requests per second, all failing: at most ~12 in the window of lease_ms.
  auto out = run_health(core, t0, t0 + 20000, 5, 3, 3, true);
  CHECK(code_of(out) == "ok");
  CHECK_FALSE(core.deposed());
}

TEST_CASE("witness core: one healthy interval restarts the unhealthy_for_ms count") {
  auto core = make_core();
  CHECK(code_of(run_health(core, t0, t0 + 8000, 2500, 50, 0, true)) == "ok");
  // Healthy for longer than the window, then unhealthy again: the clock starts over.
  CHECK(code_of(run_health(core, t0 + 9000, t0 + 13000, 5, 50, 0, true)) == "ok");
  CHECK(code_of(run_health(core, t0 + 14000, t0 + 23000, 2500, 50, 0, true)) == "ok");
  CHECK_FALSE(core.deposed());
  CHECK(code_of(run_health(core, t0 + 24000, t0 + 24000, 2500, 50, 0, true)) == "unhealthy");
}

TEST_CASE("witness core: no deposing without a watching standby") {
  auto core = make_core();
  auto out = run_health(core, t0, t0 + 30000, 2500, 50, 0, /*standby_watches=*/false);
  CHECK(code_of(out) == "ok");
  CHECK_FALSE(core.deposed());
  // The warning is given once for the unhealthy spell, not on every renew.
  auto more = core.handle(renew("a", 1, true, 2500, 50, 0), t0 + 31000);
  CHECK(code_of(more) == "ok");
  CHECK(more.log.empty());
  CHECK(code_of(core.handle(promote("b", 1), t0 + 31500)) == "active_alive");
}

TEST_CASE("witness core: a standby seen long ago does not count") {
  auto core = make_core();
  core.handle(watch("b", 1), t0);
  // 2 * lease_ms = 6000: the watch at t0 is too old by t0+10000.
  auto out = run_health(core, t0, t0 + 12000, 2500, 50, 0, false);
  CHECK(code_of(out) == "ok");
  CHECK_FALSE(core.deposed());
}

TEST_CASE("witness core: no deposing while the standby is out of sync") {
  auto core = make_core();
  auto out = run_health(core, t0, t0 + 30000, 2500, 50, 0, true, /*in_sync=*/false);
  CHECK(code_of(out) == "ok");
  CHECK_FALSE(core.deposed());
}

// ---- codec -------------------------------------------------------------------------------------

TEST_CASE("witness codec: requests round-trip and match the documented lines") {
  auto r = renew("a", 5, true, 12.5, 100, 2);
  CHECK(
      encode(r) ==
      R"({"epoch":5,"errors":2,"node":"a","op":"renew","p99_ms":12.5,"requests":100,"standby_in_sync":true})");
  for (const auto& req : {r, watch("b", 5), promote("b", 5, true), handover("a", 5, "b"), state_request()}) {
    auto back = decode_request(encode(req));
    REQUIRE(back.has_value());
    CHECK(back->op == req.op);
    CHECK(back->node == req.node);
    CHECK(back->epoch == req.epoch);
    CHECK(back->standby_in_sync == req.standby_in_sync);
    CHECK(back->p99_ms == req.p99_ms);
    CHECK(back->requests == req.requests);
    CHECK(back->errors == req.errors);
    CHECK(back->force == req.force);
    CHECK(back->to == req.to);
  }
  auto doc = decode_request(R"({"op":"watch","node":"b","epoch":5,"applied_seq":123})");
  REQUIRE(doc.has_value());
  CHECK(doc->applied_seq == 123);
}

TEST_CASE("witness codec: strict types and required fields") {
  struct row {
    const char* line;
    const char* why;
  };
  const row bad_lines[] = {
      {"", "empty"},
      {"{", "truncated"},
      {"[1,2]", "not an object"},
      {R"({"node":"a","epoch":1})", "no op"},
      {R"({"op":"dance","node":"a","epoch":1})", "unknown op"},
      {R"({"op":7})", "op not a string"},
      {R"({"op":"renew","epoch":1,"standby_in_sync":true})", "no node"},
      {R"({"op":"renew","node":"a","standby_in_sync":true})", "no epoch"},
      {R"({"op":"renew","node":"a","epoch":1})", "no standby_in_sync"},
      {R"({"op":"renew","node":"a","epoch":"1","standby_in_sync":true})", "epoch as a string"},
      {R"({"op":"renew","node":"a","epoch":-1,"standby_in_sync":true})", "negative epoch"},
      {R"({"op":"renew","node":"a","epoch":1.5,"standby_in_sync":true})", "fractional epoch"},
      {R"({"op":"renew","node":"a","epoch":1,"standby_in_sync":1})", "in sync as a number"},
      {R"({"op":"renew","node":"a","epoch":1,"standby_in_sync":true,"p99_ms":"9"})", "p99 as a string"},
      {R"({"op":"renew","node":"a","epoch":1,"standby_in_sync":true,"p99_ms":-1})", "negative p99"},
      {R"({"op":"promote","node":"b","epoch":1,"force":"yes"})", "force as a string"},
      {R"({"op":"handover","node":"a","epoch":1})", "handover without to"},
      {R"({"op":"watch","node":"","epoch":1})", "empty node"},
      {R"({"op":"watch","node":"a\nb","epoch":1})", "control character in node"},
      {R"({"op":"watch","node":null,"epoch":1})", "null node"},
  };
  for (const auto& b : bad_lines) {
    INFO(b.why);
    auto r = decode_request(b.line);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "witness.bad_request");
  }
  // Unknown extra fields are ignored (a newer node may send more).
  CHECK(decode_request(R"({"op":"state","extra":[1,2,3]})").has_value());
}

TEST_CASE("witness codec: answers round-trip") {
  auto core = make_core();
  core.handle(renew("a", 1), t0);
  for (const auto& req : {renew("a", 1), watch("b", 1), promote("b", 1), state_request()}) {
    auto a = core.handle(req, t0 + 500).answer;
    auto back = decode_answer(encode(a));
    REQUIRE(back.has_value());
    CHECK(back->ok == a.ok);
    CHECK(back->code == a.code);
    CHECK(back->message == a.message);
    CHECK(back->epoch == a.epoch);
    CHECK(back->active == a.active);
    CHECK(back->lease_ms == a.lease_ms);
    CHECK(back->active_lease_age_ms == a.active_lease_age_ms);
    CHECK(back->deposed == a.deposed);
    CHECK(back->nodes == a.nodes);
    CHECK(back->last_renew_age_ms == a.last_renew_age_ms);
    CHECK(back->standby_in_sync == a.standby_in_sync);
  }
  CHECK(encode(core.refusal("active_alive", "m")) ==
        R"({"active":"a","code":"active_alive","epoch":1,"message":"m","ok":false})");
  CHECK_FALSE(decode_answer(R"({"ok":true,"active":"a"})").has_value());
  CHECK_FALSE(decode_answer(R"({"ok":false,"epoch":1,"active":"a"})").has_value());
}

TEST_CASE("witness config: checked before start") {
  auto c = test_config();
  CHECK(check(c).has_value());
  c.nodes = {"a"};
  CHECK_FALSE(check(c).has_value());
  c.nodes = {"a", "a"};
  CHECK_FALSE(check(c).has_value());
  c = test_config();
  c.promote_after_ms = c.lease_ms - 1;
  CHECK_FALSE(check(c).has_value());
}

// ---- state file --------------------------------------------------------------------------------

namespace {

struct temp_dir {
  explicit temp_dir(const std::string& tag) : path(eftd::test::make_temp_dir(tag)) {}
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path file(const std::string& name) const { return fs::path(path) / name; }
  std::string path;
};

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("witness state file: a missing file is created at epoch 1 with the initial active") {
  temp_dir d("witness-create");
  auto s = open_witness_state(d.file("w.json"), test_config(), "b");
  REQUIRE(s.has_value());
  CHECK(*s == witness_durable{1, "b", true});
  CHECK(json::parse(read_file(d.file("w.json"))) ==
        json{{"epoch", 1}, {"active", "b"}, {"standby_in_sync", true}});
  CHECK_FALSE(fs::exists(d.file("w.json.tmp")));
  CHECK_FALSE(open_witness_state(d.file("x.json"), test_config(), "q").has_value());
}

TEST_CASE("witness state file: a restarted core continues from the saved epoch") {
  temp_dir d("witness-restart");
  const auto f = d.file("w.json");
  auto s = open_witness_state(f, test_config(), "a");
  REQUIRE(s.has_value());
  witness_core first(test_config(), *s, t0);
  auto p = first.handle(promote("b", 1, true), t0 + 1);
  REQUIRE(p.state_changed);
  REQUIRE(save_witness_state(f, first.durable()).has_value());

  auto again = open_witness_state(f, test_config(), "a");  // the initial active no longer matters
  REQUIRE(again.has_value());
  CHECK(*again == witness_durable{2, "b", false});
  // A fresh core (another steady-clock origin, as after a reboot) keeps the epoch and fencing.
  witness_core second(test_config(), *again, 5);
  CHECK(code_of(second.handle(renew("a", 1), 10)) == "not_active");
  CHECK(code_of(second.handle(renew("b", 2), 10)) == "ok");
  CHECK(code_of(second.handle(promote("a", 1, true), 11)) == "stale_epoch");
}

TEST_CASE("witness state file: a corrupt file is refused, never reset") {
  temp_dir d("witness-corrupt");
  const auto f = d.file("w.json");
  const char* corrupt[] = {
      "",
      "{\"epoch\":3,\"active\":\"a\"",
      "{\"epoch\":0,\"active\":\"a\",\"standby_in_sync\":true}",
      "{\"epoch\":-3,\"active\":\"a\",\"standby_in_sync\":true}",
      "{\"epoch\":\"3\",\"active\":\"a\",\"standby_in_sync\":true}",
      "{\"epoch\":3,\"standby_in_sync\":true}",
      "{\"epoch\":3,\"active\":\"a\"}",
      "[3]",
  };
  for (const char* text : corrupt) {
    INFO(text);
    write_file(f, text);
    auto s = open_witness_state(f, test_config(), "a");
    REQUIRE_FALSE(s.has_value());
    CHECK(s.err().code == "witness.state_corrupt");
    CHECK(read_file(f) == text);  // left as found, for the operator
  }
  // An active that is not in --nodes any more is refused too.
  write_file(f, R"({"epoch":3,"active":"c","standby_in_sync":true})");
  auto s = open_witness_state(f, test_config(), "a");
  REQUIRE_FALSE(s.has_value());
  CHECK(s.err().code == "witness.state_corrupt");
}

TEST_CASE("witness state file: an unwritable directory is an error, the old file stays") {
  temp_dir d("witness-unwritable");
  const auto f = d.file("w.json");
  REQUIRE(save_witness_state(f, {4, "a", true}).has_value());
  if (::geteuid() == 0) {
    // Root writes anyway; point at a path that cannot exist instead.
    auto st = save_witness_state(d.file("no/such/dir/w.json"), {5, "b", true});
    REQUIRE_FALSE(st.has_value());
    CHECK(st.err().code == "witness.state_io");
  } else {
    fs::permissions(d.path, fs::perms::owner_read | fs::perms::owner_exec);
    auto st = save_witness_state(f, {5, "b", true});
    fs::permissions(d.path, fs::perms::owner_all);
    REQUIRE_FALSE(st.has_value());
    CHECK(st.err().code == "witness.state_io");
  }
  auto s = load_witness_state(f);
  REQUIRE(s.has_value());
  CHECK(*s == witness_durable{4, "a", true});
}

// ---- the real process --------------------------------------------------------------------------

namespace {

// A plain TCP client speaking NDJSON, with deadlines on every read.
class line_client {
 public:
  explicit line_client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~line_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  line_client(const line_client&) = delete;
  line_client& operator=(const line_client&) = delete;

  void send_raw(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  // The next line, or nullopt on EOF / deadline.
  std::optional<std::string> read_line(std::chrono::milliseconds within = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const auto n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  // True when the server closed the connection (EOF within the deadline).
  bool closed_by_peer(std::chrono::milliseconds within = 5s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return false;
    char c;
    return ::read(fd_, &c, 1) <= 0;
  }
  json ask(const std::string& line) {
    send_raw(line + "\n");
    auto reply = read_line();
    REQUIRE(reply.has_value());
    auto j = json::parse(*reply, nullptr, false);
    REQUIRE(j.is_object());
    return j;
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

struct witness_process {
  witness_process(const std::string& dir, const std::string& state_file,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> args{
        "witness",          "--listen", "127.0.0.1:0", "--state", state_file,           "--nodes", "a,b",
        "--initial-active", "a",        "--lease-ms",  "3000",    "--promote-after-ms", "6000"};
    args.insert(args.end(), extra.begin(), extra.end());
    proc.emplace(eftd::test::bin_path("eftd"), args, dir + "/witness.log");
    auto ready = proc->wait_ready();
    REQUIRE(ready.has_value());
    port = eftd::test::json_port(*ready, "witness");
    REQUIRE(port > 0);
  }
  std::optional<eftd::test::process> proc;
  int port = 0;
};

}  // namespace

TEST_CASE("witness process: renew, watch, promote and state over a real socket") {
  temp_dir d("witness-proc");
  const auto state = d.file("w.json").string();
  witness_process w(d.path, state);
  line_client c(w.port);
  auto r = c.ask(encode(renew("a", 1)));
  CHECK(r == json::parse(R"({"ok":true,"epoch":1,"active":"a","lease_ms":3000})"));
  auto refused = c.ask(encode(renew("b", 1)));
  CHECK(refused["ok"] == false);
  CHECK(refused["code"] == "not_active");
  CHECK(refused["epoch"] == 1);
  CHECK(refused["active"] == "a");
  auto wa = c.ask(R"({"op":"watch","node":"b","epoch":1,"applied_seq":123})");
  CHECK(wa["ok"] == true);
  CHECK(wa["deposed"] == false);
  CHECK(wa["active_lease_age_ms"].is_number_integer());
  // The lease was just renewed: a normal promote is refused, a forced one goes through.
  CHECK(c.ask(encode(promote("b", 1)))["code"] == "active_alive");
  auto p = c.ask(encode(promote("b", 1, true)));
  CHECK(p == json::parse(R"({"ok":true,"epoch":2,"active":"b"})"));
  // The answer came after the state was durable: the file already says so.
  CHECK(json::parse(read_file(state)) == json::parse(R"({"epoch":2,"active":"b","standby_in_sync":false})"));
  auto s = decode_answer(c.ask(R"({"op":"state"})").dump());
  REQUIRE(s.has_value());
  CHECK(s->ok);
  CHECK(s->epoch == 2);
  CHECK(s->active == "b");
  CHECK(s->nodes == std::optional<std::vector<std::string>>{{"a", "b"}});
  CHECK_FALSE(s->last_renew_age_ms.has_value());
  CHECK(w.proc->stop() == 0);
}

TEST_CASE("witness process: bad requests are answered and the connection stays open") {
  temp_dir d("witness-bad");
  witness_process w(d.path, d.file("w.json").string());
  line_client c(w.port);
  for (const char* line : {"not json", "{\"op\":\"dance\"}", "{\"op\":\"renew\",\"node\":\"a\"}", "[]"}) {
    INFO(line);
    auto r = c.ask(line);
    CHECK(r["ok"] == false);
    CHECK(r["code"] == "bad_request");
    CHECK(r["epoch"] == 1);
  }
  CHECK(c.ask(R"({"op":"state"})")["ok"] == true);
  // CRLF line ends are accepted too.
  CHECK(c.ask("{\"op\":\"state\"}\r")["ok"] == true);
}

TEST_CASE("witness process: an over-long line is refused and the connection closed") {
  temp_dir d("witness-long");
  witness_process w(d.path, d.file("w.json").string());
  {
    line_client c(w.port);
    c.send_raw(std::string(max_line_bytes + 100, 'x'));  // no newline at all
    auto r = c.read_line();
    REQUIRE(r.has_value());
    CHECK(json::parse(*r)["code"] == "bad_request");
    CHECK(c.closed_by_peer());
  }
  {
    // Exactly at the limit is fine; one byte over (with its newline) is not.
    line_client c(w.port);
    std::string pad(max_line_bytes - std::string(R"({"op":"state","p":""})").size(), 'y');
    std::string at_limit = R"({"op":"state","p":")" + pad + "\"}";
    REQUIRE(at_limit.size() == max_line_bytes);
    CHECK(c.ask(at_limit)["ok"] == true);
    auto over = c.ask(R"({"op":"state","p":")" + pad + "z\"}");
    CHECK(over["code"] == "bad_request");
    CHECK(c.closed_by_peer());
  }
  // The witness still serves others.
  line_client other(w.port);
  CHECK(other.ask(R"({"op":"state"})")["ok"] == true);
}

TEST_CASE("witness process: a client stuck mid-line does not hold up the others") {
  temp_dir d("witness-partial");
  witness_process w(d.path, d.file("w.json").string());
  auto stuck = std::make_unique<line_client>(w.port);
  stuck->send_raw(R"({"op":"renew","node":)");
  line_client other(w.port);
  CHECK(other.ask(encode(renew("a", 1)))["ok"] == true);
  stuck.reset();  // vanishes without finishing the line
  CHECK(other.ask(encode(renew("a", 1)))["ok"] == true);
  CHECK(w.proc->running());
}

TEST_CASE("witness process: kill -9 and restart keeps the epoch") {
  temp_dir d("witness-kill");
  const auto state = d.file("w.json").string();
  {
    witness_process w(d.path, state);
    line_client c(w.port);
    REQUIRE(c.ask(encode(promote("b", 1, true)))["epoch"] == 2);
    REQUIRE(c.ask(encode(handover("b", 2, "a")))["epoch"] == 3);
    w.proc->signal(SIGKILL);
    REQUIRE(w.proc->wait_exit(10s).has_value());
  }
  witness_process again(d.path, state, {});
  line_client c(again.port);
  auto s = c.ask(R"({"op":"state"})");
  CHECK(s["epoch"] == 3);
  CHECK(s["active"] == "a");
  // The fenced epochs stay fenced.
  CHECK(c.ask(encode(renew("b", 2)))["code"] == "not_active");
  CHECK(c.ask(encode(promote("b", 2, true)))["code"] == "stale_epoch");
}

TEST_CASE("witness process: refuses to start on a corrupt state file or plaintext off loopback") {
  temp_dir d("witness-refuse");
  const auto state = d.file("w.json").string();
  write_file(state, "{\"epoch\":");
  {
    eftd::test::process p(
        eftd::test::bin_path("eftd"),
        {"witness", "--listen", "127.0.0.1:0", "--state", state, "--nodes", "a,b", "--initial-active", "a"},
        d.path + "/corrupt.log");
    CHECK(p.wait_exit(20s) == std::optional<int>{1});
    CHECK(read_file(state) == "{\"epoch\":");
    CHECK(read_file(d.path + "/corrupt.log").find("corrupt") != std::string::npos);
  }
  {
    eftd::test::process p(eftd::test::bin_path("eftd"),
                          {"witness", "--listen", "0.0.0.0:0", "--state", d.file("x.json").string(),
                           "--nodes", "a,b", "--initial-active", "a"},
                          d.path + "/plain.log");
    CHECK(p.wait_exit(20s) == std::optional<int>{1});
    CHECK(read_file(d.path + "/plain.log").find("loopback") != std::string::npos);
    CHECK_FALSE(fs::exists(d.file("x.json")));
  }
}

// ---- mutual TLS ------------------------------------------------------------------------------------

namespace {

// A development CA with client certificates for nodes a and b and the operator (eftctl), made by
// tools/certs.sh in a fresh temp dir.
struct witness_certs {
  witness_certs() : dir("witness-certs") {
    const std::string script = "source \"" + eftd::test::source_path("tools/certs.sh") +
                               "\" && eftd_make_certs \"$1\" localhost \"eftd witness test CA\" a b eftctl";
    eftd::test::process p("/bin/bash", {"-c", script, "certs", dir.path}, dir.path + "/certs.log");
    REQUIRE(p.wait_exit(60s) == std::optional<int>{0});
    REQUIRE(fs::exists(dir.file("server.pem")));
  }
  std::string file(const std::string& name) const { return dir.file(name).string(); }
  temp_dir dir;
};

// A blocking OpenSSL client with a receive timeout (so no read waits for ever).
class tls_client {
 public:
  tls_client(int port, const witness_certs& certs, const std::string& name) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx_ != nullptr);
    REQUIRE(SSL_CTX_load_verify_locations(ctx_, certs.file("ca.pem").c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!name.empty()) {
      REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, certs.file(name + ".pem").c_str()) == 1);
      REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, certs.file(name + ".key").c_str(), SSL_FILETYPE_PEM) == 1);
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    handshake_ok_ = SSL_connect(ssl_) == 1;
  }
  ~tls_client() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    if (ctx_) SSL_CTX_free(ctx_);
  }
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  // The answer to one line, or nullopt when the server refused the connection (TLS 1.3 reports a
  // refused client certificate only at the first read).
  std::optional<json> ask(const std::string& line) {
    if (!handshake_ok_) return std::nullopt;
    const std::string out = line + "\n";
    if (SSL_write(ssl_, out.data(), static_cast<int>(out.size())) <= 0) return std::nullopt;
    std::string in;
    while (in.find('\n') == std::string::npos) {
      char buf[1024];
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return json::parse(in.substr(0, in.find('\n')), nullptr, false);
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool handshake_ok_ = false;
};

}  // namespace

TEST_CASE("witness process: with TLS the certificate must name the node, or be the operator's") {
  witness_certs certs;
  temp_dir d("witness-tls");
  witness_process w(d.path, d.file("w.json").string(),
                    {"--tls-cert", certs.file("server.pem"), "--tls-key", certs.file("server.key"),
                     "--tls-ca", certs.file("ca.pem")});
  {
    tls_client a(w.port, certs, "a");
    auto r = a.ask(encode(renew("a", 1)));
    REQUIRE(r.has_value());
    CHECK((*r)["ok"] == true);
    // a's certificate cannot speak for b; the read-only state is open to both nodes.
    auto as_b = a.ask(encode(watch("b", 1)));
    REQUIRE(as_b.has_value());
    CHECK((*as_b)["code"] == "forbidden");
    auto force_as_b = a.ask(encode(promote("b", 1, true)));
    REQUIRE(force_as_b.has_value());
    CHECK((*force_as_b)["code"] == "forbidden");
    auto st = a.ask(R"({"op":"state"})");
    REQUIRE(st.has_value());
    CHECK((*st)["ok"] == true);
  }
  {
    tls_client op(w.port, certs, "eftctl");
    auto st = op.ask(R"({"op":"state"})");
    REQUIRE(st.has_value());
    CHECK((*st)["ok"] == true);
    auto plain = op.ask(encode(promote("b", 1)));
    REQUIRE(plain.has_value());
    CHECK((*plain)["code"] == "forbidden");
    auto forced = op.ask(encode(promote("b", 1, true)));
    REQUIRE(forced.has_value());
    CHECK((*forced)["epoch"] == 2);
    CHECK((*forced)["active"] == "b");
  }
  {
    tls_client anonymous(w.port, certs, "");
    CHECK_FALSE(anonymous.ask(R"({"op":"state"})").has_value());
  }
  {
    // Plaintext on a TLS witness gets nothing.
    line_client plain(w.port);
    plain.send_raw("{\"op\":\"state\"}\n");
    CHECK_FALSE(plain.read_line(5s).has_value());
  }
  CHECK(w.proc->running());
}
