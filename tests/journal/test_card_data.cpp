// PANs at rest and their keys. Label: journal + security.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "eftd/journal/card_data.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"

namespace ej = eftd::journal;
using namespace journal_test;

namespace {

// A Luhn-valid PAN with no long repeated runs, so a raw byte search cannot hit by accident.
constexpr std::string_view test_pan = "4539578763621486";

eftd::pan make_pan(std::string_view digits = test_pan) {
  auto p = eftd::pan::parse(digits);
  REQUIRE(p);
  return std::move(*p);
}

ej::keys make_keys(const temp_dir& dir) {
  auto k = ej::load_or_create_keys(dir.path() / "journal.keys");
  INFO((k ? "" : k.err().code + ": " + k.err().message));
  REQUIRE(k);
  return std::move(*k);
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

void write_file(const std::filesystem::path& p, const std::string& content, unsigned mode = 0600) {
  { std::ofstream(p, std::ios::binary) << content; }
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

}  // namespace

TEST_CASE("sealed PAN: ciphertext hides the digits and uses a fresh nonce", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  auto p = make_pan();
  auto a = ej::seal_pan(k, p);
  auto b = ej::seal_pan(k, p);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->ciphertext.size() == 12 + test_pan.size() + 16);  // nonce || ct || tag
  const std::string ct_a(a->ciphertext.begin(), a->ciphertext.end());
  CHECK(ct_a.find(test_pan) == std::string::npos);
  CHECK(a->ciphertext != b->ciphertext);
  CHECK(a->masked == "453957******1486");
  CHECK(a->masked == p.masked());
  CHECK(a->search_hash == b->search_hash);
  CHECK(a->search_hash.size() == 64);
  CHECK(a->search_hash.find(test_pan) == std::string::npos);
}

TEST_CASE("open_pan gives back the PAN", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  for (std::string_view digits :
       {test_pan, std::string_view("5413330089010442"), std::string_view("374245455400126"),
        std::string_view("6011000990139424123")}) {
    auto s = ej::seal_pan(k, make_pan(digits));
    REQUIRE(s);
    auto back = ej::open_pan(k, *s);
    REQUIRE(back);
    CHECK(back->reveal() == digits);
  }
}

TEST_CASE("a tampered or foreign ciphertext fails authentication", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  auto s = ej::seal_pan(k, make_pan());
  REQUIRE(s);
  const std::size_t n = s->ciphertext.size();
  for (std::size_t at : {std::size_t{0}, std::size_t{11}, std::size_t{12}, n - 17, n - 16, n - 1}) {
    INFO("byte " << at);
    auto t = *s;
    t.ciphertext[at] ^= 0x01;
    auto r = ej::open_pan(k, t);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "crypto.auth_failed");
    CHECK(r.err().message.find(test_pan) == std::string::npos);
  }
  auto truncated = *s;
  truncated.ciphertext.resize(20);
  auto tr = ej::open_pan(k, truncated);
  REQUIRE_FALSE(tr);
  CHECK(tr.err().code == "crypto.bad_input");

  temp_dir other;
  auto foreign = ej::open_pan(make_keys(other), *s);
  REQUIRE_FALSE(foreign);
  CHECK(foreign.err().code == "crypto.auth_failed");
}

TEST_CASE("an offline advice's card details are sealed under their own AAD and open again",
          "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  for (const auto& c : {ej::advice_card{"2912", "001"}, ej::advice_card{"2512", ""}}) {
    auto sealed = ej::seal_advice_card(k, c);
    REQUIRE(sealed);
    CHECK(sealed->size() == 12 + c.expiry_yymm.size() + c.card_sequence.size() + 16);
    const std::string text(sealed->begin(), sealed->end());
    CHECK(text.find(c.expiry_yymm) == std::string::npos);
    auto back = ej::open_advice_card(k, *sealed);
    REQUIRE(back);
    CHECK(back->expiry_yymm == c.expiry_yymm);
    CHECK(back->card_sequence == c.card_sequence);
    auto tampered = *sealed;
    tampered.back() ^= 0x01;
    auto bad = ej::open_advice_card(k, tampered);
    REQUIRE_FALSE(bad);
    CHECK(bad.err().code == "crypto.auth_failed");
  }
  // A sealed PAN is no advice card (different AAD), and bad input is refused before sealing.
  auto pan_sealed = ej::seal_pan(k, make_pan());
  REQUIRE(pan_sealed);
  auto cross = ej::open_advice_card(k, pan_sealed->ciphertext);
  REQUIRE_FALSE(cross);
  CHECK(cross.err().code == "crypto.auth_failed");
  for (const auto& c :
       {ej::advice_card{"291", "001"}, ej::advice_card{"2912", "01"}, ej::advice_card{"29A2", ""}}) {
    auto r = ej::seal_advice_card(k, c);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == "journal.invalid_argument");
  }
}

TEST_CASE("search_hash is stable per key and finds the order", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  auto p = make_pan();
  CHECK(ej::search_hash(k, p) == ej::search_hash(k, make_pan()));
  CHECK(ej::search_hash(k, p) != ej::search_hash(k, make_pan("5413330089010442")));
  temp_dir other;
  CHECK(ej::search_hash(make_keys(other), p) != ej::search_hash(k, p));
  auto reloaded = make_keys(dir);  // same key file, same hash: searches survive restarts
  CHECK(ej::search_hash(reloaded, p) == ej::search_hash(k, p));

  auto w = ej::writer::open(dir.db(), 64);
  REQUIRE(w);
  auto op = payment("P1", "O1");
  auto sealed = ej::seal_pan(k, p);
  REQUIRE(sealed);
  op.pan = *sealed;
  auto other_op = payment("P2", "O2");
  auto other_sealed = ej::seal_pan(k, make_pan("5413330089010442"));
  REQUIRE(other_sealed);
  other_op.pan = *other_sealed;
  REQUIRE((*w)->submit_sync(batch_of({order("O1", "1"), op, order("O2", "2"), other_op})));

  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  ej::order_filter f;
  f.pan_hash = ej::search_hash(reloaded, p);
  auto rows = r->list_orders(f);
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK(rows->front().order_id == "O1");

  auto detail = r->order_detail("O1");
  REQUIRE(detail);
  CHECK((*detail)->operations[0].pan_masked == std::optional<std::string>("453957******1486"));
  CHECK((*detail)->operations[0].pan_hash == std::optional<std::string>(sealed->search_hash));

  // The ciphertext comes back only when asked for, and opens to the PAN.
  auto stored = r->operation_pan("P1");
  REQUIRE(stored);
  REQUIRE(stored->has_value());
  CHECK(**stored == *sealed);
  auto opened = ej::open_pan(k, **stored);
  REQUIRE(opened);
  CHECK(opened->reveal() == test_pan);
}

TEST_CASE("a PAN attached after the card read is stored on the operation", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  auto w = ej::writer::open(dir.db(), 64);
  REQUIRE(w);
  REQUIRE((*w)->submit_sync(batch_of({order("O1", "1"), payment("P1", "O1")})));
  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  auto none = r->operation_pan("P1");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  auto missing = r->operation_pan("NOPE");
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == "journal.not_found");

  ej::operation_updated u;
  u.op_id = "P1";
  u.state = "card_read";
  u.entry_mode = "contactless";
  auto sealed = ej::seal_pan(k, make_pan());
  REQUIRE(sealed);
  u.pan = *sealed;
  REQUIRE((*w)->submit_sync(batch_of({u})));
  auto stored = r->operation_pan("P1");
  REQUIRE(stored);
  REQUIRE(stored->has_value());
  CHECK((*stored)->search_hash == sealed->search_hash);
}

TEST_CASE("the database refuses a 'masked' PAN that is really a PAN", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  auto w = ej::writer::open(dir.db(), 64);
  REQUIRE(w);
  REQUIRE((*w)->submit_sync(batch_of({order("O1", "1")})));
  auto sealed = ej::seal_pan(k, make_pan());
  REQUIRE(sealed);

  struct row {
    const char* name;
    std::string masked;
    std::string hash;
  };
  const row table[] = {
      {"clear PAN as masked", std::string(test_pan), sealed->search_hash},
      {"nine digits in a row", "453957876****486", sealed->search_hash},
      {"too many digits shown", "4539-5787-6362-**86", sealed->search_hash},
      {"clear PAN as hash", sealed->masked, std::string(test_pan)},
  };
  for (const auto& t : table) {
    INFO(t.name);
    auto op = payment("P1", "O1");
    op.pan = ej::stored_pan{sealed->ciphertext, t.masked, t.hash};
    auto st = (*w)->submit_sync(batch_of({op}));
    REQUIRE_FALSE(st);
    CHECK(st.err().code == "journal.invalid_record");
    CHECK(st.err().message.find(test_pan) == std::string::npos);
  }
  auto ok = payment("P1", "O1");
  ok.pan = *sealed;
  CHECK((*w)->submit_sync(batch_of({ok})));
}

TEST_CASE("the clear PAN appears nowhere in the database files", "[journal][card][security]") {
  temp_dir dir;
  auto k = make_keys(dir);
  auto w = ej::writer::open(dir.db(), 64);
  REQUIRE(w);
  const std::string pans[] = {std::string(test_pan), "5413330089010442", "374245455400126"};
  for (int i = 0; i < 30; ++i) {
    const std::string no = std::to_string(i);
    auto p = make_pan(pans[i % 3]);
    auto op = payment("P" + no, "O" + no);
    auto sealed = ej::seal_pan(k, p);
    REQUIRE(sealed);
    op.pan = *sealed;
    op.scheme = "visa";
    auto ev = event("O" + no, "card_read", 1, ej::actor::pad);
    ev.detail = "card " + p.masked();
    REQUIRE((*w)->submit_sync(batch_of({order("O" + no, no), op, ev})));
  }

  auto scan = [&](const char* when) {
    INFO(when);
    std::size_t scanned = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      const auto name = entry.path().filename().string();
      if (name.rfind("journal.db", 0) != 0) continue;
      const std::string raw = read_all(entry.path());
      scanned += raw.size();
      for (const auto& pan : pans) {
        INFO(name);
        CHECK(raw.find(pan) == std::string::npos);
        CHECK(raw.find(pan.substr(0, 9)) == std::string::npos);  // no 9-digit prefix either
      }
    }
    CHECK(scanned > 0);
  };
  scan("writer open (data in the WAL)");
  CHECK(std::filesystem::file_size(dir.path() / "journal.db-wal") > 0);
  (*w)->close();
  scan("writer closed (checkpointed into the main file)");
}

TEST_CASE("key file: created 0600 with 128 hex digits, reloaded identically", "[journal][card][security]") {
  temp_dir dir;
  const auto file = dir.path() / "journal.keys";
  auto a = ej::load_or_create_keys(file);
  REQUIRE(a);
  CHECK(mode_of(file) == 0600);
  CHECK(a->pan_key.size() == 32);
  CHECK(a->hash_key.size() == 32);
  CHECK_FALSE(a->pan_key == a->hash_key);
  const std::string content = read_all(file);
  REQUIRE(content.size() == 129);
  CHECK(content.back() == '\n');
  CHECK(content.find_first_not_of("0123456789abcdef") == 128);

  auto b = ej::load_or_create_keys(file);
  REQUIRE(b);
  CHECK(b->pan_key == a->pan_key);
  CHECK(b->hash_key == a->hash_key);
  CHECK(read_all(file) == content);  // loading never rewrites the file

  // A known file gives known keys: 32 bytes of 0x11, then 32 bytes of 0xAB (upper case ok).
  const auto known = dir.path() / "known.keys";
  write_file(known, std::string(64, '1') + std::string(32, 'a') + std::string(32, 'B') + "\r\n");
  auto c = ej::load_or_create_keys(known);
  REQUIRE(c);
  CHECK(c->pan_key == eftd::secure_bytes(eftd::bytes(32, 0x11)));
  auto hk = c->hash_key.view();
  CHECK(hk[0] == 0xaa);
  CHECK(hk[31] == 0xbb);
}

TEST_CASE("key file problems fail with clear codes", "[journal][card][security]") {
  temp_dir dir;
  const auto file = dir.path() / "journal.keys";
  struct row {
    const char* name;
    std::string content;
    unsigned mode;
    const char* code;
  };
  const std::string good(128, 'c');
  const row table[] = {
      {"empty", "", 0600, "journal.keys_malformed"},
      {"too short", good.substr(0, 127), 0600, "journal.keys_malformed"},
      {"too long", good + "cc", 0600, "journal.keys_malformed"},
      {"non-hex digit", good.substr(0, 100) + "g" + good.substr(101), 0600, "journal.keys_malformed"},
      {"space inside", good.substr(0, 64) + " " + good.substr(64), 0600, "journal.keys_malformed"},
      {"huge file", std::string(100000, 'c'), 0600, "journal.keys_malformed"},
      {"readable by group", good, 0640, "journal.keys_insecure_mode"},
      {"readable by anyone", good, 0644, "journal.keys_insecure_mode"},
  };
  for (const auto& t : table) {
    INFO(t.name);
    write_file(file, t.content, t.mode);
    auto k = ej::load_or_create_keys(file);
    REQUIRE_FALSE(k);
    CHECK(k.err().code == t.code);
    CHECK(k.err().message.find(good.substr(0, 16)) == std::string::npos);  // never quotes a key
    CHECK(read_all(file) == t.content);  // a bad file is reported, never replaced
  }
  auto missing_dir = ej::load_or_create_keys(dir.path() / "no" / "such" / "journal.keys");
  REQUIRE_FALSE(missing_dir);
  CHECK(missing_dir.err().code == "journal.keys_io");
}

TEST_CASE("a PAN pasted into free text is masked before it is stored", "[journal][card][security]") {
  temp_dir dir;
  auto w = ej::writer::open(dir.db(), 64);
  REQUIRE(w);
  auto ev = event("O1", "card_read", 1, ej::actor::pad);
  // A Luhn-valid PAN (masked), a 12-digit RRN and a non-Luhn 16-digit number (both kept).
  ev.detail = "card " + std::string(test_pan) + " rrn 123456789012 ref 1234567890123456";
  ev.reason = std::string(test_pan);
  ej::order_updated ou;
  ou.order_id = "O1";
  ou.reason_cashier = "declined for 5413330089010442.";
  ou.reason_customer = "card 374245455400126";
  REQUIRE((*w)->submit_sync(batch_of({order("O1", "1"), ev, ou})));

  auto r = ej::reader::open(dir.db());
  REQUIRE(r);
  auto d = r->order_detail("O1");
  REQUIRE(d);
  REQUIRE((*d)->events.size() == 1);
  CHECK((*d)->events[0].detail == "card 453957******1486 rrn 123456789012 ref 1234567890123456");
  CHECK((*d)->events[0].reason == "453957******1486");
  CHECK((*d)->order.reason_cashier == std::optional<std::string>("declined for 541333******0442."));
  CHECK((*d)->order.reason_customer == std::optional<std::string>("card 374245*****0126"));

  (*w)->close();
  const std::string raw = read_all(dir.db());
  CHECK(raw.find(test_pan) == std::string::npos);
  CHECK(raw.find("5413330089010442") == std::string::npos);
}
