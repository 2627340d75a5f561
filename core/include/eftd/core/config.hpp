// eftd configuration: one TOML file (reference: etc/eftd.example.toml, every key commented).
//
// load_config() never throws; every problem is reported as an error whose message names
// the key ("tills[2].pad: unknown pad 'P9'") and the problem. Start-up code may turn
// that into an exception or an exit code; the transaction path never parses config.
//
// Error codes:
//   config.io        the file cannot be read
//   config.syntax    not valid TOML; the message carries line:column
//   config.invalid   valid TOML, wrong content: unknown keys, wrong types, bad values,
//                    dangling references. ALL problems are reported, one per line of
//                    error::message, so an operator fixes the file in one go.
//   config.override  a --set key=value that names no supported key or has a bad value
//   config.not_ready a placeholder (acquirer port 0) is still unset at start-up
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/result.hpp"

namespace eftd::config {

// TLS for a listener. All three files are PEM. With client_ca_file set, every client must
// present a certificate issued by that CA (POS: its subject CN is the till id; pads: the pad's
// serial number, and the pad listener speaks TLS 1.3 only).
struct tls_files {
  std::filesystem::path cert_file;       // the server's certificate chain
  std::filesystem::path key_file;        // its private key
  std::filesystem::path client_ca_file;  // CA(s) that issue client certificates
  bool enabled() const { return !cert_file.empty(); }
  bool operator==(const tls_files&) const = default;
};

struct listener {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = pick a free port (tests); the bound port is logged
  tls_files tls;           // empty = plaintext (allowed on loopback addresses only)
  // Connection limits (slowloris and floods): beyond them a connection is refused and closed.
  std::uint32_t max_connections = 4096;
  std::uint32_t max_per_address = 256;
  std::uint32_t login_timeout_ms = 10000;  // POS: no login within this: closed
  std::uint32_t frame_timeout_ms = 10000;  // a started frame/line must be complete within this
  bool operator==(const listener&) const = default;
};

// A question for the cashier defined in configuration (prompts are data): the POS renders
// it from kind/text/options without knowing it in advance.
struct prompt_rule {
  std::string id;                     // prompt_id on the wire and in the journal
  std::string stage = "before_card";  // before_card | after_card
  std::vector<std::string> types;     // transaction types it applies to; empty = all
  std::string kind = "yes_no";        // yes_no | menu | numeric | text
  std::string text;                   // shown to the cashier
  std::vector<std::string> options;   // menu: the values to choose from
  std::string default_value;          // taken on timeout (and for a POS without prompts)
  std::uint32_t timeout_ms = 30000;
  std::int64_t min_amount = 0;         // asked only from this amount (minor units)
  std::vector<std::string> cancel_on;  // answers that cancel the transaction
  bool operator==(const prompt_rule&) const = default;
};

// System restrictions. Unset fields inherit from the next level up:
// till -> merchant -> [limits] defaults.
struct limits {
  std::optional<std::int64_t> min_amount;                   // minor units, inclusive
  std::optional<std::int64_t> max_amount;                   // minor units, inclusive
  std::optional<std::vector<std::string>> allowed_types;    // "sale", "refund", "preauth", ...
  std::optional<std::vector<std::string>> allowed_schemes;  // "visa", "mastercard", ... as in the BIN table
  bool operator==(const limits&) const = default;
};

// [merchants.emv] / [tills.emv]: EMV parameters of one merchant or till. A set field replaces
// the [emv] value (till over merchant over [emv]); see server_config::emv_for. Hex values are
// checked by the loader like their [emv] keys.
struct emv_contactless_overrides {
  std::optional<std::uint64_t> transaction_limit;
  std::optional<std::uint64_t> cvm_required_limit;
  std::optional<std::uint64_t> floor_limit;
  bool operator==(const emv_contactless_overrides&) const = default;
};

struct emv_overrides {
  std::optional<std::uint16_t> country_code;
  std::optional<std::uint8_t> terminal_type;
  std::optional<std::string> terminal_capabilities;    // 9F33, 6 hex digits
  std::optional<std::string> additional_capabilities;  // 9F40, 10 hex digits
  std::optional<std::uint64_t> floor_limit;
  std::optional<std::string> tac_denial;
  std::optional<std::string> tac_online;
  std::optional<std::string> tac_default;
  std::optional<std::vector<std::string>> applications;
  std::optional<bool> fallback_allowed;
  std::optional<std::uint64_t> fallback_max_amount;
  emv_contactless_overrides contactless;
  bool operator==(const emv_overrides&) const = default;
};

struct merchant {
  std::string id;  // eftd's merchant id
  std::string name;
  std::string acquirer_merchant_id;  // ISO 8583 field 42 (card acceptor id, 15 chars)
  std::string currency = "PLN";      // ISO 4217 alpha code; the default for its tills
  std::string country = "616";       // ISO 3166 numeric (field 19 where used)
  std::string receipt_header;        // first lines of every receipt, '\n' separated
  limits limit;
  emv_overrides emv;  // [merchants.emv]
  bool operator==(const merchant&) const = default;
};

struct store {
  std::string id;
  std::string merchant;  // merchant id
  std::string name;
  std::string address;
  bool operator==(const store&) const = default;
};

struct till {
  std::string id;
  std::string store;        // store id
  std::string pad;          // pad id attached to this till
  std::string terminal_id;  // ISO 8583 field 41 (8 chars)
  limits limit;
  emv_overrides emv;  // [tills.emv]
  bool operator==(const till&) const = default;
};

struct pad {
  std::string id;
  std::string serial;    // expected serial number reported by the pad at hello (= its certificate's CN)
  bool revoked = false;  // refused at hello (and logged) until re-enabled: a stolen or retired pad
  bool operator==(const pad&) const = default;
};

// One TCP link to an acquirer host.
struct acquirer_link {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const acquirer_link&) const = default;
};

// TLS towards an acquirer (TLS 1.2+). All files are PEM. The host's certificate is verified
// against ca_file alone and must name server_name (default: each link's host). A client
// certificate (cert_file + key_file) is optional. No plaintext fallback.
struct acquirer_tls {
  std::filesystem::path ca_file;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::string server_name;
  bool enabled() const { return !ca_file.empty(); }
  bool operator==(const acquirer_tls&) const = default;
};

struct acquirer {
  std::string name;
  // The first (primary) link. `links = ["h:p", ...]` in the file sets it from the first entry.
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = placeholder, must be set with --set before eftd starts
  // Further links, used in order when the ones before cannot take a request.
  std::vector<acquirer_link> extra_links;
  acquirer_tls tls;  // ca_file empty: plaintext
  std::string dialect = "iso87-ascii";
  std::uint32_t connect_timeout_ms = 5000;
  std::uint32_t response_timeout_ms = 30000;             // then: in doubt, reversal queued
  std::uint32_t reversal_expiry_ms = 86'400'000;         // a reversal not acknowledged by then: a case
  std::string acquiring_institution_id = "00000000001";  // field 32
  // Frame on the wire: "binary2" | "bcd2" | "ascii4", optionally "+tpdu" ("bcd2+tpdu").
  std::string framing = "binary2";
  // TPDU addresses (NII), 4 digits each, sent as 2 BCD bytes; required with a +tpdu framing.
  // The destination is the host's NII, the source eftd's.
  std::string tpdu_destination;
  std::string tpdu_source;
  bool sign_on = false;                            // 0800/001 after every connect
  std::uint32_t echo_interval_ms = 0;              // 0800/301 after this long idle; 0 = never
  std::uint32_t reconnect_backoff_ms = 1000;       // first wait after a failed connect; 0 = none
  std::uint32_t reconnect_backoff_max_ms = 30000;  // doubled per failure up to this
  // Key store name of the zone PIN key shared with this acquirer (imported as a TR-31 block
  // with `eftctl keys import`). Online PIN blocks are translated to it (ISO 9564 format 0);
  // empty: a sale that needs an online PIN cannot go to this acquirer.
  std::string zpk;
  // Key store name of the message authentication key (MAK-TDES, double length) shared with
  // this acquirer. When set, every message except 08xx network management carries an ISO
  // 9797-1 algorithm 3 MAC in field 64 (128 with a secondary bitmap), and responses without a
  // valid one are not trusted. Empty: no MAC.
  std::string mak;
  bool tpdu() const { return framing.ends_with("+tpdu"); }
  bool operator==(const acquirer&) const = default;
};

// A route picks the acquirer for a sale. It matches by BIN prefix or by scheme (one of the
// two), optionally narrowed to one merchant. The most specific matching route wins: a
// merchant route before a general one, then a BIN prefix (longest first) before a scheme,
// and a scheme before the default route (bin_prefix = "").
struct route {
  std::string bin_prefix;  // digits; "" matches everything (default route). Longest prefix wins.
  std::string scheme;      // instead of bin_prefix: the card's scheme as in the BIN table ("visa")
  std::string merchant;    // optional: only this merchant's sales (eftd merchant id)
  std::string acquirer;    // acquirer name
  // Optional acquirer used when `acquirer` cannot be reached (the request was never sent:
  // connect failed or the link is in its reconnect backoff). Never after a request was sent.
  std::string fallback;
  bool operator==(const route&) const = default;
};

struct journal {
  std::filesystem::path path = "var/eftd.db";
  // 64 bytes hex (128 hex digits): AES-256-GCM key for stored PANs, then HMAC-SHA256 key
  // for the PAN search hash. Created with mode 0600 if absent (development only).
  std::filesystem::path key_file = "var/journal.key";
  std::uint32_t group_commit_max = 512;  // records per fsync at most
  // Orders of business dates more than this many days back are purged once a day, unless
  // unsettled or still queued (eftd/journal/retention.hpp). 0: keep forever.
  std::uint32_t retention_days = 0;
  bool operator==(const journal&) const = default;
};

// Key custody. eftd opens the key store (eftctl keys ...) at start-up; the key-handling module
// is the only place that holds the BDKs and ZPKs and sees card data in clear.
struct dukpt_bdk {
  std::string ksn_prefix;  // hex digits a pad KSN starts with: TDES KSI, AES BDK ID (IKID)
  std::string bdk;         // key store name of the BDK
  bool operator==(const dukpt_bdk&) const = default;
};
struct keys_config {
  std::filesystem::path store;            // empty: no key store (no P2PE, no online PIN)
  std::filesystem::path master_key_file;  // required with store
  std::vector<dukpt_bdk> dukpt;           // which BDK a KSN belongs to (longest prefix wins)
  // A pad that sends track 2 in clear (not under DUKPT) is refused ("card.unprotected").
  // false only for development pads without keys.
  bool require_p2pe = true;
  const dukpt_bdk* bdk_for(std::string_view ksn_hex) const;
  bool operator==(const keys_config&) const = default;
};

// Cardholder verification for cards read by magnetic stripe (chip cards follow the card's
// CVM list in the EMV kernel).
struct cvm_config {
  // "service_code": online PIN when the track's service code asks for it (third digit 0, 3,
  // 5); "always"; "never".
  std::string magstripe_pin = "service_code";
  std::uint32_t pin_timeout_ms = 60000;
  bool pin_bypass = false;  // the customer may skip PIN entry where the service code allows
  // How long the cashier has to confirm a signature the card asked for (then it is refused).
  std::uint32_t signature_timeout_ms = 120000;
  bool operator==(const cvm_config&) const = default;
};

// One contactless AID ([[emv.contactless.aid]]): what its cards are expected to ask for (the
// seed of the kernel's per-AID cache; a card that differs is asked to tap again) and optional
// limits replacing the [emv.contactless] ones. Empty strings: the kernel's defaults for the AID.
struct emv_contactless_aid {
  std::string aid;                   // hex, 5..16 bytes
  std::string kernel = "qvsdc";      // "qvsdc" (Visa-like) | "mchip" (Mastercard-like)
  std::string pdol;                  // hex DOL expected in the SELECT answer
  std::vector<std::string> records;  // "SFI.record" to read in the tap, e.g. "1.1", "2.1"
  std::string cdol1;                 // hex DOL expected in the records (mchip)
  std::optional<std::uint64_t> transaction_limit, cvm_required_limit, floor_limit;
  bool operator==(const emv_contactless_aid&) const = default;
};

// Contactless ([emv.contactless]): the central contactless kernel over the pad's apdu_script.
// Limits in minor units: at or above transaction_limit the customer is asked to insert the
// card; at or above cvm_required_limit a CVM (online PIN, signature, CDCVM) is needed; above
// floor_limit the card is asked for an online cryptogram.
struct emv_contactless_config {
  bool enabled = false;
  std::optional<std::uint64_t> transaction_limit;
  std::optional<std::uint64_t> cvm_required_limit;
  std::uint64_t floor_limit = 0;
  bool online_pin = true;  // TTQ capabilities
  bool signature = true;
  bool cdcvm = true;
  std::vector<emv_contactless_aid> aids;  // empty: Visa qVSDC A0000000031010, Mastercard A0000000041010
  bool operator==(const emv_contactless_config&) const = default;
};

// The central EMV kernel ([emv]): with enabled = true, pads are asked for chip cards too and
// eftd runs the card through its kernel (server/emv) over the pad's APDU commands.
struct emv_config {
  bool enabled = false;
  std::filesystem::path capk_file;  // CA public keys (TOML, [[capk]]), relative to the config file
  std::uint16_t country_code = 616;  // 9F1A, ISO 3166 numeric
  std::uint8_t terminal_type = 0x22;  // 9F35: attended, online with offline capability
  // 9F33 terminal capabilities, 6 hex digits. Empty: the kernel builds it from what it supports
  // (E0F8C8: key entry, stripe, chip; every PIN, signature and no CVM; SDA, DDA, CDA). A value
  // also narrows the kernel: the CVMs and data authentication it leaves out are not used.
  std::string terminal_capabilities;
  // 9F40 additional terminal capabilities, 10 hex digits. Empty: the kernel's (6000F0A001).
  std::string additional_capabilities;
  // Terminal floor limit in minor units for every application: 0 sends every chip sale online.
  // Above 0, a purchase under it that the card approves offline (TC) is taken, and its advice
  // goes to the acquirer through the store-and-forward queue.
  std::uint64_t floor_limit = 0;
  // Terminal action codes (hex, 5 bytes like the TVR), for every application. A TVR bit set in
  // tac_denial declines offline; in tac_online sends the sale online; in tac_default declines
  // when the acquirer cannot be reached. The online default covers floor limit exceeded,
  // random selection, both velocity limits, merchant forced online and online PIN entered.
  std::string tac_denial = "0000000000";
  std::string tac_online = "000004F800";
  std::string tac_default = "0000000000";
  // AIDs (hex) accepted, partial selection allowed.
  std::vector<std::string> applications{"A0000000031010", "A0000000032010", "A0000000041010",
                                        "A0000000043060"};
  // Fallback to the magnetic stripe after a chip error (EMV technical fallback).
  bool fallback_allowed = true;  // [emv] fallback = true|false
  // [emv] fallback_max_amount (minor units); above it, no fallback. Unset: no amount cap.
  std::optional<std::uint64_t> fallback_max_amount;
  // A chip card's stripe (service code 2xx or 6xx) swiped without a chip failure: refused with
  // "insert the card" (card.use_chip) when true. Off by default so stripe-only test cards and
  // older pads keep working; chip-capable estates should turn it on.
  bool refuse_chip_swipes = false;
  // The records of a chip card (and GET DATA of its ATCs) are read with one apdu_script per
  // round trip instead of one apdu each (pad protocol). Off only for a pad whose firmware runs
  // no scripts on an inserted card.
  bool batch_apdus = true;
  emv_contactless_config contactless;
  bool operator==(const emv_config&) const = default;
};

// eftd watches its pads: a ping every ping_interval_ms (answered even while the pad waits for
// the customer), get_status for the DUKPT counters, and a row per pad in the journal
// (`eftctl pads`). A pad that misses missed_pings_to_drop pings in a row is disconnected (it
// reconnects by itself); while it misses pings it is "unreachable".
struct pad_health_config {
  std::uint32_t ping_interval_ms = 15000;
  std::uint32_t missed_pings_to_drop = 3;
  std::uint32_t write_interval_ms = 60000;     // journal row refreshed at least this often
  std::uint32_t dukpt_warn_remaining = 10000;  // warn when a pad key has fewer transactions left
  bool operator==(const pad_health_config&) const = default;
};

// End of day ([settlement]): batch close with 0500 / 0320 (server/src/settlement.hpp).
struct settlement_config {
  // "HH:MM" local time: every day at this time eftd closes the open batches of every business
  // date before the current one (so pick a time after midnight, e.g. "00:30"). Empty: batches
  // close only on request (admin socket, `eftctl settlement close`) or at start-up.
  std::string cutover;
  // At start-up: close every earlier business date's open batches and finish any close a
  // crash interrupted.
  bool close_on_start = false;
  bool operator==(const settlement_config&) const = default;
};

// [admin]: the local admin listener (Unix domain socket, mode 0600, line-delimited JSON).
struct admin_config {
  // Relative paths resolve against eftd's working directory. Empty: no admin listener.
  std::filesystem::path socket = "var/eftd-admin.sock";
  bool operator==(const admin_config&) const = default;
};

// [backoffice]: the back-office web pages served on [listen.backoffice].
struct backoffice_config {
  // A logged-in session unused for this long is over (the user logs in again).
  std::uint32_t session_idle_s = 900;
  // Consecutive bad passwords that lock an account (an admin unlocks it).
  std::uint32_t lockout_after = 10;
  // Rows per page of the transaction search.
  std::uint32_t page_size = 50;
  bool operator==(const backoffice_config&) const = default;
};

// [[notify]]: outcome notifications to a back-office system (server/NOTIFY.md). Every final
// order outcome is queued in the journal (same transaction as the outcome) and POSTed as JSON
// over HTTPS, signed with HMAC-SHA256, retried with backoff until max age, then 'expired'.
struct notify_endpoint {
  // Names the endpoint in the outbox (journal notifications.endpoint) and in eftctl / the web
  // pages: required when there is more than one [[notify]], unique, [A-Za-z0-9._-], 1..64.
  std::string name;
  // The merchants whose outcomes go here; empty: every merchant. Each outcome is queued once
  // per endpoint that takes its merchant, with its own id and delivery state.
  std::vector<std::string> merchants;
  std::string url;  // https://host[:port]/path (http:// only to a loopback address)
  // Parsed from url.
  bool tls = true;
  std::string host;
  std::uint16_t port = 443;
  std::string target = "/";
  // The HMAC key: hex (at least 16 bytes), mode 0600. Required.
  std::filesystem::path secret_file;
  std::filesystem::path ca_file;  // CA that signed the receiver's certificate; required for https
  std::uint32_t timeout_ms = 5000;  // connect + TLS + request + answer, per attempt
  std::uint32_t max_age_h = 72;     // after this long a notification is 'expired' (3 days)
  std::uint32_t max_age_s = 0;      // > 0 overrides max_age_h (tests, drills)
  std::uint32_t retry_initial_ms = 10000;  // first retry delay, doubled per attempt
  std::uint32_t retry_max_ms = 1800000;    // ... up to this (30 min)
  std::vector<std::string> events{"order.final"};
  std::int64_t max_age_ms() const {
    return max_age_s > 0 ? std::int64_t{max_age_s} * 1000 : std::int64_t{max_age_h} * 3600 * 1000;
  }
  bool operator==(const notify_endpoint&) const = default;
};

struct logging {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text | json (JSON lines)
  std::filesystem::path file;   // empty = stderr
  bool operator==(const logging&) const = default;
};

struct timeouts {
  std::uint32_t card_read_ms = 60000;     // waiting for the customer to present a card
  std::uint32_t pad_command_ms = 5000;    // any pad command that needs no human
  std::uint32_t pos_idle_ms = 300000;     // POS connection silent for this long is closed
  std::uint32_t pos_heartbeat_ms = 5000;  // status heartbeat to the POS while a transaction runs
  bool operator==(const timeouts&) const = default;
};

// [ha]: a hot-standby pair (server/HA.md). Unset (enabled false): a single node.
struct ha_config {
  bool enabled = false;
  std::string node_id;  // this node as the witness knows it, e.g. "a"
  // Where tills reach this node (told by the other node when it is the standby):
  std::string pos_address;  // host:port
  std::string pad_address;  // host:port
  // This node's replication listener (the standby connects to the active's). TLS with a
  // client certificate from tls.client_ca_file is required off loopback.
  listener replication{"127.0.0.1", 9400};
  // The other node.
  struct peer_config {
    std::string id;
    std::string replication;  // host:port of its replication listener
    std::string pos_address;  // host:port tills use for it
    std::string pad_address;
    bool operator==(const peer_config&) const = default;
  } peer;
  std::string witness;  // host:port of `eftd witness`
  // sync: a batch is acknowledged (to the engine, hence before an acquirer send and before a
  // POS answer) only after the standby made it durable too. async: at once; a promotion can
  // lose what the standby had not received yet.
  std::string mode = "sync";
  std::uint32_t lease_ms = 3000;          // a lease lasts this long from its request
  std::uint32_t promote_after_ms = 6000;  // the standby waits this long without the active
  std::uint32_t heartbeat_ms = 500;       // renewals and link heartbeats
  std::uint32_t sync_timeout_ms = 2000;   // sync mode: a standby this late is declared behind
  std::uint32_t stan_gap = 1000;          // STANs skipped at a promotion
  std::uint32_t log_keep = 100000;        // replication log entries kept behind the standby
  bool operator==(const ha_config&) const = default;
};

struct server_config {
  std::string node_name = "eftd";
  listener pos{"127.0.0.1", 9100};
  listener pad{"127.0.0.1", 9200};
  // [listen.metrics]: Prometheus text metrics over HTTP (GET /metrics). Unset: no listener.
  // Plaintext, so loopback addresses only (scrape through a local agent or a tunnel).
  std::optional<listener> metrics;
  // [listen.backoffice]: the back-office web pages over HTTPS. Unset: no listener. Without
  // [listen.backoffice.tls] eftd makes a self-signed certificate at start and logs its
  // SHA-256 fingerprint.
  std::optional<listener> backoffice;
  backoffice_config backoffice_web;
  std::filesystem::path bin_table;  // CSV of BIN ranges -> scheme; relative to the config file
  journal journal_cfg;
  logging log;
  timeouts timeout;
  keys_config keys;
  cvm_config cvm;
  emv_config emv;
  pad_health_config pad_health;
  settlement_config settlement;
  admin_config admin;
  ha_config ha;
  limits default_limits;
  std::vector<merchant> merchants;
  std::vector<store> stores;
  std::vector<till> tills;
  std::vector<config::pad> pads;  // qualified: the member `pad` above hides the type
  std::vector<acquirer> acquirers;
  std::vector<route> routes;
  std::vector<prompt_rule> prompts;
  // Outcome receivers, each with its own outbox rows and delivery loop; the first one also
  // delivers rows written before endpoints had names (server/NOTIFY.md).
  std::vector<notify_endpoint> notify;

  const till* find_till(std::string_view id) const;
  const store* find_store(std::string_view id) const;
  const merchant* find_merchant(std::string_view id) const;
  const config::pad* find_pad(std::string_view id) const;
  const acquirer* find_acquirer(std::string_view name) const;
  // The merchant a till belongs to (through its store); nullptr only for an unvalidated config.
  const merchant* merchant_of(const till& t) const;
  // Longest-prefix BIN route for a PAN's leading digits (routes without scheme or merchant
  // only); nullptr if no route.
  const route* route_for(std::string_view pan_digits) const;
  // The most specific route (see `route`) for a card's leading digits, its scheme ("" if
  // unknown) and the merchant id; nullptr if none matches.
  const route* route_for(std::string_view pan_digits, std::string_view scheme,
                         std::string_view merchant_id) const;
  // Effective limits for a till (till, then its merchant, then defaults).
  limits effective_limits(const till& t) const;
  // Effective EMV parameters: [emv], then the merchant's [merchants.emv], then the till's
  // [tills.emv]. An unknown merchant or till adds nothing; without a merchant id, the till's
  // merchant (through its store) is used.
  emv_config emv_for(std::string_view merchant_id, std::string_view till_id) const;
  bool operator==(const server_config&) const = default;
};

// Parse TOML text. `base_dir` resolves relative paths (journal, bin table, log file).
result<server_config> parse_config(std::string_view toml_text, const std::filesystem::path& base_dir);
// Read and parse a file; relative paths resolve against the file's directory.
result<server_config> load_config(const std::filesystem::path& file);

// Command-line override "key=value" (eftd --set). Supported keys:
//   server.node_name, listen.pos.address, listen.pos.port, listen.pad.address, listen.pad.port,
//   acquirers.<name>.host, acquirers.<name>.port (the first link),
//   acquirers.<name>.links (host:port,host:port: replaces every link), acquirers.<name>.sign_on (true|false),
//   acquirers.<name>.echo_interval_ms, acquirers.<name>.reconnect_backoff_ms,
//   acquirers.<name>.reconnect_backoff_max_ms (0..3600000), journal.path, journal.key_file, keys.store,
//   keys.master_key_file, keys.require_p2pe, cvm.magstripe_pin, pad_health.ping_interval_ms,
//   pad_health.write_interval_ms, settlement.cutover, settlement.close_on_start, admin.socket,
//   listen.backoffice.address, listen.backoffice.port, backoffice.session_idle_s,
//   backoffice.lockout_after, log.level, log.format, log.file
// Values are validated like the file's; relative paths resolve against the current directory.
// Error code "config.override".
result<void> apply_override(server_config& cfg, std::string_view key_eq_value);

// Start-up check after overrides: fails ("config.not_ready", one line per problem) while a
// placeholder is left, i.e. an acquirer with port 0.
result<void> check_ready(const server_config& cfg);

// What a reload (`eftctl reload`, SIGHUP) would change, going from the configuration in force
// `now` to `next` (both loaded, overridden and checked). The value lists the changed sections
// that eftd applies at run time, e.g. {"tills: added T09", "limits"}; empty: nothing changed.
// Reloadable: merchants, stores, tills, pads (added, changed, removed or revoked), [limits] and
// per-merchant/per-till limits and EMV overrides, prompts, cvm, routes, timeouts, pad_health,
// log.level. Everything else is read once at start-up (listeners, journal, keys, EMV CA keys,
// BIN table, acquirer links, notify, settlement, admin, ha, backoffice, server.node_name,
// log.format and log.file): a change there fails with "config.needs_restart", one line per key
// ("listen.pos.port changed: needs a restart"), and nothing is applied.
result<std::vector<std::string>> reload_changes(const server_config& now, const server_config& next);

}  // namespace eftd::config
