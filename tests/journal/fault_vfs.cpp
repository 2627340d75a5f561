#include "fault_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <mutex>
#include <stdexcept>

namespace journal_test {

namespace {

std::atomic<bool> g_fail_writes{false};
std::atomic<bool> g_fail_syncs{false};
sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs{};

// Our file object, followed in the same allocation by the real VFS's file object.
struct fault_file {
  sqlite3_file base;
  sqlite3_file* real;
};

sqlite3_file* real_of(sqlite3_file* f) {
  return reinterpret_cast<fault_file*>(f)->real;
}
const sqlite3_io_methods* m(sqlite3_file* f) {
  return real_of(f)->pMethods;
}

int f_close(sqlite3_file* f) {
  return m(f)->xClose(real_of(f));
}
int f_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return m(f)->xRead(real_of(f), buf, n, off);
}
int f_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (g_fail_writes.load()) return SQLITE_IOERR_WRITE;
  return m(f)->xWrite(real_of(f), buf, n, off);
}
int f_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (g_fail_writes.load()) return SQLITE_IOERR_TRUNCATE;
  return m(f)->xTruncate(real_of(f), size);
}
int f_sync(sqlite3_file* f, int flags) {
  if (g_fail_syncs.load()) return SQLITE_IOERR_FSYNC;
  return m(f)->xSync(real_of(f), flags);
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
  auto* ff = reinterpret_cast<fault_file*>(f);
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  int rc = g_real->xOpen(g_real, name, ff->real, flags, out_flags);
  ff->base.pMethods = (rc == SQLITE_OK && ff->real->pMethods != nullptr) ? &g_methods : nullptr;
  return rc;
}
int v_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
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

}  // namespace

const char* fault_vfs_name() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    if (g_real == nullptr) throw std::runtime_error("no default sqlite vfs");
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(fault_file)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = "journal_fault";
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
    if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) {
      throw std::runtime_error("cannot register the fault vfs");
    }
  });
  return g_vfs.zName;
}

void fail_writes(bool on) {
  g_fail_writes.store(on);
}
void fail_syncs(bool on) {
  g_fail_syncs.store(on);
}

}  // namespace journal_test
