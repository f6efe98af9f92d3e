#pragma once
// Learning how processes end, on one thread of mproc's own that runs an asio io_context: the
// Boost.Process objects of spawned workers complete their waits there, and on POSIX so do the
// pidfds of a zygote's workers and the descriptors that stand in where there is no pidfd.

#include <cstdint>
#include <functional>
#include <memory>
#include <system_error>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace mproc::launch {

/// Runs the callbacks that learn of processes' exits, on one thread of its own.
///
/// Thread-safe.
class exit_watcher {
 public:
  exit_watcher();
  ~exit_watcher();
  exit_watcher(const exit_watcher&) = delete;
  exit_watcher& operator=(const exit_watcher&) = delete;

  /// Returns why this watcher cannot watch (the system refused its descriptors), or nothing.
  std::error_code error() const noexcept { return error_; }
  /// Returns the context whose thread runs the callbacks (for Boost.Process objects); only
  /// without `error()`.
  boost::asio::io_context& context() noexcept;

  /// Calls `on_exit` once when `pid` ends (or has already ended); does not reap it. Fails where
  /// the system cannot name the process for good (Linux: no pidfd, as under valgrind; Windows:
  /// always, a spawned worker's Boost.Process object tells instead).
  std::error_code watch(int pid, std::function<void()> on_exit);
  /// POSIX: calls `on_ready` each time `fd` is readable (`events` has POLLIN) or reports an
  /// error or hang-up, until it returns false. Takes `fd`: it is closed then, at `stop`, or if
  /// this fails. Elsewhere: fails with `not_supported`.
  std::error_code watch_descriptor(int fd, short events, std::function<bool()> on_ready);

  /// Starts the thread; `watch` may be called before or after. Returns `error()`, or why the
  /// system cannot create the thread.
  std::error_code start();
  /// Stops the thread and destroys the pending callbacks without calling them.
  void stop() noexcept;

  /// Runs `cancel` at `stop` unless `forget` gets its number first (a watch still pending);
  /// returns the number, or 0 once stopped (then `cancel` has run).
  std::uint64_t on_stop(std::function<void()> cancel);
  /// Drops what `on_stop` registered as `id`.
  void forget(std::uint64_t id) noexcept;

 private:
  // Sets up what waiting needs besides the context (POSIX: asio's epoll reactor).
  static std::error_code prepare(boost::asio::io_context& context) noexcept;

  struct impl;
  std::unique_ptr<impl> impl_;
  std::error_code error_;
};

}  // namespace mproc::launch
