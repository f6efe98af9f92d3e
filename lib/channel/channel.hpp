#pragma once
// The shared-memory transport between the parent and one worker: a segment holding two rings
// (tasks to the worker, results to the parent) and the framing of messages on them.

#include "channel/message.hpp"
#include "channel/ring.hpp"
#include "platform/memory.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace mproc::detail {
struct block_result;
}

namespace mproc::channel {

/// Payloads from this size on are copied straight between the two processes where the system
/// lets the parent do it (see `direct_link`) instead of through a ring.
inline constexpr std::uint64_t direct_threshold = std::uint64_t{256} << 10;
/// A flag in a header's `code`: the payload is not in the ring. A task's is in the worker's
/// landing area already; for a result, the ring holds the address of the worker's copy.
inline constexpr std::uint16_t code_direct = 0x8000;

/// A run of bytes in this process's memory.
struct piece {
  const char* data = nullptr;
  std::uint64_t size = 0;
};
/// A lent result is made of at most this many pieces of the worker's memory.
inline constexpr std::size_t max_lent_pieces = 4;

/// Where the parent may read a lent result straight into instead of a byte buffer: a result
/// of one block (see `detail::block_result`).
struct result_sink {
  const detail::block_result* type = nullptr;  ///< the result's type; null: into the payload
  std::shared_ptr<void> object;                ///< the result, if it was read into one
};

/// Control block at the start of each segment. Both processes write it: nothing in it is
/// trusted for a size or an index (see `ring`).
struct segment_header {
  std::uint64_t capacity = 0;                 // bytes in each ring, for the worker to check
  std::atomic<std::uint32_t> worker_gone{0};  // set by the parent when the worker process ended
  std::atomic<std::uint32_t> parent_gone{0};  // never set: a worker exits through its lifeline
  ring_control to_worker;
  ring_control to_parent;
  // Direct copies. The worker sets the first three before its hello: where large tasks land,
  // how large they may be, and where its copy of its secret is (the parent reads it to learn
  // whether it may copy). It counts the landed tasks it has decoded; the parent sets `direct`
  // once it copies, and after reading a lent result, that result's id + 1.
  std::atomic<std::uint64_t> landing_address{0};
  std::atomic<std::uint64_t> landing_capacity{0};
  std::atomic<std::uint64_t> probe_address{0};
  std::atomic<std::uint64_t> landed_done{0};
  std::atomic<std::uint64_t> lent_released{0};
  std::atomic<std::uint32_t> direct{0};
};

/// The parent's state of direct copies with one worker (its own memory, not the segment's).
struct direct_link {
  platform::memory_peer peer = platform::no_memory_peer;  ///< the worker, once the probe passed
  bool landing = false;      ///< tasks may land (false again after a refusal)
  std::uint64_t landed = 0;  ///< tasks landed so far
  segment_header* header = nullptr;
};

struct endpoint;

/// Throws `std::invalid_argument` if MPROC_DIRECT_COPIES is set to anything but 0, 1 or nothing.
/// Called by a pool's constructor.
void check_direct_copies_setting();

/// A mapped shared-memory segment for one worker: memory without a name that the worker gets by
/// descriptor where the system has it (Linux), else created owner-only under an unpredictable
/// name.
class segment {
 public:
  /// How a new segment is reached by a worker.
  enum class reach {
    any,   ///< by descriptor where the system allows it, else by name
    named  ///< by name (for tests of the named path)
  };
  /// Creates and maps a new segment whose rings hold `capacity` bytes each. On failure sets
  /// `ec` and returns null.
  static std::shared_ptr<segment> create(std::size_t capacity, std::error_code& ec,
                                         reach how = reach::any);
  /// Opens and maps the segment at `address` (in a worker): a name, or what
  /// `descriptor_address` made of an inherited descriptor. On failure sets `ec` (`bad_message`
  /// for a segment that is not a channel's) and returns null.
  static std::shared_ptr<segment> open(const std::string& address, std::error_code& ec);
  /// Returns the address under which a process that holds the segment's descriptor as `fd`
  /// opens it.
  static std::string descriptor_address(int fd);
  /// Returns whether segments are created without a name in this process (false where the
  /// system has no such memory or refused it, and after the first refusal).
  static bool anonymous() noexcept;

  ~segment();
  segment(const segment&) = delete;
  segment& operator=(const segment&) = delete;

  /// Removes every way to open the segment anew (its name, or its descriptor); the memory stays
  /// mapped for whoever has it mapped. Idempotent.
  void unlink() noexcept;
  /// Returns the segment's name, or an empty string for a segment without one.
  const std::string& name() const noexcept { return name_; }
  /// Returns the descriptor of a segment without a name until `unlink`, else -1.
  int descriptor() const noexcept;
  /// Returns the control block.
  segment_header& header() noexcept { return *header_; }
  /// Returns the bytes in each ring, as this process created or checked them.
  std::uint64_t capacity() const noexcept { return capacity_; }
  /// Returns whether the peer broke a ring of this segment (wrote a position no ring can have).
  bool corrupt() const noexcept { return corrupt_.load(std::memory_order_relaxed); }
  /// Marks the worker as gone and wakes anyone waiting on either ring.
  void mark_worker_gone() noexcept;
  /// In the parent, after the worker `pid` proved itself: from now on large payloads are copied
  /// straight to and from its memory, if the system lets this process read its copy of
  /// `secret`. Returns why not (and says so on stderr under MPROC_DEBUG), or nothing. Called
  /// once per segment.
  std::error_code try_direct_copies(int pid, const std::string& secret);

  /// Returns the parent's view: writes tasks, reads results.
  endpoint parent_endpoint();
  /// Returns the worker's view: reads tasks, writes results.
  endpoint worker_endpoint();

 private:
  segment() = default;
  std::error_code attach_wakers(bool create);
  ring_wakers wakers_for_to_worker() const noexcept { return {wakers_[0], wakers_[1]}; }
  ring_wakers wakers_for_to_parent() const noexcept { return {wakers_[2], wakers_[3]}; }

  struct mapping;
  std::unique_ptr<mapping> mapping_;
  std::string name_;
  bool linked_ = false;
  segment_header* header_ = nullptr;
  char* to_worker_data_ = nullptr;
  char* to_parent_data_ = nullptr;
  std::uint64_t capacity_ = 0;
  std::array<platform::wake_handle, 4> wakers_{-1, -1, -1, -1};  // data, space of each ring
  // This process's own view of the rings (see `ring`), never read back from shared memory: each
  // side's position in each ring (a process uses one side's; a test may use both), what each
  // writer last saw of its reader's position, and whether the peer broke a ring.
  std::uint64_t to_worker_written_ = 0;  // the parent's
  std::uint64_t to_parent_read_ = 0;     // the parent's
  std::uint64_t to_parent_written_ = 0;  // the worker's
  std::uint64_t to_worker_read_ = 0;     // the worker's
  std::uint64_t seen_to_worker_read_ = 0;
  std::uint64_t seen_to_parent_read_ = 0;
  std::atomic<bool> corrupt_{false};
  direct_link direct_;  // the parent's
};

/// Sends and receives whole messages over one side of a segment.
struct endpoint {
  ring out;
  ring in;
  direct_link* direct = nullptr;  ///< the parent's, for copies straight to and from the worker

  /// Seals `header` and sends it with its payload of `header.size` bytes (in the parent, a large
  /// task's payload goes straight into the worker's landing area where it can).
  io_status send(message_header header, const char* payload);
  /// In the worker: sends the result `header` whose `header.size` bytes are `pieces` (in
  /// order, at most `max_lent_pieces`), which stay in place until the parent has read them
  /// (`segment_header::lent_released`).
  io_status lend(message_header header, std::initializer_list<piece> pieces);
  /// Returns whether a message with `payload_size` bytes of payload can be sent without waiting.
  bool fits(std::size_t payload_size) const noexcept {
    return out.free_space() >= sizeof(message_header) + payload_size;
  }
  /// Receives the next message; its payload replaces the contents of `payload`.
  ///
  /// Throws `serialization_error` for a malformed header. Memory for the payload grows as its
  /// bytes arrive, so a header that lies about the size cannot make it allocate much.
  ///
  /// A task whose payload landed (`code_direct`, in the worker) comes with an empty `payload`:
  /// its bytes are in the landing area. A lent result of one call of `sink`'s type is read
  /// into `sink->object` instead of `payload` (in the parent).
  io_status receive(message_header& header, std::vector<char>& payload,
                    std::chrono::steady_clock::time_point deadline = ring::no_deadline(),
                    result_sink* sink = nullptr);

 private:
  std::optional<io_status> land(message_header& header, const char* payload);
  io_status fetch(message_header& header, std::vector<char>& payload,
                  std::chrono::steady_clock::time_point deadline, result_sink* sink);
};

}  // namespace mproc::channel
