#pragma once
// Sleeping on a word in memory shared between processes, and waking its sleepers: a futex
// on Linux, a named event beside the word on Windows (wake.posix.cpp, wake.windows.cpp).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

namespace mproc::platform {

/// The native object a sleeper waits on besides its shared word: none on Linux (the futex is the
/// word itself, so this is -1 there), a named auto-reset event on Windows.
using wake_handle = std::intptr_t;

/// Creates (`create`) or opens the wake-up object called `name`; -1 where none is needed. On
/// failure sets `ec` and returns -1.
wake_handle open_wake_handle(const std::string& name, bool create, std::error_code& ec) noexcept;

/// Closes a wake-up object from `open_wake_handle` (ignoring -1).
void close_wake_handle(wake_handle handle) noexcept;

/// Sleeps until `word` may differ from `expected`, a wake-up arrives, or `timeout` passes.
///
/// `word` may live in memory shared between processes; `handle` is the wake-up object that
/// goes with it (one sleeper at a time per handle). A negative timeout waits for ever.
/// Spurious returns are allowed: callers re-check their condition.
void wait_word(std::atomic<std::uint32_t>& word, std::uint32_t expected,
               std::chrono::nanoseconds timeout, wake_handle handle) noexcept;

/// Wakes whoever sleeps in `wait_word` on `word` and `handle`.
void wake_word(std::atomic<std::uint32_t>& word, wake_handle handle) noexcept;

}  // namespace mproc::platform
