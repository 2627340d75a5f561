// A pad on a serial line, end to end: `eftpad virtual --serial-port` on one end of a socat pty
// pair, `eftpad bridge` on the other, relaying to eftd over TCP; TLS 1.3 end to end between pad
// and eftd through the bridge. A sale is approved; again with line noise and dropped bytes
// injected by a relay in the middle of the line (the link layer recovers); and a pad killed
// during PIN entry gives the POS a clear error.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../serial/socat_pair.hpp"
#include "e2e_util.hpp"
#include "eftd/pad/serial_port.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

struct pad_certs {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  std::vector<std::string> args(const std::string& serial) const {
    // The pad cannot know which eftd the bridge reached: it is told the name to verify.
    return {"--tls-ca",          ca(),
            "--tls-cert",        dir + "/" + serial + ".pem",
            "--tls-key",         dir + "/" + serial + ".key",
            "--tls-server-name", "localhost"};
  }
};

pad_certs make_certs(const std::string& dir, const std::string& serials) {
  const std::string cmd =
      source_path("tools/pad-certs") + " " + dir + " localhost " + serials + " >/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return {dir};
}

std::string pad_tls_config(const pad_certs& c) {
  return "[listen.pad.tls]\ncert_file = \"" + c.dir + "/server.pem\"\nkey_file = \"" + c.dir +
         "/server.key\"\nclient_ca_file = \"" + c.ca() + "\"\n";
}

// Link timers for ptys at 115200 baud: a frame is on the line for under 0.1 s, so a lost one
// is retransmitted after 300 ms instead of the default second (RS232 at 9600 needs more).
const std::vector<std::string> fast_link{"--link-timeout-ms", "300", "--link-retries", "8"};

// `eftpad virtual` on a tty with the identity, card and keys harness.start_pad would give it.
std::unique_ptr<process> start_serial_pad(installation& inst, const std::string& tty, const std::string& card,
                                          const std::vector<std::string>& extra) {
  std::vector<std::string> args{
      "virtual",  "--serial-port", tty,
      "--pad-id", "P01",           "--serial",
      "VP-0001",  "--card",        source_path("pinpad-firmware-shim/cards/" + card)};
  for (const auto& a : inst.pad_key_args("P01")) args.push_back(a);
  for (const auto& a : fast_link) args.push_back(a);
  for (const auto& a : extra) args.push_back(a);
  return std::make_unique<process>(bin_path("eftpad"), args, inst.dir + "/pad.log");
}

std::unique_ptr<process> start_bridge(installation& inst, const std::string& tty,
                                      const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"bridge",
                                "--serial",
                                tty,
                                "--server",
                                "127.0.0.1:" + std::to_string(inst.pad_port),
                                "--backoff-initial-ms",
                                "100"};
  for (const auto& a : fast_link) args.push_back(a);
  for (const auto& a : extra) args.push_back(a);
  return std::make_unique<process>(bin_path("eftpad"), args, inst.dir + "/bridge.log");
}

// Copies bytes between two serial ports in both directions, one thread each, and damages the
// line on the way at fixed byte counts: a byte dropped, a run of garbage inserted (sometimes
// with STX in it, so the receiver must abandon a phantom frame). The schedule is
// deterministic; the counters prove that faults happened.
class noisy_relay {
 public:
  noisy_relay(std::unique_ptr<eftd::pad::serial_port> a, std::unique_ptr<eftd::pad::serial_port> b)
      : a_(std::move(a)), b_(std::move(b)) {
    up_ = std::thread([this] { copy(*a_, *b_, 1, dropped_up_, injected_up_); });
    down_ = std::thread([this] { copy(*b_, *a_, 2, dropped_down_, injected_down_); });
  }
  ~noisy_relay() {
    stop_ = true;
    up_.join();
    down_.join();
  }
  int dropped_up() const { return dropped_up_; }
  int injected_up() const { return injected_up_; }
  int dropped_down() const { return dropped_down_; }
  int injected_down() const { return injected_down_; }

 private:
  // A fault every so many bytes, a limited number of times: enough to hit the TLS handshake,
  // the hello and the sale's commands, few enough to stay within the pad's deadlines.
  static constexpr std::size_t drop_every = 1300;
  static constexpr std::size_t inject_every = 1700;
  static constexpr int max_faults = 6;

  void copy(eftd::pad::serial_port& from, eftd::pad::serial_port& to, unsigned seed,
            std::atomic<int>& dropped, std::atomic<int>& injected) {
    std::mt19937 rng(seed);
    std::size_t count = 0;
    std::uint8_t buf[512];
    while (!stop_) {
      auto r = from.read(buf, 100ms);
      if (!r) return;  // the line went away: the test is ending
      eftd::bytes out;
      for (std::size_t i = 0; i < *r; ++i) {
        ++count;
        if (count % drop_every == 0 && dropped < max_faults) {
          ++dropped;
          continue;
        }
        if (count % inject_every == 0 && injected < max_faults) {
          ++injected;
          const std::size_t n = 1 + rng() % 24;
          for (std::size_t k = 0; k < n; ++k) out.push_back(static_cast<std::uint8_t>(rng()));
          if (injected % 2 == 1) out.push_back(0x02);  // a phantom frame start
        }
        out.push_back(buf[i]);
      }
      if (!out.empty() && !to.write(out, 2s)) return;
    }
  }

  std::unique_ptr<eftd::pad::serial_port> a_, b_;
  std::atomic<bool> stop_{false};
  std::atomic<int> dropped_up_{0}, injected_up_{0}, dropped_down_{0}, injected_down_{0};
  std::thread up_, down_;
};

std::unique_ptr<eftd::pad::serial_port> open_tty(const std::string& path) {
  auto p = eftd::pad::open_termios_port(path);
  INFO(path << ": " << (p ? std::string("ok") : p.err().code + " " + p.err().message));
  REQUIRE(p.has_value());
  return std::move(*p);
}

void sell_and_check_approved(installation& inst, process& pad, const std::string& tag) {
  const auto order = order_no(tag);
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "42.00", "--currency", "PLN"});
  INFO(slurp(inst.dir + "/pos.log"));
  REQUIRE(r.exit_code == 0);
  CHECK(r.result.value("outcome", "") == "approved");
  CHECK(r.result.value("masked_pan", "") == "476173******0119");
  CHECK(pad.wait_for_prefix("DISPLAY Approved - order " + order, 10s).has_value());
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Card data never in the clear in eftd's log or the bridge's.
void check_logs(installation& inst) {
  inst.eftd->stop();
  const auto eftd_log = slurp(inst.dir + "/eftd.log");
  CHECK(contains(eftd_log, "pad P01 connected from"));
  CHECK(contains(eftd_log, ", TLS 1.3)"));
  CHECK_FALSE(contains(eftd_log, test_pan));
  CHECK_FALSE(contains(slurp(inst.dir + "/bridge.log"), test_pan));
}

}  // namespace

TEST_CASE("serial: a sale through the till bridge over a pty pair with TLS end to end is approved",
          "[serial][pad]") {
  installation inst("e2e-serial");
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  socat_pair cable;
  const auto pad_tty = cable.first();
  const auto bridge_tty = cable.second();
  REQUIRE(cable.wait_relaying());
  auto pad = start_serial_pad(inst, pad_tty, "visa-approve.toml", certs.args("VP-0001"));
  auto bridge = start_bridge(inst, bridge_tty);
  INFO("logs in " << inst.dir);
  REQUIRE(bridge->wait_ready(20s) == "{\"bridge\":\"" + bridge_tty + "\"}");
  REQUIRE(pad->wait_ready(20s) == "{\"pad_id\":\"P01\"}");
  sell_and_check_approved(inst, *pad, "SER");
  // A second sale over the same session.
  sell_and_check_approved(inst, *pad, "SER");
  // SIGTERM ends both cleanly.
  CHECK(pad->stop() == 0);
  CHECK(bridge->stop() == 0);
  check_logs(inst);
}

TEST_CASE("serial: eftd restarts and the pad behind the bridge starts a new TLS session and sells again",
          "[serial][pad]") {
  installation inst("e2e-serial-restart");
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  socat_pair cable;
  const auto pad_tty = cable.first();
  const auto bridge_tty = cable.second();
  REQUIRE(cable.wait_relaying());
  auto pad = start_serial_pad(inst, pad_tty, "visa-approve.toml", certs.args("VP-0001"));
  auto bridge = start_bridge(inst, bridge_tty, {"--backoff-max-ms", "400"});
  INFO("logs in " << inst.dir);
  REQUIRE(bridge->wait_ready(20s).has_value());
  REQUIRE(pad->wait_ready(20s).has_value());
  sell_and_check_approved(inst, *pad, "RST");

  // The server connection drops under the bridge: it resets the pad's link session, the pad
  // starts a new TLS session at once, and the bridge holds its ClientHello until eftd is back
  // (on the same port) and it has reconnected.
  const int pad_port = inst.pad_port;
  inst.crash_eftd();
  inst.start_eftd({"--set", "listen.pad.port=" + std::to_string(pad_port)});
  REQUIRE(inst.pad_port == pad_port);
  REQUIRE(pad->wait_ready(30s) == "{\"pad_id\":\"P01\"}");
  sell_and_check_approved(inst, *pad, "RST");
  bridge->stop();
  pad->stop();
  const auto bridge_log = slurp(inst.dir + "/bridge.log");
  CHECK(contains(bridge_log, "resetting the pad's link session"));
  CHECK(contains(slurp(inst.dir + "/pad.log"), "the bridge restarted the link session"));
  check_logs(inst);
}

TEST_CASE("serial: with line noise and dropped bytes on the serial line the sale is still approved",
          "[serial][pad]") {
  installation inst("e2e-serial-noise");
  const auto certs = make_certs(inst.dir + "/certs", "VP-0001");
  inst.extra_config = pad_tls_config(certs);
  inst.start_eftd();
  // pad = cable 1 = relay (noise) = cable 2 = bridge
  socat_pair pad_side, bridge_side;
  const auto pad_tty = pad_side.first();
  const auto relay_a = pad_side.second();
  const auto relay_b = bridge_side.first();
  const auto bridge_tty = bridge_side.second();
  REQUIRE(pad_side.wait_relaying());
  REQUIRE(bridge_side.wait_relaying());
  noisy_relay relay(open_tty(relay_a), open_tty(relay_b));
  auto pad = start_serial_pad(inst, pad_tty, "visa-approve.toml", certs.args("VP-0001"));
  auto bridge = start_bridge(inst, bridge_tty);
  INFO("logs in " << inst.dir);
  REQUIRE(bridge->wait_ready(20s).has_value());
  REQUIRE(pad->wait_ready(30s).has_value());
  sell_and_check_approved(inst, *pad, "NOISE");
  sell_and_check_approved(inst, *pad, "NOISE");
  // The faults really happened, in both directions (TLS would have failed on any byte the link
  // layer let through damaged).
  CHECK(relay.dropped_up() > 0);
  CHECK(relay.injected_up() > 0);
  CHECK(relay.dropped_down() > 0);
  CHECK(relay.injected_down() > 0);
  // One session throughout: the link layer recovered every fault below TLS, which never saw one.
  CHECK(count_of(slurp(inst.dir + "/pad.log"), "session started") == 1);
  check_logs(inst);
}

TEST_CASE("serial: a pad killed during PIN entry gives the POS a clear error and the order ends",
          "[serial][pad]") {
  installation inst("e2e-serial-vanish");
  inst.start_eftd();
  // hangup_on_close: when the pad's process dies, socat closes the line, as an unplugged
  // USB-serial adapter would; the bridge then closes its server connection at once.
  socat_pair cable(socat_pair::hangup_on_close);
  const auto pad_tty = cable.first();
  REQUIRE_FALSE(pad_tty.empty());
  // No keys in a script: the pad waits in get_pin until it is killed. Plaintext pad channel
  // (eftd's pad listener is on loopback).
  auto pad = start_serial_pad(inst, pad_tty, "mc-pin.toml", {});
  const auto bridge_tty = cable.second();
  REQUIRE_FALSE(bridge_tty.empty());
  auto bridge = start_bridge(inst, bridge_tty);
  INFO("logs in " << inst.dir);
  REQUIRE(cable.wait_relaying());
  REQUIRE(bridge->wait_ready(20s).has_value());
  REQUIRE(pad->wait_ready(20s).has_value());
  const auto order = order_no("SERV");
  process pos(bin_path("eft-pos-sim"),
              {"--port", std::to_string(inst.pos_port), "--till", "T01", "--json", "sale", "--order", order,
               "--amount", "42.00", "--currency", "PLN"},
              inst.dir + "/pos.log");
  REQUIRE(pad->wait_for_prefix("DISPLAY 42.00 PLN | Enter PIN", 20s).has_value());
  pad->signal(SIGKILL);
  nlohmann::json final_result;
  while (auto line = pos.read_line(30s)) {
    auto j = nlohmann::json::parse(*line, nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == "result") final_result = j;
  }
  REQUIRE(final_result.is_object());
  CHECK(final_result.value("outcome", "") == "failed");
  CHECK(final_result["reason"].value("code", "") == "pad.disconnected");
  CHECK(contains(final_result["reason"].value("cashier_text", ""), order));
  bridge->stop();
  CHECK(contains(slurp(inst.dir + "/bridge.log"), "serial.hangup"));
  inst.eftd->stop();
  auto view = journal_view(inst, order);
  CHECK(view.order.state == "failed");
  CHECK(view.messages.empty());
}
