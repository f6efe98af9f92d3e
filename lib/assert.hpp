#pragma once
// MPROC_ASSERT(condition, what): an internal invariant. Checked where MPROC_ASSERTIONS is
// defined (the dev and tsan presets); a broken one prints where and why, then aborts, so that
// the fault tests and sanitizers catch it at the first wrong step.

#if defined(MPROC_ASSERTIONS)
#include <cstdio>
#include <cstdlib>
#define MPROC_ASSERT(condition, what)                                                        \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "mproc: internal invariant broken at %s:%d: %s (%s)\n", __FILE__, \
                   __LINE__, what, #condition);                                              \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)
#else
#define MPROC_ASSERT(condition, what) static_cast<void>(sizeof(!(condition)))
#endif
