// The journal's card-data boundary: PANs at rest and the keys that protect them.
//
// A PAN is stored as AES-256-GCM ciphertext (random nonce, AAD "eftd-pan-v1"), a masked
// form for display, and a keyed HMAC-SHA256 search hash so the back office can find all
// transactions of one card without decrypting anything. The two keys are independent.
//
// Key file: 128 hex digits (AES key, then HMAC key), optional trailing newline; mode 0600.
// Error codes: journal.keys_io, journal.keys_malformed, journal.keys_insecure_mode.
// open_pan passes on the crypto codes ("crypto.auth_failed" for a tampered ciphertext or a
// wrong key) and "journal.pan_corrupt" if the plaintext is not a PAN.
#pragma once

#include <filesystem>
#include <string>

#include "eftd/core/card.hpp"
#include "eftd/core/result.hpp"
#include "eftd/core/secure.hpp"
#include "eftd/journal/records.hpp"

namespace eftd::journal {

struct keys {
  secure_bytes pan_key;   // 32 bytes, AES-256-GCM for stored PANs
  secure_bytes hash_key;  // 32 bytes, HMAC-SHA256 for the PAN search hash
};

// Reads the key file, or creates it (mode 0600, O_EXCL, fsynced) from the CSPRNG if it
// does not exist. A file readable by group or others is refused (journal.keys_insecure_mode).
result<keys> load_or_create_keys(const std::filesystem::path& file);

result<stored_pan> seal_pan(const keys& k, const pan& p);
result<pan> open_pan(const keys& k, const stored_pan& s);

// What an offline approval's advice sends besides the PAN: the expiry date (field 14, YYMM) and
// the card sequence number (field 23, 3 digits or empty). Cardholder data, so it is sealed like
// the PAN (same key, its own AAD "eftd-advice-card-v1") and never stored in the clear.
struct advice_card {
  std::string expiry_yymm;
  std::string card_sequence;
};
// Errors: journal.invalid_argument (expiry not 4 digits, sequence not 3 digits or empty), and
// the crypto codes. open_advice_card: "crypto.auth_failed" for a tampered value or a wrong key,
// journal.card_corrupt if the plaintext is not an advice_card.
result<bytes> seal_advice_card(const keys& k, const advice_card& c);
result<advice_card> open_advice_card(const keys& k, byte_view sealed);

// Lower-case hex HMAC-SHA256 of the digits: stable for one key, for list_orders(pan_hash).
std::string search_hash(const keys& k, const pan& p);

}  // namespace eftd::journal
