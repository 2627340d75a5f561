// eft-loadgen: N simulated tills in one process, each with its POS connection (NDJSON codec
// straight on an Asio socket: the async client library's thread per connection does not scale to
// thousands of tills) and its LAN PIN pad (the sans-I/O pad_session driven from Asio sockets,
// with a virtual card reader and a keypad that answer at once). Everything runs on one
// io_context on one thread. Asio stays in loadgen.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eftd/core/result.hpp"

namespace eftd::loadgen {

// What one transaction of the mix is.
enum class tx_kind : std::uint8_t {
  chip_pin,     // DDA chip card, online PIN, ARQC/ARPC: expected approved
  magstripe,    // swiped card: expected approved
  decline,      // chip card the acquirer simulator declines (PAN ...0002)
  cancel,       // a chip+PIN sale, then a cancel of that order
  contactless,  // a tap; "unsupported" while eftd does not enable the contactless reader
};
inline constexpr std::size_t tx_kind_count = 5;
const char* to_string(tx_kind k) noexcept;

struct mix_weight {
  tx_kind kind = tx_kind::chip_pin;
  unsigned weight = 0;
};

// "chip=80,magstripe=10,decline=10" -> weights; loadgen.bad_mix for an unknown name, a
// non-number or an all-zero mix.
eftd::result<std::vector<mix_weight>> parse_mix(std::string_view text);

// Identities of till i (0-based): till L00001, pad LP00001 with serial LG-00001, terminal
// LT000001. Stable, so a config written once serves every later run.
struct till_ids {
  std::string till_id, pad_id, serial, terminal_id;
};
till_ids ids_of(std::size_t index);
// [[pads]] and [[tills]] tables for tills 0..n-1 in store `store`, to append to eftd's config.
std::string config_tables(std::size_t n, const std::string& store);

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t pos_port = 0;
  std::uint16_t pad_port = 0;
  // Hot standby (issue 8), same host: each till goes to the other server's POS and pad ports
  // when its server fails or answers not_active (failover.hpp). 0 = no standby.
  std::uint16_t standby_pos_port = 0;
  std::uint16_t standby_pad_port = 0;
  std::size_t tills = 4;
  // Load: open loop at `rate` sales per second, or closed loop with `concurrency` tills busy
  // (0 = every till). Stop after `duration` or `count` transactions (whichever is set; both:
  // the first reached).
  double rate = 0;
  std::size_t concurrency = 0;
  std::chrono::milliseconds duration{0};
  std::size_t count = 0;
  std::vector<mix_weight> mix;
  std::int64_t amount = 1000;  // minor units
  std::string currency = "PLN";
  std::chrono::milliseconds tx_timeout{30000};
  std::chrono::milliseconds connect_timeout{30000};
  // tools/dev-keys output (keys.store, keys.master): each pad's AES DUKPT initial key is
  // derived from bdk-aes with its own initial key ID.
  std::filesystem::path keys_dir;
  std::filesystem::path cards_dir;  // pinpad-firmware-shim/cards
  // tools/pad-certs output: ca.pem, <serial>.pem/.key. Empty: plaintext pad connections. A pad
  // without its files gets a certificate issued in memory when the directory holds ca.key.
  std::filesystem::path pad_tls_dir;
  // tools/pos-certs output: ca.pem, <till>.pem/.key. Empty: plaintext POS connections. A till
  // without its files gets a certificate issued in memory when the directory holds ca.key.
  std::filesystem::path pos_tls_dir;
  // One JSON line per POS operation event (invoke / ok / fail / unknown) for the checkers.
  std::filesystem::path history_file;
  // Connections leave from 127.0.x.y, `per_address` tills per source address, so eftd's
  // per-address limit (listen.*.max_per_address) and the ephemeral ports suffice.
  std::size_t per_address = 100;
  bool spread_addresses = true;
  bool progress = true;
  std::uint64_t seed = 1;
};

struct summary {
  std::size_t tills = 0;
  std::size_t tills_ready = 0;
  double seconds = 0;    // load phase
  std::uint64_t tx = 0;  // sales that completed (approved, declined or failed), cancels apart
  std::uint64_t approved = 0, declined = 0, errors = 0;
  std::uint64_t cancels = 0, cancel_errors = 0;
  std::uint64_t unsupported = 0;  // contactless while eftd does not read contactless cards
  std::uint64_t dropped = 0;      // open loop: a start came when every till was busy
  std::map<std::string, std::uint64_t> error_codes;
  std::map<std::string, std::uint64_t> by_kind;
  std::vector<std::uint32_t> latencies_us;  // of every completed sale
  // Standby: tills that moved to the other server, each move's time (first failure on the old
  // server to the first login on the new one), operations whose lost answer a status_query
  // resolved, and requests a standby refused with not_active (re-sent on the active server).
  std::uint64_t switches = 0;
  std::vector<std::uint32_t> switch_us;
  std::uint64_t recovered = 0, unresolved = 0, not_active = 0;
};

// Connects the tills, runs the load, disconnects. Progress lines go to stderr once a second.
eftd::result<summary> run(const options& opt);

}  // namespace eftd::loadgen
