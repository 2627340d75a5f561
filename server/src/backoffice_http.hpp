// The back-office service: HTTPS pages for staff ([listen.backoffice]) and the user commands of
// the admin socket. It runs on a thread and io_context of its own, with its own journal reader
// and users-table connection, so report queries and password hashing (scrypt, ~0.1 s) never
// hold up a transaction on the engine's threads.
//
// Routes (all but /login and /static/app.css need a logged-in session; POSTs need the
// session's CSRF token in the form field "csrf", else 403):
//   GET  /login, POST /login, POST /logout
//   GET  /transactions[?filters&page=N&format=csv|json], POST /transactions/by-card (full PAN:
//        hashed with the journal's search key, then a redirect with pan_hash only)
//   GET  /transactions/<order id>[?format=csv|json]   the order, operations, messages, events
//   GET  /settlement, /cases, /status, /status/pads, /status/tills, /charts [?format=csv|json]
//   GET  /users (supervisor), POST /users (admin: add), POST /users/unlock (supervisor)
//   GET  /cases?status=open|resolved|all, POST /cases/resolve (supervisor: kind, subject, note)
//   GET  /settlement/file, POST /settlement/file (multipart: csrf, layout, format, file; at most
//        16 MiB, else 413): an acquirer's settlement file matched against the journal
// Operator actions (logins, failures, lockouts, logouts, user changes) go to the journal's
// audit log (source "web" or "admin-socket").
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "context.hpp"

namespace eftd::server::backoffice {

class service {
 public:
  // Opens the reader and the users table and, when [listen.backoffice] is set, binds the
  // listener and loads (or makes) its certificate. Start-up errors: backoffice.tls,
  // backoffice.listen, users.db, journal.*.
  static result<std::shared_ptr<service>> open(server_context& ctx);
  ~service();

  // 0 without a listener.
  std::uint16_t port() const;
  // SHA-256 fingerprint of the served certificate ("AB:CD:..."), empty without a listener.
  const std::string& fingerprint() const;

  void start();
  void stop();  // idempotent; joins the thread

  // Admin socket: {"cmd":"user_add","name","role","password"}, user_passwd {name, password},
  // user_role {name, role}, user_unlock {name}, user_remove {name}, user_list {} ->
  // {"ok":true,...} or {"ok":false,"error":{code,message}}. Runs on the service's thread and
  // resumes on the caller's executor.
  boost::asio::awaitable<nlohmann::json> admin_users(nlohmann::json request);

  // Admin socket: {"cmd":"case_resolve","kind","subject","note"} resolved as `actor` (the
  // peer's user). The resolution and its audit record are one journal batch. Errors:
  // cases.bad_request, cases.not_found, journal.state_conflict (already resolved), journal.*.
  boost::asio::awaitable<nlohmann::json> resolve_case(nlohmann::json request, std::string actor);

  struct impl;

 private:
  service(std::shared_ptr<impl> p, std::unique_ptr<boost::asio::io_context> io);
  std::shared_ptr<impl> impl_;
  // Declared last, destroyed first (after stop() joined the thread): destroying it destroys the
  // suspended connection coroutines, which release impl_.
  std::unique_ptr<boost::asio::io_context> io_;
};

}  // namespace eftd::server::backoffice
