// A chip card read through a thin pad: the central EMV kernel (server/emv) in eftd, the card in
// the pad's reader. chip_flow turns the kernel's steps into pad commands — each C-APDU an `apdu`
// command whose R-APDU comes back sealed under the card's DUKPT transaction and is opened by the
// key-handling module, offline PIN an `offline_pin` command (the pad builds VERIFY itself),
// cardholder selection a `menu` — until the kernel needs the acquirer or has finished.
//
// Card data (track 2 equivalent, PAN) stays inside the kernel's store and the values handed to
// the engine for the authorization; nothing here logs it.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "acquirer_gateway.hpp"
#include "context.hpp"
#include "eftd/core/card.hpp"
#include "eftd/emv/kernel.hpp"
#include "key_module.hpp"

namespace eftd::server {

class pad_session;

// The kernel's terminal parameters from the effective [emv] of a till (server_config::emv_for).
// `terminal_id` (9F1C, 8 characters) and `merchant_id` (9F16, space padded to 15) go to the
// kernel when not empty.
emv::terminal_config emv_terminal_config(const config::emv_config& emv, std::string_view terminal_id = {},
                                         std::string_view merchant_id = {});

class chip_flow {
 public:
  // Runs the engine's online PIN entry for the kernel (get_pin on the pad, PIN block kept by the
  // engine for field 52); answers entered, bypassed or failed.
  using online_pin_fn = std::function<boost::asio::awaitable<emv::pin_result>(bool bypass_allowed)>;

  // `dukpt`: the card's DUKPT session (sealed R-APDUs), or null when the pad sends them in the
  // clear (development pads, keys.require_p2pe = false). `emv`: the till's effective [emv]
  // (server_config::emv_for); `terminal_id` / `merchant_id`: the till's field 41 and the
  // merchant's field 42, for 9F1C / 9F16.
  chip_flow(server_context& ctx, std::shared_ptr<pad_session> pad, card_session* dukpt,
            const config::emv_config& emv, std::string_view terminal_id, std::string_view merchant_id,
            emv::transaction txn);
  ~chip_flow();

  // Drives the kernel through selection, GPO and the records, and stops before cardholder
  // verification (or earlier, when the kernel finishes): the engine then knows the card and
  // applies its own restrictions before any PIN is asked for.
  boost::asio::awaitable<void> run_to_card();
  // Continues until the kernel asks to go online or finishes.
  boost::asio::awaitable<void> resume(online_pin_fn pin);
  bool wants_online() const noexcept { return online_.has_value(); }
  const bytes& field55() const { return *online_; }
  // After an offline approval (TC): field 55 for the advice, the same tags as an online request.
  bytes offline_field55() const;
  // After wants_online(): the acquirer's answer (nullopt: no answer, timeout or unreachable)
  // goes to the card (issuer authentication, scripts, second GENERATE AC); runs to the end.
  boost::asio::awaitable<void> complete(const std::optional<acquirer_answer>& answer);
  // Powers the card off (the pad then asks for it to be removed); safe to call more than once.
  boost::asio::awaitable<void> power_off();

  bool finished() const noexcept { return finished_.has_value(); }
  emv::outcome outcome() const { return finished_->o; }
  const std::string& reason() const { return finished_->reason_code; }
  bool signature_required() const noexcept { return signature_; }

  // The card's track 2 equivalent (57) as a parsed track 2, for field 35 and the PAN.
  result<eftd::track2> track2() const;
  // 5F34 as three digits for field 23, "" when the card has none.
  std::string pan_sequence() const;
  // The AID selected (hex), and TVR/TSI (hex) for the journal's event.
  std::string summary() const;
  // What the receipt prints about the chip (emv_receipt.hpp), as stored with the operation.
  std::string receipt_data() const;

 private:
  boost::asio::awaitable<void> drive(const online_pin_fn* pin);
  boost::asio::awaitable<void> run_script(const std::vector<bytes>& capdus);
  std::optional<secure_bytes> clear_rapdu(const secure_bytes& sealed, std::optional<std::uint16_t> item,
                                          const secure_bytes& rapdu) const;

  server_context& ctx_;
  std::shared_ptr<pad_session> pad_;
  card_session* dukpt_;
  std::unique_ptr<emv::contact_kernel> kernel_;
  std::optional<bytes> online_;
  std::optional<emv::contact_kernel::finished> finished_;
  bool signature_ = false;
  bool card_known_ = false;  // run_to_card() stopped once before verification
  bool powered_ = true;
};

}  // namespace eftd::server
