// eftctl run as a real executable: exit codes and output of `config check` and `journal orders`.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "eftd/journal/records.hpp"
#include "eftd/journal/writer.hpp"

namespace fs = std::filesystem;

namespace {

// EFTD_BIN / EFTD_SOURCE come from CTest; the compile-time fallbacks let the executable also
// run by hand (and cover a CTest ENVIRONMENT that lost an entry).
fs::path env_path(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? fs::path(v) : fs::path(fallback);
}

fs::path eftctl() {
  return env_path("EFTD_BIN", EFTD_TEST_BIN_DIR) / "eftctl";
}
fs::path source_root() {
  return env_path("EFTD_SOURCE", EFTD_TEST_SOURCE_DIR);
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

struct run_result {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

run_result run(const std::string& args) {
  const std::string cmd = quote(eftctl().string()) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  run_result r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  REQUIRE(WIFEXITED(status));  // a signal (crash) fails the test
  r.exit_code = WEXITSTATUS(status);
  return r;
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "eftctl-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return path / name;
  }
};

}  // namespace

TEST_CASE("eftctl config check accepts the example config") {
  const auto file = (source_root() / "etc/eftd.example.toml").string();
  const auto r = run("config check " + quote(file));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out == file + ": OK (1 merchants, 2 tills, 2 acquirers)\n");
}

TEST_CASE("eftctl config check on the demo config notes the port placeholder, --set fills it") {
  const auto file = (source_root() / "etc/demo.toml").string();
  auto r = run("config check " + quote(file));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find(": OK (1 merchants, 2 tills, 1 acquirers)") != std::string::npos);
  CHECK(r.out.find("note: acquirers[0].port: placeholder 0") != std::string::npos);

  r = run("config check " + quote(file) + " --set acquirers.sim.port=9300");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("note:") == std::string::npos);

  r = run("config check " + quote(file) + " --set acquirers.nope.port=9300");
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("--set acquirers.nope.port: unknown acquirer 'nope'") != std::string::npos);
}

TEST_CASE("eftctl config check prints every error and exits 1") {
  temp_dir d;
  const auto file =
      d.write("bad.toml",
              "[server]\nlisen = 1\n[journal]\ngroup_commit_max = 0\n"
              "[[tills]]\nid = \"T1\"\nstore = \"nowhere\"\npad = \"P9\"\nterminal_id = \"TERM0001\"\n")
          .string();
  const auto r = run("config check " + quote(file));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(file + ": server.lisen: unknown key") != std::string::npos);
  CHECK(r.out.find(file + ": journal.group_commit_max: must be a positive integer") != std::string::npos);
  CHECK(r.out.find(file + ": tills[0].store: unknown store 'nowhere'") != std::string::npos);
  CHECK(r.out.find(file + ": tills[0].pad: unknown pad 'P9'") != std::string::npos);
  CHECK(r.out.find(file + ": INVALID (4 problems)") != std::string::npos);
}

TEST_CASE("eftctl config check: syntax error exits 1, missing file exits 3, bad usage exits 2") {
  temp_dir d;
  const auto file = d.write("syntax.toml", "[server\nnode_name = 1\n").string();
  auto r = run("config check " + quote(file));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(file + ":1:") != std::string::npos);

  r = run("config check " + quote((d.path / "absent.toml").string()));
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("cannot open") != std::string::npos);

  r = run("config check");
  CHECK(r.exit_code == 2);
  r = run("frobnicate");
  CHECK(r.exit_code == 2);
  r = run("--help");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Exit codes:") != std::string::npos);
}

TEST_CASE("eftctl journal orders lists orders as table, CSV and JSON with filters") {
  temp_dir d;
  const auto db = d.path / "eftd.db";
  {
    auto w = eftd::journal::writer::open(db, 16);
    REQUIRE(w.has_value());
    eftd::journal::batch b;
    eftd::journal::order_created o1;
    o1.order_id = "A1";
    o1.merchant_id = "M001";
    o1.store_id = "S01";
    o1.till_id = "T01";
    o1.order_no = "4711";
    o1.business_date = "2024-05-01";
    o1.kind = "sale";
    o1.amount_minor = 12500;
    o1.currency = "PLN";
    o1.state = "approved";
    o1.created_ms = 1714557600000;
    auto o2 = o1;
    o2.order_id = "A2";
    o2.till_id = "T02";
    o2.order_no = "=cmd,\"x\"";
    o2.state = "declined";
    o2.created_ms += 1000;
    b.records.emplace_back(o1);
    b.records.emplace_back(o2);
    auto st = (*w)->submit_sync(std::move(b));
    INFO((st ? std::string() : st.err().message));
    REQUIRE(st.has_value());
    (*w)->close();
  }

  auto r = run("journal orders --db " + quote(db.string()) + " --format json");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["order_no"] == "4711");
  CHECK(j[0]["amount"] == "125.00");
  CHECK(j[0]["created"] == "2024-05-01T10:00:00.000Z");

  r = run("journal orders --db " + quote(db.string()) + " --till T02 --format csv");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("created,business_date,") == 0);
  CHECK(r.out.find("\"'=cmd,\"\"x\"\"\"") != std::string::npos);  // quoted and defused
  CHECK(r.out.find("4711") == std::string::npos);

  r = run("journal orders --db " + quote(db.string()) + " --state approved --date 2024-05-01");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("4711") != std::string::npos);
  CHECK(r.out.find("declined") == std::string::npos);
  CHECK(r.out.find("(1 order)") != std::string::npos);

  r = run("journal orders --db " + quote(db.string()) + " --date 2024-13-01");
  CHECK(r.exit_code == 2);
  r = run("journal orders --db " + quote(db.string()) + " --format xml");
  CHECK(r.exit_code == 2);
  r = run("journal orders --db " + quote((d.path / "none.db").string()));
  CHECK(r.exit_code == 3);
}
