#pragma once

#include <mproc/detail/task.hpp>
#include <mproc/errors.hpp>
#include <mproc/future.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc {

/// A pool of threads in this process with the surface of `process_pool`: switch executors by
/// changing one type.
///
/// Arguments and results stay in this process, so they need not be serializable, and a task's
/// exception reaches `get()` as itself (not as `remote_error`). Any callable can be submitted.
/// Thread-safe. The destructor calls `shutdown()`.
class thread_pool {
 public:
  /// Starts `threads` threads; 0 means `std::thread::hardware_concurrency()`.
  explicit thread_pool(std::size_t threads = 0);
  /// Waits for every task, then joins the threads.
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// Schedules `F(args...)` and returns a future for its result.
  template <auto F, class... Args>
  auto submit(Args&&... args) {
    return submit(F, std::forward<Args>(args)...);
  }

  /// Schedules `fn(args...)` (any callable; arguments are copied or moved into the task).
  template <class Fn, class... Args>
  requires std::invocable < std::decay_t<Fn>
  &, std::decay_t<Args>&... > auto submit(Fn&& fn, Args&&... args) {
    using result = std::invoke_result_t<std::decay_t<Fn>&, std::decay_t<Args>&...>;
    auto state = std::make_shared<detail::task_state>(1);
    post(
        [state, fn = std::forward<Fn>(fn), ... args = std::forward<Args>(args)]() mutable {
          run_into<result>(*state, [&] { return std::invoke(fn, args...); });
        },
        state);
    return detail::future_access::make<std::remove_cvref_t<result>>(std::move(state));
  }

  /// Runs `F` on every element of `items` and returns the results in input order (see
  /// `process_pool::map`).
  template <auto F, std::ranges::input_range Range>
  auto map(const Range& items, std::size_t chunksize = 0) {
    return map_with<F>(items, chunksize, nullptr);
  }

  /// Like `map`, and calls `progress(done, total)` in this thread as chunks complete.
  template <auto F, std::ranges::input_range Range>
  auto map(const Range& items, std::size_t chunksize, const progress_function& progress) {
    return map_with<F>(items, chunksize, &progress);
  }

  /// Stops accepting tasks and, with `wait`, waits for every task and joins the threads.
  ///
  /// With `cancel_pending`, tasks that have not started fail with `cancelled_error` (threads
  /// cannot be killed: running tasks finish).
  void shutdown(bool wait = true, bool cancel_pending = false);

  /// Returns the number of threads.
  std::size_t workers() const noexcept;

 private:
  template <class R, class Call>
  static void run_into(detail::task_state& state, Call&& call) {
    if (!state.try_start()) return;  // cancelled
    try {
      if constexpr (std::is_void_v<R>) {
        call();
        state.set_value({});
      } else {
        using value = std::remove_cvref_t<R>;
        // `new` from the returned prvalue: the result need not be movable.
        state.set_object(std::shared_ptr<value>(new value(call())));
      }
    } catch (...) {
      state.set_error(std::current_exception());
    }
  }

  template <auto F, class Range>
  auto map_with(const Range& items, std::size_t chunksize, const progress_function* progress) {
    using element = std::ranges::range_reference_t<const Range>;
    using result = std::remove_cvref_t<std::invoke_result_t<decltype(F), element>>;
    std::vector<std::vector<std::remove_cvref_t<element>>> parts(1);
    std::size_t total = 0;
    if constexpr (std::ranges::sized_range<Range>) total = std::ranges::size(items);
    const std::size_t size = chunksize != 0 ? chunksize : pick_chunksize(total);
    for (auto&& item : items) {
      if (parts.back().size() == size) parts.emplace_back();
      parts.back().push_back(item);
    }
    if (parts.back().empty()) parts.pop_back();
    std::vector<std::shared_ptr<detail::task_state>> chunks;
    for (auto& part : parts) {
      auto state = std::make_shared<detail::task_state>(static_cast<std::uint32_t>(part.size()));
      post(
          [state, part = std::move(part)]() mutable {
            if constexpr (std::is_void_v<result>) {
              run_into<void>(*state, [&] {
                for (auto& x : part) F(x);
              });
            } else {
              run_into<std::vector<result>>(*state, [&] {
                std::vector<result> out;
                out.reserve(part.size());
                for (auto& x : part) out.push_back(F(x));
                return out;
              });
            }
          },
          state);
      chunks.push_back(std::move(state));
    }
    return detail::gather<result>(
        chunks, progress, [](const std::shared_ptr<detail::task_state>& c, auto& out) {
          auto part = std::static_pointer_cast<std::vector<result>>(c->take_object());
          std::move(part->begin(), part->end(), std::back_inserter(out));
        });
  }

  // Queues `job` on a thread (its future's state is `state`); throws pool_closed after shutdown.
  void post(std::function<void()> job, const std::shared_ptr<detail::task_state>& state);
  std::size_t pick_chunksize(std::size_t items) const noexcept;

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mproc
