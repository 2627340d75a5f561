// The POS message layouts as data: for every message type its wire "type" and its fields
// (wire name, member, required or optional). The codec's encoder and decoder are both
// driven by these tables, so the two cannot disagree; PROTOCOL.md documents the same table.
#pragma once

#include <string_view>
#include <tuple>

#include "eftd/pos/messages.hpp"

namespace eftd::pos::detail {

enum class presence { required, optional };
inline constexpr presence req = presence::required;
inline constexpr presence opt = presence::optional;

template <class M, class T>
struct field {
  std::string_view name;
  T M::*member;
  presence p;
};

template <class M, class T>
constexpr field<M, T> f(std::string_view name, T M::*member, presence p) {
  return {name, member, p};
}

// schema<M>::type is the wire "type" (top-level messages only); schema<M>::fields lists the
// fields in wire order.
template <class M>
struct schema;

template <>
struct schema<reason> {
  static constexpr auto fields =
      std::make_tuple(f("code", &reason::code, req), f("cashier_text", &reason::cashier_text, opt),
                      f("customer_text", &reason::customer_text, opt));
};

template <>
struct schema<receipt> {
  static constexpr auto fields =
      std::make_tuple(f("merchant", &receipt::merchant, opt), f("customer", &receipt::customer, opt));
};

template <>
struct schema<login> {
  static constexpr std::string_view type = "login";
  static constexpr auto fields =
      std::make_tuple(f("id", &login::id, req), f("till_id", &login::till_id, req),
                      f("operator_id", &login::operator_id, opt), f("client", &login::client, opt),
                      f("version", &login::version, req), f("capabilities", &login::capabilities, opt));
};

template <>
struct schema<logout> {
  static constexpr std::string_view type = "logout";
  static constexpr auto fields = std::make_tuple(f("id", &logout::id, req));
};

template <>
struct schema<sale> {
  static constexpr std::string_view type = "sale";
  static constexpr auto fields = std::make_tuple(
      f("id", &sale::id, req), f("order_no", &sale::order_no, req), f("amount", &sale::amount, req),
      f("currency", &sale::currency, req), f("cashback", &sale::cashback, opt), f("tip", &sale::tip, opt),
      f("business_date", &sale::business_date, opt));
};

template <>
struct schema<refund> {
  static constexpr std::string_view type = "refund";
  static constexpr auto fields = std::make_tuple(
      f("id", &refund::id, req), f("order_no", &refund::order_no, req), f("amount", &refund::amount, req),
      f("currency", &refund::currency, req), f("original_order_no", &refund::original_order_no, opt),
      f("original_business_date", &refund::original_business_date, opt),
      f("business_date", &refund::business_date, opt));
};

template <>
struct schema<preauth> {
  static constexpr std::string_view type = "preauth";
  static constexpr auto fields =
      std::make_tuple(f("id", &preauth::id, req), f("order_no", &preauth::order_no, req),
                      f("amount", &preauth::amount, req), f("currency", &preauth::currency, req));
};

template <>
struct schema<completion> {
  static constexpr std::string_view type = "completion";
  static constexpr auto fields =
      std::make_tuple(f("id", &completion::id, req), f("order_no", &completion::order_no, req),
                      f("preauth_order_no", &completion::preauth_order_no, req),
                      f("amount", &completion::amount, req), f("currency", &completion::currency, req));
};

template <>
struct schema<incremental> {
  static constexpr std::string_view type = "incremental";
  static constexpr auto fields =
      std::make_tuple(f("id", &incremental::id, req), f("order_no", &incremental::order_no, req),
                      f("preauth_order_no", &incremental::preauth_order_no, req),
                      f("amount", &incremental::amount, req), f("currency", &incremental::currency, req));
};

template <>
struct schema<cancel> {
  static constexpr std::string_view type = "cancel";
  static constexpr auto fields =
      std::make_tuple(f("id", &cancel::id, req), f("order_no", &cancel::order_no, req),
                      f("business_date", &cancel::business_date, opt));
};

template <>
struct schema<balance_inquiry> {
  static constexpr std::string_view type = "balance_inquiry";
  static constexpr auto fields =
      std::make_tuple(f("id", &balance_inquiry::id, req), f("order_no", &balance_inquiry::order_no, req));
};

template <>
struct schema<status_query> {
  static constexpr std::string_view type = "status_query";
  static constexpr auto fields =
      std::make_tuple(f("id", &status_query::id, req), f("order_no", &status_query::order_no, req),
                      f("business_date", &status_query::business_date, opt));
};

template <>
struct schema<answer> {
  static constexpr std::string_view type = "answer";
  static constexpr auto fields = std::make_tuple(
      f("id", &answer::id, req), f("prompt_id", &answer::prompt_id, req), f("value", &answer::value, req));
};

template <>
struct schema<abort_tx> {
  static constexpr std::string_view type = "abort";
  static constexpr auto fields =
      std::make_tuple(f("id", &abort_tx::id, req), f("order_no", &abort_tx::order_no, req));
};

template <>
struct schema<heartbeat> {
  static constexpr std::string_view type = "heartbeat";
  static constexpr auto fields = std::make_tuple(f("id", &heartbeat::id, req));
};

template <>
struct schema<totals> {
  static constexpr std::string_view type = "totals";
  static constexpr auto fields =
      std::make_tuple(f("id", &totals::id, req), f("business_date", &totals::business_date, opt));
};

template <>
struct schema<totals_line> {
  static constexpr auto fields =
      std::make_tuple(f("kind", &totals_line::kind, req), f("outcome", &totals_line::outcome, req),
                      f("currency", &totals_line::currency, req), f("count", &totals_line::count, req),
                      f("amount", &totals_line::amount, req));
};

template <>
struct schema<totals_report> {
  static constexpr std::string_view type = "totals_report";
  static constexpr auto fields =
      std::make_tuple(f("id", &totals_report::id, req), f("till_id", &totals_report::till_id, req),
                      f("business_date", &totals_report::business_date, req),
                      f("lines", &totals_report::lines, opt), f("net", &totals_report::net, opt));
};

template <>
struct schema<login_ok> {
  static constexpr std::string_view type = "login_ok";
  static constexpr auto fields =
      std::make_tuple(f("id", &login_ok::id, req), f("server", &login_ok::server, req),
                      f("business_date", &login_ok::business_date, req),
                      f("version", &login_ok::version, req), f("capabilities", &login_ok::capabilities, opt));
};

template <>
struct schema<status> {
  static constexpr std::string_view type = "status";
  static constexpr auto fields =
      std::make_tuple(f("id", &status::id, opt), f("order_no", &status::order_no, req),
                      f("stage", &status::stage, opt), f("text", &status::text, req));
};

template <>
struct schema<prompt> {
  static constexpr std::string_view type = "prompt";
  static constexpr auto fields =
      std::make_tuple(f("id", &prompt::id, opt), f("prompt_id", &prompt::prompt_id, req),
                      f("order_no", &prompt::order_no, req), f("kind", &prompt::kind, req),
                      f("text", &prompt::text, req), f("options", &prompt::options, opt),
                      f("timeout_ms", &prompt::timeout_ms, opt), f("default", &prompt::default_value, opt));
};

template <>
struct schema<result> {
  static constexpr std::string_view type = "result";
  static constexpr auto fields = std::make_tuple(
      f("id", &result::id, req), f("order_no", &result::order_no, req), f("outcome", &result::outcome, req),
      f("business_date", &result::business_date, opt), f("amount", &result::amount, opt),
      f("approved_amount", &result::approved_amount, opt), f("currency", &result::currency, opt),
      f("auth_code", &result::auth_code, opt), f("masked_pan", &result::masked_pan, opt),
      f("scheme", &result::scheme, opt), f("entry_mode", &result::entry_mode, opt),
      f("terminal_id", &result::terminal_id, opt), f("stan", &result::stan, opt), f("rrn", &result::rrn, opt),
      f("reason", &result::why, opt), f("emv", &result::emv, opt), f("receipt", &result::rcpt, opt),
      f("balance", &result::balance, opt));
};

template <>
struct schema<order_status> {
  static constexpr std::string_view type = "order_status";
  static constexpr auto fields = std::make_tuple(
      f("id", &order_status::id, req), f("order_no", &order_status::order_no, req),
      f("state", &order_status::state, req), f("business_date", &order_status::business_date, opt),
      f("last_result", &order_status::last_result, opt));
};

template <>
struct schema<error> {
  static constexpr std::string_view type = "error";
  static constexpr auto fields = std::make_tuple(
      f("id", &error::id, opt), f("code", &error::code, req), f("message", &error::message, req),
      f("order_no", &error::order_no, opt), f("active_server", &error::active_server, opt));
};

template <>
struct schema<heartbeat_ack> {
  static constexpr std::string_view type = "heartbeat_ack";
  static constexpr auto fields = std::make_tuple(f("id", &heartbeat_ack::id, req));
};

template <>
struct schema<logout_ok> {
  static constexpr std::string_view type = "logout_ok";
  static constexpr auto fields = std::make_tuple(f("id", &logout_ok::id, req));
};

}  // namespace eftd::pos::detail
