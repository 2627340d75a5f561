// The link between a running transaction flow and the POS session that started it: the
// cashier's abort and answers to prompts travel through here. Everything in it runs on the
// session's strand (the flow is spawned on the same strand), so it needs no lock.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "eftd/core/result.hpp"
#include "eftd/pos/messages.hpp"

namespace eftd::server {

class pad_session;

class tx_control {
 public:
  tx_control(boost::asio::any_io_executor ex, bool pos_shows_prompts)
      : wake_(ex), prompts_(pos_shows_prompts) {}

  // ---- session side
  // Asks the flow to stop. A pad command in progress is cut short; a prompt stops waiting.
  // Later steps see aborted() and end the transaction as cancelled (reversing an approval
  // that arrives afterwards).
  void request_abort();
  // The cashier's answer to the open prompt. Errors: unknown_prompt (none open with this id),
  // pos.bad_field (a value the prompt does not accept; the prompt stays open).
  status answer(const std::string& prompt_id, const std::string& value);
  // The POS connection is gone: nobody can answer any more, so an open prompt takes its
  // default now and later ones are not asked (the flow finishes on its own, PROTOCOL.md 7).
  void pos_gone();

  // ---- flow side
  bool aborted() const { return aborted_; }
  // The pad whose command the abort must interrupt (null while no pad command runs).
  void set_pad(std::shared_ptr<pad_session> p) { pad_ = std::move(p); }
  // Sends the prompt to the POS and waits for its answer, the prompt's timeout (then its
  // default) or an abort (then nullopt). A POS that cannot show prompts gets none: the
  // default is taken at once.
  boost::asio::awaitable<std::optional<std::string>> ask(pos::prompt p,
                                                         const std::function<void(pos::message)>& to_pos);

 private:
  boost::asio::steady_timer wake_;
  bool prompts_;
  bool aborted_ = false;
  std::shared_ptr<pad_session> pad_;
  std::optional<pos::prompt> open_;
  std::optional<std::string> answer_;
};

// Whether `value` is an acceptable answer to prompt `p` (yes_no, menu, numeric, text).
bool valid_answer(const pos::prompt& p, const std::string& value);

}  // namespace eftd::server
