#pragma once
// Operating-system calls about processes: identity, starting, ending, signals, exit watching.
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

/// Returns the number of threads the calling process has, counted by the operating system.
std::size_t thread_count();

/// Returns the absolute path of the running executable.
std::string executable_path();

/// Returns the command line the calling process was started with, program name first.
std::vector<std::string> command_line();

/// Fills `n` bytes at `out` from the operating system's random source. Throws
/// `std::system_error`.
void random_bytes(unsigned char* out, std::size_t n);

/// Returns `bytes` bytes from the operating system's random source, as lowercase hex.
std::string random_hex(std::size_t bytes);

/// Returns the symbolic name of a system error ("EAGAIN"), or an empty string.
std::string error_name(const std::error_code& ec);

/// Returns a signal's name ("SIGSEGV"), or "signal N" if it has none.
std::string signal_name(int signal);

/// Returns what an exit code means when the system gave it (Windows: "0xC0000005 access
/// violation" for an NTSTATUS), or an empty string for a plain exit code.
std::string exit_code_meaning(int code);

/// Starts `exe` with `args` (after the program name) and the current environment; the child
/// gets each `(fd, target)` of `inherit` as descriptor `target` and no other descriptor above
/// stderr (on Windows: each handle `fd` under its own value, `target` unused, and no other
/// handle; the child is placed in a job that ends with this process). Returns the child's pid.
/// Throws `std::system_error`.
///
/// Safe from a multi-threaded process: nothing runs in the child between fork and exec that
/// could need a lock another thread holds.
int spawn_process(const std::string& exe, const std::vector<std::string>& args,
                  const std::vector<std::pair<int, int>>& inherit);

/// Decodes how a process ended from a wait status (POSIX `waitpid`'s; on Windows an exit code).
exit_status exit_status_of(int wait_status) noexcept;

/// Waits for the child `pid` to end and collects its status (it is reaped).
exit_status reap(int pid) noexcept;

/// Kills the process `pid` at once (SIGKILL / TerminateProcess).
void kill_process(int pid) noexcept;

/// Returns a handle that names the process `pid` for good (a pidfd), or -1.
int open_handle(int pid) noexcept;

/// Kills the process behind `handle` at once; safe even after its pid was reused.
void kill_handle(int handle) noexcept;

/// Asks the process behind `handle` to terminate (SIGTERM; Windows: `TerminateProcess`).
void terminate_handle(int handle) noexcept;

/// Prepares a new worker process: default signal handlers, nothing blocked, interactive
/// interrupts (Ctrl-C) ignored, and on Windows no crash dialog.
void reset_signals_in_worker() noexcept;

/// Calls a function once for each watched child process when it ends, from one thread of its own.
///
/// Thread-safe. Learns of each exit from the operating system (pidfd on Linux, process handles on
/// Windows), not by polling.
class exit_watcher {
 public:
  exit_watcher();
  ~exit_watcher();
  exit_watcher(const exit_watcher&) = delete;
  exit_watcher& operator=(const exit_watcher&) = delete;

  /// Calls `on_exit` once when `pid` ends (or has already ended); does not reap it. Fails where
  /// the system cannot name the process for good (Linux: no pidfd, as under valgrind).
  std::error_code watch(int pid, std::function<void()> on_exit);
  /// POSIX: calls `on_ready` each time `fd` reports one of `events` (or an error or hang-up)
  /// until it returns false. Takes `fd`: it is closed then, at `stop`, or if this fails.
  /// Elsewhere: fails with `not_supported`.
  std::error_code watch_descriptor(int fd, short events, std::function<bool()> on_ready);
  /// Starts the watching thread; `watch` may be called before or after. Throws
  /// `std::system_error` if the system cannot create the thread.
  void start();
  /// Stops the watching thread and destroys the pending callbacks.
  void stop() noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mproc::platform
