#pragma once
// Starting worker processes: one implementation per start method, chosen at run time.

#include "channel/channel.hpp"

#include <mproc/start_method.hpp>

#include <memory>

namespace mproc::launch {

/// Starts worker processes attached to segments.
class launcher {
 public:
  virtual ~launcher() = default;
  /// Returns the start method this launcher implements.
  virtual start_method method() const noexcept = 0;
  /// Starts one worker that will serve `seg`; returns its pid. Throws `start_error`.
  ///
  /// `lifeline` is the read end of the worker's lifeline pipe (see `worker::serve`); the worker
  /// gets it at the same number or under the number in its command line.
  virtual int launch(const std::shared_ptr<channel::segment>& seg, int lifeline) = 0;
};

/// Turns `automatic` into a concrete method (environment, platform, thread count).
start_method resolve(start_method requested);

/// Returns a launcher for `method` (already resolved). Throws `start_error` if it is unusable.
std::unique_ptr<launcher> make_launcher(start_method method);

/// Returns a fork launcher (POSIX); declared here, defined in fork.posix.cpp.
std::unique_ptr<launcher> make_fork_launcher();
/// Returns a spawn launcher; defined in spawn.cpp.
std::unique_ptr<launcher> make_spawn_launcher();

/// The argument prefix that tells `mproc::init` to serve a segment.
inline constexpr const char* worker_argument = "--mproc-worker=";

/// Returns whether this process was spawned as a worker but never entered the worker loop
/// (its `main` did not call `mproc::init` first).
bool unclaimed_spawned_worker();

}  // namespace mproc::launch
