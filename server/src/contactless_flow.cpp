#include "contactless_flow.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "chip_flow.hpp"
#include "eftd/core/bytes.hpp"
#include "emv_receipt.hpp"
#include "pad_session.hpp"
#include "reasons.hpp"

namespace eftd::server {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

emv::contactless_result failed(std::string reason) {
  emv::contactless_result r;
  r.outcome = emv::clss_outcome::end_application;
  r.reason_code = std::move(reason);
  return r;
}

}  // namespace

emv::contactless_config contactless_kernel_config(const config::emv_config& emv) {
  auto c = emv::contactless_config_from(emv.contactless);
  if (c) return std::move(c).value();
  spdlog::warn("contactless: {}; using the default AIDs", c.err().message);
  emv::contactless_config d;
  d.aids = {emv::default_visa_contactless(), emv::default_mastercard_contactless()};
  d.transaction_limit = emv.contactless.transaction_limit;
  d.cvm_required_limit = emv.contactless.cvm_required_limit;
  d.floor_limit = emv.contactless.floor_limit;
  return d;
}

contactless_flow::contactless_flow(server_context& ctx, std::shared_ptr<pad_session> pad,
                                   emv::contactless_cache& cache, const config::emv_config& emv,
                                   std::string_view terminal_id, std::string_view merchant_id,
                                   emv::transaction txn)
    : ctx_(ctx),
      pad_(std::move(pad)),
      cache_(cache),
      cfg_(contactless_kernel_config(emv)),
      terminal_(emv_terminal_config(emv, terminal_id, merchant_id)),
      txn_(std::move(txn)) {}

contactless_flow::~contactless_flow() = default;

asio::awaitable<emv::contactless_result> contactless_flow::tap(std::chrono::milliseconds wait,
                                                               bool in_field) {
  kernel_ = std::make_unique<emv::contactless_kernel>(terminal_, cfg_, cache_,
                                                      ctx_.capks ? &*ctx_.capks : nullptr, txn_);
  dukpt_.reset();
  const auto& script = kernel_->plan();
  if (script.empty()) {
    last_ = kernel_->result();
    co_return last_;
  }
  pad::apdu_script cmd;
  cmd.capdus = script;
  cmd.stop = 0;  // run all: a failed SELECT of an AID the card lacks must not end the tap
  cmd.interface = in_field ? 0 : 3;
  cmd.timeout_ms = static_cast<std::uint32_t>(wait.count());
  pad::message m = cmd;
  const auto deadline = wait + 10s;
  auto rep = co_await pad_->command(std::move(m), deadline);
  const auto* res = rep ? std::get_if<pad::script_result>(&*rep) : nullptr;
  if (res == nullptr) {
    spdlog::info("contactless: tap failed: {}", rep ? std::string("unexpected reply") : rep.err().code);
    last_ = failed("clss.pad_failed");
    co_return last_;
  }
  std::vector<bytes> rapdus;
  if (!res->sealed.empty()) {
    auto keys = ctx_.key_store();
    if (!keys) {
      last_ = failed("clss.unseal_failed");
      co_return last_;
    }
    auto session = keys->begin(res->ksn);
    if (!session || !res->first_item) {
      spdlog::warn("contactless: no DUKPT session for the tap: {}",
                   session ? "no first item" : session.err().code);
      last_ = failed("clss.unseal_failed");
      co_return last_;
    }
    dukpt_.emplace(std::move(session).value());
    for (std::size_t i = 0; i < res->sealed.size(); ++i) {
      auto clear = dukpt_->open(static_cast<std::uint16_t>(*res->first_item + i), res->sealed[i].view());
      if (!clear) {
        spdlog::warn("contactless: sealed R-APDU not opened: {}", clear.err().code);
        for (auto& r : rapdus) secure_wipe(r.data(), r.size());
        last_ = failed("clss.unseal_failed");
        co_return last_;
      }
      rapdus.emplace_back(clear->view().begin(), clear->view().end());
    }
  } else if (!res->rapdus.empty()) {
    if (ctx_.cfg().keys.require_p2pe) {
      spdlog::warn("contactless: R-APDUs in clear refused (keys.require_p2pe)");
      last_ = failed("clss.unsealed_refused");
      co_return last_;
    }
    for (const auto& r : res->rapdus) rapdus.emplace_back(r.view().begin(), r.view().end());
  }
  last_ = kernel_->evaluate(rapdus, res->elapsed_ms);
  for (auto& r : rapdus) secure_wipe(r.data(), r.size());
  co_return last_;
}

void contactless_flow::complete(const std::optional<acquirer_answer>& answer) {
  if (!kernel_) return;
  if (!answer) {
    kernel_->feed_online_failed();
  } else {
    emv::online_result r;
    r.approved = response_code_approves(answer->response_code);
    kernel_->feed_online_result(r);
  }
  last_ = kernel_->result();
}

const emv::contactless_result& contactless_flow::result() const {
  return last_;
}

eftd::result<eftd::track2> contactless_flow::track2() const {
  if (!kernel_) return make_error("emv.no_track2", "no tap yet");
  auto t57 = kernel_->data().get(0x57);
  if (!t57) return make_error("emv.no_track2", "the card has no track 2 equivalent data (57)");
  return eftd::track2::parse_tag57(*t57);
}

bytes contactless_flow::offline_field55() const {
  return kernel_ ? emv::build_field55(kernel_->data()) : bytes{};
}

std::string contactless_flow::pan_sequence() const {
  if (!kernel_) return {};
  auto psn = kernel_->data().get(0x5F34);
  if (!psn || psn->size() != 1) return {};
  return fmt::format("{:03}", ((*psn)[0] >> 4) * 10 + ((*psn)[0] & 0x0F));
}

std::string contactless_flow::summary() const {
  const auto tvr = kernel_ ? kernel_->tvr() : emv::tvr_bytes{};
  return fmt::format("contactless AID {} {} CVM {} TVR {} tap {} ms",
                     last_.aid.empty() ? std::string("-") : to_hex(last_.aid), emv::to_string(last_.outcome),
                     emv::to_string(last_.cvm), to_hex(byte_view(tvr.data(), tvr.size())), last_.tap_ms);
}

std::string contactless_flow::receipt_data() const {
  if (!kernel_) return {};
  const auto tvr = kernel_->tvr();
  std::string_view cvm = "no_cvm";
  switch (last_.cvm) {
    case emv::clss_cvm::online_pin:
      cvm = "online_pin";
      break;
    case emv::clss_cvm::signature:
      cvm = "signature";
      break;
    case emv::clss_cvm::cdcvm_done:
      cvm = "cdcvm";
      break;
    case emv::clss_cvm::none:
      break;
  }
  return emv_receipt_data(kernel_->data(), byte_view(tvr.data(), tvr.size()), {}, cvm);
}

}  // namespace eftd::server
