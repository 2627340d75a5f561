// Synchronous POS client over a plain non-blocking POSIX socket with poll() deadlines.
// A blocking client needs no event loop: one request at a time, every wait bounded.
#include "eftd/pos/client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <type_traits>
#include <utility>

#include "eftd/pos/codec.hpp"

namespace eftd::pos {
namespace {

using clock = std::chrono::steady_clock;

eftd::error make(std::string_view code, std::string message) {
  return eftd::error{std::string(code), std::move(message)};
}

int remaining_ms(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  if (left.count() <= 0) return 0;
  // +1 so poll() does not wake a hair before the deadline and spin.
  return left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count()) + 1;
}

// Connects a non-blocking socket to one address within the deadline; -1 and errno on failure.
int connect_one(const addrinfo& ai, clock::time_point deadline) {
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return -1;
  if (::connect(fd, ai.ai_addr, ai.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      errno = n == 0 ? ETIMEDOUT : errno;
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
      ::close(fd);
      errno = err != 0 ? err : errno;
      return -1;
    }
    return fd;
  }
}

template <class T>
constexpr bool is_transaction_v =
    std::is_same_v<T, sale> || std::is_same_v<T, refund> || std::is_same_v<T, preauth> ||
    std::is_same_v<T, completion> || std::is_same_v<T, incremental> || std::is_same_v<T, cancel> ||
    std::is_same_v<T, balance_inquiry>;

}  // namespace

struct client::impl {
  int fd = -1;
  client_options opts;
  line_reader reader;
  std::mutex write_mu;
  std::atomic<bool> broken{false};
  std::atomic<std::uint64_t> counter{0};

  ~impl() {
    if (fd >= 0) ::close(fd);
  }

  std::string fresh_id() { return "c" + std::to_string(++counter); }

  // After an I/O failure the byte stream is no longer trustworthy: every later call fails
  // fast with pos.disconnected and the POS reconnects.
  eftd::error fail(std::string_view code, std::string message) {
    broken = true;
    return make(code, std::move(message));
  }

  eftd::status send(const message& m) {
    if (broken) return make(codes::disconnected, "connection is closed");
    const std::string line = encode(m);
    std::lock_guard lock(write_mu);
    const auto deadline = clock::now() + opts.write_timeout;
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd, POLLOUT, 0};
        const int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return fail(codes::timeout, "timed out writing to the server");
        if (r < 0) return fail(codes::disconnected, std::string("poll failed: ") + std::strerror(errno));
        continue;
      }
      return fail(codes::disconnected, std::string("write to the server failed: ") + std::strerror(errno));
    }
    return {};
  }

  // Next message from the server, waiting until `deadline` at most.
  eftd::result<message> receive(clock::time_point deadline) {
    if (broken) return make(codes::disconnected, "connection is closed");
    for (;;) {
      auto line = reader.next();
      if (!line) return fail(line.err().code, "server sent a line over the size limit");
      if (*line) {
        auto m = decode(**line);
        if (!m) return fail(m.err().code, "server sent an undecodable line: " + m.err().message);
        return m;
      }
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, remaining_ms(deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fail(codes::disconnected, std::string("poll failed: ") + std::strerror(errno));
      if (r == 0) return fail(codes::timeout, "no message from the server within the timeout");
      char buf[16384];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n == 0) return fail(codes::disconnected, "server closed the connection");
      return fail(codes::disconnected, std::string("read from the server failed: ") + std::strerror(errno));
    }
  }

  // Sends a request and waits for its reply of type Reply (or an error with its id),
  // skipping unrelated messages, within the reply timeout.
  template <class Reply>
  eftd::result<Reply> call(message request) {
    std::visit(
        [&](auto& r) {
          if (r.id.empty()) r.id = fresh_id();
        },
        request);
    const std::string id = id_of(request);
    if (auto s = send(request); !s) return s.err();
    const auto deadline = clock::now() + opts.reply_timeout;
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
    std::visit(
        [&](auto& r) {
          if (r.id.empty()) r.id = fresh_id();
        },
        request);
    const std::string id = id_of(request);
    const std::string order = std::visit(
        [](const auto& r) -> std::string {
          if constexpr (requires { r.order_no; })
            return r.order_no;
          else
            return {};
        },
        request);
    if (auto s = send(request); !s) return s.err();
    std::set<std::string> answer_ids;
    for (;;) {
      // Inactivity, not total duration: a transaction may legitimately take minutes
      // (PIN entry, slow issuer) while the server keeps sending status lines.
      auto m = receive(clock::now() + opts.inactivity_timeout);
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
  const auto deadline = clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    return make(codes::disconnected, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  int fd = -1;
  int last_errno = 0;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = connect_one(*ai, deadline);
    if (fd < 0) last_errno = errno;
  }
  ::freeaddrinfo(list);
  if (fd < 0) {
    return make(last_errno == ETIMEDOUT ? codes::timeout : codes::disconnected,
                "cannot connect to " + host + ":" + service + ": " + std::strerror(last_errno));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto p = std::make_unique<impl>();
  p->fd = fd;
  p->opts = options;
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
  const bool ok =
      std::visit([](const auto& r) { return is_transaction_v<std::decay_t<decltype(r)>>; }, request);
  if (!ok) return make(codes::unexpected, "not a transaction request");
  return impl_->run(request, cb);
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
  ::shutdown(impl_->fd, SHUT_RDWR);
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

}  // namespace eftd::pos
