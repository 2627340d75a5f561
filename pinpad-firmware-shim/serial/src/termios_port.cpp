// POSIX termios implementation: raw 8N1, no flow control, non-blocking fd driven by poll().
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "eftd/pad/serial_port.hpp"
#include "serial_util.hpp"

namespace eftd::pad {
namespace {

std::optional<speed_t> speed_for(std::uint32_t baud) {
  switch (baud) {
    case 1200:
      return B1200;
    case 2400:
      return B2400;
    case 4800:
      return B4800;
    case 9600:
      return B9600;
    case 19200:
      return B19200;
    case 38400:
      return B38400;
    case 57600:
      return B57600;
    case 115200:
      return B115200;
    case 230400:
      return B230400;
    case 460800:
      return B460800;
    case 921600:
      return B921600;
    default:
      return std::nullopt;
  }
}

std::string errno_text(int e) {
  return std::strerror(e);
}

class termios_port final : public serial_port {
 public:
  termios_port(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~termios_port() override { close(); }

  result<std::size_t> read(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout) override {
    if (fd_ < 0) return closed_error(path_);
    if (buf.empty()) return std::size_t{0};
    const auto deadline = serial_detail::clock::now() + timeout;
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, serial_detail::ms_left(deadline));
      if (n < 0) {
        if (errno == EINTR) continue;
        return make_error("serial.read_failed", path_ + ": poll: " + errno_text(errno));
      }
      if (n == 0) return std::size_t{0};
      // POLLHUP with data still buffered: read it first; the next read reports the hangup.
      const ssize_t r = ::read(fd_, buf.data(), buf.size());
      if (r > 0) return static_cast<std::size_t>(r);
      if (r == 0 || errno == EIO) return make_error("serial.hangup", path_ + ": the other end hung up");
      if (errno == EINTR || errno == EAGAIN) {
        if (serial_detail::ms_left(deadline) == 0) return std::size_t{0};
        continue;
      }
      return make_error("serial.read_failed", path_ + ": read: " + errno_text(errno));
    }
  }

  status write(byte_view data, std::chrono::milliseconds timeout) override {
    if (fd_ < 0) return closed_error(path_);
    const auto deadline = serial_detail::clock::now() + timeout;
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t w = ::write(fd_, data.data() + done, data.size() - done);
      if (w > 0) {
        done += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EIO) return make_error("serial.hangup", path_ + ": the other end hung up");
      if (w < 0 && errno != EAGAIN)
        return make_error("serial.write_failed", path_ + ": write: " + errno_text(errno));
      // Output buffer full: wait for room until the deadline.
      const int left = serial_detail::ms_left(deadline);
      pollfd p{fd_, POLLOUT, 0};
      const int n = left > 0 ? ::poll(&p, 1, left) : 0;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return make_error("serial.write_timeout", path_ + ": only " + std::to_string(done) + " of " +
                                                      std::to_string(data.size()) + " bytes written in " +
                                                      std::to_string(timeout.count()) + " ms");
    }
    return {};
  }

  void close() override {
    if (fd_ >= 0) {
      ::close(fd_);  // also releases the flock
      fd_ = -1;
    }
  }
  bool is_open() const override { return fd_ >= 0; }
  const std::string& path() const override { return path_; }

 private:
  static error closed_error(const std::string& path) {
    return make_error("serial.closed", path + ": port is closed");
  }

  int fd_;
  std::string path_;
};

}  // namespace

result<std::unique_ptr<serial_port>> open_termios_port(const std::string& path, const serial_settings& s) {
  const auto speed = speed_for(s.baud);
  if (!speed)
    return make_error("serial.bad_baud", path + ": unsupported baud rate " + std::to_string(s.baud));
  // O_NONBLOCK: open must not wait for carrier detect on a modem line, and poll() drives every
  // wait afterwards. O_NOCTTY: a pad's port must never become our controlling terminal.
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? "serial.not_found" : "serial.open_failed",
                      "cannot open " + path + ": " + errno_text(e));
  }
  auto fail = [fd](std::string code, std::string msg) {
    ::close(fd);
    return make_error(std::move(code), std::move(msg));
  };
  if (!::isatty(fd)) return fail("serial.not_a_tty", path + " is not a terminal device");
  // Advisory lock: a second bridge on the same port would interleave frames with ours.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    return fail(e == EWOULDBLOCK ? "serial.busy" : "serial.open_failed",
                path + (e == EWOULDBLOCK ? " is in use by another process" : ": flock: " + errno_text(e)));
  }
  termios t{};
  if (::tcgetattr(fd, &t) != 0)
    return fail("serial.config_failed", path + ": tcgetattr: " + errno_text(errno));
  ::cfmakeraw(&t);
  t.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB | CSTOPB | CRTSCTS);
  t.c_cflag |= CS8 | CREAD | CLOCAL;
  t.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  // Reads never block in the kernel: poll() implements the timeout.
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 0;
  if (::cfsetispeed(&t, *speed) != 0 || ::cfsetospeed(&t, *speed) != 0)
    return fail("serial.bad_baud", path + ": baud rate " + std::to_string(s.baud) + " rejected");
  if (::tcsetattr(fd, TCSANOW, &t) != 0)
    return fail("serial.config_failed", path + ": tcsetattr: " + errno_text(errno));
  // Bytes that sat in the input queue before we opened belong to nobody we talk to.
  ::tcflush(fd, TCIFLUSH);
  return std::unique_ptr<serial_port>(std::make_unique<termios_port>(fd, path));
}

result<std::unique_ptr<serial_port>> open_serial_port(serial_backend backend, const std::string& path,
                                                      const serial_settings& s) {
  return backend == serial_backend::termios ? open_termios_port(path, s) : open_libserialport_port(path, s);
}

}  // namespace eftd::pad
