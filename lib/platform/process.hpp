#pragma once
// Operating-system calls, and nothing else: processes, signals, wake-ups on shared words.
// One implementation per platform (process.posix.cpp, process.windows.cpp).
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

/// The native object a sleeper waits on besides its shared word: none on Linux (the futex is the
/// word itself, so this is -1 there), a named auto-reset event on Windows.
using wake_handle = std::intptr_t;

/// Creates (`create`) or opens the wake-up object called `name`; -1 where none is needed.
/// Throws `std::system_error`.
wake_handle open_wake_handle(const std::string& name, bool create);

/// Closes a wake-up object from `open_wake_handle` (ignoring -1).
void close_wake_handle(wake_handle handle) noexcept;

/// Sleeps until `word` may differ from `expected`, a wake-up arrives, or `timeout` passes.
///
/// `word` may live in memory shared between processes; `handle` is the wake-up object that
/// goes with it (one sleeper at a time per handle). A negative timeout waits for ever.
/// Spurious returns are allowed: callers re-check their condition.
void wait_word(std::atomic<std::uint32_t>& word, std::uint32_t expected,
               std::chrono::nanoseconds timeout, wake_handle handle) noexcept;

/// Wakes whoever sleeps in `wait_word` on `word` and `handle`.
void wake_word(std::atomic<std::uint32_t>& word, wake_handle handle) noexcept;

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

/// Removes shared-memory segments named "<prefix><pid>-..." whose creating process `pid` no
/// longer exists: what a SIGKILL at the wrong moment can leave behind. (Nothing to do on
/// Windows, where a segment vanishes with its last handle.)
void remove_orphaned_segments(const std::string& prefix) noexcept;

/// Maps the pages of [p, p + bytes), about to be filled, in one call rather than one fault per
/// page, and in large pages where the system offers them. A hint; small ranges are left alone.
void prefault(void* p, std::size_t bytes) noexcept;

/// Asks for [p, p + bytes), an aligned range of fresh memory, to be mapped in large pages when
/// first touched. A hint.
void advise_large_pages(void* p, std::size_t bytes) noexcept;

/// Leaves [p, p + bytes), a range of private memory, out of processes forked from now on: a
/// forked child would share its pages copy-on-write, and every write here would copy one.
void exclude_from_fork(void* p, std::size_t bytes) noexcept;
/// Undoes `exclude_from_fork` for [p, p + bytes), before the memory goes back to the heap.
void include_in_fork(void* p, std::size_t bytes) noexcept;

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
