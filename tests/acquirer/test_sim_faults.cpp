// Fault modes, reversal repeats and end of day of the real eft-acquirer-sim, seen from
// eftd::acq::link: each fault must surface exactly as link.hpp documents.
#include "link_support.hpp"

using namespace linktest;

namespace {

acq::message refund(std::string terminal, int stan, std::string amount) {
  auto m = sale(std::move(terminal), stan, std::move(amount));
  m.set(3, "200000");
  return m;
}

// A 0500 for `terminal` with the given totals (74-77, 86-89 as text; 97 computed).
acq::message reconciliation(std::string terminal, int stan, std::string pcode, long long debits,
                            long long debit_amount, long long debit_reversals,
                            long long debit_reversal_amount, long long credits, long long credit_amount) {
  acq::message m{"0500"};
  m.set(3, std::move(pcode));
  m.set(7, "0615230000");
  m.set(11, fmt::format("{:06}", stan));
  m.set(12, "230000");
  m.set(13, "0615");
  m.set(15, "0616");
  m.set(32, "00000000001");
  m.set(41, std::move(terminal));
  m.set(42, "MERCHANT0000001");
  m.set(50, "985");
  m.set(74, fmt::format("{:010}", credits));
  m.set(75, fmt::format("{:010}", 0));
  m.set(76, fmt::format("{:010}", debits));
  m.set(77, fmt::format("{:010}", debit_reversals));
  m.set(86, fmt::format("{:016}", credit_amount));
  m.set(87, fmt::format("{:016}", 0));
  m.set(88, fmt::format("{:016}", debit_amount));
  m.set(89, fmt::format("{:016}", debit_reversal_amount));
  const long long net = debit_amount - debit_reversal_amount - credit_amount;
  m.set(97, fmt::format("{}{:016}", net > 0 ? 'D' : 'C', net < 0 ? -net : net));
  return m;
}

// A 0320 uploading `original` (already answered or decided offline with `rc`).
acq::message upload_of(const acq::message& original, int stan, std::string rc) {
  acq::message m{"0320"};
  for (int f : {3, 4, 12, 13, 22, 25, 41, 42, 49})
    if (auto v = original.get(f)) m.set(f, std::string{*v});
  m.set(7, "0615231000");
  m.set(11, fmt::format("{:06}", stan));
  m.set(32, "00000000001");
  m.set(37, "000000000000");
  m.set(39, std::move(rc));
  m.set(90, fmt::format("{}{}{}{}{}", original.mti(), original.get_or(11, ""), original.get_or(7, ""),
                        "00000000001", "00000000000"));
  return m;
}

}  // namespace

TEST_CASE("sim fault drip: a byte-by-byte answer is reassembled, slower than the timeout it times out",
          "[link][sim][fault]") {
  sim s{{"--drip-amount-suffix", "71=2", "--drip-amount-suffix", "72=10"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto patient = make_link(ex, s.port, 10'000ms);
    auto r = co_await patient->request(sale("TERM0001", 1, "000000012571"));  // ~100 bytes x 2 ms
    if (!r) FAIL(r.err().code << ": " << r.err().message);
    CHECK(r->get_or(39, "") == "00");
    CHECK(r->get_or(11, "") == "000001");
    const auto st = co_await patient->stats();
    CHECK(st.matched == 1);
    CHECK(st.decode_errors == 0);
    patient->close();

    auto hasty = make_link(ex, s.port, 200ms);  // ~100 bytes x 10 ms = 1 s > 200 ms
    const auto late = co_await hasty->request(sale("TERM0002", 1, "000000012572"));
    CHECK(code(late) == "acq.timeout");
    hasty->close();
  });
  CHECK(summary_number(s.stop_and_summary(), "faults") == 2);
}

TEST_CASE(
    "sim fault delay: a slow answer within the timeout matches, a slower one times out and is dropped late",
    "[link][sim][fault]") {
  sim s{{"--delay-amount-suffix", "77=400"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto patient = make_link(ex, s.port, 10'000ms);
    const auto slow = co_await patient->request(sale("TERM0001", 1, "000000012577"));
    CHECK(code(slow) == "00");
    patient->close();

    auto hasty = make_link(ex, s.port, 300ms);
    const auto late = co_await hasty->request(sale("TERM0002", 1, "000000012577"));
    CHECK(code(late) == "acq.timeout");
    // The sim answers one request at a time per connection: this one (sent at ~300 ms) is
    // answered right after the late one (~400 ms), which the link must drop, not hand over.
    auto next_req = sale("TERM0002", 2, "000000012500");
    const auto next = co_await hasty->request(std::move(next_req));
    CHECK(code(next) == "00");
    const auto st = co_await hasty->stats();
    CHECK(st.unmatched == 1);
    CHECK(st.matched == 1);
    CHECK(st.timeouts == 1);
    hasty->close();
  });
}

TEST_CASE("sim fault duplicate: the second copy is dropped as unmatched", "[link][sim][fault]") {
  sim s{{"--duplicate-amount-suffix", "73"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    const auto first = co_await l->request(sale("TERM0001", 1, "000000012573"));
    CHECK(code(first) == "00");
    // The sim wrote both copies before reading this request, so the copy is seen first.
    const auto next = co_await l->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(next) == "00");
    const auto st = co_await l->stats();
    CHECK(st.matched == 2);
    CHECK(st.unmatched == 1);
    CHECK(st.connects == 1);
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "approved") == 2);  // one decision, sent twice
}

TEST_CASE("sim fault wrong STAN: the answer matches nothing and the request times out",
          "[link][sim][fault]") {
  sim s{{"--wrong-stan-amount-suffix", "74"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port, 300ms);
    const auto r = co_await l->request(sale("TERM0001", 41, "000000012574"));
    CHECK(code(r) == "acq.timeout");
    const auto st = co_await l->stats();
    CHECK(st.unmatched == 1);  // arrived well within the timeout, under another key
    CHECK(st.matched == 0);
    const auto next = co_await l->request(sale("TERM0001", 42, "000000012500"));
    CHECK(code(next) == "00");
    l->close();
  });
}

TEST_CASE("sim fault reset mid-message: acq.disconnected, no decode error, the next request reconnects",
          "[link][sim][fault]") {
  sim s{{"--reset-amount-suffix", "75"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port, 10'000ms);
    const auto r = co_await l->request(sale("TERM0001", 1, "000000012575"));
    CHECK(code(r) == "acq.disconnected");
    const auto next = co_await l->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(next) == "00");
    const auto st = co_await l->stats();
    CHECK(st.connects == 2);
    CHECK(st.decode_errors == 0);
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "approved") == 2);  // the sim decided; only the answer was lost
  CHECK(summary_number(summary, "faults") == 1);
}

TEST_CASE("sim fault answer after the reversal: the late approval is dropped, the reversal stands",
          "[link][sim][fault]") {
  sim s{{"--after-reversal-amount-suffix", "76"}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port, 300ms);
    const auto original = sale("TERM0001", 7, "000000012576");
    const auto r = co_await l->request(original);
    CHECK(code(r) == "acq.timeout");
    auto rev = reversal_of(original, 8);
    auto reversed = co_await l->request(rev);
    if (!reversed) FAIL(reversed.err().code << ": " << reversed.err().message);
    CHECK(reversed->mti() == "0410");
    CHECK(reversed->get_or(39, "") == "00");
    const auto st = co_await l->stats();
    CHECK(st.unmatched == 1);  // the held 0210, sent just before the 0410
    CHECK(st.matched == 1);
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "reversed") == 1);
  CHECK(summary_number(summary, "approved_amount") == 0);
  CHECK(summary_number(summary, "debit_reversals") == 1);
  CHECK(summary_number(summary, "net_amount") == 0);
}

TEST_CASE("sim reversals: a repeat 0401/0421 is answered again without reversing twice", "[link][sim]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    const auto a = sale("TERM0001", 1, "000000001000");
    const auto b = sale("TERM0001", 2, "000000002000");
    const auto ra = co_await l->request(a);
    CHECK(code(ra) == "00");
    const auto rb = co_await l->request(b);
    CHECK(code(rb) == "00");
    auto rev = reversal_of(a, 3, "0400");
    auto rev_repeat = reversal_of(a, 3, "0401");  // same STAN and time as the 0400
    auto adv = reversal_of(b, 4, "0420");
    auto adv_repeat = reversal_of(b, 4, "0421");
    for (auto* m : {&rev, &rev_repeat, &adv, &adv_repeat}) {
      auto copy = *m;
      auto r = co_await l->request(std::move(copy));
      INFO(m->mti());
      if (!r) FAIL(r.err().code << ": " << r.err().message);
      CHECK(r->mti() == (m->mti()[2] == '0' ? "0410" : "0430"));
      CHECK(r->get_or(39, "") == "00");
    }
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "reversals") == 2);
  CHECK(summary_number(summary, "reversed") == 2);
  CHECK(summary_number(summary, "reversal_repeats") == 2);
  CHECK(summary_number(summary, "debit_reversals") == 2);
  CHECK(summary_number(summary, "debit_reversal_amount") == 3000);
  CHECK(summary_number(summary, "approved_amount") == 0);
}

TEST_CASE("sim end of day: in balance closes, out of balance -> 0320 upload -> second 0500 closes once",
          "[link][sim][settlement]") {
  sim s;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    // Batch 1: two sales, a refund, one sale reversed.
    const auto s1 = sale("TERM0001", 1, "000000001000");
    const auto s2 = sale("TERM0001", 2, "000000002500");
    for (const auto* m : {&s1, &s2}) {
      auto copy = *m;
      const auto r = co_await l->request(std::move(copy));
      CHECK(code(r) == "00");
    }
    const auto rf = co_await l->request(refund("TERM0001", 3, "000000000700"));
    CHECK(code(rf) == "00");
    auto rev = reversal_of(s2, 4);
    const auto rr = co_await l->request(std::move(rev));
    CHECK(code(rr) == "00");

    auto close1 = reconciliation("TERM0001", 5, "920000", 2, 3500, 1, 2500, 1, 700);
    auto c1 = co_await l->request(close1);
    if (!c1) FAIL(c1.err().code << ": " << c1.err().message);
    CHECK(c1->mti() == "0510");
    CHECK(c1->get_or(39, "") == "00");
    CHECK(c1->get_or(66, "") == "1");

    // Batch 2: the terminal also approved one sale offline that the sim never saw.
    const auto s6 = sale("TERM0001", 6, "000000004000");
    auto s6_copy = s6;
    const auto r6 = co_await l->request(std::move(s6_copy));
    CHECK(code(r6) == "00");
    const auto offline = sale("TERM0001", 7, "000000000300");
    auto close2 = reconciliation("TERM0001", 8, "920000", 2, 4300, 0, 0, 0, 0);
    auto c2 = co_await l->request(close2);
    CHECK(code(c2) == "95");
    if (c2) CHECK(c2->get_or(66, "") == "2");

    auto up1 = upload_of(s6, 9, "00");
    auto up2 = upload_of(offline, 10, "Y1");
    for (auto* m : {&up1, &up2}) {
      auto copy = *m;
      auto r = co_await l->request(std::move(copy));
      if (!r) FAIL(r.err().code << ": " << r.err().message);
      CHECK(r->mti() == "0330");
      CHECK(r->get_or(39, "") == "00");
    }
    auto close3 = reconciliation("TERM0001", 11, "960000", 2, 4300, 0, 0, 0, 0);
    auto c3 = co_await l->request(close3);
    CHECK(code(c3) == "00");
    if (c3) CHECK(c3->get_or(66, "") == "1");
    // The 0510 was "lost": a repeat 0501 gets the same answer and closes nothing more.
    auto repeat = close3;
    repeat.set_mti("0501");
    auto c4 = co_await l->request(std::move(repeat));
    CHECK(code(c4) == "00");
    if (c4) CHECK(c4->mti() == "0510");

    // A new, empty batch balances at zero.
    auto close5 = reconciliation("TERM0001", 12, "920000", 0, 0, 0, 0, 0, 0);
    auto c5 = co_await l->request(close5);
    CHECK(code(c5) == "00");
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "batches_closed") == 3);
  CHECK(summary_number(summary, "out_of_balance") == 1);
  CHECK(summary_number(summary, "uploads") == 2);
  CHECK(summary_number(summary, "uploads_added") == 1);
  CHECK(summary_number(summary, "debits") == 4);
  CHECK(summary_number(summary, "debit_amount") == 7800);
  CHECK(summary_number(summary, "debit_reversals") == 1);
  CHECK(summary_number(summary, "debit_reversal_amount") == 2500);
  CHECK(summary_number(summary, "credits") == 1);
  CHECK(summary_number(summary, "credit_amount") == 700);
  CHECK(summary_number(summary, "net_amount") == 7800 - 2500 - 700);
}

TEST_CASE("sim refuses bad fault options with exit status 2", "[sim]") {
  const std::vector<std::vector<std::string>> bad = {
      {"--drip-amount-suffix", "71"},      {"--drip-amount-suffix", "7x=5"},
      {"--duplicate-amount-suffix", "7a"}, {"--wrong-stan-amount-suffix", ""},
      {"--reset-amount-suffix", "x"},      {"--after-reversal-amount-suffix", "1-2"},
  };
  for (const auto& args : bad) {
    INFO(args[0] << " " << args[1]);
    std::vector<std::string> a{"--port", "0"};
    a.insert(a.end(), args.begin(), args.end());
    eftd::test::process p{eftd::test::bin_path("eft-acquirer-sim"), a, "/dev/null"};
    CHECK(p.wait_exit(10s) == std::optional<int>{2});
  }
}
