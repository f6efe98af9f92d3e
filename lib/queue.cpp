// mproc::queue's shared memory and its protocol.
//
// A ring of `capacity` cells, each with one 64-bit word (the lap it is for, its state, and the
// participant that holds it) and room for one message. Producers and consumers take cells in
// order with compare-and-swap on the cell's word, and anyone moves the shared positions on past
// a cell that is taken, so nothing waits for a process that may be dead. A cell that stays
// taken while someone waits on it is checked: if its holder's process has ended, the cell is
// given back (a put that died is dropped; a message whose consumer died taking it is counted
// as lost). No lock anywhere, so a death at any instruction leaves nothing held.
//
// Cell states, for lap `s` of a cell (s = the position it holds, modulo 2^36):
//   (s, free)                     ready for the producer of position s
//   (s, writing, p)               producer p is copying its message in
//   (s, full, p)                  a message, ready for the consumer of position s
//   (s, dropped)                  a put that did not complete: the consumer of s skips it
//   (s, reading, c)               consumer c is copying the message out
//   then (s + capacity, free)     ready for the next lap

#include "queue_hook.hpp"

#include "platform/process.hpp"
#include "platform/shared_memory.hpp"
#include "platform/wake.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/errors.hpp>
#include <mproc/queue.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace mproc {

queue_closed::queue_closed() : error("the queue is closed") {}

namespace detail {

std::atomic<void (*)(queue_moment)> queue_test_hook{nullptr};

namespace {

void reached(queue_moment m) {
  if (const auto hook = queue_test_hook.load(std::memory_order_relaxed)) hook(m);
}

using clock = std::chrono::steady_clock;

constexpr std::uint64_t queue_magic = 0x3130515052504d21ULL;  // "!MPRPQ01"
constexpr std::size_t page = 4096;
constexpr std::size_t participant_slots = 1024;  // slot 0 is never used: owner 0 is "nobody"

// How long a waiter waits before it checks that the holder of the cell it waits on still
// lives; also the longest sleep, so a missed wake-up (Windows wakes one sleeper) costs this.
constexpr auto liveness_period = std::chrono::milliseconds(50);

// A cell's word: [lap: 36 bits][state: 3][participant: 10][generation: 15].
constexpr unsigned lap_bits = 36;
constexpr std::uint64_t lap_mask = (std::uint64_t{1} << lap_bits) - 1;
constexpr unsigned owner_bits = 25;
constexpr std::uint64_t owner_mask = (std::uint64_t{1} << owner_bits) - 1;
constexpr unsigned generation_bits = 15;
constexpr std::uint64_t generation_mask = (std::uint64_t{1} << generation_bits) - 1;

enum class cell_state : std::uint64_t { free = 0, writing, full, dropped, reading };

constexpr std::uint64_t make_word(std::uint64_t lap, cell_state state, std::uint64_t owner) {
  return ((lap & lap_mask) << 28) | (static_cast<std::uint64_t>(state) << owner_bits) |
         (owner & owner_mask);
}
constexpr std::uint64_t lap_of(std::uint64_t w) { return w >> 28; }
constexpr cell_state state_of(std::uint64_t w) {
  return static_cast<cell_state>((w >> owner_bits) & 7);
}
constexpr std::uint64_t owner_of(std::uint64_t w) { return w & owner_mask; }

// How far the cell's lap is ahead of position `pos` (negative: behind), modulo 2^36.
std::int64_t distance(std::uint64_t lap, std::uint64_t pos) {
  auto d = static_cast<std::int64_t>((lap - pos) & lap_mask);
  if (d >= static_cast<std::int64_t>(lap_mask >> 1)) d -= static_cast<std::int64_t>(lap_mask + 1);
  return d;
}

// A process that takes part: its pid with the slot's generation, and its start time tagged
// with that generation (a slot whose tags differ is still being claimed).
struct participant_slot {
  std::atomic<std::uint64_t> word{0};     // (generation << 32) | pid; pid 0: free
  std::atomic<std::uint64_t> started{0};  // (generation << 48) | start time's low 48 bits
};

struct queue_header {
  std::uint64_t magic = 0;
  std::uint64_t token = 0;
  std::uint64_t capacity = 0;
  std::uint64_t cell_bytes = 0;
  alignas(64) std::atomic<std::uint64_t> enqueue_pos{0};
  alignas(64) std::atomic<std::uint64_t> dequeue_pos{0};
  alignas(64) std::atomic<std::uint32_t> data_signal{0};
  std::atomic<std::uint32_t> data_sleepers{0};
  alignas(64) std::atomic<std::uint32_t> space_signal{0};
  std::atomic<std::uint32_t> space_sleepers{0};
  alignas(64) std::atomic<std::uint32_t> closed{0};
  std::atomic<std::uint64_t> lost{0};
  participant_slot participants[participant_slots];
};

struct cell {
  std::atomic<std::uint64_t> word{0};
  std::atomic<std::uint64_t> size{0};
};

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Where things are in a queue's memory.
struct layout {
  std::size_t cells_at = 0;
  std::size_t data_at = 0;
  std::size_t cell_bytes = 0;
  std::size_t total = 0;
};

// The layout for `capacity` cells of `max_message` bytes; nothing if it overflows.
std::optional<layout> layout_for(std::uint64_t capacity, std::uint64_t max_message) {
  constexpr std::uint64_t limit = std::uint64_t{1} << 46;  // far above any real memory
  if (capacity == 0 || capacity > (std::uint64_t{1} << 32) || max_message > limit) {
    return std::nullopt;
  }
  layout l;
  l.cells_at = round_up(sizeof(queue_header), page);
  l.cell_bytes = round_up(std::max<std::size_t>(max_message, 1), 64);
  l.data_at = l.cells_at + round_up(capacity * sizeof(cell), page);
  if (l.cell_bytes > limit / capacity) return std::nullopt;
  l.total = l.data_at + capacity * l.cell_bytes;
  return l;
}

std::uint64_t started_tag(std::uint64_t generation, std::uint64_t start_time) {
  return (generation << 48) | (start_time & ((std::uint64_t{1} << 48) - 1));
}

class mapped_queue final : public queue_block {
 public:
  mapped_queue(platform::shared_memory memory, std::string name, bool creator)
      : memory_(std::move(memory)), name_(std::move(name)), creator_(creator) {}

  ~mapped_queue() override {
    leave();
    for (const platform::wake_handle w : {data_wake_, space_wake_}) platform::close_wake_handle(w);
    if (creator_ && !name_.empty()) platform::shared_memory::remove(name_);
  }
  mapped_queue(const mapped_queue&) = delete;
  mapped_queue& operator=(const mapped_queue&) = delete;

  // Sets up the view of a queue this process created (`create`) or opened, with the layout
  // `l`; throws `serialization_error` for memory that is not a queue's.
  void attach(const layout& l, std::uint64_t capacity, bool create, std::uint64_t token) {
    auto* base = static_cast<char*>(memory_.address());
    if (memory_.size() < l.total) throw serialization_error("cannot open a queue: it is truncated");
    header_ =
        create ? new (base) queue_header() : std::launder(reinterpret_cast<queue_header*>(base));
    cells_ = reinterpret_cast<cell*>(base + l.cells_at);
    data_ = base + l.data_at;
    capacity_ = capacity;
    cell_bytes_ = l.cell_bytes;
    if (create) {
      for (std::uint64_t i = 0; i < capacity; ++i) {
        new (&cells_[i]) cell();
        cells_[i].word.store(make_word(i, cell_state::free, 0));
      }
      header_->token = token;
      header_->capacity = capacity;
      header_->cell_bytes = l.cell_bytes;
      std::atomic_thread_fence(std::memory_order_release);
      header_->magic = queue_magic;
    }
    token_ = token;
    std::error_code ec;
    for (auto [handle, suffix] : {std::pair{&data_wake_, "-d"}, std::pair{&space_wake_, "-s"}}) {
      *handle = platform::open_wake_handle(name_ + suffix, create, ec);
      if (ec) throw error("cannot set up a queue's wake-ups: " + ec.message());
    }
  }

  queue_address address() const override {
    queue_address a;
    a.pid = platform::current_pid();
    a.fd = memory_.descriptor();
    a.token = token_;
    a.name = name_;
    return a;
  }

  std::size_t capacity() const noexcept override { return capacity_; }
  std::size_t max_message() const noexcept override { return cell_bytes_; }
  std::uint64_t lost() const noexcept override { return header_->lost.load(); }

  void close() noexcept override {
    header_->closed.store(1);
    signal(header_->data_signal, header_->data_sleepers, data_wake_, true);
    signal(header_->space_signal, header_->space_sleepers, space_wake_, true);
  }

  bool put(const char* data, std::size_t n, clock::time_point deadline) override {
    const std::uint64_t me = participant();
    waiter wait(*this);
    for (;;) {
      const std::uint32_t seen = header_->space_signal.load();
      if (header_->closed.load() != 0) throw queue_closed();
      const std::uint64_t pos = header_->enqueue_pos.load();
      cell& c = cell_at(pos);
      std::uint64_t w = c.word.load();
      const std::int64_t d = distance(lap_of(w), pos);
      if (d == 0 && state_of(w) == cell_state::free) {
        if (!c.word.compare_exchange_strong(w, make_word(pos, cell_state::writing, me))) continue;
        move_on(header_->enqueue_pos, pos);
        reached(queue_moment::put_holds_cell);
        if (header_->closed.load() != 0) {
          // Closed meanwhile: a consumer may have found the queue drained already.
          std::uint64_t held = make_word(pos, cell_state::writing, me);
          c.word.compare_exchange_strong(held, make_word(pos, cell_state::dropped, 0));
          signal(header_->data_signal, header_->data_sleepers, data_wake_, false);
          throw queue_closed();
        }
        std::memcpy(data_at(pos), data, n);
        c.size.store(n, std::memory_order_relaxed);
        std::uint64_t held = make_word(pos, cell_state::writing, me);
        if (!c.word.compare_exchange_strong(held, make_word(pos, cell_state::full, me))) {
          continue;  // taken for dead and dropped meanwhile (it cannot be): put it again
        }
        signal(header_->data_signal, header_->data_sleepers, data_wake_, false);
        return true;
      }
      if (d >= 0) {
        // Taken by another producer (or already consumed): the position moves on.
        move_on(header_->enqueue_pos, pos);
        continue;
      }
      // The cell still holds the last lap's message: full.
      if (!wait.until(header_->space_signal, header_->space_sleepers, space_wake_, seen, c, w,
                      deadline)) {
        return false;
      }
    }
  }

  bool get(std::vector<char>& out, clock::time_point deadline) override {
    const std::uint64_t me = participant();
    waiter wait(*this);
    for (;;) {
      const std::uint32_t seen = header_->data_signal.load();
      const std::uint64_t pos = header_->dequeue_pos.load();
      cell& c = cell_at(pos);
      std::uint64_t w = c.word.load();
      const std::int64_t d = distance(lap_of(w), pos);
      const cell_state state = state_of(w);
      if (d == 0 && (state == cell_state::full || state == cell_state::dropped)) {
        if (!c.word.compare_exchange_strong(w, make_word(pos, cell_state::reading, me))) continue;
        move_on(header_->dequeue_pos, pos);
        if (state == cell_state::dropped) {
          release(c, pos, make_word(pos, cell_state::reading, me));
          continue;
        }
        reached(queue_moment::get_holds_cell);
        if (take(c, pos, me, out)) return true;
        // Taken for dead and given back meanwhile (it cannot be): the copy may be torn, and the
        // message is counted lost.
        continue;
      }
      if (d > 0 || (d == 0 && state == cell_state::reading)) {
        move_on(header_->dequeue_pos, pos);
        continue;
      }
      if (d < 0 || state == cell_state::free) {
        // Nothing put at this position yet. Closed and still nothing after the close was seen:
        // any put that takes the cell from now on sees the close and drops its message.
        if (header_->closed.load() != 0 && c.word.load() == w) throw queue_closed();
      }
      // Empty, or a put in progress.
      if (!wait.until(header_->data_signal, header_->data_sleepers, data_wake_, seen, c, w,
                      deadline)) {
        return false;
      }
    }
  }

  // Registers this process in the queue (an opened queue's first participant call).
  std::uint64_t participant() {
    const int pid = platform::current_pid();
    detail::lock_guard lock(participant_mutex_);
    // A forked child has its parent's registration in its copy of this object: its own is new.
    if (participant_pid_ == pid) return me_;
    const std::optional<platform::process_record> self = platform::look_up_process(pid);
    const std::uint64_t start = self ? self->started : 0;
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t i = 1; i < participant_slots; ++i) {
        participant_slot& slot = header_->participants[i];
        std::uint64_t w = slot.word.load();
        const bool free = (w & 0xffffffffU) == 0;
        // The first pass takes free slots; the second, those of processes that have ended.
        if (pass == 0 ? !free : (free || slot_alive(i, w >> 32))) continue;
        const std::uint64_t generation = (w >> 32) + 1;
        if (!slot.word.compare_exchange_strong(
                w, (generation << 32) | static_cast<std::uint32_t>(pid))) {
          continue;
        }
        slot.started.store(started_tag(generation & 0xffff, start));
        participant_pid_ = pid;
        slot_ = i;
        me_ = (static_cast<std::uint64_t>(i) << generation_bits) | (generation & generation_mask);
        return me_;
      }
    }
    throw error("cannot use the queue: " + std::to_string(participant_slots - 1) +
                " processes take part in it already");
  }

 private:
  // Waits for a wake-up on a signal; checks the holder of a cell that stays taken.
  class waiter {
   public:
    explicit waiter(mapped_queue& q) : q_(q) {}

    // Sleeps until `signal` moves from `seen`, or the next liveness check, or `deadline`
    // (false once it has passed). A cell whose word stayed `w` for a liveness period is given
    // back if its holder has ended.
    bool until(std::atomic<std::uint32_t>& signal, std::atomic<std::uint32_t>& sleepers,
               platform::wake_handle handle, std::uint32_t seen, cell& c, std::uint64_t w,
               clock::time_point deadline) {
      const clock::time_point now = clock::now();
      if (now >= deadline) return false;
      if (&c != stuck_cell_ || w != stuck_word_) {
        stuck_cell_ = &c;
        stuck_word_ = w;
        stuck_since_ = now;
      } else if (now - stuck_since_ >= liveness_period) {
        q_.give_back_if_abandoned(c, w);
        stuck_since_ = now;
      }
      const auto timeout = std::min<clock::duration>(deadline - now, liveness_period);
      sleepers.fetch_add(1);
      if (signal.load() == seen && c.word.load() == w && q_.header_->closed.load() == 0) {
        platform::wait_word(signal, seen, timeout, handle);
      }
      sleepers.fetch_sub(1);
      return true;
    }

   private:
    mapped_queue& q_;
    cell* stuck_cell_ = nullptr;
    std::uint64_t stuck_word_ = 0;
    clock::time_point stuck_since_{};
  };

  cell& cell_at(std::uint64_t pos) const { return cells_[pos % capacity_]; }
  char* data_at(std::uint64_t pos) const { return data_ + (pos % capacity_) * cell_bytes_; }

  // Moves a shared position from `pos` to the next one, unless someone did.
  static void move_on(std::atomic<std::uint64_t>& position, std::uint64_t pos) {
    position.compare_exchange_strong(pos, pos + 1);
  }

  void signal(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers,
              platform::wake_handle handle, bool always) {
    word.fetch_add(1);
    if (always || sleepers.load() != 0) platform::wake_word(word, handle);
  }

  // Copies out the message in the cell of `pos`, which this consumer `me` holds, and frees the
  // cell; false if the cell was given back meanwhile.
  bool take(cell& c, std::uint64_t pos, std::uint64_t me, std::vector<char>& out) {
    const std::uint64_t held = make_word(pos, cell_state::reading, me);
    const std::uint64_t size = c.size.load(std::memory_order_relaxed);
    if (size > cell_bytes_) {
      release(c, pos, held);
      throw serialization_error("cannot take a message from a queue: its size says " +
                                std::to_string(size) +
                                " bytes, more than a message can have (a process wrote over the "
                                "queue's memory)");
    }
    try {
      out.assign(data_at(pos), data_at(pos) + size);
    } catch (...) {
      if (release(c, pos, held)) header_->lost.fetch_add(1);  // nobody else can have it now
      throw;
    }
    return release(c, pos, held);
  }

  // Frees the cell of `pos` for the next lap if it is still `held`; returns whether it was.
  bool release(cell& c, std::uint64_t pos, std::uint64_t held) {
    if (!c.word.compare_exchange_strong(held, make_word(pos + capacity_, cell_state::free, 0))) {
      return false;
    }
    signal(header_->space_signal, header_->space_sleepers, space_wake_, false);
    return true;
  }

  // Gives back the cell whose word is `w` if the participant holding it has ended: a put it
  // did not finish is dropped; a message it was taking is lost.
  void give_back_if_abandoned(cell& c, std::uint64_t w) {
    const cell_state state = state_of(w);
    if (state != cell_state::writing && state != cell_state::reading) return;
    const std::uint64_t owner = owner_of(w);
    if (owner_alive(owner)) return;
    const std::uint64_t lap = lap_of(w);
    if (state == cell_state::writing) {
      if (c.word.compare_exchange_strong(w, make_word(lap, cell_state::dropped, 0))) {
        signal(header_->data_signal, header_->data_sleepers, data_wake_, false);
      }
    } else if (c.word.compare_exchange_strong(w, make_word(lap + capacity_, cell_state::free, 0))) {
      header_->lost.fetch_add(1);
      signal(header_->space_signal, header_->space_sleepers, space_wake_, false);
    }
  }

  // Whether the participant `owner` (slot and generation) still runs.
  bool owner_alive(std::uint64_t owner) const {
    const std::uint64_t slot = owner >> generation_bits;
    if (slot == 0 || slot >= participant_slots) return false;
    const std::uint64_t w = header_->participants[slot].word.load();
    if (((w >> 32) & generation_mask) != (owner & generation_mask)) return false;  // it left
    return slot_alive(slot, w >> 32);
  }

  // Whether the process in slot `slot`, claimed in `generation`, still runs.
  bool slot_alive(std::uint64_t slot, std::uint64_t generation) const {
    const participant_slot& s = header_->participants[slot];
    const std::uint64_t w = s.word.load();
    const auto pid = static_cast<int>(w & 0xffffffffU);
    if (pid == 0 || (w >> 32) != generation) return false;
    const std::optional<platform::process_record> r = platform::look_up_process(pid);
    // Where processes cannot be looked up at all (no /proc), nobody is taken for dead: a
    // living holder's cell given back would be written by two processes.
    if (!r) return !platform::look_up_process(platform::current_pid()).has_value();
    if (r->ended) return false;
    const std::uint64_t tag = s.started.load();
    if ((tag >> 48) != (generation & 0xffff)) return true;  // still being claimed: its process runs
    return tag == started_tag(generation & 0xffff, r->started);
  }

  // Gives this process's slot back.
  void leave() noexcept {
    detail::lock_guard lock(participant_mutex_);
    if (participant_pid_ != platform::current_pid()) return;
    participant_slot& slot = header_->participants[slot_];
    std::uint64_t w = slot.word.load();
    if ((w & 0xffffffffU) == static_cast<std::uint32_t>(participant_pid_)) {
      slot.word.compare_exchange_strong(w, w & ~std::uint64_t{0xffffffffU});
    }
  }

  platform::shared_memory memory_;
  std::string name_;
  bool creator_;  // this process created it (and removes a name)
  queue_header* header_ = nullptr;
  cell* cells_ = nullptr;
  char* data_ = nullptr;
  std::uint64_t capacity_ = 0;    // private copies: nothing read back from the shared memory
  std::uint64_t cell_bytes_ = 0;  // is trusted for an index or a size
  std::uint64_t token_ = 0;
  platform::wake_handle data_wake_ = -1;
  platform::wake_handle space_wake_ = -1;
  detail::mutex participant_mutex_;
  int participant_pid_ MPROC_GUARDED_BY(participant_mutex_) = 0;
  std::size_t slot_ MPROC_GUARDED_BY(participant_mutex_) = 0;
  std::uint64_t me_ MPROC_GUARDED_BY(participant_mutex_) = 0;  // slot and generation
};

// The queues this process has mapped, by token, so that one arriving again maps once.
struct queue_table {
  detail::mutex lock;
  std::map<std::uint64_t, std::weak_ptr<queue_block>> queues MPROC_GUARDED_BY(lock);
};

queue_table& table() {
  static queue_table t;
  return t;
}

void remember(std::uint64_t token, const std::shared_ptr<queue_block>& q) {
  queue_table& t = table();
  const detail::lock_guard lock(t.lock);
  std::erase_if(t.queues, [](const auto& e) { return e.second.expired(); });
  t.queues[token] = q;
}

}  // namespace

std::shared_ptr<queue_block> queue_block::create(std::size_t capacity, std::size_t max_message) {
  if (capacity == 0) throw std::invalid_argument("mproc::queue: a capacity of 0 holds nothing");
  const std::optional<layout> l = layout_for(capacity, max_message);
  if (!l) {
    throw std::length_error("mproc::queue: " + std::to_string(capacity) + " messages of " +
                            std::to_string(max_message) + " bytes are more than memory can hold");
  }
  std::uint64_t token = 0;
  while (token == 0) {
    if (const std::error_code ec =
            platform::random_bytes(reinterpret_cast<unsigned char*>(&token), sizeof token)) {
      throw error("cannot create a queue: no random identity: " + ec.message());
    }
  }
  std::error_code ec;
  platform::shared_memory memory = platform::shared_memory::create_anonymous(l->total, ec);
  std::string name;
  if (ec == std::errc::function_not_supported) {
    std::string suffix;
    if (!(ec = platform::random_hex(12, suffix))) {
      name = platform::segment_prefix() + "q" + suffix;
      memory = platform::shared_memory::create(name, l->total, ec);
    }
  }
  if (ec) {
    throw error("cannot create a queue of " + std::to_string(l->total >> 10) +
                " KiB: " + ec.message());
  }
  auto q = std::make_shared<mapped_queue>(std::move(memory), name, true);
  q->attach(*l, capacity, true, token);
  remember(token, q);
  return q;
}

std::shared_ptr<queue_block> queue_block::open(const queue_address& address) {
  {
    queue_table& t = table();
    const detail::lock_guard lock(t.lock);
    if (const auto it = t.queues.find(address.token); it != t.queues.end()) {
      if (auto q = it->second.lock()) return q;
    }
  }
  std::error_code ec;
  platform::shared_memory memory =
      address.fd >= 0
          ? platform::shared_memory::open_peer(static_cast<int>(address.pid), address.fd, ec)
          : platform::shared_memory::open(address.name, ec);
  const std::string released = "cannot open a queue: the process that passed it (pid " +
                               std::to_string(address.pid) +
                               ") released it or ended before this process opened it";
  if (ec) throw serialization_error(released + ": " + ec.message());
  const auto* h = static_cast<const queue_header*>(memory.address());
  if (memory.size() < sizeof(queue_header) || h->magic != queue_magic ||
      h->token != address.token) {
    throw serialization_error(released + " (what it named is not that queue)");
  }
  const std::uint64_t capacity = h->capacity;
  const std::optional<layout> l = layout_for(capacity, h->cell_bytes);
  if (!l || l->cell_bytes != h->cell_bytes) {
    throw serialization_error("cannot open a queue: its memory is not a queue's");
  }
  auto q = std::make_shared<mapped_queue>(std::move(memory), address.name, false);
  q->attach(*l, capacity, false, address.token);
  remember(address.token, q);
  return q;
}

}  // namespace detail
}  // namespace mproc
