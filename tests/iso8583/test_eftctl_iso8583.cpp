// `eftctl iso8583 decode` run as the real executable: every field printed with card data
// masked, all framings and input forms, and exit 2 with one line on stderr for bad input.
// The inputs carry the public test card 4761739001010119; the checks make sure it never
// comes out (they print positions, and the tool's output is masked by design).
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "eftd/acq/codec.hpp"
#include "eftd/acq/framing.hpp"
#include "wire.hpp"

namespace fs = std::filesystem;
using namespace eftd;
using wire::a;
using wire::h;

namespace {

fs::path eftctl() {
  const char* v = std::getenv("EFTD_BIN");
  return (v != nullptr && *v != '\0' ? fs::path(v) : fs::path(EFTD_TEST_BIN_DIR)) / "eftctl";
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

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "eftctl-iso-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary) << content;
    return path / name;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs eftctl with `args`, feeding `input` on stdin; stdout and stderr kept apart.
run_result run(const std::string& args, const std::string& input = "") {
  temp_dir t;
  t.write("in", input);
  const std::string cmd = quote(eftctl().string()) + " " + args + " <" + quote((t.path / "in").string()) +
                          " >" + quote((t.path / "out").string()) + " 2>" + quote((t.path / "err").string());
  const int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));  // a signal (crash) fails the test
  return {WEXITSTATUS(status), t.read("out"), t.read("err")};
}

std::size_t lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

constexpr std::string_view icc =
    "9F26081122334455667788"
    "5A084761739001010119"  // the card's PAN inside field 55: hidden
    "9F0206000000012500";

acq::message sale() {
  acq::message m{"0200"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(11, "000123");
  m.set(14, "2512");
  m.set(35, "4761739001010119D25122011143800000");
  m.set(41, "TERM0001");
  m.set(52, wire::raw("0123456789ABCDEF"));
  m.set(55, wire::raw(icc));
  return m;
}

bytes packed(const char* dialect, const acq::message& m) {
  auto p = acq::pack(*acq::find_dialect(dialect), m);
  REQUIRE(p.has_value());
  return *p;
}

bytes framed(const char* framing, const bytes& message) {
  auto o = acq::parse_framing(framing);
  REQUIRE(o.has_value());
  if (o->tpdu) o->tpdu = acq::tpdu_header{0x60, 0x0001, 0x0123};
  auto c = acq::frame_codec::create(*o);
  REQUIRE(c.has_value());
  auto f = c->encode(message);
  REQUIRE(f.has_value());
  return *f;
}

// No card data in anything the tool printed.
void check_no_card_data(const run_result& r) {
  for (const std::string* s : {&r.out, &r.err}) {
    CHECK(s->find("4761739001010119") == std::string::npos);
    CHECK(s->find("2512201114") == std::string::npos);  // track 2 after the separator
    CHECK(s->find("0123456789ABCDEF") == std::string::npos);
    CHECK(s->find("5A084761") == std::string::npos);
  }
}

// The output line holding `text`, "" if none.
std::string line_with(const std::string& out, std::string_view text) {
  const auto at = out.find(text);
  if (at == std::string::npos) return "";
  const auto begin = out.rfind('\n', at);
  const auto end = out.find('\n', at);
  return out.substr(
      begin == std::string::npos ? 0 : begin + 1,
      (end == std::string::npos ? out.size() : end) - (begin == std::string::npos ? 0 : begin + 1));
}

void check_sale_fields(const run_result& r) {
  INFO(r.out << r.err);  // masked output: safe to show
  CHECK(r.out.find("MTI 0200 financial request") != std::string::npos);
  CHECK(r.out.find("Processing code") != std::string::npos);
  CHECK(r.out.find("000000012500") != std::string::npos);
  CHECK(r.out.find("TERM0001") != std::string::npos);
  CHECK(r.out.find("476173******0119D*****************") != std::string::npos);
  CHECK(line_with(r.out, "Date, expiration (YYMM)").ends_with(" ****"));
  CHECK(r.out.find("<PIN block hidden, 8 bytes>") != std::string::npos);
  CHECK(r.out.find("30 bytes BER-TLV") != std::string::npos);
  CHECK(r.out.find("9F26 (8): 1122334455667788") != std::string::npos);
  CHECK(r.out.find("5A (8): <hidden>") != std::string::npos);
  CHECK(r.out.find("9F02 (6): 000000012500") != std::string::npos);
  check_no_card_data(r);
}

}  // namespace

TEST_CASE("eftctl iso8583 decode: iso87-bcd behind bcd2+tpdu from --hex", "[eftctl][bcd]") {
  const auto hex = to_hex(framed("bcd2+tpdu", packed("iso87-bcd", sale())));
  const auto r = run("iso8583 decode --dialect iso87-bcd --framing bcd2+tpdu --hex " + hex);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("frame 1: ") != std::string::npos);
  CHECK(r.out.find("TPDU 60 0001 0123") != std::string::npos);
  check_sale_fields(r);
}

TEST_CASE("eftctl iso8583 decode: every framing of both dialects, raw file with keep-alives", "[eftctl]") {
  for (const char* dialect : {"iso87-ascii", "iso87-bcd"}) {
    for (const char* framing : {"binary2", "ascii4", "bcd2", "binary2+tpdu", "ascii4+tpdu", "bcd2+tpdu"}) {
      INFO(dialect << " " << framing);
      // keep-alive, sale, keep-alive, echo test
      auto o = acq::parse_framing(framing);
      REQUIRE(o.has_value());
      auto c = acq::frame_codec::create(*o);
      REQUIRE(c.has_value());
      acq::message echo{"0800"};
      echo.set(7, "0615120000");
      echo.set(11, "000001");
      echo.set(70, "301");
      bytes stream = c->keep_alive();
      for (const auto& f : {framed(framing, packed(dialect, sale())), c->keep_alive(),
                            framed(framing, packed(dialect, echo))})
        stream.insert(stream.end(), f.begin(), f.end());

      temp_dir t;
      const auto file = t.write("capture.bin", std::string(stream.begin(), stream.end()));
      const auto r = run(std::string("iso8583 decode --dialect ") + dialect + " --framing " + framing +
                         " --raw --file " + quote(file.string()));
      CHECK(r.exit_code == 0);
      CHECK(r.err.empty());
      CHECK(r.out.find("frame 2: ") != std::string::npos);
      CHECK(r.out.find("MTI 0800 network management request") != std::string::npos);
      CHECK(r.out.find("Network management information code") != std::string::npos);
      CHECK(r.out.find("keep-alive frames: 2") != std::string::npos);
      check_sale_fields(r);
    }
  }
}

TEST_CASE("eftctl iso8583 decode: hex on stdin or in a file, whitespace and newlines ignored", "[eftctl]") {
  std::string hex = to_hex(packed("iso87-ascii", sale()));
  for (std::size_t i = 32; i < hex.size(); i += 33) hex.insert(i, i % 2 ? "\n" : " ");
  hex += "\n";
  auto r = run("iso8583 decode --dialect iso87-ascii", hex);  // --framing none: one message
  CHECK(r.exit_code == 0);
  check_sale_fields(r);

  temp_dir t;
  const auto file = t.write("capture.hex", hex);
  r = run("iso8583 decode --dialect iso87-ascii --file " + quote(file.string()));
  CHECK(r.exit_code == 0);
  check_sale_fields(r);
}

TEST_CASE("eftctl iso8583 decode: one message behind a TPDU without a length header", "[eftctl][bcd]") {
  bytes in = wire::build({h("6000010123")});
  const bytes msg = packed("iso87-bcd", sale());
  in.insert(in.end(), msg.begin(), msg.end());
  const auto r = run("iso8583 decode --dialect iso87-bcd --framing tpdu --hex " + to_hex(in));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("TPDU 60 0001 0123 (destination 0001, source 0123)") != std::string::npos);
  check_sale_fields(r);
}

TEST_CASE("eftctl iso8583 decode: bad input exits 2 with one line naming the problem",
          "[eftctl][malformed]") {
  const auto good = to_hex(packed("iso87-bcd", sale()));
  // 35 claims 40 characters: the error names the field, not the track.
  const auto too_long = to_hex(wire::build(
      {h("0200"), h("0000000020000000"), h("40"), h("4761739001010119D25122011143800000000000")}));
  struct bad {
    std::string args;
    std::string stdin_text;
    std::string expect;  // in the one stderr line
  };
  const std::vector<bad> cases = {
      {"--dialect iso87-bcd --hex 02001", "", "--hex: odd number of hex digits"},
      {"--dialect iso87-bcd --hex 02XY", "", "--hex: not hexadecimal"},
      {"--dialect iso93-binary --hex " + good, "", "--dialect: unknown dialect 'iso93-binary'"},
      {"--dialect iso87-bcd --framing binary4 --hex " + good, "", "--framing: unknown framing 'binary4'"},
      {"--dialect iso87-bcd --framing binary2_tpdu --hex " + good, "", "--framing: unknown framing"},
      {"--dialect iso87-bcd --hex " + too_long, "",
       "field 35: length 40 exceeds 37 (iso8583.field_too_long)"},
      {"--dialect iso87-bcd --hex " + good.substr(0, 40), "", "(iso8583.truncated_field)"},
      {"--dialect iso87-ascii --hex " + good, "", "(iso8583.bad_mti)"},
      {"--dialect iso87-bcd", "", "no input"},
      {"--dialect iso87-bcd", "  \n", "no input"},
      {"--dialect iso87-bcd", "0200 3", "input: odd number of hex digits"},
      {"--dialect iso87-bcd --framing bcd2 --hex 0010" + good.substr(0, 8), "",
       "input ends inside frame 1 (6 bytes left over)"},
      {"--dialect iso87-bcd --framing bcd2 --hex 00A0", "", "frame 1: length header is not 4 BCD digits"},
      {"--dialect iso87-bcd --framing bcd2+tpdu --hex 00106800010123" + good.substr(0, 10), "",
       "frame 1: TPDU ID is 0x68, expected 0x60 (frame.bad_tpdu)"},
      {"--dialect iso87-bcd --framing tpdu --hex 600001", "", "TPDU needs 5 bytes, have 3 (frame.bad_tpdu)"},
  };
  for (const auto& c : cases) {
    INFO(c.args);
    const auto r = run("iso8583 decode " + c.args, c.stdin_text);
    CHECK(r.exit_code == 2);
    CHECK(lines(r.err) == 1);
    CHECK(r.err.rfind("eftctl: iso8583 decode: ", 0) == 0);
    CHECK(r.err.find(c.expect) != std::string::npos);
    check_no_card_data(r);
  }
}

TEST_CASE("eftctl iso8583 decode: command-line errors exit 2, an unreadable file 3", "[eftctl]") {
  auto r = run("iso8583 decode --hex 0800");  // --dialect is required
  CHECK(r.exit_code == 2);
  r = run("iso8583 decode --dialect iso87-bcd --hex 08 --file /dev/null");  // one input only
  CHECK(r.exit_code == 2);
  r = run("iso8583 decode --dialect iso87-bcd --file /nonexistent/capture.bin");
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("cannot read /nonexistent/capture.bin") != std::string::npos);
}
