// Asynchronous POS client: one I/O thread per client runs a poll() loop over the connection and
// an eventfd that wakes it when a caller queues a request. Only that thread touches the socket,
// the line reader and the table of pending requests; callers talk to it through the queue.
#include "eftd/pos/async_client.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

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

using generic_done = std::function<void(eftd::result<message>)>;

template <class T>
generic_done typed(on_done<T> done) {
  return [done = std::move(done)](eftd::result<message> m) {
    if (!done) return;
    if (!m) return done(m.err());
    if (auto* t = std::get_if<T>(&*m)) return done(std::move(*t));
    done(make(codes::unexpected, "unexpected reply type"));
  };
}

generic_done status_only(std::function<void(eftd::status)> done) {
  return [done = std::move(done)](eftd::result<message> m) {
    if (!done) return;
    if (!m) return done(m.err());
    done(eftd::status{});
  };
}

// One request waiting for its end (I/O thread only).
struct pending {
  enum class kind { reply, transaction, abort };
  kind k = kind::reply;
  std::string id;
  std::string order_no;
  std::size_t reply_index = 0;  // message variant index of the expected reply (kind::reply)
  bool is_logout = false;
  generic_done done;
  async_callbacks cb;                // kind::transaction
  std::set<std::string> answer_ids;  // answers sent for this transaction's prompts
  clock::time_point sent;
};

struct command {
  message msg;
  std::unique_ptr<pending> op;        // null: nothing waits for a reply (answer)
  std::string prompt_id;              // for an answer: the prompt it answers
  std::optional<eftd::error> refuse;  // set: complete op with this error, send nothing
};

}  // namespace

struct async_client::impl : std::enable_shared_from_this<impl> {
  std::unique_ptr<detail::transport> io;
  client_options opts;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> stop{false};
  std::atomic<bool> broken{false};
  std::atomic<std::uint64_t> counter{0};

  std::mutex mu;
  std::vector<command> queue;  // guarded by mu

  // ---- I/O thread only
  line_reader reader;
  std::string out;
  std::size_t out_off = 0;
  clock::time_point write_progress;
  bool read_wants_write = false;
  bool write_wants_read = false;
  std::vector<std::unique_ptr<pending>> ops;
  clock::time_point last_rx = clock::now();

  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  std::string fresh_id() { return "a" + std::to_string(++counter); }

  void wake() {
    const std::uint64_t one = 1;
    // A full eventfd counter (never in practice) still leaves it readable: the wake-up is not lost.
    [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  void submit(command c) {
    {
      std::lock_guard lock(mu);
      queue.push_back(std::move(c));
    }
    wake();
  }

  void submit_request(message request, std::unique_ptr<pending> op) {
    op->id = detail::ensure_id(request, [this] { return fresh_id(); });
    submit(command{std::move(request), std::move(op), {}, std::nullopt});
  }

  // ------------------------------------------------------------------ I/O thread

  void run() {
    while (!stop) {
      drain_commands();
      if (!broken) flush();
      if (!broken) read_all();
      if (stop) break;
      check_timeouts();
      if (stop) break;
      pollfd p[2] = {{wake_fd, POLLIN, 0}, {-1, 0, 0}};
      if (!broken) {
        short ev = POLLIN;
        if ((out_off < out.size() && !write_wants_read) || read_wants_write) ev |= POLLOUT;
        p[1] = {io->fd(), ev, 0};
      }
      const int n = ::poll(p, broken ? 1 : 2, detail::poll_timeout_ms(next_deadline()));
      if (n < 0 && errno != EINTR) {
        fail_connection(codes::disconnected, std::string("poll failed: ") + std::strerror(errno), {});
      }
      if (n > 0 && (p[0].revents & POLLIN) != 0) {
        std::uint64_t v = 0;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd, &v, sizeof v);
      }
    }
  }

  // Calls a user callback unless the client is being destroyed: after the destructor started,
  // nothing of the user's may run any more.
  template <class F, class... A>
  void call(const F& f, A&&... args) {
    if (f && !stop) f(std::forward<A>(args)...);
  }

  void complete(pending* op, eftd::result<message> r) {
    auto it = std::find_if(ops.begin(), ops.end(), [&](const auto& p) { return p.get() == op; });
    if (it == ops.end()) return;
    std::unique_ptr<pending> owned = std::move(*it);
    ops.erase(it);
    std::erase_if(prompt_owner, [&](const auto& po) { return po.second == op; });
    if (owned->k == pending::kind::transaction) {
      // The transaction ended: an abort still waiting for its acknowledgement is answered too.
      std::vector<pending*> aborts;
      for (auto& p : ops) {
        if (p->k == pending::kind::abort && p->order_no == owned->order_no) aborts.push_back(p.get());
      }
      call(owned->done, std::move(r));
      for (auto* a : aborts) complete(a, message{status{}});
      return;
    }
    call(owned->done, std::move(r));
  }

  void drain_commands() {
    std::vector<command> batch;
    {
      std::lock_guard lock(mu);
      batch.swap(queue);
    }
    for (auto& c : batch) {
      if (stop) return;
      if (c.refuse) {
        if (c.op) call(c.op->done, *c.refuse);
        continue;
      }
      if (broken) {
        if (c.op) call(c.op->done, make(codes::disconnected, "connection is closed"));
        continue;
      }
      if (c.op) {
        c.op->sent = clock::now();
        ops.push_back(std::move(c.op));
      } else if (!c.prompt_id.empty()) {
        // Remember which transaction the answer belongs to, so a refusal reaches its callbacks.
        if (auto* t = transaction_for_prompt(c.prompt_id)) t->answer_ids.insert(id_of(c.msg));
      }
      enqueue_bytes(encode(c.msg));
    }
  }

  // Prompts seen per running transaction (entries leave with their transaction).
  std::vector<std::pair<std::string, pending*>> prompt_owner;

  pending* transaction_for_prompt(const std::string& prompt_id) {
    for (auto& [pid, op] : prompt_owner) {
      if (pid == prompt_id) return op;
    }
    return nullptr;
  }

  void enqueue_bytes(const std::string& bytes) {
    if (out_off == out.size()) {
      out.clear();
      out_off = 0;
      write_progress = clock::now();
    }
    out += bytes;
  }

  void flush() {
    write_wants_read = false;
    while (out_off < out.size()) {
      const io_result r = io->write_some(out.data() + out_off, out.size() - out_off);
      switch (r.st) {
        case io_result::state::done:
          out_off += r.n;
          write_progress = clock::now();
          break;
        case io_result::state::want_write:
          return;
        case io_result::state::want_read:
          write_wants_read = true;
          return;
        case io_result::state::closed:
          return fail_connection(codes::disconnected, "server closed the connection", {});
        case io_result::state::failed:
          return fail_connection(codes::disconnected, "write to the server failed: " + r.message, {});
      }
    }
  }

  // Reads until the socket has nothing more, dispatching every complete line. Reads before
  // polling: TLS may hold decrypted bytes that poll() cannot see.
  void read_all() {
    read_wants_write = false;
    for (;;) {
      for (;;) {
        if (stop || broken) return;
        auto line = reader.next();
        if (!line) return fail_connection(line.err().code, "server sent a line over the size limit", {});
        if (!*line) break;
        auto m = decode(**line);
        if (!m) {
          return fail_connection(m.err().code, "server sent an undecodable line: " + m.err().message, {});
        }
        last_rx = clock::now();
        dispatch(std::move(*m));
      }
      char buf[16384];
      const io_result r = io->read_some(buf, sizeof buf);
      switch (r.st) {
        case io_result::state::done:
          reader.feed(std::string_view(buf, r.n));
          break;
        case io_result::state::want_read:
          return;
        case io_result::state::want_write:
          read_wants_write = true;
          return;
        case io_result::state::closed:
          return fail_connection(codes::disconnected, "server closed the connection", {});
        case io_result::state::failed:
          return fail_connection(codes::disconnected, "read from the server failed: " + r.message, {});
      }
    }
  }

  pending* find_id(const std::string& id) {
    if (id.empty()) return nullptr;
    for (auto& p : ops) {
      if (p->id == id) return p.get();
    }
    return nullptr;
  }

  pending* transaction_by_id_or_order(const std::string& id, const std::string& order_no) {
    if (auto* p = find_id(id); p != nullptr && p->k == pending::kind::transaction) return p;
    if (order_no.empty()) return nullptr;
    for (auto& p : ops) {
      if (p->k == pending::kind::transaction && p->order_no == order_no) return p.get();
    }
    return nullptr;
  }

  void send_answer(pending* owner, const std::string& prompt_id, const std::string& value) {
    pos::answer a{fresh_id(), prompt_id, value};
    if (owner != nullptr) owner->answer_ids.insert(a.id);
    enqueue_bytes(encode(a));
  }

  void dispatch(message m) {
    if (auto* st = std::get_if<status>(&m)) {
      // The server acknowledges an abort with a status carrying the abort's id.
      if (auto* a = find_id(st->id); a != nullptr && a->k == pending::kind::abort) {
        if (auto* t = transaction_by_id_or_order({}, a->order_no)) call(t->cb.on_status, *st);
        complete(a, message{*st});
        return;
      }
      if (auto* t = transaction_by_id_or_order(st->id, st->order_no)) call(t->cb.on_status, *st);
      return;
    }
    if (auto* p = std::get_if<prompt>(&m)) {
      auto* t = transaction_by_id_or_order(p->id, p->order_no);
      if (t != nullptr) prompt_owner.emplace_back(p->prompt_id, t);
      if (t != nullptr && t->cb.on_prompt) {
        call(t->cb.on_prompt, *p);
      } else if (!stop) {
        // Nobody to ask: the default keeps the transaction moving instead of waiting for the
        // server's prompt timeout.
        send_answer(t, p->prompt_id, p->default_value);
      }
      return;
    }
    if (auto* r = std::get_if<result>(&m)) {
      if (auto* t = transaction_by_id_or_order(r->id, r->order_no)) complete(t, std::move(m));
      return;
    }
    if (auto* e = std::get_if<error>(&m)) {
      if (auto* op = find_id(e->id)) return complete(op, make(e->code, e->message));
      for (auto& p : ops) {
        if (p->k == pending::kind::transaction && p->answer_ids.count(e->id) != 0) {
          return call(p->cb.on_answer_rejected, *e);
        }
      }
      if (!e->id.empty()) return;
      // The server could not read a request's id: it concerns the order it names, or the
      // only request waiting.
      if (auto* t = transaction_by_id_or_order({}, e->order_no))
        return complete(t, make(e->code, e->message));
      if (ops.size() == 1) return complete(ops.front().get(), make(e->code, e->message));
      return;
    }
    // Direct replies: matched on id and type.
    pending* op = find_id(id_of(m));
    if (op == nullptr || op->k != pending::kind::reply || op->reply_index != m.index()) return;
    if (op->is_logout) {
      // Closed before done runs, so whoever done wakes already sees connected() == false;
      // fail_connection completes the logout itself with success.
      return fail_connection(codes::disconnected, "logged out", {});
    }
    complete(op, std::move(m));
  }

  // Ends the connection: every pending request completes, those in `timed_out` with
  // pos.timeout, the others with `code`.
  void fail_connection(std::string_view code, const std::string& text,
                       const std::vector<pending*>& timed_out) {
    if (broken) return;
    broken = true;
    io->shutdown();
    out.clear();
    out_off = 0;
    prompt_owner.clear();
    auto all = std::move(ops);
    ops.clear();
    for (auto& op : all) {
      if (stop) return;
      const bool timeout = std::find(timed_out.begin(), timed_out.end(), op.get()) != timed_out.end();
      if (op->is_logout && !timeout) {
        // The server closes the connection after logout: that ends the session just as well.
        call(op->done, message{logout_ok{op->id}});
        continue;
      }
      if (timeout) {
        call(op->done, make(codes::timeout, op->k == pending::kind::transaction
                                                ? "no message from the server within the inactivity timeout"
                                                : "no reply from the server within the timeout"));
      } else {
        call(op->done, make(code, text));
      }
    }
  }

  clock::time_point deadline_of(const pending& op) const {
    switch (op.k) {
      case pending::kind::transaction:
        // Inactivity, not total duration: a transaction may legitimately take minutes (PIN
        // entry, slow issuer) while the server keeps sending status lines.
        return detail::deadline_after(std::max(op.sent, last_rx), opts.inactivity_timeout);
      case pending::kind::abort:
        // Waiting for the transaction's result is governed by the transaction's own timer.
        for (const auto& p : ops) {
          if (p->k == pending::kind::transaction && p->order_no == op.order_no)
            return clock::time_point::max();
        }
        return detail::deadline_after(op.sent, opts.reply_timeout);
      case pending::kind::reply:
        break;
    }
    return detail::deadline_after(op.sent, opts.reply_timeout);
  }

  clock::time_point next_deadline() const {
    if (broken) return clock::time_point::max();
    clock::time_point d = clock::time_point::max();
    for (const auto& op : ops) d = std::min(d, deadline_of(*op));
    if (out_off < out.size()) d = std::min(d, detail::deadline_after(write_progress, opts.write_timeout));
    return d;
  }

  void check_timeouts() {
    if (broken) return;
    const auto now = clock::now();
    std::vector<pending*> expired;
    for (const auto& op : ops) {
      if (deadline_of(*op) <= now) expired.push_back(op.get());
    }
    if (!expired.empty()) {
      return fail_connection(codes::disconnected, "connection closed after a request timed out", expired);
    }
    if (out_off < out.size() && detail::deadline_after(write_progress, opts.write_timeout) <= now) {
      fail_connection(codes::timeout, "timed out writing to the server", {});
    }
  }
};

async_client::async_client(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

async_client::~async_client() {
  impl_->stop = true;
  impl_->wake();
  if (impl_->thread.get_id() == std::this_thread::get_id()) {
    // Destroyed from one of its own callbacks: the thread cannot join itself. It holds its own
    // reference to impl and ends as soon as the callback returns (stop is set).
    impl_->thread.detach();
  } else if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
  // The socket closes with impl (the last reference): the server sees EOF.
}

eftd::result<std::unique_ptr<async_client>> async_client::connect(std::string host, std::uint16_t port,
                                                                  std::chrono::milliseconds timeout,
                                                                  client_options options) {
  auto io = detail::open_transport(host, port, detail::deadline_after(clock::now(), timeout), options);
  if (!io) return io.err();
  auto p = std::make_shared<impl>();
  p->io = std::move(*io);
  p->opts = std::move(options);
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0)
    return make(codes::disconnected, std::string("eventfd failed: ") + std::strerror(errno));
  p->thread = std::thread([self = p] { self->run(); });
  return std::unique_ptr<async_client>(new async_client(std::move(p)));
}

void async_client::login(const pos::login& request, on_done<login_ok> done) {
  auto op = std::make_unique<pending>();
  op->reply_index = message(login_ok{}).index();
  op->done = typed<login_ok>(std::move(done));
  impl_->submit_request(request, std::move(op));
}

void async_client::start_transaction(const message& request, async_callbacks cb, on_done<result> done) {
  auto op = std::make_unique<pending>();
  op->k = pending::kind::transaction;
  op->done = typed<result>(std::move(done));
  if (!detail::is_transaction(request)) {
    // Completed on the I/O thread like every other outcome, never inside this call.
    impl_->submit(command{request, std::move(op), {}, make(codes::unexpected, "not a transaction request")});
    return;
  }
  op->order_no = detail::order_of(request);
  op->cb = std::move(cb);
  impl_->submit_request(request, std::move(op));
}

void async_client::start_sale(const pos::sale& request, async_callbacks cb, on_done<result> done) {
  start_transaction(request, std::move(cb), std::move(done));
}

void async_client::start_refund(const pos::refund& request, async_callbacks cb, on_done<result> done) {
  start_transaction(request, std::move(cb), std::move(done));
}

void async_client::start_cancel(const pos::cancel& request, async_callbacks cb, on_done<result> done) {
  start_transaction(request, std::move(cb), std::move(done));
}

void async_client::start_balance_inquiry(const pos::balance_inquiry& request, async_callbacks cb,
                                         on_done<result> done) {
  start_transaction(request, std::move(cb), std::move(done));
}

void async_client::query(const status_query& request, on_done<order_status> done) {
  auto op = std::make_unique<pending>();
  op->reply_index = message(order_status{}).index();
  op->done = typed<order_status>(std::move(done));
  impl_->submit_request(request, std::move(op));
}

void async_client::totals(const pos::totals& request, on_done<totals_report> done) {
  auto op = std::make_unique<pending>();
  op->reply_index = message(totals_report{}).index();
  op->done = typed<totals_report>(std::move(done));
  impl_->submit_request(request, std::move(op));
}

void async_client::ping(on_done<heartbeat_ack> done) {
  auto op = std::make_unique<pending>();
  op->reply_index = message(heartbeat_ack{}).index();
  op->done = typed<heartbeat_ack>(std::move(done));
  impl_->submit_request(heartbeat{}, std::move(op));
}

void async_client::logout(std::function<void(eftd::status)> done) {
  auto op = std::make_unique<pending>();
  op->reply_index = message(logout_ok{}).index();
  op->is_logout = true;
  op->done = status_only(std::move(done));
  impl_->submit_request(pos::logout{}, std::move(op));
}

eftd::status async_client::answer(const std::string& prompt_id, const std::string& value) {
  if (impl_->broken) return make(codes::disconnected, "connection is closed");
  impl_->submit(command{pos::answer{impl_->fresh_id(), prompt_id, value}, nullptr, prompt_id, std::nullopt});
  return {};
}

void async_client::abort(const std::string& order_no, std::function<void(eftd::status)> done) {
  auto op = std::make_unique<pending>();
  op->k = pending::kind::abort;
  op->order_no = order_no;
  op->done = status_only(std::move(done));
  impl_->submit_request(abort_tx{"", order_no}, std::move(op));
}

bool async_client::connected() const {
  return !impl_->broken;
}

}  // namespace eftd::pos
