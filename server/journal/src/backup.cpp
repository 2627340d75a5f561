#include "eftd/journal/backup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <system_error>
#include <thread>
#include <utility>

#include "eftd/core/bytes.hpp"
#include "sqlite_db.hpp"

namespace eftd::journal {

namespace {

using detail::connection;

error failed(std::string what) {
  return make_error("journal.backup_failed", std::move(what));
}

// The temporary copy and the files SQLite may have left next to it; removed unless kept.
class temp_copy {
 public:
  explicit temp_copy(std::filesystem::path p) : path_(std::move(p)) { remove(); }
  ~temp_copy() {
    if (!kept_) remove();
  }
  temp_copy(const temp_copy&) = delete;
  temp_copy& operator=(const temp_copy&) = delete;
  const std::filesystem::path& path() const { return path_; }
  void keep() { kept_ = true; }
  void remove() const {
    std::error_code ec;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"})
      std::filesystem::remove(path_.string() + suffix, ec);
  }

 private:
  std::filesystem::path path_;
  bool kept_ = false;
};

struct backup_handle {
  sqlite3_backup* b;
  ~backup_handle() {
    if (b != nullptr) sqlite3_backup_finish(b);
  }
  int finish() { return sqlite3_backup_finish(std::exchange(b, nullptr)); }
};

}  // namespace

result<backup_stats> backup(const std::filesystem::path& db, const std::filesystem::path& to,
                            const backup_options& options) {
  if (options.pages_per_step == 0)
    return make_error("journal.invalid_argument", "pages_per_step must not be 0");
  std::error_code ec;
  if (!std::filesystem::exists(db, ec))
    return make_error("journal.open_failed", "journal database does not exist");
  if (!options.overwrite && std::filesystem::exists(to, ec)) {
    return make_error("journal.backup_exists", "the backup file exists already (" + to.string() + ")");
  }
  const auto started = std::chrono::steady_clock::now();
  backup_stats stats;

  auto src = detail::open_connection(db, detail::open_mode::read_only, 5000, options.vfs);
  if (!src) return src.err();
  // One read transaction for the whole copy: the copy is this snapshot, and the backup never
  // restarts because the writer committed in between (WAL keeps the snapshot readable).
  if (src->exec("BEGIN") != SQLITE_OK || src->exec("SELECT count(*) FROM sqlite_schema") != SQLITE_OK) {
    return failed("cannot start a read transaction on the journal: " + src->errmsg());
  }

  temp_copy tmp(to.string() + ".tmp");
  {
    auto dst = detail::open_connection(tmp.path(), detail::open_mode::read_write_create, 5000, {});
    if (!dst) return make_error("journal.open_failed", "backup target: " + dst.err().message);
    backup_handle b{sqlite3_backup_init(dst->get(), "main", src->get(), "main")};
    if (b.b == nullptr) return failed("cannot start the backup: " + dst->errmsg());
    for (;;) {
      const int rc = sqlite3_backup_step(b.b, options.pages_per_step);
      ++stats.steps;
      if (rc == SQLITE_DONE) break;
      if (rc == SQLITE_OK) {
        if (options.step_pause.count() > 0) std::this_thread::sleep_for(options.step_pause);
        continue;
      }
      if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        ++stats.retries;
        if (std::chrono::steady_clock::now() - started > options.deadline) {
          return failed("the journal stayed locked past the backup deadline");
        }
        std::this_thread::sleep_for(options.retry_pause);
        continue;
      }
      return failed(std::string("backup step failed: ") + sqlite3_errstr(rc));
    }
    stats.pages = sqlite3_backup_pagecount(b.b);
    if (int rc = b.finish(); rc != SQLITE_OK)
      return failed(std::string("backup failed: ") + sqlite3_errstr(rc));
    src->exec("COMMIT");
    src->close();

    // A backup is one self-contained file: no -wal beside it to lose on the way.
    if (dst->exec("PRAGMA journal_mode = DELETE") != SQLITE_OK) {
      return failed("cannot make the copy self-contained: " + dst->errmsg());
    }
    auto check = detail::query_pragma(*dst, "integrity_check");
    if (!check) return failed("integrity_check on the copy: " + check.err().message);
    if (*check != "ok") {
      return make_error("journal.backup_corrupt", "the copy failed integrity_check: " + *check);
    }
    auto version = detail::user_version(*dst);
    if (!version) return failed(version.err().message);
    stats.schema_version = *version;
    dst->close();
  }
  if (!fsync_path(tmp.path(), false)) return failed("cannot fsync the copy");
  if (!options.overwrite && std::filesystem::exists(to, ec)) {
    return make_error("journal.backup_exists", "the backup file appeared meanwhile (" + to.string() + ")");
  }
  std::filesystem::rename(tmp.path(), to, ec);
  if (ec) return failed("cannot rename the copy into place: " + ec.message());
  tmp.keep();
  const auto dir = to.has_parent_path() ? to.parent_path() : std::filesystem::path(".");
  if (!fsync_path(dir, true)) return failed("cannot fsync the backup's directory");
  stats.bytes = static_cast<std::int64_t>(std::filesystem::file_size(to, ec));
  return stats;
}

bool fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

result<file_digest> sha256_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error("journal.open_failed", "cannot read " + p.filename().string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) std::abort();
  file_digest d;
  std::array<char, 65536> chunk;
  while (in) {
    in.read(chunk.data(), chunk.size());
    const auto n = static_cast<std::size_t>(in.gcount());
    if (n > 0 && EVP_DigestUpdate(md.get(), chunk.data(), n) != 1) std::abort();
    d.size += n;
  }
  if (in.bad()) return make_error("journal.open_failed", "read error in " + p.filename().string());
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(md.get(), out.data(), &len) != 1 || len != 32) std::abort();
  d.sha256_hex = to_hex(byte_view(out.data(), len));
  return d;
}

}  // namespace eftd::journal
