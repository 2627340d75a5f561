// Back-office page "Settlement file": staff upload an acquirer's settlement file, choose its
// layout (the shipped ones only: a name typed in a form never opens a file here) and see it
// matched against the journal by the same code as `eftctl settlement match`
// (acquirers/settlement reconcile.hpp): matched, only in the file, only in the journal,
// differences. Kept apart from backoffice_pages.hpp so that including the pages does not pull
// in the settlement library.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backoffice_auth.hpp"

namespace eftd::server::backoffice {

// The largest file accepted (the request body of POST /settlement/file): a day of a busy
// acquirer is a few MiB in either shipped layout.
inline constexpr std::size_t max_settlement_upload = 16 * 1024 * 1024;

// One part of a multipart/form-data body (RFC 7578). body points into the request body.
struct form_part {
  std::string name;
  std::optional<std::string> filename;  // set for file fields
  std::string_view body;
};

// The parts of `body`, with the boundary from `content_type` ("multipart/form-data;
// boundary=..."). nullopt: not multipart/form-data, or not well-formed.
std::optional<std::vector<form_part>> parse_multipart(std::string_view content_type, std::string_view body);

struct page_reply {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::string attachment;  // file name for Content-Disposition, empty: shown inline
};

// GET: the upload form (with `message` above it, e.g. what was wrong with the last upload).
std::string settlement_file_form(const session& s, std::string_view message);

// POST: `layout_name` is "fixed-width" or "csv"; `format` "html" (the page), "json" or "csv"
// (an attachment, settlement::match_json / match_csv). The business date and acquirer come from the file's header. 400 with the form
// and the reason for a file that does not decode; 500 when the journal cannot be read.
page_reply settlement_file_match(const session& s, const std::filesystem::path& db,
                                 std::string_view layout_name, std::string_view file_bytes,
                                 std::string_view format);

}  // namespace eftd::server::backoffice
