// The local admin listener: a Unix domain socket (mode 0600, path from [admin] socket) that
// takes one JSON object per line and answers one JSON line each.
//
//   {"cmd":"status"}
//       -> {"ok":true,"node":"...","business_date":"YYYY-MM-DD"}
//   {"cmd":"settle","business_date":"YYYY-MM-DD","acquirer":"name"}   (both optional: today,
//                                                                      every acquirer)
//       closes each terminal's open batch under that label (settlement.hpp)
//       -> {"ok":true,"batches":[{"acquirer","terminal_id","business_date","batch_no","state",
//           "debits","debit_amount","debit_reversals","debit_reversal_amount","credits",
//           "credit_amount","credit_reversals","credit_reversal_amount","net_amount","in_doubt",
//           "response_code","uploads","already_closed","needs_attention","error"?}]}
//   {"cmd":"trace","acquirer":"name","on":true|false}      the per-link message trace
//   {"cmd":"backup","to":"/absolute/path","overwrite":false} a consistent journal copy
//       -> {"ok":true,"to","pages","bytes","steps","schema_version"}
//   {"cmd":"purge","before":"YYYY-MM-DD","dry_run":false}  journal retention (server/journal/
//       include/eftd/journal/retention.hpp): removes the finished, settled orders of business
//       dates before `before`; dry_run: only counts
//       -> {"ok":true,"before","dry_run","orders","operations","messages","events",
//           "notifications","batches","steps","kept_unsettled",
//           "kept":{"not_final","in_queue","open_case","open_batch","linked"}}
//   {"cmd":"notify_retry","id":"..."}  an expired outcome notification back to pending, with a
//       fresh maximum age, or a pending one tried at once (notifier.hpp); "endpoint":"NAME"
//       instead: every expired one of that endpoint; both: the id must be that endpoint's
//       -> {"ok":true,"id"?,"endpoint"?,"state":"pending","ids":[...],"count":N}
//   {"cmd":"audit","action","subject"?,"detail"?,"outcome"} eftctl records its own action
//   {"cmd":"user_add|user_passwd|user_role|user_unlock|user_remove|user_list",...}
//                                                           back-office users (backoffice_http.hpp)
//   {"cmd":"reload"}  re-reads the configuration file (reload.hpp): installs it, or refuses it
//       and keeps the one in force. Audited twice: "requested" first, then the outcome.
//       -> {"ok":true,"changed":["tills: added T09","limits"],"message":"..."} ("changed":[] and
//          "message":"no change" when the file says what is in force), or {"ok":false,"error":
//          {"code":"config.needs_restart|config.syntax|config.invalid|config.io|...","message"}}
//   {"cmd":"case_resolve","kind","subject","note"}          resolve a reconciliation case
//       -> {"ok":true,"key","resolved_by"} (resolution + audit record in one journal batch)
//   Every command but status and user_list is written to the audit log (actor: the peer's
//   user from SO_PEERCRED; fields that look secret stored as "***").
//   anything else -> {"ok":false,"error":{"code":"admin.bad_json|admin.bad_request|
//                     admin.unknown_cmd|admin.line_too_long","message":"..."}}
//
// Commands are a small dispatch table (admin.cpp). Only the owner of the socket file (mode
// 0600) can connect: the socket is the authentication. A socket file left by a crashed eftd
// is replaced; one a live process still answers on is left alone (eftd then runs without an
// admin listener and says so).
#pragma once

#include <filesystem>
#include <memory>

#include "context.hpp"

namespace eftd::server {

class config_reloader;
class settlement_service;

class admin_listener {
 public:
  // Binds cfg.admin.socket. nullptr (and a log line) when the socket is disabled (empty
  // path) or cannot be bound.
  static std::shared_ptr<admin_listener> open(server_context& ctx, settlement_service& settlement,
                                              config_reloader& reloader);
  ~admin_listener();

  void start();
  // Closes the listener and removes the socket file.
  void stop();
  const std::filesystem::path& path() const;

  struct impl;
  explicit admin_listener(std::shared_ptr<impl> p);

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace eftd::server
