#include "platform/wake.hpp"

#include "platform/handle.windows.hpp"

#include <windows.h>

namespace mproc::platform {

wake_handle open_wake_handle(const std::string& name, bool create, std::error_code& ec) noexcept {
  ec.clear();
  try {
    // Auto-reset: one sleeper per handle, and a wake-up that comes before the sleep is kept.
    const std::wstring wide = widen(name);
    HANDLE h = create ? ::CreateEventW(nullptr, FALSE, FALSE, wide.c_str())
                      : ::OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, wide.c_str());
    if (h != nullptr) return reinterpret_cast<wake_handle>(h);
    ec = {static_cast<int>(::GetLastError()), std::system_category()};
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return -1;
}

void close_wake_handle(wake_handle handle) noexcept {
  if (handle != -1 && handle != 0) ::CloseHandle(to_handle(handle));
}

void wait_word(std::atomic<std::uint32_t>& word, std::uint32_t expected,
               std::chrono::nanoseconds timeout, wake_handle handle) noexcept {
  if (word.load(std::memory_order_seq_cst) != expected) return;
  DWORD ms = INFINITE;
  if (timeout.count() >= 0) {
    // Rounded up: a sleep that returns early only makes the caller look again.
    const auto rounded = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
    ms = static_cast<DWORD>(std::min<long long>(rounded, INFINITE - 1));
  }
  ::WaitForSingleObject(to_handle(handle), ms);
}

void wake_word(std::atomic<std::uint32_t>& /*word*/, wake_handle handle) noexcept {
  ::SetEvent(to_handle(handle));
}

}  // namespace mproc::platform
