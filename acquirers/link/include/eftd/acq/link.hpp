// One TCP connection to an acquirer host, shared by every transaction routed to it.
//
// request() sends one ISO 8583 message and waits for its response. Many requests may be in
// flight at once on the one connection; responses are matched to requests by the explicit key
// in matching.hpp (response MTI + 41 + 11 + 7), never by arrival order or STAN alone.
// Everything a link owns runs on its own strand, so request() may be awaited from any
// executor or thread.
//
// Connection policy: the link connects lazily on the first request (connect_timeout bounds
// resolve + connect). When the connection fails, every request in flight fails and the link
// stays disconnected until the next request, which reconnects. Zero-length frames from the
// host are keep-alives: consumed silently, never answered. A response that matches nothing
// in flight (late after a timeout, or unknown) is logged via describe() and dropped.
//
// Error codes of request(), and whether the host may have seen the request (what a caller
// needs to decide on a reversal):
//   acq.bad_request          not sent: no response expected or a key field missing (names it)
//   acq.encode_error         not sent: the message does not fit the dialect (names the field)
//   acq.duplicate_request    not sent: a request with the same key is already in flight
//   acq.connect_failed       not sent: resolve/connect failed or exceeded connect_timeout
//   acq.timeout              in doubt: sent, no response within response_timeout
//   acq.disconnected         in doubt: the connection dropped (or close()) while waiting
//   acq.decode_error         in doubt: the response (or the stream) could not be decoded
//   acq.cancelled            in doubt: the awaiting coroutine was cancelled
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "eftd/acq/framing.hpp"
#include "eftd/acq/message.hpp"
#include "eftd/core/result.hpp"

namespace eftd::acq {

struct link_config {
  std::string name;  // for logs: "acquirer-a"
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds response_timeout{30000};
  std::string dialect = "iso87-ascii";
  frame_options framing{};  // 2-byte binary length header by default
};

struct link_stats {
  std::uint64_t connects = 0;     // successful connections
  std::uint64_t sent = 0;         // requests written
  std::uint64_t matched = 0;      // responses delivered to a waiting request
  std::uint64_t unmatched = 0;    // responses dropped (late or unknown)
  std::uint64_t keep_alives = 0;  // zero-length frames received
  std::uint64_t timeouts = 0;
  std::uint64_t decode_errors = 0;
};

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

  const link_config& config() const noexcept;
  // A snapshot, taken on the link's strand.
  boost::asio::awaitable<link_stats> stats();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::acq
