// Server side of one PIN pad connection.
//
// The pad speaks first (hello). Only pads listed in the configuration, with the serial the
// configuration expects, are accepted; anything else is refused with a reason, logged, and
// closed. After the handshake, command() sends a command and waits for the reply whose ref
// equals the command's seq, with a deadline. Replies that arrive after their deadline are
// logged and dropped; a frame that breaks the protocol closes the connection, and every
// command still waiting fails with "pad.disconnected" so no transaction hangs on a dead pad.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "context.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/pad/messages.hpp"
#include "write_queue.hpp"

namespace eftd::server {

class pad_session : public std::enable_shared_from_this<pad_session> {
 public:
  using tcp = boost::asio::ip::tcp;
  pad_session(tcp::socket socket, server_context& ctx);
  ~pad_session();

  void start();
  // Callable from any executor; resumes on the caller's. Errors: pad.disconnected,
  // pad.timeout, pad.protocol (a reply of the wrong type), or the pad's own pad_error as
  // "pad.error.<name>".
  boost::asio::awaitable<result<pad::message>> command(pad::message m, std::chrono::milliseconds timeout);
  // Fire-and-forget display (errors only logged): for final texts that must not hold up a flow.
  void show(std::vector<std::string> lines);

  const std::string& pad_id() const { return pad_id_; }
  bool open() const { return !closed_; }
  void close();

 private:
  struct pending {
    boost::asio::steady_timer timer;
    std::optional<pad::message> reply;
    bool disconnected = false;
    explicit pending(const boost::asio::any_io_executor& ex) : timer(ex) {}
  };

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<result<pad::envelope>> read_frame(std::chrono::milliseconds timeout);
  boost::asio::awaitable<result<pad::message>> command_on_strand(pad::message m,
                                                                 std::chrono::milliseconds timeout);
  void send(const pad::message& m, std::uint32_t ref, std::uint32_t& seq_out);
  void fail_all_pending();

  tcp::socket socket_;
  server_context& ctx_;
  write_queue<tcp::socket> out_;
  pad::frame_reader frames_;
  pad::replay_guard replay_;
  std::uint32_t next_seq_ = 1;
  std::map<std::uint32_t, std::shared_ptr<pending>> pending_;
  std::string pad_id_;
  std::string peer_;
  bool closed_ = false;
};

// Accepts pad connections until the acceptor is closed.
boost::asio::awaitable<void> pad_listener(boost::asio::ip::tcp::acceptor& acceptor, server_context& ctx);

}  // namespace eftd::server
