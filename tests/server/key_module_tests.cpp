// The key-handling module (server/src/key_module.hpp): start-up checks of the key store against
// the configuration, and per-card DUKPT sessions: sealed card data opened, PIN blocks translated
// to a zone PIN key, BDK rotation. Keys, PANs and PINs are the public test values of
// /work/shared/test-vectors.md (X9.24-1 A.4 and the X9.24-3 supplement).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/dukpt.hpp"
#include "eftd/core/keystore.hpp"
#include "eftd/core/p2pe.hpp"
#include "key_module.hpp"

using namespace eftd;
namespace fs = std::filesystem;
namespace ks = eftd::keystore;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

const char* const tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";  // §1
const char* const aes_bdk = "FEDCBA9876543210F1F1F1F1F1F1F1F1";   // §2
const char* const zpk = "89ABCDEF0123456776543210FEDCBA98";       // a test zone PIN key
const char* const other_bdk = "00112233445566778899AABBCCDDEEFF";

struct fixture {
  fs::path dir;
  config::server_config cfg;
  fixture() {
    dir = fs::temp_directory_path() / ("eftd-keymod-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    cfg.keys.store = dir / "keys.store";
    cfg.keys.master_key_file = dir / "keys.master";
    cfg.keys.dukpt = {{"FFFF987654", "bdk-tdes"}, {"12345678", "bdk-aes"}};
    config::acquirer a;
    a.name = "acq";
    a.zpk = "zpk-acq";
    cfg.acquirers.push_back(a);
  }
  ~fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Writes the store with the given keys (name, type, key); a repeated name rotates it.
  void write(std::vector<std::tuple<std::string, ks::key_type, std::string>> keys) {
    auto mk = ks::file_master_key::load(cfg.keys.master_key_file, /*create=*/true);
    REQUIRE(mk);
    ks::key_store s;
    for (auto& [name, type, key] : keys) REQUIRE(s.add_key(name, type, hex(key), 100));
    REQUIRE(s.save(cfg.keys.store, **mk));
  }
  std::unique_ptr<server::key_module> open() {
    auto m = server::key_module::open(cfg);
    REQUIRE(m);
    return std::move(*m);
  }
};

p2pe::originator tdes_pad(const char* bdk = tdes_bdk) {
  auto ipek = tdes_dukpt::ipek(hex(bdk), hex("FFFF9876543210E00000"));
  REQUIRE(ipek);
  auto o = p2pe::originator::create(p2pe::dukpt_kind::tdes, std::move(*ipek), hex("FFFF9876543210E00000"));
  REQUIRE(o);
  return std::move(*o);
}

p2pe::originator aes_pad() {
  auto ik = aes_dukpt::initial_key(hex(aes_bdk), hex("1234567890123456"), aes_dukpt::key_type::aes128);
  REQUIRE(ik);
  auto o = p2pe::originator::create(p2pe::dukpt_kind::aes, std::move(*ik), hex("123456789012345600000000"));
  REQUIRE(o);
  return std::move(*o);
}

const std::string track = "4012345678909=29121200000000000";  // §1's test PAN

}  // namespace

TEST_CASE("key module: a sealed track opens and the PIN goes to the ZPK as ISO 0", "[keys]") {
  fixture f;
  f.write({{"bdk-tdes", ks::key_type::bdk_tdes, tdes_bdk},
           {"bdk-aes", ks::key_type::bdk_aes128, aes_bdk},
           {"zpk-acq", ks::key_type::zpk_tdes, zpk}});
  auto km = f.open();
  REQUIRE(km->enabled());
  auto p = pin::parse("1234");
  REQUIRE(p);
  for (int kind = 0; kind < 2; ++kind) {
    INFO((kind == 0 ? "TDES" : "AES"));
    auto pad = kind == 0 ? tdes_pad() : aes_pad();
    auto ksn = pad.begin_transaction();
    REQUIRE(ksn);
    auto sealed = pad.seal(1, as_bytes(track));
    REQUIRE(sealed);
    auto block = pad.pin_block(*p, "4012345678909", system_random());
    REQUIRE(block);

    auto cs = km->begin(*ksn);
    REQUIRE(cs);
    auto clear = cs->open(1, *sealed);
    REQUIRE(clear);
    CHECK(std::string(reinterpret_cast<const char*>(clear->view().data()), clear->size()) == track);

    auto zone = cs->translate_pin(*block, *ksn, "4012345678909", "zpk-acq");
    REQUIRE(zone);
    REQUIRE(zone->size() == 8);
    // The acquirer's view: TDES-decrypt under the ZPK gives §1's clear ISO 0 block.
    auto at_acquirer = tdes_ecb(cipher_op::decrypt, hex(zpk), *zone);
    REQUIRE(at_acquirer);
    CHECK(to_hex(at_acquirer->view()) == "041274EDCBA9876F");

    // A PIN block claimed under another KSN is refused.
    auto other = *ksn;
    other.back() ^= 0x01;
    auto mismatch = cs->translate_pin(*block, other, "4012345678909", "zpk-acq");
    REQUIRE_FALSE(mismatch);
    CHECK(mismatch.err().code == "keys.ksn_mismatch");
    // No ZPK named: refused.
    auto none = cs->translate_pin(*block, *ksn, "4012345678909", "");
    REQUIRE_FALSE(none);
    CHECK(none.err().code == "keys.no_zpk");
  }
}

TEST_CASE("key module: unknown KSN prefix and a pad keyed from another BDK are refused", "[keys]") {
  fixture f;
  f.write({{"bdk-tdes", ks::key_type::bdk_tdes, tdes_bdk},
           {"bdk-aes", ks::key_type::bdk_aes128, aes_bdk},
           {"zpk-acq", ks::key_type::zpk_tdes, zpk}});
  auto km = f.open();
  auto unknown = km->begin(hex("AAAA9876543210E00001"));
  REQUIRE_FALSE(unknown);
  CHECK(unknown.err().code == "keys.unknown_ksn");
  auto bad_length = km->begin(hex("FFFF98765432"));
  REQUIRE_FALSE(bad_length);

  auto pad = tdes_pad(other_bdk);  // right KSN prefix, wrong BDK: a pad loaded elsewhere
  auto ksn = pad.begin_transaction();
  REQUIRE(ksn);
  auto sealed = pad.seal(1, as_bytes(track));
  REQUIRE(sealed);
  auto cs = km->begin(*ksn);
  REQUIRE(cs);
  auto opened = cs->open(1, *sealed);
  REQUIRE_FALSE(opened);
  CHECK(opened.err().code.starts_with("p2pe."));
}

TEST_CASE("key module: after a BDK rotation pads on the old key still work", "[keys]") {
  fixture f;
  // Version 1 = the A.4 BDK (the pad's), version 2 = a new BDK; v1 retired, still usable.
  f.write({{"bdk-tdes", ks::key_type::bdk_tdes, tdes_bdk},
           {"bdk-tdes", ks::key_type::bdk_tdes, other_bdk},
           {"bdk-aes", ks::key_type::bdk_aes128, aes_bdk},
           {"zpk-acq", ks::key_type::zpk_tdes, zpk}});
  auto km = f.open();
  for (const char* bdk : {tdes_bdk, other_bdk}) {
    auto pad = tdes_pad(bdk);
    auto ksn = pad.begin_transaction();
    REQUIRE(ksn);
    auto sealed = pad.seal(1, as_bytes(track));
    REQUIRE(sealed);
    auto cs = km->begin(*ksn);
    REQUIRE(cs);
    auto opened = cs->open(1, *sealed);
    REQUIRE(opened);
    // The session settled on the pad's version: its PIN block translates.
    auto p = pin::parse("1234");
    REQUIRE(p);
    auto block = pad.pin_block(*p, "4012345678909", system_random());
    REQUIRE(block);
    auto zone = cs->translate_pin(*block, *ksn, "4012345678909", "zpk-acq");
    REQUIRE(zone);
    auto at_acquirer = tdes_ecb(cipher_op::decrypt, hex(zpk), *zone);
    REQUIRE(at_acquirer);
    CHECK(to_hex(at_acquirer->view()) == "041274EDCBA9876F");
  }
}

TEST_CASE("key module: start-up refuses missing or mistyped keys, naming the configuration key", "[keys]") {
  fixture f;
  f.write({{"bdk-tdes", ks::key_type::zpk_tdes, tdes_bdk}});  // a ZPK where a BDK is expected
  auto m = server::key_module::open(f.cfg);
  REQUIRE_FALSE(m);
  CHECK(m.err().code == "keys.config");
  CHECK(m.err().message.find("keys.dukpt[0].bdk") != std::string::npos);
  CHECK(m.err().message.find("keys.dukpt[1].bdk") != std::string::npos);
  CHECK(m.err().message.find("acquirers[0].zpk") != std::string::npos);

  // No store configured: a module that refuses card sessions with a clear code.
  config::server_config bare;
  auto none = server::key_module::open(bare);
  REQUIRE(none);
  CHECK_FALSE((*none)->enabled());
  auto cs = (*none)->begin(hex("FFFF9876543210E00001"));
  REQUIRE_FALSE(cs);
  CHECK(cs.err().code == "keys.unavailable");

  // A wrong master key is a start-up error, not a crash.
  fixture g;
  g.write({{"bdk-tdes", ks::key_type::bdk_tdes, tdes_bdk}});
  std::ofstream(g.cfg.keys.master_key_file, std::ios::trunc) << std::string(64, 'A') << "\n";
  fs::permissions(g.cfg.keys.master_key_file, fs::perms::owner_read | fs::perms::owner_write);
  auto wrong = server::key_module::open(g.cfg);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.err().code.starts_with("keystore."));
}

TEST_CASE("key module: acquirer MAKs are checked at start-up and sign with ISO 9797-1 alg 3", "[keys]") {
  // PSEC test_generate_retail_mac (test-vectors.md §MAC): K = 41..41, K' = 42..42.
  const char* const mak = "41414141414141414242424242424242";
  fixture f;
  f.cfg.acquirers[0].mak = "mak-acq";
  f.write({{"bdk-tdes", ks::key_type::bdk_tdes, tdes_bdk},
           {"bdk-aes", ks::key_type::bdk_aes128, aes_bdk},
           {"zpk-acq", ks::key_type::zpk_tdes, zpk},
           {"mak-acq", ks::key_type::mak_tdes, mak}});
  auto m = f.open();
  auto mac = m->mac_sign("mak-acq", as_bytes("hello world"));
  REQUIRE(mac);
  CHECK(to_hex(*mac) == "3DDE5C5511661CBF");
  CHECK(m->mac_sign("zpk-acq", as_bytes("x")).err().code == "keys.no_mak");

  // Missing, mistyped and triple-length MAKs stop start-up, naming the configuration key.
  for (auto [type, key] : {std::pair{ks::key_type::zpk_tdes, std::string(mak)},
                           std::pair{ks::key_type::mak_tdes, std::string(mak) + "4343434343434343"}}) {
    fixture g;
    g.cfg.acquirers[0].mak = "mak-acq";
    g.write({{"bdk-tdes", ks::key_type::bdk_tdes, tdes_bdk},
             {"bdk-aes", ks::key_type::bdk_aes128, aes_bdk},
             {"zpk-acq", ks::key_type::zpk_tdes, zpk},
             {"mak-acq", type, key}});
    auto bad = server::key_module::open(g.cfg);
    REQUIRE_FALSE(bad);
    CHECK(bad.err().code == "keys.config");
    CHECK(bad.err().message.find("acquirers[0].mak") != std::string::npos);
  }
}
