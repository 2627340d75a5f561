// Server side of one POS (cash register) connection: newline-delimited JSON, see
// pos-protocol/PROTOCOL.md. One session per TCP connection, on its own strand; a transaction
// flow runs as a separate coroutine on the same strand, so the session keeps reading (status
// queries, heartbeats, aborts) while a sale is in progress.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <memory>
#include <string>

#include "byte_stream.hpp"
#include "context.hpp"
#include "eftd/pos/codec.hpp"
#include "eftd/pos/messages.hpp"
#include "engine.hpp"
#include "read_deadline.hpp"
#include "write_queue.hpp"

namespace eftd::server {

class tx_control;

class pos_session : public std::enable_shared_from_this<pos_session> {
 public:
  using tcp = boost::asio::ip::tcp;
  pos_session(tcp::socket socket, server_context& ctx);
  ~pos_session();

  void start();
  // The connection's slot under the listener's limits, released with the session.
  void hold(std::shared_ptr<void> slot) { slot_ = std::move(slot); }
  // Queue a message for the POS; callable from any thread. Dropped once the connection closed.
  void send(pos::message m);
  void close();
  const std::string& till_id() const { return till_id_; }
  bool has_running_transaction() const { return running_; }

 private:
  boost::asio::awaitable<void> open();
  boost::asio::awaitable<void> run();
  void handle(pos::message m);
  void on_login(const pos::login& m);
  void on_sale(const pos::sale& m);
  void on_refund(const pos::refund& m);
  void on_balance_inquiry(const pos::balance_inquiry& m);
  void on_cancel(const pos::cancel& m);
  void on_preauth(const pos::preauth& m);
  void on_follow_up(follow_up_request req);
  void on_abort(const pos::abort_tx& m);
  void on_answer(const pos::answer& m);
  void on_totals(const pos::totals& m);
  void on_status_query(const pos::status_query& m);
  bool claim_till(const std::string& request_id, const std::string& order_no);
  void release_till(const std::string& till);
  // A final result for the metrics: its kind and outcome, and the request's total time.
  void count(std::string_view kind, std::string_view outcome, std::chrono::steady_clock::time_point started);
  void start_transaction(tx_request req);
  void send_error(std::string id, std::string_view code, std::string message, std::string order_no = {});

  tcp::socket socket_;               // until open(): then owned by stream_
  boost::asio::any_io_executor ex_;  // the connection's strand
  read_deadline read_deadline_{ex_};
  server_context& ctx_;
  std::unique_ptr<byte_stream> stream_;
  std::optional<write_queue<byte_stream>> out_;
  std::shared_ptr<void> slot_;
  std::string cert_till_;  // subject CN of the client certificate (TLS), "" in plaintext
  bool tls_ = false;
  std::chrono::steady_clock::time_point opened_, partial_since_;
  pos::line_reader lines_;
  std::string peer_;
  std::string till_id_;
  std::string operator_id_;
  // Read by another connection of the same till at its login (has_running_transaction()).
  std::atomic<bool> running_ = false;
  bool closed_ = false;
  bool prompts_ = false;            // the POS listed "prompt" at login
  std::string running_order_;       // order of the card transaction running, for abort
  std::shared_ptr<tx_control> tx_;  // its abort/prompt link (null while idle)
  connection_gauge gauge_{ctx_.metrics, conn_kind::pos};
};

boost::asio::awaitable<void> pos_listener(boost::asio::ip::tcp::acceptor& acceptor, server_context& ctx);

}  // namespace eftd::server
