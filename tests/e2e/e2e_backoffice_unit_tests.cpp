// Back-office building blocks without processes: scrypt against RFC 7914, password records,
// CSRF tokens, sessions with an injected clock, cookie and form parsing, HTML escaping, the
// lockout counter in a real (migrated) journal, and the pages' escaping and SVG charts.
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <regex>

#include "backoffice_auth.hpp"
#include "backoffice_pages.hpp"
#include "eftd/core/config.hpp"
#include "eftd/journal/writer.hpp"
#include "process.hpp"

using namespace eftd::server::backoffice;

namespace {

std::string hex(const eftd::bytes& b) {
  std::string s = eftd::to_hex(b);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Cheap parameters for tests that hash many times; the default cost is tested once.
const kdf_params fast{1024, 8, 1};

}  // namespace

TEST_CASE("scrypt matches the RFC 7914 section 12 vectors", "[security][reports]") {
  // Public test vectors, fine to print.
  auto a = scrypt("", {}, kdf_params{16, 1, 1}, 64);
  REQUIRE(a);
  CHECK(hex(*a) ==
        "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
        "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
  const std::string salt = "NaCl";
  auto b = scrypt("password", eftd::as_bytes(salt), kdf_params{1024, 8, 16}, 64);
  REQUIRE(b);
  CHECK(hex(*b) ==
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
  // N must be a power of two > 1: refused, not guessed.
  CHECK_FALSE(scrypt("x", {}, kdf_params{1000, 8, 1}, 32));
}

TEST_CASE("a password record verifies its password only", "[security][reports]") {
  auto rec = hash_password("correct horse battery", kdf_params{});
  REQUIRE(rec);
  CHECK(rec->kdf == "scrypt:N=32768,r=8,p=1");
  CHECK(rec->salt_hex.size() == 32);
  CHECK(rec->hash_hex.size() == 64);
  CHECK(verify_password("correct horse battery", *rec));
  CHECK_FALSE(verify_password("correct horse batterY", *rec));
  CHECK_FALSE(verify_password("", *rec));
  // The same password gets a different salt and hash each time.
  auto again = hash_password("correct horse battery", fast);
  REQUIRE(again);
  CHECK(again->salt_hex != rec->salt_hex);
  // A damaged record never verifies.
  auto broken = *again;
  broken.kdf = "scrypt:N=0,r=8,p=1";
  CHECK_FALSE(verify_password("correct horse battery", broken));
  CHECK(parse_kdf_name("scrypt:N=1024,r=8,p=1") == kdf_params{1024, 8, 1});
  CHECK_FALSE(parse_kdf_name("pbkdf2:N=1024,r=8,p=1"));
  CHECK_FALSE(parse_kdf_name("scrypt:N=1024,r=8"));
}

TEST_CASE("constant-time compare and random tokens", "[security][reports]") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  const auto t1 = random_token(32), t2 = random_token(32);
  CHECK(t1.size() == 64);
  CHECK(t1 != t2);
  CHECK(std::regex_match(t1, std::regex("[0-9a-f]{64}")));
}

TEST_CASE("sessions: CSRF token check, idle timeout, removal", "[security][reports]") {
  std::int64_t now = 1'000'000;
  session_store store(15 * 60 * 1000, [&] { return now; });
  auto s = store.create("alice", role::supervisor);
  CHECK(s.id.size() == 64);
  CHECK(s.csrf.size() == 64);
  CHECK(s.id != s.csrf);
  CHECK(session_store::csrf_ok(s, s.csrf));
  CHECK_FALSE(session_store::csrf_ok(s, ""));
  CHECK_FALSE(session_store::csrf_ok(s, s.id));
  CHECK_FALSE(session_store::csrf_ok(session{}, ""));  // a session without a token accepts nothing

  now += 14 * 60 * 1000;  // used within 15 minutes: still there, and the clock restarts
  REQUIRE(store.touch(s.id));
  now += 15 * 60 * 1000;
  REQUIRE(store.touch(s.id));
  now += 15 * 60 * 1000 + 1;  // idle one millisecond too long
  CHECK_FALSE(store.touch(s.id));
  CHECK(store.size() == 0);

  auto t = store.create("bob", role::viewer);
  store.remove(t.id);
  CHECK_FALSE(store.touch(t.id));
  CHECK_FALSE(store.touch("unknown"));
}

TEST_CASE("the session store stays bounded under a flood of login forms", "[security][reports]") {
  std::int64_t now = 0;
  session_store store(
      60000, [&] { return now; }, 8);
  for (int i = 0; i < 100; ++i) {
    ++now;
    (void)store.create("", role::viewer);
  }
  CHECK(store.size() == 8);
}

TEST_CASE("cookie header parsing", "[security][reports]") {
  auto c = parse_cookies("a=1; __Host-eftd=abc ;b=\"quoted\"; =novalue; junk; a=2");
  CHECK(c.size() == 3);
  CHECK(c["a"] == "1");
  CHECK(c["__Host-eftd"] == "abc");
  CHECK(c["b"] == "quoted");
  CHECK(parse_cookies("").empty());
  CHECK(parse_cookies(";;;").empty());
}

TEST_CASE("HTML escaping of text and attribute values", "[security][reports]") {
  CHECK(html_escape("<script>alert('x')</script>") == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
  CHECK(html_escape("a & \"b\"") == "a &amp; &quot;b&quot;");
  CHECK(html_escape("plain") == "plain");
}

TEST_CASE("form and query parsing, amounts", "[reports]") {
  auto p = parse_form("till=T01&order=A%20B&x=1+2&bad=%zz&till=T02&empty=");
  CHECK(p["till"] == "T01");
  CHECK(p["order"] == "A B");
  CHECK(p["x"] == "1 2");
  CHECK(p["bad"] == "%zz");
  CHECK(p["empty"].empty());
  CHECK(url_encode("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9");
  CHECK(query_with({{"till", "T01"}, {"page", "2"}}, "page", "3") == "page=3&till=T01");
  CHECK(query_with({{"till", "T01"}, {"page", "2"}}, "page", "") == "till=T01");
  CHECK(parse_major("12.50") == 1250);
  CHECK(parse_major("12.5") == 1250);
  CHECK(parse_major("7") == 700);
  CHECK_FALSE(parse_major("12.505"));
  CHECK_FALSE(parse_major("-1"));
  CHECK_FALSE(parse_major("1e3"));
  CHECK(format_minor(1234) == "12.34");
  CHECK(format_minor(-5) == "-0.05");
  CHECK(format_time(0) == "1970-01-01 00:00:00");
}

TEST_CASE("roles and names", "[security][reports]") {
  CHECK(role_allows(role::admin, role::supervisor));
  CHECK(role_allows(role::supervisor, role::viewer));
  CHECK_FALSE(role_allows(role::viewer, role::supervisor));
  CHECK_FALSE(role_allows(role::supervisor, role::admin));
  CHECK(parse_role("admin") == role::admin);
  CHECK_FALSE(parse_role("root"));
  CHECK(valid_user_name("anna.k@shop-1"));
  CHECK_FALSE(valid_user_name(""));
  CHECK_FALSE(valid_user_name("a b"));
  CHECK_FALSE(valid_user_name("<x>"));
  CHECK_FALSE(acceptable_password("short"));
  CHECK(acceptable_password("long enough pw"));
}

TEST_CASE("users table: add, lockout after 10 failures, unlock, password change", "[security][reports]") {
  const auto dir = eftd::test::make_temp_dir("bo-users");
  const auto db = std::filesystem::path(dir) / "eftd.db";
  {
    // The writer creates and migrates the journal (users is migration 7).
    auto w = eftd::journal::writer::open(db, 16);
    REQUIRE(w);
    (*w)->close();
  }
  auto store = user_store::open(db, fast);
  REQUIRE(store);
  auto& u = **store;
  REQUIRE(u.add("alice", role::admin, "alice password 1", 1000));
  auto dup = u.add("alice", role::viewer, "another password", 1001);
  REQUIRE_FALSE(dup);
  CHECK(dup.err().code == "users.exists");
  CHECK(u.add("bad name", role::viewer, "long enough pw", 1).err().code == "users.bad_name");
  CHECK(u.add("bob", role::viewer, "short", 1).err().code == "users.weak_password");

  auto ok = u.login("alice", "alice password 1", 10, 2000);
  REQUIRE(ok);
  CHECK(ok->outcome == login_outcome::ok);
  CHECK(ok->user->user_role == role::admin);
  CHECK(u.login("nobody", "whatever pw", 10, 2000)->outcome == login_outcome::unknown_user);

  for (int i = 1; i <= 9; ++i) {
    auto r = u.login("alice", "wrong password", 10, 3000 + i);
    REQUIRE(r);
    CHECK(r->outcome == login_outcome::bad_password);
    CHECK_FALSE(r->locked_now);
  }
  auto tenth = u.login("alice", "wrong password", 10, 4000);
  REQUIRE(tenth);
  CHECK(tenth->locked_now);
  // Locked: even the right password is refused.
  CHECK(u.login("alice", "alice password 1", 10, 4001)->outcome == login_outcome::locked);
  auto list = u.list();
  REQUIRE(list);
  REQUIRE(list->size() == 1);
  CHECK(list->front().locked);
  CHECK(list->front().failed_attempts == 10);

  REQUIRE(u.unlock("alice", 5000));
  CHECK(u.login("alice", "alice password 1", 10, 5001)->outcome == login_outcome::ok);
  // A good login resets the counter.
  (void)u.login("alice", "wrong password", 10, 5002);
  (void)u.login("alice", "alice password 1", 10, 5003);
  CHECK(u.list()->front().failed_attempts == 0);

  REQUIRE(u.set_password("alice", "a new password", 6000));
  CHECK(u.login("alice", "alice password 1", 10, 6001)->outcome == login_outcome::bad_password);
  CHECK(u.login("alice", "a new password", 10, 6002)->outcome == login_outcome::ok);
  CHECK(u.unlock("nobody", 1).err().code == "users.not_found");
  REQUIRE(u.set_role("alice", role::viewer, 7000));
  CHECK(u.list()->front().user_role == role::viewer);
  std::filesystem::remove_all(dir);
}

TEST_CASE("pages escape journal values and draw SVG charts", "[security][reports]") {
  session s{"id", "ann<b>", role::admin, "tok\"en", 0};
  eftd::reports::transaction_page page;
  eftd::reports::transaction_row row;
  row.order.order_id = "ID1";
  row.order.order_no = "<script>alert(1)</script>";
  row.order.amount_minor = 1250;
  row.pan_masked = "476173******0119";
  page.rows.push_back(row);
  page.total = 120;
  page.limit = 50;
  page.offset = 50;
  const auto html = search_page(s, {{"till", "T\"01"}}, page, "");
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("value=\"T&quot;01\"") != std::string::npos);
  CHECK(html.find("ann&lt;b&gt;") != std::string::npos);
  CHECK(html.find("value=\"tok&quot;en\"") != std::string::npos);  // the CSRF token in the logout form
  CHECK(html.find("Page 2 of 3") != std::string::npos);
  CHECK(html.find("page=1&amp;till=T%2201") != std::string::npos);
  CHECK(html.find("page=3&amp;till=T%2201") != std::string::npos);
  CHECK(html.find("format=csv") != std::string::npos);
  CHECK(html.find("12.50") != std::string::npos);
  CHECK(html.find(" style=") == std::string::npos);  // the CSP forbids inline styles

  std::vector<eftd::reports::hourly_stat> hours{{0, 10, 9, 1, 0, 0.9, 1000}, {3600000, 4, 2, 2, 0, 0.5, 10}};
  const auto svg = svg_hourly(hours);
  CHECK(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-hourly\""));
  CHECK(svg.ends_with("</svg>"));
  std::size_t bars = 0;
  for (auto at = svg.find("class=\"bar\""); at != std::string::npos; at = svg.find("class=\"bar\"", at + 1))
    ++bars;
  CHECK(bars == 2);
  CHECK(svg.find("<polyline class=\"rate\"") != std::string::npos);
  const auto schemes = svg_schemes({{"vi<sa", "PLN", 3, 2, 200}});
  CHECK(schemes.find("vi&lt;sa") != std::string::npos);
  CHECK(svg_hourly({}).find("no transactions") != std::string::npos);
}

TEST_CASE("config: [listen.backoffice] and [backoffice] in the example, and their overrides", "[reports]") {
  auto cfg = eftd::config::load_config(eftd::test::source_path("etc/eftd.example.toml"));
  INFO((cfg ? std::string() : cfg.err().message));
  REQUIRE(cfg);
  REQUIRE(cfg->backoffice.has_value());
  CHECK(cfg->backoffice->port == 9400);
  CHECK_FALSE(cfg->backoffice->tls.enabled());
  CHECK(cfg->backoffice_web.session_idle_s == 900);
  CHECK(cfg->backoffice_web.lockout_after == 10);
  CHECK(cfg->backoffice_web.page_size == 50);
  eftd::config::server_config plain;
  CHECK_FALSE(plain.backoffice.has_value());
  REQUIRE(eftd::config::apply_override(plain, "listen.backoffice.port=0"));
  REQUIRE(plain.backoffice.has_value());
  CHECK(plain.backoffice->port == 0);
  REQUIRE(eftd::config::apply_override(plain, "backoffice.session_idle_s=1"));
  CHECK(plain.backoffice_web.session_idle_s == 1);
  CHECK_FALSE(eftd::config::apply_override(plain, "backoffice.lockout_after=0"));
}
