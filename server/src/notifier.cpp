#include "notifier.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <optional>

#include "context.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/crypto.hpp"
#include "eftd/journal/reader.hpp"

namespace eftd::server {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

result<secure_bytes> read_notify_secret(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return make_error("notify.secret_io", file.string() + ": cannot open the secret file");
  struct stat st {};
  std::string text;
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (ok && (st.st_mode & 077) != 0) {
    ::close(fd);
    return make_error("notify.secret_insecure_mode",
                      file.string() + ": secret file is accessible by group or others; chmod 600 it");
  }
  char buf[512];
  while (ok) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0) ok = false;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 4096) ok = false;
  }
  ::close(fd);
  if (!ok) return make_error("notify.secret_io", file.string() + ": cannot read the secret file");
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.pop_back();
  auto raw = from_hex(text);
  // The text held key material: wipe it before it is freed.
  std::fill(text.begin(), text.end(), '\0');
  if (!raw || raw->size() < 16) {
    if (raw) std::fill(raw->begin(), raw->end(), 0);
    return make_error("notify.secret_malformed", file.string() + ": expected at least 32 hex digits");
  }
  secure_bytes key(*raw);
  std::fill(raw->begin(), raw->end(), 0);
  return key;
}

std::string notify_signature(const secure_bytes& secret, std::string_view timestamp_ms,
                             std::string_view body) {
  std::string signed_text;
  signed_text.reserve(timestamp_ms.size() + 1 + body.size());
  signed_text.append(timestamp_ms).append(".").append(body);
  const auto mac = hmac_sha256(secret.view(), as_bytes(signed_text));
  std::string hex = to_hex(mac);
  std::transform(hex.begin(), hex.end(), hex.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return "sha256=" + hex;
}

const config::notify_endpoint* notify_endpoint_for(const std::vector<config::notify_endpoint>& endpoints,
                                                   std::string_view row_endpoint) {
  if (endpoints.empty()) return nullptr;
  if (row_endpoint.empty()) return &endpoints.front();
  for (const auto& ep : endpoints)
    if (ep.name == row_endpoint) return &ep;
  return nullptr;
}

result<journal::notification_updated> notify_retry_record(
    const journal::notification_row& n, const std::vector<config::notify_endpoint>& endpoints,
    std::int64_t now_ms) {
  const auto* ep = notify_endpoint_for(endpoints, n.endpoint);
  if (ep == nullptr)
    return make_error("notify.unknown_endpoint",
                      fmt::format("notification {} belongs to endpoint '{}', which is not configured",
                                  n.notification_id, n.endpoint));
  journal::notification_updated u;
  u.notification_id = n.notification_id;
  u.next_attempt_ms = now_ms;
  u.updated_ms = now_ms;
  if (n.state == journal::notification_states::expired) {
    u.expect_state = std::string(journal::notification_states::expired);
    u.state = std::string(journal::notification_states::pending);
    u.expires_ms = now_ms + ep->max_age_ms();
  } else if (n.state == journal::notification_states::pending) {
    // The loop may record an attempt at the same moment: expect_state makes one of the two
    // writes fail cleanly rather than mix them.
    u.expect_state = std::string(journal::notification_states::pending);
  } else {
    return make_error("notify.already_delivered",
                      fmt::format("notification {} was delivered already", n.notification_id));
  }
  return u;
}

namespace {

// How one POST ended: a 2xx is delivered, everything else is retried.
struct post_outcome {
  bool delivered = false;
  std::string error;  // for people: "HTTP 503", "connect: Connection refused", ...
};

class notifier_impl final : public notifier, public std::enable_shared_from_this<notifier_impl> {
 public:
  notifier_impl(server_context& ctx, config::notify_endpoint ep, bool legacy_rows, secure_bytes secret,
                std::shared_ptr<ssl::context> tls, journal::reader reader)
      : ctx_(ctx),
        ep_(std::move(ep)),
        legacy_rows_(legacy_rows),
        label_(ep_.name.empty() ? ep_.host : ep_.name),
        secret_(std::move(secret)),
        tls_(std::move(tls)),
        reader_(std::move(reader)),
        strand_(asio::make_strand(ctx.io)),
        timer_(strand_) {}

  void start() override {
    auto self = shared_from_this();
    asio::co_spawn(strand_, run(), [self](std::exception_ptr e) {
      if (e) spdlog::error("notify: the delivery loop stopped by an exception");
    });
    spdlog::info("notify: delivering outcome notifications to {} ({}{})", ep_.url, label_,
                 ep_.merchants.empty() ? ", every merchant"
                                       : ", merchants " + fmt::format("{}", fmt::join(ep_.merchants, " ")));
  }

  void wake() override {
    auto self = shared_from_this();
    asio::post(strand_, [self] {
      self->woken_ = true;
      self->timer_.cancel();
    });
  }

  void stop() override {
    stopped_ = true;
    wake();
  }

 private:
  std::int64_t backoff_ms(std::int64_t attempts) const {
    std::int64_t d = ep_.retry_initial_ms;
    for (std::int64_t i = 1; i < attempts && d < ep_.retry_max_ms; ++i) d *= 2;
    return std::min<std::int64_t>(d, ep_.retry_max_ms);
  }

  // Sleeps until `until_ms` (clock time) or a wake-up, whichever comes first; `until_ms`
  // empty: until a wake-up.
  asio::awaitable<void> sleep_until(std::optional<std::int64_t> until_ms) {
    if (woken_) {
      woken_ = false;
      co_return;
    }
    if (until_ms) {
      const auto wait = std::max<std::int64_t>(0, *until_ms - ctx_.clock.now_ms());
      timer_.expires_after(std::chrono::milliseconds(wait));
    } else {
      timer_.expires_at(asio::steady_timer::time_point::max());
    }
    auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;
    woken_ = false;
  }

  asio::awaitable<void> run() {
    while (!stopped_) {
      auto pending = reader_.pending_notifications(ep_.name, legacy_rows_, 1);
      if (!pending) {
        spdlog::error("notify {}: cannot read the outbox: {}", label_, pending.err().message);
        const auto retry_at = ctx_.clock.now_ms() + 1000;
        co_await sleep_until(retry_at);
        continue;
      }
      if (pending->empty()) {
        co_await sleep_until(std::nullopt);
        continue;
      }
      const journal::notification_row n = pending->front();
      const auto now = ctx_.clock.now_ms();
      const auto expires = n.expires_ms.value_or(n.created_ms + ep_.max_age_ms());
      if (now >= expires) {
        co_await expire(n, now);
        continue;
      }
      if (n.next_attempt_ms > now) {
        const auto until = std::min(n.next_attempt_ms, expires);
        co_await sleep_until(until);
        continue;
      }
      const post_outcome out = co_await post(n);
      if (stopped_) break;
      co_await record(n, out);
    }
  }

  asio::awaitable<void> expire(const journal::notification_row& n, std::int64_t now) {
    spdlog::warn("notify {}: notification {} of order {} expired undelivered after {} attempt(s): {}", label_,
                 n.notification_id, n.order_id, n.attempts, n.last_error.value_or("never sent"));
    journal::batch b;
    journal::notification_updated u;
    u.notification_id = n.notification_id;
    u.expect_state = std::string(journal::notification_states::pending);
    u.state = std::string(journal::notification_states::expired);
    u.updated_ms = now;
    b.records.push_back(u);
    journal::event_appended e;
    e.order_id = n.order_id;
    e.at_ms = now;
    e.actor = journal::actor::server;
    e.kind = "notification_expired";
    e.reason = fmt::format("outcome notification {} not delivered to {} within its maximum age",
                           n.notification_id, label_);
    e.detail = fmt::format("attempts {}; last error: {}", n.attempts, n.last_error.value_or("none"));
    b.records.push_back(e);
    const auto st = co_await commit(ctx_, std::move(b));
    if (!st) co_await journal_trouble(st);
  }

  asio::awaitable<void> record(const journal::notification_row& n, const post_outcome& out) {
    const auto now = ctx_.clock.now_ms();
    journal::notification_updated u;
    u.notification_id = n.notification_id;
    u.expect_state = std::string(journal::notification_states::pending);
    u.attempts = n.attempts + 1;
    u.updated_ms = now;
    if (out.delivered) {
      u.state = std::string(journal::notification_states::delivered);
      u.delivered_ms = now;
      spdlog::debug("notify {}: {} delivered (attempt {})", label_, n.notification_id, n.attempts + 1);
    } else {
      u.next_attempt_ms = now + backoff_ms(n.attempts + 1);
      u.last_error = out.error;
      spdlog::info("notify {}: {} not delivered (attempt {}): {}; next try in {} ms", label_,
                   n.notification_id, n.attempts + 1, out.error, *u.next_attempt_ms - now);
    }
    journal::batch b;
    b.records.push_back(u);
    const auto st = co_await commit(ctx_, std::move(b));
    if (!st) co_await journal_trouble(st);
  }

  // An operator's retry may have changed the row under us (state_conflict): look again. A
  // journal that cannot write: wait a little rather than spin.
  asio::awaitable<void> journal_trouble(const status& st) {
    if (st.err().code == "journal.state_conflict") co_return;
    spdlog::error("notify {}: cannot record a delivery state: {}", label_, st.err().message);
    const auto retry_at = ctx_.clock.now_ms() + 1000;
    co_await sleep_until(retry_at);
  }

  asio::awaitable<post_outcome> post(const journal::notification_row& n) {
    const auto timestamp = std::to_string(ctx_.clock.now_ms());
    http::request<http::string_body> req{http::verb::post, ep_.target, 11};
    req.set(http::field::host,
            ep_.port == (ep_.tls ? 443 : 80) ? ep_.host : fmt::format("{}:{}", ep_.host, ep_.port));
    req.set(http::field::user_agent, "eftd-notify");
    req.set(http::field::content_type, "application/json");
    req.set("X-Eftd-Notification-Id", n.notification_id);
    req.set("X-Eftd-Event", n.event);
    req.set("X-Eftd-Timestamp", timestamp);
    req.set("X-Eftd-Signature", notify_signature(secret_, timestamp, n.payload));
    req.body() = n.payload;
    req.keep_alive(false);
    req.prepare_payload();

    // One deadline for the whole attempt: resolve, connect, handshake, request and answer.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ep_.timeout_ms);
    tcp::resolver resolver(strand_);
    const std::string port_text = std::to_string(ep_.port);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(ep_.host, port_text, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return post_outcome{false, "resolve: " + rec.message()};

    beast::tcp_stream tcp_layer(strand_);
    tcp_layer.expires_at(deadline);
    auto [cec, ep] = co_await tcp_layer.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
    (void)ep;
    if (cec) co_return post_outcome{false, "connect: " + cec.message()};

    http::response<http::string_body> res;
    beast::flat_buffer buffer;
    if (!ep_.tls) {
      auto [wec, wn] = co_await http::async_write(tcp_layer, req, asio::as_tuple(asio::use_awaitable));
      if (wec) co_return post_outcome{false, "send: " + wec.message()};
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      auto [rdec, rn] =
          co_await http::async_read(tcp_layer, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (rdec) co_return post_outcome{false, "answer: " + rdec.message()};
      res = parser.release();
      beast::error_code ignore;
      tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignore);
    } else {
      beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_layer), *tls_);
      // SNI, and the certificate must name the host we meant (not just chain to the CA).
      if (!SSL_set_tlsext_host_name(stream.native_handle(), ep_.host.c_str()))
        co_return post_outcome{false, "tls: cannot set the server name"};
      stream.set_verify_callback(ssl::host_name_verification(ep_.host));
      beast::get_lowest_layer(stream).expires_at(deadline);
      auto [hec] =
          co_await stream.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
      if (hec) co_return post_outcome{false, "tls handshake: " + hec.message()};
      auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
      if (wec) co_return post_outcome{false, "send: " + wec.message()};
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      auto [rdec, rn] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (rdec) co_return post_outcome{false, "answer: " + rdec.message()};
      res = parser.release();
      // The answer is in; a receiver that drops the connection without close_notify is fine.
      beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(500));
      auto [sec] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
      (void)sec;
    }
    const unsigned code = res.result_int();
    if (code >= 200 && code < 300) co_return post_outcome{true, {}};
    co_return post_outcome{false, fmt::format("HTTP {}", code)};
  }

  server_context& ctx_;
  const config::notify_endpoint ep_;
  const bool legacy_rows_;
  const std::string label_;  // for the log: the name, else the host
  const secure_bytes secret_;
  std::shared_ptr<ssl::context> tls_;
  journal::reader reader_;  // used on the strand only
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  bool woken_ = false;  // on the strand
  std::atomic<bool> stopped_{false};
};

}  // namespace

result<std::shared_ptr<notifier>> notifier::open(server_context& ctx, const config::notify_endpoint& endpoint,
                                                 bool legacy_rows) {
  auto secret = read_notify_secret(endpoint.secret_file);
  if (!secret) return secret.err();
  auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
  if (endpoint.tls) {
    boost::system::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                     ec);
    if (!ec) tls->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) tls->load_verify_file(endpoint.ca_file.string(), ec);
    if (ec)
      return make_error("notify.tls", fmt::format("ca_file {}: {}", endpoint.ca_file.string(), ec.message()));
  }
  auto reader = journal::reader::open(ctx.cfg().journal_cfg.path);
  if (!reader) return reader.err();
  return std::shared_ptr<notifier>(std::make_shared<notifier_impl>(
      ctx, endpoint, legacy_rows, std::move(*secret), std::move(tls), std::move(*reader)));
}

}  // namespace eftd::server
