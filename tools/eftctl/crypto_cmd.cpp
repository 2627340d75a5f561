// eftctl dukpt / pinblock: operator tools for payment cryptography on TEST keys. They print
// derived keys, decrypted data and PINs in the clear (that is their purpose: checking a pad or
// a simulator against known vectors), so each prints a warning to stderr as well.
//
// Exit codes: 0 done; 1 a well-formed PIN block does not decode (wrong key, PAN or format);
// 2 bad input (odd or non-hex digits, wrong lengths, an invalid KSN counter, a missing option).
#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "eftd/core/block_cipher.hpp"
#include "eftd/core/dukpt.hpp"
#include "eftd/core/pin_block.hpp"

namespace eftctl {

namespace {

// One clear error line, then the usage exit code.
int usage_error(std::string_view option, std::string_view message) {
  fmt::print(stderr, "eftctl: {}: {}\n", option, message);
  return exit_usage;
}

void warn_clear_output(std::string_view what) {
  fmt::print(stderr, "eftctl: warning: printing {} in the clear; use test keys only\n", what);
}

// Hex option -> wiped buffer. Prints the error itself; nullopt means "exit 2".
std::optional<eftd::secure_bytes> hex_arg(std::string_view option, const std::string& text) {
  if (text.size() % 2 != 0) {
    usage_error(option, "odd number of hex digits");
    return std::nullopt;
  }
  auto b = eftd::from_hex(text);
  if (!b) {
    usage_error(option, "not hexadecimal");
    return std::nullopt;
  }
  eftd::secure_bytes out{*b};
  if (!b->empty()) eftd::secure_wipe(b->data(), b->size());
  return out;
}

std::string hex_of(const eftd::secure_bytes& b) {
  return eftd::to_hex(b.view());
}

struct dukpt_args {
  std::string bdk;
  std::string ksn;
  std::string data;
  bool aes = false;
};

// Errors from the DUKPT layer are all about the input here (lengths, counter).
int dukpt_error(const eftd::error& e) {
  const std::string_view code = e.code;
  const char* option = code == "dukpt.bad_ksn" || code == "dukpt.bad_counter" ? "--ksn"
                       : code == "dukpt.bad_input"                            ? "--data"
                                                                              : "--bdk";
  return usage_error(option, fmt::format("{} ({})", e.message, e.code));
}

// AES: the initial key ID is the KSN's first 8 bytes; the initial key (and so every working
// key here) has the BDK's AES type.
eftd::result<eftd::secure_bytes> aes_initial_key(const eftd::secure_bytes& bdk, const eftd::secure_bytes& ksn,
                                                 eftd::aes_dukpt::key_type& type) {
  if (ksn.size() != eftd::aes_dukpt::ksn_size)
    return eftd::make_error("dukpt.bad_ksn", "AES DUKPT KSN must be 12 bytes (24 hex digits)");
  auto t = eftd::aes_dukpt::aes_type_for_length(bdk.size());
  if (!t) return t.err();
  type = *t;
  return eftd::aes_dukpt::initial_key(bdk.view(), ksn.view().first(eftd::aes_dukpt::initial_key_id_size),
                                      type);
}

int run_ipek(const dukpt_args& a) {
  auto bdk = hex_arg("--bdk", a.bdk);
  if (!bdk) return exit_usage;
  auto ksn = hex_arg("--ksn", a.ksn);
  if (!ksn) return exit_usage;
  eftd::result<eftd::secure_bytes> key = eftd::make_error("result.empty", "");
  if (a.aes) {
    eftd::aes_dukpt::key_type type{};
    key = aes_initial_key(*bdk, *ksn, type);
  } else {
    key = eftd::tdes_dukpt::ipek(bdk->view(), ksn->view());
  }
  if (!key) return dukpt_error(key.err());
  warn_clear_output("an initial key");
  fmt::print("{}\n", hex_of(*key));
  return exit_ok;
}

int run_decrypt_data(const dukpt_args& a) {
  auto bdk = hex_arg("--bdk", a.bdk);
  if (!bdk) return exit_usage;
  auto ksn = hex_arg("--ksn", a.ksn);
  if (!ksn) return exit_usage;
  auto data = hex_arg("--data", a.data);
  if (!data) return exit_usage;
  if (data->empty()) return usage_error("--data", "no data");
  eftd::result<eftd::secure_bytes> plain = eftd::make_error("result.empty", "");
  if (a.aes) {
    eftd::aes_dukpt::key_type type{};
    auto ik = aes_initial_key(*bdk, *ksn, type);
    if (!ik) return dukpt_error(ik.err());
    auto key = eftd::aes_dukpt::working_key(ik->view(), ksn->view(),
                                            eftd::aes_dukpt::key_usage::data_encryption, type);
    if (!key) return dukpt_error(key.err());
    plain = eftd::aes_dukpt::decrypt_data(key->view(), data->view());
  } else {
    auto keys = eftd::tdes_dukpt::derive_from_bdk(bdk->view(), ksn->view());
    if (!keys) return dukpt_error(keys.err());
    plain = eftd::tdes_dukpt::decrypt_data(keys->data_request.view(), data->view());
  }
  if (!plain) return dukpt_error(plain.err());
  warn_clear_output("decrypted data");
  fmt::print("{}\n", hex_of(*plain));
  return exit_ok;
}

struct pinblock_args {
  std::string format;
  std::string block;
  std::string pan;
  std::string key;
};

int run_pinblock_decode(const pinblock_args& a) {
  eftd::pin_block_format format{};
  if (a.format == "0")
    format = eftd::pin_block_format::iso0;
  else if (a.format == "1")
    format = eftd::pin_block_format::iso1;
  else if (a.format == "3")
    format = eftd::pin_block_format::iso3;
  else if (a.format == "4")
    format = eftd::pin_block_format::iso4;
  else
    return usage_error("--format", "must be 0, 1, 3 or 4");
  const bool iso4 = format == eftd::pin_block_format::iso4;

  auto block = hex_arg("--block", a.block);
  if (!block) return exit_usage;
  const std::size_t want = iso4 ? 16 : 8;
  if (block->size() != want)
    return usage_error("--block", iso4 ? "format 4 PIN block must be 16 bytes (32 hex digits)"
                                       : "PIN block must be 8 bytes (16 hex digits)");
  if ((format == eftd::pin_block_format::iso0 || format == eftd::pin_block_format::iso3 || iso4) &&
      a.pan.empty())
    return usage_error("--pan", "required for formats 0, 3 and 4");
  if (iso4 && a.key.empty()) return usage_error("--key", "required for format 4 (AES key)");

  std::optional<eftd::secure_bytes> key;
  if (!a.key.empty()) {
    key = hex_arg("--key", a.key);
    if (!key) return exit_usage;
  }

  eftd::result<eftd::pin> p = eftd::make_error("result.empty", "");
  if (iso4) {
    if (key->size() != 16 && key->size() != 24 && key->size() != 32)
      return usage_error("--key", "format 4 needs an AES key of 16, 24 or 32 bytes");
    auto field = eftd::decipher_iso4_field(key->view(), block->view(), a.pan);
    if (!field) return usage_error("--pan", fmt::format("{} ({})", field.err().message, field.err().code));
    p = eftd::decode_pin_block(format, field->view(), a.pan);
  } else {
    eftd::secure_bytes clear = std::move(*block);
    if (key) {
      if (key->size() != 8 && key->size() != 16 && key->size() != 24)
        return usage_error("--key", "formats 0, 1 and 3 need a TDES key of 8, 16 or 24 bytes");
      auto dec = eftd::tdes_ecb(eftd::cipher_op::decrypt, key->view(), clear.view());
      if (!dec) return usage_error("--key", fmt::format("{} ({})", dec.err().message, dec.err().code));
      clear = std::move(*dec);
    }
    p = eftd::decode_pin_block(format, clear.view(), a.pan);
  }
  if (!p) {
    if (p.err().code == "pin_block.bad_pan")
      return usage_error("--pan", fmt::format("{} ({})", p.err().message, p.err().code));
    fmt::print(stderr, "eftctl: PIN block does not decode: {} ({})\n", p.err().message, p.err().code);
    return exit_problems;
  }
  warn_clear_output("a PIN");
  fmt::print("{}\n", p->reveal());
  return exit_ok;
}

}  // namespace

void add_dukpt_commands(CLI::App& app, runner& run) {
  auto* dukpt =
      app.add_subcommand("dukpt", "DUKPT key derivation on test keys (ANSI X9.24-1 TDES, X9.24-3 AES)");
  dukpt->require_subcommand(1);

  auto ipek_args = std::make_shared<dukpt_args>();
  auto* ipek = dukpt->add_subcommand(
      "ipek",
      "print the initial key in hex. TDES: --bdk 16 bytes, --ksn 10 bytes (IPEK). --aes: --ksn is the "
      "12-byte KSN whose first 8 bytes are the initial key ID; --bdk of 16/24/32 bytes gives an "
      "AES-128/192/256 initial key");
  ipek->add_option("--bdk", ipek_args->bdk, "base derivation key, hex")->required();
  ipek->add_option("--ksn", ipek_args->ksn, "key serial number, hex")->required();
  ipek->add_flag("--aes", ipek_args->aes, "AES DUKPT (X9.24-3) instead of TDES");
  ipek->callback([&run, ipek_args] { run = [ipek_args] { return run_ipek(*ipek_args); }; });

  auto dec_args = std::make_shared<dukpt_args>();
  auto* dec = dukpt->add_subcommand(
      "decrypt-data",
      "decrypt data the pad encrypted under the DUKPT data (request) key and print the plaintext in hex, "
      "padding included. TDES: data variant plus one-way step, TDES-CBC zero IV. --aes: X9.24-3 data "
      "encryption key (usage 3000) of the BDK's AES type, AES-CBC zero IV");
  dec->add_option("--bdk", dec_args->bdk, "base derivation key, hex")->required();
  dec->add_option("--ksn", dec_args->ksn, "key serial number, hex (10 bytes TDES, 12 bytes AES)")->required();
  dec->add_option("--data", dec_args->data, "ciphertext, hex (whole cipher blocks)")->required();
  dec->add_flag("--aes", dec_args->aes, "AES DUKPT (X9.24-3) instead of TDES");
  dec->callback([&run, dec_args] { run = [dec_args] { return run_decrypt_data(*dec_args); }; });
}

void add_pinblock_commands(CLI::App& app, runner& run) {
  auto* pinblock = app.add_subcommand("pinblock", "ISO 9564 PIN blocks on test keys");
  pinblock->require_subcommand(1);

  auto args = std::make_shared<pinblock_args>();
  auto* decode = pinblock->add_subcommand(
      "decode",
      "decode a PIN block and print the PIN (prints a warning to stderr). Formats 0/1/3: --block is the "
      "clear 8-byte block, or with --key (TDES) the encrypted one. Format 4: --block is the enciphered "
      "16-byte block; --key (AES) and --pan are required. Exit 1 if the block does not decode");
  decode->add_option("--format", args->format, "ISO 9564 format: 0, 1, 3 or 4")->required();
  decode->add_option("--block", args->block, "PIN block, hex")->required();
  decode->add_option("--pan", args->pan, "PAN digits (formats 0, 3, 4)");
  decode->add_option("--key", args->key, "key to decrypt the block first, hex");
  decode->callback([&run, args] { run = [args] { return run_pinblock_decode(*args); }; });
}

}  // namespace eftctl
