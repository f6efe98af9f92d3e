#pragma once
// Operating-system calls about processes: identity, starting, ending, signals.
// One implementation per platform (process.posix.cpp, process.windows.cpp); pipes, wake-ups,
// memory and shared memory have headers of their own beside this one.
//
// Descriptors and handles are ints: POSIX file descriptors, or Windows HANDLEs, which Windows
// guarantees fit in 32 bits (HandleToLong); -1 means none on both.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace mproc::platform {

/// How a child process ended: an exit code, or the signal that killed it (POSIX).
struct exit_status {
  std::optional<int> code;
  std::optional<int> signal;

  /// Returns how the process ended, as a sentence ends: "was killed by signal 9 (SIGKILL)",
  /// "exited with code 3", "ended with 0xC0000005 access violation".
  std::string describe() const;
};

/// Returns the id of the calling process.
int current_pid() noexcept;

/// What the system says of one process.
struct process_record {
  /// When it started, as a number that tells it from every other process that had or will have
  /// its pid (Linux: clock ticks after boot; Windows: its creation time).
  std::uint64_t started = 0;
  /// Whether it has ended (and is not yet reaped).
  bool ended = false;
};

/// Returns what the system says of the process `pid` in this pid namespace, or nothing if
/// there is no such process (or it cannot be told).
std::optional<process_record> look_up_process(int pid);

/// Returns the number of threads the calling process has, counted by the operating system.
std::size_t thread_count();

/// Returns the absolute path of the running executable (for messages and a child's name; Linux
/// appends " (deleted)" once its file is gone).
std::string executable_path();

/// Returns what to run to start the program that is running, even once its file has been
/// replaced or deleted (Linux: a path through a descriptor on its file, opened at the first
/// call; Windows: the path of the running module, which Windows keeps from being replaced or
/// deleted while it runs, though it may be renamed).
std::string running_program();

/// Returns an identity of the running program's build, as hex: its ELF build-id (Linux), or
/// the link time, size and checksum in its PE header (Windows); empty where it has none.
std::string build_identity();

/// Returns the command line the calling process was started with, program name first.
std::vector<std::string> command_line();

/// Fills `n` bytes at `out` from the operating system's random source; returns the error.
std::error_code random_bytes(unsigned char* out, std::size_t n) noexcept;

/// Sets `out` to `bytes` bytes from the operating system's random source, as lowercase hex;
/// returns the error.
std::error_code random_hex(std::size_t bytes, std::string& out);

/// Returns the symbolic name of a system error ("EAGAIN"), or an empty string.
std::string error_name(const std::error_code& ec);

/// Returns a signal's name ("SIGSEGV"), or "signal N" if it has none.
std::string signal_name(int signal);

/// Returns what an exit code means when the system gave it (Windows: "0xC0000005 access
/// violation" for an NTSTATUS), or an empty string for a plain exit code.
std::string exit_code_meaning(int code);

/// POSIX: starts `exe` with the arguments `argv` (the program's name first) and the current
/// environment; the child gets each `(fd, target)` of `inherit` as descriptor `target` (sources
/// numbered above every target) and no other descriptor above stderr. Sets `pid`; returns the
/// error.
/// (Windows: Boost.Process's launcher starts children, launch/children.windows.cpp.)
///
/// Safe from a multi-threaded process: nothing runs in the child between fork and exec that
/// could need a lock another thread holds.
std::error_code spawn_process(const std::string& exe, const std::vector<std::string>& argv,
                              const std::vector<std::pair<int, int>>& inherit, int& pid);

/// Names the calling process after the file name in `argv0` where the system shows a name
/// apart from the arguments (Linux: the one `top` and `pkill` see; a process started from
/// /proc/self/exe would be "exe"). Elsewhere does nothing.
void name_process(const char* argv0) noexcept;

/// Windows: places the process behind `handle` in the job that ends with this process, however
/// it ends. POSIX: does nothing (a worker's lifeline ends it).
void join_worker_job(int handle) noexcept;

/// Decodes how a process ended from a wait status (POSIX `waitpid`'s; on Windows an exit code).
exit_status exit_status_of(int wait_status) noexcept;

/// POSIX: waits for the child `pid` to end and collects its status (it is reaped). (Windows:
/// a child's Boost.Process object reaps it.)
exit_status reap(int pid) noexcept;

/// Kills the process `pid` at once (SIGKILL / TerminateProcess).
void kill_process(int pid) noexcept;

/// Returns a handle that names the process `pid` for good (a pidfd), or -1.
int open_handle(int pid) noexcept;
/// Returns a handle that names the process `pid` for good (a pidfd); on failure sets `ec`
/// (Linux: ENOSYS or EPERM where pidfds are refused) and returns -1.
int open_handle(int pid, std::error_code& ec) noexcept;

/// Kills the process behind `handle` at once; safe even after its pid was reused.
void kill_handle(int handle) noexcept;

/// Asks the process behind `handle` to terminate (SIGTERM; Windows: `TerminateProcess`).
void terminate_handle(int handle) noexcept;

/// Prepares a new worker process: default signal handlers, nothing blocked, interactive
/// interrupts (Ctrl-C) ignored, and on Windows no crash dialog.
void reset_signals_in_worker() noexcept;

}  // namespace mproc::platform
