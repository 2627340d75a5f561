// Outcome notifications to a back-office system (server/NOTIFY.md, config [[notify]]).
//
// The journal writer puts a 'pending' row in the notifications outbox in the same transaction
// that makes an order final (writer_options::notifications). The notifier POSTs the rows to
// the endpoint oldest first, one in flight (so the receiver sees outcomes in order), each
// signed with HMAC-SHA256 over "<timestamp>.<body>":
//   2xx                        -> 'delivered'
//   anything else, no answer   -> retried with doubling backoff (retry_initial_ms .. retry_max_ms)
//   older than the maximum age -> 'expired' (an event in the journal and a warning), and the
//                                 next one goes: a receiver that refuses one body blocks the
//                                 queue for max age at most, never forever.
// Each [[notify]] endpoint has its own notifier, its own rows in the outbox (one per outcome
// whose merchant it takes, schema v14) and so its own order and backoff: a receiver that is down
// holds up only its own queue.
// Delivery state, attempts, the next attempt and the last error are journaled with every try,
// so the queue resumes after a restart where it stopped. The receiver deduplicates on the
// X-Eftd-Notification-Id header (a POST whose answer was lost is sent again).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "eftd/core/config.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/journal/records.hpp"

namespace eftd::server {

struct server_context;

// Reads an HMAC key file: hex digits (at least 16 bytes' worth), optional trailing newline,
// a regular file not accessible by group or others.
// Errors: notify.secret_io, notify.secret_insecure_mode, notify.secret_malformed.
result<secure_bytes> read_notify_secret(const std::filesystem::path& file);

// "sha256=" + lower-case hex HMAC-SHA256(secret, timestamp + "." + body): the
// X-Eftd-Signature header (NOTIFY.md tells receivers how to check it).
std::string notify_signature(const secure_bytes& secret, std::string_view timestamp_ms,
                             std::string_view body);

// The configured endpoint that delivers the outbox rows of `row_endpoint` (the name in the
// journal; "" = rows from before v14 or of an unnamed endpoint: the first one); nullptr if none.
const config::notify_endpoint* notify_endpoint_for(const std::vector<config::notify_endpoint>& endpoints,
                                                   std::string_view row_endpoint);

// An operator's "send it again now" (admin notify_retry, the back office's Retry button): an
// expired notification goes back to pending with a fresh maximum age of its endpoint; a pending
// one is tried at once (its backoff is cut short). Both start from `now_ms`.
// Errors: notify.already_delivered, notify.unknown_endpoint (its endpoint is no longer configured).
result<journal::notification_updated> notify_retry_record(
    const journal::notification_row& n, const std::vector<config::notify_endpoint>& endpoints,
    std::int64_t now_ms);

class notifier {
 public:
  // Reads the secret and the CA file and opens a journal reader (after the writer migrated).
  // legacy_rows: this endpoint also delivers the rows of endpoint "" (the first endpoint).
  // Errors: the secret's, notify.tls (CA file), journal.* (reader).
  static result<std::shared_ptr<notifier>> open(server_context& ctx, const config::notify_endpoint& endpoint,
                                                bool legacy_rows);

  virtual ~notifier() = default;

  // Starts the delivery loop; it first reads what the journal holds as pending.
  virtual void start() = 0;
  // Thread-safe: new rows were committed (the writer's on_notifications hook) or a row was
  // reset; the loop looks again at once.
  virtual void wake() = 0;
  // Thread-safe; the loop ends at its next step (an in-flight POST is abandoned).
  virtual void stop() = 0;

 protected:
  notifier() = default;
};

}  // namespace eftd::server
