#pragma once

#include <mproc/detail/encoded_pool.hpp>
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
  /// Starts a worker only when a task is queued that no worker is free for, as Python's
  /// `ProcessPoolExecutor` does (the first starts with the pool). Off: all start with the pool.
  bool start_on_demand = false;
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
struct pool_access;
}  // namespace detail

/// A pool of worker processes that runs registered functions, like Python's
/// `concurrent.futures.ProcessPoolExecutor`.
///
/// Thread-safe: any thread may submit. Not copyable. The destructor calls `shutdown()`.
class process_pool : public detail::encoded_pool<process_pool> {
 public:
  /// Starts the first worker and returns once it is ready (the others start meanwhile); throws
  /// `start_error` if it cannot be started. If another one cannot, the pool stops: queued and
  /// later tasks fail with that `start_error`.
  explicit process_pool(const pool_options& options = {});
  /// Waits for every task, then stops and reaps every worker (see `shutdown`).
  ///
  /// During stack unwinding (an exception, such as one thrown on Ctrl-C, is leaving the scope)
  /// it does not wait: queued tasks are cancelled and running ones are killed.
  ~process_pool();
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

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
  friend class detail::encoded_pool<process_pool>;
  friend struct detail::pool_access;

  std::shared_ptr<detail::task_state> enqueue(std::uint64_t key, std::string_view name,
                                              std::uint32_t count, std::vector<char> payload,
                                              const detail::block_result* block = nullptr);

  std::unique_ptr<detail::pool_engine> engine_;
  int uncaught_at_start_ = std::uncaught_exceptions();
};

}  // namespace mproc
