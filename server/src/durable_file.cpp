#include "durable_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace eftd::server {

namespace {

error io_error(std::string_view code, std::string_view what, const std::filesystem::path& p, int err) {
  return make_error(std::string(code), fmt::format("{} '{}': {}", what, p.string(), std::strerror(err)));
}

}  // namespace

status write_synced(const std::filesystem::path& file, std::string_view data, std::string_view error_code) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error(error_code, "cannot create", file, errno);
  status st;
  std::size_t off = 0;
  while (st && off < data.size()) {
    const auto n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      st = io_error(error_code, "cannot write", file, errno);
    else
      off += static_cast<std::size_t>(n);
  }
  if (st && ::fsync(fd) != 0) st = io_error(error_code, "cannot fsync", file, errno);
  if (::close(fd) != 0 && st) st = io_error(error_code, "cannot close", file, errno);
  if (!st) ::unlink(file.c_str());
  return st;
}

status rename_synced(const std::filesystem::path& from, const std::filesystem::path& to, std::string_view error_code) {
  if (::rename(from.c_str(), to.c_str()) != 0) return io_error(error_code, "cannot rename onto", to, errno);
  const auto dir = to.has_parent_path() ? to.parent_path() : std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return io_error(error_code, "cannot open directory", dir, errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return io_error(error_code, "cannot fsync directory", dir, err);
  return {};
}

}  // namespace eftd::server
