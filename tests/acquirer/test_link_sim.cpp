// eftd::acq::link against the real eft-acquirer-sim process on a free port.
#include "link_support.hpp"

using namespace linktest;

TEST_CASE("link + sim: an approved sale comes back matched, without card data", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    auto r = co_await l->request(sale("TERM0001", 1, "000000012500"));
    if (!r) FAIL(r.err().code << ": " << r.err().message);
    CHECK(r->mti() == "0210");
    CHECK(r->get_or(39, "") == "00");
    CHECK(r->get_or(38, "").size() == 6);
    CHECK(r->get_or(37, "").size() == 12);
    CHECK(r->get_or(11, "") == "000001");
    CHECK(r->get_or(41, "") == "TERM0001");
    CHECK(r->get_or(4, "") == "000000012500");
    for (int f : {2, 14, 35, 52, 55}) CHECK_FALSE(r->has(f));
    const auto st = co_await l->stats();
    CHECK(st.connects == 1);
    CHECK(st.sent == 1);
    CHECK(st.matched == 1);
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary.find("\"approved\":1") != std::string::npos);
  CHECK(summary.find("\"approved_amount\":12500") != std::string::npos);
}

TEST_CASE("link + sim: each decline rule gives its response code", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    struct vec {
      const char* amount;
      const char* pan;
      const char* code;
    };
    const vec vectors[] = {
        {"000000012551", "4761739001010119", "51"},  // insufficient funds
        {"000001000001", "4761739001010119", "61"},  // over the amount limit
        {"000000012500", "4761739001010002", "05"},  // do not honour
        {"000000012500", "4761739001010004", "54"},  // expired card
        {"000000012500", "4761739001010119", "00"},
    };
    int stan = 10;
    for (const auto& v : vectors) {
      INFO("amount " << v.amount << ", expected " << v.code);
      auto r = co_await l->request(sale("TERM0001", ++stan, v.amount, v.pan));
      CHECK(code(r) == v.code);
      if (r) CHECK(r->has(38) == (std::string(v.code) == "00"));
    }
    l->close();
  });
}

TEST_CASE("link + sim: rules from the command line replace the defaults", "[link][sim]") {
  sim s{{"--decline-amount-suffix", "13=N1", "--amount-limit", "500", "--decline-pan-suffix", "0119=14"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    const auto answer1 = co_await l->request(sale("TERM0001", 1, "000000000113", "4761739001010120"));
    CHECK(code(answer1) == "N1");
    const auto answer2 = co_await l->request(sale("TERM0001", 2, "000000000501", "4761739001010120"));
    CHECK(code(answer2) == "61");
    const auto answer3 = co_await l->request(sale("TERM0001", 3, "000000000100", "4761739001010119"));
    CHECK(code(answer3) == "14");
    const auto answer4 = co_await l->request(sale("TERM0001", 4, "000000000151", "4761739001010002"));
    CHECK(code(answer4) == "00");
    l->close();
  });
}

TEST_CASE("link + sim: a never-answered amount times out, and the link carries on", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port, 300ms);
    auto r = co_await l->request(sale("TERM0001", 1, "000000012599"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.err().code == "acq.timeout");
    auto r2 = co_await l->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(r2) == "00");
    const auto st = co_await l->stats();
    CHECK(st.timeouts == 1);
    CHECK(st.connects == 1);
    l->close();
  });
}

TEST_CASE("link + sim: concurrent requests on one connection are matched by 41+11+7", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    std::vector<acq::message> reqs;
    std::vector<std::string> expected;
    for (int i = 0; i < 24; ++i) {
      // Two terminals share every STAN: matching on STAN alone would cross the answers.
      const bool decline = i % 3 == 0;
      reqs.push_back(
          sale(i % 2 ? "TERM0002" : "TERM0001", 100 + i / 2, decline ? "000000012551" : "000000012500"));
      expected.push_back(decline ? "51" : "00");
    }
    auto results = co_await request_all(l, reqs);
    REQUIRE(results.size() == reqs.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      INFO("request " << i);
      REQUIRE(results[i].has_value());
      CHECK(results[i]->get(11) == reqs[i].get(11));
      CHECK(results[i]->get(41) == reqs[i].get(41));
      CHECK(code(results[i]) == expected[i]);
    }
    const auto st = co_await l->stats();
    CHECK(st.connects == 1);
    CHECK(st.matched == reqs.size());
    CHECK(st.unmatched == 0);
    l->close();
  });
}

TEST_CASE("link + sim: many connections at once", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    std::vector<std::shared_ptr<acq::link>> links;
    for (int i = 0; i < 6; ++i) links.push_back(make_link(ex, s.port));
    // Each link's batch runs concurrently with the others': spawn them all, then collect.
    std::vector<std::optional<std::vector<eftd::result<acq::message>>>> batches(links.size());
    std::size_t left = links.size();
    asio::steady_timer done{ex, asio::steady_timer::time_point::max()};
    for (std::size_t i = 0; i < links.size(); ++i) {
      std::vector<acq::message> reqs;
      for (int k = 0; k < 5; ++k) reqs.push_back(sale(fmt::format("TERM{:04}", i), k + 1, "000000001000"));
      asio::co_spawn(
          ex,
          [&, i, reqs = std::move(reqs)]() mutable -> asio::awaitable<void> {
            batches[i].emplace(co_await request_all(links[i], std::move(reqs)));
          },
          [&](std::exception_ptr) {
            if (--left == 0) done.cancel();
          });
    }
    co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
    for (auto& b : batches) {
      REQUIRE(b.has_value());
      for (auto& r : *b) CHECK(code(r) == "00");
    }
    for (auto& l : links) l->close();
  });
  CHECK(s.stop_and_summary().find("\"approved\":30") != std::string::npos);
}

TEST_CASE("link + sim: the link reconnects after the sim drops the connection", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    const auto answer5 = co_await l->request(sale("TERM0001", 1, "000000012500"));
    CHECK(code(answer5) == "00");
    auto dropped = co_await l->request(sale("TERM0001", 2, "000000012598"));  // sim closes
    REQUIRE_FALSE(dropped.has_value());
    CHECK(dropped.err().code == "acq.disconnected");
    const auto answer6 = co_await l->request(sale("TERM0001", 3, "000000012500"));
    CHECK(code(answer6) == "00");
    const auto st = co_await l->stats();
    CHECK(st.connects == 2);
    l->close();
  });
}

TEST_CASE("link + sim: garbage bytes do not kill the sim", "[link][sim][security]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    const tcp::endpoint ep{asio::ip::address_v4::loopback(), s.port};
    // 1. A well-framed message that is not ISO 8583: logged, not answered, connection kept.
    peer junk{tcp::socket{ex}};
    co_await junk.sock.async_connect(ep, asio::use_awaitable);
    co_await junk.send_hex(
        "0007"
        "47415242414745");  // "GARBAGE"
    co_await junk.send_hex(
        "0005"
        "30323030"
        "FF");                                                // "0200" + a bitmap cut short
    co_await junk.send(sale("TERM0009", 1, "000000000100"));  // still in sync: answered
    auto answered = co_await junk.read_message();
    CHECK(answered.mti() == "0210");
    CHECK(answered.get_or(11, "") == "000001");

    // 2. A length header over the maximum: the stream cannot resync, the sim closes it.
    peer broken{tcp::socket{ex}};
    co_await broken.sock.async_connect(ep, asio::use_awaitable);
    co_await broken.send_hex("FFFF3032");
    std::array<std::uint8_t, 16> buf;
    auto [ec, n] =
        co_await broken.sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    CHECK(ec);  // EOF or reset: closed by the sim
    CHECK(n == 0);

    // 3. The sim still serves a normal client.
    auto l = make_link(ex, s.port);
    const auto answer7 = co_await l->request(sale("TERM0001", 1, "000000012500"));
    CHECK(code(answer7) == "00");
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary.find("\"malformed\":3") != std::string::npos);
  CHECK(summary.find("\"approved\":2") != std::string::npos);
}

TEST_CASE("link + sim: a timed-out sale is reversed with 0400 and the summary shows it", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port, 300ms);
    auto lost = co_await l->request(sale("TERM0001", 7, "000000012599"));
    REQUIRE_FALSE(lost.has_value());
    CHECK(lost.err().code == "acq.timeout");

    acq::message rev{"0400"};
    rev.set(3, "000000");
    rev.set(4, "000000012599");
    rev.set(7, "0615123510");
    rev.set(11, "000008");
    rev.set(41, "TERM0001");
    rev.set(42, "MERCHANT0000001");
    rev.set(49, "985");
    rev.set(90,
            "0200"
            "000007"
            "0615123456"
            "00000000001"
            "00000000000");
    auto r = co_await l->request(rev);
    if (!r) FAIL(r.err().code << ": " << r.err().message);
    CHECK(r->mti() == "0410");
    CHECK(r->get_or(39, "") == "00");
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary.find("\"unanswered\":1") != std::string::npos);
  CHECK(summary.find("\"reversed\":1") != std::string::npos);
  CHECK(summary.find("\"approved_amount\":0") != std::string::npos);
}

TEST_CASE("link + sim: 0800 echo test", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    acq::message echo{"0800"};
    echo.set(7, "0615120000");
    echo.set(11, "000001");
    echo.set(70, "301");
    auto r = co_await l->request(echo);
    if (!r) FAIL(r.err().code << ": " << r.err().message);
    CHECK(r->mti() == "0810");
    CHECK(r->get_or(39, "") == "00");
    CHECK(r->get_or(70, "") == "301");
    l->close();
  });
}

TEST_CASE("sim refuses bad command lines with exit status 2", "[sim]") {
  const std::vector<std::vector<std::string>> bad = {
      {"--decline-amount-suffix", "5x=51"}, {"--decline-pan-suffix", "0002"},
      {"--no-reply-amount-suffix", "9a"},   {"--dialect", "iso93-binary"},
      {"--framing", "binary2_tpdu"},        {"--address", "not-an-address"},
  };
  for (const auto& args : bad) {
    INFO(args[0] << " " << args[1]);
    std::vector<std::string> a{"--port", "0"};
    a.insert(a.end(), args.begin(), args.end());
    eftd::test::process p{eftd::test::bin_path("eft-acquirer-sim"), a, "/dev/null"};
    CHECK(p.wait_exit(10s) == std::optional<int>{2});
  }
}
