#include "platform/memory.hpp"

#include <cstdint>

#include <sys/mman.h>

namespace mproc::platform {

void prefault(void* p, std::size_t bytes) noexcept {
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  constexpr std::uintptr_t page = 4096;
  if (bytes < 16 * page) return;  // a few faults cost less than the call
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  // Each call fails harmlessly on a kernel without it (huge pages off; before Linux 5.14).
#ifdef MADV_HUGEPAGE
  const std::uintptr_t huge_begin = (at + huge - 1) & ~(huge - 1);
  const std::uintptr_t huge_end = (at + bytes) & ~(huge - 1);
  if (bytes >= 2 * huge && huge_end > huge_begin) {
    (void)::madvise(reinterpret_cast<void*>(huge_begin), huge_end - huge_begin, MADV_HUGEPAGE);
  }
#endif
#ifdef MADV_POPULATE_WRITE
  // One call maps every page, huge or not, instead of a fault for each; the ends outside the
  // huge range are up to 4 MiB of small pages.
  const std::uintptr_t begin = (at + page - 1) & ~(page - 1);
  const std::uintptr_t end = (at + bytes) & ~(page - 1);
  if (end > begin) {
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
  }
#endif
}

void exclude_from_fork(void* p, std::size_t bytes) noexcept {
  (void)::madvise(p, bytes, MADV_DONTFORK);  // a hint: without it, pages are copied on write
}

void include_in_fork(void* p, std::size_t bytes) noexcept {
  // Needed, unlike the advice it undoes: heap memory that a forked child lacks would fault in
  // the child's malloc. It cannot fail on a range that took MADV_DONTFORK.
  (void)::madvise(p, bytes, MADV_DOFORK);
}

void advise_large_pages(void* p, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  (void)::madvise(p, bytes, MADV_HUGEPAGE);  // fails harmlessly where huge pages are off
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace mproc::platform
