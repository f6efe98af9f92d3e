#pragma once

#include <mproc/detail/lazy_map.hpp>
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

/// The most worker processes a `process_pool` has (`pool_options::workers`).
inline constexpr std::size_t max_workers = 4096;

/// Settings of a `process_pool`; every field has a usable default.
struct pool_options {
  /// Number of worker processes, at most `max_workers`; 0 means
  /// `std::thread::hardware_concurrency()`.
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
/// Other arguments are ignored. Throws `std::invalid_argument` for a bad name or number (more
/// than `max_workers` included).
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
        enqueue(detail::task_entry<F>::key, detail::task_name<F>(), 1, std::move(payload)));
  }

  /// Runs `F` on every element of `items` (any input range) and returns the results in input
  /// order.
  ///
  /// Items travel in chunks of `chunksize` per message. With 0, a range of known size is cut
  /// into about four chunks per worker; for one of unknown size (a filter, a generator) chunks
  /// start at one item and grow while the measured running time of a chunk stays under about
  /// 2 ms. Rethrows the error of the first failed item (in input order) after cancelling the
  /// chunks that have not started.
  template <auto F, std::ranges::input_range Range>
  auto map(Range&& items, std::size_t chunksize = 0) {
    return map_with<F, detail::one_argument>(items, chunksize, nullptr);
  }

  /// Like `map`, and calls `progress(done, total)` in this thread as chunks complete.
  template <auto F, std::ranges::input_range Range>
  auto map(Range&& items, std::size_t chunksize, const progress_function& progress) {
    return map_with<F, detail::one_argument>(items, chunksize, &progress);
  }

  /// Like `map` for a function of several arguments: each element of `items` is a tuple (or
  /// pair) of `F`'s arguments. Python's `Pool.starmap`.
  template <auto F, std::ranges::input_range Range>
  auto starmap(Range&& items, std::size_t chunksize = 0) {
    return map_with<F, detail::tuple_of_arguments>(items, chunksize, nullptr);
  }

  /// Runs `F` on every element of `items` and returns a lazy input range of the results in
  /// input order, like Python's `Pool.imap` and `Executor.map(buffersize=)`.
  ///
  /// The input is read only `buffersize` chunks ahead of the results taken (0: twice the
  /// workers), so an endless or huge lazy range runs in bounded memory; the first chunks start
  /// at once. `chunksize` 0 picks chunk sizes as `map` does for a range of unknown size. A
  /// failed item's error is thrown when the iteration reaches it (its whole chunk fails), and
  /// the iteration can go on after it. Dropping the range cancels the chunks that have not
  /// started. An lvalue `items` is read in place and must outlive the range; an rvalue is moved
  /// into it. The pool must outlive the range.
  template <auto F, std::ranges::input_range Range>
  auto imap(Range&& items, std::size_t chunksize = 0, std::size_t buffersize = 0) {
    return imap_with<F>(std::forward<Range>(items), chunksize, buffersize, true);
  }

  /// Like `imap`, but yields each chunk's results as soon as it completes, in completion
  /// order. Python's `Pool.imap_unordered`.
  template <auto F, std::ranges::input_range Range>
  auto imap_unordered(Range&& items, std::size_t chunksize = 0, std::size_t buffersize = 0) {
    return imap_with<F>(std::forward<Range>(items), chunksize, buffersize, false);
  }

  /// Stops accepting tasks, waits for running ones, and reaps every worker.
  ///
  /// Idempotent and thread-safe. With `wait == false` it returns at once and the destructor
  /// does the waiting. With `cancel_pending`, queued tasks fail with `cancelled_error` and
  /// running ones are killed (their futures fail with `cancelled_error` too).
  void shutdown(bool wait = true, bool cancel_pending = false);

  /// Ends every worker now with SIGTERM (Windows: `TerminateProcess`; a worker still there 5 s
  /// later is killed) and shuts the pool down: running and queued tasks fail with
  /// `cancelled_error`, and a later `shutdown()` or the destructor does not wait for any task.
  /// Python 3.14's `terminate_workers()`.
  void terminate_workers();

  /// Like `terminate_workers`, with SIGKILL. Python 3.14's `kill_workers()`.
  void kill_workers();

  /// Returns the number of worker processes.
  std::size_t workers() const noexcept;

  /// Returns the start method in use (never `automatic`).
  mproc::start_method start_method() const noexcept;

 private:
  std::shared_ptr<detail::task_state> enqueue(std::uint64_t key, std::string_view name,
                                              std::uint32_t count, std::vector<char> payload);

  template <auto F, class Arity, class Range>
  auto map_with(Range& items, std::size_t chunksize, const progress_function* progress) {
    static_assert(detail::check_task<F>());
    Arity::template check<F, std::ranges::range_value_t<Range>>();
    using result = detail::result_of<F>;
    std::size_t last = 0;
    auto chunks = detail::send_chunks(
        items, chunksize, workers(), [this, &last](auto& it, const auto& end, std::size_t size) {
          return this->template send_chunk<F, Arity>(it, end, size, last);
        });
    return detail::gather<result>(
        chunks, progress,
        [](const std::shared_ptr<detail::task_state>& c, auto& out) { take_chunk(*c, out); });
  }

  template <class Result>
  static void take_chunk(detail::task_state& c, std::vector<Result>& out) {
    std::vector<char> bytes = c.take();
    detail::decode_values(bytes, c.count(), out, c.name());
    detail::recycle_buffer(std::move(bytes));
  }

  // Encodes at most `size` items from `it` into one chunk (`last`: the previous chunk's bytes,
  // likely alike) and queues it.
  template <auto F, class Arity, class It, class End>
  std::shared_ptr<detail::task_state> send_chunk(It& it, const End& end, std::size_t size,
                                                 std::size_t& last) {
    std::vector<char> payload;
    detail::grow_buffer(payload, last);
    std::uint32_t count = 0;
    const auto limit = static_cast<std::uint32_t>(std::min<std::size_t>(size, UINT32_MAX));
    detail::with_argument_writer<F>(payload, [&](auto& out) {
      for (; it != end && count < limit; ++it, ++count) Arity::template write<F>(out, *it);
    });
    last = payload.size();
    return enqueue(detail::task_entry<F>::key, detail::task_name<F>(), count, std::move(payload));
  }

  template <auto F, class Range>
  auto imap_with(Range&& items, std::size_t chunksize, std::size_t buffersize, bool ordered) {
    static_assert(detail::check_task<F>());
    detail::one_argument::check<F, std::ranges::range_value_t<Range>>();
    using result = detail::result_of<F>;
    static_assert(!std::is_void_v<result>,
                  "mproc: imap<F> yields results; for a task that returns nothing use map<F>");
    auto send = [this, last = std::size_t{0}](auto& it, const auto& end, std::size_t size) mutable {
      return this->template send_chunk<F, detail::one_argument>(it, end, size, last);
    };
    auto take = [](detail::task_state& c, std::vector<result>& out) { take_chunk(c, out); };
    using view = std::views::all_t<Range>;
    return detail::lazy_results<result, view, decltype(send), decltype(take)>(
        std::views::all(std::forward<Range>(items)), std::move(send), std::move(take), chunksize,
        buffersize != 0 ? buffersize : 2 * workers(), ordered);
  }

  std::unique_ptr<detail::pool_engine> engine_;
  int uncaught_at_start_ = std::uncaught_exceptions();
};

}  // namespace mproc
