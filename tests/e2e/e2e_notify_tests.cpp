// Outcome notifications end to end (issue 7, server/NOTIFY.md): eftd POSTs every final order
// outcome to a back-office receiver over HTTPS, signed, retried, across restarts, and gives up
// after the maximum age. The receiver is a small Beast HTTPS server in this test, with its own
// throwaway certificate; eftd trusts only that certificate's CA.
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "e2e_util.hpp"
#include "free_port.hpp"

using namespace std::chrono_literals;
using namespace eftd::test;

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// The HMAC key (hex) shared by eftd and the receiver: test material only.
const std::string secret_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct received_post {
  std::string target;
  std::string id;
  std::string timestamp;
  std::string signature;
  std::string content_type;
  std::string body;
  unsigned answered = 0;
};

// Sync HTTPS server on its own thread: one request per connection. The first `fail_first`
// POSTs are answered 503, the rest 200.
class receiver {
 public:
  receiver(const std::string& pki, int fail_first, std::uint16_t port = 0)
      : tls_(ssl::context::tls_server), fail_first_(fail_first) {
    tls_.use_certificate_chain_file(pki + "/server.pem");
    tls_.use_private_key_file(pki + "/server.key", ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    acceptor_.listen();
    acceptor_.non_blocking(true);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }
  ~receiver() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

  std::vector<received_post> posts() {
    std::lock_guard lk(mu_);
    return posts_;
  }
  // Waits until `n` POSTs were answered 2xx; false at the deadline.
  bool wait_accepted(std::size_t n, std::chrono::milliseconds within) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, within, [&] { return accepted_ >= n; });
  }

 private:
  void run() {
    while (!stop_) {
      // The acceptor is non-blocking: wait for a connection a bounded time, then look at stop_.
      pollfd p{acceptor_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      boost::system::error_code ec;
      tcp::socket s(io_);
      acceptor_.accept(s, ec);
      if (ec) continue;
      serve(std::move(s));
    }
  }

  void serve(tcp::socket s) {
    timeval tv{5, 0};  // a stuck client must not hang the test
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ssl::stream<tcp::socket> stream(std::move(s), tls_);
    boost::system::error_code ec;
    stream.handshake(ssl::stream_base::server, ec);
    if (ec) return;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::read(stream, buf, req, ec);
    if (ec) return;
    received_post r;
    r.target = std::string(req.target());
    r.id = std::string(req["X-Eftd-Notification-Id"]);
    r.timestamp = std::string(req["X-Eftd-Timestamp"]);
    r.signature = std::string(req["X-Eftd-Signature"]);
    r.content_type = std::string(req[http::field::content_type]);
    r.body = req.body();
    const bool fail = seen_++ < fail_first_;
    r.answered = fail ? 503 : 200;
    http::response<http::string_body> res{fail ? http::status::service_unavailable : http::status::ok, 11};
    res.body() = fail ? "try later\n" : "ok\n";
    res.keep_alive(false);
    res.prepare_payload();
    http::write(stream, res, ec);
    stream.shutdown(ec);
    {
      std::lock_guard lk(mu_);
      posts_.push_back(std::move(r));
      if (!fail) ++accepted_;
    }
    cv_.notify_all();
  }

  asio::io_context io_;
  ssl::context tls_;
  tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  int fail_first_;
  int seen_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<received_post> posts_;
  std::size_t accepted_ = 0;
  std::thread thread_;
};

std::string hex_lower(const unsigned char* p, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0x0f];
  }
  return out;
}

// The receiver's check, as NOTIFY.md describes it.
std::string expected_signature(const std::string& timestamp, const std::string& body) {
  std::string key;
  for (std::size_t i = 0; i < secret_hex.size(); i += 2)
    key += static_cast<char>(std::stoi(secret_hex.substr(i, 2), nullptr, 16));
  const std::string text = timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &n);
  return "sha256=" + hex_lower(mac, n);
}

// A CA and a server certificate for 127.0.0.1 (tools/certs.sh), and the secret file.
std::string make_pki(installation& inst) {
  const std::string pki = inst.dir + "/notify-pki";
  const std::string script = "source \"" + source_path("tools/certs.sh") +
                             "\" && eftd_make_certs \"$1\" notify.test \"eftd notify test CA\"";
  process certs("/bin/bash", {"-c", script, "certs", pki}, inst.dir + "/certs.log");
  REQUIRE(certs.wait_exit(60s) == std::optional<int>{0});
  const std::string secret = inst.dir + "/notify.secret";
  std::ofstream(secret) << secret_hex << "\n";
  ::chmod(secret.c_str(), 0600);
  return pki;
}

std::string notify_config(installation& inst, const std::string& pki, std::uint16_t port,
                          const std::string& extra = {}) {
  return "[[notify]]\nurl = \"https://127.0.0.1:" + std::to_string(port) +
         "/eftd/outcomes\"\nsecret_file = \"" + inst.dir + "/notify.secret\"\nca_file = \"" + pki +
         "/ca.pem\"\ntimeout_ms = 3000\n" + "retry_initial_ms = 50\nretry_max_ms = 200\n" + extra;
}

std::vector<eftd::journal::notification_row> journal_notifications(installation& inst) {
  auto r = eftd::journal::reader::open(inst.db());
  REQUIRE(r);
  auto rows = r->list_notifications({});
  REQUIRE(rows);
  return *rows;
}

// Waits (with a deadline) until the journal shows a notification in `state`.
bool wait_for_state(installation& inst, const std::string& state, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = eftd::journal::reader::open(inst.db());
    if (r) {
      eftd::journal::notification_filter f;
      f.state = state;
      auto rows = r->list_notifications(f);
      if (rows && !rows->empty()) return true;
    }
    // The journal has no change feed for a test: look again shortly.
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

TEST_CASE("a sale's outcome reaches the receiver once, signed, after two refusals", "[e2e][notify]") {
  installation inst("e2e-notify");
  const auto pki = make_pki(inst);
  receiver rx(pki, /*fail_first=*/2);
  inst.extra_config = notify_config(inst, pki, rx.port());
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("N");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "125.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.result.value("outcome", "") == "approved");

  REQUIRE(rx.wait_accepted(1, 30s));
  inst.stop_pad();
  inst.eftd->stop();
  const auto posts = rx.posts();
  REQUIRE(posts.size() == 3);
  CHECK(posts[0].answered == 503);
  CHECK(posts[1].answered == 503);
  CHECK(posts[2].answered == 200);
  for (const auto& p : posts) {
    CHECK(p.target == "/eftd/outcomes");
    CHECK(p.content_type == "application/json");
    CHECK(p.id == posts[0].id);  // the idempotency key stays the same across retries
    CHECK(p.signature == expected_signature(p.timestamp, p.body));
    const bool leaks_pan = contains(p.body, test_pan);
    CHECK_FALSE(leaks_pan);
  }
  const auto body = nlohmann::json::parse(posts[2].body);
  CHECK(body.value("notification_id", "") == posts[2].id);
  CHECK(body.value("event", "") == "order.final");
  CHECK(body.value("order_no", "") == order);
  CHECK(body.value("till", "") == "T01");
  CHECK(body.value("kind", "") == "sale");
  CHECK(body.value("state", "") == "approved");
  CHECK(body.value("amount_minor", 0) == 12500);
  CHECK(body.value("approved_amount_minor", 0) == 12500);
  CHECK(body.value("currency", "") == "PLN");
  CHECK(body.value("pan_masked", "") == "476173******0119");

  const auto rows = journal_notifications(inst);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "delivered");
  CHECK(rows[0].attempts == 3);
  CHECK(rows[0].last_error.value_or("") == "HTTP 503");
  // A tampered body would not verify.
  CHECK(posts[2].signature != expected_signature(posts[2].timestamp, posts[2].body + " "));
}

TEST_CASE("a notification pending at shutdown is delivered after a restart", "[e2e][notify]") {
  installation inst("e2e-notify-restart");
  const auto pki = make_pki(inst);
  const auto port = free_port();  // the receiver is down: nothing listens here yet
  inst.extra_config = notify_config(inst, pki, port);
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("NR");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "30.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.result.value("outcome", "") == "approved");
  inst.stop_pad();
  inst.eftd->stop();
  auto rows = journal_notifications(inst);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "pending");

  receiver rx(pki, /*fail_first=*/0, port);
  inst.start_eftd();
  REQUIRE(rx.wait_accepted(1, 30s));
  // The receiver has answered; eftd records the delivery once it has read that answer.
  const auto pending_id = rows[0].notification_id;
  CHECK(eftd::test::wait_for_change_in(inst.dir, 30s, [&] {
    rows = journal_notifications(inst);
    return rows.size() == 1 && rows[0].state == "delivered";
  }));
  inst.eftd->stop();
  const auto posts = rx.posts();
  REQUIRE(posts.size() == 1);
  CHECK(posts[0].id == pending_id);
  CHECK(nlohmann::json::parse(posts[0].body).value("order_no", "") == order);
  rows = journal_notifications(inst);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "delivered");
}

TEST_CASE("an undeliverable notification expires after its maximum age, visibly", "[e2e][notify]") {
  installation inst("e2e-notify-expire");
  const auto pki = make_pki(inst);
  inst.extra_config = notify_config(inst, pki, free_port(), "max_age_s = 1\n");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order = order_no("NX");
  auto r = inst.pos("T01", {"sale", "--order", order, "--amount", "31.00", "--currency", "PLN"});
  REQUIRE(r.exit_code == 0);
  REQUIRE(wait_for_state(inst, "expired", 30s));
  const auto expired_id = journal_notifications(inst).at(0).notification_id;

  // An operator puts it back in the queue (admin socket, audited); with the receiver still
  // down it expires again after a fresh maximum age.
  const auto reply = admin_request(inst.dir + "/admin.sock", {{"cmd", "notify_retry"}, {"id", expired_id}});
  CHECK(reply.value("ok", false));
  CHECK(reply.value("state", "") == "pending");
  const auto again = admin_request(inst.dir + "/admin.sock", {{"cmd", "notify_retry"}, {"id", "NO-SUCH-ID"}});
  CHECK_FALSE(again.value("ok", true));
  REQUIRE(wait_for_state(inst, "expired", 30s));
  inst.stop_pad();
  inst.eftd->stop();
  {
    auto r = eftd::journal::reader::open(inst.db());
    REQUIRE(r);
    eftd::journal::audit_filter f;
    f.action = "notify_retry";
    auto audit = r->audit_log(f);
    REQUIRE(audit);
    REQUIRE(audit->size() == 2);
    CHECK(audit->at(0).subject == expired_id);
    CHECK(audit->at(0).outcome == "ok");
    CHECK(audit->at(1).outcome == "journal.not_found");
  }
  const auto rows = journal_notifications(inst);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "expired");
  CHECK(rows[0].attempts >= 1);
  CHECK(contains(rows[0].last_error.value_or(""), "connect"));
  const auto view = journal_view(inst, order);
  bool event_seen = false;
  for (const auto& e : view.events)
    if (e.kind == "notification_expired" && contains(e.reason, rows[0].notification_id)) event_seen = true;
  CHECK(event_seen);

  // eftctl shows it to people.
  process list(bin_path("eftctl"),
               {"notifications", "list", "--db", inst.db(), "--state", "expired", "--json"},
               inst.dir + "/eftctl.log");
  std::string out;
  while (auto line = list.read_line(30s)) out += *line;
  REQUIRE(list.wait_exit(30s) == std::optional<int>{0});
  CHECK(contains(out, rows[0].notification_id));
}

namespace {

// A second merchant with its own store, pad and till (T03 on pad P03), so that outcomes of two
// merchants can be told apart by the endpoints' merchants filters.
const std::string second_merchant = R"(
[[merchants]]
id = "M002"
name = "Second Shop"
acquirer_merchant_id = "DEMO00000000002"
currency = "PLN"
country = "616"

[[stores]]
id = "S02"
merchant = "M002"
name = "Second Store"

[[pads]]
id = "P03"
serial = "VP-0003"

[[tills]]
id = "T03"
store = "S02"
pad = "P03"
terminal_id = "TERM0003"
)";

std::string named_endpoint(installation& inst, const std::string& pki, const std::string& name,
                           std::uint16_t port, const std::string& extra) {
  // notify_config starts the table: the name goes right after its header line.
  const std::string header = "[[notify]]\n";
  return header + "name = \"" + name + "\"\n" + notify_config(inst, pki, port, extra).substr(header.size());
}

std::size_t rows_in_state(installation& inst, const std::string& endpoint, const std::string& state) {
  auto r = eftd::journal::reader::open(inst.db());
  if (!r) return 0;
  eftd::journal::notification_filter f;
  f.endpoint = endpoint;
  f.state = state;
  auto rows = r->list_notifications(f);
  return rows ? rows->size() : 0;
}

}  // namespace

TEST_CASE("two endpoints each get only their merchant's outcomes, a dead third blocks neither",
          "[e2e][notify]") {
  installation inst("e2e-notify-endpoints");
  const auto pki = make_pki(inst);
  receiver erp(pki, /*fail_first=*/0);
  receiver loyalty(pki, /*fail_first=*/1);
  // "down" comes first: it also owns rows from before endpoints had names, and it must not
  // hold up the others while it fails.
  inst.extra_config = second_merchant + named_endpoint(inst, pki, "down", free_port(), "max_age_s = 2\n") +
                      named_endpoint(inst, pki, "erp", erp.port(), "merchants = [\"M001\"]\n") +
                      named_endpoint(inst, pki, "loyalty", loyalty.port(), "merchants = [\"M002\"]\n");
  inst.start_eftd();
  inst.start_pad("P01", "VP-0001", "visa-approve.toml");
  const auto order1 = order_no("NE");
  auto r1 = inst.pos("T01", {"sale", "--order", order1, "--amount", "11.00", "--currency", "PLN"});
  REQUIRE(r1.exit_code == 0);
  REQUIRE(r1.result.value("outcome", "") == "approved");
  inst.stop_pad();
  inst.start_pad("P03", "VP-0003", "visa-approve.toml");
  const auto order2 = order_no("NF");
  auto r2 = inst.pos("T03", {"sale", "--order", order2, "--amount", "22.00", "--currency", "PLN"});
  REQUIRE(r2.exit_code == 0);
  REQUIRE(r2.result.value("outcome", "") == "approved");

  REQUIRE(erp.wait_accepted(1, 30s));
  REQUIRE(loyalty.wait_accepted(1, 30s));
  // The dead endpoint's two rows expire after their 2 s; then an operator re-queues all of
  // that endpoint's expired ones at once (admin socket, audited).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (rows_in_state(inst, "down", "expired") < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);  // the journal has no change feed for a test
  REQUIRE(rows_in_state(inst, "down", "expired") == 2);
  const auto sock = inst.dir + "/admin.sock";
  const auto again = admin_request(sock, {{"cmd", "notify_retry"}, {"endpoint", "down"}});
  CHECK(again.value("ok", false));
  CHECK(again.value("count", 0) == 2);
  CHECK(admin_request(sock, {{"cmd", "notify_retry"}, {"endpoint", "nope"}})["error"].value("code", "") ==
        "admin.bad_request");
  inst.stop_pad();
  inst.eftd->stop();

  // Exactly one POST each, of the right merchant (loyalty's after one refusal).
  const auto to_erp = erp.posts();
  REQUIRE(to_erp.size() == 1);
  const auto erp_body = nlohmann::json::parse(to_erp[0].body);
  CHECK(erp_body.value("merchant", "") == "M001");
  CHECK(erp_body.value("order_no", "") == order1);
  CHECK(to_erp[0].signature == expected_signature(to_erp[0].timestamp, to_erp[0].body));
  const auto to_loyalty = loyalty.posts();
  REQUIRE(to_loyalty.size() == 2);
  CHECK(to_loyalty[0].answered == 503);
  CHECK(to_loyalty[1].id == to_loyalty[0].id);
  const auto loyalty_body = nlohmann::json::parse(to_loyalty[1].body);
  CHECK(loyalty_body.value("merchant", "") == "M002");
  CHECK(loyalty_body.value("order_no", "") == order2);

  // The outbox: one row per (outcome, endpoint), each with its own id.
  const auto rows = journal_notifications(inst);
  REQUIRE(rows.size() == 4);
  std::map<std::string, std::vector<eftd::journal::notification_row>> by_endpoint;
  std::set<std::string> ids;
  for (const auto& n : rows) {
    by_endpoint[n.endpoint].push_back(n);
    ids.insert(n.notification_id);
  }
  CHECK(ids.size() == 4);
  REQUIRE(by_endpoint["erp"].size() == 1);
  CHECK(by_endpoint["erp"][0].state == "delivered");
  CHECK(by_endpoint["erp"][0].notification_id == to_erp[0].id);
  REQUIRE(by_endpoint["loyalty"].size() == 1);
  CHECK(by_endpoint["loyalty"][0].state == "delivered");
  CHECK(by_endpoint["loyalty"][0].attempts == 2);
  REQUIRE(by_endpoint["down"].size() == 2);
  for (const auto& n : by_endpoint["down"]) {
    CHECK(n.state != "delivered");
    CHECK(n.expires_ms.has_value());  // re-queued by the operator: a fresh maximum age
    CHECK(contains(n.last_error.value_or(""), "connect"));
  }
  {
    auto rd = eftd::journal::reader::open(inst.db());
    REQUIRE(rd);
    eftd::journal::audit_filter f;
    f.action = "notify_retry";
    auto audit = rd->audit_log(f);
    REQUIRE(audit);
    REQUIRE(audit->size() == 2);
    CHECK(audit->at(0).subject == "down");
    CHECK(audit->at(0).outcome == "ok");
    CHECK(audit->at(1).outcome == "admin.bad_request");
  }

  // eftctl names the endpoint and filters on it.
  process list(bin_path("eftctl"),
               {"notifications", "list", "--db", inst.db(), "--endpoint", "erp", "--json"},
               inst.dir + "/eftctl.log");
  std::string out;
  while (auto line = list.read_line(30s)) out += *line;
  REQUIRE(list.wait_exit(30s) == std::optional<int>{0});
  const auto listed = nlohmann::json::parse(out);
  REQUIRE(listed["notifications"].size() == 1);
  CHECK(listed["notifications"][0].value("endpoint", "") == "erp");
  CHECK(listed["notifications"][0].value("notification_id", "") == to_erp[0].id);
}
