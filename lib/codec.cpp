#include "buffers.hpp"
#include "platform/memory.hpp"

#include <mproc/detail/codec.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <mutex>
#include <new>

namespace mproc::detail {

void prefault_buffer(void* p, std::size_t bytes) noexcept { platform::prefault(p, bytes); }

namespace {

// Spare byte buffers of messages, kept while a pool exists. Fresh memory costs more than the
// copy into it: the kernel zeroes every page, and on some virtual machines each first touch of
// a page traps to the host; and the heap gives freed memory back to the system between two
// bursts of messages.
//
// Large buffers (1 MiB and more) are kept at their exact size, two at most: an echo of a large
// vector needs two in the application (the arguments being sent, the result being received).
// Medium ones (from spare_buffer_min) are rounded up to a power of two and kept by size, up to
// medium_budget bytes in all: a map holds one per chunk, and its next call reuses them.
constexpr std::size_t large_min = std::size_t{1} << 20;
constexpr std::size_t large_count = 2;
constexpr std::size_t large_max = std::size_t{128} << 20;
constexpr unsigned medium_first = 10;  // 1 KiB: spare_buffer_min
constexpr unsigned medium_last = 20;   // 1 MiB: large_min
constexpr std::size_t medium_budget = std::size_t{16} << 20;
static_assert(spare_buffer_min == std::size_t{1} << medium_first);
static_assert(large_min == std::size_t{1} << medium_last);

struct spare_set {
  std::mutex mutex;
  std::vector<std::vector<char>> large;  // guarded by mutex; at most large_count
  // medium[k - medium_first]: buffers whose capacity is at least 2^k (and below 2^(k+1));
  // guarded by mutex
  std::array<std::vector<std::vector<char>>, medium_last - medium_first> medium;
  std::size_t medium_bytes = 0;  // guarded by mutex
  std::size_t users = 0;         // pools alive; guarded by mutex
};

// Set in worker processes, which keep their own buffers from task to task: the set may have
// been copied from the application by fork, mutex and all.
std::atomic<bool> forgone{false};

spare_set& spares() {
  static auto* const set = new spare_set();  // never destroyed: used until exit
  return *set;
}

// The size class of `capacity` bytes (at least 1): k with 2^k <= capacity < 2^(k+1).
unsigned floor_log2(std::size_t capacity) noexcept {
  return static_cast<unsigned>(std::bit_width(capacity)) - 1;
}

// Whether a request for `n` bytes is served from the medium buffers, rounded up to a power of
// two (one of more than half large_min is served as a large one, at its exact size).
bool medium_request(std::size_t n) noexcept { return n >= spare_buffer_min && n <= large_min / 2; }

std::vector<char> take_spare(spare_set& s, std::size_t n) {
  if (medium_request(n)) {
    auto& bucket = s.medium[floor_log2(std::bit_ceil(n)) - medium_first];
    if (bucket.empty()) return {};
    std::vector<char> v = std::move(bucket.back());
    bucket.pop_back();
    s.medium_bytes -= v.capacity();
    return v;
  }
  auto best = s.large.end();
  for (auto it = s.large.begin(); it != s.large.end(); ++it) {
    if (it->capacity() >= n && (best == s.large.end() || it->capacity() < best->capacity())) {
      best = it;
    }
  }
  if (best == s.large.end()) return {};
  std::vector<char> v = std::move(*best);
  s.large.erase(best);
  return v;
}

// Keeps `buffer` if there is room for it (the set's lock held); may throw std::bad_alloc.
void keep_spare(spare_set& s, std::vector<char>& buffer) {
  const std::size_t cap = buffer.capacity();
  if (cap < large_min) {
    if (s.medium_bytes + cap > medium_budget) return;
    s.medium[floor_log2(cap) - medium_first].push_back(std::move(buffer));
    s.medium_bytes += cap;
    return;
  }
  if (s.large.size() < large_count) {
    s.large.push_back(std::move(buffer));
    return;
  }
  // Keep the larger ones: a small message can use a large buffer, not the other way round.
  const auto smallest =
      std::min_element(s.large.begin(), s.large.end(),
                       [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
  if (smallest->capacity() < cap) std::swap(*smallest, buffer);
}

}  // namespace

std::vector<char> large_buffer(std::size_t n) {
  if (n >= spare_buffer_min && !forgone.load(std::memory_order_relaxed)) {
    spare_set& s = spares();
    std::vector<char> v;
    {
      std::lock_guard lock(s.mutex);
      v = take_spare(s, n);
    }
    if (v.capacity() >= n) {
      v.clear();
      return v;
    }
  }
  std::vector<char> v;
  // A medium buffer is rounded up to its size class, so that it serves the same size again.
  reserve_large(v, medium_request(n) ? std::bit_ceil(n) : n);
  return v;
}

void recycle_buffer(std::vector<char> buffer) noexcept {
  if (buffer.capacity() < spare_buffer_min || buffer.capacity() > large_max) return;
  if (forgone.load(std::memory_order_relaxed)) return;
  spare_set& s = spares();
  std::lock_guard lock(s.mutex);
  if (s.users == 0) return;
  try {
    keep_spare(s, buffer);
  } catch (const std::bad_alloc&) {
    // Not kept: it is freed with `buffer`.
  }
}

void forgo_spare_buffers() noexcept { forgone.store(true, std::memory_order_relaxed); }

spare_buffer_user::spare_buffer_user() {
  spare_set& s = spares();
  std::lock_guard lock(s.mutex);
  ++s.users;
}

spare_buffer_user::~spare_buffer_user() {
  std::vector<std::vector<char>> freed;
  std::array<std::vector<std::vector<char>>, medium_last - medium_first> freed_medium;
  spare_set& s = spares();
  {
    std::lock_guard lock(s.mutex);
    if (--s.users == 0) {
      freed.swap(s.large);
      freed_medium.swap(s.medium);
      s.medium_bytes = 0;
    }
  }
  // Unmapped outside the lock.
}

}  // namespace mproc::detail
