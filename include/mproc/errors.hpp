#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace mproc {

/// Base of every error that mproc reports.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A task threw an exception in its worker; carries the exception's type name and message.
class remote_error : public error {
 public:
  /// Creates the error for a remote exception of type `type` whose `what()` was `message`.
  remote_error(std::string type, std::string message);
  /// Returns the demangled type name of the exception thrown in the worker.
  const std::string& type() const noexcept { return type_; }
  /// Returns the remote exception's `what()`.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string type_;
  std::string message_;
};

/// The worker died while it ran this task; carries its pid and how it ended.
class worker_crashed : public error {
 public:
  /// Creates the error for task `task` whose worker `pid` exited with `exit_code` or died of
  /// `signal`.
  worker_crashed(int pid, std::optional<int> exit_code, std::optional<int> signal,
                 const std::string& task);
  /// Returns the process id of the worker that died.
  int pid() const noexcept { return pid_; }
  /// Returns the worker's exit code if it exited (on Windows: the NTSTATUS or exit code).
  std::optional<int> exit_code() const noexcept { return exit_code_; }
  /// Returns the signal that killed the worker, if a signal did (POSIX).
  std::optional<int> signal() const noexcept { return signal_; }

 private:
  int pid_;
  std::optional<int> exit_code_;
  std::optional<int> signal_;
};

/// The task ran longer than `pool_options::task_timeout`; its worker was killed and replaced.
class task_timeout : public error {
 public:
  /// Creates the error for task `task` that exceeded `limit`.
  task_timeout(std::chrono::milliseconds limit, const std::string& task);
  /// Returns the time limit the task exceeded.
  std::chrono::milliseconds limit() const noexcept { return limit_; }

 private:
  std::chrono::milliseconds limit_;
};

/// Data could not be encoded or decoded at run time (corrupt, truncated or mismatched archive).
class serialization_error : public error {
 public:
  using error::error;
};

/// A worker could not be started; the message gives the reason and the fix.
class start_error : public error {
 public:
  using error::error;
};

/// A task was submitted to a pool that is shut down.
class pool_closed : public error {
 public:
  /// Creates the error with its standard message.
  pool_closed();
};

/// A caller's wait ran out before the task completed; the task goes on and its future stays valid.
class wait_timeout : public error {
 public:
  /// Creates the error for a wait of `waited` on `what` (a task's name, or "futures").
  wait_timeout(std::chrono::nanoseconds waited, const std::string& what);
  /// Returns how long the caller waited.
  std::chrono::nanoseconds waited() const noexcept { return waited_; }

 private:
  std::chrono::nanoseconds waited_;
};

/// `get()` was called on the future of a cancelled task.
class cancelled_error : public error {
 public:
  /// Creates the error with its standard message.
  cancelled_error();
};

}  // namespace mproc
