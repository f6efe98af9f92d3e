#pragma once
// The operating system's refusals as start errors, and the retry of a refusal that passes.

#include <chrono>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace mproc::launch {

/// Returns the start_error for `action` ("cannot start worker: cannot create its lifeline
/// pipe") refused with `ec`.
std::exception_ptr refusal_error(const std::string& action, const std::error_code& ec);

/// Calls `attempt` (which returns an error code) until it succeeds or fails with something else
/// than EAGAIN, waiting longer each time (1 ms doubling, about half a second in all): a limit
/// on processes is often reached for a moment only. Returns the last error; `tries` counts
/// the calls.
template <class F>
std::error_code retry_while_busy(F&& attempt, int* tries = nullptr);

/// Sleeps for `d` (the pause of `retry_while_busy`).
void pause_for(std::chrono::milliseconds d) noexcept;

template <class F>
std::error_code retry_while_busy(F&& attempt, int* tries) {
  std::chrono::milliseconds wait{1};
  for (int n = 1;; ++n) {
    const std::error_code ec = attempt();
    if (tries != nullptr) *tries = n;
    if (ec != std::errc::resource_unavailable_try_again || n == 10) return ec;
    pause_for(wait);
    wait *= 2;
  }
}

}  // namespace mproc::launch
