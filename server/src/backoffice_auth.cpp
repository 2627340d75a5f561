#include "backoffice_auth.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace eftd::server::backoffice {

namespace {

std::string lower_hex(byte_view b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (auto c : b) {
    out.push_back(digits[static_cast<unsigned>(c) >> 4]);
    out.push_back(digits[static_cast<unsigned>(c) & 0xF]);
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Memory scrypt needs is 128 * N * r * p bytes (plus a little); the limit leaves room for it
// and refuses absurd parameters read from a damaged row.
constexpr std::uint64_t scrypt_max_mem = 256ULL * 1024 * 1024;

}  // namespace

result<bytes> scrypt(std::string_view password, byte_view salt, const kdf_params& params,
                     std::size_t out_len) {
  bytes out(out_len);
  if (EVP_PBE_scrypt(password.data(), password.size(), reinterpret_cast<const unsigned char*>(salt.data()),
                     salt.size(), params.n, params.r, params.p, scrypt_max_mem,
                     reinterpret_cast<unsigned char*>(out.data()), out.size()) != 1)
    return make_error("users.kdf", "scrypt failed (parameters or memory)");
  return out;
}

std::string kdf_name(const kdf_params& p) {
  return fmt::format("scrypt:N={},r={},p={}", p.n, p.r, p.p);
}

std::optional<kdf_params> parse_kdf_name(std::string_view s) {
  constexpr std::string_view prefix = "scrypt:";
  if (!s.starts_with(prefix)) return std::nullopt;
  s.remove_prefix(prefix.size());
  kdf_params p;
  bool got_n = false, got_r = false, got_p = false;
  while (!s.empty()) {
    auto comma = s.find(',');
    auto item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto key = item.substr(0, eq);
    auto val = item.substr(eq + 1);
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
    if (ec != std::errc{} || ptr != val.data() + val.size() || v == 0) return std::nullopt;
    if (key == "N") {
      p.n = v;
      got_n = true;
    } else if (key == "r" && v <= 1024) {
      p.r = static_cast<std::uint32_t>(v);
      got_r = true;
    } else if (key == "p" && v <= 1024) {
      p.p = static_cast<std::uint32_t>(v);
      got_p = true;
    } else {
      return std::nullopt;
    }
  }
  if (!got_n || !got_r || !got_p) return std::nullopt;
  return p;
}

result<password_record> hash_password(std::string_view password, const kdf_params& params) {
  bytes salt(16);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
    return make_error("users.kdf", "no random bytes for a salt");
  auto h = scrypt(password, salt, params, 32);
  if (!h) return h.err();
  return password_record{lower_hex(*h), lower_hex(salt), kdf_name(params)};
}

bool verify_password(std::string_view password, const password_record& record) {
  auto params = parse_kdf_name(record.kdf);
  auto salt = from_hex(record.salt_hex);
  auto want = from_hex(record.hash_hex);
  if (!params || !salt || !want || want->empty()) return false;
  auto got = scrypt(password, *salt, *params, want->size());
  if (!got) return false;
  return CRYPTO_memcmp(got->data(), want->data(), want->size()) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_token(std::size_t n) {
  bytes b(n);
  // A failing CSPRNG leaves no safe way to make a session: stop rather than hand out guessable ids.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(b.data()), static_cast<int>(b.size())) != 1) std::abort();
  return lower_hex(b);
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::map<std::string, std::string, std::less<>> parse_cookies(std::string_view header) {
  std::map<std::string, std::string, std::less<>> out;
  while (!header.empty()) {
    auto semi = header.find(';');
    auto pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    auto name = trim(pair.substr(0, eq));
    auto value = trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    if (name.empty()) continue;
    out.emplace(std::string(name), std::string(value));
  }
  return out;
}

std::string_view to_string(role r) noexcept {
  switch (r) {
    case role::viewer:
      return "viewer";
    case role::supervisor:
      return "supervisor";
    case role::admin:
      return "admin";
  }
  return "viewer";
}

std::optional<role> parse_role(std::string_view s) noexcept {
  if (s == "viewer") return role::viewer;
  if (s == "supervisor") return role::supervisor;
  if (s == "admin") return role::admin;
  return std::nullopt;
}

bool role_allows(role have, role need) noexcept {
  return static_cast<int>(have) >= static_cast<int>(need);
}

bool valid_user_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_' || c == '@';
  });
}

bool acceptable_password(std::string_view password) noexcept {
  return password.size() >= 10 && password.size() <= 1024;
}

// --- sessions -------------------------------------------------------------------------------

session_store::session_store(std::int64_t idle_ms, std::function<std::int64_t()> now_ms,
                             std::size_t max_sessions)
    : idle_ms_(idle_ms), now_ms_(std::move(now_ms)), max_sessions_(max_sessions) {}

void session_store::evict_expired_locked(std::int64_t now) {
  std::erase_if(sessions_, [&](const auto& kv) { return now - kv.second.last_seen_ms > idle_ms_; });
}

session session_store::create(std::string user, role r) {
  const auto now = now_ms_();
  session s{random_token(32), std::move(user), r, random_token(32), now};
  std::lock_guard lk(mu_);
  if (sessions_.size() >= max_sessions_) evict_expired_locked(now);
  // Still full: drop the least recently used, so a flood of login forms cannot exhaust memory.
  while (sessions_.size() >= max_sessions_) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.last_seen_ms < b.second.last_seen_ms;
    });
    sessions_.erase(oldest);
  }
  sessions_.emplace(s.id, s);
  return s;
}

std::optional<session> session_store::touch(std::string_view id) {
  const auto now = now_ms_();
  std::lock_guard lk(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_seen_ms > idle_ms_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen_ms = now;
  return it->second;
}

void session_store::remove(std::string_view id) {
  std::lock_guard lk(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) sessions_.erase(it);
}

std::size_t session_store::size() const {
  std::lock_guard lk(mu_);
  return sessions_.size();
}

bool session_store::csrf_ok(const session& s, std::string_view token) {
  return !s.csrf.empty() && constant_time_equal(s.csrf, token);
}

// --- users ----------------------------------------------------------------------------------

struct user_store::impl {
  sqlite3* db = nullptr;
  kdf_params params;
  // Timing filler for unknown names: a real record, so the KDF work matches a known user's.
  password_record dummy;

  ~impl() {
    if (db != nullptr) sqlite3_close_v2(db);
  }

  error db_error(std::string_view what) const {
    return make_error("users.db", fmt::format("users table: {}: {}", what, sqlite3_errmsg(db)));
  }

  // A prepared statement that finalises itself.
  struct stmt {
    sqlite3_stmt* s = nullptr;
    ~stmt() {
      if (s != nullptr) sqlite3_finalize(s);
    }
  };

  bool prepare(stmt& st, const char* sql) {
    return sqlite3_prepare_v2(db, sql, -1, &st.s, nullptr) == SQLITE_OK;
  }
  static void bind(stmt& st, int i, std::string_view v) {
    sqlite3_bind_text(st.s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  static void bind(stmt& st, int i, std::int64_t v) { sqlite3_bind_int64(st.s, i, v); }
  static std::string col_text(stmt& st, int i) {
    const auto* p = sqlite3_column_text(st.s, i);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }

  // Runs an UPDATE/INSERT/DELETE; returns the number of changed rows.
  result<int> exec(stmt& st, std::string_view what) {
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_CONSTRAINT) return make_error("users.exists", "a user with that name already exists");
    if (rc != SQLITE_DONE) return db_error(what);
    return sqlite3_changes(db);
  }

  struct full_row {
    user_row row;
    password_record pw;
  };

  result<std::optional<full_row>> find(const std::string& name) {
    stmt st;
    if (!prepare(
            st,
            "SELECT name, role, password_hash, salt, kdf, failed_attempts, locked, created_ms, updated_ms "
            "FROM users WHERE name = ?"))
      return db_error("read");
    bind(st, 1, name);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) return std::optional<full_row>{};
    if (rc != SQLITE_ROW) return db_error("read");
    full_row f;
    f.row.name = col_text(st, 0);
    f.row.user_role = parse_role(col_text(st, 1)).value_or(role::viewer);
    f.pw = {col_text(st, 2), col_text(st, 3), col_text(st, 4)};
    f.row.failed_attempts = sqlite3_column_int64(st.s, 5);
    f.row.locked = sqlite3_column_int64(st.s, 6) != 0;
    f.row.created_ms = sqlite3_column_int64(st.s, 7);
    f.row.updated_ms = sqlite3_column_int64(st.s, 8);
    return std::optional<full_row>{std::move(f)};
  }
};

user_store::user_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
user_store::~user_store() = default;

result<std::unique_ptr<user_store>> user_store::open(const std::filesystem::path& db, kdf_params params) {
  auto p = std::make_unique<impl>();
  p->params = params;
  if (sqlite3_open_v2(db.c_str(), &p->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
    return make_error("users.db", fmt::format("cannot open the journal {}: {}", db.string(),
                                              p->db ? sqlite3_errmsg(p->db) : "out of memory"));
  sqlite3_busy_timeout(p->db, 5000);
  {
    impl::stmt st;
    if (!p->prepare(st, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'users'") ||
        sqlite3_step(st.s) != SQLITE_ROW)
      return p->db_error("open");
    if (sqlite3_column_int64(st.s, 0) != 1)
      return make_error("users.db",
                        "the journal has no users table (it is older than schema 7: start eftd once)");
  }
  auto dummy = hash_password("not a password of anybody", params);
  if (!dummy) return dummy.err();
  p->dummy = std::move(*dummy);
  return std::unique_ptr<user_store>(new user_store(std::move(p)));
}

status user_store::add(const std::string& name, role r, std::string_view password, std::int64_t now_ms) {
  if (!valid_user_name(name))
    return make_error("users.bad_name", "user names are 1..64 letters, digits, '.', '-', '_', '@'");
  if (!acceptable_password(password))
    return make_error("users.weak_password", "passwords are 10..1024 characters");
  auto pw = hash_password(password, impl_->params);
  if (!pw) return pw.err();
  impl::stmt st;
  if (!impl_->prepare(
          st,
          "INSERT INTO users(name, role, password_hash, salt, kdf, failed_attempts, locked, created_ms, "
          "updated_ms) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)"))
    return impl_->db_error("add");
  impl::bind(st, 1, name);
  impl::bind(st, 2, to_string(r));
  impl::bind(st, 3, pw->hash_hex);
  impl::bind(st, 4, pw->salt_hex);
  impl::bind(st, 5, pw->kdf);
  impl::bind(st, 6, now_ms);
  impl::bind(st, 7, now_ms);
  auto n = impl_->exec(st, "add");
  if (!n) return n.err();
  return {};
}

status user_store::set_password(const std::string& name, std::string_view password, std::int64_t now_ms) {
  if (!acceptable_password(password))
    return make_error("users.weak_password", "passwords are 10..1024 characters");
  auto pw = hash_password(password, impl_->params);
  if (!pw) return pw.err();
  impl::stmt st;
  if (!impl_->prepare(
          st,
          "UPDATE users SET password_hash = ?, salt = ?, kdf = ?, failed_attempts = 0, locked = 0, "
          "updated_ms = ? WHERE name = ?"))
    return impl_->db_error("passwd");
  impl::bind(st, 1, pw->hash_hex);
  impl::bind(st, 2, pw->salt_hex);
  impl::bind(st, 3, pw->kdf);
  impl::bind(st, 4, now_ms);
  impl::bind(st, 5, name);
  auto n = impl_->exec(st, "passwd");
  if (!n) return n.err();
  if (*n == 0) return make_error("users.not_found", "no such user");
  return {};
}

status user_store::set_role(const std::string& name, role r, std::int64_t now_ms) {
  impl::stmt st;
  if (!impl_->prepare(st, "UPDATE users SET role = ?, updated_ms = ? WHERE name = ?"))
    return impl_->db_error("role");
  impl::bind(st, 1, to_string(r));
  impl::bind(st, 2, now_ms);
  impl::bind(st, 3, name);
  auto n = impl_->exec(st, "role");
  if (!n) return n.err();
  if (*n == 0) return make_error("users.not_found", "no such user");
  return {};
}

status user_store::unlock(const std::string& name, std::int64_t now_ms) {
  impl::stmt st;
  if (!impl_->prepare(st, "UPDATE users SET failed_attempts = 0, locked = 0, updated_ms = ? WHERE name = ?"))
    return impl_->db_error("unlock");
  impl::bind(st, 1, now_ms);
  impl::bind(st, 2, name);
  auto n = impl_->exec(st, "unlock");
  if (!n) return n.err();
  if (*n == 0) return make_error("users.not_found", "no such user");
  return {};
}

status user_store::remove(const std::string& name) {
  impl::stmt st;
  if (!impl_->prepare(st, "DELETE FROM users WHERE name = ?")) return impl_->db_error("remove");
  impl::bind(st, 1, name);
  auto n = impl_->exec(st, "remove");
  if (!n) return n.err();
  if (*n == 0) return make_error("users.not_found", "no such user");
  return {};
}

result<std::vector<user_row>> user_store::list() {
  impl::stmt st;
  if (!impl_->prepare(
          st, "SELECT name, role, failed_attempts, locked, created_ms, updated_ms FROM users ORDER BY name"))
    return impl_->db_error("list");
  std::vector<user_row> out;
  int rc = 0;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    user_row u;
    u.name = impl::col_text(st, 0);
    u.user_role = parse_role(impl::col_text(st, 1)).value_or(role::viewer);
    u.failed_attempts = sqlite3_column_int64(st.s, 2);
    u.locked = sqlite3_column_int64(st.s, 3) != 0;
    u.created_ms = sqlite3_column_int64(st.s, 4);
    u.updated_ms = sqlite3_column_int64(st.s, 5);
    out.push_back(std::move(u));
  }
  if (rc != SQLITE_DONE) return impl_->db_error("list");
  return out;
}

result<login_result> user_store::login(const std::string& name, std::string_view password,
                                       std::uint32_t max_failed, std::int64_t now_ms) {
  auto found = impl_->find(name);
  if (!found) return found.err();
  if (!*found) {
    (void)verify_password(password, impl_->dummy);
    return login_result{login_outcome::unknown_user, std::nullopt, false};
  }
  auto& f = **found;
  if (f.row.locked) return login_result{login_outcome::locked, std::nullopt, false};
  if (verify_password(password, f.pw)) {
    if (f.row.failed_attempts != 0) {
      impl::stmt st;
      if (!impl_->prepare(st, "UPDATE users SET failed_attempts = 0, updated_ms = ? WHERE name = ?"))
        return impl_->db_error("login");
      impl::bind(st, 1, now_ms);
      impl::bind(st, 2, name);
      auto n = impl_->exec(st, "login");
      if (!n) return n.err();
      f.row.failed_attempts = 0;
    }
    return login_result{login_outcome::ok, f.row, false};
  }
  // Counted in SQL, so two concurrent bad attempts both count.
  impl::stmt st;
  if (!impl_->prepare(st,
                      "UPDATE users SET failed_attempts = failed_attempts + 1, "
                      "locked = CASE WHEN failed_attempts + 1 >= ? THEN 1 ELSE locked END, updated_ms = ? "
                      "WHERE name = ? RETURNING locked"))
    return impl_->db_error("login");
  impl::bind(st, 1, static_cast<std::int64_t>(max_failed));
  impl::bind(st, 2, now_ms);
  impl::bind(st, 3, name);
  bool locked = false;
  if (int rc = sqlite3_step(st.s); rc == SQLITE_ROW) {
    locked = sqlite3_column_int64(st.s, 0) != 0;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
    }
  } else if (rc != SQLITE_DONE) {
    return impl_->db_error("login");
  }
  return login_result{login_outcome::bad_password, std::nullopt, locked};
}

}  // namespace eftd::server::backoffice
