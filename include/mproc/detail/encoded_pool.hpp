#pragma once
// The member templates every pool that sends encoded tasks shares (`process_pool`, `mpi_pool`):
// each encodes its arguments and hands them to the pool's `enqueue`.

#include <mproc/detail/lazy_map.hpp>
#include <mproc/detail/task.hpp>
#include <mproc/detail/task_state.hpp>
#include <mproc/future.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc::detail {

/// The submit and map family of a pool `Pool` that provides `enqueue(key, name, count,
/// payload, block)` and `workers()`.
template <class Pool>
class encoded_pool {
 public:
  /// Schedules `F(args...)` on a worker and returns a future for its result.
  ///
  /// `F` is a function at namespace scope or a static member function. Arguments are converted
  /// to `F`'s parameter types and must be serializable, as must the result: otherwise this does
  /// not compile. Throws `pool_closed` after `shutdown`.
  template <auto F, class... Args>
  future<result_of<F>> submit(Args&&... args) {
    static_assert(check_task<F>());
    std::vector<char> payload;
    with_argument_writer<F>(
        payload, [&](auto& out) { write_arguments<F>(out, std::forward<Args>(args)...); });
    return future_access::make<result_of<F>>(self().enqueue(task_entry<F>::key, task_name<F>(), 1,
                                                            std::move(payload),
                                                            block_result_of<result_of<F>>()));
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
    return map_with<F, one_argument>(items, chunksize, nullptr);
  }

  /// Like `map`, and calls `progress(done, total)` in this thread as chunks complete.
  template <auto F, std::ranges::input_range Range>
  auto map(Range&& items, std::size_t chunksize, const progress_function& progress) {
    return map_with<F, one_argument>(items, chunksize, &progress);
  }

  /// Like `map` for a function of several arguments: each element of `items` is a tuple (or
  /// pair) of `F`'s arguments. Python's `Pool.starmap`.
  template <auto F, std::ranges::input_range Range>
  auto starmap(Range&& items, std::size_t chunksize = 0) {
    return map_with<F, tuple_of_arguments>(items, chunksize, nullptr);
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

 protected:
  encoded_pool() = default;
  ~encoded_pool() = default;

 private:
  Pool& self() noexcept { return static_cast<Pool&>(*this); }

  template <auto F, class Arity, class Range>
  auto map_with(Range& items, std::size_t chunksize, const progress_function* progress) {
    static_assert(check_task<F>());
    Arity::template check<F, std::ranges::range_value_t<Range>>();
    using result = result_of<F>;
    std::size_t last = 0;
    auto chunks = send_chunks(items, chunksize, self().workers(),
                              [this, &last](auto& it, const auto& end, std::size_t size) {
                                return this->template send_chunk<F, Arity>(it, end, size, last);
                              });
    return gather<result>(chunks, progress, [](const std::shared_ptr<task_state>& c, auto& out) {
      take_chunk(*c, out);
    });
  }

  template <class Result>
  static void take_chunk(task_state& c, std::vector<Result>& out) {
    std::vector<char> bytes = c.take();
    decode_values(bytes, c.count(), out, c.name());
    recycle_buffer(std::move(bytes));
  }

  // Encodes at most `size` items from `it` into one chunk (`last`: the previous chunk's bytes,
  // likely alike) and queues it.
  template <auto F, class Arity, class It, class End>
  std::shared_ptr<task_state> send_chunk(It& it, const End& end, std::size_t size,
                                         std::size_t& last) {
    std::vector<char> payload;
    grow_buffer(payload, last);
    std::uint32_t count = 0;
    const auto limit = static_cast<std::uint32_t>(std::min<std::size_t>(size, UINT32_MAX));
    with_argument_writer<F>(payload, [&](auto& out) {
      for (; it != end && count < limit; ++it, ++count) Arity::template write<F>(out, *it);
    });
    last = payload.size();
    return self().enqueue(task_entry<F>::key, task_name<F>(), count, std::move(payload));
  }

  template <auto F, class Range>
  auto imap_with(Range&& items, std::size_t chunksize, std::size_t buffersize, bool ordered) {
    static_assert(check_task<F>());
    one_argument::check<F, std::ranges::range_value_t<Range>>();
    using result = result_of<F>;
    static_assert(!std::is_void_v<result>,
                  "mproc: imap<F> yields results; for a task that returns nothing use map<F>");
    auto send = [this, last = std::size_t{0}](auto& it, const auto& end, std::size_t size) mutable {
      return this->template send_chunk<F, one_argument>(it, end, size, last);
    };
    auto take = [](task_state& c, std::vector<result>& out) { take_chunk(c, out); };
    using view = std::views::all_t<Range>;
    return lazy_results<result, view, decltype(send), decltype(take)>(
        std::views::all(std::forward<Range>(items)), std::move(send), std::move(take), chunksize,
        buffersize != 0 ? buffersize : 2 * self().workers(), ordered);
  }
};

}  // namespace mproc::detail
