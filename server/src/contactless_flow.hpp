// A contactless tap through a thin pad: the central contactless kernel (server/emv,
// eftd/emv/contactless.hpp) in eftd, the card on the pad's reader for about half a second.
// contactless_flow plans the tap, sends it as one `apdu_script` command (interface 3: the pad
// waits for the card, powers it, runs every C-APDU, powers it off), opens the R-APDUs (sealed
// under the tap's own DUKPT transaction, the KSN of the script_result) and lets the kernel
// evaluate them. The engine then acts on the outcome: online request (field 55), offline
// approval / decline, "present card again" (call tap() again: the kernel's cache now matches
// the card), "insert card" or an error.
//
// The engine (engine.cpp) runs it when a pad reports a tapped card. Card data (track 2
// equivalent, PAN) stays in the kernel's store; nothing here logs it.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include "acquirer_gateway.hpp"
#include "context.hpp"
#include "eftd/core/card.hpp"
#include "eftd/emv/contactless.hpp"
#include "key_module.hpp"

namespace eftd::server {

class pad_session;

// The kernel's configuration from [emv.contactless]; the defaults when it is absent or invalid
// (the config loader has checked it).
emv::contactless_config contactless_kernel_config(const config::emv_config& emv);

class contactless_flow {
 public:
  // `cache` outlives the flow (one per terminal / pad, kept across transactions).
  // `emv`: the till's effective [emv] (server_config::emv_for); `terminal_id` / `merchant_id`
  // for 9F1C / 9F16 as in chip_flow.
  contactless_flow(server_context& ctx, std::shared_ptr<pad_session> pad, emv::contactless_cache& cache,
                   const config::emv_config& emv, std::string_view terminal_id, std::string_view merchant_id,
                   emv::transaction txn);
  ~contactless_flow();

  // One tap: `wait` is how long the pad waits for the card. Without a tap (over the limit...)
  // the outcome comes at once. A pad error or timeout gives end_application with reason
  // "clss.pad_failed" / "clss.unsealed_refused" / "clss.unseal_failed". Call again after
  // try_again (a fresh kernel, the same transaction and cache).
  // `in_field`: the card is already powered in the field (the pad's read_card saw the tap and
  // reported its ATR): the script runs on it at once (interface 0) under the read's DUKPT
  // transaction. Otherwise the pad waits for a new tap (interface 3).
  boost::asio::awaitable<emv::contactless_result> tap(std::chrono::milliseconds wait, bool in_field = false);

  // After online_request: the acquirer's answer is recorded (nothing goes to the card).
  void complete(const std::optional<acquirer_answer>& answer);

  const emv::contactless_result& result() const;
  // The card's track 2 equivalent (57) as a parsed track 2, for field 35 and the PAN.
  eftd::result<eftd::track2> track2() const;
  // After an offline approval (TC): field 55 for the advice, the tags of an online request.
  bytes offline_field55() const;
  // 5F34 as three digits for field 23, "" when the card has none.
  std::string pan_sequence() const;
  // AID, outcome, CVM, TVR (hex) and tap time for the journal's event.
  std::string summary() const;
  // What the receipt prints about the tap (emv_receipt.hpp), as stored with the operation.
  std::string receipt_data() const;
  // The DUKPT session of the last tap (online PIN blocks of the same KSN), null without one.
  card_session* dukpt() noexcept { return dukpt_ ? &*dukpt_ : nullptr; }

 private:
  server_context& ctx_;
  std::shared_ptr<pad_session> pad_;
  emv::contactless_cache& cache_;
  emv::contactless_config cfg_;
  emv::terminal_config terminal_;
  emv::transaction txn_;
  std::unique_ptr<emv::contactless_kernel> kernel_;
  std::optional<card_session> dukpt_;
  emv::contactless_result last_;
};

}  // namespace eftd::server
