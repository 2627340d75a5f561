#include "eftd/journal/card_data.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "eftd/core/crypto.hpp"

namespace eftd::journal {

namespace {

constexpr std::size_t key_size = 32;
constexpr std::size_t key_file_hex = 4 * key_size;  // two keys, two hex digits per byte
// Anything longer than the hex and a little whitespace is not our file.
constexpr std::size_t key_file_max = key_file_hex + 16;
constexpr std::string_view pan_aad = "eftd-pan-v1";

error keys_io(const std::filesystem::path& file, std::string_view what) {
  return make_error("journal.keys_io",
                    "key file " + file.string() + ": " + std::string(what) + ": " + std::strerror(errno));
}

error keys_malformed(const std::filesystem::path& file, std::string_view what) {
  return make_error("journal.keys_malformed", "key file " + file.string() + ": " + std::string(what));
}

// Closes a file descriptor on every path.
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

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes straight into wiped buffers, so no copy of the clear keys outlives this call.
result<keys> parse_keys(const std::filesystem::path& file, const secure_bytes& content) {
  auto text = content.view();
  std::size_t n = text.size();
  while (n > 0 && std::isspace(text[n - 1]) != 0) --n;
  if (n != key_file_hex) {
    return keys_malformed(file, "expected " + std::to_string(key_file_hex) + " hex digits, found " +
                                    std::to_string(n) + " characters");
  }
  secure_bytes raw(key_size * 2);
  auto out = raw.mutable_view();
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(static_cast<char>(text[2 * i]));
    int lo = hex_value(static_cast<char>(text[2 * i + 1]));
    if (hi < 0 || lo < 0) return keys_malformed(file, "non-hex character");
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  keys k{secure_bytes(raw.view().subspan(0, key_size)), secure_bytes(raw.view().subspan(key_size, key_size))};
  return k;
}

result<keys> read_keys(const std::filesystem::path& file, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return keys_io(file, "stat");
  if (!S_ISREG(st.st_mode)) return keys_malformed(file, "not a regular file");
  if ((st.st_mode & 077) != 0) {
    return make_error("journal.keys_insecure_mode", "key file " + file.string() +
                                                        " is accessible by group or others; "
                                                        "chmod 600 it");
  }
  secure_bytes content(key_file_max + 1);
  auto buf = content.mutable_view();
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return keys_io(file, "read");
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  if (got > key_file_max) return keys_malformed(file, "file too long");
  return parse_keys(file, secure_bytes(content.view().subspan(0, got)));
}

status write_all(int fd, byte_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_error("journal.keys_io", "write");
    }
    done += static_cast<std::size_t>(w);
  }
  return {};
}

result<keys> create_keys(const std::filesystem::path& file, int fd) {
  fd_guard guard(fd);
  // The umask could leave the file wider or narrower; the rule is exactly 0600.
  if (::fchmod(fd, 0600) != 0) return keys_io(file, "chmod");
  secure_bytes raw = random_bytes(key_size * 2);
  // Hex of the keys, built in a wiped buffer (to_hex would leave a std::string copy).
  static constexpr char digits[] = "0123456789abcdef";
  secure_bytes text(key_file_hex + 1);
  auto t = text.mutable_view();
  auto r = raw.view();
  for (std::size_t i = 0; i < r.size(); ++i) {
    t[2 * i] = static_cast<std::uint8_t>(digits[r[i] >> 4]);
    t[2 * i + 1] = static_cast<std::uint8_t>(digits[r[i] & 0x0f]);
  }
  t[key_file_hex] = '\n';
  if (auto st = write_all(fd, text.view()); !st) return keys_io(file, "write");
  if (::fsync(fd) != 0) return keys_io(file, "fsync");
  // Make the new directory entry durable too: a key file lost in a crash would make every
  // stored PAN unreadable.
  auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  fd_guard dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
  return keys{secure_bytes(r.subspan(0, key_size)), secure_bytes(r.subspan(key_size, key_size))};
}

}  // namespace

result<keys> load_or_create_keys(const std::filesystem::path& file) {
  // O_EXCL: if two processes start at once, exactly one creates; the other reads its file.
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    auto k = create_keys(file, fd);
    // A half-written key file would fail every later start; remove it and fail now.
    if (!k) ::unlink(file.c_str());
    return k;
  }
  if (errno != EEXIST) return keys_io(file, "create");
  fd_guard rfd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (rfd.get() < 0) return keys_io(file, "open");
  return read_keys(file, rfd.get());
}

result<stored_pan> seal_pan(const keys& k, const pan& p) {
  auto ct = aes256_gcm_seal(k.pan_key.view(), as_bytes(p.reveal()), as_bytes(pan_aad));
  if (!ct) return ct.err();
  return stored_pan{std::move(*ct), p.masked(), search_hash(k, p)};
}

result<pan> open_pan(const keys& k, const stored_pan& s) {
  auto clear = aes256_gcm_open(k.pan_key.view(), s.ciphertext, as_bytes(pan_aad));
  if (!clear) return clear.err();
  auto v = clear->view();
  auto p = pan::parse(std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
  if (!p) return make_error("journal.pan_corrupt", "stored PAN does not decrypt to a PAN");
  return p;
}

namespace {

constexpr std::string_view advice_card_aad = "eftd-advice-card-v1";

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

bool valid_advice_card(const advice_card& c) {
  return c.expiry_yymm.size() == 4 && all_digits(c.expiry_yymm) &&
         (c.card_sequence.empty() || (c.card_sequence.size() == 3 && all_digits(c.card_sequence)));
}

}  // namespace

// Plaintext: "YYMM" then the sequence ("" or 3 digits): 4 or 7 ASCII digits.
result<bytes> seal_advice_card(const keys& k, const advice_card& c) {
  if (!valid_advice_card(c))
    return make_error("journal.invalid_argument",
                      "advice card: expiry must be YYMM, sequence 3 digits or none");
  const std::string clear = c.expiry_yymm + c.card_sequence;
  return aes256_gcm_seal(k.pan_key.view(), as_bytes(clear), as_bytes(advice_card_aad));
}

result<advice_card> open_advice_card(const keys& k, byte_view sealed) {
  auto clear = aes256_gcm_open(k.pan_key.view(), sealed, as_bytes(advice_card_aad));
  if (!clear) return clear.err();
  auto v = clear->view();
  const std::string_view text(reinterpret_cast<const char*>(v.data()), v.size());
  advice_card c;
  if (text.size() == 4 || text.size() == 7) {
    c.expiry_yymm = std::string(text.substr(0, 4));
    c.card_sequence = std::string(text.substr(4));
  }
  if (!valid_advice_card(c))
    return make_error("journal.card_corrupt", "sealed advice card data is malformed");
  return c;
}

std::string search_hash(const keys& k, const pan& p) {
  return pan_search_hash(p, k.hash_key.view());
}

}  // namespace eftd::journal
