#include "faulty_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace journal_test::faulty {

namespace {

// What a file holds on "disk" (as of its last sync) and what was written since.
struct shadow {
  struct op {
    bool truncate = false;
    std::int64_t offset = 0;  // the new size for a truncate
    std::string data;
  };
  bool exists = true;
  std::string synced;
  std::vector<op> pending;

  static void apply(std::string& image, const op& o) {
    const auto off = static_cast<std::size_t>(o.offset);
    if (o.truncate) {
      image.resize(off);
      return;
    }
    if (image.size() < off + o.data.size()) image.resize(off + o.data.size(), '\0');
    image.replace(off, o.data.size(), o.data);
  }
};

std::mutex g_mu;  // guards g_shadows, g_budget
std::map<std::string, std::unique_ptr<shadow>> g_shadows;
std::int64_t g_budget = -1;  // bytes that may still be written; < 0: unlimited
std::atomic<bool> g_fail_writes{false};
std::atomic<bool> g_fail_syncs{false};
std::atomic<bool> g_dead{false};
std::atomic<std::int64_t> g_written{0};
std::atomic<std::int64_t> g_syncs{0};

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs{};

// Ours, followed in the same allocation by the real VFS's file object.
struct faulty_file {
  sqlite3_file base;
  sqlite3_file* real;
  shadow* sh;  // owned by g_shadows; nullptr for files without a name (temp files)
};

faulty_file* ff(sqlite3_file* f) {
  return reinterpret_cast<faulty_file*>(f);
}
sqlite3_file* real_of(sqlite3_file* f) {
  return ff(f)->real;
}
const sqlite3_io_methods* m(sqlite3_file* f) {
  return real_of(f)->pMethods;
}

// The real file's current bytes: its durable content when it is first opened.
std::string read_all(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  if (real->pMethods->xFileSize(real, &size) != SQLITE_OK || size <= 0) return {};
  std::string out(static_cast<std::size_t>(size), '\0');
  if (real->pMethods->xRead(real, out.data(), static_cast<int>(size), 0) != SQLITE_OK) return {};
  return out;
}

int f_close(sqlite3_file* f) {
  return m(f)->xClose(real_of(f));
}
int f_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return m(f)->xRead(real_of(f), buf, n, off);
}
int f_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (g_dead.load() || g_fail_writes.load()) return SQLITE_IOERR_WRITE;
  {
    std::lock_guard lk(g_mu);
    if (g_budget >= 0) {
      if (n > g_budget) return SQLITE_FULL;
      g_budget -= n;
    }
  }
  int rc = m(f)->xWrite(real_of(f), buf, n, off);
  if (rc != SQLITE_OK) return rc;
  g_written += n;
  if (auto* sh = ff(f)->sh) {
    std::lock_guard lk(g_mu);
    sh->pending.push_back(
        {false, off, std::string(static_cast<const char*>(buf), static_cast<std::size_t>(n))});
  }
  return rc;
}
int f_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (g_dead.load() || g_fail_writes.load()) return SQLITE_IOERR_TRUNCATE;
  int rc = m(f)->xTruncate(real_of(f), size);
  if (rc != SQLITE_OK) return rc;
  if (auto* sh = ff(f)->sh) {
    std::lock_guard lk(g_mu);
    sh->pending.push_back({true, size, {}});
  }
  return rc;
}
int f_sync(sqlite3_file* f, int flags) {
  if (g_dead.load() || g_fail_syncs.load()) return SQLITE_IOERR_FSYNC;
  int rc = m(f)->xSync(real_of(f), flags);
  if (rc != SQLITE_OK) return rc;
  if (auto* sh = ff(f)->sh) {
    std::lock_guard lk(g_mu);
    for (const auto& o : sh->pending) shadow::apply(sh->synced, o);
    sh->pending.clear();
  }
  ++g_syncs;
  return rc;
}
int f_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return m(f)->xFileSize(real_of(f), size);
}
int f_lock(sqlite3_file* f, int l) {
  return m(f)->xLock(real_of(f), l);
}
int f_unlock(sqlite3_file* f, int l) {
  return m(f)->xUnlock(real_of(f), l);
}
int f_check_reserved(sqlite3_file* f, int* out) {
  return m(f)->xCheckReservedLock(real_of(f), out);
}
int f_file_control(sqlite3_file* f, int op, void* arg) {
  return m(f)->xFileControl(real_of(f), op, arg);
}
int f_sector_size(sqlite3_file* f) {
  return m(f)->xSectorSize(real_of(f));
}
int f_device_characteristics(sqlite3_file* f) {
  return m(f)->xDeviceCharacteristics(real_of(f));
}
int f_shm_map(sqlite3_file* f, int pg, int sz, int extend, void volatile** pp) {
  return m(f)->xShmMap(real_of(f), pg, sz, extend, pp);
}
int f_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return m(f)->xShmLock(real_of(f), offset, n, flags);
}
void f_shm_barrier(sqlite3_file* f) {
  m(f)->xShmBarrier(real_of(f));
}
int f_shm_unmap(sqlite3_file* f, int del) {
  return m(f)->xShmUnmap(real_of(f), del);
}
int f_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** pp) {
  return m(f)->xFetch(real_of(f), off, n, pp);
}
int f_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return m(f)->xUnfetch(real_of(f), off, p);
}

const sqlite3_io_methods g_methods = {
    3,
    f_close,
    f_read,
    f_write,
    f_truncate,
    f_sync,
    f_file_size,
    f_lock,
    f_unlock,
    f_check_reserved,
    f_file_control,
    f_sector_size,
    f_device_characteristics,
    f_shm_map,
    f_shm_lock,
    f_shm_barrier,
    f_shm_unmap,
    f_fetch,
    f_unfetch,
};

int v_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* me = ff(f);
  me->real = reinterpret_cast<sqlite3_file*>(me + 1);
  me->sh = nullptr;
  int rc = g_real->xOpen(g_real, name, me->real, flags, out_flags);
  me->base.pMethods = (rc == SQLITE_OK && me->real->pMethods != nullptr) ? &g_methods : nullptr;
  if (rc == SQLITE_OK && name != nullptr && me->base.pMethods != nullptr) {
    std::lock_guard lk(g_mu);
    auto& slot = g_shadows[name];
    if (!slot || !slot->exists) {
      // First sight of this file (or it was deleted): what is on disk now counts as durable.
      slot = std::make_unique<shadow>();
      slot->synced = read_all(me->real);
    }
    me->sh = slot.get();
  }
  return rc;
}
int v_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (g_dead.load()) return SQLITE_IOERR_DELETE;
  int rc = g_real->xDelete(g_real, name, sync_dir);
  if (rc == SQLITE_OK) {
    std::lock_guard lk(g_mu);
    if (auto it = g_shadows.find(name); it != g_shadows.end()) {
      it->second->exists = false;
      it->second->synced.clear();
      it->second->pending.clear();
    }
  }
  return rc;
}
int v_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int v_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* v_dl_open(sqlite3_vfs*, const char* name) {
  return g_real->xDlOpen(g_real, name);
}
void v_dl_error(sqlite3_vfs*, int n, char* msg) {
  g_real->xDlError(g_real, n, msg);
}
void (*v_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return g_real->xDlSym(g_real, h, sym);
}
void v_dl_close(sqlite3_vfs*, void* h) {
  g_real->xDlClose(g_real, h);
}
int v_randomness(sqlite3_vfs*, int n, char* out) {
  return g_real->xRandomness(g_real, n, out);
}
int v_sleep(sqlite3_vfs*, int us) {
  return g_real->xSleep(g_real, us);
}
int v_current_time(sqlite3_vfs*, double* t) {
  return g_real->xCurrentTime(g_real, t);
}
int v_get_last_error(sqlite3_vfs*, int n, char* out) {
  return g_real->xGetLastError(g_real, n, out);
}
int v_current_time_int64(sqlite3_vfs*, sqlite3_int64* t) {
  return g_real->xCurrentTimeInt64(g_real, t);
}

bool write_file(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < content.size()) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0;
}

}  // namespace

const char* vfs_name() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    if (g_real == nullptr) throw std::runtime_error("no default sqlite vfs");
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(faulty_file)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = "journal_faulty";
    g_vfs.xOpen = v_open;
    g_vfs.xDelete = v_delete;
    g_vfs.xAccess = v_access;
    g_vfs.xFullPathname = v_full_pathname;
    g_vfs.xDlOpen = v_dl_open;
    g_vfs.xDlError = v_dl_error;
    g_vfs.xDlSym = v_dl_sym;
    g_vfs.xDlClose = v_dl_close;
    g_vfs.xRandomness = v_randomness;
    g_vfs.xSleep = v_sleep;
    g_vfs.xCurrentTime = v_current_time;
    g_vfs.xGetLastError = v_get_last_error;
    g_vfs.xCurrentTimeInt64 = v_current_time_int64;
    if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK)
      throw std::runtime_error("cannot register the faulty vfs");
  });
  return g_vfs.zName;
}

void reset() {
  std::lock_guard lk(g_mu);
  g_shadows.clear();
  g_budget = -1;
  g_fail_writes = false;
  g_fail_syncs = false;
  g_dead = false;
  g_written = 0;
  g_syncs = 0;
}

void fail_writes(bool on) {
  g_fail_writes = on;
}
void fail_syncs(bool on) {
  g_fail_syncs = on;
}

void disk_full_after(std::int64_t bytes) {
  std::lock_guard lk(g_mu);
  g_budget = bytes < 0 ? -1 : bytes;
}

std::int64_t bytes_written() {
  return g_written.load();
}

std::int64_t syncs() {
  return g_syncs.load();
}

void power_cut() {
  g_dead = true;
}

int power_restore(loss_mode mode) {
  std::lock_guard lk(g_mu);
  int n = 0;
  for (auto& [path, sh] : g_shadows) {
    if (!sh->exists) {
      ::unlink(path.c_str());
      continue;
    }
    std::string image = sh->synced;
    if (mode == loss_mode::tear_last_unsynced && !sh->pending.empty()) {
      for (std::size_t i = 0; i + 1 < sh->pending.size(); ++i) shadow::apply(image, sh->pending[i]);
      auto last = sh->pending.back();
      // A write that reached the platter only in part: whole 512-byte sectors of its front.
      if (!last.truncate) last.data.resize((last.data.size() / 2) / 512 * 512);
      shadow::apply(image, last);
    }
    if (write_file(path, image)) ++n;
    sh->pending.clear();
    sh->synced = image;
  }
  g_dead = false;
  return n;
}

}  // namespace journal_test::faulty
