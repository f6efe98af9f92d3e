#pragma once
// Starting worker processes: one implementation per start method, chosen at run time. A
// launcher creates each worker's owner (`worker_process`) and learns how its workers end.

#include "channel/channel.hpp"
#include "launch/exit_watcher.hpp"
#include "platform/process.hpp"

#include <mproc/start_method.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

namespace mproc::launch {

class worker_process;

/// The clock of every deadline in the launch layer.
using clock = std::chrono::steady_clock;

/// Starts worker processes attached to segments, watches them, and learns how they ended.
///
/// Thread-safe.
class launcher {
 public:
  virtual ~launcher();
  launcher() = default;
  launcher(const launcher&) = delete;
  launcher& operator=(const launcher&) = delete;

  /// Returns the start method this launcher implements.
  virtual start_method method() const noexcept = 0;

  /// Starts the thread that learns of workers' exits. Throws `start_error`.
  void start_watching();
  /// Starts one worker; `on_exit` runs once on the watching thread when its process has ended.
  /// Throws `start_error`, leaving no process, descriptor or segment behind.
  std::unique_ptr<worker_process> start_worker(std::function<void()> on_exit);
  /// Stops watching and releases helper processes; every worker must have ended.
  void stop() noexcept;

  /// What `launch` started.
  struct started {
    int pid = -1;
    int lifeline = -1;  ///< write end of the worker's own lifeline, owned by the caller; or -1
  };
  /// Waits until `deadline` at most for the ended (or killed) worker `pid`, reaps it and
  /// returns how it ended (unknown if the deadline passed).
  virtual platform::exit_status reap(int pid, clock::time_point deadline) = 0;

  // What `worker_process` does to the process it owns. A launcher can put something else than
  // an operating-system process behind a worker (the engine's tests put a thread) by replacing
  // these with `launch`, `watch` and `reap`.

  /// Returns a handle that names the worker `pid` for good, or -1 (then its pid names it).
  virtual int open_handle(int pid) noexcept;
  /// Kills the worker `pid` now (`terminate`: asks it to end); `gone` says it has ended.
  virtual void signal(int pid, int handle, bool terminate, bool gone) noexcept;
  /// Releases the handle from `open_handle` and the worker's lifeline (either may be -1).
  virtual void release(int handle, int lifeline) noexcept;

 protected:
  /// Thrown by `launch` when its request may have reached a helper that will not answer (a
  /// stopped zygote may still fork a worker for `seg`): `start_worker` tries once more with a
  /// new segment and secret.
  struct try_again {};
  /// Starts one worker that will serve `seg` and send `secret` back; throws `start_error`.
  virtual started launch(const channel::segment& seg, const std::string& secret) = 0;
  /// Arranges for `on_exit` to run once when the worker `s` ends (default: the process's
  /// handle; a launcher may know a fallback).
  virtual std::error_code watch(const started& s, std::function<void()> on_exit);
  /// Releases helper processes at `stop`.
  virtual void release_helpers() noexcept {}

  exit_watcher watcher_;  ///< learns of exits on a thread of its own
};

/// Turns `automatic` into a concrete method (environment, platform, thread count).
start_method resolve(start_method requested);

/// Throws `start_error` if nothing can be started with `method` (already resolved) from here:
/// inside a spawned worker whose `main` did not call `mproc::init` first, or with spawn or
/// forkserver without `mproc::init`. `what` names what was to start ("a pool").
void check_startable(start_method method, const std::string& what);

/// Returns a launcher for `method` (already resolved), after removing the segments that
/// crashed applications left behind. Throws `start_error` if it is unusable, for example fork
/// in a process with threads unless `allow_fork_with_threads`.
std::unique_ptr<launcher> make_launcher(start_method method, bool allow_fork_with_threads);

/// Returns a fork launcher (POSIX, fork.posix.cpp).
std::unique_ptr<launcher> make_fork_launcher();
/// Returns a forkserver launcher (POSIX, fork.posix.cpp).
std::unique_ptr<launcher> make_forkserver_launcher();
/// Returns a spawn launcher (spawn.posix.cpp, spawn.windows.cpp).
std::unique_ptr<launcher> make_spawn_launcher();

/// Makes every pool started from now on take its launcher from `factory` (a test double);
/// an empty function restores the real ones.
void replace_launchers_for_tests(std::function<std::unique_ptr<launcher>(start_method)> factory);

/// Starts `body` on a new thread of mproc's own that does `role` ("drives a worker"). Throws
/// `start_error` naming the role and why the system refused.
std::thread start_thread(std::function<void()> body, const std::string& role);

/// The argument prefix that tells `mproc::init` to serve a segment.
inline constexpr const char* worker_argument = "--mproc-worker=";
/// The argument prefix that tells `mproc::init` to be a zygote (a forkserver).
inline constexpr const char* zygote_argument = "--mproc-forkserver=";

/// Serves a spawned zygote described by `token` ("<lifeline>,<requests>,<replies>,<statuses>"),
/// then exits. POSIX only: on Windows it reports that there is no forkserver and exits.
[[noreturn]] void serve_spawned_zygote(const std::string& token);

/// Returns whether this process was spawned as a worker but never entered the worker loop
/// (its `main` did not call `mproc::init` first).
bool unclaimed_spawned_worker();

}  // namespace mproc::launch
