#include "platform/memory.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/mman.h>
#include <sys/uio.h>

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

namespace {

// One call copies at most this much: a call that fails part-way reports how far it came.
constexpr std::size_t copy_step = std::size_t{64} << 20;

template <class Call>
std::error_code copy_in_steps(std::size_t bytes, Call call) noexcept {
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = bytes - done < copy_step ? bytes - done : copy_step;
    const ssize_t got = call(done, n);
    if (got < 0) {
      if (errno == EINTR) continue;
      return {errno, std::generic_category()};
    }
    if (got == 0) return std::make_error_code(std::errc::bad_address);
    done += static_cast<std::size_t>(got);
  }
  return {};
}

#ifdef __linux__
using copy_call = ssize_t (*)(pid_t, const iovec*, unsigned long, const iovec*, unsigned long,
                              unsigned long);

// Copies between `local` and `remote` in `pid` with `call` (process_vm_readv or _writev, whose
// first vector is the local one).
std::error_code copy_with(copy_call call, int pid, std::uint64_t remote, const void* local,
                          std::size_t bytes) noexcept {
  return copy_in_steps(bytes, [&](std::size_t at, std::size_t n) {
    const iovec here{const_cast<char*>(static_cast<const char*>(local)) + at, n};
    const iovec there{reinterpret_cast<void*>(remote + at), n};
    return call(pid, &here, 1, &there, 1, 0);
  });
}
#endif

}  // namespace

const char* slow_process_memory() noexcept { return nullptr; }

std::error_code open_memory_peer(int pid, memory_peer& peer) noexcept {
  peer = pid;  // reused only once the worker is reaped and the pid space wrapped around
  return {};
}

void close_memory_peer(memory_peer /*peer*/) noexcept {}

std::error_code read_process_memory(memory_peer peer, std::uint64_t remote, void* local,
                                    std::size_t bytes) noexcept {
  const auto pid = static_cast<int>(peer);
#ifdef __linux__
  return copy_with(::process_vm_readv, pid, remote, local, bytes);
#else
  (void)pid, (void)remote, (void)local, (void)bytes;
  return std::make_error_code(std::errc::function_not_supported);
#endif
}

std::error_code write_process_memory(memory_peer peer, std::uint64_t remote, const void* local,
                                     std::size_t bytes) noexcept {
  const auto pid = static_cast<int>(peer);
#ifdef __linux__
  return copy_with(::process_vm_writev, pid, remote, local, bytes);
#else
  (void)pid, (void)remote, (void)local, (void)bytes;
  return std::make_error_code(std::errc::function_not_supported);
#endif
}

namespace {

// Whether the kernel charges every writable private page against its commit limit when it is
// mapped (vm.overcommit_memory = 2), MAP_NORESERVE or not.
bool strict_overcommit() noexcept {
  std::FILE* f = std::fopen("/proc/sys/vm/overcommit_memory", "r");
  if (f == nullptr) return false;
  int mode = 0;
  const bool read = std::fscanf(f, "%d", &mode) == 1;
  std::fclose(f);
  return read && mode == 2;
}

}  // namespace

void* reserve_memory(std::size_t bytes) noexcept {
  // Under strict accounting a reservation would take its whole size from the commit limit.
  if (strict_overcommit()) return nullptr;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

bool memory_maps_on_write() noexcept { return true; }

bool commit_memory(void* /*p*/, std::size_t /*bytes*/) noexcept { return true; }

void discard_memory(void* p, std::size_t bytes) noexcept {
  (void)::madvise(p, bytes, MADV_DONTNEED);  // the pages read as zero again
}

void release_memory(void* p, std::size_t bytes) noexcept { (void)::munmap(p, bytes); }

void keep_freed_memory() noexcept {
#if defined(__GLIBC__)
  // Blocks up to 1 GiB come from the heap rather than a mapping of their own (which is fresh
  // memory, faulted in and zeroed page by page, every time), and a freed 1 GiB stays there.
  constexpr int kept = 1 << 30;
  (void)::mallopt(M_MMAP_THRESHOLD, kept);
  (void)::mallopt(M_TRIM_THRESHOLD, kept);
#endif
}

void return_freed_memory() noexcept {
#if defined(__GLIBC__)
  (void)::malloc_trim(0);
#endif
}

}  // namespace mproc::platform
