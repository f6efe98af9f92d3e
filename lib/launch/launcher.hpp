#pragma once
// Starting worker processes: one implementation per start method, chosen at run time.

#include "channel/channel.hpp"
#include "platform/process.hpp"

#include <mproc/start_method.hpp>

#include <memory>
#include <string>

namespace mproc::launch {

/// Starts worker processes attached to segments.
class launcher {
 public:
  virtual ~launcher() = default;
  /// Returns the start method this launcher implements.
  virtual start_method method() const noexcept = 0;
  /// A started worker.
  struct started {
    int pid = -1;
    int lifeline = -1;  ///< write end of the worker's own lifeline, owned by the caller; or -1
  };
  /// Starts one worker that will serve `seg` and send `secret` back; throws `start_error`.
  virtual started launch(const std::shared_ptr<channel::segment>& seg,
                         const std::string& secret) = 0;
  /// Waits for the ended (or killed) worker `pid` and returns how it ended.
  virtual platform::exit_status reap(int pid) = 0;
  /// Releases helper processes once every worker is reaped (the pool is shutting down).
  virtual void stop() noexcept {}
};

/// Turns `automatic` into a concrete method (environment, platform, thread count).
start_method resolve(start_method requested);

/// Returns a launcher for `method` (already resolved). Throws `start_error` if it is unusable,
/// for example fork in a process with threads unless `allow_fork_with_threads`.
std::unique_ptr<launcher> make_launcher(start_method method, bool allow_fork_with_threads);

/// Returns a fork launcher (POSIX, fork.posix.cpp).
std::unique_ptr<launcher> make_fork_launcher();
/// Returns a forkserver launcher (POSIX, fork.posix.cpp).
std::unique_ptr<launcher> make_forkserver_launcher();
/// Returns a spawn launcher (spawn.posix.cpp, spawn.windows.cpp).
std::unique_ptr<launcher> make_spawn_launcher();

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
