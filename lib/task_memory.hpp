#pragma once
// Memory for the shared states of tasks and the nodes of the queues that hold them. A burst of
// submits creates one state per task; taken from the general heap, each fresh 4 KiB page costs
// a fault, which on some virtual machines is a trap to the host that costs more than the submit
// itself. They come instead from 2 MiB chunks that the system can map with one large page each.
// The chunks are left out of forked children, which start with none.

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define MPROC_PLAIN_TASK_MEMORY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPROC_PLAIN_TASK_MEMORY 1
#endif
#endif

namespace mproc::detail {

#if defined(MPROC_PLAIN_TASK_MEMORY)
/// Whether task memory is the general heap (under AddressSanitizer, to catch a use after free).
inline constexpr bool plain_task_memory = true;
#else
/// Whether task memory is the general heap (under AddressSanitizer, to catch a use after free).
inline constexpr bool plain_task_memory = false;
#endif

/// The block size that task states come in.
inline constexpr std::size_t task_block_bytes = 256;
/// Objects up to this size come from the chunks (in blocks of it, beyond `task_block_bytes`);
/// larger ones from the general heap.
inline constexpr std::size_t task_memory_max = 512;

/// Returns memory for one object of `bytes` bytes that lives as long as a task's state.
void* allocate_task_memory(std::size_t bytes);
/// Releases memory from `allocate_task_memory(bytes)`; thread-safe like it.
void free_task_memory(void* p, std::size_t bytes) noexcept;

/// A standard allocator over task memory, for `std::allocate_shared`.
template <class T>
struct task_allocator {
  using value_type = T;

  task_allocator() = default;
  template <class U>
  task_allocator(const task_allocator<U>&) noexcept {}  // NOLINT: rebinding converts implicitly

  // sizeof(T) of a pointer is meant: a deque rebinds its allocator to T* for its map.
  /// Returns room for `n` objects of type T.
  T* allocate(std::size_t n) {
    return static_cast<T*>(
        allocate_task_memory(n * sizeof(T)));  // NOLINT(bugprone-sizeof-expression)
  }
  /// Releases room from `allocate(n)`.
  void deallocate(T* p, std::size_t n) noexcept {
    free_task_memory(p, n * sizeof(T));  // NOLINT(bugprone-sizeof-expression)
  }

  template <class U>
  bool operator==(const task_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace mproc::detail
