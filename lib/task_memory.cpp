#include "task_memory.hpp"

#include "platform/memory.hpp"

#include <cstdint>
#include <mutex>
#include <new>

#if !defined(_WIN32)
#include <pthread.h>
#endif

namespace mproc::detail {

#if defined(MPROC_PLAIN_TASK_MEMORY)

// Under AddressSanitizer every state is its own heap block, so that a use after free is caught.
void* allocate_task_memory(std::size_t bytes) { return ::operator new(bytes); }
void free_task_memory(void* p, std::size_t /*bytes*/) noexcept { ::operator delete(p); }

#else

namespace {

constexpr std::size_t chunk_bytes = std::size_t{2} << 20;  // one large page

struct free_block {
  free_block* next;
};

// The header of a chunk, in its first block. A block's chunk is its address rounded down.
struct chunk {
  explicit chunk(std::size_t block) : block_bytes(block), blocks(chunk_bytes / block - 1) {}

  const std::size_t block_bytes;
  const std::size_t blocks;    // blocks it holds after its header
  std::size_t live = 0;        // blocks handed out
  std::size_t carved = 0;      // blocks ever handed out; the rest have never been touched
  free_block* free = nullptr;  // blocks handed back
  chunk* prev = nullptr;       // in its size's list of chunks with room, if `listed`
  chunk* next = nullptr;
  bool listed = false;

  bool has_room() const noexcept { return free != nullptr || carved < blocks; }
  char* block(std::size_t i) noexcept {
    return reinterpret_cast<char*>(this) + (i + 1) * block_bytes;
  }
};
static_assert(sizeof(chunk) <= task_block_bytes);

// The chunks of one block size (callers hold the arenas' mutex).
class size_class {
 public:
  explicit size_class(std::size_t block) : block_(block) {}

  void* allocate() {
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

  // Takes `p` back; returns its chunk if that is now empty and should go back to the system
  // (every empty chunk but the last one with room).
  chunk* free(void* p) noexcept {
    auto* c = reinterpret_cast<chunk*>(reinterpret_cast<std::uintptr_t>(p) & ~(chunk_bytes - 1));
    c->free = new (p) free_block{c->free};
    --c->live;
    if (!c->listed) link(c);
    if (c->live != 0 || (c->prev == nullptr && c->next == nullptr)) return nullptr;
    unlink(c);
    return c;
  }

  // In a forked child, which has none of the chunks: starts again with none.
  void forget() noexcept { room_ = nullptr; }

 private:
  chunk* new_chunk() const {
    void* m = ::operator new (chunk_bytes, std::align_val_t{chunk_bytes});
    platform::advise_large_pages(m, chunk_bytes);
    platform::exclude_from_fork(m, chunk_bytes);
    return new (m) chunk(block_);
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

  const std::size_t block_;
  chunk* room_ = nullptr;  // chunks with a free block
};

// Task states in small blocks; the queues' nodes, which hold a few tasks each, in large ones.
class arenas {
 public:
  static arenas& instance() {
    static auto* const a = new arenas();  // never destroyed: states may outlive statics
    return *a;
  }

  void* allocate(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    return of(bytes).allocate();
  }

  void free(void* p, std::size_t bytes) noexcept {
    chunk* empty = nullptr;
    {
      std::lock_guard lock(mutex_);
      empty = of(bytes).free(p);
    }
    if (empty != nullptr) {
      empty->~chunk();
      // The heap may hand these pages out again: a forked child must have them then.
      platform::include_in_fork(empty, chunk_bytes);
      ::operator delete (static_cast<void*>(empty), std::align_val_t{chunk_bytes});
    }
  }

 private:
  arenas() {
#if !defined(_WIN32)
    // A fork while another thread holds the lock must not leave the child's copy locked. The
    // child gets no chunk (see `exclude_from_fork`), so its arenas start empty.
    ::pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                     [] {
                       arenas& a = instance();
                       a.small_.forget();
                       a.large_.forget();
                       a.mutex_.unlock();
                     });
#endif
  }
  size_class& of(std::size_t bytes) noexcept { return bytes <= task_block_bytes ? small_ : large_; }

  std::mutex mutex_;
  size_class small_{task_block_bytes};
  size_class large_{task_memory_max};
};

}  // namespace

void* allocate_task_memory(std::size_t bytes) {
  if (bytes > task_memory_max) return ::operator new(bytes);
  return arenas::instance().allocate(bytes);
}

void free_task_memory(void* p, std::size_t bytes) noexcept {
  if (bytes > task_memory_max) {
    ::operator delete(p);
    return;
  }
  arenas::instance().free(p, bytes);
}

#endif

}  // namespace mproc::detail
