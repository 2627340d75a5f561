// Export from the journal and matching of an acquirer's file against it.
#include "eftd/settlement/reconcile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "eftd/core/money.hpp"
#include "eftd/journal/reader.hpp"
#include "eftd/reports/orders.hpp"

namespace eftd::settlement {

namespace {

bool approved_code(const std::optional<std::string>& rc) {
  return rc && (*rc == "00" || *rc == "10");
}

// The transaction's local date and time: eftd sends fields 12/13 from the same clock reading.
std::pair<std::string, std::string> local_date_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  return {fmt::format("{:04}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday),
          fmt::format("{:02}{:02}{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)};
}

}  // namespace

result<std::vector<detail>> journal_details(const std::filesystem::path& db, const journal_query& q) {
  auto reader = journal::reader::open(db);
  if (!reader) return reader.err();
  journal::order_filter filter;
  filter.business_date_from = q.business_date;
  filter.business_date_to = q.business_date;
  filter.state = "approved";
  filter.limit = 10000;
  struct row {
    detail d;
    std::int64_t created_ms;
  };
  std::vector<row> rows;
  for (;;) {
    auto orders = reader->list_orders(filter);
    if (!orders) return orders.err();
    for (const auto& o : *orders) {
      if (o.kind != "sale" && o.kind != "refund" && o.kind != "completion") continue;
      auto view = reader->order_detail(o.order_id);
      if (!view) return view.err();
      if (!*view) continue;
      // The answered, approved financial request: a fallback leaves a failed first message.
      const journal::acquirer_message_row* msg = nullptr;
      for (const auto& m : (*view)->messages) {
        if (m.mti.size() != 4 || m.mti[1] != '2') continue;
        if (q.acquirer && m.acquirer != *q.acquirer) continue;
        if (m.state == "answered" && approved_code(m.response_code)) msg = &m;
      }
      if (msg == nullptr) continue;
      const journal::operation_row* op = nullptr;
      for (const auto& p : (*view)->operations)
        if (p.op_id == msg->op_id) op = &p;
      detail d;
      d.terminal_id = msg->terminal_id;
      d.merchant_id = o.merchant_id;
      d.rrn = msg->rrn.value_or("");
      d.auth_code = msg->auth_code.value_or(op && op->auth_code ? *op->auth_code : "");
      d.stan = fmt::format("{:06}", msg->stan);
      d.amount = o.approved_amount_minor.value_or(msg->amount_minor);
      if (const auto* c = find_currency(msg->currency)) d.currency = fmt::format("{:03}", c->numeric);
      std::tie(d.date, d.time) = local_date_time(msg->created_ms);
      if (op && op->pan_masked && is_masked_pan(*op->pan_masked)) d.pan_masked = *op->pan_masked;
      d.kind = o.kind == "refund" ? entry_kind::credit : entry_kind::debit;
      d.response_code = msg->response_code.value_or("");
      rows.push_back({std::move(d), msg->created_ms});
    }
    if (orders->size() < filter.limit) break;
    filter.offset += filter.limit;
  }
  std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) {
    return std::tie(a.d.terminal_id, a.created_ms, a.d.rrn) <
           std::tie(b.d.terminal_id, b.created_ms, b.d.rrn);
  });
  std::vector<detail> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r.d));
  return out;
}

result<file> export_file(const std::filesystem::path& db, const std::string& acquirer,
                         const std::string& business_date) {
  auto details = journal_details(db, {acquirer, business_date});
  if (!details) return details.err();
  file f;
  f.header.acquirer = acquirer;
  f.header.date = business_date.substr(0, 4) + business_date.substr(5, 2) + business_date.substr(8, 2);
  f.details = std::move(*details);
  f.trailer = totals_of(f.details);
  return f;
}

match_report match(const std::vector<detail>& file_details, const std::vector<detail>& journal) {
  return match(file_details, journal, {"terminal_id", "rrn"}, {"auth_code", "amount", "date"});
}

match_report match(const std::vector<detail>& file_details, const std::vector<detail>& journal,
                   const std::vector<std::string>& keys, const std::vector<std::string>& confirm) {
  auto key_of = [](const detail& d, const std::vector<std::string>& names) {
    std::string k;
    for (const auto& n : names) k += field_value(d, n) + '\x1f';
    return k;
  };
  // The fallback pairs on the terminal plus the confirmation fields.
  std::vector<std::string> fallback{"terminal_id"};
  for (const auto& c : confirm)
    if (c != "terminal_id") fallback.push_back(c);

  std::multimap<std::string, std::size_t> by_key, by_fallback;
  for (std::size_t i = 0; i < journal.size(); ++i) {
    by_key.emplace(key_of(journal[i], keys), i);
    by_fallback.emplace(key_of(journal[i], fallback), i);
  }
  std::vector<bool> used(journal.size(), false);
  auto take = [&](std::multimap<std::string, std::size_t>& index,
                  const std::string& k) -> std::optional<std::size_t> {
    auto [lo, hi] = index.equal_range(k);
    for (auto it = lo; it != hi; ++it)
      if (!used[it->second]) {
        used[it->second] = true;
        return it->second;
      }
    return std::nullopt;
  };

  match_report r;
  std::vector<const detail*> unpaired;
  for (const auto& f : file_details) {
    auto j = take(by_key, key_of(f, keys));
    if (!j) {
      unpaired.push_back(&f);
      continue;
    }
    difference d{f, journal[*j], {}};
    for (const auto& c : confirm)
      if (field_value(f, c) != field_value(journal[*j], c)) d.fields.push_back(c);
    if (f.kind != journal[*j].kind) d.fields.push_back("kind");
    if (d.fields.empty())
      r.matched.push_back(f);
    else
      r.differences.push_back(std::move(d));
  }
  // Second pass, after every key pair is taken, so a fallback never steals a key's partner.
  for (const auto* f : unpaired) {
    auto j = take(by_fallback, key_of(*f, fallback));
    if (!j) {
      r.only_in_file.push_back(*f);
      continue;
    }
    difference d{*f, journal[*j], {}};
    for (const auto& k : keys)
      if (field_value(*f, k) != field_value(journal[*j], k)) d.fields.push_back(k);
    r.differences.push_back(std::move(d));
  }
  for (std::size_t i = 0; i < journal.size(); ++i)
    if (!used[i]) r.only_in_journal.push_back(journal[i]);
  return r;
}

namespace {

const char* kind_name(entry_kind k) {
  return k == entry_kind::credit ? "credit" : "debit";
}

nlohmann::json detail_json(const detail& d) {
  return {{"terminal_id", d.terminal_id},
          {"rrn", d.rrn},
          {"auth_code", d.auth_code},
          {"stan", d.stan},
          {"amount", d.amount},
          {"kind", kind_name(d.kind)},
          {"date", d.date},
          {"time", d.time},
          {"pan_masked", d.pan_masked}};
}

}  // namespace

std::string match_json(const match_report& r, const match_subject& about) {
  nlohmann::json out;
  out["date"] = about.business_date;
  out["acquirer"] = about.acquirer;
  if (about.layout) out["layout"] = *about.layout;
  out["all_matched"] = r.all_matched();
  auto list = [](const std::vector<detail>& v) {
    auto j = nlohmann::json::array();
    for (const auto& d : v) j.push_back(detail_json(d));
    return j;
  };
  out["matched"] = list(r.matched);
  out["only_in_file"] = list(r.only_in_file);
  out["only_in_journal"] = list(r.only_in_journal);
  out["differences"] = nlohmann::json::array();
  for (const auto& d : r.differences)
    out["differences"].push_back(
        {{"file", detail_json(d.in_file)}, {"journal", detail_json(d.in_journal)}, {"fields", d.fields}});
  return out.dump(2) + "\n";
}

std::string match_csv(const match_report& r, const match_subject& about) {
  std::string out;
  auto line = [&](std::string_view result, const detail& d, std::string_view fields) {
    const std::string cells[] = {about.business_date,
                                 about.acquirer,
                                 std::string(result),
                                 d.terminal_id,
                                 d.rrn,
                                 d.auth_code,
                                 d.stan,
                                 std::to_string(d.amount),
                                 kind_name(d.kind),
                                 d.date,
                                 d.time,
                                 d.pan_masked,
                                 std::string(fields)};
    bool first = true;
    for (const auto& c : cells) {
      out += first ? "" : ",";
      out += reports::csv_field(c);
      first = false;
    }
    out += "\r\n";
  };
  out +=
      "business_date,acquirer,result,terminal_id,rrn,auth_code,stan,amount_minor,kind,date,time,pan_masked,"
      "fields_differing\r\n";
  for (const auto& d : r.differences) {
    std::string fields;
    for (const auto& f : d.fields) fields += (fields.empty() ? "" : " ") + f;
    line("difference (file)", d.in_file, fields);
    line("difference (journal)", d.in_journal, fields);
  }
  for (const auto& d : r.only_in_file) line("only in file", d, {});
  for (const auto& d : r.only_in_journal) line("only in journal", d, {});
  for (const auto& d : r.matched) line("matched", d, {});
  return out;
}

}  // namespace eftd::settlement
