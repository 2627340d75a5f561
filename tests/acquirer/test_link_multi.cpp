// eftd::acq::link with several endpoints (primary first, then the others) and with TLS, against
// real eft-acquirer-sim processes. Certificates are made per test by tools/certs.sh.
#include <filesystem>

#include "free_port.hpp"
#include "link_support.hpp"

using namespace linktest;

namespace {

// Waits until the link has noticed that endpoint `index` dropped its connection: the reader
// runs on the same io_context, so yielding lets it see the EOF. Fails after `limit`.
asio::awaitable<void> wait_disconnected(std::shared_ptr<acq::link> l, std::size_t index,
                                        std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    const auto eps = co_await l->per_endpoint();
    REQUIRE(eps.size() > index);
    if (!eps[index].connected) co_return;
    REQUIRE(std::chrono::steady_clock::now() < until);
    co_await asio::post(ex, asio::use_awaitable);
  }
}

// A development CA, a server certificate for `server_name` (+ IP 127.0.0.1) and client
// certificates, made by tools/certs.sh in a fresh temp dir (removed with the object).
struct certs {
  explicit certs(const std::string& tag, const std::string& server_name = "acquirer.test")
      : dir(eftd::test::make_temp_dir(tag)) {
    const std::string script = "source \"" + eftd::test::source_path("tools/certs.sh") +
                               "\" && eftd_make_certs \"$1\" \"$2\" \"eftd acquirer test CA\" client1";
    eftd::test::process p("/bin/bash", {"-c", script, "certs", dir, server_name}, dir + "/certs.log");
    REQUIRE(p.wait_exit(60s) == std::optional<int>{0});
    REQUIRE(std::filesystem::exists(dir + "/server.pem"));
  }
  ~certs() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return dir + "/" + name; }
  std::vector<std::string> sim_args() const {
    return {"--tls-cert", file("server.pem"), "--tls-key", file("server.key")};
  }
  std::string dir;
};

acq::link_config tls_config(std::uint16_t port, const certs& trust) {
  auto cfg = link_config_for(port);
  cfg.tls.ca_file = trust.file("ca.pem");
  return cfg;
}

}  // namespace

TEST_CASE("links: requests go to the primary, then to the second link once the primary's host is gone",
          "[link][links]") {
  sim primary;
  sim secondary;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto cfg = link_config_for(primary.port);
    cfg.extra_links.push_back({"127.0.0.1", secondary.port});
    // Long enough that the primary is surely still backing off at the last request.
    cfg.reconnect_backoff_initial = 60000ms;
    cfg.reconnect_backoff_max = 60000ms;
    auto l = make_link(ex, cfg);
    for (int stan = 1; stan <= 3; ++stan) {
      const auto r = co_await l->request(sale("TERM0001", stan, "000000001000"));
      CHECK(code(r) == "00");
    }
    auto eps = co_await l->per_endpoint();
    REQUIRE(eps.size() == 2);
    CHECK(eps[0].endpoint == fmt::format("127.0.0.1:{}", primary.port));
    CHECK(eps[0].counters.sent == 3);
    CHECK(eps[1].counters.sent == 0);
    CHECK_FALSE(eps[1].connected);

    const auto first_summary = primary.stop_and_summary();
    CHECK(summary_number(first_summary, "approved") == 3);
    co_await wait_disconnected(l, 0);
    for (int stan = 4; stan <= 5; ++stan) {
      const auto r = co_await l->request(sale("TERM0001", stan, "000000001000"));
      CHECK(code(r) == "00");
    }
    eps = co_await l->per_endpoint();
    CHECK(eps[0].counters.sent == 3);
    CHECK(eps[0].counters.connect_failures == 1);  // the reconnect was refused once...
    CHECK(eps[0].counters.backoff_refusals == 1);  // ...then skipped during its backoff
    CHECK(eps[1].counters.sent == 2);
    CHECK(eps[1].counters.matched == 2);
    const auto total = co_await l->stats();
    CHECK(total.sent == 5);
    CHECK(total.matched == 5);
    l->close();
  });
  const auto second_summary = secondary.stop_and_summary();
  CHECK(summary_number(second_summary, "approved") == 2);
}

TEST_CASE("links: a link in its backoff is skipped without a connect, and tried again after it",
          "[link][links]") {
  sim backup;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto now = std::chrono::steady_clock::now();
    auto cfg = link_config_for(eftd::test::free_port());
    cfg.extra_links.push_back({"127.0.0.1", backup.port});
    cfg.reconnect_backoff_initial = 1000ms;
    cfg.reconnect_backoff_max = 1000ms;
    cfg.clock = [&now] { return now; };
    auto l = make_link(ex, cfg);
    const auto a = co_await l->request(sale("TERM0001", 1, "000000000100"));
    CHECK(code(a) == "00");
    auto eps = co_await l->per_endpoint();
    CHECK(eps[0].counters.connect_failures == 1);
    CHECK(eps[0].counters.backoff_refusals == 0);

    now += 999ms;
    const auto b = co_await l->request(sale("TERM0001", 2, "000000000100"));
    CHECK(code(b) == "00");
    eps = co_await l->per_endpoint();
    CHECK(eps[0].counters.connect_failures == 1);  // no connect attempt during the backoff
    CHECK(eps[0].counters.backoff_refusals == 1);

    now += 1ms;
    const auto c = co_await l->request(sale("TERM0001", 3, "000000000100"));
    CHECK(code(c) == "00");
    eps = co_await l->per_endpoint();
    CHECK(eps[0].counters.connect_failures == 2);  // tried again once the backoff ran out
    CHECK(eps[1].counters.sent == 3);
    CHECK(eps[1].counters.connects == 1);
    l->close();
  });
  CHECK(summary_number(backup.stop_and_summary(), "approved") == 3);
}

TEST_CASE("links: with every link down a request fails as acq.connect_failed at once, naming each link",
          "[link][links]") {
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto now = std::chrono::steady_clock::now();
    const auto p1 = eftd::test::free_port();
    const auto p2 = eftd::test::free_port();
    auto cfg = link_config_for(p1);
    cfg.extra_links.push_back({"127.0.0.1", p2});
    cfg.clock = [&now] { return now; };
    auto l = make_link(ex, cfg);
    const auto started = std::chrono::steady_clock::now();
    const auto r = co_await l->request(sale("TERM0001", 1, "000000000100"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "acq.connect_failed");
    CHECK(r.err().message.find(fmt::format("127.0.0.1:{}", p1)) != std::string::npos);
    CHECK(r.err().message.find(fmt::format("127.0.0.1:{}", p2)) != std::string::npos);
    // Both in backoff now: refused without any connect attempt.
    const auto again = co_await l->request(sale("TERM0001", 2, "000000000100"));
    CHECK(code(again) == "acq.connect_failed");
    CHECK(std::chrono::steady_clock::now() - started < 1500ms);
    const auto st = co_await l->stats();
    CHECK(st.connect_failures == 2);
    CHECK(st.backoff_refusals == 2);
    CHECK(st.sent == 0);
    l->close();
  });
}

TEST_CASE("links TLS: a sale over TLS to a TLS simulator is approved, server_name is checked",
          "[link][links][tls]") {
  certs pki("acq-links-tls");
  sim s{pki.sim_args()};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    // By IP: the certificate carries IP 127.0.0.1.
    auto l = make_link(ex, tls_config(s.port, pki));
    const auto r = co_await l->request(sale("TERM0001", 1, "000000012500"));
    CHECK(code(r) == "00");
    l->close();
    // By the name in the certificate.
    auto named_cfg = tls_config(s.port, pki);
    named_cfg.tls.server_name = "acquirer.test";
    auto named = make_link(ex, named_cfg);
    const auto r2 = co_await named->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(r2) == "00");
    named->close();
    // A name the certificate does not carry: refused, nothing sent.
    auto wrong_cfg = tls_config(s.port, pki);
    wrong_cfg.tls.server_name = "other.test";
    auto wrong = make_link(ex, wrong_cfg);
    const auto r3 = co_await wrong->request(sale("TERM0001", 3, "000000012500"));
    REQUIRE_FALSE(r3.has_value());
    CHECK(r3.err().code == "acq.connect_failed");
    CHECK(r3.err().message.find("TLS handshake") != std::string::npos);
    wrong->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "requests") == 2);
  CHECK(summary_number(summary, "approved") == 2);
}

TEST_CASE("links TLS: a host certificate from another CA is a connect failure, never plaintext",
          "[link][links][tls]") {
  certs pki("acq-links-ca1");
  certs other("acq-links-ca2");
  sim tls_sim{pki.sim_args()};
  sim plain_sim;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, tls_config(tls_sim.port, other));
    const auto r = co_await l->request(sale("TERM0001", 1, "000000012500"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "acq.connect_failed");
    CHECK(r.err().message.find("certificate verify failed") != std::string::npos);
    auto st = co_await l->stats();
    CHECK(st.connects == 0);
    CHECK(st.sent == 0);
    l->close();
    // A TLS link to a plaintext host: the handshake never completes; nothing is sent in clear.
    auto to_plain_cfg = tls_config(plain_sim.port, pki);
    to_plain_cfg.connect_timeout = 1000ms;
    auto to_plain = make_link(ex, to_plain_cfg);
    const auto r2 = co_await to_plain->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(r2) == "acq.connect_failed");
    st = co_await to_plain->stats();
    CHECK(st.sent == 0);
    to_plain->close();
  });
  CHECK(summary_number(tls_sim.stop_and_summary(), "requests") == 0);
  CHECK(summary_number(plain_sim.stop_and_summary(), "requests") == 0);
}

TEST_CASE("links TLS: a host that requires a client certificate refuses a link without one",
          "[link][links][tls]") {
  certs pki("acq-links-mtls");
  auto args = pki.sim_args();
  args.push_back("--tls-client-ca");
  args.push_back(pki.file("ca.pem"));
  sim s{args};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, tls_config(s.port, pki));
    const auto r = co_await l->request(sale("TERM0001", 1, "000000012500"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "acq.connect_failed");
    CHECK(r.err().message.find("no client certificate configured") != std::string::npos);
    const auto st = co_await l->stats();
    CHECK(st.connect_failures == 1);
    l->close();

    auto with_cert_cfg = tls_config(s.port, pki);
    with_cert_cfg.tls.cert_file = pki.file("client1.pem");
    with_cert_cfg.tls.key_file = pki.file("client1.key");
    auto with_cert = make_link(ex, with_cert_cfg);
    const auto ok = co_await with_cert->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(ok) == "00");
    with_cert->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "requests") == 1);
  CHECK(summary_number(summary, "approved") == 1);
}

TEST_CASE("links TLS: an unreadable CA file is refused when the link is created", "[link][links][tls]") {
  asio::io_context io;
  auto cfg = link_config_for(1);
  cfg.tls.ca_file = "/nonexistent/ca.pem";
  const auto l = acq::link::create(io.get_executor(), cfg);
  REQUIRE_FALSE(l.has_value());
  CHECK(l.err().code == "acq.tls_config");
  CHECK(l.err().message.find("/nonexistent/ca.pem") != std::string::npos);
}
