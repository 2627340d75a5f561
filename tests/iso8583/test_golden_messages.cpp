// Golden wire images for every message type eftd exchanges, in both shipped dialects:
// 0100/0110, 0120/0130, 0200/0210, 0220/0230, 0320/0330, 0400/0410, 0420/0430, 0500/0510,
// 0800/0810. Each vector is checked both ways: pack(message) == bytes and
// unpack(bytes) == message. The iso87-ascii vectors for 0100, 0200/0210, 0400/0410 and
// 0800/0810 live in test_codec.cpp (unchanged since that dialect shipped); the same messages
// are repeated here in iso87-bcd.
//
// The field sets follow the message profiles in acquirers/DIALECTS.md. The only card in
// them is the public test card 4761739001010119; nothing here prints a value on success,
// and on failure only hex of these public test messages.
#include <catch2/catch.hpp>
#include <string>

#include "eftd/acq/codec.hpp"
#include "wire.hpp"

using namespace eftd;
using namespace eftd::acq;
using wire::a;
using wire::h;

namespace {

const dialect& ascii() {
  const dialect* d = find_dialect("iso87-ascii");
  REQUIRE(d != nullptr);
  return *d;
}

const dialect& bcd() {
  const dialect* d = find_dialect("iso87-bcd");
  REQUIRE(d != nullptr);
  return *d;
}

void check_golden(const dialect& d, const message& m, const bytes& expected) {
  INFO(d.name << " " << m.mti());
  auto packed = pack(d, m);
  if (!packed) FAIL(packed.err().code << ": " << packed.err().message);
  // In BCD the PAN's digits are the hex digits: report where the images differ, not them.
  CHECK(wire::first_difference(*packed, expected) == "");

  auto back = unpack(d, expected);
  if (!back) FAIL(back.err().code << ": " << back.err().message);
  CHECK(back->mti() == m.mti());
  CHECK(wire::differing_fields(*back, m) == "");
}

// ARQC request data of a chip sale (56 bytes): 9F26 ARQC, 9F27 CID, 9F37 UN, 9F36 ATC,
// 95 TVR, 9A date, 9C type, 5F2A currency, 9F02 amount. Same as test_codec.cpp.
constexpr std::string_view icc_arqc =
    "9F26081122334455667788"
    "9F270180"
    "9F370412345678"
    "9F36020001"
    "95050000000000"
    "9A03250615"
    "9C0100"
    "5F2A020985"
    "9F0206000000012500";

// Offline chip approval (20 bytes): 9F26 TC, 9F27 CID 40 (TC), 9F36 ATC.
constexpr std::string_view icc_tc =
    "9F26088877665544332211"
    "9F270140"
    "9F36020002";

// Chip track 2 equivalent with the 'D' separator, as BCD carries it.
constexpr const char* track2_d = "4761739001010119D25122011143800000";

// Original data elements of the 0200 below: MTI, STAN, transmission date-time, acquiring
// institution (11), forwarding institution (11, zeros).
constexpr const char* original_0200 =
    "0200"
    "000123"
    "0615123456"
    "00000000001"
    "00000000000";

void set_merchant(message& m, const char* terminal = "TERM0001") {
  m.set(41, terminal);
  m.set(42, "MERCHANT0000001");
}

message auth_0100() {
  message m{"0100"};
  m.set(2, "4761739001010119");
  m.set(3, "000000");
  m.set(4, "000000005000");
  m.set(7, "0615123456");
  m.set(11, "000200");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "021");
  m.set(25, "00");
  set_merchant(m, "TERM0002");
  m.set(49, "985");
  return m;
}

message auth_0110() {
  message m{"0110"};
  m.set(3, "000000");
  m.set(4, "000000005000");
  m.set(7, "0615123456");
  m.set(11, "000200");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(37, "516612000200");
  m.set(38, "654321");
  m.set(39, "00");
  set_merchant(m, "TERM0002");
  m.set(49, "985");
  return m;
}

// Authorization advice: the terminal approved offline (39 = Y1) and tells the host.
message advice_0120() {
  message m{"0120"};
  m.set(2, "4761739001010119");
  m.set(3, "000000");
  m.set(4, "000000002000");
  m.set(7, "0615124000");
  m.set(11, "000201");
  m.set(12, "124000");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "021");
  m.set(25, "00");
  m.set(32, "00000000001");
  m.set(39, "Y1");
  set_merchant(m);
  m.set(49, "985");
  return m;
}

message advice_0130() {
  message m{"0130"};
  m.set(3, "000000");
  m.set(4, "000000002000");
  m.set(7, "0615124000");
  m.set(11, "000201");
  m.set(37, "516612000201");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  return m;
}

message sale_0200() {
  message m{"0200"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123456");
  m.set(11, "000123");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(14, "2512");
  m.set(22, "051");
  m.set(23, "001");
  m.set(25, "00");
  m.set(35, track2_d);
  set_merchant(m);
  m.set(49, "985");
  m.set(52, wire::raw("0123456789ABCDEF"));
  m.set(55, wire::raw(icc_arqc));
  return m;
}

message sale_0210() {
  message m{"0210"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123456");
  m.set(11, "000123");
  m.set(12, "123456");
  m.set(13, "0615");
  m.set(37, "516612000123");
  m.set(38, "A1B2C3");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  return m;
}

// Financial advice: completion of a pre-authorization (37/38 name it), chip data with a TC.
message completion_0220() {
  message m{"0220"};
  m.set(3, "000000");
  m.set(4, "000000004250");
  m.set(7, "0615130000");
  m.set(11, "000202");
  m.set(12, "130000");
  m.set(13, "0615");
  m.set(22, "051");
  m.set(23, "001");
  m.set(25, "00");
  m.set(32, "00000000001");
  m.set(35, track2_d);
  m.set(37, "516612000150");
  m.set(38, "A1B2C3");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  m.set(55, wire::raw(icc_tc));
  return m;
}

message completion_0230() {
  message m{"0230"};
  m.set(3, "000000");
  m.set(4, "000000004250");
  m.set(7, "0615130000");
  m.set(11, "000202");
  m.set(37, "516612000150");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  return m;
}

// Batch upload of the 0200 above (after an out-of-balance 0510): no card data, the host
// finds the original by 41 + 37 + 38 and field 90.
message upload_0320() {
  message m{"0320"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615200000");
  m.set(11, "000300");
  m.set(12, "200000");
  m.set(13, "0615");
  m.set(22, "051");
  m.set(25, "00");
  m.set(32, "00000000001");
  m.set(37, "516612000123");
  m.set(38, "A1B2C3");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  m.set(90, original_0200);
  return m;
}

message upload_0330() {
  message m{"0330"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615200000");
  m.set(11, "000300");
  m.set(37, "516612000123");
  m.set(39, "00");
  set_merchant(m);
  return m;
}

message reversal_0400() {
  message m{"0400"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123510");
  m.set(11, "000124");
  m.set(12, "123510");
  m.set(13, "0615");
  m.set(32, "00000000001");
  set_merchant(m);
  m.set(49, "985");
  m.set(90, original_0200);
  return m;
}

message reversal_0410() {
  message m{"0410"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615123510");
  m.set(11, "000124");
  m.set(12, "123510");
  m.set(13, "0615");
  m.set(37, "516612000124");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  return m;
}

// Reversal advice from the store-and-forward queue: 39 = 68 (response received too late),
// 37 = the original's RRN.
message reversal_advice_0420() {
  message m{"0420"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615124500");
  m.set(11, "000125");
  m.set(12, "124500");
  m.set(13, "0615");
  m.set(32, "00000000001");
  m.set(37, "516612000123");
  m.set(39, "68");
  set_merchant(m);
  m.set(49, "985");
  m.set(90, original_0200);
  return m;
}

message reversal_advice_0430() {
  message m{"0430"};
  m.set(3, "000000");
  m.set(4, "000000012500");
  m.set(7, "0615124500");
  m.set(11, "000125");
  m.set(12, "124500");
  m.set(13, "0615");
  m.set(37, "516612000123");
  m.set(39, "00");
  set_merchant(m);
  m.set(49, "985");
  return m;
}

// Reconciliation: counts and amounts of the batch; 97 = net (debits - debit reversals -
// credits = 1875.00 - 125.00 - 30.00 = 1720.00, D: the acquirer owes the merchant).
message reconciliation_0500() {
  message m{"0500"};
  m.set(3, "920000");
  m.set(7, "0615230000");
  m.set(11, "000400");
  m.set(12, "230000");
  m.set(13, "0615");
  m.set(15, "0616");
  m.set(32, "00000000001");
  set_merchant(m);
  m.set(50, "985");
  m.set(74, "0000000002");
  m.set(75, "0000000000");
  m.set(76, "0000000015");
  m.set(77, "0000000001");
  m.set(86, "0000000000003000");
  m.set(87, "0000000000000000");
  m.set(88, "0000000000187500");
  m.set(89, "0000000000012500");
  m.set(97, "D0000000000172000");
  return m;
}

message reconciliation_0510() {
  message m{"0510"};
  m.set(3, "920000");
  m.set(7, "0615230000");
  m.set(11, "000400");
  m.set(15, "0616");
  m.set(39, "00");
  set_merchant(m);
  m.set(66, "1");  // in balance
  return m;
}

message echo_0800() {
  message m{"0800"};
  m.set(7, "0615120000");
  m.set(11, "000001");
  m.set(70, "301");
  return m;
}

message echo_0810() {
  message m{"0810"};
  m.set(7, "0615120000");
  m.set(11, "000001");
  m.set(39, "00");
  m.set(70, "301");
  return m;
}

}  // namespace

// ---- iso87-ascii: the message types test_codec.cpp does not cover ------------------------

TEST_CASE("iso87-ascii golden 0110 authorization response", "[codec][golden][ascii]") {
  check_golden(ascii(), auth_0110(),
               wire::build({
                   a("0110"),
                   h("323800000EC08000"),  // 3 4 7 | 11 12 13 | 37 38 39 | 41 42 | 49
                   a("000000"),
                   a("000000005000"),
                   a("0615123456"),
                   a("000200"),
                   a("123456"),
                   a("0615"),
                   a("516612000200"),  // 37
                   a("654321"),        // 38
                   a("00"),            // 39
                   a("TERM0002"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-ascii golden 0120/0130 authorization advice", "[codec][golden][ascii]") {
  check_golden(ascii(), advice_0120(),
               wire::build({
                   a("0120"),
                   h("723C048102C08000"),  // 2 3 4 7 | 11 12 13 14 | 22 | 25 | 32 | 39 | 41 42 | 49
                   a("16"),
                   a("4761739001010119"),  // 2 LL
                   a("000000"),
                   a("000000002000"),
                   a("0615124000"),
                   a("000201"),
                   a("124000"),
                   a("0615"),
                   a("2512"),  // 14
                   a("021"),   // 22
                   a("00"),    // 25
                   a("11"),
                   a("00000000001"),  // 32 LL
                   a("Y1"),           // 39 offline approved
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
  check_golden(ascii(), advice_0130(),
               wire::build({
                   a("0130"),
                   h("322000000AC08000"),  // 3 4 7 | 11 | 37 39 | 41 42 | 49
                   a("000000"),
                   a("000000002000"),
                   a("0615124000"),
                   a("000201"),
                   a("516612000201"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-ascii golden 0220/0230 financial advice", "[codec][golden][ascii]") {
  check_golden(ascii(), completion_0220(),
               wire::build({
                   a("0220"),
                   h("323806812EC08200"),  // 3 4 7 | 11 12 13 | 22 23 | 25 | 32 | 35 37 38 39 | 41 42 | 49 55
                   a("000000"),
                   a("000000004250"),
                   a("0615130000"),
                   a("000202"),
                   a("130000"),
                   a("0615"),
                   a("051"),
                   a("001"),
                   a("00"),
                   a("11"),
                   a("00000000001"),  // 32
                   a("34"),
                   a(track2_d),  // 35 LL, 'D' separator kept as a character
                   a("516612000150"),
                   a("A1B2C3"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   a("020"),
                   h(icc_tc),  // 55 LLL counting bytes + raw TLV
               }));
  check_golden(ascii(), completion_0230(),
               wire::build({
                   a("0230"),
                   h("322000000AC08000"),
                   a("000000"),
                   a("000000004250"),
                   a("0615130000"),
                   a("000202"),
                   a("516612000150"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-ascii golden 0320/0330 batch upload", "[codec][golden][ascii]") {
  check_golden(ascii(), upload_0320(),
               wire::build({
                   a("0320"),
                   h("B23804810EC08000"),  // 1 3 4 7 | 11 12 13 | 22 | 25 | 32 | 37 38 39 | 41 42 | 49
                   h("0000004000000000"),  // 90
                   a("000000"),
                   a("000000012500"),
                   a("0615200000"),
                   a("000300"),
                   a("200000"),
                   a("0615"),
                   a("051"),
                   a("00"),
                   a("11"),
                   a("00000000001"),
                   a("516612000123"),
                   a("A1B2C3"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   a(original_0200),  // 90 n 42
               }));
  check_golden(ascii(), upload_0330(),
               wire::build({
                   a("0330"),
                   h("322000000AC00000"),  // 3 4 7 | 11 | 37 39 | 41 42
                   a("000000"),
                   a("000000012500"),
                   a("0615200000"),
                   a("000300"),
                   a("516612000123"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
               }));
}

TEST_CASE("iso87-ascii golden 0420/0430 reversal advice", "[codec][golden][ascii]") {
  check_golden(ascii(), reversal_advice_0420(),
               wire::build({
                   a("0420"),
                   h("B23800010AC08000"),  // 1 3 4 7 | 11 12 13 | 32 | 37 39 | 41 42 | 49
                   h("0000004000000000"),  // 90
                   a("000000"),
                   a("000000012500"),
                   a("0615124500"),
                   a("000125"),
                   a("124500"),
                   a("0615"),
                   a("11"),
                   a("00000000001"),
                   a("516612000123"),
                   a("68"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   a(original_0200),
               }));
  check_golden(ascii(), reversal_advice_0430(),
               wire::build({
                   a("0430"),
                   h("323800000AC08000"),  // 3 4 7 | 11 12 13 | 37 39 | 41 42 | 49
                   a("000000"),
                   a("000000012500"),
                   a("0615124500"),
                   a("000125"),
                   a("124500"),
                   a("0615"),
                   a("516612000123"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-ascii golden 0500/0510 reconciliation", "[codec][golden][ascii]") {
  check_golden(ascii(), reconciliation_0500(),
               wire::build({
                   a("0500"),
                   h("A23A000100C04000"),  // 1 3 7 | 11 12 13 15 | 32 | 41 42 | 50
                   h("0078078080000000"),  // 74 75 76 77 | 86 87 88 89 | 97
                   a("920000"),
                   a("0615230000"),
                   a("000400"),
                   a("230000"),
                   a("0615"),
                   a("0616"),  // 15 settlement date
                   a("11"),
                   a("00000000001"),  // 32
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),  // 50
                   a("0000000002"),
                   a("0000000000"),
                   a("0000000015"),
                   a("0000000001"),  // 74-77
                   a("0000000000003000"),
                   a("0000000000000000"),  // 86 87
                   a("0000000000187500"),
                   a("0000000000012500"),   // 88 89
                   a("D0000000000172000"),  // 97 xn 17
               }));
  check_golden(
      ascii(), reconciliation_0510(),
      wire::build({
          a("0510"),
          h("A222000002C00000"),  // 1 3 7 | 11 15 | 39 | 41 42
          h("4000000000000000"),  // 66
          a("920000"), a("0615230000"), a("000400"), a("0616"), a("00"), a("TERM0001"), a("MERCHANT0000001"),
          a("1"),  // 66 settlement code: in balance
      }));
}

// ---- iso87-bcd: every message type --------------------------------------------------------

TEST_CASE("iso87-bcd golden 0100/0110 authorization", "[codec][golden][bcd]") {
  check_golden(bcd(), auth_0100(),
               wire::build({
                   h("0100"),                       // MTI, 2 BCD bytes
                   h("723C048000C08000"),           // 2 3 4 7 | 11 12 13 14 | 22 | 25 | 41 42 | 49
                   h("16"), h("4761739001010119"),  // 2: LL as 1 BCD byte (16 digits), 8 bytes
                   h("000000"),                     // 3 n 6 -> 3 bytes
                   h("000000005000"),               // 4 n 12 -> 6 bytes
                   h("0615123456"),                 // 7 n 10 -> 5 bytes
                   h("000200"), h("123456"), h("0615"),
                   h("2512"),                                      // 14
                   h("0021"),                                      // 22 n 3: zero nibble in front
                   h("00"),                                        // 25
                   a("TERM0002"), a("MERCHANT0000001"), a("985"),  // 41 42 49 stay ASCII
               }));
  check_golden(bcd(), auth_0110(),
               wire::build({
                   h("0110"),
                   h("323800000EC08000"),
                   h("000000"),
                   h("000000005000"),
                   h("0615123456"),
                   h("000200"),
                   h("123456"),
                   h("0615"),
                   a("516612000200"),
                   a("654321"),
                   a("00"),  // 37 38 39 an
                   a("TERM0002"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-bcd golden 0120/0130 authorization advice", "[codec][golden][bcd]") {
  check_golden(bcd(), advice_0120(),
               wire::build({
                   h("0120"),
                   h("723C048102C08000"),
                   h("16"),
                   h("4761739001010119"),
                   h("000000"),
                   h("000000002000"),
                   h("0615124000"),
                   h("000201"),
                   h("124000"),
                   h("0615"),
                   h("2512"),
                   h("0021"),
                   h("00"),
                   h("11"),
                   h("000000000001"),  // 32: 11 digits -> zero nibble + 6 bytes
                   a("Y1"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
  check_golden(bcd(), advice_0130(),
               wire::build({
                   h("0130"),
                   h("322000000AC08000"),
                   h("000000"),
                   h("000000002000"),
                   h("0615124000"),
                   h("000201"),
                   a("516612000201"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-bcd golden 0200/0210 chip sale with PIN block and field 55", "[codec][golden][bcd]") {
  check_golden(bcd(), sale_0200(),
               wire::build({
                   h("0200"),
                   h("323C068020C09200"),  // 3 4 7 | 11 12 13 14 | 22 23 | 25 | 35 | 41 42 | 49 52 55
                   h("000000"),
                   h("000000012500"),
                   h("0615123456"),
                   h("000123"),
                   h("123456"),
                   h("0615"),
                   h("2512"),  // 14
                   h("0051"),  // 22 chip + PIN
                   h("0001"),  // 23 card sequence number
                   h("00"),    // 25
                   h("34"),
                   h("4761739001010119D25122011143800000"),  // 35: 34 nibbles, D = separator
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   h("0123456789ABCDEF"),  // 52: 8 raw bytes
                   h("0056"),
                   h(icc_arqc),  // 55: LLL as 2 BCD bytes counting bytes, raw TLV
               }));
  check_golden(bcd(), sale_0210(),
               wire::build({
                   h("0210"),
                   h("323800000EC08000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615123456"),
                   h("000123"),
                   h("123456"),
                   h("0615"),
                   a("516612000123"),
                   a("A1B2C3"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-bcd golden 0220/0230 financial advice", "[codec][golden][bcd]") {
  check_golden(bcd(), completion_0220(),
               wire::build({
                   h("0220"),
                   h("323806812EC08200"),
                   h("000000"),
                   h("000000004250"),
                   h("0615130000"),
                   h("000202"),
                   h("130000"),
                   h("0615"),
                   h("0051"),
                   h("0001"),
                   h("00"),
                   h("11"),
                   h("000000000001"),
                   h("34"),
                   h("4761739001010119D25122011143800000"),
                   a("516612000150"),
                   a("A1B2C3"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   h("0020"),
                   h(icc_tc),
               }));
  check_golden(bcd(), completion_0230(),
               wire::build({
                   h("0230"),
                   h("322000000AC08000"),
                   h("000000"),
                   h("000000004250"),
                   h("0615130000"),
                   h("000202"),
                   a("516612000150"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-bcd golden 0320/0330 batch upload", "[codec][golden][bcd]") {
  check_golden(bcd(), upload_0320(),
               wire::build({
                   h("0320"),
                   h("B23804810EC08000"),
                   h("0000004000000000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615200000"),
                   h("000300"),
                   h("200000"),
                   h("0615"),
                   h("0051"),
                   h("00"),
                   h("11"),
                   h("000000000001"),
                   a("516612000123"),
                   a("A1B2C3"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   h("020000012306151234560000000000100000000000"),  // 90: 42 digits, 21 bytes
               }));
  check_golden(bcd(), upload_0330(),
               wire::build({
                   h("0330"),
                   h("322000000AC00000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615200000"),
                   h("000300"),
                   a("516612000123"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
               }));
}

TEST_CASE("iso87-bcd golden 0400/0410 reversal", "[codec][golden][bcd]") {
  check_golden(bcd(), reversal_0400(),
               wire::build({
                   h("0400"),
                   h("B238000100C08000"),
                   h("0000004000000000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615123510"),
                   h("000124"),
                   h("123510"),
                   h("0615"),
                   h("11"),
                   h("000000000001"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   h("020000012306151234560000000000100000000000"),
               }));
  check_golden(bcd(), reversal_0410(),
               wire::build({
                   h("0410"),
                   h("323800000AC08000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615123510"),
                   h("000124"),
                   h("123510"),
                   h("0615"),
                   a("516612000124"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-bcd golden 0420/0430 reversal advice", "[codec][golden][bcd]") {
  check_golden(bcd(), reversal_advice_0420(),
               wire::build({
                   h("0420"),
                   h("B23800010AC08000"),
                   h("0000004000000000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615124500"),
                   h("000125"),
                   h("124500"),
                   h("0615"),
                   h("11"),
                   h("000000000001"),
                   a("516612000123"),
                   a("68"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
                   h("020000012306151234560000000000100000000000"),
               }));
  check_golden(bcd(), reversal_advice_0430(),
               wire::build({
                   h("0430"),
                   h("323800000AC08000"),
                   h("000000"),
                   h("000000012500"),
                   h("0615124500"),
                   h("000125"),
                   h("124500"),
                   h("0615"),
                   a("516612000123"),
                   a("00"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),
               }));
}

TEST_CASE("iso87-bcd golden 0500/0510 reconciliation", "[codec][golden][bcd]") {
  check_golden(bcd(), reconciliation_0500(),
               wire::build({
                   h("0500"),
                   h("A23A000100C04000"),
                   h("0078078080000000"),
                   h("920000"),
                   h("0615230000"),
                   h("000400"),
                   h("230000"),
                   h("0615"),
                   h("0616"),
                   h("11"),
                   h("000000000001"),
                   a("TERM0001"),
                   a("MERCHANT0000001"),
                   a("985"),  // 50 an 3
                   h("0000000002"),
                   h("0000000000"),
                   h("0000000015"),
                   h("0000000001"),  // 74-77: 5 bytes each
                   h("0000000000003000"),
                   h("0000000000000000"),  // 86 87: 8 bytes each
                   h("0000000000187500"),
                   h("0000000000012500"),  // 88 89
                   a("D"),
                   h("0000000000172000"),  // 97 xn 17: ASCII sign + 16 digits in 8 bytes
               }));
  check_golden(bcd(), reconciliation_0510(),
               wire::build({
                   h("0510"), h("A222000002C00000"), h("4000000000000000"), h("920000"), h("0615230000"),
                   h("000400"), h("0616"), a("00"), a("TERM0001"), a("MERCHANT0000001"),
                   h("01"),  // 66 n 1: zero nibble + 1
               }));
}

TEST_CASE("iso87-bcd golden 0800/0810 echo test", "[codec][golden][bcd]") {
  check_golden(bcd(), echo_0800(),
               wire::build({
                   h("0800"),
                   h("8220000000000000"),  // 1 7 | 11
                   h("0400000000000000"),  // 70
                   h("0615120000"), h("000001"),
                   h("0301"),  // 70 n 3
               }));
  check_golden(bcd(), echo_0810(),
               wire::build({
                   h("0810"),
                   h("8220000002000000"),  // 1 7 | 11 | 39
                   h("0400000000000000"),
                   h("0615120000"),
                   h("000001"),
                   a("00"),
                   h("0301"),
               }));
}

TEST_CASE("the two dialects carry the same message in different bytes", "[codec][golden]") {
  // Same fields, same bitmap; BCD halves the numerics.
  for (const message& m : {sale_0200(), reconciliation_0500(), echo_0800()}) {
    INFO(m.mti());
    auto in_ascii = pack(ascii(), m);
    auto in_bcd = pack(bcd(), m);
    REQUIRE(in_ascii.has_value());
    REQUIRE(in_bcd.has_value());
    CHECK(in_bcd->size() < in_ascii->size());
    auto back = unpack(bcd(), *in_bcd);
    REQUIRE(back.has_value());
    CHECK(*back == m);
  }
}
