#pragma once
// The surface every mproc pool shares, as a concept: generic code takes any of them.

#include <mproc/future.hpp>

#include <concepts>
#include <cstddef>
#include <ranges>
#include <tuple>
#include <vector>

namespace mproc {

namespace detail {
/// A task that only the `executor` concept names, to probe a pool's member templates.
inline int executor_probe(int x) { return x; }
}  // namespace detail

/// A pool that runs registered functions with `submit`, `map`, `starmap`, `imap`,
/// `imap_unordered` and `shutdown`, and tells its `workers()`: `process_pool`, `thread_pool` and
/// `mpi_pool`.
template <class Pool>
concept executor = requires(Pool& pool, const Pool& const_pool, std::vector<int>& items,
                            std::vector<std::tuple<int>>& tuples) {
  { pool.template submit<&detail::executor_probe>(0) } -> std::same_as<future<int>>;
  { pool.template map<&detail::executor_probe>(items) } -> std::same_as<std::vector<int>>;
  {
    pool.template map<&detail::executor_probe>(items, std::size_t{1})
    } -> std::same_as<std::vector<int>>;
  { pool.template starmap<&detail::executor_probe>(tuples) } -> std::same_as<std::vector<int>>;
  { pool.template imap<&detail::executor_probe>(items) } -> std::ranges::input_range;
  { pool.template imap_unordered<&detail::executor_probe>(items) } -> std::ranges::input_range;
  pool.shutdown();
  pool.shutdown(true, true);
  { const_pool.workers() } -> std::convertible_to<std::size_t>;
};

}  // namespace mproc
