// The connection(s) to one acquirer host, shared by every transaction routed to it.
//
// request() sends one ISO 8583 message and waits for its response. Many requests may be in
// flight at once on one connection; responses are matched to requests by the explicit key
// in matching.hpp (response MTI + 41 + 11 + 7), never by arrival order or STAN alone.
// Everything a link owns runs on its own strand, so request() may be awaited from any
// executor or thread.
//
// Several links (endpoints): an acquirer may offer more than one address (host:port, then
// extra_links, in order). Each endpoint has its own TCP connection, sign-on, echo tests,
// backoff and its own in-flight requests: a response is only ever matched on the connection
// its request went out on. A request goes to the first endpoint, in configuration order, that
// can take it (primary/secondary, not round-robin: a host's operators see one busy link and
// warm standbys, and a test can tell which endpoint a request used). An endpoint in its
// reconnect backoff is skipped without a connect attempt; an endpoint whose connect (or
// sign-on, or TLS handshake) fails is skipped after that attempt. Only when no endpoint can
// take the request does it fail with acq.connect_failed (the message lists each endpoint's
// reason), so a route's fallback acquirer still works. A request that was sent is never
// moved to another endpoint: a timeout or a dropped connection stays in doubt.
//
// TLS (link_config::tls set): TLS 1.2 or newer, the host's certificate verified against
// tls.ca_file only (no system store) and against tls.server_name, or the endpoint's host when
// empty (an IP address is matched against the certificate's IP entries). A client certificate
// is presented when configured. A failed handshake is a connect failure (backoff, next
// endpoint); there is never a plaintext fallback. A host that refuses the client certificate
// after a TLS 1.3 handshake (a certificate alert before any response) fails the requests on
// that connection as acq.connect_failed: the host never accepted the connection, so it never
// processed them.
//
// Connection policy: an endpoint connects lazily on the first request it is given
// (connect_timeout bounds resolve + connect + TLS handshake). When `sign_on` is set, each new
// connection first sends 0800 with field 70 = 001 and carries no request until the host
// answers it 00. When a connection fails, every request in flight on it fails and the
// endpoint stays disconnected until the next request, which reconnects. When a connect (or
// sign-on) fails, the endpoint's next attempt waits for a capped exponential backoff
// (reconnect_backoff_initial, doubled per failure up to reconnect_backoff_max, reset by a
// success); the endpoint is skipped meanwhile, and with no other endpoint requests fail at
// once with acq.connect_failed saying when the next attempt is, so a dead host is not
// hammered and callers can fall back at once.
//
// Keep-alives and network management: zero-length frames from the host are keep-alives,
// consumed silently and never answered. A host's echo test (0800/0801 with 70 = 301) is
// answered once with 0810 (39 = 00); any 0810 the host sends is a response and is only ever
// matched or dropped, never answered, so the two ends cannot ping-pong. With `echo_interval`
// set, each connection sends its own 0800/301 after that long without traffic on it; an
// echo left unanswered for response_timeout drops the connection (acq.disconnected). Every
// frame, message or network management, is written whole by one writer: nothing interleaves.
// A response that matches nothing in flight (late after a timeout, a duplicate, or one with
// an altered key) is logged via describe() and dropped.
//
// Message MAC (link_config::mac set; the rule is in message_mac.hpp): every request except
// 08xx goes out with its MAC in field 64 (128 with a secondary bitmap). A response whose MAC is
// missing or wrong is not trusted: it is dropped with a warning naming acq.bad_mac (never the
// MAC or key) and counted in bad_macs, so its request ends as if no answer came (acq.timeout,
// in doubt, and the caller's reversal path runs). Callers get responses without the MAC field.
//
// Trace: set_trace(true) logs every message sent and received (info level) via describe(),
// which shows card-data fields (2, 14, 35, 52, 55, ...) only as their length.
//
// Error codes of request(), and whether the host may have seen the request (what a caller
// needs to decide on a reversal):
//   acq.bad_request          not sent: no response expected or a key field missing (names it)
//   acq.encode_error         not sent: the message does not fit the dialect (names the field),
//                            or its MAC could not be computed
//   acq.duplicate_request    not sent: a request with the same key is already in flight
//   acq.connect_failed       not sent (or refused by the host's TLS before it was read): on
//                            every endpoint, resolve/connect/TLS failed or exceeded
//                            connect_timeout, the sign-on was refused or unanswered, or the
//                            reconnect backoff runs
//   acq.timeout              in doubt: sent, no response within response_timeout
//   acq.disconnected         in doubt: the connection dropped (or close()) while waiting
//   acq.decode_error         in doubt: the response (or the stream) could not be decoded
//   acq.cancelled            in doubt: the awaiting coroutine was cancelled
// link::create fails with acq.unknown_dialect, a framing error, or acq.tls_config (a TLS file
// that cannot be loaded, named in the message).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eftd/acq/framing.hpp"
#include "eftd/acq/message.hpp"
#include "eftd/acq/message_mac.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acq {

struct link_endpoint {
  std::string host;
  std::uint16_t port = 0;
};

// TLS towards the host. All files are PEM.
struct link_tls {
  std::string ca_file;      // CA(s) that issue the host's certificate; required for TLS
  std::string cert_file;    // client certificate chain, when the host asks for one
  std::string key_file;     // its private key (with cert_file)
  std::string server_name;  // name (or IP) the host's certificate must carry; empty: the host
  bool enabled() const { return !ca_file.empty(); }
};

struct link_config {
  std::string name;  // for logs: "acquirer-a"
  // The first (primary) endpoint.
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  // Further endpoints, tried in order after host:port (see "Several links" above).
  std::vector<link_endpoint> extra_links;
  link_tls tls;  // empty ca_file: plaintext
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds response_timeout{30000};
  std::string dialect = "iso87-ascii";
  frame_options framing{};  // 2-byte binary length header by default
  bool sign_on = false;     // 0800/001 after each connect, before the first request
  // Send 0800/301 after this long without traffic; zero: never.
  std::chrono::milliseconds echo_interval{0};
  // Wait before the next connect after a failed one: doubled per failure up to the maximum.
  // Zero: reconnect on the next request, however often the host refuses.
  std::chrono::milliseconds reconnect_backoff_initial{1000};
  std::chrono::milliseconds reconnect_backoff_max{30000};
  // Time source for the backoff (tests pin it); empty: std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
  // Signs requests and checks responses (see "Message MAC" above); empty: no MAC.
  mac_function mac;
};

struct link_stats {
  std::uint64_t connects = 0;     // successful connections
  std::uint64_t sent = 0;         // requests written
  std::uint64_t matched = 0;      // responses delivered to a waiting request
  std::uint64_t unmatched = 0;    // responses dropped (late or unknown)
  std::uint64_t keep_alives = 0;  // zero-length frames received
  std::uint64_t timeouts = 0;
  std::uint64_t decode_errors = 0;
  std::uint64_t sign_ons = 0;          // sign-ons the host answered 00
  std::uint64_t echoes_sent = 0;       // echo tests sent by the link (idle)
  std::uint64_t echoes_answered = 0;   // host echo tests answered with 0810
  std::uint64_t connect_failures = 0;  // connect or sign-on attempts that failed
  std::uint64_t backoff_refusals = 0;  // requests refused (or passed on) during the backoff
  std::uint64_t bad_macs = 0;          // responses dropped for a missing or wrong MAC
};

// One endpoint's view: which it is, whether it is connected now, and its own counters.
struct endpoint_stats {
  std::string endpoint;  // "host:port"
  bool connected = false;
  link_stats counters;
};

// Loads cfg.tls's files as link::create does, so start-up can refuse a configuration whose
// TLS files are unusable: acq.tls_config naming the file, or success (also without TLS).
status check_tls(const link_config& cfg);

class link : public std::enable_shared_from_this<link> {
  struct private_tag {
    explicit private_tag() = default;
  };

 public:
  // "acq.unknown_dialect" or a framing error for a bad config.
  static result<std::shared_ptr<link>> create(boost::asio::any_io_executor ex, link_config cfg);

  link(private_tag, boost::asio::any_io_executor ex, link_config cfg);
  link(const link&) = delete;
  link& operator=(const link&) = delete;
  ~link();

  // Sends `req` and returns its matched response, or an error listed above. `req` is taken by
  // value: the link owns its copy (wiped when done), the caller's message is never shared.
  boost::asio::awaitable<result<message>> request(message req);

  // Drops the connection now; requests in flight fail with acq.disconnected. A later request()
  // connects again. An open connection keeps the link alive: call close() before dropping the
  // last reference.
  void close();

  // Logs each message sent and received, card data masked. Takes effect for the next message;
  // callable from any thread.
  void set_trace(bool on) noexcept;
  bool trace() const noexcept;

  const link_config& config() const noexcept;
  // A snapshot, taken on the link's strand: the sum over all endpoints.
  boost::asio::awaitable<link_stats> stats();
  // A snapshot per endpoint, in configuration order.
  boost::asio::awaitable<std::vector<endpoint_stats>> per_endpoint();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::acq
