// Online backup: a consistent copy of a journal that a writer keeps changing.
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "eftd/journal/backup.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"
#include "journal_fixtures.hpp"
#include "journal_open.hpp"

namespace ej = eftd::journal;
using journal_test::batch_of;
using journal_test::order;
using journal_test::temp_dir;

using journal_test::open_writer;
namespace {

bool has_order(ej::reader& r, int i) {
  auto o = r.find_order("T01", std::to_string(i), "2024-03-01");
  REQUIRE(o);
  return o->has_value();
}

}  // namespace

TEST_CASE("a backup taken while the writer commits holds everything acknowledged before it began",
          "[journal][backup]") {
  temp_dir dir;
  auto w = open_writer(dir.db());
  for (int i = 0; i < 300; ++i) {
    auto e = journal_test::event("O" + std::to_string(i), "created", 1'700'000'000'000 + i);
    e.detail = std::string(2000, 'x');  // enough pages for many small backup steps
    REQUIRE(w->submit_sync(batch_of({order("O" + std::to_string(i), std::to_string(i)), e})));
  }

  // A till that keeps selling during the backup.
  std::atomic<bool> stop{false};
  std::atomic<int> sold{0};
  std::thread till([&] {
    for (int i = 10000; !stop.load(); ++i) {
      if (w->submit_sync(batch_of({order("O" + std::to_string(i), std::to_string(i))}))) ++sold;
    }
  });

  ej::backup_options opts;
  opts.pages_per_step = 8;
  const auto copy = dir.path() / "copy.db";
  auto st = ej::backup(dir.db(), copy, opts);
  stop = true;
  till.join();
  INFO((st ? "" : st.err().code + ": " + st.err().message));
  REQUIRE(st);
  CHECK(st->steps > 10);
  CHECK(st->pages > 80);
  CHECK(st->bytes == st->pages * 4096);
  CHECK(st->schema_version > 0);
  CHECK(sold.load() > 0);
  CHECK_FALSE(std::filesystem::exists(copy.string() + ".tmp"));
  CHECK_FALSE(std::filesystem::exists(copy.string() + "-wal"));

  auto r = ej::reader::open(copy);
  INFO((r ? "" : r.err().code + ": " + r.err().message));
  REQUIRE(r);
  for (int i = 0; i < 300; ++i) CHECK(has_order(*r, i));
  auto ic = r->pragma("integrity_check");
  REQUIRE(ic);
  CHECK(*ic == "ok");
  auto mode = r->pragma("journal_mode");
  REQUIRE(mode);
  CHECK(*mode == "delete");
}

TEST_CASE("backup refuses to overwrite unless asked and reports a missing journal", "[journal][backup]") {
  temp_dir dir;
  open_writer(dir.db())->close();
  const auto copy = dir.path() / "copy.db";
  REQUIRE(ej::backup(dir.db(), copy));
  auto again = ej::backup(dir.db(), copy);
  REQUIRE_FALSE(again);
  CHECK(again.err().code == "journal.backup_exists");
  ej::backup_options opts;
  opts.overwrite = true;
  CHECK(ej::backup(dir.db(), copy, opts));
  auto missing = ej::backup(dir.path() / "nope.db", dir.path() / "x.db");
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == "journal.open_failed");
}

TEST_CASE("sha256_file matches the FIPS 180-2 examples, in chunks too", "[journal][backup][crypto]") {
  temp_dir dir;
  const auto write = [&](const std::string& name, const std::string& content) {
    const auto p = dir.path() / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  };
  auto abc = eftd::journal::sha256_file(write("abc", "abc"));
  REQUIRE(abc);
  CHECK(abc->sha256_hex == "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  CHECK(abc->size == 3);
  auto empty = eftd::journal::sha256_file(write("empty", ""));
  REQUIRE(empty);
  CHECK(empty->sha256_hex == "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
  // One million 'a' (FIPS 180-2 B.3): more than one 64 KiB read.
  auto million = eftd::journal::sha256_file(write("a", std::string(1000000, 'a')));
  REQUIRE(million);
  CHECK(million->sha256_hex == "CDC76E5C9914FB9281A1C7E284D73E67F1809A48A497200E046D39CCC7112CD0");
  CHECK(million->size == 1000000);
  auto missing = eftd::journal::sha256_file(dir.path() / "nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.err().code == "journal.open_failed");
}
