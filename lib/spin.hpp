#pragma once
// A bounded, adaptive spin before sleeping. Waking a sleeping thread or process costs about ten
// microseconds on a typical machine; a wait that ends sooner is cheaper to spin through. A
// thread whose waits keep outlasting the spin stops spinning for a while, so that long tasks
// and idle workers leave the cores to those who work.

#include <algorithm>
#include <chrono>
#include <thread>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#endif

namespace mproc {

/// Spins on a condition for a bounded time before its caller goes to sleep.
class spinner {
 public:
  /// How long one spin lasts at most: about one futex round trip.
  static constexpr std::chrono::nanoseconds budget = std::chrono::microseconds(20);

  /// Spins until `ready()` or the budget runs out; returns whether `ready()` held.
  template <class Ready>
  bool spin(Ready&& ready) {
    if (skip_ > 0) {
      --skip_;
      return false;
    }
    const auto start = std::chrono::steady_clock::now();
    for (unsigned i = 1;; ++i) {
      if (ready()) {
        misses_ = 0;
        return true;
      }
      relax();
      if (i % 64 == 0) {
        if (std::chrono::steady_clock::now() - start > budget) break;
        std::this_thread::yield();  // a peer waiting for this core runs now
      }
    }
    // After a few waits in a row outlasted the budget, skip the next 1, 3, 7, ... 63 spins
    // while they keep doing so; a single long wait changes nothing.
    misses_ = std::min(misses_ + 1, tolerated + 6);
    if (misses_ > tolerated) skip_ = (1U << (misses_ - tolerated)) - 1;
    return false;
  }

 private:
  static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  static constexpr unsigned tolerated = 3;
  unsigned misses_ = 0;
  unsigned skip_ = 0;
};

}  // namespace mproc
