// A loopback port that nothing listens on, for a peer the test starts later or never.
//
// It comes from below the kernel's ephemeral range. A port that bind(0) hands out is itself an
// ephemeral port, so the kernel may later give it as the source port of an outgoing
// connection: to a node restarting in a chaos round it is then taken ("Address already in
// use"), and a connection to it can even connect to itself (TCP simultaneous open), so a peer
// that should be unreachable answers with its own bytes. Ports below the range are never chosen
// for outgoing connections.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>

namespace eftd::test {

inline std::uint16_t free_port() {
  int ephemeral_low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> ephemeral_low;
  if (ephemeral_low <= 11000) throw std::runtime_error("free_port: the ephemeral range starts below 11000");
  static std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(10000, ephemeral_low - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(rng);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("free_port: socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return static_cast<std::uint16_t>(port);
  }
  throw std::runtime_error("free_port: no free port below the ephemeral range");
}

}  // namespace eftd::test
