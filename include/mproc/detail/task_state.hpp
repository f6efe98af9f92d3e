#pragma once
// The state a future shares with the pool: untyped result bytes or an error.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include <mproc/detail/thread_safety.hpp>

namespace mproc::detail {

struct block_result;

/// Hands what a done-callback of task `task` threw to the callback error handler.
void report_callback_failure(std::string_view task, std::exception_ptr error) noexcept;

/// The shared state of one submitted task (or one chunk of a `map`).
///
/// Thread-safe. The pool completes it once; futures wait on it and take the result.
class task_state {
 public:
  /// How a waiting thread reaches a task that was sent straight to an idle worker: it may
  /// collect the result itself instead of waiting for the pool's thread to do it.
  class route {
   public:
    /// Receives the task's result in the calling thread and completes the task.
    virtual void collect(task_state& task) = 0;
    /// Leaves the task to the pool's thread, which collects it.
    virtual void release(task_state& task) = 0;

   protected:
    ~route() = default;
  };

  /// Creates the state of a task named `name` (static storage) that is waiting to run `count`
  /// calls; with `block`, a result that arrives as one block may be read straight into a result
  /// object (`set_object`).
  explicit task_state(std::uint32_t count, std::string_view name = {},
                      const block_result* block = nullptr) noexcept
      : count_(count), name_(name), block_(block) {}

  /// Marks the task as started; false if it was cancelled first.
  bool try_start();
  /// Cancels the task if it has not started; true if it is cancelled (by this call or before).
  bool cancel();
  /// Returns whether the task was cancelled.
  bool cancelled() const;
  /// Returns whether the task has started and is not complete.
  bool running() const;
  /// Completes the task with its encoded results.
  void set_value(std::vector<char> bytes);
  /// Completes the task with an error.
  void set_error(std::exception_ptr error);
  /// Completes the task with its result as an object: a thread pool's, or one read straight
  /// into (see `block`).
  void set_object(std::shared_ptr<void> object);

  /// Returns whether the task is complete (value, error or cancelled).
  bool ready() const;
  /// Blocks until the task is complete.
  void wait() const;
  /// Blocks until the task is complete or `deadline` passes; true if complete.
  bool wait_until(std::chrono::steady_clock::time_point deadline) const;
  /// Waits, then returns the encoded results or rethrows the error.
  std::vector<char> take();
  /// Waits, then returns the result object (null if the result is encoded) or rethrows the error.
  std::shared_ptr<void> take_object();
  /// Waits, then returns the task's error (null if it succeeded), leaving the result in place.
  std::exception_ptr error() const;
  /// Returns the task's name ("" when it has none).
  std::string_view name() const noexcept { return name_; }
  /// Records how long the task ran (set by the pool before it completes the task).
  void set_ran(std::chrono::nanoseconds ran) noexcept {
    ran_.store(ran.count(), std::memory_order_relaxed);
  }
  /// Returns how long the task ran, once complete (0 if not recorded).
  std::chrono::nanoseconds ran() const noexcept {
    return std::chrono::nanoseconds(ran_.load(std::memory_order_relaxed));
  }
  /// Returns how its result may be read straight into a result object, or null.
  const block_result* block() const noexcept { return block_; }
  /// Returns how many calls the task holds.
  std::uint32_t count() const noexcept { return count_; }
  /// Runs `callback` once the task completes (at once, in this thread, if it already has). An
  /// exception it throws goes to the callback error handler; later callbacks still run.
  void on_done(std::function<void()> callback);

  /// Marks the task as being sent straight to a worker through `r`; waiters cannot claim it yet.
  void begin_route(route* r) noexcept;
  /// Marks the task as sent: the first to `claim_route` collects it.
  void end_route_send() noexcept;
  /// Takes the right to collect a task sent straight to a worker; true for at most one caller.
  bool claim_route() const noexcept;

 private:
  enum class status : std::uint8_t { pending, running, done };
  std::vector<std::function<void()>> complete() MPROC_REQUIRES(mutex_);
  void announce(std::vector<std::function<void()>>& callbacks) const MPROC_EXCLUDES(mutex_);
  void await_done(unique_lock& lock) const MPROC_REQUIRES(mutex_);
  void release_route() const;

  // A task sent straight to a worker: none -> sending -> sent -> claimed.
  enum class route_step : std::uint8_t { none, sending, sent, claimed };

  void run_callback(std::function<void()>& callback) const noexcept;

  const std::uint32_t count_;
  const std::string_view name_;
  const block_result* const block_;
  std::atomic<std::int64_t> ran_{0};  // nanoseconds
  mutable mutex mutex_;
  mutable std::condition_variable done_cv_;
  status status_ MPROC_GUARDED_BY(mutex_) = status::pending;
  bool cancelled_ MPROC_GUARDED_BY(mutex_) = false;
  std::atomic<bool> done_{false};  // status_ == done, readable without mutex_
  std::vector<char> value_ MPROC_GUARDED_BY(mutex_);
  std::shared_ptr<void> object_ MPROC_GUARDED_BY(mutex_);
  std::exception_ptr error_ MPROC_GUARDED_BY(mutex_);
  std::vector<std::function<void()>> callbacks_ MPROC_GUARDED_BY(mutex_);
  mutable std::atomic<route_step> route_step_{route_step::none};
  route* route_ = nullptr;  // set before route_step_ leaves none
};

}  // namespace mproc::detail
