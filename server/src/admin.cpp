#include "admin.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "eftd/acq/link.hpp"
#include "engine.hpp"
#include "settlement.hpp"

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

}  // namespace

struct admin_listener::impl : std::enable_shared_from_this<impl> {
  impl(server_context& c, settlement_service& s, unix_socket::acceptor a, std::filesystem::path p)
      : ctx(c), settlement(s), acceptor(std::move(a)), path(std::move(p)) {}

  server_context& ctx;
  settlement_service& settlement;
  unix_socket::acceptor acceptor;
  std::filesystem::path path;

  using handler = std::function<asio::awaitable<json>(impl&, const json&)>;

  // The commands. The failover work adds its own here.
  static const std::map<std::string, handler, std::less<>>& commands() {
    static const std::map<std::string, handler, std::less<>> table{
        {"status", [](impl& self, const json&) { return self.status(); }},
        {"settle", [](impl& self, const json& req) { return self.settle(req); }},
        {"trace", [](impl& self, const json& req) { return self.trace(req); }},
    };
    return table;
  }

  asio::awaitable<json> status() {
    co_return json{
        {"ok", true}, {"node", ctx.cfg.node_name}, {"business_date", business_date_of(ctx.clock.now_ms())}};
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
      if (ctx.cfg.find_acquirer(*acquirer) == nullptr)
        co_return error_reply("admin.bad_request", "unknown acquirer '" + *acquirer + "'");
    }
    auto results = co_await settlement.settle(date, acquirer);
    json batches = json::array();
    for (const auto& r : results) batches.push_back(to_json(r));
    co_return json{{"ok", true}, {"business_date", date}, {"batches", std::move(batches)}};
  }

  asio::awaitable<json> dispatch(const std::string& line) {
    auto req = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded()) co_return error_reply("admin.bad_json", "the line is not JSON");
    if (!req.is_object()) co_return error_reply("admin.bad_request", "expected a JSON object");
    auto cmd = req.find("cmd");
    if (cmd == req.end() || !cmd->is_string())
      co_return error_reply("admin.bad_request", "expected \"cmd\" (a string)");
    const auto& table = commands();
    auto it = table.find(cmd->get<std::string>());
    if (it == table.end()) {
      std::string known;
      for (const auto& [name, h] : table) known += (known.empty() ? "" : ", ") + name;
      co_return error_reply("admin.unknown_cmd", "unknown cmd (known: " + known + ")");
    }
    co_return co_await it->second(*this, req);
  }

  asio::awaitable<void> session(std::shared_ptr<unix_socket::socket> conn) {
    auto self = shared_from_this();
    auto& sock = *conn;
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
        reply = co_await dispatch(line);
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
    for (;;) {
      // Each connection gets its own strand (one coroutine per connection).
      asio::any_io_executor strand = asio::make_strand(ctx.io);
      auto [ec, sock] = co_await acceptor.async_accept(strand, asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        spdlog::warn("admin: accept failed: {}", ec.message());
        continue;
      }
      auto conn = std::make_shared<unix_socket::socket>(std::move(sock));
      asio::co_spawn(conn->get_executor(), session(conn), [](std::exception_ptr e) {
        if (e) spdlog::error("admin: session ended by an exception");
      });
    }
  }
};

admin_listener::admin_listener(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
admin_listener::~admin_listener() = default;

std::shared_ptr<admin_listener> admin_listener::open(server_context& ctx, settlement_service& settlement) {
  const auto path = ctx.cfg.admin.socket;
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
  return std::make_shared<admin_listener>(std::make_shared<impl>(ctx, settlement, std::move(acc), path));
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
