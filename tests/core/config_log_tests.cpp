// Logging: JSON lines are valid JSON, text lines stay single lines, card data is masked.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eftd/core/card.hpp"
#include "eftd/core/log.hpp"

namespace fs = std::filesystem;

namespace {

// A fresh log file per test; removed afterwards.
struct temp_log {
  fs::path dir;
  fs::path file;
  temp_log() {
    std::string tmpl = (fs::temp_directory_path() / "eftd-log-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    file = dir / "test.log";
  }
  ~temp_log() {
    eftd::init_logging(eftd::config::logging{}, "test");  // closes the file before it is removed
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::vector<std::string> lines() const {
    eftd::logger()->flush();
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
};

eftd::config::logging log_cfg(const fs::path& file, const char* format, const char* level = "info") {
  eftd::config::logging c;
  c.file = file;
  c.format = format;
  c.level = level;
  return c;
}

}  // namespace

TEST_CASE("JSON log output is one valid JSON object per line, with escaping") {
  temp_log t;
  REQUIRE(eftd::try_init_logging(log_cfg(t.file, "json"), "eftd-test").has_value());
  spdlog::info("plain message {}", 42);
  spdlog::warn("quote \" backslash \\ newline \n tab \t bell \x07 done");
  spdlog::error("unicode z\xc5\xbc\xc3\xb3\xc5\x82w");
  const auto lines = t.lines();
  REQUIRE(lines.size() == 3);
  std::vector<nlohmann::json> docs;
  for (const auto& l : lines) {
    INFO(l);
    REQUIRE_NOTHROW(docs.push_back(nlohmann::json::parse(l)));
  }
  CHECK(docs[0]["level"] == "info");
  CHECK(docs[0]["proc"] == "eftd-test");
  CHECK(docs[0]["msg"] == "plain message 42");
  const std::string ts = docs[0]["ts"];
  CHECK(ts.size() == 24);  // 2024-05-01T12:00:00.123Z
  CHECK(ts[10] == 'T');
  CHECK(ts.back() == 'Z');
  CHECK(docs[1]["level"] == "warn");
  CHECK(docs[1]["msg"] == "quote \" backslash \\ newline \n tab \t bell \x07 done");
  CHECK(docs[2]["msg"] == "unicode z\xc5\xbc\xc3\xb3\xc5\x82w");
  CHECK(docs[0].size() == 4);
}

TEST_CASE("text log lines carry timestamp, level, process and stay one line each") {
  temp_log t;
  REQUIRE(eftd::try_init_logging(log_cfg(t.file, "text"), "eftctl").has_value());
  spdlog::info("first\nforged 2024-01-01T00:00:00.000Z info [eftd] line");
  const auto lines = t.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(" info [eftctl] first\\nforged") != std::string::npos);
  CHECK(lines[0][10] == 'T');
}

TEST_CASE("the configured level filters lower levels") {
  temp_log t;
  REQUIRE(eftd::try_init_logging(log_cfg(t.file, "json", "warn"), "eftd").has_value());
  spdlog::info("hidden");
  spdlog::debug("hidden");
  spdlog::warn("shown");
  const auto lines = t.lines();
  REQUIRE(lines.size() == 1);
  CHECK(nlohmann::json::parse(lines[0])["msg"] == "shown");
}

TEST_CASE("a PAN logged through fmt appears only masked") {
  temp_log t;
  REQUIRE(eftd::try_init_logging(log_cfg(t.file, "json"), "eftd").has_value());
  auto p = eftd::pan::parse("4111111111111111");
  REQUIRE(p.has_value());
  spdlog::info("card read: {}", *p);
  auto t2 = eftd::track2::parse(";4111111111111111=25121011234567890?");
  REQUIRE(t2.has_value());
  spdlog::info("track: {}", *t2);
  const auto lines = t.lines();
  REQUIRE(lines.size() == 2);
  for (const auto& l : lines) {
    CHECK(l.find("4111111111111111") == std::string::npos);
    CHECK(l.find("1234567890") == std::string::npos);
  }
  CHECK(nlohmann::json::parse(lines[0])["msg"] == "card read: 411111******1111");
  CHECK(nlohmann::json::parse(lines[1])["msg"] == "track: track2[411111******1111]");
}

TEST_CASE("logging set-up errors are typed and leave a working logger") {
  temp_log t;
  std::ofstream(t.dir / "plain-file") << "x";
  // spdlog creates missing directories, so make one impossible: a path below a regular file.
  const fs::path impossible = t.dir / "plain-file" / "sub" / "y.log";
  auto st = eftd::try_init_logging(log_cfg(impossible, "text"), "eftd");
  REQUIRE_FALSE(st.has_value());
  CHECK(st.err().code == "log.file");
  CHECK(eftd::try_init_logging(log_cfg("", "xml"), "eftd").err().code == "log.format");
  CHECK(eftd::try_init_logging(log_cfg("", "text", "loud"), "eftd").err().code == "log.level");
  eftd::init_logging(log_cfg(impossible, "text"), "eftd");  // falls back to stderr
  REQUIRE(eftd::logger() != nullptr);
  CHECK(eftd::logger()->level() == spdlog::level::info);
}
