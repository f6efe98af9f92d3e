#pragma once
// The worker processes this process spawns and owns, as Boost.Process v2 objects: started
// through a v2 launcher (posix_spawn on POSIX, windows::default_launcher on Windows), their
// exits learnt through async_wait on the exit watcher's thread, which also reaps them.

#include "launch/exit_watcher.hpp"
#include "launch/launcher.hpp"
#include "platform/process.hpp"

#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace mproc::launch {

/// Spawned child processes, each owned from its start to its reaping.
///
/// Thread-safe.
class children {
 public:
  /// Owns children whose exits `watcher` learns.
  explicit children(exit_watcher& watcher);
  /// Kills and reaps the children still owned.
  ~children();
  children(const children&) = delete;
  children& operator=(const children&) = delete;

  /// Starts `exe`, named `name` (its argv[0] where the system lets it differ), with `args`
  /// after that and the current environment; the child gets each `(fd, target)` of `inherit`
  /// as `platform::spawn_process` gives it. Retries while the system is short of processes;
  /// returns the error, sets `pid` and `tries`.
  std::error_code start(const std::string& exe, const std::string& name,
                        const std::vector<std::string>& args,
                        const std::vector<std::pair<int, int>>& inherit, int& pid, int& tries);
  /// Calls `on_exit` once on the watcher's thread when `pid` has ended (it is reaped then).
  /// Fails where the system cannot name the child for good (Linux: no pidfd).
  std::error_code watch(int pid, std::function<void()> on_exit);
  /// Returns a handle that names the child `pid` for good (for `platform::kill_handle`), or -1.
  int open_handle(int pid) noexcept;
  /// Waits until `deadline` at most for the ended (or killed) child `pid` to be reaped and
  /// returns how it ended (unknown if the deadline passed); forgets it.
  platform::exit_status reap(int pid, clock::time_point deadline);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mproc::launch
