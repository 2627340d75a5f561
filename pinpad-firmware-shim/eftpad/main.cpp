// eftpad: the PIN pad side of eftd's pad channel. Modes: `virtual`, a simulated pad that reads
// cards from profile files and prints its display on stdout; `ports`, the machine's serial
// ports. Later: `bridge` (till serial/USB relay) and a TUI.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "eftd/core/tls_channel.hpp"
#include "eftd/pad/serial_port.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/pad_script.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/tcp_client.hpp"
#include "eftd/padsim/virtual_pad.hpp"

namespace {

struct virtual_args {
  std::vector<std::string> servers;
  std::string pad_id;
  std::string serial;
  std::string model = "eftpad-virtual";
  std::string firmware = "0.1.0";
  std::vector<std::string> cards;
  std::string script;
  bool no_card = false;
  bool once = false;
  unsigned connect_timeout_ms = 5000;
  unsigned handshake_timeout_ms = 10000;
  unsigned backoff_initial_ms = 200;
  unsigned backoff_max_ms = 5000;
  std::string tls_ca, tls_cert, tls_key;  // all three: TLS 1.3 to eftd; none: plaintext
};

// JSON string body for the READY line; pad ids are plain, but a quote must not break it.
std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

int run_virtual(const virtual_args& a) {
  using namespace eftd::padsim;
  tcp_client_options opt;
  for (const auto& s : a.servers) {
    auto addr = parse_server_address(s);
    if (!addr) {
      spdlog::error("{}: {}", addr.err().code, addr.err().message);
      return 2;
    }
    opt.servers.push_back(*addr);
  }
  std::vector<card_profile> cards;
  for (const auto& path : a.cards) {
    auto p = load_card_profile(path);
    if (!p) {
      spdlog::error("{}: {}", p.err().code, p.err().message);
      return 2;
    }
    spdlog::info("card profile '{}' loaded from {}", p->name, path);
    cards.push_back(std::move(*p));
  }
  if (cards.empty() && !a.no_card) spdlog::warn("no --card given: every read_card will time out");

  virtual_pad pad(
      std::move(cards), [](const std::string& line) { std::cout << line << std::endl; }, a.no_card);
  pad_identity id;
  id.pad_id = a.pad_id;
  id.serial = a.serial;
  id.model = a.model;
  id.firmware = a.firmware;
  id.capabilities = {"display", "magstripe", "keypad", "beep", "leds"};
  if (!a.script.empty()) {
    auto script = load_pad_script(a.script);
    if (!script) {
      spdlog::error("{}: {}", script.err().code, script.err().message);
      return 2;
    }
    spdlog::info("pad script loaded from {}: {} input events", a.script, script->events.size());
    pad.load_script(*script);
    id.ksns = script->ksns;
    id.dukpt_counters = script->dukpt_counters;
    if (!script->languages.empty()) id.languages = script->languages;
  }
  pad_session session(id, pad, pad, pad);

  opt.connect_timeout = std::chrono::milliseconds(a.connect_timeout_ms);
  opt.handshake_timeout = std::chrono::milliseconds(a.handshake_timeout_ms);
  opt.backoff = backoff_policy(std::chrono::milliseconds(a.backoff_initial_ms),
                               std::chrono::milliseconds(std::max(a.backoff_initial_ms, a.backoff_max_ms)));
  opt.once = a.once;
  if (!a.tls_ca.empty() || !a.tls_cert.empty() || !a.tls_key.empty()) {
    if (a.tls_ca.empty() || a.tls_cert.empty() || a.tls_key.empty()) {
      spdlog::error("--tls-ca, --tls-cert and --tls-key go together");
      return 2;
    }
    auto tls = eftd::tls_context::client(a.tls_ca, a.tls_cert, a.tls_key);
    if (!tls) {
      spdlog::error("{}: {}", tls.err().code, tls.err().message);
      return 2;
    }
    opt.tls = std::move(*tls);
  }
  opt.on_ready = [pad_id = a.pad_id] {
    std::cout << "READY {\"pad_id\":\"" << json_escape(pad_id) << "\"}" << std::endl;
  };
  tcp_client client(std::move(opt), session);
  return client.run();
}

// Lists serial ports for an installer choosing the pad's port: USB-serial adapters show VID:PID.
int run_ports() {
  auto ports = eftd::pad::list_serial_ports();
  if (!ports) {
    spdlog::error("{}: {}", ports.err().code, ports.err().message);
    return 1;
  }
  if (ports->empty()) {
    std::cout << "no serial ports found" << std::endl;
    return 0;
  }
  for (const auto& p : *ports) std::cout << eftd::pad::format_port_line(p) << '\n';
  std::cout.flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A server that vanishes must show up as a socket error, not kill the pad.
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::set_default_logger(spdlog::stderr_color_mt("eftpad"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"eftpad - PIN pad side of the eftd pad channel (see pinpad-firmware-shim/PROTOCOL.md)"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error (logs go to stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

  virtual_args va;
  auto* v = app.add_subcommand("virtual",
                               "Run a virtual pad: connect to eftd over TCP, show displays on stdout as "
                               "'DISPLAY <line1> | <line2>', answer read_card with card profiles. Prints "
                               "'READY {\"pad_id\":...}' once eftd accepted the pad.");
  v->add_option("--server", va.servers,
                "eftd pad listener host:port; repeat for backup servers (tried in turn)")
      ->required();
  v->add_option("--pad-id", va.pad_id, "pad id as configured in eftd ([[pads]] id)")->required();
  v->add_option("--serial", va.serial, "serial number reported at hello")->required();
  v->add_option("--model", va.model, "model reported at hello")->capture_default_str();
  v->add_option("--firmware", va.firmware, "firmware version reported at hello")->capture_default_str();
  v->add_option("--card", va.cards,
                "card profile TOML (pinpad-firmware-shim/cards/*.toml); repeat to cycle one card "
                "per read_card")
      ->check(CLI::ExistingFile);
  v->add_option("--script", va.script,
                "pad script TOML: input events (keys, card removal, pauses) for get_key, get_amount, "
                "confirm, menu and remove_card; languages; KSNs and DUKPT counters for get_status "
                "(format: pinpad-firmware-shim/sim/include/eftd/padsim/pad_script.hpp)")
      ->check(CLI::ExistingFile);
  v->add_flag("--no-card", va.no_card, "answer every read_card with pad_error timeout");
  v->add_flag("--once", va.once, "exit 0 after one read_card was answered and the next display shown");
  v->add_option("--connect-timeout-ms", va.connect_timeout_ms, "TCP connect deadline")->capture_default_str();
  v->add_option("--handshake-timeout-ms", va.handshake_timeout_ms, "deadline for hello_ack after hello")
      ->capture_default_str();
  v->add_option("--backoff-initial-ms", va.backoff_initial_ms, "first reconnect delay (doubles per failure)")
      ->capture_default_str();
  v->add_option("--backoff-max-ms", va.backoff_max_ms, "reconnect delay cap")->capture_default_str();
  v->add_option("--tls-ca", va.tls_ca,
                "TLS 1.3 to eftd: CA file (PEM) that issued eftd's pad-listener certificate; needs "
                "--tls-cert and --tls-key (tools/pad-certs makes all three)")
      ->check(CLI::ExistingFile);
  v->add_option("--tls-cert", va.tls_cert, "this pad's device certificate (PEM), subject CN = --serial")
      ->check(CLI::ExistingFile);
  v->add_option("--tls-key", va.tls_key, "the device certificate's private key (PEM)")
      ->check(CLI::ExistingFile);

  auto* ports = app.add_subcommand(
      "ports",
      "List the serial ports libserialport finds, one per line: '<path> <transport> [VID:PID] "
      "[serial=<usb serial>] \"<description>\"', or 'no serial ports found'.");

  app.footer(
      "\nExample:\n"
      "  eftpad virtual --server 127.0.0.1:9200 --server 10.0.0.2:9200 --pad-id P01 --serial VP-0001 \\\n"
      "      --card pinpad-firmware-shim/cards/visa-approve.toml --card "
      "pinpad-firmware-shim/cards/visa-decline.toml\n"
      "  eftpad ports\n"
      "For virtual, stdout carries only READY, DISPLAY, BEEP and LEDS lines; logs go to stderr. "
      "SIGINT/SIGTERM "
      "exit 0.");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  try {
    if (v->parsed()) return run_virtual(va);
    if (ports->parsed()) return run_ports();
  } catch (const std::exception& e) {
    spdlog::critical("eftpad: {}", e.what());
    return 1;
  }
  return 2;
}
