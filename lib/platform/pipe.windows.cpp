#include "platform/pipe.hpp"
#include "platform/process.hpp"

#include "platform/handle.windows.hpp"

#include <cstdlib>
#include <thread>

#include <windows.h>

namespace mproc::platform {

std::error_code make_pipe(pipe_ends& ends) noexcept {
  HANDLE r = nullptr;
  HANDLE w = nullptr;
  // Not inheritable: spawn_process lets a child inherit exactly the handles it is given.
  if (!::CreatePipe(&r, &w, nullptr, 0)) {
    return {static_cast<int>(::GetLastError()), std::system_category()};
  }
  ends.read = to_int(r);
  ends.write = to_int(w);
  return {};
}

int duplicate_above(int /*fd*/, int /*lowest*/, std::error_code& ec) noexcept {
  ec = std::make_error_code(std::errc::not_supported);
  return -1;
}

void close_fd(int fd) noexcept {
  if (fd != -1) ::CloseHandle(to_handle(fd));
}

bool write_all(int fd, const void* data, std::size_t n) noexcept {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    DWORD done = 0;
    const auto step = static_cast<DWORD>(std::min<std::size_t>(n, 1U << 30));
    if (!::WriteFile(to_handle(fd), p, step, &done, nullptr) || done == 0) return false;
    p += done;
    n -= done;
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) noexcept {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    DWORD done = 0;
    const auto step = static_cast<DWORD>(std::min<std::size_t>(n, 1U << 30));
    if (!::ReadFile(to_handle(fd), p, step, &done, nullptr) || done == 0) return false;
    p += done;
    n -= done;
  }
  return true;
}

// Without fork, no process ever holds a copy of a lifeline's write end but this one: nothing
// to record.
void register_lifeline(int /*write_fd*/) {}

void unregister_lifeline(int /*write_fd*/) noexcept {}

void close_lifelines_in_child() noexcept {}

void exit_with_parent(int fd) {
  std::thread([fd] {
    char c = 0;
    DWORD done = 0;
    while (::ReadFile(to_handle(fd), &c, 1, &done, nullptr) && done > 0) {
    }
    // The pipe is broken: the parent is gone, and with it everyone who could use our results.
    std::_Exit(0);
  }).detach();
}

}  // namespace mproc::platform
