#pragma once
// A zygote: a small single-threaded process that forks workers on request. The fork method
// forks one from the application while the application is still single-threaded; the
// forkserver method spawns one. Either way every worker is forked from a process with one
// thread and no locks held, however many threads the application has grown since.

#include "platform/process.hpp"

#include <map>
#include <mutex>
#include <string>

namespace mproc::launch {

/// The application's end of a zygote: asks it for workers and learns how they ended.
///
/// Thread-safe. Workers are the zygote's children: it reaps them and reports their status.
class zygote {
 public:
  /// Forks a zygote from this process (which should have one thread).
  static std::unique_ptr<zygote> fork_from_here();
  /// Spawns a zygote by running this executable again (`mproc::init` serves it).
  static std::unique_ptr<zygote> spawn();

  ~zygote();
  zygote(const zygote&) = delete;
  zygote& operator=(const zygote&) = delete;

  /// Forks a worker that attaches to the segment `name` and proves itself with `secret`;
  /// returns its pid, or -1 if the zygote is gone.
  int launch(const std::string& name, const std::string& secret);
  /// Waits for the zygote's report on the ended worker `pid`.
  platform::exit_status reap(int pid);
  /// Kills and reaps the zygote process (its workers keep running).
  void end() noexcept;

 private:
  zygote() = default;

  int pid_ = -1;
  int lifeline_ = -1;  // write end; the zygote and its workers exit when it closes
  int requests_ = -1;  // write end
  int replies_ = -1;   // read end: one pid per request
  int statuses_ = -1;  // read end: (pid, wait status) records
  bool dead_ = false;  // guarded by mutex_
  std::map<int, platform::exit_status> reported_;  // guarded by mutex_
  mutable std::mutex mutex_;
};

/// Runs the zygote loop on inherited descriptors, then exits (the zygote's side).
[[noreturn]] void serve_zygote(int lifeline, int requests, int replies, int statuses);

}  // namespace mproc::launch
