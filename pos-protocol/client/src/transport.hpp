// Byte transport under both POS clients: a connected non-blocking TCP socket, optionally with
// TLS on top (OpenSSL directly on the socket; no event loop). Private to the client library.
//
// Every operation is non-blocking and reports which readiness (read or write) the caller has to
// poll() for before trying again, because a TLS read may need the socket writable and a TLS
// write may need it readable. read_some()/write_some() may be called from two threads at once
// (the sync client's abort() writes while another thread reads): the TLS state is guarded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "eftd/core/result.hpp"
#include "eftd/pos/client.hpp"

namespace eftd::pos::detail {

using clock = std::chrono::steady_clock;

struct io_result {
  enum class state { done, want_read, want_write, closed, failed };
  state st = state::done;
  std::size_t n = 0;    // bytes transferred when st == done
  std::string message;  // why, when st == failed
};

class transport {
 public:
  virtual ~transport() = default;
  virtual int fd() const = 0;
  virtual io_result read_some(char* buf, std::size_t len) = 0;
  virtual io_result write_some(const char* buf, std::size_t len) = 0;
  // Stops both directions; the peer sees EOF. Safe to call more than once.
  virtual void shutdown() = 0;
};

// Resolves `host`, connects within the deadline and, with options.tls set, completes the TLS
// handshake within the same deadline. Errors: pos.disconnected (refused, unreachable, TLS
// handshake failed: ...), pos.timeout (deadline passed).
eftd::result<std::unique_ptr<transport>> open_transport(const std::string& host, std::uint16_t port,
                                                        clock::time_point deadline,
                                                        const client_options& options);

// `from + d`, saturating at time_point::max() (which means "no deadline"), so a timeout set to
// milliseconds::max() to wait for ever cannot overflow.
inline clock::time_point deadline_after(clock::time_point from, std::chrono::milliseconds d) {
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - from);
  return d >= room ? clock::time_point::max() : from + d;
}

// Milliseconds left until `deadline` for poll(): 0 when passed, rounded up so poll() does not
// wake a hair early and spin, capped so it fits an int. -1 for "no deadline".
int poll_timeout_ms(clock::time_point deadline);

}  // namespace eftd::pos::detail
