// Settlement against eftd's journal: what eftd believes settles (export), and the comparison
// of an acquirer's file with it (match).
//
// What settles: orders of kind sale or completion (debit) or refund (credit) in state approved, whose
// financial request (MTI 02xx, not a reversal) to the acquirer was answered 00 or 10 and is not
// reversed. One detail each, at the approved amount. Cancelled and reversed orders do not settle.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eftd/core/result.hpp"
#include "eftd/settlement/layout.hpp"

namespace eftd::settlement {

struct journal_query {
  std::optional<std::string> acquirer;  // unset: every acquirer
  std::string business_date;            // YYYY-MM-DD
};

// The settling transactions, ordered by terminal id, then creation time, then RRN.
// Errors: the journal's (journal.open_failed, ...).
result<std::vector<detail>> journal_details(const std::filesystem::path& db, const journal_query& q);

// A whole file for one acquirer and business date: header (acquirer, date), details, trailer.
result<file> export_file(const std::filesystem::path& db, const std::string& acquirer,
                         const std::string& business_date);

struct difference {
  detail in_file;
  detail in_journal;
  std::vector<std::string> fields;  // detail field names that differ: amount, auth_code, date, rrn
};

struct match_report {
  std::vector<detail> matched;
  std::vector<detail> only_in_file;
  std::vector<detail> only_in_journal;
  std::vector<difference> differences;  // same transaction, figures differ (amount differences here)
  bool all_matched() const noexcept {
    return only_in_file.empty() && only_in_journal.empty() && differences.empty();
  }
};

// Pairs each file detail with a journal detail by terminal id + RRN; the pair matches when auth
// code, amount and date agree too (a difference names the fields that do not). A file detail
// without such a pair is paired by terminal id + auth code + amount + date instead (the RRN then
// counts as a difference). What remains is only in the file / only in the journal. Each journal
// detail pairs at most once.
match_report match(const std::vector<detail>& file_details, const std::vector<detail>& journal);

// The same with the layout's [match] keys and confirmation fields (detail field names).
match_report match(const std::vector<detail>& file_details, const std::vector<detail>& journal,
                   const std::vector<std::string>& keys, const std::vector<std::string>& confirm);

// What a match report is about, for its exports: the journal side's business date
// (YYYY-MM-DD) and acquirer ("" = every acquirer); layout is written to the JSON when set.
struct match_subject {
  std::string business_date;
  std::string acquirer;
  std::optional<std::string> layout;
};

// A match report for other systems (eftctl settlement match --format json, the back office's
// JSON download): {"date","acquirer"[,"layout"],"all_matched","matched","only_in_file",
// "only_in_journal","differences":[{"file","journal","fields"}]}, indented, newline-terminated.
std::string match_json(const match_report& r, const match_subject& about);

// The same rows for spreadsheets: RFC 4180 CSV (CRLF), header line first, one line per detail,
// differences as two lines (file, journal) naming the fields that differ. Problems come first,
// as on the page: differences, only in file, only in journal, matched.
std::string match_csv(const match_report& r, const match_subject& about);

}  // namespace eftd::settlement
