// eftpad: the PIN pad side of eftd's pad channel. Modes: `virtual`, a simulated pad that reads
// cards from profile files and prints its display on stdout (over TCP, or over a serial link
// with --serial-port); `ports`, the machine's serial ports; `bridge`, the till's relay between a
// serial/USB pad and eftd (bridge.hpp); `tui`, the interactive pad in a terminal (tui.hpp).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>

#include "bridge.hpp"
#include "eftd/core/tls_channel.hpp"
#include "eftd/pad/serial_port.hpp"
#ifdef EFTD_HAVE_USB
#include "eftd/pad/usb.hpp"
#endif
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/pad_keys.hpp"
#include "eftd/padsim/pad_script.hpp"
#include "eftd/padsim/serial_client.hpp"
#include "eftd/padsim/session.hpp"
#include "eftd/padsim/tcp_client.hpp"
#include "eftd/padsim/tui.hpp"
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
  unsigned server_silence_ms = 0;  // 0: wait for a quiet server for ever
  unsigned backoff_initial_ms = 200;
  unsigned backoff_max_ms = 5000;
  std::string tls_ca, tls_cert, tls_key;  // all three: TLS 1.3 to eftd; none: plaintext
  std::string serial_port;                // a tty: the link layer towards a till bridge, not TCP
  std::uint32_t baud = 115200;
  std::string tls_server_name;  // over a bridge: the name eftd's certificate must carry
  std::uint32_t link_timeout_ms = 1000, link_retries = 8;
  std::vector<std::string> dukpt_keys;  // TR-31 key files: P2PE and PIN blocks
  std::string dukpt_state;              // where the DUKPT counters survive restarts
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

// What `virtual` and `tui` share: the server list, timers and TLS of the connection, the
// pad's identity and its DUKPT keys, and the card profiles. Each returns false after logging
// the problem (exit status 2).
bool connection_options(const virtual_args& a, eftd::padsim::tcp_client_options& opt) {
  using namespace eftd::padsim;
  for (const auto& s : a.servers) {
    auto addr = parse_server_address(s);
    if (!addr) {
      spdlog::error("{}: {}", addr.err().code, addr.err().message);
      return false;
    }
    opt.servers.push_back(*addr);
  }
  opt.connect_timeout = std::chrono::milliseconds(a.connect_timeout_ms);
  opt.silence_timeout = std::chrono::milliseconds(a.server_silence_ms);
  opt.handshake_timeout = std::chrono::milliseconds(a.handshake_timeout_ms);
  opt.backoff = backoff_policy(std::chrono::milliseconds(a.backoff_initial_ms),
                               std::chrono::milliseconds(std::max(a.backoff_initial_ms, a.backoff_max_ms)));
  opt.once = a.once;
  if (a.tls_ca.empty() && a.tls_cert.empty() && a.tls_key.empty()) return true;
  if (a.tls_ca.empty() || a.tls_cert.empty() || a.tls_key.empty()) {
    spdlog::error("--tls-ca, --tls-cert and --tls-key go together");
    return false;
  }
  auto tls = eftd::tls_context::client(a.tls_ca, a.tls_cert, a.tls_key);
  if (!tls) {
    spdlog::error("{}: {}", tls.err().code, tls.err().message);
    return false;
  }
  opt.tls = std::move(*tls);
  return true;
}

std::optional<std::vector<eftd::padsim::card_profile>> load_cards(const std::vector<std::string>& paths) {
  std::vector<eftd::padsim::card_profile> cards;
  for (const auto& path : paths) {
    auto p = eftd::padsim::load_card_profile(path);
    if (!p) {
      spdlog::error("{}: {}", p.err().code, p.err().message);
      return std::nullopt;
    }
    spdlog::info("card profile '{}' loaded from {}", p->name, path);
    cards.push_back(std::move(*p));
  }
  return cards;
}

// The identity announced at hello, and the DUKPT keys that add the "pin" and "p2pe" capabilities.
std::optional<eftd::padsim::pad_keys> identity_and_keys(const virtual_args& a,
                                                        eftd::padsim::pad_identity& id) {
  using namespace eftd::padsim;
  id.pad_id = a.pad_id;
  id.serial = a.serial;
  id.model = a.model;
  id.firmware = a.firmware;
  id.capabilities = {"display", "magstripe", "keypad", "beep", "leds", "chip", "contactless"};
  std::vector<std::filesystem::path> key_files(a.dukpt_keys.begin(), a.dukpt_keys.end());
  std::optional<std::filesystem::path> state_file;
  if (!a.dukpt_state.empty()) state_file = a.dukpt_state;
  auto keys = pad_keys::load(key_files, state_file);
  if (!keys) {
    spdlog::error("{}: {}", keys.err().code, keys.err().message);
    return std::nullopt;
  }
  if (!keys->empty()) {
    // PIN entry needs a key for its PIN block; without one card data goes in the clear.
    id.capabilities.push_back("pin");
    id.capabilities.push_back("p2pe");
    spdlog::info("{} DUKPT key(s) loaded; card data leaves the pad sealed", keys->ksns().size());
  } else {
    spdlog::warn("no --dukpt-key: track 2 and R-APDUs go in the clear (development only)");
  }
  return std::move(*keys);
}

int run_virtual(const virtual_args& a) {
  using namespace eftd::padsim;
  if (a.servers.empty() == a.serial_port.empty()) {
    spdlog::error("give --server (TCP to eftd) or --serial-port (a link to a till bridge), not both");
    return 2;
  }
  tcp_client_options opt;
  if (!connection_options(a, opt)) return 2;
  auto loaded = load_cards(a.cards);
  if (!loaded) return 2;
  auto cards = std::move(*loaded);
  if (cards.empty() && !a.no_card) spdlog::warn("no --card given: every read_card will time out");

  virtual_pad pad(
      std::move(cards), [](const std::string& line) { std::cout << line << std::endl; }, a.no_card);
  pad_identity id;
  auto keys = identity_and_keys(a, id);
  if (!keys) return 2;
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
  session.set_keys(&*keys);

  opt.on_ready = [pad_id = a.pad_id] {
    std::cout << "READY {\"pad_id\":\"" << json_escape(pad_id) << "\"}" << std::endl;
  };
  if (!a.serial_port.empty()) {
    serial_client_options so;
    so.port_path = a.serial_port;
    so.baud = a.baud;
    so.link.retransmit_timeout_ms = a.link_timeout_ms;
    so.link.max_retries = a.link_retries;
    so.handshake_timeout = opt.handshake_timeout;
    so.backoff = opt.backoff;
    so.once = opt.once;
    so.on_ready = std::move(opt.on_ready);
    so.tls = std::move(opt.tls);
    // Without a name the pad would accept any certificate of the pad CA; behind a bridge it
    // cannot derive one from the address it connects to.
    so.tls_server_name = a.tls_server_name;
    if (so.tls && so.tls_server_name.empty()) {
      spdlog::error("--serial-port with TLS needs --tls-server-name (the name in eftd's certificate)");
      return 2;
    }
    serial_client client(std::move(so), session);
    return client.run();
  }
  tcp_client client(std::move(opt), session);
  return client.run();
}

// The interactive pad: the connection of `virtual` (tcp_client, TLS, backoff, DUKPT keys), a
// person at the terminal instead of a script (sim/include/eftd/padsim/tui.hpp).
int run_tui(const virtual_args& a, const std::string& log_file) {
  using namespace eftd::padsim;
  tcp_client_options opt;
  if (!connection_options(a, opt)) return 2;
  std::string servers_text;
  for (const auto& s : a.servers) servers_text += (servers_text.empty() ? "" : ", ") + s;
  auto loaded = load_cards(a.cards);
  if (!loaded) return 2;
  auto cards = std::move(*loaded);
  if (cards.size() > 9) spdlog::warn("{} cards given: only cards 1-9 can be chosen", cards.size());
  pad_identity id;
  auto keys = identity_and_keys(a, id);
  if (!keys) return 2;
  // The terminal loop owns SIGINT/SIGTERM: it must restore the terminal before the exit.
  opt.handle_signals = false;
  // The screen belongs to the UI: READY goes to the log (file, log pane, a non-tty stderr).
  opt.on_ready = [pad_id = a.pad_id] { spdlog::info("READY {{\"pad_id\":\"{}\"}}", json_escape(pad_id)); };
  terminal_pad pad(std::move(cards), "pad " + a.pad_id + " (serial " + a.serial + ")");
  pad.set_connection("connecting to " + servers_text);
  pad_session session(id, pad, pad, pad);
  session.set_keys(&*keys);
  tcp_client client(std::move(opt), session);
  terminal_ui_options ui;
  ui.log_file = log_file;
  return run_terminal_ui(pad, client, ui);
}

// The till bridge: pad on a serial port or USB, eftd over TCP.
struct bridge_args {
  std::string serial, usb;
  std::uint32_t baud = 115200;
  std::vector<std::string> servers;
  unsigned backoff_initial_ms = 200, backoff_max_ms = 5000, connect_timeout_ms = 5000;
  std::uint32_t link_timeout_ms = 1000, link_retries = 8;
  unsigned server_silence_ms = 0;
};

int run_bridge_cmd(const bridge_args& a) {
  eftd::eftpad::bridge_options o;
  o.serial_path = a.serial;
  o.usb_selector = a.usb;
  o.baud = a.baud;
  o.link.retransmit_timeout_ms = a.link_timeout_ms;
  o.link.max_retries = a.link_retries;
  for (const auto& s : a.servers) {
    auto addr = eftd::padsim::parse_server_address(s);
    if (!addr) {
      spdlog::error("{}: {}", addr.err().code, addr.err().message);
      return 2;
    }
    o.servers.push_back(*addr);
  }
  o.connect_timeout = std::chrono::milliseconds(a.connect_timeout_ms);
  o.server_silence = std::chrono::milliseconds(a.server_silence_ms);
  o.backoff = eftd::padsim::backoff_policy(
      std::chrono::milliseconds(a.backoff_initial_ms),
      std::chrono::milliseconds(std::max(a.backoff_initial_ms, a.backoff_max_ms)));
  o.on_ready = [](const std::string& path) {
    std::cout << "READY {\"bridge\":\"" << json_escape(path) << "\"}" << std::endl;
  };
  return eftd::eftpad::run_bridge(std::move(o));
}

// Lists serial ports for an installer choosing the pad's port: USB-serial adapters show VID:PID.
int run_ports() {
  auto ports = eftd::pad::list_serial_ports();
  if (!ports) {
    spdlog::error("{}: {}", ports.err().code, ports.err().message);
    return 1;
  }
  if (ports->empty()) std::cout << "no serial ports found" << '\n';
  for (const auto& p : *ports) std::cout << eftd::pad::format_port_line(p) << '\n';
#ifdef EFTD_HAVE_USB
  // USB pads without a serial adapter: devices with a bulk IN/OUT interface, by the selector
  // `eftpad bridge --usb` takes. No USB stack (a container): nothing to list.
  if (auto usb = eftd::pad::usb::list_usb_devices()) {
    for (const auto& d : *usb)
      if (!d.bulk_interfaces.empty()) std::cout << eftd::pad::usb::format_usb_device_line(d) << '\n';
  } else if (usb.err().code != "usb.unavailable") {
    spdlog::warn("{}: {}", usb.err().code, usb.err().message);
  }
#endif
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
  auto* v = app.add_subcommand(
      "virtual",
      "Run a virtual pad: connect to eftd over TCP (or through a till bridge with --serial-port), show "
      "displays on stdout as "
      "'DISPLAY <line1> | <line2>', answer read_card with card profiles. Prints "
      "'READY {\"pad_id\":...}' once eftd accepted the pad.");
  v->add_option("--server", va.servers,
                "eftd pad listener host:port; repeat for backup servers (tried in turn). Or --serial-port");
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
  v->add_option("--server-silence-ms", va.server_silence_ms,
                "nothing from the server for this long: try the next --server (0 = never; eftd pings every "
                "pad_health.ping_interval_ms, so use a few of those)")
      ->capture_default_str();
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
  v->add_option("--dukpt-key", va.dukpt_keys,
                "DUKPT key file (TOML: kbpk = hex, block = TR-31 B1 block from `eftctl keys export-ipek`); "
                "at most one TDES and one AES key. With a key the pad seals card data and answers "
                "get_pin (see pinpad-firmware-shim/sim/include/eftd/padsim/pad_keys.hpp)")
      ->check(CLI::ExistingFile);
  v->add_option("--dukpt-state", va.dukpt_state,
                "file where the pad keeps its last DUKPT counters across restarts (written before use)");
  v->add_option("--serial-port", va.serial_port,
                "instead of --server: talk through the link layer on this tty (any path, ptys included) "
                "to a till bridge (`eftpad bridge`); --serial stays the pad's serial number");
  v->add_option("--baud", va.baud, "with --serial-port: line speed")->capture_default_str();
  v->add_option("--link-timeout-ms", va.link_timeout_ms,
                "with --serial-port: retransmit a link frame not acknowledged after this long")
      ->capture_default_str();
  v->add_option("--link-retries", va.link_retries,
                "with --serial-port: retransmissions before the link is down")
      ->capture_default_str();
  v->add_option("--tls-server-name", va.tls_server_name,
                "with --serial-port and TLS: the name (or IP) eftd's certificate must carry");

  virtual_args ta;
  std::string tui_log_file;
  auto* tui = app.add_subcommand(
      "tui",
      "Interactive pad in this terminal: the pad's display, LEDs and the cards on the table; type "
      "digits, Enter (OK), Backspace (clear), Esc (cancel); s<N>/i<N>/t<N> swipe/insert/tap card N, "
      "r removes the inserted card, q quits. Same connection as `virtual`; READY goes to the log.");
  tui->add_option("--server", ta.servers,
                  "eftd pad listener host:port; repeat for backup servers (tried in turn)")
      ->required();
  tui->add_option("--pad-id", ta.pad_id, "pad id as configured in eftd ([[pads]] id)")->required();
  tui->add_option("--serial", ta.serial, "serial number reported at hello")->required();
  tui->add_option("--model", ta.model, "model reported at hello")->capture_default_str();
  tui->add_option("--firmware", ta.firmware, "firmware version reported at hello")->capture_default_str();
  tui->add_option("--card", ta.cards,
                  "card profile TOML on the table (numbered 1-9 in the order given); repeat")
      ->check(CLI::ExistingFile);
  tui->add_option("--connect-timeout-ms", ta.connect_timeout_ms, "TCP connect deadline")
      ->capture_default_str();
  tui->add_option("--handshake-timeout-ms", ta.handshake_timeout_ms, "deadline for hello_ack after hello")
      ->capture_default_str();
  tui->add_option("--backoff-initial-ms", ta.backoff_initial_ms,
                  "first reconnect delay (doubles per failure)")
      ->capture_default_str();
  tui->add_option("--backoff-max-ms", ta.backoff_max_ms, "reconnect delay cap")->capture_default_str();
  tui->add_option("--tls-ca", ta.tls_ca, "TLS 1.3 to eftd: CA file (PEM), as for virtual")
      ->check(CLI::ExistingFile);
  tui->add_option("--tls-cert", ta.tls_cert, "this pad's device certificate (PEM)")->check(CLI::ExistingFile);
  tui->add_option("--tls-key", ta.tls_key, "the device certificate's private key (PEM)")
      ->check(CLI::ExistingFile);
  tui->add_option("--dukpt-key", ta.dukpt_keys, "DUKPT key file, as for virtual (needed for get_pin)")
      ->check(CLI::ExistingFile);
  tui->add_option("--dukpt-state", ta.dukpt_state,
                  "file where the pad keeps its DUKPT counters across restarts");
  tui->add_option("--log-file", tui_log_file,
                  "append logs here (they also show in the screen's log pane; stderr only when it is not "
                  "the terminal)");

  auto* ports = app.add_subcommand(
      "ports",
      "List the serial ports libserialport finds, one per line: '<path> <transport> [VID:PID] "
      "[serial=<usb serial>] \"<description>\"', or 'no serial ports found'.");

  bridge_args ba;
  auto* br = app.add_subcommand(
      "bridge",
      "Till bridge: terminate the link layer of a pad on a serial port or USB and relay its byte "
      "stream (TLS inside, never read) to eftd over TCP. Prints 'READY {\"bridge\":\"<path>\"}' once "
      "the link to the pad is up. See pinpad-firmware-shim/LINK.md section 10.");
  auto* br_serial_opt =
      br->add_option("--serial", ba.serial, "the pad's tty (termios; any path, ptys included)");
  auto* br_usb_opt = br->add_option("--usb", ba.usb, "the pad on USB bulk endpoints: VID:PID[:SERIAL]");
  br_serial_opt->excludes(br_usb_opt);
  br->add_option("--baud", ba.baud, "serial line speed")->capture_default_str();
  br->add_option("--server", ba.servers,
                 "eftd pad listener host:port; repeat for backup servers (tried in turn)")
      ->required();
  br->add_option("--connect-timeout-ms", ba.connect_timeout_ms, "TCP connect deadline")
      ->capture_default_str();
  br->add_option("--server-silence-ms", ba.server_silence_ms,
                 "leave a server that sends nothing for this long (a paused active) for the next one; "
                 "above eftd's pad ping interval. 0: never")
      ->capture_default_str();
  br->add_option("--backoff-initial-ms", ba.backoff_initial_ms, "first reconnect delay (doubles per failure)")
      ->capture_default_str();
  br->add_option("--backoff-max-ms", ba.backoff_max_ms, "reconnect delay cap")->capture_default_str();
  br->add_option("--link-timeout-ms", ba.link_timeout_ms,
                 "link layer: retransmit a frame not acknowledged after this long (LINK.md section 4)")
      ->capture_default_str();
  br->add_option("--link-retries", ba.link_retries, "link layer: retransmissions before the link is down")
      ->capture_default_str();

  app.footer(
      "\nExample:\n"
      "  eftpad virtual --server 127.0.0.1:9200 --server 10.0.0.2:9200 --pad-id P01 --serial VP-0001 \\\n"
      "      --card pinpad-firmware-shim/cards/visa-approve.toml --card "
      "pinpad-firmware-shim/cards/visa-decline.toml\n"
      "  eftpad ports\n"
      "  eftpad bridge --serial /dev/ttyUSB0 --server 10.0.0.1:9200 --server 10.0.0.2:9200\n"
      "  eftpad virtual --serial-port /dev/ttyS1 --pad-id P01 --serial VP-0001 --card ... \\\n"
      "      --tls-ca ca.pem --tls-cert VP-0001.pem --tls-key VP-0001.key --tls-server-name eftd.example\n"
      "For virtual, stdout carries only READY, DISPLAY, BEEP and LEDS lines; logs go to stderr. "
      "SIGINT/SIGTERM "
      "exit 0.");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  try {
    if (v->parsed()) return run_virtual(va);
    if (tui->parsed()) return run_tui(ta, tui_log_file);
    if (ports->parsed()) return run_ports();
    if (br->parsed()) return run_bridge_cmd(ba);
  } catch (const std::exception& e) {
    spdlog::critical("eftpad: {}", e.what());
    return 1;
  }
  return 2;
}
