// Key store: KCVs against the published values of /work/shared/test-vectors.md (§1, §2, §4),
// dual-control components, the encrypted file (round trip, tamper detection, wrong master key,
// master key file mode), rotation and retirement, and TR-31 export/import with the published
// KBPKs. Every key printed on a failure here is a public test vector.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "eftd/core/bytes.hpp"
#include "eftd/core/keystore.hpp"
#include "eftd/core/tr31.hpp"

namespace fs = std::filesystem;
namespace ks = eftd::keystore;
using eftd::bytes;

namespace {

bytes hex(const char* h) {
  auto b = eftd::from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

bytes xor_of(const bytes& a, const bytes& b) {
  bytes out = a;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] ^= b[i];
  return out;
}

std::string kcv_hex(const eftd::result<bytes>& r) {
  REQUIRE(r.has_value());
  return eftd::to_hex(*r);
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("eftd-keystore-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<ks::file_master_key> master(std::uint8_t fill) {
  auto mk = ks::file_master_key::from_key(bytes(32, fill));
  REQUIRE(mk.has_value());
  return std::move(*mk);
}

bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A key entered as two components whose XOR is `key` (the first component is `c1`).
void enter(ks::key_store& s, const char* name, ks::key_type t, const bytes& key, const bytes& c1) {
  REQUIRE(s.add_component(name, t, c1, 100).has_value());
  REQUIRE(s.add_component(name, t, xor_of(key, c1), 101).has_value());
  auto k = s.finish_components(name, 102);
  REQUIRE(k.has_value());
}

const char* const tdes_kbpk = "DD7515F2BFC17F85CE48F3CA25CB21F6";  // §4 TR-31:2018 A.7.2.2
const char* const aes_kbpk = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";  // §4 A.7.4
const char* const tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";                                  // §1
const char* const aes_bdk = "FEDCBA9876543210F1F1F1F1F1F1F1F1";                                   // §2
const char* const mask = "A5A5A5A5A5A5A5A5C3C3C3C3C3C3C3C35A5A5A5A5A5A5A5A3C3C3C3C3C3C3C3C";

bytes first(const char* h, std::size_t n) {
  bytes b = hex(h);
  b.resize(n);
  return b;
}

}  // namespace

TEST_CASE("key check values match the published KCVs", "[keystore]") {
  // TDES: TDES-ECB of 8 zero bytes, 3 bytes (§4 table).
  CHECK(kcv_hex(ks::check_value(ks::key_type::zpk_tdes, hex("F039121BEC83D26B169BDCD5B22AAF8F"))) ==
        "CB9DEA");
  CHECK(kcv_hex(ks::check_value(ks::key_type::kbpk_tdes, hex("3F419E1CB7079442AA37474C2EFBF8B8"))) ==
        "57C409");
  CHECK(kcv_hex(ks::check_value(ks::key_type::bdk_tdes, hex("1FA1F7CEC798D91545DA8AE0C7796BD9"))) ==
        "FF5087");
  // AES: the X9.143 CMAC KCV, 5 bytes (§4, X9.143:2021 §8.1).
  CHECK(kcv_hex(ks::check_value(ks::key_type::zpk_aes, hex("3F419E1CB7079442AA37474C2EFBF8B8"))) ==
        "08793E25AB");
  CHECK(ks::check_value(ks::key_type::bdk_aes256, hex(aes_bdk)).err().code == "keystore.bad_key");
}

TEST_CASE("key type names parse and print", "[keystore]") {
  for (auto t :
       {ks::key_type::bdk_tdes, ks::key_type::bdk_aes128, ks::key_type::bdk_aes256, ks::key_type::kbpk_tdes,
        ks::key_type::kbpk_aes, ks::key_type::zpk_tdes, ks::key_type::zpk_aes, ks::key_type::mak_tdes}) {
    auto back = ks::parse_key_type(ks::to_string(t));
    REQUIRE(back.has_value());
    CHECK(*back == t);
  }
  CHECK(*ks::parse_key_type("zpk") == ks::key_type::zpk_tdes);
  CHECK(*ks::parse_key_type("mak") == ks::key_type::mak_tdes);
  CHECK(ks::to_string(ks::key_type::mak_tdes) == "MAK-TDES");
  CHECK(ks::parse_key_type("DEK").err().code == "keystore.bad_type");
}

TEST_CASE("components combine by XOR into a key with the published KCV", "[keystore]") {
  ks::key_store s;
  const bytes key = hex("F039121BEC83D26B169BDCD5B22AAF8F");  // KCV CB9DEA
  const bytes c1 = hex("3F419E1CB7079442AA37474C2EFBF8B8");   // KCV 57C409
  auto a = s.add_component("zpk1", ks::key_type::zpk_tdes, c1, 10);
  REQUIRE(a.has_value());
  CHECK(a->index == 1);
  CHECK(eftd::to_hex(a->kcv) == "57C409");
  // Not a key yet: one custodian alone holds nothing usable.
  CHECK(s.active("zpk1").err().code == "keystore.no_such_key");
  CHECK(s.finish_components("zpk1", 11).err().code == "keystore.no_components");

  auto b = s.add_component("zpk1", ks::key_type::zpk_tdes, xor_of(key, c1), 12);
  REQUIRE(b.has_value());
  CHECK(b->index == 2);
  CHECK(b->kcv.size() == 3);
  CHECK(eftd::to_hex(b->kcv) != "CB9DEA");
  auto k = s.finish_components("zpk1", 13);
  REQUIRE(k.has_value());
  CHECK(eftd::to_hex(k->kcv) == "CB9DEA");
  CHECK(k->version == 1);
  CHECK(k->state == ks::key_state::active);
  CHECK(k->created == 13);
  CHECK(s.pending().empty());
  auto e = s.active("zpk1", ks::key_type::zpk_tdes);
  REQUIRE(e.has_value());
  CHECK(eftd::to_hex((*e)->key.view()) == "F039121BEC83D26B169BDCD5B22AAF8F");

  // Three AES components: c1 ^ c2 ^ c3 = the §4 AES-128 key, KCV 08793E25AB.
  const bytes aes_key = hex("3F419E1CB7079442AA37474C2EFBF8B8");
  const bytes a1 = hex("EDB380DD340BC2620247D445F5B8D678");
  const bytes a2 = hex("00112233445566778899AABBCCDDEEFF");
  REQUIRE(s.add_component("zpk2", ks::key_type::zpk_aes, a1, 20).has_value());
  REQUIRE(s.add_component("zpk2", ks::key_type::zpk_aes, a2, 21).has_value());
  REQUIRE(s.add_component("zpk2", ks::key_type::zpk_aes, xor_of(xor_of(aes_key, a1), a2), 22).has_value());
  auto k2 = s.finish_components("zpk2", 23);
  REQUIRE(k2.has_value());
  CHECK(eftd::to_hex(k2->kcv) == "08793E25AB");
}

TEST_CASE("component entry refuses what would weaken dual control", "[keystore]") {
  ks::key_store s;
  const bytes c1 = hex("3F419E1CB7079442AA37474C2EFBF8B8");
  REQUIRE(s.add_component("k", ks::key_type::kbpk_tdes, c1, 1).has_value());
  // The same component again (also with only parity bits changed) would cancel out.
  CHECK(s.add_component("k", ks::key_type::kbpk_tdes, c1, 2).err().code == "keystore.duplicate_component");
  CHECK(s.add_component("k", ks::key_type::kbpk_tdes, xor_of(c1, bytes(16, 0x01)), 2).err().code ==
        "keystore.duplicate_component");
  CHECK(s.add_component("k", ks::key_type::kbpk_tdes, bytes(16, 0x01), 2).err().code == "keystore.bad_key");
  CHECK(s.add_component("k", ks::key_type::kbpk_aes, hex(tdes_bdk), 2).err().code ==
        "keystore.no_components");
  CHECK(s.add_component("k", ks::key_type::kbpk_tdes, bytes(24, 0x22), 2).err().code == "keystore.bad_key");
  CHECK(s.add_component("k", ks::key_type::bdk_tdes, bytes(8, 0x22), 2).err().code == "keystore.bad_key");
  CHECK(s.add_component("bad name", ks::key_type::bdk_tdes, hex(tdes_bdk), 2).err().code ==
        "keystore.bad_name");
  REQUIRE(s.add_component("k", ks::key_type::kbpk_tdes, hex(tdes_kbpk), 3).has_value());
  REQUIRE(s.finish_components("k", 4).has_value());
  // An existing key takes new components only through a rotation.
  CHECK(s.add_component("k", ks::key_type::kbpk_tdes, c1, 5).err().code == "keystore.exists");
  // Cancel wipes pending components.
  REQUIRE(s.add_component("j", ks::key_type::zpk_tdes, c1, 6).has_value());
  REQUIRE(s.cancel_components("j").has_value());
  CHECK(s.pending().empty());
  CHECK(s.cancel_components("j").err().code == "keystore.no_components");
}

TEST_CASE("key store round-trips through its encrypted file", "[keystore]") {
  temp_dir dir;
  const fs::path file = dir.path / "keys.store";
  auto mk = master(0x11);
  ks::key_store s;
  enter(s, "bdk-t", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask, 16));
  enter(s, "bdk-a", ks::key_type::bdk_aes128, hex(aes_bdk), first(mask, 16));
  enter(s, "kbpk-a", ks::key_type::kbpk_aes, hex(aes_kbpk), first(mask, 32));
  REQUIRE(s.add_component("pending", ks::key_type::zpk_tdes, first(mask, 16), 50).has_value());
  REQUIRE(s.save(file, *mk).has_value());

  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(fs::exists(file.string() + ".tmp"));

  auto back = ks::key_store::load(file, *mk);
  REQUIRE(back.has_value());
  const auto a = s.list();
  const auto b = back->list();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].name == b[i].name);
    CHECK(a[i].type == b[i].type);
    CHECK(a[i].version == b[i].version);
    CHECK(a[i].state == b[i].state);
    CHECK(a[i].kcv == b[i].kcv);
    CHECK(a[i].created == b[i].created);
    CHECK((*s.get(a[i].name, a[i].version))->key == (*back->get(b[i].name, b[i].version))->key);
  }
  REQUIRE(back->pending().size() == 1);
  CHECK(back->pending()[0].name == "pending");
  CHECK(back->pending()[0].components == 1);
  // The pending component survived: a second one finishes the key.
  REQUIRE(back->add_component("pending", ks::key_type::zpk_tdes, first(mask + 32, 16), 51).has_value());
  CHECK(back->finish_components("pending", 52).has_value());

  CHECK(ks::key_store::load(dir.path / "absent", *mk).err().code == "keystore.not_found");
}

TEST_CASE("key store file never holds a clear key", "[keystore][security]") {
  temp_dir dir;
  const fs::path file = dir.path / "keys.store";
  auto mk = master(0x22);
  ks::key_store s;
  const bytes c1 = first(mask, 16);
  enter(s, "bdk", ks::key_type::bdk_tdes, hex(tdes_bdk), c1);
  REQUIRE(s.add_component("half", ks::key_type::zpk_tdes, c1, 1).has_value());
  REQUIRE(s.save(file, *mk).has_value());
  const bytes content = read_file(file);
  const std::string text(content.begin(), content.end());
  for (const bytes& secret : {hex(tdes_bdk), c1, xor_of(hex(tdes_bdk), c1)}) {
    CHECK(std::search(content.begin(), content.end(), secret.begin(), secret.end()) == content.end());
    std::string h = eftd::to_hex(secret);
    CHECK(text.find(h) == std::string::npos);
    for (char& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    CHECK(text.find(h) == std::string::npos);
  }
}

TEST_CASE("a flipped byte anywhere in the store file gives a clear error", "[keystore][security]") {
  temp_dir dir;
  const fs::path file = dir.path / "keys.store";
  auto mk = master(0x33);
  ks::key_store s;
  enter(s, "bdk", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask, 16));
  REQUIRE(s.save(file, *mk).has_value());
  const bytes good = read_file(file);
  REQUIRE(good.size() > 16 + 28);
  for (std::size_t i = 0; i < good.size(); ++i) {
    bytes bad = good;
    bad[i] ^= 0x01;
    write_file(file, bad);
    auto r = ks::key_store::load(file, *mk);
    INFO("byte " << i);
    REQUIRE_FALSE(r.has_value());
    // Magic -> not a store; master key check -> wrong key; anything sealed -> tampered.
    const char* want = i < 8    ? "keystore.bad_format"
                       : i < 16 ? "keystore.wrong_master_key"
                                : "keystore.tampered";
    CHECK(r.err().code == want);
  }
  // Truncations are caught too.
  write_file(file, bytes(good.begin(), good.end() - 1));
  CHECK(ks::key_store::load(file, *mk).err().code == "keystore.tampered");
  write_file(file, bytes(good.begin(), good.begin() + 20));
  CHECK(ks::key_store::load(file, *mk).err().code == "keystore.tampered");
  write_file(file, bytes(good.begin(), good.begin() + 10));
  CHECK(ks::key_store::load(file, *mk).err().code == "keystore.bad_format");
  write_file(file, good);
  CHECK(ks::key_store::load(file, *mk).has_value());
}

TEST_CASE("a wrong master key is refused with its own error", "[keystore][security]") {
  temp_dir dir;
  const fs::path file = dir.path / "keys.store";
  ks::key_store s;
  enter(s, "bdk", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask, 16));
  REQUIRE(s.save(file, *master(0x44)).has_value());
  auto r = ks::key_store::load(file, *master(0x45));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.err().code == "keystore.wrong_master_key");
  CHECK(r.err().message.find(file.string()) != std::string::npos);
}

TEST_CASE("master key file is created 0600, reloaded, and refused when readable by others",
          "[keystore][security]") {
  temp_dir dir;
  const fs::path mkf = dir.path / "master";
  const fs::path file = dir.path / "keys.store";
  CHECK(ks::file_master_key::load(mkf, false).err().code == "keystore.io");
  auto mk = ks::file_master_key::load(mkf, true);
  REQUIRE(mk.has_value());
  struct stat st {};
  REQUIRE(::stat(mkf.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(read_file(mkf).size() == 65);

  ks::key_store s;
  enter(s, "bdk", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask, 16));
  REQUIRE(s.save(file, **mk).has_value());
  // create = true on an existing file reads it rather than replacing it.
  auto again = ks::file_master_key::load(mkf, true);
  REQUIRE(again.has_value());
  CHECK(ks::key_store::load(file, **again).has_value());

  ::chmod(mkf.c_str(), 0640);
  CHECK(ks::file_master_key::load(mkf, false).err().code == "keystore.insecure_mode");
  ::chmod(mkf.c_str(), 0600);
  write_file(mkf, bytes(10, 'a'));
  CHECK(ks::file_master_key::load(mkf, false).err().code == "keystore.bad_master_key");
}

TEST_CASE("rotation keeps the old version for old traffic until it is retired", "[keystore]") {
  temp_dir dir;
  const fs::path file = dir.path / "keys.store";
  auto mk = master(0x55);
  ks::key_store s;
  enter(s, "bdk", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask, 16));
  CHECK(s.start_rotation("nope", 1).err().code == "keystore.no_such_key");
  auto p = s.start_rotation("bdk", 200);
  REQUIRE(p.has_value());
  CHECK(p->rotation);
  CHECK(p->type == ks::key_type::bdk_tdes);
  CHECK(s.start_rotation("bdk", 201).err().code == "keystore.no_components");
  // Components of another type are refused for the rotation.
  CHECK(s.add_component("bdk", ks::key_type::bdk_aes128, first(mask, 16), 202).err().code ==
        "keystore.no_components");
  // The new version: the §4 payShield TDES BDK (KCV FF5087).
  const bytes next = hex("1FA1F7CEC798D91545DA8AE0C7796BD9");
  REQUIRE(s.add_component("bdk", ks::key_type::bdk_tdes, first(mask + 32, 16), 203).has_value());
  REQUIRE(
      s.add_component("bdk", ks::key_type::bdk_tdes, xor_of(next, first(mask + 32, 16)), 204).has_value());
  // Until finished, the old version is still the active one.
  CHECK((*s.active("bdk"))->info.version == 1);
  auto v2 = s.finish_components("bdk", 205);
  REQUIRE(v2.has_value());
  CHECK(v2->version == 2);
  CHECK(eftd::to_hex(v2->kcv) == "FF5087");
  REQUIRE(s.save(file, *mk).has_value());
  auto back = ks::key_store::load(file, *mk);
  REQUIRE(back.has_value());
  CHECK((*back->active("bdk"))->info.version == 2);
  auto v1 = back->get("bdk", 1);
  REQUIRE(v1.has_value());
  CHECK((*v1)->info.state == ks::key_state::retired);
  CHECK(eftd::to_hex((*v1)->key.view()) == tdes_bdk);

  CHECK(back->retire("bdk", 2).err().code == "keystore.active_version");
  CHECK(back->retire("bdk", 7).err().code == "keystore.no_such_key");
  auto gone = back->retire("bdk", 1);
  REQUIRE(gone.has_value());
  CHECK(gone->state == ks::key_state::destroyed);
  CHECK(back->get("bdk", 1).err().code == "keystore.no_such_key");
  REQUIRE(back->save(file, *mk).has_value());
  auto again = ks::key_store::load(file, *mk);
  REQUIRE(again.has_value());
  const auto l = again->list();
  REQUIRE(l.size() == 2);
  CHECK(l[0].state == ks::key_state::destroyed);
  CHECK(eftd::to_hex(l[0].kcv).size() == 6);  // the record and KCV stay for audit
  CHECK(l[1].state == ks::key_state::active);
}

TEST_CASE("export-ipek wraps the published initial keys under the published KBPKs", "[keystore][tr31]") {
  ks::key_store s;
  enter(s, "kbpk-t", ks::key_type::kbpk_tdes, hex(tdes_kbpk), first(mask, 16));
  enter(s, "kbpk-a", ks::key_type::kbpk_aes, hex(aes_kbpk), first(mask, 32));
  enter(s, "bdk-t", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask + 32, 16));
  enter(s, "bdk-a", ks::key_type::bdk_aes128, hex(aes_bdk), first(mask + 32, 16));

  SECTION("TDES BDK under a TDES KBPK, version B") {
    auto out = ks::export_initial_key(s, "bdk-t", hex("FFFF9876543210E00003"), "kbpk-t", std::nullopt,
                                      eftd::system_random());
    REQUIRE(out.has_value());
    CHECK(out->block[0] == 'B');
    auto k = eftd::tr31::unwrap(hex(tdes_kbpk), out->block);
    REQUIRE(k.has_value());
    CHECK(eftd::to_hex(k->key.view()) == "6AC292FAA1315B4D858AB3A3D7D5933A");  // §1 IPEK
    CHECK(k->hdr.key_usage == "B1");
    CHECK(k->hdr.algorithm == 'T');
    CHECK(k->hdr.mode_of_use == 'X');
    REQUIRE(k->hdr.optional_blocks.size() == 1);
    CHECK(k->hdr.optional_blocks[0].id == "KS");
    CHECK(k->hdr.optional_blocks[0].data == "FFFF9876543210E00000");
    CHECK(out->kcv == *eftd::tr31::key_check_value('T', k->key.view()));
  }
  SECTION("TDES BDK under an AES KBPK, version D") {
    auto out =
        ks::export_initial_key(s, "bdk-t", hex("FFFF9876543210E00000"), "kbpk-a", 'D', eftd::system_random());
    REQUIRE(out.has_value());
    auto k = eftd::tr31::unwrap(hex(aes_kbpk), out->block);
    REQUIRE(k.has_value());
    CHECK(eftd::to_hex(k->key.view()) == "6AC292FAA1315B4D858AB3A3D7D5933A");
  }
  SECTION("AES BDK under an AES KBPK") {
    auto out = ks::export_initial_key(s, "bdk-a", hex("123456789012345600000001"), "kbpk-a", std::nullopt,
                                      eftd::system_random());
    REQUIRE(out.has_value());
    CHECK(out->block[0] == 'D');
    auto k = eftd::tr31::unwrap(hex(aes_kbpk), out->block);
    REQUIRE(k.has_value());
    CHECK(eftd::to_hex(k->key.view()) == "1273671EA26AC29AFA4D1084127652A1");  // §2 IK
    CHECK(k->hdr.algorithm == 'A');
    REQUIRE(k->hdr.optional_blocks.size() == 1);
    CHECK(k->hdr.optional_blocks[0].id == "IK");
    CHECK(k->hdr.optional_blocks[0].data == "1234567890123456");
    CHECK(out->kcv.size() == 5);
  }
  SECTION("refusals") {
    auto& rng = eftd::system_random();
    CHECK(ks::export_initial_key(s, "bdk-t", hex("FFFF9876543210E00000"), "kbpk-t", 'D', rng).err().code ==
          "keystore.bad_usage");
    CHECK(ks::export_initial_key(s, "bdk-a", hex("123456789012345600000001"), "kbpk-t", std::nullopt, rng)
              .err()
              .code == "keystore.bad_usage");
    CHECK(ks::export_initial_key(s, "bdk-t", hex("123456789012345600000001"), "kbpk-t", std::nullopt, rng)
              .err()
              .code == "keystore.bad_ksn");
    CHECK(ks::export_initial_key(s, "kbpk-t", hex("FFFF9876543210E00000"), "kbpk-t", std::nullopt, rng)
              .err()
              .code == "keystore.no_such_key");
    CHECK(ks::export_initial_key(s, "bdk-t", hex("FFFF9876543210E00000"), "bdk-a", std::nullopt, rng)
              .err()
              .code == "keystore.no_such_key");
    CHECK(ks::export_initial_key(s, "absent", hex("FFFF9876543210E00000"), "kbpk-t", std::nullopt, rng)
              .err()
              .code == "keystore.no_such_key");
  }
}

TEST_CASE("import takes published TR-31 blocks only with a matching KCV", "[keystore][tr31]") {
  ks::key_store s;
  enter(s, "kbpk-t", ks::key_type::kbpk_tdes, hex(tdes_kbpk), first(mask, 16));
  enter(s, "kbpk-a", ks::key_type::kbpk_aes, hex(aes_kbpk), first(mask, 32));
  enter(s, "kbpk-41", ks::key_type::kbpk_aes, bytes(32, 0x41), first(mask + 32, 32));
  const std::string b_block =
      "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E";
  const std::string d_block =
      "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D"
      "03A457D"
      "C34";
  const std::string bdk_block =
      "D0112B0TN00N000037DB9B046B7B0048785690759580ABC3B9842AB4BB7717B49E92528E575785D8123559376A2553B27BE94F"
      "054F4E9"
      "71C";

  // KCV mismatch: refused, nothing stored.
  auto bad = ks::import_key_block(s, "kbpk-t", b_block, "zpk", "57C408", std::nullopt, 1);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.err().code == "keystore.kcv_mismatch");
  CHECK(s.active("zpk").err().code == "keystore.no_such_key");
  CHECK(ks::import_key_block(s, "kbpk-t", b_block, "zpk", "57C4", std::nullopt, 1).err().code ==
        "keystore.bad_kcv");
  // A TDES KCV is 3 bytes: a 5-byte expectation cannot match.
  CHECK(ks::import_key_block(s, "kbpk-t", b_block, "zpk", "57C409AAAA", std::nullopt, 1).err().code ==
        "keystore.kcv_mismatch");
  // Wrong KBPK or a tampered block: the MAC check refuses it.
  CHECK(ks::import_key_block(s, "kbpk-a", b_block, "zpk", "57C409", std::nullopt, 1)
            .err()
            .code.rfind("tr31.", 0) == 0);
  std::string tampered = b_block;
  tampered[20] = tampered[20] == 'A' ? 'B' : 'A';
  CHECK(ks::import_key_block(s, "kbpk-t", tampered, "zpk", "57C409", std::nullopt, 1).err().code ==
        "tr31.mac_mismatch");

  auto zpk = ks::import_key_block(s, "kbpk-t", b_block, "zpk", "57c409", std::nullopt, 2);
  REQUIRE(zpk.has_value());
  CHECK(zpk->type == ks::key_type::zpk_tdes);
  CHECK(zpk->version == 1);
  CHECK(eftd::to_hex(zpk->kcv) == "57C409");

  auto zpk_aes = ks::import_key_block(s, "kbpk-a", d_block, "zpk-aes", "08793E", std::nullopt, 3);
  REQUIRE(zpk_aes.has_value());
  CHECK(zpk_aes->type == ks::key_type::zpk_aes);
  CHECK(eftd::to_hex(zpk_aes->kcv) == "08793E25AB");

  auto bdk = ks::import_key_block(s, "kbpk-41", bdk_block, "bdk", "FF5087", std::nullopt, 4);
  REQUIRE(bdk.has_value());
  CHECK(bdk->type == ks::key_type::bdk_tdes);

  // A second import under the same name rotates it: new version, the old one retired.
  auto zpk2 = ks::import_key_block(s, "kbpk-t", b_block, "zpk", "57C409", std::nullopt, 5);
  REQUIRE(zpk2.has_value());
  CHECK(zpk2->version == 2);
  CHECK((*s.get("zpk", 1))->info.state == ks::key_state::retired);
  // ... but not as another type.
  CHECK(ks::import_key_block(s, "kbpk-a", d_block, "zpk", "08793E", std::nullopt, 6).err().code ==
        "keystore.exists");
}

TEST_CASE("a failed or interrupted save leaves the previous store readable", "[keystore]") {
  temp_dir dir;
  const fs::path file = dir.path / "keys.store";
  auto mk = master(0x66);
  ks::key_store s;
  enter(s, "bdk", ks::key_type::bdk_tdes, hex(tdes_bdk), first(mask, 16));
  REQUIRE(s.save(file, *mk).has_value());
  // A crash after writing the temporary file but before the rename: the old store is intact,
  // and the next save replaces the leftover.
  write_file(file.string() + ".tmp", bytes(40, 0xEE));
  auto back = ks::key_store::load(file, *mk);
  REQUIRE(back.has_value());
  CHECK(back->list().size() == 1);
  REQUIRE(back->start_rotation("bdk", 5).has_value());
  REQUIRE(back->save(file, *mk).has_value());
  CHECK_FALSE(fs::exists(file.string() + ".tmp"));
  CHECK(ks::key_store::load(file, *mk)->pending().size() == 1);
  // A save that cannot write reports it and changes nothing.
  auto err = s.save(dir.path / "no-such-dir" / "keys.store", *mk);
  REQUIRE_FALSE(err.has_value());
  CHECK(err.err().code == "keystore.io");
  // The target being a directory: the rename fails, the temporary file is removed.
  fs::create_directories(dir.path / "taken");
  CHECK(s.save(dir.path / "taken", *mk).err().code == "keystore.io");
  CHECK_FALSE(fs::exists(dir.path / "taken.tmp"));
}

TEST_CASE("MAK-TDES round-trips through the store and imports from a TR-31 M3 block", "[keystore][tr31]") {
  temp_dir dir;
  const auto file = dir.path / "keys.eks";
  auto mk = master(0x5A);
  ks::key_store s;
  // The published TDES ZPK value (test-vectors.md) reused as a MAK: same TDES KCV rule.
  const bytes mak = hex("F039121BEC83D26B169BDCD5B22AAF8F");
  CHECK(kcv_hex(ks::check_value(ks::key_type::mak_tdes, mak)) == "CB9DEA");
  CHECK(ks::check_value(ks::key_type::mak_tdes, bytes(8, 0x11)).err().code == "keystore.bad_key");
  CHECK(ks::valid_length(ks::key_type::mak_tdes, 24));
  enter(s, "mak1", ks::key_type::mak_tdes, mak, first(mask, 16));
  REQUIRE(s.save(file, *mk).has_value());
  auto back = ks::key_store::load(file, *mk);
  REQUIRE(back.has_value());
  auto e = back->active("mak1", ks::key_type::mak_tdes);
  REQUIRE(e.has_value());
  CHECK((*e)->info.type == ks::key_type::mak_tdes);
  CHECK(eftd::to_hex((*e)->info.kcv) == "CB9DEA");
  CHECK(back->active("mak1", ks::key_type::zpk_tdes).err().code == "keystore.no_such_key");

  // Import: a block with usage M3 (ISO 9797-1 MAC algorithm 3) becomes a MAK-TDES.
  enter(s, "kbpk-t", ks::key_type::kbpk_tdes, hex(tdes_kbpk), first(mask + 32, 16));
  eftd::tr31::header h;
  h.version = 'B';
  h.key_usage = "M3";
  h.algorithm = 'T';
  h.mode_of_use = 'C';
  h.exportability = 'E';
  auto block = eftd::tr31::wrap(hex(tdes_kbpk), h, mak, eftd::system_random());
  REQUIRE(block.has_value());
  CHECK(ks::import_key_block(s, "kbpk-t", *block, "mak-in", "CB9DEB", std::nullopt, 5).err().code ==
        "keystore.kcv_mismatch");
  auto in = ks::import_key_block(s, "kbpk-t", *block, "mak-in", "CB9DEA", std::nullopt, 5);
  REQUIRE(in.has_value());
  CHECK(in->type == ks::key_type::mak_tdes);
  CHECK(eftd::to_hex(in->kcv) == "CB9DEA");
}
