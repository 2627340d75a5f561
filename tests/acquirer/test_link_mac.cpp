// Message MACs (acq/message_mac.hpp): the rule itself, and eftd::acq::link against the real
// eft-acquirer-sim with --mak-file: signed requests approved, unsigned or wrongly signed ones
// answered 63, and an answer with a bad MAC treated as no answer (acq.timeout, acq.bad_mac).
// The MAK is the PSEC retail-MAC test key of test-vectors.md (K = 41..41, K' = 42..42).
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eftd/acq/message_mac.hpp"
#include "eftd/core/mac.hpp"
#include "link_support.hpp"

using namespace linktest;
namespace fs = std::filesystem;

namespace {

const char* const mak_hex = "41414141414141414242424242424242";
const char* const other_mak_hex = "43434343434343434444444444444444";

eftd::bytes key_of(const char* h) {
  auto b = eftd::from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

acq::mac_function mac_under(const char* h) {
  return [key = key_of(h)](eftd::byte_view data) {
    return eftd::iso9797_mac_alg3(key, data, eftd::mac_padding::method1);
  };
}

// The MAK as the sim reads it, in a file that lives as long as the test.
struct mak_file {
  explicit mak_file(const char* h) {
    path = fs::temp_directory_path() / ("eftd-mak-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".hex");
    std::ofstream(path) << h << "\n";
  }
  ~mak_file() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  fs::path path;
};

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

acq::link_config mac_link(std::uint16_t port, const char* key, std::chrono::milliseconds timeout = 5000ms) {
  auto cfg = link_config_for(port, timeout);
  cfg.mac = mac_under(key);
  return cfg;
}

}  // namespace

TEST_CASE("message MAC rule: field 64 or 128 over the packed message, 08xx untouched", "[link][mac]") {
  const auto mac = mac_under(mak_hex);
  auto req = sale("TERM0001", 1, "000000012500");
  REQUIRE(acq::add_mac(iso87(), req, mac));
  REQUIRE(req.has(64));
  CHECK(req.get(64)->size() == 8);
  // The MAC is alg 3 over the packed message up to (not including) field 64's 8 bytes.
  auto wire = acq::pack(iso87(), req);
  REQUIRE(wire);
  auto expected = eftd::iso9797_mac_alg3(key_of(mak_hex), eftd::byte_view(*wire).first(wire->size() - 8),
                                         eftd::mac_padding::method1);
  REQUIRE(expected);
  CHECK(std::equal(expected->begin(), expected->end(), wire->end() - 8, wire->end()));
  CHECK(acq::verify_mac(req, *wire, mac).has_value());

  // Any changed byte (here the amount's last digit) or another key fails.
  auto altered = *wire;
  auto at = std::search(altered.begin(), altered.end(), std::begin("12500"), std::end("12500") - 1);
  REQUIRE(at != altered.end());
  at[4] = '1';
  auto altered_msg = acq::unpack(iso87(), altered);
  REQUIRE(altered_msg);
  CHECK(acq::verify_mac(*altered_msg, altered, mac).err().code == "acq.bad_mac");
  CHECK(acq::verify_mac(req, *wire, mac_under(other_mak_hex)).err().code == "acq.bad_mac");
  auto unsigned_req = sale("TERM0001", 1, "000000012500");
  auto unsigned_wire = acq::pack(iso87(), unsigned_req);
  REQUIRE(unsigned_wire);
  CHECK(acq::verify_mac(unsigned_req, *unsigned_wire, mac).err().code == "acq.bad_mac");

  // A secondary bitmap (field 90 of a reversal) moves the MAC to field 128.
  auto rev = reversal_of(req, 2);
  REQUIRE(acq::add_mac(iso87(), rev, mac));
  CHECK_FALSE(rev.has(64));
  REQUIRE(rev.has(128));
  auto rev_wire = acq::pack(iso87(), rev);
  REQUIRE(rev_wire);
  CHECK(acq::verify_mac(rev, *rev_wire, mac).has_value());

  // Network management is never MACed (sign-on and echo work before and without keys).
  acq::message echo{"0800"};
  echo.set(70, "301");
  REQUIRE(acq::add_mac(iso87(), echo, mac));
  CHECK_FALSE(echo.has(64));
  CHECK_FALSE(echo.has(128));
}

TEST_CASE("link with a MAK: the sim approves signed requests and its signed answers are accepted",
          "[link][sim][mac]") {
  mak_file mak{mak_hex};
  sim s{{"--mak-file", mak.path.string()}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, mac_link(s.port, mak_hex));
    auto original = sale("TERM0001", 1, "000000012500");
    const auto approved = co_await l->request(original);
    CHECK(code(approved) == "00");
    if (approved) CHECK_FALSE(approved->has(64));  // callers never see the MAC
    auto rev = reversal_of(original, 2);
    const auto reversed = co_await l->request(std::move(rev));  // MAC in field 128
    CHECK(code(reversed) == "00");
    const auto st = co_await l->stats();
    CHECK(st.bad_macs == 0);
    CHECK(st.matched == 2);
    l->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "approved") == 1);
  CHECK(summary_number(summary, "reversed") == 1);
}

TEST_CASE("sim with a MAK answers 63 to a request signed with another MAK or not signed",
          "[link][sim][mac]") {
  mak_file mak{mak_hex};
  sim s{{"--mak-file", mak.path.string()}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    // No MAC on our side: the 63 comes back and is read as it is.
    auto plain = make_link(ex, s.port);
    const auto refused = co_await plain->request(sale("TERM0001", 1, "000000012500"));
    CHECK(code(refused) == "63");
    plain->close();
    // Another MAK: the sim refuses the request (63) and we refuse its answer (not our MAC).
    auto other = make_link(ex, mac_link(s.port, other_mak_hex, 500ms));
    const auto distrusted = co_await other->request(sale("TERM0002", 1, "000000012500"));
    CHECK(code(distrusted) == "acq.timeout");
    const auto st = co_await other->stats();
    CHECK(st.bad_macs == 1);
    other->close();
  });
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "approved") == 0);
  CHECK(summary_number(summary, "declined") == 2);
}

TEST_CASE("an answer with a bad MAC is not trusted: the request times out and acq.bad_mac is logged",
          "[link][sim][mac][fault]") {
  mak_file mak{mak_hex};
  sim s{{"--mak-file", mak.path.string(), "--bad-mac-amount-suffix", "61"}};
  log_capture log;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, mac_link(s.port, mak_hex, 500ms));
    const auto r = co_await l->request(sale("TERM0001", 1, "000000012561"));
    CHECK(code(r) == "acq.timeout");
    // The same link keeps working for answers with a good MAC.
    const auto next = co_await l->request(sale("TERM0001", 2, "000000012500"));
    CHECK(code(next) == "00");
    const auto st = co_await l->stats();
    CHECK(st.bad_macs == 1);
    CHECK(st.timeouts == 1);
    l->close();
  });
  CHECK(log.str().find("acq.bad_mac") != std::string::npos);
  // The sim approved it (its ledger has it): eftd's reversal path must undo it.
  CHECK(summary_number(s.stop_and_summary(), "approved") == 2);
}
