#include "chip_flow.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "eftd/core/bytes.hpp"
#include "eftd/core/tlv.hpp"
#include "emv_receipt.hpp"
#include "pad_session.hpp"
#include "reasons.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

bytes aid_bytes(const std::string& hex) {
  auto b = from_hex(hex);
  return b ? std::move(*b) : bytes{};
}

}  // namespace

emv::terminal_config emv_terminal_config(const config::emv_config& emv, std::string_view terminal_id,
                                         std::string_view merchant_id) {
  emv::terminal_config t;
  t.terminal_type = emv.terminal_type;
  t.country_code = emv.country_code;
  for (const auto& a : emv.applications) {
    emv::application_config app;
    app.aid = aid_bytes(a);
    app.floor_limit = emv.floor_limit;
    // Validated by the config loader: 10 hex digits each.
    app.tac.denial = from_hex(emv.tac_denial).value_or(bytes{});
    app.tac.online = from_hex(emv.tac_online).value_or(bytes{});
    app.tac.def = from_hex(emv.tac_default).value_or(bytes{});
    t.applications.push_back(std::move(app));
  }
  // A configured 9F33 is what the card is told, so the kernel follows it too: a CVM or a data
  // authentication method it leaves out is never used.
  if (auto caps = from_hex(emv.terminal_capabilities); caps && caps->size() == 3) {
    const std::uint8_t b2 = (*caps)[1], b3 = (*caps)[2];
    t.input_capabilities = (*caps)[0];
    t.cvm.offline_plain_pin = (b2 & 0x80) != 0;
    t.cvm.online_pin = (b2 & 0x40) != 0;
    t.cvm.signature = (b2 & 0x20) != 0;
    t.cvm.offline_enciphered_pin = (b2 & 0x10) != 0;
    t.cvm.no_cvm = (b2 & 0x08) != 0;
    t.oda.sda = (b3 & 0x80) != 0;
    t.oda.dda = (b3 & 0x40) != 0;
    t.card_capture = (b3 & 0x20) != 0;
    t.oda.cda = (b3 & 0x08) != 0;
    t.capabilities_override = std::move(*caps);
  }
  if (auto add = from_hex(emv.additional_capabilities); add && add->size() == 5)
    t.additional_capabilities = std::move(*add);
  if (terminal_id.size() == 8) t.terminal_id.assign(terminal_id.begin(), terminal_id.end());
  if (!merchant_id.empty() && merchant_id.size() <= 15) {
    t.merchant_id.assign(merchant_id.begin(), merchant_id.end());
    t.merchant_id.resize(15, ' ');
  }
  return t;
}

chip_flow::chip_flow(server_context& ctx, std::shared_ptr<pad_session> pad, card_session* dukpt,
                     const config::emv_config& emv, std::string_view terminal_id,
                     std::string_view merchant_id, emv::transaction txn)
    : ctx_(ctx), pad_(std::move(pad)), dukpt_(dukpt) {
  auto cfg = emv_terminal_config(emv, terminal_id, merchant_id);
  cfg.batch_apdus = emv.batch_apdus;
  kernel_ = std::make_unique<emv::contact_kernel>(cfg, ctx.capks ? &*ctx.capks : nullptr, std::move(txn));
}

chip_flow::~chip_flow() = default;

asio::awaitable<void> chip_flow::run_to_card() {
  co_await drive(nullptr);
}

asio::awaitable<void> chip_flow::resume(online_pin_fn pin) {
  card_known_ = true;
  co_await drive(&pin);
}

asio::awaitable<void> chip_flow::complete(const std::optional<acquirer_answer>& answer) {
  if (!online_) co_return;
  online_.reset();
  if (!answer) {
    kernel_->feed_online_failed();
  } else {
    emv::online_result r;
    r.approved = response_code_approves(answer->response_code);
    if (answer->response_code.size() == 2)
      r.arc = bytes{static_cast<std::uint8_t>(answer->response_code[0]),
                    static_cast<std::uint8_t>(answer->response_code[1])};
    // Field 55 of the answer: 91 (issuer authentication data), 71/72 (scripts), 8A.
    auto tlvs = eftd::tlv_decode(answer->icc_data);
    if (tlvs) {
      for (const auto& t : *tlvs) {
        if (t.tag == 0x91) r.issuer_auth_data.assign(t.value.begin(), t.value.end());
        if (t.tag == 0x71 || t.tag == 0x72) {
          auto enc = eftd::tlv_encode(t);
          r.scripts.insert(r.scripts.end(), enc.begin(), enc.end());
        }
      }
    } else if (!answer->icc_data.empty()) {
      spdlog::warn("chip: field 55 of the answer does not parse ({}); issuer data ignored", tlvs.err().code);
    }
    kernel_->feed_online_result(r);
  }
  co_await drive(nullptr);
}

asio::awaitable<void> chip_flow::drive(const online_pin_fn* pin) {
  for (;;) {
    auto st = kernel_->next();
    // The first step past the records: the card is known. next() repeats it after a pause.
    const bool past_records = std::holds_alternative<emv::contact_kernel::need_online_pin>(st) ||
                              std::holds_alternative<emv::contact_kernel::need_offline_pin>(st) ||
                              std::holds_alternative<emv::contact_kernel::need_signature>(st) ||
                              std::holds_alternative<emv::contact_kernel::go_online>(st);
    if (past_records && !card_known_) co_return;
    if (auto* a = std::get_if<emv::contact_kernel::send_apdu>(&st)) {
      pad::apdu cmd;
      cmd.capdu = a->capdu;
      pad::message m = cmd;
      auto rep = co_await pad_->command(std::move(m), 10s);
      const auto* resp = rep ? std::get_if<pad::apdu_response>(&*rep) : nullptr;
      if (!resp) {
        spdlog::warn("chip: APDU exchange failed: {}",
                     rep ? std::string("unexpected reply") : rep.err().code);
        kernel_->feed_transmit_failed();
        continue;
      }
      if (auto clear = clear_rapdu(resp->sealed, resp->item, resp->rapdu))
        kernel_->feed_rapdu(clear->view());
      else
        kernel_->feed_transmit_failed();
    } else if (auto* batch = std::get_if<emv::contact_kernel::send_apdus>(&st)) {
      co_await run_script(batch->capdus);
    } else if (auto* c = std::get_if<emv::contact_kernel::choose_application>(&st)) {
      pad::menu menu;
      menu.title = c->list.size() == 1 ? "Use this card?" : "Choose account";
      for (const auto& cand : c->list)
        menu.items.push_back(cand.label.empty() ? to_hex(cand.aid) : cand.label);
      pad::message m = menu;
      auto rep = co_await pad_->command(std::move(m), 35s);
      const auto* choice = rep ? std::get_if<pad::menu_choice>(&*rep) : nullptr;
      if (choice && choice->index < c->list.size())
        kernel_->feed_choice(choice->index);
      else
        kernel_->feed_choice_cancelled();
    } else if (auto* p = std::get_if<emv::contact_kernel::need_online_pin>(&st)) {
      if (!pin) {
        kernel_->feed_pin_result(emv::pin_result::failed);
        continue;
      }
      auto r = co_await (*pin)(p->bypass_allowed);
      kernel_->feed_pin_result(r);
    } else if (auto* o = std::get_if<emv::contact_kernel::need_offline_pin>(&st)) {
      pad::offline_pin op;
      op.mode = o->enciphered ? 2 : 1;
      op.modulus = o->icc_pin_key_modulus;
      op.exponent = o->icc_pin_key_exponent;
      op.challenge = o->challenge;
      op.bypass = o->bypass_allowed;
      op.tries_left = o->tries_left;
      op.timeout_ms = ctx_.cfg().cvm.pin_timeout_ms;
      op.prompt = {"Enter PIN"};
      pad::message m = op;
      auto rep =
          co_await pad_->command(std::move(m), std::chrono::milliseconds(ctx_.cfg().cvm.pin_timeout_ms + 5000));
      const auto* res = rep ? std::get_if<pad::offline_pin_result>(&*rep) : nullptr;
      if (!res) {
        kernel_->feed_pin_result(emv::pin_result::failed);
      } else if (res->bypassed) {
        kernel_->feed_pin_result(emv::pin_result::bypassed);
      } else {
        const bytes sw{static_cast<std::uint8_t>(res->sw >> 8), static_cast<std::uint8_t>(res->sw & 0xFF)};
        kernel_->feed_rapdu(sw);
      }
    } else if (std::get_if<emv::contact_kernel::need_signature>(&st)) {
      signature_ = true;
      kernel_->acknowledge();
    } else if (auto* g = std::get_if<emv::contact_kernel::go_online>(&st)) {
      online_ = g->field55;
      co_return;
    } else if (auto* f = std::get_if<emv::contact_kernel::finished>(&st)) {
      finished_ = *f;
      co_return;
    }
  }
}

// An R-APDU as the kernel takes it: a sealed one opened with its DUKPT item, or a clear one when
// keys.require_p2pe allows it; nothing (and the reason logged) otherwise.
std::optional<secure_bytes> chip_flow::clear_rapdu(const secure_bytes& sealed,
                                                   std::optional<std::uint16_t> item,
                                                   const secure_bytes& rapdu) const {
  if (!sealed.empty() && item && dukpt_) {
    auto clear = dukpt_->open(*item, sealed.view());
    if (!clear) {
      spdlog::warn("chip: sealed R-APDU not opened: {}", clear.err().code);
      return std::nullopt;
    }
    return std::move(*clear);
  }
  if (!rapdu.empty() && !ctx_.cfg().keys.require_p2pe) return rapdu;
  spdlog::warn("chip: R-APDU in clear refused (keys.require_p2pe)");
  return std::nullopt;
}

// Commands that change nothing on the card in one round trip (pad protocol apdu_script on the
// powered card, every command run whatever the SW before it). The pad may run fewer than were
// sent (its reply must fit one frame): the kernel sends the rest again.
asio::awaitable<void> chip_flow::run_script(const std::vector<bytes>& capdus) {
  pad::apdu_script script;
  const std::size_t n = std::min<std::size_t>(capdus.size(), 32);  // the protocol's limit
  script.capdus.assign(capdus.begin(), capdus.begin() + static_cast<std::ptrdiff_t>(n));
  script.stop = static_cast<std::uint8_t>(pad::script_stop::run_all);
  script.timeout_ms = 10000;
  pad::message m = std::move(script);
  auto rep = co_await pad_->command(std::move(m), 15s);
  const auto* res = rep ? std::get_if<pad::script_result>(&*rep) : nullptr;
  if (!res) {
    spdlog::warn("chip: APDU script failed: {}", rep ? std::string("unexpected reply") : rep.err().code);
    kernel_->feed_transmit_failed();
    co_return;
  }
  // Sealed ones are the items first_item, first_item + 1, ... of the card's DUKPT transaction.
  const std::size_t count = res->sealed.empty() ? res->rapdus.size() : res->sealed.size();
  if (count == 0) {
    spdlog::warn("chip: APDU script answered nothing");
    kernel_->feed_transmit_failed();
    co_return;
  }
  const secure_bytes none;
  std::vector<secure_bytes> clear;
  for (std::size_t i = 0; i < count; ++i) {
    const auto item = res->first_item
                          ? std::optional<std::uint16_t>(static_cast<std::uint16_t>(*res->first_item + i))
                          : std::nullopt;
    auto one = clear_rapdu(i < res->sealed.size() ? res->sealed[i] : none, item,
                           i < res->rapdus.size() ? res->rapdus[i] : none);
    if (!one) {
      kernel_->feed_transmit_failed();
      co_return;
    }
    clear.push_back(std::move(*one));
  }
  std::vector<byte_view> views;
  views.reserve(clear.size());
  for (const auto& c : clear) views.push_back(c.view());
  kernel_->feed_rapdus(views);
}

asio::awaitable<void> chip_flow::power_off() {
  if (!powered_) co_return;
  powered_ = false;
  pad::message m = pad::power_off{};
  auto rep = co_await pad_->command(std::move(m), 10s);
  if (!rep) spdlog::info("chip: power off: {}", rep.err().code);
}

result<eftd::track2> chip_flow::track2() const {
  auto t57 = kernel_->data().get(0x57);
  if (!t57) return make_error("emv.no_track2", "the card has no track 2 equivalent data (57)");
  return eftd::track2::parse_tag57(*t57);
}

bytes chip_flow::offline_field55() const {
  return emv::build_field55(kernel_->data());
}

std::string chip_flow::pan_sequence() const {
  auto psn = kernel_->data().get(0x5F34);
  if (!psn || psn->size() != 1) return {};
  return fmt::format("{:03}", ((*psn)[0] >> 4) * 10 + ((*psn)[0] & 0x0F));
}

std::string chip_flow::summary() const {
  const auto aid = kernel_->data().get(0x84);
  const auto tvr = kernel_->tvr();
  const auto tsi = kernel_->tsi();
  return fmt::format("AID {} TVR {} TSI {}", aid ? to_hex(*aid) : std::string("-"),
                     to_hex(byte_view(tvr.data(), tvr.size())), to_hex(byte_view(tsi.data(), tsi.size())));
}

std::string chip_flow::receipt_data() const {
  const auto tvr = kernel_->tvr();
  const auto tsi = kernel_->tsi();
  return emv_receipt_data(kernel_->data(), byte_view(tvr.data(), tvr.size()), byte_view(tsi.data(), tsi.size()),
                          contact_cvm_word(kernel_->data(), signature_));
}

}  // namespace eftd::server
