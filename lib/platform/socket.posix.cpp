#include "platform/socket.posix.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <unistd.h>

namespace mproc::platform {

std::error_code make_socket_pair(pipe_ends& ends) noexcept {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return {errno, std::generic_category()};
  }
  ends.read = fds[0];
  ends.write = fds[1];
  return {};
}

bool send_all(int fd, const void* data, std::size_t n, int passed) noexcept {
  const char* p = static_cast<const char*>(data);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  bool attach = passed >= 0;
  while (n > 0) {
    iovec io{const_cast<char*>(p), n};
    msghdr m{};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    if (attach) {
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &passed, sizeof passed);
    }
    const ssize_t w = ::sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    attach = false;  // the descriptor went with the first byte
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool receive_all(int fd, void* data, std::size_t n, int& passed) noexcept {
  passed = -1;
  char* p = static_cast<char*>(data);
  while (n > 0) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    iovec io{p, n};
    msghdr m{};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    const ssize_t r = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    // Whatever came attached is kept once (the first) and the rest closed.
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int received = -1;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
        if (passed < 0) {
          passed = received;
        } else {
          ::close(received);
        }
      }
    }
    if (r <= 0) {
      if (passed >= 0) ::close(passed);
      passed = -1;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace mproc::platform
