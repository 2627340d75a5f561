#include "metrics_http.hpp"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "accept_pacing.hpp"
#include "metrics.hpp"

namespace eftd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> serve(tcp::socket socket, server_context& ctx) {
  connection_gauge gauge(ctx.metrics, conn_kind::metrics);
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(8192);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8192);
  stream.expires_after(std::chrono::seconds(5));
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
  http::response<http::string_body> res;
  res.version(11);
  res.set(http::field::server, "eftd");
  res.keep_alive(false);
  if (ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) co_return;
    res.result(http::status::bad_request);
    res.set(http::field::content_type, "text/plain");
    res.body() = "bad request\n";
  } else {
    const auto& req = parser.get();
    const auto target = req.target();
    const auto path = target.substr(0, target.find('?'));
    if (path != "/metrics") {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: GET /metrics\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.set(http::field::content_type, "text/plain");
      res.body() = "method not allowed\n";
    } else {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      if (req.method() == http::verb::get) res.body() = ctx.metrics->render(ctx);
    }
  }
  res.prepare_payload();
  stream.expires_after(std::chrono::seconds(5));
  co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
  beast::error_code ignore;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignore);
}

}  // namespace

asio::awaitable<void> metrics_listener(tcp::acceptor& acceptor, server_context& ctx) {
  accept_failures failures("metrics");
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (failures.failed(ec)) {
        asio::steady_timer pause(acceptor.get_executor(), accept_pause);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      continue;
    }
    failures.accepted();
    auto ex = socket.get_executor();
    asio::co_spawn(ex, serve(std::move(socket), ctx), [](std::exception_ptr e) {
      if (e) spdlog::warn("metrics connection ended by an exception");
    });
  }
}

}  // namespace eftd::server
