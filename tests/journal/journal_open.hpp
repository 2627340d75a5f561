// Opening the journal in tests: a writer or a reader that must open (the test stops with the
// error code and message otherwise), and a status as its code ("ok" when it succeeded).
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "eftd/journal/reader.hpp"
#include "eftd/journal/writer.hpp"

namespace journal_test {

inline std::unique_ptr<eftd::journal::writer> open_writer(const std::filesystem::path& db,
                                                          eftd::journal::writer_options opts = {}) {
  auto w = eftd::journal::writer::open(db, opts);
  INFO((w ? "" : w.err().code + ": " + w.err().message));
  REQUIRE(w);
  return std::move(*w);
}

inline eftd::journal::reader open_reader(const std::filesystem::path& db) {
  auto r = eftd::journal::reader::open(db);
  INFO((r ? "" : r.err().code + ": " + r.err().message));
  REQUIRE(r);
  return std::move(*r);
}

inline std::string code_of(const eftd::status& st) {
  return st ? "ok" : st.err().code;
}

}  // namespace journal_test
