#pragma once
// A zygote: a small single-threaded process that forks workers on request. The fork method
// forks one from the application while the application is still single-threaded; the
// forkserver method spawns one. Either way every worker is forked from a process with one
// thread and no locks held, however many threads the application has grown since.
//
// The application never blocks on a zygote without a deadline: a zygote stopped by a signal or
// a debugger is taken for dead once it misses one, killed, and replaced.

#include "launch/launcher.hpp"
#include "platform/process.hpp"

#include <mproc/detail/thread_safety.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

namespace mproc::launch {

/// The application's end of a zygote: asks it for workers and learns how they ended.
///
/// Thread-safe. Workers are the zygote's children: it reaps them and reports their status.
class zygote {
 public:
  /// Forks a zygote from this process (which should have one thread). Throws `start_error`.
  static std::shared_ptr<zygote> fork_from_here();
  /// Spawns a zygote by running this executable again (`mproc::init` serves it). Throws
  /// `start_error`.
  static std::shared_ptr<zygote> spawn();

  ~zygote();
  zygote(const zygote&) = delete;
  zygote& operator=(const zygote&) = delete;

  /// What a request for a worker brought.
  struct launched {
    int pid = -1;              ///< the new worker, or -1
    std::error_code error;     ///< why the zygote's fork failed (after its retries)
    std::string unresponsive;  ///< why the zygote itself failed ("did not answer ..."), or empty
  };
  /// Asks for a worker that attaches to the segment `name`, or to the one behind `descriptor`
  /// (sent along) when that is not -1, and proves itself with `secret`; waits a few seconds at
  /// most for the answer.
  launched launch(const std::string& name, int descriptor, const std::string& secret);
  /// Calls `on_exit` once the zygote reports that `pid` ended, or once the zygote is gone.
  void on_report(int pid, std::function<void()> on_exit);
  /// Reads one report from the zygote (when it has one to read); false once the zygote is gone.
  bool read_report();
  /// Returns the descriptor that becomes readable when the zygote has a report.
  int report_descriptor() const noexcept { return statuses_; }
  /// Waits until `deadline` at most for the zygote's report on the ended worker `pid`. A zygote
  /// that misses the deadline is taken for dead (and killed): its later reports are unknown.
  platform::exit_status reap(int pid, clock::time_point deadline);
  /// Returns whether the zygote is gone (or was taken for dead).
  bool dead() const;
  /// Returns the zygote's pid.
  int pid() const noexcept { return pid_; }
  /// Kills and reaps the zygote process (its workers keep running until their lifeline ends).
  void end() noexcept;

 private:
  zygote() = default;
  void mark_dead() noexcept MPROC_REQUIRES(report_mutex_);

  int pid_ = -1;
  int lifeline_ = -1;            // write end; the zygote and its workers exit when it closes
  int requests_ = -1;            // write end (a socket: descriptors go with requests)
  int replies_ = -1;             // read end: one pid (or -errno) per request
  int statuses_ = -1;            // read end: (pid, wait status) records
  detail::mutex request_mutex_;  // one request at a time
  mutable detail::mutex report_mutex_;
  std::condition_variable reported_cv_;  // notified with report_mutex_
  bool dead_ MPROC_GUARDED_BY(report_mutex_) = false;
  bool ended_ MPROC_GUARDED_BY(report_mutex_) = false;
  std::map<int, platform::exit_status> reported_ MPROC_GUARDED_BY(report_mutex_);
  std::map<int, std::function<void()>> listeners_ MPROC_GUARDED_BY(report_mutex_);
};

/// Runs the zygote loop on inherited descriptors, then exits (the zygote's side).
[[noreturn]] void serve_zygote(int lifeline, int requests, int replies, int statuses);

}  // namespace mproc::launch
