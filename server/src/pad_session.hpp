// Server side of one PIN pad connection.
//
// With [listen.pad.tls] configured, the connection is TLS 1.3 first (a sans-I/O tls_channel
// between the socket and the frame reader): the pad must present a device certificate from the
// pad CA within listen.pad.login_timeout_ms, or it is refused and logged before any frame is
// read. At hello the certificate's CN must equal hello.serial.
//
// The pad speaks first (hello). Only pads listed in the configuration, with the serial the
// configuration expects, and not revoked, are accepted; anything else is refused with a
// reason, logged, and closed. After the handshake, command() sends a command and waits for the
// reply whose ref equals the command's seq, with a deadline. Replies that arrive after their deadline are
// logged and dropped; a frame that breaks the protocol closes the connection, and every
// command still waiting fails with "pad.disconnected" so no transaction hangs on a dead pad.
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "eftd/core/tls_channel.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/pad/messages.hpp"
#include "read_deadline.hpp"
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
  // The cashier aborted: every command still waiting fails at once with "pad.aborted", and the
  // pad is told to cancel what it is doing (a late reply to the old command is dropped).
  void abort_pending();

  // The connection's slot under the listener's limits, released with the session.
  void hold(std::shared_ptr<void> slot) { slot_ = std::move(slot); }
  const std::string& pad_id() const { return pad_id_; }
  bool open() const { return !closed_; }
  void close();

 private:
  struct pending {
    boost::asio::steady_timer timer;
    std::optional<pad::message> reply;
    bool disconnected = false;
    bool aborted = false;
    explicit pending(const boost::asio::any_io_executor& ex) : timer(ex) {}
  };

  using time_point = std::chrono::steady_clock::time_point;

  boost::asio::awaitable<void> run();
  // Pings the pad, refreshes its status (DUKPT counters) and keeps its journal row current;
  // disconnects a pad that misses pad_health.missed_pings_to_drop pings in a row.
  boost::asio::awaitable<void> monitor();
  boost::asio::awaitable<void> refresh_status();
  void write_health(std::string_view state);
  boost::asio::awaitable<status> tls_handshake(time_point deadline);
  boost::asio::awaitable<status> receive(time_point deadline);
  boost::asio::awaitable<result<pad::envelope>> read_frame(time_point deadline);
  boost::asio::awaitable<void> drain_output(std::chrono::milliseconds limit);
  void transmit(byte_view frame);
  boost::asio::awaitable<result<pad::message>> command_on_strand(pad::message m,
                                                                 std::chrono::milliseconds timeout);
  void send(const pad::message& m, std::uint32_t ref, std::uint32_t& seq_out);
  void fail_all_pending();

  tcp::socket socket_;
  read_deadline read_deadline_{socket_.get_executor()};
  server_context& ctx_;
  write_queue<tcp::socket> out_;
  std::optional<tls_channel> tls_;      // set when the pad listener has TLS
  std::optional<error> setup_error_;    // the TLS session could not be created
  std::optional<error> receive_error_;  // the stream ended; reported once its frames are read
  // What one read brings. A member, not a local of receive(): a 4 KiB array made every
  // receive() frame too large for Asio's frame recycling, so each read cost a heap allocation.
  std::array<std::uint8_t, 4096> read_buf_{};
  pad::frame_reader frames_;
  pad::replay_guard replay_;
  std::uint32_t next_seq_ = 1;
  std::map<std::uint32_t, std::shared_ptr<pending>> pending_;
  std::string pad_id_;
  std::string peer_;
  std::shared_ptr<void> slot_;
  bool closed_ = false;
  connection_gauge gauge_{ctx_.metrics, conn_kind::pad};

  // Health, as written to the journal's pad_health row.
  std::optional<boost::asio::steady_timer> ping_timer_;
  std::string serial_, model_, firmware_;
  std::int64_t connected_ms_ = 0;
  std::optional<std::int64_t> last_seen_ms_, rtt_ms_;
  std::int64_t missed_pings_ = 0;
  std::string dukpt_json_ = "[]";
  std::string health_state_;
  std::int64_t health_written_ms_ = 0;
};

// Accepts pad connections until the acceptor is closed.
boost::asio::awaitable<void> pad_listener(boost::asio::ip::tcp::acceptor& acceptor, server_context& ctx);

}  // namespace eftd::server
