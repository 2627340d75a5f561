#include "eftd/reports/orders.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "util.hpp"

namespace eftd::reports {

namespace {

using detail::amount_text;
using detail::iso_time;

struct column {
  std::string_view name;
  std::string (*get)(const journal::order_row&);
};

const std::vector<column>& order_columns() {
  static const std::vector<column> cols{
      {"created", [](const journal::order_row& r) { return iso_time(r.created_ms); }},
      {"business_date", [](const journal::order_row& r) { return r.business_date; }},
      {"merchant", [](const journal::order_row& r) { return r.merchant_id; }},
      {"store", [](const journal::order_row& r) { return r.store_id; }},
      {"till", [](const journal::order_row& r) { return r.till_id; }},
      {"order_no", [](const journal::order_row& r) { return r.order_no; }},
      {"kind", [](const journal::order_row& r) { return r.kind; }},
      {"amount", [](const journal::order_row& r) { return amount_text(r.amount_minor, r.currency); }},
      {"currency", [](const journal::order_row& r) { return r.currency; }},
      {"state", [](const journal::order_row& r) { return r.state; }},
      {"result_code", [](const journal::order_row& r) { return r.result_code.value_or(""); }},
      {"reason", [](const journal::order_row& r) { return r.reason_cashier.value_or(""); }},
      {"order_id", [](const journal::order_row& r) { return r.order_id; }},
  };
  return cols;
}

nlohmann::json order_json(const journal::order_row& r) {
  nlohmann::json j{
      {"order_id", r.order_id}, {"merchant_id", r.merchant_id},   {"store_id", r.store_id},
      {"till_id", r.till_id},   {"order_no", r.order_no},         {"business_date", r.business_date},
      {"kind", r.kind},         {"amount_minor", r.amount_minor}, {"currency", r.currency},
      {"state", r.state},       {"created_ms", r.created_ms},     {"updated_ms", r.updated_ms}};
  if (r.result_code) j["result_code"] = *r.result_code;
  if (r.reason_cashier) j["reason_cashier"] = *r.reason_cashier;
  if (r.reason_customer) j["reason_customer"] = *r.reason_customer;
  if (r.approved_amount_minor) j["approved_amount_minor"] = *r.approved_amount_minor;
  j["amount"] = amount_text(r.amount_minor, r.currency);
  j["created"] = iso_time(r.created_ms);
  return j;
}

std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  return detail::text_table(header, rows);
}

}  // namespace

result<format> parse_format(std::string_view name) {
  if (name == "table") return format::table;
  if (name == "csv") return format::csv;
  if (name == "json") return format::json;
  return make_error("reports.bad_format", fmt::format("unknown format '{}': use table, csv or json", name));
}

std::string csv_field(std::string_view in) {
  std::string v(in);
  // Text a spreadsheet would run as a formula gets a leading apostrophe: journal free text
  // can come from peers.
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '@' || v[0] == '\t' || v[0] == '\r'))
    v.insert(0, "'");
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string render_orders(const std::vector<journal::order_row>& rows, format f) {
  const auto& cols = order_columns();
  if (f == format::json) {
    auto arr = nlohmann::json::array();
    for (const auto& r : rows) arr.push_back(order_json(r));
    return arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::vector<std::string> header;
  for (const auto& c : cols) header.emplace_back(c.name);
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (const auto& c : cols) line.push_back(c.get(r));
    cells.push_back(std::move(line));
  }
  if (f == format::table)
    return table(header, cells) + fmt::format("({} order{})\n", rows.size(), rows.size() == 1 ? "" : "s");
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    for (std::size_t i = 0; i < line.size(); ++i) out += (i ? "," : "") + csv_field(line[i]);
    out += "\r\n";
  };
  emit(header);
  for (const auto& l : cells) emit(l);
  return out;
}

std::string render_order_detail(const journal::order_view& v, format f) {
  if (f == format::json) {
    nlohmann::json j = order_json(v.order);
    j["operations"] = nlohmann::json::array();
    for (const auto& o : v.operations) {
      nlohmann::json oj{
          {"op_id", o.op_id}, {"kind", o.kind}, {"state", o.state}, {"amount_minor", o.amount_minor}};
      if (o.entry_mode) oj["entry_mode"] = *o.entry_mode;
      if (o.scheme) oj["scheme"] = *o.scheme;
      if (o.pan_masked) oj["pan_masked"] = *o.pan_masked;
      if (o.auth_code) oj["auth_code"] = *o.auth_code;
      if (o.response_code) oj["response_code"] = *o.response_code;
      j["operations"].push_back(oj);
    }
    j["messages"] = nlohmann::json::array();
    for (const auto& m : v.messages) {
      nlohmann::json mj{{"msg_id", m.msg_id}, {"acquirer", m.acquirer}, {"terminal_id", m.terminal_id},
                        {"mti", m.mti},       {"stan", m.stan},         {"local_datetime", m.local_datetime},
                        {"state", m.state}};
      if (m.rrn) mj["rrn"] = *m.rrn;
      if (m.response_code) mj["response_code"] = *m.response_code;
      j["messages"].push_back(mj);
    }
    j["events"] = nlohmann::json::array();
    for (const auto& e : v.events)
      j["events"].push_back({{"at_ms", e.at_ms},
                             {"actor", std::string(journal::to_string(e.actor))},
                             {"kind", e.kind},
                             {"reason", e.reason},
                             {"detail", e.detail}});
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::vector<std::string> header{"time", "actor", "event", "reason"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : v.events)
    rows.push_back({iso_time(e.at_ms), std::string(journal::to_string(e.actor)), e.kind, e.reason});
  if (f == format::csv) {
    std::string out;
    auto emit = [&](const std::vector<std::string>& line) {
      for (std::size_t i = 0; i < line.size(); ++i) out += (i ? "," : "") + csv_field(line[i]);
      out += "\r\n";
    };
    emit(header);
    for (const auto& r : rows) emit(r);
    return out;
  }
  std::string out =
      fmt::format("Order {} (till {}, business date {}): {} {} {} -> {}\n", v.order.order_no, v.order.till_id,
                  v.order.business_date, v.order.kind, amount_text(v.order.amount_minor, v.order.currency),
                  v.order.currency, v.order.state);
  for (const auto& o : v.operations)
    out += fmt::format("  operation {} {}: {} card {} {} auth {} rc {}\n", o.kind, o.op_id.substr(0, 8),
                       o.state, o.scheme.value_or("-"), o.pan_masked.value_or("-"), o.auth_code.value_or("-"),
                       o.response_code.value_or("-"));
  for (const auto& m : v.messages)
    out += fmt::format("  acquirer {} {} terminal {} STAN {:06} RRN {}: {} rc {}\n", m.acquirer, m.mti,
                       m.terminal_id, m.stan, m.rrn.value_or("-"), m.state, m.response_code.value_or("-"));
  return out + table(header, rows);
}

}  // namespace eftd::reports
