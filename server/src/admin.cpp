#include "admin.hpp"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "accept_pacing.hpp"
#include "backoffice_http.hpp"
#include "eftd/acq/link.hpp"
#include "eftd/journal/backup.hpp"
#include "engine.hpp"
#include "ha.hpp"
#include "notifier.hpp"
#include "reload.hpp"
#include "retention.hpp"
#include "settlement.hpp"
#include "shared_files.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using unix_socket = asio::local::stream_protocol;
using json = nlohmann::json;

namespace {

// A request line longer than this is refused (and the connection closed): commands are small.
constexpr std::size_t max_line = 64 * 1024;
// A connection that sends nothing for this long is closed.
constexpr auto idle_timeout = std::chrono::minutes(5);

json error_reply(const std::string& code, const std::string& message) {
  return {{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

json to_json(const batch_result& r) {
  const auto& t = r.totals;
  json j{{"acquirer", r.acquirer},
         {"terminal_id", r.terminal_id},
         {"business_date", r.business_date},
         {"batch_no", r.batch_no},
         {"state", r.state},
         {"debits", t.debits},
         {"debit_amount", t.debit_amount},
         {"debit_reversals", t.debit_reversals},
         {"debit_reversal_amount", t.debit_reversal_amount},
         {"credits", t.credits},
         {"credit_amount", t.credit_amount},
         {"credit_reversals", t.credit_reversals},
         {"credit_reversal_amount", t.credit_reversal_amount},
         {"net_amount", t.net()},
         {"in_doubt", r.in_doubt},
         {"response_code", r.response_code},
         {"uploads", r.uploads},
         {"already_closed", r.already_final},
         // Out of balance after the upload, or refused: people must look at it.
         {"needs_attention", r.state == "out_of_balance" || r.state == "refused"}};
  if (r.problem) j["error"] = {{"code", r.problem->code}, {"message", r.problem->message}};
  return j;
}

bool valid_date(const std::string& d) {
  static const std::regex re{R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))"};
  return std::regex_match(d, re);
}

// --- audit ------------------------------------------------------------------------------------

// Commands that change nothing and are not audited. Everything else is, success or not.
bool read_only_cmd(std::string_view cmd) {
  return cmd == "status" || cmd == "user_list";
}

// Who is on the other end: the socket is owner-only, but root and the owner can both connect,
// and the audit log must name the person. The kernel's peer credentials cannot be forged.
std::string peer_user(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "unknown";
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr && pw.pw_name != nullptr)
    return std::string(pw.pw_name).substr(0, 100);
  return "uid:" + std::to_string(cred.uid);
}

// Field names whose values never go into the audit log (a password for user_passwd, keys...).
bool secret_field(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* s : {"pass", "secret", "key", "token", "pin", "pan", "track", "cvv"})
    if (n.find(s) != std::string::npos) return true;
  return false;
}

json redacted(const json& v) {
  if (!v.is_object()) return v;
  json out = json::object();
  for (const auto& [k, x] : v.items()) out[k] = secret_field(k) ? json("***") : redacted(x);
  return out;
}

// The request's arguments for people to read: secrets blanked, ASCII, within the column's limit.
std::string audit_detail(const json& req) {
  json args = redacted(req);
  args.erase("cmd");
  std::string d = args.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (d.size() > 4000) d = d.substr(0, 4000) + "...";
  return d;
}

std::string audit_subject(const json& req) {
  for (const char* k : {"acquirer", "user", "name", "to", "id", "endpoint"}) {
    auto it = req.find(k);
    if (it != req.end() && it->is_string() && !secret_field(k)) return it->get<std::string>().substr(0, 200);
  }
  return {};
}

std::string audit_outcome(const json& reply) {
  if (reply.value("ok", false)) return "ok";
  if (auto e = reply.find("error"); e != reply.end() && e->is_object()) {
    auto code = e->value("code", std::string("error"));
    return code.empty() ? "error" : code.substr(0, 100);
  }
  return "error";
}

}  // namespace

struct admin_listener::impl : std::enable_shared_from_this<impl> {
  impl(server_context& c, settlement_service& s, config_reloader& r, unix_socket::acceptor a,
       std::filesystem::path p)
      : ctx(c), settlement(s), reloader(r), acceptor(std::move(a)), path(std::move(p)) {}

  server_context& ctx;
  settlement_service& settlement;
  config_reloader& reloader;
  unix_socket::acceptor acceptor;
  std::filesystem::path path;
  // Slow, blocking admin work (a journal backup) runs here, never on the I/O threads.
  asio::thread_pool slow_work{1};

  using handler = std::function<asio::awaitable<json>(impl&, const json&)>;

  // The commands. The failover work adds its own here.
  static const std::map<std::string, handler, std::less<>>& commands() {
    static const std::map<std::string, handler, std::less<>> table{
        {"status", [](impl& self, const json&) { return self.status(); }},
        {"settle", [](impl& self, const json& req) { return self.settle(req); }},
        {"trace", [](impl& self, const json& req) { return self.trace(req); }},
        {"backup", [](impl& self, const json& req) { return self.backup(req); }},
        {"purge", [](impl& self, const json& req) { return self.purge(req); }},
        {"notify_retry", [](impl& self, const json& req) { return self.notify_retry(req); }},
        {"reload", [](impl& self, const json&) { return self.reload(); }},
        // Hot standby (ha.hpp): a planned switch and an emergency promotion.
        {"switchover", [](impl& self, const json&) { return self.ha_action(false, false); }},
        {"promote", [](impl& self, const json& req) { return self.ha_action(true, req.value("force", false)); }},
        // Back-office users (backoffice_http.hpp): run on the back office's own thread.
        {"user_add", [](impl& self, const json& req) { return self.ctx.backoffice->admin_users(req); }},
        {"user_passwd", [](impl& self, const json& req) { return self.ctx.backoffice->admin_users(req); }},
        {"user_role", [](impl& self, const json& req) { return self.ctx.backoffice->admin_users(req); }},
        {"user_unlock", [](impl& self, const json& req) { return self.ctx.backoffice->admin_users(req); }},
        {"user_remove", [](impl& self, const json& req) { return self.ctx.backoffice->admin_users(req); }},
        {"user_list", [](impl& self, const json& req) { return self.ctx.backoffice->admin_users(req); }},
    };
    return table;
  }

  asio::awaitable<json> status() {
    json j{{"ok", true}, {"node", ctx.cfg().node_name}, {"business_date", business_date_of(ctx.clock.now_ms())}};
    {
      std::lock_guard lk(ctx.tills_mu);
      j["tills_connected"] = ctx.pos_by_till.size();
    }
    {
      std::lock_guard lk(ctx.pads_mu);
      j["pads_connected"] = ctx.pads.size();
    }
    if (ctx.ha) {
      j["ha"] = json::parse(ctx.ha->status_json());
    } else {
      j["ha"] = json{{"role", "single"}};
    }
    if (ctx.shared) j["shared"] = json::parse(ctx.shared->status_json());
    co_return j;
  }

  // promote: this standby asks the witness for the role (force: an emergency, without the
  // lease and in-sync checks). switchover: this active hands over to the caught-up standby.
  asio::awaitable<json> ha_action(bool promote, bool force) {
    if (!ctx.ha) co_return error_reply("admin.no_ha", "this node has no [ha] configuration");
    auto ex = co_await asio::this_coro::executor;
    auto done = std::make_shared<std::optional<std::pair<eftd::status, std::string>>>();
    asio::steady_timer wait(ex);
    wait.expires_at(std::chrono::steady_clock::time_point::max());
    auto finish = [done, &wait, ex](eftd::status st, std::string text) {
      asio::post(ex, [done, &wait, st = std::move(st), text = std::move(text)]() mutable {
        *done = std::pair{std::move(st), std::move(text)};
        wait.cancel();
      });
    };
    if (promote)
      ctx.ha->promote(force, finish);
    else
      ctx.ha->switchover(finish);
    while (!*done) co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    auto& [st, text] = **done;
    if (!st) co_return error_reply(st.err().code, text);
    co_return json{{"ok", true}, {"message", text}, {"ha", json::parse(ctx.ha->status_json())}};
  }

  // The configuration file again (reload.hpp): installed, or refused with the reason while the
  // configuration in force stays. The reloader logs either way.
  asio::awaitable<json> reload() {
    auto r = reloader.reload();
    if (!r) co_return error_reply(r.err().code, r.err().message);
    co_return json{{"ok", true}, {"changed", *r}, {"message", describe_changes(*r)}};
  }

  // Per-link ISO 8583 message trace, switched at run time (certification): every message sent
  // and received on that acquirer's link is logged with card data masked.
  asio::awaitable<json> trace(const json& req) {
    auto a = req.find("acquirer");
    auto on = req.find("on");
    if (a == req.end() || !a->is_string() || on == req.end() || !on->is_boolean())
      co_return error_reply("admin.bad_request",
                            "trace needs \"acquirer\" (a string) and \"on\" (true/false)");
    const auto name = a->get<std::string>();
    auto link = ctx.links.find(name);
    if (link == ctx.links.end())
      co_return error_reply("admin.bad_request", "no link for acquirer '" + name + "'");
    link->second->set_trace(on->get<bool>());
    spdlog::info("admin: message trace for acquirer {} {}", name, on->get<bool>() ? "on" : "off");
    co_return json{{"ok", true}, {"acquirer", name}, {"trace", link->second->trace()}};
  }

  asio::awaitable<json> settle(const json& req) {
    std::string date = business_date_of(ctx.clock.now_ms());
    std::optional<std::string> acquirer;
    if (auto it = req.find("business_date"); it != req.end()) {
      if (!it->is_string() || !valid_date(it->get<std::string>()))
        co_return error_reply("admin.bad_request", "business_date must be a YYYY-MM-DD string");
      date = it->get<std::string>();
    }
    if (auto it = req.find("acquirer"); it != req.end()) {
      if (!it->is_string() || it->get<std::string>().empty())
        co_return error_reply("admin.bad_request", "acquirer must be a non-empty string");
      acquirer = it->get<std::string>();
      if (ctx.cfg().find_acquirer(*acquirer) == nullptr)
        co_return error_reply("admin.bad_request", "unknown acquirer '" + *acquirer + "'");
    }
    auto results = co_await settlement.settle(date, acquirer);
    json batches = json::array();
    for (const auto& r : results) batches.push_back(to_json(r));
    co_return json{{"ok", true}, {"business_date", date}, {"batches", std::move(batches)}};
  }

  // Outcome notifications back in their endpoint's queue for an attempt now (notifier.hpp,
  // notify_retry_record: an expired one with a fresh maximum age): {"cmd":"notify_retry",
  // "id":"..."} for one (expired or pending), {"cmd":"notify_retry","endpoint":"erp"} for every
  // expired one of that endpoint (in one batch); with both, the id must be that endpoint's.
  // The writer's commit hook wakes the notifiers.
  asio::awaitable<json> notify_retry(const json& req) {
    auto id = req.find("id");
    auto endpoint = req.find("endpoint");
    const bool has_id = id != req.end();
    const bool has_endpoint = endpoint != req.end();
    if ((has_id && (!id->is_string() || id->get<std::string>().empty())) ||
        (has_endpoint && !endpoint->is_string()) || (!has_id && !has_endpoint))
      co_return error_reply("admin.bad_request",
                            "notify_retry needs \"id\" (a notification id) and/or \"endpoint\" (its name)");
    if (ctx.cfg().notify.empty())
      co_return error_reply("notify.disabled", "no [[notify]] endpoint is configured");
    const config::notify_endpoint* ep = nullptr;
    if (has_endpoint) {
      const auto name = endpoint->get<std::string>();
      for (const auto& e : ctx.cfg().notify)
        if (e.name == name) ep = &e;
      if (ep == nullptr)
        co_return error_reply("admin.bad_request", "no [[notify]] endpoint named '" + name + "'");
    }
    auto reader = journal::reader::open(ctx.cfg().journal_cfg.path);
    if (!reader) co_return error_reply(reader.err().code, reader.err().message);
    std::vector<journal::notification_row> rows;
    if (has_id) {
      auto row = reader->notification(id->get<std::string>());
      if (!row) co_return error_reply(row.err().code, row.err().message);
      if (!*row) co_return error_reply("journal.not_found", "no notification " + id->get<std::string>());
      if (ep != nullptr && notify_endpoint_for(ctx.cfg().notify, (*row)->endpoint) != ep)
        co_return error_reply("admin.bad_request",
                              "notification " + id->get<std::string>() + " belongs to another endpoint");
      rows.push_back(std::move(**row));
    } else {
      // The endpoint's expired rows, and those from before v14 when it is the first endpoint.
      journal::notification_filter f;
      f.state = std::string(journal::notification_states::expired);
      f.newest_first = false;
      f.limit = 10000;
      const std::vector<std::string> names{ep->name, std::string()};
      for (const auto& name : names) {
        if (notify_endpoint_for(ctx.cfg().notify, name) != ep) continue;
        f.endpoint = name;
        auto listed = reader->list_notifications(f);
        if (!listed) co_return error_reply(listed.err().code, listed.err().message);
        rows.insert(rows.end(), listed->begin(), listed->end());
        if (name.empty()) break;
      }
    }
    const auto now = ctx.clock.now_ms();
    journal::batch b;
    json ids = json::array();
    for (const auto& n : rows) {
      auto u = notify_retry_record(n, ctx.cfg().notify, now);
      if (!u) co_return error_reply(u.err().code, u.err().message);
      b.records.emplace_back(std::move(*u));
      ids.push_back(n.notification_id);
    }
    if (!b.records.empty()) {
      auto st = co_await commit(ctx, std::move(b));
      if (!st) co_return error_reply(st.err().code, st.err().message);
    }
    spdlog::info("admin: {} notification(s) pending again for an attempt now", ids.size());
    json reply{{"ok", true}, {"state", "pending"}, {"ids", ids}, {"count", ids.size()}};
    if (has_id) reply["id"] = id->get<std::string>();
    if (ep != nullptr) reply["endpoint"] = ep->name;
    co_return reply;
  }

  // A consistent copy of the journal ({"cmd":"backup","to":"/abs/path","overwrite":false}),
  // made on a worker thread from a read connection: sales go on meanwhile.
  asio::awaitable<json> backup(const json& req) {
    auto to = req.find("to");
    if (to == req.end() || !to->is_string() || to->get<std::string>().empty() ||
        to->get<std::string>().front() != '/')
      co_return error_reply("admin.bad_request", "backup needs \"to\" (an absolute path)");
    journal::backup_options opts;
    if (auto it = req.find("overwrite"); it != req.end()) {
      if (!it->is_boolean()) co_return error_reply("admin.bad_request", "overwrite must be true or false");
      opts.overwrite = it->get<bool>();
    }
    const std::filesystem::path target = to->get<std::string>();
    auto r = co_await run_backup(target, opts);
    if (!r) co_return error_reply(r.err().code, r.err().message);
    spdlog::info("admin: journal backed up to {} ({} bytes)", target.string(), r->bytes);
    co_return json{{"ok", true},        {"to", target.string()}, {"pages", r->pages},
                   {"bytes", r->bytes}, {"steps", r->steps},     {"schema_version", r->schema_version}};
  }

  // Journal retention on request ({"cmd":"purge","before":"YYYY-MM-DD","dry_run":true}): the
  // same purge as the daily one (retention.hpp), run in steps on the journal writer's thread.
  asio::awaitable<json> purge(const json& req) {
    auto before = req.find("before");
    if (before == req.end() || !before->is_string() || !valid_date(before->get<std::string>()))
      co_return error_reply("admin.bad_request", "purge needs \"before\" (a YYYY-MM-DD string)");
    journal::purge_request pr;
    pr.before = before->get<std::string>();
    if (auto it = req.find("dry_run"); it != req.end()) {
      if (!it->is_boolean()) co_return error_reply("admin.bad_request", "dry_run must be true or false");
      pr.dry_run = it->get<bool>();
    }
    auto r = co_await purge_journal(ctx, pr);
    if (!r) co_return error_reply(r.err().code, r.err().message);
    spdlog::info("admin: journal purge {}", journal::to_string(*r));
    co_return json{{"ok", true},
                   {"before", r->before},
                   {"dry_run", r->dry_run},
                   {"orders", r->orders},
                   {"operations", r->operations},
                   {"messages", r->messages},
                   {"events", r->events},
                   {"notifications", r->notifications},
                   {"batches", r->batches},
                   {"steps", r->steps},
                   {"kept_unsettled", r->kept_unsettled()},
                   {"kept", {{"not_final", r->kept_not_final},
                             {"in_queue", r->kept_in_queue},
                             {"open_case", r->kept_open_case},
                             {"open_batch", r->kept_open_batch},
                             {"linked", r->kept_linked}}}};
  }

  asio::awaitable<result<journal::backup_stats>> run_backup(std::filesystem::path to,
                                                            journal::backup_options opts) {
    return asio::async_initiate<decltype(asio::use_awaitable), void(result<journal::backup_stats>)>(
        [this](auto handler, std::filesystem::path dst, journal::backup_options o) {
          auto ex = asio::get_associated_executor(handler);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          asio::post(slow_work, [h, ex, db = ctx.cfg().journal_cfg.path, dst = std::move(dst), o] {
            auto r = journal::backup(db, dst, o);
            asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
          });
        },
        asio::use_awaitable, std::move(to), std::move(opts));
  }

  // Appends one audit record and waits until it is durable, so that an operator never gets
  // an answer for an action the journal does not know about.
  asio::awaitable<eftd::status> write_audit(journal::audit_appended a) {
    journal::batch b;
    b.records.emplace_back(std::move(a));
    auto st = co_await commit(ctx, std::move(b));
    if (!st) spdlog::error("admin: audit record not written: {}", st.err().message);
    co_return st;
  }

  journal::audit_appended audit_record(const std::string& actor, std::string_view source,
                                       std::string action) {
    journal::audit_appended a;
    a.at_ms = ctx.clock.now_ms();
    a.actor = actor.empty() ? "unknown" : actor;
    a.source = std::string(source);
    a.action = action.substr(0, 64);
    return a;
  }

  // {"cmd":"audit","action":"backup","subject":"...","detail":{...},"outcome":"ok"}: eftctl
  // records what it did itself (e.g. a backup taken from the journal file while eftd holds the
  // writer). The actor is still the peer's user, never a name the client sends.
  asio::awaitable<json> client_audit(const json& req, const std::string& actor) {
    auto action = req.find("action");
    auto outcome = req.find("outcome");
    if (action == req.end() || !action->is_string() || action->get<std::string>().empty() ||
        outcome == req.end() || !outcome->is_string() || outcome->get<std::string>().empty())
      co_return error_reply("admin.bad_request", "audit needs \"action\" and \"outcome\" (strings)");
    auto a = audit_record(actor, journal::audit_sources::eftctl, action->get<std::string>());
    if (auto sub = req.find("subject"); sub != req.end() && sub->is_string())
      a.subject = sub->get<std::string>().substr(0, 200);
    json detail = json::object();
    if (auto d = req.find("detail"); d != req.end()) detail = d->is_object() ? *d : json{{"detail", *d}};
    a.detail = audit_detail(detail);
    a.outcome = outcome->get<std::string>().substr(0, 100);
    auto st = co_await write_audit(std::move(a));
    if (!st)
      co_return error_reply("admin.audit_failed", "the audit record was not written: " + st.err().code);
    co_return json{{"ok", true}};
  }

  asio::awaitable<json> dispatch(const std::string& line, const std::string& actor) {
    auto req = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded()) co_return error_reply("admin.bad_json", "the line is not JSON");
    if (!req.is_object()) co_return error_reply("admin.bad_request", "expected a JSON object");
    auto cmd = req.find("cmd");
    if (cmd == req.end() || !cmd->is_string())
      co_return error_reply("admin.bad_request", "expected \"cmd\" (a string)");
    const std::string name = cmd->get<std::string>();
    if (name == "audit") co_return co_await client_audit(req, actor);
    // The resolution and its audit record go into the journal in one batch (not the generic
    // audit below, which would be a second commit).
    if (name == "case_resolve") {
      // Built outside the co_await (GCC 12 coroutine temporaries, STYLE/common rules).
      auto resolving = ctx.backoffice->resolve_case(req, actor);
      co_return co_await std::move(resolving);
    }
    const auto& table = commands();
    auto it = table.find(name);
    if (it == table.end()) {
      std::string known = "audit, case_resolve";
      for (const auto& [n, h] : table) known += ", " + n;
      co_return error_reply("admin.unknown_cmd", "unknown cmd (known: " + known + ")");
    }
    if (name == "switchover") {
      // The active gives its role away during the command and can write nothing after it:
      // the request is audited first (and replicated to the standby, which keeps it).
      auto a = audit_record(actor, journal::audit_sources::admin_socket, name);
      a.subject = ctx.cfg().ha.peer.id;
      a.outcome = "requested";
      if (auto st = co_await write_audit(std::move(a)); !st)
        co_return error_reply("admin.audit_failed", "the switch-over was not started: its audit record was not written");
    }
    if (name == "reload") {
      // A configuration change is on record before it takes effect.
      auto a = audit_record(actor, journal::audit_sources::admin_socket, name);
      a.subject = reloader.file().string().substr(0, 200);
      a.outcome = "requested";
      // A standby commits nothing of its own (journal.fenced), yet its configuration must follow
      // the file too: it reloads, and the reply says "audited": false.
      const bool standby = ctx.ha && ctx.ha->role() != ha_role::active;
      if (auto st = co_await write_audit(std::move(a)); !st && !standby)
        co_return error_reply("admin.audit_failed", "the reload was not started: its audit record was not written");
    }
    json reply = co_await it->second(*this, req);
    if (!read_only_cmd(name)) {
      auto a = audit_record(actor, journal::audit_sources::admin_socket, name);
      a.subject = audit_subject(req);
      a.detail = audit_detail(req);
      if (name == "reload") {
        // What changed, or why not: the request itself carries nothing.
        a.subject = reloader.file().string().substr(0, 200);
        const auto err = reply.find("error");
        a.detail = err != reply.end() ? err->value("message", std::string()) : reply.value("message", std::string());
        if (a.detail.size() > 4000) a.detail = a.detail.substr(0, 4000) + "...";
      }
      a.outcome = audit_outcome(reply);
      if (auto st = co_await write_audit(std::move(a)); !st) reply["audited"] = false;
    }
    co_return reply;
  }

  asio::awaitable<void> session(std::shared_ptr<unix_socket::socket> conn) {
    auto self = shared_from_this();
    auto& sock = *conn;
    const std::string actor = peer_user(sock.native_handle());
    asio::steady_timer watchdog(sock.get_executor());
    std::string buf;
    for (;;) {
      // The watchdog closes a silent connection; every line rearms it. It holds the socket, so
      // a late expiry never touches a socket that is gone.
      watchdog.expires_after(idle_timeout);
      watchdog.async_wait([conn](boost::system::error_code ec) {
        if (!ec) {
          boost::system::error_code ignore;
          conn->close(ignore);
        }
      });
      auto dyn = asio::dynamic_buffer(buf, max_line);
      auto [ec, n] = co_await asio::async_read_until(sock, dyn, '\n', asio::as_tuple(asio::use_awaitable));
      watchdog.cancel();
      if (ec == asio::error::not_found) {
        std::string reply = error_reply("admin.line_too_long", "request line too long").dump() + "\n";
        co_await asio::async_write(sock, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
        break;
      }
      if (ec) break;
      std::string line = buf.substr(0, n - 1);
      buf.erase(0, n);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      json reply;
      try {
        reply = co_await dispatch(line, actor);
      } catch (const std::exception& e) {
        // Never let one bad request take the listener down.
        spdlog::error("admin: request failed: {}", e.what());
        reply = error_reply("admin.internal", "the request failed");
      }
      std::string out = reply.dump() + "\n";
      auto [wec, wn] =
          co_await asio::async_write(sock, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      if (wec) break;
    }
    boost::system::error_code ignore;
    sock.close(ignore);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    accept_failures failures("admin");
    for (;;) {
      // Each connection gets its own strand (one coroutine per connection).
      asio::any_io_executor strand = asio::make_strand(ctx.io);
      auto [ec, sock] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        if (failures.failed(ec)) {
          asio::steady_timer pause(ctx.io, accept_pause);
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        continue;
      }
      failures.accepted();
      auto conn = std::make_shared<unix_socket::socket>(std::move(sock));
      asio::co_spawn(conn->get_executor(), session(conn), [](std::exception_ptr e) {
        if (e) spdlog::error("admin: session ended by an exception");
      });
    }
  }
};

admin_listener::admin_listener(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
admin_listener::~admin_listener() = default;

std::shared_ptr<admin_listener> admin_listener::open(server_context& ctx, settlement_service& settlement,
                                                     config_reloader& reloader) {
  const auto path = ctx.cfg().admin.socket;
  if (path.empty()) {
    spdlog::info("admin socket disabled ([admin] socket is empty)");
    return nullptr;
  }
  std::error_code fec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), fec);
  boost::system::error_code ec;
  if (std::filesystem::exists(path, fec)) {
    // Someone answering there is another eftd (or anything else): leave it alone.
    unix_socket::socket probe(ctx.io);
    probe.connect(unix_socket::endpoint(path.string()), ec);
    if (!ec) {
      spdlog::warn("admin socket {} is in use by another process; running without an admin listener",
                   path.string());
      return nullptr;
    }
    std::filesystem::remove(path, fec);  // left by a process that died
  }
  unix_socket::acceptor acc(ctx.io);
  acc.open(unix_socket(), ec);
  // Owner only from the first moment: the umask covers the window before the chmod.
  const mode_t old_mask = ::umask(0177);
  if (!ec) acc.bind(unix_socket::endpoint(path.string()), ec);
  ::umask(old_mask);
  if (!ec) ::chmod(path.c_str(), 0600);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::error("admin socket {}: {}; running without an admin listener", path.string(), ec.message());
    return nullptr;
  }
  spdlog::info("admin socket listening on {}", path.string());
  return std::make_shared<admin_listener>(std::make_shared<impl>(ctx, settlement, reloader, std::move(acc), path));
}

void admin_listener::start() {
  auto p = impl_;
  asio::co_spawn(p->ctx.io, p->accept_loop(), [](std::exception_ptr e) {
    if (e) spdlog::error("admin listener stopped by an exception");
  });
}

void admin_listener::stop() {
  boost::system::error_code ignore;
  impl_->acceptor.close(ignore);
  std::error_code fec;
  std::filesystem::remove(impl_->path, fec);
}

const std::filesystem::path& admin_listener::path() const {
  return impl_->path;
}

}  // namespace eftd::server
