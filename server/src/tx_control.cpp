#include "tx_control.hpp"

#include <algorithm>

#include "eftd/pos/codes.hpp"
#include "pad_session.hpp"

namespace eftd::server {

namespace asio = boost::asio;

bool valid_answer(const pos::prompt& p, const std::string& value) {
  if (p.kind == "yes_no") return value == "yes" || value == "no";
  if (p.kind == "menu") return std::find(p.options.begin(), p.options.end(), value) != p.options.end();
  if (p.kind == "numeric")
    return !value.empty() && value.size() <= 18 &&
           std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  // Free text: one line a receipt or journal can carry.
  return value.size() <= 200 && std::none_of(value.begin(), value.end(),
                                             [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

void tx_control::request_abort() {
  aborted_ = true;
  wake_.cancel();
  if (pad_) pad_->abort_pending();
}

void tx_control::pos_gone() {
  prompts_ = false;
  wake_.cancel();
}

status tx_control::answer(const std::string& prompt_id, const std::string& value) {
  if (!open_ || open_->prompt_id != prompt_id || answer_)
    return make_error(std::string(pos::codes::unknown_prompt), "no open prompt with this prompt_id");
  if (!valid_answer(*open_, value))
    return make_error(std::string(pos::codes::bad_field),
                      "field 'value' is not a valid answer to this " + open_->kind + " prompt");
  answer_ = value;
  wake_.cancel();
  return {};
}

asio::awaitable<std::optional<std::string>> tx_control::ask(pos::prompt p,
                                                            const std::function<void(pos::message)>& to_pos) {
  if (aborted_) co_return std::nullopt;
  if (!prompts_) co_return p.default_value;
  open_ = p;
  answer_.reset();
  to_pos(p);
  // One timer serves as the prompt's deadline and as the wake-up signal: an answer or an
  // abort cancels it.
  wake_.expires_after(std::chrono::milliseconds(p.timeout_ms));
  co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  open_.reset();
  if (aborted_) co_return std::nullopt;
  if (answer_) co_return *answer_;
  co_return p.default_value;
}

}  // namespace eftd::server
