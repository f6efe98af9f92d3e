#pragma once

#include <mproc/detail/codec.hpp>
#include <mproc/detail/names.hpp>
#include <mproc/detail/task_state.hpp>
#include <mproc/errors.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc {

class process_pool;
template <class T>
class future;

/// Receives the progress of a `map` as `(items done, items in all)`, in the calling thread.
using progress_function = std::function<void(std::size_t done, std::size_t total)>;

/// What a done-callback threw, as the callback error handler receives it.
struct callback_failure {
  std::string_view task;     ///< the name of the task whose callback threw ("" if none)
  std::exception_ptr error;  ///< the exception it threw
};

/// Receives every exception that a done-callback throws; called in the thread that ran the
/// callback, and must not throw.
using callback_error_handler = std::function<void(const callback_failure&)>;

/// Sets the handler of exceptions thrown by done-callbacks and returns the previous one.
///
/// An exception a callback throws never leaves `add_done_callback` nor reaches a pool's
/// thread: it goes to this handler and the other callbacks still run (like Python, which logs
/// it). The default (or an empty `handler`) writes the task's name and the exception's type and
/// message to stderr. Thread-safe.
callback_error_handler set_callback_error_handler(callback_error_handler handler);

/// Which completion `wait` returns on (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`,
/// `ALL_COMPLETED`).
enum class return_when {
  first_completed,  ///< any future completes or is cancelled
  first_exception,  ///< any future fails (cancelled ones do not count); else all complete
  all_completed     ///< every future completes or is cancelled
};

/// What `wait` found: indices into the vector of futures, each in ascending order.
struct wait_result {
  std::vector<std::size_t> done;      ///< complete (a value, an error, or cancelled)
  std::vector<std::size_t> not_done;  ///< still queued or running
};

namespace detail {

/// Throws the `serialization_error` for a result of task `task` that could not be decoded as
/// `type` in this process; `cause` is what the decoder threw.
[[noreturn]] void throw_decode_error(std::string_view task, std::string_view type,
                                     const std::exception_ptr& cause);

/// Decodes `count` values of type `T` from `bytes` (results of task `task`), appending them to
/// `out`; any failure is a `serialization_error`.
template <class T>
void decode_values(const std::vector<char>& bytes, std::size_t count, std::vector<T>& out,
                   std::string_view task = {}) {
  try {
    with_reader<raw_codec<T>>(bytes.data(), bytes.size(), [&](auto& in) {
      for (std::size_t i = 0; i < count; ++i) {
        if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> has no bool& to decode into
          bool value = false;
          get(in, value);
          out.push_back(value);
        } else {
          get(in, out.emplace_back());
        }
      }
    });
  } catch (...) {
    throw_decode_error(task, type_name<T>(), std::current_exception());
  }
}

/// Waits until `when` holds for the complete ones of `states` (null entries are skipped), or
/// until `deadline`; returns which are done.
wait_result wait_states(const std::vector<task_state*>& states, return_when when,
                        std::chrono::steady_clock::time_point deadline);

/// Creates futures from shared states (the pool's side of the future's constructor).
struct future_access {
  /// Returns a future of the task `state`.
  template <class T>
  static future<T> make(std::shared_ptr<task_state> state) {
    return future<T>(std::move(state));
  }
  /// Returns the shared state of `f`.
  template <class T>
  static const std::shared_ptr<task_state>& state(const future<T>& f) {
    return f.state_;
  }
};

}  // namespace detail

/// The result of a task that runs in a worker process, available once the task completes.
///
/// Like `std::future`: `get()` may be called once. Not thread-safe: one thread uses a future.
template <class T>
class future {
 public:
  /// Creates a future with no task (`valid()` is false).
  future() = default;

  /// Waits for the task and returns its result, or throws its error (`remote_error`,
  /// `worker_crashed`, `task_timeout`, `serialization_error`, `cancelled_error`, ...).
  ///
  /// Afterwards `valid()` is false. Throws `std::future_error` if the future is not valid.
  T get() {
    std::shared_ptr<detail::task_state> state = release();
    if constexpr (std::is_void_v<T>) {
      state->take();
    } else {
      if (std::shared_ptr<void> object = state->take_object()) {
        return std::move(*static_cast<T*>(object.get()));  // from a thread pool
      }
      std::vector<T> values;
      values.reserve(1);
      std::vector<char> bytes = state->take();
      detail::decode_values(bytes, 1, values, state->name());
      detail::recycle_buffer(std::move(bytes));
      return std::move(values.front());
    }
  }

  /// Waits at most `timeout` for the task and returns its result or throws its error, like
  /// `get()`; throws `wait_timeout` if the task is not complete by then (the task goes on and
  /// this future stays valid). Python's `result(timeout=...)`.
  template <class Rep, class Period>
  T get_for(const std::chrono::duration<Rep, Period>& timeout) {
    if (wait_for(timeout) != std::future_status::ready) {
      throw wait_timeout(std::chrono::ceil<std::chrono::nanoseconds>(timeout),
                         "task '" + std::string(checked().name()) + "'");
    }
    return get();
  }

  /// Runs `callback` once the task completes: at once, in this thread, if it already has;
  /// otherwise in the pool thread that completes it, so it must be quick and must not wait for
  /// other tasks. Like `concurrent.futures.Future.add_done_callback`. An exception it throws
  /// goes to the callback error handler (see `set_callback_error_handler`); the other callbacks
  /// still run.
  void add_done_callback(std::function<void()> callback) { checked().on_done(std::move(callback)); }

  /// Blocks until the task completes.
  void wait() const { checked().wait(); }

  /// Blocks until the task completes or `timeout` passes; never longer than `timeout`.
  template <class Rep, class Period>
  std::future_status wait_for(const std::chrono::duration<Rep, Period>& timeout) const {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    return checked().wait_until(deadline) ? std::future_status::ready : std::future_status::timeout;
  }

  /// Returns whether the task has completed (with a value, an error, or by cancellation).
  bool ready() const { return checked().ready(); }

  /// Cancels the task if it has not started; true exactly when the task will never run (also
  /// when it was cancelled before), false for a running or finished one.
  bool cancel() { return checked().cancel(); }

  /// Returns whether the task was cancelled.
  bool cancelled() const { return checked().cancelled(); }

  /// Returns whether the task has started (was handed to a worker) and is not complete.
  bool running() const { return checked().running(); }

  /// Waits for the task and returns its error, or null if it succeeded; the result stays for
  /// `get()`. A result that fails to decode in this process shows only in `get()`.
  std::exception_ptr exception() const { return checked().error(); }

  /// Returns whether this future refers to a task (false after `get()` or when moved from).
  bool valid() const noexcept { return state_ != nullptr; }

 private:
  friend struct detail::future_access;
  explicit future(std::shared_ptr<detail::task_state> state) : state_(std::move(state)) {}

  detail::task_state& checked() const {
    if (!state_) throw std::future_error(std::future_errc::no_state);
    return *state_;
  }
  std::shared_ptr<detail::task_state> release() {
    checked();
    return std::exchange(state_, nullptr);
  }

  std::shared_ptr<detail::task_state> state_;
};

namespace detail {

/// Blocks until every chunk completes, calling `progress` in this thread at the start and after
/// each chunk.
void wait_with_progress(const std::vector<std::shared_ptr<task_state>>& chunks,
                        const progress_function& progress);

/// Hands each chunk to `consume` in order; when one throws, cancels the chunks that have not
/// started and rethrows (like Python's map, which cancels the rest on an error).
template <class Consume>
void collect(const std::vector<std::shared_ptr<task_state>>& chunks, Consume consume) {
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    try {
      consume(chunks[i]);
    } catch (...) {
      for (std::size_t j = i + 1; j < chunks.size(); ++j) chunks[j]->cancel();
      throw;
    }
  }
}

/// Waits for every chunk of a `map` (reporting progress if asked) and returns the results in
/// input order; `append(chunk, results)` adds one chunk's results.
template <class Result, class Append>
auto gather(const std::vector<std::shared_ptr<task_state>>& chunks,
            const progress_function* progress, Append append) {
  if (progress != nullptr && *progress) wait_with_progress(chunks, *progress);
  if constexpr (std::is_void_v<Result>) {
    collect(chunks, [](const std::shared_ptr<task_state>& c) { c->take(); });
  } else {
    std::vector<Result> results;
    std::size_t total = 0;
    for (const auto& c : chunks) total += c->count();
    reserve_large(results, total);  // one mapping for all, not a growth per doubling
    collect(chunks, [&](const std::shared_ptr<task_state>& c) { append(c, results); });
    return results;
  }
}

/// Indexes of futures in the order they complete.
class completion_queue {
 public:
  /// Adds the index of a future that completed.
  void push(std::size_t index);
  /// Waits for and removes the oldest index.
  std::size_t pop();
  /// Like pop, but gives up at `deadline` (returning false).
  bool pop_until(std::chrono::steady_clock::time_point deadline, std::size_t& index);

 private:
  mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::size_t> ready_ MPROC_GUARDED_BY(mutex_);
};

}  // namespace detail

/// A range over futures that yields each one as it becomes ready (see `as_completed`).
template <class T>
class completed_range {
 public:
  /// An input iterator that blocks in `operator++` until the next future is ready.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;  ///< an input iterator
    using value_type = future<T>;                       ///< what it yields
    using difference_type = std::ptrdiff_t;             ///< a distance between iterators
    using pointer = future<T>*;                         ///< a pointer to a yielded future
    using reference = future<T>&;                       ///< a yielded future

    /// Creates the end iterator.
    iterator() = default;
    /// Returns the future that became ready.
    future<T>& operator*() const { return (*range_->futures_)[current_]; }
    /// Returns a pointer to the future that became ready.
    future<T>* operator->() const { return &**this; }
    /// Waits for the next future to become ready.
    iterator& operator++() {
      advance();
      return *this;
    }
    /// Waits for the next future to become ready (postfix form; returns nothing useful).
    void operator++(int) { advance(); }
    /// Returns whether both iterators are at the same position.
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.range_ == b.range_ && (a.range_ == nullptr || a.seen_ == b.seen_);
    }

   private:
    friend class completed_range;
    explicit iterator(completed_range* range) : range_(range) { advance(); }
    void advance() {
      if (seen_ == range_->expected_) {
        range_ = nullptr;
        return;
      }
      if (range_->deadline_ == std::chrono::steady_clock::time_point::max()) {
        current_ = range_->queue_->pop();
      } else if (!range_->queue_->pop_until(range_->deadline_, current_)) {
        throw wait_timeout(range_->timeout_, std::to_string(range_->expected_ - seen_) + " of " +
                                                 std::to_string(range_->expected_) + " futures");
      }
      ++seen_;
    }
    completed_range* range_ = nullptr;
    std::size_t current_ = 0;
    std::size_t seen_ = 0;
  };

  /// Watches every valid future in `futures`; the vector must outlive the range. Past
  /// `timeout` from now (none: `nanoseconds::max()`), waiting for the next one throws
  /// `wait_timeout`.
  explicit completed_range(std::vector<future<T>>& futures,
                           std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max())
      : futures_(&futures),
        queue_(std::make_shared<detail::completion_queue>()),
        timeout_(timeout) {
    if (timeout != std::chrono::nanoseconds::max()) {
      deadline_ = std::chrono::steady_clock::now() +
                  std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    }
    for (std::size_t i = 0; i < futures.size(); ++i) {
      const auto& state = detail::future_access::state(futures[i]);
      if (!state) continue;
      ++expected_;
      state->on_done([queue = queue_, i] { queue->push(i); });
    }
  }
  /// Starts waiting for the first ready future.
  iterator begin() { return iterator(this); }
  /// Returns the end of the range.
  iterator end() { return iterator(); }

 private:
  std::vector<future<T>>* futures_;
  std::shared_ptr<detail::completion_queue> queue_;
  std::size_t expected_ = 0;
  std::chrono::nanoseconds timeout_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

/// Returns a range that yields each valid future of `futures` once, in the order they complete.
template <class T>
completed_range<T> as_completed(std::vector<future<T>>& futures) {
  return completed_range<T>(futures);
}

/// Like `as_completed(futures)`, but waiting for the next future past `timeout` from this call
/// throws `wait_timeout` (the futures not yielded stay valid and their tasks go on).
template <class T, class Rep, class Period>
completed_range<T> as_completed(std::vector<future<T>>& futures,
                                std::chrono::duration<Rep, Period> timeout) {
  return completed_range<T>(futures, std::chrono::ceil<std::chrono::nanoseconds>(timeout));
}

namespace detail {
template <class T>
std::vector<task_state*> states_of(std::vector<future<T>>& futures) {
  std::vector<task_state*> states;
  states.reserve(futures.size());
  for (auto& f : futures) states.push_back(future_access::state(f).get());
  return states;
}
}  // namespace detail

/// Blocks until `when` holds for `futures` and returns which are done and which are not, like
/// Python's `concurrent.futures.wait`. Futures that are not valid are in neither list.
template <class T>
wait_result wait(std::vector<future<T>>& futures, return_when when = return_when::all_completed) {
  return detail::wait_states(detail::states_of(futures), when,
                             std::chrono::steady_clock::time_point::max());
}

/// Like `wait`, but returns after `timeout` at the latest, with what is done by then.
template <class T, class Rep, class Period>
wait_result wait_for(std::vector<future<T>>& futures, std::chrono::duration<Rep, Period> timeout,
                     return_when when = return_when::all_completed) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
  return detail::wait_states(detail::states_of(futures), when, deadline);
}

}  // namespace mproc
