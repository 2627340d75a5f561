// EMV symmetric cryptography shared by the card side (ICC simulator: GENERATE AC) and the host
// side (acquirer simulator: ARQC check, ARPC, issuer script MACs): ICC master key derivation
// (EMV Book 2 A1.4 options A and B), session keys, application cryptograms, ARPC methods 1
// and 2, and the cryptogram versions (CVN) as a table of data.
//
// Every block operation is OpenSSL's (block_cipher.hpp, mac.hpp). Keys are double-length TDES
// keys (16 bytes); derived keys come back as secure_bytes with odd DES parity. Cryptograms and
// MACs are not secret and come back as plain bytes; compare them with mac_equal (mac.hpp).
//
// Error codes: "crypto.bad_key" (a key is not 16 bytes), "emv.bad_pan" (PAN or PSN not all
// digits, PAN shorter than 12 or longer than 19 digits, PSN longer than 2 digits),
// "emv.bad_input" (a fixed-length input has the wrong length: R, ARQC, ARC, CSU, UN),
// "crypto.openssl". Messages name the field, never its value.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "eftd/core/bytes.hpp"
#include "eftd/core/mac.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"

namespace eftd::emv {

// ICC master key derivation option (EMV Book 2 A1.4.1 / A1.4.2). Option b uses SHA-1 only for
// PAN longer than 16 digits; for 16 digits or fewer it is option a, as the book says.
enum class mk_option { a, b };

// ICC master key from a 16-byte issuer master key, the PAN digits and the PAN sequence number
// ("" = "00"; one digit is left-padded with 0). Result: 16 bytes with odd parity.
result<secure_bytes> derive_icc_mk(byte_view issuer_mk, std::string_view pan, std::string_view psn,
                                   mk_option option);

// EMV common session key (Book 2 A1.3.1): R is 8 bytes; SK_L = TDES(MK, R with R[2]=F0),
// SK_R = TDES(MK, R with R[2]=0F), odd parity.
result<secure_bytes> common_session_key(byte_view icc_mk, byte_view r);

// Visa secure-messaging session key: ATC XORed into the last two bytes of the left half, ~ATC
// into the last two bytes of the right half, odd parity.
result<secure_bytes> visa_sm_session_key(byte_view icc_mk, std::uint16_t atc);

// Application cryptogram / MAC: ISO 9797-1 MAC algorithm 3 under the 16-byte key; 8 bytes.
result<bytes> application_cryptogram(byte_view key, byte_view data, mac_padding padding);

// ARPC method 1: TDES(key, ARQC XOR (ARC || 00..00)). ARQC 8 bytes, ARC 2 bytes; 8 bytes out.
result<bytes> arpc_method1(byte_view key, byte_view arqc, byte_view arc);
// ARPC method 2: leftmost 4 bytes of alg 3 (pad 2) over ARQC || CSU || proprietary auth data.
// ARQC 8 bytes, CSU 4 bytes, proprietary data 0..8 bytes; 4 bytes out.
result<bytes> arpc_method2(byte_view key, byte_view arqc, byte_view csu, byte_view prop_auth = {});

// Issuer script command MAC: alg 3 with padding method 2 under the script session key; 8 bytes.
result<bytes> script_mac(byte_view session_key, byte_view data);

// SHA-1 (OpenSSL EVP), 20 bytes: option B derivation and ODA hashes. Aborts only if OpenSSL
// itself is broken (SHA-1 over memory cannot fail otherwise).
bytes sha1(byte_view data);

// Sets every byte of `key` to odd parity (DES keys: the low bit is the parity bit).
void set_odd_parity(std::span<std::uint8_t> key) noexcept;

// Cryptogram versions. Each is data (see cvn_spec): the session key, the padding, what is
// appended to the CDOL data, and the ARPC method with its key.
enum class cvn { visa10, visa18, mc16, mc20 };

enum class session_key_kind {
  icc_mk,      // no session key: the ICC master key itself (Visa CVN10)
  csk_atc,     // common session key, R = ATC || 000000000000
  csk_atc_un,  // common session key, R = ATC || 0000 || UN (M/Chip CVN16/17)
};
enum class arpc_kind {
  method1_icc_mk,  // ARPC method 1 under the ICC master key
  method1_sk,      // ARPC method 1 under the session key
  method2_sk,      // ARPC method 2 under the session key
};

struct cvn_spec {
  cvn version;
  std::uint8_t number;  // the CVN as it appears in the IAD (10, 18, 16, 20)
  session_key_kind session_key;
  mac_padding padding;
  arpc_kind arpc;
};

// The table row for a CVN.
const cvn_spec& spec(cvn version);

struct ac_inputs {
  std::uint16_t atc = 0;
  bytes un;          // 9F37, 4 bytes (used by the session key of MC CVN16)
  bytes data;        // CDOL1 data as the card MACs it, e.g. 9F02..9F36 per the CVN
  bytes iad_or_cvr;  // appended to data: Visa CVN10 the CVR (4 bytes), CVN18 the full 9F10,
                     // MC CVN16/20 the CVR (6 bytes)
};

// The AC session key the CVN derives from the ICC MK-AC (the ICC MK itself for CVN10).
result<secure_bytes> ac_session_key(cvn version, byte_view icc_mk, const ac_inputs& in);

// The 8-byte application cryptogram (ARQC, TC or AAC). Card side and host side both call it.
result<bytes> generate_ac(cvn version, byte_view icc_mk, const ac_inputs& in);

// The ARPC for `arqc`: method 1 (8 bytes; arc_or_csu is the 2-byte ARC) or method 2 (4 bytes;
// arc_or_csu is the 4-byte CSU) as the CVN says.
result<bytes> generate_arpc(cvn version, byte_view icc_mk, const ac_inputs& in, byte_view arqc,
                            byte_view arc_or_csu);

// The CVN named by issuer application data (9F10), or nullopt for a CVN not in the enum.
// Visa formats start with their own length (06 for 7 bytes, 1F for 32): byte 2 is the CVN
// (0x0A = 10, 0x12 = 18). M/Chip (18+ bytes): byte 0 is the derivation key index, byte 1 the
// CVN in hex (0x10 = 16, 0x14 = 20).
std::optional<cvn> cvn_from_iad(byte_view iad_9f10);

}  // namespace eftd::emv
