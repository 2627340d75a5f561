// Full contact flows: the kernel against the pad's ICC simulator (make_icc_sim) with the card
// profiles of pinpad-firmware-shim/cards and the eftd test CA keys. The test plays the pad
// (VERIFY built from the PIN, plaintext or enciphered with the key and challenge the kernel
// hands over) and the issuer (ARQC recomputed, ARPC returned).
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/emv_oda.hpp"
#include "eftd/core/tlv.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/icc.hpp"
#include "harness.hpp"

using namespace eftd;
using namespace eftd::emv;
using namespace eftd::emv::test;

namespace {

std::filesystem::path source_dir() {
  if (const char* s = std::getenv("EFTD_SOURCE")) return s;
  return EFTD_EMV_TEST_SOURCE_DIR;
}
std::filesystem::path cards_dir() {
  return source_dir() / "pinpad-firmware-shim" / "cards";
}

const capk_table& test_capks() {
  static const capk_table t = [] {
    auto loaded = capk_table::load(cards_dir() / "keys" / "capk-eftd-test.toml");
    REQUIRE(loaded);
    return std::move(loaded).value();
  }();
  return t;
}

terminal_config sim_terminal() {
  terminal_config cfg;
  cfg.terminal_type = 0x22;
  cfg.country_code = 616;
  cfg.currency_code = 985;
  for (const char* aid : {"A0000000031010", "A0000000032010", "A0000000041010"}) {
    application_config a;
    a.aid = hx(aid);
    a.floor_limit = 50000;
    cfg.applications.push_back(a);
  }
  return cfg;
}

transaction sim_transaction(std::uint64_t amount = 2500) {
  transaction t;
  t.amount = amount;
  t.currency = 985;
  t.date = "251122";
  t.time = "101500";
  return t;
}

// ISO 9564 format 2 block of a PIN: what the pad puts in VERIFY.
bytes format2(std::string_view pin) {
  bytes b(8, 0xFF);
  b[0] = static_cast<std::uint8_t>(0x20 | pin.size());
  for (std::size_t i = 0; i < pin.size(); ++i) {
    const auto d = static_cast<std::uint8_t>(pin[i] - '0');
    auto& byte = b[1 + i / 2];
    byte = (i % 2 == 0) ? static_cast<std::uint8_t>((d << 4) | 0x0F)
                        : static_cast<std::uint8_t>((byte & 0xF0) | d);
  }
  return b;
}

// The pad's enciphered PIN (Book 2 7.2): 7F || PIN block || challenge || random, raw RSA.
bytes encipher_pin(const contact_kernel::need_offline_pin& p, std::string_view pin) {
  const std::size_t n = p.icc_pin_key_modulus.size();
  bytes block{0x7F};
  const bytes pb = format2(pin);
  block.insert(block.end(), pb.begin(), pb.end());
  block.insert(block.end(), p.challenge.begin(), p.challenge.end());
  while (block.size() < n) block.push_back(0x5A);

  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  BIGNUM* bn_n = BN_bin2bn(p.icc_pin_key_modulus.data(), static_cast<int>(n), nullptr);
  BIGNUM* bn_e =
      BN_bin2bn(p.icc_pin_key_exponent.data(), static_cast<int>(p.icc_pin_key_exponent.size()), nullptr);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* fctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* key = nullptr;
  EVP_PKEY_fromdata_init(fctx);
  EVP_PKEY_fromdata(fctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
  EVP_PKEY_encrypt_init(ctx);
  EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING);
  bytes out(n);
  std::size_t outlen = n;
  const int ok = EVP_PKEY_encrypt(ctx, out.data(), &outlen, block.data(), block.size());
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(fctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  REQUIRE(ok == 1);
  out.resize(outlen);
  return out;
}

struct pad_and_card {
  std::unique_ptr<padsim::icc> icc;
  std::string pin = "1234";
  int plaintext_verifies = 0;
  int enciphered_verifies = 0;

  void offline_pin(contact_kernel& k, const contact_kernel::need_offline_pin& p) {
    bytes cmd;
    if (p.enciphered) {
      ++enciphered_verifies;
      const bytes data = encipher_pin(p, pin);
      cmd = {0x00, 0x20, 0x00, 0x88, static_cast<std::uint8_t>(data.size())};
      cmd.insert(cmd.end(), data.begin(), data.end());
    } else {
      ++plaintext_verifies;
      const bytes data = format2(pin);
      cmd = {0x00, 0x20, 0x00, 0x80, 0x08};
      cmd.insert(cmd.end(), data.begin(), data.end());
    }
    auto r = icc->transmit(cmd);
    REQUIRE(r);
    k.feed_rapdu(byte_view(*r).last(2));
  }
};

pad_and_card power(const padsim::card_profile& profile) {
  pad_and_card p;
  p.icc = padsim::make_icc_sim(profile);
  auto atr = p.icc->power_on();
  REQUIRE(atr);
  return p;
}

padsim::card_profile load(std::string_view file) {
  auto p = padsim::load_card_profile(cards_dir() / std::string(file));
  REQUIRE(p);
  return std::move(p).value();
}

// A shipped profile with changed lines: `replace` pairs of (line start, new line).
padsim::card_profile load_edited(std::string_view file,
                                 std::vector<std::pair<std::string, std::string>> edits) {
  std::ifstream in(cards_dir() / std::string(file));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  for (const auto& [from, to] : edits) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
  }
  auto p = padsim::parse_card_profile(text, file, cards_dir());
  if (!p) FAIL(p.err().code << ": " << p.err().message);
  return std::move(p).value();
}

// The issuer's part for a method-1 CVN: recompute the ARQC from field 55 and the card data,
// return 91 = ARPC || ARC. The test card keys are public test keys.
bytes issuer_auth_data(const contact_kernel& k, const bytes& f55, std::string_view issuer_mk_hex,
                       bool corrupt) {
  auto tags = tlv_decode(f55);
  REQUIRE(tags);
  auto v = [&](std::uint32_t t) {
    const tlv* x = tlv_find(*tags, t);
    REQUIRE(x);
    return x->value;
  };
  const auto iad = v(0x9F10);
  const auto version = cvn_from_iad(iad);
  REQUIRE(version);
  // The PAN as digits for the key derivation (a public test PAN, never printed).
  const auto pan_bcd = *k.data().get(0x5A);
  std::string pan;
  for (const auto b : pan_bcd)
    for (const int nib : {b >> 4, b & 0x0F})
      if (nib <= 9) pan.push_back(static_cast<char>('0' + nib));
  const auto psn = k.data().get(0x5F34);
  std::string psn_s = psn ? to_hex(*psn) : "00";
  auto mk = derive_icc_mk(hx(issuer_mk_hex), pan, psn_s, mk_option::a);
  REQUIRE(mk);
  ac_inputs in;
  in.atc = static_cast<std::uint16_t>((v(0x9F36)[0] << 8) | v(0x9F36)[1]);
  for (const std::uint32_t t : {0x9F02u, 0x9F03u, 0x9F1Au, 0x95u, 0x5F2Au, 0x9Au, 0x9Cu, 0x9F37u}) {
    const auto x = v(t);
    in.data.insert(in.data.end(), x.begin(), x.end());
  }
  in.un = v(0x9F37);
  const auto aip = v(0x82), atc = v(0x9F36);
  in.data.insert(in.data.end(), aip.begin(), aip.end());
  in.data.insert(in.data.end(), atc.begin(), atc.end());
  if (*version == cvn::visa18)
    in.iad_or_cvr = iad;
  else if (*version == cvn::visa10)
    in.iad_or_cvr.assign(iad.begin() + 3, iad.begin() + 7);
  else
    in.iad_or_cvr.assign(iad.begin() + 2, iad.begin() + 8);
  const auto arqc = v(0x9F26);
  auto check = generate_ac(*version, mk->view(), in);
  REQUIRE(check);
  CHECK(to_hex(*check) == to_hex(arqc));  // the kernel delivered what the card computed
  // Method 1: 91 = ARPC (8) || ARC; method 2 (CVN 18): 91 = ARPC (4) || CSU (4).
  const bool method2 = spec(*version).arpc == arpc_kind::method2_sk;
  const bytes tail = method2 ? hx("00820000") : bytes{0x30, 0x30};
  auto arpc = generate_arpc(*version, mk->view(), in, arqc, tail);
  REQUIRE(arpc);
  bytes out = *arpc;
  if (corrupt) out[0] ^= 0x01;
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

constexpr std::string_view issuer_mk = "0123456789ABCDEFFEDCBA9876543210";

struct sim_result {
  contact_kernel::finished fin;
  tvr_bytes tvr{};
  int plaintext = 0, enciphered = 0, online = 0;
  int round_trips = 0, scripts = 0;
  std::vector<std::string> commands;  // hex, in the order the card got them
};

enum class host { approve_with_arpc, approve_bad_arpc, unable, decline };

sim_result run_sim(const padsim::card_profile& profile, host h = host::approve_with_arpc,
                   terminal_config cfg = sim_terminal(), transaction txn = sim_transaction(),
                   const std::function<void(driver&)>& setup = {}) {
  auto pc = power(profile);
  contact_kernel k(cfg, &test_capks(), std::move(txn));
  driver d;
  if (setup) setup(d);
  d.card = [&](const bytes& c) {
    auto r = pc.icc->transmit(c);
    REQUIRE(r);
    return *r;
  };
  d.offline_pin = [&](contact_kernel& kk, const contact_kernel::need_offline_pin& p) {
    pc.offline_pin(kk, p);
  };
  d.online = [&](contact_kernel& kk, const contact_kernel::go_online& g) {
    if (h == host::unable) {
      kk.feed_online_failed();
      return;
    }
    online_result r;
    r.approved = h != host::decline;
    r.arc = h == host::decline ? bytes{'0', '5'} : bytes{'0', '0'};
    if (h != host::decline)
      r.issuer_auth_data = issuer_auth_data(kk, g.field55, issuer_mk, h == host::approve_bad_arpc);
    kk.feed_online_result(r);
  };
  sim_result out;
  out.fin = d.run(k);
  out.tvr = k.tvr();
  out.plaintext = pc.plaintext_verifies;
  out.enciphered = pc.enciphered_verifies;
  out.online = d.online_requests;
  out.round_trips = d.round_trips;
  out.scripts = d.scripts;
  for (const auto& c : d.commands) out.commands.push_back(to_hex(c));
  return out;
}

}  // namespace

TEST_CASE("Sim: Visa DDA card approves offline with a verified DDA signature") {
  const auto r = run_sim(load("visa-dda-approve.toml"));
  CHECK(to_string(r.fin.o) == "approved_offline");
  CHECK_FALSE(has_bit(r.tvr, tvr::dda_failed));
  CHECK_FALSE(has_bit(r.tvr, tvr::oda_not_performed));
  CHECK_FALSE(has_bit(r.tvr, tvr::cvm_not_successful));
  CHECK(r.plaintext + r.enciphered >= 1);
}

TEST_CASE("Sim: Mastercard CDA card approves offline with a verified CDA signature") {
  const auto r = run_sim(load("mc-cda-approve.toml"));
  CHECK(to_string(r.fin.o) == "approved_offline");
  CHECK_FALSE(has_bit(r.tvr, tvr::cda_failed));
  CHECK_FALSE(has_bit(r.tvr, tvr::oda_not_performed));
}

TEST_CASE("Sim: Visa SDA card approves offline") {
  const auto r = run_sim(load("visa-sda-approve.toml"));
  CHECK(to_string(r.fin.o) == "approved_offline");
  CHECK(has_bit(r.tvr, tvr::sda_selected));
  CHECK_FALSE(has_bit(r.tvr, tvr::sda_failed));
}

TEST_CASE("Sim: a certificate signed by an unknown CA fails DDA") {
  const auto r = run_sim(load("chip-bad-cert.toml"), host::unable);
  CHECK(has_bit(r.tvr, tvr::dda_failed));
  CHECK(to_string(r.fin.o) == "declined_offline");  // default IAC covers DDA failed
}

TEST_CASE("Sim: the card declines at the first GENERATE AC") {
  const auto r = run_sim(load("chip-card-decline.toml"));
  CHECK(to_string(r.fin.o) == "declined_offline");
  CHECK(r.fin.reason_code == "emv.card_declined");
}

TEST_CASE("Sim: expired card goes online and is approved with a verified ARPC") {
  // AIP with issuer authentication (byte 1 bit 3), so the kernel sends EXTERNAL AUTHENTICATE.
  const auto profile =
      load_edited("chip-expired.toml", {{"[[chip.application]]", "[[chip.application]]\naip = \"1C00\""}});
  const auto r = run_sim(profile);
  CHECK(has_bit(r.tvr, tvr::expired));
  CHECK(r.online == 1);
  CHECK(to_string(r.fin.o) == "approved_online");
  CHECK_FALSE(has_bit(r.tvr, tvr::issuer_auth_failed));
}

TEST_CASE("Sim: online-always card, wrong ARPC: issuer authentication fails and the card declines") {
  const auto profile = load_edited("chip-online-always.toml",
                                   {{"[[chip.application]]", "[[chip.application]]\naip = \"3C00\""}});
  const auto r = run_sim(profile, host::approve_bad_arpc);
  CHECK(r.online == 1);
  CHECK(has_bit(r.tvr, tvr::issuer_auth_failed));
  CHECK(to_string(r.fin.o) == "declined_after_approval");
}

TEST_CASE("Sim: online-always card with DDA, approved with ARPC") {
  const auto profile = load_edited("chip-online-always.toml",
                                   {{"[[chip.application]]", "[[chip.application]]\naip = \"3C00\""}});
  const auto r = run_sim(profile);
  CHECK_FALSE(has_bit(r.tvr, tvr::dda_failed));
  CHECK(to_string(r.fin.o) == "approved_online");
}

TEST_CASE("Sim: host declines -> declined online") {
  const auto profile =
      load_edited("chip-expired.toml", {{"[[chip.application]]", "[[chip.application]]\naip = \"1C00\""}});
  CHECK(to_string(run_sim(profile, host::decline).fin.o) == "declined_online");
}

TEST_CASE("Sim: blocked PIN: try limit exceeded, then the next CVM") {
  const auto r = run_sim(load("chip-pin-blocked.toml"), host::unable);
  CHECK(has_bit(r.tvr, tvr::pin_try_limit_exceeded));
  CHECK(r.plaintext == 0);
}

TEST_CASE("Sim: two applications, priority order and cardholder choice, plaintext PIN") {
  const auto profile = load("visa-chip-approve.toml");
  auto pc = power(profile);
  auto cfg = sim_terminal();
  cfg.cvm.offline_enciphered_pin = false;
  contact_kernel k(cfg, &test_capks(), sim_transaction());
  std::vector<std::string> labels;
  driver d;
  d.card = [&](const bytes& c) { return *pc.icc->transmit(c); };
  d.offline_pin = [&](contact_kernel& kk, const contact_kernel::need_offline_pin& p) {
    pc.offline_pin(kk, p);
  };
  d.choose = [&](contact_kernel& kk, const contact_kernel::choose_application& c) {
    for (const auto& x : c.list) labels.push_back(x.label);
    kk.feed_choice(1);
  };
  d.online = [](contact_kernel& kk, const contact_kernel::go_online&) { kk.feed_online_failed(); };
  const auto fin = d.run(k);
  CHECK(labels == std::vector<std::string>{"VISA CREDIT", "VISA ELECTRON"});
  CHECK(to_hex(*k.data().get(0x84)) == "A0000000032010");
  CHECK(pc.plaintext_verifies == 1);
  CHECK(to_hex(*k.data().get(0x9F34)) == "410302");
  // No ODA on this card: ODA not performed -> the IACs send it online; unable -> default IAC.
  CHECK(has_bit(k.tvr(), tvr::oda_not_performed));
  CHECK(to_string(fin.o) == "declined_offline");
}

TEST_CASE("Sim: a wrong offline PIN is retried with the tries left") {
  const auto profile = load("visa-chip-approve.toml");
  auto pc = power(profile);
  pc.pin = "9999";
  auto cfg = sim_terminal();
  cfg.cvm.offline_enciphered_pin = false;
  contact_kernel k(cfg, &test_capks(), sim_transaction());
  std::vector<int> tries;
  driver d;
  d.card = [&](const bytes& c) { return *pc.icc->transmit(c); };
  d.offline_pin = [&](contact_kernel& kk, const contact_kernel::need_offline_pin& p) {
    tries.push_back(p.tries_left ? *p.tries_left : -1);
    if (tries.size() == 2) pc.pin = "1234";
    pc.offline_pin(kk, p);
  };
  d.online = [](contact_kernel& kk, const contact_kernel::go_online&) { kk.feed_online_failed(); };
  d.run(k);
  CHECK(tries == std::vector<int>{3, 2});
  CHECK(to_hex(*k.data().get(0x9F34)) == "410302");
}

TEST_CASE("Sim: CDA card online: CDA verified on both GENERATE ACs, ARPC verified") {
  const auto profile =
      load_edited("mc-cda-approve.toml", {{"oda = \"cda\"", "oda = \"cda\"\nonline_always = true"},
                                          {"[[chip.application]]", "[[chip.application]]\naip = \"3D00\""}});
  const auto r = run_sim(profile);
  CHECK(r.online == 1);
  CHECK_FALSE(has_bit(r.tvr, tvr::cda_failed));
  CHECK_FALSE(has_bit(r.tvr, tvr::issuer_auth_failed));
  CHECK(to_string(r.fin.o) == "approved_online");
}

// ---- batch_apdus: the records and the ATCs in one pad round trip each ------------------------

namespace {
terminal_config batching_terminal() {
  auto cfg = sim_terminal();
  cfg.batch_apdus = true;
  return cfg;
}
// The same unpredictable numbers in every run, so that two runs' commands compare equal.
transaction fixed_random_transaction() {
  auto t = sim_transaction();
  t.random = [](std::span<std::uint8_t> out) { std::fill(out.begin(), out.end(), std::uint8_t{0x5A}); };
  return t;
}
bool is_read(const std::string& c) {
  return c.rfind("00B2", 0) == 0;
}
// The commands from GET PROCESSING OPTIONS on (the application's, not the directory's).
std::vector<std::string> from_gpo(const std::vector<std::string>& commands) {
  auto gpo = std::find_if(commands.begin(), commands.end(),
                          [](const std::string& c) { return c.rfind("80A8", 0) == 0; });
  return {gpo, commands.end()};
}
std::size_t reads_in(const std::vector<std::string>& commands) {
  return static_cast<std::size_t>(std::count_if(commands.begin(), commands.end(), is_read));
}
}  // namespace

TEST_CASE("Sim: batch_apdus reads the records in one round trip, the card sees the same commands") {
  for (const char* card : {"visa-dda-approve.toml", "mc-cda-approve.toml", "visa-sda-approve.toml"}) {
    INFO(card);
    const auto one_by_one =
        run_sim(load(card), host::approve_with_arpc, sim_terminal(), fixed_random_transaction());
    const auto batched =
        run_sim(load(card), host::approve_with_arpc, batching_terminal(), fixed_random_transaction());
    CHECK(to_string(batched.fin.o) == to_string(one_by_one.fin.o));
    CHECK(batched.fin.reason_code == one_by_one.fin.reason_code);
    CHECK(to_hex(byte_view(batched.tvr.data(), batched.tvr.size())) ==
          to_hex(byte_view(one_by_one.tvr.data(), one_by_one.tvr.size())));
    // The application's commands are the same, in the same order.
    CHECK(from_gpo(batched.commands) == from_gpo(one_by_one.commands));
    const auto afl_reads = reads_in(from_gpo(one_by_one.commands));
    const auto directory_reads = reads_in(one_by_one.commands) - afl_reads;
    REQUIRE(afl_reads >= 2);
    REQUIRE(directory_reads >= 1);
    REQUIRE(directory_reads <= 4);
    CHECK(one_by_one.scripts == 0);
    CHECK(batched.scripts == 2);
    // The directory's records in one script, the AFL's in another.
    CHECK(batched.round_trips ==
          one_by_one.round_trips - static_cast<int>(afl_reads - 1) - static_cast<int>(directory_reads - 1));
  }
}

TEST_CASE("Sim: batch_apdus with a pad that runs one command per script sends the rest again") {
  const auto one_by_one = run_sim(load("visa-dda-approve.toml"), host::approve_with_arpc, sim_terminal(),
                                  fixed_random_transaction());
  const auto batched = run_sim(load("visa-dda-approve.toml"), host::approve_with_arpc, batching_terminal(),
                               fixed_random_transaction(), [](driver& d) { d.script_limit = 1; });
  CHECK(to_string(batched.fin.o) == "approved_offline");
  CHECK(batched.commands == one_by_one.commands);
  // One command per script: no round trip saved, nothing lost.
  CHECK(batched.round_trips == one_by_one.round_trips);
  CHECK(batched.scripts >= 2);
}

TEST_CASE("Sim: batch_apdus: an answer still asking for GET RESPONSE is fetched again on its own") {
  int scripts_seen = 0;
  const auto batched = run_sim(load("visa-dda-approve.toml"), host::approve_with_arpc, batching_terminal(),
                               fixed_random_transaction(), [&](driver& d) {
                                 // The first answer of the second script (the AFL's records) asks for GET
                                 // RESPONSE.
                                 d.script_answer = [&](std::size_t i, const bytes&) -> std::optional<bytes> {
                                   if (i == 0) ++scripts_seen;
                                   if (i == 0 && scripts_seen == 2) return bytes{0x61, 0x20};
                                   return std::nullopt;
                                 };
                               });
  CHECK(to_string(batched.fin.o) == "approved_offline");
  const auto app = from_gpo(batched.commands);
  const auto first_read = std::find_if(app.begin(), app.end(), is_read);
  REQUIRE(first_read != app.end());
  // The first record went out twice: in the script (answered 61 20) and alone; then the rest
  // of the records again.
  CHECK(std::count(app.begin(), app.end(), *first_read) == 2);
  CHECK(batched.scripts == 3);
}
TEST_CASE("Sim: batch_apdus: a script the pad could not run ends the card session") {
  auto pc = power(load("visa-dda-approve.toml"));
  contact_kernel k(batching_terminal(), &test_capks(), sim_transaction());
  bool failed_script = false;
  for (int guard = 0; guard < 100 && !failed_script; ++guard) {
    auto s = k.next();
    if (auto* a = std::get_if<contact_kernel::send_apdu>(&s)) {
      auto r = pc.icc->transmit(a->capdu);
      REQUIRE(r);
      k.feed_rapdu(*r);
    } else if (std::holds_alternative<contact_kernel::send_apdus>(s)) {
      k.feed_transmit_failed();
      failed_script = true;
    } else if (std::holds_alternative<contact_kernel::choose_application>(s)) {
      k.feed_choice(0);
    } else {
      FAIL("the records should be read before anything else is asked");
    }
  }
  REQUIRE(failed_script);
  auto f = k.next();
  REQUIRE(std::holds_alternative<contact_kernel::finished>(f));
  CHECK(std::get<contact_kernel::finished>(f).reason_code == "emv.card_error");
}

TEST_CASE("Sim: batch_apdus: more answers than commands, or answers to a single APDU, are misuse") {
  SECTION("more answers than commands") {
    auto pc = power(load("visa-dda-approve.toml"));
    contact_kernel k(batching_terminal(), &test_capks(), sim_transaction());
    for (int guard = 0; guard < 100; ++guard) {
      auto s = k.next();
      if (auto* a = std::get_if<contact_kernel::send_apdu>(&s)) {
        auto r = pc.icc->transmit(a->capdu);
        REQUIRE(r);
        k.feed_rapdu(*r);
      } else if (auto* b = std::get_if<contact_kernel::send_apdus>(&s)) {
        const bytes ok{0x90, 0x00};
        std::vector<byte_view> answers(b->capdus.size() + 1, byte_view(ok));
        k.feed_rapdus(answers);
        break;
      } else if (std::holds_alternative<contact_kernel::choose_application>(s)) {
        k.feed_choice(0);
      } else {
        FAIL("unexpected step");
      }
    }
    auto f = k.next();
    REQUIRE(std::holds_alternative<contact_kernel::finished>(f));
    CHECK(std::get<contact_kernel::finished>(f).reason_code == "emv.kernel_misuse");
  }
  SECTION("answers to a single APDU") {
    contact_kernel k(batching_terminal(), &test_capks(), sim_transaction());
    auto s = k.next();
    REQUIRE(std::holds_alternative<contact_kernel::send_apdu>(s));
    const bytes ok{0x90, 0x00};
    std::vector<byte_view> answers{byte_view(ok)};
    k.feed_rapdus(answers);
    auto f = k.next();
    REQUIRE(std::holds_alternative<contact_kernel::finished>(f));
    CHECK(std::get<contact_kernel::finished>(f).reason_code == "emv.kernel_misuse");
  }
}
