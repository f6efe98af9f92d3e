// Preloaded into a refusal probe (LD_PRELOAD): fork() fails with EAGAIN, as it does when a
// process limit is reached for a moment. MPROC_TEST_FORK_FAILURES="<skip>,<count>" lets the
// first <skip> forks of the process tree through and fails the next <count>. The counter is
// plain memory, so a forked child goes on counting from its parent's count: with skip 1, the
// application's fork of its zygote succeeds and the zygote's first forks fail.
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <dlfcn.h>
#include <unistd.h>

namespace {

long forks_seen = 0;

}  // namespace

extern "C" pid_t fork() {
  static long skip = -1;
  static long count = 0;
  if (skip < 0) {
    const char* spec = std::getenv("MPROC_TEST_FORK_FAILURES");
    if (spec == nullptr || std::sscanf(spec, "%ld,%ld", &skip, &count) != 2) skip = count = 0;
  }
  const long n = forks_seen++;
  if (n >= skip && n < skip + count) {
    errno = EAGAIN;
    return -1;
  }
  using fork_function = pid_t (*)();
  static const auto real = reinterpret_cast<fork_function>(::dlsym(RTLD_NEXT, "fork"));
  return real();
}
