#include "buffers.hpp"
#include "platform/process.hpp"

#include <mproc/detail/codec.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace mproc::detail {

void prefault_buffer(void* p, std::size_t bytes) noexcept { platform::prefault(p, bytes); }

namespace {

// Spare byte buffers of large messages, kept while a pool exists. Fresh memory costs more than
// the copy into it: the kernel zeroes every page, and on some virtual machines each first touch
// of a page traps to the host. An echo of a large vector needs two buffers in the application
// (the arguments being sent, the result being received), hence two spares.
constexpr std::size_t spare_count = 2;
constexpr std::size_t spare_max = std::size_t{128} << 20;

struct spare_set {
  std::mutex mutex;
  std::vector<std::vector<char>> buffers;  // guarded by mutex; at most spare_count
  std::size_t users = 0;                   // pools alive; guarded by mutex
};

// Set in worker processes, which keep their own buffers from task to task: the set may have
// been copied from the application by fork, mutex and all.
std::atomic<bool> forgone{false};

spare_set& spares() {
  static spare_set* const set = new spare_set();  // never destroyed: used until exit
  return *set;
}

}  // namespace

std::vector<char> large_buffer(std::size_t n) {
  if (n >= spare_buffer_min && !forgone.load(std::memory_order_relaxed)) {
    spare_set& s = spares();
    std::lock_guard lock(s.mutex);
    auto best = s.buffers.end();
    for (auto it = s.buffers.begin(); it != s.buffers.end(); ++it) {
      if (it->capacity() >= n && (best == s.buffers.end() || it->capacity() < best->capacity())) {
        best = it;
      }
    }
    if (best != s.buffers.end()) {
      std::vector<char> v = std::move(*best);
      s.buffers.erase(best);
      v.clear();
      return v;
    }
  }
  std::vector<char> v;
  reserve_large(v, n);
  return v;
}

void recycle_buffer(std::vector<char> buffer) noexcept {
  if (buffer.capacity() < spare_buffer_min || buffer.capacity() > spare_max) return;
  if (forgone.load(std::memory_order_relaxed)) return;
  spare_set& s = spares();
  std::lock_guard lock(s.mutex);
  if (s.users == 0) return;
  if (s.buffers.size() < spare_count) {
    s.buffers.push_back(std::move(buffer));  // cannot throw: capacity reserved below
    return;
  }
  // Keep the larger ones: a small message can use a large buffer, not the other way round.
  const auto smallest =
      std::min_element(s.buffers.begin(), s.buffers.end(),
                       [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
  if (smallest->capacity() < buffer.capacity()) std::swap(*smallest, buffer);
}

void forgo_spare_buffers() noexcept { forgone.store(true, std::memory_order_relaxed); }

spare_buffer_user::spare_buffer_user() {
  spare_set& s = spares();
  std::lock_guard lock(s.mutex);
  s.buffers.reserve(spare_count);
  ++s.users;
}

spare_buffer_user::~spare_buffer_user() {
  std::vector<std::vector<char>> freed;
  spare_set& s = spares();
  {
    std::lock_guard lock(s.mutex);
    if (--s.users == 0) freed.swap(s.buffers);
  }
  // Unmapped outside the lock.
}

}  // namespace mproc::detail
