// eftd::acq::link network management against a scripted in-process host: sign-on after each
// connect, idle echo tests, answering the host's echo tests, reconnect backoff on a pinned
// clock, and the runtime message trace (card data masked).
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "free_port.hpp"
#include "link_support.hpp"

using namespace linktest;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// The host's answer to a link's 0800: 7, 11, 70 echoed.
acq::message network_answer(const acq::message& req, std::string rc = "00") {
  acq::message r{"0810"};
  for (int f : {7, 11, 70})
    if (auto v = req.get(f)) r.set(f, std::string{*v});
  r.set(39, std::move(rc));
  return r;
}

// Captures what the default logger writes while it lives.
struct log_capture {
  log_capture() : sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(text)) {
    old_level = spdlog::default_logger()->level();
    spdlog::default_logger()->sinks().push_back(sink);
    spdlog::default_logger()->set_level(spdlog::level::info);
  }
  ~log_capture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
    spdlog::default_logger()->set_level(old_level);
  }
  std::string str() const { return text.str(); }
  std::ostringstream text;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink;
  spdlog::level::level_enum old_level;
};

}  // namespace

TEST_CASE("link: with sign_on, each connection sends 0800/001 before its first request", "[link][netmgmt]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto cfg = link_config_for(host.port());
    cfg.sign_on = true;
    auto l = make_link(ex, cfg);
    asio::steady_timer closed{ex, asio::steady_timer::time_point::max()};  // an event, not a delay
    auto host_side = [&]() -> asio::awaitable<void> {
      for (int conn = 0; conn < 2; ++conn) {
        auto p = co_await host.accept();
        auto first = co_await p->read_message();
        CHECK(first.mti() == "0800");
        CHECK(first.get_or(70, "") == "001");
        CHECK(first.get_or(11, "").size() == 6);
        CHECK(first.get_or(7, "").size() == 10);
        co_await p->send(network_answer(first));
        auto sale_req = co_await p->read_message();
        CHECK(sale_req.mti() == "0200");
        co_await p->send(answer(sale_req));
        if (conn == 0) {
          std::array<std::uint8_t, 8> buf;
          auto [ec, n] =
              co_await p->sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
          CHECK(ec == asio::error::eof);
          closed.cancel();
        }
      }
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      const auto first = co_await l->request(sale("TERM0001", 1, "000000000100"));
      CHECK(code(first) == "00");
      l->close();  // the next request must reconnect and sign on again
      co_await closed.async_wait(asio::as_tuple(asio::use_awaitable));
      const auto second = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(second) == "00");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.sign_ons == 2);
    CHECK(st.connects == 2);
    l->close();
  });
}

TEST_CASE("link: requests queued during the sign-on go out only after it is answered", "[link][netmgmt]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto cfg = link_config_for(host.port());
    cfg.sign_on = true;
    auto l = make_link(ex, cfg);
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto first = co_await p->read_message();
      REQUIRE(first.mti() == "0800");
      co_await p->send(network_answer(first));
      for (int i = 0; i < 3; ++i) {
        auto m = co_await p->read_message();
        CHECK(m.mti() == "0200");
        co_await p->send(answer(m));
      }
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto results = co_await request_all(
          l, batch(sale("TERM0001", 1, "000000000100"), sale("TERM0001", 2, "000000000100"),
                   sale("TERM0001", 3, "000000000100")));
      for (const auto& r : results) CHECK(code(r) == "00");
    };
    co_await (host_side() && client_side());
    l->close();
  });
}

TEST_CASE("link: a refused sign-on fails the request unsent and starts the backoff", "[link][netmgmt]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto now = std::chrono::steady_clock::now();
    auto cfg = link_config_for(host.port());
    cfg.sign_on = true;
    cfg.reconnect_backoff_initial = 1000ms;
    cfg.clock = [&now] { return now; };
    auto l = make_link(ex, cfg);
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto first = co_await p->read_message();
      co_await p->send(network_answer(first, "91"));
      std::array<std::uint8_t, 8> buf;
      auto [ec, n] = co_await p->sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      CHECK(ec == asio::error::eof);  // the link hung up without sending the sale
      auto p2 = co_await host.accept();
      auto again = co_await p2->read_message();
      CHECK(again.get_or(70, "") == "001");
      co_await p2->send(network_answer(again));
      auto m = co_await p2->read_message();
      CHECK(m.mti() == "0200");
      co_await p2->send(answer(m));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto r = co_await l->request(sale("TERM0001", 1, "000000000100"));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.err().code == "acq.connect_failed");
      CHECK(r.err().message.find("sign-on refused with response code 91") != std::string::npos);
      const auto fast = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(fast) == "acq.connect_failed");
      now += 1000ms;
      const auto ok = co_await l->request(sale("TERM0001", 3, "000000000100"));
      CHECK(code(ok) == "00");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.sign_ons == 1);
    CHECK(st.connect_failures == 1);
    CHECK(st.backoff_refusals == 1);
    l->close();
  });
}

TEST_CASE("link: failed connects back off exponentially up to the cap, requests meanwhile fail fast",
          "[link][netmgmt]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    const auto port = eftd::test::free_port();
    auto now = std::chrono::steady_clock::now();
    auto cfg = link_config_for(port);
    cfg.reconnect_backoff_initial = 100ms;
    cfg.reconnect_backoff_max = 300ms;
    cfg.clock = [&now] { return now; };
    auto l = make_link(ex, cfg);
    int stan = 0;
    auto attempt = [&]() -> asio::awaitable<eftd::result<acq::message>> {
      auto req = sale("TERM0001", ++stan, "000000000100");
      auto r = co_await l->request(std::move(req));
      co_return r;
    };
    // Each step: how long after the previous real attempt, and whether it is a real attempt.
    struct step {
      std::chrono::milliseconds advance;
      bool attempts;
      const char* message_part;
    };
    const step steps[] = {
        {0ms, true, "failed"},                            // backoff now 100
        {99ms, false, "next connect attempt in 1 ms"},    //
        {1ms, true, "failed"},                            // backoff now 200
        {150ms, false, "next connect attempt in 50 ms"},  //
        {50ms, true, "failed"},                           // backoff now 300 (capped 400)
        {299ms, false, "next connect attempt in 1 ms"},   //
        {1ms, true, "failed"},                            // stays 300
        {250ms, false, "next connect attempt in 50 ms"},  //
    };
    std::uint64_t real_attempts = 0, refusals = 0;
    for (const auto& st : steps) {
      now += st.advance;
      auto r = co_await attempt();
      INFO("step after " << st.advance.count() << " ms");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.err().code == "acq.connect_failed");
      CHECK(r.err().message.find(st.message_part) != std::string::npos);
      (st.attempts ? real_attempts : refusals)++;
      const auto stats = co_await l->stats();
      CHECK(stats.connect_failures == real_attempts);
      CHECK(stats.backoff_refusals == refusals);
    }
    l->close();
  });
}

TEST_CASE("link: an idle connection sends echo tests, an unanswered one drops the connection",
          "[link][netmgmt]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto cfg = link_config_for(host.port(), 300ms);
    cfg.echo_interval = 50ms;
    auto l = make_link(ex, cfg);
    asio::steady_timer dropped{ex, asio::steady_timer::time_point::max()};  // an event, not a delay
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto m = co_await p->read_message();
      co_await p->send(answer(m));
      // Then silence from the link's users: echo tests arrive; answer two, ignore the third.
      for (int i = 0; i < 2; ++i) {
        auto echo = co_await p->read_message();
        CHECK(echo.mti() == "0800");
        CHECK(echo.get_or(70, "") == "301");
        co_await p->send(network_answer(echo));
      }
      auto unanswered = co_await p->read_message();
      CHECK(unanswered.get_or(70, "") == "301");
      std::array<std::uint8_t, 8> buf;
      auto [ec, n] = co_await p->sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      CHECK(ec == asio::error::eof);  // the link gave up on the connection
      dropped.cancel();
      auto p2 = co_await host.accept();
      auto m2 = co_await p2->read_message();
      CHECK(m2.mti() == "0200");
      co_await p2->send(answer(m2));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      const auto first = co_await l->request(sale("TERM0001", 1, "000000000100"));
      CHECK(code(first) == "00");
      co_await dropped.async_wait(asio::as_tuple(asio::use_awaitable));
      const auto second = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(second) == "00");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.echoes_sent >= 3);
    CHECK(st.connects == 2);
    l->close();
  });
}

TEST_CASE("link: host echo tests and requests share the writer without interleaving", "[link][netmgmt]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port());
    constexpr int n = 20;
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      int requests = 0, echo_answers = 0;
      std::vector<acq::message> to_answer;
      for (int i = 0; i < n; ++i) {
        acq::message echo{"0800"};
        echo.set(7, "0615120000");
        echo.set(11, fmt::format("{:06}", 500000 + i));
        echo.set(70, "301");
        co_await p->send(echo);
      }
      // Every frame read decodes whole: an interleaved write would break the framing.
      while (requests < n || echo_answers < n) {
        auto m = co_await p->read_message();
        if (m.mti() == "0810") {
          ++echo_answers;
        } else {
          CHECK(m.mti() == "0200");
          ++requests;
          co_await p->send(answer(m));
        }
      }
      CHECK(requests == n);
      CHECK(echo_answers == n);
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      std::vector<acq::message> reqs;
      for (int i = 0; i < n; ++i) reqs.push_back(sale("TERM0001", i + 1, "000000000100"));
      auto results = co_await request_all(l, std::move(reqs));
      for (const auto& r : results) CHECK(code(r) == "00");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.echoes_answered == n);
    l->close();
  });
}

TEST_CASE("link: the message trace is switched at run time and masks card data",
          "[link][netmgmt][security]") {
  log_capture logs;
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port());
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      for (int i = 0; i < 2; ++i) {
        auto m = co_await p->read_message();
        co_await p->send(answer(m));
      }
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      CHECK_FALSE(l->trace());
      l->set_trace(true);
      const auto traced = co_await l->request(sale("TERM0001", 1, "000000000100"));
      CHECK(code(traced) == "00");
      l->set_trace(false);
      const auto quiet = co_await l->request(sale("TERM0001", 2, "000000000200"));
      CHECK(code(quiet) == "00");
    };
    co_await (host_side() && client_side());
    l->close();
  });
  const auto text = logs.str();
  CHECK(text.find("trace -> 0200") != std::string::npos);
  CHECK(text.find("trace <- 0210") != std::string::npos);
  CHECK(text.find("11=000001") != std::string::npos);
  CHECK(text.find("11=000002") == std::string::npos);  // traced off by then
  // No PAN, track or expiry in the clear (the test PAN and its last digits).
  CHECK(text.find("4761739001010119") == std::string::npos);
  CHECK(text.find("25122011143800000") == std::string::npos);
  CHECK(text.find("<card data") != std::string::npos);
}
