#include "task_memory.hpp"

#include "platform/process.hpp"

#include <cstdint>
#include <mutex>
#include <new>

#if !defined(_WIN32)
#include <pthread.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define MPROC_PLAIN_TASK_MEMORY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPROC_PLAIN_TASK_MEMORY 1
#endif
#endif

namespace mproc::detail {

#if defined(MPROC_PLAIN_TASK_MEMORY)

// Under AddressSanitizer every state is its own heap block, so that a use after free is caught.
void* allocate_task_memory(std::size_t bytes) { return ::operator new(bytes); }
void free_task_memory(void* p, std::size_t /*bytes*/) noexcept { ::operator delete(p); }

#else

namespace {

constexpr std::size_t chunk_bytes = std::size_t{2} << 20;  // one large page
constexpr std::size_t block_bytes = task_block_bytes;
constexpr std::size_t blocks_per_chunk = chunk_bytes / block_bytes - 1;  // the first: header

struct free_block {
  free_block* next;
};

// The header of a chunk, in its first block. A block's chunk is its address rounded down.
struct chunk {
  std::size_t live = 0;        // blocks handed out
  std::size_t carved = 0;      // blocks ever handed out; the rest have never been touched
  free_block* free = nullptr;  // blocks handed back
  chunk* prev = nullptr;       // in the list of chunks with room, if `listed`
  chunk* next = nullptr;
  bool listed = false;

  bool has_room() const noexcept { return free != nullptr || carved < blocks_per_chunk; }
  char* block(std::size_t i) noexcept {
    return reinterpret_cast<char*>(this) + (i + 1) * block_bytes;
  }
};
static_assert(sizeof(chunk) <= block_bytes);

class arena {
 public:
  arena() {
#if !defined(_WIN32)
    // A fork while another thread holds the lock must not leave the child's copy locked.
    ::pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                     [] { instance().mutex_.unlock(); });
#endif
  }

  static arena& instance() {
    static arena* const a = new arena();  // never destroyed: states may outlive static objects
    return *a;
  }

  void* allocate() {
    std::lock_guard lock(mutex_);
    if (room_ == nullptr) link(new_chunk());
    chunk* c = room_;
    void* p = nullptr;
    if (c->free != nullptr) {
      p = c->free;
      c->free = c->free->next;
    } else {
      p = c->block(c->carved++);
    }
    ++c->live;
    if (!c->has_room()) unlink(c);
    return p;
  }

  void free(void* p) noexcept {
    auto* c = reinterpret_cast<chunk*>(reinterpret_cast<std::uintptr_t>(p) & ~(chunk_bytes - 1));
    chunk* empty = nullptr;
    {
      std::lock_guard lock(mutex_);
      c->free = new (p) free_block{c->free};
      --c->live;
      if (!c->listed) link(c);
      // An empty chunk goes back to the system unless it is the last one with room.
      if (c->live == 0 && (c->prev != nullptr || c->next != nullptr)) {
        unlink(c);
        empty = c;
      }
    }
    if (empty != nullptr) {
      empty->~chunk();
      ::operator delete (static_cast<void*>(empty), std::align_val_t{chunk_bytes});
    }
  }

 private:
  static chunk* new_chunk() {
    void* m = ::operator new (chunk_bytes, std::align_val_t{chunk_bytes});
    platform::advise_large_pages(m, chunk_bytes);
    return new (m) chunk();
  }
  void link(chunk* c) noexcept {
    c->prev = nullptr;
    c->next = room_;
    if (room_ != nullptr) room_->prev = c;
    room_ = c;
    c->listed = true;
  }
  void unlink(chunk* c) noexcept {
    if (c->prev != nullptr) c->prev->next = c->next;
    if (c->next != nullptr) c->next->prev = c->prev;
    if (room_ == c) room_ = c->next;
    c->prev = c->next = nullptr;
    c->listed = false;
  }

  std::mutex mutex_;
  chunk* room_ = nullptr;  // chunks with a free block; guarded by mutex_
};

}  // namespace

void* allocate_task_memory(std::size_t bytes) {
  if (bytes > block_bytes) return ::operator new(bytes);
  return arena::instance().allocate();
}

void free_task_memory(void* p, std::size_t bytes) noexcept {
  if (bytes > block_bytes) {
    ::operator delete(p);
    return;
  }
  arena::instance().free(p);
}

#endif

}  // namespace mproc::detail
