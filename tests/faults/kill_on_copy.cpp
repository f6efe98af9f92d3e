// Preloaded into a refusal probe (LD_PRELOAD): kills a worker in the middle of a direct copy.
// MPROC_TEST_KILL_ON_COPY="<readv|writev>,<n>": the n-th call of process_vm_readv (a result
// read from a worker) or process_vm_writev (a task written into one) of at least 256 KiB first
// kills its target with SIGKILL and waits until it has ended, then makes the call, which the
// kernel refuses with ESRCH. Earlier calls of a copy in several calls have gone through.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <dlfcn.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

long calls_seen = 0;

void maybe_kill(const char* call, pid_t pid, const iovec* local, unsigned long count) {
  static char which[16] = {};
  static long nth = -1;
  if (nth < 0) {
    const char* spec = std::getenv("MPROC_TEST_KILL_ON_COPY");
    if (spec == nullptr || std::sscanf(spec, "%15[a-z],%ld", which, &nth) != 2) nth = 0;
  }
  std::size_t bytes = 0;
  for (unsigned long i = 0; i < count; ++i) bytes += local[i].iov_len;
  if (nth == 0 || std::strcmp(which, call) != 0 || bytes < (std::size_t{256} << 10)) return;
  if (++calls_seen != nth) return;
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0 || ::kill(pid, SIGKILL) != 0) std::abort();
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  ::close(fd);
}

using copy_function = ssize_t (*)(pid_t, const iovec*, unsigned long, const iovec*, unsigned long,
                                  unsigned long);

// Kills first if it is the call to kill in, then makes the real call `symbol`.
ssize_t forward(const char* call, const char* symbol, pid_t pid, const iovec* local,
                unsigned long liovcnt, const iovec* remote, unsigned long riovcnt,
                unsigned long flags) {
  maybe_kill(call, pid, local, liovcnt);
  const auto real = reinterpret_cast<copy_function>(::dlsym(RTLD_NEXT, symbol));
  return real(pid, local, liovcnt, remote, riovcnt, flags);
}

}  // namespace

extern "C" ssize_t process_vm_readv(pid_t pid, const iovec* local, unsigned long liovcnt,
                                    const iovec* remote, unsigned long riovcnt,
                                    unsigned long flags) {
  return forward("readv", "process_vm_readv", pid, local, liovcnt, remote, riovcnt, flags);
}

extern "C" ssize_t process_vm_writev(pid_t pid, const iovec* local, unsigned long liovcnt,
                                     const iovec* remote, unsigned long riovcnt,
                                     unsigned long flags) {
  return forward("writev", "process_vm_writev", pid, local, liovcnt, remote, riovcnt, flags);
}
