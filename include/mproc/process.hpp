#pragma once
// One function in a process of its own: multiprocessing.Process for C++.

#include <mproc/detail/task.hpp>
#include <mproc/start_method.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc {

/// How `start_process` starts a process.
struct process_options {
  /// The start method (automatic: the same choice a pool makes).
  start_method start = start_method::automatic;
  /// Allows fork in a process with threads of its own (see `pool_options`).
  bool allow_fork_with_threads = false;
};

/// How a process ended: its exit code, or the signal that killed it.
struct process_exit {
  /// The exit code, if it exited (on Windows: the exit code or NTSTATUS).
  std::optional<int> exit_code;
  /// The signal that killed it, if one did (POSIX).
  std::optional<int> signal;
  /// Returns how it ended, in the words of `worker_crashed`: "exited with code 3".
  std::string describe() const;
};

namespace detail {
class process_state;
}  // namespace detail

/// A process that runs one function (see `start_process`); movable, not copyable.
///
/// Destroyed while its process runs, it kills and reaps it. The process also ends when the
/// application ends, however it ends.
class process {
 public:
  /// Makes an object with no process.
  process() noexcept;
  /// Kills and reaps a process still running (call `join` to wait for it instead).
  ~process();
  /// Takes over the process of `other`, which is left with none.
  process(process&& other) noexcept;
  /// Ends this object's process like the destructor, then takes over that of `other`.
  process& operator=(process&& other) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  /// Returns the process id (-1 for an object with no process).
  int pid() const noexcept;
  /// Returns whether the process is still running.
  bool running() const;
  /// Waits for the process to end and returns how it ended.
  process_exit join();
  /// Waits up to `limit` for the process to end; returns how it ended, or nothing if it runs.
  std::optional<process_exit> join_for(std::chrono::milliseconds limit);
  /// Asks the process to end (SIGTERM; on Windows it is killed).
  void terminate();
  /// Kills the process (SIGKILL; on Windows TerminateProcess).
  void kill();

 private:
  friend struct process_access;
  explicit process(std::shared_ptr<detail::process_state> state) noexcept;
  std::shared_ptr<detail::process_state> state_;
};

namespace detail {

template <auto F>
constexpr bool check_process() {
  static_assert(traits_of<F>::is_function,
                "mproc: a process runs a function at namespace scope or a static member "
                "function, given as a template argument: mproc::start_process<work>(args...)");
  if constexpr (traits_of<F>::is_function) {
    static_assert(!traits_of<F>::has_mutable_reference,
                  "mproc: a process function cannot take a parameter by non-const reference: "
                  "changes made in the process would not reach the caller.");
    using result = result_of<F>;
    static_assert(std::is_void_v<result> || std::is_integral_v<result>,
                  "mproc: a process function returns void or an integer (its exit code); to "
                  "send results back, put them in a mproc::queue or a shared_array");
    return arguments_check<typename traits_of<F>::arguments>::ok;
  }
  return false;
}

/// Runs `F` on the arguments at `data` and writes its exit code (an `int`) to `out`.
template <auto F>
void run_as_process(const char* data, std::size_t size, std::vector<char>& out,
                    std::uint32_t /*count*/, lent_block* /*lent*/) {
  with_argument_reader<F>(data, size, [&](auto& in) {
    auto args = read_arguments<F>(in);
    int code = 0;
    if constexpr (std::is_void_v<result_of<F>>) {
      std::apply(F, std::move(args));
    } else {
      code = static_cast<int>(std::apply(F, std::move(args)));
    }
    out.resize(sizeof code);
    std::memcpy(out.data(), &code, sizeof code);
  });
}

/// Distinguishes a process function's key from the same function's key as a task.
inline constexpr std::uint64_t process_salt = 0x70726f6365737321ULL;  // "process!"

/// Registers `F` as a process function, like `task_entry`.
template <auto F>
struct process_entry {
  /// The key `F` is registered under, set during static initialisation.
  static inline const std::uint64_t key =
      register_task(task_name<F>(), &run_as_process<F>, process_salt);
};

/// Starts a process that runs the process function `key` on `arguments`.
process start_process(const process_options& options, std::uint64_t key, std::string_view name,
                      const std::vector<char>& arguments);

template <class... A>
inline constexpr bool options_first = false;
template <class First, class... Rest>
inline constexpr bool options_first<First, Rest...> =
    std::is_same_v<std::remove_cvref_t<First>, process_options>;

}  // namespace detail

/// Runs `F(args...)` in a new process started with `options.start`, and returns it.
///
/// `F` is a function at namespace scope or a static member function that returns void (exit
/// code 0) or an integer (the exit code; POSIX keeps its low 8 bits). An exception escaping
/// `F` prints its type and message to stderr and ends the process with exit code 1. Arguments
/// are converted to `F`'s parameter types and must be serializable: otherwise this does not
/// compile. Throws `start_error` if the process cannot be started.
template <auto F, class... Args>
process start_process(const process_options& options, Args&&... args) {
  static_assert(detail::check_process<F>());
  std::vector<char> payload;
  detail::with_argument_writer<F>(
      payload, [&](auto& out) { detail::write_arguments<F>(out, std::forward<Args>(args)...); });
  return detail::start_process(options, detail::process_entry<F>::key, detail::task_name<F>(),
                               payload);
}

/// Runs `F(args...)` in a new process started by the automatic start method (see above).
template <auto F, class... Args>
requires(!detail::options_first<Args...>) process start_process(Args&&... args) {
  return start_process<F>(process_options{}, std::forward<Args>(args)...);
}

}  // namespace mproc
