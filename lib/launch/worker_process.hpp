#pragma once
// The owner of one worker process: its segment, its process (handle, pid, lifeline) and the
// secret it proves itself with. Nothing else holds any of them, and one idempotent `end()`
// releases them all, in the one order that cannot hang: cut the lifeline, kill, reap.

#include "channel/channel.hpp"
#include "launch/launcher.hpp"
#include "platform/process.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/initializer.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mproc::launch {

/// Turns a failure message from a worker into the exception its task's future rethrows.
std::exception_ptr failure_to_exception(const channel::message_header& h,
                                        const std::vector<char>& payload);

/// One worker process, from its start to its reaping.
///
/// One thread (the worker's driver) calls the methods that talk to the worker; `kill`,
/// `terminate` and `gone` may be called from any thread.
class worker_process {
 public:
  /// Where the worker is in its life. It only moves forward, and `end` may come from any phase.
  enum class phase {
    started,  ///< the process runs; its first message is awaited
    greeted,  ///< it proved itself and runs the same tasks as the application
    ready,    ///< its initializer (if any) succeeded: it takes tasks
    exiting,  ///< it was asked to exit
    ended,    ///< killed if needed, and reaped
  };

  /// Takes over the worker `s` that `owner` started on `seg` with `secret`; `gone` is set once
  /// its process has ended.
  worker_process(launcher& owner, std::shared_ptr<channel::segment> seg, std::string secret,
                 launcher::started s, std::shared_ptr<std::atomic<bool>> gone);
  /// Ends the worker (see `end`).
  ~worker_process();
  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  /// Returns the worker's process id.
  int pid() const noexcept { return pid_; }
  /// Returns whether the worker's process has ended.
  bool gone() const noexcept { return gone_->load(); }
  /// Returns the application's side of the worker's channel.
  channel::endpoint endpoint() const { return seg_->parent_endpoint(); }

  /// Waits `limit` at most for the worker's first message and checks it (its secret, its set
  /// of tasks). Throws `start_error` saying what went wrong, after ending the worker.
  void handshake(std::chrono::milliseconds limit);
  /// Sends `init` to the worker to run (nothing if it is empty): workers initialise at once.
  void send_initializer(const bound_task& init);
  /// Waits until `deadline` for the initializer sent to succeed. Throws `start_error` carrying
  /// its failure, after ending the worker.
  void await_initializer(const bound_task& init, clock::time_point deadline);
  /// Asks the worker to exit and waits up to `grace` for it to do so; ends it either way.
  platform::exit_status request_exit(std::chrono::nanoseconds grace) noexcept;
  /// Kills the worker's process now (it is reaped by `end`).
  void kill() noexcept;
  /// Asks the worker's process to terminate (SIGTERM; Windows: kills it).
  void terminate() noexcept;
  /// Cuts the lifeline, kills the process if it still runs, and reaps it within a bound;
  /// returns how it ended. Idempotent: later calls return the same status.
  platform::exit_status end() noexcept;

 private:
  void advance(phase from, phase to) noexcept;
  [[noreturn]] void fail_start(const std::string& what, bool ended_by_itself);

  launcher& owner_;
  std::shared_ptr<channel::segment> seg_;
  std::string secret_;
  int pid_;
  std::atomic<phase> phase_{phase::started};
  std::shared_ptr<std::atomic<bool>> gone_;

  detail::mutex mutex_;                       // serialises kills with the end of the process
  int handle_ MPROC_GUARDED_BY(mutex_) = -1;  // names the process for kills (a pidfd), or -1
  int lifeline_ MPROC_GUARDED_BY(mutex_) = -1;
  bool ending_ MPROC_GUARDED_BY(mutex_) = false;  // end() has taken the process over
  platform::exit_status status_ MPROC_GUARDED_BY(mutex_);
};

}  // namespace mproc::launch
