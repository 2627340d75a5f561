#include "backoffice_http.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <thread>

#include "accept_pacing.hpp"
#include "backoffice_auth.hpp"
#include "backoffice_pages.hpp"
#include "backoffice_settlement_file.hpp"
#include "eftd/core/card.hpp"
#include "eftd/journal/card_data.hpp"
#include "eftd/reports/orders.hpp"
#include "eftd/reports/reports.hpp"
#include "engine.hpp"
#include "notifier.hpp"

namespace eftd::server::backoffice {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

namespace {

constexpr std::string_view cookie_name = "__Host-eftd";
// A request must arrive complete within this; an idle keep-alive connection is closed after it.
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr auto handshake_timeout = std::chrono::seconds(10);
constexpr std::size_t max_body = 64 * 1024;

// --- certificate ------------------------------------------------------------------------------

struct pem_pair {
  std::string cert;
  std::string key;
};

std::string bio_string(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A P-256 key and a self-signed certificate for localhost (valid one year from now), made at
// every start when no certificate is configured: staff compare the logged fingerprint.
result<pem_pair> make_self_signed() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  if (!key || !x) return make_error("backoffice.tls", "cannot make a key for the self-signed certificate");
  X509_set_version(x.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return make_error("backoffice.tls", "no random serial");
  serial[0] &= 0x7F;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(serial, sizeof serial, nullptr), BN_free);
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 365L * 24 * 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("eftd back office"), -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
        std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) return make_error("backoffice.tls", "cannot add a certificate extension");
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0)
    return make_error("backoffice.tls", "cannot sign the self-signed certificate");
  std::unique_ptr<BIO, decltype(&BIO_free)> cb(BIO_new(BIO_s_mem()), BIO_free),
      kb(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(cb.get(), x.get());
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return pem_pair{bio_string(cb.get()), bio_string(kb.get())};
}

std::string sha256_fingerprint(X509* x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (x == nullptr || X509_digest(x, EVP_sha256(), md, &n) != 1) return {};
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += fmt::format("{}{:02X}", i ? ":" : "", md[i]);
  return out;
}

json error_json(const std::string& code, const std::string& message) {
  return {{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::string> opt(const params& q, std::string_view key) {
  auto it = q.find(key);
  if (it == q.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

using response = http::response<http::string_body>;
using request = http::request<http::string_body>;

struct service::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& i, server_context& c, journal::reader r, std::unique_ptr<user_store> u)
      : ctx(c),
        io(i),
        reader(std::move(r)),
        users(std::move(u)),
        sessions(static_cast<std::int64_t>(c.cfg().backoffice_web.session_idle_s) * 1000, c.clock.now_ms),
        tls(ssl::context::tls_server) {}

  server_context& ctx;
  // Owned by the service object, not here: coroutine frames hold this impl, and destroying the
  // io_context is what destroys them (no ownership cycle).
  asio::io_context& io;
  // Used on the service thread only.
  journal::reader reader;
  std::unique_ptr<user_store> users;
  session_store sessions;
  ssl::context tls;
  std::optional<tcp::acceptor> acceptor;
  std::string fingerprint;
  std::thread thread;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  bool stopped = false;

  std::int64_t now() const { return ctx.clock.now_ms(); }

  void audit(const std::string& actor, std::string_view source, const std::string& action,
             const std::string& subject, const std::string& detail, const std::string& outcome) {
    spdlog::info("audit: {} {} by '{}' on '{}': {}{}{}", source, action, actor, subject, outcome,
                 detail.empty() ? "" : ", ", detail);
    if (!ctx.journal) return;
    journal::audit_appended a;
    a.at_ms = now();
    a.actor = actor.empty() ? "-" : actor;
    a.source = std::string(source);
    a.action = action;
    a.subject = subject;
    a.detail = detail;
    a.outcome = outcome;
    ctx.journal->append_audit(std::move(a), [action](eftd::status st) {
      if (!st) spdlog::error("audit log: '{}' not recorded: {}", action, st.err().message);
    });
  }

  // --- responses ------------------------------------------------------------------------------

  static void security_headers(response& res) {
    res.set(http::field::server, "eftd");
    res.set("Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'");
    res.set("X-Frame-Options", "DENY");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set(http::field::cache_control, "no-store");
    res.set("Strict-Transport-Security", "max-age=31536000");
  }

  static response make(const request& req, http::status st, std::string_view type, std::string body) {
    response res{st, req.version()};
    security_headers(res);
    res.set(http::field::content_type, type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }
  static response html(const request& req, http::status st, std::string body) {
    return make(req, st, "text/html; charset=utf-8", std::move(body));
  }
  static response redirect(const request& req, std::string_view to) {
    auto res =
        make(req, http::status::see_other, "text/plain; charset=utf-8", "see " + std::string(to) + "\n");
    res.set(http::field::location, to);
    return res;
  }
  static response forbidden(const request& req, std::string_view why) {
    return html(req, http::status::forbidden, message_page("Forbidden", why));
  }
  static response export_body(const request& req, reports::format f, std::string body,
                              std::string_view name) {
    auto res = make(req, http::status::ok,
                    f == reports::format::csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
                    std::move(body));
    res.set(http::field::content_disposition,
            fmt::format("attachment; filename=\"{}.{}\"", name, f == reports::format::csv ? "csv" : "json"));
    return res;
  }
  static void set_cookie(response& res, const std::string& id) {
    res.set(http::field::set_cookie,
            fmt::format("{}={}; Path=/; Secure; HttpOnly; SameSite=Strict", cookie_name, id));
  }
  static void clear_cookie(response& res) {
    res.set(http::field::set_cookie,
            fmt::format("{}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", cookie_name));
  }

  // --- requests -------------------------------------------------------------------------------

  std::optional<session> current_session(const request& req) {
    auto it = req.find(http::field::cookie);
    if (it == req.end()) return std::nullopt;
    auto cookies = parse_cookies(it->value());
    auto c = cookies.find(cookie_name);
    if (c == cookies.end()) return std::nullopt;
    return sessions.touch(c->second);
  }

  response handle(const request& req, const std::string& peer) {
    const std::string_view target(req.target().data(), req.target().size());
    const auto qpos = target.find('?');
    const std::string path(target.substr(0, qpos));
    const params q =
        parse_form(qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1));
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    const bool post = req.method() == http::verb::post;
    if (!get && !post) {
      auto res =
          html(req, http::status::method_not_allowed, message_page("Method not allowed", "GET or POST only"));
      res.set(http::field::allow, "GET, HEAD, POST");
      return res;
    }
    if (path == "/static/app.css" && get)
      return make(req, http::status::ok, "text/css", std::string(stylesheet()));

    auto s = current_session(req);
    const params form = post ? form_fields(req) : params{};
    // Every POST carries the session's CSRF token, the login form's too.
    if (post) {
      auto t = form.find("csrf");
      if (!s || t == form.end() || !session_store::csrf_ok(*s, t->second))
        return forbidden(
            req, "The form has expired or did not come from this site. Reload the page and try again.");
    }
    if (path == "/login") return post ? login(req, *s, form, peer) : login_form(req, s);
    if (!s || s->user.empty()) {
      if (post) return forbidden(req, "Not logged in.");
      return redirect(req, "/login");
    }
    if (path == "/logout" && post) {
      sessions.remove(s->id);
      audit(s->user, journal::audit_sources::web, "logout", s->user, "from " + peer, "ok");
      auto res = redirect(req, "/login");
      clear_cookie(res);
      return res;
    }
    if (path == "/" && get) return redirect(req, "/transactions");
    if (path == "/transactions" && get) return transactions(req, *s, q);
    if (path == "/transactions/by-card" && post) return by_card(req, form);
    if (path.starts_with("/transactions/") && get) return detail(req, *s, path.substr(14), q);
    if (path == "/settlement" && get) return settlement(req, *s, q);
    if (path == "/settlement/file") return settlement_file(req, *s, post);
    if (path == "/cases" && get) return cases(req, *s, q);
    if (path == "/cases/resolve" && post) return cases_resolve(req, *s, form);
    if ((path == "/status" || path == "/status/pads" || path == "/status/tills") && get)
      return status_pages(req, *s, path, q);
    if (path == "/charts" && get) return charts(req, *s, q);
    if (path == "/notifications" && get) return notifications(req, *s);
    if (path == "/notifications/retry" && post) return notifications_retry(req, *s, form);
    if (path == "/users" && get) return users_list(req, *s, "");
    if (path == "/users" && post) return users_add(req, *s, form);
    if (path == "/users/unlock" && post) return users_unlock(req, *s, form);
    return html(req, http::status::not_found, message_page("Not found", "There is no page here."));
  }

  response login_form(const request& req, const std::optional<session>& s) {
    if (s && !s->user.empty()) return redirect(req, "/transactions");
    // An anonymous session carries the login form's CSRF token.
    session anon = s ? *s : sessions.create("", role::viewer);
    auto res = html(req, http::status::ok, login_page(anon.csrf, ""));
    if (!s) set_cookie(res, anon.id);
    return res;
  }

  response login(const request& req, const session& anon, const params& form, const std::string& peer) {
    const std::string name = form.count("user") ? form.at("user") : std::string();
    const std::string password = form.count("password") ? form.at("password") : std::string();
    auto r = users->login(name, password, ctx.cfg().backoffice_web.lockout_after, now());
    if (!r) {
      spdlog::error("back office: login failed on the users table: {}", r.err().message);
      return html(req, http::status::service_unavailable,
                  login_page(anon.csrf, "Login is unavailable right now."));
    }
    const std::string who = valid_user_name(name) ? name : std::string("(invalid name)");
    if (r->outcome == login_outcome::ok) {
      // A new session id at login: a session id known before login (fixation) is worthless.
      sessions.remove(anon.id);
      auto s = sessions.create(r->user->name, r->user->user_role);
      audit(s.user, journal::audit_sources::web, "login", s.user, "from " + peer, "ok");
      auto res = redirect(req, "/transactions");
      set_cookie(res, s.id);
      return res;
    }
    if (r->outcome == login_outcome::locked) {
      audit(who, journal::audit_sources::web, "login", who, "from " + peer, "users.locked");
      return html(req, http::status::forbidden,
                  login_page(anon.csrf,
                             "This account is locked after too many failed attempts. Ask an administrator."));
    }
    audit(who, journal::audit_sources::web, "login", who, "from " + peer,
          r->outcome == login_outcome::unknown_user ? "users.unknown" : "users.bad_password");
    if (r->locked_now)
      audit(who, journal::audit_sources::web, "lockout", who,
            fmt::format("{} failed attempts", ctx.cfg().backoffice_web.lockout_after), "locked");
    return html(req, http::status::unauthorized, login_page(anon.csrf, "Wrong user name or password."));
  }

  // Request parameters -> report filter; a bad value is a message for the page.
  std::optional<std::string> to_filter(const params& q, reports::transaction_filter& f) {
    f.business_date_from = opt(q, "date_from");
    f.business_date_to = opt(q, "date_to");
    f.store_id = opt(q, "store");
    f.till_id = opt(q, "till");
    f.operator_id = opt(q, "operator");
    f.order_no = opt(q, "order");
    f.scheme = opt(q, "scheme");
    f.entry_mode = opt(q, "entry_mode");
    f.currency = opt(q, "currency");
    f.kind = opt(q, "kind");
    f.state = opt(q, "state");
    f.result_code = opt(q, "result_code");
    f.response_code = opt(q, "response_code");
    f.acquirer = opt(q, "acquirer");
    f.terminal_id = opt(q, "terminal");
    f.pan_hash = opt(q, "pan_hash");
    if (auto pad = opt(q, "pad")) {
      for (const auto& t : ctx.cfg().tills)
        if (t.pad == *pad) f.till_ids.push_back(t.id);
      if (f.till_ids.empty()) f.till_ids.push_back("\x01no till has this pad");
    }
    if (auto card = opt(q, "card")) {
      if (card->size() == 4 &&
          std::all_of(card->begin(), card->end(), [](char c) { return c >= '0' && c <= '9'; }))
        f.pan_last4 = *card;
      else if (card->find('*') != std::string::npos)
        f.pan_masked = *card;
      else
        return "Card: give the last 4 digits or the masked number as shown (e.g. 476173******0119); search a "
               "full "
               "card number with the card form.";
    }
    for (auto [key, out] : {std::pair{"amount_min", &f.amount_min}, std::pair{"amount_max", &f.amount_max}}) {
      if (auto a = opt(q, key)) {
        auto v = parse_major(*a);
        if (!v) return fmt::format("{}: an amount like 12.50", key);
        *out = *v;
      }
    }
    if (auto bd = opt(q, "batch_date")) {
      if (!f.acquirer || !f.terminal_id)
        return "Batch: give the acquirer and terminal id with the batch date.";
      reports::batch_ref b;
      b.acquirer = *f.acquirer;
      b.terminal_id = *f.terminal_id;
      b.business_date = *bd;
      f.batch = std::move(b);
    }
    if (auto so = opt(q, "sort")) {
      auto sb = reports::parse_sort(*so);
      if (!sb) return sb.err().message;
      f.sort = *sb;
    }
    f.descending = opt(q, "dir").value_or("desc") != "asc";
    std::uint32_t page = 1;
    if (auto p = opt(q, "page")) {
      auto [ptr, ec] = std::from_chars(p->data(), p->data() + p->size(), page);
      if (ec != std::errc{} || page == 0 || page > 100000) return "page: a number from 1";
    }
    f.limit = ctx.cfg().backoffice_web.page_size;
    f.offset = (page - 1) * f.limit;
    if (auto st = reports::validate(f); !st) return st.err().message;
    return std::nullopt;
  }

  std::optional<reports::format> export_format(const params& q) {
    auto f = opt(q, "format");
    if (f == "csv") return reports::format::csv;
    if (f == "json") return reports::format::json;
    return std::nullopt;
  }

  response journal_error(const request& req, const error& e) {
    spdlog::error("back office: journal read failed: {}", e.message);
    return html(req, http::status::internal_server_error,
                message_page("Journal unavailable", "The journal could not be read; see the server log."));
  }

  response transactions(const request& req, const session& s, const params& q) {
    reports::transaction_filter f;
    auto problem = to_filter(q, f);
    const auto fmt_ = export_format(q);
    if (problem) {
      if (fmt_) return make(req, http::status::bad_request, "text/plain; charset=utf-8", *problem + "\n");
      return html(req, http::status::bad_request, search_page(s, q, {}, *problem));
    }
    if (fmt_) {
      f.offset = 0;
      f.limit = 10000;
    }
    auto page = reports::search_transactions(reader, f);
    if (!page) return journal_error(req, page.err());
    if (fmt_) return export_body(req, *fmt_, reports::render_transactions(*page, *fmt_), "transactions");
    return html(req, http::status::ok, search_page(s, q, *page, ""));
  }

  response by_card(const request& req, const params& form) {
    auto it = form.find("pan");
    auto p = eftd::pan::parse(it == form.end() ? std::string_view{} : std::string_view(it->second));
    if (!p) return redirect(req, "/transactions?card=invalid");
    const auto hash = journal::search_hash(ctx.keys, *p);
    return redirect(req, "/transactions?pan_hash=" + hash);
  }

  response detail(const request& req, const session& s, const std::string& order_id, const params& q) {
    auto v = reader.order_detail(order_id);
    if (!v) return journal_error(req, v.err());
    if (!*v)
      return html(req, http::status::not_found, message_page("Not found", "No transaction with that id."));
    if (auto f = export_format(q))
      return export_body(req, *f, reports::render_order_detail(**v, *f), "transaction");
    return html(req, http::status::ok, detail_page(s, **v));
  }

  response settlement(const request& req, const session& s, const params& q) {
    reports::settlement_filter f;
    f.business_date_from = opt(q, "date_from");
    f.business_date_to = opt(q, "date_to");
    f.acquirer = opt(q, "acquirer");
    f.terminal_id = opt(q, "terminal");
    auto rows = reports::settlement_report(reader, f);
    if (!rows) return journal_error(req, rows.err());
    if (auto fm = export_format(q))
      return export_body(req, *fm, reports::render_settlement(*rows, *fm), "settlement");
    return html(req, http::status::ok, settlement_page(s, q, *rows));
  }

  // The fields of a form body: URL-encoded, or the text parts of multipart/form-data (file
  // parts are left to their page), so the CSRF check reads both alike.
  static params form_fields(const request& req) {
    const std::string_view type(req[http::field::content_type].data(), req[http::field::content_type].size());
    auto parts = parse_multipart(type, req.body());
    if (!parts) return parse_form(req.body());
    params out;
    for (const auto& p : *parts)
      if (!p.filename) out.emplace(p.name, std::string(p.body));
    return out;
  }

  // GET: the upload form; POST (multipart/form-data: csrf, layout, format, file): the match.
  response settlement_file(const request& req, const session& s, bool post) {
    if (!post) return html(req, http::status::ok, settlement_file_form(s, ""));
    const std::string_view type(req[http::field::content_type].data(), req[http::field::content_type].size());
    auto parts = parse_multipart(type, req.body());
    if (!parts)
      return html(req, http::status::bad_request,
                  settlement_file_form(s, "Send the file as a form upload (multipart/form-data)."));
    std::string layout_name = "fixed-width", format = "html";
    std::string_view file;
    for (const auto& p : *parts) {
      if (p.name == "layout") layout_name = std::string(p.body);
      if (p.name == "format") format = std::string(p.body);
      if (p.name == "file") file = p.body;
    }
    auto r = settlement_file_match(s, ctx.cfg().journal_cfg.path, layout_name, file, format);
    auto res = make(req, static_cast<http::status>(r.status), r.content_type, std::move(r.body));
    if (!r.attachment.empty())
      res.set(http::field::content_disposition, fmt::format("attachment; filename=\"{}\"", r.attachment));
    return res;
  }

  response cases(const request& req, const session& s, const params& q, std::string_view message = {},
                 http::status code = http::status::ok) {
    reports::case_filter f;
    f.business_date_from = opt(q, "date_from");
    f.business_date_to = opt(q, "date_to");
    f.kind = opt(q, "kind");
    f.now_ms = now();
    if (auto st = opt(q, "status")) {
      auto cs = reports::parse_case_status(*st);
      if (!cs) return html(req, http::status::bad_request, message_page("Bad request", cs.err().message));
      f.status = *cs;
    }
    auto rows = reports::list_cases(reader, f);
    if (!rows) return journal_error(req, rows.err());
    if (auto fm = export_format(q)) return export_body(req, *fm, reports::render_cases(*rows, *fm), "cases");
    return html(req, code, cases_page(s, q, *rows, message));
  }

  // Resolving closes a case for everybody: supervisors and administrators, not viewers.
  response cases_resolve(const request& req, const session& s, const params& form) {
    if (!role_allows(s.user_role, role::supervisor))
      return forbidden(req, "Supervisors and administrators only.");
    auto field = [&](const char* k) { return form.count(k) ? form.at(k) : std::string(); };
    auto st =
        resolve_case(field("kind"), field("subject"), field("note"), s.user, journal::audit_sources::web);
    if (st) return cases(req, s, {}, "Case " + field("kind") + ":" + field("subject") + " resolved.");
    const auto code = st.err().code == "journal.state_conflict" ? http::status::conflict
                      : st.err().code == "cases.not_found"      ? http::status::not_found
                      : st.err().code == "cases.bad_request"    ? http::status::bad_request
                                                                : http::status::internal_server_error;
    return cases(req, s, {}, st.err().message, code);
  }

  // One case resolved by `actor`: it must be listed now (any status), and the resolution and
  // its audit record are written in one batch, durable before the answer. A failed attempt is
  // audited on its own. Errors: cases.bad_request, cases.not_found, journal.state_conflict
  // (already resolved), journal.*.
  eftd::status resolve_case(const std::string& kind, const std::string& subject, const std::string& note,
                            const std::string& actor, std::string_view source) {
    auto attempt = [&]() -> eftd::status {
      if (kind.empty() || kind.size() > 64 || subject.empty() || subject.size() > 128)
        return make_error("cases.bad_request", "give the case's kind and subject (as listed)");
      if (note.empty() || note.size() > 2000)
        return make_error("cases.bad_request", "give a note (1 to 2000 characters) saying what was done");
      if (!ctx.journal) return make_error("journal.closed", "the journal is not open for writing");
      reports::case_filter f;
      f.kind = kind;
      f.status = reports::case_status::all;
      f.now_ms = now();
      auto rows = reports::list_cases(reader, f);
      if (!rows) return rows.err();
      auto it = std::find_if(rows->begin(), rows->end(),
                             [&](const reports::case_row& c) { return c.subject_id() == subject; });
      if (it == rows->end()) return make_error("cases.not_found", "no such case: " + kind + ":" + subject);
      if (it->resolved_ms)
        return make_error("journal.state_conflict",
                          fmt::format("the case {} is already resolved (by {} at {} UTC)", it->key,
                                      it->resolved_by, format_time(*it->resolved_ms)));
      journal::batch b;
      journal::case_resolved r;
      r.case_kind = kind;
      r.subject_id = subject;
      r.resolved_ms = now();
      r.actor = actor.empty() ? "-" : actor;
      r.note = note;
      b.records.emplace_back(std::move(r));
      journal::audit_appended a;
      a.at_ms = now();
      a.actor = actor.empty() ? "-" : actor;
      a.source = std::string(source);
      a.action = "case_resolve";
      a.subject = kind + ":" + subject;
      a.detail = note;
      a.outcome = "ok";
      b.records.emplace_back(std::move(a));
      return ctx.journal->submit_sync(std::move(b));
    };
    auto st = attempt();
    if (st) {
      spdlog::info("audit: {} case_resolve by '{}' on '{}:{}': ok", source, actor, kind, subject);
      return st;
    }
    audit(actor, source, "case_resolve", (kind + ":" + subject).substr(0, 200), note.substr(0, 2000),
          st.err().code);
    return st;
  }

  response status_pages(const request& req, const session& s, const std::string& path, const params& q) {
    const std::string date = opt(q, "date").value_or(business_date_of(now()));
    auto pads = reader.pad_health();
    if (!pads) return journal_error(req, pads.err());
    auto tills = reports::till_status(reader, date);
    if (!tills) return journal_error(req, tills.err());
    auto fm = export_format(q);
    if (fm && path == "/status/pads")
      return export_body(req, *fm, reports::render_pads(*pads, *fm, now()), "pads");
    if (fm && path == "/status/tills")
      return export_body(req, *fm, reports::render_tills(*tills, *fm), "tills");
    return html(req, http::status::ok, status_page(s, date, *pads, *tills, now()));
  }

  // "Retry now" (supervisors and administrators): the same change as the admin socket's
  // notify_retry (notifier.hpp, notify_retry_record), written with its audit record in one
  // batch; a refused attempt is audited on its own.
  response notifications_retry(const request& req, const session& s, const params& form) {
    if (!role_allows(s.user_role, role::supervisor))
      return forbidden(req, "Supervisors and administrators only.");
    const std::string id = form.count("id") ? form.at("id") : std::string();
    auto attempt = [&]() -> eftd::status {
      if (id.empty() || id.size() > 64) return make_error("admin.bad_request", "give the notification's id");
      if (ctx.cfg().notify.empty())
        return make_error("notify.disabled", "no [[notify]] endpoint is configured");
      if (!ctx.journal) return make_error("journal.closed", "the journal is not open for writing");
      auto row = reader.notification(id);
      if (!row) return row.err();
      if (!*row) return make_error("journal.not_found", "no notification " + id);
      auto u = notify_retry_record(**row, ctx.cfg().notify, now());
      if (!u) return u.err();
      journal::batch b;
      b.records.emplace_back(std::move(*u));
      journal::audit_appended a;
      a.at_ms = now();
      a.actor = s.user.empty() ? "-" : s.user;
      a.source = std::string(journal::audit_sources::web);
      a.action = "notify_retry";
      a.subject = id;
      a.detail = "endpoint " + ((*row)->endpoint.empty() ? std::string("(default)") : (*row)->endpoint) +
                 ", was " + (*row)->state;
      a.outcome = "ok";
      b.records.emplace_back(std::move(a));
      return ctx.journal->submit_sync(std::move(b));
    };
    auto st = attempt();
    if (st) {
      spdlog::info("audit: web notify_retry by '{}' on '{}': ok", s.user, id);
      return notifications(req, s, "Notification " + id + " is pending, to be sent now.");
    }
    audit(s.user, journal::audit_sources::web, "notify_retry", id.substr(0, 200), "", st.err().code);
    const auto code = st.err().code == "journal.state_conflict" || st.err().code == "notify.already_delivered"
                          ? http::status::conflict
                      : st.err().code == "journal.not_found" ? http::status::not_found
                      : st.err().code == "admin.bad_request" || st.err().code == "notify.disabled" ||
                              st.err().code == "notify.unknown_endpoint"
                          ? http::status::bad_request
                          : http::status::internal_server_error;
    return notifications(req, s, st.err().message, code);
  }

  response notifications(const request& req, const session& s, std::string_view message = {},
                         http::status code = http::status::ok) {
    auto counts = reader.notification_counts();
    if (!counts) return journal_error(req, counts.err());
    journal::notification_filter f;
    f.limit = 50;
    f.state = "pending";
    f.newest_first = false;
    auto pending = reader.list_notifications(f);
    if (!pending) return journal_error(req, pending.err());
    f.state = "expired";
    f.newest_first = true;
    auto expired = reader.list_notifications(f);
    if (!expired) return journal_error(req, expired.err());
    return html(req, code, notifications_page(s, *counts, *pending, *expired, message));
  }

  response charts(const request& req, const session& s, const params& q) {
    reports::stats_filter f;
    f.business_date_from = opt(q, "date_from");
    f.business_date_to = opt(q, "date_to");
    f.store_id = opt(q, "store");
    auto st = reports::transaction_stats(reader, f);
    if (!st) return journal_error(req, st.err());
    if (auto fm = export_format(q)) return export_body(req, *fm, reports::render_stats(*st, *fm), "stats");
    return html(req, http::status::ok, charts_page(s, q, *st));
  }

  response users_list(const request& req, const session& s, std::string_view message) {
    if (!role_allows(s.user_role, role::supervisor))
      return forbidden(req, "Supervisors and administrators only.");
    auto list = users->list();
    if (!list) return journal_error(req, list.err());
    return html(req, http::status::ok, users_page(s, *list, message));
  }

  response users_add(const request& req, const session& s, const params& form) {
    if (!role_allows(s.user_role, role::admin)) return forbidden(req, "Administrators only.");
    const std::string name = form.count("name") ? form.at("name") : "";
    auto r = parse_role(form.count("role") ? form.at("role") : "");
    eftd::status st = r ? users->add(name, *r, form.count("password") ? form.at("password") : "", now())
                        : eftd::status(make_error("users.bad_role", "role: viewer, supervisor or admin"));
    audit(s.user, journal::audit_sources::web, "user_add", name,
          r ? "role " + std::string(to_string(*r)) : "", st ? "ok" : st.err().code);
    return users_list(req, s, st ? "User " + name + " added." : st.err().message);
  }

  response users_unlock(const request& req, const session& s, const params& form) {
    if (!role_allows(s.user_role, role::supervisor))
      return forbidden(req, "Supervisors and administrators only.");
    const std::string name = form.count("name") ? form.at("name") : "";
    auto st = users->unlock(name, now());
    audit(s.user, journal::audit_sources::web, "user_unlock", name, "", st ? "ok" : st.err().code);
    return users_list(req, s, st ? "User " + name + " unlocked." : st.err().message);
  }

  // --- admin socket commands --------------------------------------------------------------------

  json admin_users(const json& req) {
    const auto cmd = str(req, "cmd");
    const auto name = str(req, "name");
    eftd::status st;
    std::string detail;
    if (cmd == "user_list") {
      auto list = users->list();
      if (!list) return error_json(list.err().code, list.err().message);
      json arr = json::array();
      for (const auto& u : *list)
        arr.push_back({{"name", u.name},
                       {"role", to_string(u.user_role)},
                       {"failed_attempts", u.failed_attempts},
                       {"locked", u.locked},
                       {"created_ms", u.created_ms},
                       {"updated_ms", u.updated_ms}});
      return {{"ok", true}, {"users", std::move(arr)}};
    }
    if (cmd == "user_add" || cmd == "user_role") {
      auto r = parse_role(str(req, "role"));
      if (!r) return error_json("admin.bad_request", "role: viewer, supervisor or admin");
      detail = "role " + std::string(to_string(*r));
      st = cmd == "user_add" ? users->add(name, *r, str(req, "password"), now())
                             : users->set_role(name, *r, now());
    } else if (cmd == "user_passwd") {
      st = users->set_password(name, str(req, "password"), now());
    } else if (cmd == "user_unlock") {
      st = users->unlock(name, now());
    } else if (cmd == "user_remove") {
      st = users->remove(name);
    } else {
      return error_json("admin.unknown_cmd", "unknown user command");
    }
    // The admin listener writes the audit record of every command it runs (admin.cpp).
    spdlog::info("admin: {} '{}' {}: {}", cmd, name, detail, st ? "ok" : st.err().code);
    if (!st) return error_json(st.err().code, st.err().message);
    return {{"ok", true}, {"name", name}};
  }

  // --- connections ------------------------------------------------------------------------------

  asio::awaitable<void> serve(tcp::socket socket) {
    auto self = shared_from_this();
    boost::system::error_code pec;
    const auto ep = socket.remote_endpoint(pec);
    const std::string peer = pec ? std::string("?") : ep.address().to_string();
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls);
    beast::get_lowest_layer(stream).expires_after(handshake_timeout);
    auto [hec] =
        co_await stream.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
    if (hec) co_return;
    beast::flat_buffer buffer(16 * 1024);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      // The header first (beast checks a declared length against the limit already there):
      // only logged-in staff uploading a settlement file may send a large body.
      parser.body_limit(max_settlement_upload);
      beast::get_lowest_layer(stream).expires_after(request_timeout);
      boost::system::error_code ec;
      {
        auto [hec, hn] =
            co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        ec = hec;
      }
      if (!ec) {
        const std::string_view target(parser.get().target().data(), parser.get().target().size());
        bool large_ok = false;
        if (target == "/settlement/file") {
          auto who = current_session(parser.get());
          large_ok = who && !who->user.empty();
        }
        if (!large_ok) {
          parser.body_limit(max_body);
          // A declared length over the limit is refused before any of its body is read.
          if (auto len = parser.content_length(); len && *len > max_body) ec = http::error::body_limit;
        }
      }
      if (!ec) {
        auto [bec, bn] =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        ec = bec;
      }
      if (ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::ssl::error::stream_truncated)
          break;
        const bool too_large = ec == http::error::body_limit;
        response bad{too_large ? http::status::payload_too_large : http::status::bad_request, 11};
        security_headers(bad);
        bad.set(http::field::content_type, "text/plain");
        bad.body() = too_large ? fmt::format(
                                     "the request is too large: a settlement file may have at most {} "
                                     "MiB, other requests {} KiB\n",
                                     max_settlement_upload / (1024 * 1024), max_body / 1024)
                               : "bad request\n";
        bad.keep_alive(false);
        bad.prepare_payload();
        co_await http::async_write(stream, bad, asio::as_tuple(asio::use_awaitable));
        break;
      }
      const auto& req = parser.get();
      response res;
      try {
        res = handle(req, peer);
      } catch (const std::exception& e) {
        // One broken request must not end the listener.
        spdlog::error("back office: request failed: {}", e.what());
        res = html(req, http::status::internal_server_error, message_page("Error", "The request failed."));
      }
      if (req.method() == http::verb::head) res.body().clear();
      const bool keep = res.keep_alive();
      beast::get_lowest_layer(stream).expires_after(request_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !keep) break;
    }
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    accept_failures failures("back office");
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        if (failures.failed(ec)) {
          asio::steady_timer pause(io, accept_pause);
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        continue;
      }
      failures.accepted();
      asio::co_spawn(io, serve(std::move(socket)), [](std::exception_ptr e) {
        if (e) spdlog::warn("back office: a connection ended by an exception");
      });
    }
  }
};

service::service(std::shared_ptr<impl> p, std::unique_ptr<asio::io_context> io)
    : impl_(std::move(p)), io_(std::move(io)) {}

service::~service() {
  stop();
}

result<std::shared_ptr<service>> service::open(server_context& ctx) {
  auto r = journal::reader::open(ctx.cfg().journal_cfg.path);
  if (!r) return r.err();
  auto u = user_store::open(ctx.cfg().journal_cfg.path);
  if (!u) return u.err();
  auto io = std::make_unique<asio::io_context>(1);
  auto p = std::make_shared<impl>(*io, ctx, std::move(*r), std::move(*u));
  if (ctx.cfg().backoffice) {
    const auto& l = *ctx.cfg().backoffice;
    boost::system::error_code ec;
    p->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    if (l.tls.enabled()) {
      p->tls.use_certificate_chain_file(l.tls.cert_file.string(), ec);
      if (!ec) p->tls.use_private_key_file(l.tls.key_file.string(), ssl::context::pem, ec);
      if (ec) return make_error("backoffice.tls", "listen.backoffice.tls: " + ec.message());
    } else {
      auto pem = make_self_signed();
      if (!pem) return pem.err();
      p->tls.use_certificate_chain(asio::buffer(pem->cert), ec);
      if (!ec) p->tls.use_private_key(asio::buffer(pem->key), ssl::context::pem, ec);
      if (ec) return make_error("backoffice.tls", "self-signed certificate: " + ec.message());
    }
    p->fingerprint = sha256_fingerprint(SSL_CTX_get0_certificate(p->tls.native_handle()));
    auto addr = asio::ip::make_address(l.address, ec);
    if (ec)
      return make_error("backoffice.listen",
                        fmt::format("listen.backoffice.address '{}': {}", l.address, ec.message()));
    tcp::acceptor a(p->io);
    tcp::endpoint endpoint(addr, l.port);
    a.open(endpoint.protocol(), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) a.bind(endpoint, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return make_error("backoffice.listen", fmt::format("cannot listen for the back office on {}:{}: {}",
                                                         l.address, l.port, ec.message()));
    p->acceptor.emplace(std::move(a));
    spdlog::info("back office on https://{}:{}/ ({} certificate, SHA-256 fingerprint {})", l.address,
                 p->acceptor->local_endpoint().port(), l.tls.enabled() ? "configured" : "self-signed",
                 p->fingerprint);
  }
  return std::shared_ptr<service>(new service(std::move(p), std::move(io)));
}

std::uint16_t service::port() const {
  boost::system::error_code ec;
  return impl_->acceptor ? impl_->acceptor->local_endpoint(ec).port() : std::uint16_t{0};
}

const std::string& service::fingerprint() const {
  return impl_->fingerprint;
}

void service::start() {
  auto p = impl_;
  p->work.emplace(p->io.get_executor());
  if (p->acceptor)
    asio::co_spawn(p->io, p->accept_loop(), [](std::exception_ptr e) {
      if (e) spdlog::error("back office listener stopped by an exception");
    });
  p->thread = std::thread([p] { p->io.run(); });
}

void service::stop() {
  auto& p = impl_;
  if (!p || p->stopped) return;
  p->stopped = true;
  p->work.reset();
  p->io.stop();
  if (p->thread.joinable()) p->thread.join();
  // The thread is gone: nothing else touches the acceptor now. Open connections' coroutines
  // are destroyed with the io_context (~service).
  p->acceptor.reset();
}

asio::awaitable<json> service::admin_users(json request) {
  auto p = impl_;
  return asio::async_initiate<decltype(asio::use_awaitable), void(json)>(
      [p](auto handler, json req) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        asio::post(p->io, [p, h, ex, req = std::move(req)]() mutable {
          json reply;
          try {
            reply = p->admin_users(req);
          } catch (const std::exception& e) {
            spdlog::error("admin: user command failed: {}", e.what());
            reply = error_json("admin.internal", "the request failed");
          }
          asio::post(ex, [h, reply = std::move(reply)]() mutable { (*h)(std::move(reply)); });
        });
      },
      asio::use_awaitable, std::move(request));
}

asio::awaitable<json> service::resolve_case(json request, std::string actor) {
  auto p = impl_;
  return asio::async_initiate<decltype(asio::use_awaitable), void(json)>(
      [p](auto handler, json req, std::string who) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        asio::post(p->io, [p, h, ex, req = std::move(req), who = std::move(who)]() mutable {
          json reply;
          try {
            const auto kind = str(req, "kind");
            const auto subject = str(req, "subject");
            auto st =
                p->resolve_case(kind, subject, str(req, "note"), who, journal::audit_sources::admin_socket);
            reply = st ? json{{"ok", true}, {"key", kind + ":" + subject}, {"resolved_by", who}}
                       : error_json(st.err().code, st.err().message);
          } catch (const std::exception& e) {
            spdlog::error("admin: case_resolve failed: {}", e.what());
            reply = error_json("admin.internal", "the request failed");
          }
          asio::post(ex, [h, reply = std::move(reply)]() mutable { (*h)(std::move(reply)); });
        });
      },
      asio::use_awaitable, std::move(request), std::move(actor));
}

}  // namespace eftd::server::backoffice
