// Shared helpers of the end-to-end tests: a raw POS client, a pad scripted by hand, and
// journal look-ups. Header-only; each test file includes it once.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eftd/journal/reader.hpp"
#include "eftd/pad/codec.hpp"
#include "harness.hpp"

namespace eftd::test {

using namespace std::chrono_literals;

// The test card's PAN (pinpad-firmware-shim/cards/visa-approve.toml). It must never appear in
// the journal, the logs or a POS message; tests search for it and never print it.
inline const std::string test_pan = "4761739001010119";

// eftd's admin socket ([admin] socket): a connected Unix socket, -1 when it cannot connect.
inline int admin_connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof(addr.sun_path) - 1));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends raw bytes and reads one reply line within the deadline ("" when none came).
inline std::string admin_exchange(int fd, const std::string& bytes, std::chrono::milliseconds within) {
  if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) return {};
  std::string in;
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (in.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const auto n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return {};
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in.substr(0, in.find('\n'));
}

// One JSON request line to the admin socket at `path`, its reply (discarded JSON when none).
inline nlohmann::json admin_request(const std::string& path, const nlohmann::json& request,
                                    std::chrono::milliseconds within = 60s) {
  const int fd = admin_connect(path);
  REQUIRE(fd >= 0);
  auto line = admin_exchange(fd, request.dump() + "\n", within);
  ::close(fd);
  return nlohmann::json::parse(line, nullptr, false);
}

inline std::string order_no(const std::string& tag) {
  static int n = 0;
  return tag + std::to_string(::getpid() % 10000) + std::to_string(++n);
}

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

inline bool any_line_contains(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (contains(l, needle)) return true;
  return false;
}

// The journal's view of the one order with this number on till T01 (after eftd stopped).
// SIGTERM to a simulator, then its SUMMARY line (JSON after "SUMMARY ").
inline std::string stop_and_summary(process& sim) {
  sim.signal(SIGTERM);
  auto summary = sim.wait_for_prefix("SUMMARY ", 10s);
  REQUIRE(summary.has_value());
  CHECK(sim.wait_exit(10s) == std::optional<int>{0});
  return *summary;
}

// A number from the SUMMARY JSON ("key":N), or -1.
inline long long summary_number(const std::string& summary, const std::string& key) {
  const auto at = summary.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::stoll(summary.substr(at + key.size() + 3));
}

inline eftd::journal::order_view journal_view(const installation& inst, const std::string& order,
                                              const std::string& till = "T01") {
  auto rd = eftd::journal::reader::open(inst.db());
  REQUIRE(rd);
  auto rows = rd->find_orders_recent(till, order, 0);
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  auto detail = rd->order_detail(rows->front().order_id);
  REQUIRE(detail);
  REQUIRE(detail->has_value());
  return std::move(**detail);
}

// Outcome notifications to a receiver that is never there (plain http to loopback port 9 is
// allowed): each notification expires about a second after its outcome, for the retry pages.
inline void notify_to_nowhere(installation& inst) {
  const std::string secret = inst.dir + "/notify.secret";
  std::ofstream(secret) << "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
  ::chmod(secret.c_str(), 0600);
  inst.extra_config += "[[notify]]\nurl = \"http://127.0.0.1:9/eftd/outcomes\"\nsecret_file = \"" + secret +
                       "\"\ntimeout_ms = 1000\nretry_initial_ms = 50\nretry_max_ms = 200\nmax_age_s = 1\n";
}

// Whether the order's journal holds an event of `kind` whose text contains `text`.
inline bool has_event(const eftd::journal::order_view& v, const std::string& kind, const std::string& text) {
  for (const auto& e : v.events)
    if (e.kind == kind && e.reason.find(text) != std::string::npos) return true;
  return false;
}

// eftd's arguments for the central EMV kernel with the test CA keys.
inline std::vector<std::string> emv_on() {
  return {"--set", "emv.enabled=true", "--set",
          "emv.capk_file=" + source_path("pinpad-firmware-shim/cards/keys/capk-eftd-test.toml")};
}

// The acquirer simulator's arguments for the test issuer master keys (ARQC, TC, ARPC).
inline std::vector<std::string> issuer() {
  return {"--issuer-keys", source_path("acquirers/sim/issuer-keys-test.toml")};
}

// A pad script: the customer types the cards' PIN (1234) and enter, for each of `entries` PIN
// entries (script events are consumed in order).
inline std::vector<std::string> customer_types_pin(installation& inst, int entries = 1) {
  const std::string path = inst.dir + "/pin.toml";
  std::string events;
  for (int i = 0; i < entries; ++i)
    events += std::string(i ? ", " : "") + "\"1\", \"2\", \"3\", \"4\", \"enter\"";
  std::ofstream(path) << "[input]\nevents = [" << events << "]\n";
  return {"--script", path};
}

// Calls `check()` until it returns true or `limit` passes; between calls it waits for a change
// in directory `dir` (inotify: a file created or written), or 250 ms at most as a fallback.
// Returns check()'s last answer.
template <class Check>
bool wait_for_change_in(const std::string& dir, std::chrono::milliseconds limit, Check check) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CREATE) >= 0);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool done = false;
  while (!(done = check()) && std::chrono::steady_clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    const auto wait = std::min<long long>(left.count(), 250);
    if (wait > 0 && ::poll(&p, 1, static_cast<int>(wait)) > 0) {
      char drain[4096];
      while (::read(fd, drain, sizeof drain) > 0) {
      }
    }
  }
  ::close(fd);
  return done;
}

// Re-reads the journal at `db` until `pred(order_view)` holds for `order` of `till` or the
// deadline passes; between reads it waits for the next journal write (the WAL changes on every
// commit). The WAL frames are written before the commit is visible, so a read woken by them can
// still see the old state: without a further event it reads again after 250 ms. Returns the
// last view read.
template <class Pred>
std::optional<eftd::journal::order_view> wait_for_order_in(const std::string& db, const std::string& till,
                                                           const std::string& order, Pred pred,
                                                           std::chrono::seconds limit = 20s) {
  std::optional<eftd::journal::order_view> last;
  wait_for_change_in(std::filesystem::path(db).parent_path().string(), limit, [&] {
    auto rd = eftd::journal::reader::open(db);
    if (!rd) return false;
    auto rows = rd->find_orders_recent(till, order, 0);
    if (!rows || rows->size() != 1) return false;
    auto detail = rd->order_detail(rows->front().order_id);
    if (!detail || !detail->has_value()) return false;
    last = std::move(**detail);
    return static_cast<bool>(pred(*last));
  });
  return last;
}
template <class Pred>
std::optional<eftd::journal::order_view> wait_for_order(const installation& inst, const std::string& till,
                                                        const std::string& order, Pred pred,
                                                        std::chrono::seconds limit = 20s) {
  return wait_for_order_in(inst.db(), till, order, std::move(pred), limit);
}

// Waits until the file at `path` contains `text`. True if it does before the deadline.
inline bool wait_for_text_in_file(const std::string& path, const std::string& text, std::chrono::milliseconds limit) {
  return wait_for_change_in(std::filesystem::path(path).parent_path().string(), limit,
                            [&] { return slurp(path).find(text) != std::string::npos; });
}
// Waits until the file at `path` is longer than `size` bytes.
inline bool wait_for_file_growth(const std::string& path, std::size_t size, std::chrono::milliseconds limit) {
  return wait_for_change_in(std::filesystem::path(path).parent_path().string(), limit,
                            [&] { return slurp(path).size() > size; });
}
// The same for an order of till T01.
template <class Pred>
std::optional<eftd::journal::order_view> wait_for_order(const installation& inst, const std::string& order,
                                                        Pred pred, std::chrono::seconds limit = 20s) {
  return wait_for_order(inst, "T01", order, std::move(pred), limit);
}

// A minimal raw POS client for protocol-level checks.
class raw_client {
 public:
  explicit raw_client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~raw_client() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(const std::string& s) {
    REQUIRE(::write(fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
  void send_bytes(const eftd::bytes& b) {
    REQUIRE(::write(fd_, b.data(), b.size()) == static_cast<ssize_t>(b.size()));
  }
  // Whatever arrives next (empty on EOF or timeout).
  std::string read_some(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char chunk[4096];
    auto n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) eof_ = true;
    return n > 0 ? std::string(chunk, static_cast<std::size_t>(n)) : std::string();
  }
  // True once a read found the peer's end of the connection.
  bool at_eof() const { return eof_; }
  std::optional<nlohmann::json> next(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return nlohmann::json::parse(line, nullptr, false);
      }
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[4096];
      auto n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// A pad that speaks the protocol by hand, so a test can make it misbehave at an exact step.
class scripted_pad {
 public:
  scripted_pad(int port, const std::string& pad_id, const std::string& serial) : client_(port) {
    eftd::pad::hello h;
    h.pad_id = pad_id;
    h.serial = serial;
    h.model = "scripted";
    h.firmware = "test";
    send(eftd::pad::envelope{seq_.next(), 0, h});
    auto ack = next();
    REQUIRE(ack.has_value());
    auto* ha = std::get_if<eftd::pad::hello_ack>(&ack->body);
    REQUIRE(ha != nullptr);
    REQUIRE(ha->accepted);
  }
  void send(const eftd::pad::envelope& e) { client_.send_bytes(eftd::pad::encode(e)); }
  std::optional<eftd::pad::envelope> next(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto f = frames_.next();
      REQUIRE(f);
      if (f->has_value()) {
        auto env = eftd::pad::decode_body(**f);
        REQUIRE(env);
        return std::move(*env);
      }
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto chunk = client_.read_some(left);
      if (chunk.empty()) return std::nullopt;
      frames_.feed(eftd::byte_view(reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size()));
    }
  }
  void close() { client_.close(); }
  bool at_eof() const { return client_.at_eof(); }

 private:
  raw_client client_;
  eftd::pad::frame_reader frames_;
  eftd::pad::seq_counter seq_;
};

// Logs `pos` in as T01 and starts a sale; returns once eftd has asked `pad` for the card, so
// the sale is held at the customer step (nothing sent to an acquirer yet).
inline void start_sale_held_at_card(raw_client& pos, scripted_pad& pad, const std::string& order,
                                    int amount) {
  pos.send(R"({"type":"login","v":1,"id":"l1","till_id":"T01","version":1})"
           "\n");
  REQUIRE(pos.next().has_value());
  pos.send(R"({"type":"sale","v":1,"id":"s1","order_no":")" + order + R"(","amount":)" +
           std::to_string(amount) +
           R"(,"currency":"PLN"})"
           "\n");
  std::optional<eftd::pad::envelope> cmd;
  while ((cmd = pad.next()) && !std::holds_alternative<eftd::pad::read_card>(cmd->body)) {
  }
  REQUIRE(cmd.has_value());
}

// --- GET /metrics ----------------------------------------------------------------------------

// One HTTP/1.1 exchange on a fresh connection; returns everything the server sent.
inline std::string http_exchange(int port, const std::string& request) {
  raw_client c(port);
  c.send(request);
  std::string all;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!c.at_eof() && std::chrono::steady_clock::now() < deadline) all += c.read_some(1s);
  return all;
}

inline std::string get_metrics(int port) {
  return http_exchange(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
}

// The value of the sample line starting with `series` (exact name and labels), or -1.
inline double sample(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

}  // namespace eftd::test
