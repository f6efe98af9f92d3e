#pragma once
// The threads mproc starts for itself in the application, told apart from the application's
// own: only the latter make forking the application unsafe. mproc's threads are kept harmless
// at a fork: the user code they run (done-callbacks) waits while the application forks.

#include <cstddef>
#include <functional>
#include <shared_mutex>
#include <system_error>
#include <thread>

namespace mproc::platform {

/// Starts `body` on a new thread of mproc's own, counted as such from before it exists until
/// `body` returns. On failure sets `ec` and returns no thread.
std::thread start_own_thread(std::function<void()> body, std::error_code& ec) noexcept;

/// Returns how many of mproc's own threads run now: more than the system shows only while one
/// is being created by a thread of the caller's that is itself busy creating it.
std::size_t own_threads() noexcept;

/// Returns the threads of this process that mproc did not start (at least 1: the caller's).
std::size_t foreign_threads();

/// Held shared while an mproc thread runs user code, and exclusively around a fork of the
/// application, so that no user lock taken on an mproc thread is copied locked.
std::shared_mutex& user_code_gate();

/// Returns whether the calling thread is one of mproc's running user code (a done-callback).
bool in_user_code() noexcept;

/// Holds the gate shared while user code runs on an mproc thread.
class user_code_scope {
 public:
  user_code_scope();
  ~user_code_scope();
  user_code_scope(const user_code_scope&) = delete;
  user_code_scope& operator=(const user_code_scope&) = delete;

 private:
  bool outermost_;
};

}  // namespace mproc::platform
