#pragma once

#include <mproc/detail/task.hpp>
#include <mproc/errors.hpp>
#include <mproc/future.hpp>
#include <mproc/initializer.hpp>
#include <mproc/start_method.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc {

/// Settings of a `process_pool`; every field has a usable default.
struct pool_options {
  /// Number of worker processes; 0 means `std::thread::hardware_concurrency()`.
  std::size_t workers = 0;
  /// How workers are started; `automatic` lets `MPROC_START_METHOD` or the platform decide.
  mproc::start_method start = mproc::start_method::automatic;
  /// Longest a task may run before its worker is killed and the task fails; 0 means no limit.
  std::chrono::milliseconds task_timeout{0};
  /// Tasks a worker runs before it is replaced; 0 means no limit.
  std::size_t max_tasks_per_worker = 0;
  /// Worker replacements allowed within any minute; past it the pool stops and every queued and
  /// later task fails with a `start_error` that gives the cause. 0 means no limit.
  std::size_t max_restarts_per_minute = 0;
  /// Longest a new worker may take to reach its worker loop before `start_error`.
  std::chrono::milliseconds start_timeout{10000};
  /// Runs in each worker before its first task: `mproc::bind<load_model>(config)`. Empty: none.
  bound_task initializer;
  /// Lets `start_method::fork` fork a process that has threads (a lock another thread holds
  /// at that moment stays locked in every worker: the classic hang). Off: such a fork is refused.
  bool allow_fork_with_threads = false;
};

/// Reads `--start-method=NAME` and `--workers=N` from a command line into a copy of `base`.
///
/// Other arguments are ignored. Throws `std::invalid_argument` for a bad name or number.
pool_options parse_pool_options(int argc, const char* const* argv, pool_options base = {});

namespace detail {
class pool_engine;
}

/// A pool of worker processes that runs registered functions, like Python's
/// `concurrent.futures.ProcessPoolExecutor`.
///
/// Thread-safe: any thread may submit. Not copyable. The destructor calls `shutdown()`.
class process_pool {
 public:
  /// Starts the workers; throws `start_error` if any cannot be started.
  explicit process_pool(const pool_options& options = {});
  /// Waits for every task, then stops and reaps every worker (see `shutdown`).
  ///
  /// During stack unwinding (an exception, such as one thrown on Ctrl-C, is leaving the scope)
  /// it does not wait: queued tasks are cancelled and running ones are killed.
  ~process_pool();
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

  /// Schedules `F(args...)` on a worker and returns a future for its result.
  ///
  /// `F` is a function at namespace scope or a static member function. Arguments are converted
  /// to `F`'s parameter types and must be serializable, as must the result: otherwise this does
  /// not compile. Throws `pool_closed` after `shutdown`.
  template <auto F, class... Args>
  future<detail::result_of<F>> submit(Args&&... args) {
    static_assert(detail::check_task<F>());
    std::vector<char> payload;
    detail::with_argument_writer<F>(
        payload, [&](auto& out) { detail::write_arguments<F>(out, std::forward<Args>(args)...); });
    return detail::future_access::make<detail::result_of<F>>(
        enqueue(detail::task_entry<F>::key, 1, std::move(payload)));
  }

  /// Runs `F` on every element of `items` and returns the results in input order.
  ///
  /// Items travel in chunks of `chunksize` per message; 0 picks about four chunks per worker.
  /// Rethrows the error of the first failed item (in input order) after cancelling the chunks
  /// that have not started.
  template <auto F, std::ranges::input_range Range>
  auto map(const Range& items, std::size_t chunksize = 0) {
    return map_with<F>(items, chunksize, nullptr);
  }

  /// Like `map`, and calls `progress(done, total)` in this thread as chunks complete.
  template <auto F, std::ranges::input_range Range>
  auto map(const Range& items, std::size_t chunksize, const progress_function& progress) {
    return map_with<F>(items, chunksize, &progress);
  }

  /// Stops accepting tasks, waits for running ones, and reaps every worker.
  ///
  /// Idempotent and thread-safe. With `wait == false` it returns at once and the destructor
  /// does the waiting. With `cancel_pending`, queued tasks fail with `cancelled_error` and
  /// running ones are killed (their futures fail with `cancelled_error` too).
  void shutdown(bool wait = true, bool cancel_pending = false);

  /// Returns the number of worker processes.
  std::size_t workers() const noexcept;

  /// Returns the start method in use (never `automatic`).
  mproc::start_method start_method() const noexcept;

 private:
  std::shared_ptr<detail::task_state> enqueue(std::uint64_t key, std::uint32_t count,
                                              std::vector<char> payload);
  std::size_t pick_chunksize(std::size_t items) const noexcept;

  template <auto F, class Range>
  auto map_with(const Range& items, std::size_t chunksize, const progress_function* progress) {
    static_assert(detail::check_task<F>());
    static_assert(detail::traits_of<F>::arity == 1,
                  "mproc: map<F> needs a function that takes exactly one argument");
    using result = detail::result_of<F>;
    return detail::gather<result>(enqueue_chunks<F>(items, chunksize), progress,
                                  [](const std::shared_ptr<detail::task_state>& c, auto& out) {
                                    std::vector<char> bytes = c->take();
                                    detail::decode_values(bytes, c->count(), out);
                                    detail::recycle_buffer(std::move(bytes));
                                  });
  }

  template <auto F, class Range>
  std::vector<std::shared_ptr<detail::task_state>> enqueue_chunks(const Range& items,
                                                                  std::size_t chunksize) {
    std::size_t total = 0;
    if constexpr (std::ranges::sized_range<Range>) total = std::ranges::size(items);
    const std::size_t size =
        std::min<std::size_t>(chunksize != 0 ? chunksize : pick_chunksize(total), UINT32_MAX);
    std::vector<std::shared_ptr<detail::task_state>> chunks;
    auto it = std::ranges::begin(items);
    const auto end = std::ranges::end(items);
    std::size_t last = 0;  // the previous chunk's size: the next one is likely alike
    while (it != end) {
      std::vector<char> payload;
      detail::grow_buffer(payload, last);
      std::uint32_t count = 0;
      detail::with_argument_writer<F>(payload, [&](auto& out) {
        for (; it != end && count < size; ++it, ++count) detail::write_arguments<F>(out, *it);
      });
      last = payload.size();
      chunks.push_back(enqueue(detail::task_entry<F>::key, count, std::move(payload)));
    }
    return chunks;
  }

  std::unique_ptr<detail::pool_engine> engine_;
  int uncaught_at_start_ = std::uncaught_exceptions();
};

}  // namespace mproc
