#include "platform/pipe.hpp"

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace mproc::platform {

std::error_code make_pipe(pipe_ends& ends) noexcept {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::generic_category()};
  ends.read = fds[0];
  ends.write = fds[1];
  return {};
}

int duplicate_above(int fd, int lowest, std::error_code& ec) noexcept {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, lowest);
  // EINVAL: RLIMIT_NOFILE is at or below `lowest`, which is running out of descriptors too.
  if (copy < 0) ec = {errno == EINVAL ? EMFILE : errno, std::generic_category()};
  return copy;
}

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

bool write_all(int fd, const void* data, std::size_t n) noexcept {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) noexcept {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

namespace {

struct lifeline_registry {
  std::mutex mutex;
  std::vector<int> write_ends;  // guarded by mutex
};

lifeline_registry& lifelines() {
  static lifeline_registry r;
  return r;
}

}  // namespace

void register_lifeline(int write_fd) {
  lifeline_registry& r = lifelines();
  std::lock_guard lock(r.mutex);
  r.write_ends.push_back(write_fd);
}

void unregister_lifeline(int write_fd) noexcept {
  lifeline_registry& r = lifelines();
  std::lock_guard lock(r.mutex);
  std::erase(r.write_ends, write_fd);
}

void close_lifelines_in_child() noexcept {
  // No lock: the forked child has one thread, and the parent's lock may have been held by a
  // thread that does not exist here.
  for (const int fd : lifelines().write_ends) ::close(fd);
}

void exit_with_parent(int fd) {
  std::thread([fd] {
    char c = 0;
    ssize_t r = 0;
    do {
      r = ::read(fd, &c, 1);
    } while (r > 0 || (r < 0 && errno == EINTR));
    // End-of-file: the parent is gone, and with it everyone who could use our results.
    std::_Exit(0);
  }).detach();
}

}  // namespace mproc::platform
