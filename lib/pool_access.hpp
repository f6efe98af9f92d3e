#pragma once
// The library's own way into a `process_pool`: queue tasks that are already encoded (a node
// supervisor forwards what it receives without decoding it).

#include <mproc/pool.hpp>

namespace mproc::detail {

/// Reaches the private members of `process_pool` that other parts of the library use.
struct pool_access {
  /// Queues `count` encoded calls of the task `key` (`name` has static storage).
  static std::shared_ptr<task_state> enqueue(process_pool& pool, std::uint64_t key,
                                             std::string_view name, std::uint32_t count,
                                             std::vector<char> payload) {
    return pool.enqueue(key, name, count, std::move(payload));
  }
};

}  // namespace mproc::detail
