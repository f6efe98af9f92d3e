#pragma once
// Helpers shared by the test suites: what a process leaves behind, the start methods to run, and
// the few operating-system services a test needs (support.posix.cpp, support.windows.cpp).

#include <mproc/mproc.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace mproc {
/// Prints a start method by its name (Boost.Test shows it in a data-driven test's name).
inline std::ostream& operator<<(std::ostream& os, start_method m) { return os << to_string(m); }
}  // namespace mproc

namespace mproc_test {

/// Returns the id of the calling process.
int current_pid();

/// Sets the environment variable `name` to `value` for this process and its children.
void set_env(const char* name, const char* value);

/// Removes the environment variable `name`.
void unset_env(const char* name);

/// A point where a task waits until the test lets it through: the test knows when the task has
/// arrived, and decides when it passes and with which byte.
class gate {
 public:
  gate();
  ~gate();
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;

  /// Returns what a task passes to `pass_gate` to wait at this gate.
  const std::string& token() const noexcept { return token_; }
  /// Blocks until a task waits at the gate (at most a minute, then the test fails).
  void wait_until_entered();
  /// Lets the waiting task through; it returns `c`.
  void release(char c = 'x');

 private:
  std::string token_;
  std::string dir_;
  std::intptr_t entered_ = -1;  // the writer's end (POSIX) or an event (Windows)
  std::intptr_t open_ = -1;     // an event (Windows)
};

/// In a task: waits at the gate named by `token` until the test releases it; returns the byte
/// the test gave.
int pass_gate(const std::string& token);

/// Blocks the calling task for good (until its process is killed).
[[noreturn]] void hang_forever();

/// Makes the calling process fail with a real memory access fault (SIGSEGV, or an access
/// violation on Windows).
[[noreturn]] void crash_with_access_fault();

/// Ends the calling process at once, as an outside kill would (SIGKILL, or TerminateProcess).
[[noreturn]] void kill_self();

/// Ends the process `pid` at once (SIGKILL, or TerminateProcess); true if it was signalled.
bool kill_process(int pid);

/// Returns whether the process `pid` still exists (until its parent has reaped it).
bool process_exists(int pid);

/// How `worker_crashed` reports a worker that died as `crash_with_access_fault`, `std::abort`
/// or `kill_self` makes it: a signal on POSIX, an exit code on Windows.
struct crash_report {
  std::optional<int> signal;
  std::optional<int> exit_code;
  std::string name;  ///< what `what()` says of it: "SIGSEGV", "access violation", ...
};
/// The report of a memory access fault.
crash_report access_fault_report();
/// The report of `std::abort()` (SIGABRT; exit code 3 from the Windows C runtime).
crash_report abort_report();
/// The report of `kill_self()`.
crash_report kill_report();

/// Returns whether `e` reports the death `r`.
bool reports(const mproc::worker_crashed& e, const crash_report& r);
/// Checks that `e` reports the death `r`, its code and its name.
void check_report(const mproc::worker_crashed& e, const crash_report& r);

/// Sends what this process writes to stderr to a temporary file while it lives.
class captured_stderr {
 public:
  captured_stderr();
  ~captured_stderr();
  captured_stderr(const captured_stderr&) = delete;
  captured_stderr& operator=(const captured_stderr&) = delete;
  /// Returns what was written to stderr so far.
  std::string text();

 private:
  std::string path_;
  int saved_ = -1;  // the original stderr
};

/// Starts a new measurement of this process's peak resident memory, where the system allows it
/// (Linux); elsewhere the peak counts from the start of the process.
void reset_peak_memory();

/// Returns the most memory this process has held resident since `reset_peak_memory`, in bytes.
std::size_t peak_memory();

/// POSIX: returns a pidfd for the process `pid` (Linux), or -1.
int open_pidfd(int pid);

/// POSIX: waits until the process behind `pidfd` has ended, `timeout` at most; true if it has.
bool ended_within(int pidfd, std::chrono::milliseconds timeout);

/// POSIX, in a freshly forked child: replaces it with `program` run with `args`; exits with 127
/// if it cannot.
[[noreturn]] void exec_program(const std::string& program, const std::vector<std::string>& args);

/// Returns every process of the machine as (pid, parent pid).
std::vector<std::pair<int, int>> all_processes();

/// Returns the pids of every descendant of this process (zombies included).
std::vector<int> child_pids();

/// Returns the pids of every descendant of the process `root` (zombies included).
std::vector<int> descendants_of(int root);

/// Returns the pids of the processes whose parent is this process.
std::vector<int> direct_children();

/// Returns the shared-memory segments (and on Windows the named events) that the process `pid`
/// created and that still exist.
std::vector<std::string> segments_of(int pid);

/// Returns how many descriptors (Windows: handles) this process has open.
std::size_t open_descriptor_count();

/// Returns the shared-memory segments this process created that still exist.
std::vector<std::string> leftover_segments();

#if defined(__SANITIZE_THREAD__)
/// ThreadSanitizer starts a thread of its own and cannot follow a fork of a multi-threaded
/// process, so the fork method is not checked under it.
inline constexpr bool under_tsan = true;
#else
/// Whether this test runs under ThreadSanitizer.
inline constexpr bool under_tsan = false;
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/// Whether operator new is a sanitizer's, which ends the process instead of throwing bad_alloc.
inline constexpr bool sanitized_allocator = true;
#else
/// Whether operator new is a sanitizer's, which ends the process instead of throwing bad_alloc.
inline constexpr bool sanitized_allocator = false;
#endif

/// Returns the start methods the tests run under: every available one (not fork under TSan).
std::vector<mproc::start_method> methods_under_test();

#if defined(_WIN32)
/// Whether the tests run on Windows, where some behaviours do not exist (fork, signals).
inline constexpr bool on_windows = true;
#else
/// Whether the tests run on Windows, where some behaviours do not exist (fork, signals).
inline constexpr bool on_windows = false;
#endif

/// A Boost.Test precondition: false on Windows, where the test is skipped with `reason`.
struct posix_only {
  const char* reason;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(!on_windows);
    r.message() << "POSIX only: " << reason;
    return r;
  }
};

/// A Boost.Test precondition: false (the test is skipped) under ThreadSanitizer.
struct not_under_tsan {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(!under_tsan);
    r.message() << "the fork method cannot be checked under ThreadSanitizer";
    return r;
  }
};

/// Returns a pool_options with `workers` workers and start method `method`.
mproc::pool_options options(mproc::start_method method, std::size_t workers = 2);

/// Returns a process_options with start method `method`.
mproc::process_options started_by(mproc::start_method method);

/// Checks at the end of each test that no child process and no segment is left.
struct clean_check {
  clean_check();
  ~clean_check();
};

}  // namespace mproc_test
