#pragma once
// Pipes and descriptors (Windows: handles, which fit in an int), and the lifelines that tie a
// worker to the application (pipe.posix.cpp, pipe.windows.cpp).

#include <cstddef>
#include <system_error>

namespace mproc::platform {

/// A pipe; both ends are closed on exec.
struct pipe_ends {
  int read = -1;
  int write = -1;
};

/// Creates a pipe whose ends are closed on exec.
std::error_code make_pipe(pipe_ends& ends) noexcept;

/// POSIX: returns a close-on-exec copy of `fd` numbered `lowest` or above, or -1 with `ec` set
/// (`too_many_files_open` also when the limit is below `lowest`). Elsewhere: -1, not_supported.
int duplicate_above(int fd, int lowest, std::error_code& ec) noexcept;

/// Closes a file descriptor (ignoring -1).
void close_fd(int fd) noexcept;

/// Writes all `n` bytes to `fd`; false on error.
bool write_all(int fd, const void* data, std::size_t n) noexcept;

/// Reads exactly `n` bytes from `fd`; false on end-of-file or error.
bool read_all(int fd, void* data, std::size_t n) noexcept;

/// Records the write end of a worker's lifeline, so that forked children can close it: a
/// lifeline reads end-of-file only when every copy of its write end is gone.
void register_lifeline(int write_fd);
/// Forgets a lifeline registered with `register_lifeline` (before closing it).
void unregister_lifeline(int write_fd) noexcept;
/// In a freshly forked child: closes every registered lifeline write end.
void close_lifelines_in_child() noexcept;

/// Ends this process at once when `fd` (the read end of a lifeline) reads end-of-file, that is
/// when the parent that holds the write end is gone, however it ended. Watches from a thread.
void exit_with_parent(int fd);

}  // namespace mproc::platform
