#include "platform/memory.hpp"

#include "platform/handle.windows.hpp"

#include <algorithm>

#include <windows.h>

namespace mproc::platform {

void prefault(void* /*p*/, std::size_t /*bytes*/) noexcept {
  // Large pages on Windows need a privilege that ordinary accounts lack.
}

void advise_large_pages(void* /*p*/, std::size_t /*bytes*/) noexcept {}

void exclude_from_fork(void* /*p*/, std::size_t /*bytes*/) noexcept {}  // no fork on Windows

void include_in_fork(void* /*p*/, std::size_t /*bytes*/) noexcept {}

const char* slow_process_memory() noexcept {
  // Wine's ntdll has functions of its own; Windows' has not. Looked up once (the first call
  // comes from a pool's constructor): the lookup takes the loader's lock, which a thread that
  // is ending holds while it runs its thread-local destructors.
  static const bool wine = [] {
    HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
    return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
  }();
  if (!wine) return nullptr;
  return "under Wine, whose server makes every copy between two processes, they are slower than "
         "shared memory";
}

std::error_code open_memory_peer(int pid, memory_peer& peer) noexcept {
  // The pool holds a handle of its own to the worker until it is reaped, so `pid` is still
  // that worker's; this handle keeps its process object (not its memory) until closed.
  constexpr DWORD rights = PROCESS_VM_READ | PROCESS_VM_WRITE | PROCESS_VM_OPERATION |
                           PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE;
  HANDLE h = ::OpenProcess(rights, FALSE, static_cast<DWORD>(pid));
  if (h == nullptr) return {static_cast<int>(::GetLastError()), std::system_category()};
  peer = reinterpret_cast<memory_peer>(h);
  return {};
}

void close_memory_peer(memory_peer peer) noexcept {
  if (peer != no_memory_peer) ::CloseHandle(to_handle(peer));
}

namespace {

// The most one call copies: a worker that ends in the middle of a large copy stops it at the
// next step.
constexpr std::size_t copy_step = std::size_t{64} << 20;

// Why a copy with the process `h` failed: it has ended, the range is not all mapped, or the
// system refuses.
std::error_code copy_failure(HANDLE h) noexcept {
  const DWORD error = ::GetLastError();
  if (::WaitForSingleObject(h, 0) == WAIT_OBJECT_0) {
    return std::make_error_code(std::errc::no_such_process);
  }
  if (error == ERROR_PARTIAL_COPY || error == ERROR_NOACCESS || error == ERROR_INVALID_ADDRESS) {
    return std::make_error_code(std::errc::bad_address);
  }
  return {static_cast<int>(error), std::system_category()};
}

}  // namespace

std::error_code read_process_memory(memory_peer peer, std::uint64_t remote, void* local,
                                    std::size_t bytes) noexcept {
  HANDLE h = to_handle(peer);
  for (std::size_t at = 0; at < bytes;) {
    const std::size_t n = std::min(bytes - at, copy_step);
    SIZE_T done = 0;
    const auto* from = reinterpret_cast<const void*>(static_cast<std::uintptr_t>(remote + at));
    if (!::ReadProcessMemory(h, from, static_cast<char*>(local) + at, n, &done) || done != n) {
      return copy_failure(h);
    }
    at += n;
  }
  return {};
}

std::error_code write_process_memory(memory_peer peer, std::uint64_t remote, const void* local,
                                     std::size_t bytes) noexcept {
  HANDLE h = to_handle(peer);
  for (std::size_t at = 0; at < bytes;) {
    const std::size_t n = std::min(bytes - at, copy_step);
    SIZE_T done = 0;
    auto* to = reinterpret_cast<void*>(static_cast<std::uintptr_t>(remote + at));
    if (!::WriteProcessMemory(h, to, static_cast<const char*>(local) + at, n, &done) || done != n) {
      return copy_failure(h);
    }
    at += n;
  }
  return {};
}

// Reserved pages can be neither read nor written (by this process or another) before they are
// committed, and a commit is charged at once against the system's commit limit: a worker
// commits what its large tasks need as they come (`commit_memory`).
void* reserve_memory(std::size_t bytes) noexcept {
  return ::VirtualAlloc(nullptr, bytes, MEM_RESERVE, PAGE_READWRITE);
}

bool memory_maps_on_write() noexcept { return false; }

bool commit_memory(void* p, std::size_t bytes) noexcept {
  return ::VirtualAlloc(p, bytes, MEM_COMMIT, PAGE_READWRITE) != nullptr;
}

void discard_memory(void* p, std::size_t bytes) noexcept {
  // The pages stay committed (other processes may still write there); their contents may go.
  (void)::VirtualAlloc(p, bytes, MEM_RESET, PAGE_READWRITE);
}

void release_memory(void* p, std::size_t /*bytes*/) noexcept {
  (void)::VirtualFree(p, 0, MEM_RELEASE);
}

void keep_freed_memory() noexcept {}

void return_freed_memory() noexcept {}

}  // namespace mproc::platform
