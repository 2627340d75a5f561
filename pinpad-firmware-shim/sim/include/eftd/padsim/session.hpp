// The pad-side command executor for one connection, sans-I/O: bytes in, frames out.
// Every transport (TCP now; TLS, serial and USB link layers later) drives the same session.
//
// Rules it enforces (PROTOCOL.md): hello is the pad's first frame; until an accepted
// hello_ack answering it arrives, nothing else is executed; every command gets exactly one
// reply with ref = the command's seq; inbound seq must be strictly increasing (pad.replay).
// Unknown message type -> pad_error unsupported; a command whose body does not decode ->
// pad_error bad_request. Errors returned by on_bytes() mean "close this connection":
// framing errors, bad version, replay, refusal, protocol order violations.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/pad/codec.hpp"
#include "eftd/padsim/hardware.hpp"
#include "eftd/padsim/pad_keys.hpp"

namespace eftd::padsim {

struct pad_identity {
  std::string pad_id;
  std::string serial;
  std::string model = "eftpad-virtual";
  std::string firmware = "0.1.0";
  std::vector<std::string> capabilities{"display", "magstripe"};
  // Reported by get_status: key serial numbers and their DUKPT transaction counters (same
  // order), and the display languages.
  std::vector<eftd::bytes> ksns;
  std::vector<std::uint32_t> dukpt_counters;
  std::vector<std::string> languages{"en"};
};

// capability_bit mask for capability names ("display", "beep", "leds", "keypad", "magstripe",
// "chip", "contactless", "pin", "p2pe"); unknown names add nothing.
std::uint32_t capability_bits(const std::vector<std::string>& names);

enum class session_event : std::uint8_t {
  accepted,       // hello_ack accepted=true arrived
  displayed,      // a display command was shown and acked
  card_answered,  // a read_card got its reply (card_read or pad_error)
  cancelled,      // a cancel was acked
};

// What every transport (TCP, serial) does with a session's events: note an accepted session
// (and announce it through `on_accept`), and with `once` report when the run is complete: a
// read_card was answered and the next display shown.
struct session_progress {
  bool accepted = false;
  bool card_answered = false;
  // True when a --once run is complete.
  template <class OnAccept>
  bool on_events(const std::vector<session_event>& events, bool once, OnAccept&& on_accept) {
    for (auto ev : events) {
      if (ev == session_event::accepted) {
        accepted = true;
        on_accept();
      } else if (ev == session_event::card_answered) {
        card_answered = true;
      } else if (ev == session_event::displayed && once && card_answered) {
        return true;
      }
    }
    return false;
  }
};

struct session_output {
  std::vector<eftd::bytes> send;  // complete frames, in order
  std::vector<session_event> events;
};

// Waiting commands (get_key, get_amount, confirm, menu, remove_card) do not answer at once:
// the session keeps one of them pending, polls the keypad / reader whenever the transport
// calls on_bytes() or on_tick(), and answers when the input arrives, when its timeout_ms
// passes (pad_error timeout), on the cancel key or a cancel / reset command (cancelled).
// While one waits, only ping, get_status, cancel and reset are executed; any other command
// is answered pad_error busy. get_pin and offline_pin wait the same way (digits from the
// keypad, shown as '*', kept in a wiped buffer).
//
// Card data (PROTOCOL.md sections 6 and 10): with DUKPT keys (set_keys) every read_card starts
// a new transaction and the track 2 and R-APDUs leave the pad sealed, numbered from item 1;
// without keys they go in the clear (tests and development only). The card of the last
// read_card stays "at the reader" for get_pin (its PAN), offline_pin and the APDU commands
// (its ICC) until the next read_card, remove_card, reset or a new connection.
class pad_session {
 public:
  // How often the transport should poll (on_tick) while a command waits for input.
  static constexpr std::chrono::milliseconds poll_interval{10};

  // Without a keypad, get_key/get_amount/confirm/menu are answered pad_error unsupported.
  pad_session(pad_identity id, display_device& display, card_reader& reader);
  pad_session(pad_identity id, display_device& display, card_reader& reader, keypad& keys);

  // Starts a new connection: fresh counters and reader, returns the hello frame to send first.
  eftd::bytes start();

  // Bytes received: the replies to send and what happened. An error means close the
  // connection (replies to earlier frames of the same chunk are dropped with it) and log
  // error.code/message. Error codes:
  // the codec's pad.* framing/header codes, pad.replay, padsim.refused (message = server's
  // reason), padsim.bad_ref (hello_ack answers another seq), padsim.not_accepted (a command
  // before the handshake).
  eftd::result<session_output> on_bytes(eftd::byte_view data);
  eftd::result<session_output> on_bytes(eftd::byte_view data, pad_clock::time_point now);

  // Time passed: polls the keypad/reader for a waiting command and answers it if its input
  // arrived or its deadline passed.
  session_output on_tick(pad_clock::time_point now);

  // When on_tick() is due next (the earlier of the next poll and the waiting command's
  // deadline); nullopt when no command waits.
  std::optional<pad_clock::time_point> wake_at() const;
  bool waiting() const noexcept { return pending_.has_value(); }

  bool accepted() const noexcept { return accepted_; }
  const pad_identity& identity() const noexcept { return id_; }

  // The pad's DUKPT keys (not owned; nullptr or empty: no P2PE, card data in the clear).
  void set_keys(pad_keys* keys) noexcept { keys_ = keys; }
  // Time source for apdu_script's elapsed_ms (the card's time in use); default steady_clock.
  void set_clock(std::function<pad_clock::time_point()> clock) { clock_ = std::move(clock); }
  // Randomness for PIN blocks (format 4) and the enciphered VERIFY's padding.
  void set_random(eftd::random_source& rng) noexcept { rng_ = &rng; }

  // True while a card of the last read_card is at the reader (see above).
  bool has_card() const noexcept { return card_.has_value(); }
  bool card_powered() const noexcept { return card_ && card_->powered; }

 private:
  struct pending_command {
    pad::message command;
    std::uint32_t ref = 0;
    pad_clock::time_point deadline;
    std::string digits;          // get_amount: typed so far
    eftd::secure_bytes pin{12};  // get_pin / offline_pin: digits typed so far (ASCII)
    std::size_t pin_length = 0;
  };

  // The card of the last read_card (or apdu_script tap).
  struct card_state {
    pad::entry_mode mode = pad::entry_mode::magstripe;
    eftd::secure_bytes pan;
    std::shared_ptr<icc> chip;
    bool powered = false;
  };

  eftd::status on_frame(eftd::byte_view frame, session_output& out);
  void reply(std::uint32_t ref, pad::message body, session_output& out);
  void execute(std::uint32_t ref, pad::message& m, session_output& out);
  void start_waiting(std::uint32_t ref, pad::message m, std::uint32_t timeout_ms, session_output& out);
  void advance(session_output& out);
  // Answers the waiting command and forgets it.
  void finish(pad::message body, session_output& out);
  void fail(std::uint32_t ref, pad::pad_error_code code, std::string text, session_output& out);
  void show_amount(const pad::get_amount& a, const std::string& digits);
  void show_pin_entry(const pending_command& p);
  // The answer to get_pin / offline_pin once enter accepted the digits.
  pad::message pin_answer(pending_command& p);
  void on_read_card(std::uint32_t ref, const pad::read_card& m, session_output& out);
  // Answers a read_card once the reader has a card (or a failure).
  void complete_read_card(std::uint32_t ref, card_reader::read_result r, session_output& out);
  void on_apdu_script(std::uint32_t ref, const pad::apdu_script& m, session_output& out);
  // T=0 exchange with the powered card: 61xx -> GET RESPONSE, 6Cxx -> resend with Le = xx.
  eftd::result<eftd::secure_bytes> exchange(eftd::byte_view capdu);
  // Starts the DUKPT transaction of a new card (no-op without keys).
  eftd::status begin_card_transaction();
  void drop_card();

  pad_identity id_;
  display_device& display_;
  card_reader& reader_;
  keypad* keypad_ = nullptr;
  std::optional<pending_command> pending_;
  pad_clock::time_point now_{};
  pad_clock::time_point last_poll_{};
  pad::frame_reader frames_;
  pad::replay_guard inbound_;
  pad::seq_counter outbound_;
  std::uint32_t hello_seq_ = 0;
  bool accepted_ = false;
  pad_keys* keys_ = nullptr;
  std::function<pad_clock::time_point()> clock_ = [] { return pad_clock::now(); };
  eftd::random_source* rng_ = &eftd::system_random();
  std::optional<card_state> card_;
};

}  // namespace eftd::padsim
