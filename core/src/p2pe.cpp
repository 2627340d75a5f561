#include "eftd/core/p2pe.hpp"

#include <bit>

#include "eftd/core/dukpt.hpp"

namespace eftd::p2pe {
namespace {

constexpr int width(dukpt_kind k) noexcept {
  return k == dukpt_kind::tdes ? 21 : 32;
}
constexpr int max_ones(dukpt_kind k) noexcept {
  return k == dukpt_kind::tdes ? tdes_dukpt::max_counter_one_bits : aes_dukpt::max_counter_one_bits;
}
constexpr std::uint64_t top(dukpt_kind k) noexcept {
  return (std::uint64_t{1} << width(k)) - 1;
}

// Binomial coefficients up to 32.
std::uint64_t choose(int n, int r) noexcept {
  if (r < 0 || r > n) return 0;
  std::uint64_t c = 1;
  for (int i = 1; i <= r; ++i) c = c * static_cast<std::uint64_t>(n - r + i) / static_cast<std::uint64_t>(i);
  return c;
}

// Number of values v in [0, x] with popcount(v) <= m (x < 2^32).
std::uint64_t count_upto(std::uint64_t x, int m) noexcept {
  std::uint64_t total = 0;
  int used = 0;
  for (int bit = 31; bit >= 0; --bit) {
    if (!((x >> bit) & 1U)) continue;
    // Put 0 here and choose freely below: up to (m - used) ones among `bit` lower bits.
    for (int r = 0; r <= m - used; ++r) total += choose(bit, r);
    ++used;
    if (used > m) return total;
  }
  return total + 1;  // x itself
}

void put_counter(dukpt_kind k, bytes& ksn, std::uint32_t c) {
  if (k == dukpt_kind::aes) {
    for (int i = 0; i < 4; ++i) ksn[8 + i] = static_cast<std::uint8_t>(c >> (24 - 8 * i));
    return;
  }
  ksn[7] = static_cast<std::uint8_t>((ksn[7] & 0xE0U) | ((c >> 16) & 0x1FU));
  ksn[8] = static_cast<std::uint8_t>(c >> 8);
  ksn[9] = static_cast<std::uint8_t>(c);
}

std::uint32_t raw_counter(dukpt_kind k, byte_view ksn) noexcept {
  if (k == dukpt_kind::aes)
    return (std::uint32_t{ksn[8]} << 24) | (std::uint32_t{ksn[9]} << 16) | (std::uint32_t{ksn[10]} << 8) |
           ksn[11];
  return ((std::uint32_t{ksn[7]} & 0x1FU) << 16) | (std::uint32_t{ksn[8]} << 8) | ksn[9];
}

std::size_t block_size(dukpt_kind k) noexcept {
  return k == dukpt_kind::tdes ? 8 : 16;
}

struct working_keys {
  secure_bytes data, pin;
};

// The data and PIN keys of one KSN from the device's initial key.
result<working_keys> keys_from_initial(dukpt_kind k, byte_view initial_key, byte_view ksn) {
  working_keys w;
  if (k == dukpt_kind::tdes) {
    auto d = tdes_dukpt::derive(initial_key, ksn);
    if (!d) return d.err();
    w.data = std::move(d->data_request);
    w.pin = std::move(d->pin);
    return w;
  }
  auto t = aes_dukpt::transaction_key(initial_key, ksn);
  if (!t) return t.err();
  auto data = aes_dukpt::working_key_from_transaction_key(
      t->view(), ksn, aes_dukpt::key_usage::data_encryption, aes_dukpt::key_type::aes128);
  if (!data) return data.err();
  auto pin = aes_dukpt::working_key_from_transaction_key(t->view(), ksn, aes_dukpt::key_usage::pin_encryption,
                                                         aes_dukpt::key_type::aes128);
  if (!pin) return pin.err();
  w.data = std::move(*data);
  w.pin = std::move(*pin);
  return w;
}

result<bytes> seal_with(dukpt_kind k, byte_view data_key, std::uint16_t item, byte_view data) {
  if (item == 0) return make_error("p2pe.bad_item", "item numbers start at 1");
  if (data.size() > 0xFFFF) return make_error("p2pe.bad_sealed", "value longer than 65535 bytes");
  secure_bytes plain(4 + data.size());
  auto p = plain.mutable_view();
  p[0] = static_cast<std::uint8_t>(item >> 8);
  p[1] = static_cast<std::uint8_t>(item);
  p[2] = static_cast<std::uint8_t>(data.size() >> 8);
  p[3] = static_cast<std::uint8_t>(data.size());
  std::copy(data.begin(), data.end(), p.begin() + 4);
  return k == dukpt_kind::tdes ? tdes_dukpt::encrypt_data(data_key, plain.view())
                               : aes_dukpt::encrypt_data(data_key, plain.view());
}

}  // namespace

std::size_t ksn_size(dukpt_kind k) noexcept {
  return k == dukpt_kind::tdes ? tdes_dukpt::ksn_size : aes_dukpt::ksn_size;
}

result<dukpt_kind> kind_of_ksn(byte_view ksn) {
  if (ksn.size() == tdes_dukpt::ksn_size) return dukpt_kind::tdes;
  if (ksn.size() == aes_dukpt::ksn_size) return dukpt_kind::aes;
  return make_error("dukpt.bad_ksn", "a KSN has 10 (TDES) or 12 (AES) bytes");
}

result<std::uint32_t> counter_of(byte_view ksn) {
  auto k = kind_of_ksn(ksn);
  if (!k) return k.err();
  return *k == dukpt_kind::tdes ? tdes_dukpt::counter(ksn) : aes_dukpt::counter(ksn);
}

std::uint64_t counters_left(dukpt_kind k, std::uint32_t counter) noexcept {
  const int m = max_ones(k);
  const std::uint64_t all = count_upto(top(k), m);
  const std::uint64_t upto = count_upto(std::min<std::uint64_t>(counter, top(k)), m);
  return all - upto;
}

std::optional<std::uint32_t> next_counter(dukpt_kind k, std::uint32_t counter) noexcept {
  std::uint64_t n = std::uint64_t{counter} + 1;
  // Too many one-bits: adding the lowest set bit carries them away, skipping every value in
  // between (all of which have at least as many ones), as X9.24 prescribes.
  while (std::popcount(n) > max_ones(k)) n += n & (~n + 1);
  if (n > top(k)) return std::nullopt;
  return static_cast<std::uint32_t>(n);
}

pin_block_format pin_format(dukpt_kind k) noexcept {
  return k == dukpt_kind::tdes ? pin_block_format::iso0 : pin_block_format::iso4;
}

result<originator> originator::create(dukpt_kind kind, secure_bytes initial_key, bytes ksn) {
  if (ksn.size() != ksn_size(kind))
    return make_error("dukpt.bad_ksn", "KSN length does not match the DUKPT kind");
  if (kind == dukpt_kind::tdes ? initial_key.size() != tdes_dukpt::key_size
                               : !aes_dukpt::aes_type_for_length(initial_key.size()))
    return make_error("dukpt.bad_key", "initial key length does not match the DUKPT kind");
  originator o;
  o.kind_ = kind;
  o.initial_key_ = std::move(initial_key);
  o.counter_ = raw_counter(kind, ksn);
  o.ksn_ = std::move(ksn);
  return o;
}

result<bytes> originator::begin_transaction() {
  auto next = next_counter(kind_, counter_);
  if (!next)
    return make_error("p2pe.exhausted", "the DUKPT key has no transactions left; reload the pad's key");
  bytes ksn = ksn_;
  put_counter(kind_, ksn, *next);
  auto w = keys_from_initial(kind_, initial_key_.view(), ksn);
  if (!w) return w.err();
  data_key_ = std::move(w->data);
  pin_key_ = std::move(w->pin);
  ksn_ = std::move(ksn);
  counter_ = *next;
  return ksn_;
}

result<bytes> originator::seal(std::uint16_t item, byte_view data) const {
  if (data_key_.empty()) return make_error("p2pe.no_transaction", "seal before begin_transaction");
  return seal_with(kind_, data_key_.view(), item, data);
}

result<bytes> originator::pin_block(const pin& p, std::string_view pan, random_source& rng) const {
  if (pin_key_.empty()) return make_error("p2pe.no_transaction", "PIN block before begin_transaction");
  if (kind_ == dukpt_kind::aes) return encipher_iso4(pin_key_.view(), p, pan, rng);
  auto clear = build_pin_block(pin_block_format::iso0, p, pan, rng);
  if (!clear) return clear.err();
  auto enc = tdes_ecb(cipher_op::encrypt, pin_key_.view(), clear->view());
  if (!enc) return enc.err();
  return bytes(enc->view().begin(), enc->view().end());
}

result<host_keys> host_keys::derive(byte_view bdk, byte_view ksn) {
  auto kind = kind_of_ksn(ksn);
  if (!kind) return kind.err();
  host_keys h;
  h.kind_ = *kind;
  h.ksn_.assign(ksn.begin(), ksn.end());
  result<working_keys> w = make_error("dukpt.bad_key", "");
  if (*kind == dukpt_kind::tdes) {
    auto ipek = tdes_dukpt::ipek(bdk, ksn);
    if (!ipek) return ipek.err();
    w = keys_from_initial(*kind, ipek->view(), ksn);
  } else {
    auto type = aes_dukpt::aes_type_for_length(bdk.size());
    if (!type) return type.err();
    auto ik = aes_dukpt::initial_key(bdk, ksn.first(aes_dukpt::initial_key_id_size), *type);
    if (!ik) return ik.err();
    w = keys_from_initial(*kind, ik->view(), ksn);
  }
  if (!w) return w.err();
  h.data_key_ = std::move(w->data);
  h.pin_key_ = std::move(w->pin);
  return h;
}

result<secure_bytes> host_keys::open(std::uint16_t item, byte_view sealed) {
  if (item == 0 || item <= last_item_)
    return make_error("p2pe.bad_item",
                      "item number not above the last one of this KSN (replayed or reordered)");
  const auto bs = block_size(kind_);
  if (sealed.empty() || sealed.size() % bs != 0)
    return make_error("p2pe.bad_sealed", "sealed value is not a whole number of cipher blocks");
  auto plain = kind_ == dukpt_kind::tdes ? tdes_dukpt::decrypt_data(data_key_.view(), sealed)
                                         : aes_dukpt::decrypt_data(data_key_.view(), sealed);
  if (!plain) return plain.err();
  auto p = plain->view();
  const std::uint16_t got_item = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
  const std::size_t len = (std::size_t{p[2]} << 8) | p[3];
  // The item inside the ciphertext must be the one claimed outside, so a sealed value cannot
  // be moved to another position; a wrong key also fails here (or at the padding check).
  if (got_item != item) return make_error("p2pe.bad_sealed", "sealed item number does not match");
  if (4 + len > p.size() || p.size() - (4 + len) >= bs)
    return make_error("p2pe.bad_sealed", "sealed length field does not fit the data");
  for (std::size_t i = 4 + len; i < p.size(); ++i)
    if (p[i] != 0) return make_error("p2pe.bad_sealed", "sealed padding is not zero");
  last_item_ = item;
  return secure_bytes(p.subspan(4, len));
}

result<pin> host_keys::open_pin(byte_view block, std::string_view pan) const {
  if (kind_ == dukpt_kind::aes) return decipher_iso4(pin_key_.view(), block, pan);
  if (block.size() != 8) return make_error("pin_block.bad_length", "an ISO 0 PIN block has 8 bytes");
  auto clear = tdes_ecb(cipher_op::decrypt, pin_key_.view(), block);
  if (!clear) return clear.err();
  return decode_pin_block(pin_block_format::iso0, clear->view(), pan);
}

}  // namespace eftd::p2pe
