// Message authentication codes used on payment messages: ISO/IEC 9797-1 MAC algorithm 1
// (CBC-MAC) and algorithm 3 (the "retail MAC", ANSI X9.19) with DES/TDES keys, and CMAC
// (NIST SP 800-38B) with AES or TDES keys. All block work is OpenSSL's (block_cipher.hpp).
//
// Outputs are the full cipher block (8 bytes for DES/TDES, 16 for AES); protocols that send
// a shorter MAC take its leftmost bytes themselves (X9.19 and DUKPT: 4 bytes). A MAC is not
// secret, so results are plain bytes. Compare received MACs with mac_equal (constant time).
//
// Error codes: "crypto.bad_key" (key length), "crypto.openssl".
#pragma once

#include "eftd/core/bytes.hpp"
#include "eftd/core/result.hpp"

namespace eftd {

// ISO/IEC 9797-1 padding methods.
enum class mac_padding {
  method1,  // zero bits up to a whole block; none if already whole; empty data -> one zero block
  method2,  // one 0x80 byte, then zeros up to a whole block (always adds at least one byte)
  method3,  // a block holding the data length in bits (big-endian), then the data zero-padded
};

// Pads `data` to whole `block`-byte blocks as `method` says.
bytes mac_pad(byte_view data, mac_padding method, std::size_t block);

// MAC algorithm 1: CBC-MAC under one TDES (or DES) key of 8, 16 or 24 bytes, zero IV; the
// MAC is the last cipher block (8 bytes).
result<bytes> iso9797_mac_alg1(byte_view key, byte_view data, mac_padding padding);

// MAC algorithm 3 (retail MAC, X9.19): key = K || K' (16 bytes, two single-DES keys). CBC
// with single DES under K over every block, then the last block is decrypted under K' and
// encrypted again under K. 8 bytes.
result<bytes> iso9797_mac_alg3(byte_view key, byte_view data, mac_padding padding);

// CMAC over any data: AES key (16/24/32) gives 16 bytes, TDES key (8/16/24) gives 8.
result<bytes> cmac_aes(byte_view key, byte_view data);
result<bytes> cmac_tdes(byte_view key, byte_view data);

// Constant-time equality of two MACs (false when lengths differ).
bool mac_equal(byte_view a, byte_view b) noexcept;

}  // namespace eftd
