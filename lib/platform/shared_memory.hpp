#pragma once
// Shared memory: a POSIX shared-memory object (named until removed), or on Windows a
// pagefile-backed section (Boost.Interprocess's windows_shared_memory), which vanishes with its
// last handle, crash or not; and on Linux anonymous memory (a memfd) that has no name at all
// and is passed by descriptor. One implementation per platform (shared_memory.posix.cpp,
// shared_memory.windows.cpp).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

namespace mproc::platform {

/// A mapped view of a shared-memory segment.
class shared_memory {
 public:
  /// Creates the segment `name` of `bytes` bytes (owner-only) and maps it. On failure (the
  /// name exists, the system refuses; `no_space_on_device` when the memory behind it is
  /// short) sets `ec` and returns an empty object.
  static shared_memory create(const std::string& name, std::size_t bytes,
                              std::error_code& ec) noexcept;
  /// Opens and maps the existing segment `name`. On failure sets `ec` and returns an empty
  /// object.
  static shared_memory open(const std::string& name, std::error_code& ec) noexcept;
  /// Removes the name `name`; mappings stay valid. A no-op on Windows.
  static void remove(const std::string& name) noexcept;
  /// Creates a segment of `bytes` bytes that has no name (Linux: a memfd whose size is sealed),
  /// reachable only through `descriptor()`, and maps it. On failure sets `ec`
  /// (`function_not_supported` where the system has no such memory or refuses the call) and
  /// returns an empty object. It is gone once the last descriptor and mapping are.
  static shared_memory create_anonymous(std::size_t bytes, std::error_code& ec) noexcept;
  /// Maps the segment behind `fd`, a descriptor of one made by `create_anonymous` in another
  /// process, and owns `fd` from then on (it is closed on failure). On failure sets `ec`
  /// (`bad_message` for a descriptor that is not such a segment) and returns an empty object.
  static shared_memory adopt(int fd, std::error_code& ec) noexcept;
  /// Maps the segment without a name that the process `pid` holds as descriptor `fd`, through
  /// a descriptor of this process's own (Linux: /proc/<pid>/fd/<fd>). On failure sets `ec`
  /// (`no_such_process` when no such descriptor is reachable) and returns an empty object.
  static shared_memory open_peer(int pid, int fd, std::error_code& ec) noexcept;

  /// Makes an empty object, which maps nothing.
  shared_memory() noexcept;
  shared_memory(shared_memory&&) noexcept;
  shared_memory& operator=(shared_memory&&) noexcept;
  ~shared_memory();

  /// Returns whether this maps a segment (an object from a failed call does not).
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  /// Returns the address of the mapping in this process.
  void* address() const noexcept;
  /// Returns the size of the mapping (at least what was asked for).
  std::size_t size() const noexcept;
  /// Returns the descriptor of a segment without a name, or -1 (a named one, or released).
  int descriptor() const noexcept;
  /// Closes the descriptor of a segment without a name; the mapping stays valid.
  void release_descriptor() noexcept;

 private:
  struct impl;
  explicit shared_memory(std::unique_ptr<impl> state) noexcept;
  std::unique_ptr<impl> impl_;
};

/// Where segments live in a file system of a limited size (POSIX: /dev/shm), sets its size and
/// free space in bytes and returns true; elsewhere returns false.
bool shared_memory_room(std::uint64_t& total, std::uint64_t& free) noexcept;

/// Returns how the names of the segments this process creates begin: "mproc-<pid>-<tag>-",
/// where the tag tells this process from every other that had or will have its pid (POSIX: its
/// pid namespace and start time).
std::string segment_prefix();

/// Removes the segments that a SIGKILL at the wrong moment left behind: those named by
/// `segment_prefix` of a process that is provably gone (the same owner and pid namespace as
/// this process, and no process with that pid and start time). Anything it cannot prove, it
/// leaves. (Nothing to do on Windows, where a segment vanishes with its last handle.)
void remove_orphaned_segments() noexcept;

}  // namespace mproc::platform
