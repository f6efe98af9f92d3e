#pragma once
// The table of registered tasks, filled during static initialisation of every process.

#include <mproc/detail/task.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mproc::registry {

/// A registered task.
struct entry {
  std::string_view name;
  detail::invoker run = nullptr;
};

/// Returns the task registered under `key`, or nullptr.
const entry* find(std::uint64_t key) noexcept;

/// Returns the name of the task under `key`, or "unknown task".
std::string name_of(std::uint64_t key);

/// Returns the number of registered tasks.
std::size_t count() noexcept;

/// Returns a digest of every registered key: equal in processes running the same binary.
std::uint64_t digest() noexcept;

/// Throws `start_error` naming every task name registered twice.
void check();

}  // namespace mproc::registry
