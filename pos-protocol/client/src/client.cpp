// Synchronous POS client over a non-blocking socket (plain or TLS, transport.hpp) with poll()
// deadlines. A blocking client needs no event loop: one request at a time, every wait bounded.
#include "eftd/pos/client.hpp"

#include <poll.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <type_traits>
#include <utility>

#include "eftd/pos/codec.hpp"
#include "requests.hpp"
#include "transport.hpp"

namespace eftd::pos {
namespace {

using detail::clock;
using detail::io_result;

eftd::error make(std::string_view code, std::string message) {
  return eftd::error{std::string(code), std::move(message)};
}

}  // namespace

struct client::impl {
  std::unique_ptr<detail::transport> io;
  client_options opts;
  line_reader reader;
  std::mutex write_mu;
  std::atomic<bool> broken{false};
  std::atomic<std::uint64_t> counter{0};
  std::atomic<std::uint64_t> epoch{0};

  std::string fresh_id() { return "c" + std::to_string(++counter); }

  // After an I/O failure the byte stream is no longer trustworthy: every later call fails
  // fast with pos.disconnected and the POS reconnects.
  eftd::error fail(std::string_view code, std::string message) {
    broken = true;
    return make(code, std::move(message));
  }

  // Waits for the readiness a TLS or socket operation asked for.
  eftd::status wait_for(io_result::state want, clock::time_point deadline, std::string_view timeout_text) {
    for (;;) {
      pollfd p{io->fd(), static_cast<short>(want == io_result::state::want_write ? POLLOUT : POLLIN), 0};
      const int r = ::poll(&p, 1, detail::poll_timeout_ms(deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return fail(codes::timeout, std::string(timeout_text));
      if (r < 0) return fail(codes::disconnected, std::string("poll failed: ") + std::strerror(errno));
      return {};
    }
  }

  eftd::status send(const message& m) {
    if (broken) return make(codes::disconnected, "connection is closed");
    const std::string line = encode(m);
    std::lock_guard lock(write_mu);
    const auto deadline = detail::deadline_after(clock::now(), opts.write_timeout);
    std::size_t off = 0;
    while (off < line.size()) {
      const io_result r = io->write_some(line.data() + off, line.size() - off);
      switch (r.st) {
        case io_result::state::done:
          off += r.n;
          break;
        case io_result::state::want_read:
        case io_result::state::want_write:
          if (auto s = wait_for(r.st, deadline, "timed out writing to the server"); !s) return s;
          break;
        case io_result::state::closed:
          return fail(codes::disconnected, "server closed the connection");
        case io_result::state::failed:
          return fail(codes::disconnected, "write to the server failed: " + r.message);
      }
    }
    return {};
  }

  // Next message from the server, waiting until `deadline` at most. Reads before polling:
  // TLS may hold decrypted bytes that poll() cannot see.
  eftd::result<message> receive(clock::time_point deadline) {
    if (broken) return make(codes::disconnected, "connection is closed");
    for (;;) {
      auto line = reader.next();
      if (!line) return fail(line.err().code, "server sent a line over the size limit");
      if (*line) {
        // Fencing: never act on an answer of a node that an answer with a higher epoch has
        // already replaced.
        if (const auto e = peek_epoch(**line); e != 0) {
          if (e < epoch)
            return fail(codes::stale_epoch, "server answered with epoch " + std::to_string(e) +
                                                ", older than epoch " + std::to_string(epoch.load()) +
                                                " already seen: a deposed node");
          epoch = e;
        }
        auto m = decode(**line);
        if (!m) return fail(m.err().code, "server sent an undecodable line: " + m.err().message);
        return m;
      }
      char buf[16384];
      const io_result r = io->read_some(buf, sizeof buf);
      switch (r.st) {
        case io_result::state::done:
          reader.feed(std::string_view(buf, r.n));
          break;
        case io_result::state::want_read:
        case io_result::state::want_write:
          if (auto s = wait_for(r.st, deadline, "no message from the server within the timeout"); !s) {
            return s.err();
          }
          break;
        case io_result::state::closed:
          return fail(codes::disconnected, "server closed the connection");
        case io_result::state::failed:
          return fail(codes::disconnected, "read from the server failed: " + r.message);
      }
    }
  }

  // Sends a request and waits for its reply of type Reply (or an error with its id),
  // skipping unrelated messages, within the reply timeout.
  template <class Reply>
  eftd::result<Reply> call(message request) {
    const std::string id = detail::ensure_id(request, [this] { return fresh_id(); });
    if (auto s = send(request); !s) return s.err();
    const auto deadline = detail::deadline_after(clock::now(), opts.reply_timeout);
    for (;;) {
      auto m = receive(deadline);
      if (!m) return m.err();
      if (auto* e = std::get_if<error>(&*m); e && (e->id == id || e->id.empty())) {
        return make(e->code, e->message);
      }
      if (auto* r = std::get_if<Reply>(&*m); r && r->id == id) return std::move(*r);
    }
  }

  eftd::result<result> run(message request, const callbacks& cb) {
    const std::string id = detail::ensure_id(request, [this] { return fresh_id(); });
    const std::string order = detail::order_of(request);
    if (auto s = send(request); !s) return s.err();
    std::set<std::string> answer_ids;
    for (;;) {
      // Inactivity, not total duration: a transaction may legitimately take minutes
      // (PIN entry, slow issuer) while the server keeps sending status lines.
      auto m = receive(detail::deadline_after(clock::now(), opts.inactivity_timeout));
      if (!m) return m.err();
      if (auto* st = std::get_if<status>(&*m)) {
        if (cb.on_status) cb.on_status(*st);
      } else if (auto* p = std::get_if<prompt>(&*m)) {
        answer a{fresh_id(), p->prompt_id, cb.on_prompt ? cb.on_prompt(*p) : p->default_value};
        answer_ids.insert(a.id);
        if (auto s = send(a); !s) return s.err();
      } else if (auto* r = std::get_if<result>(&*m)) {
        if (r->id == id || (!order.empty() && r->order_no == order)) return std::move(*r);
      } else if (auto* e = std::get_if<error>(&*m)) {
        // A late answer that the server rejects (prompt already timed out) does not end
        // the transaction; the server still sends its result.
        if (answer_ids.count(e->id) != 0) continue;
        if (e->id == id || e->id.empty()) return make(e->code, e->message);
      }
    }
  }
};

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
client::~client() = default;

eftd::result<std::unique_ptr<client>> client::connect(std::string host, std::uint16_t port,
                                                      std::chrono::milliseconds timeout,
                                                      client_options options) {
  auto io = detail::open_transport(host, port, detail::deadline_after(clock::now(), timeout), options);
  if (!io) return io.err();
  auto p = std::make_unique<impl>();
  p->io = std::move(*io);
  p->epoch = options.min_epoch;
  p->opts = std::move(options);
  return std::unique_ptr<client>(new client(std::move(p)));
}

eftd::result<login_ok> client::login(const pos::login& request) {
  return impl_->call<login_ok>(request);
}

eftd::result<result> client::sale(const pos::sale& request, const callbacks& cb) {
  return impl_->run(request, cb);
}

eftd::result<result> client::refund(const pos::refund& request, const callbacks& cb) {
  return impl_->run(request, cb);
}

eftd::result<result> client::cancel(const pos::cancel& request, const callbacks& cb) {
  return impl_->run(request, cb);
}

eftd::result<result> client::transaction(const message& request, const callbacks& cb) {
  if (!detail::is_transaction(request)) return make(codes::unexpected, "not a transaction request");
  return impl_->run(request, cb);
}

eftd::result<result> client::balance_inquiry(const pos::balance_inquiry& request, const callbacks& cb) {
  return impl_->run(request, cb);
}

eftd::result<totals_report> client::totals(const pos::totals& request) {
  return impl_->call<totals_report>(request);
}

eftd::result<order_status> client::query(const status_query& request) {
  return impl_->call<order_status>(request);
}

eftd::result<heartbeat_ack> client::ping() {
  return impl_->call<heartbeat_ack>(heartbeat{});
}

eftd::status client::logout() {
  if (impl_->broken) return make(codes::disconnected, "connection is closed");
  auto r = impl_->call<logout_ok>(pos::logout{});
  impl_->broken = true;
  impl_->io->shutdown();
  // The server closes the connection after logout_ok; a close in place of the reply ends
  // the session just as well.
  if (!r && r.err().code != codes::disconnected) return r.err();
  return {};
}

eftd::status client::abort(const std::string& order_no) {
  return impl_->send(abort_tx{impl_->fresh_id(), order_no});
}

void client::set_inactivity_timeout(std::chrono::milliseconds t) {
  impl_->opts.inactivity_timeout = t;
}

bool client::connected() const {
  return !impl_->broken;
}

std::uint64_t client::epoch() const {
  return impl_->epoch;
}

}  // namespace eftd::pos
