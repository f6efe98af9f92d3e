#pragma once
// What the benchmark programs share: the seed workload and the clock they read.

#include <chrono>
#include <cstdint>

/// The seed_compare workload: a chain of pseudo-random steps the optimizer cannot shorten.
inline std::uint64_t simulate(std::uint64_t seed, std::uint64_t steps) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < steps; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    acc += (x >> 32) ^ (acc << 1);
  }
  return acc;
}

/// Returns the seconds from `t` to now on the steady clock.
inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
