// eftctl keys run as the real executable: two custodians enter components, the operator lists,
// exports a pad's initial key (checked by unwrapping it with the published KBPK), imports
// published TR-31 blocks (KCV mismatch refused with exit 2), rotates and retires; store errors
// exit 3. Every stdout/stderr line and the store file are scanned for the clear keys' hex.
// All keys are public test vectors (/work/shared/test-vectors.md §1, §2, §4).
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "eftd/core/bytes.hpp"
#include "eftd/core/tr31.hpp"
#include "process.hpp"

namespace fs = std::filesystem;

namespace {

std::string eftctl() {
  const char* v = std::getenv("EFTD_BIN");
  const fs::path dir = v != nullptr && *v != '\0' ? fs::path(v) : fs::path(EFTD_TEST_BIN_DIR);
  return (dir / "eftctl").string();
}

struct run_result {
  int exit_code = -1;
  std::string out;
  std::vector<std::string> err;
};

std::string joined(const std::vector<std::string>& lines) {
  std::ostringstream s;
  for (const auto& l : lines) s << l << "\n";
  return s.str();
}

eftd::bytes hex(const std::string& h) {
  auto b = eftd::from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

std::string xor_hex(const std::string& a, const std::string& b) {
  auto x = hex(a);
  const auto y = hex(b);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] ^= y[i];
  return eftd::to_hex(x);
}

const std::string tdes_kbpk = "DD7515F2BFC17F85CE48F3CA25CB21F6";  // §4 TR-31:2018 A.7.2.2
const std::string aes_kbpk = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";  // §4 A.7.4
const std::string tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";                                  // §1
const std::string next_bdk = "1FA1F7CEC798D91545DA8AE0C7796BD9";  // §4 payShield BDK, KCV FF5087
const std::string ipek = "6AC292FAA1315B4D858AB3A3D7D5933A";      // §1
const std::string comp_a = "A5A5A5A5A5A5A5A5C3C3C3C3C3C3C3C3";
const std::string comp_b = "5A5A5A5A5A5A5A5A3C3C3C3C3C3C3C3C";
const std::string comp_c = comp_a + comp_b;  // 32 bytes
const std::string b_block =
    "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E";
const std::string d_block =
    "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03"
    "A457DC34";

// A store in a fresh directory; every command's output is kept for the final scan.
class fixture {
 public:
  fixture() : dir_(eftd::test::make_temp_dir("eftctl-keys")) {}
  ~fixture() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path store() const { return dir_ / "keys.store"; }
  fs::path master() const { return dir_ / "master.key"; }

  run_result run(std::vector<std::string> args, bool with_store = true) {
    if (with_store) {
      args.insert(args.end(), {"--store", store().string(), "--master-key", master().string()});
    }
    const fs::path err_file = dir_ / "stderr";
    std::error_code ec;
    fs::remove(err_file, ec);  // the child appends
    run_result r;
    {
      eftd::test::process p(eftctl(), std::move(args), err_file.string());
      auto status = p.wait_exit(std::chrono::seconds(30));
      REQUIRE(status.has_value());
      r.exit_code = *status;
      for (const auto& line : p.output()) r.out += line + "\n";
    }
    std::ifstream in(err_file);
    for (std::string line; std::getline(in, line);) r.err.push_back(line);
    all_output_ += r.out + joined(r.err);
    return r;
  }

  run_result ok(std::vector<std::string> args) {
    auto r = run(std::move(args));
    INFO(r.out << joined(r.err));
    CHECK(r.exit_code == 0);
    return r;
  }

  // Failure: nothing on stdout, one "eftctl: ..." line naming `fragment`.
  void fails(std::vector<std::string> args, int code, const std::string& fragment) {
    auto r = run(std::move(args));
    INFO(r.out << joined(r.err));
    CHECK(r.exit_code == code);
    CHECK(r.out.empty());
    REQUIRE(r.err.size() == 1);
    CHECK(r.err[0].rfind("eftctl: ", 0) == 0);
    CHECK(r.err[0].find(fragment) != std::string::npos);
  }

  // Enters `key` as two components (the first being `c1`), as two custodians would.
  void enter(const std::string& name, const std::string& type, const std::string& key,
             const std::string& c1) {
    auto a = ok({"keys", "component", "add", "--name", name, "--type", type, "--component", c1});
    CHECK(a.out.find("component 1 entered") != std::string::npos);
    auto b =
        ok({"keys", "component", "add", "--name", name, "--type", type, "--component", xor_hex(key, c1)});
    CHECK(b.out.find("component 2 entered") != std::string::npos);
    auto f = ok({"keys", "component", "finish", "--name", name});
    CHECK(f.out.find("active") != std::string::npos);
  }

  const std::string& all_output() const { return all_output_; }

 private:
  fs::path dir_;
  std::string all_output_;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The line of `keys list` for name + version.
std::string list_line(const std::string& listing, const std::string& name, const std::string& version) {
  std::istringstream in(listing);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string n, t, v;
    words >> n >> t >> v;
    if (n == name && v == version) return line;
  }
  return {};
}

}  // namespace

TEST_CASE("eftctl keys: custody end to end, and no clear key in any output or the store", "[eftctl][keys]") {
  fixture f;
  // Custodian 1 sees only the KCV of their own component (57C409 is the §4 KCV of this key).
  auto c1 = f.ok({"keys", "component", "add", "--name", "kbpk", "--type", "KBPK-TDES", "--component",
                  "3F419E1CB7079442AA37474C2EFBF8B8"});
  CHECK(c1.out.find("component KCV 57C409") != std::string::npos);
  CHECK(c1.out.find("at least one more component") != std::string::npos);
  // The first component created the master key file, 0600.
  struct stat st {};
  REQUIRE(::stat(f.master().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(f.store().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // One component is not a key.
  f.fails({"keys", "component", "finish", "--name", "kbpk"}, 1, "at least 2 components");
  f.ok({"keys", "component", "add", "--name", "kbpk", "--type", "KBPK-TDES", "--component",
        xor_hex(tdes_kbpk, "3F419E1CB7079442AA37474C2EFBF8B8")});
  auto fin = f.ok({"keys", "component", "finish", "--name", "kbpk"});
  CHECK(fin.out.find("kbpk KBPK-TDES version 1 active") != std::string::npos);
  CHECK(fin.out.find("2 components combined and wiped") != std::string::npos);

  f.enter("kbpk-aes", "KBPK-AES", aes_kbpk, comp_c);
  f.enter("bdk", "BDK-TDES", tdes_bdk, comp_a);

  auto list = f.ok({"keys", "list"});
  CHECK(list.out.rfind("NAME", 0) == 0);
  CHECK(list_line(list.out, "bdk", "1").find("BDK-TDES") != std::string::npos);
  CHECK(list_line(list.out, "bdk", "1").find("active") != std::string::npos);
  CHECK(list_line(list.out, "kbpk-aes", "1").find("KBPK-AES") != std::string::npos);

  // Export the pad's initial key; unwrapping it with the published KBPK gives the §1 IPEK.
  auto exp = f.ok({"keys", "export-ipek", "--bdk", "bdk", "--ksn", "FFFF9876543210E00001", "--kbpk", "kbpk"});
  std::string block = exp.out.substr(0, exp.out.find('\n'));
  CHECK(block[0] == 'B');
  auto k = eftd::tr31::unwrap(hex(tdes_kbpk), block);
  REQUIRE(k.has_value());
  CHECK(eftd::to_hex(k->key.view()) == ipek);
  CHECK(k->hdr.key_usage == "B1");
  REQUIRE(exp.err.size() == 1);
  CHECK(exp.err[0].find(eftd::to_hex(*eftd::tr31::key_check_value('T', k->key.view()))) != std::string::npos);
  auto exp_d = f.ok({"keys", "export-ipek", "--bdk", "bdk", "--ksn", "FFFF9876543210E00001", "--kbpk",
                     "kbpk-aes", "--version", "D"});
  auto kd = eftd::tr31::unwrap(hex(aes_kbpk), exp_d.out.substr(0, exp_d.out.find('\n')));
  REQUIRE(kd.has_value());
  CHECK(eftd::to_hex(kd->key.view()) == ipek);
  f.fails({"keys", "export-ipek", "--bdk", "bdk", "--ksn", "FFFF9876543210E00001", "--kbpk", "kbpk",
           "--version", "D"},
          2, "keystore.bad_usage");

  // Import published blocks: KCV mismatch refused (exit 2, nothing stored), match accepted.
  f.fails({"keys", "import", "--kbpk", "kbpk", "--block", b_block, "--name", "zpk", "--expect-kcv", "57C408"},
          2, "keystore.kcv_mismatch");
  CHECK(list_line(f.ok({"keys", "list"}).out, "zpk", "1").empty());
  std::string tampered = b_block;
  tampered[30] = tampered[30] == '0' ? '1' : '0';
  f.fails(
      {"keys", "import", "--kbpk", "kbpk", "--block", tampered, "--name", "zpk", "--expect-kcv", "57C409"}, 2,
      "tr31.mac_mismatch");
  auto imp = f.ok(
      {"keys", "import", "--kbpk", "kbpk", "--block", b_block, "--name", "zpk", "--expect-kcv", "57C409"});
  CHECK(imp.out == "zpk ZPK-TDES version 1 active, KCV 57C409\n");
  auto imp_aes = f.ok({"keys", "import", "--kbpk", "kbpk-aes", "--block", d_block, "--name", "zpk-aes",
                       "--expect-kcv", "08793E25AB"});
  CHECK(imp_aes.out == "zpk-aes ZPK-AES version 1 active, KCV 08793E25AB\n");

  // Rotate the BDK to the §4 payShield BDK: new components, old version retired but listed.
  f.fails({"keys", "component", "add", "--name", "bdk", "--type", "BDK-TDES", "--component", comp_b}, 2,
          "keystore.exists");
  auto rot = f.ok({"keys", "rotate", "--name", "bdk"});
  CHECK(rot.out.find("rotation started") != std::string::npos);
  f.ok({"keys", "component", "add", "--name", "bdk", "--type", "BDK-TDES", "--component", comp_b});
  f.ok({"keys", "component", "add", "--name", "bdk", "--type", "BDK-TDES", "--component",
        xor_hex(next_bdk, comp_b)});
  auto fin2 = f.ok({"keys", "component", "finish", "--name", "bdk"});
  CHECK(fin2.out.find("bdk BDK-TDES version 2 active, KCV FF5087") != std::string::npos);
  list = f.ok({"keys", "list"});
  CHECK(list_line(list.out, "bdk", "1").find("retired") != std::string::npos);
  CHECK(list_line(list.out, "bdk", "2").find("active") != std::string::npos);
  CHECK(list_line(list.out, "bdk", "2").find("FF5087") != std::string::npos);
  // New pads get initial keys from version 2.
  auto exp2 =
      f.ok({"keys", "export-ipek", "--bdk", "bdk", "--ksn", "FFFF9876543210E00001", "--kbpk", "kbpk"});
  auto k2 = eftd::tr31::unwrap(hex(tdes_kbpk), exp2.out.substr(0, exp2.out.find('\n')));
  REQUIRE(k2.has_value());
  CHECK(eftd::to_hex(k2->key.view()) != ipek);

  f.fails({"keys", "retire", "--name", "bdk", "--version", "2"}, 2, "keystore.active_version");
  auto ret = f.ok({"keys", "retire", "--name", "bdk", "--version", "1"});
  CHECK(ret.out.find("bdk BDK-TDES version 1 destroyed") != std::string::npos);
  list = f.ok({"keys", "list"});
  CHECK(list_line(list.out, "bdk", "1").find("destroyed") != std::string::npos);

  // The scan: no clear key or component, in upper or lower case hex, in any output or the store.
  const std::string store_text = read_text(f.store());
  const std::vector<std::string> secrets = {
      tdes_kbpk,
      aes_kbpk,
      tdes_bdk,
      next_bdk,
      ipek,
      k2->key.view().empty() ? std::string("-") : eftd::to_hex(k2->key.view()),
      "3F419E1CB7079442AA37474C2EFBF8B8",
      xor_hex(tdes_kbpk, "3F419E1CB7079442AA37474C2EFBF8B8"),
      comp_a,
      comp_b,
      comp_c,
      xor_hex(tdes_bdk, comp_a),
      xor_hex(next_bdk, comp_b),
      xor_hex(aes_kbpk, comp_c),
      "3F419E1CB7079442AA37474C2EFBF8B8",  // the imported ZPK (TDES and AES)
  };
  for (const auto& s : secrets) {
    INFO("secret #" << (&s - secrets.data()));
    CHECK(f.all_output().find(s) == std::string::npos);
    CHECK(f.all_output().find(lower(s)) == std::string::npos);
    CHECK(store_text.find(s) == std::string::npos);
    CHECK(store_text.find(lower(s)) == std::string::npos);
    const auto raw = hex(s);
    CHECK(std::search(store_text.begin(), store_text.end(), raw.begin(), raw.end()) == store_text.end());
  }
}

TEST_CASE("eftctl keys: store errors exit 3, bad input exits 2", "[eftctl][keys]") {
  fixture f;
  f.fails({"keys", "list"}, 3, "keystore.not_found");
  f.fails({"keys", "component", "add", "--name", "k", "--type", "BDK-TDES", "--component", "0123XYZ"}, 2,
          "--component");
  f.fails({"keys", "component", "add", "--name", "k", "--type", "DEK", "--component", tdes_bdk}, 2,
          "keystore.bad_type");
  f.fails({"keys", "component", "add", "--name", "k", "--type", "BDK-TDES", "--component", "0123"}, 2,
          "keystore.bad_key");
  f.enter("bdk", "BDK-TDES", tdes_bdk, comp_a);
  f.fails({"keys", "component", "finish", "--name", "other"}, 1, "keystore.no_components");
  f.fails({"keys", "export-ipek", "--bdk", "bdk", "--ksn", "FFFF9876543210E00001", "--kbpk", "nope"}, 2,
          "keystore.no_such_key");
  f.fails({"keys", "export-ipek", "--bdk", "bdk", "--ksn", "FFFF98", "--kbpk", "bdk", "--version", "X"}, 2,
          "--version");
  f.fails({"keys", "import", "--kbpk", "bdk", "--block", b_block, "--name", "z", "--expect-kcv", "57C409"}, 2,
          "not a KBPK");

  // Wrong master key: its own message, exit 3.
  const std::string real_master = read_text(f.master());
  {
    std::ofstream out(f.master(), std::ios::trunc);
    out << std::string(64, '7') << "\n";
  }
  f.fails({"keys", "list"}, 3, "keystore.wrong_master_key");
  {
    std::ofstream out(f.master(), std::ios::trunc);
    out << real_master;
  }
  REQUIRE(f.run({"keys", "list"}).exit_code == 0);

  // A master key readable by others is refused.
  ::chmod(f.master().c_str(), 0644);
  f.fails({"keys", "list"}, 3, "keystore.insecure_mode");
  ::chmod(f.master().c_str(), 0600);

  // One flipped byte in the sealed part: tampered, exit 3.
  std::string store = read_text(f.store());
  store[store.size() / 2] = static_cast<char>(store[store.size() / 2] ^ 0x40);
  {
    std::ofstream out(f.store(), std::ios::binary | std::ios::trunc);
    out << store;
  }
  f.fails({"keys", "list"}, 3, "keystore.tampered");
}
