#include "backoffice_settlement_file.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "backoffice_pages.hpp"
#include "eftd/settlement/layout.hpp"
#include "eftd/settlement/reconcile.hpp"

namespace eftd::server::backoffice {

namespace st = eftd::settlement;

namespace {

std::string e(std::string_view s) {
  return html_escape(s);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of `key` among "; key=value" parameters of a header value (quotes removed).
std::optional<std::string> header_param(std::string_view value, std::string_view key) {
  while (!value.empty()) {
    const auto semi = value.find(';');
    auto item = trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || lower(trim(item.substr(0, eq))) != key) continue;
    auto v = trim(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return std::string(v);
  }
  return std::nullopt;
}

std::string detail_row(std::string_view result, const st::detail& d, std::string_view fields = {}) {
  return fmt::format(
      "<tr class=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td "
      "class=\"num\">{5}</td><td>{6}</td><td>{7} {8}</td><td>{9}</td></tr>\n",
      e(result), e(d.terminal_id), e(d.rrn), e(d.auth_code), e(d.stan), format_minor(d.amount),
      d.kind == st::entry_kind::credit ? "credit" : "debit", e(d.date), e(d.time), e(fields));
}

std::string upload_form(const session& s) {
  return fmt::format(
      "<p>Match an acquirer's settlement file against the journal: the business date and acquirer are "
      "taken from the file's header. At most {} MiB.</p>\n"
      "<form method=\"post\" action=\"/settlement/file\" enctype=\"multipart/form-data\">\n"
      "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n"
      "<label>Layout <select name=\"layout\"><option value=\"fixed-width\">fixed-width</option>"
      "<option value=\"csv\">csv</option></select></label>\n"
      "<label>Result as <select name=\"format\"><option value=\"html\">page</option>"
      "<option value=\"json\">JSON file</option><option value=\"csv\">CSV file</option></select></label>\n"
      "<label>File <input type=\"file\" name=\"file\" required></label>\n"
      "<button type=\"submit\">Match</button>\n</form>\n",
      max_settlement_upload / (1024 * 1024), e(s.csrf));
}

}  // namespace

std::optional<std::vector<form_part>> parse_multipart(std::string_view content_type, std::string_view body) {
  const auto semi = content_type.find(';');
  if (lower(trim(content_type.substr(0, semi))) != "multipart/form-data" || semi == std::string_view::npos)
    return std::nullopt;
  auto boundary = header_param(content_type.substr(semi + 1), "boundary");
  // RFC 2046: 1..70 characters.
  if (!boundary || boundary->empty() || boundary->size() > 70) return std::nullopt;
  const std::string delim = "--" + *boundary;
  const std::string next_delim = "\r\n" + delim;
  std::vector<form_part> parts;
  auto pos = body.find(delim);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += delim.size();
  for (;;) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return std::nullopt;
    pos += 2;
    const auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return std::nullopt;
    const auto content = head_end + 4;
    const auto end = body.find(next_delim, content);
    if (end == std::string_view::npos) return std::nullopt;
    form_part p;
    auto headers = body.substr(pos, head_end - pos);
    while (!headers.empty()) {
      const auto eol = headers.find("\r\n");
      const auto line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || lower(trim(line.substr(0, colon))) != "content-disposition")
        continue;
      const auto value = line.substr(colon + 1);
      const auto vsemi = value.find(';');
      if (vsemi == std::string_view::npos) continue;
      p.name = header_param(value.substr(vsemi + 1), "name").value_or("");
      p.filename = header_param(value.substr(vsemi + 1), "filename");
    }
    p.body = body.substr(content, end - content);
    parts.push_back(std::move(p));
    pos = end + next_delim.size();
  }
}

std::string settlement_file_form(const session& s, std::string_view message) {
  std::string b;
  if (!message.empty()) b += fmt::format("<p class=\"problem\" id=\"problem\">{}</p>\n", e(message));
  return layout(s, "Settlement file", b + upload_form(s));
}

page_reply settlement_file_match(const session& s, const std::filesystem::path& db,
                                 std::string_view layout_name, std::string_view file_bytes,
                                 std::string_view format) {
  auto refuse = [&](int status, std::string_view why) {
    return page_reply{status, "text/html; charset=utf-8", settlement_file_form(s, why), {}};
  };
  // Shipped layouts only: a layout is a file name elsewhere, and a form must not open files.
  if (layout_name != "fixed-width" && layout_name != "csv") return refuse(400, "Layout: fixed-width or csv.");
  auto l = st::shipped_layout(layout_name);
  if (!l) return refuse(500, "The layout could not be loaded: " + l.err().message);
  if (file_bytes.empty()) return refuse(400, "The file is empty: choose a settlement file.");
  auto f = st::decode(*l, file_bytes);
  if (!f)
    return refuse(400, "The file does not decode as " + std::string(layout_name) + ": " + f.err().message);
  const auto& hd = f->header.date;
  if (hd.size() != 8) return refuse(400, "The file's header has no business date.");
  st::journal_query q;
  q.business_date = hd.substr(0, 4) + "-" + hd.substr(4, 2) + "-" + hd.substr(6, 2);
  if (!f->header.acquirer.empty()) q.acquirer = f->header.acquirer;
  auto journal = st::journal_details(db, q);
  if (!journal) {
    spdlog::error("back office: settlement match: journal read failed: {}", journal.err().message);
    return refuse(500, "The journal could not be read; see the server log.");
  }
  const auto r = st::match(f->details, *journal, l->match_keys, l->match_confirm);
  const std::string acquirer = q.acquirer.value_or("");

  // The downloads come from the settlement library, as `eftctl settlement match` writes them.
  const st::match_subject about{q.business_date, acquirer, std::string(layout_name)};
  if (format == "json")
    return {200, "application/json; charset=utf-8", st::match_json(r, about),
            fmt::format("settlement-match-{}.json", q.business_date)};
  if (format == "csv")
    return {200, "text/csv; charset=utf-8", st::match_csv(r, about),
            fmt::format("settlement-match-{}.csv", q.business_date)};

  std::string b = fmt::format(
      "<p id=\"summary\" class=\"{}\">Business date {}, acquirer {}, layout {}: matched {}, only in file {}, "
      "only in journal {}, differences {}: <strong>{}</strong></p>\n",
      r.all_matched() ? "ok" : "differs", e(q.business_date), e(acquirer.empty() ? "(any)" : acquirer),
      e(layout_name), r.matched.size(), r.only_in_file.size(), r.only_in_journal.size(), r.differences.size(),
      r.all_matched() ? "all matched" : "differences");
  b += "<table id=\"match\"><thead><tr><th>Result</th><th>Terminal</th><th>RRN</th><th>Auth</th><th>STAN</th>"
       "<th>Amount</th><th>Kind</th><th>Date</th><th>Fields that differ</th></tr></thead><tbody>\n";
  // Problems first: they are what staff came for.
  for (const auto& d : r.differences) {
    std::string fields;
    for (const auto& x : d.fields) fields += (fields.empty() ? "" : ", ") + x;
    b += detail_row("difference (file)", d.in_file, fields);
    b += detail_row("difference (journal)", d.in_journal, fields);
  }
  for (const auto& d : r.only_in_file) b += detail_row("only in file", d);
  for (const auto& d : r.only_in_journal) b += detail_row("only in journal", d);
  for (const auto& d : r.matched) b += detail_row("matched", d);
  b += "</tbody></table>\n<h2>Another file</h2>\n" + upload_form(s);
  return {200, "text/html; charset=utf-8", layout(s, "Settlement file", b), {}};
}

}  // namespace eftd::server::backoffice
