// Back-office authentication pieces without I/O of their own: password hashing (scrypt from
// OpenSSL), users in the journal's `users` table, web sessions with CSRF tokens, cookie
// parsing and HTML escaping. The HTTPS listener (backoffice_http.hpp) and the admin socket's
// user commands are built on these; tests drive them directly with an injected clock.
//
// Error codes: users.bad_name, users.bad_role, users.weak_password, users.exists,
// users.not_found, users.db (the table cannot be read or written), users.kdf.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd::server::backoffice {

// scrypt cost (RFC 7914). The default costs about 32 MiB and ~0.1 s per check: slow for an
// offline guesser, still fine for a person logging in.
struct kdf_params {
  std::uint64_t n = 32768;
  std::uint32_t r = 8;
  std::uint32_t p = 1;
  friend bool operator==(const kdf_params&, const kdf_params&) = default;
};

// Raw scrypt via EVP_PBE_scrypt. Errors: users.kdf (bad parameters, out of memory).
result<bytes> scrypt(std::string_view password, byte_view salt, const kdf_params& params,
                     std::size_t out_len);

// "scrypt:N=32768,r=8,p=1" as stored in users.kdf, and back.
std::string kdf_name(const kdf_params& params);
std::optional<kdf_params> parse_kdf_name(std::string_view name);

// What the users table keeps of a password: lower-case hex hash and salt, and the parameters.
struct password_record {
  std::string hash_hex;
  std::string salt_hex;
  std::string kdf;
};

// A fresh random 16-byte salt and a 32-byte scrypt hash.
result<password_record> hash_password(std::string_view password, const kdf_params& params);
// Recomputes with the record's own salt and parameters; compares in constant time.
bool verify_password(std::string_view password, const password_record& record);

// Equal length and content, in time independent of where they differ (CRYPTO_memcmp).
bool constant_time_equal(std::string_view a, std::string_view b);
// `n` bytes from the OpenSSL CSPRNG as lower-case hex (session ids and CSRF tokens: n = 32).
std::string random_token(std::size_t n = 32);

// Text and attribute values: & < > " ' are replaced by entities.
std::string html_escape(std::string_view text);
// "Cookie: a=1; b=2" -> {a:1, b:2}. Malformed pairs are skipped; the first of a repeated
// name wins (a browser sends the most specific cookie first).
std::map<std::string, std::string, std::less<>> parse_cookies(std::string_view header);

enum class role { viewer, supervisor, admin };
std::string_view to_string(role r) noexcept;
std::optional<role> parse_role(std::string_view s) noexcept;
// May `have` do what needs `need`? admin > supervisor > viewer.
bool role_allows(role have, role need) noexcept;

// 1..64 of letters, digits, '.', '-', '_', '@'.
bool valid_user_name(std::string_view name) noexcept;
// 10..1024 bytes: length is what makes a password strong enough; no composition rules.
bool acceptable_password(std::string_view password) noexcept;

// --- sessions -------------------------------------------------------------------------------

struct session {
  std::string id;    // 64 hex digits (256 random bits), the cookie value
  std::string user;  // empty: not logged in yet (a login form's session, for its CSRF token)
  role user_role = role::viewer;
  std::string csrf;  // 64 hex digits, one per session, in every form
  std::int64_t last_seen_ms = 0;
};

// Sessions in memory (a restart logs everybody out). A session unused for idle_ms is gone.
// Thread-safe.
class session_store {
 public:
  session_store(std::int64_t idle_ms, std::function<std::int64_t()> now_ms, std::size_t max_sessions = 10000);

  session create(std::string user, role r);
  // The live session with this id, its idle clock restarted; nullopt if unknown or idle too long
  // (an expired session is removed).
  std::optional<session> touch(std::string_view id);
  void remove(std::string_view id);
  std::size_t size() const;
  std::int64_t idle_ms() const noexcept { return idle_ms_; }

  // The form's token matches the session's (constant time).
  static bool csrf_ok(const session& s, std::string_view token);

 private:
  void evict_expired_locked(std::int64_t now);
  mutable std::mutex mu_;
  std::int64_t idle_ms_;
  std::function<std::int64_t()> now_ms_;
  std::size_t max_sessions_;
  std::map<std::string, session, std::less<>> sessions_;
};

// --- users ----------------------------------------------------------------------------------

struct user_row {
  std::string name;
  role user_role = role::viewer;
  std::int64_t failed_attempts = 0;
  bool locked = false;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

enum class login_outcome { ok, bad_password, locked, unknown_user };

struct login_result {
  login_outcome outcome = login_outcome::bad_password;
  std::optional<user_row> user;  // set for ok
  bool locked_now = false;       // this failure reached the limit and locked the account
};

// The journal's users table over its own SQLite connection (the journal writer must have
// migrated the database first). Writes are rare and short; SQLite serialises them with the
// journal writer's transactions (busy timeout 5 s). Not thread-safe: one per thread.
class user_store {
 public:
  static result<std::unique_ptr<user_store>> open(const std::filesystem::path& db, kdf_params params = {});
  ~user_store();
  user_store(const user_store&) = delete;
  user_store& operator=(const user_store&) = delete;

  status add(const std::string& name, role r, std::string_view password, std::int64_t now_ms);
  // A new password also clears the failed-attempt counter and the lock.
  status set_password(const std::string& name, std::string_view password, std::int64_t now_ms);
  status set_role(const std::string& name, role r, std::int64_t now_ms);
  status unlock(const std::string& name, std::int64_t now_ms);
  status remove(const std::string& name);
  result<std::vector<user_row>> list();

  // Checks a password. A locked account is refused without looking at the password. Each bad
  // password adds one failed attempt; the max_failed-th locks the account; a good one resets
  // the counter. An unknown name costs the same KDF time as a known one.
  result<login_result> login(const std::string& name, std::string_view password, std::uint32_t max_failed,
                             std::int64_t now_ms);

 private:
  struct impl;
  explicit user_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eftd::server::backoffice
