// eftd::acq::link against a scripted in-process host: out-of-order and late responses,
// keep-alives, broken responses, dropped connections, and requests refused before sending.
#include "link_support.hpp"

using namespace linktest;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// 0210 with 7, 11, 39, 41 fine, then field 55 claiming 10 bytes but carrying 2.
eftd::bytes broken_response(const acq::message& req) {
  std::string payload = "0210";
  payload += std::string("\x02\x20\x00\x00\x02\x80\x02\x00", 8);
  payload += req.get_or(7, "");
  payload += req.get_or(11, "");
  payload += "00";
  payload += req.get_or(41, "");
  payload += "010\x9F\x27";
  auto framed = default_codec().encode(eftd::as_bytes(payload));
  REQUIRE(framed.has_value());
  return *framed;
}

}  // namespace

TEST_CASE("link: responses arriving out of order reach the right requests", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port());
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto first = co_await p->read_message();
      auto second = co_await p->read_message();
      auto third = co_await p->read_message();
      co_await p->send(answer(third, "05"));
      co_await p->send(answer(first, "00"));
      co_await p->send(answer(second, "51"));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto results = co_await request_all(
          l, batch(sale("TERM0001", 1, "000000000100"), sale("TERM0001", 2, "000000000200"),
                   sale("TERM0001", 3, "000000000300")));
      std::vector<std::string> got;
      for (const auto& r : results) got.push_back(code(r));
      // Whatever order the requests went out in, each answer carries its request's STAN.
      for (std::size_t i = 0; i < results.size(); ++i) {
        REQUIRE(results[i].has_value());
        CHECK(results[i]->get_or(11, "") == fmt::format("{:06}", i + 1));
      }
      CHECK(got.size() == 3);
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.matched == 3);
    l->close();
  });
}

TEST_CASE("link: same STAN on two terminals does not cross the answers", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port());
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto a = co_await p->read_message();
      auto b = co_await p->read_message();
      // Answer in reverse order, each with a code naming its terminal.
      co_await p->send(answer(b, b.get_or(41, "") == "TERM0001" ? "01" : "02"));
      co_await p->send(answer(a, a.get_or(41, "") == "TERM0001" ? "01" : "02"));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto results = co_await request_all(
          l, batch(sale("TERM0001", 42, "000000000100"), sale("TERM0002", 42, "000000000100")));
      CHECK(code(results[0]) == "01");
      CHECK(code(results[1]) == "02");
    };
    co_await (host_side() && client_side());
    l->close();
  });
}

TEST_CASE("link: keep-alives and unsolicited messages are consumed, only a host echo test is answered once",
          "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port());
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      co_await p->send_hex("0000");  // keep-alive before any request
      auto m1 = co_await p->read_message();
      acq::message echo{"0800"};
      echo.set(7, "0615120000");
      echo.set(11, "999999");
      echo.set(70, "301");
      co_await p->send(echo);      // answered 0810
      acq::message stray{"0810"};  // a response nobody asked for: never answered
      stray.set(7, "0615120001");
      stray.set(11, "888888");
      stray.set(39, "00");
      stray.set(70, "301");
      co_await p->send(stray);
      acq::message sign_on{"0800"};  // host-initiated sign-on: not an echo, dropped
      sign_on.set(7, "0615120002");
      sign_on.set(11, "777777");
      sign_on.set(70, "001");
      co_await p->send(sign_on);
      co_await p->send_hex("00000000");  // two keep-alives in one segment
      co_await p->send(answer(m1));
      auto echoed = co_await p->read_message();
      CHECK(echoed.mti() == "0810");
      CHECK(echoed.get_or(11, "") == "999999");
      CHECK(echoed.get_or(7, "") == "0615120000");
      CHECK(echoed.get_or(70, "") == "301");
      CHECK(echoed.get_or(39, "") == "00");
      auto m2 = co_await p->read_message();  // the next frame is the next request: nothing else
      CHECK(m2.mti() == "0200");
      CHECK(m2.get_or(11, "") == "000002");
      CHECK(p->reader.keep_alives() == 0);
      co_await p->send(answer(m2));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      const auto answer1 = co_await l->request(sale("TERM0001", 1, "000000000100"));
      CHECK(code(answer1) == "00");
      const auto answer2 = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(answer2) == "00");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.keep_alives == 3);
    CHECK(st.unmatched == 2);  // the stray 0810 and the host's sign-on
    CHECK(st.echoes_answered == 1);
    CHECK(st.matched == 2);
    l->close();
  });
}

TEST_CASE("link: a late response is dropped and does not confuse the next request", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port(), 200ms);
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto m1 = co_await p->read_message();
      auto m2 = co_await p->read_message();  // only sent after m1 timed out
      co_await p->send(answer(m1, "00"));    // late
      co_await p->send(answer(m2, "51"));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto r1 = co_await l->request(sale("TERM0001", 1, "000000000100"));
      CHECK(code(r1) == "acq.timeout");
      auto r2 = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(r2) == "51");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.unmatched == 1);
    CHECK(st.timeouts == 1);
    l->close();
  });
}

TEST_CASE("link: an undecodable response fails its request with acq.decode_error at once", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    // A response timeout longer than the test's own deadline: only an immediate failure passes.
    auto l = make_link(ex, host.port(), 120'000ms);
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto m = co_await p->read_message();
      co_await p->send_raw(broken_response(m));
      auto m2 = co_await p->read_message();  // the connection itself is still fine
      co_await p->send(answer(m2));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto r = co_await l->request(sale("TERM0001", 1, "000000000100"));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.err().code == "acq.decode_error");
      CHECK(r.err().message.find("iso8583.truncated_field") != std::string::npos);
      const auto answer3 = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(answer3) == "00");
    };
    co_await (host_side() && client_side());
    const auto st = co_await l->stats();
    CHECK(st.decode_errors == 1);
    CHECK(st.connects == 1);
    l->close();
  });
}

TEST_CASE("link: a broken length header drops the connection with acq.decode_error", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port(), 120'000ms);
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      (void)co_await p->read_message();
      co_await p->send_hex("FFFF30");    // 65535 > max frame: stream out of sync
      auto p2 = co_await host.accept();  // the next request reconnects
      auto m = co_await p2->read_message();
      co_await p2->send(answer(m));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      const auto answer4 = co_await l->request(sale("TERM0001", 1, "000000000100"));
      CHECK(code(answer4) == "acq.decode_error");
      const auto answer5 = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(answer5) == "00");
    };
    co_await (host_side() && client_side());
    const auto stats11 = co_await l->stats();
    CHECK(stats11.connects == 2);
    l->close();
  });
}

TEST_CASE("link: the host closing the connection fails requests in flight and the next one reconnects",
          "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port(), 120'000ms);
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      (void)co_await p->read_message();
      (void)co_await p->read_message();
      p->sock.close();
      auto p2 = co_await host.accept();
      auto m = co_await p2->read_message();
      co_await p2->send(answer(m));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto results = co_await request_all(
          l, batch(sale("TERM0001", 1, "000000000100"), sale("TERM0001", 2, "000000000100")));
      CHECK(code(results[0]) == "acq.disconnected");
      CHECK(code(results[1]) == "acq.disconnected");
      const auto answer6 = co_await l->request(sale("TERM0001", 3, "000000000100"));
      CHECK(code(answer6) == "00");
    };
    co_await (host_side() && client_side());
    const auto stats12 = co_await l->stats();
    CHECK(stats12.connects == 2);
    l->close();
  });
}

TEST_CASE("link: close() fails requests in flight with acq.disconnected", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port(), 120'000ms);
    asio::steady_timer host_has_request{ex, asio::steady_timer::time_point::max()};
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      (void)co_await p->read_message();
      host_has_request.cancel();
      std::array<std::uint8_t, 8> buf;
      auto [ec, n] = co_await p->sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      CHECK(ec == asio::error::eof);  // the link closed the connection
      auto p2 = co_await host.accept();
      auto m = co_await p2->read_message();
      co_await p2->send(answer(m));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto closer = [&]() -> asio::awaitable<void> {
        co_await host_has_request.async_wait(asio::as_tuple(asio::use_awaitable));
        l->close();
      };
      auto waiting = [&]() -> asio::awaitable<void> {
        const auto answer7 = co_await l->request(sale("TERM0001", 1, "000000000100"));
        CHECK(code(answer7) == "acq.disconnected");
      };
      co_await (waiting() && closer());
      const auto answer8 = co_await l->request(sale("TERM0001", 2, "000000000100"));
      CHECK(code(answer8) == "00");
    };
    co_await (host_side() && client_side());
    l->close();
  });
}

TEST_CASE("link: a second request with the same key while the first is in flight is refused", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    fake_host host{ex};
    auto l = make_link(ex, host.port());
    auto host_side = [&]() -> asio::awaitable<void> {
      auto p = co_await host.accept();
      auto m = co_await p->read_message();
      co_await p->send(answer(m));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto results = co_await request_all(
          l, batch(sale("TERM0001", 5, "000000000100"), sale("TERM0001", 5, "000000000200")));
      CHECK(code(results[0]) == "00");
      CHECK(code(results[1]) == "acq.duplicate_request");
    };
    co_await (host_side() && client_side());
    const auto stats13 = co_await l->stats();
    CHECK(stats13.sent == 1);
    l->close();
  });
}

TEST_CASE("link: requests that cannot be matched or encoded are refused before connecting", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, 1);  // nothing listens on port 1: any connect attempt would fail
    auto no_terminal = sale("TERM0001", 1, "000000000100");
    no_terminal.erase(41);
    auto r = co_await l->request(no_terminal);
    CHECK(code(r) == "acq.bad_request");
    CHECK(r.err().message.find("field 41") != std::string::npos);

    auto response_mti = sale("TERM0001", 1, "000000000100");
    response_mti.set_mti("0210");
    const auto answer9 = co_await l->request(response_mti);
    CHECK(code(answer9) == "acq.bad_request");

    auto bad_amount = sale("TERM0001", 1, "125.00");
    r = co_await l->request(bad_amount);
    CHECK(code(r) == "acq.encode_error");
    CHECK(r.err().message == "iso8583.bad_content: field 4: value is not numeric (n)");

    auto long_pan = sale("TERM0001", 1, "000000000100", "47617390010101191234");
    r = co_await l->request(long_pan);
    CHECK(code(r) == "acq.encode_error");
    CHECK(r.err().message.find("4761") == std::string::npos);

    const auto stats14 = co_await l->stats();
    CHECK(stats14.connects == 0);
    l->close();
  });
}

TEST_CASE("link: without a backoff, connection refused is retried on the next request", "[link]") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    std::uint16_t port = 0;
    {
      tcp::acceptor probe{ex, tcp::endpoint{asio::ip::address_v4::loopback(), 0}};
      port = probe.local_endpoint().port();
    }  // closed again: connecting to it is refused
    auto cfg = link_config_for(port);
    cfg.reconnect_backoff_initial = 0ms;
    auto l = make_link(ex, cfg);
    auto r = co_await l->request(sale("TERM0001", 1, "000000000100"));
    CHECK(code(r) == "acq.connect_failed");

    // Concurrent requests share one connect attempt and its outcome.
    auto results = co_await request_all(
        l, batch(sale("TERM0001", 2, "000000000100"), sale("TERM0001", 3, "000000000100")));
    CHECK(code(results[0]) == "acq.connect_failed");
    CHECK(code(results[1]) == "acq.connect_failed");

    // Once something listens there, the next request connects.
    tcp::acceptor acceptor{ex};
    boost::system::error_code ec;
    const tcp::endpoint ep{asio::ip::address_v4::loopback(), port};
    acceptor.open(ep.protocol(), ec);
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor.bind(ep, ec);
    if (ec) co_return;  // another process took the port meanwhile: nothing more to check
    acceptor.listen();
    auto host_side = [&]() -> asio::awaitable<void> {
      peer p{co_await acceptor.async_accept(asio::use_awaitable)};
      auto m = co_await p.read_message();
      co_await p.send(answer(m));
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      const auto answer10 = co_await l->request(sale("TERM0001", 4, "000000000100"));
      CHECK(code(answer10) == "00");
    };
    co_await (host_side() && client_side());
    l->close();
  });
}

TEST_CASE("link::create rejects an unknown dialect and unsupported framing", "[link]") {
  asio::io_context io;
  acq::link_config cfg;
  cfg.name = "x";
  cfg.dialect = "iso93-binary";
  auto l = acq::link::create(io.get_executor(), cfg);
  REQUIRE_FALSE(l.has_value());
  CHECK(l.err().code == "acq.unknown_dialect");
  cfg.dialect = "iso87-ascii";
  cfg.framing.header = acq::length_header::binary2_tpdu;
  l = acq::link::create(io.get_executor(), cfg);
  REQUIRE_FALSE(l.has_value());
  CHECK(l.err().code == "frame.unsupported_header");
}
