// The acquirer simulator as the chip card's issuer: the ARQC check, the ARPC in field 55 tag 91
// and issuer scripts (acqsim/issuer.hpp). First the decision logic with the §6 vectors, then
// the ICC simulator's real cryptograms through the real eft-acquirer-sim over ISO 8583, and
// the issuer's answer back into the card (EXTERNAL AUTHENTICATE, second GENERATE AC, scripts).
//
// Cryptograms, ARPCs and MACs are not card data; PANs are never printed (compared inside code).
#include <algorithm>

#include "eftd/acqsim/host.hpp"
#include "eftd/acqsim/issuer.hpp"
#include "eftd/core/emv_crypto.hpp"
#include "eftd/core/tlv.hpp"
#include "eftd/padsim/card_profile.hpp"
#include "eftd/padsim/icc.hpp"
#include "link_support.hpp"

using namespace linktest;
using eftd::byte_view;
using eftd::bytes;
using eftd::tlv;

namespace {

bytes hx(std::string_view h) {
  auto b = eftd::from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

std::string raw(const bytes& b) {
  return std::string(b.begin(), b.end());
}

std::vector<tlv> tlvs_of(std::string_view field55) {
  auto t = eftd::tlv_decode(eftd::as_bytes(field55));
  REQUIRE(t.has_value());
  return std::move(*t);
}

// Field 55 of the §6 per-CVN rows: terminal data, AIP 1800, ATC 001C, then the CVN's 9F10/9F26.
std::string vector_55(std::string_view data_hex, std::string_view iad, std::string_view arqc) {
  const bytes d = hx(data_hex);
  auto part = [&](std::size_t off, std::size_t len) { return bytes(d.begin() + off, d.begin() + off + len); };
  const std::vector<tlv> l{
      {0x9F02, part(0, 6), {}}, {0x9F03, part(6, 6), {}},        {0x9F1A, part(12, 2), {}},
      {0x95, part(14, 5), {}},  {0x5F2A, part(19, 2), {}},       {0x9A, part(21, 3), {}},
      {0x9C, part(24, 1), {}},  {0x9F37, part(25, 4), {}},       {0x82, hx("1800"), {}},
      {0x9F36, hx("001C"), {}}, {0x9F10, hx(iad), {}},           {0x9F26, hx(arqc), {}},
      {0x9F27, {0x80}, {}},     {0x84, hx("A0000000031010"), {}}};
  return raw(eftd::tlv_encode(l));
}

acq::message chip_sale(std::string amount, std::string pan, std::string field55, std::string psn = "000") {
  acq::message m{"0200"};
  m.set(2, std::move(pan));
  m.set(3, "000000");
  m.set(4, std::move(amount));
  m.set(7, "0615123456");
  m.set(11, "000321");
  m.set(22, "051");
  m.set(23, std::move(psn));
  m.set(41, "TERM0001");
  m.set(42, "MERCHANT0000001");
  m.set(49, "985");
  m.set(55, std::move(field55));
  return m;
}

eftd::acqsim::issuer_keys vector_keys() {
  auto k = eftd::acqsim::issuer_keys::parse(
      "[[issuer]]\npan_prefix = \"1234567890\"\nmk_ac = \"0123456789ABCDEFFEDCBA9876543210\"\n"
      "mk_smi = \"FEDCBA98765432100123456789ABCDEF\"\n",
      "keys.toml");
  if (!k) FAIL(k.err().code << ": " << k.err().message);
  return std::move(*k);
}

const tlv* find(const std::vector<tlv>& l, std::uint32_t tag) {
  return eftd::tlv_find(l, tag, true);
}

constexpr std::string_view visa_data =
    "000000004000"
    "000000000000"
    "0124"
    "8000048000"
    "0124"
    "191105"
    "01"
    "52BF4585";

}  // namespace

TEST_CASE("sim issuer: section 6 ARQCs verify and the ARPC comes back in 91", "[acquirer][sim][emv]") {
  eftd::acqsim::rules r;
  r.issuer = vector_keys();
  eftd::acqsim::host h(r);

  // CVN 10, approved: ARPC method 1 with ARC "00" (3030) is the published one.
  auto o = h.handle(chip_sale("000000001000", "1234567890123456",
                              vector_55(visa_data, "06010A03A06010", "29CCA15AE665FA2E")));
  REQUIRE(o.response.has_value());
  CHECK(o.response->get_or(39, "") == "00");
  auto t = tlvs_of(o.response->get_or(55, ""));
  REQUIRE(find(t, 0x91) != nullptr);
  CHECK(eftd::to_hex(find(t, 0x91)->value) == "28993816AFAE4AEB3030");
  CHECK(o.note.find("arqc verified") != std::string::npos);

  // CVN 18, declined by the amount rule (51): CSU 00000000 gives the published method 2 ARPC.
  acq::message d = chip_sale("000000005151", "1234567890123456",
                             vector_55(visa_data, "06011203A0B800", "7A788EA6B8A3E733"));
  d.set(11, "000322");
  o = h.handle(d);
  REQUIRE(o.response.has_value());
  CHECK(o.response->get_or(39, "") == "51");
  t = tlvs_of(o.response->get_or(55, ""));
  REQUIRE(find(t, 0x91) != nullptr);
  CHECK(eftd::to_hex(find(t, 0x91)->value) == "9AF514C100000000");

  // A wrong ARQC: 05, no field 55, "arqc mismatch" in the note (no card data there).
  acq::message bad = chip_sale("000000001000", "1234567890123456",
                               vector_55(visa_data, "06010A03A06010", "29CCA15AE665FA2F"));
  bad.set(11, "000323");
  o = h.handle(bad);
  REQUIRE(o.response.has_value());
  CHECK(o.response->get_or(39, "") == "05");
  CHECK_FALSE(o.response->has(55));
  CHECK(o.note.find("arqc mismatch") != std::string::npos);
  CHECK(o.note.find("1234567890") == std::string::npos);

  // A card the keys do not cover is decided as before, without field 55.
  acq::message other = chip_sale("000000001000", "4761739001010119",
                                 vector_55(visa_data, "06010A03A06010", "29CCA15AE665FA2F"));
  other.set(11, "000324");
  o = h.handle(other);
  CHECK(o.response->get_or(39, "") == "00");
  CHECK_FALSE(o.response->has(55));

  // Without issuer keys nothing is checked (the simulator as before).
  eftd::acqsim::host plain;
  o = plain.handle(bad);
  CHECK(o.response->get_or(39, "") == "00");
  CHECK_FALSE(o.response->has(55));
}

TEST_CASE("sim issuer: keys file errors name the entry and key, never the key", "[acquirer][sim][emv]") {
  struct vec {
    const char* text;
    const char* code;
    const char* names;
  };
  const vec vectors[] = {
      {"[[issuer]]\npan_prefix = \"4761\"\nmk_ac = \"0123456789ABCDEF\"", "sim.issuer_keys_invalid",
       "issuer[1].mk_ac"},
      {"[[issuer]]\nmk_ac = \"0123456789ABCDEFFEDCBA9876543210\"", "sim.issuer_keys_invalid",
       "issuer[1].pan_prefix"},
      {"[[issuer]]\naid = \"A000000003\"\nmk_ac = \"0123456789ABCDEFFEDCBA9876543210\"\ncvn = \"v9\"",
       "sim.issuer_keys_invalid", "issuer[1].cvn"},
      {"[[issuer]]\naid = \"A000000003\"\nmk_ac = \"0123456789ABCDEFFEDCBA9876543210\"\nmkac = \"00\"",
       "sim.issuer_keys_invalid", "issuer[1].mkac"},
      {"[[issuer]\n", "sim.issuer_keys_syntax", "line"},
      {"x = 1\n", "sim.issuer_keys_invalid", "'x'"},
  };
  for (const auto& v : vectors) {
    INFO(v.names);
    auto k = eftd::acqsim::issuer_keys::parse(v.text, "keys.toml");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.err().code == v.code);
    CHECK(k.err().message.find(v.names) != std::string::npos);
    CHECK(k.err().message.find("0123456789ABCDEF") == std::string::npos);
  }
  auto shipped =
      eftd::acqsim::issuer_keys::load(eftd::test::source_path("acquirers/sim/issuer-keys-test.toml"));
  REQUIRE(shipped.has_value());
  CHECK(shipped->size() == 2);
  CHECK(eftd::acqsim::parse_issuer_script("pin-unblock") == eftd::acqsim::issuer_script::pin_unblock);
  CHECK_FALSE(eftd::acqsim::parse_issuer_script("reset").has_value());
}

namespace {

// A simulated card, powered and selected, with its GPO done.
struct chip_card {
  eftd::padsim::card_profile profile;
  std::unique_ptr<eftd::padsim::icc> icc;
  bytes aip;

  chip_card(const char* file, std::string_view aid) {
    auto p =
        eftd::padsim::load_card_profile(eftd::test::source_path("pinpad-firmware-shim/cards") + "/" + file);
    if (!p) FAIL(p.err().code << ": " << p.err().message);
    profile = std::move(*p);
    icc = eftd::padsim::make_icc_sim(profile);
    REQUIRE(icc->power_on().has_value());
    const bytes sel_head{0x00, 0xA4, 0x04, 0x00, static_cast<std::uint8_t>(aid.size() / 2)};
    REQUIRE(sw(eftd::to_hex(sel_head) + std::string(aid) + "00") == "9000");
    const bytes gpo = tx("80A8000002830000");
    auto t = eftd::tlv_decode(byte_view(gpo).first(gpo.size() - 2));
    REQUIRE(t.has_value());
    aip = eftd::tlv_find(*t, 0x82, true)->value;
  }
  bytes tx(std::string_view hex) {
    auto r = icc->transmit(hx(hex));
    REQUIRE(r.has_value());
    REQUIRE(r->size() >= 2);
    return *r;
  }
  std::string sw(std::string_view hex) {
    const bytes r = tx(hex);
    return eftd::to_hex(byte_view(r).last(2));
  }
  std::string pan() const {
    return std::string(reinterpret_cast<const char*>(profile.pan.view().data()), profile.pan.size());
  }
};

constexpr std::string_view cdol1 =
    "000000002500"
    "000000000000"
    "0616"
    "0000000000"
    "0616"
    "261122"
    "00"
    "0BADCAFE";

std::string genac(std::uint8_t p1, std::string_view data) {
  const bytes h{0x80, 0xAE, p1, 0x00, static_cast<std::uint8_t>(data.size() / 2)};
  return eftd::to_hex(h) + std::string(data) + "00";
}

// Field 55 as a kernel builds it from the CDOL1 data and the first GENERATE AC answer.
std::string field55_for(const chip_card& c, const bytes& genac_answer, std::string_view aid) {
  auto r = eftd::tlv_decode(byte_view(genac_answer).first(genac_answer.size() - 2));
  REQUIRE(r.has_value());
  const bytes d = hx(cdol1);
  auto part = [&](std::size_t off, std::size_t len) { return bytes(d.begin() + off, d.begin() + off + len); };
  std::vector<tlv> l;
  for (std::uint32_t tag : {0x9F26u, 0x9F27u, 0x9F10u, 0x9F36u}) {
    const tlv* t = eftd::tlv_find(*r, tag, true);
    REQUIRE(t != nullptr);
    l.push_back(*t);
  }
  const std::vector<tlv> terminal{
      {0x9F37, part(25, 4), {}}, {0x95, part(14, 5), {}},  {0x9A, part(21, 3), {}},   {0x9C, part(24, 1), {}},
      {0x9F02, part(0, 6), {}},  {0x9F03, part(6, 6), {}}, {0x5F2A, part(19, 2), {}}, {0x82, c.aip, {}},
      {0x9F1A, part(12, 2), {}}, {0x84, hx(aid), {}}};
  l.insert(l.end(), terminal.begin(), terminal.end());
  return raw(eftd::tlv_encode(l));
}

}  // namespace

TEST_CASE("sim issuer: the card's ARQC through the real simulator, its ARPC back into the card",
          "[acquirer][sim][emv][process]") {
  sim s{{"--issuer-keys", eftd::test::source_path("acquirers/sim/issuer-keys-test.toml"), "--issuer-script",
         "pin-unblock"}};
  struct row {
    const char* file;
    const char* aid;
    const char* psn;
  };
  int stan = 1;
  for (const row& rw : {row{"visa-dda-approve.toml", "A0000000031010", "001"},
                        row{"visa-chip-approve.toml", "A0000000031010", "001"},
                        row{"mc-cda-approve.toml", "A0000000041010", "000"}}) {
    INFO(rw.file);
    chip_card c(rw.file, rw.aid);
    const bytes first = c.tx(genac(0x80, cdol1));
    REQUIRE(eftd::to_hex(byte_view(first).last(2)) == "9000");
    acq::message req = chip_sale("000000002500", c.pan(), field55_for(c, first, rw.aid), rw.psn);
    req.set(11, fmt::format("{:06}", stan++));
    std::optional<eftd::result<acq::message>> answer;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
      auto l = make_link(ex, s.port);
      acq::message m = req;
      answer.emplace(co_await l->request(std::move(m)));
      l->close();
    });
    REQUIRE(answer->has_value());
    const acq::message& resp = **answer;
    CHECK(resp.get_or(39, "") == "00");
    const auto t = tlvs_of(resp.get_or(55, ""));
    const tlv* ia = find(t, 0x91);
    REQUIRE(ia != nullptr);
    const bytes ea_head{0x00, 0x82, 0x00, 0x00, static_cast<std::uint8_t>(ia->value.size())};
    CHECK(c.sw(eftd::to_hex(ea_head) + eftd::to_hex(ia->value)) == "9000");
    // The issuer's PIN unblock script (72 { 9F18, 86 }) is accepted by the card.
    const tlv* script = find(t, 0x86);
    REQUIRE(script != nullptr);
    CHECK(c.sw(eftd::to_hex(script->value)) == "9000");
    const bytes second = c.tx(genac(0x40, "3030" + std::string(cdol1)));
    auto r2 = eftd::tlv_decode(byte_view(second).first(second.size() - 2));
    REQUIRE(r2.has_value());
    const tlv* cid = eftd::tlv_find(*r2, 0x9F27, true);
    if (cid == nullptr) {  // format 1
      CHECK(eftd::to_hex(r2->front().value).substr(0, 2) == "40");
    } else {
      CHECK(eftd::to_hex(cid->value) == "40");
    }
  }

  // A tampered ARQC: declined 05 and no field 55; the card then refuses anything but an AAC.
  chip_card c("visa-dda-approve.toml", "A0000000031010");
  const bytes first = c.tx(genac(0x80, cdol1));
  std::string f55 = field55_for(c, first, "A0000000031010");
  f55[3] = static_cast<char>(f55[3] ^ 0x01);  // first AC byte (9F26 08 ...)
  acq::message req = chip_sale("000000002500", c.pan(), f55, "001");
  req.set(11, fmt::format("{:06}", stan++));
  std::optional<eftd::result<acq::message>> answer;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto l = make_link(ex, s.port);
    answer.emplace(co_await l->request(req));
    l->close();
  });
  REQUIRE(answer->has_value());
  CHECK((*answer)->get_or(39, "") == "05");
  CHECK_FALSE((*answer)->has(55));
  const bytes second = c.tx(genac(0x40, "3035" + std::string(cdol1)));
  auto r2 = eftd::tlv_decode(byte_view(second).first(second.size() - 2));
  REQUIRE(r2.has_value());
  const tlv* cid = eftd::tlv_find(*r2, 0x9F27, true);
  REQUIRE(cid != nullptr);
  CHECK(eftd::to_hex(cid->value) == "00");
  const auto summary = s.stop_and_summary();
  CHECK(summary_number(summary, "approved") == 3);
  CHECK(summary_number(summary, "declined") == 1);
}
