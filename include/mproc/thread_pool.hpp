#pragma once

#include <mproc/detail/lazy_map.hpp>
#include <mproc/detail/task.hpp>
#include <mproc/errors.hpp>
#include <mproc/future.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc {

/// A pool of threads in this process with the surface of `process_pool`: switch executors by
/// changing one type.
///
/// Arguments and results stay in this process, so they need not be serializable, and a task's
/// exception reaches `get()` as itself (not as `remote_error`). Any callable can be submitted.
/// A thread cannot be ended from outside, so there is no `terminate_workers`: `shutdown(false,
/// true)` cancels what has not started. Thread-safe. The destructor calls `shutdown()`.
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
    return submit_named(detail::task_name<F>(), F, std::forward<Args>(args)...);
  }

  /// Schedules `fn(args...)` (any callable; arguments are copied or moved into the task).
  template <class Fn, class... Args>
  requires std::invocable < std::decay_t<Fn>
  &, std::decay_t<Args>&... > auto submit(Fn&& fn, Args&&... args) {
    return submit_named(detail::type_name<std::decay_t<Fn>>(), std::forward<Fn>(fn),
                        std::forward<Args>(args)...);
  }

  /// Runs `F` on every element of `items` (any input range) and returns the results in input
  /// order (see `process_pool::map`, whose chunk sizes it shares).
  template <auto F, std::ranges::input_range Range>
  auto map(Range&& items, std::size_t chunksize = 0) {
    return map_with<F, detail::one_argument>(items, chunksize, nullptr);
  }

  /// Like `map`, and calls `progress(done, total)` in this thread as chunks complete.
  template <auto F, std::ranges::input_range Range>
  auto map(Range&& items, std::size_t chunksize, const progress_function& progress) {
    return map_with<F, detail::one_argument>(items, chunksize, &progress);
  }

  /// Like `map` for a function of several arguments, each element a tuple of them (see
  /// `process_pool::starmap`).
  template <auto F, std::ranges::input_range Range>
  auto starmap(Range&& items, std::size_t chunksize = 0) {
    return map_with<F, detail::tuple_of_arguments>(items, chunksize, nullptr);
  }

  /// Returns a lazy range of the results of `F` on every element of `items`, in input order,
  /// reading the input only `buffersize` chunks ahead (see `process_pool::imap`).
  template <auto F, std::ranges::input_range Range>
  auto imap(Range&& items, std::size_t chunksize = 0, std::size_t buffersize = 0) {
    return imap_with<F>(std::forward<Range>(items), chunksize, buffersize, true);
  }

  /// Like `imap`, with results in completion order (see `process_pool::imap_unordered`).
  template <auto F, std::ranges::input_range Range>
  auto imap_unordered(Range&& items, std::size_t chunksize = 0, std::size_t buffersize = 0) {
    return imap_with<F>(std::forward<Range>(items), chunksize, buffersize, false);
  }

  /// Stops accepting tasks and, with `wait`, waits for every task and joins the threads.
  ///
  /// With `cancel_pending`, tasks that have not started fail with `cancelled_error` (threads
  /// cannot be killed: running tasks finish).
  void shutdown(bool wait = true, bool cancel_pending = false);

  /// Returns the number of threads.
  std::size_t workers() const noexcept;

 private:
  template <class Fn, class... Args>
  auto submit_named(std::string_view name, Fn&& fn, Args&&... args) {
    using result = std::invoke_result_t<std::decay_t<Fn>&, std::decay_t<Args>&...>;
    auto state = std::make_shared<detail::task_state>(1, name);
    post(
        [state, fn = std::forward<Fn>(fn), ... args = std::forward<Args>(args)]() mutable {
          run_into<result>(*state, [&] { return std::invoke(fn, args...); });
        },
        state);
    return detail::future_access::make<std::remove_cvref_t<result>>(std::move(state));
  }

  template <class R, class Call>
  static void run_into(detail::task_state& state, Call&& call) {
    if (!state.try_start()) return;  // cancelled
    const auto start = std::chrono::steady_clock::now();
    try {
      if constexpr (std::is_void_v<R>) {
        call();
        state.set_ran(std::chrono::steady_clock::now() - start);
        state.set_value({});
      } else {
        using value = std::remove_cvref_t<R>;
        // `new` from the returned prvalue: the result need not be movable.
        std::shared_ptr<value> object(new value(call()));
        state.set_ran(std::chrono::steady_clock::now() - start);
        state.set_object(std::move(object));
      }
    } catch (...) {
      state.set_error(std::current_exception());
    }
  }

  // Calls F on one element as `map` (one argument) or `starmap` (a tuple of them) passes it.
  template <auto F, class Arity, class Element>
  static decltype(auto) call(Element&& element) {
    if constexpr (std::is_same_v<Arity, detail::tuple_of_arguments>) {
      return std::apply(F, std::forward<Element>(element));
    } else {
      return std::invoke(F, std::forward<Element>(element));
    }
  }

  // Copies at most `size` items from `it` into one chunk and queues it.
  template <auto F, class Arity, class It, class End>
  std::shared_ptr<detail::task_state> send_chunk(It& it, const End& end, std::size_t size) {
    using element = std::remove_cvref_t<std::iter_reference_t<It>>;
    using result = std::remove_cvref_t<decltype(call<F, Arity>(std::declval<element&>()))>;
    std::vector<element> part;
    for (; it != end && part.size() < size; ++it) part.push_back(*it);
    auto state = std::make_shared<detail::task_state>(static_cast<std::uint32_t>(part.size()),
                                                      detail::task_name<F>());
    post(
        [state, part = std::move(part)]() mutable {
          if constexpr (std::is_void_v<result>) {
            run_into<void>(*state, [&] {
              for (auto& x : part) call<F, Arity>(x);
            });
          } else {
            run_into<std::vector<result>>(*state, [&] {
              std::vector<result> out;
              out.reserve(part.size());
              for (auto& x : part) out.push_back(call<F, Arity>(x));
              return out;
            });
          }
        },
        state);
    return state;
  }

  template <class Result>
  static void take_chunk(detail::task_state& c, std::vector<Result>& out) {
    auto part = std::static_pointer_cast<std::vector<Result>>(c.take_object());
    std::move(part->begin(), part->end(), std::back_inserter(out));
  }

  template <auto F, class Arity, class Range>
  auto map_with(Range& items, std::size_t chunksize, const progress_function* progress) {
    using element = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
    using result = std::remove_cvref_t<decltype(call<F, Arity>(std::declval<element&>()))>;
    auto chunks = detail::send_chunks(items, chunksize, workers(),
                                      [this](auto& it, const auto& end, std::size_t size) {
                                        return this->template send_chunk<F, Arity>(it, end, size);
                                      });
    return detail::gather<result>(
        chunks, progress,
        [](const std::shared_ptr<detail::task_state>& c, auto& out) { take_chunk(*c, out); });
  }

  template <auto F, class Range>
  auto imap_with(Range&& items, std::size_t chunksize, std::size_t buffersize, bool ordered) {
    using element = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
    using result =
        std::remove_cvref_t<decltype(call<F, detail::one_argument>(std::declval<element&>()))>;
    static_assert(!std::is_void_v<result>,
                  "mproc: imap<F> yields results; for a task that returns nothing use map<F>");
    auto send = [this](auto& it, const auto& end, std::size_t size) {
      return this->template send_chunk<F, detail::one_argument>(it, end, size);
    };
    auto take = [](detail::task_state& c, std::vector<result>& out) { take_chunk(c, out); };
    using view = std::views::all_t<Range>;
    return detail::lazy_results<result, view, decltype(send), decltype(take)>(
        std::views::all(std::forward<Range>(items)), std::move(send), std::move(take), chunksize,
        buffersize != 0 ? buffersize : 2 * workers(), ordered);
  }

  // Queues `job` on a thread (its future's state is `state`); throws pool_closed after shutdown.
  void post(std::function<void()> job, const std::shared_ptr<detail::task_state>& state);

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mproc
