// Hot standby: roles, epoch, lease, the witness client and the replication link (ha.hpp,
// server/HA.md for the design and its guarantees).
#include "ha.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "accept_pacing.hpp"
#include "byte_stream.hpp"
#include "context.hpp"
#include "eftd/core/crypto.hpp"
#include "eftd/journal/backup.hpp"
#include "write_queue.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

std::string_view to_string(ha_role r) noexcept {
  switch (r) {
    case ha_role::starting:
      return "starting";
    case ha_role::standby:
      return "standby";
    case ha_role::active:
      return "active";
    case ha_role::fenced:
      return "fenced";
  }
  return "starting";
}

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// --- the replication link's frames -------------------------------------------------------
// u32 big-endian length of (type + body), u8 type, body. JSON bodies for control frames,
// binary for entries and acknowledgements.
enum frame_type : std::uint8_t {
  f_hello = 1,       // standby -> active, JSON {node, history, last_seq, last_epoch, epoch}
  f_welcome = 2,     // active -> standby, JSON {node, epoch, mode: stream|snapshot} or {error}
  f_entry = 3,       // u64 seq, u64 epoch, payload
  f_ack = 4,         // u64 seq: durable on the standby up to here
  f_ping = 5,        // active -> standby, JSON {epoch, last_seq, t}
  f_pong = 6,        // standby -> active, JSON {epoch, t, applied}: a lease grant from t
  f_snap_begin = 7,  // JSON {size, sha256}
  f_snap_data = 8,   // file bytes
  f_snap_end = 9,
};
constexpr std::size_t max_frame = 64u << 20;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xFF));
}
std::uint64_t get_u64(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[at + i]);
  return v;
}

std::string frame(std::uint8_t type, std::string_view body) {
  std::string out;
  const auto n = static_cast<std::uint32_t>(body.size() + 1);
  out.reserve(n + 4);
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((n >> (i * 8)) & 0xFF));
  out.push_back(static_cast<char>(type));
  out.append(body);
  return out;
}
std::string json_frame(std::uint8_t type, const json& j) {
  return frame(type, j.dump());
}

struct in_frame {
  std::uint8_t type = 0;
  std::string body;
};

// Reads whole frames from a byte_stream; a frame over max_frame or a closed stream ends it.
class frame_reader {
 public:
  asio::awaitable<result<in_frame>> next(byte_stream& s) {
    for (;;) {
      if (buf_.size() >= 4) {
        std::uint32_t n = 0;
        for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<std::uint8_t>(buf_[i]);
        if (n == 0 || n > max_frame) co_return make_error("ha.bad_frame", fmt::format("frame length {}", n));
        if (buf_.size() >= 4 + n) {
          in_frame f;
          f.type = static_cast<std::uint8_t>(buf_[4]);
          f.body.assign(buf_, 5, n - 1);
          buf_.erase(0, 4 + n);
          co_return f;
        }
      }
      std::array<char, 65536> chunk;
      auto [ec, n] = co_await s.read_some(asio::buffer(chunk));
      if (ec) co_return make_error("ha.link_closed", ec.message());
      buf_.append(chunk.data(), n);
    }
  }

 private:
  std::string buf_;
};

std::optional<json> parse_json(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::pair<std::string, std::uint16_t> split_address(const std::string& a) {
  const auto colon = a.rfind(':');
  if (colon == std::string::npos) return {a, 0};
  int port = 0;
  try {
    port = std::stoi(a.substr(colon + 1));
  } catch (...) {
    port = 0;
  }
  if (port <= 0 || port > 65535) return {a.substr(0, colon), 0};
  return {a.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// Connects (and runs TLS as the client when configured) within the deadline.
asio::awaitable<result<std::unique_ptr<byte_stream>>> connect_to(
    const asio::any_io_executor& ex, const std::string& address, const std::shared_ptr<asio::ssl::context>& tls,
    const std::string& expected_cn, std::chrono::milliseconds deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto [host, port] = split_address(address);
  if (port == 0) co_return make_error("ha.bad_address", "'" + address + "' is not host:port");
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) co_return make_error("ha.bad_address", "'" + host + "' is not an IP address");
  tcp::socket sock(ex);
  asio::steady_timer timer(ex);
  timer.expires_after(deadline);
  tcp::endpoint ep(ip, port);
  auto r = co_await (sock.async_connect(ep, asio::as_tuple(asio::use_awaitable)) ||
                     timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() == 1) co_return make_error("ha.connect_failed", "connect to " + address + " timed out");
  auto [cec] = std::get<0>(r);
  if (cec) co_return make_error("ha.connect_failed", "connect to " + address + ": " + cec.message());
  sock.set_option(tcp::no_delay(true), ec);
  if (!tls) co_return make_tcp_stream(std::move(sock));
  co_return co_await tls_connect(sock, tls, expected_cn, deadline);
}

// One NDJSON request/answer connection to the witness, reconnected on demand.
class witness_client {
 public:
  witness_client(asio::any_io_executor ex, std::string address, std::shared_ptr<asio::ssl::context> tls,
                 std::chrono::milliseconds deadline)
      : ex_(std::move(ex)), address_(std::move(address)), tls_(std::move(tls)), deadline_(deadline) {}

  asio::awaitable<result<json>> call(const json& req) {
    using namespace asio::experimental::awaitable_operators;
    if (!stream_) {
      const std::string cn = "witness";
      auto s = co_await connect_to(ex_, address_, tls_, cn, deadline_);
      if (!s) co_return s.err();
      stream_ = std::move(*s);
      buf_.clear();
    }
    const std::string line = req.dump() + "\n";
    auto wec = co_await stream_->write_all(asio::buffer(line));
    if (wec) {
      drop();
      co_return make_error("ha.witness_unreachable", "write to the witness: " + wec.message());
    }
    asio::steady_timer timer(ex_);
    timer.expires_after(deadline_);
    for (;;) {
      const auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string text = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        auto j = parse_json(text);
        if (!j) {
          drop();
          co_return make_error("ha.witness_bad_answer", "the witness answered something unreadable");
        }
        co_return *j;
      }
      std::array<char, 4096> chunk;
      auto r = co_await (stream_->read_some(asio::buffer(chunk)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) {
        drop();
        co_return make_error("ha.witness_unreachable", "the witness did not answer in time");
      }
      auto [ec, n] = std::get<0>(r);
      if (ec) {
        drop();
        co_return make_error("ha.witness_unreachable", "the witness closed the connection");
      }
      buf_.append(chunk.data(), n);
      if (buf_.size() > 65536) {
        drop();
        co_return make_error("ha.witness_bad_answer", "answer line too long");
      }
    }
  }

  void drop() {
    if (stream_) stream_->close();
    stream_.reset();
  }

 private:
  asio::any_io_executor ex_;
  std::string address_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::chrono::milliseconds deadline_;
  std::unique_ptr<byte_stream> stream_;
  std::string buf_;
};

// Runs a write queue until it closes, keeping the queue and its stream alive meanwhile (the
// coroutine that made them may end first: its locals must not be what the writer touches).
asio::awaitable<void> run_writer(std::shared_ptr<write_queue<byte_stream>> out, std::shared_ptr<byte_stream> stream) {
  co_await out->run();
  (void)stream;
}

class ha_node_impl final : public ha_node, public std::enable_shared_from_this<ha_node_impl> {
 public:
  ha_node_impl(server_context& ctx, std::shared_ptr<asio::ssl::context> server_tls,
               std::shared_ptr<asio::ssl::context> client_tls)
      : ctx_(ctx),
        cfg_(ctx.cfg().ha),
        strand_(asio::make_strand(ctx.io)),
        server_tls_(std::move(server_tls)),
        client_tls_(std::move(client_tls)),
        wake_(strand_),
        pool_(1) {
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
    sync_ = cfg_.mode == "sync";
  }

  ~ha_node_impl() override { pool_.join(); }

  ha_role role() const noexcept override { return static_cast<ha_role>(role_.load()); }
  std::uint64_t epoch() const noexcept override { return epoch_.load(); }

  bool serving() const noexcept override {
    return role() == ha_role::active && ready_.load() && steady_ms() < lease_until();
  }

  status may_send() const override {
    if (serving()) return {};
    return make_error("acq.connect_failed",
                      role() == ha_role::active
                          ? "this node holds no current lease (witness and standby unreachable): not sent"
                          : "this node is not the active server: not sent");
  }

  std::string active_pos_address() const override {
    return role() == ha_role::active ? cfg_.pos_address : cfg_.peer.pos_address;
  }
  std::string active_pad_address() const override {
    return role() == ha_role::active ? cfg_.pad_address : cfg_.peer.pad_address;
  }

  journal::writer_options::replication_options journal_hooks() override {
    journal::writer_options::replication_options o;
    o.enabled = true;
    std::weak_ptr<ha_node_impl> w = weak_from_this();
    auto* self = this;  // the node outlives the writer (run() closes the journal first)
    o.epoch = [self] { return self->epoch_.load(); };
    o.admit = [self](bool replica) -> status {
      const auto r = self->role();
      if (replica) {
        if (r == ha_role::standby || r == ha_role::starting) return {};
        return make_error("journal.fenced", "a replica arrived at a node that is not the standby");
      }
      if (r == ha_role::active) return {};
      return make_error("journal.fenced", fmt::format("this node is {}, not active", to_string(r)));
    };
    o.fence = [self]() -> status {
      const auto r = self->role();
      if (r == ha_role::standby || r == ha_role::starting) return {};
      if (r == ha_role::active && steady_ms() < self->lease_until()) return {};
      return make_error("journal.fenced", "this node lost its lease or its role: nothing committed");
    };
    o.on_commit = [self](std::vector<journal::repl_commit> entries) { self->committed(std::move(entries)); };
    (void)w;
    return o;
  }

  void start(ha_hooks hooks) override {
    hooks_ = std::move(hooks);
    auto r = journal::reader::open(ctx_.cfg().journal_cfg.path);
    if (!r) {
      spdlog::critical("ha: cannot open a journal reader: {}", r.err().message);
      return;
    }
    reader_.emplace(std::move(*r));
    {
      auto e = reader_->counter("ha/epoch");
      epoch_ = e ? static_cast<std::uint64_t>(*e) : 0;
    }
    last_committed_ = ctx_.journal->replication_position().last_seq;
    auto bind = bind_listener();
    if (!bind) {
      spdlog::critical("ha: {}", bind.err().message);
      return;
    }
    auto self = shared_from_this();
    asio::co_spawn(strand_, accept_loop(), asio::detached);
    asio::co_spawn(strand_, main_loop(), asio::detached);
  }

  void stop() override {
    asio::dispatch(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      boost::system::error_code ec;
      if (self->acceptor_) self->acceptor_->close(ec);
      if (self->link_) self->link_->close();
      self->wake_.cancel();
    });
    release_all(make_error("journal.closed", "the node is stopping"));
  }

  std::string status_json() const override {
    json j;
    j["node"] = cfg_.node_id;
    j["peer"] = cfg_.peer.id;
    j["role"] = std::string(to_string(role()));
    j["epoch"] = epoch();
    j["mode"] = cfg_.mode;
    const auto now = steady_ms();
    j["lease_left_ms"] = std::max<std::int64_t>(0, lease_until() - now);
    j["witness_lease_left_ms"] = std::max<std::int64_t>(0, witness_lease_until_.load() - now);
    j["standby_lease_left_ms"] = std::max<std::int64_t>(0, standby_lease_until_.load() - now);
    j["serving"] = serving();
    j["active_pos"] = active_pos_address();
    j["last_seq"] = last_committed_.load();
    j["standby_acked_seq"] = acked_.load();
    j["replication_lag_entries"] = replication_lag_entries();
    j["standby_connected"] = standby_connected_.load();
    j["standby_in_sync"] = in_sync_.load();
    j["applied_seq"] = applied_.load();
    return j.dump();
  }

  std::uint64_t replication_lag_entries() const noexcept override {
    if (role() != ha_role::active) return 0;
    const auto last = last_committed_.load();
    const auto acked = acked_.load();
    return last > acked ? last - acked : 0;
  }

  double replication_lag_seconds() override {
    std::lock_guard lk(pend_mu_);
    if (pending_.empty()) return 0;
    return static_cast<double>(std::max<std::int64_t>(0, steady_ms() - pending_.front().since_ms)) / 1000.0;
  }

  void promote(bool force, std::function<void(status, std::string)> done) override {
    asio::co_spawn(
        strand_,
        [self = shared_from_this(), force, done = std::move(done)]() -> asio::awaitable<void> {
          const std::string why = "operator";
          auto st = co_await self->try_promote(force, why);
          done(st, st ? fmt::format("promoted: epoch {}", self->epoch()) : st.err().message);
        },
        asio::detached);
  }

  void switchover(std::function<void(status, std::string)> done) override {
    asio::co_spawn(
        strand_,
        [self = shared_from_this(), done = std::move(done)]() -> asio::awaitable<void> {
          std::string text;
          auto st = co_await self->handover(text);
          done(st, st ? text : st.err().message);
        },
        asio::detached);
  }

 private:
  std::int64_t lease_until() const noexcept {
    return std::max(witness_lease_until_.load(), standby_lease_until_.load());
  }

  result<void> bind_listener() {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg_.replication.address, ec);
    if (ec) return make_error("ha.config", "ha.replication.address '" + cfg_.replication.address + "'");
    acceptor_.emplace(strand_);
    tcp::endpoint ep(addr, cfg_.replication.port);
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(8, ec);
    if (ec)
      return make_error("ha.config", fmt::format("cannot listen for replication on {}:{}: {}",
                                                 cfg_.replication.address, cfg_.replication.port, ec.message()));
    replication_port_ = acceptor_->local_endpoint().port();
    spdlog::info("ha: node '{}' replication listener on {}:{}", cfg_.node_id, cfg_.replication.address,
                 replication_port_);
    return {};
  }

  // --- witness ---------------------------------------------------------------------------

  witness_client& witness() {
    if (!witness_) {
      witness_.emplace(strand_, cfg_.witness, client_tls_, std::chrono::milliseconds(cfg_.heartbeat_ms * 2));
    }
    return *witness_;
  }

  // Decides the role, then keeps it: renewals as active, watching (and promoting) as standby.
  asio::awaitable<void> main_loop() {
    asio::steady_timer tick(strand_);
    while (!stopping_) {
      const auto r = role();
      if (r == ha_role::starting) {
        co_await decide_role();
      } else if (r == ha_role::active) {
        co_await renew();
        co_await check_sync_timeout();
      } else if (r == ha_role::standby) {
        co_await watch();
      } else {
        co_return;  // fenced: restart pending
      }
      tick.expires_after(std::chrono::milliseconds(cfg_.heartbeat_ms));
      co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::awaitable<void> decide_role() {
    json req{{"op", "state"}};
    auto a = co_await witness().call(req);
    if (!a) {
      if (!warned_witness_) spdlog::warn("ha: waiting for the witness at {}: {}", cfg_.witness, a.err().message);
      warned_witness_ = true;
      co_return;
    }
    const auto wepoch = a->value("epoch", std::uint64_t{0});
    const auto active = a->value("active", std::string());
    if (active == cfg_.node_id) {
      if (wepoch < epoch_.load()) {
        spdlog::critical("ha: the witness's epoch {} is below this journal's epoch {}: refusing to act", wepoch,
                         epoch_.load());
        co_return;
      }
      epoch_ = wepoch;
      role_ = static_cast<int>(ha_role::active);
      spdlog::info("ha: node '{}' is the active server (epoch {})", cfg_.node_id, wepoch);
      co_await renew();
      co_await take_office(false);
    } else {
      if (wepoch > epoch_.load()) epoch_ = wepoch;
      role_ = static_cast<int>(ha_role::standby);
      spdlog::info("ha: node '{}' is the standby; the active is '{}' (epoch {})", cfg_.node_id, active, wepoch);
      asio::co_spawn(strand_, standby_link(), asio::detached);
    }
  }

  // The first steps of an active term: record the epoch (a journaled, replicated counter),
  // let every older lease run out, skip STANs ahead, then start the active-only services
  // (in-doubt recovery resolves what the old active left sent and unanswered).
  asio::awaitable<void> take_office(bool promoted) {
    if (promoted) {
      // Any lease the old active still holds was granted before this promotion and ends
      // within lease_ms: only then may this node send or answer.
      asio::steady_timer t(strand_);
      const auto wait = std::max<std::int64_t>(0, last_pong_sent_ + cfg_.lease_ms - steady_ms());
      t.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(wait, promoted_force_ ? cfg_.lease_ms : 0)));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      std::lock_guard lk(ctx_.stan_mu);
      ctx_.stans.clear();
      ctx_.stan_skip = cfg_.stan_gap;
    }
    journal::batch b;
    b.records.push_back(journal::counter_set{"ha/epoch", static_cast<std::int64_t>(epoch_.load())});
    if (hooks_.before_serving) hooks_.before_serving();
    ready_ = true;
    ctx_.journal->submit(std::move(b), [e = epoch_.load()](status st) {
      if (!st) spdlog::error("ha: epoch {} not journaled: {}", e, st.err().message);
    });
    spdlog::info("ha: node '{}' serving as active, epoch {}", cfg_.node_id, epoch_.load());
    if (hooks_.become_active) hooks_.become_active();
  }

  asio::awaitable<void> renew() {
    const auto sent = steady_ms();
    const auto h = ctx_.metrics->take_health();
    json req{{"op", "renew"},         {"node", cfg_.node_id},  {"epoch", epoch_.load()},
             {"standby_in_sync", in_sync_.load() || !sync_},   {"p99_ms", h.p99_ms},
             {"requests", h.requests}, {"errors", h.errors}};
    auto a = co_await witness().call(req);
    if (!a) {
      if (!warned_witness_) spdlog::warn("ha: lease renewal failed: {}", a.err().message);
      warned_witness_ = true;
      co_return;
    }
    warned_witness_ = false;
    if (a->value("ok", false)) {
      witness_lease_until_ = sent + a->value("lease_ms", static_cast<std::int64_t>(cfg_.lease_ms));
      reported_in_sync_ = in_sync_.load() || !sync_;
      co_return;
    }
    const auto code = a->value("code", std::string());
    const auto wepoch = a->value("epoch", std::uint64_t{0});
    if (code == "not_active" || code == "unhealthy" || code == "stale_epoch" || wepoch > epoch_.load()) {
      fence(fmt::format("the witness refused the lease ({}: {}); epoch there {}", code,
                        a->value("message", std::string()), wepoch));
    }
  }

  void fence(const std::string& why) {
    if (role() == ha_role::fenced) return;
    role_ = static_cast<int>(ha_role::fenced);
    spdlog::critical("ha: node '{}' FENCED: {}. It stops answering at once and restarts as standby.",
                     cfg_.node_id, why);
    release_all(make_error("journal.fenced", "this node was fenced"));
    if (hooks_.restart) hooks_.restart("fenced: " + why);
  }

  asio::awaitable<void> watch() {
    json req{{"op", "watch"}, {"node", cfg_.node_id}, {"epoch", epoch_.load()}, {"applied_seq", applied_.load()}};
    auto a = co_await witness().call(req);
    if (!a) co_return;
    const auto wepoch = a->value("epoch", std::uint64_t{0});
    if (wepoch > epoch_.load()) epoch_ = wepoch;
    if (a->value("active", std::string()) == cfg_.node_id) {
      // Promoted meanwhile (e.g. a promote whose answer was lost): take office.
      role_ = static_cast<int>(ha_role::active);
      promoted_force_ = true;
      co_await renew();
      co_await take_office(true);
      co_return;
    }
    const bool deposed = a->value("deposed", false);
    const auto lease_age = a->value("active_lease_age_ms", std::int64_t{0});
    const auto silent = steady_ms() - last_heard_.load();
    if (silent >= cfg_.promote_after_ms && lease_age < cfg_.promote_after_ms && !deposed) {
      // The link is down but the active still renews: a network split between the nodes, not
      // a dead active. Promoting now would make two actives.
      if (!told_staying_)
        spdlog::warn("ha: active '{}' silent on the link for {} ms but its lease at the witness is current "
                     "({} ms old): staying standby",
                     cfg_.peer.id, silent, lease_age);
      told_staying_ = true;
    } else if (silent < cfg_.promote_after_ms) {
      told_staying_ = false;
    }
    if (deposed || (silent >= cfg_.promote_after_ms && lease_age >= cfg_.promote_after_ms)) {
      const std::string why = deposed ? "the witness deposed the active" : "the active went silent";
      auto st = co_await try_promote(false, why);
      if (!st) spdlog::warn("ha: promotion refused: {}", st.err().message);
    }
  }

  asio::awaitable<status> try_promote(bool force, const std::string& why) {
    if (role() != ha_role::standby) co_return make_error("ha.not_standby", "only the standby can be promoted");
    promoting_ = true;  // no more lease grants to the old active
    json req{{"op", "promote"}, {"node", cfg_.node_id}, {"epoch", epoch_.load()}, {"force", force}};
    auto a = co_await witness().call(req);
    if (!a) {
      promoting_ = false;
      co_return a.err();
    }
    if (!a->value("ok", false)) {
      promoting_ = false;
      const auto wepoch = a->value("epoch", std::uint64_t{0});
      if (wepoch > epoch_.load()) epoch_ = wepoch;
      co_return make_error("ha." + a->value("code", std::string("refused")), a->value("message", std::string()));
    }
    epoch_ = a->value("epoch", epoch_.load() + 1);
    promoted_force_ = force;
    spdlog::warn("ha: node '{}' PROMOTED to active, epoch {} ({})", cfg_.node_id, epoch_.load(), why);
    if (link_) link_->close();
    role_ = static_cast<int>(ha_role::active);
    co_await renew();
    co_await take_office(true);
    co_return status{};
  }

  asio::awaitable<status> handover(std::string& text) {
    if (role() != ha_role::active) co_return make_error("ha.not_active", "only the active can hand over");
    if (!standby_connected_ || acked_.load() < last_committed_.load())
      co_return make_error("ha.standby_behind",
                           fmt::format("the standby is not connected or not caught up (acked {} of {})",
                                       acked_.load(), last_committed_.load()));
    // Stop taking work: new requests are refused, commits fail; then wait until the standby
    // has every entry, and only then give the role away.
    ready_ = false;
    asio::steady_timer t(strand_);
    const auto deadline = steady_ms() + cfg_.sync_timeout_ms * 5;
    while (acked_.load() < ctx_.journal->replication_position().last_seq && steady_ms() < deadline) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (acked_.load() < ctx_.journal->replication_position().last_seq) {
      ready_ = true;
      co_return make_error("ha.standby_behind", "the standby did not catch up in time; still active");
    }
    json req{{"op", "handover"}, {"node", cfg_.node_id}, {"epoch", epoch_.load()}, {"to", cfg_.peer.id}};
    auto a = co_await witness().call(req);
    if (!a || !a->value("ok", false)) {
      ready_ = true;
      co_return make_error("ha.handover_refused", a ? a->value("message", std::string("refused")) : a.err().message);
    }
    text = fmt::format("handed over to '{}' at epoch {}", cfg_.peer.id, a->value("epoch", std::uint64_t{0}));
    // Fenced at once; the restart as standby waits a moment so the operator's answer leaves.
    role_ = static_cast<int>(ha_role::fenced);
    spdlog::warn("ha: node '{}' {}; restarting as standby", cfg_.node_id, text);
    auto later = std::make_shared<asio::steady_timer>(strand_, std::chrono::milliseconds(cfg_.heartbeat_ms * 2));
    later->async_wait([self = shared_from_this(), later, text](boost::system::error_code) {
      if (self->hooks_.restart) self->hooks_.restart("planned switch-over: " + text);
    });
    co_return status{};
  }

  // --- synchronous acknowledgement ------------------------------------------------------

  // Writer thread: entries just committed.
  void committed(std::vector<journal::repl_commit> entries) {
    std::vector<std::function<void(status)>> now;
    {
      std::lock_guard lk(pend_mu_);
      for (auto& e : entries) {
        last_committed_ = e.entry.seq;
        if (sync_ && !degraded_) {
          pending_.push_back(pending{e.entry.seq, steady_ms(), std::move(e.done)});
        } else {
          now.push_back(std::move(e.done));
        }
      }
    }
    for (auto& d : now)
      if (d) d(status{});
    trim_log(last_committed_.load());
    asio::post(strand_, [self = shared_from_this()] { self->wake_.cancel(); });
  }

  // The replication log keeps the newest log_keep entries (`done`: the newest committed here, or
  // on the standby the newest applied), so it stays bounded while the standby is away. A standby
  // that was away a while catches up from the log; one further behind gets a snapshot. Trimmed
  // in steps of a tenth of log_keep, not per entry.
  void trim_log(std::uint64_t done) {
    const std::uint64_t keep = cfg_.log_keep;
    if (done <= keep) return;
    const auto below = done - keep;
    auto last = trimmed_below_.load();
    if (below < last + std::max<std::uint64_t>(1, keep / 10)) return;
    if (!trimmed_below_.compare_exchange_strong(last, below)) return;
    ctx_.journal->trim_replication_log(below);
  }

  void acknowledged(std::uint64_t seq) {
    acked_ = std::max(acked_.load(), seq);
    std::vector<std::function<void(status)>> done;
    {
      std::lock_guard lk(pend_mu_);
      while (!pending_.empty() && pending_.front().seq <= seq) {
        done.push_back(std::move(pending_.front().done));
        pending_.pop_front();
      }
      if (seq >= last_committed_.load()) {
        if (degraded_) spdlog::info("ha: the standby caught up (entry {}): synchronous again", seq);
        degraded_ = false;
        in_sync_ = true;
      }
    }
    for (auto& d : done)
      if (d) d(status{});
  }

  void release_all(status st) {
    std::deque<pending> all;
    {
      std::lock_guard lk(pend_mu_);
      all.swap(pending_);
    }
    for (auto& p : all)
      if (p.done) p.done(st);
  }

  // A standby this late is declared behind: the witness is told first (so it will not promote
  // a standby missing these entries), then the held batches are acknowledged.
  asio::awaitable<void> check_sync_timeout() {
    if (!sync_) co_return;
    std::int64_t oldest = 0;
    {
      std::lock_guard lk(pend_mu_);
      if (pending_.empty()) co_return;
      oldest = pending_.front().since_ms;
    }
    if (steady_ms() - oldest < cfg_.sync_timeout_ms) co_return;
    in_sync_ = false;
    co_await renew();
    if (reported_in_sync_ || role() != ha_role::active) co_return;  // the witness did not take it yet
    spdlog::warn("ha: the standby is {} ms behind: running alone until it catches up (the witness knows)",
                 steady_ms() - oldest);
    {
      std::lock_guard lk(pend_mu_);
      degraded_ = true;
    }
    release_all(status{});
  }

  // --- replication: the active's side -----------------------------------------------------

  asio::awaitable<void> accept_loop() {
    accept_failures failures("replication");
    while (!stopping_) {
      auto [ec, sock] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        if (failures.failed(ec)) {
          asio::steady_timer pause(strand_, accept_pause);
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        continue;
      }
      failures.accepted();
      asio::co_spawn(strand_, serve_standby(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> serve_standby(tcp::socket sock) {
    boost::system::error_code ec;
    sock.set_option(tcp::no_delay(true), ec);
    const auto peer = sock.remote_endpoint(ec);
    std::shared_ptr<byte_stream> stream;
    if (server_tls_) {
      auto t = co_await tls_accept(sock, server_tls_, std::chrono::milliseconds(cfg_.lease_ms));
      if (!t) {
        spdlog::warn("ha: replication connection from {} refused: {}", peer.address().to_string(), t.err().message);
        co_return;
      }
      if (t->client_cn != cfg_.peer.id) {
        spdlog::warn("ha: replication connection refused: certificate names '{}', not the peer '{}'", t->client_cn,
                     cfg_.peer.id);
        t->stream->close();
        co_return;
      }
      stream = std::move(t->stream);
    } else {
      stream = make_tcp_stream(std::move(sock));
    }
    frame_reader in;
    auto hello = co_await next_within(*stream, in, std::chrono::milliseconds(cfg_.lease_ms));
    std::optional<json> h;
    if (hello && hello->type == f_hello) h = parse_json(hello->body);
    auto refuse = [&](const std::string& why) -> asio::awaitable<void> {
      const auto f = json_frame(f_welcome, json{{"error", why}, {"epoch", epoch_.load()}});
      co_await stream->write_all(asio::buffer(f));
      stream->close();
    };
    std::string why;
    if (!h || h->value("node", std::string()) != cfg_.peer.id) {
      why = "hello expected from the configured peer";
      co_await refuse(why);
      co_return;
    }
    if (role() != ha_role::active) {
      why = fmt::format("node '{}' is not active", cfg_.node_id);
      co_await refuse(why);
      co_return;
    }
    const auto their_epoch = h->value("epoch", std::uint64_t{0});
    if (their_epoch > epoch_.load()) {
      why = "your epoch is newer";
      co_await refuse(why);
      fence(fmt::format("the standby knows epoch {}", their_epoch));
      co_return;
    }
    // Catch up from the log when the standby's history is a prefix of ours; else a snapshot.
    const auto history = h->value("history", std::string());
    const auto last_seq = h->value("last_seq", std::uint64_t{0});
    const auto last_epoch = h->value("last_epoch", std::uint64_t{0});
    auto pos = reader_->replication_position();
    bool stream_ok = pos && history == pos->history && last_seq <= pos->last_seq;
    if (stream_ok) {
      auto first = reader_->replication_first_seq();
      stream_ok = first && (!*first || **first <= last_seq + 1);
      if (stream_ok && last_seq > 0) {
        auto e = reader_->replication_epoch_at(last_seq);
        stream_ok = e && *e && **e == last_epoch;
      }
    }
    if (link_) link_->close();  // one standby at a time: the newest connection wins
    link_ = stream.get();
    auto out = std::make_shared<write_queue<byte_stream>>(*stream);
    asio::co_spawn(strand_, run_writer(out, stream), asio::detached);
    json welcome{{"node", cfg_.node_id}, {"epoch", epoch_.load()}, {"mode", stream_ok ? "stream" : "snapshot"}};
    out->push(json_frame(f_welcome, welcome));
    spdlog::info("ha: standby '{}' connected at entry {}: {}", cfg_.peer.id, last_seq,
                 stream_ok ? "catching up from the log" : "sending a snapshot");
    if (!stream_ok) {
      co_await send_snapshot(*out);
      out->finish([] {});
      co_await wait_closed(*out);
      if (link_ == stream.get()) link_ = nullptr;
      stream->close();
      co_return;
    }
    standby_connected_ = true;
    // What the standby already holds (from a snapshot, or applied before a reconnect) is durable
    // there: commits waiting for it are released now, not at the next entry's acknowledgement.
    acked_ = last_seq;
    acknowledged(last_seq);
    auto alive = std::make_shared<bool>(true);
    asio::co_spawn(strand_, read_standby(stream, std::move(in), alive), asio::detached);
    std::uint64_t sent = last_seq;
    std::int64_t last_ping = 0;
    while (*alive && !out->closed() && !stopping_ && role() == ha_role::active) {
      auto batch = reader_->replication_entries(sent, 256, 1 << 20);
      if (!batch) {
        spdlog::error("ha: cannot read the replication log: {}", batch.err().message);
        break;
      }
      for (auto& e : *batch) {
        std::string body;
        put_u64(body, e.seq);
        put_u64(body, e.epoch);
        body.append(reinterpret_cast<const char*>(e.payload.data()), e.payload.size());
        out->push(frame(f_entry, body));
        sent = e.seq;
      }
      const auto now = steady_ms();
      if (now - last_ping >= cfg_.heartbeat_ms) {
        last_ping = now;
        out->push(json_frame(f_ping, json{{"epoch", epoch_.load()}, {"last_seq", sent}, {"t", now}}));
      }
      if (batch->empty()) {
        wake_.expires_after(std::chrono::milliseconds(cfg_.heartbeat_ms));
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (now - last_heard_standby_ > static_cast<std::int64_t>(cfg_.lease_ms) && last_heard_standby_ != 0) {
        spdlog::warn("ha: the standby is silent for {} ms: dropping its link", now - last_heard_standby_);
        break;
      }
    }
    *alive = false;
    standby_connected_ = false;
    in_sync_ = false;
    out->close();
    stream->close();
    if (link_ == stream.get()) link_ = nullptr;
    spdlog::warn("ha: standby link closed");
  }

  asio::awaitable<void> wait_closed(write_queue<byte_stream>& out) {
    asio::steady_timer t(strand_);
    const auto until = steady_ms() + 600000;
    while (!out.closed() && steady_ms() < until) {
      t.expires_after(20ms);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::awaitable<void> read_standby(std::shared_ptr<byte_stream> stream, frame_reader in, std::shared_ptr<bool> alive) {
    byte_stream& s = *stream;
    last_heard_standby_ = steady_ms();
    while (*alive) {
      auto f = co_await in.next(s);
      if (!f) break;
      last_heard_standby_ = steady_ms();
      if (f->type == f_ack && f->body.size() == 8) {
        acknowledged(get_u64(f->body, 0));
      } else if (f->type == f_pong) {
        auto j = parse_json(f->body);
        if (j && j->value("epoch", std::uint64_t{0}) == epoch_.load() && j->value("granted", false)) {
          const auto t = j->value("t", std::int64_t{0});
          standby_lease_until_ = std::max(standby_lease_until_.load(), t + static_cast<std::int64_t>(cfg_.lease_ms));
        } else if (j && j->value("epoch", std::uint64_t{0}) > epoch_.load()) {
          fence(fmt::format("the standby reports epoch {}", j->value("epoch", std::uint64_t{0})));
        }
      } else {
        spdlog::warn("ha: unexpected frame {} from the standby", f->type);
        break;
      }
    }
    *alive = false;
    wake_.cancel();
  }

  asio::awaitable<void> send_snapshot(write_queue<byte_stream>& out) {
    const auto tmp = std::filesystem::path(ctx_.cfg().journal_cfg.path.string() + ".snapshot.tmp");
    std::error_code fec;
    std::filesystem::remove(tmp, fec);
    auto path = ctx_.cfg().journal_cfg.path;
    // Named first (GCC 12 destroys non-trivial temporaries of a co_await expression twice).
    auto copy = [path, tmp]() -> asio::awaitable<result<journal::backup_stats>> {
      journal::backup_options o;
      o.overwrite = true;
      co_return journal::backup(path, tmp, o);
    };
    auto task = asio::co_spawn(pool_, std::move(copy), asio::use_awaitable);
    auto r = co_await std::move(task);
    if (!r) {
      spdlog::error("ha: snapshot for the standby failed: {}", r.err().message);
      co_return;
    }
    auto digest = journal::sha256_file(tmp);
    if (!digest) {
      spdlog::error("ha: snapshot for the standby failed: {}", digest.err().message);
      co_return;
    }
    out.push(json_frame(f_snap_begin, json{{"size", digest->size}, {"sha256", digest->sha256_hex}}));
    std::ifstream in(tmp, std::ios::binary);
    std::array<char, 1 << 20> chunk;
    while (in) {
      in.read(chunk.data(), chunk.size());
      const auto n = static_cast<std::size_t>(in.gcount());
      if (n > 0) out.push(frame(f_snap_data, std::string_view(chunk.data(), n)));
    }
    out.push(frame(f_snap_end, ""));
    std::filesystem::remove(tmp, fec);
    spdlog::info("ha: snapshot of {} bytes sent to the standby", digest->size);
  }

  // --- replication: the standby's side ----------------------------------------------------

  asio::awaitable<void> standby_link() {
    asio::steady_timer t(strand_);
    bool want_snapshot = false;
    while (!stopping_ && role() == ha_role::standby) {
      const asio::any_io_executor ex = strand_;
      auto s = co_await connect_to(ex, cfg_.peer.replication, client_tls_, cfg_.peer.id,
                                   std::chrono::milliseconds(cfg_.lease_ms));
      if (s) {
        std::shared_ptr<byte_stream> stream = std::move(*s);
        link_ = stream.get();
        auto st = co_await follow(stream, want_snapshot);
        if (link_ == stream.get()) link_ = nullptr;
        stream->close();
        if (!st) {
          spdlog::warn("ha: replication from '{}' stopped: {}", cfg_.peer.id, st.err().message);
          want_snapshot = st.err().code == "ha.diverged";
        }
      }
      t.expires_after(std::chrono::milliseconds(cfg_.heartbeat_ms));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::awaitable<status> follow(std::shared_ptr<byte_stream> stream, bool want_snapshot) {
    byte_stream& s = *stream;
    auto out = std::make_shared<write_queue<byte_stream>>(s);
    asio::co_spawn(strand_, run_writer(out, stream), asio::detached);
    auto pos = ctx_.journal->replication_position();
    applied_ = pos.last_seq;
    json hello{{"node", cfg_.node_id},
               {"history", want_snapshot ? std::string() : pos.history},
               {"last_seq", pos.last_seq},
               {"last_epoch", pos.last_epoch},
               {"epoch", epoch_.load()}};
    out->push(json_frame(f_hello, hello));
    frame_reader in;
    auto w = co_await next_within(s, in, std::chrono::milliseconds(cfg_.lease_ms));
    if (!w) co_return w.err();
    auto welcome = parse_json(w->body);
    if (w->type != f_welcome || !welcome) co_return make_error("ha.bad_frame", "welcome expected");
    if (welcome->contains("error")) co_return make_error("ha.refused", welcome->value("error", std::string()));
    const auto aepoch = welcome->value("epoch", std::uint64_t{0});
    if (aepoch < epoch_.load()) co_return make_error("ha.stale_active", "the peer's epoch is older than ours");
    epoch_ = aepoch;
    last_heard_ = steady_ms();
    if (welcome->value("mode", std::string()) == "snapshot") co_return co_await receive_snapshot(s, in);
    spdlog::info("ha: following '{}' from entry {} (epoch {})", cfg_.peer.id, pos.last_seq, aepoch);
    auto failed = std::make_shared<std::optional<error>>();
    while (!stopping_ && role() == ha_role::standby && !out->closed()) {
      auto f = co_await next_within(s, in, std::chrono::milliseconds(cfg_.lease_ms));
      if (!f) co_return f.err();
      last_heard_ = steady_ms();
      if (*failed) co_return **failed;
      if (f->type == f_entry && f->body.size() >= 16) {
        journal::repl_entry e;
        e.seq = get_u64(f->body, 0);
        e.epoch = get_u64(f->body, 8);
        if (e.epoch > epoch_.load()) epoch_ = e.epoch;
        const auto* p8 = reinterpret_cast<const std::uint8_t*>(f->body.data());
        e.payload.assign(p8 + 16, p8 + f->body.size());
        const auto seq = e.seq;
        std::weak_ptr<write_queue<byte_stream>> wout = out;
        ctx_.journal->apply_replica(std::move(e), [self = shared_from_this(), wout, seq, failed](status st) {
          asio::post(self->strand_, [self, wout, seq, failed, st = std::move(st)] {
            if (!st) {
              spdlog::error("ha: replica entry {} not applied: {} ({})", seq, st.err().code, st.err().message);
              if (!*failed) *failed = make_error("ha.diverged", "entry " + std::to_string(seq) + ": " + st.err().message);
              if (auto o = wout.lock()) o->close();
              return;
            }
            self->applied_ = seq;
            self->trim_log(seq);
            std::string body;
            put_u64(body, seq);
            if (auto o = wout.lock()) o->push(frame(f_ack, body));
          });
        });
      } else if (f->type == f_ping) {
        auto j = parse_json(f->body);
        if (!j) co_return make_error("ha.bad_frame", "unreadable ping");
        const auto pe = j->value("epoch", std::uint64_t{0});
        if (pe < epoch_.load()) co_return make_error("ha.stale_active", "ping from an older epoch");
        const bool grant = !promoting_;
        if (grant) last_pong_sent_ = steady_ms();
        out->push(json_frame(f_pong, json{{"epoch", pe}, {"t", j->value("t", std::int64_t{0})},
                                          {"granted", grant}, {"applied", applied_.load()}}));
      } else {
        co_return make_error("ha.bad_frame", fmt::format("unexpected frame {}", f->type));
      }
    }
    if (*failed) co_return **failed;
    co_return status{};
  }

  // The next frame, or ha.link_silent when the peer sent nothing for `limit` (the active
  // pings every heartbeat_ms, so silence means a dead peer or a cut link).
  asio::awaitable<result<in_frame>> next_within(byte_stream& s, frame_reader& in, std::chrono::milliseconds limit) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer t(strand_);
    t.expires_after(limit);
    auto r = co_await (in.next(s) || t.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1)
      co_return make_error("ha.link_silent", fmt::format("nothing from '{}' for {} ms", cfg_.peer.id, limit.count()));
    co_return std::get<0>(std::move(r));
  }

  asio::awaitable<status> receive_snapshot(byte_stream& s, frame_reader& in) {
    auto b = co_await next_within(s, in, std::chrono::minutes(2));  // the backup may take a while
    if (!b) co_return b.err();
    auto begin = parse_json(b->body);
    if (b->type != f_snap_begin || !begin) co_return make_error("ha.bad_frame", "snapshot header expected");
    const auto size = begin->value("size", std::uint64_t{0});
    const auto digest = begin->value("sha256", std::string());
    const auto seed = std::filesystem::path(ctx_.cfg().journal_cfg.path.string() + ".seed");
    const auto tmp = std::filesystem::path(seed.string() + ".tmp");
    spdlog::warn("ha: receiving a snapshot of {} bytes from '{}' (this journal does not continue the active's)",
                 size, cfg_.peer.id);
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      std::uint64_t got = 0;
      for (;;) {
        auto d = co_await next_within(s, in, std::chrono::minutes(2));
        if (!d) co_return d.err();
        last_heard_ = steady_ms();
        if (d->type == f_snap_end) break;
        if (d->type != f_snap_data) co_return make_error("ha.bad_frame", "snapshot data expected");
        got += d->body.size();
        if (got > size) co_return make_error("ha.bad_snapshot", "more snapshot bytes than announced");
        f.write(d->body.data(), static_cast<std::streamsize>(d->body.size()));
      }
      if (!f) co_return make_error("ha.bad_snapshot", "cannot write " + tmp.string());
    }
    auto check = journal::sha256_file(tmp);
    if (!check || check->sha256_hex != digest || check->size != size)
      co_return make_error("ha.bad_snapshot", "the snapshot's size or SHA-256 does not match");
    if (!journal::fsync_path(tmp, false)) co_return make_error("ha.bad_snapshot", "cannot fsync the snapshot");
    std::error_code ec;
    std::filesystem::rename(tmp, seed, ec);
    if (ec) co_return make_error("ha.bad_snapshot", "cannot rename the snapshot: " + ec.message());
    journal::fsync_path(seed.parent_path().empty() ? "." : seed.parent_path(), true);
    if (hooks_.restart) hooks_.restart("installing the active's snapshot");
    role_ = static_cast<int>(ha_role::fenced);
    co_return status{};
  }

  struct pending {
    std::uint64_t seq;
    std::int64_t since_ms;
    std::function<void(status)> done;
  };

  server_context& ctx_;
  const config::ha_config cfg_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<asio::ssl::context> server_tls_;
  std::shared_ptr<asio::ssl::context> client_tls_;
  asio::steady_timer wake_;
  asio::thread_pool pool_;
  ha_hooks hooks_;
  std::optional<journal::reader> reader_;  // strand only
  std::optional<tcp::acceptor> acceptor_;
  std::uint16_t replication_port_ = 0;
  std::optional<witness_client> witness_;
  byte_stream* link_ = nullptr;  // the current replication link (strand only)
  bool stopping_ = false;
  bool warned_witness_ = false;
  bool told_staying_ = false;
  bool sync_ = true;

  std::atomic<int> role_{static_cast<int>(ha_role::starting)};
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<bool> ready_{false};  // active and done taking office
  std::atomic<std::int64_t> witness_lease_until_{0};
  std::atomic<std::int64_t> standby_lease_until_{0};
  std::atomic<bool> promoting_{false};
  bool promoted_force_ = false;
  std::atomic<std::int64_t> last_pong_sent_{0};
  std::atomic<std::int64_t> last_heard_{0};  // standby: last frame from the active
  std::int64_t last_heard_standby_ = 0;       // active: last frame from the standby

  std::mutex pend_mu_;
  std::deque<pending> pending_;
  bool degraded_ = false;
  std::atomic<std::uint64_t> last_committed_{0};
  std::atomic<std::uint64_t> acked_{0};
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> trimmed_below_{0};  // trim_log's last bound
  std::atomic<bool> standby_connected_{false};
  std::atomic<bool> in_sync_{true};
  std::atomic<bool> reported_in_sync_{true};
};

}  // namespace

result<std::shared_ptr<ha_node>> make_ha_node(server_context& ctx) {
  const auto& ha = ctx.cfg().ha;
  std::shared_ptr<asio::ssl::context> server_tls, client_tls;
  if (ha.replication.tls.enabled()) {
    auto s = make_server_tls(ha.replication.tls);
    if (!s) return make_error("ha.config", "ha.replication.tls: " + s.err().message);
    server_tls = std::move(*s);
    auto c = make_client_tls(ha.replication.tls);
    if (!c) return make_error("ha.config", "ha.replication.tls: " + c.err().message);
    client_tls = std::move(*c);
  }
  return std::shared_ptr<ha_node>(std::make_shared<ha_node_impl>(ctx, server_tls, client_tls));
}

result<std::string> install_seed(const std::filesystem::path& journal_path) {
  const auto seed = std::filesystem::path(journal_path.string() + ".seed");
  std::error_code ec;
  if (!std::filesystem::exists(seed, ec)) return std::string();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const auto aside = journal_path.string() + ".diverged-" + std::to_string(now);
  // A journal that never held a replication entry (a new standby's) has nothing anyone would
  // look at: it is replaced, not kept aside. When in doubt (unreadable), it is kept.
  bool fresh = false;
  if (std::filesystem::exists(journal_path, ec)) {
    if (auto rd = journal::reader::open(journal_path)) {
      auto pos = rd->replication_position();
      fresh = pos && pos->last_seq == 0;
    }
  }
  std::string kept;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::filesystem::path from(journal_path.string() + suffix);
    if (!std::filesystem::exists(from, ec)) continue;
    if (fresh) {
      std::filesystem::remove(from, ec);
      if (ec) return make_error("ha.seed", "cannot remove " + from.string() + ": " + ec.message());
      continue;
    }
    std::filesystem::rename(from, aside + suffix, ec);
    if (ec) return make_error("ha.seed", "cannot move " + from.string() + " aside: " + ec.message());
    if (*suffix == '\0') kept = aside;
  }
  std::filesystem::rename(seed, journal_path, ec);
  if (ec) return make_error("ha.seed", "cannot install the snapshot: " + ec.message());
  journal::fsync_path(journal_path.parent_path().empty() ? "." : journal_path.parent_path(), true);
  return kept.empty() ? std::string("installed the active's snapshot")
                      : "installed the active's snapshot; the previous journal is kept as " + kept;
}

}  // namespace eftd::server
