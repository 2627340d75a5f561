// The metrics listener: plaintext HTTP/1.1 on a loopback address, GET /metrics answers the
// Prometheus text exposition (version 0.0.4). One request per connection; anything else gets
// 404/405/400 and the connection is closed. A slow or silent client is dropped after 5 s.
#pragma once

#include <boost/asio.hpp>

#include "context.hpp"

namespace eftd::server {

boost::asio::awaitable<void> metrics_listener(boost::asio::ip::tcp::acceptor& acceptor, server_context& ctx);

}  // namespace eftd::server
