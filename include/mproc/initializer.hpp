#pragma once

#include <mproc/detail/task.hpp>

#include <cstdint>
#include <typeinfo>
#include <utility>
#include <vector>

namespace mproc {

/// A registered function with its arguments, to run in each worker (see `bind`).
class bound_task {
 public:
  /// Creates an empty call (no initializer).
  bound_task() = default;
  /// Returns whether no function is bound.
  bool empty() const noexcept { return key_ == 0; }
  /// Returns the key the function is registered under.
  std::uint64_t key() const noexcept { return key_; }
  /// Returns the encoded arguments.
  const std::vector<char>& arguments() const noexcept { return arguments_; }

 private:
  template <auto F, class... A>
  friend bound_task bind(A&&... args);
  std::uint64_t key_ = 0;
  std::vector<char> arguments_;
};

/// Binds the worker initializer `F` to serializable arguments, for `pool_options::initializer`.
///
/// Each worker runs `F(args...)` once, before its first task (replacement workers too). What
/// `F` returns stays in the worker, need not be serializable or even copyable, and is reached
/// from tasks with `worker_state<T>()`. An initializer that throws fails the pool's start with
/// a `start_error` carrying the remote exception.
template <auto F, class... A>
bound_task bind(A&&... args) {
  static_assert(detail::traits_of<F>::is_function,
                "mproc: an initializer must be a function at namespace scope or a static member "
                "function: mproc::bind<load_model>(config)");
  static_assert(detail::arguments_check<typename detail::traits_of<F>::arguments>::ok);
  bound_task b;
  b.key_ = detail::initializer_entry<F>::key;
  detail::with_argument_writer<F>(
      b.arguments_, [&](auto& out) { detail::write_arguments<F>(out, std::forward<A>(args)...); });
  return b;
}

namespace detail {
/// Returns this worker's state if it is a `type`; throws `std::logic_error` otherwise.
void* worker_state_of(const std::type_info& type);
}  // namespace detail

/// Returns what this worker's initializer returned (call it from a task).
///
/// Throws `std::logic_error` if the initializer returned no `T` (or there is none).
template <class T>
T& worker_state() {
  return *static_cast<T*>(detail::worker_state_of(typeid(T)));
}

}  // namespace mproc
