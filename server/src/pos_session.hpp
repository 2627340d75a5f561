// Server side of one POS (cash register) connection: newline-delimited JSON, see
// pos-protocol/PROTOCOL.md. One session per TCP connection, on its own strand; a transaction
// flow runs as a separate coroutine on the same strand, so the session keeps reading (status
// queries, heartbeats, aborts) while a sale is in progress.
#pragma once

#include <boost/asio.hpp>
#include <memory>
#include <string>

#include "context.hpp"
#include "eftd/pos/codec.hpp"
#include "eftd/pos/messages.hpp"
#include "write_queue.hpp"

namespace eftd::server {

class pos_session : public std::enable_shared_from_this<pos_session> {
 public:
  using tcp = boost::asio::ip::tcp;
  pos_session(tcp::socket socket, server_context& ctx);
  ~pos_session();

  void start();
  // Queue a message for the POS; callable from any thread. Dropped once the connection closed.
  void send(pos::message m);
  void close();
  const std::string& till_id() const { return till_id_; }
  bool has_running_transaction() const { return running_; }

 private:
  boost::asio::awaitable<void> run();
  void handle(pos::message m);
  void on_login(const pos::login& m);
  void on_sale(const pos::sale& m);
  void on_status_query(const pos::status_query& m);
  void send_error(std::string id, std::string_view code, std::string message, std::string order_no = {});

  tcp::socket socket_;
  server_context& ctx_;
  write_queue<tcp::socket> out_;
  pos::line_reader lines_;
  std::string peer_;
  std::string till_id_;
  std::string operator_id_;
  bool running_ = false;
  bool closed_ = false;
};

boost::asio::awaitable<void> pos_listener(boost::asio::ip::tcp::acceptor& acceptor, server_context& ctx);

}  // namespace eftd::server
