#include "platform/wake.hpp"

#include <climits>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mproc::platform {

wake_handle open_wake_handle(const std::string& /*name*/, bool /*create*/,
                             std::error_code& ec) noexcept {
  ec.clear();
  return -1;
}

void close_wake_handle(wake_handle /*handle*/) noexcept {}

void wait_word(std::atomic<std::uint32_t>& word, std::uint32_t expected,
               std::chrono::nanoseconds timeout, wake_handle /*handle*/) noexcept {
  timespec ts{};
  timespec* limit = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
    limit = &ts;
  }
  // Not FUTEX_PRIVATE: the word is shared with other processes.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, limit,
            nullptr, 0);
}

void wake_word(std::atomic<std::uint32_t>& word, wake_handle /*handle*/) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

}  // namespace mproc::platform
