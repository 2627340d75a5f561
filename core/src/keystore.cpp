#include "eftd/core/keystore.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "eftd/core/crypto.hpp"
#include "eftd/core/dukpt.hpp"
#include "eftd/core/tr31.hpp"

namespace eftd::keystore {

namespace {

constexpr std::string_view magic = "EFTDKS01";
constexpr std::size_t check_size = 8;
constexpr std::size_t prefix_size = 8 + check_size;
constexpr std::uint8_t payload_format = 1;
constexpr std::size_t master_key_size = 32;
constexpr std::size_t master_file_hex = 2 * master_key_size;
constexpr std::size_t max_store_size = 16u << 20;
constexpr std::string_view check_label = "eftd keystore master key check v1";

struct type_name {
  key_type type;
  std::string_view name;
};
constexpr std::array<type_name, 8> type_names{{
    {key_type::bdk_tdes, "BDK-TDES"},
    {key_type::bdk_aes128, "BDK-AES128"},
    {key_type::bdk_aes256, "BDK-AES256"},
    {key_type::kbpk_tdes, "KBPK-TDES"},
    {key_type::kbpk_aes, "KBPK-AES"},
    {key_type::zpk_tdes, "ZPK-TDES"},
    {key_type::zpk_aes, "ZPK-AES"},
    {key_type::mak_tdes, "MAK-TDES"},
}};

error io_error(const std::filesystem::path& file, std::string_view what) {
  return make_error("keystore.io", file.string() + ": " + std::string(what) + ": " + std::strerror(errno));
}

class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

bool write_all(int fd, byte_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(w);
  }
  return true;
}

// Reads at most `limit` + 1 bytes into a wiped buffer (the master key file is a secret).
result<secure_bytes> read_fd(const std::filesystem::path& file, int fd, std::size_t limit) {
  secure_bytes buf(limit + 1);
  auto out = buf.mutable_view();
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return io_error(file, "read");
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return secure_bytes(buf.view().first(got));
}

void sync_dir(const std::filesystem::path& file) {
  auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  fd_guard dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
}

int hex_value(std::uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

error bad_format(std::string_view what) {
  return make_error("keystore.bad_format", "key store payload: " + std::string(what));
}

// Serialisation straight into a wiped buffer: the first pass (out == nullptr) only counts,
// so the buffer is allocated once and no reallocation leaves a copy of clear keys behind.
class writer {
 public:
  explicit writer(std::uint8_t* out) : out_(out) {}
  void u8(std::uint8_t v) { put(&v, 1); }
  void u16(std::uint16_t v) {
    std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    put(b, 2);
  }
  void u32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) u8(static_cast<std::uint8_t>(v >> s));
  }
  void i64(std::int64_t v) {
    const auto u = static_cast<std::uint64_t>(v);
    for (int s = 56; s >= 0; s -= 8) u8(static_cast<std::uint8_t>(u >> s));
  }
  void blob(byte_view b) {
    u16(static_cast<std::uint16_t>(b.size()));
    put(b.data(), b.size());
  }
  void str(std::string_view s) { blob(as_bytes(s)); }
  std::size_t size() const { return n_; }

 private:
  void put(const std::uint8_t* p, std::size_t n) {
    if (out_ != nullptr && n > 0) std::memcpy(out_ + n_, p, n);
    n_ += n;
  }
  std::uint8_t* out_;
  std::size_t n_ = 0;
};

class reader {
 public:
  explicit reader(byte_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::uint8_t u8() {
    if (!need(1)) return 0;
    return in_[pos_++];
  }
  std::uint16_t u16() {
    const std::uint16_t hi = u8();
    return static_cast<std::uint16_t>((hi << 8) | u8());
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  std::int64_t i64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return static_cast<std::int64_t>(v);
  }
  byte_view blob() {
    const std::size_t n = u16();
    if (!need(n)) return {};
    byte_view b = in_.subspan(pos_, n);
    pos_ += n;
    return b;
  }
  std::string str() {
    auto b = blob();
    return std::string(b.begin(), b.end());
  }

 private:
  bool need(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  byte_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

status check_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return make_error("keystore.bad_name", "key name must have 1 to 64 characters");
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '_' && c != '-')
      return make_error("keystore.bad_name", "key name may only contain letters, digits, '.', '_' and '-'");
  }
  return {};
}

error bad_key_length(key_type t, std::size_t n) {
  return make_error("keystore.bad_key",
                    std::string(to_string(t)) + " key cannot be " + std::to_string(n) + " bytes long");
}

error no_such_key(std::string_view name, std::string_view what = "no active key") {
  return make_error("keystore.no_such_key", std::string(what) + " named '" + std::string(name) + "'");
}

// Equal as keys: DES ignores the low (parity) bit of every byte, so for TDES two values that
// differ only there are the same key.
bool same_key_bits(key_type t, byte_view a, byte_view b) {
  if (a.size() != b.size()) return false;
  const std::uint8_t mask = algorithm(t) == 'T' ? 0xFE : 0xFF;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (((a[i] ^ b[i]) & mask) != 0) return false;
  return true;
}

bool valid_type_byte(std::uint8_t b) {
  return b < type_names.size();
}

}  // namespace

std::string_view to_string(key_type t) noexcept {
  for (const auto& tn : type_names)
    if (tn.type == t) return tn.name;
  return "?";
}

result<key_type> parse_key_type(std::string_view name) {
  std::string up(name);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "ZPK") return key_type::zpk_tdes;
  if (up == "MAK") return key_type::mak_tdes;
  for (const auto& tn : type_names)
    if (tn.name == up) return tn.type;
  return make_error("keystore.bad_type",
                    "unknown key type; use BDK-TDES, BDK-AES128, BDK-AES256, KBPK-TDES, KBPK-AES, ZPK-TDES, "
                    "ZPK-AES or MAK-TDES");
}

std::string_view to_string(key_state s) noexcept {
  switch (s) {
    case key_state::active:
      return "active";
    case key_state::retired:
      return "retired";
    case key_state::destroyed:
      return "destroyed";
  }
  return "?";
}

char algorithm(key_type t) noexcept {
  switch (t) {
    case key_type::bdk_tdes:
    case key_type::kbpk_tdes:
    case key_type::zpk_tdes:
    case key_type::mak_tdes:
      return 'T';
    default:
      return 'A';
  }
}

bool valid_length(key_type t, std::size_t n) noexcept {
  switch (t) {
    case key_type::bdk_tdes:
    case key_type::bdk_aes128:
      return n == 16;
    case key_type::bdk_aes256:
      return n == 32;
    case key_type::kbpk_tdes:
    case key_type::zpk_tdes:
    case key_type::mak_tdes:
      return n == 16 || n == 24;
    case key_type::kbpk_aes:
    case key_type::zpk_aes:
      return n == 16 || n == 24 || n == 32;
  }
  return false;
}

result<bytes> check_value(key_type t, byte_view key) {
  if (!valid_length(t, key.size())) return bad_key_length(t, key.size());
  return tr31::key_check_value(algorithm(t), key);
}

// --- master key ------------------------------------------------------------------------

result<std::unique_ptr<file_master_key>> file_master_key::from_key(byte_view key32) {
  if (key32.size() != master_key_size)
    return make_error("keystore.bad_master_key", "master key must be 32 bytes");
  return std::unique_ptr<file_master_key>(new file_master_key(secure_bytes(key32)));
}

result<std::unique_ptr<file_master_key>> file_master_key::load(const std::filesystem::path& file,
                                                               bool create) {
  if (create) {
    // O_EXCL: two custodians starting at once must not each create a different master key.
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      fd_guard guard(fd);
      if (::fchmod(fd, 0600) != 0) return io_error(file, "chmod");
      secure_bytes raw = random_bytes(master_key_size);
      static constexpr char digits[] = "0123456789abcdef";
      secure_bytes text(master_file_hex + 1);
      auto t = text.mutable_view();
      auto r = raw.view();
      for (std::size_t i = 0; i < r.size(); ++i) {
        t[2 * i] = static_cast<std::uint8_t>(digits[r[i] >> 4]);
        t[2 * i + 1] = static_cast<std::uint8_t>(digits[r[i] & 0x0f]);
      }
      t[master_file_hex] = '\n';
      if (!write_all(fd, text.view()) || ::fsync(fd) != 0) {
        auto e = io_error(file, "write");
        ::unlink(file.c_str());
        return e;
      }
      sync_dir(file);
      return std::unique_ptr<file_master_key>(new file_master_key(std::move(raw)));
    }
    if (errno != EEXIST) return io_error(file, "create");
  }
  fd_guard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return io_error(file, "open master key");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error(file, "stat");
  if (!S_ISREG(st.st_mode))
    return make_error("keystore.bad_master_key", file.string() + ": not a regular file");
  if ((st.st_mode & 077) != 0)
    return make_error("keystore.insecure_mode",
                      file.string() + ": master key file is accessible by group or others; chmod 600 it");
  auto content = read_fd(file, fd.get(), master_file_hex + 16);
  if (!content) return content.err();
  auto text = content->view();
  std::size_t n = text.size();
  while (n > 0 && std::isspace(text[n - 1]) != 0) --n;
  if (n != master_file_hex)
    return make_error("keystore.bad_master_key", file.string() + ": expected 64 hex digits");
  secure_bytes key(master_key_size);
  auto out = key.mutable_view();
  for (std::size_t i = 0; i < master_key_size; ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error("keystore.bad_master_key", file.string() + ": non-hex character");
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return std::unique_ptr<file_master_key>(new file_master_key(std::move(key)));
}

result<bytes> file_master_key::seal(byte_view plaintext, byte_view aad) {
  return aes256_gcm_seal(key_.view(), plaintext, aad);
}

result<secure_bytes> file_master_key::open(byte_view sealed, byte_view aad) {
  return aes256_gcm_open(key_.view(), sealed, aad);
}

bytes file_master_key::check_value() const {
  bytes mac = hmac_sha256(key_.view(), as_bytes(check_label));
  mac.resize(check_size);
  return mac;
}

// --- encoding ----------------------------------------------------------------------------

namespace {

template <class Store>
void write_store(writer& w, const Store& entries, const auto& pending) {
  w.u8(payload_format);
  w.u32(static_cast<std::uint32_t>(entries.size()));
  for (const auto& e : entries) {
    w.str(e.info.name);
    w.u8(static_cast<std::uint8_t>(e.info.type));
    w.u32(e.info.version);
    w.u8(static_cast<std::uint8_t>(e.info.state));
    w.i64(e.info.created);
    w.blob(e.info.kcv);
    w.blob(e.key.view());
  }
  w.u32(static_cast<std::uint32_t>(pending.size()));
  for (const auto& p : pending) {
    w.str(p.info.name);
    w.u8(static_cast<std::uint8_t>(p.info.type));
    w.u8(p.info.rotation ? 1 : 0);
    w.i64(p.info.started);
    w.u8(static_cast<std::uint8_t>(p.components.size()));
    for (const auto& c : p.components) w.blob(c.view());
  }
}

}  // namespace

result<secure_bytes> encode_store(const key_store& s) {
  writer count(nullptr);
  write_store(count, s.entries_, s.pending_);
  secure_bytes out(count.size());
  writer w(out.mutable_view().data());
  write_store(w, s.entries_, s.pending_);
  return out;
}

result<key_store> decode_store(byte_view payload) {
  reader r(payload);
  if (r.u8() != payload_format) return bad_format("unknown payload format");
  key_store s;
  const std::uint32_t n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    key_entry e;
    e.info.name = r.str();
    const std::uint8_t type = r.u8();
    e.info.version = r.u32();
    const std::uint8_t state = r.u8();
    e.info.created = r.i64();
    auto kcv = r.blob();
    e.info.kcv.assign(kcv.begin(), kcv.end());
    e.key = secure_bytes(r.blob());
    if (!r.ok()) break;
    if (!valid_type_byte(type) || state > static_cast<std::uint8_t>(key_state::destroyed))
      return bad_format("bad key type or state");
    e.info.type = static_cast<key_type>(type);
    e.info.state = static_cast<key_state>(state);
    if (e.info.state != key_state::destroyed && !valid_length(e.info.type, e.key.size()))
      return bad_format("key length does not match its type");
    s.entries_.push_back(std::move(e));
  }
  const std::uint32_t m = r.u32();
  for (std::uint32_t i = 0; i < m && r.ok(); ++i) {
    key_store::pending_entry p;
    p.info.name = r.str();
    const std::uint8_t type = r.u8();
    p.info.rotation = r.u8() != 0;
    p.info.started = r.i64();
    const std::size_t count = r.u8();
    for (std::size_t j = 0; j < count && r.ok(); ++j) p.components.emplace_back(r.blob());
    if (!r.ok()) break;
    if (!valid_type_byte(type)) return bad_format("bad key type");
    p.info.type = static_cast<key_type>(type);
    p.info.components = p.components.size();
    s.pending_.push_back(std::move(p));
  }
  if (!r.ok() || !r.at_end()) return bad_format("truncated or trailing bytes");
  return s;
}

// --- key_store -------------------------------------------------------------------------

result<key_store> key_store::load(const std::filesystem::path& file, key_protector& mk) {
  fd_guard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error("keystore.not_found", file.string() + ": no key store here");
    return io_error(file, "open");
  }
  auto content = read_fd(file, fd.get(), max_store_size);
  if (!content) return content.err();
  auto data = content->view();
  if (data.size() > max_store_size)
    return make_error("keystore.bad_format", file.string() + ": file too large");
  if (data.size() < prefix_size || !std::equal(magic.begin(), magic.end(), data.begin()))
    return make_error("keystore.bad_format", file.string() + ": not an eftd key store (bad magic)");
  const bytes expected_check = mk.check_value();
  if (!std::equal(expected_check.begin(), expected_check.end(), data.begin() + magic.size()))
    return make_error("keystore.wrong_master_key",
                      file.string() + ": the master key is not the one this key store was sealed with");
  auto plain = mk.open(data.subspan(prefix_size), data.first(prefix_size));
  if (!plain) {
    if (plain.err().code == "crypto.auth_failed" || plain.err().code == "crypto.bad_input")
      return make_error("keystore.tampered",
                        file.string() + ": key store failed its integrity check (modified or corrupted)");
    return plain.err();
  }
  auto s = decode_store(plain->view());
  if (!s) return make_error(s.err().code, file.string() + ": " + s.err().message);
  return s;
}

status key_store::save(const std::filesystem::path& file, key_protector& mk) const {
  auto payload = encode_store(*this);
  if (!payload) return payload.err();
  bytes out(magic.begin(), magic.end());
  const bytes check = mk.check_value();
  out.insert(out.end(), check.begin(), check.end());
  auto sealed = mk.seal(payload->view(), out);
  if (!sealed) return sealed.err();
  out.insert(out.end(), sealed->begin(), sealed->end());

  std::filesystem::path tmp = file;
  tmp += ".tmp";
  {
    fd_guard fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) return io_error(tmp, "create");
    if (!write_all(fd.get(), out)) {
      auto e = io_error(tmp, "write");
      ::unlink(tmp.c_str());
      return e;
    }
    if (::fsync(fd.get()) != 0) {
      auto e = io_error(tmp, "fsync");
      ::unlink(tmp.c_str());
      return e;
    }
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    auto e = io_error(file, "rename");
    ::unlink(tmp.c_str());
    return e;
  }
  // The rename is durable only once the directory is.
  sync_dir(file);
  return {};
}

std::vector<key_info> key_store::list() const {
  std::vector<key_info> out;
  for (const auto& e : entries_) out.push_back(e.info);
  std::sort(out.begin(), out.end(), [](const key_info& a, const key_info& b) {
    return a.name != b.name ? a.name < b.name : a.version < b.version;
  });
  return out;
}

std::vector<pending_info> key_store::pending() const {
  std::vector<pending_info> out;
  for (const auto& p : pending_) out.push_back(p.info);
  return out;
}

result<const key_entry*> key_store::active(std::string_view name) const {
  for (const auto& e : entries_)
    if (e.info.name == name && e.info.state == key_state::active) return &e;
  return no_such_key(name);
}

result<const key_entry*> key_store::active(std::string_view name, key_type type) const {
  auto e = active(name);
  if (!e) return e.err();
  if ((*e)->info.type != type)
    return make_error("keystore.no_such_key", "key '" + std::string(name) + "' is " +
                                                  std::string(to_string((*e)->info.type)) + ", not " +
                                                  std::string(to_string(type)));
  return e;
}

result<const key_entry*> key_store::get(std::string_view name, std::uint32_t version) const {
  for (const auto& e : entries_) {
    if (e.info.name == name && e.info.version == version) {
      if (e.info.state == key_state::destroyed)
        return make_error("keystore.no_such_key", "version " + std::to_string(version) + " of '" +
                                                      std::string(name) + "' has been destroyed");
      return &e;
    }
  }
  return no_such_key(name, "no version " + std::to_string(version) + " of a key");
}

result<component_added> key_store::add_component(std::string_view name, key_type type, byte_view component,
                                                 std::int64_t now) {
  if (auto st = check_name(name); !st) return st.err();
  if (!valid_length(type, component.size())) return bad_key_length(type, component.size());
  auto kcv = check_value(type, component);
  if (!kcv) return kcv.err();
  // A zero component (parity bits aside, which DES ignores) leaves the key to the others alone.
  if (same_key_bits(type, component, bytes(component.size(), 0)))
    return make_error("keystore.bad_key", "a component must not be zero");
  auto it =
      std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.info.name == name; });
  if (it == pending_.end()) {
    if (active(name))
      return make_error(
          "keystore.exists",
          "key '" + std::string(name) + "' exists; start a rotation to enter components for a new version");
    pending_entry p;
    p.info.name = std::string(name);
    p.info.type = type;
    p.info.started = now;
    pending_.push_back(std::move(p));
    it = pending_.end() - 1;
  } else {
    if (it->info.type != type)
      return make_error("keystore.no_components", "components for '" + std::string(name) + "' are " +
                                                      std::string(to_string(it->info.type)) + ", not " +
                                                      std::string(to_string(type)));
    if (!it->components.empty() && it->components.front().size() != component.size())
      return make_error("keystore.bad_key", "component length differs from the components already entered");
    if (it->components.size() >= 9)
      return make_error("keystore.no_components", "too many components (at most 9)");
    for (const auto& c : it->components) {
      // Two equal components would cancel out in the XOR and leave a key one custodian knows.
      if (same_key_bits(type, c.view(), component))
        return make_error("keystore.duplicate_component", "this component was already entered");
    }
  }
  it->components.emplace_back(component);
  it->info.components = it->components.size();
  return component_added{it->components.size(), std::move(*kcv)};
}

result<pending_info> key_store::start_rotation(std::string_view name, std::int64_t now) {
  auto cur = active(name);
  if (!cur) return cur.err();
  for (const auto& p : pending_)
    if (p.info.name == name)
      return make_error("keystore.no_components",
                        "components for '" + std::string(name) + "' are already pending");
  pending_entry p;
  p.info.name = std::string(name);
  p.info.type = (*cur)->info.type;
  p.info.rotation = true;
  p.info.started = now;
  pending_.push_back(std::move(p));
  return pending_.back().info;
}

status key_store::cancel_components(std::string_view name) {
  auto it =
      std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.info.name == name; });
  if (it == pending_.end())
    return make_error("keystore.no_components", "no components pending for '" + std::string(name) + "'");
  pending_.erase(it);  // secure_bytes wipe themselves
  return {};
}

result<key_info> key_store::add_key(std::string_view name, key_type type, byte_view key, std::int64_t now) {
  if (auto st = check_name(name); !st) return st.err();
  auto kcv = check_value(type, key);
  if (!kcv) return kcv.err();
  std::uint32_t version = 1;
  key_entry* previous = nullptr;
  for (auto& e : entries_) {
    if (e.info.name != name) continue;
    if (e.info.type != type)
      return make_error("keystore.exists", "key '" + std::string(name) + "' is " +
                                               std::string(to_string(e.info.type)) + ", not " +
                                               std::string(to_string(type)));
    version = std::max(version, e.info.version + 1);
    if (e.info.state == key_state::active) previous = &e;
  }
  if (previous != nullptr) previous->info.state = key_state::retired;
  key_entry e;
  e.info = key_info{std::string(name), type, version, key_state::active, std::move(*kcv), now};
  e.key = secure_bytes(key);
  entries_.push_back(std::move(e));
  return entries_.back().info;
}

result<key_info> key_store::finish_components(std::string_view name, std::int64_t now) {
  auto it =
      std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.info.name == name; });
  if (it == pending_.end())
    return make_error("keystore.no_components", "no components pending for '" + std::string(name) + "'");
  if (it->components.size() < 2)
    return make_error("keystore.no_components", "dual control needs at least 2 components; " +
                                                    std::to_string(it->components.size()) + " entered");
  secure_bytes key(it->components.front().view());
  for (std::size_t i = 1; i < it->components.size(); ++i)
    xor_into(key.mutable_view(), it->components[i].view());
  const key_type type = it->info.type;
  auto info = add_key(name, type, key.view(), now);
  if (!info) return info.err();
  pending_.erase(it);
  return info;
}

result<key_info> key_store::retire(std::string_view name, std::uint32_t version) {
  for (auto& e : entries_) {
    if (e.info.name != name || e.info.version != version) continue;
    if (e.info.state == key_state::active)
      return make_error("keystore.active_version", "version " + std::to_string(version) + " of '" +
                                                       std::string(name) + "' is active; rotate it first");
    e.info.state = key_state::destroyed;
    e.key = secure_bytes();  // the move-assignment wipes the old buffer
    return e.info;
  }
  return no_such_key(name, "no version " + std::to_string(version) + " of a key");
}

// --- TR-31 export / import -----------------------------------------------------------------

result<exported_key> export_initial_key(const key_store& s, std::string_view bdk_name, byte_view ksn,
                                        std::string_view kbpk_name, std::optional<char> version,
                                        random_source& rng) {
  auto bdk = s.active(bdk_name);
  if (!bdk) return bdk.err();
  const key_type bdk_type = (*bdk)->info.type;
  if (bdk_type != key_type::bdk_tdes && bdk_type != key_type::bdk_aes128 && bdk_type != key_type::bdk_aes256)
    return make_error("keystore.no_such_key", "key '" + std::string(bdk_name) + "' is not a BDK");
  auto kbpk = s.active(kbpk_name);
  if (!kbpk) return kbpk.err();
  const key_type kbpk_type = (*kbpk)->info.type;
  if (kbpk_type != key_type::kbpk_tdes && kbpk_type != key_type::kbpk_aes)
    return make_error("keystore.no_such_key", "key '" + std::string(kbpk_name) + "' is not a KBPK");

  const char allowed = kbpk_type == key_type::kbpk_tdes ? 'B' : 'D';
  const char v = version.value_or(allowed);
  if (v != allowed)
    return make_error("keystore.bad_usage", std::string("key block version ") + v + " needs a " +
                                                (v == 'B' ? "TDES" : "AES") + " KBPK");
  if (kbpk_type == key_type::kbpk_tdes && algorithm(bdk_type) == 'A')
    return make_error("keystore.bad_usage", "an AES initial key must not be wrapped under a TDES KBPK");

  tr31::header h;
  h.version = v;
  h.key_usage = "B1";  // initial DUKPT key
  h.algorithm = algorithm(bdk_type);
  h.mode_of_use = 'X';  // used only to derive keys
  h.key_version = "00";
  h.exportability = 'N';
  secure_bytes ik;
  if (bdk_type == key_type::bdk_tdes) {
    if (ksn.size() != tdes_dukpt::ksn_size)
      return make_error("keystore.bad_ksn", "TDES DUKPT KSN must be 10 bytes (20 hex digits)");
    auto k = tdes_dukpt::ipek((*bdk)->key.view(), ksn);
    if (!k) return k.err();
    ik = std::move(*k);
    // KS: the initial KSN, i.e. with the 21 counter bits cleared.
    bytes initial(ksn.begin(), ksn.end());
    initial[7] &= 0xE0;
    initial[8] = 0;
    initial[9] = 0;
    h.optional_blocks.push_back({"KS", to_hex(initial)});
  } else {
    if (ksn.size() != aes_dukpt::ksn_size)
      return make_error("keystore.bad_ksn", "AES DUKPT KSN must be 12 bytes (24 hex digits)");
    const auto t =
        bdk_type == key_type::bdk_aes256 ? aes_dukpt::key_type::aes256 : aes_dukpt::key_type::aes128;
    auto ikid = ksn.first(aes_dukpt::initial_key_id_size);
    auto k = aes_dukpt::initial_key((*bdk)->key.view(), ikid, t);
    if (!k) return k.err();
    ik = std::move(*k);
    h.optional_blocks.push_back({"IK", to_hex(ikid)});
  }
  auto block = tr31::wrap((*kbpk)->key.view(), h, ik.view(), rng);
  if (!block) return block.err();
  auto kcv = tr31::key_check_value(h.algorithm, ik.view());
  if (!kcv) return kcv.err();
  return exported_key{std::move(*block), std::move(*kcv)};
}

result<key_info> import_key_block(key_store& s, std::string_view kbpk_name, std::string_view block,
                                  std::string_view name, std::string_view expected_kcv_hex,
                                  std::optional<key_type> type, std::int64_t now) {
  auto expected = from_hex(expected_kcv_hex);
  if (!expected || expected->size() < 3 || expected->size() > 5)
    return make_error("keystore.bad_kcv", "expected KCV must be 6 to 10 hex digits");
  auto kbpk = s.active(kbpk_name);
  if (!kbpk) return kbpk.err();
  if ((*kbpk)->info.type != key_type::kbpk_tdes && (*kbpk)->info.type != key_type::kbpk_aes)
    return make_error("keystore.no_such_key", "key '" + std::string(kbpk_name) + "' is not a KBPK");
  auto k = tr31::unwrap((*kbpk)->key.view(), block);
  if (!k) return k.err();
  const auto& h = k->hdr;
  const std::size_t n = k->key.size();
  key_type t{};
  if (type) {
    t = *type;
  } else if (h.key_usage == "P0") {
    t = h.algorithm == 'A' ? key_type::zpk_aes : key_type::zpk_tdes;
  } else if (h.key_usage == "M3" && h.algorithm != 'A') {
    // M3 = ISO 9797-1 MAC algorithm 3, a TDES-only algorithm.
    t = key_type::mak_tdes;
  } else if (h.key_usage == "B0") {
    t = h.algorithm == 'A' ? (n == 32 ? key_type::bdk_aes256 : key_type::bdk_aes128) : key_type::bdk_tdes;
  } else if (h.key_usage == "K0" || h.key_usage == "K1") {
    t = h.algorithm == 'A' ? key_type::kbpk_aes : key_type::kbpk_tdes;
  } else {
    return make_error("keystore.bad_usage", "key usage " + h.key_usage + " has no key store type; give one");
  }
  if (algorithm(t) != h.algorithm && !(algorithm(t) == 'T' && h.algorithm == 'D'))
    return make_error("keystore.bad_usage", std::string("key block algorithm ") + h.algorithm +
                                                " does not fit " + std::string(to_string(t)));
  if (!valid_length(t, n)) return bad_key_length(t, n);
  auto kcv = check_value(t, k->key.view());
  if (!kcv) return kcv.err();
  if (expected->size() > kcv->size() || !std::equal(expected->begin(), expected->end(), kcv->begin()))
    return make_error("keystore.kcv_mismatch", "the imported key's KCV is " + to_hex(*kcv) +
                                                   ", not the expected " + to_hex(*expected) +
                                                   "; key refused");
  return s.add_key(name, t, k->key.view(), now);
}

}  // namespace eftd::keystore
